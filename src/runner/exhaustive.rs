//! `explore --exhaustive`: every schedule of one seed's environment with at most K
//! preemptions, modulo the independence of calls (the search is `sim::sched::Search`), each
//! run judged as any other run is.
//!
//! The environment is the seed's (swarm mode's draw, or the file's), made deterministic so
//! that the schedule is the only thing that varies and independent calls commute exactly:
//! faults are off (a fault stream consumed in call order makes every two calls that draw
//! from it dependent), segments are delivered inside the sending call, and calls cost no
//! virtual time (timers, deadlines and deliveries then happen only when no thread can run,
//! at the same point of every equivalent order).

use super::{run_sim_report, RunResult, SimOptions};
use crate::scenario::{FaultSpec, Scenario, Verdict};
use crate::swarm::{self, Tolerance};
use sim::sched::{Outcome, Search, SearchEnd};
use std::time::Instant;

/// What the search may do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The most preemptions a schedule may make (`None`: no bound).
    pub preemptions: Option<u32>,
    /// Sleep sets on: orders that differ only by independent calls run once.
    pub reduce: bool,
    /// Runs the search may make.
    pub runs_max: u64,
    /// Wall-clock seconds the search may take.
    pub secs_max: f64,
}

/// Why a search stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    /// Every schedule was run (modulo independence with reduction).
    Complete,
    /// Every schedule within the bound was run; the bound cut others.
    Bound(u32),
    /// The run budget ran out.
    Runs(u64),
    /// The time budget ran out.
    Secs(f64),
}

/// What an exhaustive search found.
#[derive(Clone, Debug)]
pub struct Exhausted {
    /// Complete runs (schedules).
    pub schedules: u64,
    /// Runs cut short by the sleep sets (each repeated an order already run) or by the bound.
    pub pruned: u64,
    /// Schedules whose verdict was not `pass`.
    pub failures: u64,
    /// The first failing schedule: its result and the preemptions it made, as a decision
    /// log over the search's environment.
    pub first_failure: Option<(RunResult, u32, sim::sched::Decisions)>,
    /// Why the search stopped.
    pub completion: Completion,
    /// Wall-clock seconds it took.
    pub secs: f64,
}

impl Exhausted {
    /// The contract's last line: `exhaustive: schedules=N failures=F complete=yes|no`, with
    /// what stopped an incomplete search.
    pub fn summary(&self) -> String {
        let complete = match &self.completion {
            Completion::Complete => "yes".to_string(),
            Completion::Bound(k) => format!("no (bound: {k} preemptions)"),
            Completion::Runs(n) => format!("no (budget: {n} runs)"),
            Completion::Secs(s) => format!("no (budget: {s} s)"),
        };
        format!(
            "exhaustive: schedules={} failures={} complete={complete}",
            self.schedules, self.failures
        )
    }
}

/// The scenario as the search runs it: `scenario`'s environment at `seed`, with faults off
/// and synchronous delivery (calls cost no virtual time in a scheduled run, see
/// [`run_sim_report`]).
pub fn environment(scenario: &Scenario, seed: u64) -> Scenario {
    let mut env = swarm::resolve(scenario, seed, Tolerance::of_standard_clients(scenario));
    env.sim.swarm = false;
    env.sim.faults = FaultSpec::default();
    env.sim.latency_us_max = 0;
    env
}

/// Runs the search over `scenario`'s environment at `seed`.
pub fn exhaustive(scenario: &Scenario, seed: u64, limits: &Limits) -> Exhausted {
    let start = Instant::now();
    let env = environment(scenario, seed);
    let mut search = Search::new(limits.preemptions, limits.reduce);
    let mut found = Exhausted {
        schedules: 0,
        pruned: 0,
        failures: 0,
        first_failure: None,
        completion: Completion::Complete,
        secs: 0.0,
    };
    let mut runs = 0u64;
    while let Some(schedule) = search.next_schedule() {
        if runs >= limits.runs_max {
            found.completion = Completion::Runs(limits.runs_max);
            break;
        }
        if start.elapsed().as_secs_f64() > limits.secs_max {
            found.completion = Completion::Secs(limits.secs_max);
            break;
        }
        runs += 1;
        let options = SimOptions {
            schedule: Some(schedule),
            ..SimOptions::default()
        };
        let (result, report) = run_sim_report(&env, seed, &options);
        let ran = report
            .schedule
            .expect("a scheduled run returns its schedule");
        search.record(&ran);
        if report.outcome == Outcome::Pruned {
            found.pruned += 1;
            continue;
        }
        found.schedules += 1;
        if result.verdict != Verdict::Pass {
            found.failures += 1;
            if found.first_failure.is_none() {
                found.first_failure = Some((result, ran.preemptions(), ran.decisions()));
            }
        }
    }
    if found.completion == Completion::Complete && search.end() == SearchEnd::Bound {
        found.completion = Completion::Bound(limits.preemptions.unwrap_or(0));
    }
    found.secs = start.elapsed().as_secs_f64();
    found
}
