//! Scenario files: which server, which workload, which faults, and which verdict to expect.
//!
//! A scenario is TOML (the format is in DESIGN.md). Every mistake in a file is an error that
//! names the file, the line and the key: unknown keys, wrong types, values out of range, and
//! names (flaws, patterns, models) this build does not know, with the list of those it does.

mod parse;

pub use parse::{load, parse, ScenarioError};

use crate::server::{HandlerKind, ServerConfig};

/// A whole scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// A short name, used in snapshot names and reports.
    pub name: String,
    /// One sentence on what the scenario shows.
    pub description: String,
    /// The server under test.
    pub server: ServerSpec,
    /// The workload.
    pub clients: ClientSpec,
    /// The simulator's knobs.
    pub sim: SimSpec,
    /// The verdict the scenario expects.
    pub expect: Verdict,
    /// The seed at which the expected verdict is pinned: the seed `run` uses when none is
    /// given, and the one its snapshot shows.
    pub seed: u64,
}

/// Which server, in which configuration.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// The multi-reactor server's configuration (model, reactors, workers, balance, trigger,
    /// flaw); scenarios set only those fields and keep the other defaults.
    pub config: ServerConfig,
    /// Run the Go-style netpoller instead of the reactor server.
    pub netpoll: bool,
    /// The netpoller's deliberate flaw (`flaw` under `model = "netpoll"`).
    pub netpoll_flaw: Option<crate::netpoll::Flaw>,
    /// The netpoll server's per-connection idle deadline (`idle_timeout_ms`, netpoll only).
    pub idle_timeout: Option<std::time::Duration>,
    /// The request handler.
    pub handler: HandlerKind,
}

impl ServerSpec {
    /// What a scenario can set, for comparisons (`ServerConfig` has no `PartialEq`).
    fn key(&self) -> impl PartialEq + '_ {
        let c = &self.config;
        let shape = (c.model, c.reactors, c.workers, c.balance, c.trigger, c.flaw);
        let netpoll = (self.netpoll, self.netpoll_flaw, self.idle_timeout);
        (shape, netpoll, self.handler)
    }
}

impl PartialEq for ServerSpec {
    fn eq(&self, other: &ServerSpec) -> bool {
        self.key() == other.key()
    }
}

/// The workload.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSpec {
    /// Concurrent clients.
    pub count: usize,
    /// Messages per client.
    pub messages: usize,
    /// Message size in bytes: `min..=max` (equal for a fixed size).
    pub size_bytes: (usize, usize),
    /// What each client does.
    pub pattern: Pattern,
}

/// What a client does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Send a message, wait for its echo, repeat.
    Pingpong,
    /// Keep several messages in flight.
    Pipeline,
    /// Send everything, then read everything back.
    Burst,
    /// Send everything, shut down the writing half, expect the whole echo, then EOF.
    HalfClose,
    /// Reset the connection midway.
    Reset,
    /// Read the echo slowly, in small pieces.
    SlowReader,
    /// Connect, exchange one message, close; repeat.
    Churn,
    /// Pingpong, then stay connected and silent until the server closes the connection
    /// (its idle deadline); the end of file is expected.
    Idle,
    /// Pingpong, then keep the connection open and silent for a while before closing it, so
    /// the server is watched while it holds idle connections (a loop that busy-waits on an
    /// open connection, or descriptors held while another client waits to be accepted).
    Linger,
}

/// Names as the scenario files spell them, for the "expected one of" lists.
pub const PATTERNS: [(&str, Pattern); 9] = [
    ("pingpong", Pattern::Pingpong),
    ("pipeline", Pattern::Pipeline),
    ("burst", Pattern::Burst),
    ("half-close", Pattern::HalfClose),
    ("reset", Pattern::Reset),
    ("slow-reader", Pattern::SlowReader),
    ("churn", Pattern::Churn),
    ("idle", Pattern::Idle),
    ("linger", Pattern::Linger),
];

/// The simulator's knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSpec {
    /// Which operations raise an edge-triggered event.
    pub edge: sim::kernel::EdgeModel,
    /// Fault probabilities.
    pub faults: FaultSpec,
    /// The run is inconclusive after this many steps.
    pub max_steps: u64,
    /// The scheduling strategy.
    pub strategy: sim::sched::Strategy,
    /// Upper bound of a TCP segment's delivery latency, in microseconds.
    pub latency_us_max: u64,
    /// TCP send buffer per socket.
    pub sndbuf_bytes: usize,
    /// TCP receive buffer per socket.
    pub rcvbuf_bytes: usize,
    /// The simulated process's descriptor limit (`RLIMIT_NOFILE`): a descriptor numbered at
    /// or above it cannot be opened, so `accept` fails with `EMFILE` for as long as the
    /// table stays full (the `accept_emfile` fault fails one call at a time).
    pub fd_limit: usize,
}

/// Fault probabilities, each in `0..=1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// Kernel faults.
    pub kernel: sim::kernel::Faults,
    /// Scheduler faults.
    pub sched: sim::sched::SchedFaults,
}

/// A run's verdict.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every client finished with every byte intact, nothing leaked.
    Pass,
    /// Nothing can run, nothing is in flight, and a client still waits: a missed wakeup.
    Stall,
    /// Wakeups without progress: a busy loop.
    Spin,
    /// Bytes lost, duplicated or reordered.
    Corrupt,
    /// Descriptors or registrations left at the end.
    Leak,
    /// A panic, or a call on a closed descriptor.
    Crash,
    /// The step budget ran out while progress continued.
    Inconclusive,
}

/// Verdict names as files and output lines spell them.
pub const VERDICTS: [(&str, Verdict); 7] = [
    ("pass", Verdict::Pass),
    ("stall", Verdict::Stall),
    ("spin", Verdict::Spin),
    ("corrupt", Verdict::Corrupt),
    ("leak", Verdict::Leak),
    ("crash", Verdict::Crash),
    ("inconclusive", Verdict::Inconclusive),
];

impl Scenario {
    /// Whether the network is told to kill connections (resets, aborted accepts), so that a
    /// client losing one is not the server's fault.
    pub fn injects_resets(&self) -> bool {
        let faults = &self.sim.faults.kernel;
        faults.reset > 0.0 || faults.accept_abort > 0.0
    }
}

impl Verdict {
    /// The verdict's name (`stall`).
    pub fn name(self) -> &'static str {
        VERDICTS
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(name, _)| *name)
            .expect("every verdict is named")
    }
}

impl Pattern {
    /// The pattern's name (`half-close`).
    pub fn name(self) -> &'static str {
        PATTERNS
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(name, _)| *name)
            .expect("every pattern is named")
    }
}

#[cfg(test)]
mod tests;
