//! The simulator's speed on the standard two-reactor echo workload: simulated Os calls per
//! second and thread switches per second, on one core. A benchmark, not a test: it prints
//! figures and asserts nothing about time.
//!
//! `cargo bench --bench sim_speed` (set `EDGESIM_BENCH_SEEDS` to change the seed count).

use edgesim::runner::run_sim;
use std::time::Instant;

fn main() {
    let seeds: u64 = std::env::var("EDGESIM_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench-echo.toml");
    let scenario = edgesim::scenario::load(path.as_ref()).expect("the benchmark scenario");
    // Warm up allocators and caches.
    for seed in 0..10 {
        run_sim(&scenario, seed, false);
    }
    let start = Instant::now();
    let (mut steps, mut switches) = (0u64, 0u64);
    for seed in 0..seeds {
        let result = run_sim(&scenario, seed, false);
        assert_eq!(
            result.verdict,
            edgesim::scenario::Verdict::Pass,
            "seed {seed}"
        );
        steps += result.steps;
        switches += result.switches;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("scenario=bench-echo seeds={seeds} steps={steps} switches={switches} secs={secs:.3}");
    println!(
        "sim_calls_per_sec={:.0} switches_per_sec={:.0} seeds_per_sec={:.1}",
        steps as f64 / secs,
        switches as f64 / secs,
        seeds as f64 / secs
    );
}
