//! The shared-epoll model: a few threads all wait in `epoll_wait` on one epoll instance that
//! holds the listener and every connection, the "thread pool around one epoll" design that
//! epoll(7)'s note on `EPOLLONESHOT` and Majkowski's "epoll is fundamentally broken" are
//! about. It is an echo server, and exists to show epoll-semantics pitfall P6.
//!
//! Any thread may handle any connection, so a lock per connection orders them: the thread
//! that holds it reads once (a short read on a stream socket means the queue was empty,
//! epoll(7) Q9) and writes the echo before it lets go, so output keeps the order of input.
//! Registrations are `EPOLLET | EPOLLONESHOT`: a delivered event disarms the connection
//! until its handler re-arms it, so at most one thread is ever woken for it, and "the
//! thread an event woke owns the socket's readiness" holds.
//!
//! Flaw `shared-no-oneshot` drops `EPOLLONESHOT` and trusts edge triggering instead ("one
//! edge until the reader drains the socket"). Linux queues an edge-triggered item on every
//! arrival, so a second chunk that arrives while thread A handles the first wakes thread B
//! for the same socket. B waits for A's lock, A's one read takes both chunks, and B's read
//! finds nothing, which the flawed handler takes for a dead peer, as `if (n <= 0) close()`
//! code does. Under textbook (strict) edges B is woken only after A's read emptied the
//! socket, for bytes that A will not read, so the same code passes there.

use super::config::{Flaw, ServerConfig};
use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, OsAtomic, OsJoin, OsMutex, Token};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The listener's token; connections count up from 0 and are never reused.
const LISTENER_TOKEN: Token = Token(u64::MAX);
/// The token of the stop eventfd.
const STOP_TOKEN: Token = Token(u64::MAX - 1);

/// One connection, owned by whichever thread holds its lock.
struct Conn {
    fd: Fd,
    /// Echo bytes the socket has not taken yet.
    outbound: Vec<u8>,
    /// The peer's FIN has been read.
    eof: bool,
    /// Reading stopped with `outbound` full; resume once it drains.
    read_paused: bool,
    /// Deregistered and closed; a thread that still holds the `Arc` must leave it alone.
    closed: bool,
}

/// Live connections by token.
struct Table<O: Os> {
    next_token: u64,
    conns: BTreeMap<u64, Arc<O::Mutex<Conn>>>,
}

/// What every thread shares.
struct Shared<O: Os> {
    os: O,
    epfd: Fd,
    listener: Fd,
    /// A level-triggered eventfd written once at stop and never read, so it wakes every
    /// thread.
    stop_fd: Fd,
    stopping: O::Atomic,
    /// While the descriptor table is full: the time (`Os::now`, in ns) after which accepting
    /// is tried again; 0 when accepting is not paused.
    accept_resume_ns: O::Atomic,
    /// `false` under flaw `shared-no-oneshot`.
    oneshot: bool,
    read_buffer_bytes: usize,
    outbound_bytes_max: usize,
    events_max: usize,
    accept_backoff: Duration,
    table: O::Mutex<Table<O>>,
}

/// A running shared-epoll echo server. Dropping it stops it, as [`SharedServer::stop`] does.
pub struct SharedServer<O: Os> {
    local_addr: SocketAddr,
    shared: Arc<Shared<O>>,
    threads: Vec<O::JoinHandle>,
    stopped: bool,
}

impl<O: Os> SharedServer<O> {
    /// Binds `addr`, registers the listener and starts `cfg.reactors` threads on one epoll
    /// instance. Of the flaws only `shared-no-oneshot` means anything here.
    pub fn start(os: O, cfg: &ServerConfig, addr: SocketAddr) -> Result<SharedServer<O>, String> {
        let mut opened: Vec<Fd> = Vec::new();
        let built = Self::open(&os, cfg, addr, &mut opened);
        let (epfd, listener, stop_fd, local_addr) = match built {
            Ok(fds) => fds,
            Err(message) => {
                for fd in opened.into_iter().rev() {
                    let _ = os.close(fd);
                }
                return Err(message);
            }
        };
        let shared = Arc::new(Shared {
            os: os.clone(),
            epfd,
            listener,
            stop_fd,
            stopping: os.atomic(0),
            accept_resume_ns: os.atomic(0),
            oneshot: !cfg.has(Flaw::SharedNoOneshot),
            read_buffer_bytes: cfg.read_buffer_bytes,
            outbound_bytes_max: cfg.outbound_bytes_max,
            events_max: cfg.events_max,
            accept_backoff: cfg.accept_backoff,
            table: os.mutex(Table {
                next_token: 0,
                conns: BTreeMap::new(),
            }),
        });
        let threads = (0..cfg.reactors.max(1))
            .map(|idx| {
                let shared = Arc::clone(&shared);
                os.spawn(&format!("shared-{idx}"), move || shared.run())
            })
            .collect();
        Ok(SharedServer {
            local_addr,
            shared,
            threads,
            stopped: false,
        })
    }

