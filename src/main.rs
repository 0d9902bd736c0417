//! The `edgesim` command line: one verb per workflow (conformance, runs, exploration, the
//! real server and its load generator).

use clap::{Parser, Subcommand, ValueEnum};
use edgesim::os::RealOs;
use edgesim::runner::{explore, run_real, run_sim, shard, RunResult};
use edgesim::scenario::{self, Scenario, Verdict};
use edgesim::server::{HandlerKind, Trigger};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Counts heap bytes per thread, so `explore` can report the heap a simulated run needed.
#[global_allocator]
static ALLOC: real::alloc::CountingAlloc = real::alloc::CountingAlloc;

/// Deterministic simulation and test harness for epoll-based network servers.
#[derive(Parser)]
#[command(name = "edgesim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which kernel runs the operations.
#[derive(Copy, Clone, ValueEnum, Debug, PartialEq, Eq)]
enum Backend {
    /// The seeded simulated kernel.
    Sim,
    /// Linux, on loopback.
    Real,
}

#[derive(Subcommand)]
enum Command {
    /// Run a conformance script (`*.ops`) and print one transcript line per operation.
    Conform {
        /// The script.
        script: PathBuf,
        /// The kernel to run it on.
        #[arg(long, value_enum, default_value = "sim")]
        backend: Backend,
    },
    /// Run a scenario once: its verdict, diagnosis, and the command that replays it.
    /// Exit 0 on pass, 1 on a failing verdict, 2 on bad input.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The seed (simulator); `EDGESIM_SEED` sets it too; else the scenario's
        /// `expect.seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the trace (the last steps of a long run).
        #[arg(long)]
        trace: bool,
        /// The kernel to run it on.
        #[arg(long, value_enum, default_value = "sim")]
        backend: Backend,
        /// Real backend: a client with no progress for this long is a stall.
        #[arg(long, default_value_t = 2000)]
        stall_after_ms: u64,
        /// Pictures of the run and replays of shrunk runs (simulator).
        #[command(flatten)]
        explain: edgesim::explain::RunArgs,
    },
    /// Shrink a failing run: fewer clients, messages, bytes, reactors, faults and
    /// preemptions with the same verdict and cause. Writes a scenario and a decision log
    /// that replays it (`edgesim run SHRUNK.toml --decisions SHRUNK.decisions`).
    Shrink {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The failing seed; else `EDGESIM_SEED`, else the scenario's `expect.seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the shrunk scenario and its decision log.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Simulated runs the shrinker may make.
        #[arg(long, default_value_t = 3000)]
        runs_max: u64,
        /// Wall-clock seconds the shrinker may take.
        #[arg(long, default_value_t = 120)]
        secs_max: u64,
        /// Simulated steps the shrinker may run, summed over its runs.
        #[arg(long, default_value_t = 100_000_000)]
        steps_max: u64,
    },
    /// Run a scenario at every seed of a range and count the failing verdicts; or, with
    /// `--exhaustive`, run every schedule of one seed's environment. Exit 1 on an unexpected
    /// verdict: any failure when the scenario expects `pass`; otherwise another failing
    /// verdict than the expected one, or none of the expected one. Exit 2 on bad input.
    Explore {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The seed range, `A..B` (B excluded).
        #[arg(long, required_unless_present = "exhaustive")]
        seeds: Option<String>,
        /// OS threads, each running one simulated world at a time.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Only the seeds of shard `I/N` (every N-th seed), so machines can share a range.
        #[arg(long)]
        shard: Option<String>,
        /// Print which edge-triggered corner cases the seeds reached, and how often.
        #[arg(long)]
        coverage: bool,
        /// Run every schedule with at most `--preemptions` preemptions, modulo the
        /// independence of calls, in the environment of one seed with faults off,
        /// synchronous delivery and calls that cost no virtual time. Ends with
        /// `exhaustive: schedules=N failures=F complete=yes|no`.
        #[arg(long, conflicts_with_all = ["seeds", "shard", "coverage", "jobs"])]
        exhaustive: bool,
        /// Exhaustive: the most preemptions a schedule may make (omitted: no bound).
        #[arg(long, requires = "exhaustive")]
        preemptions: Option<u32>,
        /// Exhaustive: the seed whose environment is searched (default: the scenario's
        /// `expect.seed`).
        #[arg(long, requires = "exhaustive")]
        seed: Option<u64>,
        /// Exhaustive: run every order, also those that differ only by independent calls.
        #[arg(long, requires = "exhaustive")]
        no_reduction: bool,
        /// Exhaustive: runs the search may make.
        #[arg(long, requires = "exhaustive", default_value_t = 1_000_000)]
        runs_max: u64,
        /// Exhaustive: wall-clock seconds the search may take.
        #[arg(long, requires = "exhaustive", default_value_t = 600.0)]
        secs_max: f64,
    },
    /// Measure bug-finding on workloads nobody tuned: for every flaw of every server model,
    /// draw ordinary workloads and record whether and at which seed each flaw is caught
    /// (within 200 seeds, the netpoller's within 500) and whether the correct server passes
    /// the same workload. Prints one line per pair, then the per-flaw table.
    Evaluate {
        /// Workloads drawn per flaw.
        #[arg(long, default_value_t = 40)]
        workloads: usize,
        /// Seed of the workload draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Seeds the correct server must pass on each workload.
        #[arg(long, default_value_t = 300)]
        correct_seeds: u64,
        /// Run every seed in the scenario files' fixed defaults instead of swarm mode.
        #[arg(long)]
        no_swarm: bool,
        /// OS threads, each running one simulated world at a time.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Only the flaws whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Write every pair as two scenario files here (`NAME.toml` with the flaw, expecting
        /// what was found at the seed found; `NAME-correct.toml` without it), to replay one.
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Run the real multi-reactor server until SIGINT or SIGTERM.
    Serve {
        /// Where to listen (loopback).
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// Sub-reactors.
        #[arg(long, default_value_t = 2)]
        reactors: usize,
        /// Trigger mode.
        #[arg(long, default_value = "edge")]
        trigger: Trigger,
        /// Request handler.
        #[arg(long, default_value = "echo")]
        handler: HandlerKind,
    },
    /// Load an echo server on loopback; prints `msgs_per_sec=... errors=...` last.
    Load {
        /// The server (loopback only).
        #[arg(long)]
        addr: SocketAddr,
        /// Connections.
        #[arg(long, default_value_t = 64)]
        conns: usize,
        /// Bytes per message.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Messages in flight per connection (1 = pingpong).
        #[arg(long, default_value_t = 1)]
        pipeline: usize,
        /// The server's pid, to report its CPU time per message.
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conform { script, backend } => {
            edgesim::conform::cli(&script, backend == Backend::Real)
        }
        Command::Run {
            scenario,
            seed,
            trace,
            backend,
            stall_after_ms,
            explain,
        } => run(&scenario, seed, trace, backend, stall_after_ms, &explain),
        Command::Shrink {
            scenario,
            seed,
            out,
            runs_max,
            secs_max,
            steps_max,
        } => match load_scenario(&scenario) {
            Err(code) => code,
            Ok(loaded) => match seed.map_or_else(env_seed, |s| Ok(Some(s))) {
                Err(code) => code,
                Ok(seed) => {
                    let budget = edgesim::explain::shrink::Budget {
                        runs_max,
                        secs_max,
                        steps_max,
                    };
                    let seed = seed.unwrap_or(loaded.seed);
                    edgesim::explain::shrink::cli(&scenario, &loaded, seed, &out, budget)
                }
            },
        },
        Command::Explore {
            scenario,
            exhaustive: true,
            preemptions,
            seed,
            no_reduction,
            runs_max,
            secs_max,
            ..
        } => {
            let limits = edgesim::runner::Limits {
                preemptions,
                reduce: !no_reduction,
                runs_max,
                secs_max,
            };
            exhaustive_cli(&scenario, seed, &limits)
        }
        Command::Explore {
            scenario,
            seeds,
            jobs,
            shard,
            coverage,
            ..
        } => explore_cli(
            &scenario,
            seeds.as_deref().unwrap_or_default(),
            jobs,
            shard.as_deref(),
            coverage,
        ),
        Command::Evaluate {
            workloads,
            seed,
            correct_seeds,
            no_swarm,
            jobs,
            only,
            write,
        } => {
            let options = edgesim::evaluate::Options {
                workloads,
                seed,
                correct_seeds,
                swarm: !no_swarm,
                jobs: jobs.max(1),
                only,
            };
            evaluate_cli(&options, write.as_deref())
        }
        Command::Serve {
            addr,
            reactors,
            trigger,
            handler,
        } => edgesim::server::serve_cli(RealOs::new(), addr, reactors, trigger, handler),
        Command::Load {
            addr,
            conns,
            size,
            secs,
            pipeline,
            server_pid,
        } => edgesim::load::load_cli_with_server_pid(addr, conns, size, secs, pipeline, server_pid),
    }
}

