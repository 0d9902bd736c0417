//! One event loop: an epoll instance, its connections, its mailbox, and the turn that ties
//! them together (wait, dispatch events, run tasks, run synthetic re-reads and re-writes,
//! check timers).
//!
//! The same loop serves every topology. A serving loop owns connections and, in the
//! single-reactor and reuseport models, a listener; the main loop of the multi-reactor model
//! owns only the listener and hands sockets over (see `accept.rs`).
//!
//! Per event the order is fixed (gnet's, see reactor-notes 1.2): an error-only event closes;
//! then pending output is written; then input is read; then a read hang-up drains the socket
//! to end of file. After any change the connection is `refresh`ed: that one function decides
//! whether it closes, whether it may read (backpressure), and what its epoll interest must
//! be, so interest bookkeeping has a single source of truth (pistache R8).

use super::accept::{Handoff, Listener};
use super::config::{Flaw, ServerConfig, Trigger};
use super::conn::Slab;
use super::handler::{ConnHandle, ConnInfo, Ctx, Handler};
use super::mailbox::{Mailbox, Task};
use super::transfer::{Input, ReadLimit};
use super::worker::WorkerPool;
use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, OsAtomic, Token};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The token of the loop's eventfd.
pub(crate) const WAKER_TOKEN: Token = Token(u32::MAX as u64 - 1);
/// The token of the loop's listener.
pub(crate) const LISTENER_TOKEN: Token = Token(u32::MAX as u64);

/// Work the loop gives itself: the synthetic events that stand in for edges that will not
/// come because the loop stopped early on purpose.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Local {
    /// Continue reading a connection that hit its read budget or was unblocked.
    Read(Token),
    /// Continue writing a connection that hit its write budget.
    Write(Token),
    /// Continue accepting after the accept batch limit or a backoff.
    Accept,
}

/// One event loop and everything it owns.
pub(crate) struct Reactor<O: Os, H: Handler> {
    pub(super) os: O,
    pub(super) cfg: Arc<ServerConfig>,
    pub(super) handler: Arc<H>,
    /// This loop's index among the serving loops (`u32::MAX` for the main loop).
    pub(super) idx: u32,
    pub(super) epfd: Fd,
    pub(super) mailbox: Arc<Mailbox<O, H::State>>,
    pub(super) conns: Slab<H::State>,
    pub(super) listener: Option<Listener>,
    pub(super) handoff: Option<Handoff<O, H::State>>,
    pub(super) pool: Option<Arc<WorkerPool<O, H>>>,
    pub(super) events: Vec<EpollEvent>,
    /// Shared by every connection of the loop: the most one `read` asks for.
    pub(super) read_buffer: Vec<u8>,
    /// Scratch for handler output, reused across calls.
    pub(super) output: Vec<u8>,
    pub(super) tasks: VecDeque<Task<H::State>>,
    pub(super) local: VecDeque<Local>,
    /// Connections paused by backpressure, checked against the grace period.
    pub(super) paused: Vec<Token>,
    /// The last take from the mailbox left normal tasks behind.
    pub(super) more_tasks: bool,
    /// Flaw `close-with-dup`: duplicates left open until the loop stops.
    pub(super) leaked_dups: Vec<Fd>,
}

