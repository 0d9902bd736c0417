//! What a thread's next call names, as the scheduler learns it at the thread's preemption
//! point (or when the thread blocks: the call it makes when it comes back), and its
//! footprint (the relation itself is written down in `kernel::dependence`).

use crate::kernel::{Footprint, Kernel, KernelCall};

/// A pending call, before it is resolved against the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Not known, or dependent with everything: `sleep` and its return (a sleeper may read
    /// the step counter next, which every step moves). Dependent with everything.
    Any,
    /// Touches only the thread's own state (`park` and its return, a new thread's first
    /// step, `join` and its return). Dependent only with calls that name the thread (`unpark`).
    Local,
    /// A kernel call.
    Kernel(KernelCall),
    /// Acquiring the lock with this object id (`kernel::object_id`).
    Lock(u32),
    /// An access to the atomic with this object id; `read` for a load.
    Atomic {
        /// The atomic's object id.
        id: u32,
        /// A load: two loads commute.
        read: bool,
    },
    /// `spawn`.
    Spawn,
    /// A call dependent with every call of this thread (`unpark`).
    Thread(u32),
}

impl Access {
    /// The footprint of the call if it ran now.
    pub(crate) fn footprint(self, kernel: &Kernel) -> Footprint {
        match self {
            Access::Any => Footprint::any(),
            Access::Local => Footprint::default(),
            Access::Kernel(call) => kernel.footprint(call),
            Access::Lock(id) => Footprint::lock(id),
            Access::Atomic { id, read } => Footprint::atomic(id, read),
            Access::Spawn => Footprint::spawn(),
            Access::Thread(tid) => Footprint::thread(tid),
        }
    }
}
