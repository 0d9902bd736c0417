//! Calls on any descriptor (read, write, writev, shutdown, close, dup, queue sizes) and the
//! two non-socket byte channels a reactor uses: pipes and eventfd counters.

use std::mem;

use crate::{process, Errno, RawFd, Result};

/// `read(fd, buf)`: the bytes read, `0` at end of file (or for an empty `buf`), `EAGAIN`
/// when nothing is there yet.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is a writable slice of exactly `buf.len()` bytes.
    syscall!(read(fd, buf.as_mut_ptr().cast::<libc::c_void>(), buf.len())).map(|n| n as usize)
}

/// `write(fd, buf)` that never raises `SIGPIPE`: the bytes accepted (possibly fewer than
/// offered), `EAGAIN` when none fit, `EPIPE` when the reader is gone.
///
/// Sockets are written with `send(MSG_NOSIGNAL)`. For other descriptors `send` fails with
/// `ENOTSOCK` without side effects; they are then written with `write`, after making sure
/// `SIGPIPE` is ignored (see the crate documentation).
pub fn write(fd: RawFd, buf: &[u8]) -> Result<usize> {
    // SAFETY: `buf` is a readable slice of exactly `buf.len()` bytes.
    let sent = syscall!(send(
        fd,
        buf.as_ptr().cast::<libc::c_void>(),
        buf.len(),
        libc::MSG_NOSIGNAL
    ));
    match sent {
        Err(Errno(libc::ENOTSOCK)) => {
            process::ignore_sigpipe();
            // SAFETY: as above.
            syscall!(write(fd, buf.as_ptr().cast::<libc::c_void>(), buf.len())).map(|n| n as usize)
        }
        other => other.map(|n| n as usize),
    }
}

/// The most buffers one [`writev`] call passes to the kernel. Later buffers are left for
/// the next call, which the short-write contract allows; the bound keeps the `iovec` array on
/// the stack.
pub const WRITEV_BUFFERS_MAX: usize = 64;

/// `writev(fd, bufs)` with [`write()`]'s signal rules: like `write` of the concatenation of
/// `bufs` (at most [`WRITEV_BUFFERS_MAX`] of them per call).
pub fn writev(fd: RawFd, bufs: &[&[u8]]) -> Result<usize> {
    let count = bufs.len().min(WRITEV_BUFFERS_MAX);
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; WRITEV_BUFFERS_MAX];
    for (iovec, buf) in iovecs.iter_mut().zip(bufs) {
        // The kernel only reads through these pointers; `iovec` is declared mutable in C.
        iovec.iov_base = buf.as_ptr() as *mut libc::c_void;
        iovec.iov_len = buf.len();
    }
    // SAFETY: all-zero bytes are a valid `msghdr` (no name, no control data).
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = iovecs.as_mut_ptr();
    message.msg_iovlen = count as _;
    // SAFETY: `message` points at `count` iovecs, each describing a live slice of `bufs`
    // that outlives the call; the kernel only reads them.
    let sent = syscall!(sendmsg(fd, &message, libc::MSG_NOSIGNAL));
    match sent {
        Err(Errno(libc::ENOTSOCK)) => {
            process::ignore_sigpipe();
            // SAFETY: as above, for plain `writev` over the same iovecs.
            syscall!(writev(fd, iovecs.as_ptr(), count as libc::c_int)).map(|n| n as usize)
        }
        other => other.map(|n| n as usize),
    }
}

/// Which half of a stream socket [`shutdown`] closes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Shutdown {
    /// `SHUT_RD`.
    Read,
    /// `SHUT_WR`: the peer reads end of file.
    Write,
    /// `SHUT_RDWR`.
    Both,
}

/// `shutdown(fd, how)`.
pub fn shutdown(fd: RawFd, how: Shutdown) -> Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: `shutdown` takes only integers.
    syscall!(shutdown(fd, how)).map(drop)
}

/// `close(fd)`. On Linux the descriptor is released even when `close` reports an error
/// (such as `EINTR`), so it must never be retried.
pub fn close(fd: RawFd) -> Result<()> {
    // SAFETY: `close` takes only an integer. Closing a number the caller does not own is a
    // logic error of the caller, not memory unsafety: Rust-owned descriptors (`File`,
    // `TcpStream`) would fail later with `EBADF`, they cannot corrupt memory.
    syscall!(close(fd)).map(drop)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: the lowest free descriptor number, referring to the same
/// open file description (and so sharing its epoll registrations).
pub fn dup(fd: RawFd) -> Result<RawFd> {
    // SAFETY: `fcntl` with `F_DUPFD_CLOEXEC` takes only integers.
    syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))
}

