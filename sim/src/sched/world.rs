//! The world's state: the kernel, the thread table, the clock, the random streams and the
//! trace, kept in a thread-local while a run executes.

use super::access::Access;
use super::host::Handoff;
use super::interest::Interest;
use super::strategy::{chance, Picker};
use super::trace::{Op, Record, Trace};
use super::Strategy;
use crate::kernel::{Config, Footprint, Kernel};
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
    /// At a preemption point the thread is held off the processor while runnable, for
    /// [`HOLD_NS_MIN`] to [`HOLD_NS_MAX`] of virtual time: what a loaded host's scheduler
    /// does to any thread at any instruction. The other threads run meanwhile, and the
    /// clock moves on even when none of them can, so a worker's job finishes, a peer's
    /// bytes arrive and timers fire inside a window that is otherwise one step wide (a
    /// loop's check of its queues before it stores its wake flag, say). The probability is
    /// per preemption point, [`HOLD_AT_SYNC_FACTOR`] times higher before an atomic access or
    /// a lock.
    pub hold: f64,
}

/// How much likelier a `hold` is before an atomic access or a lock than before any other
/// call (up to [`HOLD_AT_SYNC_P_MAX`]). A lost wakeup lives between a thread's read of shared
/// state and the write that depends on it (a loop's check of its queues and the store of its
/// wake flag, both atomics), so delays injected at synchronization, as concurrency fuzzers
/// inject them, open such windows where a delay before a socket call would not. Measured on
/// the 28 reachable `wake-flag-race` workloads of `edgesim evaluate` (500 seeds each, swarm
/// mode): 130 failing seeds against 81 with holds equally likely everywhere;
/// `stale-token` (20 workloads) 393 against 400 and `out-once` (18) 277 against 285.
pub const HOLD_AT_SYNC_FACTOR: f64 = 10.0;

/// The highest probability of a hold before a synchronization call: the highest that swarm
/// mode draws for any call. More is a host so loaded that ordinary deadlines expire: with
/// 0.1, the netpoller's 20 ms read deadline (`scenarios/netpoll-deadline.toml`) closed
/// connections in the middle of their exchange in 2 of 5,000 seeds (none at 0.05, where
/// `wake-flag-race` kept most of its gain: 130 failing seeds against 146 at 0.1).
pub const HOLD_AT_SYNC_P_MAX: f64 = 0.05;

/// The shortest time a `hold` keeps a thread off the processor: about a context switch
/// and a short run of another thread on a busy core.
pub const HOLD_NS_MIN: u64 = 50_000;

/// The longest time a `hold` keeps a thread off the processor: a time slice or two of
/// another thread on a host with more runnable threads than cores (Linux's EEVDF base
/// slice, `sysctl_sched_base_slice`, is 0.75 ms times 1 + log2 of the CPU count, which
/// scaling caps at 8 CPUs: 3 ms).
pub const HOLD_NS_MAX: u64 = 5_000_000;

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
    /// Follow this schedule of the exhaustive search instead of any strategy (see
    /// [`super::Search`]); the report carries back the choice points the run went through.
    pub schedule: Option<super::Schedule>,
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
            schedule: None,
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
    /// Runnable, but held off the processor until its deadline (the `hold` fault).
    Held,
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
    /// Locks ([`crate::sync::Mutex`]) the thread holds, by address: it is inside their
    /// critical sections, and any of its steps may release one.
    pub(crate) locks_held: Vec<u32>,
    /// The call it makes when it runs next: the one at its preemption point, or the one it
    /// makes when it comes back from a block.
    pub(crate) pending: Access,
    /// The call it made last.
    pub(crate) last: Access,
    /// The reduced walk: the footprint of `pending` as counted in the world's interest,
    /// while the thread waits to run.
    waiting: Option<Footprint>,
    /// The thread has run (a thread that never did is a candidate at every decision of the
    /// reduced walk, see `start_waiting`).
    ran: bool,
    /// The reduced walk: the footprint of `last`, when it was resolved before the call.
    last_footprint: Option<Footprint>,
    /// The reduced walk: the interest's generation when `last_footprint` was last checked.
    checked: u64,
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
    /// Half the step budget, where each thread's step count is noted (for the hog rule);
    /// kept apart so that a step compares instead of dividing.
    half_steps: u64,
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
    /// The exhaustive search's schedule, when it drives the run.
    pub(crate) schedule: Option<Box<super::Schedule>>,
    /// The reduced walk's threads whose next call is dependent, at the current pick.
    candidates: Vec<u32>,
    /// The reduced walk: what the waiting threads' next calls touch (kept only when the
    /// reduced walk picks).
    interest: Interest,
    interest_on: bool,
    /// The reduced walk's memo of calls found dependent on no waiting thread: per open file
    /// description, the interest's generation and the kernel's structure epoch of the check
    /// (no thread started waiting since, and the call's footprint is the same).
    free_files: Vec<(u64, u64)>,
    /// The same for atomics, by object id (direct-mapped; a slot holds one atomic): the id,
    /// the generation, and whether the call checked was a load (free for a load says
    /// nothing of a store).
    free_atomics: [(u32, u64, bool); FREE_ATOMICS],
    woken: Vec<u32>,
    next_mutex_id: u64,
}

