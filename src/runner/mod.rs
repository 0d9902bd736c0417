//! Running a scenario: in the simulator from a seed (deterministic, with a verdict and a
//! diagnosis), or on Linux over loopback (bounded in time), through the same driver.

pub(crate) mod diagnose;
mod drive;
mod exhaustive;
mod explore;

pub use diagnose::hazard_line;
pub use drive::{drive, idle_steps, Driven, IDLE_WINDOW};
pub use exhaustive::{environment, exhaustive, Completion, Exhausted, Limits};
pub(crate) use explore::{check_seed, explored, for_each_seed, Tally};
pub use explore::{explore, shard, Explored};

use crate::os::{RealOs, SimOs};
use crate::scenario::{Scenario, Verdict};
use crate::swarm::{self, Tolerance};
use crate::workload::{ClientError, Progress};
use sim::kernel::Config;
use sim::sched::{derive_seed, Hazard, Outcome, Record, Strategy, WorldConfig};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Steps the server may take in [`IDLE_WINDOW`] with nothing to do before it counts as
/// spinning. A step costs a microsecond of virtual time, so this is a fifth of the window
/// spent calling, as [`REAL_IDLE_CPU_US_MAX`] is a fifth of a core on Linux. A busy loop
/// fills the whole window (about 10,000 steps); a correct loop sleeps in `epoll_wait`, or
/// finishes leftovers in short bursts between sleeps (connections an injected EMFILE kept
/// in the accept queue, taken one per back-off: a hundred steps or so, which the first
/// threshold of 100 took for a spin).
pub const IDLE_STEPS_MAX: u64 = 2_000;

/// How a run went.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The verdict.
    pub verdict: Verdict,
    /// The seed (0 on Linux, which has none).
    pub seed: u64,
    /// Steps taken (simulator).
    pub steps: u64,
    /// Thread switches (simulator).
    pub switches: u64,
    /// Scheduling decisions: picks that drew from the schedule stream (simulator).
    pub decisions: u64,
    /// Virtual (simulator) or wall (Linux) time the run took, in ms.
    pub elapsed_ms: f64,
    /// The step at which faults stopped and the schedule became fair.
    pub heal_step: u64,
    /// The hash of the whole trace.
    pub trace_hash: u64,
    /// Why the verdict is what it is, from the kernel's point of view.
    pub diagnosis: Vec<String>,
    /// Undrained edges found (when the run observed them).
    pub hazards: Vec<Hazard>,
    /// Trace lines, when asked for: the whole run, or the end of a long one.
    pub trace: Vec<String>,
    /// The environment swarm mode drew for this seed (`swarm: ...`), when it was on.
    pub environment: Option<String>,
}

impl RunResult {
    /// The contract's last line: `verdict=<v> seed=<n> steps=<n> ...`.
    pub fn summary(&self) -> String {
        format!(
            "verdict={} seed={} steps={} switches={} virtual_ms={:.3} hazards={} heal_step={} trace_hash={:016x}",
            self.verdict.name(),
            self.seed,
            self.steps,
            self.switches,
            self.elapsed_ms,
            self.hazards.len(),
            self.heal_step,
            self.trace_hash
        )
    }
}

/// Trace lines kept at most in a result (the tail of a long run, where failures show).
pub const TRACE_LINES_MAX: usize = 400;

