//! The backend behind every facade object, chosen when the object is created: the simulator
//! when a simulated world runs on the calling OS thread, Linux otherwise. A run-time choice
//! (rather than a type parameter) is what lets code written for mio use the facade without
//! one generic in it.

use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, RealOs, Shutdown, SimOs, Token};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// One of the seam's two implementations.
#[derive(Clone, Debug)]
pub(crate) enum Sys {
    /// Linux, through the `real` crate.
    Real(RealOs),
    /// The simulated kernel of the world running on this OS thread.
    Sim(SimOs),
}

/// Calls the same seam method on whichever backend `$sys` holds.
macro_rules! dispatch {
    ($sys:expr, $os:ident => $call:expr) => {
        match $sys {
            Sys::Real($os) => $call,
            Sys::Sim($os) => $call,
        }
    };
}

/// The seam's errno as the `io::Error` std and mio return (`EAGAIN` is `WouldBlock`).
pub(crate) fn io_error(errno: Errno) -> io::Error {
    io::Error::from_raw_os_error(errno.0)
}

fn io<T>(result: crate::os::Result<T>) -> io::Result<T> {
    result.map_err(io_error)
}

impl Sys {
    /// The backend for an object created now, on this OS thread.
    pub(crate) fn here() -> Sys {
        if sim::sched::in_world() {
            Sys::Sim(SimOs)
        } else {
            Sys::Real(RealOs::new())
        }
    }

    /// Whether two objects live on the same kernel (a simulated socket cannot be registered
    /// with a real epoll instance, nor the other way round).
    pub(crate) fn same_kernel(&self, other: &Sys) -> bool {
        matches!(
            (self, other),
            (Sys::Real(_), Sys::Real(_)) | (Sys::Sim(_), Sys::Sim(_))
        )
    }

    /// Closes `fd` on drop. A simulated descriptor dropped after its world ended has no
    /// kernel left to close it in, so it is forgotten (the world and its fd table are gone).
    pub(crate) fn close_on_drop(&self, fd: Fd) {
        match self {
            Sys::Real(os) => {
                let _ = os.close(fd);
            }
            Sys::Sim(os) => {
                if sim::sched::in_world() {
                    let _ = os.close(fd);
                }
            }
        }
    }

    pub(crate) fn epoll_create(&self) -> io::Result<Fd> {
        io(dispatch!(self, os => os.epoll_create()))
    }

    pub(crate) fn epoll_ctl(
        &self,
        epfd: Fd,
        op: CtlOp,
        fd: Fd,
        interest: Events,
        token: Token,
    ) -> io::Result<()> {
        io(dispatch!(self, os => os.epoll_ctl(epfd, op, fd, interest, token)))
    }

    pub(crate) fn epoll_wait(
        &self,
        epfd: Fd,
        out: &mut Vec<EpollEvent>,
        max_events: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        io(dispatch!(self, os => os.epoll_wait(epfd, out, max_events, timeout)))
    }

    pub(crate) fn listen(&self, addr: SocketAddr, backlog: u32) -> io::Result<Fd> {
        io(dispatch!(self, os => os.listen(addr, backlog, false)))
    }

    pub(crate) fn accept(&self, fd: Fd) -> io::Result<(Fd, SocketAddr)> {
        io(dispatch!(self, os => os.accept(fd)))
    }

    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<Fd> {
        io(dispatch!(self, os => os.connect(addr)))
    }

    pub(crate) fn local_addr(&self, fd: Fd) -> io::Result<SocketAddr> {
        io(dispatch!(self, os => os.local_addr(fd)))
    }

    pub(crate) fn peer_addr(&self, fd: Fd) -> io::Result<SocketAddr> {
        io(dispatch!(self, os => os.peer_addr(fd)))
    }

    pub(crate) fn take_error(&self, fd: Fd) -> io::Result<Option<io::Error>> {
        io(dispatch!(self, os => os.take_error(fd))).map(|e| e.map(io_error))
    }

    pub(crate) fn read(&self, fd: Fd, buf: &mut [u8]) -> io::Result<usize> {
        io(dispatch!(self, os => os.read(fd, buf)))
    }

    pub(crate) fn write(&self, fd: Fd, buf: &[u8]) -> io::Result<usize> {
        io(dispatch!(self, os => os.write(fd, buf)))
    }

    pub(crate) fn writev(&self, fd: Fd, bufs: &[&[u8]]) -> io::Result<usize> {
        io(dispatch!(self, os => os.writev(fd, bufs)))
    }

    pub(crate) fn shutdown(&self, fd: Fd, how: Shutdown) -> io::Result<()> {
        io(dispatch!(self, os => os.shutdown(fd, how)))
    }

    pub(crate) fn dup(&self, fd: Fd) -> io::Result<Fd> {
        io(dispatch!(self, os => os.dup(fd)))
    }

    pub(crate) fn eventfd(&self) -> io::Result<Fd> {
        io(dispatch!(self, os => os.eventfd()))
    }

    pub(crate) fn eventfd_read(&self, fd: Fd) -> io::Result<u64> {
        io(dispatch!(self, os => os.eventfd_read(fd)))
    }

    pub(crate) fn eventfd_write(&self, fd: Fd, value: u64) -> io::Result<()> {
        io(dispatch!(self, os => os.eventfd_write(fd, value)))
    }
}
