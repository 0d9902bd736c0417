//! `Event`: one readiness event, read from epoll's bits the way mio's Linux selector reads
//! them.

use crate::Token;
use std::fmt;

/// One readiness event, as `mio::event::Event`.
#[derive(Clone)]
pub struct Event {
    /// The `EPOLL*` bits the kernel reported.
    bits: u32,
    token: Token,
}

/// Whether `bits` holds every bit of `mask`.
fn has(bits: u32, mask: libc::c_int) -> bool {
    bits & mask as u32 == mask as u32
}

impl Event {
    pub(crate) fn new(bits: u32, token: Token) -> Event {
        Event { bits, token }
    }

    /// The token of the registration.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Readable: `EPOLLIN` or `EPOLLPRI`.
    pub fn is_readable(&self) -> bool {
        has(self.bits, libc::EPOLLIN) || has(self.bits, libc::EPOLLPRI)
    }

    /// Writable: `EPOLLOUT`.
    pub fn is_writable(&self) -> bool {
        has(self.bits, libc::EPOLLOUT)
    }

    /// An error is pending on the source: `EPOLLERR`.
    pub fn is_error(&self) -> bool {
        has(self.bits, libc::EPOLLERR)
    }

    /// The reading half is closed: `EPOLLHUP`, or `EPOLLIN` together with `EPOLLRDHUP`.
    pub fn is_read_closed(&self) -> bool {
        has(self.bits, libc::EPOLLHUP) || has(self.bits, libc::EPOLLIN | libc::EPOLLRDHUP)
    }

    /// The writing half is closed: `EPOLLHUP`, or `EPOLLOUT` with `EPOLLERR`, or `EPOLLERR`
    /// alone.
    pub fn is_write_closed(&self) -> bool {
        has(self.bits, libc::EPOLLHUP)
            || has(self.bits, libc::EPOLLOUT | libc::EPOLLERR)
            || self.bits == libc::EPOLLERR as u32
    }

    /// Priority data: `EPOLLPRI`.
    pub fn is_priority(&self) -> bool {
        has(self.bits, libc::EPOLLPRI)
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
            .field("priority", &self.is_priority())
            .field("epoll", &sim::sched::events_name(self.bits))
            .finish()
    }
}
