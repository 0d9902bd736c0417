//! The evaluation of bug-finding on workloads nobody tuned: for every flaw of every server
//! model, draw ordinary workloads (client counts, message counts and sizes across scales,
//! patterns, reactor and worker counts, the trigger modes the flaw is about), and record for
//! each (workload, flaw) pair whether the simulator catches the flaw and at which seed, and
//! whether the correct server passes the same workload.
//!
//! Why: a catalogue scenario carries the setting that exposes its flaw. Whether the harness
//! finds bugs in scenarios written by people who do not know that setting is the question
//! swarm mode answers, and this is how it is measured (`edgesim evaluate`, the table in
//! docs/PITFALLS.md).
//!
//! A pair counts as unreachable only with a reason that follows from the server's code (a
//! flaw in worker-job handling with no workers, say). Unreachable pairs run too: if one is
//! caught after all, its reason was wrong, and the report says so.

use crate::netpoll::Flaw as NetpollFlaw;
use crate::runner::run_sim;
use crate::scenario::{Pattern, Scenario, Verdict};
use crate::server::{Balance, Flaw, HandlerKind, Model, Trigger};
use crate::workload::{FRAME_PREFIX_BYTES, FRAME_REPLY_BYTES, PIPELINE_DEPTH};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sim::kernel::EdgeModel;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Which server a flaw belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlawOf {
    /// The reactor server (`single-reactor`, `multi-reactor`, `reuseport`).
    Reactor(Flaw),
    /// The shared-epoll echo server.
    Shared,
    /// The Go-style netpoller.
    Netpoll(NetpollFlaw),
}

impl FlawOf {
    /// Every flaw of every server model, in catalogue order.
    pub fn all() -> Vec<FlawOf> {
        let reactor = Flaw::ALL
            .iter()
            .filter(|&&f| f != Flaw::SharedNoOneshot)
            .map(|&f| FlawOf::Reactor(f));
        let netpoll = NetpollFlaw::ALL.iter().map(|&f| FlawOf::Netpoll(f));
        reactor
            .chain(std::iter::once(FlawOf::Shared))
            .chain(netpoll)
            .collect()
    }

    /// The flaw's name (`read-once`, `netpoll/no-pdwait`).
    pub fn name(self) -> String {
        match self {
            FlawOf::Reactor(flaw) => flaw.name().to_string(),
            FlawOf::Shared => Flaw::SharedNoOneshot.name().to_string(),
            FlawOf::Netpoll(flaw) => format!("netpoll/{}", flaw.name()),
        }
    }

    /// The trigger modes the flaw is about: the ones in which its code path runs and does
    /// harm (read-once in a level-triggered loop is re-reported, so it is no bug there).
    fn triggers(self) -> &'static [Trigger] {
        use Trigger::{Edge, EdgeOneshot, Level};
        match self {
            FlawOf::Reactor(flaw) => match flaw {
                // Under ONESHOT the re-arm (EPOLL_CTL_MOD) polls the socket and queues the
                // item if bytes are left (`ep_modify`), which hides these three.
                Flaw::ReadOnce | Flaw::BudgetNoRequeue | Flaw::OutOnce => &[Edge],
                Flaw::OneshotNoRearm | Flaw::OneshotOneDirection => &[EdgeOneshot],
                // These do harm through a level-triggered repeat (a spin) or, rdhup-drops-tail,
                // through the one read per event that level mode makes; under edge
                // triggering the loop reads to EAGAIN first, and what is left is a connection
                // or registration kept until the server stops and closes it, which nothing
                // can observe.
                Flaw::LtOutAlways
                | Flaw::RdhupDropsTail
                | Flaw::ErrorOnlyIgnored
                | Flaw::EofIgnored
                | Flaw::CloseWithDup => &[Level],
                _ => &[Level, Edge, EdgeOneshot],
            },
            FlawOf::Shared | FlawOf::Netpoll(_) => &[Edge],
        }
    }

    /// Whether the flaw shows only to a client: as a client left waiting, or as bytes a
    /// client reads that are not its echo. The others spin or crash the server, which needs
    /// no client to see it, or lose a wakeup that stopping the server also goes through:
    /// `wake-flag-race` loses the `Stop` pushed into a loop's turn that a worker's result
    /// woke, and the netpoller's flaws lose the close that releases a parked thread, so the
    /// server hangs on stop with every client gone.
    fn shows_to_clients_only(self) -> bool {
        match self {
            FlawOf::Reactor(flaw) => matches!(
                flaw,
                Flaw::ReadOnce
                    | Flaw::AcceptOnce
                    | Flaw::NoEpollout
                    | Flaw::OutOnce
                    | Flaw::OneshotNoRearm
                    | Flaw::OneshotOneDirection
                    | Flaw::BudgetNoRequeue
                    | Flaw::StaleToken
            ),
            FlawOf::Shared => true,
            FlawOf::Netpoll(_) => false,
        }
    }

    /// Seeds within which the flaw must show: the netpoller's races are rarer.
    pub fn seeds_max(self) -> u64 {
        match self {
            FlawOf::Netpoll(_) => 500,
            _ => 200,
        }
    }
}

