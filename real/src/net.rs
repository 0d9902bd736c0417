//! Sockets: non-blocking TCP listeners, accepted and connecting streams, their addresses
//! and pending errors, abortive close, and unix stream socket pairs.
//!
//! Every socket is created non-blocking and close-on-exec in the same syscall that makes it,
//! so no other thread's `fork`+`exec` can inherit it, and stream sockets get `TCP_NODELAY`
//! because reactors write whole replies and must not wait for Nagle's algorithm.

use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::{io, Errno, RawFd, Result};

/// A socket address in the kernel's layout, for the calls that read one.
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn new(addr: &SocketAddr) -> RawAddr {
        match addr {
            SocketAddr::V4(v4) => RawAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    // The octets are already in network order; keep their memory layout.
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(v6) => RawAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            }),
        }
    }

    fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            RawAddr::V4(v4) => (
                (v4 as *const libc::sockaddr_in).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            RawAddr::V6(v6) => (
                (v6 as *const libc::sockaddr_in6).cast(),
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }

    fn domain(&self) -> libc::c_int {
        match self {
            RawAddr::V4(_) => libc::AF_INET,
            RawAddr::V6(_) => libc::AF_INET6,
        }
    }
}

/// An empty `sockaddr_storage` for the kernel to fill, and its length.
fn storage() -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: `sockaddr_storage` is plain old data; all-zero bytes are a valid value of it.
    let storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    (
        storage,
        mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    )
}

/// Converts an address the kernel wrote into `storage` (`len` bytes of it) to a std address.
/// Families other than IPv4 and IPv6 (for example a unix socket's) fail with `EAFNOSUPPORT`.
fn to_socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Result<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, the length covers
            // it, and `sockaddr_storage` is large and aligned enough for every address type.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => Err(Errno(libc::EAFNOSUPPORT)),
    }
}

/// `getsockopt(fd, level, name)` for an option whose value is an `int`.
fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable `c_int` and `len` holds its exact size.
    syscall!(getsockopt(
        fd,
        level,
        name,
        (&mut value as *mut libc::c_int).cast::<libc::c_void>(),
        &mut len
    ))?;
    Ok(value)
}

/// `setsockopt(fd, level, name, &value)` for an option whose value is a plain struct or int.
fn set_option<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: T) -> Result<()> {
    // SAFETY: `value` is a live, initialised `T` and the length passed is exactly its size;
    // the kernel only reads it.
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&value as *const T).cast::<libc::c_void>(),
        mem::size_of::<T>() as libc::socklen_t
    ))
    .map(drop)
}

/// Runs `configure` on a freshly made descriptor; if it fails, closes the descriptor so the
/// error does not leak it, and returns the configuration error.
fn configured(fd: RawFd, configure: impl FnOnce(RawFd) -> Result<()>) -> Result<RawFd> {
    match configure(fd) {
        Ok(()) => Ok(fd),
        Err(errno) => {
            // The configuration error is the one worth reporting; a close error on a
            // descriptor nobody else knows about cannot be acted on.
            let _ = io::close(fd);
            Err(errno)
        }
    }
}

fn stream_socket(domain: libc::c_int) -> Result<RawFd> {
    // SAFETY: `socket` takes only integers and touches no memory of ours.
    syscall!(socket(
        domain,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0
    ))
}

/// A non-blocking TCP listener on `addr` (port 0 picks a free port) with `SO_REUSEADDR`,
/// plus `SO_REUSEPORT` when `reuse_port` is set. `backlog` above `i32::MAX` is clamped (the
/// kernel clamps further to `net.core.somaxconn`).
pub fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> Result<RawFd> {
    let raw = RawAddr::new(&addr);
    configured(stream_socket(raw.domain())?, |fd| {
        set_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1 as libc::c_int)?;
        if reuse_port {
            set_option(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1 as libc::c_int)?;
        }
        let (ptr, len) = raw.as_ptr();
        // SAFETY: `ptr` points at `len` initialised bytes of a socket address owned by `raw`,
        // which outlives the call.
        syscall!(bind(fd, ptr, len))?;
        let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
        // SAFETY: `listen` takes only integers.
        syscall!(listen(fd, backlog)).map(drop)
    })
}

