//! The harness: run your own server under the simulator from a plain `#[test]`, with
//! edgesim's workload clients or your own, and get a verdict, a diagnosis and a trace.
//!
//! Why: most people who need edgesim already have an event loop. Written against
//! [`crate::mio`] (one `use` line away from the mio crate, or none with the patch), it runs
//! here unchanged: the
//! harness builds a simulated world from a seed, binds a listener, starts your server on a
//! simulated thread, starts the clients, and judges the run with the same checkers as
//! `edgesim run` (`pass`, `stall`, `spin`, `corrupt`, `leak`, `crash`, `inconclusive`). A
//! failure names its seed and how to replay it, and the replay is exact.
//!
//! # Example
//!
//! ```
//! use edgesim::harness::{ClientSpec, Harness, Pattern};
//! use edgesim::mio::net::TcpListener;
//! use edgesim::mio::{Events, Interest, Poll, Token};
//! use std::io::{ErrorKind, Read, Write};
//!
//! // A deliberately tiny echo server: one connection at a time, drained to WouldBlock.
//! fn serve(mut listener: TcpListener) -> std::io::Result<()> {
//!     let mut poll = Poll::new()?;
//!     poll.registry().register(&mut listener, Token(0), Interest::READABLE)?;
//!     let mut events = Events::with_capacity(8);
//!     let mut conn = None;
//!     let mut pending = Vec::new();
//!     loop {
//!         match poll.poll(&mut events, None) {
//!             Err(e) if e.kind() == ErrorKind::Interrupted => continue,
//!             other => other?,
//!         }
//!         if conn.is_none() {
//!             if let Ok((mut stream, _)) = listener.accept() {
//!                 let interest = Interest::READABLE | Interest::WRITABLE;
//!                 poll.registry().register(&mut stream, Token(1), interest)?;
//!                 conn = Some(stream);
//!             }
//!         }
//!         let Some(stream) = conn.as_mut() else { continue };
//!         let mut buf = [0u8; 4096];
//!         let mut eof = false;
//!         loop {
//!             match stream.read(&mut buf) {
//!                 Ok(0) => break eof = true,
//!                 Ok(n) => pending.extend_from_slice(&buf[..n]),
//!                 Err(e) if e.kind() == ErrorKind::WouldBlock => break,
//!                 Err(e) if e.kind() == ErrorKind::Interrupted => {}
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!         while !pending.is_empty() {
//!             match stream.write(&pending) {
//!                 Ok(n) => drop(pending.drain(..n)),
//!                 Err(e) if e.kind() == ErrorKind::WouldBlock => break,
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!         if eof && pending.is_empty() {
//!             conn = None; // Dropping the stream closes it; keeping it would be a leak.
//!         }
//!     }
//! }
//!
//! let harness = Harness::new(serve).clients(ClientSpec {
//!     count: 1,
//!     messages: 3,
//!     size_bytes: (1, 2000),
//!     pattern: Pattern::Pingpong,
//! });
//! // Panics with `SEED=<n>`, the diagnosis and the replay command if any seed fails.
//! harness.check_seeds(0..20);
//! ```
//!
//! # Replaying
//!
//! `EDGESIM_SEED=<n>` makes [`Harness::check_seeds`] run only seed `n`, keeping the trace,
//! and print the verdict, the diagnosis and the trace's tail; `EDGESIM_SEEDS=A..B` replaces
//! the range a test asked for (to run more seeds than the default, say).
//!
//! # How a run is built
//!
//! Thread `main` binds a [`crate::mio::net::TcpListener`] on `127.0.0.1` (any port), starts
//! your server on thread `server` with it, starts the standard clients (`client0`, ...) and
//! then your own clients, waits for every client, watches the idle server for
//! [`IDLE_WINDOW`] and ends the world. Your server does not have to stop: threads still
//! running at the end are unwound, so their destructors run and close what they own. What
//! is still open after that is a leak.
//!
//! A server that binds its own address (tokio's `TcpListener::bind`, or any code that is
//! not to be changed) runs under [`Harness::serving_at`] instead: thread `main` starts it
//! with the address and starts the clients once a listener is bound there. Through the
//! workspace's `[patch.crates-io]` of `mio`, tokio servers run this way unmodified
//! (`docs/UNMODIFIED.md`). [`Harness::run_linux`] runs the same server and clients on
//! Linux.

mod client;
mod clients;
mod linux;
mod thread;

pub use crate::runner::{RunResult, IDLE_STEPS_MAX, IDLE_WINDOW};
pub use crate::scenario::{ClientSpec, FaultSpec, Knob, Pattern, Pinned, SimSpec, Verdict};
pub use client::Client;
pub use sim::kernel::EdgeModel;
pub use sim::sched::Strategy;
pub use thread::{sleep, spawn, JoinHandle};

use crate::mio::net::TcpListener;
use crate::os::{Os, SimOs};
use crate::runner::{self, Driven};
use crate::scenario::Scenario;
use crate::server::HandlerKind;
use crate::swarm::{self, Tolerance};
use crate::workload::Progress;
use sim::kernel::FdKind;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment variable that replays one seed.
pub const SEED_ENV: &str = "EDGESIM_SEED";
/// The environment variable that replaces a test's seed range (`A..B`).
pub const SEEDS_ENV: &str = "EDGESIM_SEEDS";

type ClientFn = dyn Fn(&Client) -> Result<(), String> + Send + Sync;

/// The server under test, and how it gets its listener.
#[derive(Clone)]
enum Server {
    /// Called with a listener the harness bound on `127.0.0.1` (any port).
    Given(Arc<dyn Fn(TcpListener) -> io::Result<()> + Send + Sync>),
    /// Binds this address itself; called with it.
    Binds(
        SocketAddr,
        Arc<dyn Fn(SocketAddr) -> io::Result<()> + Send + Sync>,
    ),
}

/// A simulated test of one server: what runs, and under which simulated conditions.
///
/// Build it once per test; every seed builds a fresh world from it. The closures are
/// `Send + Sync` because a seed range runs on several OS threads (one world on each).
#[derive(Clone)]
pub struct Harness {
    server: Server,
    /// The standard workload and the simulator's knobs, in scenario-file terms.
    scenario: Scenario,
    /// Whether the standard clients run (off when only user clients are wanted).
    standard_clients: bool,
    user_clients: Vec<(usize, Arc<ClientFn>)>,
    jobs: usize,
}

/// What a seed range found.
#[derive(Clone, Debug)]
pub struct Explored {
    /// Seeds run (all of them when none failed; otherwise at least every seed below the
    /// first failure).
    pub explored: u64,
    /// The lowest failing seed, run again with its trace kept.
    pub first_failure: Option<RunResult>,
    /// Wall-clock seconds the range took.
    pub secs: f64,
}

impl Harness {
    /// A harness for `server`, which is called on a simulated thread with a listener bound
    /// to `127.0.0.1`. By default four clients echo ten 64-byte messages each (pingpong),
    /// and the simulator uses the scenario files' defaults (Linux edge model, 200,000
    /// steps) with swarm mode on: each seed draws its faults, buffer sizes, latency,
    /// descriptor limit and scheduling strategy ([`Harness::swarm`]).
    pub fn new<F>(server: F) -> Harness
    where
        F: Fn(TcpListener) -> io::Result<()> + Send + Sync + 'static,
    {
        Harness::with_server(Server::Given(Arc::new(server)))
    }

    /// A harness for a server that binds `addr` itself, as most servers do (a tokio server's
    /// `TcpListener::bind`, mio's examples). `server` is called with `addr` on a simulated
    /// thread; the clients start once a listener is bound there, and a server that has not
    /// bound it within [`LISTEN_WAIT`] of virtual time fails the run (`crash`). In the
    /// simulator any address works, port 0 excepted (the clients need the port): nothing
    /// else uses the simulated ports.
    pub fn serving_at<F>(addr: SocketAddr, server: F) -> Harness
    where
        F: Fn(SocketAddr) -> io::Result<()> + Send + Sync + 'static,
    {
        Harness::with_server(Server::Binds(addr, Arc::new(server)))
    }

    fn with_server(server: Server) -> Harness {
        let scenario = crate::scenario::parse("harness", "name = \"harness\"")
            .expect("the empty scenario parses");
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        Harness {
            server,
            scenario,
            standard_clients: true,
            user_clients: Vec::new(),
            jobs,
        }
    }

    /// Runs edgesim's standard clients with this workload (every echoed byte is checked at
    /// its stream offset).
    pub fn clients(mut self, spec: ClientSpec) -> Harness {
        self.scenario.clients = spec;
        self.standard_clients = true;
        self
    }

    /// Makes the standard clients speak the frame protocol of edgesim's frame handler
    /// instead of expecting an echo: each message goes out as a request (a 4-byte
    /// big-endian length, then the body), and its reply must be
    /// [`crate::workload::FRAME_REPLY_BYTES`] bytes: the length 12, the request's length and
    /// the 64-bit FNV-1a hash of its body ([`crate::server::fnv1a`]), all big-endian.
    pub fn frame_clients(mut self) -> Harness {
        self.scenario.server.handler = HandlerKind::Frame;
        self
    }

    /// Runs no standard client (only the ones added with [`Harness::client`]).
    pub fn no_standard_clients(mut self) -> Harness {
        self.standard_clients = false;
        self
    }

    /// Adds `count` clients running `body`, each on its own simulated thread. A client that
    /// returns `Err` fails the run with verdict `corrupt` (the server answered wrongly);
    /// one that panics, with `crash`.
    pub fn client<F>(mut self, count: usize, body: F) -> Harness
    where
        F: Fn(&Client) -> Result<(), String> + Send + Sync + 'static,
    {
        self.user_clients.push((count, Arc::new(body)));
        self
    }

    /// Changes the simulator's knobs (edge model, faults, step budget, strategy, latency,
    /// buffer sizes). A knob the closure changes is pinned: swarm mode no longer draws it.
    pub fn sim(mut self, configure: impl FnOnce(&mut SimSpec)) -> Harness {
        let before = self.scenario.sim.clone();
        configure(&mut self.scenario.sim);
        self.scenario.sim.pin_changed(&before);
        self
    }

    /// Turns swarm mode on (the default) or off. On, every seed draws the environment it
    /// runs in: which faults fire and how often, the socket buffer sizes, the delivery
    /// latency, the descriptor limit, the scheduling strategy (see [`crate::swarm`]); knobs
    /// set with [`Harness::sim`] stay as set. Off, every seed runs the knobs as they are.
    pub fn swarm(mut self, on: bool) -> Harness {
        self.scenario.sim.swarm = on;
        self
    }

    /// Runs a seed range on `jobs` OS threads (default: one per core). The result does not
    /// depend on it.
    pub fn jobs(mut self, jobs: usize) -> Harness {
        self.jobs = jobs.max(1);
        self
    }

    /// Runs one seed, keeping its trace and watching for hazards (neither changes the run).
    pub fn run(&self, seed: u64) -> RunResult {
        self.run_seed(seed, true)
    }

    /// Runs every seed of `seeds` (in parallel, see [`Harness::jobs`]) and reports the
    /// lowest failing seed, with its trace. Seeds above a failure may be skipped.
    pub fn explore(&self, seeds: Range<u64>) -> Explored {
        let start = Instant::now();
        let seeds: Vec<u64> = seeds.collect();
        let next = AtomicU64::new(0);
        // The lowest failing index so far; no worker starts a seed above it.
        let stop_idx = AtomicU64::new(u64::MAX);
        let failures = Mutex::new(Vec::new());
        let run = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.min(seeds.len()).max(1) {
                scope.spawn(|| loop {
                    let idx = next.fetch_add(1, Ordering::Relaxed);
                    if idx >= stop_idx.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some(&seed) = seeds.get(idx as usize) else {
                        break;
                    };
                    let result = self.run_seed(seed, false);
                    run.fetch_add(1, Ordering::Relaxed);
                    if result.verdict != Verdict::Pass {
                        stop_idx.fetch_min(idx, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(seed);
                    }
                });
            }
        });
        let first = failures
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .min();
        Explored {
            explored: run.into_inner(),
            // The run is deterministic, so running the seed again with the trace kept
            // reproduces the failure, now with everything needed to explain it.
            first_failure: first.map(|seed| self.run_seed(seed, true)),
            secs: start.elapsed().as_secs_f64(),
        }
    }

    /// Runs `seed` and panics unless the verdict is `pass`, with the seed, the diagnosis,
    /// the trace's tail (on stderr) and the replay command.
    #[track_caller]
    pub fn check(&self, seed: u64) {
        let result = self.run(seed);
        if result.verdict != Verdict::Pass {
            fail(&result);
        }
    }

    /// Runs every seed of `seeds` and panics at the first failure as [`Harness::check`]
    /// does. `EDGESIM_SEED=<n>` runs only seed `n` (and prints its trace even when it
    /// passes); `EDGESIM_SEEDS=A..B` replaces `seeds`.
    #[track_caller]
    pub fn check_seeds(&self, seeds: Range<u64>) -> Explored {
        if let Some(seed) = env_seed() {
            let result = self.run(seed);
            print_report(&result);
            if result.verdict != Verdict::Pass {
                fail(&result);
            }
            return Explored {
                explored: 1,
                first_failure: None,
                secs: 0.0,
            };
        }
        let seeds = env_seeds().unwrap_or(seeds);
        let explored = self.explore(seeds);
        if let Some(result) = &explored.first_failure {
            fail(result);
        }
        explored
    }

    /// One world at `seed`.
    fn run_seed(&self, seed: u64, keep_trace: bool) -> RunResult {
        // The user's clients cannot be expected to reconnect after an injected reset.
        let tolerance = Tolerance {
            resets: self.user_clients.is_empty()
                && Tolerance::of_standard_clients(&self.scenario).resets,
        };
        let mut this = self.clone();
        this.scenario = swarm::resolve(&self.scenario, seed, tolerance);
        let mut result = this.run_resolved(seed, keep_trace);
        result.environment = swarm::describe(&self.scenario, &this.scenario.sim);
        result
    }

    /// [`Harness::run_seed`] with the environment already drawn into `self.scenario`.
    fn run_resolved(&self, seed: u64, keep_trace: bool) -> RunResult {
        let config = runner::world_config(&self.scenario, seed, keep_trace);
        let heal_step = config.heal_at_step.unwrap_or(0);
        let progress = Arc::new(Progress::new());
        let seen: Rc<RefCell<Option<Seen>>> = Rc::new(RefCell::new(None));
        let mut report = {
            let (harness, seen, progress) = (self.clone(), Rc::clone(&seen), Arc::clone(&progress));
            SimOs::run(config, move |os| {
                *seen.borrow_mut() = Some(harness.drive(&os, seed, progress));
            })
        };
        let seen = seen.borrow_mut().take().unwrap_or_default();
        let (verdict, diagnosis) = runner::judge(&mut report, &progress, false, |report| {
            let leaks = leaks(report);
            runner::finished(report, seen.driven, seen.user_failures, leaks)
        });
        runner::result_of(&report, seed, heal_step, keep_trace, verdict, diagnosis)
    }

    /// The body of thread `main`: the run as described in the module documentation.
    fn drive(&self, os: &SimOs, seed: u64, progress: Arc<Progress>) -> Seen {
        let mut seen = Seen::default();
        let server_error = Arc::new(os.mutex(None::<String>));
        let addr = match self.start_server(os, &server_error) {
            Ok(addr) => addr,
            Err(error) => {
                seen.driven.server_error = Some(error);
                return seen;
            }
        };
        let done = self.run_clients(os, addr, seed, &progress, None);
        seen.driven.server_error = done.panic;
        seen.driven.idle_steps = runner::idle_steps(os, sim::sys::steps, IDLE_STEPS_MAX);
        if let Some(error) = server_error.lock(Option::take) {
            seen.driven.server_error.get_or_insert(error);
        }
        seen.driven.clients = done.standard;
        seen.user_failures = done.user_failures;
        seen
    }
}

impl Harness {
    /// Starts the server on thread `server` (never joined: it may serve until the world
    /// ends) and returns the address the clients connect to, once a listener is there.
    fn start_server(
        &self,
        os: &SimOs,
        server_error: &Arc<<SimOs as Os>::Mutex<Option<String>>>,
    ) -> Result<SocketAddr, String> {
        let report = |slot: &Arc<<SimOs as Os>::Mutex<Option<String>>>, result: io::Result<()>| {
            if let Err(error) = result {
                let message = format!("the server returned an error: {error}");
                slot.lock(|slot: &mut Option<String>| *slot = Some(message));
            }
        };
        match &self.server {
            Server::Given(server) => {
                let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
                let listener =
                    TcpListener::bind(any_port).map_err(|e| format!("bind failed: {e}"))?;
                let addr = listener
                    .local_addr()
                    .expect("a bound listener has an address");
                let (server, slot) = (Arc::clone(server), Arc::clone(server_error));
                os.spawn("server", move || report(&slot, server(listener)));
                Ok(addr)
            }
            Server::Binds(addr, server) => {
                let (server, slot, addr) = (Arc::clone(server), Arc::clone(server_error), *addr);
                os.spawn("server", move || report(&slot, server(addr)));
                wait_for_listener(os, addr, server_error)?;
                Ok(addr)
            }
        }
    }
}

/// How often thread `main` looks for the listener of a server that binds its own address.
const LISTEN_POLL: Duration = Duration::from_micros(100);

/// How long (virtual time) a server that binds its own address has to do it.
pub const LISTEN_WAIT: Duration = Duration::from_secs(1);

/// Waits, in virtual time, until a connection to `addr` would find a listener.
fn wait_for_listener(
    os: &SimOs,
    addr: SocketAddr,
    server_error: &<SimOs as Os>::Mutex<Option<String>>,
) -> Result<(), String> {
    let polls_max = LISTEN_WAIT.as_micros() / LISTEN_POLL.as_micros();
    for _ in 0..polls_max {
        if sim::sys::is_listening(addr) {
            return Ok(());
        }
        if let Some(error) = server_error.lock(|slot: &mut Option<String>| slot.clone()) {
            return Err(format!("{error} (before it listened on {addr})"));
        }
        os.sleep(LISTEN_POLL);
    }
    Err(format!(
        "the server did not listen on {addr} within {} ms of virtual time",
        LISTEN_WAIT.as_millis()
    ))
}

/// What thread `main` saw.
#[derive(Default)]
struct Seen {
    driven: Driven,
    user_failures: Vec<String>,
}

/// Descriptors that should have been closed by the end. A server still serving keeps its
/// listener, its epoll instance and its wakers, so only its connection sockets count: every
/// client has closed its end, so a connection still open is one the server forgot. A
/// server that returned must have closed everything.
fn leaks(report: &sim::sched::Report) -> Vec<String> {
    let server_running = report
        .threads
        .iter()
        .any(|t| t.name == "server" && t.state != sim::sched::ThreadState::Done);
    report
        .kernel
        .open_fds()
        .into_iter()
        .filter(|info| !server_running || matches!(info.kind, FdKind::Tcp | FdKind::Unix))
        .map(|info| {
            format!(
                "fd {} ({:?}) is still open at the end, {} epoll registrations on it",
                info.fd, info.kind, info.watchers
            )
        })
        .collect()
}

fn env_seed() -> Option<u64> {
    let text = std::env::var(SEED_ENV).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={text} is not a seed (a u64)")),
    )
}