/// Request bytes one connection has on the way to the server at once, at most: one message
/// for clients that wait for each echo, the pipeline's depth of them, or every message for
/// clients that send everything before they read.
fn request_bytes_in_flight(scenario: &Scenario) -> usize {
    let c = &scenario.clients;
    let framed = scenario.server.handler == HandlerKind::Frame;
    let message = c.size_bytes.1 + if framed { FRAME_PREFIX_BYTES } else { 0 };
    let in_flight = match c.pattern {
        Pattern::Pipeline => PIPELINE_DEPTH.min(c.messages),
        Pattern::Burst | Pattern::HalfClose => c.messages,
        _ => 1,
    };
    message * in_flight
}

/// Reply bytes the server may have to write to one connection at once, at most (an echo
/// repeats what is in flight; a frame's reply is 16 bytes per request).
fn reply_bytes_in_flight(scenario: &Scenario) -> usize {
    if scenario.server.handler == HandlerKind::Frame {
        let requests = request_bytes_in_flight(scenario)
            / (scenario.clients.size_bytes.1 + FRAME_PREFIX_BYTES);
        return requests * FRAME_REPLY_BYTES;
    }
    request_bytes_in_flight(scenario)
}

/// `SOCK_MIN_SNDBUF`: no write of at most this much beyond what is queued is cut short (see
/// the kernel model's `short_write`).
const SOCK_MIN_SNDBUF_BYTES: usize = 4608;

/// The fewest bytes a write is sure to place, in the smallest environment swarm mode draws:
/// a 1 KiB send buffer and a 1 KiB receive buffer at the peer.
const SURE_WRITE_BYTES: usize = 2048;

