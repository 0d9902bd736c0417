//! One client's run: connect, send the plan's bytes within its in-flight window, check every
//! byte of the echo, and report where anything went wrong.
//!
//! The client is deliberately simple and level-triggered: it is the yardstick, not the
//! thing under test, so it must not have readiness bugs of its own.

use super::plan::{expected_byte, ClientPlan};
use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, Shutdown, Token};
use crate::scenario::Pattern;
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
                let result = conn.exchange(sizes, total, progress);
                if result.is_ok() && plan.pattern == Pattern::Linger {
                    // Silent but connected: the server has nothing to do for a while, and a
                    // correct one sleeps through it.
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

/// Connections a client opens for one batch when the network resets them on purpose.
const RESET_RETRIES_MAX: u32 = 8;

/// Whether `error` is what a reset connection looks like to a client.
fn reset_by_network(error: &ClientError) -> bool {
    match error {
        ClientError::Io { errno, .. } => {
            [Errno::ECONNRESET, Errno::EPIPE, Errno::ECONNABORTED].contains(errno)
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
const EMFILE_RETRIES_MAX: u32 = 1_000;

/// Runs `call`, waiting a millisecond and trying again while it fails with `EMFILE`. In the
/// simulator the clients share the server's descriptor table (`[sim] fd_limit`), but they
/// stand for peers in other processes: a full table is the server's problem, so a client
/// waits for a descriptor instead of failing.
fn retry_emfile<O: Os, T>(os: &O, mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    let mut attempt = 0;
    loop {
        match call() {
            Err(Errno::EMFILE) if attempt < EMFILE_RETRIES_MAX => {
                attempt += 1;
                os.sleep(Duration::from_millis(1));
            }
            result => return result,
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
        let fd = retry_emfile(os, || os.connect(plan.addr)).map_err(|e| io("connect", e))?;
        let epfd = match retry_emfile(os, || os.epoll_create()) {
            Ok(epfd) => epfd,
            Err(e) => {
                let _ = os.close(fd);
                return Err(io("epoll_create", e));
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
                        expected: self.plan.total_bytes() as u64,
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

    /// Sends `sizes` and checks their echo; returns (sent, received).
    fn exchange(
        &mut self,
        sizes: &[usize],
        total: u64,
        progress: &Progress,
    ) -> Result<(u64, u64), ClientError> {
        let half_close = self.plan.pattern == Pattern::HalfClose;
        // Both end with the server's end of file: after the shutdown, or after the server's
        // idle deadline closed the silent connection.
        let wait_eof = half_close || self.plan.pattern == Pattern::Idle;
        let reset_at = (self.plan.pattern == Pattern::Reset).then_some(total / 2);
        // Prefix sums: the stream offset at which message i ends.
        let ends: Vec<u64> = sizes
            .iter()
            .scan(0u64, |acc, &s| {
                *acc += s as u64;
                Some(*acc)
            })
            .collect();
        let mut write_blocked = false;
        let mut out_registered = true;
        let mut shut = false;
        // Messages echoed in full; `received` only grows, so the count only moves forward.
        let mut completed = 0;
        loop {
            while completed < ends.len() && ends[completed] <= self.received {
                completed += 1;
            }
            let window_end = completed.saturating_add(self.plan.depth).min(ends.len());
            let send_limit = if window_end == 0 {
                0
            } else {
                ends[window_end - 1]
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
                fill_expected(self.plan.id, self.base + self.sent, &mut self.buf[..n]);
                match self.os.write(self.fd, &self.buf[..n]) {
                    Ok(written) => {
                        let kept_to = self.received + self.unechoed.len() as u64;
                        if kept_to == self.sent
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
            let eof = self.read_available(progress)?;
            if eof {
                if wait_eof && self.received == total {
                    return Ok((self.sent, self.received));
                }
                return Err(ClientError::UnexpectedEof {
                    received: self.received,
                    expected: total,
                });
            }
            if self.received == total && !wait_eof {
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
    fn read_available(&mut self, progress: &Progress) -> Result<bool, ClientError> {
        let chunk = self.plan.read_chunk_bytes;
        loop {
            match self.os.read(self.fd, &mut self.buf[..chunk]) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    let start = self.base + self.received;
                    // The kept bytes are the expected ones, so a difference anywhere is found
                    // again, and located, by the full check that runs only then.
                    let kept = self.unechoed.len().min(n);
                    let intact = starts_with(&self.unechoed, &self.buf[..kept])
                        && first_unexpected(self.plan.id, start + kept as u64, &self.buf[kept..n])
                            .is_none();
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

    /// The reset pattern: abort the connection midway; the server must cope.
    fn reset(&mut self) -> Result<(u64, u64), ClientError> {
        let sent = self.sent;
        let received = self.received;
        self.fd_closed = true;
        self.os.reset(self.fd).map_err(|e| self.io("reset", e))?;
        Ok((sent, received))
    }
}
