//! One client's run: connect, send the plan's bytes within its in-flight window, check every
//! byte of the echo, and report where anything went wrong.
//!
//! The client is deliberately simple and level-triggered: it is the yardstick, not the
//! thing under test, so it must not have readiness bugs of its own.

use super::plan::{expected_byte, ClientPlan, FRAME_PREFIX_BYTES, FRAME_REPLY_BYTES};
use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, Shutdown, Token};
use crate::scenario::Pattern;
use crate::server::{fnv1a, FNV_OFFSET};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a client did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes received and checked.
    pub bytes_received: u64,
    /// Connections opened.
    pub connections: u32,
}

/// Why a client failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// A call failed where it must not.
    Io {
        /// The call.
        op: &'static str,
        /// Its errno.
        errno: Errno,
        /// Bytes received before it.
        received: u64,
    },
    /// A byte of the echo differs from the byte sent at that offset.
    Corrupt {
        /// The stream offset.
        offset: u64,
        /// The byte sent there.
        expected: u8,
        /// The byte that came back.
        got: u8,
        /// Whose bytes came back instead, if they match a stream: (client id, offset). Another
        /// client's id means another connection's data crossed over; this client's own id
        /// means its bytes came back out of order or twice.
        source: Option<(u32, u64)>,
    },
    /// A byte of the frame replies differs from the one the request called for.
    BadReply {
        /// The reply stream offset.
        offset: u64,
        /// The byte expected there (0 past the last reply, where nothing was expected).
        expected: u8,
        /// The byte that came.
        got: u8,
    },
    /// The server closed the connection before echoing everything.
    UnexpectedEof {
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        expected: u64,
    },
    /// No progress within the bound (real backend only; the simulator sees a stall itself).
    Stalled {
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        expected: u64,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io {
                op,
                errno,
                received,
            } => write!(f, "{op} failed with {errno} after {received} bytes"),
            ClientError::Corrupt {
                offset,
                expected,
                got,
                source,
            } => {
                write!(
                    f,
                    "byte {offset} of the echo is {got:#04x}, {expected:#04x} was sent"
                )?;
                match source {
                    Some((id, at)) => write!(
                        f,
                        "; the bytes from there are client{id}'s, sent at its offset {at}"
                    ),
                    None => Ok(()),
                }
            }
            ClientError::BadReply {
                offset,
                expected,
                got,
            } => write!(
                f,
                "byte {offset} of the frame replies is {got:#04x}, {expected:#04x} was expected"
            ),
            ClientError::UnexpectedEof { received, expected } => {
                write!(f, "end of file after {received} of {expected} bytes")
            }
            ClientError::Stalled { received, expected } => {
                write!(f, "no progress: {received} of {expected} bytes received")
            }
        }
    }
}

/// How long a `linger` client keeps its connection open and silent after its last echo.
/// Long enough for the driver to watch the idle server (two idle windows) while every
/// connection is still open.
pub const LINGER: Duration = Duration::from_millis(100);

/// Bytes per write call.
const WRITE_CHUNK_BYTES: usize = 16 * 1024;
/// Events per `epoll_wait`.
const EVENTS_MAX: usize = 4;
/// Sent bytes a connection keeps to compare their echo with; beyond that (deep pipelines,
/// bursts) the rest is checked against [`expected_byte`] directly.
const UNECHOED_KEPT_MAX: usize = WRITE_CHUNK_BYTES;

/// Bytes received by every client of a run, and when the last ones came: the checkers tell
/// a stall or a busy loop from slow progress with it.
///
/// It is the checker's instrument, not state the program under test shares, so it uses
/// plain atomics: counting is not a preemption point and does not change the schedule.
#[derive(Debug, Default)]
pub struct Progress {
    bytes: AtomicU64,
    last_ns: AtomicU64,
    /// Clients whose whole exchange is done and who now linger (`Pattern::Linger`).
    lingering: AtomicU64,
}

