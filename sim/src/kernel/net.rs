//! The simulated loopback wire and the kernel's random draws.
//!
//! A TCP transmission is a [`Segment`] (data, FIN or RST). With `latency_ns_max == 0`
//! (conformance mode) it is delivered inside the sender's call, as loopback's softirq does
//! in practice. Otherwise it arrives at `now + draw(0..=latency_ns_max)`, never before an
//! earlier segment of the same direction, and [`Kernel::advance`] delivers it.
//!
//! Every draw comes from the kernel's ChaCha8 stream. A fault whose probability is zero
//! draws nothing, so that conformance runs do not depend on the stream.

use std::cmp::Ordering;
use std::collections::VecDeque;

use rand_core::Rng;

use super::stream::SockRef;
use super::Kernel;

/// What a segment carries.
#[derive(Debug)]
pub(super) enum Payload {
    Data(Vec<u8>),
    Fin,
    Rst,
    /// The acknowledgement of a FIN (the only ACK the model sends on its own: its arrival
    /// changes the sender's state and wakes it). A delayed one is void if the acknowledging
    /// socket's own segment carried the ACK first.
    FinAck {
        delayed: bool,
    },
}

/// A segment in flight from one socket to its peer.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) from: SockRef,
    pub(super) to: SockRef,
    pub(super) payload: Payload,
}

/// A segment on the wire, with the key that orders deliveries: due time, then send order
/// (`serial`, unique per kernel, so no two keys are equal).
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) due_ns: u64,
    serial: u64,
    segment: Segment,
}

impl InFlight {
    fn key(&self) -> (u64, u64) {
        (self.due_ns, self.serial)
    }
}

/// Reversed, so that `BinaryHeap`, a max-heap, has the earliest key on top.
impl Ord for InFlight {
    fn cmp(&self, other: &InFlight) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &InFlight) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for InFlight {
    fn eq(&self, other: &InFlight) -> bool {
        self.key() == other.key()
    }
}

impl Eq for InFlight {}

impl Kernel {
    /// Whether a fault of probability `p` fires; draws only when `p > 0`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits give a uniform float in [0, 1).
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// A uniform draw in `0..=max`.
    pub(super) fn draw_upto(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        match max.checked_add(1) {
            Some(bound) => self.rng.next_u64() % bound,
            None => self.rng.next_u64(),
        }
    }

    /// How many of `want` bytes a read returns under the short-read fault.
    ///
    /// Linux never returns less than is queued from a non-blocking stream socket or a pipe:
    /// `tcp_recvmsg_locked` and `pipe_read` copy until the buffer is full or the queue is
    /// empty (a reader that finds the backlog non-empty processes it and copies on). What a
    /// reader does meet is a queue that held only part of the data because the rest was
    /// still on its way, and then the rest's arrival wakes the file again. So a fired fault
    /// is the read of a queue the rest had not reached yet: the file is woken as for an
    /// arrival right after the read ([`Kernel::rest_arrives`]). Code that takes a short read
    /// for "drained" (tokio, epoll(7) Q9) is right under this model, as it is on Linux;
    /// code that stops before EAGAIN with more queued than it read is still caught.
    pub(super) fn short_read(&mut self, want: usize) -> usize {
        if want > 1 && self.chance(self.cfg.faults.short_read) {
            self.short_read_fired = true;
            1 + self.draw_upto(want as u64 - 2) as usize
        } else {
            want
        }
    }

    /// How many of `want` bytes a write accepts under the short-write fault, never fewer
    /// than `floor`.
    ///
    /// Linux cuts a non-blocking write short only when the send buffer fills, and no send
    /// buffer is smaller than `SOCK_MIN_SNDBUF`: what fits in that much, less what is
    /// already queued, always goes (the callers pass it as `floor`). So a fired fault is a
    /// send buffer fuller than the configuration says, as autotuning and memory pressure
    /// make it; a 13-byte greeting on a fresh socket is never cut, as on Linux.
    pub(super) fn short_write(&mut self, want: usize, floor: usize) -> usize {
        let floor = floor.clamp(1, want.max(1));
        if want > floor && self.chance(self.cfg.faults.short_write) {
            floor + self.draw_upto((want - floor - 1) as u64) as usize
        } else {
            want
        }
    }

