//! An echo server on the netpoller, written the way a Go program would be: one thread
//! accepts, one thread per connection reads and writes back, each looking blocking.
//!
//! Shutdown is deterministic: the listener is evicted (its accepting thread returns and
//! closes it), every connection is evicted and its thread joined (each closes its own
//! descriptor), then the netpoller is woken through its eventfd and joined, and its epoll
//! instance and eventfd are closed.

use super::netfd::{NetError, NetFd, PollHandle};
use super::poller::Netpoll;
use super::Flaw;
use crate::os::{Errno, Os, OsJoin, OsMutex};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The echo server's knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetpollConfig {
    /// The deliberate flaw, if any.
    pub flaw: Option<Flaw>,
    /// A connection idle this long (no byte read) is closed: a read deadline set before
    /// every read, as Go servers do with `SetReadDeadline`. `None`: no deadline.
    pub idle_timeout: Option<Duration>,
    /// The listener's backlog.
    pub backlog: u32,
    /// Bytes per read.
    pub read_buffer_bytes: usize,
    /// How long the accepting thread sleeps after `EMFILE` and similar errors before it
    /// tries again (Go's http server backs off the same way).
    pub accept_backoff: Duration,
}

impl Default for NetpollConfig {
    fn default() -> NetpollConfig {
        NetpollConfig {
            flaw: None,
            idle_timeout: None,
            backlog: 1024,
            read_buffer_bytes: 16 * 1024,
            accept_backoff: Duration::from_millis(5),
        }
    }
}

/// Why the server could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError {
    /// What was being done.
    pub doing: &'static str,
    /// The errno it failed with.
    pub errno: Errno,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "netpoll server: {}: {}", self.doing, self.errno)
    }
}

impl std::error::Error for StartError {}

/// Live connections: a handle to interrupt each, and its thread.
type Conns<O> = Vec<(PollHandle<O>, <O as Os>::JoinHandle)>;

/// A running netpoll echo server. Dropping it stops it, as [`EchoServer::stop`] does.
pub struct EchoServer<O: Os> {
    local_addr: SocketAddr,
    poller: Arc<Netpoll<O>>,
    listener: PollHandle<O>,
    netpoller: Option<O::JoinHandle>,
    acceptor: Option<O::JoinHandle>,
    conns: Arc<O::Mutex<Conns<O>>>,
    stopped: bool,
}

impl<O: Os> EchoServer<O> {
    /// Binds `addr` (port 0 picks one), starts the netpoller and the accepting thread.
    pub fn start(os: O, config: NetpollConfig, addr: SocketAddr) -> Result<Self, StartError> {
        let poller = Netpoll::new(os.clone(), config.flaw)
            .map(Arc::new)
            .map_err(|(doing, errno)| StartError { doing, errno })?;
        let listener = match os.listen(addr, config.backlog, false) {
            Ok(fd) => fd,
            Err(errno) => {
                poller.release();
                return Err(StartError {
                    doing: "listen",
                    errno,
                });
            }
        };
        let local_addr = match os.local_addr(listener) {
            Ok(addr) => addr,
            Err(errno) => {
                let _ = os.close(listener);
                poller.release();
                return Err(StartError {
                    doing: "getsockname",
                    errno,
                });
            }
        };
        let listener = match NetFd::open(&poller, listener) {
            Ok(listener) => listener,
            Err(errno) => {
                poller.release();
                return Err(StartError {
                    doing: "register the listener",
                    errno,
                });
            }
        };
        let netpoller = {
            let poller = Arc::clone(&poller);
            os.spawn("netpoller", move || poller.run())
        };
        let conns: Arc<O::Mutex<Conns<O>>> = Arc::new(os.mutex(Vec::new()));
        let listener_handle = listener.handle();
        let acceptor = {
            let (os2, conns) = (os.clone(), Arc::clone(&conns));
            os.spawn("netpoll-accept", move || {
                accept_loop(&os2, listener, &config, &conns)
            })
        };
        Ok(EchoServer {
            local_addr,
            poller,
            listener: listener_handle,
            netpoller: Some(netpoller),
            acceptor: Some(acceptor),
            conns,
            stopped: false,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops every thread and closes every descriptor; `Err` carries the panic messages of
    /// threads that panicked.
    pub fn stop(mut self) -> Result<(), String> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut panics = Vec::new();
        let mut join = |name: &str, handle: O::JoinHandle| {
            if let Err(message) = handle.join() {
                panics.push(format!("{name} panicked: {message}"));
            }
        };
        // The accepting thread first, so that no connection is added while the others stop.
        self.listener.evict();
        if let Some(acceptor) = self.acceptor.take() {
            join("netpoll-accept", acceptor);
        }
        let conns = self.conns.lock(std::mem::take);
        for (handle, _) in &conns {
            handle.evict();
        }
        for (idx, (_, thread)) in conns.into_iter().enumerate() {
            join(&format!("netpoll-conn{idx}"), thread);
        }
        self.poller.stop();
        if let Some(netpoller) = self.netpoller.take() {
            join("netpoller", netpoller);
        }
        self.poller.release();
        if panics.is_empty() {
            Ok(())
        } else {
            Err(panics.join("; "))
        }
    }
}

impl<O: Os> Drop for EchoServer<O> {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The accepting thread: accept, hand the connection to a new thread, until evicted.
fn accept_loop<O: Os>(
    os: &O,
    listener: NetFd<O>,
    config: &NetpollConfig,
    conns: &Arc<O::Mutex<Conns<O>>>,
) {
    let mut accepted: u64 = 0;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                let handle = conn.handle();
                let (os2, config2) = (os.clone(), config.clone());
                let thread = os.spawn(&format!("netpoll-conn{accepted}"), move || {
                    echo(&os2, conn, &config2)
                });
                accepted += 1;
                conns.lock(|conns: &mut Conns<O>| conns.push((handle, thread)));
            }
            Err(NetError::Closed) => break,
            // Out of descriptors and the like: back off rather than spin on a listener that
            // stays readable.
            Err(_) => os.sleep(config.accept_backoff),
        }
    }
    let _ = listener.close();
}

/// One connection's thread: read, write back, until end of file, an error, the idle
/// deadline, or shutdown.
fn echo<O: Os>(os: &O, conn: NetFd<O>, config: &NetpollConfig) {
    let mut buf = vec![0u8; config.read_buffer_bytes];
    loop {
        if let Some(idle) = config.idle_timeout {
            conn.set_read_deadline(Some(os.now() + idle));
        }
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if conn.write(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = conn.close();
}
