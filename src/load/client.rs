//! One load thread: an edge-triggered epoll loop over its share of the connections, keeping
//! up to `pipeline` messages in flight on each and checking every echoed byte.

use super::histogram::Histogram;
use super::pattern::Pattern;
use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, Token};
use std::net::SocketAddr;
use std::time::Duration;

/// Events taken per `epoll_wait`.
const EVENTS_MAX: usize = 256;
/// One read call's buffer, shared by the thread's connections.
const READ_BUF_BYTES: usize = 64 * 1024;
/// The longest `epoll_wait`, so the deadline is noticed even when nothing moves.
const WAIT_SLICE_MAX: Duration = Duration::from_millis(20);
/// A message still unanswered this long at the end of the run is a stall (an error), not
/// a slow reply: loopback echoes take microseconds, and even a descheduled server thread on
/// a busy machine is back within a few scheduler slices. A server that misses an
/// edge-triggered wakeup never answers, and would otherwise only look slow. Runs shorter
/// than this cannot see stalls.
pub const STALL_MIN: Duration = Duration::from_secs(1);

/// What one thread is asked to do.
pub struct ThreadPlan {
    /// The echo server.
    pub addr: SocketAddr,
    /// Global connection numbers this thread owns (they pick the message pattern).
    pub conn_ids: std::ops::Range<u64>,
    /// Messages in flight per connection (1 = pingpong).
    pub pipeline: usize,
    /// When to stop, on the `Os` clock.
    pub deadline: Duration,
}

/// What one thread measured.
pub struct ThreadReport {
    /// Messages echoed intact.
    pub messages_ok: u64,
    /// Corrupt messages, failed or refused connections, early closes, unsolicited bytes,
    /// stalled connections.
    pub errors: u64,
    /// The first error, described from the client's point of view.
    pub first_error: Option<String>,
    /// Send-to-last-byte-back latency of every intact message.
    pub latency: Histogram,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum ConnState {
    Connecting,
    Open,
    Dead,
}

struct Conn {
    fd: Fd,
    conn_id: u64,
    state: ConnState,
    /// The message being written, and how many of its bytes the socket took.
    send_seq: u64,
    send_offset: usize,
    /// The message being read back, how many of its bytes came, and whether any differed.
    recv_seq: u64,
    recv_offset: usize,
    recv_corrupt: bool,
    /// When each in-flight message's first byte was written, indexed by `seq % pipeline`.
    sent_at: Vec<Duration>,
}

impl Conn {
    fn bytes_sent(&self, size: usize) -> u64 {
        self.send_seq * size as u64 + self.send_offset as u64
    }

    fn bytes_received(&self, size: usize) -> u64 {
        self.recv_seq * size as u64 + self.recv_offset as u64
    }
}

/// The thread's working state; every buffer is allocated once, before the clock starts.
struct Client<'a, O: Os> {
    os: &'a O,
    pattern: &'a Pattern,
    pipeline: usize,
    conns: Vec<Conn>,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    report: ThreadReport,
}

/// Runs one load thread to its deadline and closes its descriptors.
pub fn run_thread<O: Os>(os: &O, pattern: &Pattern, plan: &ThreadPlan) -> ThreadReport {
    let mut client = Client {
        os,
        pattern,
        pipeline: plan.pipeline,
        conns: Vec::with_capacity(plan.conn_ids.clone().count()),
        read_buf: vec![0; READ_BUF_BYTES],
        write_buf: Vec::with_capacity(plan.pipeline * pattern.size()),
        report: ThreadReport {
            messages_ok: 0,
            errors: 0,
            first_error: None,
            latency: Histogram::new(),
        },
    };
    match os.epoll_create() {
        Ok(epfd) => {
            client.connect_all(epfd, plan);
            client.run(epfd, plan.deadline);
            let _ = os.close(epfd);
        }
        Err(errno) => client.error(format!("epoll_create: {errno}")),
    }
    for conn in &client.conns {
        let _ = os.close(conn.fd);
    }
    client.report
}