    /// A payload buffer holding the first `count` bytes of `queue`, which leave it; from
    /// the pool when one is there.
    pub(super) fn buffer_from_front(&mut self, queue: &mut VecDeque<u8>, count: usize) -> Vec<u8> {
        let mut buffer = self.buffer_pool.pop().unwrap_or_default();
        buffer.clear();
        let (front, back) = queue.as_slices();
        let from_front = front.len().min(count);
        buffer.extend_from_slice(&front[..from_front]);
        buffer.extend_from_slice(&back[..count - from_front]);
        queue.drain(..count);
        buffer
    }

    /// Puts `segment` on the wire: delivered now in conformance mode, else queued behind the
    /// sender's previous segment.
    pub(super) fn transmit(&mut self, segment: Segment) {
        if self.cfg.latency_ns_max == 0 {
            self.deliver(segment);
            return;
        }
        let delay = self.draw_upto(self.cfg.latency_ns_max);
        let mut due_ns = self.now_ns.saturating_add(delay);
        if let Some(sock) = self.sock_get_mut(segment.from) {
            due_ns = due_ns.max(sock.last_due_ns);
            sock.last_due_ns = due_ns;
        }
        self.schedule(due_ns, segment);
    }

    /// Queues `segment` for delivery at `due_ns` exactly (a kernel timer).
    pub(super) fn schedule(&mut self, due_ns: u64, segment: Segment) {
        let serial = self.segment_serial_next;
        self.segment_serial_next += 1;
        self.net.push(InFlight {
            due_ns,
            serial,
            segment,
        });
    }

    /// Delivers every segment due by `now_ns`, in (due time, send order) order.
    pub(super) fn net_advance(&mut self, now_ns: u64) {
        if now_ns > self.now_ns {
            self.now_ns = now_ns;
        }
        while self
            .net
            .peek()
            .is_some_and(|next| next.due_ns <= self.now_ns)
        {
            let segment = self.net.pop().expect("a segment is due").segment;
            self.deliver(segment);
        }
    }

    /// Hands a delivered data buffer back to the pool.
    pub(super) fn recycle(&mut self, buffer: Vec<u8>) {
        if self.buffer_pool.len() < 64 {
            self.buffer_pool.push(buffer);
        }
    }
}

/// Moves the first `out.len()` bytes of `queue` into `out`.
///
/// Byte copies dominated the simulator's profile when they went through the ring buffer's
/// iterators one byte at a time; this copies each contiguous half of the ring as one slice,
/// and removing bytes from the front of a `VecDeque<u8>` only moves its head.
pub(super) fn take_front(queue: &mut VecDeque<u8>, out: &mut [u8]) {
    let count = out.len();
    let (front, back) = queue.as_slices();
    let from_front = front.len().min(count);
    out[..from_front].copy_from_slice(&front[..from_front]);
    out[from_front..].copy_from_slice(&back[..count - from_front]);
    queue.drain(..count);
}

/// Appends bytes `start..start + count` of the concatenation of `bufs` to `queue`, one
/// slice copy per buffer touched (a gathered write queued in pieces).
pub(super) fn extend_from_bufs(
    queue: &mut VecDeque<u8>,
    bufs: &[&[u8]],
    start: usize,
    count: usize,
) {
    let mut skip = start;
    let mut left = count;
    for buf in bufs {
        if left == 0 {
            break;
        }
        if skip >= buf.len() {
            skip -= buf.len();
            continue;
        }
        let take = (buf.len() - skip).min(left);
        queue.extend(&buf[skip..skip + take]);
        skip = 0;
        left -= take;
    }
}