    /// The epoll instance, the listener and the stop eventfd, registered; what it opened
    /// is in `opened` for the caller to close on failure.
    fn open(
        os: &O,
        cfg: &ServerConfig,
        addr: SocketAddr,
        opened: &mut Vec<Fd>,
    ) -> Result<(Fd, Fd, Fd, SocketAddr), String> {
        let fail = |doing: &'static str| move |errno: Errno| format!("{doing}: {errno}");
        let epfd = os
            .epoll_create()
            .map_err(fail("creating the epoll instance"))?;
        opened.push(epfd);
        let listener = os
            .listen(addr, cfg.backlog, false)
            .map_err(fail("binding the listener"))?;
        opened.push(listener);
        let local_addr = os
            .local_addr(listener)
            .map_err(fail("reading the listener's address"))?;
        let stop_fd = os.eventfd().map_err(fail("creating an eventfd"))?;
        opened.push(stop_fd);
        let register = |fd, interest, token| os.epoll_ctl(epfd, CtlOp::Add, fd, interest, token);
        register(listener, Events::IN | Events::ET, LISTENER_TOKEN)
            .map_err(fail("registering the listener"))?;
        register(stop_fd, Events::IN, STOP_TOKEN).map_err(fail("registering the eventfd"))?;
        Ok((epfd, listener, stop_fd, local_addr))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Wakes every thread to leave, joins them, then closes every connection and the
    /// server's own descriptors, in token order.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let shared = &self.shared;
        shared.stopping.store(1);
        let _ = shared.os.eventfd_write(shared.stop_fd, 1);
        let mut result = Ok(());
        for thread in self.threads.drain(..) {
            if let Err(message) = thread.join() {
                result = Err(format!("a shared-epoll thread panicked: {message}"));
            }
        }
        let conns = shared.table.lock(|table| std::mem::take(&mut table.conns));
        for conn in conns.into_values() {
            conn.lock(|conn| shared.close(conn));
        }
        for fd in [shared.listener, shared.stop_fd] {
            let _ = shared
                .os
                .epoll_ctl(shared.epfd, CtlOp::Del, fd, Events::NONE, Token(0));
            let _ = shared.os.close(fd);
        }
        let _ = shared.os.close(shared.epfd);
        result
    }
}

impl<O: Os> Drop for SharedServer<O> {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

impl<O: Os> Shared<O> {
    /// One thread: wait, handle the batch, until the stop eventfd shows up.
    fn run(&self) {
        let mut events: Vec<EpollEvent> = Vec::with_capacity(self.events_max);
        let mut buf = vec![0u8; self.read_buffer_bytes];
        loop {
            match self
                .os
                .epoll_wait(self.epfd, &mut events, self.events_max, self.wait_timeout())
            {
                Ok(_) | Err(Errno::EINTR) => {}
                // The server's own epoll descriptor failing is a bug in this program, not
                // something a peer can cause.
                Err(errno) => panic!("epoll_wait on the server's own epoll instance: {errno}"),
            }
            self.resume_accepting();
            for event in &events {
                match event.token {
                    // An event is a hint: a spurious one for the stop eventfd must not
                    // end a thread of a server nobody stopped (found by swarm mode's
                    // `spurious_ready`: every thread left, and the clients stalled).
                    STOP_TOKEN if self.stopping.load() != 0 => return,
                    STOP_TOKEN => {}
                    LISTENER_TOKEN => self.accept_all(),
                    Token(token) => self.serve(token, event.events, &mut buf),
                }
            }
        }
    }

    /// How long `epoll_wait` may sleep: until accepting resumes while it is paused (every
    /// thread wakes for it then, and the first to see it retries), else forever.
    fn wait_timeout(&self) -> Option<Duration> {
        match self.accept_resume_ns.load() {
            0 => None,
            resume_ns => {
                let now_ns = self.os.now().as_nanos() as u64;
                Some(Duration::from_nanos(resume_ns.saturating_sub(now_ns)))
            }
        }
    }

    /// Ends the pause once its time has come: exactly one thread (the one whose swap finds
    /// the deadline) accepts what queued meanwhile, for which no new edge will come.
    fn resume_accepting(&self) {
        let resume_ns = self.accept_resume_ns.load();
        if resume_ns == 0 || (self.os.now().as_nanos() as u64) < resume_ns {
            return;
        }
        if self.accept_resume_ns.compare_exchange(resume_ns, 0).is_ok() {
            self.accept_all();
        }
    }

