//! The exhaustive search: every schedule of a run with at most K preemptions, one run at a
//! time from the start (stateless, as CHESS and loom search), modulo the independence of
//! calls: sleep sets (Godefroid 1996) keep it from running two orders that differ only by
//! swapping independent calls.
//!
//! A run is a path through choice points, the picks at which two or more threads could run.
//! The [`Search`] keeps the current path; each [`Schedule`] it hands out forces the choices of
//! a prefix of that path and lets the run go on by a default rule (the running thread if it
//! can, else the first that can), recording the choice points it meets. After the run, the
//! search backtracks to the deepest choice point with a choice not yet explored, not asleep
//! and within the preemption bound.
//!
//! Sleep sets: when the choices `t1, ..., tk` have been explored at a point and `u` is taken
//! next, every `ti` whose call is independent of `u`'s goes to sleep in `u`'s subtree, and
//! stays asleep until a call dependent on it runs; a sleeping thread is never picked, since
//! every order in which it ran here is equivalent to one already explored under `ti`. A run
//! in which every thread that could run is asleep is cut short ([`super::Outcome::Pruned`]).
//! Without the bound, sleep sets explore at least one run of every Mazurkiewicz trace
//! (and no two complete runs of the same trace). With a bound, a pruned order may be
//! equivalent only to orders beyond the bound (Coons et al., "Bounded partial-order
//! reduction", OOPSLA 2013: moving a call earlier can cost preemptions), so only two kinds
//! of explored choice put threads to sleep:
//! - the running thread's own (no preemption): a pruned run `p u w c r`, where `c` is the
//!   running thread's call at the point and every call of `w` is independent of it, is
//!   equivalent to `p c u w r`, which makes no more preemptions (the switch to `u` moves
//!   after `c`, and the switches into and out of `c` after `w` go), and lies in the subtree
//!   of `c`, which was searched with the same budget;
//! - any choice whose subtree the bound did not cut: every order in it was run (or pruned by
//!   the same rules).
//!
//! So every trace that has a run within the bound has a run in the search, and a search the
//! bound cut says so ("complete=no (bound)").

use super::world::World;

/// A choice point of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    /// The threads that could run, in the scheduler's order.
    enabled: Vec<u32>,
    /// The thread at its preemption point: picking any other preempts it. `None` when the
    /// running thread blocked or ended.
    current: Option<u32>,
    /// Threads asleep on entry.
    sleep: Vec<u32>,
    /// The choices explored here, in order; the last is the one the run takes.
    done: Vec<u32>,
    /// The explored choices whose subtree the bound cut: they put nobody to sleep.
    cut: Vec<u32>,
    /// The bound cut the subtree of the choice taken now.
    cutting: bool,
    /// Preemptions before this point.
    preemptions: u32,
    /// The index of this pick among all picks of the run (for the decision log).
    pick_index: u64,
}

impl Node {
    fn chosen(&self) -> u32 {
        *self.done.last().expect("a visited point has a choice")
    }
}

/// What one run of the search follows, and, once it ran, the choice points it met.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The path to follow: at the i-th choice point, the choice to take and the choices
    /// explored there before it that put threads to sleep.
    prefix: Vec<(u32, Vec<u32>)>,
    /// The most preemptions a run may make, if bounded.
    bound: Option<u32>,
    /// Sleep sets on.
    reduce: bool,
    /// The choice points met so far.
    visited: Vec<Node>,
    /// Threads asleep now.
    sleep: Vec<u32>,
    /// Preemptions made so far.
    preemptions: u32,
    /// Picks made so far (choice points and the others).
    picks: u64,
    /// The run was cut because the bound left no thread to run.
    bound_blocked: bool,
}

impl Schedule {
    /// The choice at this pick, given the running thread `current` if it is at a
    /// preemption point; `None` cuts the run (every candidate asleep, or beyond the bound).
    pub(crate) fn pick(&mut self, world: &World, current: Option<u32>) -> Option<u32> {
        let enabled = &world.runnable;
        let pick_index = self.picks;
        self.picks += 1;
        self.sleep.retain(|t| enabled.contains(t));
        let entry_sleep = self.sleep.clone();
        let (chosen, explored) = if enabled.len() == 1 {
            (enabled[0], Vec::new())
        } else if let Some((chosen, sleepers)) = self.prefix.get(self.visited.len()) {
            debug_assert!(enabled.contains(chosen), "a replayed prefix diverged");
            (*chosen, sleepers.clone())
        } else {
            (self.default_choice(enabled, current)?, Vec::new())
        };
        if self.sleep.contains(&chosen) {
            return None;
        }
        let preempts = current.is_some_and(|c| c != chosen);
        if enabled.len() > 1 {
            self.visited.push(Node {
                enabled: enabled.clone(),
                current,
                sleep: entry_sleep,
                done: explored.iter().copied().chain([chosen]).collect(),
                cut: Vec::new(),
                cutting: false,
                preemptions: self.preemptions,
                pick_index,
            });
        }
        self.preemptions += u32::from(preempts);
        if self.reduce {
            let footprint = world.pending_footprint(chosen);
            let mut sleep = std::mem::take(&mut self.sleep);
            for t in explored {
                if !sleep.contains(&t) {
                    sleep.push(t);
                }
            }
            sleep.retain(|&t| {
                t != chosen && !world.pending_footprint(t).depends(t, &footprint, chosen)
            });
            self.sleep = sleep;
        }
        Some(chosen)
    }

