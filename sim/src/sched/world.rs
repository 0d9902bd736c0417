//! The world's state: the kernel, the thread table, the clock, the random streams and the
//! trace, kept in a thread-local while a run executes.

use super::host::Handoff;
use super::strategy::{chance, Picker};
use super::trace::{Op, Record, Trace};
use super::Strategy;
use crate::kernel::{Config, Kernel};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::cell::RefCell;

/// Identical failing calls a thread may make in a row without blocking before the run ends
/// as a busy retry loop ([`super::Outcome::BusyRetry`]). Far above what the faults make a
/// correct loop retry (an `eintr_io` of 0.2 repeats a call 10,000 times with probability
/// 0.2^10000), far below a step budget.
pub const BUSY_RETRIES_MAX: u64 = 10_000;

/// Scheduler-level faults, each a probability per opportunity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedFaults {
    /// `epoll_wait` fails with EINTR (a signal arrived while it slept, and the handler was
    /// installed without `SA_RESTART`, as Go's runtime and many profilers install theirs).
    pub eintr: f64,
    /// `read`, `write`, `accept` and `connect` fail with EINTR before they do anything.
    ///
    /// Linux does not do this on non-blocking sockets: `tcp_recvmsg_locked` returns EAGAIN
    /// before it looks at pending signals when its timeout is zero, `sk_stream_wait_memory`
    /// and `inet_csk_accept` give up with EAGAIN at a zero timeout before they could sleep,
    /// and `inet_stream_connect` answers EINPROGRESS. A signal interrupts only a call that
    /// sleeps. So this is a robustness fault beyond the kernel (std's `Read` contract allows
    /// `Interrupted` from any read), for code that wants to prove it retries; swarm mode never
    /// draws it, since code correct on Linux may rightly treat it as fatal.
    pub eintr_io: f64,
    /// `park` returns although nobody unparked the thread (std allows it).
    pub spurious_wakeup: f64,
}

/// Everything a run depends on besides the code it runs.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The one seed every stream derives from.
    pub seed: u64,
    /// The kernel's sizes and faults (its own seed is derived from `seed`).
    pub kernel: Config,
    /// How the next thread is picked.
    pub strategy: Strategy,
    /// Random walk only: the probability that a preemption point keeps the running thread
    /// (0 is the uniform walk).
    pub switch_bias: f64,
    /// The run stops (inconclusive) after this many steps.
    pub max_steps: u64,
    /// Virtual time every call costs, so that a busy loop advances the clock.
    pub call_cost_ns: u64,
    /// Keep every trace record (for printing), not only the hash.
    pub keep_trace: bool,
    /// Scheduler faults.
    pub faults: SchedFaults,
    /// From this step on, faults stop and the strategy becomes a fair random walk.
    pub heal_at_step: Option<u64>,
    /// Watch for hazards (an edge-triggered readiness left undrained when its thread blocks
    /// again). Observing reads kernel state only, so it does not change the run.
    pub observe: bool,
    /// Record every scheduling decision and fault draw that departs from the default rule
    /// (see [`super::Decisions`]); the report carries the log.
    pub record_decisions: bool,
    /// Take decisions from this log instead of the random streams (implies recording).
    pub replay: Option<super::Decisions>,
}

impl Default for WorldConfig {
    fn default() -> WorldConfig {
        WorldConfig {
            seed: 0,
            kernel: Config::default(),
            strategy: Strategy::RandomWalk,
            switch_bias: 0.0,
            max_steps: 1_000_000,
            call_cost_ns: 1_000,
            keep_trace: false,
            faults: SchedFaults::default(),
            heal_at_step: None,
            observe: false,
            record_decisions: false,
            replay: None,
        }
    }
}

/// Why a thread cannot run.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Block {
    /// In `epoll_wait` on this epoll descriptor.
    Epoll(i32),
    /// In `sleep`.
    Sleep,
    /// In `park`.
    Park,
    /// Waiting for the lock with this id.
    Mutex(u64),
    /// Waiting for this thread to end.
    Join(u32),
}

