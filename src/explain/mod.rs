//! Explaining a run: pictures of it (an SVG timeline, a Perfetto trace), the smallest run that
//! still fails the same way (the shrinker), and which edge-triggered corner cases a set of
//! seeds reached (coverage).
//!
//! A seed that fails after thousands of steps is a fact, not an explanation; these views turn
//! the simulator's trace into something a reviewer can look at. They all start from a
//! [`Timeline`]: the trace records regrouped into calls (with the events an `epoll_wait`
//! returned and the faults injected into them), the connections between client and server
//! sockets, and the two moments that matter in a stall: the hazard (an edge taken and not
//! drained) and the step after which the stall was certain.

pub mod coverage;
pub mod perfetto;
pub mod shrink;
pub mod svg;

use crate::runner::RunResult;
use crate::scenario::Verdict;
use sim::kernel::FdKind;
use sim::sched::{Hazard, Op, Record, Report, ThreadInfo};

/// One simulated call, with what came with it in the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The step at which the call returned.
    pub step: u64,
    /// The calling thread.
    pub tid: u32,
    /// The call.
    pub op: Op,
    /// Its first two arguments.
    pub args: [i64; 2],
    /// Its result, or `-errno`.
    pub ret: i64,
    /// `(events, token)` pairs an `epoll_wait` returned.
    pub events: Vec<(u32, u64)>,
    /// The scheduler fault injected into this call, if any.
    pub fault: Option<&'static str>,
    /// The step of this thread's previous call (the call began after it): a blocking call
    /// spans from there to `step`.
    pub since_step: u64,
}

/// A client's socket and the server socket at the other end of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The client thread.
    pub client_tid: u32,
    /// The client's descriptor.
    pub client_fd: i32,
    /// The server's descriptor for the same connection.
    pub server_fd: i32,
}

/// A run, regrouped for pictures.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The scenario's name.
    pub name: String,
    /// The run's seed.
    pub seed: u64,
    /// The verdict.
    pub verdict: Verdict,
    /// Every thread.
    pub threads: Vec<ThreadInfo>,
    /// Every call, in trace order.
    pub calls: Vec<Call>,
    /// The hazards the run recorded.
    pub hazards: Vec<Hazard>,
    /// Connections still open at the end (those a stall is about).
    pub connections: Vec<Connection>,
    /// The last step of the run.
    pub end_step: u64,
    /// The hazard the stall is blamed on, if any (an index into `hazards`).
    pub blamed_hazard: Option<usize>,
    /// For a stall: the step after which nothing could have saved the run.
    pub stall_certain_step: Option<u64>,
    /// Why the stall was certain from that step, in words.
    pub stall_certain_why: String,
    /// The diagnosis lines.
    pub diagnosis: Vec<String>,
    /// Threads whose last record is a block that never returned: `(tid, step)`.
    pub blocked_at_end: Vec<(u32, u64)>,
}

impl Timeline {
    /// Builds the timeline of a run made with its trace kept (`keep_trace`); the kernel in
    /// `report` is consulted to pair client and server sockets.
    pub fn new(name: &str, result: &RunResult, report: &mut Report) -> Timeline {
        let calls = calls(report.trace.records());
        let connections = connections(report, &calls);
        let mut timeline = Timeline {
            name: name.to_string(),
            seed: result.seed,
            verdict: result.verdict,
            threads: report.threads.clone(),
            calls,
            hazards: report.hazards.clone(),
            connections,
            end_step: report.steps,
            blamed_hazard: None,
            stall_certain_step: None,
            stall_certain_why: String::new(),
            diagnosis: result.diagnosis.clone(),
            blocked_at_end: blocked_at_end(report.trace.records()),
        };
        timeline.find_stall_point();
        timeline
    }

    /// The name of thread `tid`.
    pub fn thread_name(&self, tid: u32) -> &str {
        self.threads
            .get(tid as usize)
            .map_or("?", |thread| thread.name.as_str())
    }

    /// A call as its trace line reads, with the calling thread's name after it.
    pub fn call_text(&self, call: &Call) -> String {
        let record = Record::Call {
            step: call.step,
            tid: call.tid,
            op: call.op,
            args: call.args,
            ret: call.ret,
        };
        format!(
            "{} ({})",
            record.to_string().trim(),
            self.thread_name(call.tid)
        )
    }

