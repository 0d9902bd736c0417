//! Scenario files: which server, which workload, which faults, and which verdict to expect.
//!
//! A scenario is TOML (the format is in DESIGN.md). Every mistake in a file is an error that
//! names the file, the line and the key: unknown keys, wrong types, values out of range, and
//! names (flaws, patterns, models) this build does not know, with the list of those it does.

mod parse;
mod write;

pub use parse::{load, parse, ScenarioError};
pub use write::to_toml;

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
        // The netpoller has no loops: the reactor server's shape means nothing there.
        let shape = (!self.netpoll).then_some((
            (c.model, c.reactors, c.workers, c.balance, c.trigger, c.flaw),
            (
                c.read_buffer_bytes,
                c.read_budget_bytes,
                c.write_budget_bytes,
            ),
            (
                c.inbound_bytes_max,
                c.outbound_bytes_max,
                c.events_max,
                c.job_duration,
            ),
        ));
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

impl ClientSpec {
    /// About how many steps a run of this workload takes in an ordinary environment
    /// (bench-echo measured 10.5 per round trip; a message takes a read and a write per
    /// 16 KiB, a slow reader's one per 7 bytes). PCT's change points are drawn within it,
    /// so that they fall inside the run rather than far beyond its end, where they would
    /// never be reached.
    pub fn steps_estimate(&self) -> u64 {
        let chunk_bytes = match self.pattern {
            Pattern::SlowReader => crate::workload::SLOW_READ_BYTES,
            _ => 16 * 1024,
        } as u64;
        let per_message = 12 + 4 * (self.size_bytes.1 as u64).div_ceil(chunk_bytes);
        300 + self.count as u64 * self.messages as u64 * per_message
    }
}

/// The step budget of a scenario that sets none: twenty times the workload's estimate (a
/// swarm environment of 1 KiB buffers and short writes multiplies the steps a message
/// takes), and never less than this.
pub const STEPS_MAX_DEFAULT: u64 = 200_000;

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
#[derive(Clone, Debug)]
pub struct SimSpec {
    /// Which operations raise an edge-triggered event.
    pub edge: sim::kernel::EdgeModel,
    /// Fault probabilities.
    pub faults: FaultSpec,
    /// The run is inconclusive after this many steps; `None` scales the budget to the
    /// workload ([`SimSpec::step_budget`]).
    pub max_steps: Option<u64>,
    /// The scheduling strategy.
    pub strategy: sim::sched::Strategy,
    /// Random walk only: the probability that a preemption point keeps the running thread.
    pub switch_bias: f64,
    /// Upper bound of a TCP segment's delivery latency, in microseconds.
    pub latency_us_max: u64,
    /// How long the descriptor table stays full after an `accept_emfile` fault, in
    /// milliseconds: every `accept` fails with EMFILE meanwhile, as when the rest of the
    /// process holds the table full. 0: the fault fails only the one call.
    pub emfile_window_ms: u64,
    /// TCP send buffer per socket.
    pub sndbuf_bytes: usize,
    /// TCP receive buffer per socket.
    pub rcvbuf_bytes: usize,
    /// The simulated process's descriptor limit (`RLIMIT_NOFILE`): a descriptor numbered at
    /// or above it cannot be opened, so `accept` fails with `EMFILE` for as long as the
    /// table stays full (the `accept_emfile` fault fails one call at a time).
    pub fd_limit: usize,
    /// Swarm mode: each seed draws the knobs not in `pinned` (see [`crate::swarm`]).
    /// `[sim] swarm = false` runs every seed with the values above.
    pub swarm: bool,
    /// The knobs the scenario set itself: swarm mode never draws them.
    pub pinned: Pinned,
}

/// Equal when they give the same runs: which knobs are pinned matters only while swarm mode
/// draws the others.
impl PartialEq for SimSpec {
    fn eq(&self, other: &SimSpec) -> bool {
        let knobs_equal = KNOBS.iter().all(|&k| !self.knob_differs(other, k));
        let strategy_equal = self.strategy == other.strategy;
        let pinned_equal = !self.swarm || self.pinned == other.pinned;
        knobs_equal
            && strategy_equal
            && pinned_equal
            && self.edge == other.edge
            && self.max_steps == other.max_steps
            && self.swarm == other.swarm
    }
}

