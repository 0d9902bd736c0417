//! One scenario's run, written once against the seam: start the server, run the clients to
//! the end, watch the idle server for a moment, stop it. The simulator and Linux both run
//! exactly this code.

use crate::netpoll::{EchoServer, NetpollConfig};
use crate::os::{Os, OsJoin, OsMutex};
use crate::scenario::{Pattern, Scenario};
use crate::server::{EchoHandler, FrameHandler, HandlerKind, Model, Server, SharedServer};
use crate::workload::{run_client, ClientError, ClientPlan, ClientReport, Progress};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the run watches the server once every client is done: a correct server sleeps
/// in `epoll_wait`, a spinning one keeps calling.
pub const IDLE_WINDOW: Duration = Duration::from_millis(10);

/// Windows the server gets to finish what the clients left before it is watched: closes,
/// flushes, and connections still queued behind an accept back-off (the reactor server
/// pauses its listener for 100 ms after EMFILE), so 160 ms in all.
const SETTLE_WINDOWS_MAX: usize = 16;

/// A window in which the server takes this many times `quiet` steps (most of the window)
/// is a busy loop, not leftover work: there is no point in waiting for it to settle.
const BUSY_FACTOR: u64 = 4;

/// The steps (or CPU microseconds, on Linux) the server takes over one [`IDLE_WINDOW`].
/// The main thread's own sleep costs a step or two; the rest is the server's.
fn window<O: Os>(os: &O, steps: fn() -> u64) -> u64 {
    let before = steps();
    os.sleep(IDLE_WINDOW);
    steps().saturating_sub(before).saturating_sub(2)
}

/// Lets the server finish what the clients' last calls started, one [`IDLE_WINDOW`] after
/// another until a window takes at most `quiet` steps (at most `SETTLE_WINDOWS_MAX`), then
/// counts the steps taken over one more, when nothing is left to do. A window far above
/// `quiet` ends the wait at once: that is a busy loop, and its count is the answer.
pub fn idle_steps<O: Os>(os: &O, steps: fn() -> u64, quiet: u64) -> u64 {
    for _ in 0..SETTLE_WINDOWS_MAX {
        let taken = window(os, steps);
        if taken <= quiet {
            break;
        }
        if taken > BUSY_FACTOR * quiet {
            return taken;
        }
    }
    window(os, steps)
}

/// Waits until every client finished its exchange and lingers, then counts the server's
/// steps over an idle window while they keep their connections open. Returns 0 if a client
/// finished (or failed) first, or the wait ran out: the clients' own results tell why.
fn linger_idle_steps<O: Os>(
    os: &O,
    progress: &Progress,
    clients: u64,
    finished: impl Fn() -> bool,
    steps: fn() -> u64,
) -> u64 {
    const POLL: Duration = Duration::from_millis(1);
    /// Bounds the wait, so that a stalled run still ends (after ten virtual seconds).
    const POLLS_MAX: usize = 10_000;
    for _ in 0..POLLS_MAX {
        if progress.lingering() >= clients {
            // The last client's linger has just begun: both idle windows fit in it.
            // The clients linger 100 ms, so no settling beyond one window.
            window(os, steps);
            return window(os, steps);
        }
        if finished() {
            return 0;
        }
        os.sleep(POLL);
    }
    0
}

/// What the driver saw.
#[derive(Debug, Default)]
pub struct Driven {
    /// Each client's result, by client id.
    pub clients: Vec<(u32, Result<ClientReport, ClientError>)>,
    /// Steps the server took while it had nothing to do (simulator only).
    pub idle_steps: u64,
    /// The server failed to start or stop (a panic message or a setup errno).
    pub server_error: Option<String>,
}

