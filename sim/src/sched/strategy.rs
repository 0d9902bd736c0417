//! Scheduling strategies: which runnable thread runs after a preemption point.
//!
//! A uniform random walk explores broadly; PCT (probabilistic concurrency testing, Burckhardt
//! et al. 2010) runs the highest-priority thread and lowers the running thread's priority at
//! `depth - 1` randomly chosen steps, which finds an ordering bug of depth `d` among `n`
//! threads and `k` steps with probability at least `1 / (n * k^(d-1))` per run.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

/// How the scheduler picks the next thread.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// At every preemption point, a uniformly drawn runnable thread runs next.
    #[default]
    RandomWalk,
    /// PCT with `depth - 1` priority change points drawn in `1..=steps_hint`.
    Pct {
        /// The bug depth aimed at (at least 1).
        depth: u32,
        /// The expected length of a run in steps; change points fall before it.
        steps_hint: u64,
    },
}

/// A number in `0..n` from one draw (multiply-shift; the bias is below 2^-32 for the
/// thread counts we see, and the result is deterministic, which is what matters).
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    debug_assert!(n > 0);
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// A draw that succeeds with probability `p`; draws nothing when `p` is zero, so that a run
/// without faults consumes the same stream whatever the fault code asks.
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) < p
}

/// The strategy's state during one run.
#[derive(Debug)]
pub(crate) struct Picker {
    strategy: Strategy,
    /// Random walk: the probability that a preemption point keeps the running thread. Zero
    /// is the uniform walk; a high bias lets one thread run long stretches between
    /// switches, which reaches states a uniform walk rarely does (a loop that gets through
    /// a whole batch of events before a peer runs).
    switch_bias: f64,
    /// PCT priority per thread id; higher runs first.
    priorities: Vec<u64>,
    /// PCT change points, ascending.
    change_points: Vec<u64>,
    next_change_idx: usize,
}

impl Picker {
    pub(crate) fn new(strategy: Strategy, switch_bias: f64, rng: &mut ChaCha8Rng) -> Picker {
        let mut change_points = Vec::new();
        if let Strategy::Pct { depth, steps_hint } = strategy {
            for _ in 1..depth {
                change_points.push(1 + below(rng, steps_hint.max(1) as usize) as u64);
            }
            change_points.sort_unstable();
        }
        Picker {
            strategy,
            switch_bias,
            priorities: Vec::new(),
            change_points,
            next_change_idx: 0,
        }
    }

    /// Gives a new thread its initial priority.
    pub(crate) fn on_spawn(&mut self, tid: u32, rng: &mut ChaCha8Rng) {
        if let Strategy::Pct { depth, .. } = self.strategy {
            debug_assert_eq!(tid as usize, self.priorities.len());
            // Initial priorities sit above every change-point priority (1..depth).
            let priority = u64::from(depth) + (rng.next_u64() >> 8);
            self.priorities.push(priority);
        }
    }

    /// Switches to a random walk (the fair phase after faults heal).
    pub(crate) fn make_fair(&mut self) {
        self.strategy = Strategy::RandomWalk;
        self.switch_bias = 0.0;
    }

    /// The thread to run at `step`, among `runnable` (never empty), `current` being the
    /// thread that reached the preemption point (it may or may not be runnable).
    pub(crate) fn pick(
        &mut self,
        runnable: &[u32],
        current: Option<u32>,
        step: u64,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        debug_assert!(!runnable.is_empty());
        match self.strategy {
            Strategy::RandomWalk => match current {
                // `chance` draws nothing at zero bias, so the uniform walk's stream is
                // the same as before the bias existed.
                Some(tid) if runnable.contains(&tid) && chance(rng, self.switch_bias) => tid,
                _ => runnable[below(rng, runnable.len())],
            },
            Strategy::Pct { .. } => {
                while self.next_change_idx < self.change_points.len()
                    && self.change_points[self.next_change_idx] <= step
                {
                    self.next_change_idx += 1;
                    if let Some(tid) = current {
                        // The i-th change point gives the running thread priority i, below
                        // every initial priority and every earlier change point's.
                        self.priorities[tid as usize] = self.next_change_idx as u64;
                    }
                }
                let priorities = &self.priorities;
                *runnable
                    .iter()
                    .max_by_key(|&&tid| (priorities[tid as usize], std::cmp::Reverse(tid)))
                    .expect("runnable is not empty")
            }
        }
    }
}
