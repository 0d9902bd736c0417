//! Shrinking a failing run to a smaller one that fails the same way: first the scenario
//! (fewer clients, messages, bytes, reactors, workers and fault kinds), then the schedule
//! (fewer preemptions, by deleting entries of the recorded decision log).
//!
//! "The same way" is the same verdict and the same cause: for a stall, the same kind of
//! diagnosis (an undrained edge, a connection never accepted, bytes held in user space...);
//! for other verdicts, the first diagnosis line with its numbers taken out. A scenario change
//! is tried at the current seed and a few more, because a smaller workload shifts every
//! random draw; the schedule is shrunk by replaying decision logs, which keeps the rest of
//! the run fixed. Both phases stop at a budget of runs and of wall-clock time.

use crate::runner::{run_sim_report, RunResult, SimOptions};
use crate::scenario::{Scenario, SimSpec, Verdict, KNOBS};
use crate::swarm::{self, Tolerance};
use sim::sched::{derive_seed, Decisions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How much work the shrinker may do.
#[derive(Copy, Clone, Debug)]
pub struct Budget {
    /// Simulated runs at most.
    pub runs_max: u64,
    /// Wall-clock seconds at most.
    pub secs_max: u64,
    /// Simulated steps at most, summed over all runs.
    pub steps_max: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            runs_max: 3_000,
            secs_max: 120,
            steps_max: 100_000_000,
        }
    }
}

/// Seeds tried for each scenario change besides the current one (halved, since scenario
/// files hold seeds up to `i64::MAX`).
const EXTRA_SEEDS: u64 = 3;

/// The size of a run, for the before/after lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    /// Clients.
    pub clients: usize,
    /// Messages per client.
    pub messages: usize,
    /// Largest message, in bytes.
    pub size_bytes: usize,
    /// Sub-reactors.
    pub reactors: usize,
    /// Fault kinds with a non-zero probability.
    pub fault_kinds: usize,
    /// Other knobs of the environment away from their default (buffers, latency, the
    /// descriptor limit, the strategy, the switch bias).
    pub other_knobs: usize,
    /// Preemptions in the decision log.
    pub preemptions: usize,
    /// Scheduler faults that fired.
    pub faults_fired: usize,
    /// Steps the run took.
    pub steps: u64,
}

impl Size {
    fn of(scenario: &Scenario, decisions: &Decisions, steps: u64) -> Size {
        let neutral = SimSpec::default();
        let changed = |fault: bool| {
            KNOBS
                .iter()
                .filter(|k| k.is_fault() == fault && scenario.sim.knob_differs(&neutral, **k))
                .count()
        };
        Size {
            clients: scenario.clients.count,
            messages: scenario.clients.messages,
            size_bytes: scenario.clients.size_bytes.1,
            reactors: scenario.server.config.reactors,
            fault_kinds: changed(true),
            other_knobs: changed(false),
            preemptions: decisions.picks.len(),
            faults_fired: decisions.faults.len(),
            steps,
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "clients={} messages={} size_bytes={} reactors={} fault_kinds={} other_knobs={} preemptions={} faults_fired={} steps={}",
            self.clients,
            self.messages,
            self.size_bytes,
            self.reactors,
            self.fault_kinds,
            self.other_knobs,
            self.preemptions,
            self.faults_fired,
            self.steps
        )
    }
}

/// A shrunk run.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smaller scenario (its `expect` names the verdict and the seed).
    pub scenario: Scenario,
    /// The seed it fails at.
    pub seed: u64,
    /// The decision log that replays the failing run.
    pub decisions: Decisions,
    /// The verdict kept.
    pub verdict: Verdict,
    /// The cause kept.
    pub cause: String,
    /// The original run's size.
    pub before: Size,
    /// The shrunk run's size.
    pub after: Size,
    /// Runs made.
    pub runs: u64,
    /// Simulated steps run, summed over all runs.
    pub steps_run: u64,
}

/// The kind of failure a run shows, which shrinking must keep.
pub fn cause(result: &RunResult) -> String {
    if result.verdict == Verdict::Stall {
        // The first line that says why a client waits names the kind of stall.
        const KINDS: [(&str, &str); 5] = [
            ("stopped reading before EAGAIN", "undrained edge"),
            ("never accepted", "connection never accepted"),
            ("the kernel owes nothing", "bytes held in user space"),
            ("which watches nothing", "client watches nothing"),
            ("no thread can run", "no thread can run"),
        ];
        for line in &result.diagnosis {
            if let Some((_, kind)) = KINDS.iter().find(|(needle, _)| line.contains(needle)) {
                return (*kind).to_string();
            }
        }
    }
    let first = result.diagnosis.first().map_or("", String::as_str);
    // Numbers (steps, fds, byte counts, thread ids) change with every shrink; the words stay.
    let words: Vec<String> = first
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        })
        .filter(|w| !w.is_empty() && !w.starts_with("0x") && w != "x")
        .take(8)
        .collect();
    words.join(" ")
}

