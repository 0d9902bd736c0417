//! The blocking-looking descriptor (Go's `internal/poll.FD` over a `pollDesc`): `accept`,
//! `read` and `write` that return only with a result, parking the calling thread on `EAGAIN`
//! until the netpoller readies it, with read and write deadlines on the seam's clock.
//!
//! The order inside every operation is Go's: reset the token before the first syscall
//! (`prepareRead`), try the syscall, and on `EAGAIN` wait (`waitRead`) and try again. The
//! reset never happens after `EAGAIN`; the `clear-after-eagain` flaw does exactly that.

use super::pd::{Mode, PollDesc, PollErr};
use super::poller::Netpoll;
use super::Flaw;
use crate::os::{Errno, Fd, Os};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a blocking-looking operation failed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum NetError {
    /// The descriptor was closed (or evicted for shutdown) while in use: Go's
    /// `ErrNetClosing`.
    Closed,
    /// The direction's deadline passed: Go's `os.ErrDeadlineExceeded`.
    Timeout,
    /// The syscall failed with this errno.
    Os(Errno),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Closed => f.write_str("use of closed network connection"),
            NetError::Timeout => f.write_str("i/o timeout"),
            NetError::Os(errno) => write!(f, "{errno}"),
        }
    }
}

impl std::error::Error for NetError {}

impl From<PollErr> for NetError {
    fn from(error: PollErr) -> NetError {
        match error {
            PollErr::Closing => NetError::Closed,
            PollErr::Timeout => NetError::Timeout,
        }
    }
}

/// A registered descriptor with blocking-looking operations. It owns the descriptor:
/// [`NetFd::close`] (or dropping it) unregisters and closes it.
pub struct NetFd<O: Os> {
    poller: Arc<Netpoll<O>>,
    pd: Arc<PollDesc<O>>,
    closed: bool,
}

/// A handle on a descriptor's poll state that other threads may keep: it can interrupt the
/// owner (for shutdown) or move its deadlines, but never touches the descriptor itself.
pub struct PollHandle<O: Os> {
    pd: Arc<PollDesc<O>>,
}

impl<O: Os> Clone for PollHandle<O> {
    fn clone(&self) -> Self {
        PollHandle {
            pd: Arc::clone(&self.pd),
        }
    }
}

impl<O: Os> PollHandle<O> {
    /// Marks the descriptor closing and wakes its waiters, which return
    /// [`NetError::Closed`] (the first half of Go's `Close`). The owner still closes it.
    pub fn evict(&self) {
        self.pd.evict();
    }

    /// Sets the read deadline (absolute, on `os.now()`'s clock; `None` clears it).
    pub fn set_read_deadline(&self, deadline: Option<Duration>) {
        self.pd.set_deadline(Mode::Read, deadline);
    }

    /// Sets the write deadline (absolute, on `os.now()`'s clock; `None` clears it).
    pub fn set_write_deadline(&self, deadline: Option<Duration>) {
        self.pd.set_deadline(Mode::Write, deadline);
    }
}

impl<O: Os> NetFd<O> {
    /// Registers `fd` with the netpoller and takes ownership of it. On failure the
    /// descriptor is closed.
    pub fn open(poller: &Arc<Netpoll<O>>, fd: Fd) -> Result<NetFd<O>, Errno> {
        match poller.open(fd) {
            Ok(pd) => Ok(NetFd {
                poller: Arc::clone(poller),
                pd,
                closed: false,
            }),
            Err(errno) => {
                let _ = poller.os().close(fd);
                Err(errno)
            }
        }
    }

    /// The descriptor.
    pub fn fd(&self) -> Fd {
        self.pd.fd()
    }

    /// The poll descriptor, for the netpoller's own tests.
    #[cfg(test)]
    pub(super) fn poll_desc(&self) -> &PollDesc<O> {
        &self.pd
    }

    /// A handle for other threads (shutdown, deadlines).
    pub fn handle(&self) -> PollHandle<O> {
        PollHandle {
            pd: Arc::clone(&self.pd),
        }
    }

    /// Sets the read deadline (absolute, on `os.now()`'s clock; `None` clears it).
    pub fn set_read_deadline(&self, deadline: Option<Duration>) {
        self.pd.set_deadline(Mode::Read, deadline);
    }

    /// Sets the write deadline (absolute, on `os.now()`'s clock; `None` clears it).
    pub fn set_write_deadline(&self, deadline: Option<Duration>) {
        self.pd.set_deadline(Mode::Write, deadline);
    }

    fn os(&self) -> &O {
        self.poller.os()
    }

    fn flaw(&self) -> Option<Flaw> {
        self.poller.flaw()
    }

    /// prepareRead / prepareWrite: clear the token before the first attempt.
    fn prepare(&self, mode: Mode) -> Result<(), NetError> {
        if self.flaw() == Some(Flaw::ClearAfterEagain) {
            // The flaw moves the clearing to after EAGAIN (see `wait_after_eagain`).
            self.pd.check_err(self.os(), mode)?;
            return Ok(());
        }
        Ok(self.pd.reset(self.os(), mode)?)
    }

    /// waitRead / waitWrite after a syscall returned `EAGAIN`.
    fn wait_after_eagain(&self, mode: Mode) -> Result<(), NetError> {
        if self.flaw() == Some(Flaw::ClearAfterEagain) {
            self.pd.clear_token(mode);
        }
        Ok(self.pd.wait(self.os(), mode, self.flaw())?)
    }

    /// Accepts a connection and registers it, waiting while none is queued.
    /// `ECONNABORTED` and `EINTR` are retried; other errors (`EMFILE`...) are returned.
    pub fn accept(&self) -> Result<(NetFd<O>, SocketAddr), NetError> {
        self.prepare(Mode::Read)?;
        loop {
            match self.os().accept(self.fd()) {
                Ok((fd, addr)) => {
                    let conn = NetFd::open(&self.poller, fd).map_err(NetError::Os)?;
                    return Ok((conn, addr));
                }
                Err(Errno::EAGAIN) => self.wait_after_eagain(Mode::Read)?,
                Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => {}
                Err(errno) => return Err(NetError::Os(errno)),
            }
        }
    }

    /// Reads into `buf`, waiting while nothing is there. `Ok(0)` is end of file.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        self.prepare(Mode::Read)?;
        loop {
            match self.os().read(self.fd(), buf) {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN) => self.wait_after_eagain(Mode::Read)?,
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(NetError::Os(errno)),
            }
        }
    }

    /// Writes all of `buf`, looping over partial writes and waiting while the send buffer is
    /// full. Returns `buf.len()`, or the error that stopped it.
    pub fn write(&self, buf: &[u8]) -> Result<usize, NetError> {
        self.prepare(Mode::Write)?;
        let mut written = 0;
        while written < buf.len() {
            match self.os().write(self.fd(), &buf[written..]) {
                Ok(n) => written += n,
                Err(Errno::EAGAIN) => self.wait_after_eagain(Mode::Write)?,
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(NetError::Os(errno)),
            }
        }
        Ok(written)
    }

    /// Closes: wakes any other waiter with [`NetError::Closed`], unregisters, closes the
    /// descriptor.
    pub fn close(mut self) -> Result<(), Errno> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), Errno> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.pd.evict();
        self.poller.close(&self.pd);
        self.os().close(self.fd())
    }
}

impl<O: Os> Drop for NetFd<O> {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}