/// Why `flaw` cannot show in `scenario`'s workload, if it cannot, from the server's code and
/// Linux's rules (a short read means the rest is still on its way and will raise an edge; a
/// write is cut only when the buffers are full).
pub fn unreachable_reason(flaw: FlawOf, scenario: &Scenario) -> Option<&'static str> {
    let config = &scenario.server.config;
    if flaw.shows_to_clients_only() && resets_before_waiting(scenario) {
        return Some(
            "the clients reset within their first message, having written too little to \
             meet a full buffer, so no client ever waits for the server or reads from it",
        );
    }
    let FlawOf::Reactor(flaw) = flaw else {
        return None;
    };
    let clients = &scenario.clients;
    let crosses_threads = config.model == Model::MultiReactor || config.workers > 0;
    let requests = request_bytes_in_flight(scenario);
    let replies = reply_bytes_in_flight(scenario);
    let read_turn = config
        .read_budget_bytes
        .min(config.reads_per_turn_max * config.read_buffer_bytes);
    match flaw {
        Flaw::ReadOnce if requests <= config.read_buffer_bytes => Some(
            "one read takes everything a connection has in flight, and bytes that arrive \
             later raise an edge of their own",
        ),
        Flaw::BudgetNoRequeue if requests <= read_turn && replies <= config.write_budget_bytes => {
            Some("one turn's read and write budgets cover everything a connection has in flight")
        }
        Flaw::OutOnce if replies <= SOCK_MIN_SNDBUF_BYTES => Some(
            "the flaw needs a write cut short with room left (strict edges then give no new \
             EPOLLOUT); Linux's smallest send buffer takes every reply here whole",
        ),
        Flaw::NoEpollout | Flaw::OneshotOneDirection if replies <= SURE_WRITE_BYTES => Some(
            "every reply fits the smallest send and receive buffers at once, so no write \
                 is ever cut and no output waits for EPOLLOUT",
        ),
        Flaw::AcceptOnce if clients.count == 1 => Some(
            "one client connects once at a time, so the listener never has two connections \
             queued at one wakeup",
        ),
        Flaw::EofIgnored if clients.pattern == Pattern::Reset => {
            Some("the clients reset their connections instead of closing them: no end of file")
        }
        Flaw::WakeFlagRace | Flaw::EventfdUnreadLt if !crosses_threads => Some(
            "no task ever crosses threads (one loop or symmetric loops, no workers), so no \
             loop's eventfd is written",
        ),
        Flaw::StaleToken if config.workers == 0 => Some(
            "a stale token reaches a reused slot through a worker's result; without workers \
             the registration is deleted before its close, so no event can carry it",
        ),
        Flaw::ErrorOnlyIgnored
            if requests < config.inbound_bytes_max && clients.pattern != Pattern::HalfClose =>
        {
            Some(
                "the registration asks for no direction only during a job, while a \
                 connection's input is at its limit or after its end of file (half-close \
                 clients); no connection has that much in flight, and no client half-closes",
            )
        }
        Flaw::ErrorOnlyIgnored if config.workers == 0 || config.job_duration.is_zero() => Some(
            "an event with only ERR/HUP needs a registration asking for no direction, which \
             happens only while a connection's worker job is in flight; with no (or instant) \
             jobs the result closes the dead socket within a few steps",
        ),
        Flaw::RdhupDropsTail if clients.pattern != Pattern::HalfClose => Some(
            "needs a peer's FIN behind request bytes the server has not read; only half-close \
             clients shut down before reading their whole echo",
        ),
        _ => None,
    }
}

/// Whether every client of `scenario` resets its connection before it could wait for the
/// server, whatever sizes a seed draws: a reset client stops writing at half its bytes and
/// waits for an echo only when its first message ends before that half, and a write of at
/// most [`SURE_WRITE_BYTES`] is never cut, so such a client never waits for room either.
fn resets_before_waiting(scenario: &Scenario) -> bool {
    let c = &scenario.clients;
    if c.pattern != Pattern::Reset {
        return false;
    }
    let prefix = if scenario.server.handler == HandlerKind::Frame {
        FRAME_PREFIX_BYTES
    } else {
        0
    };
    let (first_min, message_max) = (prefix + c.size_bytes.0, prefix + c.size_bytes.1);
    let rest_max = c.messages.saturating_sub(1) * message_max;
    // The shortest first message against the longest others is the draw in which the
    // first message is least likely to reach the half; the longest messages put the half
    // furthest in.
    let first_reaches_half = first_min >= (first_min + rest_max) / 2;
    first_reaches_half && c.messages * message_max / 2 <= SURE_WRITE_BYTES
}

/// What the evaluation runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Workloads drawn per flaw.
    pub workloads: usize,
    /// The seed of the workload draws (not of the runs: those are seeds 0, 1, 2, ...).
    pub seed: u64,
    /// Seeds the correct server must pass on each workload.
    pub correct_seeds: u64,
    /// Swarm mode on or off for every run (off: each seed runs the scenario files' fixed
    /// defaults, as before swarm mode existed).
    pub swarm: bool,
    /// OS threads, each running one simulated world at a time.
    pub jobs: usize,
    /// Only the flaws whose name contains this.
    pub only: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            workloads: 40,
            seed: 0,
            correct_seeds: 300,
            swarm: true,
            jobs: 1,
            only: None,
        }
    }
}

