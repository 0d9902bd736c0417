//! `Poll` and `Registry`: an epoll instance, how sources join it and how its events are
//! read.

use crate::event::{Events, Source};
use crate::sys::{Ctl, RegFd, Selector};
use crate::{Interest, Token};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// Polls for readiness events on the sources registered with its [`Registry`], as
/// `mio::Poll`.
///
/// Made inside a simulated world it is a simulated epoll instance; elsewhere a Linux one.
pub struct Poll {
    registry: Registry,
}

impl Poll {
    /// A new epoll instance, on the simulator inside a simulated world, on Linux otherwise.
    pub fn new() -> io::Result<Poll> {
        Ok(Poll {
            registry: Registry {
                selector: Selector::new()?,
            },
        })
    }

    /// The registry sources are registered with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits for events, at most `events.capacity()` of them, for at most `timeout` (`None`
    /// waits until one comes; a timeout is rounded up to whole milliseconds, as epoll takes
    /// it). Clears `events` first. Returns `Ok(())` with no events when the timeout passed,
    /// and fails with `Interrupted` when a signal (or, in the simulator, an injected
    /// `EINTR`) cut the wait short.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let capacity = events.capacity();
        self.registry
            .selector
            .select(&mut events.inner, capacity, timeout)
    }
}

impl AsRawFd for Poll {
    fn as_raw_fd(&self) -> RawFd {
        self.registry.as_raw_fd()
    }
}

impl fmt::Debug for Poll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poll").finish_non_exhaustive()
    }
}

/// Registers event sources, as `mio::Registry`.
pub struct Registry {
    selector: Selector,
}

impl Registry {
    /// Registers `source` for `interests` (edge-triggered); its events will carry `token`.
    pub fn register<S>(&self, source: &mut S, token: Token, interests: Interest) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        source.register(self, token, interests)
    }

    /// Changes the token and interests of a registered `source`.
    pub fn reregister<S>(&self, source: &mut S, token: Token, interests: Interest) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        source.reregister(self, token, interests)
    }

    /// Removes a registered `source`.
    pub fn deregister<S>(&self, source: &mut S) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        source.deregister(self)
    }

    /// A second handle on the same epoll instance (a `dup` of its descriptor), for another
    /// thread.
    pub fn try_clone(&self) -> io::Result<Registry> {
        Ok(Registry {
            selector: self.selector.try_clone()?,
        })
    }

    /// The `epoll_ctl` every `Source` impl of this crate comes down to.
    #[cfg_attr(not(any(feature = "net", feature = "os-ext")), allow(dead_code))]
    pub(crate) fn ctl(
        &self,
        op: Ctl,
        fd: RegFd,
        token: Token,
        interests: Option<Interest>,
    ) -> io::Result<()> {
        self.selector.ctl(op, fd, token, interests)
    }

    pub(crate) fn selector(&self) -> &Selector {
        &self.selector
    }
}

impl AsRawFd for Registry {
    fn as_raw_fd(&self) -> RawFd {
        self.selector.raw_fd()
    }
}

impl AsFd for Registry {
    /// Panics for a simulated instance, which has no Linux descriptor.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.selector.as_fd("mio::Registry::as_fd")
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("selector", &self.selector)
            .finish()
    }
}