struct Shrinker {
    verdict: Verdict,
    cause: String,
    budget: Budget,
    start: Instant,
    runs: u64,
    steps: u64,
}

impl Shrinker {
    fn exhausted(&self) -> bool {
        self.runs >= self.budget.runs_max
            || self.steps >= self.budget.steps_max
            || self.start.elapsed() >= Duration::from_secs(self.budget.secs_max)
    }

    /// Runs `scenario` at `seed` (replaying `replay` if given); returns the result and the
    /// decisions taken when it fails the same way.
    fn attempt(
        &mut self,
        scenario: &Scenario,
        seed: u64,
        replay: Option<Decisions>,
    ) -> Option<(RunResult, Decisions)> {
        self.runs += 1;
        let options = SimOptions {
            keep_trace: true,
            record_decisions: true,
            replay,
            ..SimOptions::default()
        };
        let (result, report) = run_sim_report(scenario, seed, &options);
        self.steps += result.steps;
        let same = result.verdict == self.verdict && cause(&result) == self.cause;
        same.then(|| (result, report.decisions.unwrap_or_default()))
    }
}

/// Smaller variants of `scenario`, most aggressive first.
fn candidates(scenario: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut push = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        change(&mut candidate);
        if candidate != *scenario && !out.contains(&candidate) {
            out.push(candidate);
        }
    };
    let clients = scenario.clients.count;
    push(&|s| s.clients.count = 1);
    push(&|s| s.clients.count = clients.div_ceil(2));
    push(&|s| s.clients.count = clients.saturating_sub(1).max(1));
    let messages = scenario.clients.messages;
    push(&|s| s.clients.messages = 1);
    push(&|s| s.clients.messages = messages.div_ceil(2));
    push(&|s| s.clients.messages = messages.saturating_sub(1).max(1));
    let (min, max) = scenario.clients.size_bytes;
    push(&|s| s.clients.size_bytes = (min, min));
    push(&|s| s.clients.size_bytes = ((min / 2).max(1), (max / 2).max(1)));
    push(&|s| s.clients.size_bytes = (min, (max * 3 / 4).max(min)));
    let reactors = scenario.server.config.reactors;
    push(&|s| s.server.config.reactors = 1);
    push(&|s| s.server.config.reactors = reactors.saturating_sub(1).max(1));
    let workers = scenario.server.config.workers;
    push(&|s| s.server.config.workers = 0);
    push(&|s| s.server.config.workers = workers / 2);
    // One knob of the environment at a time back to the scenario files' default (a fault
    // off, a buffer back to its usual size, the uniform walk), so the ones the failure needs
    // stay and the shrunk file says which setting exposed the bug.
    let neutral = SimSpec::default();
    for knob in KNOBS {
        push(&|s| s.sim.copy_knob(knob, &neutral));
    }
    out
}

