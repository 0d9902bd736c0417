//! The harness: run your own server under the simulator from a plain `#[test]`, with
//! edgesim's workload clients or your own, and get a verdict, a diagnosis and a trace.
//!
//! Why: most people who need edgesim already have an event loop. Written against
//! [`crate::mio`] (one `use` line away from the mio crate), it runs here unchanged: the
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

mod client;
mod thread;

pub use crate::runner::{RunResult, IDLE_STEPS_MAX, IDLE_WINDOW};
pub use crate::scenario::{ClientSpec, FaultSpec, Pattern, SimSpec, Verdict};
pub use client::Client;
pub use sim::kernel::EdgeModel;
pub use sim::sched::Strategy;
pub use thread::{sleep, spawn, JoinHandle};

use crate::mio::net::TcpListener;
use crate::os::{Os, OsJoin, SimOs};
use crate::runner::{self, Driven};
use crate::scenario::Scenario;
use crate::workload::{run_client, ClientPlan, Progress};
use sim::kernel::FdKind;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The environment variable that replays one seed.
pub const SEED_ENV: &str = "EDGESIM_SEED";
/// The environment variable that replaces a test's seed range (`A..B`).
pub const SEEDS_ENV: &str = "EDGESIM_SEEDS";

type ServerFn = dyn Fn(TcpListener) -> io::Result<()> + Send + Sync;
type ClientFn = dyn Fn(&Client) -> Result<(), String> + Send + Sync;

/// A simulated test of one server: what runs, and under which simulated conditions.
///
/// Build it once per test; every seed builds a fresh world from it. The closures are
/// `Send + Sync` because a seed range runs on several OS threads (one world on each).
#[derive(Clone)]
pub struct Harness {
    server: Arc<ServerFn>,
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
    /// and the simulator uses the scenario files' defaults (Linux edge model, no faults,
    /// 200,000 steps).
    pub fn new<F>(server: F) -> Harness
    where
        F: Fn(TcpListener) -> io::Result<()> + Send + Sync + 'static,
    {
        let scenario = crate::scenario::parse("harness", "name = \"harness\"")
            .expect("the empty scenario parses");
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        Harness {
            server: Arc::new(server),
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
    /// buffer sizes).
    pub fn sim(mut self, configure: impl FnOnce(&mut SimSpec)) -> Harness {
        configure(&mut self.scenario.sim);
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
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        let listener = match TcpListener::bind(any_port) {
            Ok(listener) => listener,
            Err(error) => {
                seen.driven.server_error = Some(format!("bind failed: {error}"));
                return seen;
            }
        };
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server_error = Arc::new(os.mutex(None::<String>));
        {
            let (server, server_error) = (Arc::clone(&self.server), Arc::clone(&server_error));
            // The server is never joined: it may serve until the world ends.
            let _server = os.spawn("server", move || {
                if let Err(error) = server(listener) {
                    let message = format!("the server returned an error: {error}");
                    server_error.lock(|slot: &mut Option<String>| *slot = Some(message));
                }
            });
        }
        let standard = Arc::new(os.mutex(Vec::new()));
        let user = Arc::new(os.mutex(Vec::new()));
        let mut handles = Vec::new();
        let n_standard = if self.standard_clients {
            self.scenario.clients.count as u32
        } else {
            0
        };
        for id in 0..n_standard {
            let mut plan = ClientPlan::new(&self.scenario.clients, id, addr, seed);
            plan.retry_on_reset = self.scenario.injects_resets();
            let (results, progress) = (Arc::clone(&standard), Arc::clone(&progress));
            handles.push(os.spawn(&format!("client{id}"), move || {
                let result = run_client(&SimOs, &plan, &progress, None);
                results.lock(|r: &mut Vec<_>| r.push((id, result)));
            }));
        }
        let mut thread_id = n_standard;
        for (count, body) in &self.user_clients {
            for index in 0..*count {
                let client = Client::new(
                    index,
                    addr,
                    sim::sched::derive_seed(seed, 200 + u64::from(thread_id)),
                    Arc::clone(&progress),
                );
                let (body, results) = (Arc::clone(body), Arc::clone(&user));
                let name = format!("client{thread_id}");
                let label = name.clone();
                handles.push(os.spawn(&name, move || {
                    let result = body(&client);
                    results.lock(|r: &mut Vec<_>| r.push((label, result)));
                }));
                thread_id += 1;
            }
        }
        for handle in handles {
            if let Err(message) = handle.join() {
                seen.driven.server_error = Some(format!("a client panicked: {message}"));
            }
        }
        seen.driven.idle_steps = runner::idle_steps(os, sim::sys::steps);
        if let Some(error) = server_error.lock(Option::take) {
            seen.driven.server_error.get_or_insert(error);
        }
        let mut clients = standard.lock(std::mem::take);
        clients.sort_by_key(|(id, _)| *id);
        seen.driven.clients = clients;
        let mut user = user.lock(std::mem::take);
        user.sort();
        seen.user_failures = user
            .into_iter()
            .filter_map(|(name, result)| result.err().map(|e| format!("{name}: {e}")))
            .collect();
        seen
    }
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
    for line in &result.diagnosis {
        let _ = writeln!(message, "  {line}");
    }
    let _ = write!(message, "replay: {}", replay_command(result.seed));
    panic!("{message}");
}
