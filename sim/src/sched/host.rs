//! The host loop and the context switch: the only place in edgesim, besides the `real`
//! crate, that uses `unsafe`.
//!
//! The host (the OS thread that called [`run`]) resumes one coroutine at a time. A simulated
//! thread gives control back at a preemption point when the strategy picked another thread,
//! when it blocks, or when it ends. It picks its successor itself and hands it over in the
//! value it yields ([`Handoff`]), so on most turns the host only has to resume it.

use super::access::Access;
use super::world::{install, uninstall, with_world, Block, ThreadInfo, ThreadState, Wake, World};
use super::{Record, Trace, WorldConfig};
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The main thread returned.
    Finished,
    /// No thread can run and nothing is pending (no timer, no in-flight data): the threads
    /// still blocked will wait forever.
    Deadlock,
    /// The step budget ran out while threads could still run.
    MaxSteps,
    /// The exhaustive search stopped the run: each thread that could run next would only
    /// repeat an order already run (or needs a preemption beyond the bound).
    Pruned,
    /// A thread made the same failing call [`BUSY_RETRIES_MAX`](super::BUSY_RETRIES_MAX)
    /// times in a row without blocking in between: a busy retry loop (accept after EMFILE
    /// retried at once, say).
    BusyRetry {
        /// The thread.
        tid: u32,
        /// Its name.
        name: String,
        /// The call as the trace writes it, with its result (`accept(4) = EMFILE`).
        call: String,
    },
    /// A simulated thread panicked.
    Crash {
        /// The thread.
        tid: u32,
        /// Its name.
        name: String,
        /// The panic message.
        message: String,
    },
}

/// What a run produced.
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Steps taken (preemption points passed).
    pub steps: u64,
    /// Virtual time at the end, in ns.
    pub now_ns: u64,
    /// Virtual time during which no thread could run, in ns.
    pub idle_ns: u64,
    /// Thread switches made.
    pub switches: u64,
    /// Every thread and its final state.
    pub threads: Vec<ThreadInfo>,
    /// The trace.
    pub trace: Trace,
    /// The kernel as it was at the end, for the checkers.
    pub kernel: crate::kernel::Kernel,
    /// Hazards found (empty unless the run observed them).
    pub hazards: Vec<super::Hazard>,
    /// Readiness handed to two threads at once (when the run observed them).
    pub shared_wakeups: Vec<super::SharedWakeup>,
    /// The decisions the run took, when it recorded or replayed them.
    pub decisions: Option<super::Decisions>,
    /// Picks that drew from the schedule stream (decisions among two threads or more).
    pub decisions_drawn: u64,
    /// The schedule of the exhaustive search the run followed, with the choice points it
    /// went through.
    pub schedule: Option<super::Schedule>,
}

type Thread = Coroutine<(), Handoff, ()>;

/// What a suspending thread tells the host.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Handoff {
    /// Resume this thread next. The suspending thread already made it the world's current
    /// thread, and nothing else needs the host (no stop, no thread to create), so the host
    /// resumes it without visiting the world.
    Direct(u32),
    /// Look at the world: the run may be over, threads may have been spawned, or no thread
    /// may be runnable.
    Host,
}

thread_local! {
    /// The yielder of the coroutine running now. It is set by the coroutine itself each time
    /// it starts or resumes, and only read by that same coroutine while it runs.
    static YIELDER: Cell<*const Yielder<(), Handoff>> = const { Cell::new(std::ptr::null()) };
    /// Coroutine stacks of finished threads, for the threads of the next runs on this OS
    /// thread. A fresh stack is an mmap, page faults as it is touched and a munmap at the
    /// end; exploring many short runs spent a tenth of its time doing that.
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
}

/// Stacks kept for reuse per OS thread (each is 1 MiB of address space; only the pages a
/// thread touched are resident).
const STACKS_KEPT_MAX: usize = 64;

/// A stack for a new coroutine: a recycled one if there is one.
fn take_stack() -> DefaultStack {
    STACKS
        .with(|stacks| stacks.borrow_mut().pop())
        .unwrap_or_default()
}