/// A thread's state.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ThreadState {
    /// Can run.
    Runnable,
    /// Waits, until woken or until the deadline (virtual ns) if any.
    Blocked(Block, Option<u64>),
    /// Finished.
    Done,
}

/// How a blocked thread came back.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Wake {
    /// Something it waited for happened.
    Woken,
    /// Its deadline passed.
    Timeout,
}

/// What the report says of a thread.
#[derive(Clone, Debug)]
pub struct ThreadInfo {
    /// The thread id (spawn order, from 0).
    pub tid: u32,
    /// The name given at spawn.
    pub name: String,
    /// Its state when the run ended.
    pub state: ThreadState,
    /// The step of its last call.
    pub last_step: u64,
    /// Steps it took in all.
    pub steps: u64,
    /// Steps it took in the second half of the step budget (0 if the run ended before).
    pub steps_late: u64,
}

pub(crate) struct Thread {
    pub(crate) name: String,
    pub(crate) state: ThreadState,
    pub(crate) wake: Wake,
    pub(crate) park_token: bool,
    /// Locks ([`crate::sync::Mutex`]) the thread holds: it is inside their critical sections.
    pub(crate) locks_held: u32,
    /// The thread's last failing call (op, first argument, errno) and how many times in a
    /// row it made it without blocking.
    retry: ((Op, i64, i64), u64),
    pub(crate) last_step: u64,
    pub(crate) steps: u64,
    /// `steps` when the run passed half its step budget.
    pub(crate) steps_at_half: Option<u64>,
    /// The panic message if it panicked; `Some(Ok)` once it returned.
    pub(crate) result: Option<Result<(), String>>,
}

pub(crate) struct World {
    pub(crate) kernel: Kernel,
    pub(crate) threads: Vec<Thread>,
    /// Runnable thread ids, in a deterministic order.
    pub(crate) runnable: Vec<u32>,
    pub(crate) current: Option<u32>,
    /// The thread the host resumes next, chosen by the thread that suspended.
    pub(crate) next: Option<u32>,
    pub(crate) step: u64,
    pub(crate) now_ns: u64,
    /// Virtual time skipped while no thread could run (timers, sleeps, deliveries).
    pub(crate) idle_ns: u64,
    /// A lower bound of the earliest deadline of a blocked thread (`u64::MAX`: none).
    deadline_min_ns: u64,
    pub(crate) sched_rng: ChaCha8Rng,
    pub(crate) fault_rng: ChaCha8Rng,
    pub(crate) picker: Picker,
    pub(crate) trace: Trace,
    pub(crate) config: WorldConfig,
    pub(crate) pending_spawn: Vec<(u32, Box<dyn FnOnce()>)>,
    /// Set when the run must end at the next return to the host.
    pub(crate) stop: Option<super::Outcome>,
    pub(crate) tearing_down: bool,
    pub(crate) healed: bool,
    pub(crate) observer: Option<super::observe::Observer>,
    /// Records (and in replay, supplies) decisions; `None` keeps the hot path as it was.
    pub(crate) decider: Option<Box<super::decisions::Decider>>,
    woken: Vec<u32>,
    next_mutex_id: u64,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs `f` on the world of this OS thread.
///
/// Panics if no world runs here: simulated calls are only meaningful inside [`super::run`].
pub(crate) fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|cell| {
        let mut guard = cell.borrow_mut();
        let world = guard
            .as_mut()
            .expect("a simulated call was made outside edgesim's simulated world");
        f(world)
    })
}

/// Whether a simulated world is running on the calling OS thread, i.e. whether the caller is
/// a simulated thread (the host loop runs no user code). Lets code that must work on both
/// backends, such as edgesim's mio facade, pick the simulator without being told.
pub fn in_world() -> bool {
    WORLD.with(|cell| cell.try_borrow().map_or(true, |guard| guard.is_some()))
}

/// The virtual time, in ns, of the world running on the calling OS thread; `None` when no
/// world runs here or the world is in the middle of a call. It never panics, not even in a
/// thread-local destructor, because it is meant for clocks that any code may read from
/// anywhere (edgesim's `mio` crate serves `CLOCK_MONOTONIC` from it, on request).
pub fn virtual_now_ns() -> Option<u64> {
    WORLD
        .try_with(|cell| {
            let guard = cell.try_borrow().ok()?;
            guard.as_ref().map(|world| world.now_ns)
        })
        .ok()
        .flatten()
}

