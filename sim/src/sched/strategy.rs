//! Scheduling strategies: which runnable thread runs after a preemption point.
//!
//! - The **random walk** (the default) spends a decision only where order can matter: at a
//!   preemption point it keeps the running thread unless another runnable thread's next call
//!   is dependent on the call about to run or on the one just made (`kernel::dependence`),
//!   and then draws among those threads. So that no order is lost, it also preempts at
//!   random points whatever the dependence, after a geometric countdown with one draw per
//!   preemption and none per step, to a thread drawn among all runnable ones: every schedule
//!   the every-call walk can produce keeps a positive probability (ARCHITECTURE.md, "The
//!   reduced random walk").
//! - **Every call** is the walk as it was before the reduction: a uniform draw at every
//!   preemption point.
//! - **PCT** (probabilistic concurrency testing, Burckhardt et al. 2010) runs the
//!   highest-priority thread and lowers the running thread's priority at `depth - 1` randomly
//!   chosen steps, which finds an ordering bug of depth `d` among `n` threads and `k` steps
//!   with probability at least `1 / (n * k^(d-1))` per run. It draws nothing per step.
//!
//! When the running thread cannot go on (it blocked or ended), every strategy picks among all
//! runnable threads: uniformly for the walks, by priority for PCT.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

/// How the scheduler picks the next thread.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The reduced random walk: decisions where the next calls of two threads are dependent,
    /// and random preemptions after a geometric countdown.
    #[default]
    RandomWalk,
    /// At every preemption point, a uniformly drawn runnable thread runs next.
    EveryCall,
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

/// The reduced walk's random preemptions, unbiased: the mean number of preemption points
/// with a choice between two of them. Each is one draw for the next countdown and one for
/// the thread. Measured over 2,000 seeds of each catalogue flaw (ARCHITECTURE.md, "The
/// reduced random walk"): at 32 the walk found `stale-token`, `emfile-spin` and
/// `shared-no-oneshot` in markedly fewer seeds than the every-call walk (829 against 980
/// of 2,000 for `stale-token`), at 4 within a few percent of it, and `wake-flag-race` and
/// `out-once` more often at both; bench-echo then makes about a third of the every-call
/// walk's decisions. At 2 (`BLOCKS=100 scripts/strategy-compare.sh` at 0009b85, 5,000 seeds
/// each) `stale-token` failed as often as under every call (2,169 seeds against 2,030 at
/// 4 and 2,186), but `wake-flag-race` fell from 575 to 402, below every call's 463, and a
/// floor step cost 58 ns against 42.
pub(crate) const PREEMPT_MEAN_POINTS: f64 = 4.0;

/// A geometric countdown: the number of choice points until the next random preemption,
/// memoryless, so every point has the same chance of being the one. `ln_fail` is the
/// logarithm of the chance that a point is not the one ([`ln_fail`]).
fn countdown(rng: &mut ChaCha8Rng, ln_fail: f64) -> u64 {
    // 53 random bits give a uniform float in (0, 1]; inverting the geometric distribution's
    // tail gives the count.
    let unit = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    1 + (unit.ln() / ln_fail) as u64
}

/// The logarithm [`countdown`] divides by, for the reduced walk's mean countdown under
/// `switch_bias`: a bias keeps the running thread longer between random preemptions too (0.5
/// doubles the mean, 0.95 multiplies it by 20). Computed once per bias, not per countdown: a
/// logarithm costs about as much as the rest of a switch's bookkeeping.
fn ln_fail(switch_bias: f64) -> f64 {
    let mean = PREEMPT_MEAN_POINTS / (1.0 - switch_bias.min(0.999));
    (1.0 - 1.0 / mean).ln()
}

