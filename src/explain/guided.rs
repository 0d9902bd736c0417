//! Guided exploration, an experiment: run the seeds of a pool in an order biased toward
//! environments like those of earlier runs that reached rare edge-triggered corner cases.
//!
//! Each seed still determines its whole run (its environment is a function of the seed), so
//! a failure replays with `edgesim run --seed N` and no memory of the exploration. Only the
//! order in which seeds are tried depends on what earlier runs reached. Whether that finds
//! flaws in fewer runs than plain swarm mode is what `compare` measures.

use crate::runner::run_sim;
use crate::scenario::{Knob, Scenario, Verdict, KNOBS};
use crate::swarm::{self, Tolerance};
use sim::kernel::coverage::{self, CASES};
use sim::sched::Strategy;

/// Candidates looked at for each run: the next ones of the pool not yet run.
const CANDIDATES: usize = 8;
/// Plain runs before the guidance starts (it needs an archive to go by).
const WARMUP_RUNS: usize = 8;

/// One point per knob in `[0, 1]`: where the environment lies in swarm mode's space.
fn features(scenario: &Scenario, seed: u64) -> Vec<f64> {
    let resolved = swarm::resolve(scenario, seed, Tolerance::of_standard_clients(scenario));
    let spec = &resolved.sim;
    KNOBS
        .iter()
        .map(|&knob| {
            if let Some(p) = knob.probability_of(&spec.faults) {
                return (p * 2.0).min(1.0);
            }
            let log_scale = |v: usize, max: f64| ((v.max(1) as f64).ln() / max.ln()).min(1.0);
            match knob {
                Knob::Latency => log_scale(spec.latency_us_max as usize, 1000.0),
                Knob::Sndbuf => log_scale(spec.sndbuf_bytes, 4e6),
                Knob::Rcvbuf => log_scale(spec.rcvbuf_bytes, 6.3e6),
                Knob::FdLimit => log_scale(spec.fd_limit, 1024.0),
                Knob::Strategy => match spec.strategy {
                    Strategy::RandomWalk => 0.0,
                    Strategy::Pct { depth, .. } => f64::from(depth) / 3.0,
                },
                _ => spec.switch_bias,
            }
        })
        .collect()
}

/// How many runs it took to find the first failure, and which seed it was, running the
/// pool in plain order (`guided` false) or in the guided order, within `runs_max` runs.
pub fn runs_to_failure(
    scenario: &Scenario,
    pool: &[u64],
    runs_max: usize,
    guided: bool,
) -> Option<(usize, u64)> {
    let mut unrun: Vec<u64> = pool.to_vec();
    // Per case: how many runs reached it so far.
    let mut reached = [0u64; CASES.len()];
    // Environments of past runs and how rare the corners they reached were.
    let mut archive: Vec<(Vec<f64>, f64)> = Vec::new();
    for run in 0..runs_max.min(pool.len()) {
        let pick = if guided && run >= WARMUP_RUNS {
            best_candidate(scenario, &unrun, &archive)
        } else {
            0
        };
        let seed = unrun.remove(pick);
        coverage::take();
        let verdict = run_sim(scenario, seed, false).verdict;
        let counts = coverage::take();
        if verdict != Verdict::Pass {
            return Some((run + 1, seed));
        }
        // A case reached by few runs so far scores high; one every run reaches, nothing.
        let rarity: f64 = counts
            .iter()
            .zip(reached.iter())
            .filter(|(&n, _)| n > 0)
            .map(|(_, &seen)| 1.0 / (1.0 + seen as f64))
            .sum();
        for (seen, &n) in reached.iter_mut().zip(counts.iter()) {
            *seen += u64::from(n > 0);
        }
        archive.push((features(scenario, seed), rarity));
    }
    None
}

/// The index in `unrun` of the candidate whose environment lies closest to the archived
/// environments that reached rare corners (each weighted by its rarity).
fn best_candidate(scenario: &Scenario, unrun: &[u64], archive: &[(Vec<f64>, f64)]) -> usize {
    let score = |seed: u64| -> f64 {
        let f = features(scenario, seed);
        archive
            .iter()
            .map(|(g, rarity)| {
                let dist2: f64 = f.iter().zip(g).map(|(a, b)| (a - b) * (a - b)).sum();
                rarity * (-dist2).exp()
            })
            .sum()
    };
    let mut best = (0, f64::MIN);
    for (idx, &seed) in unrun.iter().take(CANDIDATES).enumerate() {
        let s = score(seed);
        if s > best.1 {
            best = (idx, s);
        }
    }
    best.0
}