/// Shrinks the run of `scenario` at `seed`. Fails when that run does not fail.
pub fn shrink(scenario: &Scenario, seed: u64, budget: Budget) -> Result<Shrunk, String> {
    let mut shrinker = Shrinker {
        verdict: Verdict::Pass,
        cause: String::new(),
        budget,
        start: Instant::now(),
        runs: 1,
        steps: 0,
    };
    let options = SimOptions {
        keep_trace: true,
        record_decisions: true,
        ..SimOptions::default()
    };
    // The environment the seed drew becomes part of the scenario, so every candidate runs in
    // it (at any seed) until a candidate takes a knob away.
    let tolerance = Tolerance::of_standard_clients(scenario);
    let scenario = &swarm::pin_environment(scenario, seed, tolerance);
    let (original, report) = run_sim_report(scenario, seed, &options);
    if matches!(original.verdict, Verdict::Pass | Verdict::Inconclusive) {
        return Err(format!(
            "seed {seed} gives verdict {}: there is no failure to shrink",
            original.verdict.name()
        ));
    }
    shrinker.steps = original.steps;
    shrinker.verdict = original.verdict;
    shrinker.cause = cause(&original);
    let mut decisions = report.decisions.unwrap_or_default();
    let before = Size::of(scenario, &decisions, original.steps);
    let (mut current, mut current_seed, mut steps) = (scenario.clone(), seed, original.steps);

    // Phase 1: the scenario. Take the first smaller variant that still fails the same way,
    // then start over from it, until no variant does.
    'outer: while !shrinker.exhausted() {
        for candidate in candidates(&current) {
            let seeds = std::iter::once(current_seed)
                .chain((0..EXTRA_SEEDS).map(|i| derive_seed(current_seed, 100 + i) >> 1));
            for try_seed in seeds {
                if shrinker.exhausted() {
                    break 'outer;
                }
                if let Some((result, taken)) = shrinker.attempt(&candidate, try_seed, None) {
                    (current, current_seed, steps, decisions) =
                        (candidate, try_seed, result.steps, taken);
                    continue 'outer;
                }
            }
        }
        break;
    }

    // Phase 2: the schedule. The recorded log replays the run; delete chunks of preemptions
    // (halves, then quarters, down to single entries) while the failure stays the same.
    if let Some((result, taken)) = shrinker.attempt(&current, current_seed, Some(decisions.clone()))
    {
        (steps, decisions) = (result.steps, taken);
        let mut chunk = decisions.picks.len().div_ceil(2).max(1);
        loop {
            let mut idx = 0;
            while idx < decisions.picks.len() && !shrinker.exhausted() {
                let mut candidate = decisions.clone();
                let end = (idx + chunk).min(candidate.picks.len());
                candidate.picks.drain(idx..end);
                match shrinker.attempt(&current, current_seed, Some(candidate)) {
                    Some((result, taken)) if taken.picks.len() < decisions.picks.len() => {
                        (steps, decisions) = (result.steps, taken);
                    }
                    _ => idx += chunk,
                }
            }
            if chunk == 1 || shrinker.exhausted() {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        let mut idx = 0;
        while idx < decisions.faults.len() && !shrinker.exhausted() {
            let mut candidate = decisions.clone();
            candidate.faults.remove(idx);
            match shrinker.attempt(&current, current_seed, Some(candidate)) {
                Some((result, taken)) if taken.faults.len() < decisions.faults.len() => {
                    (steps, decisions) = (result.steps, taken);
                }
                _ => idx += 1,
            }
        }
    }
    current.name = format!("{}-shrunk", scenario.name);
    current.description = format!(
        "shrunk by `edgesim shrink` from {} seed {seed}: {}",
        scenario.name, shrinker.cause
    );
    current.expect = shrinker.verdict;
    current.seed = current_seed;
    let after = Size::of(&current, &decisions, steps);
    Ok(Shrunk {
        scenario: current,
        seed: current_seed,
        decisions,
        verdict: shrinker.verdict,
        cause: shrinker.cause,
        before,
        after,
        runs: shrinker.runs,
        steps_run: shrinker.steps,
    })
}

/// The scenario file of `shrunk`: the original file's keys, with those the shrinker changed
/// (name, description, clients, reactors, workers, faults, expect) set to the shrunk values.
/// Starting from the original keeps every key the shrinker does not know about.
pub fn scenario_toml(original_text: &str, shrunk: &Scenario) -> Result<String, String> {
    use toml::{Table, Value};
    let mut root: Table = original_text
        .parse()
        .map_err(|e| format!("the original scenario is not TOML: {e}"))?;
    fn table<'a>(root: &'a mut Table, key: &str) -> &'a mut Table {
        let entry = root
            .entry(key.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        entry.as_table_mut().expect("made a table above")
    }
    let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    root.insert("name".into(), Value::String(shrunk.name.clone()));
    root.insert(
        "description".into(),
        Value::String(shrunk.description.clone()),
    );
    let server = table(&mut root, "server");
    server.insert("reactors".into(), int(shrunk.server.config.reactors as u64));
    server.insert("workers".into(), int(shrunk.server.config.workers as u64));
    let clients = table(&mut root, "clients");
    clients.insert("count".into(), int(shrunk.clients.count as u64));
    clients.insert("messages".into(), int(shrunk.clients.messages as u64));
    let (min, max) = shrunk.clients.size_bytes;
    let size = if min == max {
        int(min as u64)
    } else {
        Value::String(format!("{min}..{max}"))
    };
    clients.insert("size".into(), size);
    let spec = &shrunk.sim;
    let faults: Table = KNOBS
        .iter()
        .filter_map(|k| Some((k.name(), k.probability_of(&spec.faults)?)))
        .filter(|(_, p)| *p > 0.0)
        .map(|(name, p)| (name.to_string(), Value::Float(p)))
        .collect();
    let sim = table(&mut root, "sim");
    // The environment that failed, written out: the file replays it at any seed.
    sim.insert("swarm".into(), Value::Boolean(false));
    sim.insert("faults".into(), Value::Table(faults));
    sim.insert("latency_us_max".into(), int(spec.latency_us_max));
    sim.insert("emfile_window_ms".into(), int(spec.emfile_window_ms));
    sim.insert("sndbuf_bytes".into(), int(spec.sndbuf_bytes as u64));
    sim.insert("rcvbuf_bytes".into(), int(spec.rcvbuf_bytes as u64));
    sim.insert("fd_limit".into(), int(spec.fd_limit as u64));
    sim.remove("strategy");
    sim.remove("pct_depth");
    sim.remove("switch_bias");
    match spec.strategy {
        sim::sched::Strategy::RandomWalk => {
            sim.insert("strategy".into(), Value::String("random".into()));
            if spec.switch_bias > 0.0 {
                sim.insert("switch_bias".into(), Value::Float(spec.switch_bias));
            }
        }
        sim::sched::Strategy::EveryCall => {
            sim.insert("strategy".into(), Value::String("every-call".into()));
            if spec.switch_bias > 0.0 {
                sim.insert("switch_bias".into(), Value::Float(spec.switch_bias));
            }
        }
        sim::sched::Strategy::Pct { depth, .. } => {
            sim.insert("strategy".into(), Value::String("pct".into()));
            sim.insert("pct_depth".into(), int(u64::from(depth)));
        }
    }
    let expect = table(&mut root, "expect");
    expect.insert(
        "verdict".into(),
        Value::String(shrunk.expect.name().to_string()),
    );
    expect.insert("seed".into(), int(shrunk.seed));
    toml::to_string(&root).map_err(|e| format!("cannot write the shrunk scenario: {e}"))
}