/// The defaults a scenario file gets for every key it leaves out.
impl Default for SimSpec {
    fn default() -> SimSpec {
        SimSpec {
            edge: sim::kernel::EdgeModel::Linux,
            faults: FaultSpec::default(),
            max_steps: None,
            strategy: sim::sched::Strategy::RandomWalk,
            switch_bias: 0.0,
            latency_us_max: 50,
            emfile_window_ms: 0,
            sndbuf_bytes: 16 * 1024,
            rcvbuf_bytes: 64 * 1024,
            fd_limit: 1024,
            swarm: true,
            pinned: Pinned::default(),
        }
    }
}

/// A knob of the simulated environment that swarm mode draws per seed, unless pinned.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Knob {
    /// `faults.short_read`.
    ShortRead,
    /// `faults.short_write`.
    ShortWrite,
    /// `faults.segment`.
    Segment,
    /// `faults.reset`.
    Reset,
    /// `faults.accept_abort`.
    AcceptAbort,
    /// `faults.accept_emfile`.
    AcceptEmfile,
    /// `faults.accept_reset`.
    AcceptReset,
    /// `faults.eintr`.
    Eintr,
    /// `faults.eintr_io`.
    EintrIo,
    /// `faults.spurious_wakeup`.
    SpuriousWakeup,
    /// `faults.spurious_ready`.
    SpuriousReady,
    /// `faults.hold`.
    Hold,
    /// `latency_us_max`.
    Latency,
    /// `emfile_window_ms`.
    EmfileWindow,
    /// `sndbuf_bytes`.
    Sndbuf,
    /// `rcvbuf_bytes`.
    Rcvbuf,
    /// `fd_limit`.
    FdLimit,
    /// `strategy` (and `pct_depth`).
    Strategy,
    /// `switch_bias`.
    SwitchBias,
}

/// Every knob, in the order reports list them.
pub const KNOBS: [Knob; 19] = [
    Knob::ShortRead,
    Knob::ShortWrite,
    Knob::Segment,
    Knob::Reset,
    Knob::AcceptAbort,
    Knob::AcceptEmfile,
    Knob::AcceptReset,
    Knob::Eintr,
    Knob::EintrIo,
    Knob::SpuriousWakeup,
    Knob::SpuriousReady,
    Knob::Hold,
    Knob::Latency,
    Knob::EmfileWindow,
    Knob::Sndbuf,
    Knob::Rcvbuf,
    Knob::FdLimit,
    Knob::Strategy,
    Knob::SwitchBias,
];

impl Knob {
    /// The knob's name in reports (the scenario key, without the `faults.` prefix).
    pub fn name(self) -> &'static str {
        match self {
            Knob::ShortRead => "short_read",
            Knob::ShortWrite => "short_write",
            Knob::Segment => "segment",
            Knob::Reset => "reset",
            Knob::AcceptAbort => "accept_abort",
            Knob::AcceptEmfile => "accept_emfile",
            Knob::AcceptReset => "accept_reset",
            Knob::Eintr => "eintr",
            Knob::EintrIo => "eintr_io",
            Knob::SpuriousWakeup => "spurious_wakeup",
            Knob::SpuriousReady => "spurious_ready",
            Knob::Hold => "hold",
            Knob::Latency => "latency_us_max",
            Knob::EmfileWindow => "emfile_window_ms",
            Knob::Sndbuf => "sndbuf_bytes",
            Knob::Rcvbuf => "rcvbuf_bytes",
            Knob::FdLimit => "fd_limit",
            Knob::Strategy => "strategy",
            Knob::SwitchBias => "switch_bias",
        }
    }

    /// Whether the knob is a fault probability.
    pub fn is_fault(self) -> bool {
        self.probability_of(&FaultSpec::default()).is_some()
    }

    /// The fault probability this knob names in `faults`, if it is a fault.
    pub fn probability_of(self, faults: &FaultSpec) -> Option<f64> {
        let (k, s) = (&faults.kernel, &faults.sched);
        Some(match self {
            Knob::ShortRead => k.short_read,
            Knob::ShortWrite => k.short_write,
            Knob::Segment => k.segment,
            Knob::Reset => k.reset,
            Knob::AcceptAbort => k.accept_abort,
            Knob::AcceptEmfile => k.accept_emfile,
            Knob::AcceptReset => k.accept_reset,
            Knob::SpuriousReady => k.spurious_ready,
            Knob::Eintr => s.eintr,
            Knob::EintrIo => s.eintr_io,
            Knob::SpuriousWakeup => s.spurious_wakeup,
            Knob::Hold => s.hold,
            _ => return None,
        })
    }

    /// The fault probability this knob names, for writing; `None` for other knobs.
    pub fn probability_mut(self, faults: &mut FaultSpec) -> Option<&mut f64> {
        let (k, s) = (&mut faults.kernel, &mut faults.sched);
        Some(match self {
            Knob::ShortRead => &mut k.short_read,
            Knob::ShortWrite => &mut k.short_write,
            Knob::Segment => &mut k.segment,
            Knob::Reset => &mut k.reset,
            Knob::AcceptAbort => &mut k.accept_abort,
            Knob::AcceptEmfile => &mut k.accept_emfile,
            Knob::AcceptReset => &mut k.accept_reset,
            Knob::SpuriousReady => &mut k.spurious_ready,
            Knob::Eintr => &mut s.eintr,
            Knob::EintrIo => &mut s.eintr_io,
            Knob::SpuriousWakeup => &mut s.spurious_wakeup,
            Knob::Hold => &mut s.hold,
            _ => return None,
        })
    }
}

