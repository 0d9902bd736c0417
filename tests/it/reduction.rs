//! The reduced walk against the every-call walk: every run of the reduced walk is a run the
//! every-call walk can make, call for call, so its trace (and the happens-before order of
//! its dependent calls) is one the unreduced scheduler produces.
//!
//! How the test knows: the reduced run records its decision log (every pick that departs
//! from "keep the running thread, else the first runnable one", and every fault drawn). The
//! same environment is then run under `strategy = "every-call"` replaying that log. A
//! replayed pick is taken among the threads runnable at that point, which is exactly the
//! every-call walk's choice there (it draws uniformly among all runnable threads, so each
//! has a positive chance), and replay checks that the logged thread is runnable. If the
//! replay gives the same trace hash, steps and verdict, the every-call scheduler has made
//! the very same sequence of calls; equal sequences have equal happens-before orders.

use edgesim::runner::{run_sim_report, SimOptions};
use edgesim::scenario::{self, Scenario};
use edgesim::swarm::{self, Tolerance};
use sim::sched::Strategy;

/// Catalogue scenarios the sample covers: the benchmark, a lock-and-atomic race, the
/// netpoller (park and unpark) and a flaw found through descriptor reuse.
const SCENARIOS: [&str; 4] = [
    "bench-echo",
    "flaw-wake-flag-race",
    "netpoll-pingpong",
    "flaw-stale-token",
];

/// Seeds per scenario.
const SEEDS: u64 = 5;

/// `name`'s environment at `seed` as swarm mode draws it, pinned, under `strategy`.
fn environment(name: &str, seed: u64, strategy: Strategy) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let file = scenario::load(path.as_ref()).expect("the scenario parses");
    let mut env = swarm::resolve(&file, seed, Tolerance::of_standard_clients(&file));
    env.sim.swarm = false;
    env.sim.strategy = strategy;
    env
}

#[test]
fn every_reduced_run_is_a_run_of_the_every_call_walk() {
    let (mut reduced_decisions, mut steps) = (0, 0);
    for name in SCENARIOS {
        for seed in 0..SEEDS {
            let record = SimOptions {
                keep_trace: true,
                record_decisions: true,
                ..SimOptions::default()
            };
            let reduced = environment(name, seed, Strategy::RandomWalk);
            let (first, report) = run_sim_report(&reduced, seed, &record);
            let log = report.decisions.expect("a recorded run returns its log");
            let replay = SimOptions {
                keep_trace: true,
                replay: Some(log),
                ..SimOptions::default()
            };
            let every_call = environment(name, seed, Strategy::EveryCall);
            let (second, _) = run_sim_report(&every_call, seed, &replay);
            assert_eq!(
                (first.trace_hash, first.steps, first.verdict),
                (second.trace_hash, second.steps, second.verdict),
                "{name} seed {seed}: the every-call walk cannot replay the reduced run"
            );
            reduced_decisions += first.decisions;
            steps += first.steps;
        }
    }
    // The sample exercises the reduction: far fewer decisions than steps.
    assert!(
        reduced_decisions * 2 < steps,
        "{reduced_decisions} decisions in {steps} steps"
    );
}