    /// Accepts until `EAGAIN`: the listener is edge-triggered and shared, so whichever
    /// thread hears it takes everything queued.
    fn accept_all(&self) {
        if self.accept_resume_ns.load() != 0 {
            // Paused: the thread that resumes accepting takes this edge's connections too.
            return;
        }
        loop {
            match self.os.accept(self.listener) {
                Ok((fd, _peer)) => self.adopt(fd),
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR | Errno::ECONNABORTED | Errno::ECONNRESET) => {}
                // Out of descriptors: the queued connections will raise no new edge, so
                // accepting pauses for the back-off and resumes from `epoll_wait`'s
                // timeout. Sleeping here instead would stop this thread serving the very
                // connections whose closing frees descriptors, and once every thread slept
                // here nothing would (found by swarm mode with a tight `fd_limit`).
                Err(Errno::EMFILE | Errno::ENFILE) => {
                    let resume = self.os.now() + self.accept_backoff;
                    self.accept_resume_ns
                        .store((resume.as_nanos() as u64).max(1));
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// Enters an accepted socket in the table, then registers it: an event can only name a
    /// connection the table already holds.
    fn adopt(&self, fd: Fd) {
        let conn = Arc::new(self.os.mutex(Conn {
            fd,
            outbound: Vec::new(),
            eof: false,
            read_paused: false,
            closed: false,
        }));
        let token = self.table.lock(|table| {
            let token = table.next_token;
            table.next_token += 1;
            table.conns.insert(token, conn);
            token
        });
        // Flaw `shared-no-oneshot`: registered once for everything, edge-triggered, as a
        // single-threaded loop would; several threads may then be woken for one socket.
        let interest = if self.oneshot {
            Events::IN | Events::RDHUP | Events::ET | Events::ONESHOT
        } else {
            Events::IN | Events::OUT | Events::RDHUP | Events::ET
        };
        if self
            .os
            .epoll_ctl(self.epfd, CtlOp::Add, fd, interest, Token(token))
            .is_err()
        {
            self.table.lock(|table| table.conns.remove(&token));
            let _ = self.os.close(fd);
        }
    }

    /// Handles one event for connection `token` under its lock, then re-arms it or, if it
    /// is finished, closes it and drops it from the table.
    fn serve(&self, token: u64, events: Events, buf: &mut [u8]) {
        let Some(conn) = self.table.lock(|table| table.conns.get(&token).cloned()) else {
            // Closed by another thread since the event was queued.
            return;
        };
        let finished = conn.lock(|conn| {
            if conn.closed {
                return false;
            }
            if !self.handle(conn, events, buf) || !self.rearm(conn, token) {
                self.close(conn);
                return true;
            }
            false
        });
        if finished {
            self.table.lock(|table| table.conns.remove(&token));
        }
    }

    /// Pending output, then one read and its echo. `false` when the connection is over: its
    /// peer's FIN read and everything before it echoed, or an error.
    fn handle(&self, conn: &mut Conn, events: Events, buf: &mut [u8]) -> bool {
        if !self.flush(conn) {
            return false;
        }
        let readable = events.intersects(Events::IN | Events::RDHUP | Events::HUP | Events::ERR);
        if (readable || conn.read_paused) && !conn.eof {
            if conn.outbound.len() >= self.outbound_bytes_max {
                // Bytes left unread raise no new edge: the next event (OUT, asked for while
                // output is pending) reads them.
                conn.read_paused = true;
                return true;
            }
            conn.read_paused = false;
            loop {
                match self.os.read(conn.fd, buf) {
                    Ok(0) => conn.eof = true,
                    Ok(n) => {
                        conn.outbound.extend_from_slice(&buf[..n]);
                        if !self.flush(conn) {
                            return false;
                        }
                        // A full buffer may have left bytes behind; a short read did not.
                        if n == buf.len() && conn.outbound.len() < self.outbound_bytes_max {
                            continue;
                        }
                        conn.read_paused = n == buf.len();
                    }
                    // Flaw `shared-no-oneshot`: "the event said readable, so a read that
                    // finds nothing means the peer is gone". Another thread woken for the
                    // same socket took the bytes.
                    Err(Errno::EAGAIN) if !self.oneshot => return false,
                    Err(Errno::EAGAIN) => {}
                    Err(Errno::EINTR) => continue,
                    Err(_) => return false,
                }
                break;
            }
        }
        !(conn.eof && conn.outbound.is_empty())
    }

    /// Writes pending output until it is gone or the socket is full. `false` on an error.
    fn flush(&self, conn: &mut Conn) -> bool {
        while !conn.outbound.is_empty() {
            match self.os.write(conn.fd, &conn.outbound) {
                Ok(n) => {
                    conn.outbound.drain(..n);
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Re-arms a one-shot registration for what the connection still needs: input until
    /// its FIN unless reading is paused (the re-arm would report the unread bytes at once,
    /// over and over), output while any is pending. `false` if the kernel refused.
    fn rearm(&self, conn: &mut Conn, token: u64) -> bool {
        if !self.oneshot {
            return true;
        }
        let mut interest = Events::ET | Events::ONESHOT;
        if !conn.eof && !conn.read_paused {
            interest |= Events::IN | Events::RDHUP;
        }
        if !conn.outbound.is_empty() {
            interest |= Events::OUT;
        }
        self.os
            .epoll_ctl(self.epfd, CtlOp::Mod, conn.fd, interest, Token(token))
            .is_ok()
    }

    /// Deregisters and closes the connection's socket, once.
    fn close(&self, conn: &mut Conn) {
        if conn.closed {
            return;
        }
        conn.closed = true;
        let _ = self
            .os
            .epoll_ctl(self.epfd, CtlOp::Del, conn.fd, Events::NONE, Token(0));
        let _ = self.os.close(conn.fd);
    }
}