impl Progress {
    /// No progress yet.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// `bytes` more came in at `now` (the seam's clock).
    pub fn record(&self, bytes: u64, now: Duration) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_ns.store(
            now.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Bytes received so far, all clients together.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `Os::now` in ns when bytes last came in (0: never).
    pub fn last_ns(&self) -> u64 {
        self.last_ns.load(Ordering::Relaxed)
    }

    /// Clients that finished their exchange and linger. Counted apart from the bytes: a
    /// client that resends after an injected reset receives some bytes twice, so the byte
    /// count reaches the expected total while that client is still at work.
    pub fn lingering(&self) -> u64 {
        self.lingering.load(Ordering::Relaxed)
    }
}

/// Runs `plan` against its server. `progress` counts bytes received by every client of the
/// run. `stall_after` bounds a wait with no progress; `None`
/// waits forever (the simulator detects a stall when nothing can run).
pub fn run_client<O: Os>(
    os: &O,
    plan: &ClientPlan,
    progress: &Progress,
    stall_after: Option<Duration>,
) -> Result<ClientReport, ClientError> {
    let mut report = ClientReport::default();
    let mut offset = 0u64;
    let batches: Vec<&[usize]> = if plan.pattern == Pattern::Churn {
        plan.sizes.chunks(1).collect()
    } else {
        vec![&plan.sizes[..]]
    };
    for sizes in batches {
        let total: u64 = sizes.iter().map(|&s| s as u64).sum();
        let mut attempt = 0;
        let (sent, received) = loop {
            attempt += 1;
            let result = Conn::open(os, plan, offset, stall_after).and_then(|mut conn| {
                report.connections += 1;
                let result = conn.exchange(sizes, progress);
                if result.is_ok() && plan.pattern == Pattern::Linger {
                    // Silent but connected: the server has nothing to do for a while, and a
                    // correct one sleeps through it.
                    progress.lingering.fetch_add(1, Ordering::Relaxed);
                    os.sleep(LINGER);
                }
                conn.close();
                result
            });
            match result {
                Err(error)
                    if plan.retry_on_reset
                        && attempt < RESET_RETRIES_MAX
                        && reset_by_network(&error) =>
                {
                    // The network was told to reset connections: this one died of it, not of
                    // the server. Send the same bytes again on a new connection.
                    continue;
                }
                result => break result?,
            }
        };
        report.bytes_sent += sent;
        report.bytes_received += received;
        offset += total;
    }
    Ok(report)
}

/// Connections a client opens for one batch when the network resets them on purpose. A
/// reset fault that fires on one write in three still lets a batch through with
/// probability 1 - (1/3)^32; fewer attempts made swarm mode's reset draws fail correct
/// servers.
const RESET_RETRIES_MAX: u32 = 32;

/// Whether `error` is what a reset connection looks like to a client.
fn reset_by_network(error: &ClientError) -> bool {
    match error {
        ClientError::Io { errno, .. } => {
            // A reset socket answers `shutdown` with ENOTCONN (`inet_shutdown` on TCP_CLOSE).
            [
                Errno::ECONNRESET,
                Errno::EPIPE,
                Errno::ECONNABORTED,
                Errno::ENOTCONN,
            ]
            .contains(errno)
        }
        ClientError::UnexpectedEof { .. } => true,
        _ => false,
    }
}

/// Client ids searched for the owner of unexpected bytes.
const SOURCE_IDS_MAX: u32 = 64;
/// Stream offsets searched for the owner of unexpected bytes.
const SOURCE_OFFSETS_MAX: u64 = 256 * 1024;
/// Bytes that must match for a stream to count as their source.
const SOURCE_MATCH_BYTES: usize = 16;

/// Whose stream `bytes` (an unexpected echo, at least [`SOURCE_MATCH_BYTES`] long) come from:
/// the first (client id, offset) whose bytes they all equal. Run only on a failure, so the
/// search may be slow; 16 bytes make a chance match unlikely (2^-128 per candidate).
fn stream_source(bytes: &[u8]) -> Option<(u32, u64)> {
    let bytes = bytes.get(..SOURCE_MATCH_BYTES)?;
    (0..SOURCE_IDS_MAX).find_map(|id| {
        (0..SOURCE_OFFSETS_MAX)
            .find(|&at| {
                bytes
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| expected_byte(id, at + i as u64) == b)
            })
            .map(|at| (id, at))
    })
}

