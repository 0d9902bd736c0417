//! Exploring a seed range: many independent simulated runs, spread over OS threads (one world
//! per thread at a time), with the failing seeds collected in seed order so that the result
//! does not depend on the number of jobs.

use super::run_sim;
use crate::scenario::{Scenario, Verdict};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What an exploration found.
#[derive(Clone, Debug, PartialEq)]
pub struct Explored {
    /// Seeds run.
    pub explored: u64,
    /// Seeds whose verdict was not `pass`, with the verdict, in seed order.
    pub failures: Vec<(u64, Verdict)>,
    /// Wall-clock seconds the exploration took.
    pub secs: f64,
    /// Steps, thread switches and scheduling decisions (picks that drew from the schedule
    /// stream) over all seeds.
    pub steps: u64,
    /// See `steps`.
    pub switches: u64,
    /// See `steps`.
    pub decisions: u64,
}

impl Explored {
    /// The contract's last line.
    pub fn summary(&self) -> String {
        let first = self
            .failures
            .first()
            .map_or_else(|| "none".to_string(), |(seed, _)| seed.to_string());
        format!(
            "explored={} failures={} first_failure={} seeds_per_sec={:.1}",
            self.explored,
            self.failures.len(),
            first,
            self.explored as f64 / self.secs.max(1e-9)
        )
    }

    /// The schedule's cost per seed: `per_seed: steps=... switches=... decisions=...`.
    pub fn per_seed(&self) -> String {
        let per = |total: u64| total as f64 / self.explored.max(1) as f64;
        format!(
            "per_seed: steps={:.1} switches={:.1} decisions={:.1}",
            per(self.steps),
            per(self.switches),
            per(self.decisions)
        )
    }
}

/// The seeds of shard `index` of `count` in `seeds`: every `count`-th seed, so that shards
/// of one range are disjoint and cover it.
pub fn shard(seeds: Range<u64>, index: u64, count: u64) -> Vec<u64> {
    seeds.filter(|s| s % count == index % count).collect()
}

/// Runs `scenario` at every seed of `seeds` on `jobs` OS threads. `on_done` is called once
/// per finished seed (for a progress bar).
pub fn explore(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    on_done: &(dyn Fn() + Sync),
) -> Explored {
    let start = Instant::now();
    let tally = Tally::default();
    for_each_seed(seeds, jobs, &|seed| {
        check_seed(scenario, seed, &tally);
        on_done();
    });
    explored(seeds.len(), tally, start)
}

/// Calls `visit` once per seed, spread over `jobs` OS threads; each thread runs one world at
/// a time, so per-thread counters (heap peaks, coverage) belong to the seed it runs.
pub(crate) fn for_each_seed(seeds: &[u64], jobs: usize, visit: &(dyn Fn(u64) + Sync)) {
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let idx = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&seed) = seeds.get(idx) else { break };
                visit(seed);
            });
        }
    });
}

/// What the seeds of an exploration found so far, shared by its OS threads.
#[derive(Default)]
pub(crate) struct Tally {
    failures: Mutex<Vec<(u64, Verdict)>>,
    steps: AtomicU64,
    switches: AtomicU64,
    decisions: AtomicU64,
}

/// Runs one seed, records its heap peak and its schedule's cost, and notes it in the tally's
/// failures unless it passed.
pub(crate) fn check_seed(scenario: &Scenario, seed: u64, tally: &Tally) {
    // One world runs on this thread at a time, so the thread's heap peak is the run's (zero
    // unless the binary installed the counting allocator).
    let mark = real::alloc::thread_mark();
    let result = run_sim(scenario, seed, false);
    real::alloc::record_run_peak(real::alloc::thread_peak_since(mark));
    tally.steps.fetch_add(result.steps, Ordering::Relaxed);
    tally.switches.fetch_add(result.switches, Ordering::Relaxed);
    tally
        .decisions
        .fetch_add(result.decisions, Ordering::Relaxed);
    if result.verdict != Verdict::Pass {
        tally
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((seed, result.verdict));
    }
}

/// The result of an exploration of `n_seeds` seeds that began at `start`, failures in seed
/// order.
pub(crate) fn explored(n_seeds: usize, tally: Tally, start: Instant) -> Explored {
    let mut failures = tally
        .failures
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(seed, _)| *seed);
    Explored {
        explored: n_seeds as u64,
        failures,
        secs: start.elapsed().as_secs_f64(),
        steps: tally.steps.into_inner(),
        switches: tally.switches.into_inner(),
        decisions: tally.decisions.into_inner(),
    }
}