/// One (workload, flaw) pair and what the simulator found.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The flaw.
    pub flaw: FlawOf,
    /// The workload's index among the flaw's workloads.
    pub index: usize,
    /// The workload, with the flaw switched on.
    pub scenario: Scenario,
    /// Why the flaw cannot show here, if it cannot.
    pub unreachable: Option<&'static str>,
    /// The first failing seed within [`FlawOf::seeds_max`] and its verdict.
    pub caught: Option<(u64, Verdict)>,
    /// The correct server's first failing seed within `correct_seeds`, if any.
    pub correct_failure: Option<(u64, Verdict)>,
}

/// Draws the workloads and runs every pair.
pub fn evaluate(options: &Options, on_done: &(dyn Fn(&Pair) + Sync)) -> Vec<Pair> {
    run_pairs(draw_pairs(options), options, on_done)
}

/// The pairs `options` asks for, drawn and not yet run.
pub fn draw_pairs(options: &Options) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for (flaw_idx, flaw) in FlawOf::all().into_iter().enumerate() {
        if options
            .only
            .as_ref()
            .is_some_and(|only| !flaw.name().contains(only.as_str()))
        {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(sim::sched::derive_seed(
            options.seed,
            1000 + flaw_idx as u64,
        ));
        for index in 0..options.workloads {
            let mut scenario = workload(flaw, &mut rng);
            scenario.name = format!("{}-{index}", flaw.name().replace('/', "-"));
            scenario.sim.swarm = options.swarm;
            let unreachable = unreachable_reason(flaw, &scenario);
            pairs.push(Pair {
                flaw,
                index,
                scenario,
                unreachable,
                caught: None,
                correct_failure: None,
            });
        }
    }
    pairs
}

/// Runs every pair on `options.jobs` OS threads; the results come back in pair order.
fn run_pairs(pairs: Vec<Pair>, options: &Options, on_done: &(dyn Fn(&Pair) + Sync)) -> Vec<Pair> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; pairs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                let idx = next.fetch_add(1, Ordering::Relaxed);
                let Some(pair) = pairs.get(idx) else { break };
                let mut pair = pair.clone();
                pair.caught = first_failure(&pair.scenario, pair.flaw.seeds_max());
                pair.correct_failure = first_failure(&correct(&pair), options.correct_seeds);
                on_done(&pair);
                results.lock().unwrap_or_else(|e| e.into_inner())[idx] = Some(pair);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|pair| pair.expect("every pair ran"))
        .collect()
}

/// The pair's workload with the correct server (of whichever model).
pub fn correct(pair: &Pair) -> Scenario {
    let mut scenario = pair.scenario.clone();
    scenario.server.config.flaw = None;
    scenario.server.netpoll_flaw = None;
    scenario
}

/// The first seed in `0..seeds` whose verdict is not `pass`.
fn first_failure(scenario: &Scenario, seeds: u64) -> Option<(u64, Verdict)> {
    (0..seeds)
        .map(|seed| (seed, run_sim(scenario, seed, false).verdict))
        .find(|(_, verdict)| *verdict != Verdict::Pass)
}

/// One of `items`, uniformly.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

/// The request bytes a workload may send in all, so a pair's 500 seeds stay affordable.
const WORKLOAD_BYTES_MAX: usize = 2 * 1024 * 1024;