/// Keeps the stack of a finished coroutine for the next thread.
fn recycle_stack(coroutine: Thread) {
    let stack = coroutine.into_stack();
    STACKS.with(|stacks| {
        let mut stacks = stacks.borrow_mut();
        if stacks.len() < STACKS_KEPT_MAX {
            stacks.push(stack);
        }
    });
}

/// Runs `main` as thread 0 of a new world built from `config`, until it returns, the world
/// deadlocks, the step budget runs out, or a thread panics.
///
/// Threads still alive at the end are unwound (their destructors run, their calls do not
/// switch any more).
pub fn run<F: FnOnce() + 'static>(config: WorldConfig, main: F) -> Report {
    install(World::new(config));
    with_world(|w| {
        w.spawn("main", Box::new(main));
        w.stop_waiting(0);
        w.next = Some(0);
    });
    let mut coroutines: Vec<Option<Thread>> = Vec::new();
    // Threads spawned since the last turn; swapped with the world's list, so that neither
    // side allocates once both have grown.
    let mut pending: Vec<(u32, Box<dyn FnOnce()>)> = Vec::new();
    // Every suspension is a switch; the host counts them as they come back to it.
    let mut switches = 0u64;
    // The thread the last one to suspend handed over to directly, if it did.
    let mut direct: Option<u32> = None;
    let outcome = loop {
        let next = match direct.take() {
            Some(tid) => Some(tid),
            None => {
                // One visit to the thread-local per turn: the stop flag, the spawned threads,
                // the next thread, and marking it current are read and written together.
                let turn = with_world(|w| {
                    if let Some(outcome) = w.stop.take() {
                        return Err(outcome);
                    }
                    if !w.pending_spawn.is_empty() {
                        std::mem::swap(&mut w.pending_spawn, &mut pending);
                    }
                    let next = w.next.take().or_else(|| w.pick_next(None));
                    if let Some(outcome) = w.stop.take() {
                        // The exhaustive search pruned the run at this very pick.
                        return Err(outcome);
                    }
                    if next.is_some() {
                        w.current = next;
                    }
                    Ok(next)
                });
                match turn {
                    Ok(next) => next,
                    Err(outcome) => break outcome,
                }
            }
        };
        if !pending.is_empty() {
            for (tid, body) in pending.drain(..) {
                debug_assert_eq!(tid as usize, coroutines.len());
                coroutines.push(Some(new_thread(tid, body)));
            }
        }
        let Some(tid) = next else {
            if with_world(|w| w.advance_idle()) {
                continue;
            }
            break Outcome::Deadlock;
        };
        let coroutine = coroutines[tid as usize]
            .as_mut()
            .expect("a runnable thread has a coroutine");
        match coroutine.resume(()) {
            CoroutineResult::Yield(handoff) => {
                switches += 1;
                if let Handoff::Direct(tid) = handoff {
                    direct = Some(tid);
                }
            }
            CoroutineResult::Return(()) => {
                if let Some(finished) = coroutines[tid as usize].take() {
                    recycle_stack(finished);
                }
                let main_done = with_world(|w| {
                    w.current = None;
                    tid == 0
                });
                if main_done {
                    break Outcome::Finished;
                }
            }
        }
    };
    // The report describes the world as the run left it, before anything unwinds.
    let threads = with_world(|w| {
        w.tearing_down = true;
        w.current = None;
        w.thread_infos()
    });
    // Dropping a suspended coroutine unwinds its stack; calls made by destructors on the way
    // see `tearing_down` and never switch. Each one unwinds as the current thread, so that
    // the calls its destructors make are attributed to it. Threads suspended inside a lock's
    // critical section go first: their unwinding releases the data, which a destructor of
    // another thread may need (taken while a holder still sits on it, it would block the
    // one OS thread for good).
    let holders_first = with_world(|w| {
        let mut order: Vec<usize> = (0..coroutines.len()).collect();
        order.sort_by_key(|&tid| w.threads[tid].locks_held.is_empty());
        order
    });
    for tid in holders_first {
        if let Some(mut coroutine) = coroutines[tid].take() {
            with_world(|w| w.current = Some(tid as u32));
            // What dropping it would do, keeping the stack.
            coroutine.force_unwind();
            recycle_stack(coroutine);
        }
    }
    with_world(|w| w.current = None);
    let mut world = uninstall();
    let (hazards, shared_wakeups) = world
        .observer
        .take()
        .map(|observer| (observer.hazards, observer.shared_wakeups))
        .unwrap_or_default();
    let outcome = match (&outcome, first_panic(&world)) {
        (Outcome::Crash { .. }, _) | (_, None) => outcome,
        (_, Some(crash)) => crash,
    };
    Report {
        outcome,
        steps: world.step,
        now_ns: world.now_ns,
        idle_ns: world.idle_ns,
        switches,
        threads,
        trace: world.trace,
        kernel: world.kernel,
        hazards,
        shared_wakeups,
        decisions: world.decider.take().map(|decider| decider.taken),
        decisions_drawn: world.picker.decisions,
        schedule: world.schedule.take().map(|schedule| *schedule),
    }
}