/// Fills `out` with the bytes client `id` sends from stream offset `start` on.
fn fill_expected(id: u32, start: u64, out: &mut [u8]) {
    for (offset, byte) in (start..).zip(out.iter_mut()) {
        *byte = expected_byte(id, offset);
    }
}

/// The index of the first byte of `bytes` that differs from what client `id` sent at stream
/// offset `start` and on, if any. The common case, an intact echo, is checked without an
/// early exit (a fold of differences), which the compiler turns into a tight loop; only a
/// failed check walks the bytes again to find the first difference.
fn first_unexpected(id: u32, start: u64, bytes: &[u8]) -> Option<usize> {
    let differences = (start..).zip(bytes).fold(0u8, |acc, (offset, &got)| {
        acc | (got ^ expected_byte(id, offset))
    });
    if differences == 0 {
        return None;
    }
    (start..)
        .zip(bytes)
        .position(|(offset, &got)| got != expected_byte(id, offset))
}

/// Whether `queue` begins with `bytes` (`queue` holding at least as many).
fn starts_with(queue: &VecDeque<u8>, bytes: &[u8]) -> bool {
    let (front, back) = queue.as_slices();
    let from_front = front.len().min(bytes.len());
    front[..from_front] == bytes[..from_front]
        && back[..bytes.len() - from_front] == bytes[from_front..]
}

/// Attempts of a client call that fails with `EMFILE` before the error is reported.
/// With [`EMFILE_RETRY_WAIT`] between them, a client waits up to a minute: a server that
/// serves one connection at a time with slow handlers takes seconds per client (a bound of
/// one second failed correct servers in swarm mode's tight descriptor limits).
const EMFILE_RETRIES_MAX: u32 = 6_000;
/// How long a client waits before it asks for a descriptor again.
const EMFILE_RETRY_WAIT: Duration = Duration::from_millis(10);

/// Runs `call`, waiting a while and trying again while it fails with `EMFILE`, and
/// trying again at once when it was interrupted (`EINTR`: nothing happened). In the
/// simulator the clients share the server's descriptor table (`[sim] fd_limit`), but they
/// stand for peers in other processes: a full table is the server's problem, so a client
/// waits for a descriptor instead of failing.
fn retry_transient<O: Os, T>(
    os: &O,
    mut call: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut attempt = 0;
    loop {
        match call() {
            Err(Errno::EMFILE) if attempt < EMFILE_RETRIES_MAX => {
                attempt += 1;
                os.sleep(EMFILE_RETRY_WAIT);
            }
            Err(Errno::EINTR) => {}
            result => return result,
        }
    }
}

/// The two byte streams of one batch: where each message ends on the way out and where
/// its reply ends on the way back. An echo's reply is its request; a frame's request is the
/// body behind a length prefix, and its reply is [`FRAME_REPLY_BYTES`] bytes computed here.
struct Wire {
    /// Request stream offset (from the connection's first byte) at which message i ends.
    send_ends: Vec<u64>,
    /// `None` for an echo.
    frames: Option<Frames>,
}

/// What the frame protocol adds to a batch.
struct Frames {
    /// Each message's body length.
    sizes: Vec<u32>,
    /// Where each body starts in the client's byte numbering (the one [`expected_byte`]
    /// takes, shared with the echo), so frames and echoes send the same body bytes.
    body_starts: Vec<u64>,
    /// Every reply byte of the batch, in order.
    replies: Vec<u8>,
}