impl SimSpec {
    /// The run's step budget for `clients`: `max_steps` if set, else
    /// [`STEPS_MAX_DEFAULT`] or twenty times the workload's estimate, whichever is more.
    pub fn step_budget(&self, clients: &ClientSpec) -> u64 {
        self.max_steps
            .unwrap_or_else(|| STEPS_MAX_DEFAULT.max(20 * clients.steps_estimate()))
    }

    /// The knob's value as reports print it (`0.31`, `6144`, `pct(2)`); a fault that is off
    /// prints as `0`.
    pub fn knob_text(&self, knob: Knob) -> String {
        if let Some(p) = knob.probability_of(&self.faults) {
            // Resets fire per write, so their drawn probabilities are small.
            return if p == 0.0 || p >= 0.01 {
                format!("{p:.2}")
            } else {
                format!("{p:.4}")
            };
        }
        match knob {
            Knob::Latency => self.latency_us_max.to_string(),
            Knob::EmfileWindow => self.emfile_window_ms.to_string(),
            Knob::Sndbuf => self.sndbuf_bytes.to_string(),
            Knob::Rcvbuf => self.rcvbuf_bytes.to_string(),
            Knob::FdLimit => self.fd_limit.to_string(),
            Knob::Strategy => match self.strategy {
                sim::sched::Strategy::RandomWalk => "random".to_string(),
                sim::sched::Strategy::EveryCall => "every-call".to_string(),
                sim::sched::Strategy::Pct { depth, .. } => format!("pct({depth})"),
            },
            Knob::SwitchBias => format!("{:.2}", self.switch_bias),
            _ => unreachable!("every fault knob has a probability"),
        }
    }

    /// Sets `knob` to what `from` has.
    pub fn copy_knob(&mut self, knob: Knob, from: &SimSpec) {
        if let (Some(to), Some(p)) = (
            knob.probability_mut(&mut self.faults),
            knob.probability_of(&from.faults),
        ) {
            *to = p;
            return;
        }
        match knob {
            Knob::Latency => self.latency_us_max = from.latency_us_max,
            Knob::EmfileWindow => self.emfile_window_ms = from.emfile_window_ms,
            Knob::Sndbuf => self.sndbuf_bytes = from.sndbuf_bytes,
            Knob::Rcvbuf => self.rcvbuf_bytes = from.rcvbuf_bytes,
            Knob::FdLimit => self.fd_limit = from.fd_limit,
            Knob::Strategy => self.strategy = from.strategy.clone(),
            Knob::SwitchBias => self.switch_bias = from.switch_bias,
            _ => unreachable!("every fault knob has a probability"),
        }
    }

    /// Pins every knob whose value differs from `before`'s (the harness's `sim` closure:
    /// what a test changed, it meant).
    pub fn pin_changed(&mut self, before: &SimSpec) {
        for knob in KNOBS {
            if self.knob_differs(before, knob) {
                self.pinned.pin(knob);
            }
        }
    }

    /// Whether `knob` has another value in `other`.
    pub fn knob_differs(&self, other: &SimSpec, knob: Knob) -> bool {
        match knob.probability_of(&self.faults) {
            Some(p) => knob.probability_of(&other.faults) != Some(p),
            None => self.knob_text(knob) != other.knob_text(knob),
        }
    }
}

/// A set of [`Knob`]s.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Pinned(u32);

impl Pinned {
    /// Every knob.
    pub const ALL: Pinned = Pinned((1 << KNOBS.len()) - 1);

    /// Adds `knob`.
    pub fn pin(&mut self, knob: Knob) {
        self.0 |= 1 << knob as u32;
    }

    /// Whether `knob` is in the set.
    pub fn contains(self, knob: Knob) -> bool {
        self.0 & (1 << knob as u32) != 0
    }
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
        faults.reset > 0.0 || faults.accept_abort > 0.0 || faults.accept_reset > 0.0
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