    /// The default rule at a new choice point: the running thread if it may run, else the
    /// first thread that may; none when all are asleep or a switch would pass the bound.
    fn default_choice(&mut self, enabled: &[u32], current: Option<u32>) -> Option<u32> {
        if let Some(me) = current.filter(|me| !self.sleep.contains(me)) {
            return Some(me);
        }
        let other = enabled.iter().copied().find(|t| !self.sleep.contains(t))?;
        let preempts = current.is_some_and(|c| c != other);
        if preempts && self.bound.is_some_and(|k| self.preemptions >= k) {
            self.bound_blocked = true;
            return None;
        }
        Some(other)
    }

    /// The run's choices as a decision log (picks that depart from the default rule of
    /// [`super::Decisions`]: keep the running thread, else the first runnable one).
    pub fn decisions(&self) -> super::Decisions {
        let picks = self
            .visited
            .iter()
            .filter(|node| node.chosen() != node.current.unwrap_or(node.enabled[0]))
            .map(|node| (node.pick_index, node.chosen()))
            .collect();
        super::Decisions {
            picks,
            faults: Vec::new(),
        }
    }

    /// Preemptions the run made.
    pub fn preemptions(&self) -> u32 {
        self.preemptions
    }
}

/// How a search ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SearchEnd {
    /// Every schedule was run (modulo independence when sleep sets are on).
    Complete,
    /// Every schedule within the preemption bound was run, and the bound cut others.
    Bound,
}

/// The state of an exhaustive search between runs.
#[derive(Debug)]
pub struct Search {
    path: Vec<Node>,
    bound: Option<u32>,
    reduce: bool,
    bound_hit: bool,
    started: bool,
}

impl Search {
    /// A search of the schedules with at most `bound` preemptions (`None`: all), with sleep
    /// sets when `reduce`.
    pub fn new(bound: Option<u32>, reduce: bool) -> Search {
        Search {
            path: Vec::new(),
            bound,
            reduce,
            bound_hit: false,
            started: false,
        }
    }

    /// The schedule of the next run, or `None` when the search is over.
    pub fn next_schedule(&mut self) -> Option<Schedule> {
        if self.started && !self.backtrack() {
            return None;
        }
        self.started = true;
        Some(Schedule {
            prefix: self
                .path
                .iter()
                .map(|node| {
                    let before = &node.done[..node.done.len() - 1];
                    let sleepers = before
                        .iter()
                        .filter(|&&t| node.current == Some(t) || !node.cut.contains(&t));
                    (node.chosen(), sleepers.copied().collect())
                })
                .collect(),
            bound: self.bound,
            reduce: self.reduce,
            ..Schedule::default()
        })
    }

    /// Moves to the deepest choice point with a choice left, and takes it there.
    fn backtrack(&mut self) -> bool {
        while let Some(depth) = self.path.len().checked_sub(1) {
            let node = &mut self.path[depth];
            if std::mem::take(&mut node.cutting) {
                let chosen = node.chosen();
                node.cut.push(chosen);
            }
            let mut next = None;
            let mut cut_here = false;
            for &t in &node.enabled {
                if node.done.contains(&t) || (self.reduce && node.sleep.contains(&t)) {
                    continue;
                }
                let preempts = node.current.is_some_and(|c| c != t);
                if preempts && self.bound.is_some_and(|k| node.preemptions >= k) {
                    cut_here = true;
                    continue;
                }
                next = Some(t);
                break;
            }
            if cut_here {
                self.cut_above(depth);
            }
            if let Some(t) = next {
                self.path[depth].done.push(t);
                return true;
            }
            self.path.pop();
        }
        false
    }

    /// The bound cut a choice at depth `depth`: the subtrees of the choices that led there
    /// are incomplete.
    fn cut_above(&mut self, depth: usize) {
        self.bound_hit = true;
        for node in &mut self.path[..depth] {
            node.cutting = true;
        }
    }

    /// Takes in the schedule a run followed, as its report returned it.
    pub fn record(&mut self, schedule: &Schedule) {
        let kept = schedule.prefix.len();
        debug_assert!(
            self.path
                .iter()
                .zip(&schedule.visited)
                .all(|(a, b)| a.enabled == b.enabled && a.chosen() == b.chosen()),
            "a replayed prefix met other choice points"
        );
        self.path.truncate(kept);
        self.path
            .extend(schedule.visited.iter().skip(kept).cloned());
        if schedule.bound_blocked {
            let depth = self.path.len();
            self.cut_above(depth);
        }
    }

    /// How the search ended (once [`Search::next_schedule`] returned `None`).
    pub fn end(&self) -> SearchEnd {
        match self.bound_hit {
            true => SearchEnd::Bound,
            false => SearchEnd::Complete,
        }
    }
}