/// Whether `O_NONBLOCK` is set on the open file description (`fcntl(F_GETFL)`), for tests
/// of the flags every constructor here promises.
pub fn is_nonblocking(fd: RawFd) -> Result<bool> {
    // SAFETY: `fcntl` with `F_GETFL` takes only integers and changes nothing.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Sets or clears `O_NONBLOCK` on the open file description (`fcntl(F_GETFL)`, then
/// `F_SETFL`), keeping its other status flags.
pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> Result<()> {
    // SAFETY: `fcntl` with `F_GETFL` takes only integers and changes nothing.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let flags = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: `fcntl` with `F_SETFL` takes only integers.
    syscall!(fcntl(fd, libc::F_SETFL, flags)).map(drop)
}

/// Whether `FD_CLOEXEC` is set on the descriptor (`fcntl(F_GETFD)`).
pub fn is_cloexec(fd: RawFd) -> Result<bool> {
    // SAFETY: `fcntl` with `F_GETFD` takes only integers and changes nothing.
    let flags = syscall!(fcntl(fd, libc::F_GETFD))?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

fn ioctl_count(fd: RawFd, request: libc::Ioctl) -> Result<usize> {
    let mut count: libc::c_int = 0;
    // SAFETY: both requests used here write one `int` through the pointer, which points at
    // the writable `count`.
    syscall!(ioctl(fd, request, &mut count as *mut libc::c_int))?;
    Ok(count as usize)
}

/// `ioctl(SIOCINQ)` (the same number as `FIONREAD`, which pipes answer too): bytes readable
/// now. For a listening TCP socket Linux answers `EINVAL`; for an eventfd, `ENOTTY`.
pub fn inq(fd: RawFd) -> Result<usize> {
    ioctl_count(fd, libc::FIONREAD)
}

/// Bytes this end wrote that its peer has not consumed yet.
///
/// * TCP: `ioctl(SIOCOUTQ)`, bytes sent but not yet acknowledged by the peer's kernel. On
///   loopback the acknowledgement is nearly immediate, so this is usually `0` even when the
///   peer application has read nothing (the bytes then sit in the peer's receive queue).
/// * Unix stream sockets: `SIOCOUTQ` too, which Linux answers with the send buffer's memory
///   charge (`sk_wmem_alloc`): every queued write counts with its kernel overhead (several
///   hundred bytes per `write`), so the value is an upper bound of the unread bytes, not the
///   byte count. Linux offers nothing exact from the writer's side.
/// * Pipes: pipes have no `SIOCOUTQ` (`ENOTTY`), but `FIONREAD` on either end counts the
///   bytes in the shared pipe buffer, which is exactly what the reader has not read; that is
///   what is returned.
pub fn outq(fd: RawFd) -> Result<usize> {
    match ioctl_count(fd, libc::TIOCOUTQ) {
        Err(Errno(libc::ENOTTY)) => ioctl_count(fd, libc::FIONREAD),
        other => other,
    }
}

/// `pipe2(NONBLOCK|CLOEXEC)`: `(read end, write end)`.
pub fn pipe() -> Result<(RawFd, RawFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a writable array of the two ints `pipe2` fills.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    Ok((fds[0], fds[1]))
}

/// `eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC)`: a 64-bit counter starting at zero.
pub fn eventfd() -> Result<RawFd> {
    // SAFETY: `eventfd` takes only integers.
    syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))
}

/// Reads the counter and resets it to zero (an 8-byte native-endian `read`); `EAGAIN` when it
/// is zero.
pub fn eventfd_read(fd: RawFd) -> Result<u64> {
    let mut bytes = [0u8; 8];
    let n = read(fd, &mut bytes)?;
    // An eventfd read is all or nothing; anything else means `fd` is not an eventfd.
    if n != bytes.len() {
        return Err(Errno(libc::EINVAL));
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// Adds `value` to the counter (an 8-byte native-endian `write`): `EAGAIN` when the sum would
/// exceed `u64::MAX - 1`, `EINVAL` for `u64::MAX` itself.
pub fn eventfd_write(fd: RawFd, value: u64) -> Result<()> {
    let bytes = value.to_ne_bytes();
    // Plain `write`: an eventfd is not a socket and never raises SIGPIPE, so the `send`
    // attempt of [`write`] would be a wasted syscall.
    // SAFETY: `bytes` is a readable array of exactly 8 bytes.
    let n = syscall!(write(
        fd,
        bytes.as_ptr().cast::<libc::c_void>(),
        bytes.len()
    ))?;
    if n as usize != bytes.len() {
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}
