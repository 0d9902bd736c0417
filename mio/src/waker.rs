//! `Waker`: wakes a `Poll` from another thread.

use crate::{sys, Registry, Token};
use std::io;

/// Wakes a [`crate::Poll`] from another thread, as `mio::Waker`: every [`Waker::wake`] makes
/// the poll return an event with the waker's token (an eventfd registered edge-triggered).
#[derive(Debug)]
pub struct Waker {
    inner: sys::Waker,
}

impl Waker {
    /// A waker whose events carry `token` on `registry`'s `Poll` (and on its backend).
    pub fn new(registry: &Registry, token: Token) -> io::Result<Waker> {
        Ok(Waker {
            inner: sys::Waker::new(registry.selector(), token)?,
        })
    }

    /// Makes the `Poll` return an event with the waker's token.
    pub fn wake(&self) -> io::Result<()> {
        self.inner.wake()
    }
}