/// The simulator's configuration for `scenario` at `seed`: every sub-seed and the length of
/// the fault phase derive from `seed`. `scenario` is taken as it is: resolve its swarm
/// environment first ([`crate::swarm::resolve`]).
pub fn world_config(scenario: &Scenario, seed: u64, keep_trace: bool) -> WorldConfig {
    let sim = &scenario.sim;
    let max_steps = sim.step_budget(&scenario.clients);
    // Faults (and PCT's unfair priorities) rule the first part of the run; then the run
    // heals, so a stall after that is the code's fault, not the adversary's.
    let heal_step = max_steps / 10 + derive_seed(seed, 9) % (max_steps / 5).max(1);
    WorldConfig {
        seed,
        kernel: Config {
            edge: sim.edge,
            tcp_sndbuf_bytes: sim.sndbuf_bytes,
            tcp_rcvbuf_bytes: sim.rcvbuf_bytes,
            fd_limit: sim.fd_limit,
            latency_ns_max: sim.latency_us_max * 1_000,
            accept_emfile_window_ns: sim.emfile_window_ms * 1_000_000,
            faults: sim.faults.kernel.clone(),
            ..Config::default()
        },
        strategy: match sim.strategy {
            Strategy::Pct { depth, .. } => Strategy::Pct {
                depth,
                steps_hint: scenario.clients.steps_estimate().min(max_steps),
            },
            Strategy::RandomWalk => Strategy::RandomWalk,
            Strategy::EveryCall => Strategy::EveryCall,
        },
        switch_bias: sim.switch_bias,
        max_steps,
        keep_trace,
        faults: sim.faults.sched.clone(),
        heal_at_step: Some(heal_step),
        // The hazard observer expects the thread that takes an edge to read it; the netpoller
        // hands edges to other threads, so there it would only raise false alarms (the
        // netpoll diagnosis explains stalls instead).
        observe: keep_trace && !scenario.server.netpoll,
        ..WorldConfig::default()
    }
}

/// Runs `scenario` in the simulator at `seed`. With `keep_trace` the run also records its
/// trace and watches for hazards (neither changes the run).
pub fn run_sim(scenario: &Scenario, seed: u64, keep_trace: bool) -> RunResult {
    let options = SimOptions {
        keep_trace,
        ..SimOptions::default()
    };
    run_sim_report(scenario, seed, &options).0
}

/// What a simulated run records besides its verdict.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Keep the trace and watch for hazards.
    pub keep_trace: bool,
    /// Record the decision log (the report carries it).
    pub record_decisions: bool,
    /// Replay this decision log instead of drawing decisions from the seed.
    pub replay: Option<sim::sched::Decisions>,
    /// Follow this schedule of the exhaustive search; its calls cost no virtual time and
    /// faults never heal (see `runner::exhaustive`).
    pub schedule: Option<sim::sched::Schedule>,
}

/// Runs `scenario` in the simulator at `seed` as [`run_sim`] does, and also returns the
/// simulator's report (trace records, threads, decision log, the kernel at the end), for the
/// pictures and the shrinker.
pub fn run_sim_report(
    scenario: &Scenario,
    seed: u64,
    options: &SimOptions,
) -> (RunResult, sim::sched::Report) {
    let keep_trace = options.keep_trace;
    let given = scenario;
    let scenario = &swarm::resolve(given, seed, Tolerance::of_standard_clients(given));
    let mut config = world_config(scenario, seed, keep_trace);
    config.record_decisions = options.record_decisions;
    config.replay = options.replay.clone();
    if options.schedule.is_some() {
        config.schedule = options.schedule.clone();
        config.call_cost_ns = 0;
        config.heal_at_step = None;
    }
    let heal_step = config.heal_at_step.unwrap_or(0);
    let progress = Arc::new(Progress::new());
    let driven: Rc<RefCell<Option<Driven>>> = Rc::new(RefCell::new(None));
    let mut report = {
        let (scenario, driven, progress) =
            (scenario.clone(), Rc::clone(&driven), Arc::clone(&progress));
        SimOs::run(config, move |os| {
            let result = drive(&os, &scenario, seed, progress, sim::sys::steps, None);
            *driven.borrow_mut() = Some(result);
        })
    };
    let driven = driven.borrow_mut().take().unwrap_or_default();
    let netpoll = scenario.server.netpoll;
    let (verdict, diagnosis) = judge(&mut report, &progress, netpoll, |report| {
        finished(report, driven, Vec::new(), diagnose::leaks(&report.kernel))
    });
    let mut result = result_of(&report, seed, heal_step, keep_trace, verdict, diagnosis);
    result.environment = swarm::describe(given, &scenario.sim);
    (result, report)
}

