//! Pipes, on both backends (`pipe2(O_NONBLOCK | O_CLOEXEC)` on Linux).

use super::{in_world, real_io, sim_io, unsupported, Side, SimFd, Sock};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

pub(crate) type End = Sock<OwnedFd>;

/// `(write end, read end)`, mio's order.
pub(crate) fn new() -> io::Result<(End, End)> {
    if in_world() {
        let (read, write) = sim_io(sim::sys::pipe())?;
        Ok((Sock::Sim(SimFd(write)), Sock::Sim(SimFd(read))))
    } else {
        let (read, write) = real_io(real::owned::pipe())?;
        Ok((Sock::Real(write), Sock::Real(read)))
    }
}

/// `O_NONBLOCK` on or off. Simulated descriptors are always non-blocking: a blocking call
/// would stop every simulated thread, which share one OS thread.
pub(crate) fn set_nonblocking(end: &End, nonblocking: bool, call: &str) -> io::Result<()> {
    match end.side()? {
        Side::Sim(_) if nonblocking => Ok(()),
        Side::Sim(_) => Err(unsupported(
            call,
            "simulated descriptors are always non-blocking",
        )),
        Side::Real(fd) => real_io(real::io::set_nonblocking(fd.as_raw_fd(), nonblocking)),
    }
}
