//! eventfd (`fs/eventfd.c`, non-semaphore, non-blocking): a 64-bit counter. Every write
//! wakes IN and every read wakes OUT, whatever the counter was before (epoll-semantics.md
//! 4.6, E29): the "edge" of an eventfd is the call, not a change of state.

use super::coverage::{hit, Case};
use super::epoll::{IN, OUT};
use super::fdtable::Obj;
use super::{KResult, Kernel};

/// The largest value the counter may hold (`ULLONG_MAX - 1`); `ULLONG_MAX` itself is the
/// overflow marker the kernel reports as ERR.
const COUNT_MAX: u64 = u64::MAX - 1;

/// `eventfd_poll`.
pub(super) fn mask(count: u64) -> u32 {
    let mut mask = 0;
    if count > 0 {
        mask |= IN;
    }
    if count < COUNT_MAX {
        mask |= OUT;
    }
    if count == u64::MAX {
        mask |= libc::EPOLLERR as u32;
    }
    mask
}

impl Kernel {
    pub(super) fn efd_create(&mut self) -> KResult<i32> {
        self.fd_room(1)?;
        let file = self.file_new(Obj::EventFd(0));
        self.fd_install(file)
    }

    fn efd_count(&self, file: u32) -> u64 {
        match self.file(file).obj {
            Obj::EventFd(count) => count,
            _ => unreachable!("eventfd expected"),
        }
    }

    /// `eventfd_read`: EAGAIN at zero; otherwise the counter, reset to zero, and an OUT
    /// wakeup.
    fn efd_take(&mut self, file: u32) -> KResult<u64> {
        let count = self.efd_count(file);
        if count == 0 {
            return Err(libc::EAGAIN);
        }
        self.file_mut(file).obj = Obj::EventFd(0);
        self.wake(file, OUT);
        Ok(count)
    }

    /// `eventfd_write`: EINVAL for `u64::MAX`, EAGAIN if the sum would pass `u64::MAX - 1`;
    /// otherwise add and wake IN (even when adding 0).
    fn efd_add(&mut self, file: u32, value: u64) -> KResult<()> {
        if value == u64::MAX {
            return Err(libc::EINVAL);
        }
        let count = self.efd_count(file);
        if u64::MAX - count <= value {
            return Err(libc::EAGAIN);
        }
        if count > 0 {
            hit(Case::EventfdCoalescing);
        }
        self.file_mut(file).obj = Obj::EventFd(count + value);
        self.wake(file, IN);
        Ok(())
    }

    /// `read(2)` on an eventfd: the buffer must hold 8 bytes.
    pub(super) fn efd_read_buf(&mut self, file: u32, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(libc::EINVAL);
        }
        let count = self.efd_take(file)?;
        buf[..8].copy_from_slice(&count.to_ne_bytes());
        Ok(8)
    }

    /// `write(2)` on an eventfd: exactly 8 bytes, the value (any other length is EINVAL;
    /// a read only needs at least 8).
    pub(super) fn efd_write_buf(&mut self, file: u32, bufs: &[&[u8]]) -> KResult<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total != 8 {
            return Err(libc::EINVAL);
        }
        let mut bytes = [0u8; 8];
        let mut filled = 0;
        for buf in bufs {
            bytes[filled..filled + buf.len()].copy_from_slice(buf);
            filled += buf.len();
        }
        self.efd_add(file, u64::from_ne_bytes(bytes))?;
        Ok(8)
    }

    /// `eventfd_read(3)`: an 8-byte `read`. On another kind of file it is that file's
    /// `read` of 8 bytes; a short result is reported as EINVAL.
    pub(super) fn efd_read_u64(&mut self, fd: i32) -> KResult<u64> {
        let mut bytes = [0u8; 8];
        match self.file_read(fd, &mut bytes)? {
            8 => Ok(u64::from_ne_bytes(bytes)),
            _ => Err(libc::EINVAL),
        }
    }

    /// `eventfd_write(3)`: an 8-byte `write`.
    pub(super) fn efd_write_u64(&mut self, fd: i32, value: u64) -> KResult<()> {
        let bytes = value.to_ne_bytes();
        match self.file_writev(fd, &[&bytes])? {
            8 => Ok(()),
            _ => Err(libc::EINVAL),
        }
    }
}
