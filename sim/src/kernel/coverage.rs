//! Coverage counters of the kernel's edge-triggered corner cases: how often a run reached
//! each situation where an ET reactor can go wrong (a partial read before the next wait, an
//! arrival coalesced into an item already queued, a ONESHOT re-arm with data pending...).
//!
//! `edgesim explore --coverage` sums them over seeds, so a seed range that never reaches a
//! case says so instead of passing quietly. The counters live in a thread-local (one world
//! runs per OS thread at a time, see `sched`), so the kernel's hot paths pay one increment
//! and no argument threading; [`take`] reads and clears them after a run.

use std::cell::Cell;

/// An edge-triggered corner case.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Case {
    /// A read left bytes in the receive queue (the reader stopped before `EAGAIN`).
    PartialReadBeforeWait,
    /// Data arrived for an item already on the ready list: the wakeups coalesce.
    ArrivalWhileQueued,
    /// Data arrived on a receive queue that already held unread bytes.
    ArrivalOnNonEmpty,
    /// A queued item had nothing left to report when `epoll_wait` scanned it and was
    /// dropped (its readiness went stale).
    StaleReadinessDropped,
    /// `EPOLL_CTL_MOD` re-armed a ONESHOT item whose file was already ready.
    OneshotRearmWithData,
    /// `EPOLL_CTL_MOD` on an ET item whose file was ready (the MOD queues it).
    ModRearmUnderEt,
    /// `epoll_wait` returned `maxevents` items and left ready ones for the next call.
    MaxeventsCarryOver,
    /// A FIN arrived while received bytes were still unread.
    FinWithUnreadData,
    /// A reset arrived (or was raised) while received bytes were still unread.
    RstWithUnreadData,
    /// Write space opened on a socket whose send buffer had been full (`EPOLLOUT` after a
    /// write hit `EAGAIN`).
    EpolloutAfterFull,
    /// `accept` ran with more than one connection pending.
    AcceptWithSeveralPending,
    /// `accept` failed with `EMFILE` (or `ENFILE`).
    EmfileOnAccept,
    /// An eventfd was written while its counter was already non-zero.
    EventfdCoalescing,
    /// A descriptor number was handed out again after a close.
    FdNumberReuse,
}

/// Every case with its name in the coverage table, in table order.
pub const CASES: [(Case, &str); 14] = [
    (Case::PartialReadBeforeWait, "partial read before wait"),
    (Case::ArrivalWhileQueued, "arrival while queued (coalesced)"),
    (Case::ArrivalOnNonEmpty, "arrival on a non-empty buffer"),
    (
        Case::StaleReadinessDropped,
        "stale readiness dropped at report",
    ),
    (
        Case::OneshotRearmWithData,
        "ONESHOT re-arm with data pending",
    ),
    (Case::ModRearmUnderEt, "MOD re-arm under ET"),
    (Case::MaxeventsCarryOver, "maxevents carry-over"),
    (Case::FinWithUnreadData, "FIN with unread data"),
    (Case::RstWithUnreadData, "RST with unread data"),
    (Case::EpolloutAfterFull, "EPOLLOUT after a full buffer"),
    (
        Case::AcceptWithSeveralPending,
        "accept with several pending",
    ),
    (Case::EmfileOnAccept, "EMFILE on accept"),
    (Case::EventfdCoalescing, "eventfd coalescing"),
    (Case::FdNumberReuse, "fd number reuse"),
];

/// Counts per case, indexed by `Case as usize`.
pub type Counts = [u64; CASES.len()];

thread_local! {
    static COUNTS: Cell<Counts> = const { Cell::new([0; CASES.len()]) };
}

/// Counts one occurrence of `case` in the world running on this OS thread.
#[inline]
pub fn hit(case: Case) {
    COUNTS.with(|counts| {
        let mut now = counts.get();
        now[case as usize] += 1;
        counts.set(now);
    });
}

/// The counts so far on this OS thread, cleared for the next run.
pub fn take() -> Counts {
    COUNTS.with(|counts| counts.replace([0; CASES.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_case_once_in_declaration_order() {
        for (idx, (case, _)) in CASES.iter().enumerate() {
            assert_eq!(*case as usize, idx);
        }
    }

    #[test]
    fn take_returns_the_hits_and_clears_them() {
        take();
        hit(Case::FdNumberReuse);
        hit(Case::FdNumberReuse);
        let counts = take();
        assert_eq!(counts[Case::FdNumberReuse as usize], 2);
        assert_eq!(counts.iter().sum::<u64>(), 2);
        assert_eq!(take().iter().sum::<u64>(), 0);
    }
}
