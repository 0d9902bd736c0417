//! The poll descriptor: one per registered descriptor, with a read token and a write token
//! whose states and transitions are those of Go's `pollDesc.rg` and `pollDesc.wg`.
//!
//! A token is a binary semaphore between exactly two parties, the thread that waits for the
//! direction and the netpoller that reports it:
//!
//! - [`PD_NIL`]: nothing pending, nobody waiting;
//! - [`PD_READY`]: a readiness arrived while nobody was parked; the next waiter consumes it
//!   instead of sleeping;
//! - [`PD_WAIT`]: a thread has decided to park but has not committed yet; a readiness that
//!   arrives now turns the token to ready and the commit fails;
//! - [`PD_PARKED`]: the thread in the direction's waiter slot sleeps; the notifier takes the
//!   token and unparks it.
//!
//! The values are small on purpose: they are what the simulator's trace prints for every
//! atomic access (`atomic(3,2) = 0` is a compare-and-swap to pdWait that found pdNil).

use super::Flaw;
use crate::os::{Fd, Os, OsAtomic, OsMutex, OsThread};
use std::fmt;
use std::time::Duration;

/// Nothing pending, nobody waiting.
pub const PD_NIL: u64 = 0;
/// A readiness is pending: the next waiter consumes it and retries the syscall.
pub const PD_READY: u64 = 1;
/// A thread is about to park (Go's pdWait).
pub const PD_WAIT: u64 = 2;
/// A thread is parked; it is the one in the direction's waiter slot (Go stores the G).
pub const PD_PARKED: u64 = 3;

/// Set in a direction's deadline word once the descriptor is closing.
pub(super) const CLOSING_BIT: u64 = 1 << 63;

/// A direction of a descriptor.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Readable (and, for a listener, a connection to accept): Go's `'r'`.
    Read,
    /// Writable: Go's `'w'`.
    Write,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Read => "read",
            Mode::Write => "write",
        })
    }
}

/// Why a wait ended without readiness (Go's `netpollcheckerr` codes).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum PollErr {
    /// The descriptor is being closed (`pollErrClosing`).
    Closing,
    /// The direction's deadline passed (`pollErrTimeout`).
    Timeout,
}

/// One direction: its token, its deadline word and the slot naming its waiter.
struct Direction<O: Os> {
    /// The semaphore: one of the `PD_*` states.
    token: O::Atomic,
    /// [`CLOSING_BIT`] plus the deadline as `now` in ns plus one (0: no deadline). Keeping
    /// both in one word makes `check_err` a single load, as Go's `atomicInfo` does.
    deadline: O::Atomic,
    /// The thread that announced pdWait last. It is written before the announcement, so the
    /// notifier that sees [`PD_PARKED`] finds the right thread (only one waiter per
    /// direction may exist: a second one is Go's "double wait").
    waiter: O::Mutex<Option<O::Thread>>,
}

/// Go's `pollDesc`: the per-descriptor state shared by its user threads and the netpoller.
pub struct PollDesc<O: Os> {
    fd: Fd,
    /// Go's `fdseq`: which registration of `fd` this is, carried in every epoll token so that
    /// an event for an earlier descriptor with the same number is dropped.
    seq: u32,
    read: Direction<O>,
    write: Direction<O>,
}

impl<O: Os> PollDesc<O> {
    /// A fresh descriptor state for registration `seq` of `fd`.
    pub(crate) fn new(os: &O, fd: Fd, seq: u32) -> PollDesc<O> {
        let direction = || Direction {
            token: os.atomic(PD_NIL),
            deadline: os.atomic(0),
            waiter: os.mutex(None),
        };
        PollDesc {
            fd,
            seq,
            read: direction(),
            write: direction(),
        }
    }

    /// The descriptor.
    pub fn fd(&self) -> Fd {
        self.fd
    }

