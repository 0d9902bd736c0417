//! Moving bytes for one loop: reading until `EAGAIN` or a budget, handing input to the
//! handler (inline or as a worker job), and writing output straight away or from the
//! outbound ring.
//!
//! These are the paths where edge-triggered bugs live, so every early stop says what stands
//! in for the edge that will not come: a synthetic re-read or re-write queued on the loop,
//! `refresh` resuming a read that backpressure paused, or `EAGAIN`, after which the kernel
//! does report the next edge.

use super::config::{Flaw, ServerConfig};
use super::conn::Conn;
use super::handler::{ConnHandle, ConnInfo, Ctx, Handler};
use super::mailbox::WorkerResult;
use super::reactor::{Local, Reactor};
use super::worker::Job;
use crate::os::{Errno, Os, Token};

/// How far one read pass may go.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum ReadLimit {
    /// One `read` call (level mode: the event repeats while bytes remain).
    Once,
    /// Until `EAGAIN` or the byte budget (edge modes).
    Budget,
    /// Until end of file (after a read hang-up: the byte count is finite).
    ToEof,
}

/// Where a handler's input comes from.
pub(super) enum Input {
    /// The first `n` bytes of the loop's read buffer (the connection had nothing pending).
    ReadBuffer(usize),
    /// The connection's inbound buffer.
    Inbound,
}

impl<O: Os, H: Handler> Reactor<O, H> {
    /// Whether the connection may read now: not at end of file or closing, inbound not
    /// full, outbound under the backpressure limit (or the hard limit in overdrive).
    pub(super) fn can_read(cfg: &ServerConfig, conn: &Conn<H::State>) -> bool {
        let outbound_ok = conn.outbound.len() < cfg.outbound_bytes_max
            || (conn.overdrive && conn.outbound.len() < cfg.outbound_hard_bytes_max);
        !conn.eof && !conn.closing && conn.inbound.len() < cfg.inbound_bytes_max && outbound_ok
    }

    pub(super) fn read_ready(&mut self, token: Token, limit: ReadLimit) {
        let mut total_bytes = 0usize;
        let mut n_reads = 0usize;
        loop {
            let Some(conn) = self.conns.get(token, false) else {
                return;
            };
            if conn.eof {
                return;
            }
            if !Self::can_read(&self.cfg, conn) {
                // No edge will come for bytes already queued; `refresh` resumes the read
                // when the reason goes away.
                conn.read_blocked = true;
                return;
            }
            let fd = conn.fd;
            match self.os.read(fd, &mut self.read_buffer) {
                Ok(0) => {
                    // Flaw `eof-ignored`: end of file taken for "nothing yet": a level loop
                    // spins on the readable socket, an edge loop never closes it.
                    if !self.cfg.has(Flaw::EofIgnored) {
                        conn.eof = true;
                    }
                    return;
                }
                Ok(n) => {
                    total_bytes += n;
                    n_reads += 1;
                    self.deliver(token, Input::ReadBuffer(n));
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.close(token);
                    return;
                }
            }
            match limit {
                ReadLimit::Once => return,
                // Flaw `read-once`: stops with bytes possibly left and no edge to come.
                ReadLimit::Budget if self.flaw(Flaw::ReadOnce) => return,
                ReadLimit::Budget
                    if total_bytes >= self.cfg.read_budget_bytes
                        || n_reads >= self.cfg.reads_per_turn_max =>
                {
                    // Fairness: other connections get their turn, and the synthetic re-read
                    // stands in for the edge that will not come (netty R1, gnet PR 599).
                    if !self.flaw(Flaw::BudgetNoRequeue) {
                        self.queue_local(Local::Read(token));
                    }
                    return;
                }
                _ => {}
            }
        }
    }

    /// Hands new input to the handler: inline, or as a worker job.
    pub(super) fn deliver(&mut self, token: Token, input: Input) {
        let Some(conn) = self.conns.get(token, false) else {
            return;
        };
        if let Some(pool) = &self.pool {
            if let Input::ReadBuffer(n) = input {
                conn.inbound.extend(&self.read_buffer[..n]);
            }
            if conn.in_flight {
                conn.dirty = true;
            } else if let Some(job) = Self::make_job(self.idx, conn) {
                pool.submit(job);
            }
            return;
        }
        let Some(mut state) = conn.state.take() else {
            return;
        };
        let info = ConnInfo {
            handle: ConnHandle {
                reactor: self.idx,
                token: conn.token,
            },
            peer: conn.peer,
        };
        if let Input::ReadBuffer(n) = input {
            if !conn.inbound.is_empty() {
                conn.inbound.extend(&self.read_buffer[..n]);
            }
        }
        let data: &[u8] = match input {
            Input::ReadBuffer(n) if conn.inbound.is_empty() => &self.read_buffer[..n],
            _ => conn.inbound.data(),
        };
        let mut ctx = Ctx::new(info, data, &mut self.output);
        self.handler.on_traffic(&mut state, &mut ctx);
        let (consumed, close) = (ctx.consumed(), ctx.wants_close());
        let offered = data.len();
        match input {
            Input::ReadBuffer(n) if conn.inbound.is_empty() => {
                conn.inbound.extend(&self.read_buffer[consumed..n]);
            }
            _ => conn.inbound.consume(consumed),
        }
        conn.state = Some(state);
        conn.closing |= close;
        // A handler that takes nothing from a full inbound buffer can never progress.
        let stuck =
            consumed == 0 && offered > 0 && conn.inbound.len() >= self.cfg.inbound_bytes_max;
        self.send(token);
        if stuck {
            self.close(token);
        }
    }

