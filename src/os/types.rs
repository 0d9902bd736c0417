//! Plain value types of the seam: descriptors, errno, epoll event bits and tokens, all with
//! Linux's numbering so that both backends speak the kernel's language.

use std::fmt;

/// A file descriptor number. It is a plain number, not an owner: see the ownership rule in
/// the [module documentation](super).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Fd(pub i32);

impl fmt::Display for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fd{}", self.0)
    }
}

/// A raw Linux errno value.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub i32);

/// The seam's result type: the value, or the errno the call failed with.
pub type Result<T> = std::result::Result<T, Errno>;

impl Errno {
    /// Resource temporarily unavailable (`EWOULDBLOCK`).
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    /// Bad file descriptor.
    pub const EBADF: Errno = Errno(libc::EBADF);
    /// Connection aborted before `accept` took it.
    pub const ECONNABORTED: Errno = Errno(libc::ECONNABORTED);
    /// Connection refused.
    pub const ECONNREFUSED: Errno = Errno(libc::ECONNREFUSED);
    /// Connection reset by peer.
    pub const ECONNRESET: Errno = Errno(libc::ECONNRESET);
    /// File exists (second `EPOLL_CTL_ADD`).
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    /// Interrupted system call.
    pub const EINTR: Errno = Errno(libc::EINTR);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// The process has no descriptor left.
    pub const EMFILE: Errno = Errno(libc::EMFILE);
    /// The system has no descriptor left.
    pub const ENFILE: Errno = Errno(libc::ENFILE);
    /// Not registered (`EPOLL_CTL_MOD`/`DEL`).
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// Socket not connected.
    pub const ENOTCONN: Errno = Errno(libc::ENOTCONN);
    /// Operation not permitted (a file that cannot be polled).
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// Broken pipe.
    pub const EPIPE: Errno = Errno(libc::EPIPE);
    /// Connection timed out.
    pub const ETIMEDOUT: Errno = Errno(libc::ETIMEDOUT);
    /// Address already in use.
    pub const EADDRINUSE: Errno = Errno(libc::EADDRINUSE);