/// The verdict of a simulated run from how it ended; `finished` judges a run whose main
/// thread returned. The harness shares these rules with the scenario runner.
pub(crate) fn judge(
    report: &mut sim::sched::Report,
    progress: &Progress,
    netpoll: bool,
    finished: impl FnOnce(&sim::sched::Report) -> (Verdict, Vec<String>),
) -> (Verdict, Vec<String>) {
    match &report.outcome {
        Outcome::Crash { tid, name, message } => (
            Verdict::Crash,
            vec![format!("t{tid} {name} panicked: {message}")],
        ),
        Outcome::BusyRetry { tid, name, call } => {
            let mut lines = vec![format!(
                "t{tid} {name} made the same failing call {} times in a row without blocking: {call} (a busy retry loop; a correct loop waits before it tries again)",
                sim::sched::BUSY_RETRIES_MAX
            )];
            lines.extend(diagnose::busiest_thread(report, &report.threads));
            (Verdict::Spin, lines)
        }
        Outcome::Deadlock => (Verdict::Stall, stall_lines(report, netpoll)),
        Outcome::MaxSteps => {
            let quiet_ns = report.now_ns.saturating_sub(progress.last_ns());
            if let Some(line) = hogged(report) {
                // Clients crawl because one server thread takes nearly every step.
                let mut lines = vec![line];
                lines.extend(diagnose::busiest_thread(report, &report.threads));
                (Verdict::Spin, lines)
            } else if quiet_ns * 2 < report.now_ns {
                (
                    Verdict::Inconclusive,
                    vec![format!(
                        "the step budget ran out while clients still progressed ({} bytes echoed)",
                        progress.bytes()
                    )],
                )
            } else if report.idle_ns * 2 > report.now_ns {
                // Timers keep firing but nothing moves: a stall that a periodic tick hides
                // (an accept loop backing off from a full descriptor table, say).
                (Verdict::Stall, stall_lines(report, netpoll))
            } else {
                let mut lines = vec![format!(
                    "no client progress for the last {:.3} ms of virtual time while threads kept running",
                    quiet_ns as f64 / 1e6
                )];
                lines.extend(diagnose::spin(report));
                (Verdict::Spin, lines)
            }
        }
        Outcome::Finished => finished(report),
        // Only the exhaustive search cuts runs short, and it does not judge those.
        Outcome::Pruned => (
            Verdict::Inconclusive,
            vec!["the exhaustive search cut the run short (an order it already ran)".to_string()],
        ),
    }
}

/// A server thread's share of the steps in the second half of the step budget above which a
/// run that spent its budget was a busy loop, not slow progress: serving clients, a loop
/// takes about as many steps as they do (a read and a write per message each side).
const HOG_SHARE_MIN: f64 = 0.9;

/// A stall's diagnosis: what the kernel holds and, for the netpoller, which parked thread
/// should have read it.
fn stall_lines(report: &mut sim::sched::Report, netpoll: bool) -> Vec<String> {
    let mut lines = diagnose::stall(report);
    if netpoll {
        lines.extend(crate::netpoll::diagnose_stall(report));
    }
    lines
}

/// The server thread (the clients, and the driver `main`, do not count) that took the most
/// of the steps `steps_of` counts, with the total of those steps and its share of them.
fn busiest_server_thread(
    report: &sim::sched::Report,
    steps_of: fn(&sim::sched::ThreadInfo) -> u64,
) -> Option<(&sim::sched::ThreadInfo, u64, f64)> {
    let total: u64 = report.threads.iter().map(steps_of).sum();
    let hog = report
        .threads
        .iter()
        .filter(|t| t.name != "main" && !t.name.starts_with("client"))
        .max_by_key(|t| steps_of(t))?;
    (total > 0).then(|| (hog, total, steps_of(hog) as f64 / total as f64))
}

