//! edgesim's `mio`: the public API of [mio](https://docs.rs/mio) 1.x for Linux (features
//! `os-poll`, `os-ext`, `net`), running on edgesim's simulated kernel inside a simulated
//! world and on Linux everywhere else.
//!
//! Why: most Rust network code reaches epoll through mio, often without naming it (tokio,
//! hyper and axum do). A workspace that adds
//!
//! ```toml
//! [patch.crates-io]
//! mio = { path = "path/to/edgesim/mio" }
//! ```
//!
//! builds every crate that depends on mio (tokio included) against this crate, unchanged.
//! Code run by edgesim's harness inside a seeded simulated world then talks to the
//! simulated kernel, and the same build talks to Linux outside one. `docs/UNMODIFIED.md` in
//! edgesim's repository is the guide, with a table of every public item of mio 1.x and
//! where it works.
//!
//! # Backends
//!
//! Each object picks its backend when it is created: the simulator if a simulated world
//! runs on the calling OS thread (`sim::sched::in_world()`), Linux otherwise. It keeps that
//! backend for its life. A simulated source cannot be registered with a Linux `Poll`, nor
//! the other way round (`InvalidInput`).
//!
//! # What is covered
//!
//! * In both backends: `Poll`, `Registry` (`register`, `reregister`, `deregister`,
//!   `try_clone`), `Events`, `event::{Event, Iter, Source}`, `Interest`, `Token`, `Waker`,
//!   `net::TcpListener`, `net::TcpStream`, `net::UnixStream::pair`, `unix::pipe`,
//!   `unix::SourceFd`, `Read`/`Write` for the types and their shared references, and the
//!   raw-descriptor conversions (with the rules below).
//! * On Linux only (in a simulated world they fail with [`std::io::ErrorKind::Unsupported`],
//!   and the message names the call): `net::UdpSocket`, `net::UnixListener`,
//!   `net::UnixDatagram`, `UnixStream::connect`/`connect_addr`/`local_addr`/`peer_addr`,
//!   `TcpStream::peek`, `set_ttl`/`ttl`, and clearing `O_NONBLOCK` on a pipe.
//! * `set_nodelay` is accepted and ignored in the simulator, whose TCP always behaves as if
//!   `TCP_NODELAY` were set; on Linux it is the socket option (edgesim's sockets start with
//!   it on, where mio's start with it off).
//!
//! # Semantics (as mio documents them for Linux)
//!
//! * Registrations are edge-triggered (`EPOLLET`). After a readable (writable) event, read
//!   (write) until the call fails with `WouldBlock`; a loop that stops earlier may not be
//!   told again, which is exactly the bug edgesim's harness catches with its seed.
//! * Events may be spurious. `Interest::READABLE` also asks for `EPOLLRDHUP`, so a peer's
//!   `shutdown(Write)` shows as [`event::Event::is_read_closed`].
//! * Errors are the kernel's errno as `std::io::Error`: `EAGAIN` is `WouldBlock`, and
//!   `EINTR` is `Interrupted`, which [`Poll::poll`] returns to its caller as mio does (the
//!   simulator injects it when asked to; tokio's driver retries it).
//! * Poll timeouts are rounded up to whole milliseconds, as mio rounds them for
//!   `epoll_wait`, on both backends.
//!
//! # Descriptors
//!
//! A simulated descriptor is a number in the simulated kernel's table, not a Linux
//! descriptor. `AsRawFd` and `IntoRawFd` show simulated descriptor `n` as
//! [`SIM_FD_BASE`]` + n`, a number Linux never uses, so passing one to a real syscall by
//! mistake fails with `EBADF` instead of touching an unrelated real descriptor; `FromRawFd`
//! inside a world takes such a number back. `AsFd`, `From<T> for OwnedFd` and the `From<T>`
//! conversions to std sockets panic for a simulated object: a `BorrowedFd` or `OwnedFd`
//! must be a real open descriptor, and closing one made up would close a real descriptor.
//! Inside a world, `from_std`, `From<OwnedFd>` and `FromRawFd` of a Linux descriptor give
//! an object that only closes it: every call on it fails with `Unsupported` naming the
//! constructor, since a real socket cannot take part in a simulated run.
//!
//! Objects made inside a simulated world belong to it: keep none of them past its end.
//!
//! # Differences from mio not visible in its API
//!
//! * In the simulator, a registration's `epoll_event.data` is a registration number that
//!   `Poll::poll` maps back to the token, so that traces do not depend on token values that
//!   are heap addresses (tokio's).
//! * mio checks in debug builds that a source is not registered with two `Poll`s; this
//!   crate lets the kernel decide (Linux accepts it).

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

#[macro_use]
mod macros;

mod interest;
mod poll;
mod sys;
mod token;
mod waker;

pub mod event;
#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "os-ext")]
pub mod unix;

#[doc(no_inline)]
pub use event::Events;
pub use interest::Interest;
pub use poll::{Poll, Registry};
pub use sys::SIM_FD_BASE;
pub use token::Token;
pub use waker::Waker;

mod clock;
#[doc(hidden)]
pub use clock::__private;

#[cfg(test)]
mod tests;