pub(crate) fn install(world: World) {
    WORLD.with(|cell| {
        let mut guard = cell.borrow_mut();
        assert!(
            guard.is_none(),
            "one OS thread runs one simulated world at a time"
        );
        *guard = Some(world);
    });
}

pub(crate) fn uninstall() -> World {
    WORLD.with(|cell| cell.borrow_mut().take().expect("the world is installed"))
}

impl World {
    pub(crate) fn new(mut config: WorldConfig) -> World {
        let seed = config.seed;
        config.kernel.seed = super::derive_seed(seed, 1);
        let mut sched_rng = ChaCha8Rng::seed_from_u64(super::derive_seed(seed, 2));
        let fault_rng = ChaCha8Rng::seed_from_u64(super::derive_seed(seed, 3));
        let picker = Picker::new(config.strategy.clone(), config.switch_bias, &mut sched_rng);
        World {
            kernel: Kernel::new(config.kernel.clone()),
            threads: Vec::new(),
            runnable: Vec::new(),
            current: None,
            next: None,
            step: 0,
            now_ns: 0,
            idle_ns: 0,
            deadline_min_ns: u64::MAX,
            sched_rng,
            fault_rng,
            picker,
            trace: Trace::new(config.keep_trace),
            pending_spawn: Vec::new(),
            stop: None,
            tearing_down: false,
            healed: false,
            observer: config.observe.then(super::observe::Observer::default),
            decider: (config.record_decisions || config.replay.is_some())
                .then(|| Box::new(super::decisions::Decider::new(config.replay.clone()))),
            woken: Vec::new(),
            next_mutex_id: 1,
            config,
        }
    }

    pub(crate) fn current_tid(&self) -> u32 {
        self.current.expect("a simulated thread is running")
    }

    pub(crate) fn spawn(&mut self, name: &str, body: Box<dyn FnOnce()>) -> u32 {
        let tid = self.threads.len() as u32;
        self.threads.push(Thread {
            name: name.to_string(),
            state: ThreadState::Runnable,
            wake: Wake::Woken,
            park_token: false,
            locks_held: 0,
            retry: ((Op::Now, 0, 0), 0),
            last_step: self.step,
            steps: 0,
            steps_at_half: None,
            result: None,
        });
        self.runnable.push(tid);
        self.picker.on_spawn(tid, &mut self.sched_rng);
        self.pending_spawn.push((tid, body));
        tid
    }

    /// Makes a blocked thread runnable with `wake` as the reason; a no-op for others.
    pub(crate) fn wake(&mut self, tid: u32, wake: Wake) {
        let thread = &mut self.threads[tid as usize];
        if let ThreadState::Blocked(..) = thread.state {
            thread.state = ThreadState::Runnable;
            thread.wake = wake;
            self.runnable.push(tid);
        }
    }

    pub(crate) fn set_blocked(&mut self, tid: u32, block: Block, deadline: Option<u64>) {
        self.threads[tid as usize].state = ThreadState::Blocked(block, deadline);
        self.threads[tid as usize].retry.1 = 0;
        if let Some(deadline) = deadline {
            self.deadline_min_ns = self.deadline_min_ns.min(deadline);
        }
        let idx = self
            .runnable
            .iter()
            .position(|&t| t == tid)
            .expect("a running thread is runnable");
        self.runnable.remove(idx);
    }

    pub(crate) fn set_done(&mut self, tid: u32, result: Result<(), String>) {
        self.threads[tid as usize].state = ThreadState::Done;
        self.threads[tid as usize].result = Some(result);
        if let Some(idx) = self.runnable.iter().position(|&t| t == tid) {
            self.runnable.remove(idx);
        }
        for other in 0..self.threads.len() as u32 {
            if self.threads[other as usize].state == ThreadState::Blocked(Block::Join(tid), None) {
                self.wake(other, Wake::Woken);
            }
        }
    }