/// The line saying which server thread took nearly every step of the second half of the
/// run, if one did.
fn hogged(report: &sim::sched::Report) -> Option<String> {
    // A loop that sleeps between its calls (a listener paused for 100 ms after each EMFILE)
    // may take every step of an otherwise idle world without being busy.
    if report.idle_ns * 2 > report.now_ns {
        return None;
    }
    let (hog, total, share) = busiest_server_thread(report, |t| t.steps_late)?;
    (share >= HOG_SHARE_MIN).then(|| {
        format!(
            "the step budget ran out while t{} {} took {:.0}% of the last {total} steps: a loop that never waits, with the clients crawling behind it",
            hog.tid,
            hog.name,
            share * 100.0
        )
    })
}

/// Steps a finished run must take before one thread's share of them can say it spun: in
/// a short run a loop with little to wait for may take most steps while serving.
const HOGGED_RUN_STEPS_MIN: u64 = 50_000;

/// The line saying which server thread took nearly every step of a long run that finished,
/// if one did: the clients got their echoes, but only while a loop that never waits burned
/// the processor beside them (a level-triggered OUT interest with nothing to write, say).
fn hogged_run(report: &sim::sched::Report) -> Option<String> {
    if report.idle_ns * 2 > report.now_ns {
        return None;
    }
    let (hog, total, share) = busiest_server_thread(report, |t| t.steps)?;
    (total >= HOGGED_RUN_STEPS_MIN && share >= HOG_SHARE_MIN).then(|| {
        format!(
            "t{} {} took {:.0}% of the run's {total} steps: a loop that never waits, although its clients finished",
            hog.tid,
            hog.name,
            share * 100.0
        )
    })
}

/// The verdict of a run whose driver returned, in order: a server that failed, clients
/// that failed (`other_failures` are the harness's own clients), a server busy with
/// nothing to do, descriptors left open (`leaks`).
pub(crate) fn finished(
    report: &sim::sched::Report,
    driven: Driven,
    other_failures: Vec<String>,
    leaks: Vec<String>,
) -> (Verdict, Vec<String>) {
    if let Some(error) = driven.server_error {
        return (Verdict::Crash, vec![error]);
    }
    let mut failures = other_failures;
    failures.extend(
        driven
            .clients
            .iter()
            .filter_map(|(id, result)| result.as_ref().err().map(|e| format!("client{id}: {e}"))),
    );
    if !failures.is_empty() {
        // The cause a client cannot see: another thread got the readiness of its socket.
        failures.extend(diagnose::shared_wakeups(report));
        return (Verdict::Corrupt, failures);
    }
    if driven.idle_steps > IDLE_STEPS_MAX {
        let mut lines = vec![format!(
            "the server took {} steps in {} ms with no client left (a correct loop sleeps in epoll_wait)",
            driven.idle_steps,
            IDLE_WINDOW.as_millis()
        )];
        lines.extend(diagnose::busiest_thread(report, &report.threads));
        return (Verdict::Spin, lines);
    }
    if let Some(line) = hogged_run(report) {
        let mut lines = vec![line];
        lines.extend(diagnose::busiest_thread(report, &report.threads));
        return (Verdict::Spin, lines);
    }
    if !leaks.is_empty() {
        return (Verdict::Leak, leaks);
    }
    (Verdict::Pass, Vec::new())
}

/// The result of a simulated run, from its report and verdict.
pub(crate) fn result_of(
    report: &sim::sched::Report,
    seed: u64,
    heal_step: u64,
    keep_trace: bool,
    verdict: Verdict,
    diagnosis: Vec<String>,
) -> RunResult {
    RunResult {
        verdict,
        seed,
        steps: report.steps,
        switches: report.switches,
        decisions: report.decisions_drawn,
        elapsed_ms: report.now_ns as f64 / 1e6,
        heal_step,
        trace_hash: report.trace.hash(),
        diagnosis,
        hazards: report.hazards.clone(),
        environment: None,
        trace: if keep_trace {
            trace_tail(report)
        } else {
            Vec::new()
        },
    }
}