/// `accept4(fd, NONBLOCK|CLOEXEC)`, then `TCP_NODELAY` on the new socket; returns it and the
/// peer's address.
///
/// `EAGAIN` when nothing is queued; `EMFILE`/`ENFILE` leave the connection queued (and, since
/// Linux reserves the descriptor before it looks at the queue, come even when nothing is
/// queued). A connection the peer reset while it waited in the backlog is **not**
/// `ECONNABORTED` on Linux (measured on 6.18): it is returned like any other, its first read
/// fails with `ECONNRESET` and `getpeername` with `ENOTCONN`. If
/// setting `TCP_NODELAY` or decoding the address fails, the new socket is closed and that
/// error returned, so the caller never receives a half-configured descriptor.
pub fn accept(fd: RawFd) -> Result<(RawFd, SocketAddr)> {
    let (mut storage, mut len) = storage();
    // SAFETY: `storage` is writable and `len` holds its exact size, as `accept4` requires;
    // the kernel writes at most `len` bytes and stores the real length back into `len`.
    let new_fd = syscall!(accept4(
        fd,
        (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr>(),
        &mut len,
        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
    ))?;
    let mut peer = None;
    configured(new_fd, |new_fd| {
        set_option(
            new_fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            1 as libc::c_int,
        )?;
        peer = Some(to_socket_addr(&storage, len)?);
        Ok(())
    })?;
    Ok((
        new_fd,
        peer.expect("configured succeeded, so the address was decoded"),
    ))
}

/// A non-blocking TCP socket with `TCP_NODELAY`, connecting to `addr`.
///
/// `EINPROGRESS` counts as success: the connection completes (or fails) later; wait for
/// `EPOLLOUT` (or `EPOLLERR`/`EPOLLHUP`) and ask [`take_error`] for the outcome. Any other
/// failure closes the socket and returns the errno.
pub fn connect(addr: SocketAddr) -> Result<RawFd> {
    let raw = RawAddr::new(&addr);
    configured(stream_socket(raw.domain())?, |fd| {
        set_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1 as libc::c_int)?;
        let (ptr, len) = raw.as_ptr();
        // SAFETY: `ptr` points at `len` initialised bytes of a socket address owned by `raw`,
        // which outlives the call.
        match syscall!(connect(fd, ptr, len)) {
            Ok(_) => Ok(()),
            Err(Errno(libc::EINPROGRESS)) => Ok(()),
            Err(errno) => Err(errno),
        }
    })
}

/// `getsockname`: the socket's own address.
pub fn local_addr(fd: RawFd) -> Result<SocketAddr> {
    let (mut storage, mut len) = storage();
    // SAFETY: `storage` is writable for `len` bytes; the kernel writes at most that many.
    syscall!(getsockname(
        fd,
        (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr>(),
        &mut len
    ))?;
    to_socket_addr(&storage, len)
}

/// `getpeername`: the connected peer's address (`ENOTCONN` when there is none).
pub fn peer_addr(fd: RawFd) -> Result<SocketAddr> {
    let (mut storage, mut len) = storage();
    // SAFETY: `storage` is writable for `len` bytes; the kernel writes at most that many.
    syscall!(getpeername(
        fd,
        (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr>(),
        &mut len
    ))?;
    to_socket_addr(&storage, len)
}

/// `getsockopt(SO_ERROR)`: the pending socket error, which the kernel clears as it is read.
/// `Ok(None)` when there is none.
pub fn take_error(fd: RawFd) -> Result<Option<Errno>> {
    let value = int_option(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((value != 0).then_some(Errno(value)))
}

/// Whether `TCP_NODELAY` is set on a TCP socket (`getsockopt`), for tests of the
/// configuration [`accept`] and [`connect`] promise.
pub fn nodelay(fd: RawFd) -> Result<bool> {
    int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|value| value != 0)
}

/// Whether `IPV6_V6ONLY` is set (`getsockopt`); an IPv4 socket fails as the kernel says.
pub fn only_v6(fd: RawFd) -> Result<bool> {
    int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).map(|value| value != 0)
}

/// `setsockopt(SO_LINGER, {1, 0})`, then `close(fd)`: an abortive close, so the peer sees a
/// reset (`ECONNRESET`) instead of end of file.
///
/// The descriptor is closed even if setting the option fails (the caller handed it over and
/// must not use it again); the option's errno is then returned, for example `ENOTSOCK` for
/// a pipe. `EBADF` from the option means there was nothing to close.
pub fn reset(fd: RawFd) -> Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    match set_option(fd, libc::SOL_SOCKET, libc::SO_LINGER, linger) {
        Ok(()) => io::close(fd),
        Err(Errno(libc::EBADF)) => Err(Errno(libc::EBADF)),
        Err(errno) => {
            let _ = io::close(fd);
            Err(errno)
        }
    }
}

/// `socketpair(AF_UNIX, SOCK_STREAM|NONBLOCK|CLOEXEC)`: two connected unix stream sockets.
pub fn socketpair() -> Result<(RawFd, RawFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a writable array of the two ints `socketpair` fills.
    syscall!(socketpair(
        libc::AF_UNIX,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
        fds.as_mut_ptr()
    ))?;
    Ok((fds[0], fds[1]))
}