/// Prints a line to stdout; a closed pipe (`edgesim run ... | head`) ends the output quietly
/// instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("edgesim: {message}");
    ExitCode::from(2)
}

fn load_scenario(path: &Path) -> Result<Scenario, ExitCode> {
    scenario::load(path).map_err(bad_input)
}

fn env_seed() -> Result<Option<u64>, ExitCode> {
    match std::env::var("EDGESIM_SEED") {
        Ok(text) => text
            .parse()
            .map(Some)
            .map_err(|_| bad_input(format!("EDGESIM_SEED={text} is not a number"))),
        Err(_) => Ok(None),
    }
}

fn run(
    path: &Path,
    seed: Option<u64>,
    trace: bool,
    backend: Backend,
    stall_after_ms: u64,
    explain: &edgesim::explain::RunArgs,
) -> ExitCode {
    let scenario = match load_scenario(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = match seed.map_or_else(env_seed, |s| Ok(Some(s))) {
        Ok(seed) => seed.unwrap_or(scenario.seed),
        Err(code) => return code,
    };
    let result = match backend {
        Backend::Sim if explain.any() => match explain.run(&scenario, seed) {
            Ok(result) => result,
            Err(message) => return bad_input(message),
        },
        Backend::Sim => run_sim(&scenario, seed, true),
        Backend::Real if explain.any() => {
            return bad_input(
                "--svg, --perfetto and --decisions need the simulator (--backend sim)",
            )
        }
        Backend::Real => run_real(&scenario, Duration::from_millis(stall_after_ms)),
    };
    report(path, &scenario, &result, trace, backend, explain)
}

fn report(
    path: &Path,
    scenario: &Scenario,
    result: &RunResult,
    trace: bool,
    backend: Backend,
    explain: &edgesim::explain::RunArgs,
) -> ExitCode {
    if trace {
        for line in &result.trace {
            say!("{line}");
        }
    }
    if let Some(environment) = &result.environment {
        say!("{environment}");
    }
    for line in &result.diagnosis {
        say!("{line}");
    }
    if result.verdict != Verdict::Pass && backend == Backend::Sim && explain.decisions.is_none() {
        let verdict_of = |s: &Scenario| run_sim(s, result.seed, false).verdict;
        if let Some(line) = edgesim::swarm::knobs_that_mattered(scenario, result.seed, verdict_of) {
            say!("{line}");
        }
    }
    if result.verdict != scenario.expect {
        say!(
            "expected verdict {}, got {}",
            scenario.expect.name(),
            result.verdict.name()
        );
    }
    if result.verdict != Verdict::Pass && backend == Backend::Sim {
        say!("SEED={}", result.seed);
        // A decision log replaces the seed's schedule, so the replay needs it too.
        let decisions = explain
            .decisions
            .as_ref()
            .map(|p| format!(" --decisions {}", p.display()))
            .unwrap_or_default();
        say!(
            "replay: edgesim run {} --seed {}{decisions} --trace",
            path.display(),
            result.seed
        );
    }
    say!("{}", result.summary());
    if result.verdict == Verdict::Pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn explore_cli(
    path: &Path,
    seeds: &str,
    jobs: usize,
    shard_spec: Option<&str>,
    coverage: bool,
) -> ExitCode {
    let scenario = match load_scenario(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let range = match parse_range(seeds) {
        Some(range) => range,
        None => return bad_input(format!("--seeds {seeds}: expected A..B with A <= B")),
    };
    let (index, count) = match shard_spec.map(parse_shard) {
        None => (0, 1),
        Some(Some(pair)) => pair,
        Some(None) => {
            return bad_input(format!(
                "--shard {}: expected I/N with I < N",
                shard_spec.unwrap_or_default()
            ))
        }
    };
    if jobs == 0 {
        return bad_input("--jobs must be at least 1");
    }
    let seeds = shard(range, index, count);
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(seeds.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (explored, reached) = if coverage {
        let (explored, reached) =
            edgesim::explain::coverage::explore(&scenario, &seeds, jobs, &|| bar.inc(1));
        (explored, Some(reached))
    } else {
        (explore(&scenario, &seeds, jobs, &|| bar.inc(1)), None)
    };
    bar.finish_and_clear();
    if let Some(reached) = reached {
        for line in edgesim::explain::coverage::table(&reached, explored.explored) {
            say!("{line}");
        }
    }
    for (seed, verdict) in explored.failures.iter().take(20) {
        say!("seed {seed}: {}", verdict.name());
    }
    if let Some((seed, _)) = explored.failures.first() {
        say!("SEED={seed}");
        say!(
            "replay: edgesim run {} --seed {seed} --trace",
            path.display()
        );
    }
    // Heap only, measured by the counting allocator; coroutine stacks are not included.
    if let Some(peak) = real::alloc::run_peak_bytes_max().filter(|&p| p > 0) {
        say!("peak_run_heap_bytes={peak}");
    }
    say!("{}", explored.per_seed());
    let unexpected = unexpected_verdicts(scenario.expect, &explored.failures);
    for line in &unexpected {
        say!("{line}");
    }
    say!("{}", explored.summary());
    if unexpected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What makes an exploration fail (exit status 1), one line each: for a scenario that
/// expects `pass`, any failing seed; for one that expects a failing verdict, a seed with
/// another failing verdict, or no seed with the expected one.
fn unexpected_verdicts(expect: Verdict, failures: &[(u64, Verdict)]) -> Vec<String> {
    let mut lines: Vec<String> = failures
        .iter()
        .filter(|(_, v)| *v != expect)
        .take(5)
        .map(|(seed, v)| {
            format!(
                "unexpected: seed {seed} gave {} (expected {})",
                v.name(),
                expect.name()
            )
        })
        .collect();
    if expect != Verdict::Pass && !failures.iter().any(|(_, v)| *v == expect) {
        lines.push(format!(
            "unexpected: no seed gave the expected verdict {}",
            expect.name()
        ));
    }
    lines
}

fn evaluate_cli(options: &edgesim::evaluate::Options, write: Option<&Path>) -> ExitCode {
    if let Some(dir) = write {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return bad_input(format!("{}: {e}", dir.display()));
        }
    }
    let pairs = edgesim::evaluate::evaluate(options, &|pair| {
        say!("{}", edgesim::evaluate::pair_line(pair));
        if let Some(dir) = write {
            for (path, text) in edgesim::evaluate::pair_files(dir, pair) {
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("edgesim: {}: {e}", path.display());
                }
            }
        }
    });
    for line in edgesim::evaluate::table(&pairs, options.correct_seeds) {
        say!("{line}");
    }
    ExitCode::SUCCESS
}

fn exhaustive_cli(path: &Path, seed: Option<u64>, limits: &edgesim::runner::Limits) -> ExitCode {
    let scenario = match load_scenario(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = seed.unwrap_or(scenario.seed);
    let bound = limits
        .preemptions
        .map_or_else(|| "no bound".to_string(), |k| format!("at most {k}"));
    let reduction = if limits.reduce { "on" } else { "off" };
    say!(
        "exhaustive: the environment of seed {seed} with faults off, synchronous delivery and \
         calls that cost no virtual time; preemptions: {bound}; reduction: {reduction}"
    );
    let found = edgesim::runner::exhaustive(&scenario, seed, limits);
    if let Some((result, preemptions, decisions)) = &found.first_failure {
        say!(
            "first failure: verdict={} after {preemptions} preemptions ({} decisions departing \
             from run-until-blocked)",
            result.verdict.name(),
            decisions.picks.len()
        );
        for line in &result.diagnosis {
            say!("{line}");
        }
    }
    say!(
        "pruned={} (runs cut short: they would only repeat an order already run) secs={:.1}",
        found.pruned,
        found.secs
    );
    say!("{}", found.summary());
    ExitCode::SUCCESS
}

fn parse_range(text: &str) -> Option<std::ops::Range<u64>> {
    let (a, b) = text.split_once("..")?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some(a..b)
}

fn parse_shard(text: &str) -> Option<(u64, u64)> {
    let (i, n) = text.split_once('/')?;
    let (i, n): (u64, u64) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (n > 0 && i < n).then_some((i, n))
}
