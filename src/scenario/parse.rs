//! Reading a scenario file: TOML into raw, span-carrying structs (so every error can name
//! its line), then checks of ranges and names into a [`Scenario`].

use super::{
    ClientSpec, FaultSpec, Knob, Pinned, Scenario, ServerSpec, SimSpec, PATTERNS, VERDICTS,
};
use crate::netpoll::Flaw as NetpollFlaw;
use crate::server::{Balance, Flaw, HandlerKind, Model, ServerConfig, Trigger};
use serde::Deserialize;
use sim::kernel::{EdgeModel, Faults};
use sim::sched::{SchedFaults, Strategy};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// A mistake in a scenario file, located by file, line and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as given.
    pub file: String,
    /// The 1-based line (0 when the file could not be read at all).
    pub line: usize,
    /// The key at fault (`server.reactors`), or empty when the error is not about one key.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and checks the scenario at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: 0,
        key: String::new(),
        message: format!("cannot read the scenario: {e}"),
    })?;
    parse(&file, &text)
}

/// Checks the scenario text `text`, naming it `file` in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(text, span.start));
        let message = e.message().trim().to_string();
        ScenarioError {
            file: file.to_string(),
            line,
            key: unknown_key(&message).unwrap_or_default(),
            message,
        }
    })?;
    Checker { file, text }.scenario(raw)
}

