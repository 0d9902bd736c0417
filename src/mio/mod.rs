//! `edgesim::mio`: the part of [mio](https://docs.rs/mio)'s API that event loops use, with
//! the same names and signatures, running on the simulator inside a simulated world and on
//! Linux everywhere else.
//!
//! Why: most Rust event loops are written against mio. Changing one line,
//!
//! ```text
//! #[cfg(test)]
//! use edgesim::mio; // instead of the mio crate
//! ```
//!
//! puts such a loop under edgesim's seeded scheduler and simulated kernel (see
//! [`crate::harness`]), with no generic parameter and no rewrite. Outside a simulated world
//! the same types call Linux's epoll and sockets, so one build serves both.
//!
//! # Semantics (as mio documents them)
//!
//! * Every registration is edge-triggered (`EPOLLET`). After a readable (writable) event
//!   the loop must read (write) until the call fails with [`std::io::ErrorKind::WouldBlock`];
//!   a loop that stops earlier may not be told again. In the simulator this is exactly the
//!   bug the harness catches, with its seed.
//! * Spurious events are allowed: an event does not promise that the operation will
//!   succeed. The simulator's Linux model reports an edge on every wakeup of a file (every
//!   data arrival), not only on empty to non-empty.
//! * [`Interest::READABLE`] also asks for `EPOLLRDHUP`, so a peer's `shutdown(Write)` shows
//!   as [`event::Event::is_read_closed`].
//! * Errors are the kernel's errno as [`std::io::Error`]; [`Poll::poll`] may fail with
//!   `Interrupted` (the simulator injects `EINTR` when asked to), which callers retry.
//!
//! # What is not covered
//!
//! UDP, Unix sockets, `SourceFd`, pipes and `mio::unix`, `TcpStream::peek`, `try_io`,
//! `from_std`, `set_ttl`/`ttl`, `AsRawFd`/`FromRawFd` (a simulated descriptor is not a
//! Linux one), `Registry::register` of a source from another `Poll`'s kernel (an error),
//! and the `os-ext` extras. `TCP_NODELAY` is always on (`set_nodelay(false)` is accepted
//! and ignored: it changes latency, not correctness). Objects made inside a simulated world
//! belong to it: keep none of them (in a `static`, say) past the end of the world.

mod event_impl;
pub mod net;
mod sys;

pub use event_impl::{Event, Events};

use crate::os::{CtlOp, EpollEvent, Events as Bits, Fd};
use std::fmt;
use std::io;
use std::num::NonZeroU8;
use std::time::Duration;
use sys::Sys;

/// Readiness events and the [`event::Source`] trait, as in `mio::event`.
pub mod event {
    pub use super::event_impl::{Event, Events, Iter, Source};
}

/// Associates an event with the source it came from, as `mio::Token`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl From<Token> for usize {
    fn from(token: Token) -> usize {
        token.0
    }
}

/// The readiness a registration asks for, as `mio::Interest`. Never empty.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interest(NonZeroU8);

const READABLE_BIT: u8 = 0b001;
const WRITABLE_BIT: u8 = 0b010;
const PRIORITY_BIT: u8 = 0b100;

impl Interest {
    /// Readable readiness (`EPOLLIN | EPOLLRDHUP`).
    pub const READABLE: Interest = Interest(NonZeroU8::MIN);
    /// Writable readiness (`EPOLLOUT`).
    pub const WRITABLE: Interest = match NonZeroU8::new(WRITABLE_BIT) {
        Some(bits) => Interest(bits),
        None => unreachable!(),
    };
    /// Priority readiness (`EPOLLPRI`).
    pub const PRIORITY: Interest = match NonZeroU8::new(PRIORITY_BIT) {
        Some(bits) => Interest(bits),
        None => unreachable!(),
    };

    /// Both interests.
    #[allow(clippy::should_implement_trait)]
    pub const fn add(self, other: Interest) -> Interest {
        match NonZeroU8::new(self.0.get() | other.0.get()) {
            Some(bits) => Interest(bits),
            None => unreachable!(),
        }
    }

    /// `self` without `other`, or `None` if nothing is left.
    pub fn remove(self, other: Interest) -> Option<Interest> {
        NonZeroU8::new(self.0.get() & !other.0.get()).map(Interest)
    }

    /// Whether readable readiness is asked for.
    pub const fn is_readable(self) -> bool {
        self.0.get() & READABLE_BIT != 0
    }

    /// Whether writable readiness is asked for.
    pub const fn is_writable(self) -> bool {
        self.0.get() & WRITABLE_BIT != 0
    }

    /// Whether priority readiness is asked for.
    pub const fn is_priority(self) -> bool {
        self.0.get() & PRIORITY_BIT != 0
    }