/// An ordinary workload for `flaw`: the server the flaw belongs to, in a shape, trigger
/// mode and read size it is about, and clients as anyone might write them. No simulator
/// knob is set.
fn workload(flaw: FlawOf, rng: &mut ChaCha8Rng) -> Scenario {
    let mut scenario =
        crate::scenario::parse("generated", "name = \"generated\"").expect("the empty scenario");
    let clients = &mut scenario.clients;
    clients.count = pick(rng, &[1, 2, 3, 4, 6, 8, 12, 16]);
    clients.messages = pick(rng, &[1, 2, 3, 5, 10, 20, 50]);
    // Sizes across scales: tiny, small, a page or a few, and large.
    let (low, high) = pick(
        rng,
        &[
            (1, 64),
            (64, 1024),
            (1024, 16 * 1024),
            (16 * 1024, 64 * 1024),
        ],
    );
    let fixed = rng.next_u64() % 2 == 0;
    let size = low + (rng.next_u64() % (high - low + 1) as u64) as usize;
    clients.size_bytes = if fixed { (size, size) } else { (low, high) };
    let patterns = [
        Pattern::Pingpong,
        Pattern::Pipeline,
        Pattern::Burst,
        Pattern::HalfClose,
        Pattern::Reset,
        Pattern::SlowReader,
        Pattern::Churn,
        Pattern::Linger,
    ];
    clients.pattern = pick(rng, &patterns);
    // A slow reader takes 7 bytes per read: a step or two per 7 bytes.
    let bytes_max = match clients.pattern {
        Pattern::SlowReader => WORKLOAD_BYTES_MAX / 8,
        _ => WORKLOAD_BYTES_MAX,
    };
    let per_client = bytes_max / clients.count;
    clients.messages = clients
        .messages
        .min((per_client / clients.size_bytes.1).max(1));
    let server = &mut scenario.server;
    let config = &mut server.config;
    config.trigger = pick(rng, flaw.triggers());
    config.reactors = pick(rng, &[1, 2, 3, 4]);
    match flaw {
        FlawOf::Reactor(f) => {
            config.flaw = Some(f);
            config.model = pick(
                rng,
                &[Model::SingleReactor, Model::MultiReactor, Model::ReusePort],
            );
            config.balance = pick(
                rng,
                &[Balance::RoundRobin, Balance::LeastConn, Balance::SourceHash],
            );
            // The read size servers are configured with: 64 KiB (the default), 16 KiB, or
            // the 4 KiB many loops use (the example reactor, netty's first guess).
            config.read_buffer_bytes = pick(rng, &[65536, 65536, 16384, 4096]);
            config.workers = pick(rng, &[0, 0, 1, 2]);
            if config.workers > 0 {
                // A handler that waits on something slow is what a worker pool is for.
                config.job_duration = Duration::from_millis(pick(rng, &[0, 1, 10, 50]));
            }
            server.handler = pick(
                rng,
                &[HandlerKind::Echo, HandlerKind::Echo, HandlerKind::Frame],
            );
            if f == Flaw::OutOnce {
                // The one precondition: under Linux's edges every ACK that frees space
                // re-queues OUT, so one write per event gets away with it (see PITFALLS.md).
                scenario.sim.edge = EdgeModel::Strict;
            }
        }
        FlawOf::Shared => {
            config.model = Model::SharedEpoll;
            config.flaw = Some(Flaw::SharedNoOneshot);
            config.reactors = pick(rng, &[2, 3, 4]);
        }
        FlawOf::Netpoll(f) => {
            // The netpoller has no loops, triggers or workers to draw.
            *config = crate::server::ServerConfig::default();
            server.netpoll = true;
            server.netpoll_flaw = Some(f);
        }
    }
    scenario
}

/// The workload in one line: `multi-reactor r2 w1 job10ms edge frame | 4x10 pingpong
/// 64..1024 B`.
pub fn describe(scenario: &Scenario) -> String {
    let server = &scenario.server;
    let c = &server.config;
    let mut out = String::new();
    if server.netpoll {
        out.push_str("netpoll");
    } else {
        let _ = write!(out, "{} r{} w{}", c.model.name(), c.reactors, c.workers);
        if c.read_buffer_bytes != crate::server::ServerConfig::default().read_buffer_bytes {
            let _ = write!(out, " read{}K", c.read_buffer_bytes / 1024);
        }
        if !c.job_duration.is_zero() {
            let _ = write!(out, " job{}ms", c.job_duration.as_millis());
        }
        let _ = write!(out, " {}", c.trigger.name());
        if server.handler == HandlerKind::Frame {
            out.push_str(" frame");
        }
    }
    if scenario.sim.edge == EdgeModel::Strict {
        out.push_str(" strict-edges");
    }
    let clients = &scenario.clients;
    let (min, max) = clients.size_bytes;
    let size = if min == max {
        format!("{min}")
    } else {
        format!("{min}..{max}")
    };
    let _ = write!(
        out,
        " | {}x{} {} {size} B",
        clients.count,
        clients.messages,
        clients.pattern.name()
    );
    out
}

