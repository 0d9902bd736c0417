//! The objects that the next calls of the threads waiting to run will touch, counted per
//! object: the reduced walk learns in a few array lookups whether the running thread's call
//! is dependent on any waiting thread's, instead of comparing it with each of them (a
//! bench-echo step has several runnable clients waiting while a loop runs).

use crate::kernel::{Footprint, KINDS};

/// Counts of the waiting threads' footprints.
#[derive(Debug)]
pub(crate) struct Interest {
    /// Per kind of object, per object id: (writers, readers) among the waiting threads.
    counts: [Vec<(u16, u16)>; KINDS],
    /// Waiting threads whose next call is dependent with everything.
    any: u32,
    /// Per thread id: waiting threads whose next call names that thread (`unpark`).
    named: Vec<u16>,
    /// Bumped at every thread that starts waiting: a conflict absent before may be there now.
    pub(crate) generation: u64,
}

impl Default for Interest {
    fn default() -> Interest {
        Interest {
            counts: std::array::from_fn(|_| Vec::new()),
            any: 0,
            named: Vec::new(),
            generation: 1,
        }
    }
}

impl Interest {
    /// A thread with next call `footprint` starts waiting.
    pub(crate) fn add(&mut self, footprint: &Footprint) {
        self.generation += 1;
        self.count(footprint, true);
    }

    /// A thread whose waiting footprint was `footprint` runs.
    pub(crate) fn remove(&mut self, footprint: &Footprint) {
        self.count(footprint, false);
    }

    fn count(&mut self, footprint: &Footprint, up: bool) {
        let step = |n: &mut u16| *n = if up { *n + 1 } else { *n - 1 };
        if footprint.is_any() {
            self.any = if up { self.any + 1 } else { self.any - 1 };
            return;
        }
        if let Some(tid) = footprint.thread_named() {
            if self.named.len() <= tid as usize {
                self.named.resize(tid as usize + 1, 0);
            }
            step(&mut self.named[tid as usize]);
        }
        for object in footprint.objects() {
            let ids = &mut self.counts[object.kind];
            if ids.len() <= object.id {
                ids.resize(object.id + 1, (0, 0));
            }
            let (writers, readers) = &mut ids[object.id];
            step(if object.read { readers } else { writers });
        }
    }

    /// Whether thread `tid`'s call with `footprint` may be dependent on a waiting thread's
    /// next call: it is not if no waiting thread names any of its objects (or only reads
    /// what it only reads) and none names `tid`. `waiting` tells whether a thread waits to
    /// run (the call itself may name one).
    pub(crate) fn hits(
        &self,
        footprint: &Footprint,
        tid: u32,
        waiting: impl Fn(u32) -> bool,
    ) -> bool {
        if self.any > 0 || footprint.is_any() {
            return true;
        }
        if self.named.get(tid as usize).is_some_and(|&n| n > 0) {
            return true;
        }
        if footprint.thread_named().is_some_and(waiting) {
            return true;
        }
        footprint.objects().any(|object| {
            let (writers, readers) = self.counts[object.kind]
                .get(object.id)
                .copied()
                .unwrap_or((0, 0));
            writers > 0 || (!object.read && readers > 0)
        })
    }
}
