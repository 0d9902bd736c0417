//! `Interest`: the readiness a registration asks for, and the epoll mask mio makes of it.

use std::fmt;
use std::num::NonZeroU8;
use std::ops;

/// The readiness a registration asks for, as `mio::Interest`. Never empty.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interest(NonZeroU8);

// One bit each; `Debug` and the epoll mask read them back.
const READABLE_BIT: u8 = 0b001;
const WRITABLE_BIT: u8 = 0b010;
const PRIORITY_BIT: u8 = 0b100;

impl Interest {
    /// Readable readiness (`EPOLLIN | EPOLLRDHUP`).
    pub const READABLE: Interest = Interest::from_bits(READABLE_BIT);
    /// Writable readiness (`EPOLLOUT`).
    pub const WRITABLE: Interest = Interest::from_bits(WRITABLE_BIT);
    /// Priority readiness (`EPOLLPRI`), as on Linux and Android.
    pub const PRIORITY: Interest = Interest::from_bits(PRIORITY_BIT);

    const fn from_bits(bits: u8) -> Interest {
        match NonZeroU8::new(bits) {
            Some(bits) => Interest(bits),
            None => panic!("an interest is never empty"),
        }
    }

    /// Both interests.
    #[allow(clippy::should_implement_trait)]
    pub const fn add(self, other: Interest) -> Interest {
        Interest::from_bits(self.0.get() | other.0.get())
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

    /// AIO readiness: never asked for on Linux (mio offers `Interest::AIO` only on the BSDs).
    pub const fn is_aio(self) -> bool {
        false
    }

    /// LIO readiness: never asked for on Linux (mio offers `Interest::LIO` only on FreeBSD).
    pub const fn is_lio(self) -> bool {
        false
    }

    /// Whether priority readiness is asked for.
    pub const fn is_priority(self) -> bool {
        self.0.get() & PRIORITY_BIT != 0
    }

    /// The epoll mask mio's Linux selector registers for this interest: always
    /// edge-triggered.
    pub(crate) fn epoll_bits(self) -> u32 {
        let mut bits = libc::EPOLLET as u32;
        if self.is_readable() {
            bits |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        }
        if self.is_writable() {
            bits |= libc::EPOLLOUT as u32;
        }
        if self.is_priority() {
            bits |= libc::EPOLLPRI as u32;
        }
        bits
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl ops::BitOrAssign for Interest {
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
