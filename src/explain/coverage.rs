//! `edgesim explore --coverage`: the edge-triggered corner cases a seed range reached and how
//! often, from the kernel's counters (`sim::kernel::coverage`), with the cases never reached
//! listed as such, so a range that misses one says so instead of passing quietly.

use crate::runner::{self, Explored};
use crate::scenario::Scenario;
use sim::kernel::coverage::{self, Counts, CASES};
use std::sync::Mutex;
use std::time::Instant;

/// Per case: the occurrences summed over seeds, and the seeds that reached it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    /// Occurrences per case (indexed like [`CASES`]).
    pub hits: Counts,
    /// Seeds that reached each case at least once.
    pub seeds: Counts,
}

impl Reached {
    fn add(&mut self, counts: &Counts) {
        for (idx, &n) in counts.iter().enumerate() {
            self.hits[idx] += n;
            self.seeds[idx] += u64::from(n > 0);
        }
    }

    /// The names of the cases no seed reached.
    pub fn missing(&self) -> Vec<&'static str> {
        CASES
            .iter()
            .zip(self.seeds.iter())
            .filter(|(_, &seeds)| seeds == 0)
            .map(|((_, name), _)| *name)
            .collect()
    }
}

/// Runs `scenario` at every seed, as `runner::explore` does, and sums the corner cases each
/// run reached. Failing seeds are collected in seed order, so the result does not depend on
/// `jobs`.
pub fn explore(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    on_done: &(dyn Fn() + Sync),
) -> (Explored, Reached) {
    let start = Instant::now();
    let tally = runner::Tally::default();
    let reached = Mutex::new(Reached::default());
    runner::for_each_seed(seeds, jobs, &|seed| {
        // The counters are this OS thread's: clear what an earlier world left.
        coverage::take();
        runner::check_seed(scenario, seed, &tally);
        let counts = coverage::take();
        reached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&counts);
        on_done();
    });
    (
        runner::explored(seeds.len(), tally, start),
        reached.into_inner().unwrap_or_else(|e| e.into_inner()),
    )
}

/// The coverage table: one line per case with its count and the share of seeds that
/// reached it, then the cases never reached.
pub fn table(reached: &Reached, explored: u64) -> Vec<String> {
    let width = CASES.iter().map(|(_, name)| name.len()).max().unwrap_or(0);
    let mut lines = vec![format!(
        "{:<width$}  {:>10}  {:>8}",
        "corner case", "hits", "seeds"
    )];
    for (idx, (_, name)) in CASES.iter().enumerate() {
        let (hits, seeds) = (reached.hits[idx], reached.seeds[idx]);
        let never = if seeds == 0 { "  never reached" } else { "" };
        lines.push(format!("{name:<width$}  {hits:>10}  {seeds:>8}{never}"));
    }
    let missing = reached.missing();
    lines.push(format!(
        "coverage: {} of {} corner cases reached over {explored} seeds{}",
        CASES.len() - missing.len(),
        CASES.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!("; never reached: {}", missing.join(", "))
        }
    ));
    lines
}
