//! The multi-reactor server, generic over the [`Os`] seam so that the same code runs on
//! Linux and in the simulator.
//!
//! # Brief overview
//!
//! [`Server::start`] builds the loops of the chosen [`Model`] from a [`ServerConfig`] and a
//! [`Handler`], spawns their threads through the seam, and returns once the listener is
//! bound ([`Server::local_addr`]). [`Server::stop`] shuts it down deterministically: the
//! accepting main loop first, then every serving loop in index order, then the workers;
//! every thread is joined and every descriptor the server opened is closed.
//!
//! - `config.rs`: the knobs, including the deliberate [`Flaw`].
//! - `handler.rs`: the user API ([`Handler`], [`Ctx`]) and the echo and frame handlers.
//! - `reactor.rs`: one loop's turn, the event order, `refresh`, the close protocol.
//! - `transfer.rs`: the read and write paths, inline or through the worker pool.
//! - `accept.rs`: the listener, the accept error policy, the hand-off to sub-loops.
//! - `conn.rs`, `buffer.rs`: per-connection state, generation-tagged slots, bounded buffers.
//! - `mailbox.rs`, `waker.rs`: cross-thread tasks and the coalesced eventfd wakeup.
//! - `balance.rs`: round-robin, least-connections, source-hash.
//! - `worker.rs`: the optional worker pool.
//! - `shared.rs`: the shared-epoll model, a separate small echo server ([`SharedServer`]):
//!   several threads on one epoll instance.
//!
//! Nothing here names a backend, a std lock, a std atomic or a std thread: threads, locks,
//! atomics and clocks come from the seam, because in the simulator every such access must
//! be a scheduling point.
//!
//! # Example
//!
//! ```no_run
//! use edgesim::os::RealOs;
//! use edgesim::server::{EchoHandler, Server, ServerConfig};
//!
//! let server = Server::start(RealOs::new(), ServerConfig::default(), EchoHandler,
//!     "127.0.0.1:0".parse().unwrap()).unwrap();
//! println!("echo on {}", server.local_addr());
//! server.stop().unwrap();
//! ```

mod accept;
mod balance;
mod buffer;
mod config;
mod conn;
mod handler;
mod mailbox;
mod reactor;
mod shared;
mod transfer;
mod waker;
mod worker;

#[cfg(test)]
mod tests;

pub use config::{Balance, Flaw, HandlerKind, Model, ServerConfig, Trigger, UnknownName};
pub use handler::{
    fnv1a, ConnHandle, ConnInfo, Ctx, EchoHandler, FrameHandler, FrameState, Handler, FNV_OFFSET,
};

use crate::os::{Errno, Fd, Os, OsJoin};
use accept::Handoff;
use balance::Balancer;
use mailbox::{Mailbox, Task};
use reactor::Reactor;
pub use shared::SharedServer;
use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use worker::WorkerPool;

/// Why a server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is inconsistent; the message names the field.
    Config(String),
    /// A syscall failed while setting up (binding the listener, creating an epoll
    /// instance or an eventfd).
    Os {
        /// What was being done.
        doing: &'static str,
        /// The errno it failed with.
        errno: Errno,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(message) => write!(f, "bad server configuration: {message}"),
            StartError::Os { doing, errno } => write!(f, "{doing}: {errno}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running loop: its mailbox and its thread.
struct Loop<O: Os, S: Send + 'static> {
    mailbox: Arc<Mailbox<O, S>>,
    join: Option<O::JoinHandle>,
}

/// A running server. Dropping it stops it, as [`Server::stop`] does.
pub struct Server<O: Os, H: Handler> {
    local_addr: SocketAddr,
    /// The accepting main loop (multi-reactor only).
    main: Option<Loop<O, H::State>>,
    /// The serving loops, by index.
    loops: Vec<Loop<O, H::State>>,
    pool: Option<Arc<WorkerPool<O, H>>>,
    workers: Vec<O::JoinHandle>,
    os: O,
    stopped: bool,
}

/// A cheap, cloneable, thread-safe handle for talking to connections from other threads
/// (or from a handler about another connection). Every call is a task for the
/// connection's loop, which ignores it if the connection is gone; nothing blocks.
pub struct ServerHandle<O: Os, S: Send + 'static> {
    loops: Vec<Arc<Mailbox<O, S>>>,
    main: Option<Arc<Mailbox<O, S>>>,
}

impl<O: Os, S: Send + 'static> Clone for ServerHandle<O, S> {
    fn clone(&self) -> Self {
        ServerHandle {
            loops: self.loops.clone(),
            main: self.main.clone(),
        }
    }
}