/// The pair as two scenario files under `dir`: the workload with the flaw, expecting what
/// was found (at the seed it was found), and the workload with the correct server,
/// expecting `pass` (at its failing seed, if it failed).
pub fn pair_files(dir: &std::path::Path, pair: &Pair) -> Vec<(std::path::PathBuf, String)> {
    let mut flawed = pair.scenario.clone();
    if let Some((seed, verdict)) = pair.caught {
        (flawed.seed, flawed.expect) = (seed, verdict);
    }
    let mut fixed = correct(pair);
    fixed.name = format!("{}-correct", pair.scenario.name);
    if let Some((seed, _)) = pair.correct_failure {
        fixed.seed = seed;
    }
    [flawed, fixed]
        .into_iter()
        .map(|s| {
            let path = dir.join(format!("{}.toml", s.name));
            (path, crate::scenario::to_toml(&s))
        })
        .collect()
}

/// One line per pair, for the log of a run.
pub fn pair_line(pair: &Pair) -> String {
    let caught = match pair.caught {
        Some((seed, verdict)) => format!("caught at seed {seed} ({})", verdict.name()),
        None => format!("not caught in {} seeds", pair.flaw.seeds_max()),
    };
    let correct = match pair.correct_failure {
        Some((seed, verdict)) => {
            format!("correct server FAILS at seed {seed} ({})", verdict.name())
        }
        None => "correct server passes".to_string(),
    };
    let reach = match (pair.unreachable, pair.caught) {
        (Some(_), Some(_)) => " [marked unreachable, but caught: the reason is wrong]".to_string(),
        (Some(reason), None) => format!(" [unreachable: {reason}]"),
        _ => String::new(),
    };
    format!(
        "{} #{}: {}: {caught}; {correct}{reach}",
        pair.flaw.name(),
        pair.index,
        describe(&pair.scenario)
    )
}

/// The per-flaw table (Markdown) and its totals line.
pub fn table(pairs: &[Pair], correct_seeds: u64) -> Vec<String> {
    let mut lines = vec![
        "| flaw | workloads | unreachable | reachable caught | median first seed | max first seed | correct server fails |".to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    let (mut reachable_all, mut caught_all, mut firsts_all, mut correct_all) =
        (0, 0, Vec::new(), 0);
    for flaw in FlawOf::all() {
        let of: Vec<&Pair> = pairs.iter().filter(|p| p.flaw == flaw).collect();
        if of.is_empty() {
            continue;
        }
        // A pair caught although marked unreachable counts as reachable.
        let reachable: Vec<&&Pair> = of
            .iter()
            .filter(|p| p.unreachable.is_none() || p.caught.is_some())
            .collect();
        let mut firsts: Vec<u64> = reachable
            .iter()
            .filter_map(|p| p.caught.map(|(seed, _)| seed))
            .collect();
        firsts.sort_unstable();
        let correct_fails = of.iter().filter(|p| p.correct_failure.is_some()).count();
        let median = median(&firsts).map_or("-".to_string(), |m| m.to_string());
        let max = firsts.last().map_or("-".to_string(), |m| m.to_string());
        lines.push(format!(
            "| `{}` | {} | {} | {}/{} ({:.0}%) | {median} | {max} | {correct_fails} |",
            flaw.name(),
            of.len(),
            of.len() - reachable.len(),
            firsts.len(),
            reachable.len(),
            percent(firsts.len(), reachable.len()),
        ));
        reachable_all += reachable.len();
        caught_all += firsts.len();
        firsts_all.extend(firsts);
        correct_all += correct_fails;
    }
    firsts_all.sort_unstable();
    lines.push(format!(
        "reachable_pairs={reachable_all} caught={caught_all} caught_percent={:.1} median_first_seed={} correct_server_failures={correct_all} correct_seeds={correct_seeds}",
        percent(caught_all, reachable_all),
        median(&firsts_all).map_or("-".to_string(), |m| m.to_string()),
    ));
    lines
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The median of sorted `values` (the lower middle one for an even count).
fn median(values: &[u64]) -> Option<u64> {
    (!values.is_empty()).then(|| values[(values.len() - 1) / 2])
}