impl<O: Os, H: Handler> Reactor<O, H> {
    /// Creates the loop's epoll instance and registers the waker and the listener (if any).
    /// On failure nothing is left open except `listener`, which the caller still owns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        os: &O,
        cfg: Arc<ServerConfig>,
        handler: Arc<H>,
        idx: u32,
        mailbox: Arc<Mailbox<O, H::State>>,
        listener: Option<Fd>,
        handoff: Option<Handoff<O, H::State>>,
        pool: Option<Arc<WorkerPool<O, H>>>,
    ) -> Result<Reactor<O, H>, Errno> {
        let epfd = os.epoll_create()?;
        // The eventfd is level-triggered and read on every wakeup, so a wakeup is never
        // lost to a missed edge and never repeats once handled.
        let mut registered = os.epoll_ctl(
            epfd,
            CtlOp::Add,
            mailbox.waker().fd(),
            Events::IN,
            WAKER_TOKEN,
        );
        if let (Ok(()), Some(fd)) = (registered, listener) {
            registered = os.epoll_ctl(
                epfd,
                CtlOp::Add,
                fd,
                Events::IN | Events::ET,
                LISTENER_TOKEN,
            );
        }
        if let Err(errno) = registered {
            let _ = os.close(epfd);
            return Err(errno);
        }
        Ok(Reactor {
            os: os.clone(),
            read_buffer: vec![0; cfg.read_buffer_bytes],
            events: Vec::with_capacity(cfg.events_max),
            cfg,
            handler,
            idx,
            epfd,
            mailbox,
            conns: Slab::new(),
            listener: listener.map(|fd| Listener {
                fd,
                paused_until: None,
            }),
            handoff,
            pool,
            output: Vec::new(),
            tasks: VecDeque::new(),
            local: VecDeque::new(),
            paused: Vec::new(),
            more_tasks: false,
            leaked_dups: Vec::new(),
        })
    }

    pub(super) fn flaw(&self, flaw: Flaw) -> bool {
        self.cfg.has(flaw)
    }

    /// Runs turns until a `Stop` task, then closes everything the loop owns.
    pub(crate) fn run(mut self) {
        loop {
            let timeout = self.sleep_timeout();
            let mut events = std::mem::take(&mut self.events);
            match self
                .os
                .epoll_wait(self.epfd, &mut events, self.cfg.events_max, timeout)
            {
                Ok(_) | Err(Errno::EINTR) => {}
                // The loop's own epoll descriptor failing is a bug in this program, not
                // something a peer can cause.
                Err(errno) => panic!("epoll_wait on the loop's own epoll instance: {errno}"),
            }
            for event in &events {
                self.dispatch(*event);
            }
            self.events = events;
            if !self.run_tasks() {
                break;
            }
            self.run_local();
            self.tick();
        }
        self.shutdown();
    }

    /// How long the next `epoll_wait` may sleep. Resets the wake flag first and checks the
    /// mailbox after, which is what makes a concurrent push safe (see `waker.rs`).
    fn sleep_timeout(&mut self) -> Option<Duration> {
        if !self.local.is_empty() || self.more_tasks {
            return Some(Duration::ZERO);
        }
        let has_tasks = if self.flaw(Flaw::WakeFlagRace) {
            // Flaw: checking before the reset leaves a window in which a producer sees the
            // flag still set, skips the eventfd write, and its task waits for an unrelated
            // event.
            let has_tasks = self.mailbox.has_tasks();
            self.mailbox.waker().reset();
            has_tasks
        } else {
            self.mailbox.waker().reset();
            self.mailbox.has_tasks()
        };
        if has_tasks {
            return Some(Duration::ZERO);
        }
        let mut timeout: Option<Duration> = None;
        if let Some(until) = self.listener.as_ref().and_then(|l| l.paused_until) {
            timeout = Some(until.saturating_sub(self.os.now()));
        }
        if !self.paused.is_empty() {
            let tick = (self.cfg.backpressure_grace / 2).max(Duration::from_millis(1));
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        timeout
    }

    fn dispatch(&mut self, event: EpollEvent) {
        match event.token {
            WAKER_TOKEN => {
                // Flaw `eventfd-unread-lt`: the counter stays non-zero, so the level-triggered
                // registration reports it on every wait: a busy loop.
                if !self.flaw(Flaw::EventfdUnreadLt) {
                    self.mailbox.waker().drain(&self.os);
                }
            }
            LISTENER_TOKEN => self.accept_ready(),
            token => self.conn_event(token, event.events),
        }
    }

    /// The connection `token` names, matched by generation unless flaw `stale-token`.
    pub(super) fn conn_token(&mut self, token: Token) -> Option<Token> {
        let index_only = self.flaw(Flaw::StaleToken);
        self.conns.get(token, index_only).map(|conn| conn.token)
    }

    fn conn_event(&mut self, token: Token, events: Events) {
        // A stale token (its connection closed earlier in this batch) is dropped here: its
        // registration was deleted before the close, so nothing else can be pending for it.
        let Some(token) = self.conn_token(token) else {
            return;
        };
        if self.cfg.trigger == Trigger::EdgeOneshot {
            if let Some(conn) = self.conns.get(token, false) {
                conn.armed = false;
                conn.fired = events;
            }
        }
        // 1. Error or hang-up with nothing left to read: the connection is finished.
        let error_only =
            events.intersects(Events::ERR | Events::HUP) && !events.contains(Events::IN);
        if error_only {
            // Flaw `error-only-ignored`: the event is dropped as if it said nothing (no bit
            // the loop asked for), so a connection that is waiting on nothing never learns
            // that its peer is gone, and a level-triggered registration repeats it forever
            // (seastar R16; tokio R12 for a writer that only listens for OUT).
            if !self.flaw(Flaw::ErrorOnlyIgnored) {
                self.close(token);
            }
            return;
        }
        // 2. Write before read, so a full outbound buffer drains before more input adds to it.
        if events.contains(Events::OUT) {
            self.flush(token);
        }
        // 3. Read.
        if events.contains(Events::IN) {
            let limit = if self.cfg.edge() {
                ReadLimit::Budget
            } else {
                ReadLimit::Once
            };
            self.read_ready(token, limit);
        }
        // 4. The peer shut its writing half: everything before its FIN is in the receive
        // queue, so read to end of file before treating the connection as half-closed.
        if events.intersects(Events::RDHUP | Events::HUP) && self.conns.get(token, false).is_some()
        {
            if self.flaw(Flaw::RdhupDropsTail) {
                // Flaw: closing here drops whatever the peer sent just before its FIN.
                self.close(token);
                return;
            }
            self.read_ready(token, ReadLimit::ToEof);
        }
        self.refresh(token);
    }

    /// Queues a synthetic read or write once per connection.
    pub(super) fn queue_local(&mut self, local: Local) {
        let token = match local {
            Local::Read(token) | Local::Write(token) => token,
            Local::Accept => {
                self.local.push_back(local);
                return;
            }
        };
        let Some(conn) = self.conns.get(token, false) else {
            return;
        };
        let queued = match local {
            Local::Read(_) => &mut conn.reread_queued,
            _ => &mut conn.rewrite_queued,
        };
        if !*queued {
            *queued = true;
            self.local.push_back(local);
        }
    }

    /// Brings a connection in line with its state: closes it if it is finished, resumes or
    /// pauses reading, and sets its epoll interest.
    pub(super) fn refresh(&mut self, token: Token) {
        /// What `refresh` must do once it no longer borrows the connection.
        enum After {
            Nothing,
            Close,
            Reread,
            Modify(Fd, Events),
        }
        let cfg = &*self.cfg;
        let Some(conn) = self.conns.get(token, false) else {
            return;
        };
        let finished = (conn.eof || conn.closing) && conn.outbound.is_empty() && !conn.in_flight;
        let after = if finished {
            After::Close
        } else {
            if conn.overdrive && conn.outbound.len() < cfg.outbound_bytes_max {
                conn.overdrive = false;
            }
            let backpressured = !conn.overdrive && conn.outbound.len() >= cfg.outbound_bytes_max;
            if !backpressured {
                conn.paused_since = None;
            } else if conn.paused_since.is_none() {
                conn.paused_since = Some(self.os.now());
                if !conn.in_paused_list {
                    conn.in_paused_list = true;
                    self.paused.push(token);
                }
            }
            let want_read = Self::can_read(cfg, conn);
            let resume_read = want_read && conn.read_blocked;
            if resume_read {
                conn.read_blocked = false;
            }
            let want_write = !conn.outbound.is_empty();
            let read_interest = if want_read {
                Events::IN | Events::RDHUP
            } else {
                Events::NONE
            };
            match cfg.trigger {
                // Registered once for everything; only the synthetic re-read is needed,
                // because the bytes that were left behind will not raise another edge.
                Trigger::Edge if resume_read => After::Reread,
                Trigger::Edge => After::Nothing,
                Trigger::Level => {
                    let mut desired = read_interest;
                    // Flaw `lt-out-always`: EPOLLOUT kept with nothing to write reports a
                    // writable socket on every wait: a busy loop.
                    if (want_write || cfg.has(Flaw::LtOutAlways)) && !cfg.has(Flaw::NoEpollout) {
                        desired |= Events::OUT;
                    }
                    if desired != conn.interest {
                        conn.interest = desired;
                        After::Modify(conn.fd, desired)
                    } else {
                        After::Nothing
                    }
                }
                Trigger::EdgeOneshot => {
                    let mut desired = read_interest;
                    if want_write && !cfg.has(Flaw::NoEpollout) {
                        desired |= Events::OUT;
                    }
                    if !conn.armed && cfg.has(Flaw::OneshotOneDirection) {
                        // Flaw: re-arming only what fired strands the other direction (R11).
                        let mut fired = Events::NONE;
                        if conn.fired.contains(Events::IN) {
                            fired |= Events::IN | Events::RDHUP;
                        }
                        if conn.fired.contains(Events::OUT) {
                            fired |= Events::OUT;
                        }
                        desired = desired & fired;
                    }
                    // Flaw `oneshot-no-rearm`: a disarmed registration stays disarmed.
                    let rearm_allowed = !cfg.has(Flaw::OneshotNoRearm);
                    if rearm_allowed && (!conn.armed || desired != conn.interest) {
                        conn.interest = desired;
                        conn.armed = true;
                        After::Modify(conn.fd, desired | Events::ET | Events::ONESHOT)
                    } else {
                        After::Nothing
                    }
                }
            }
        };
        match after {
            After::Nothing => {}
            After::Close => self.close(token),
            After::Reread => self.queue_local(Local::Read(token)),
            After::Modify(fd, interest) => self.modify(token, fd, interest),
        }
    }

    fn modify(&mut self, token: Token, fd: Fd, interest: Events) {
        if self
            .os
            .epoll_ctl(self.epfd, CtlOp::Mod, fd, interest, token)
            .is_err()
        {
            self.close(token);
        }
    }

    /// The close protocol: out of the table, `on_close`, a bounded best-effort flush, then
    /// `EPOLL_CTL_DEL` and `close`. The handler hears of the close while the descriptor
    /// number is still ours (gnet R17), and the flush never waits (gnet R9).
    pub(super) fn close(&mut self, token: Token) {
        let Some(mut conn) = self.conns.remove(token) else {
            return;
        };
        self.mailbox.conns().fetch_sub(1);
        let info = ConnInfo {
            handle: ConnHandle {
                reactor: self.idx,
                token: conn.token,
            },
            peer: conn.peer,
        };
        self.handler.on_close(conn.state.take(), info);
        let mut flushed_bytes = 0usize;
        while !conn.outbound.is_empty() && flushed_bytes < self.cfg.close_flush_bytes_max {
            let (first, second) = conn.outbound.slices();
            match self.os.writev(conn.fd, &[first, second]) {
                Ok(n) if n > 0 => {
                    conn.outbound.consume(n);
                    flushed_bytes += n;
                }
                // Any error, EAGAIN included, ends the attempt: the peer may be gone.
                _ => break,
            }
        }
        match conn.dup {
            // Flaw `close-with-dup`: without the DEL, the registration lives on through the
            // duplicate and keeps reporting events for a closed descriptor.
            Some(dup) => self.leaked_dups.push(dup),
            None => {
                let _ = self
                    .os
                    .epoll_ctl(self.epfd, CtlOp::Del, conn.fd, Events::NONE, token);
            }
        }
        let _ = self.os.close(conn.fd);
    }

    /// Adopts an accepted socket: a slot, a registration, `on_open`.
    pub(super) fn register(&mut self, fd: Fd, peer: std::net::SocketAddr) {
        let token = self.conns.insert(fd, peer);
        let conditions = match self.cfg.trigger {
            Trigger::Level if self.flaw(Flaw::LtOutAlways) => {
                Events::IN | Events::RDHUP | Events::OUT
            }
            Trigger::Level | Trigger::EdgeOneshot => Events::IN | Events::RDHUP,
            Trigger::Edge if self.flaw(Flaw::NoEpollout) => Events::IN | Events::RDHUP,
            Trigger::Edge => Events::IN | Events::OUT | Events::RDHUP,
        };
        let modes = match self.cfg.trigger {
            Trigger::Level => Events::NONE,
            Trigger::Edge => Events::ET,
            Trigger::EdgeOneshot => Events::ET | Events::ONESHOT,
        };
        let dup = if self.flaw(Flaw::CloseWithDup) {
            self.os.dup(fd).ok()
        } else {
            None
        };
        if let Err(_errno) = self
            .os
            .epoll_ctl(self.epfd, CtlOp::Add, fd, conditions | modes, token)
        {
            self.conns.remove(token);
            self.mailbox.conns().fetch_sub(1);
            let _ = self.os.close(fd);
            if let Some(dup) = dup {
                let _ = self.os.close(dup);
            }
            return;
        }
        let Some(conn) = self.conns.get(token, false) else {
            return;
        };
        conn.interest = conditions;
        conn.armed = true;
        conn.dup = dup;
        let info = ConnInfo {
            handle: ConnHandle {
                reactor: self.idx,
                token,
            },
            peer,
        };
        let mut ctx = Ctx::new(info, &[], &mut self.output);
        let state = self.handler.on_open(&mut ctx);
        conn.closing |= ctx.wants_close();
        conn.state = Some(state);
        self.send(token);
        self.refresh(token);
    }

    /// Runs the urgent tasks and a bounded batch of normal ones; `false` on `Stop`.
    fn run_tasks(&mut self) -> bool {
        self.more_tasks = self.mailbox.take(&mut self.tasks, self.cfg.task_batch_max);
        while let Some(task) = self.tasks.pop_front() {
            match task {
                Task::Register { fd, peer } => self.register(fd, peer),
                Task::Write { handle, data } => {
                    if let Some(token) = self.conn_token(handle.token) {
                        self.output = data;
                        self.send(token);
                        self.refresh(token);
                    }
                }
                Task::Wake { handle } => {
                    if let Some(token) = self.conn_token(handle.token) {
                        self.deliver(token, Input::Inbound);
                        self.refresh(token);
                    }
                }
                Task::Close { handle } => {
                    if let Some(token) = self.conn_token(handle.token) {
                        self.close(token);
                    }
                }
                Task::Done(result) => self.job_done(*result),
                Task::Stop => return false,
            }
        }
        true
    }

    /// Runs the synthetic work queued before this turn (not what it queues itself, so a
    /// connection that keeps hitting its budget cannot starve the wait).
    fn run_local(&mut self) {
        for _ in 0..self.local.len() {
            let Some(local) = self.local.pop_front() else {
                break;
            };
            match local {
                Local::Read(token) => {
                    if let Some(conn) = self.conns.get(token, false) {
                        conn.reread_queued = false;
                        self.read_ready(token, ReadLimit::Budget);
                        self.refresh(token);
                    }
                }
                Local::Write(token) => {
                    if let Some(conn) = self.conns.get(token, false) {
                        conn.rewrite_queued = false;
                        self.flush(token);
                        self.refresh(token);
                    }
                }
                Local::Accept => self.accept_ready(),
            }
        }
    }

    /// Timers: the listener's EMFILE backoff and the backpressure grace period.
    fn tick(&mut self) {
        self.resume_listener_if_due();
        if self.paused.is_empty() {
            return;
        }
        let now = self.os.now();
        let grace = self.cfg.backpressure_grace;
        for token in std::mem::take(&mut self.paused) {
            let Some(conn) = self.conns.get(token, false) else {
                continue;
            };
            let Some(since) = conn.paused_since else {
                conn.in_paused_list = false;
                continue;
            };
            if now.saturating_sub(since) >= grace {
                // No write progress for the whole grace period: the peer may be blocked
                // writing a request it will only read the answer to afterwards (gnet R10).
                // Reading again, up to the hard limit, breaks that deadlock.
                conn.overdrive = true;
                conn.paused_since = None;
                conn.in_paused_list = false;
                self.refresh(token);
            } else {
                self.paused.push(token);
            }
        }
    }

    /// Closes every connection and descriptor the loop owns, in slot order.
    fn shutdown(&mut self) {
        for token in self.conns.tokens() {
            self.close(token);
        }
        for task in self.tasks.drain(..) {
            if let Task::Register { fd, .. } = task {
                self.mailbox.conns().fetch_sub(1);
                let _ = self.os.close(fd);
            }
        }
        let _ = self.os.epoll_ctl(
            self.epfd,
            CtlOp::Del,
            self.mailbox.waker().fd(),
            Events::NONE,
            WAKER_TOKEN,
        );
        self.dispose();
    }

    /// Closes the listener, leaked duplicates and the epoll instance (not the eventfd: the
    /// server closes it once nobody can write to it any more).
    pub(crate) fn dispose(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = self.os.epoll_ctl(
                self.epfd,
                CtlOp::Del,
                listener.fd,
                Events::NONE,
                LISTENER_TOKEN,
            );
            let _ = self.os.close(listener.fd);
        }
        for dup in self.leaked_dups.drain(..) {
            let _ = self.os.close(dup);
        }
        let _ = self.os.close(self.epfd);
    }
}
