//! Thin safe wrappers over exactly the Linux syscalls edgesim's `Os` seam needs: epoll,
//! non-blocking TCP, unix socket pairs, pipes, eventfd, and two process helpers for tests
//! (the descriptor limit and a count of open descriptors).
//!
//! Every wrapper takes and returns raw descriptor numbers ([`RawFd`]) and never owns them:
//! the caller decides when a descriptor is closed, exactly as with the syscalls themselves.
//! Errors carry the raw errno ([`Errno`]), untranslated, so that the real kernel and the
//! simulated one can be compared value for value.
//!
//! All `unsafe` code of the real backend lives in this crate. Every syscall goes through the
//! one `syscall!` macro, which turns Linux's `-1`-plus-`errno` convention into an `Err`.
//!
//! Map of the modules:
//! - [`alloc`]: a counting global allocator (heap bytes per thread, for run memory).
//! - [`clock`]: `clock_gettime` for a program that replaces the C library's.
//! - [`epoll`]: `epoll_create1`, `epoll_ctl`, `epoll_wait`.
//! - [`net`]: TCP listen, accept, connect, addresses, `SO_ERROR`, reset, socket pairs.
//! - [`io`]: read, write, writev, shutdown, close, dup, queue sizes, pipes, eventfd.
//! - [`owned`]: the calls that create descriptors, returning owned ones (`OwnedFd`).
//! - [`process`]: the `RLIMIT_NOFILE` soft limit and the open descriptors of this process.
//!
//! # SIGPIPE
//!
//! Writing to a socket or pipe whose reader is gone raises `SIGPIPE`, which kills the process
//! by default. Socket writes use `send`/`sendmsg` with `MSG_NOSIGNAL`, so they never signal,
//! whatever the process's disposition. Pipes have no such flag, so the first write that is
//! not to a socket sets `SIGPIPE` to be ignored process-wide ([`process::ignore_sigpipe`]);
//! the Rust runtime does the same before `main` in every Rust program, so this only matters
//! when the crate is embedded in a foreign host. Either way a write to a dead peer fails with
//! `EPIPE` instead of killing the process.

#![deny(missing_docs)]

use std::fmt;

pub use std::os::fd::RawFd;

// Calls a `libc` function and turns its `-1` return into `Err(Errno::last())`.
//
// This is the crate's single place for that convention. The call is `unsafe`; every use
// of the macro must be preceded by a `// SAFETY:` comment saying why its arguments are
// sound (valid pointers of the right length, no aliasing of Rust-owned memory).
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        let result = unsafe { ::libc::$fn($($arg),*) };
        if result == -1 {
            Err($crate::Errno::last())
        } else {
            Ok(result)
        }
    }};
}

pub mod alloc;
pub mod clock;
pub mod epoll;
pub mod io;
pub mod net;
pub mod owned;
pub mod process;

#[cfg(test)]
mod tests;

/// A raw Linux errno value, as the failing syscall left it.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub i32);

/// The result of a wrapped syscall: the value, or the errno it failed with.
pub type Result<T> = std::result::Result<T, Errno>;

impl Errno {
    /// The errno the calling thread holds right now (read straight after a failed call).
    pub fn last() -> Errno {
        // `last_os_error` reads the thread's errno; it is always set after a `-1` return.
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({})", self.0)
    }
}

/// Prints the C library's description and the number, e.g. `Resource temporarily
/// unavailable (os error 11)`.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&std::io::Error::from_raw_os_error(self.0), f)
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(errno: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(errno.0)
    }
}
