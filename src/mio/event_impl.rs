//! Readiness events as mio reports them: `Event` reads epoll's bits the way mio's epoll
//! selector documents it, `Events` is the bounded buffer `Poll::poll` fills, and `Source` is
//! the trait registrable types implement.

use super::{Interest, Registry, Token};
use crate::os::{EpollEvent, Events as Bits};
use std::fmt;
use std::io;

/// One readiness event, as `mio::event::Event`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Event {
    bits: Bits,
    token: Token,
}

impl Event {
    /// The token of the registration.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Readable (`EPOLLIN` or `EPOLLPRI`).
    pub fn is_readable(&self) -> bool {
        self.bits.intersects(Bits::IN | Bits::PRI)
    }

    /// Writable (`EPOLLOUT`).
    pub fn is_writable(&self) -> bool {
        self.bits.contains(Bits::OUT)
    }

    /// An error is pending on the socket (`EPOLLERR`).
    pub fn is_error(&self) -> bool {
        self.bits.contains(Bits::ERR)
    }

    /// The reading half is closed: `EPOLLHUP`, or `EPOLLIN` together with `EPOLLRDHUP`.
    pub fn is_read_closed(&self) -> bool {
        self.bits.contains(Bits::HUP) || self.bits.contains(Bits::IN | Bits::RDHUP)
    }

    /// The writing half is closed: `EPOLLHUP`, or `EPOLLOUT` with `EPOLLERR`, or `EPOLLERR`
    /// alone.
    pub fn is_write_closed(&self) -> bool {
        self.bits.contains(Bits::HUP)
            || self.bits.contains(Bits::OUT | Bits::ERR)
            || self.bits == Bits::ERR
    }

    /// Priority data (`EPOLLPRI`).
    pub fn is_priority(&self) -> bool {
        self.bits.contains(Bits::PRI)
    }

    /// AIO readiness: never on epoll.
    pub fn is_aio(&self) -> bool {
        false
    }

    /// LIO readiness: never on epoll.
    pub fn is_lio(&self) -> bool {
        false
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token)
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("error", &self.is_error())
            .field("read_closed", &self.is_read_closed())
            .field("write_closed", &self.is_write_closed())
            .field("epoll", &self.bits)
            .finish()
    }
}

/// The events one `Poll::poll` returned, as `mio::Events`; holds at most its capacity.
#[derive(Clone, Debug)]
pub struct Events {
    events: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// A buffer for at most `capacity` events per poll.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            events: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// The most events one poll returns.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the last poll returned nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, in the order the kernel reported them.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.events.iter(),
        }
    }

    /// Forgets the events.
    pub fn clear(&mut self) {
        self.events.clear();
    }

    pub(super) fn fill(&mut self, raw: &[EpollEvent]) {
        debug_assert!(
            raw.len() <= self.capacity,
            "the kernel returned more than asked"
        );
        self.events.extend(raw.iter().map(|e| Event {
            bits: e.events,
            token: Token(e.token.0 as usize),
        }));
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`Events`].
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, Event>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Event;
    fn next(&mut self) -> Option<&'a Event> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Something that can be registered with a [`Registry`], as `mio::event::Source`. Call the
/// `Registry` methods rather than these; implement it by delegating to a facade socket.
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
