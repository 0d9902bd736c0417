//! The Go-style netpoller: blocking-looking `accept`, `read` and `write` on edge-triggered
//! epoll, with Go's per-descriptor read and write tokens (pdNil, pdReady, pdWait, parked),
//! generic over the [`Os`](crate::os::Os) seam so the same code runs in the simulator and on
//! Linux.
//!
//! # Brief overview
//!
//! Go's `net` package registers every socket once for `IN|OUT|RDHUP|ET` and lets a goroutine
//! that got `EAGAIN` park until the runtime's netpoller, the one thread in `epoll_wait`, says
//! the descriptor is ready. The hard part is the hand-off between those two threads: an edge
//! is reported once, and it may arrive while nobody is parked yet. Go's answer is a binary
//! semaphore per direction, and this module has the same one:
//!
//! - `pd.rs`: [`PollDesc`], the tokens and their transitions (`netpollblock`,
//!   `netpollunblock`, `netpollcheckerr`, `poll_runtime_pollReset`), closing and deadlines.
//! - `poller.rs`: [`Netpoll`], the netpoller thread (`netpoll`, `netpollready`), the
//!   registration table keyed by descriptor and sequence number, and its shutdown eventfd.
//! - `netfd.rs`: [`NetFd`], the blocking-looking descriptor (`internal/poll.FD`).
//! - `echo.rs`: [`EchoServer`], one accepting thread and one thread per connection.
//! - `diagnose.rs`: the stall diagnosis that names the parked thread and the interleaving
//!   that stranded it, read back from the simulator's trace.
//!
//! The deliberately wrong variants ([`Flaw`]) are selected per server; the default is the
//! correct netpoller. docs/NETPOLL.md maps Go's runtime functions to this code.

mod diagnose;
mod echo;
mod netfd;
mod pd;
mod poller;

pub use diagnose::stall as diagnose_stall;
pub use echo::{EchoServer, NetpollConfig, StartError};
pub use netfd::{NetError, NetFd, PollHandle};
pub use pd::{Mode, PollDesc, PD_NIL, PD_PARKED, PD_READY, PD_WAIT};
pub use poller::Netpoll;

use std::fmt;

/// A deliberately wrong netpoller, selected by a scenario's `flaw` under `model = "netpoll"`.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Flaw {
    /// There is no pending-readiness token: the notifier wakes a parked thread but drops a
    /// readiness that finds nobody parked, so an edge between `EAGAIN` and the park is lost.
    NoReadyToken,
    /// The token is cleared after `EAGAIN` instead of before the syscall, erasing an edge
    /// that arrived in between (the shape of tokio issue 6133).
    ClearAfterEagain,
    /// The waiter checks the token and then stores "parked" with a plain store, without
    /// announcing pdWait first, so a readiness set between the check and the store is
    /// overwritten.
    NoPdwait,
}

impl Flaw {
    /// Every flaw, in declaration order.
    pub const ALL: &'static [Flaw] = &[Flaw::NoReadyToken, Flaw::ClearAfterEagain, Flaw::NoPdwait];

    /// The name scenario files use (`no-ready-token`).
    pub fn name(self) -> &'static str {
        match self {
            Flaw::NoReadyToken => "no-ready-token",
            Flaw::ClearAfterEagain => "clear-after-eagain",
            Flaw::NoPdwait => "no-pdwait",
        }
    }
}

impl fmt::Display for Flaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