/// Slots of the reduced walk's memo of atomics.
const FREE_ATOMICS: usize = 16;

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
        crate::kernel::number_objects_anew();
        let mut sched_rng = ChaCha8Rng::seed_from_u64(super::derive_seed(seed, 2));
        let fault_rng = ChaCha8Rng::seed_from_u64(super::derive_seed(seed, 3));
        let picker = Picker::new(config.strategy.clone(), config.switch_bias, &mut sched_rng);
        let interest_on = picker.reduced() && config.schedule.is_none() && config.replay.is_none();
        World {
            kernel: Kernel::new(config.kernel.clone()),
            threads: Vec::new(),
            runnable: Vec::new(),
            current: None,
            next: None,
            step: 0,
            half_steps: config.max_steps / 2,
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
            schedule: config.schedule.clone().map(Box::new),
            candidates: Vec::new(),
            interest: Interest::default(),
            interest_on,
            free_files: Vec::new(),
            free_atomics: [(0, 0, false); FREE_ATOMICS],
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
            locks_held: Vec::new(),
            // A new thread's first step runs its code up to its first call, which is a
            // preemption point: it touches nothing another thread can see (simulated threads
            // share state only through calls; the clock and the step counter are read only
            // after a sleep, see `sys::sleep`).
            pending: Access::Local,
            last: Access::Local,
            waiting: None,
            ran: false,
            last_footprint: None,
            checked: 0,
            retry: ((Op::Now, 0, 0), 0),
            last_step: self.step,
            steps: 0,
            steps_at_half: None,
            result: None,
        });
        self.runnable.push(tid);
        self.start_waiting(tid);
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
            self.start_waiting(tid);
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
        if !self.kernel.woke_any() {
            return;
        }
        self.kernel.take_woken(&mut self.woken);
        for idx in 0..self.woken.len() {
            let tid = self.woken[idx];
            self.wake(tid, Wake::Woken);
        }
        self.woken.clear();
    }

    /// Picks the thread that runs after the current step, or `None` if none can run now.
    /// `access` is the call the current thread is about to make at its preemption point;
    /// `None` when it blocked or ended (or no thread runs).
    pub(crate) fn pick_next(&mut self, access: Option<Access>) -> Option<u32> {
        if self.runnable.is_empty() {
            return None;
        }
        let current = self.current;
        let step = self.step;
        if let (Some(me), Some(access)) = (current, access) {
            self.threads[me as usize].pending = access;
        }
        let next = if self.interest_on && self.decider.is_none() {
            self.strategy_pick(current, access, step)
        } else if let Some(mut schedule) = self.schedule.take() {
            let next = schedule.pick(self, current.filter(|_| access.is_some()));
            self.schedule = Some(schedule);
            next.unwrap_or_else(|| {
                // Every thread that could run is asleep, or the bound forbids the switch:
                // the rest of this run is covered by another one, or out of bounds.
                self.stop.get_or_insert(super::Outcome::Pruned);
                current
                    .filter(|t| self.runnable.contains(t))
                    .unwrap_or(self.runnable[0])
            })
        } else {
            match self.decider.as_ref().map(|decider| decider.replaying()) {
                None => self.strategy_pick(current, access, step),
                Some(replaying) => {
                    let default = super::decisions::Decider::default_pick(&self.runnable, current);
                    let chosen = match replaying {
                        true => self
                            .decider
                            .as_mut()
                            .and_then(|decider| decider.replayed_pick(&self.runnable))
                            .unwrap_or(default),
                        false => self.strategy_pick(current, access, step),
                    };
                    if let Some(decider) = self.decider.as_mut() {
                        decider.note_pick(chosen, default);
                    }
                    chosen
                }
            }
        };
        if Some(next) != current {
            self.trace.push(Record::Switch { step, to: next });
            if let (Some(me), Some(_)) = (current, access) {
                self.start_waiting(me);
            }
            self.stop_waiting(next);
        }
        Some(next)
    }

    /// Runnable thread `tid` waits to run: its next call counts in the interest.
    fn start_waiting(&mut self, tid: u32) {
        if !self.interest_on {
            return;
        }
        let pending = self.threads[tid as usize].pending;
        let mut footprint = self.access_footprint(pending);
        for &lock in &self.threads[tid as usize].locks_held {
            footprint = footprint.union(&Access::Lock(lock).footprint(&self.kernel));
        }
        if !self.threads[tid as usize].ran {
            // A new thread's first step touches nothing shared, but which step comes first
            // decides what the threads of a run meet: the walk offers a new thread at every
            // point until it ran, so that seeds vary how a run starts (measured: 263 of
            // 2,000 wake-flag-race seeds failed so, 127 without).
            footprint = Footprint::any();
        }
        self.interest.add(&footprint);
        self.threads[tid as usize].waiting = Some(footprint);
    }

    /// Thread `tid` runs: its next call leaves the interest, and becomes its last.
    pub(crate) fn stop_waiting(&mut self, tid: u32) {
        self.threads[tid as usize].ran = true;
        if let Some(footprint) = self.threads[tid as usize].waiting.take() {
            self.interest.remove(&footprint);
            let thread = &mut self.threads[tid as usize];
            thread.last_footprint = Some(footprint);
            thread.checked = 0;
        }
    }

    /// The footprint of `access` now, from the kernel's cache for calls on a descriptor.
    fn access_footprint(&mut self, access: Access) -> Footprint {
        match access {
            Access::Kernel(call) => self.kernel.footprint_cached(call),
            other => other.footprint(&self.kernel),
        }
    }

    /// The strategy's pick (no decision log involved).
    fn strategy_pick(&mut self, current: Option<u32>, access: Option<Access>, step: u64) -> u32 {
        if !self.picker.reduced() {
            return self
                .picker
                .pick(&self.runnable, current, step, &mut self.sched_rng);
        }
        match (current, access) {
            (Some(me), Some(access)) => self.reduced_pick(me, access),
            _ => self.picker.uniform(&self.runnable, &mut self.sched_rng),
        }
    }

    /// The reduced walk at `me`'s preemption point before `access`: keep `me` unless the
    /// countdown runs out or another runnable thread's next call is dependent on `access` or
    /// on `me`'s last call; then draw.
    fn reduced_pick(&mut self, me: u32, access: Access) -> u32 {
        if self.runnable.len() == 1 {
            self.threads[me as usize].last_footprint = None;
            return me;
        }
        if self.picker.preempts(&mut self.sched_rng) {
            self.threads[me as usize].last_footprint = None;
            return self
                .picker
                .uniform_other(&self.runnable, me, &mut self.sched_rng);
        }
        let generation = self.interest.generation;
        // The last call was checked against every thread that waited then; only threads
        // that started waiting since may be dependent on it.
        let last_checked = self.threads[me as usize].checked == generation;
        let alone = self.threads[me as usize].locks_held.is_empty();
        if last_checked && alone && self.known_free(access, generation) {
            self.threads[me as usize].last_footprint = None;
            return me;
        }
        let mut footprint = self.access_footprint(access);
        for &lock in &self.threads[me as usize].locks_held {
            footprint = footprint.union(&Access::Lock(lock).footprint(&self.kernel));
        }
        // Resolved after the fact when it was not resolved before the call.
        let last = match last_checked {
            true => None,
            false => Some(match self.threads[me as usize].last_footprint {
                Some(last) => last,
                None => self.access_footprint(self.threads[me as usize].last),
            }),
        };
        let threads = &self.threads;
        let waiting = |tid: u32| threads[tid as usize].waiting.is_some();
        let hit_now = self.interest.hits(&footprint, me, waiting);
        let hit = hit_now || last.is_some_and(|last| self.interest.hits(&last, me, waiting));
        let thread = &mut self.threads[me as usize];
        thread.last_footprint = Some(footprint);
        thread.checked = generation;
        if !hit_now && alone {
            self.note_free(access, generation);
        }
        if !hit {
            return me;
        }
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for &other in &self.runnable {
            let Some(theirs) = self.threads[other as usize].waiting else {
                continue;
            };
            if footprint.depends(me, &theirs, other)
                || last.is_some_and(|last| last.depends(me, &theirs, other))
            {
                candidates.push(other);
            }
        }
        let next = match candidates.is_empty() {
            true => me,
            false => self.picker.decide(me, &candidates, &mut self.sched_rng),
        };
        self.candidates = candidates;
        next
    }

    /// Whether `access` was found dependent on no waiting thread at `generation` (and its
    /// footprint has not changed since).
    fn known_free(&self, access: Access, generation: u64) -> bool {
        match access {
            Access::Kernel(call) => self.kernel.call_file(call).is_some_and(|(file, epoch)| {
                self.free_files.get(file as usize) == Some(&(generation, epoch))
            }),
            Access::Atomic { id, read } => {
                let (held, at, was_read) = self.free_atomics[id as usize % FREE_ATOMICS];
                held == id && at == generation && (read || !was_read)
            }
            _ => false,
        }
    }

    /// Remembers that `access` is dependent on no waiting thread at `generation`.
    fn note_free(&mut self, access: Access, generation: u64) {
        match access {
            Access::Kernel(call) => {
                if let Some((file, epoch)) = self.kernel.call_file(call) {
                    if self.free_files.len() <= file as usize {
                        self.free_files.resize(file as usize + 1, (0, 0));
                    }
                    self.free_files[file as usize] = (generation, epoch);
                }
            }
            Access::Atomic { id, read } => {
                self.free_atomics[id as usize % FREE_ATOMICS] = (id, generation, read);
            }
            _ => {}
        }
    }

    /// The footprint of `tid`'s next call now, with the locks it holds.
    pub(crate) fn pending_footprint(&self, tid: u32) -> Footprint {
        let thread = &self.threads[tid as usize];
        let mut footprint = thread.pending.footprint(&self.kernel);
        for &lock in &thread.locks_held {
            footprint = footprint.union(&Access::Lock(lock).footprint(&self.kernel));
        }
        footprint
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

    /// Counts one step, in which the current thread makes `call`: the clock moves, due
    /// deliveries happen, and healing starts when due.
    pub(crate) fn tick(&mut self, call: Access) {
        self.step += 1;
        self.now_ns += self.config.call_cost_ns;
        self.kernel.set_clock(self.now_ns);
        if let Some(tid) = self.current {
            let thread = &mut self.threads[tid as usize];
            thread.last_step = self.step;
            thread.last = call;
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
        if self.step == self.half_steps {
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
        self.picker.make_fair(&mut self.sched_rng);
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