/// The thread legend, then the last [`TRACE_LINES_MAX`] calls and events (switches are in
/// the hash but not printed: each line names its thread).
pub(crate) fn trace_tail(report: &sim::sched::Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .threads
        .iter()
        .map(|t| format!("thread t{} = {}", t.tid, t.name))
        .collect();
    let shown: Vec<&Record> = report
        .trace
        .records()
        .iter()
        .filter(|r| !matches!(r, Record::Switch { .. }))
        .collect();
    let start = shown.len().saturating_sub(TRACE_LINES_MAX);
    if start > 0 {
        lines.push(format!("... {start} earlier records not shown"));
    }
    lines.extend(shown[start..].iter().map(|r| r.to_string()));
    lines
}

/// CPU time, in microseconds, the server may use in one [`IDLE_WINDOW`] with nothing to do
/// before a real run counts as spinning: a fifth of a core, far above what a sleeping loop
/// costs and far below what a busy one does.
pub const REAL_IDLE_CPU_US_MAX: u64 = 2_000;

/// CPU time used so far by every thread of this process except the caller, in microseconds:
/// on Linux the stand-in for the simulator's step counter (from each thread's
/// `/proc/self/task/TID/schedstat`, whose first field is nanoseconds on a CPU). Threads that
/// exit meanwhile drop out of the sum, which can only hide CPU time, never invent it.
fn cpu_us_of_other_threads() -> u64 {
    let me = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()));
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut total_ns = 0u64;
    for task in tasks.flatten() {
        if Some(task.file_name()) == me {
            continue;
        }
        let on_cpu_ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok());
        total_ns += on_cpu_ns.unwrap_or(0);
    }
    total_ns / 1_000
}

/// Runs `scenario` on Linux over loopback with real threads. A client that sees no progress
/// for `stall_after` reports a stall, so the run is bounded.
///
/// The spin check counts the CPU time of every other thread of this process, so run it in a
/// process of its own (as `edgesim run --backend real` does), not beside other busy threads.
pub fn run_real(scenario: &Scenario, stall_after: Duration) -> RunResult {
    let os = RealOs::new();
    let start = Instant::now();
    let progress = Arc::new(Progress::new());
    let driven = drive(
        &os,
        scenario,
        0,
        progress,
        cpu_us_of_other_threads,
        Some(stall_after),
    );
    let mut verdict = Verdict::Pass;
    let mut diagnosis = Vec::new();
    if let Some(error) = &driven.server_error {
        verdict = Verdict::Crash;
        diagnosis.push(error.clone());
    }
    // The netpoll server keeps deadline timers; only the reactor server must be fully idle.
    if !scenario.server.netpoll && driven.idle_steps > REAL_IDLE_CPU_US_MAX {
        verdict = Verdict::Spin;
        diagnosis.push(format!(
            "the server used {} us of CPU in {} ms while it had nothing to do (a correct loop \
             sleeps in epoll_wait)",
            driven.idle_steps,
            IDLE_WINDOW.as_millis()
        ));
    }
    judge_real_clients(&mut verdict, &mut diagnosis, &driven.clients);
    real_result(verdict, diagnosis, start)
}

/// Folds the standard clients' results of a Linux run into its verdict: a client that saw
/// no progress for its bound makes it `stall`, one that saw wrong bytes `corrupt`.
pub(crate) fn judge_real_clients(
    verdict: &mut Verdict,
    diagnosis: &mut Vec<String>,
    clients: &[(u32, Result<crate::workload::ClientReport, ClientError>)],
) {
    for (id, result) in clients {
        let Err(error) = result else { continue };
        diagnosis.push(format!("client{id}: {error}"));
        let this = match error {
            ClientError::Stalled { .. } => Verdict::Stall,
            _ => Verdict::Corrupt,
        };
        if *verdict == Verdict::Pass || this == Verdict::Stall {
            *verdict = this;
        }
    }
}

/// The result of a Linux run begun at `start`: no seed, steps or trace.
pub(crate) fn real_result(verdict: Verdict, diagnosis: Vec<String>, start: Instant) -> RunResult {
    RunResult {
        verdict,
        seed: 0,
        steps: 0,
        switches: 0,
        decisions: 0,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        heal_step: 0,
        trace_hash: 0,
        diagnosis,
        hazards: Vec::new(),
        trace: Vec::new(),
        environment: None,
    }
}