    /// Moves blocked-in-epoll threads the kernel woke to the runnable list.
    pub(crate) fn collect_kernel_wakeups(&mut self) {
        self.kernel.take_woken(&mut self.woken);
        for idx in 0..self.woken.len() {
            let tid = self.woken[idx];
            self.wake(tid, Wake::Woken);
        }
        self.woken.clear();
    }

    /// Picks the thread that runs after the current step, or `None` if none can run now.
    pub(crate) fn pick_next(&mut self) -> Option<u32> {
        if self.runnable.is_empty() {
            return None;
        }
        let current = self.current;
        let step = self.step;
        let next = match self.decider.as_mut() {
            None => self
                .picker
                .pick(&self.runnable, current, step, &mut self.sched_rng),
            Some(decider) => {
                let default = super::decisions::Decider::default_pick(&self.runnable, current);
                let chosen = if decider.replaying() {
                    decider.replayed_pick(&self.runnable).unwrap_or(default)
                } else {
                    self.picker
                        .pick(&self.runnable, current, step, &mut self.sched_rng)
                };
                decider.note_pick(chosen, default);
                chosen
            }
        };
        if Some(next) != current {
            self.trace.push(Record::Switch { step, to: next });
        }
        Some(next)
    }

    /// Hands the processor to `next` (picked by the suspending thread): directly when nothing
    /// else needs the host, otherwise through it.
    pub(crate) fn hand_off(&mut self, next: Option<u32>) -> Handoff {
        match next {
            Some(tid) if self.stop.is_none() && self.pending_spawn.is_empty() => {
                self.current = Some(tid);
                Handoff::Direct(tid)
            }
            _ => {
                self.next = next;
                Handoff::Host
            }
        }
    }

    /// Counts one step: the clock moves, due deliveries happen, and healing starts when due.
    pub(crate) fn tick(&mut self) {
        self.step += 1;
        self.now_ns += self.config.call_cost_ns;
        if let Some(tid) = self.current {
            let thread = &mut self.threads[tid as usize];
            thread.last_step = self.step;
            thread.steps += 1;
        }
        if self
            .kernel
            .next_timer_ns()
            .is_some_and(|t| t <= self.now_ns)
        {
            self.kernel.advance(self.now_ns);
            self.collect_kernel_wakeups();
        }
        if self.deadline_min_ns <= self.now_ns {
            // A busy thread moves the clock too: sleepers and timed waits whose deadline
            // passed meanwhile wake up, or a busy loop would starve every timer.
            self.expire_deadlines();
        }
        if self.step == self.config.max_steps / 2 {
            for thread in &mut self.threads {
                thread.steps_at_half = Some(thread.steps);
            }
        }
        if !self.healed && self.config.heal_at_step.is_some_and(|s| self.step >= s) {
            self.heal();
        }
        if self.step >= self.config.max_steps && self.stop.is_none() {
            self.stop = Some(super::Outcome::MaxSteps);
        }
    }

    /// Ends the fault phase: no more faults, and a fair schedule.
    pub(crate) fn heal(&mut self) {
        self.healed = true;
        self.config.faults = SchedFaults::default();
        self.kernel.heal();
        self.picker.make_fair();
    }

    /// Draws a scheduler fault; records it in the trace when it fires.
    pub(crate) fn fault(&mut self, p: f64, what: &'static str) -> bool {
        let fired = match self.decider.as_mut() {
            None => chance(&mut self.fault_rng, p),
            Some(decider) => {
                let fired = if decider.replaying() {
                    decider.replayed_fault()
                } else {
                    chance(&mut self.fault_rng, p)
                };
                decider.note_fault(fired);
                fired
            }
        };
        if fired {
            let (step, tid) = (self.step, self.current_tid());
            self.trace.push(Record::Fault { step, tid, what });
        }
        fired
    }

    /// Draws the `eintr` fault (`io`: the `eintr_io` one) for the call about to run.
    pub(crate) fn interrupted(&mut self, io: bool) -> bool {
        let faults = &self.config.faults;
        let p = if io { faults.eintr_io } else { faults.eintr };
        p > 0.0 && self.fault(p, "eintr")
    }