/// Where `shrink` writes the scenario and the decision log for `shrunk` under `dir`.
pub fn output_paths(dir: &Path, shrunk: &Shrunk) -> (PathBuf, PathBuf) {
    let name = &shrunk.scenario.name;
    (
        dir.join(format!("{name}.toml")),
        dir.join(format!("{name}.decisions")),
    )
}

/// Writes the shrunk scenario (`original_text` with the shrunk values) and its decision log
/// under `dir`, after checking that the scenario file reads back as the scenario that was
/// shrunk.
pub fn write(
    dir: &Path,
    original_text: &str,
    shrunk: &Shrunk,
) -> Result<(PathBuf, PathBuf), String> {
    let text = scenario_toml(original_text, &shrunk.scenario)?;
    let (toml_path, log_path) = output_paths(dir, shrunk);
    let reread = crate::scenario::parse(&toml_path.display().to_string(), &text)
        .map_err(|e| format!("the shrunk scenario does not read back: {e}"))?;
    if reread != shrunk.scenario {
        return Err(format!(
            "the shrunk scenario reads back differently (a key the writer misses):\n{:?}\nread back as\n{:?}",
            shrunk.scenario, reread
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(&toml_path, text).map_err(|e| format!("{}: {e}", toml_path.display()))?;
    std::fs::write(&log_path, shrunk.decisions.to_string())
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    Ok((toml_path, log_path))
}

/// `edgesim shrink`: shrinks, writes, and prints before/after sizes; the last line is
/// `shrunk verdict=<v> cause=<...> steps_before=<n> steps_after=<n> runs=<n>`.
pub fn cli(path: &Path, scenario: &Scenario, seed: u64, out: &Path, budget: Budget) -> ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let shrunk = match shrink(scenario, seed, budget) {
        Ok(shrunk) => shrunk,
        Err(message) => {
            eprintln!("edgesim: {}: {message}", path.display());
            return ExitCode::from(2);
        }
    };
    let original_text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("edgesim: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let (toml_path, log_path) = match write(out, &original_text, &shrunk) {
        Ok(paths) => paths,
        Err(message) => {
            eprintln!("edgesim: {message}");
            return ExitCode::from(2);
        }
    };
    let _ = writeln!(stdout, "before: {}", shrunk.before);
    let _ = writeln!(stdout, "after:  {}", shrunk.after);
    let _ = writeln!(
        stdout,
        "wrote {} and {}",
        toml_path.display(),
        log_path.display()
    );
    let _ = writeln!(
        stdout,
        "replay: edgesim run {} --decisions {} --trace",
        toml_path.display(),
        log_path.display()
    );
    let _ = writeln!(
        stdout,
        "shrunk verdict={} cause=\"{}\" steps_before={} steps_after={} runs={} steps_run={}",
        shrunk.verdict.name(),
        shrunk.cause,
        shrunk.before.steps,
        shrunk.after.steps,
        shrunk.runs,
        shrunk.steps_run
    );
    ExitCode::SUCCESS
}
