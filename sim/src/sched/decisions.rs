//! Decision logs: the scheduling choices and scheduler fault draws of one run, recorded so
//! that the run can be replayed without its random streams, and shrunk by deleting entries.
//!
//! Only choices that differ from a fixed default rule are written down: at a preemption point
//! the default is to keep running the current thread (or, when it cannot run, the first
//! runnable thread in spawn-wakeup order). A log is therefore a list of *preemptions*, and
//! deleting an entry removes one preemption; a replayed log that runs out, or names a thread
//! that cannot run at that point, falls back to the default. Fault draws are logged by their
//! index among all draws, and in replay a draw fires exactly when its index is in the log.
//!
//! The kernel's own stream (segmentation, short reads, latency) is not logged: it is seeded
//! from the run's seed and consumed call by call, so a replay with the same seed and the same
//! decisions reproduces it.

use std::fmt;

/// The decisions of one run that differ from the default rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    /// `(pick index, thread)`: at the pick-index-th scheduling decision of the run, that
    /// thread ran instead of the default. Ascending by pick index.
    pub picks: Vec<(u64, u32)>,
    /// Indices (among all scheduler fault draws) of the draws that fired. Ascending.
    pub faults: Vec<u64>,
}

impl Decisions {
    /// Parses the text form written by `Display`: `pick <index> t<tid>` and `fault <index>`
    /// lines, `#` comments and blank lines ignored.
    pub fn parse(text: &str) -> Result<Decisions, String> {
        let mut decisions = Decisions::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("line {}: cannot read \"{line}\"", number + 1);
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("pick"), Some(index), Some(tid), None) => {
                    let index: u64 = index.parse().map_err(|_| bad())?;
                    let tid: u32 = tid
                        .strip_prefix('t')
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(bad)?;
                    decisions.picks.push((index, tid));
                }
                (Some("fault"), Some(index), None, None) => {
                    decisions.faults.push(index.parse().map_err(|_| bad())?);
                }
                _ => return Err(bad()),
            }
        }
        // The replay walks both lists with a cursor, so they must be in order.
        decisions.picks.sort_unstable();
        decisions.picks.dedup_by_key(|(index, _)| *index);
        decisions.faults.sort_unstable();
        decisions.faults.dedup();
        Ok(decisions)
    }
}

impl fmt::Display for Decisions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# edgesim decision log: {} preemptions, {} faults",
            self.picks.len(),
            self.faults.len()
        )?;
        for (index, tid) in &self.picks {
            writeln!(f, "pick {index} t{tid}")?;
        }
        for index in &self.faults {
            writeln!(f, "fault {index}")?;
        }
        Ok(())
    }
}

/// The recorder and, in replay mode, the source of decisions during one run.
#[derive(Debug, Default)]
pub(crate) struct Decider {
    /// The log being replayed, if any.
    replay: Option<Decisions>,
    /// The decisions taken so far (in replay too, so a replay yields the log it obeyed).
    pub(crate) taken: Decisions,
    pick_index: u64,
    fault_index: u64,
    pick_cursor: usize,
    fault_cursor: usize,
}

impl Decider {
    pub(crate) fn new(replay: Option<Decisions>) -> Decider {
        Decider {
            replay,
            ..Decider::default()
        }
    }

    pub(crate) fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// The default rule: keep the current thread if it can run, else the first runnable.
    pub(crate) fn default_pick(runnable: &[u32], current: Option<u32>) -> u32 {
        match current {
            Some(tid) if runnable.contains(&tid) => tid,
            _ => runnable[0],
        }
    }

    /// The replayed choice for this pick, if the log names a runnable thread for it.
    pub(crate) fn replayed_pick(&mut self, runnable: &[u32]) -> Option<u32> {
        let log = self.replay.as_ref()?;
        while log
            .picks
            .get(self.pick_cursor)
            .is_some_and(|&(index, _)| index < self.pick_index)
        {
            self.pick_cursor += 1;
        }
        match log.picks.get(self.pick_cursor) {
            Some(&(index, tid)) if index == self.pick_index && runnable.contains(&tid) => Some(tid),
            _ => None,
        }
    }

    /// Notes the pick made; it is logged when it departs from the default.
    pub(crate) fn note_pick(&mut self, chosen: u32, default: u32) {
        if chosen != default {
            self.taken.picks.push((self.pick_index, chosen));
        }
        self.pick_index += 1;
    }

    /// Whether the replayed log fires this fault draw.
    pub(crate) fn replayed_fault(&mut self) -> bool {
        let Some(log) = self.replay.as_ref() else {
            return false;
        };
        while log
            .faults
            .get(self.fault_cursor)
            .is_some_and(|&index| index < self.fault_index)
        {
            self.fault_cursor += 1;
        }
        log.faults.get(self.fault_cursor) == Some(&self.fault_index)
    }

    /// Notes a fault draw and whether it fired.
    pub(crate) fn note_fault(&mut self, fired: bool) {
        if fired {
            self.taken.faults.push(self.fault_index);
        }
        self.fault_index += 1;
    }
}