impl<O: Os, S: Send + 'static> ServerHandle<O, S> {
    fn send(&self, handle: ConnHandle, task: Task<S>) -> bool {
        match self.loops.get(handle.reactor as usize) {
            Some(mailbox) => mailbox.push(task, false).is_ok(),
            None => false,
        }
    }

    /// Queues `data` for the connection, after everything queued before. Returns `false`
    /// if its loop has stopped.
    pub fn write(&self, handle: ConnHandle, data: Vec<u8>) -> bool {
        self.send(handle, Task::Write { handle, data })
    }

    /// Runs `on_traffic` for the connection even if no new input arrived.
    pub fn wake(&self, handle: ConnHandle) -> bool {
        self.send(handle, Task::Wake { handle })
    }

    /// Closes the connection (after a bounded best-effort flush of its pending output).
    pub fn close(&self, handle: ConnHandle) -> bool {
        self.send(handle, Task::Close { handle })
    }

    /// Asks every loop to close its connections and leave; returns at once. The owner of
    /// the [`Server`] still calls [`Server::stop`] to join the threads and close the rest.
    /// Sockets the main loop hands over meanwhile are closed by `Server::stop`.
    pub fn request_stop(&self) {
        for mailbox in self.main.iter().chain(self.loops.iter()) {
            let _ = mailbox.push(Task::Stop, true);
        }
    }
}

impl<O: Os, H: Handler> Server<O, H> {
    /// Binds `addr` (port 0 picks one), builds the loops and starts their threads.
    pub fn start(
        os: O,
        cfg: ServerConfig,
        handler: H,
        addr: SocketAddr,
    ) -> Result<Server<O, H>, StartError> {
        cfg.validate().map_err(StartError::Config)?;
        let cfg = Arc::new(cfg);
        let handler = Arc::new(handler);
        let fail = |doing: &'static str| move |errno: Errno| StartError::Os { doing, errno };

        // Everything opened so far, so that a failure half-way closes it all again.
        let mut building = Building::<O, H> {
            os: os.clone(),
            listeners: Vec::new(),
            mailboxes: Vec::new(),
            reactors: Vec::new(),
        };
        let n_loops = cfg.serving_loops();
        let mut mailboxes = Vec::with_capacity(n_loops);
        for _ in 0..n_loops {
            let mailbox = Arc::new(Mailbox::new(&os).map_err(fail("creating an eventfd"))?);
            building.mailboxes.push(Arc::clone(&mailbox));
            mailboxes.push(mailbox);
        }
        let pool = (cfg.workers > 0).then(|| {
            Arc::new(WorkerPool::new(
                &os,
                Arc::clone(&handler),
                cfg.job_duration,
                mailboxes.clone(),
            ))
        });

        // Listeners: one for the accepting loop, or one per loop with SO_REUSEPORT, all on
        // the port the first one got.
        let reuse_port = cfg.model == Model::ReusePort;
        let n_listeners = if reuse_port { n_loops } else { 1 };
        let mut local_addr = addr;
        for _ in 0..n_listeners {
            let fd = os
                .listen(local_addr, cfg.backlog, reuse_port)
                .map_err(fail("binding the listener"))?;
            building.listeners.push(Some(fd));
            if local_addr.port() == 0 {
                local_addr = os
                    .local_addr(fd)
                    .map_err(fail("reading the bound address"))?;
            }
        }

        for (idx, mailbox) in mailboxes.iter().enumerate() {
            let listener = match cfg.model {
                Model::SingleReactor => building.listeners[0].take(),
                Model::ReusePort => building.listeners[idx].take(),
                Model::MultiReactor | Model::SharedEpoll => None,
            };
            let reactor = Reactor::new(
                &os,
                Arc::clone(&cfg),
                Arc::clone(&handler),
                idx as u32,
                Arc::clone(mailbox),
                listener,
                None,
                pool.clone(),
            );
            match reactor {
                Ok(reactor) => building.reactors.push(reactor),
                Err(errno) => {
                    if let Some(fd) = listener {
                        let _ = os.close(fd);
                    }
                    return Err(StartError::Os {
                        doing: "creating a loop's epoll instance",
                        errno,
                    });
                }
            }
        }
        let mut main_reactor = None;
        if cfg.model == Model::MultiReactor {
            let mailbox = Arc::new(Mailbox::new(&os).map_err(fail("creating an eventfd"))?);
            building.mailboxes.push(Arc::clone(&mailbox));
            let listener = building.listeners[0].take();
            let handoff = Handoff {
                balancer: Balancer::new(cfg.balance),
                targets: mailboxes.clone(),
            };
            let reactor = Reactor::new(
                &os,
                Arc::clone(&cfg),
                Arc::clone(&handler),
                u32::MAX,
                mailbox,
                listener,
                Some(handoff),
                None,
            );
            match reactor {
                Ok(reactor) => main_reactor = Some(reactor),
                Err(errno) => {
                    if let Some(fd) = listener {
                        let _ = os.close(fd);
                    }
                    return Err(StartError::Os {
                        doing: "creating the main loop's epoll instance",
                        errno,
                    });
                }
            }
        }

        // Nothing can fail from here on: hand everything to threads.
        let reactors = std::mem::take(&mut building.reactors);
        building.mailboxes.clear();
        let mut workers = Vec::new();
        if let Some(pool) = &pool {
            for worker_idx in 0..cfg.workers {
                let pool = Arc::clone(pool);
                workers.push(os.spawn(&format!("worker-{worker_idx}"), move || {
                    pool.run(worker_idx)
                }));
            }
        }
        let loops = reactors
            .into_iter()
            .zip(mailboxes)
            .enumerate()
            .map(|(idx, (reactor, mailbox))| Loop {
                mailbox,
                join: Some(os.spawn(&format!("loop-{idx}"), move || reactor.run())),
            })
            .collect();
        let main = main_reactor.map(|reactor| Loop {
            mailbox: Arc::clone(&reactor.mailbox),
            join: Some(os.spawn("loop-main", move || reactor.run())),
        });
        Ok(Server {
            local_addr,
            main,
            loops,
            pool,
            workers,
            os,
            stopped: false,
        })
    }

