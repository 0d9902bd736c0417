//! The simulator's speed, on one core. A benchmark, not a test: it prints figures and asserts
//! nothing about time.
//!
//! Two measurements:
//! - the standard two-reactor echo workload (`scenarios/bench-echo.toml`): simulated Os calls
//!   per second, thread switches per second and seeds per second, with swarm mode off and on
//!   (what the drawn environments cost);
//! - the floor under it: runs of as many threads and about as many steps as a bench-echo seed,
//!   where every call is an atomic load, so a step is only the scheduler's own work (the
//!   preemption point, the random pick, usually a switch, the trace record) and the kernel is
//!   never touched. However fast the kernel model and the servers were, a seed of that many
//!   steps could not run faster than this.
//!
//! `cargo bench --bench sim_speed` (set `EDGESIM_BENCH_SEEDS` to change the seed count; the
//! floor runs ten times as many).

use edgesim::runner::run_sim;
use sim::sched::{Outcome, WorldConfig};
use sim::sync::Atomic;
use std::sync::Arc;
use std::time::Instant;

/// Simulated threads of a bench-echo seed besides main: three loops and sixteen clients.
const FLOOR_THREADS: usize = 19;
/// Loads per thread: 19 x 443 steps is about the 8,418 of bench-echo's seed 3.
const FLOOR_LOADS_PER_THREAD: usize = 443;

fn main() {
    let seeds: u64 = std::env::var("EDGESIM_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    bench_echo(seeds);
    floor(seeds * 10);
}

/// bench-echo in the scenario files' fixed environment (swarm mode off, as every figure
/// before swarm mode was measured, and as turmoil's peer runs: no faults) and then as it
/// ships (swarm mode on), in the same process: what swarm mode costs, split into the extra
/// steps its environments make a seed take and the time per step.
fn bench_echo(seeds: u64) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench-echo.toml");
    let on = edgesim::scenario::load(path.as_ref()).expect("the benchmark scenario");
    let mut off = on.clone();
    off.sim.swarm = false;
    let mut rates = Vec::new();
    for (name, scenario) in [("swarm_off", &off), ("swarm_on", &on)] {
        let (steps, switches, secs) = measure(seeds, |seed| {
            let result = run_sim(scenario, seed, false);
            assert_eq!(
                result.verdict,
                edgesim::scenario::Verdict::Pass,
                "{name} seed {seed}"
            );
            (result.steps, result.switches)
        });
        println!(
            "scenario=bench-echo {name} seeds={seeds} steps={steps} switches={switches} secs={secs:.3}"
        );
        println!(
            "{name} sim_calls_per_sec={:.0} switches_per_sec={:.0} seeds_per_sec={:.1} steps_per_seed={:.0} ns_per_step={:.1}",
            steps as f64 / secs,
            switches as f64 / secs,
            seeds as f64 / secs,
            steps as f64 / seeds as f64,
            secs * 1e9 / steps as f64
        );
        rates.push((seeds as f64 / secs, steps as f64 / seeds as f64));
    }
    let ((off_rate, off_steps), (on_rate, on_steps)) = (rates[0], rates[1]);
    println!(
        "swarm_cost seeds_per_sec_ratio_on_over_off={:.2} steps_per_seed_ratio_on_over_off={:.2}",
        on_rate / off_rate,
        on_steps / off_steps
    );
}

/// Every thread loads one shared atomic, so every step is a bare preemption point.
fn floor_program() {
    let flag = Arc::new(Atomic::new(0));
    let threads: Vec<u32> = (0..FLOOR_THREADS)
        .map(|i| {
            let flag = Arc::clone(&flag);
            sim::sys::spawn(
                &format!("t{i}"),
                Box::new(move || {
                    for _ in 0..FLOOR_LOADS_PER_THREAD {
                        flag.load();
                    }
                }),
            )
        })
        .collect();
    for tid in threads {
        sim::sys::join(tid).expect("the threads do not panic");
    }
}

fn floor(runs: u64) {
    let config = |seed| WorldConfig {
        seed,
        ..WorldConfig::default()
    };
    let (steps, switches, secs) = measure(runs, |seed| {
        let report = sim::sched::run(config(seed), floor_program);
        assert_eq!(report.outcome, Outcome::Finished, "seed {seed}");
        (report.steps, report.switches)
    });
    println!("floor runs={runs} steps={steps} switches={switches} secs={secs:.3}");
    println!(
        "floor_ns_per_step={:.1} floor_steps_per_run={} floor_runs_per_sec={:.1}",
        secs * 1e9 / steps as f64,
        steps / runs,
        runs as f64 / secs
    );
}

/// Runs seeds `0..runs` through `run` (which returns a run's steps and switches), after ten
/// untimed runs that warm up allocators and caches; the totals and the seconds taken.
fn measure(runs: u64, run: impl Fn(u64) -> (u64, u64)) -> (u64, u64, f64) {
    for seed in 0..10 {
        run(seed);
    }
    let start = Instant::now();
    let (mut steps, mut switches) = (0u64, 0u64);
    for seed in 0..runs {
        let (run_steps, run_switches) = run(seed);
        steps += run_steps;
        switches += run_switches;
    }
    (steps, switches, start.elapsed().as_secs_f64())
}