    /// The symbolic name (`"EAGAIN"`), or `"E<number>"` for one this crate does not name.
    pub fn name(self) -> String {
        let known = [
            Self::EAGAIN,
            Self::EBADF,
            Self::ECONNABORTED,
            Self::ECONNREFUSED,
            Self::ECONNRESET,
            Self::EEXIST,
            Self::EINTR,
            Self::EINVAL,
            Self::EMFILE,
            Self::ENFILE,
            Self::ENOENT,
            Self::ENOTCONN,
            Self::EPERM,
            Self::EPIPE,
            Self::ETIMEDOUT,
            Self::EADDRINUSE,
        ];
        const NAMES: [&str; 16] = [
            "EAGAIN",
            "EBADF",
            "ECONNABORTED",
            "ECONNREFUSED",
            "ECONNRESET",
            "EEXIST",
            "EINTR",
            "EINVAL",
            "EMFILE",
            "ENFILE",
            "ENOENT",
            "ENOTCONN",
            "EPERM",
            "EPIPE",
            "ETIMEDOUT",
            "EADDRINUSE",
        ];
        match known.iter().position(|&e| e == self) {
            Some(i) => NAMES[i].to_string(),
            None => format!("E{}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::error::Error for Errno {}

/// epoll event bits, numbered as in `<sys/epoll.h>`. Used both for the interest passed to
/// `epoll_ctl` (conditions plus modes) and for the conditions `epoll_wait` reports.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Events(pub u32);

impl Events {
    /// No bits: a registration that only hears `ERR` and `HUP`.
    pub const NONE: Events = Events(0);
    /// Readable (`EPOLLIN`).
    pub const IN: Events = Events(libc::EPOLLIN as u32);
    /// Urgent data (`EPOLLPRI`).
    pub const PRI: Events = Events(libc::EPOLLPRI as u32);
    /// Writable (`EPOLLOUT`).
    pub const OUT: Events = Events(libc::EPOLLOUT as u32);
    /// Error (`EPOLLERR`); always reported.
    pub const ERR: Events = Events(libc::EPOLLERR as u32);
    /// Hang-up (`EPOLLHUP`); always reported.
    pub const HUP: Events = Events(libc::EPOLLHUP as u32);
    /// Peer closed its writing half (`EPOLLRDHUP`); reported only when requested.
    pub const RDHUP: Events = Events(libc::EPOLLRDHUP as u32);
    /// Wake only one of several epoll instances watching the file (`EPOLLEXCLUSIVE`).
    pub const EXCLUSIVE: Events = Events(libc::EPOLLEXCLUSIVE as u32);
    /// Disarm after one event until `EPOLL_CTL_MOD` (`EPOLLONESHOT`).
    pub const ONESHOT: Events = Events(libc::EPOLLONESHOT as u32);
    /// Edge-triggered (`EPOLLET`).
    pub const ET: Events = Events(libc::EPOLLET as u32);

    /// The condition bits in the order conformance transcripts print them.
    pub const CONDITIONS: [(Events, &'static str); 6] = [
        (Events::IN, "in"),
        (Events::PRI, "pri"),
        (Events::OUT, "out"),
        (Events::ERR, "err"),
        (Events::HUP, "hup"),
        (Events::RDHUP, "rdhup"),
    ];

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub fn intersects(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Events {
    fn bitor_assign(&mut self, rhs: Events) {
        self.0 |= rhs.0;
    }
}

impl std::ops::BitAnd for Events {
    type Output = Events;
    fn bitand(self, rhs: Events) -> Events {
        Events(self.0 & rhs.0)
    }
}

impl std::ops::Not for Events {
    type Output = Events;
    fn not(self) -> Events {
        Events(!self.0)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prints the set condition bits as `in,out,hup` (in `CONDITIONS` order), then the modes,
/// or `-` when none is set.
impl fmt::Display for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let modes = [
            (Events::ET, "et"),
            (Events::ONESHOT, "oneshot"),
            (Events::EXCLUSIVE, "exclusive"),
        ];
        let names: Vec<&str> = Events::CONDITIONS
            .iter()
            .chain(modes.iter())
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// The user data of a registration (`epoll_event.data.u64`), returned with every event.
///
/// Servers put a slot index in the low half and a generation in the high half, so that an
/// event for a closed connection cannot be mistaken for the one that reused its slot.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Token(pub u64);

impl Token {
    /// A token for slot `index` at `generation`.
    pub fn new(index: u32, generation: u32) -> Token {
        Token(u64::from(generation) << 32 | u64::from(index))
    }

    /// The slot index (low 32 bits).
    pub fn index(self) -> u32 {
        self.0 as u32
    }

    /// The generation (high 32 bits).
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// One event reported by `epoll_wait`.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct EpollEvent {
    /// The conditions that held when the kernel reported the event.
    pub events: Events,
    /// The registration's token.
    pub token: Token,
}

/// An `epoll_ctl` operation.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum CtlOp {
    /// `EPOLL_CTL_ADD`.
    Add,
    /// `EPOLL_CTL_MOD`.
    Mod,
    /// `EPOLL_CTL_DEL`.
    Del,
}

/// Which half of a stream socket `shutdown` closes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Shutdown {
    /// `SHUT_RD`.
    Read,
    /// `SHUT_WR`: the peer reads end of file.
    Write,
    /// `SHUT_RDWR`.
    Both,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_index_and_generation() {
        let token = Token::new(7, 3);
        assert_eq!((token.index(), token.generation()), (7, 3));
        assert_ne!(Token::new(7, 3), Token::new(7, 4));
    }

    #[test]
    fn events_print_in_transcript_order() {
        let all = Events::RDHUP | Events::HUP | Events::IN | Events::OUT | Events::ET;
        assert_eq!(all.to_string(), "in,out,hup,rdhup,et");
        assert_eq!(Events::NONE.to_string(), "-");
    }

    #[test]
    fn errno_names_known_and_unknown_values() {
        assert_eq!(Errno::EAGAIN.name(), "EAGAIN");
        assert_eq!(Errno(9999).name(), "E9999");
    }
}
