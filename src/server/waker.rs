//! A loop's waker: an eventfd the loop polls, plus a flag that coalesces wakeups so that a
//! burst of tasks costs one eventfd write, not one per task.
//!
//! The protocol, and the race it closes (netty R4, libuv R6 in the reactor notes):
//! a producer pushes its task, then sets the flag 0 -> 1 and writes the eventfd only if it
//! made that transition. The loop, before it sleeps, resets the flag to 0 and only then
//! checks its queues. A task pushed before the reset is seen by the check; a task pushed
//! after it finds the flag at 0 and writes the eventfd, which wakes `epoll_wait`. Checking
//! first and resetting second (flaw `wake-flag-race`) loses the task pushed in between.

use crate::os::{Errno, Fd, Os, OsAtomic};

/// The eventfd and the coalescing flag of one loop.
pub(crate) struct Waker<O: Os> {
    eventfd: Fd,
    /// 1 while a wakeup is pending or the loop is awake and will look at its queues anyway.
    flag: O::Atomic,
}

impl<O: Os> Waker<O> {
    pub(crate) fn new(os: &O) -> Result<Waker<O>, Errno> {
        Ok(Waker {
            eventfd: os.eventfd()?,
            flag: os.atomic(1),
        })
    }

    /// The descriptor the loop registers with its epoll instance.
    pub(crate) fn fd(&self) -> Fd {
        self.eventfd
    }

    /// Producer side: makes sure the loop will look at its queues. Must be called after
    /// the task is visible in the queue and while the eventfd is known to be open.
    pub(crate) fn wake(&self, os: &O) {
        if self.flag.compare_exchange(0, 1).is_ok() {
            // EAGAIN means the counter is already huge, so the eventfd is readable and the
            // loop will wake anyway; any other error means the loop is gone.
            let _ = os.eventfd_write(self.eventfd, 1);
        }
    }

    /// Loop side, just before deciding how long to sleep: from now on producers write the
    /// eventfd. The caller must check its queues after this call, never before.
    pub(crate) fn reset(&self) {
        self.flag.store(0);
    }

    /// Loop side, on the eventfd's readiness: empties the counter so that the
    /// level-triggered registration stops reporting it.
    pub(crate) fn drain(&self, os: &O) {
        let _ = os.eventfd_read(self.eventfd);
    }

    /// Closes the eventfd. Called once, by the server, after every thread that could wake
    /// this loop has stopped (or under the mailbox lock that `wake` also runs under).
    pub(crate) fn close(&self, os: &O) {
        let _ = os.close(self.eventfd);
    }
}