    /// Picks the hazard a stall is blamed on and the step the stall became certain.
    ///
    /// A stall is a client that waits forever, so the run is lost as soon as the *first*
    /// connection is stuck for good. For each connection still open at the end, the last
    /// hazard on its server socket is the edge that was never followed up (a later read
    /// would have drained it or left a later hazard); that connection is stuck from when its
    /// thread went back to sleep with the bytes unread *and* its client had sent everything
    /// it was going to send before waiting for the echo. The blamed hazard is the one of the
    /// connection stuck first. Without such a hazard, see below.
    fn find_stall_point(&mut self) {
        if self.verdict != Verdict::Stall {
            return;
        }
        let stuck: Option<(u64, usize)> = self
            .connections
            .iter()
            .filter_map(|c| {
                let idx = self.hazards.iter().rposition(|h| h.fd == c.server_fd)?;
                let last_send = self.last_send_step(c.client_tid, c.client_fd).unwrap_or(0);
                Some((self.hazards[idx].step.max(last_send), idx))
            })
            .min();
        // A hazard on a connection already closed still explains the picture best.
        let blamed = stuck
            .map(|(_, idx)| idx)
            .or_else(|| self.hazards.len().checked_sub(1));
        self.blamed_hazard = blamed;
        let (certain, why) = match blamed {
            Some(idx) => {
                let hazard = &self.hazards[idx];
                (
                    stuck.map_or(hazard.step, |(step, _)| step),
                    format!(
                        "bytes of fd {} unread, the client waits for their echo, no edge will come",
                        hazard.fd
                    ),
                )
            }
            None => {
                // Without a hazard (the observer is off, or the lost wakeup is not an
                // undrained edge): the last bytes a client sent into a connection whose
                // server end still holds them; nothing arrives after that.
                let stuck = self
                    .connections
                    .iter()
                    .filter(|c| self.unread_at_end(c) > 0)
                    .filter_map(|c| {
                        self.last_send_step(c.client_tid, c.client_fd)
                            .map(|step| (step, c.server_fd))
                    })
                    .max();
                match stuck {
                    Some((step, fd)) => (
                        step,
                        format!("the last bytes for server fd {fd} arrived, and nobody reads them"),
                    ),
                    None => (
                        self.calls.last().map_or(self.end_step, |c| c.step),
                        "the last call before every thread blocked".to_string(),
                    ),
                }
            }
        };
        self.stall_certain_step = Some(certain);
        self.stall_certain_why = why;
    }

    /// Bytes the client sent into `connection` that the server has not read by the end
    /// (arrival latency ignored).
    pub fn unread_at_end(&self, connection: &Connection) -> i64 {
        let (client_fd, server_fd) = (
            i64::from(connection.client_fd),
            i64::from(connection.server_fd),
        );
        let mut unread: i64 = 0;
        for call in &self.calls {
            if call.op == Op::Write
                && call.tid == connection.client_tid
                && call.args[0] == client_fd
            {
                unread += call.ret.max(0);
            } else if call.op == Op::Read
                && call.tid != connection.client_tid
                && call.args[0] == server_fd
            {
                unread = (unread - call.ret.max(0)).max(0);
            }
        }
        unread
    }

    fn last_send_step(&self, tid: u32, fd: i32) -> Option<u64> {
        self.calls
            .iter()
            .rev()
            .find(|c| c.tid == tid && c.op == Op::Write && c.args[0] == i64::from(fd) && c.ret > 0)
            .map(|c| c.step)
    }

    /// The steps a picture should show: the whole run when it has at most `steps_max`
    /// steps; else a window of at most `2 * steps_max` steps around the failure: from a
    /// little before the blamed hazard's edge (or as far back as fits) through the point
    /// where the stall became certain, on towards the end of the run.
    pub fn window(&self, steps_max: u64) -> (u64, u64) {
        let end = self.end_step.max(1);
        if end <= steps_max {
            return (0, end);
        }
        let span_max = 2 * steps_max;
        let certain = self.stall_certain_step.unwrap_or(end).min(end);
        let edge = self
            .blamed_hazard
            .map_or(certain, |idx| self.hazards[idx].consumed_step)
            .min(certain);
        // Context before the edge, but never so much that the stall point falls out.
        let mut start = edge.saturating_sub(steps_max / 5);
        start = start.max(certain.saturating_sub(span_max * 3 / 4));
        // At least `steps_max` steps, even when the failure is at the very end.
        start = start.min(end - steps_max);
        (start, end.min(start + span_max))
    }
}