/// The key named in serde's "unknown field `x`" message, if that is the error.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    clients: RawClients,
    #[serde(default)]
    sim: RawSim,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    model: Option<Spanned<String>>,
    reactors: Option<Spanned<i64>>,
    workers: Option<Spanned<i64>>,
    balance: Option<Spanned<String>>,
    trigger: Option<Spanned<String>>,
    flaw: Option<Spanned<String>>,
    handler: Option<Spanned<String>>,
    read_buffer_bytes: Option<Spanned<i64>>,
    read_budget_bytes: Option<Spanned<i64>>,
    write_budget_bytes: Option<Spanned<i64>>,
    inbound_bytes_max: Option<Spanned<i64>>,
    outbound_bytes_max: Option<Spanned<i64>>,
    events_max: Option<Spanned<i64>>,
    idle_timeout_ms: Option<Spanned<i64>>,
    job_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClients {
    count: Option<Spanned<i64>>,
    messages: Option<Spanned<i64>>,
    size: Option<Spanned<RawSize>>,
    pattern: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Fixed(i64),
    Range(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSim {
    edge: Option<Spanned<String>>,
    faults: Option<RawFaults>,
    max_steps: Option<Spanned<i64>>,
    strategy: Option<Spanned<String>>,
    pct_depth: Option<Spanned<i64>>,
    latency_us_max: Option<Spanned<i64>>,
    emfile_window_ms: Option<Spanned<i64>>,
    sndbuf_bytes: Option<Spanned<i64>>,
    rcvbuf_bytes: Option<Spanned<i64>>,
    fd_limit: Option<Spanned<i64>>,
    switch_bias: Option<Spanned<f64>>,
    swarm: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    short_read: Option<Spanned<f64>>,
    short_write: Option<Spanned<f64>>,
    segment: Option<Spanned<f64>>,
    reset: Option<Spanned<f64>>,
    accept_abort: Option<Spanned<f64>>,
    accept_emfile: Option<Spanned<f64>>,
    accept_reset: Option<Spanned<f64>>,
    eintr: Option<Spanned<f64>>,
    eintr_io: Option<Spanned<f64>>,
    spurious_wakeup: Option<Spanned<f64>>,
    spurious_ready: Option<Spanned<f64>>,
    hold: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    verdict: Option<Spanned<String>>,
    seed: Option<Spanned<i64>>,
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, key: &str, message: String) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: line_of(self.text, span.start),
            key: key.to_string(),
            message,
        }
    }

    /// One of `names`, by its spelling in the file.
    fn choice<T: Copy>(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        names: &[(&str, T)],
        default: T,
    ) -> Result<T, ScenarioError> {
        let Some(value) = value else {
            return Ok(default);
        };
        names
            .iter()
            .find(|(name, _)| *name == value.get_ref())
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let known: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
                self.error(
                    value.span(),
                    key,
                    format!(
                        "unknown value \"{}\" (expected one of: {})",
                        value.get_ref(),
                        known.join(", ")
                    ),
                )
            })
    }

    /// An integer in `range`.
    fn int(
        &self,
        value: &Option<Spanned<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, ScenarioError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(self.error(
                value.span(),
                key,
                format!(
                    "{n} is out of range (expected {}..={})",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    /// A buffer size or budget in bytes.
    fn bytes(
        &self,
        value: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
    ) -> Result<usize, ScenarioError> {
        const BYTES_MAX: i64 = 64 * 1024 * 1024;
        Ok(self.int(value, key, 1..=BYTES_MAX, default as i64)? as usize)
    }

    fn probability(&self, value: &Option<Spanned<f64>>, key: &str) -> Result<f64, ScenarioError> {
        let Some(value) = value else {
            return Ok(0.0);
        };
        let p = *value.get_ref();
        if (0.0..=1.0).contains(&p) {
            Ok(p)
        } else {
            Err(self.error(
                value.span(),
                key,
                format!("{p} is not a probability (expected 0.0..=1.0)"),
            ))
        }
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        if raw.name.get_ref().trim().is_empty() {
            return Err(self.error(raw.name.span(), "name", "is empty".to_string()));
        }
        let server = self.server(&raw.server)?;
        let clients = self.clients(&raw.clients)?;
        let sim = self.sim(&raw.sim)?;
        let expect = self.choice(
            &raw.expect.verdict,
            "expect.verdict",
            &VERDICTS,
            super::Verdict::Pass,
        )?;
        let seed = self.int(&raw.expect.seed, "expect.seed", 0..=i64::MAX, 0)? as u64;
        Ok(Scenario {
            name: raw.name.into_inner(),
            description: raw.description.map(Spanned::into_inner).unwrap_or_default(),
            server,
            clients,
            sim,
            expect,
            seed,
        })
    }

    /// A value of one of the server's named enums.
    fn named<T: Copy + NamedEnum>(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: T,
    ) -> Result<T, ScenarioError> {
        let names: Vec<(&str, T)> = T::all().iter().map(|v| (v.name(), *v)).collect();
        self.choice(value, key, &names, default)
    }

    fn server(&self, raw: &RawServer) -> Result<ServerSpec, ScenarioError> {
        let defaults = ServerConfig::default();
        // "netpoll" is not one of the reactor server's models: it selects another server.
        let netpoll = raw.model.as_ref().is_some_and(|m| m.get_ref() == "netpoll");
        let model = if netpoll {
            Model::SingleReactor
        } else {
            let mut names: Vec<(&str, Option<Model>)> =
                Model::ALL.iter().map(|m| (m.name(), Some(*m))).collect();
            names.push(("netpoll", None));
            self.choice(&raw.model, "server.model", &names, Some(defaults.model))?
                .unwrap_or(defaults.model)
        };
        // Under "netpoll" the flaw names the netpoller's flaws, not the reactor's.
        let (flaw, netpoll_flaw) = match &raw.flaw {
            None => (None, None),
            Some(_) if netpoll => {
                let names: Vec<(&str, NetpollFlaw)> =
                    NetpollFlaw::ALL.iter().map(|f| (f.name(), *f)).collect();
                // The default is never used: the key is present.
                let flaw =
                    self.choice(&raw.flaw, "server.flaw", &names, NetpollFlaw::NoReadyToken)?;
                (None, Some(flaw))
            }
            Some(_) => (
                Some(self.named(&raw.flaw, "server.flaw", Flaw::ReadOnce)?),
                None,
            ),
        };
        // The shared-epoll server is a small echo server of its own: one flaw, no workers.
        let shared = model == Model::SharedEpoll;
        if let (Some(value), Some(flaw)) = (&raw.flaw, flaw) {
            if shared != (flaw == Flaw::SharedNoOneshot) {
                let why = if shared {
                    "the only flaw of model = \"shared-epoll\" is \"shared-no-oneshot\""
                } else {
                    "applies only to model = \"shared-epoll\""
                };
                return Err(self.error(value.span(), "server.flaw", why.to_string()));
            }
        }
        if let Some(value) = raw.workers.as_ref().filter(|w| shared && *w.get_ref() != 0) {
            return Err(self.error(
                value.span(),
                "server.workers",
                "model = \"shared-epoll\" has no worker pool".to_string(),
            ));
        }
        let idle_timeout = match &raw.idle_timeout_ms {
            Some(value) if !netpoll => {
                return Err(self.error(
                    value.span(),
                    "server.idle_timeout_ms",
                    "applies only to model = \"netpoll\"".to_string(),
                ))
            }
            None => None,
            Some(_) => {
                let ms = self.int(
                    &raw.idle_timeout_ms,
                    "server.idle_timeout_ms",
                    1..=3_600_000,
                    1,
                )?;
                Some(std::time::Duration::from_millis(ms as u64))
            }
        };
        let workers = self.int(&raw.workers, "server.workers", 0..=64, 0)? as usize;
        let job_duration = match &raw.job_ms {
            Some(value) if workers == 0 => {
                return Err(self.error(
                    value.span(),
                    "server.job_ms",
                    "applies only with workers > 0 (it is how long a worker job takes)".to_string(),
                ))
            }
            _ => std::time::Duration::from_millis(self.int(
                &raw.job_ms,
                "server.job_ms",
                0..=60_000,
                0,
            )? as u64),
        };
        let config = ServerConfig {
            model,
            reactors: self.int(
                &raw.reactors,
                "server.reactors",
                1..=64,
                defaults.reactors as i64,
            )? as usize,
            workers,
            job_duration,
            balance: self.named(&raw.balance, "server.balance", defaults.balance)?,
            trigger: self.named(&raw.trigger, "server.trigger", defaults.trigger)?,
            flaw,
            read_buffer_bytes: self.bytes(
                &raw.read_buffer_bytes,
                "server.read_buffer_bytes",
                defaults.read_buffer_bytes,
            )?,
            read_budget_bytes: self.bytes(
                &raw.read_budget_bytes,
                "server.read_budget_bytes",
                defaults.read_budget_bytes,
            )?,
            write_budget_bytes: self.bytes(
                &raw.write_budget_bytes,
                "server.write_budget_bytes",
                defaults.write_budget_bytes,
            )?,
            inbound_bytes_max: self.bytes(
                &raw.inbound_bytes_max,
                "server.inbound_bytes_max",
                defaults.inbound_bytes_max,
            )?,
            outbound_bytes_max: self.bytes(
                &raw.outbound_bytes_max,
                "server.outbound_bytes_max",
                defaults.outbound_bytes_max,
            )?,
            events_max: self.int(
                &raw.events_max,
                "server.events_max",
                1..=4096,
                defaults.events_max as i64,
            )? as usize,
            ..defaults
        };
        Ok(ServerSpec {
            config,
            netpoll,
            netpoll_flaw,
            idle_timeout,
            handler: self.handler(raw, netpoll || shared)?,
        })
    }

    /// The request handler. Only the reactor server has a choice: the netpoll and
    /// shared-epoll servers are echo servers, so another handler there is refused rather
    /// than quietly run as echo.
    fn handler(&self, raw: &RawServer, echo_only: bool) -> Result<HandlerKind, ScenarioError> {
        let handler = self.named(&raw.handler, "server.handler", HandlerKind::Echo)?;
        match (&raw.handler, handler) {
            (Some(value), HandlerKind::Frame) if echo_only => Err(self.error(
                value.span(),
                "server.handler",
                "the netpoll and shared-epoll servers only echo".to_string(),
            )),
            _ => Ok(handler),
        }
    }

    fn clients(&self, raw: &RawClients) -> Result<ClientSpec, ScenarioError> {
        const SIZE_BYTES_MAX: i64 = 16 * 1024 * 1024;
        let size_bytes = match &raw.size {
            None => (64, 64),
            Some(size) => {
                let bad = |why: String| self.error(size.span(), "clients.size", why);
                let (min, max) = match size.get_ref() {
                    RawSize::Fixed(n) => (*n, *n),
                    RawSize::Range(text) => {
                        let (a, b) = text.split_once("..").ok_or_else(|| {
                            bad(format!(
                                "\"{text}\" is not a size (expected a number or \"MIN..MAX\")"
                            ))
                        })?;
                        let parse = |s: &str| {
                            s.trim().parse::<i64>().map_err(|_| {
                                bad(format!("\"{text}\" is not a size range (expected \"MIN..MAX\", e.g. \"1..65536\")"))
                            })
                        };
                        (parse(a)?, parse(b)?)
                    }
                };
                if min < 1 || max > SIZE_BYTES_MAX || min > max {
                    return Err(bad(format!(
                        "{min}..{max} is out of range (expected 1 <= MIN <= MAX <= {SIZE_BYTES_MAX})"
                    )));
                }
                (min as usize, max as usize)
            }
        };
        Ok(ClientSpec {
            count: self.int(&raw.count, "clients.count", 1..=10_000, 4)? as usize,
            messages: self.int(&raw.messages, "clients.messages", 1..=1_000_000, 10)? as usize,
            size_bytes,
            pattern: self.choice(
                &raw.pattern,
                "clients.pattern",
                &PATTERNS,
                super::Pattern::Pingpong,
            )?,
        })
    }

    fn sim(&self, raw: &RawSim) -> Result<SimSpec, ScenarioError> {
        let defaults = SimSpec::default();
        let edge = self.choice(
            &raw.edge,
            "sim.edge",
            &[("linux", EdgeModel::Linux), ("strict", EdgeModel::Strict)],
            EdgeModel::Linux,
        )?;
        let max_steps = match &raw.max_steps {
            None => None,
            Some(_) => {
                Some(self.int(&raw.max_steps, "sim.max_steps", 100..=1_000_000_000, 0)? as u64)
            }
        };
        let depth = self.int(&raw.pct_depth, "sim.pct_depth", 1..=10, 3)? as u32;
        /// The strategies a file can name.
        #[derive(Copy, Clone, PartialEq)]
        enum Named {
            Random,
            EveryCall,
            Pct,
        }
        let named = self.choice(
            &raw.strategy,
            "sim.strategy",
            &[
                ("random", Named::Random),
                ("every-call", Named::EveryCall),
                ("pct", Named::Pct),
            ],
            Named::Random,
        )?;
        // `pct_depth` alone means PCT: a depth says which strategy is meant.
        if let (Some(depth), true) = (
            &raw.pct_depth,
            raw.strategy.is_some() && named != Named::Pct,
        ) {
            return Err(self.error(
                depth.span(),
                "sim.pct_depth",
                "applies only to strategy = \"pct\"".to_string(),
            ));
        }
        let strategy = match named {
            // The hint is the run's expected length, which depends on the workload; the
            // runner fills it in (`runner::world_config`).
            _ if named == Named::Pct || raw.pct_depth.is_some() => Strategy::Pct {
                depth,
                steps_hint: 0,
            },
            Named::EveryCall => Strategy::EveryCall,
            _ => Strategy::RandomWalk,
        };
        let no_faults = RawFaults::default();
        let f = raw.faults.as_ref().unwrap_or(&no_faults);
        let faults = FaultSpec {
            kernel: Faults {
                short_read: self.probability(&f.short_read, "sim.faults.short_read")?,
                short_write: self.probability(&f.short_write, "sim.faults.short_write")?,
                segment: self.probability(&f.segment, "sim.faults.segment")?,
                reset: self.probability(&f.reset, "sim.faults.reset")?,
                accept_abort: self.probability(&f.accept_abort, "sim.faults.accept_abort")?,
                accept_emfile: self.probability(&f.accept_emfile, "sim.faults.accept_emfile")?,
                accept_reset: self.probability(&f.accept_reset, "sim.faults.accept_reset")?,
                spurious_ready: self.probability(&f.spurious_ready, "sim.faults.spurious_ready")?,
            },
            sched: SchedFaults {
                eintr: self.probability(&f.eintr, "sim.faults.eintr")?,
                eintr_io: self.probability(&f.eintr_io, "sim.faults.eintr_io")?,
                spurious_wakeup: self
                    .probability(&f.spurious_wakeup, "sim.faults.spurious_wakeup")?,
                hold: self.probability(&f.hold, "sim.faults.hold")?,
            },
        };
        if let Some(value) = raw
            .switch_bias
            .as_ref()
            .filter(|_| matches!(strategy, Strategy::Pct { .. }))
        {
            return Err(self.error(
                value.span(),
                "sim.switch_bias",
                "applies only to strategy = \"random\" or \"every-call\" (PCT picks by priority)"
                    .to_string(),
            ));
        }
        const BUF_BYTES_MAX: i64 = 64 * 1024 * 1024;
        // Every key the file sets is pinned: swarm mode draws only what it leaves out.
        let set = [
            (f.short_read.is_some(), Knob::ShortRead),
            (f.short_write.is_some(), Knob::ShortWrite),
            (f.segment.is_some(), Knob::Segment),
            (f.reset.is_some(), Knob::Reset),
            (f.accept_abort.is_some(), Knob::AcceptAbort),
            (f.accept_emfile.is_some(), Knob::AcceptEmfile),
            (f.accept_reset.is_some(), Knob::AcceptReset),
            (f.eintr.is_some(), Knob::Eintr),
            (f.eintr_io.is_some(), Knob::EintrIo),
            (f.spurious_wakeup.is_some(), Knob::SpuriousWakeup),
            (f.spurious_ready.is_some(), Knob::SpuriousReady),
            (f.hold.is_some(), Knob::Hold),
            (raw.latency_us_max.is_some(), Knob::Latency),
            (raw.emfile_window_ms.is_some(), Knob::EmfileWindow),
            (raw.sndbuf_bytes.is_some(), Knob::Sndbuf),
            (raw.rcvbuf_bytes.is_some(), Knob::Rcvbuf),
            (raw.fd_limit.is_some(), Knob::FdLimit),
            (
                raw.strategy.is_some() || raw.pct_depth.is_some(),
                Knob::Strategy,
            ),
            (raw.switch_bias.is_some(), Knob::SwitchBias),
        ];
        let mut pinned = Pinned::default();
        for (_, knob) in set.iter().filter(|(is_set, _)| *is_set) {
            pinned.pin(*knob);
        }
        Ok(SimSpec {
            edge,
            faults,
            max_steps,
            strategy,
            switch_bias: self.probability(&raw.switch_bias, "sim.switch_bias")?,
            latency_us_max: self.int(
                &raw.latency_us_max,
                "sim.latency_us_max",
                0..=1_000_000,
                defaults.latency_us_max as i64,
            )? as u64,
            emfile_window_ms: self.int(
                &raw.emfile_window_ms,
                "sim.emfile_window_ms",
                0..=60_000,
                defaults.emfile_window_ms as i64,
            )? as u64,
            sndbuf_bytes: self.int(
                &raw.sndbuf_bytes,
                "sim.sndbuf_bytes",
                1024..=BUF_BYTES_MAX,
                defaults.sndbuf_bytes as i64,
            )? as usize,
            rcvbuf_bytes: self.int(
                &raw.rcvbuf_bytes,
                "sim.rcvbuf_bytes",
                1024..=BUF_BYTES_MAX,
                defaults.rcvbuf_bytes as i64,
            )? as usize,
            fd_limit: self.int(
                &raw.fd_limit,
                "sim.fd_limit",
                8..=1_048_576,
                defaults.fd_limit as i64,
            )? as usize,
            swarm: raw.swarm.as_ref().is_none_or(|s| *s.get_ref()),
            pinned,
        })
    }
}

/// The server's enums that scenario files name.
trait NamedEnum: Sized + 'static {
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;
}

macro_rules! named {
    ($($ty:ty),*) => {$(
        impl NamedEnum for $ty {
            fn all() -> &'static [Self] {
                <$ty>::ALL
            }
            fn name(self) -> &'static str {
                <$ty>::name(self)
            }
        }
    )*};
}

named!(Model, Balance, Trigger, Flaw, HandlerKind);