/// Runs `scenario` on `os`, with the clients' byte patterns and sizes drawn from `seed`.
/// `steps` reads the simulator's step counter (constant 0 on Linux); `stall_after` bounds a
/// client's wait with no progress (`None` in the simulator, which sees stalls itself).
pub fn drive<O: Os>(
    os: &O,
    scenario: &Scenario,
    seed: u64,
    progress: Arc<Progress>,
    steps: fn() -> u64,
    stall_after: Option<Duration>,
) -> Driven {
    let mut driven = Driven::default();
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    let server = match Running::start(os, scenario, addr) {
        Ok(server) => server,
        Err(error) => {
            driven.server_error = Some(error);
            return driven;
        }
    };
    let addr = server.local_addr();
    let results = Arc::new(os.mutex(Vec::new()));
    let clients: Vec<O::JoinHandle> = (0..scenario.clients.count as u32)
        .map(|id| {
            let mut plan = ClientPlan::new(&scenario.clients, id, addr, seed);
            plan.frames = scenario.server.handler == HandlerKind::Frame;
            plan.retry_on_reset = scenario.injects_resets();
            let (os2, results, progress) =
                (os.clone(), Arc::clone(&results), Arc::clone(&progress));
            os.spawn(&format!("client{id}"), move || {
                let result = run_client(&os2, &plan, &progress, stall_after);
                results.lock(|r: &mut Vec<_>| r.push((id, result)));
            })
        })
        .collect();
    // Lingering clients hold their connections open once every echo is in: the server is
    // watched then, with connections open, and again once they are gone.
    let lingering_steps = if scenario.clients.pattern == Pattern::Linger {
        let n_clients = scenario.clients.count;
        let finished = || results.lock(|r: &mut Vec<_>| r.len() >= n_clients);
        linger_idle_steps(os, &progress, n_clients as u64, finished, steps)
    } else {
        0
    };
    for client in clients {
        if let Err(message) = client.join() {
            driven.server_error = Some(format!("a client panicked: {message}"));
        }
    }
    let quiet = if stall_after.is_some() {
        super::REAL_IDLE_CPU_US_MAX
    } else {
        super::IDLE_STEPS_MAX
    };
    driven.idle_steps = idle_steps(os, steps, quiet).max(lingering_steps);
    if driven.idle_steps > super::IDLE_STEPS_MAX {
        // A spinning server is left as it is (its threads are unwound when the world ends,
        // without touching the kernel), so the diagnosis sees the registration it spins on.
        // Only the simulator counts steps, so a real server is always stopped.
        std::mem::forget(server);
    } else if let Err(message) = server.stop() {
        driven.server_error = Some(message);
    }
    let mut clients = results.lock(std::mem::take);
    clients.sort_by_key(|(id, _)| *id);
    driven.clients = clients;
    driven
}

/// The server under test: the reactor server, the Go-style netpoll echo server when the
/// scenario says `model = "netpoll"`, or the shared-epoll echo server.
enum Running<O: Os> {
    Reactor(Server<O, EchoHandler>),
    Frame(Server<O, FrameHandler>),
    Netpoll(EchoServer<O>),
    Shared(SharedServer<O>),
}

impl<O: Os> Running<O> {
    fn start(os: &O, scenario: &Scenario, addr: SocketAddr) -> Result<Running<O>, String> {
        if scenario.server.netpoll {
            let config = NetpollConfig {
                flaw: scenario.server.netpoll_flaw,
                idle_timeout: scenario.server.idle_timeout,
                ..NetpollConfig::default()
            };
            return EchoServer::start(os.clone(), config, addr)
                .map(Running::Netpoll)
                .map_err(|e| e.to_string());
        }
        if scenario.server.config.model == Model::SharedEpoll {
            return SharedServer::start(os.clone(), &scenario.server.config, addr)
                .map(Running::Shared);
        }
        let config = scenario.server.config.clone();
        let started = match scenario.server.handler {
            HandlerKind::Echo => {
                Server::start(os.clone(), config, EchoHandler, addr).map(Running::Reactor)
            }
            HandlerKind::Frame => {
                Server::start(os.clone(), config, FrameHandler, addr).map(Running::Frame)
            }
        };
        started.map_err(|e| e.to_string())
    }

    fn local_addr(&self) -> SocketAddr {
        match self {
            Running::Reactor(server) => server.local_addr(),
            Running::Frame(server) => server.local_addr(),
            Running::Netpoll(server) => server.local_addr(),
            Running::Shared(server) => server.local_addr(),
        }
    }

    fn stop(self) -> Result<(), String> {
        match self {
            Running::Reactor(server) => server.stop(),
            Running::Frame(server) => server.stop(),
            Running::Netpoll(server) => server.stop(),
            Running::Shared(server) => server.stop(),
        }
    }
}