fn env_seeds() -> Option<Range<u64>> {
    let text = std::env::var(SEEDS_ENV).ok()?;
    let parsed = text
        .split_once("..")
        .and_then(|(a, b)| Some(a.trim().parse().ok()?..b.trim().parse().ok()?));
    Some(parsed.unwrap_or_else(|| panic!("{SEEDS_ENV}={text} is not a seed range (A..B)")))
}

/// The test's name as libtest runs it (its thread's name), for the replay command.
fn test_name() -> Option<String> {
    std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_string)
}

/// The replay command for `seed`.
pub fn replay_command(seed: u64) -> String {
    match test_name() {
        Some(name) => format!("{SEED_ENV}={seed} cargo test {name} -- --exact --nocapture"),
        None => format!("{SEED_ENV}={seed} cargo test <this test> -- --nocapture"),
    }
}

/// The verdict line, the diagnosis and the trace's tail, on stderr (libtest shows it for a
/// failing test).
fn print_report(result: &RunResult) {
    eprintln!("{}", result.summary());
    if let Some(environment) = &result.environment {
        eprintln!("  {environment}");
    }
    for line in &result.diagnosis {
        eprintln!("  {line}");
    }
    if !result.trace.is_empty() {
        eprintln!("trace (the last records):");
        for line in &result.trace {
            eprintln!("  {line}");
        }
    }
}

/// Panics with what a failing run needs to be understood and replayed.
#[track_caller]
fn fail(result: &RunResult) -> ! {
    print_report(result);
    let mut message = format!(
        "edgesim: verdict {} at SEED={}\n{}\n",
        result.verdict.name(),
        result.seed,
        result.summary()
    );
    if let Some(environment) = &result.environment {
        let _ = writeln!(message, "  {environment}");
    }
    for line in &result.diagnosis {
        let _ = writeln!(message, "  {line}");
    }
    let _ = write!(message, "replay: {}", replay_command(result.seed));
    panic!("{message}");
}
