//! Cause-time hazard detection: the moment a thread goes back to sleep in `epoll_wait` while
//! an edge-triggered (or one-shot) readiness it was handed is still unconsumed.
//!
//! Under ET the kernel queues an item only when the file wakes it; a thread that handled an
//! event without reading (or accepting) until `EAGAIN`, and then blocks, may never hear of
//! the rest. That is the step where a missed wakeup is *caused*, often long before anything
//! stalls; a later stall diagnosis points back to it. The observer only reads kernel state
//! and draws nothing from the random streams, so turning it on does not change the run.

use crate::kernel::{EpollItemInfo, FdKind, Kernel};

/// An edge handed to a thread and not drained when the thread blocked again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hazard {
    /// The step at which the thread blocked in `epoll_wait` with the edge unconsumed.
    pub step: u64,
    /// The thread.
    pub tid: u32,
    /// The epoll instance that reported the edge.
    pub epfd: i32,
    /// The descriptor the registration was added under.
    pub fd: i32,
    /// The registration's token.
    pub token: u64,
    /// Bytes (or queued connections, for a listener) still readable then.
    pub bytes: usize,
    /// The step of the `epoll_wait` that handed the edge to the thread.
    pub consumed_step: u64,
}

/// One readiness handed to two threads: an edge-triggered event for a socket given to `tid`
/// while `other_tid` still held an undrained edge for the same file (epoll-semantics P6: a
/// shared epoll instance without `EPOLLONESHOT` under Linux's per-arrival edges). Listeners
/// are left out: two threads accepting from one queue is harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedWakeup {
    /// The step of the `epoll_wait` that handed the second edge.
    pub step: u64,
    /// The thread that received it.
    pub tid: u32,
    /// The thread that still held the first one.
    pub other_tid: u32,
    /// The step of the `epoll_wait` that handed the first edge.
    pub other_step: u64,
    /// The epoll instance that reported the second edge.
    pub epfd: i32,
    /// The descriptor the registration was added under.
    pub fd: i32,
    /// The registration's token.
    pub token: u64,
}

/// Shared wakeups kept per run; a flawed server can make thousands.
const SHARED_WAKEUPS_MAX: usize = 16;

/// An edge a thread received and has not yet drained.
#[derive(Clone, Debug)]
struct Consumed {
    epfd: i32,
    fd: i32,
    description: u64,
    token: u64,
    step: u64,
}

/// Per-thread bookkeeping of received edges, and the hazards found so far.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    consumed: Vec<Vec<Consumed>>,
    pub(crate) hazards: Vec<Hazard>,
    pub(crate) shared_wakeups: Vec<SharedWakeup>,
}

impl Observer {
    fn of(&mut self, tid: u32) -> &mut Vec<Consumed> {
        let idx = tid as usize;
        if self.consumed.len() <= idx {
            self.consumed.resize_with(idx + 1, Vec::new);
        }
        &mut self.consumed[idx]
    }

    /// `epoll_wait` on `epfd` handed `events` to thread `tid` at `step`.
    pub(crate) fn on_events(
        &mut self,
        kernel: &Kernel,
        tid: u32,
        step: u64,
        epfd: i32,
        events: &[(u32, u64)],
    ) {
        let Ok(items) = kernel.epoll_items(epfd) else {
            return;
        };
        let edge_modes = (libc::EPOLLET | libc::EPOLLONESHOT) as u32;
        for &(bits, token) in events {
            if bits & (libc::EPOLLIN as u32) == 0 {
                continue;
            }
            let Some(item) = items.iter().find(|i| i.data == token) else {
                continue;
            };
            if item.events & edge_modes == 0 {
                // Level-triggered: the kernel reports it again; nothing can be lost.
                continue;
            }
            self.note_shared_wakeup(kernel, tid, step, epfd, item);
            let consumed = self.of(tid);
            consumed.retain(|c| c.description != item.description);
            consumed.push(Consumed {
                epfd,
                fd: item.fd,
                description: item.description,
                token,
                step,
            });
        }
    }

    /// Records a [`SharedWakeup`] if another thread still holds an edge for `item`'s file.
    fn note_shared_wakeup(
        &mut self,
        kernel: &Kernel,
        tid: u32,
        step: u64,
        epfd: i32,
        item: &EpollItemInfo,
    ) {
        if self.shared_wakeups.len() >= SHARED_WAKEUPS_MAX {
            return;
        }
        let held = self.consumed.iter().enumerate().find_map(|(other, edges)| {
            let edge = edges.iter().find(|c| c.description == item.description)?;
            (other as u32 != tid).then_some((other as u32, edge.step))
        });
        let Some((other_tid, other_step)) = held else {
            return;
        };
        if kernel
            .fd_info(item.fd)
            .is_some_and(|info| info.kind == FdKind::Listener)
        {
            return;
        }
        self.shared_wakeups.push(SharedWakeup {
            step,
            tid,
            other_tid,
            other_step,
            epfd,
            fd: item.fd,
            token: item.data,
        });
    }

    /// Thread `tid` read (or accepted) on `fd` and reached the end of what was there
    /// (`EAGAIN`, end of file, or an error): its edges on that descriptor are consumed.
    pub(crate) fn on_drained(&mut self, kernel: &Kernel, tid: u32, fd: i32) {
        if let Some(info) = kernel.fd_info(fd) {
            self.of(tid).retain(|c| c.description != info.description);
        }
    }

    /// Thread `tid` read data from `fd`. A read that left nothing behind consumed the edge as
    /// surely as `EAGAIN` would have: whatever arrives later queues the item again under
    /// either edge model (the rule that lets a stream reader stop at a short read, epoll(7)
    /// Q9). Without this, bytes that arrived after such a read would count as left behind.
    pub(crate) fn on_read(&mut self, kernel: &Kernel, tid: u32, fd: i32) {
        if self.of(tid).is_empty() {
            return;
        }
        if let Some(info) = kernel.fd_info(fd).filter(|info| info.readable_bytes == 0) {
            self.of(tid).retain(|c| c.description != info.description);
        }
    }

    /// Thread `tid` blocks in `epoll_wait` at `step`: every edge it holds whose file still
    /// has data is a hazard.
    pub(crate) fn on_block(&mut self, kernel: &Kernel, tid: u32, step: u64) {
        let consumed = std::mem::take(self.of(tid));
        for c in consumed {
            let bytes = kernel
                .fd_info(c.fd)
                .filter(|info| info.description == c.description)
                .map_or(0, |info| info.readable_bytes);
            if bytes > 0 {
                self.hazards.push(Hazard {
                    step,
                    tid,
                    epfd: c.epfd,
                    fd: c.fd,
                    token: c.token,
                    bytes,
                    consumed_step: c.step,
                });
            }
        }
    }
}