    /// The registration's sequence number.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    fn direction(&self, mode: Mode) -> &Direction<O> {
        match mode {
            Mode::Read => &self.read,
            Mode::Write => &self.write,
        }
    }

    /// Go's `netpollcheckerr`: closing first, then the deadline. Returns the deadline (as a
    /// time on `os.now()`'s clock) so a waiter can bound its park.
    pub(crate) fn check_err(&self, os: &O, mode: Mode) -> Result<Option<Duration>, PollErr> {
        let word = self.direction(mode).deadline.load();
        if word & CLOSING_BIT != 0 {
            return Err(PollErr::Closing);
        }
        let deadline = decode_deadline(word);
        match deadline {
            Some(at) if os.now() >= at => Err(PollErr::Timeout),
            _ => Ok(deadline),
        }
    }

    /// Go's `poll_runtime_pollReset` (prepareRead/prepareWrite): called before the first
    /// syscall attempt, never after `EAGAIN`. A readiness older than this is irrelevant, as
    /// the syscall that follows sees the socket's real state; a newer one lands in the token.
    pub(crate) fn reset(&self, os: &O, mode: Mode) -> Result<(), PollErr> {
        self.check_err(os, mode)?;
        self.direction(mode).token.store(PD_NIL);
        Ok(())
    }

    /// Stores pdNil without any check: only the `clear-after-eagain` flaw calls this, after
    /// `EAGAIN`, and so erases an edge that arrived between the syscall and here.
    pub(crate) fn clear_token(&self, mode: Mode) {
        self.direction(mode).token.store(PD_NIL);
    }

    /// Go's `poll_runtime_pollWait`: returns once the direction may be ready (the caller
    /// retries its syscall), or with the reason it never will be.
    pub(crate) fn wait(&self, os: &O, mode: Mode, flaw: Option<Flaw>) -> Result<(), PollErr> {
        self.check_err(os, mode)?;
        while !self.block(os, mode, flaw) {
            // Woken without readiness: by a close, a deadline, a deadline change, or (in
            // the simulator) a spurious return from park. Only the first two are final.
            self.check_err(os, mode)?;
        }
        Ok(())
    }

    /// Go's `netpollblock`: true if a readiness was consumed, false if the wait ended for
    /// another reason (closing, deadline) that the caller must check.
    fn block(&self, os: &O, mode: Mode, flaw: Option<Flaw>) -> bool {
        if flaw == Some(Flaw::NoPdwait) {
            return self.block_without_pdwait(os, mode);
        }
        let direction = self.direction(mode);
        // The waiter slot is filled before pdWait is announced, so a notifier that later
        // sees "parked" finds this thread there.
        direction.waiter.lock(|slot| *slot = Some(os.current()));
        loop {
            match direction.token.compare_exchange(PD_READY, PD_NIL) {
                // A readiness came while nobody waited: consume it instead of sleeping.
                Ok(_) => return true,
                Err(PD_NIL) => {
                    if direction.token.compare_exchange(PD_NIL, PD_WAIT).is_ok() {
                        break;
                    }
                    // The notifier turned it to ready in between; consume that.
                }
                Err(other) => panic!(
                    "double wait on {} for {mode}: the token is {other}",
                    self.fd
                ),
            }
        }
        // pdWait is published; closing and deadlines are checked only now, mirroring the
        // closer and the deadline setter, which store first and look at the token second.
        let deadline = self.check_err(os, mode);
        if let Ok(deadline) = deadline {
            // Go's netpollblockcommit: the park happens only if nothing changed the token
            // since pdWait was announced.
            if direction.token.compare_exchange(PD_WAIT, PD_PARKED).is_ok() {
                self.sleep(os, mode, deadline);
            }
        }
        // Any state may be found here: pdWait if the park was skipped, "parked" if the
        // thread timed out by itself (Go's timers unblock instead), ready or nil if the
        // notifier or a closer got there first. Only ready means "retry the syscall".
        direction.token.swap(PD_NIL) == PD_READY
    }

    /// The `no-pdwait` flaw: check, then park with a plain store. A readiness set between
    /// the load and the store is overwritten by the store, and the thread sleeps on it.
    fn block_without_pdwait(&self, os: &O, mode: Mode) -> bool {
        let direction = self.direction(mode);
        direction.waiter.lock(|slot| *slot = Some(os.current()));
        if direction.token.load() == PD_READY {
            direction.token.store(PD_NIL);
            return true;
        }
        if let Ok(deadline) = self.check_err(os, mode) {
            direction.token.store(PD_PARKED);
            self.sleep(os, mode, deadline);
        }
        direction.token.swap(PD_NIL) == PD_READY
    }

    /// Parks until the token leaves [`PD_PARKED`] (someone unblocked this thread) or the
    /// deadline passes. `park` may return spuriously, so the token is the only proof of a
    /// wakeup.
    fn sleep(&self, os: &O, mode: Mode, mut deadline: Option<Duration>) {
        let direction = self.direction(mode);
        loop {
            let timeout = match deadline {
                Some(at) => match at.checked_sub(os.now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return,
                },
                None => None,
            };
            os.park(timeout);
            if direction.token.load() != PD_PARKED {
                return;
            }
            // Still parked: a timeout or a spurious return. The deadline may have moved.
            match decode_deadline(direction.deadline.load()) {
                Some(at) if os.now() >= at => return,
                other => deadline = other,
            }
        }
    }

    /// Go's `netpollunblock`: the notifier's (or closer's) transition. With `ioready` the
    /// token becomes ready; without it (close, deadline change) a waiter is released with no
    /// readiness. Returns the thread to unpark, if one was parked.
    pub(crate) fn unblock(
        &self,
        mode: Mode,
        ioready: bool,
        flaw: Option<Flaw>,
    ) -> Option<O::Thread> {
        let direction = self.direction(mode);
        loop {
            let old = direction.token.load();
            if old == PD_READY {
                // Already pending: edges coalesce, the waiter retries until EAGAIN anyway.
                return None;
            }
            if old == PD_NIL && !ioready {
                return None;
            }
            if flaw == Some(Flaw::NoReadyToken) && ioready && old != PD_PARKED {
                // The flaw: nobody sleeps yet, so the readiness is dropped on the floor.
                return None;
            }
            let new = if ioready { PD_READY } else { PD_NIL };
            if direction.token.compare_exchange(old, new).is_ok() {
                if old != PD_PARKED {
                    // pdWait: the waiter's commit will fail and it will not sleep.
                    return None;
                }
                return direction.waiter.lock(|slot| slot.clone());
            }
        }
    }

    /// Go's `pollUnblock` (the first half of `Close`): marks both directions closing, then
    /// releases their waiters, which see the closing error.
    pub(crate) fn evict(&self) {
        for mode in [Mode::Read, Mode::Write] {
            update(&self.direction(mode).deadline, |word| word | CLOSING_BIT);
        }
        for mode in [Mode::Read, Mode::Write] {
            if let Some(thread) = self.unblock(mode, false, None) {
                thread.unpark();
            }
        }
    }

    /// Go's `poll_runtime_pollSetDeadline` for one direction: stores the new deadline
    /// (absolute, on `os.now()`'s clock; `None` clears it), then releases a parked waiter so
    /// it re-evaluates its timeout.
    pub(crate) fn set_deadline(&self, mode: Mode, deadline: Option<Duration>) {
        let encoded = encode_deadline(deadline);
        update(&self.direction(mode).deadline, |word| {
            (word & CLOSING_BIT) | encoded
        });
        if let Some(thread) = self.unblock(mode, false, None) {
            thread.unpark();
        }
    }
}

/// Replaces `cell`'s value by `f(value)` with a compare-and-swap loop.
fn update(cell: &impl OsAtomic, f: impl Fn(u64) -> u64) {
    let mut current = cell.load();
    loop {
        match cell.compare_exchange(current, f(current)) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

fn encode_deadline(deadline: Option<Duration>) -> u64 {
    match deadline {
        // Plus one, so that a deadline at time zero is not "no deadline".
        Some(at) => u64::try_from(at.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
            .min(CLOSING_BIT - 1),
        None => 0,
    }
}

fn decode_deadline(word: u64) -> Option<Duration> {
    match word & !CLOSING_BIT {
        0 => None,
        ns => Some(Duration::from_nanos(ns - 1)),
    }
}
