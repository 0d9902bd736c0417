//! Owning constructors: the calls of this crate that create descriptors, returning each new
//! descriptor as an [`OwnedFd`] instead of a bare number.
//!
//! Why: code that keeps descriptors in `std` types (edgesim's `mio` crate does, as mio does)
//! needs an owner for every descriptor a syscall hands back, and turning a number into an
//! owner is `unsafe` (`FromRawFd`). Doing it here, right where the syscall returned the
//! number, keeps that `unsafe` inside this crate and makes it obviously sound: nobody else
//! has seen the descriptor yet.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::{epoll, io, net, RawFd, Result};

/// Takes ownership of a descriptor a creating syscall of this crate just returned.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor that a syscall returned a moment ago and that
    // has been handed to nobody else, so this owner is its only one.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// [`epoll::epoll_create`], owned.
pub fn epoll_create() -> Result<OwnedFd> {
    epoll::epoll_create().map(own)
}

/// [`io::eventfd`], owned.
pub fn eventfd() -> Result<OwnedFd> {
    io::eventfd().map(own)
}

/// [`io::pipe`], owned: `(read end, write end)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    io::pipe().map(|(read, write)| (own(read), own(write)))
}

/// [`net::listen`], owned.
pub fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> Result<OwnedFd> {
    net::listen(addr, backlog, reuse_port).map(own)
}

/// [`net::accept`], owned.
pub fn accept(fd: RawFd) -> Result<(OwnedFd, SocketAddr)> {
    net::accept(fd).map(|(new, peer)| (own(new), peer))
}

/// [`net::connect`], owned.
pub fn connect(addr: SocketAddr) -> Result<OwnedFd> {
    net::connect(addr).map(own)
}