/// The strategy's state during one run.
#[derive(Debug)]
pub(crate) struct Picker {
    strategy: Strategy,
    /// The walks: the probability that a decision keeps the running thread. Zero is the
    /// uniform walk; a high bias lets one thread run long stretches between switches, which
    /// reaches states a uniform walk rarely does (a loop that gets through a whole batch of
    /// events before a peer runs).
    switch_bias: f64,
    /// PCT priority per thread id; higher runs first.
    priorities: Vec<u64>,
    /// PCT change points, ascending.
    change_points: Vec<u64>,
    next_change_idx: usize,
    /// The reduced walk: choice points left before the next random preemption.
    countdown: u64,
    /// The reduced walk: [`ln_fail`] of the current bias.
    ln_fail: f64,
    /// Picks that drew from the schedule stream.
    pub(crate) decisions: u64,
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
        let ln_fail = ln_fail(switch_bias);
        let countdown = match strategy {
            Strategy::RandomWalk => countdown(rng, ln_fail),
            _ => 0,
        };
        Picker {
            strategy,
            switch_bias,
            priorities: Vec::new(),
            change_points,
            next_change_idx: 0,
            countdown,
            ln_fail,
            decisions: 0,
        }
    }

    /// Whether this is the reduced walk, whose decisions depend on what threads do next.
    pub(crate) fn reduced(&self) -> bool {
        self.strategy == Strategy::RandomWalk
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

    /// Ends PCT's unfair priorities (the fair phase after faults heal): PCT becomes the
    /// reduced walk, and a walk loses its bias.
    pub(crate) fn make_fair(&mut self, rng: &mut ChaCha8Rng) {
        self.switch_bias = 0.0;
        self.ln_fail = ln_fail(0.0);
        if matches!(self.strategy, Strategy::Pct { .. }) {
            self.strategy = Strategy::RandomWalk;
            self.countdown = countdown(rng, self.ln_fail);
        }
    }

    /// The reduced walk at a preemption point where another thread could run: whether the
    /// countdown ran out here (then a thread drawn among the others runs next).
    pub(crate) fn preempts(&mut self, rng: &mut ChaCha8Rng) -> bool {
        self.countdown -= 1;
        if self.countdown > 0 {
            return false;
        }
        self.countdown = countdown(rng, self.ln_fail);
        true
    }

    /// The reduced walk's decision among `current` and the `others` whose next call is
    /// dependent: the bias keeps `current`, else a uniform draw among all of them.
    pub(crate) fn decide(&mut self, current: u32, others: &[u32], rng: &mut ChaCha8Rng) -> u32 {
        self.decisions += 1;
        if chance(rng, self.switch_bias) {
            return current;
        }
        match below(rng, others.len() + 1) {
            0 => current,
            i => others[i - 1],
        }
    }

    /// A uniform draw among `runnable` (never empty); no draw when only one can run.
    pub(crate) fn uniform(&mut self, runnable: &[u32], rng: &mut ChaCha8Rng) -> u32 {
        if runnable.len() == 1 {
            return runnable[0];
        }
        self.decisions += 1;
        runnable[below(rng, runnable.len())]
    }

    /// A uniform draw among the threads of `runnable` other than `me` (which is runnable and
    /// not alone), in `runnable`'s order, with the draws of [`Picker::uniform`] on that list
    /// but without building it.
    pub(crate) fn uniform_other(&mut self, runnable: &[u32], me: u32, rng: &mut ChaCha8Rng) -> u32 {
        let others = runnable.len() - 1;
        debug_assert!(others > 0);
        let mine = runnable
            .iter()
            .position(|&t| t == me)
            .expect("me is runnable");
        let i = match others {
            1 => 0,
            _ => {
                self.decisions += 1;
                below(rng, others)
            }
        };
        runnable[if i < mine { i } else { i + 1 }]
    }

    /// Every call and PCT: the thread to run at `step`, among `runnable` (never empty),
    /// `current` being the thread that reached the preemption point (it may or may not be
    /// runnable).
    pub(crate) fn pick(
        &mut self,
        runnable: &[u32],
        current: Option<u32>,
        step: u64,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        debug_assert!(!runnable.is_empty());
        match self.strategy {
            Strategy::RandomWalk | Strategy::EveryCall => match current {
                // `chance` draws nothing at zero bias, so the uniform walk's stream is
                // the same as before the bias existed.
                Some(tid) if runnable.contains(&tid) && chance(rng, self.switch_bias) => {
                    self.decisions += 1;
                    tid
                }
                _ => {
                    self.decisions += 1;
                    runnable[below(rng, runnable.len())]
                }
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
