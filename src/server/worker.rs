//! The optional worker pool: threads that run `on_traffic` off the loops, so a slow handler
//! does not stall every connection of its loop.
//!
//! A job carries a copy of the connection's input and its handler state; the state is
//! owned by exactly one thread at a time, so it needs no lock. The result goes back to the
//! connection's loop only as a task in that loop's mailbox: workers never touch a socket, a
//! buffer or an epoll instance, and a result for a connection that closed meanwhile is
//! dropped by the generation check like any other stale task.

use super::handler::{ConnInfo, Ctx, Handler};
use super::mailbox::{Mailbox, Task, WorkerResult};
use crate::os::{Os, OsMutex, OsThread};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// One `on_traffic` call to make.
pub(crate) struct Job<S> {
    pub(crate) info: ConnInfo,
    pub(crate) state: S,
    pub(crate) input: Vec<u8>,
}

struct PoolQueue<T, S> {
    jobs: VecDeque<Job<S>>,
    /// Parked (or about to park) workers, by worker index.
    idle: Vec<(usize, T)>,
    stopping: bool,
}

/// The shared side of the pool: its job queue and the loops' mailboxes for the results.
pub(crate) struct WorkerPool<O: Os, H: Handler> {
    os: O,
    handler: Arc<H>,
    /// `ServerConfig::job_duration`: how long a job waits before its handler runs.
    job_duration: Duration,
    queue: O::Mutex<PoolQueue<O::Thread, H::State>>,
    mailboxes: Vec<Arc<Mailbox<O, H::State>>>,
}

enum Next<S> {
    Run(Job<S>),
    Park,
    Exit,
}

impl<O: Os, H: Handler> WorkerPool<O, H> {
    pub(crate) fn new(
        os: &O,
        handler: Arc<H>,
        job_duration: Duration,
        mailboxes: Vec<Arc<Mailbox<O, H::State>>>,
    ) -> WorkerPool<O, H> {
        WorkerPool {
            os: os.clone(),
            handler,
            job_duration,
            queue: os.mutex(PoolQueue {
                jobs: VecDeque::new(),
                idle: Vec::new(),
                stopping: false,
            }),
            mailboxes,
        }
    }

    /// Queues a job and unparks one idle worker.
    pub(crate) fn submit(&self, job: Job<H::State>) {
        let idle = self.queue.lock(|queue| {
            queue.jobs.push_back(job);
            queue.idle.pop().map(|(_, thread)| thread)
        });
        if let Some(thread) = idle {
            thread.unpark();
        }
    }

    /// Tells every worker to exit after its current job; queued jobs are dropped.
    pub(crate) fn stop(&self) {
        let idle = self.queue.lock(|queue| {
            queue.stopping = true;
            queue.jobs.clear();
            std::mem::take(&mut queue.idle)
        });
        for (_, thread) in idle {
            thread.unpark();
        }
    }

    /// The body of worker `worker_idx`.
    pub(crate) fn run(&self, worker_idx: usize) {
        let me = self.os.current();
        loop {
            let next = self.queue.lock(|queue| {
                if queue.stopping {
                    return Next::Exit;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    return Next::Run(job);
                }
                // Registering as idle under the lock, before parking, means a submit that
                // comes before the park still finds us and its unpark is remembered.
                if !queue.idle.iter().any(|(idx, _)| *idx == worker_idx) {
                    queue.idle.push((worker_idx, me.clone()));
                }
                Next::Park
            });
            match next {
                Next::Run(job) => self.execute(job),
                Next::Park => self.os.park(None),
                Next::Exit => return,
            }
        }
    }

    fn execute(&self, job: Job<H::State>) {
        let Job {
            info,
            mut state,
            input,
        } = job;
        if !self.job_duration.is_zero() {
            // The slow part of the handler: the connection's loop goes on serving (and
            // hearing about) the connection meanwhile.
            self.os.sleep(self.job_duration);
        }
        let mut output = Vec::new();
        let (consumed, close) = {
            let mut ctx = Ctx::new(info, &input, &mut output);
            self.handler.on_traffic(&mut state, &mut ctx);
            (ctx.consumed(), ctx.wants_close())
        };
        let result = WorkerResult {
            handle: info.handle,
            state,
            input,
            consumed,
            output,
            close,
        };
        // A refused result belongs to a loop that has stopped; dropping it is all there is.
        if let Some(mailbox) = self.mailboxes.get(info.handle.reactor as usize) {
            let _ = mailbox.push(Task::Done(Box::new(result)), false);
        }
    }
}
