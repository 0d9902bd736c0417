//! The deterministic scheduler: simulated threads are stackful coroutines that run one at a
//! time on the calling OS thread; every system call is a preemption point at which the
//! strategy, driven by one ChaCha stream, picks the thread that runs next.
//!
//! Why coroutines and not OS threads passing a baton: a resume and suspend pair of
//! `corosensei` coroutines costs nanoseconds, an OS-thread hand-off microseconds, and the
//! simulator has to switch at millions of preemption points per second.
//!
//! The world lives in a thread-local while [`run`] executes, so the handle simulated code
//! holds ([`crate::sys`]) is a zero-sized value: the seam's `SimOs` is `Copy`, `Send` and
//! `Sync` without locks, and one OS thread can run one world at a time (`explore --jobs N`
//! runs N worlds on N OS threads).

mod access;
mod decisions;
mod exhaustive;
mod host;
mod interest;
mod observe;
mod seed;
mod strategy;
mod trace;
mod world;

pub use decisions::Decisions;
pub use exhaustive::{Schedule, Search, SearchEnd};
pub use host::{run, Outcome, Report};
pub use observe::{Hazard, SharedWakeup};
pub use seed::derive_seed;
pub use strategy::Strategy;
pub use trace::{events_name, Op, Record, Trace};
pub use world::{
    in_world, virtual_now_ns, Block, SchedFaults, ThreadInfo, ThreadState, WorldConfig,
};
pub use world::{
    BUSY_RETRIES_MAX, HOLD_AT_SYNC_FACTOR, HOLD_AT_SYNC_P_MAX, HOLD_NS_MAX, HOLD_NS_MIN,
};

pub(crate) use access::Access;
pub(crate) use host::{block, preempt, preempt_then};
pub(crate) use world::{with_world, Wake, World};

#[cfg(test)]
mod tests;
