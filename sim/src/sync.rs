//! Locks and atomics for simulated threads: every access is a preemption point, and a thread
//! waiting for a lock is blocked in the scheduler's eyes (a `std` lock would block the one OS
//! thread that runs every simulated thread).

use crate::kernel::object_id;
use crate::sched::{
    block, preempt, preempt_then, with_world, Access, Block, Op, ThreadState, Wake,
};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const FREE: u32 = u32::MAX;

/// A lock for simulated threads.
///
/// The data sits in a `std` mutex that is never contended: only the simulated owner, which
/// runs alone on the world's OS thread, ever takes it. Ownership between simulated threads is
/// the `owner` field, and waiting is a scheduler block.
#[derive(Debug)]
pub struct Mutex<T> {
    /// The lock's id in traces, given at its first use (0 = not yet).
    id: AtomicU64,
    /// The lock's object id for the dependence relation (`kernel::object_id`).
    object: AtomicU64,
    owner: AtomicU32,
    data: std::sync::Mutex<T>,
}

impl<T> Mutex<T> {
    /// A lock around `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            id: AtomicU64::new(0),
            object: AtomicU64::new(0),
            owner: AtomicU32::new(FREE),
            data: std::sync::Mutex::new(value),
        }
    }

    fn id(&self) -> u64 {
        match self.id.load(Ordering::Relaxed) {
            0 => {
                let id = with_world(|w| w.new_mutex_id());
                self.id.store(id, Ordering::Relaxed);
                id
            }
            id => id,
        }
    }

    /// Runs `f` with the lock held.
    pub fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let object = object_id(&self.object);
        preempt(Access::Lock(object));
        let id = self.id();
        loop {
            let me = with_world(|w| w.current_tid());
            if self.owner.load(Ordering::Relaxed) == FREE {
                self.owner.store(me, Ordering::Relaxed);
                with_world(|w| {
                    w.threads[me as usize].locks_held.push(object);
                    w.record(Op::Lock, [id as i64, -1], 0);
                });
                break;
            }
            if block(Block::Mutex(id), None, Access::Lock(object)) == Wake::Timeout {
                // Only teardown times out a lock wait; take the data anyway so destructors
                // can finish.
                break;
            }
        }
        let result = {
            let mut guard = self.data.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        };
        self.owner.store(FREE, Ordering::Relaxed);
        with_world(|w| {
            if let Some(tid) = w.current {
                let held = &mut w.threads[tid as usize].locks_held;
                if let Some(at) = held.iter().rposition(|&lock| lock == object) {
                    held.remove(at);
                }
            }
            // Wake the first waiter in thread order; it retries, and may lose the race again.
            let waiter = (0..w.threads.len() as u32).find(|&tid| {
                w.threads[tid as usize].state == ThreadState::Blocked(Block::Mutex(id), None)
            });
            if let Some(tid) = waiter {
                w.wake(tid, Wake::Woken);
            }
        });
        result
    }
}

/// A 64-bit atomic cell for simulated threads; each access is a preemption point.
#[derive(Debug, Default)]
pub struct Atomic {
    value: AtomicU64,
    /// The cell's object id for the dependence relation (`kernel::object_id`).
    object: AtomicU64,
}

/// Which atomic operation a trace record stands for.
#[derive(Copy, Clone)]
enum AtomicOp {
    Load = 0,
    Store,
    Swap,
    Cas,
    Add,
    Sub,
}

impl Atomic {
    /// A cell holding `value`.
    pub fn new(value: u64) -> Atomic {
        Atomic {
            value: AtomicU64::new(value),
            object: AtomicU64::new(0),
        }
    }

    /// Reads the value without a preemption point, from outside a world (checkers look at
    /// counters after a run).
    pub fn peek(&self) -> u64 {
        self.value.load(Ordering::SeqCst)
    }

    fn access(&self, op: AtomicOp, arg: u64, f: impl FnOnce(&AtomicU64) -> u64) -> u64 {
        let id = object_id(&self.object);
        let read = matches!(op, AtomicOp::Load);
        preempt_then(Access::Atomic { id, read }, |w| {
            let previous = f(&self.value);
            w.record(Op::Atomic, [op as i64, arg as i64], previous as i64);
            previous
        })
    }

    /// Reads the value.
    pub fn load(&self) -> u64 {
        self.access(AtomicOp::Load, 0, |a| a.load(Ordering::SeqCst))
    }

    /// Writes the value.
    pub fn store(&self, value: u64) {
        self.access(AtomicOp::Store, value, |a| {
            a.store(value, Ordering::SeqCst);
            value
        });
    }

    /// Writes the value, returning the previous one.
    pub fn swap(&self, value: u64) -> u64 {
        self.access(AtomicOp::Swap, value, |a| a.swap(value, Ordering::SeqCst))
    }

    /// Writes `new` if the value is `current`.
    pub fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        let previous = self.access(AtomicOp::Cas, new, |a| {
            match a.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) | Err(v) => v,
            }
        });
        if previous == current {
            Ok(previous)
        } else {
            Err(previous)
        }
    }

    /// Adds (wrapping), returning the previous value.
    pub fn fetch_add(&self, delta: u64) -> u64 {
        self.access(AtomicOp::Add, delta, |a| {
            a.fetch_add(delta, Ordering::SeqCst)
        })
    }

    /// Subtracts (wrapping), returning the previous value.
    pub fn fetch_sub(&self, delta: u64) -> u64 {
        self.access(AtomicOp::Sub, delta, |a| {
            a.fetch_sub(delta, Ordering::SeqCst)
        })
    }
}
