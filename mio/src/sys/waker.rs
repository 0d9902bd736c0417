//! The waker behind `mio::Waker`: an eventfd registered edge-triggered for reading, so every
//! wake raises one event (mio's eventfd waker on Linux).

use super::selector::{Ctl, Selector};
use super::{real_io, sim_io, RegFd, SimFd};
use crate::{Interest, Token};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// An eventfd on the backend of the selector it wakes.
#[derive(Debug)]
pub(crate) enum Waker {
    Sim(SimFd),
    Real(OwnedFd),
}

impl Waker {
    pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
        let waker = if selector.is_sim() {
            Waker::Sim(SimFd(sim_io(sim::sys::eventfd())?))
        } else {
            Waker::Real(real_io(real::owned::eventfd())?)
        };
        selector.ctl(Ctl::Add, waker.reg_fd(), token, Some(Interest::READABLE))?;
        Ok(waker)
    }

    fn reg_fd(&self) -> RegFd {
        match self {
            Waker::Sim(fd) => RegFd::Sim(fd.0),
            Waker::Real(fd) => RegFd::Real(fd.as_raw_fd()),
        }
    }

    fn write_one(&self) -> io::Result<()> {
        match self.reg_fd() {
            RegFd::Sim(fd) => sim_io(sim::sys::eventfd_write(fd, 1)),
            RegFd::Real(fd) => real_io(real::io::eventfd_write(fd, 1)),
        }
    }

    fn reset(&self) -> io::Result<()> {
        match self.reg_fd() {
            RegFd::Sim(fd) => sim_io(sim::sys::eventfd_read(fd)).map(drop),
            RegFd::Real(fd) => real_io(real::io::eventfd_read(fd)).map(drop),
        }
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        match self.write_one() {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // The counter is full: nobody has read it since countless wakes. Resetting
                // it and writing again still raises the edge the poller waits for.
                self.reset()?;
                self.write_one()
            }
            other => other,
        }
    }
}