    /// Records the call the current thread just made.
    pub(crate) fn record(&mut self, op: Op, args: [i64; 2], ret: i64) {
        if self.tearing_down {
            // Destructors unwinding at the end are not part of the run.
            return;
        }
        let (step, tid) = (self.step, self.current_tid());
        self.trace.push(Record::Call {
            step,
            tid,
            op,
            args,
            ret,
        });
        self.watch_retries(tid, op, args, ret);
    }

    /// Counts a failing call repeated without blocking, and ends the run at
    /// [`BUSY_RETRIES_MAX`]: a correct loop waits (in `epoll_wait`, a sleep, a lock) before it
    /// tries a failed call again, so a run of identical failures is a busy loop even when it
    /// would end once the cause goes away (a full descriptor table empties when a client
    /// leaves, and the run would pass, having burnt a core meanwhile).
    fn watch_retries(&mut self, tid: u32, op: Op, args: [i64; 2], ret: i64) {
        let thread = &mut self.threads[tid as usize];
        let key = (op, args[0], ret);
        if ret >= 0 || op == Op::EpollWait {
            thread.retry.1 = 0;
            return;
        }
        if thread.retry.0 == key {
            thread.retry.1 += 1;
        } else {
            thread.retry = (key, 1);
        }
        if thread.retry.1 >= BUSY_RETRIES_MAX && self.stop.is_none() {
            let record = Record::Call {
                step: self.step,
                tid,
                op,
                args,
                ret,
            };
            self.stop = Some(super::Outcome::BusyRetry {
                tid,
                name: thread.name.clone(),
                call: record.call_text(),
            });
        }
    }

    /// When the world is idle: moves the clock to the next deadline or kernel timer and
    /// wakes what is due. Returns false if nothing will ever happen again.
    pub(crate) fn advance_idle(&mut self) -> bool {
        let thread_deadline = self
            .threads
            .iter()
            .filter_map(|t| match t.state {
                ThreadState::Blocked(_, deadline) => deadline,
                _ => None,
            })
            .min();
        let next = match (thread_deadline, self.kernel.next_timer_ns()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return false,
            },
        };
        if next > self.now_ns {
            self.idle_ns += next - self.now_ns;
            self.now_ns = next;
        }
        self.kernel.advance(self.now_ns);
        self.collect_kernel_wakeups();
        self.expire_deadlines();
        true
    }

    /// Wakes every thread whose deadline has passed and recomputes the earliest deadline.
    fn expire_deadlines(&mut self) {
        let mut earliest = u64::MAX;
        for tid in 0..self.threads.len() as u32 {
            if let ThreadState::Blocked(_, Some(deadline)) = self.threads[tid as usize].state {
                if deadline <= self.now_ns {
                    self.wake(tid, Wake::Timeout);
                } else {
                    earliest = earliest.min(deadline);
                }
            }
        }
        self.deadline_min_ns = earliest;
    }

    /// Tells the observer (if any) that the current thread drained `fd`.
    pub(crate) fn observe_drained(&mut self, fd: i32) {
        if let Some(observer) = self.observer.as_mut() {
            let tid = self.current.expect("a simulated thread is running");
            observer.on_drained(&self.kernel, tid, fd);
        }
    }

    /// Tells the observer (if any) that the current thread read data from `fd`.
    pub(crate) fn observe_read(&mut self, fd: i32) {
        if let Some(observer) = self.observer.as_mut() {
            let tid = self.current.expect("a simulated thread is running");
            observer.on_read(&self.kernel, tid, fd);
        }
    }

    pub(crate) fn new_mutex_id(&mut self) -> u64 {
        let id = self.next_mutex_id;
        self.next_mutex_id += 1;
        id
    }

    pub(crate) fn thread_infos(&self) -> Vec<ThreadInfo> {
        self.threads
            .iter()
            .enumerate()
            .map(|(tid, t)| ThreadInfo {
                tid: tid as u32,
                name: t.name.clone(),
                state: t.state,
                last_step: t.last_step,
                steps: t.steps,
                steps_late: t.steps_at_half.map_or(0, |half| t.steps - half),
            })
            .collect()
    }
}