    /// The address the server listens on (with the port the kernel picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for writing to, waking and closing connections from other threads.
    pub fn handle(&self) -> ServerHandle<O, H::State> {
        ServerHandle {
            loops: self.loops.iter().map(|l| Arc::clone(&l.mailbox)).collect(),
            main: self.main.as_ref().map(|l| Arc::clone(&l.mailbox)),
        }
    }

    /// Stops the server and waits for it: see the [module docs](self) for the order.
    /// `Err` carries the panic messages of threads that panicked.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut failures = Vec::new();
        // The main loop goes first, so no socket is handed to a loop that already left.
        let loops = self.main.iter_mut().chain(self.loops.iter_mut());
        for running in loops {
            let _ = running.mailbox.push(Task::Stop, true);
            if let Some(join) = running.join.take() {
                if let Err(message) = join.join() {
                    failures.push(message);
                }
            }
        }
        if let Some(pool) = &self.pool {
            pool.stop();
        }
        for join in self.workers.drain(..) {
            if let Err(message) = join.join() {
                failures.push(message);
            }
        }
        // Only now can no thread write to an eventfd any more; leftover hand-offs still own
        // their sockets.
        let mailboxes = self.main.iter().chain(self.loops.iter());
        for running in mailboxes {
            for task in running.mailbox.shut() {
                if let Task::Register { fd, .. } = task {
                    let _ = self.os.close(fd);
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

impl<O: Os, H: Handler> Drop for Server<O, H> {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// What `start` has opened so far; closes it all if dropped before the threads start.
struct Building<O: Os, H: Handler> {
    os: O,
    listeners: Vec<Option<Fd>>,
    mailboxes: Vec<Arc<Mailbox<O, H::State>>>,
    reactors: Vec<Reactor<O, H>>,
}

impl<O: Os, H: Handler> Drop for Building<O, H> {
    fn drop(&mut self) {
        for reactor in &mut self.reactors {
            reactor.dispose();
        }
        for fd in self.listeners.iter().flatten() {
            let _ = self.os.close(*fd);
        }
        for mailbox in &self.mailboxes {
            mailbox.shut();
        }
    }
}

/// `edgesim serve`: runs the multi-reactor server with `reactors` sub-loops on `addr` until
/// SIGINT or SIGTERM, then stops it cleanly. Prints `listening on ADDR` once bound.
/// Exit code 0 after a clean stop, 1 if the server could not start or a thread panicked.
pub fn serve_cli<O: Os>(
    os: O,
    addr: SocketAddr,
    reactors: usize,
    trigger: Trigger,
    handler: HandlerKind,
) -> ExitCode {
    let cfg = ServerConfig {
        model: Model::MultiReactor,
        reactors,
        trigger,
        ..ServerConfig::default()
    };
    match handler {
        HandlerKind::Echo => serve_until_signal(os, cfg, EchoHandler, addr),
        HandlerKind::Frame => serve_until_signal(os, cfg, FrameHandler, addr),
    }
}

fn serve_until_signal<O: Os, H: Handler>(
    os: O,
    cfg: ServerConfig,
    handler: H,
    addr: SocketAddr,
) -> ExitCode {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // Registered before the server starts, so a signal that comes early is not lost.
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("edgesim serve: cannot install signal handlers: {error}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::start(os, cfg, handler, addr) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("edgesim serve: {error}");
            return ExitCode::from(1);
        }
    };
    println!("listening on {}", server.local_addr());
    let signal = signals.forever().next();
    eprintln!("edgesim serve: signal {signal:?}, stopping");
    match server.stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("edgesim serve: {message}");
            ExitCode::from(1)
        }
    }
}