impl<O: Os> Client<'_, O> {
    fn error(&mut self, description: String) {
        self.report.errors += 1;
        if self.report.first_error.is_none() {
            self.report.first_error = Some(description);
        }
    }

    fn connect_all(&mut self, epfd: Fd, plan: &ThreadPlan) {
        for conn_id in plan.conn_ids.clone() {
            let fd = match self.os.connect(plan.addr) {
                Ok(fd) => fd,
                Err(errno) => {
                    self.error(format!("conn {conn_id}: connect to {}: {errno}", plan.addr));
                    continue;
                }
            };
            // Edge-triggered for both directions: every read drains to EAGAIN and every
            // write goes on until the window is full or the socket is.
            let interest = Events::IN | Events::OUT | Events::RDHUP | Events::ET;
            let token = Token(self.conns.len() as u64);
            if let Err(errno) = self.os.epoll_ctl(epfd, CtlOp::Add, fd, interest, token) {
                self.error(format!("conn {conn_id}: epoll_ctl add: {errno}"));
                let _ = self.os.close(fd);
                continue;
            }
            self.conns.push(Conn {
                fd,
                conn_id,
                state: ConnState::Connecting,
                send_seq: 0,
                send_offset: 0,
                recv_seq: 0,
                recv_offset: 0,
                recv_corrupt: false,
                sent_at: vec![Duration::ZERO; self.pipeline],
            });
        }
    }

    fn run(&mut self, epfd: Fd, deadline: Duration) {
        let mut events: Vec<EpollEvent> = Vec::with_capacity(EVENTS_MAX);
        loop {
            let now = self.os.now();
            if now >= deadline {
                self.count_stalls(now);
                return;
            }
            if self.conns.iter().all(|c| c.state == ConnState::Dead) {
                return;
            }
            let timeout = (deadline - now).min(WAIT_SLICE_MAX);
            match self
                .os
                .epoll_wait(epfd, &mut events, EVENTS_MAX, Some(timeout))
            {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    self.error(format!("epoll_wait: {errno}"));
                    return;
                }
            }
            for event in &events {
                self.handle(event.token.0 as usize, event.events);
            }
        }
    }

    fn handle(&mut self, conn_idx: usize, events: Events) {
        let conn_id = self.conns[conn_idx].conn_id;
        if self.conns[conn_idx].state == ConnState::Connecting {
            match self.os.take_error(self.conns[conn_idx].fd) {
                Ok(None) if events.contains(Events::OUT) => {
                    self.conns[conn_idx].state = ConnState::Open;
                }
                // Not writable and no error yet: the handshake is still running.
                Ok(None) => return,
                Ok(Some(errno)) | Err(errno) => {
                    self.kill(conn_idx, format!("conn {conn_id}: connect: {errno}"));
                    return;
                }
            }
        }
        if self.conns[conn_idx].state != ConnState::Open {
            return;
        }
        if events.contains(Events::ERR) {
            let errno = self.os.take_error(self.conns[conn_idx].fd);
            self.kill(conn_idx, format!("conn {conn_id}: socket error {errno:?}"));
            return;
        }
        // Reads first: they open the window that the writes then fill. The reported
        // conditions are the socket's state when the event was collected, so an event
        // without IN, HUP or RDHUP has nothing to read. A stale event costs one EAGAIN.
        let readable = events.intersects(Events::IN | Events::HUP | Events::RDHUP);
        if !readable || self.drain_reads(conn_idx) {
            self.pump_writes(conn_idx);
        }
    }

    /// Counts every open connection whose oldest unanswered message has waited
    /// [`STALL_MIN`] or longer as one error.
    fn count_stalls(&mut self, now: Duration) {
        let size = self.pattern.size();
        for conn_idx in 0..self.conns.len() {
            let conn = &self.conns[conn_idx];
            if conn.state != ConnState::Open || conn.bytes_sent(size) == conn.bytes_received(size) {
                continue;
            }
            let sent_at = conn.sent_at[(conn.recv_seq % self.pipeline as u64) as usize];
            let waited = now.saturating_sub(sent_at);
            if waited >= STALL_MIN {
                let description = format!(
                    "conn {}: stall: message {} unanswered for {} ms, {} of its bytes back",
                    conn.conn_id,
                    conn.recv_seq,
                    waited.as_millis(),
                    conn.recv_offset
                );
                self.error(description);
            }
        }
    }

    /// Marks a connection dead, counting one error. Its descriptor is closed at the end.
    fn kill(&mut self, conn_idx: usize, description: String) {
        self.conns[conn_idx].state = ConnState::Dead;
        self.error(description);
    }

    /// Reads until EAGAIN, checking every byte against the pattern. False when the
    /// connection died.
    fn drain_reads(&mut self, conn_idx: usize) -> bool {
        let size = self.pattern.size();
        loop {
            let fd = self.conns[conn_idx].fd;
            let n_read = match self.os.read(fd, &mut self.read_buf) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return true,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    let conn_id = self.conns[conn_idx].conn_id;
                    self.kill(conn_idx, format!("conn {conn_id}: read: {errno}"));
                    return false;
                }
            };
            let conn = &self.conns[conn_idx];
            if n_read == 0 {
                let description = format!(
                    "conn {}: server closed the connection with {} bytes still owed",
                    conn.conn_id,
                    conn.bytes_sent(size) - conn.bytes_received(size)
                );
                self.kill(conn_idx, description);
                return false;
            }
            let owed = conn.bytes_sent(size) - conn.bytes_received(size);
            if n_read as u64 > owed {
                let description = format!(
                    "conn {}: {} bytes arrived that were never sent",
                    conn.conn_id,
                    n_read as u64 - owed
                );
                self.kill(conn_idx, description);
                return false;
            }
            // One clock read per read call: every message completed by this chunk arrived
            // at the same moment as far as the client can tell.
            let now = self.os.now();
            self.check_chunk(conn_idx, n_read, now);
        }
    }

    /// Checks `read_buf[..n_read]` against the messages it continues.
    fn check_chunk(&mut self, conn_idx: usize, n_read: usize, now: Duration) {
        let size = self.pattern.size();
        let mut chunk_offset = 0;
        while chunk_offset < n_read {
            let conn = &mut self.conns[conn_idx];
            let expected = &self.pattern.message(conn.conn_id, conn.recv_seq)[conn.recv_offset..];
            let take = expected.len().min(n_read - chunk_offset);
            if self.read_buf[chunk_offset..chunk_offset + take] != expected[..take] {
                conn.recv_corrupt = true;
            }
            chunk_offset += take;
            conn.recv_offset += take;
            if conn.recv_offset < size {
                continue;
            }
            let seq = conn.recv_seq;
            let corrupt = conn.recv_corrupt;
            let sent_at = conn.sent_at[(seq % self.pipeline as u64) as usize];
            conn.recv_seq += 1;
            conn.recv_offset = 0;
            conn.recv_corrupt = false;
            if corrupt {
                let conn_id = conn.conn_id;
                self.error(format!("conn {conn_id}: message {seq} came back altered"));
            } else {
                self.report.messages_ok += 1;
                self.report
                    .latency
                    .record(now.saturating_sub(sent_at).as_nanos() as u64);
            }
        }
    }

    /// Writes the unsent rest of the window: until `pipeline` messages are in flight or the
    /// socket takes no more.
    fn pump_writes(&mut self, conn_idx: usize) {
        let size = self.pattern.size();
        loop {
            let conn = &self.conns[conn_idx];
            self.write_buf.clear();
            let mut seq = conn.send_seq;
            let mut offset = conn.send_offset;
            while seq - conn.recv_seq < self.pipeline as u64 {
                let message = self.pattern.message(conn.conn_id, seq);
                self.write_buf.extend_from_slice(&message[offset..]);
                seq += 1;
                offset = 0;
            }
            if self.write_buf.is_empty() {
                return;
            }
            let now = self.os.now();
            let n_written = match self.os.write(conn.fd, &self.write_buf) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    let conn_id = conn.conn_id;
                    self.kill(conn_idx, format!("conn {conn_id}: write: {errno}"));
                    return;
                }
            };
            let offered = self.write_buf.len();
            let conn = &mut self.conns[conn_idx];
            let mut left = n_written;
            while left > 0 {
                if conn.send_offset == 0 {
                    conn.sent_at[(conn.send_seq % self.pipeline as u64) as usize] = now;
                }
                let take = left.min(size - conn.send_offset);
                conn.send_offset += take;
                left -= take;
                if conn.send_offset == size {
                    conn.send_seq += 1;
                    conn.send_offset = 0;
                }
            }
            if n_written < offered {
                // The socket is full; its next OUT edge resumes the window.
                return;
            }
        }
    }
}
