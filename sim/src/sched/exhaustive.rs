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
//! (and no two complete runs of the same trace). With the bound, a pruned order may be
//! equivalent only to orders beyond the bound (Coons et al., "Bounded partial-order
//! reduction", OOPSLA 2013), so a search the bound cut is reported as incomplete.

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
    /// The path to follow: at the i-th choice point, the choices explored there (the last is
    /// the one to take).
    prefix: Vec<Vec<u32>>,
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
        } else if let Some(done) = self.prefix.get(self.visited.len()) {
            let chosen = *done.last().expect("a prefix choice");
            debug_assert!(enabled.contains(&chosen), "a replayed prefix diverged");
            (chosen, done[..done.len() - 1].to_vec())
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
            prefix: self.path.iter().map(|node| node.done.clone()).collect(),
            bound: self.bound,
            reduce: self.reduce,
            ..Schedule::default()
        })
    }

    /// Moves to the deepest choice point with a choice left, and takes it there.
    fn backtrack(&mut self) -> bool {
        while let Some(node) = self.path.last_mut() {
            for &t in &node.enabled {
                if node.done.contains(&t) || (self.reduce && node.sleep.contains(&t)) {
                    continue;
                }
                let preempts = node.current.is_some_and(|c| c != t);
                if preempts && self.bound.is_some_and(|k| node.preemptions >= k) {
                    self.bound_hit = true;
                    continue;
                }
                node.done.push(t);
                return true;
            }
            self.path.pop();
        }
        false
    }

    /// Takes in the schedule a run followed, as its report returned it.
    pub fn record(&mut self, schedule: &Schedule) {
        let kept = schedule.prefix.len();
        debug_assert!(
            self.path
                .iter()
                .zip(&schedule.visited)
                .all(|(a, b)| a.enabled == b.enabled && a.done == b.done),
            "a replayed prefix met other choice points"
        );
        self.path.truncate(kept);
        self.path
            .extend(schedule.visited.iter().skip(kept).cloned());
        self.bound_hit |= schedule.bound_blocked;
    }

    /// How the search ended (once [`Search::next_schedule`] returned `None`).
    pub fn end(&self) -> SearchEnd {
        match self.bound_hit {
            true => SearchEnd::Bound,
            false => SearchEnd::Complete,
        }
    }
}
