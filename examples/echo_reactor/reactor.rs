// A single-threaded mio echo server, written as a user writes one: accept until WouldBlock,
// read until WouldBlock, write until WouldBlock, register both interests once, and let
// edge-triggered events say when to try again.
//
// This file is plain mio. It names the `mio` crate through whatever `mio` is in scope where
// it is included: the real crate, or `edgesim::mio` (see main.rs and the guide in
// docs/TESTING-YOUR-REACTOR.md). In your own crate the switch is one line:
// `#[cfg(test)] use edgesim::mio;`.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The listener's token.
const LISTENER: Token = Token(0);
/// The token of the waker that stops the loop.
const STOP: Token = Token(1);
/// Connections get tokens from here up.
const FIRST_CONN: usize = 2;
/// Events handled per poll.
const EVENTS_MAX: usize = 128;
/// Bytes read per call.
const READ_CHUNK_BYTES: usize = 4096;
/// Echo bytes a connection may hold before it stops reading (backpressure): a client that
/// sends without reading cannot make the server buffer without bound.
const PENDING_BYTES_MAX: usize = 64 * 1024;
/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How much a connection reads per readable event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Correct: read until `WouldBlock` (or end of file, or backpressure).
    UntilWouldBlock,
    /// The bug: read one chunk per event and wait for the next event. Under edge
    /// triggering the next event may never come: the bytes left in the socket stay there.
    OneRead,
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet echoed.
    pending: Vec<u8>,
    /// The peer sent end of file.
    read_closed: bool,
}

/// Makes [`EchoServer::run`] return, from any thread.
#[derive(Clone)]
pub struct Stopper {
    stopping: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    /// Asks the loop to stop and wakes it.
    pub fn stop(&self) -> io::Result<()> {
        self.stopping.store(true, Ordering::SeqCst);
        self.waker.wake()
    }
}

/// The echo server: a poll, a listener and the open connections.
pub struct EchoServer {
    poll: Poll,
    listener: TcpListener,
    stopper: Stopper,
    /// Accepting stopped on a full descriptor table; queued connections raise no new edge,
    /// so every poll is bounded by [`ACCEPT_BACKOFF`] and tries them again after it.
    accept_paused: bool,
    /// By token; a `BTreeMap` so that nothing depends on hash order (the simulator replays a
    /// seed exactly only if the code under test is deterministic too).
    conns: BTreeMap<Token, Conn>,
    next_token: usize,
    drain: Drain,
}

impl EchoServer {
    /// A server that will accept on `listener`.
    pub fn new(mut listener: TcpListener, drain: Drain) -> io::Result<EchoServer> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), STOP)?);
        Ok(EchoServer {
            poll,
            listener,
            stopper: Stopper {
                stopping: Arc::new(AtomicBool::new(false)),
                waker,
            },
            accept_paused: false,
            conns: BTreeMap::new(),
            next_token: FIRST_CONN,
            drain,
        })
    }

    /// A handle that makes [`EchoServer::run`] return.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Serves until the stopper is used.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_MAX);
        loop {
            let timeout = self.accept_paused.then_some(ACCEPT_BACKOFF);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                // A signal cut the wait short; nothing happened.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if self.accept_paused {
                self.accept_all()?;
            }
            for event in events.iter() {
                match event.token() {
                    // An event is a hint, not a promise: only the flag says stop.
                    STOP if self.stopper.stopping.load(Ordering::SeqCst) => return Ok(()),
                    STOP => {}
                    LISTENER => self.accept_all()?,
                    token => self.serve(token),
                }
            }
        }
    }

    /// Accepts every queued connection: after an edge, stopping early could strand the
    /// rest in the backlog until another client happens to connect.
    fn accept_all(&mut self) -> io::Result<()> {
        self.accept_paused = false;
        loop {
            match self.listener.accept() {
                Ok((mut stream, _peer)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    // Both interests once, for the connection's lifetime: with edge
                    // triggering an unneeded writable event costs one spurious wakeup.
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    self.poll
                        .registry()
                        .register(&mut stream, token, interest)?;
                    let conn = Conn {
                        stream,
                        pending: Vec::new(),
                        read_closed: false,
                    };
                    self.conns.insert(token, conn);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                // The connection died in the queue, or a signal came: try the next one.
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Out of descriptors (EMFILE, ENFILE): retrying at once would spin, and
                // giving up would strand the queue. Pause and try again after a while.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.accept_paused = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Handles an event for `token` (it may be stale: the connection may be gone).
    fn serve(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        // A reset or any other error ends this connection, not the server.
        let done = conn.echo(self.drain).unwrap_or(true);
        if done {
            let mut conn = self.conns.remove(&token).expect("the connection is open");
            deregister(self.poll.registry(), &mut conn.stream);
        }
    }
}

impl Conn {
    /// Reads and echoes until the socket has nothing more to give or take. Returns whether
    /// the connection is finished (end of file seen and everything echoed).
    fn echo(&mut self, drain: Drain) -> io::Result<bool> {
        let mut buf = [0u8; READ_CHUNK_BYTES];
        loop {
            if !self.flush()? {
                // The socket is full; a writable event will bring us back. Stop reading
                // too if enough is pending (that event will resume reading).
                if self.pending.len() >= PENDING_BYTES_MAX {
                    return Ok(false);
                }
            }
            if self.read_closed {
                return Ok(self.pending.is_empty());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => self.read_closed = true,
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    if drain == Drain::OneRead {
                        self.flush()?;
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes pending bytes until none is left (`true`) or the socket is full (`false`).
    fn flush(&mut self) -> io::Result<bool> {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Deregisters before the stream is dropped (and closed), as mio asks.
fn deregister(registry: &Registry, stream: &mut TcpStream) {
    // The socket may already be dead; closing it removes the registration anyway.
    let _ = registry.deregister(stream);
}

/// Runs an echo server on `listener` until it fails: the entry point the tests use.
pub fn serve(listener: TcpListener, drain: Drain) -> io::Result<()> {
    EchoServer::new(listener, drain)?.run()
}
