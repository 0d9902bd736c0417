//! `Source`: what can be registered with a [`crate::Registry`].

use crate::{Interest, Registry, Token};
use std::io;

/// Something that can be registered with a [`Registry`], as `mio::event::Source`. Call the
/// `Registry` methods rather than these; implement it by delegating to a socket of this
/// crate (or to [`crate::unix::SourceFd`]).
pub trait Source {
    /// Registers `self`.
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()>;
    /// Changes the registration of `self`.
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()>;
    /// Removes the registration of `self`.
    fn deregister(&mut self, registry: &Registry) -> io::Result<()>;
}

impl<T: Source + ?Sized> Source for Box<T> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        (**self).register(registry, token, interests)
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        (**self).reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        (**self).deregister(registry)
    }
}