fn first_panic(world: &World) -> Option<Outcome> {
    world
        .threads
        .iter()
        .enumerate()
        .find_map(|(tid, t)| match &t.result {
            Some(Err(message)) => Some(Outcome::Crash {
                tid: tid as u32,
                name: t.name.clone(),
                message: message.clone(),
            }),
            _ => None,
        })
}

fn new_thread(tid: u32, body: Box<dyn FnOnce()>) -> Thread {
    Coroutine::with_stack(take_stack(), move |yielder: &Yielder<(), Handoff>, ()| {
        YIELDER.with(|y| y.set(yielder));
        let result = catch_unwind(AssertUnwindSafe(body));
        let tearing_down = with_world(|w| w.tearing_down);
        match result {
            Ok(()) => with_world(|w| w.set_done(tid, Ok(()))),
            // A forced unwind at teardown is not the thread's failure: let it continue.
            Err(payload) if tearing_down => std::panic::resume_unwind(payload),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                with_world(|w| {
                    w.set_done(tid, Err(message.clone()));
                    if w.stop.is_none() {
                        w.stop = Some(Outcome::Crash {
                            tid,
                            name: w.threads[tid as usize].name.clone(),
                            message,
                        });
                    }
                });
            }
        }
    })
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Gives control back to the host, telling it what to resume next.
fn suspend(handoff: Handoff) {
    let yielder = YIELDER.with(|y| y.get());
    debug_assert!(!yielder.is_null());
    // SAFETY: `YIELDER` was set by the coroutine that is running now, at its start and again
    // below after every resume, and the `Yielder` it points to lives on that coroutine's
    // stack until the coroutine returns. Only simulated threads call `suspend` (every caller
    // holds `World::current`), so the pointer is the running coroutine's own yielder.
    unsafe { (*yielder).suspend(handoff) };
    // Another coroutine ran meanwhile and left its own yielder here.
    YIELDER.with(|y| y.set(yielder));
}

/// A preemption point before `access`: lets the strategy switch to another thread, then
/// counts a step for the call about to run. The step is counted after the switch, so that
/// step numbers follow the order in which calls take effect and each call has its own.
pub(crate) fn preempt(access: Access) {
    preempt_then(access, |_| ());
}

/// [`preempt`], then `call` on the world as the step's call. When the strategy keeps the
/// running thread, as the reduced walk mostly does, the `hold` check, the pick, the step and
/// the call share one visit to the world: a call is a handful of visits, and each costs.
pub(crate) fn preempt_then<R>(access: Access, call: impl FnOnce(&mut World) -> R) -> R {
    let mut call = Some(call);
    let visit = with_world(|w| match hold_due(w, access) {
        Some(until) => Err(until),
        None => Ok(pick_and_call(w, access, &mut call)),
    });
    let visit = visit.unwrap_or_else(|until| {
        block(Block::Held, Some(until), access);
        with_world(|w| pick_and_call(w, access, &mut call))
    });
    let made = match visit {
        Visit::Made(made) => made,
        Visit::Switch(handoff) => {
            suspend(handoff);
            with_world(|w| step_and_call(w, access, &mut call))
        }
    };
    if let Some(result) = made {
        return result;
    }
    // The step budget ran out: the host ends the run and never resumes this thread (its
    // stack unwinds from inside `suspend`).
    suspend(Handoff::Host);
    with_world(|w| (call.take().expect("the call has not been made"))(w))
}