    /// A job with a copy of the connection's input and its state, or `None` if a worker
    /// already holds the state.
    fn make_job(idx: u32, conn: &mut Conn<H::State>) -> Option<Job<H::State>> {
        let state = conn.state.take()?;
        let mut input = std::mem::take(&mut conn.job_buffer);
        input.clear();
        input.extend_from_slice(conn.inbound.data());
        conn.in_flight = true;
        conn.dirty = false;
        Some(Job {
            info: ConnInfo {
                handle: ConnHandle {
                    reactor: idx,
                    token: conn.token,
                },
                peer: conn.peer,
            },
            state,
            input,
        })
    }

    /// Sends the handler output in `self.output`: straight to the socket when nothing is
    /// queued before it, the rest appended to the outbound buffer.
    pub(super) fn send(&mut self, token: Token) {
        if self.output.is_empty() {
            return;
        }
        let Some(conn) = self.conns.get(token, false) else {
            self.output.clear();
            return;
        };
        let mut offset = 0;
        if conn.outbound.is_empty() {
            while offset < self.output.len() {
                match self.os.write(conn.fd, &self.output[offset..]) {
                    Ok(n) => offset += n,
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => continue,
                    Err(_) => {
                        self.output.clear();
                        self.close(token);
                        return;
                    }
                }
            }
        }
        conn.outbound.push(&self.output[offset..]);
        self.output.clear();
    }

    /// Writes pending output until `EAGAIN`, empty, or the write budget.
    pub(super) fn flush(&mut self, token: Token) {
        let mut total_bytes = 0usize;
        loop {
            let Some(conn) = self.conns.get(token, false) else {
                return;
            };
            if conn.outbound.is_empty() {
                return;
            }
            let (first, second) = conn.outbound.slices();
            let written = if second.is_empty() {
                self.os.write(conn.fd, first)
            } else {
                self.os.writev(conn.fd, &[first, second])
            };
            match written {
                Ok(n) => {
                    conn.outbound.consume(n);
                    total_bytes += n;
                    if conn.paused_since.is_some() && n > 0 {
                        // Progress: the grace period against deadlock starts over.
                        conn.paused_since = Some(self.os.now());
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.close(token);
                    return;
                }
            }
            if conn.outbound.is_empty() {
                return;
            }
            // Flaw `out-once`: one write per writable edge; under edge triggering the rest
            // waits for an edge that only comes if the peer frees more space.
            if self.flaw(Flaw::OutOnce) {
                return;
            }
            if total_bytes >= self.cfg.write_budget_bytes {
                // Level mode keeps EPOLLOUT interest, so the event repeats by itself; edge
                // mode must re-queue the write or wait for an edge that may never come.
                if self.cfg.edge() && !self.flaw(Flaw::BudgetNoRequeue) {
                    self.queue_local(Local::Write(token));
                }
                return;
            }
        }
    }

    /// A worker's result comes home: state back, input consumed, output sent, and the
    /// next job started if input arrived meanwhile.
    pub(super) fn job_done(&mut self, result: WorkerResult<H::State>) {
        let WorkerResult {
            handle,
            state,
            input,
            consumed,
            output,
            close,
        } = result;
        let Some(token) = self.conn_token(handle.token) else {
            return;
        };
        let Some(conn) = self.conns.get(token, false) else {
            return;
        };
        conn.in_flight = false;
        conn.state = Some(state);
        conn.inbound.consume(consumed);
        conn.job_buffer = input;
        conn.closing |= close;
        let stuck =
            consumed == 0 && !conn.dirty && conn.inbound.len() >= self.cfg.inbound_bytes_max;
        let again = conn.dirty && !conn.closing;
        self.output = output;
        self.send(token);
        if stuck {
            self.close(token);
            return;
        }
        if again {
            if let (Some(pool), Some(conn)) = (&self.pool, self.conns.get(token, false)) {
                if let Some(job) = Self::make_job(self.idx, conn) {
                    pool.submit(job);
                }
            }
        }
        self.refresh(token);
    }
}