    /// The epoll mask mio uses on Linux for this interest: always edge-triggered.
    fn epoll_bits(self) -> Bits {
        let mut bits = Bits::ET;
        if self.is_readable() {
            bits |= Bits::IN | Bits::RDHUP;
        }
        if self.is_writable() {
            bits |= Bits::OUT;
        }
        if self.is_priority() {
            bits |= Bits::PRI;
        }
        bits
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl std::ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_priority(), "PRIORITY"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
        f.write_str(&names.join(" | "))
    }
}

/// Polls for readiness events on the sources registered with its [`Registry`], as
/// `mio::Poll`.
#[derive(Debug)]
pub struct Poll {
    registry: Registry,
    /// The kernel's events before conversion; kept to allocate once.
    scratch: Vec<EpollEvent>,
}

impl Poll {
    /// A new epoll instance, on the simulator inside a simulated world, on Linux otherwise.
    pub fn new() -> io::Result<Poll> {
        let sys = Sys::here();
        let epfd = sys.epoll_create()?;
        Ok(Poll {
            registry: Registry { sys, epfd },
            scratch: Vec::new(),
        })
    }

    /// The registry sources are registered with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits for events, at most `events.capacity()` of them, for at most `timeout` (`None`
    /// waits until one comes). Clears `events` first. Returns `Ok(())` with no events when
    /// the timeout passed, and fails with `Interrupted` when a signal (or, in the simulator,
    /// an injected `EINTR`) cut the wait short.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let registry = &self.registry;
        registry
            .sys
            .epoll_wait(registry.epfd, &mut self.scratch, events.capacity(), timeout)?;
        events.fill(&self.scratch);
        Ok(())
    }
}

/// Registers event sources, as `mio::Registry`.
#[derive(Debug)]
pub struct Registry {
    sys: Sys,
    epfd: Fd,
}

impl Registry {
    /// Registers `source` for `interests`; its events will carry `token`.
    pub fn register<S>(&self, source: &mut S, token: Token, interests: Interest) -> io::Result<()>
    where
        S: event::Source + ?Sized,
    {
        source.register(self, token, interests)
    }

    /// Changes the token and interests of a registered `source`.
    pub fn reregister<S>(&self, source: &mut S, token: Token, interests: Interest) -> io::Result<()>
    where
        S: event::Source + ?Sized,
    {
        source.reregister(self, token, interests)
    }

    /// Removes a registered `source`.
    pub fn deregister<S>(&self, source: &mut S) -> io::Result<()>
    where
        S: event::Source + ?Sized,
    {
        source.deregister(self)
    }

    /// A second handle on the same epoll instance (a `dup` of its descriptor), for another
    /// thread.
    pub fn try_clone(&self) -> io::Result<Registry> {
        let epfd = self.sys.dup(self.epfd)?;
        Ok(Registry {
            sys: self.sys.clone(),
            epfd,
        })
    }

    /// The `epoll_ctl` every facade source's `Source` impl comes down to.
    pub(crate) fn ctl(
        &self,
        source_sys: &Sys,
        op: CtlOp,
        fd: Fd,
        token: Token,
        interests: Option<Interest>,
    ) -> io::Result<()> {
        if !self.sys.same_kernel(source_sys) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a source made in a simulated world cannot be registered with a Linux Poll, nor the other way round",
            ));
        }
        let bits = interests.map_or(Bits::NONE, Interest::epoll_bits);
        self.sys
            .epoll_ctl(self.epfd, op, fd, bits, crate::os::Token(token.0 as u64))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.sys.close_on_drop(self.epfd);
    }
}

/// Wakes a [`Poll`] from another thread, as `mio::Waker`: an eventfd registered
/// edge-triggered for reading, so every [`Waker::wake`] yields one event with its token.
#[derive(Debug)]
pub struct Waker {
    sys: Sys,
    fd: Fd,
}

impl Waker {
    /// A waker whose events carry `token` on `registry`'s `Poll`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Waker> {
        let sys = registry.sys.clone();
        let fd = sys.eventfd()?;
        let waker = Waker { sys, fd };
        registry.ctl(&waker.sys, CtlOp::Add, fd, token, Some(Interest::READABLE))?;
        Ok(waker)
    }

    /// Makes the `Poll` return an event with the waker's token.
    pub fn wake(&self) -> io::Result<()> {
        match self.sys.eventfd_write(self.fd, 1) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // The counter is full: nobody has read it since countless wakes. Resetting
                // it and writing again still raises the edge the poller waits for.
                self.sys.eventfd_read(self.fd)?;
                self.sys.eventfd_write(self.fd, 1)
            }
            other => other,
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.sys.close_on_drop(self.fd);
    }
}

#[cfg(test)]
mod tests;
