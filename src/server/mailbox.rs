//! A loop's mailbox: the urgent and normal task queues other threads use to reach it, its
//! waker, and the connection count the balancer reads.
//!
//! Tasks are how anything crosses threads: the main loop hands over accepted sockets, workers
//! return results, a [`ServerHandle`](super::ServerHandle) writes, wakes or closes, and the
//! server asks the loop to stop. The loop takes the urgent queue whole and the normal queue
//! in bounded batches, so a flood of writes cannot starve I/O.

use super::handler::ConnHandle;
use super::waker::Waker;
use crate::os::{Errno, Fd, Os, OsAtomic, OsMutex};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Work for a loop, from another thread (or from the loop itself).
pub(crate) enum Task<S> {
    /// A freshly accepted socket to adopt (hand-off from the main loop).
    Register { fd: Fd, peer: SocketAddr },
    /// Bytes to queue for a connection.
    Write { handle: ConnHandle, data: Vec<u8> },
    /// Run `on_traffic` for a connection even without new input.
    Wake { handle: ConnHandle },
    /// Close a connection after flushing what is queued.
    Close { handle: ConnHandle },
    /// A worker finished `on_traffic`: the state comes home with the output.
    Done(Box<WorkerResult<S>>),
    /// Close everything and leave the loop.
    Stop,
}

/// What a worker hands back to a connection's loop.
pub(crate) struct WorkerResult<S> {
    pub(crate) handle: ConnHandle,
    pub(crate) state: S,
    /// The input buffer the job carried, returned for reuse.
    pub(crate) input: Vec<u8>,
    pub(crate) consumed: usize,
    pub(crate) output: Vec<u8>,
    pub(crate) close: bool,
}

struct Queues<S> {
    urgent: VecDeque<Task<S>>,
    normal: VecDeque<Task<S>>,
    /// Set once the server has shut the mailbox; pushes are refused from then on.
    closed: bool,
}

/// One loop's mailbox, shared by every thread that may send it tasks.
pub(crate) struct Mailbox<O: Os, S: Send + 'static> {
    os: O,
    queues: O::Mutex<Queues<S>>,
    waker: Waker<O>,
    /// Tasks queued and not yet taken, so the loop can look without taking the lock. It is
    /// raised under the lock before the wakeup, so a loop that resets its wake flag and
    /// then reads zero here is sure to be woken by the eventfd (see `waker.rs`).
    queued: O::Atomic,
    /// Open connections of this loop, for least-connections balancing.
    conns: O::Atomic,
}

impl<O: Os, S: Send + 'static> Mailbox<O, S> {
    pub(crate) fn new(os: &O) -> Result<Mailbox<O, S>, Errno> {
        Ok(Mailbox {
            os: os.clone(),
            queues: os.mutex(Queues {
                urgent: VecDeque::new(),
                normal: VecDeque::new(),
                closed: false,
            }),
            waker: Waker::new(os)?,
            queued: os.atomic(0),
            conns: os.atomic(0),
        })
    }

    pub(crate) fn waker(&self) -> &Waker<O> {
        &self.waker
    }

    pub(crate) fn conns(&self) -> &O::Atomic {
        &self.conns
    }

    /// Queues `task` and wakes the loop; gives the task back if the mailbox is closed.
    pub(crate) fn push(&self, task: Task<S>, urgent: bool) -> Result<(), Task<S>> {
        self.queues.lock(|queues| {
            if queues.closed {
                return Err(task);
            }
            if urgent {
                queues.urgent.push_back(task);
            } else {
                queues.normal.push_back(task);
            }
            self.queued.fetch_add(1);
            // Waking under the lock means `shut` (which takes the same lock) cannot close
            // the eventfd between the push and the write, so a late producer never writes to
            // a descriptor number that something else has reused.
            self.waker.wake(&self.os);
            Ok(())
        })
    }

    /// Whether any task is queued.
    pub(crate) fn has_tasks(&self) -> bool {
        self.queued.load() != 0
    }

    /// Moves every urgent task and up to `normal_max` normal ones into `out`; returns
    /// whether normal tasks were left behind.
    pub(crate) fn take(&self, out: &mut VecDeque<Task<S>>, normal_max: usize) -> bool {
        if self.queued.load() == 0 {
            return false;
        }
        self.queues.lock(|queues| {
            let n_urgent = queues.urgent.len();
            out.extend(queues.urgent.drain(..));
            let n_normal = queues.normal.len().min(normal_max);
            out.extend(queues.normal.drain(..n_normal));
            self.queued.fetch_sub((n_urgent + n_normal) as u64);
            !queues.normal.is_empty()
        })
    }

    /// Closes the mailbox for good: refuses later pushes, closes the eventfd and returns
    /// the tasks nobody ran (their sockets must still be closed).
    pub(crate) fn shut(&self) -> Vec<Task<S>> {
        self.queues.lock(|queues| {
            queues.closed = true;
            self.waker.close(&self.os);
            queues
                .urgent
                .drain(..)
                .chain(queues.normal.drain(..))
                .collect()
        })
    }
}
