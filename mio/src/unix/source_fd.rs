//! `SourceFd`: registers any descriptor by number.

use crate::event::Source;
use crate::sys::{Ctl, RegFd};
use crate::{Interest, Registry, Token};
use std::io;
use std::os::fd::RawFd;

/// Registers the descriptor `*self.0`, owned elsewhere, as `mio::unix::SourceFd`.
///
/// The number says which kernel the descriptor is on: a number at or above the simulated
/// base (what `AsRawFd` returns for an object of this crate made in a simulated world) is a
/// simulated descriptor, anything else a Linux one, and registering it with a `Poll` of the
/// other backend fails with `InvalidInput`. So tokio's `AsyncFd` works in both, as long as
/// the descriptor comes from this crate.
#[derive(Debug)]
pub struct SourceFd<'a>(pub &'a RawFd);

impl Source for SourceFd<'_> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        registry.ctl(Ctl::Add, RegFd::from_raw(*self.0), token, Some(interests))
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        registry.ctl(Ctl::Mod, RegFd::from_raw(*self.0), token, Some(interests))
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.ctl(Ctl::Del, RegFd::from_raw(*self.0), Token(0), None)
    }
}