impl Wire {
    /// The streams of `sizes`, sent by client `id` with its bodies numbered from `base`.
    fn new(id: u32, base: u64, sizes: &[usize], frames: bool) -> Wire {
        let prefix = if frames { FRAME_PREFIX_BYTES as u64 } else { 0 };
        let send_ends = sizes
            .iter()
            .scan(0u64, |acc, &s| {
                *acc += prefix + s as u64;
                Some(*acc)
            })
            .collect();
        let frames = frames.then(|| {
            let body_starts: Vec<u64> = sizes
                .iter()
                .scan(base, |acc, &s| {
                    let start = *acc;
                    *acc += s as u64;
                    Some(start)
                })
                .collect();
            let mut replies = Vec::with_capacity(sizes.len() * FRAME_REPLY_BYTES);
            let mut body = [0u8; 4096];
            for (&size, &start) in sizes.iter().zip(&body_starts) {
                let mut hash = FNV_OFFSET;
                let mut at = 0usize;
                while at < size {
                    let n = (size - at).min(body.len());
                    fill_expected(id, start + at as u64, &mut body[..n]);
                    hash = fnv1a(hash, &body[..n]);
                    at += n;
                }
                replies.extend_from_slice(&12u32.to_be_bytes());
                replies.extend_from_slice(&(size as u32).to_be_bytes());
                replies.extend_from_slice(&hash.to_be_bytes());
            }
            Frames {
                sizes: sizes.iter().map(|&s| s as u32).collect(),
                body_starts,
                replies,
            }
        });
        Wire { send_ends, frames }
    }

    /// Request bytes of the whole batch.
    fn send_total(&self) -> u64 {
        self.send_ends.last().copied().unwrap_or(0)
    }

    /// Reply bytes of the whole batch.
    fn reply_total(&self) -> u64 {
        match &self.frames {
            Some(frames) => frames.replies.len() as u64,
            None => self.send_total(),
        }
    }

    /// Reply stream offset at which message `i`'s reply ends.
    fn reply_end(&self, i: usize) -> u64 {
        match &self.frames {
            Some(_) => ((i + 1) * FRAME_REPLY_BYTES) as u64,
            None => self.send_ends[i],
        }
    }

    /// Fills `out` with the request bytes from request offset `start` on, for client `id`
    /// whose bodies are numbered from `base`.
    fn fill(&self, id: u32, base: u64, start: u64, out: &mut [u8]) {
        let Some(frames) = &self.frames else {
            fill_expected(id, base + start, out);
            return;
        };
        let mut message = self.send_ends.partition_point(|&end| end <= start);
        for (offset, byte) in (start..).zip(out.iter_mut()) {
            while self.send_ends[message] <= offset {
                message += 1;
            }
            let size = frames.sizes[message];
            let request_start =
                self.send_ends[message] - FRAME_PREFIX_BYTES as u64 - u64::from(size);
            let at = offset - request_start;
            *byte = if at < FRAME_PREFIX_BYTES as u64 {
                size.to_be_bytes()[at as usize]
            } else {
                expected_byte(
                    id,
                    frames.body_starts[message] + at - FRAME_PREFIX_BYTES as u64,
                )
            };
        }
    }
}

struct Conn<'a, O: Os> {
    os: &'a O,
    plan: &'a ClientPlan,
    fd: Fd,
    epfd: Fd,
    /// Stream offset of this connection's first byte.
    base: u64,
    sent: u64,
    received: u64,
    stall_after: Option<Duration>,
    events: Vec<EpollEvent>,
    buf: Vec<u8>,
    /// The bytes sent and not yet echoed, from offset `received` on (a prefix of them when
    /// they outgrew [`UNECHOED_KEPT_MAX`]): the echo is compared with them, so that a byte's
    /// expected value is computed once, when it is sent, instead of twice.
    unechoed: VecDeque<u8>,
    /// Set once `reset` closed the socket, so `close` does not close it again.
    fd_closed: bool,
}