/// Trace records regrouped into calls.
pub fn calls(records: &[Record]) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut last_step: Vec<u64> = Vec::new();
    let mut pending_fault: Option<(u32, &'static str)> = None;
    for record in records {
        match *record {
            Record::Call {
                step,
                tid,
                op,
                args,
                ret,
            } => {
                let idx = tid as usize;
                if last_step.len() <= idx {
                    last_step.resize(idx + 1, 0);
                }
                let fault = match pending_fault {
                    Some((fault_tid, what)) if fault_tid == tid => {
                        pending_fault = None;
                        Some(what)
                    }
                    _ => None,
                };
                calls.push(Call {
                    step,
                    tid,
                    op,
                    args,
                    ret,
                    events: Vec::new(),
                    fault,
                    since_step: last_step[idx],
                });
                last_step[idx] = step;
            }
            Record::Event { events, token } => {
                if let Some(call) = calls.last_mut() {
                    call.events.push((events, token));
                }
            }
            Record::Fault { tid, what, .. } => pending_fault = Some((tid, what)),
            Record::Blocked { step, tid, .. } => {
                // The blocking call returns later as a record of its own; its span starts
                // here rather than at the thread's previous call.
                let idx = tid as usize;
                if last_step.len() <= idx {
                    last_step.resize(idx + 1, 0);
                }
                last_step[idx] = step.saturating_sub(1);
            }
            // Switches are implied by the calls' steps.
            _ => {}
        }
    }
    calls
}

/// Threads whose last record is `Blocked`: they were still waiting when the run ended.
fn blocked_at_end(records: &[Record]) -> Vec<(u32, u64)> {
    let mut last: Vec<Option<u64>> = Vec::new();
    for record in records {
        let (tid, blocked) = match *record {
            Record::Call { tid, .. } => (tid, None),
            Record::Blocked { step, tid, .. } => (tid, Some(step)),
            _ => continue,
        };
        if last.len() <= tid as usize {
            last.resize(tid as usize + 1, None);
        }
        last[tid as usize] = blocked;
    }
    last.iter()
        .enumerate()
        .filter_map(|(tid, step)| step.map(|s| (tid as u32, s)))
        .collect()
}

/// Client sockets (descriptors the client threads connected) paired with the server socket
/// whose peer they are, among the descriptors still open at the end.
fn connections(report: &mut Report, calls: &[Call]) -> Vec<Connection> {
    let mut client_fds: Vec<(u32, i32)> = Vec::new();
    for call in calls {
        let is_client = report
            .threads
            .get(call.tid as usize)
            .is_some_and(|t| t.name.starts_with("client"));
        if is_client && call.op == Op::Connect && call.ret >= 0 {
            let pair = (call.tid, call.ret as i32);
            client_fds.retain(|&(_, fd)| fd != pair.1);
            client_fds.push(pair);
        }
    }
    let kernel = &mut report.kernel;
    let tcp_fds: Vec<i32> = kernel
        .open_fds()
        .into_iter()
        .filter(|i| i.kind == FdKind::Tcp)
        .map(|i| i.fd)
        .collect();
    let mut found = Vec::new();
    for (client_tid, client_fd) in client_fds {
        let Ok(client_addr) = kernel.local_addr(client_fd) else {
            continue;
        };
        let server_fd = tcp_fds
            .iter()
            .copied()
            .filter(|&fd| fd != client_fd)
            .find(|&fd| kernel.peer_addr(fd) == Ok(client_addr));
        if let Some(server_fd) = server_fd {
            found.push(Connection {
                client_tid,
                client_fd,
                server_fd,
            });
        }
    }
    found
}

/// Escapes text for XML and JSON strings alike (the few characters both care about).
pub(crate) fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The names of the epoll bits in `events` (`in,out,rdhup`), or `-` for none.
pub fn events_name(events: u32) -> String {
    crate::os::Events(events).to_string()
}

/// The `run` options that explain a simulated run: pictures, and the replay of a decision log.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunArgs {
    /// Write an SVG timeline of the run to FILE (windowed around the failure).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Write the run as Chrome trace-event JSON to FILE (open it in ui.perfetto.dev).
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<std::path::PathBuf>,
    /// Replay the decision log in FILE (written by `edgesim shrink`) instead of drawing the
    /// schedule from the seed.
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<std::path::PathBuf>,
}

impl RunArgs {
    /// Whether any of these options was given.
    pub fn any(&self) -> bool {
        self.svg.is_some() || self.perfetto.is_some() || self.decisions.is_some()
    }

    /// Runs `scenario` at `seed` with the trace kept, replaying the decision log if one was
    /// given, and writes the pictures asked for.
    pub fn run(
        &self,
        scenario: &crate::scenario::Scenario,
        seed: u64,
    ) -> Result<RunResult, String> {
        let replay = match &self.decisions {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(
                    sim::sched::Decisions::parse(&text)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                )
            }
        };
        let options = crate::runner::SimOptions {
            keep_trace: true,
            replay,
            ..crate::runner::SimOptions::default()
        };
        let (result, mut report) = crate::runner::run_sim_report(scenario, seed, &options);
        let timeline = Timeline::new(&scenario.name, &result, &mut report);
        let outputs = [
            (&self.svg, svg::render as fn(&Timeline) -> String),
            (&self.perfetto, perfetto::render),
        ];
        for (path, render) in outputs {
            if let Some(path) = path {
                std::fs::write(path, render(&timeline))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout().lock(), "wrote {}", path.display());
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests;