/// What the pick at a preemption point came to.
enum Visit<R> {
    /// Another thread runs first.
    Switch(Handoff),
    /// The thread stayed and made its call (`None`: the step budget ran out first).
    Made(Option<R>),
}

/// The strategy's pick at a preemption point before `access`, then, if the running thread
/// stays, its step and `call`.
fn pick_and_call<R>(
    w: &mut World,
    access: Access,
    call: &mut Option<impl FnOnce(&mut World) -> R>,
) -> Visit<R> {
    if !w.tearing_down {
        let me = w.current;
        let next = w.pick_next(Some(access));
        if next != me {
            return Visit::Switch(w.hand_off(next));
        }
    }
    Visit::Made(step_and_call(w, access, call))
}

/// The stream the lengths of holds derive from (after the world's streams 1 to 3).
const HOLD_STREAM: u64 = 4;

/// The `hold` fault: before its next call (`access`), the current thread may be held off the
/// processor for a while, as if the host's scheduler had preempted it (the time it is held
/// until, if so); more often before an atomic access or a lock
/// ([`super::HOLD_AT_SYNC_FACTOR`]). It then blocks with a deadline, so the clock advances
/// even when no other thread can run. Checked in the same visit to the world as the pick
/// that follows it.
///
/// The length is a function of the seed and the step, not a draw from the fault stream: a
/// run replayed from its decision log (which records whether each fault fired, not what it
/// drew) holds the thread for the same time.
fn hold_due(w: &mut World, access: Access) -> Option<u64> {
    let mut p = w.config.faults.hold;
    if w.tearing_down || p <= 0.0 {
        return None;
    }
    if matches!(access, Access::Atomic { .. } | Access::Lock(_)) {
        p = (p * super::HOLD_AT_SYNC_FACTOR).min(super::HOLD_AT_SYNC_P_MAX);
    }
    if !w.fault(p, "hold") {
        return None;
    }
    let span = super::HOLD_NS_MAX - super::HOLD_NS_MIN;
    let stream = super::derive_seed(w.config.seed, HOLD_STREAM);
    let length = super::HOLD_NS_MIN + super::derive_seed(stream, w.step) % span;
    Some(w.now_ns + length)
}

/// Counts the step of `access` and makes the call, unless the run must stop first.
fn step_and_call<R>(
    w: &mut World,
    access: Access,
    call: &mut Option<impl FnOnce(&mut World) -> R>,
) -> Option<R> {
    if !w.tearing_down {
        w.tick(access);
        if w.stop.is_some() {
            return None;
        }
    }
    call.take().map(|call| call(w))
}

/// Blocks the current thread on `block` until it is woken or `deadline` (virtual ns) passes;
/// `resume` is the call it makes when it comes back.
pub(crate) fn block(block: Block, deadline: Option<u64>, resume: Access) -> Wake {
    let handoff = with_world(|w| {
        if w.tearing_down {
            return None;
        }
        let me = w.current_tid();
        let step = w.step;
        w.trace.push(Record::Blocked {
            step,
            tid: me,
            block,
        });
        w.set_blocked(me, block, deadline);
        w.threads[me as usize].pending = resume;
        let next = w.pick_next(None);
        Some(w.hand_off(next))
    });
    let Some(handoff) = handoff else {
        return Wake::Timeout;
    };
    suspend(handoff);
    let (wake, stop) = with_world(|w| {
        let me = w.current_tid();
        debug_assert_eq!(w.threads[me as usize].state, ThreadState::Runnable);
        // Coming back is a step of its own, so the call's result gets its own number.
        if !w.tearing_down {
            w.tick(resume);
        }
        (w.threads[me as usize].wake, w.stop.is_some())
    });
    if stop {
        // The step budget ran out on this very step: the host ends the run here.
        suspend(Handoff::Host);
    }
    wake
}