impl<'a, O: Os> Conn<'a, O> {
    fn open(
        os: &'a O,
        plan: &'a ClientPlan,
        base: u64,
        stall_after: Option<Duration>,
    ) -> Result<Conn<'a, O>, ClientError> {
        let io = |op, errno| ClientError::Io {
            op,
            errno,
            received: 0,
        };
        // The epoll instance first: once connected, the client needs no other descriptor.
        // In the simulator the clients share the server's descriptor table; a client that
        // connected and then waited for an epoll descriptor would look idle to a server
        // with idle deadlines, which would rightly close it.
        let epfd = retry_transient(os, || os.epoll_create()).map_err(|e| io("epoll_create", e))?;
        let fd = match retry_transient(os, || os.connect(plan.addr)) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = os.close(epfd);
                return Err(io("connect", e));
            }
        };
        let mut conn = Conn {
            os,
            plan,
            fd,
            epfd,
            base,
            sent: 0,
            received: 0,
            stall_after,
            events: Vec::with_capacity(EVENTS_MAX),
            buf: vec![0; WRITE_CHUNK_BYTES.max(plan.read_chunk_bytes)],
            unechoed: VecDeque::new(),
            fd_closed: false,
        };
        let interest = Events::IN | Events::OUT | Events::RDHUP;
        if let Err(e) = os.epoll_ctl(epfd, CtlOp::Add, fd, interest, Token(0)) {
            conn.close();
            return Err(io("epoll_ctl", e));
        }
        // A non-blocking connect completes when the socket turns writable (or fails).
        if let Err(e) = conn.wait().and_then(|_| conn.connect_result()) {
            conn.close();
            return Err(e);
        }
        Ok(conn)
    }

    fn connect_result(&self) -> Result<(), ClientError> {
        match self.os.take_error(self.fd) {
            Ok(None) => Ok(()),
            Ok(Some(errno)) | Err(errno) => Err(self.io("connect", errno)),
        }
    }

    fn io(&self, op: &'static str, errno: Errno) -> ClientError {
        ClientError::Io {
            op,
            errno,
            received: self.received,
        }
    }

    fn close(&mut self) {
        // Both descriptors are ours; a failure here would be a bug in the client.
        let _ = self.os.close(self.epfd);
        if !self.fd_closed {
            let _ = self.os.close(self.fd);
        }
    }

    /// Waits for any event; returns its bits.
    fn wait(&mut self) -> Result<Events, ClientError> {
        loop {
            match self
                .os
                .epoll_wait(self.epfd, &mut self.events, EVENTS_MAX, self.stall_after)
            {
                Ok(0) => {
                    return Err(ClientError::Stalled {
                        received: self.received,
                        expected: self.plan.reply_bytes() as u64,
                    })
                }
                Ok(_) => {
                    let mut bits = Events::NONE;
                    for event in &self.events {
                        bits |= event.events;
                    }
                    return Ok(bits);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.io("epoll_wait", e)),
            }
        }
    }

    fn set_interest(&self, want_out: bool) -> Result<(), ClientError> {
        let mut interest = Events::IN | Events::RDHUP;
        if want_out {
            interest |= Events::OUT;
        }
        self.os
            .epoll_ctl(self.epfd, CtlOp::Mod, self.fd, interest, Token(0))
            .map_err(|e| self.io("epoll_ctl", e))
    }

    /// Sends `sizes` and checks their echo (or their frame replies); returns (sent,
    /// received).
    fn exchange(
        &mut self,
        sizes: &[usize],
        progress: &Progress,
    ) -> Result<(u64, u64), ClientError> {
        let wire = Wire::new(self.plan.id, self.base, sizes, self.plan.frames);
        let (total, reply_total) = (wire.send_total(), wire.reply_total());
        let half_close = self.plan.pattern == Pattern::HalfClose;
        // Both end with the server's end of file: after the shutdown, or after the server's
        // idle deadline closed the silent connection.
        let wait_eof = half_close || self.plan.pattern == Pattern::Idle;
        let reset_at = (self.plan.pattern == Pattern::Reset).then_some(total / 2);
        let mut write_blocked = false;
        let mut out_registered = true;
        let mut shut = false;
        // Messages echoed in full; `received` only grows, so the count only moves forward.
        let mut completed = 0;
        loop {
            let messages = wire.send_ends.len();
            while completed < messages && wire.reply_end(completed) <= self.received {
                completed += 1;
            }
            let window_end = completed.saturating_add(self.plan.depth).min(messages);
            let send_limit = if window_end == 0 {
                0
            } else {
                wire.send_ends[window_end - 1]
            };
            while self.sent < send_limit && !write_blocked {
                if reset_at.is_some_and(|at| self.sent >= at) {
                    return self.reset();
                }
                let mut limit = send_limit;
                if let Some(at) = reset_at {
                    limit = limit.min(at.max(self.sent + 1));
                }
                let n = ((limit - self.sent) as usize).min(WRITE_CHUNK_BYTES);
                wire.fill(self.plan.id, self.base, self.sent, &mut self.buf[..n]);
                match self.os.write(self.fd, &self.buf[..n]) {
                    Ok(written) => {
                        let kept_to = self.received + self.unechoed.len() as u64;
                        if wire.frames.is_none()
                            && kept_to == self.sent
                            && self.unechoed.len() + written <= UNECHOED_KEPT_MAX
                        {
                            self.unechoed.extend(&self.buf[..written]);
                        }
                        self.sent += written as u64;
                    }
                    Err(Errno::EAGAIN) => write_blocked = true,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(self.io("write", e)),
                }
            }
            if reset_at.is_some_and(|at| self.sent >= at) {
                return self.reset();
            }
            if half_close && !shut && self.sent == total {
                self.os
                    .shutdown(self.fd, Shutdown::Write)
                    .map_err(|e| self.io("shutdown", e))?;
                shut = true;
            }
            let received_before = self.received;
            let eof = self.read_available(&wire, progress)?;
            if eof {
                if wait_eof && self.received == reply_total {
                    return Ok((self.sent, self.received));
                }
                return Err(ClientError::UnexpectedEof {
                    received: self.received,
                    expected: reply_total,
                });
            }
            if self.received == reply_total && !wait_eof {
                return Ok((self.sent, self.received));
            }
            if self.received != received_before && self.sent < total {
                // The echo completed messages: the window moved, so send before waiting.
                continue;
            }
            // Level-triggered: ask for OUT only while a write is blocked, or the socket,
            // always writable, would wake us for nothing.
            if write_blocked != out_registered {
                self.set_interest(write_blocked)?;
                out_registered = write_blocked;
            }
            let bits = self.wait()?;
            if bits.intersects(Events::OUT | Events::ERR | Events::HUP) {
                write_blocked = false;
            }
        }
    }

    /// Reads until EAGAIN (a slow reader: one small read); checks every byte. Returns whether
    /// the server closed its side.
    fn read_available(&mut self, wire: &Wire, progress: &Progress) -> Result<bool, ClientError> {
        let chunk = self.plan.read_chunk_bytes;
        loop {
            match self.os.read(self.fd, &mut self.buf[..chunk]) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    match &wire.frames {
                        Some(frames) => self.check_replies(&frames.replies, n)?,
                        None => self.check_echo(n)?,
                    }
                    self.received += n as u64;
                    progress.record(n as u64, self.os.now());
                    if self.plan.pattern == Pattern::SlowReader {
                        return Ok(false);
                    }
                }
                Err(Errno::EAGAIN) => return Ok(false),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.io("read", e)),
            }
        }
    }

    /// Compares the `n` bytes just read with the bytes sent at their offsets, and lets go of
    /// the kept copies they matched.
    fn check_echo(&mut self, n: usize) -> Result<(), ClientError> {
        let start = self.base + self.received;
        // The kept bytes are the expected ones, so a difference anywhere is found again, and
        // located, by the full check that runs only then.
        let kept = self.unechoed.len().min(n);
        let intact = starts_with(&self.unechoed, &self.buf[..kept])
            && first_unexpected(self.plan.id, start + kept as u64, &self.buf[kept..n]).is_none();
        let first_bad = if intact {
            None
        } else {
            first_unexpected(self.plan.id, start, &self.buf[..n])
        };
        if let Some(i) = first_bad {
            let offset = start + i as u64;
            return Err(ClientError::Corrupt {
                offset,
                expected: expected_byte(self.plan.id, offset),
                got: self.buf[i],
                source: stream_source(&self.buf[i..n]),
            });
        }
        if self.received + n as u64 > self.sent {
            // More came back than was sent: a duplicate the byte check missed.
            return Err(ClientError::Corrupt {
                offset: self.base + self.sent,
                expected: 0,
                got: self.buf[0],
                source: None,
            });
        }
        self.unechoed.drain(..kept);
        Ok(())
    }

    /// Compares the `n` bytes just read with the expected frame replies.
    fn check_replies(&self, replies: &[u8], n: usize) -> Result<(), ClientError> {
        let at = self.received as usize;
        let got = &self.buf[..n];
        let expected = replies.get(at..at + n).unwrap_or(&[]);
        let first_bad = got
            .iter()
            .zip(expected)
            .position(|(g, e)| g != e)
            .or((expected.len() < n).then_some(expected.len()));
        match first_bad {
            None => Ok(()),
            Some(i) => Err(ClientError::BadReply {
                offset: (at + i) as u64,
                expected: expected.get(i).copied().unwrap_or(0),
                got: got[i],
            }),
        }
    }

    /// The reset pattern: abort the connection midway; the server must cope.
    fn reset(&mut self) -> Result<(u64, u64), ClientError> {
        let sent = self.sent;
        let received = self.received;
        self.fd_closed = true;
        self.os.reset(self.fd).map_err(|e| self.io("reset", e))?;
        Ok((sent, received))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ConnHandle, ConnInfo, Ctx, FrameHandler, Handler};

    /// The frame requests a client sends, fed to the frame handler in pieces of every size,
    /// give exactly the replies the client expects.
    #[test]
    fn frame_requests_through_the_frame_handler_give_the_expected_replies() {
        let sizes = [1, 3, 4, 5, 4096, 5000, 70_000];
        let wire = Wire::new(3, 1000, &sizes, true);
        let frames = wire.frames.as_ref().expect("frames");
        let mut requests = vec![0u8; wire.send_total() as usize];
        // Filled in uneven pieces, as writes go out.
        let mut at = 0;
        for piece in [1usize, 2, 7, 4093, 100_000].iter().cycle() {
            if at == requests.len() {
                break;
            }
            let end = (at + piece).min(requests.len());
            wire.fill(3, 1000, at as u64, &mut requests[at..end]);
            at = end;
        }
        for piece in [1usize, 5, 4099] {
            let info = ConnInfo {
                handle: ConnHandle {
                    reactor: 0,
                    token: Token(0),
                },
                peer: "127.0.0.1:1".parse().expect("an address"),
            };
            let mut output = Vec::new();
            let mut state = FrameHandler.on_open(&mut Ctx::new(info, &[], &mut output));
            for chunk in requests.chunks(piece) {
                let mut ctx = Ctx::new(info, chunk, &mut output);
                FrameHandler.on_traffic(&mut state, &mut ctx);
                assert_eq!(ctx.consumed(), chunk.len());
            }
            assert_eq!(output, frames.replies, "pieces of {piece}");
        }
        assert_eq!(wire.reply_total(), (sizes.len() * FRAME_REPLY_BYTES) as u64);
        // The bodies are the bytes an echo client sends from the same numbering.
        let body = &requests[FRAME_PREFIX_BYTES..FRAME_PREFIX_BYTES + 1];
        assert_eq!(body, [expected_byte(3, 1000)]);
        assert_eq!(requests[..4], 1u32.to_be_bytes());
    }
}
