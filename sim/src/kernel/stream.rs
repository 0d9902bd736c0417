//! Stream sockets: TCP over loopback and AF_UNIX socketpairs, with Linux's buffer
//! accounting, wakeups and per-state errno (epoll-semantics.md sections 2, 4.3, 4.4 and 5).
//!
//! TCP (net/ipv4/tcp*.c, net/core/stream.c):
//! * Written bytes go straight into the peer's receive buffer while it has room (on
//!   loopback they are acknowledged at once); the rest waits in the sender's queue (`snd`,
//!   counted by SIOCOUTQ) up to the send buffer. The peer's reads pull queued bytes across.
//! * Every arriving segment calls `sk_data_ready` (an IN wakeup), whether or not the buffer
//!   was empty (E01). Write space wakes OUT only if a write hit the full buffer or a poll
//!   found the socket unwritable (SOCK_NOSPACE), and only once free space is at least half of
//!   what is queued (`__sk_stream_is_writeable`); so ACKs of a queue that was never full give
//!   no OUT edge (E14).
//! * FIN: `tcp_fin` sets RCV_SHUTDOWN and SOCK_DONE and calls `sk_state_change` (a wakeup
//!   with no key), then `sk_data_ready`. RST: `tcp_reset` sets `sk_err` by state
//!   (SYN_SENT: ECONNREFUSED, CLOSE_WAIT: EPIPE, else ECONNRESET), purges the send queue,
//!   `tcp_done` (state CLOSE, both directions shut, `sk_state_change`), then
//!   `sk_error_report` (an ERR wakeup). Unread received data survives an RST (E22).
//! * `close` with unread received data, or with SO_LINGER {1, 0}, sends RST instead of FIN;
//!   data arriving at a closed socket is answered with RST (E21, E22).
//!
//! AF_UNIX stream (net/unix/af_unix.c):
//! * Each `write` is cut into skbs of at most 36 544 bytes (`SKB_MAX_HEAD(0) +
//!   UNIX_SKB_FRAGS_SZ`), each charged to the sender's `sk_wmem_alloc` at its truesize (the
//!   length plus about 767 bytes, fitted to E19) until the reader consumes it. A write may
//!   start while less than the send buffer is charged. Every consumed skb calls
//!   `unix_write_space`, which wakes OUT whenever at most a quarter of the send buffer is
//!   charged, so the peer's reads give OUT edges although the buffer was never full (E14).
//! * Closing one end shuts both directions of the other (`SHUTDOWN_MASK`) and sets
//!   ECONNRESET on it if the closer left data unread.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};

use super::coverage::{hit, Case};
use super::epoll::{ERR, HUP, IN, KEY_ALL, OUT, PRI, RDHUP};
use super::fdtable::Obj;
use super::net::{extend_from_bufs, take_front, Payload, Segment};
use super::{Errno, KResult, Kernel};

/// `RCV_SHUTDOWN`.
pub(super) const RCV_SHUTDOWN: u8 = 1;
/// `SEND_SHUTDOWN`.
pub(super) const SEND_SHUTDOWN: u8 = 2;
/// `SHUTDOWN_MASK`.
pub(super) const SHUTDOWN_MASK: u8 = 3;
/// The key of `sk_data_ready` (`sock_def_readable`): IN|PRI|RDNORM|RDBAND.
const KEY_DATA: u32 = IN | PRI;
/// `SOCK_MIN_SNDBUF` (include/net/sock.h): twice `TCP_SKB_MIN_TRUESIZE`, 2048 bytes of data
/// plus an aligned `sk_buff`, on x86_64. No send buffer is smaller, so a write of what fits
/// in this much beyond the queued bytes always goes whole.
const SOCK_MIN_SNDBUF: usize = 4608;
/// The largest skb a unix stream write builds (`SKB_MAX_HEAD(0) + UNIX_SKB_FRAGS_SZ`).
const UNIX_SKB_BYTES_MAX: usize = 36_544;
/// `SKB_MAX_HEAD(0)`: the most payload an skb keeps in its linear head when it is built
/// for a page (`PAGE_SIZE` less the aligned `skb_shared_info`).
const SKB_MAX_HEAD_BYTES: usize = PAGE_BYTES - SKB_SHINFO_BYTES;
/// `PAGE_SIZE`.
const PAGE_BYTES: usize = 4096;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86_64.
const SKB_SHINFO_BYTES: usize = 320;
/// `SKB_DATA_ALIGN(sizeof(struct sk_buff))` on x86_64.
const SKB_STRUCT_BYTES: usize = 256;
/// The smallest kmalloc size class an skb head gets here.
const SKB_HEAD_SLAB_MIN_BYTES: usize = 512;
/// How long the receiver of a FIN takes to acknowledge it when it has nothing to send.
/// Measured on loopback: the FIN's sender sees the ACK's state change 0.6 to 4 ms after
/// `shutdown`, most often between 1 and 2 ms; real runs of one script differ in which later
/// `epoll_wait` shows it. The ACK's arrival wakes the sender once more (FIN_WAIT1 ->
/// FIN_WAIT2 calls `sk_state_change`), which an ET registration reports as a second event;
/// until then SIOCOUTQ counts the FIN as one byte.
const FIN_ACK_DELAY_NS: u64 = 1_500_000;
/// A window wide enough for anything: a closed peer "accepts" data only to answer RST.
const WINDOW_UNLIMITED: usize = usize::MAX / 4;

/// A socket id with the generation it had, so that a stale reference (a segment in flight
/// to a socket that was freed and reused) is recognised.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct SockRef {
    pub(super) id: u32,
    pub(super) generation: u32,
}

/// The protocol of a stream socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Proto {
    Tcp,
    Unix,
}

/// The part of the TCP state machine the model needs. Half-closes are `shutdown` bits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// The SYN waits for room in a full accept queue.
    SynSent,
    /// Connected (including the FIN_WAIT, CLOSE_WAIT and LAST_ACK variants).
    Established,
    /// Reset, refused, or never connected (`TCP_CLOSE`).
    Closed,
}

/// A stream socket.
#[derive(Debug)]
pub(super) struct Sock {
    pub(super) generation: u32,
    pub(super) live: bool,
    pub(super) proto: Proto,
    pub(super) state: State,
    /// Its open file description; `None` before `accept` and after `close` (an orphan).
    pub(super) file: Option<u32>,
    pub(super) peer: Option<SockRef>,
    /// Received, unread bytes.
    pub(super) rcv: VecDeque<u8>,
    /// Unix: the skbs holding `rcv`, as (unread length, truesize charged to the sender).
    rcv_skbs: VecDeque<(usize, usize)>,
    /// TCP receive buffer size.
    rcv_cap: usize,
    /// TCP: bytes read since this socket last advertised its window. Reads under
    /// RCV_SHUTDOWN send no window update, so the peer still counts them as occupying the
    /// window until this socket's next segment (see [`Kernel::tcp_push`]).
    unadvertised_read_bytes: usize,
    /// `sk_shutdown` bits.
    pub(super) shutdown: u8,
    /// `SOCK_DONE`: the peer's FIN arrived.
    pub(super) done: bool,
    /// `sk_err`, 0 when none.
    pub(super) err: Errno,
    /// TCP: written bytes not yet sent (waiting for the peer's window).
    pub(super) snd: VecDeque<u8>,
    /// TCP: bytes sent and not yet delivered (latency > 0 only).
    pub(super) in_flight: usize,
    /// Send buffer size.
    snd_cap: usize,
    /// TCP: `shutdown(SHUT_WR)` or `close` asked for a FIN after the queued data.
    fin_pending: bool,
    /// TCP: the FIN left.
    pub(super) fin_sent: bool,
    /// TCP: our FIN was acknowledged (until then SIOCOUTQ counts it as one byte).
    fin_acked: bool,
    /// TCP: the peer's FIN arrived and its ACK waits for a timer or for our next segment.
    pub(super) ack_pending: bool,
    /// Unix: truesize of this socket's skbs still in the peer's receive queue.
    pub(super) wmem: usize,
    /// `SOCK_NOSPACE`: a write or a poll found no room; the next write-space event wakes.
    nospace: bool,
    /// SO_LINGER {1, 0}: close sends RST.
    linger_zero: bool,
    /// The user closed it (`SOCK_DEAD`); it lingers only to flush or to be reset.
    pub(super) dead: bool,
    /// An RST arrived (for the checkers).
    pub(super) reset_seen: bool,
    /// TCP: the listener whose queue holds it (SYN or accept queue).
    pub(super) listener: Option<u32>,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    /// Delivery time of its last segment in flight: later segments never overtake it.
    pub(super) last_due_ns: u64,
}

impl Sock {
    /// `__sk_stream_is_writeable` for TCP (free space at least half of what is queued),
    /// `unix_writable` for unix (at most a quarter of the send buffer charged).
    fn writeable(&self) -> bool {
        match self.proto {
            Proto::Tcp => {
                let queued = self.snd.len() + self.in_flight;
                self.snd_cap.saturating_sub(queued) >= queued / 2 && queued <= self.snd_cap
            }
            Proto::Unix => (self.wmem + 1) * 4 <= self.snd_cap,
        }
    }

    /// Whether a window update from the peer would make this socket send something: queued
    /// bytes, a FIN, a window it owes the peer, or the ACK of the peer's FIN.
    pub(super) fn may_transmit(&self) -> bool {
        !self.snd.is_empty()
            || (self.fin_pending && !self.fin_sent)
            || self.unadvertised_read_bytes > 0
            || self.ack_pending
    }

    /// Takes the pending error (`sock_error`).
    fn take_err(&mut self) -> Option<Errno> {
        match std::mem::take(&mut self.err) {
            0 => None,
            e => Some(e),
        }
    }
}

/// The unspecified address (unix sockets, sockets not yet bound).
pub(super) const ADDR_NONE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Kernel {
    pub(super) fn sock(&self, s: u32) -> &Sock {
        let sock = &self.socks[s as usize];
        debug_assert!(sock.live);
        sock
    }

    pub(super) fn sock_mut(&mut self, s: u32) -> &mut Sock {
        let sock = &mut self.socks[s as usize];
        debug_assert!(sock.live);
        sock
    }

    pub(super) fn sock_ref(&self, s: u32) -> SockRef {
        SockRef {
            id: s,
            generation: self.sock(s).generation,
        }
    }

    /// The socket `r` names, if it still exists.
    pub(super) fn sock_get(&self, r: SockRef) -> Option<&Sock> {
        self.socks
            .get(r.id as usize)
            .filter(|s| s.live && s.generation == r.generation)
    }

    pub(super) fn sock_get_mut(&mut self, r: SockRef) -> Option<&mut Sock> {
        self.socks
            .get_mut(r.id as usize)
            .filter(|s| s.live && s.generation == r.generation)
    }

    fn sock_alive(&self, r: SockRef) -> bool {
        self.sock_get(r).is_some()
    }

    /// A new socket, connected to nothing yet.
    pub(super) fn sock_new(&mut self, proto: Proto, local: SocketAddr, remote: SocketAddr) -> u32 {
        self.structure_changed();
        let (rcv_cap, snd_cap) = match proto {
            Proto::Tcp => (self.cfg.tcp_rcvbuf_bytes, self.cfg.tcp_sndbuf_bytes),
            Proto::Unix => (usize::MAX, self.cfg.unix_sndbuf_bytes),
        };
        let id = self.free_socks.pop();
        let generation = id.map_or(0, |id| self.socks[id as usize].generation.wrapping_add(1));
        let sock = Sock {
            generation,
            live: true,
            proto,
            state: State::Established,
            file: None,
            peer: None,
            rcv: VecDeque::new(),
            rcv_skbs: VecDeque::new(),
            rcv_cap,
            unadvertised_read_bytes: 0,
            shutdown: 0,
            done: false,
            err: 0,
            snd: VecDeque::new(),
            in_flight: 0,
            snd_cap,
            fin_pending: false,
            fin_sent: false,
            fin_acked: false,
            ack_pending: false,
            wmem: 0,
            nospace: false,
            linger_zero: false,
            dead: false,
            reset_seen: false,
            listener: None,
            local,
            remote,
            last_due_ns: 0,
        };
        match id {
            Some(id) => {
                self.socks[id as usize] = sock;
                id
            }
            None => {
                self.socks.push(sock);
                (self.socks.len() - 1) as u32
            }
        }
    }

    /// Frees a socket slot. Its peer, if any, keeps a stale reference that no longer
    /// resolves (the connection's other half is "gone").
    pub(super) fn sock_free(&mut self, s: u32) {
        self.structure_changed();
        let sock = self.sock_mut(s);
        sock.live = false;
        sock.rcv = VecDeque::new();
        sock.rcv_skbs = VecDeque::new();
        sock.snd = VecDeque::new();
        sock.file = None;
        self.free_socks.push(s);
    }

    /// Gives socket `s` a descriptor.
    pub(super) fn sock_attach(&mut self, s: u32) -> KResult<i32> {
        let file = self.file_new(Obj::Sock(s));
        self.sock_mut(s).file = Some(file);
        self.fd_install(file)
    }

    pub(super) fn unix_pair(&mut self) -> KResult<(i32, i32)> {
        self.fd_room(2)?;
        let a = self.sock_new(Proto::Unix, ADDR_NONE, ADDR_NONE);
        let b = self.sock_new(Proto::Unix, ADDR_NONE, ADDR_NONE);
        self.sock_mut(a).peer = Some(self.sock_ref(b));
        self.sock_mut(b).peer = Some(self.sock_ref(a));
        let fa = self.sock_attach(a)?;
        let fb = self.sock_attach(b)?;
        Ok((fa, fb))
    }

    fn wake_sock(&mut self, s: u32, key: u32) {
        if let Some(file) = self.sock(s).file {
            self.wake(file, key);
        }
    }

    // ---- poll ----

    /// `tcp_poll` / `unix_poll` without side effects.
    pub(super) fn sock_mask(&self, s: u32) -> u32 {
        let sock = self.sock(s);
        let mut mask = 0;
        match sock.proto {
            Proto::Tcp => {
                if sock.shutdown == SHUTDOWN_MASK || sock.state == State::Closed {
                    mask |= HUP;
                }
                if sock.shutdown & RCV_SHUTDOWN != 0 {
                    mask |= IN | RDHUP;
                }
                if sock.state != State::SynSent {
                    if !sock.rcv.is_empty() {
                        mask |= IN;
                    }
                    if sock.shutdown & SEND_SHUTDOWN != 0 || sock.writeable() {
                        mask |= OUT;
                    }
                }
            }
            Proto::Unix => {
                if sock.shutdown == SHUTDOWN_MASK {
                    mask |= HUP;
                }
                if sock.shutdown & RCV_SHUTDOWN != 0 {
                    mask |= IN | RDHUP;
                }
                if !sock.rcv.is_empty() {
                    mask |= IN;
                }
                if sock.writeable() {
                    mask |= OUT;
                }
            }
        }
        if sock.err != 0 {
            mask |= ERR;
        }
        mask
    }

    /// `tcp_poll` with its side effect: a socket found unwritable gets SOCK_NOSPACE, so the
    /// next write-space event wakes OUT.
    pub(super) fn sock_poll(&mut self, s: u32) -> u32 {
        let mask = self.sock_mask(s);
        let sock = self.sock_mut(s);
        if sock.proto == Proto::Tcp
            && sock.state != State::SynSent
            && sock.shutdown & SEND_SHUTDOWN == 0
            && mask & OUT == 0
        {
            sock.nospace = true;
        }
        mask
    }

    // ---- read ----

    pub(super) fn sock_read(&mut self, s: u32, buf: &mut [u8]) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.sock(s).rcv.is_empty() {
            let want = self.sock(s).rcv.len().min(buf.len());
            let count = self.short_read(want);
            let sock = self.sock_mut(s);
            take_front(&mut sock.rcv, &mut buf[..count]);
            if !sock.rcv.is_empty() {
                hit(Case::PartialReadBeforeWait);
            }
            match sock.proto {
                Proto::Tcp => self.tcp_window_opened(s, count),
                Proto::Unix => self.unix_consumed(s, count),
            }
            return Ok(count);
        }
        let sock = self.sock_mut(s);
        match sock.proto {
            // `tcp_recvmsg`: SOCK_DONE, then the pending error, then RCV_SHUTDOWN, then a
            // socket that never connected.
            Proto::Tcp => {
                if sock.done {
                    return Ok(0);
                }
                if let Some(e) = sock.take_err() {
                    return Err(e);
                }
                if sock.shutdown & RCV_SHUTDOWN != 0 {
                    return Ok(0);
                }
                if sock.state == State::Closed {
                    return Err(libc::ENOTCONN);
                }
                Err(libc::EAGAIN)
            }
            // `unix_stream_read_generic`: the pending error, then RCV_SHUTDOWN.
            Proto::Unix => {
                if let Some(e) = sock.take_err() {
                    return Err(e);
                }
                if sock.shutdown & RCV_SHUTDOWN != 0 {
                    return Ok(0);
                }
                Err(libc::EAGAIN)
            }
        }
    }

    /// The reader freed receive space: the peer sends what waited for the window. A reader
    /// whose receiving half is shut sends no window update (`tcp_cleanup_rbuf` skips it
    /// under RCV_SHUTDOWN), so after SHUT_RD the sender's queued bytes stay where they are
    /// and the reader sees end of file, not a reset.
    fn tcp_window_opened(&mut self, s: u32, count: usize) {
        if self.sock(s).shutdown & RCV_SHUTDOWN != 0 {
            self.sock_mut(s).unadvertised_read_bytes += count;
            return;
        }
        if let Some(peer) = self.sock(s).peer {
            if self.sock_alive(peer) {
                self.tcp_push(peer.id);
            }
        }
    }

    /// The reader consumed `count` bytes of unix skbs: each skb used up is freed, which
    /// uncharges the sender and calls its `unix_write_space`.
    fn unix_consumed(&mut self, s: u32, count: usize) {
        let mut left = count;
        let peer = self.sock(s).peer;
        while left > 0 {
            let sock = self.sock_mut(s);
            let skb = sock.rcv_skbs.front_mut().expect("unix bytes live in skbs");
            let take = skb.0.min(left);
            skb.0 -= take;
            left -= take;
            if skb.0 == 0 {
                let truesize = skb.1;
                sock.rcv_skbs.pop_front();
                if let Some(sender) = peer {
                    self.unix_uncharge(sender, truesize);
                }
            }
        }
    }

    /// `sock_wfree` + `unix_write_space` on the sender of a freed skb.
    fn unix_uncharge(&mut self, sender: SockRef, truesize: usize) {
        let Some(sock) = self.sock_get_mut(sender) else {
            return;
        };
        sock.wmem = sock.wmem.saturating_sub(truesize);
        if sock.writeable() && !sock.dead {
            if std::mem::take(&mut sock.nospace) {
                hit(Case::EpolloutAfterFull);
            }
            self.wake_sock(sender.id, OUT);
        }
    }

    // ---- write ----

    pub(super) fn sock_write(&mut self, s: u32, bufs: &[&[u8]]) -> KResult<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match self.sock(s).proto {
            Proto::Tcp => self.tcp_write(s, bufs, total),
            Proto::Unix => self.unix_write(s, bufs, total),
        }
    }

    fn tcp_write(&mut self, s: u32, bufs: &[&[u8]], total: usize) -> KResult<usize> {
        if self.sock(s).state == State::Established
            && self.sock(s).shutdown == 0
            && self.chance(self.cfg.faults.reset)
        {
            self.network_reset(s);
        }
        let sock = self.sock_mut(s);
        match sock.state {
            // `sk_stream_wait_connect`: the error, else EAGAIN while the SYN is pending,
            // EPIPE on a closed socket.
            State::SynSent => return Err(sock.take_err().unwrap_or(libc::EAGAIN)),
            State::Closed => return Err(sock.take_err().unwrap_or(libc::EPIPE)),
            State::Established => {}
        }
        if sock.err != 0 || sock.shutdown & SEND_SHUTDOWN != 0 {
            return Err(sock.take_err().unwrap_or(libc::EPIPE));
        }
        if total == 0 {
            return Ok(0);
        }
        // Bytes that fit the peer's window leave (and are acknowledged) at once; the rest
        // must fit the send buffer.
        let direct = if self.sock(s).snd.is_empty() {
            self.tcp_window(s)
        } else {
            0
        };
        let sock = self.sock(s);
        let queued = sock.snd.len() + sock.in_flight;
        let room = direct.saturating_add(sock.snd_cap.saturating_sub(queued));
        if room == 0 {
            self.sock_mut(s).nospace = true;
            return Err(libc::EAGAIN);
        }
        let accepted = self.short_write(total.min(room), SOCK_MIN_SNDBUF.saturating_sub(queued));
        let sock = self.sock_mut(s);
        if accepted < total {
            sock.nospace = true;
        }
        let mut left = accepted;
        for buf in bufs {
            let take = buf.len().min(left);
            sock.snd.extend(&buf[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        self.tcp_push(s);
        Ok(accepted)
    }

    /// How many more bytes the peer can take now: its free receive space less what is
    /// already in flight to it.
    fn tcp_window(&self, s: u32) -> usize {
        let sock = self.sock(s);
        let Some(peer) = sock.peer.and_then(|p| self.sock_get(p)) else {
            return WINDOW_UNLIMITED;
        };
        if peer.dead || peer.state != State::Established {
            return WINDOW_UNLIMITED;
        }
        peer.rcv_cap
            .saturating_sub(peer.rcv.len() + peer.unadvertised_read_bytes + sock.in_flight)
    }

    /// Sends what the window allows from the send queue, then the FIN once the queue is
    /// empty (`tcp_push` / `tcp_send_fin`).
    ///
    /// Every segment advertises the sender's receive window (`tcp_select_window` in
    /// `tcp_transmit_skb`). A reader under SHUT_RD sends no window update when it reads
    /// (`tcp_window_opened`), so its peer goes on counting those bytes against the window
    /// (`unadvertised_read_bytes`: the peer's own writes and FIN cannot use the space,
    /// `diff-shut-rd-stale-window.ops`) until the reader's next segment, data or FIN; then
    /// the peer sends what it queued behind the closed window.
    /// Measured: after SHUT_RD, a fill and a drain, one written byte lets a second drain
    /// read more (`diff-shut-rd-window.ops`); a close instead sends a FIN whose window
    /// brings data to the closed socket, which answers with RST
    /// (`diff-shut-rd-close.ops`). The recursion ends: each level needs a transmission,
    /// and each transmission empties part of a finite queue.
    pub(super) fn tcp_push(&mut self, s: u32) {
        let sock = &self.socks[s as usize];
        let advertises_late_window = sock.live && sock.unadvertised_read_bytes > 0;
        let peer = sock.peer;
        if self.tcp_transmit(s) && advertises_late_window {
            if self.socks[s as usize].live {
                self.sock_mut(s).unadvertised_read_bytes = 0;
            }
            if let Some(peer) = peer.filter(|&peer| self.sock_alive(peer)) {
                self.tcp_push(peer.id);
            }
        }
    }

    /// The transmitting part of [`Kernel::tcp_push`]; whether any segment left. The segment
    /// fault cuts a transmission in pieces.
    fn tcp_transmit(&mut self, s: u32) -> bool {
        let mut transmitted = false;
        // Each pass sends at least one byte or stops, so the queue bounds the loop.
        loop {
            // A delivery inside the previous pass may have freed the socket.
            let sock = &self.socks[s as usize];
            if !sock.live || sock.state != State::Established {
                return transmitted;
            }
            let Some(peer) = sock.peer else {
                return transmitted;
            };
            if sock.snd.is_empty() {
                if sock.fin_pending && !sock.fin_sent {
                    self.tcp_flush_ack(s);
                    let sock = self.sock_mut(s);
                    sock.fin_sent = true;
                    if sock.done {
                        // LAST_ACK: loopback acknowledges the FIN at once, and the socket
                        // is closed (`tcp_done`).
                        sock.state = State::Closed;
                    }
                    let from = self.sock_ref(s);
                    self.transmit(Segment {
                        from,
                        to: peer,
                        payload: Payload::Fin,
                    });
                    self.sock_maybe_free(s);
                    transmitted = true;
                }
                return transmitted;
            }
            let window = self.tcp_window(s);
            if window == 0 {
                return transmitted;
            }
            let mut count = self.sock(s).snd.len().min(window);
            if count > 1 && self.chance(self.cfg.faults.segment) {
                count = 1 + self.draw_upto(count as u64 - 2) as usize;
            }
            self.tcp_flush_ack(s);
            let mut snd = std::mem::take(&mut self.sock_mut(s).snd);
            let buffer = self.buffer_from_front(&mut snd, count);
            let sock = self.sock_mut(s);
            sock.snd = snd;
            sock.in_flight += count;
            let from = self.sock_ref(s);
            self.transmit(Segment {
                from,
                to: peer,
                payload: Payload::Data(buffer),
            });
            transmitted = true;
        }
    }

    fn unix_write(&mut self, s: u32, bufs: &[&[u8]], total: usize) -> KResult<usize> {
        let sock = self.sock(s);
        let Some(peer) = sock.peer else {
            return Err(libc::ENOTCONN);
        };
        if sock.shutdown & SEND_SHUTDOWN != 0 {
            return Err(libc::EPIPE);
        }
        if total == 0 {
            return Ok(0);
        }
        let charged = self.sock(s).wmem;
        let limit = self.short_write(total, SOCK_MIN_SNDBUF.saturating_sub(charged));
        let chunk_max = (self.sock(s).snd_cap / 2)
            .saturating_sub(64)
            .clamp(1, UNIX_SKB_BYTES_MAX);
        let mut sent = 0;
        // Each pass queues one skb or returns, so `limit` bounds the loop.
        while sent < limit {
            let size = (limit - sent).min(chunk_max);
            // `sock_alloc_send_pskb`: the error, SEND_SHUTDOWN, then the charge limit.
            let sock = self.sock_mut(s);
            if let Some(e) = sock.take_err() {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
            if sock.shutdown & SEND_SHUTDOWN != 0 {
                return if sent > 0 { Ok(sent) } else { Err(libc::EPIPE) };
            }
            if sock.wmem >= sock.snd_cap {
                sock.nospace = true;
                return if sent > 0 {
                    Ok(sent)
                } else {
                    Err(libc::EAGAIN)
                };
            }
            let truesize = unix_skb_truesize(size);
            let open = self
                .sock_get(peer)
                .is_some_and(|p| !p.dead && p.shutdown & RCV_SHUTDOWN == 0);
            if !open {
                return if sent > 0 { Ok(sent) } else { Err(libc::EPIPE) };
            }
            self.sock_mut(s).wmem += truesize;
            let other = self.sock_mut(peer.id);
            if !other.rcv.is_empty() {
                hit(Case::ArrivalOnNonEmpty);
            }
            extend_from_bufs(&mut other.rcv, bufs, sent, size);
            other.rcv_skbs.push_back((size, truesize));
            self.wake_sock(peer.id, KEY_DATA);
            sent += size;
        }
        Ok(sent)
    }

    // ---- delivery ----

    /// A segment arrives.
    pub(super) fn deliver(&mut self, segment: Segment) {
        let Segment { from, to, payload } = segment;
        match payload {
            Payload::Data(buffer) => {
                let count = buffer.len();
                if let Some(sender) = self.sock_get_mut(from) {
                    sender.in_flight = sender.in_flight.saturating_sub(count);
                }
                let open = self
                    .sock_get(to)
                    .is_some_and(|t| t.state == State::Established);
                // RFC 1122 (and `tcp_rcv_state_process` in FIN_WAIT1/2): data reaching a
                // socket that sent its FIN and shut its reading half (SHUT_RD, or close:
                // an orphan) resets it, and the sender gets an RST too.
                let aborts = self.sock_get(to).is_some_and(|t| {
                    t.state == State::Established
                        && (t.dead || (t.fin_pending && t.shutdown & RCV_SHUTDOWN != 0))
                });
                if !open || aborts {
                    // Nobody to take it: the receiver answers RST.
                    self.recycle(buffer);
                    if aborts {
                        self.tcp_reset(to.id);
                    }
                    if self.sock_alive(from) {
                        self.transmit(Segment {
                            from: to,
                            to: from,
                            payload: Payload::Rst,
                        });
                    }
                    return;
                }
                let receiver = self.sock_mut(to.id);
                if !receiver.rcv.is_empty() {
                    hit(Case::ArrivalOnNonEmpty);
                }
                receiver.rcv.extend(&buffer[..]);
                self.recycle(buffer);
                self.wake_sock(to.id, KEY_DATA);
                if self.sock_alive(from) {
                    self.tcp_check_space(from.id);
                }
            }
            Payload::Fin => {
                let Some(t) = self.sock_get_mut(to) else {
                    return;
                };
                if t.state != State::Established {
                    return;
                }
                if !t.rcv.is_empty() {
                    hit(Case::FinWithUnreadData);
                }
                t.done = true;
                t.shutdown |= RCV_SHUTDOWN;
                if t.fin_pending {
                    // FIN_WAIT -> TIME_WAIT: the ACK leaves at once, and `tcp_time_wait`
                    // ends in `tcp_done`.
                    if t.fin_sent {
                        t.state = State::Closed;
                    }
                    self.transmit(Segment {
                        from: to,
                        to: from,
                        payload: Payload::FinAck { delayed: false },
                    });
                } else {
                    // ESTABLISHED -> CLOSE_WAIT: the ACK waits (delayed ACK), unless our own
                    // data or FIN carries it first.
                    t.ack_pending = true;
                    // The socket's next segment now acknowledges the peer's FIN, which wakes
                    // the peer: its calls reach the peer's instances (`dependence`).
                    self.structure_changed();
                    let due_ns = self.now_ns + FIN_ACK_DELAY_NS;
                    self.schedule(
                        due_ns,
                        Segment {
                            from: to,
                            to: from,
                            payload: Payload::FinAck { delayed: true },
                        },
                    );
                }
                if self.sock_get(to).is_some_and(|t| t.dead) {
                    self.sock_maybe_free(to.id);
                } else {
                    self.wake_sock(to.id, KEY_ALL);
                    self.wake_sock(to.id, KEY_DATA);
                }
            }
            Payload::FinAck { delayed } => {
                // A delayed ACK that our own segment already carried is void, and so is one
                // of a socket that no longer exists.
                if delayed {
                    let pending = self
                        .sock_get_mut(from)
                        .is_some_and(|a| std::mem::take(&mut a.ack_pending));
                    if !pending {
                        return;
                    }
                    self.structure_changed();
                }
                self.tcp_fin_acked(to);
            }
            Payload::Rst => {
                if self.sock_alive(to) {
                    self.tcp_reset(to.id);
                }
            }
        }
    }

    /// Our FIN was acknowledged: FIN_WAIT1 -> FIN_WAIT2 (or LAST_ACK -> CLOSE), a state
    /// change that wakes the socket.
    fn tcp_fin_acked(&mut self, s: SockRef) {
        let Some(sock) = self.sock_get_mut(s) else {
            return;
        };
        if sock.fin_acked || !sock.fin_sent {
            return;
        }
        sock.fin_acked = true;
        if sock.dead {
            self.sock_maybe_free(s.id);
        } else {
            self.wake_sock(s.id, KEY_ALL);
        }
    }

    /// Acknowledges the peer's FIN if that is still pending: our own segment carries the
    /// ACK (its effect is applied at once, ahead of the segment's own delivery).
    fn tcp_flush_ack(&mut self, s: u32) {
        if std::mem::take(&mut self.sock_mut(s).ack_pending) {
            self.structure_changed();
            if let Some(peer) = self.sock(s).peer {
                self.tcp_fin_acked(peer);
            }
        }
    }

    /// `tcp_check_space`: an ACK freed send space; OUT wakes only if SOCK_NOSPACE was set
    /// and the socket is writeable again.
    fn tcp_check_space(&mut self, s: u32) {
        let sock = self.sock_mut(s);
        if sock.nospace && sock.writeable() {
            hit(Case::EpolloutAfterFull);
            sock.nospace = false;
            self.wake_sock(s, OUT);
        } else if let Some(file) = sock.file {
            // No wakeup in Linux, but OUT may have risen: the strict model must see it.
            self.touch(file);
        }
    }

    /// `tcp_reset`: an RST arrived at `s`.
    pub(super) fn tcp_reset(&mut self, s: u32) {
        let sock = self.sock_mut(s);
        let err = match sock.state {
            State::Closed => return,
            State::SynSent => libc::ECONNREFUSED,
            State::Established if sock.done && !sock.fin_pending => libc::EPIPE,
            State::Established => libc::ECONNRESET,
        };
        if !sock.rcv.is_empty() {
            hit(Case::RstWithUnreadData);
        }
        if sock.state == State::SynSent {
            if let Some(l) = sock.listener.take() {
                self.listener_forget(l, s);
            }
        }
        let sock = self.sock_mut(s);
        sock.err = err;
        sock.state = State::Closed;
        sock.shutdown = SHUTDOWN_MASK;
        sock.snd.clear();
        sock.in_flight = 0;
        sock.fin_pending = false;
        sock.reset_seen = true;
        if sock.dead {
            self.sock_free(s);
            return;
        }
        self.wake_sock(s, KEY_ALL);
        self.wake_sock(s, ERR);
    }

    /// The reset fault: the network kills an established connection; both ends see an RST.
    pub(super) fn network_reset(&mut self, s: u32) {
        let peer = self.sock(s).peer;
        self.tcp_reset(s);
        if let Some(peer) = peer {
            if self.sock_alive(peer) {
                self.tcp_reset(peer.id);
            }
        }
    }

    /// Frees an orphan once it has nothing left to do: reset, or its FIN sent and the peer's
    /// FIN received (or the peer gone).
    pub(super) fn sock_maybe_free(&mut self, s: u32) {
        let sock = &self.socks[s as usize];
        if !sock.live || !sock.dead {
            return;
        }
        let peer_gone = sock.peer.is_none_or(|p| !self.sock_alive(p));
        let finished = sock.snd.is_empty() && sock.fin_sent && (sock.done || peer_gone);
        if sock.state == State::Closed || finished {
            self.sock_free(s);
        }
    }

    // ---- shutdown, close ----

    pub(super) fn sock_shutdown(&mut self, fd: i32, how: i32) -> KResult<()> {
        let s = match self.fd_obj(fd)? {
            Obj::Sock(s) => s,
            Obj::Listener(l) => return self.listener_shutdown(l, how),
            _ => return Err(libc::ENOTSOCK),
        };
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(libc::EINVAL);
        }
        let mode = (how + 1) as u8;
        match self.sock(s).proto {
            Proto::Tcp => self.tcp_shutdown(s, mode),
            Proto::Unix => {
                self.unix_shutdown(s, mode);
                Ok(())
            }
        }
    }

    /// `inet_shutdown` + `tcp_shutdown`.
    fn tcp_shutdown(&mut self, s: u32, mode: u8) -> KResult<()> {
        let result = match self.sock(s).state {
            State::Closed => {
                self.sock_mut(s).shutdown |= mode;
                Err(libc::ENOTCONN)
            }
            State::SynSent => {
                // `tcp_disconnect` of a pending connect.
                if let Some(l) = self.sock_mut(s).listener.take() {
                    self.listener_forget(l, s);
                }
                let sock = self.sock_mut(s);
                sock.state = State::Closed;
                sock.shutdown = 0;
                Ok(())
            }
            State::Established => {
                let sock = self.sock_mut(s);
                sock.shutdown |= mode;
                if mode & SEND_SHUTDOWN != 0 && !sock.fin_pending {
                    sock.fin_pending = true;
                    self.tcp_push(s);
                }
                Ok(())
            }
        };
        self.wake_sock(s, KEY_ALL);
        result
    }

    /// `unix_shutdown`: our bits, the mirrored bits on the peer, and a keyless wakeup on
    /// both.
    fn unix_shutdown(&mut self, s: u32, mode: u8) {
        self.sock_mut(s).shutdown |= mode;
        self.wake_sock(s, KEY_ALL);
        let Some(peer) = self.sock(s).peer else {
            return;
        };
        let mut peer_mode = 0;
        if mode & RCV_SHUTDOWN != 0 {
            peer_mode |= SEND_SHUTDOWN;
        }
        if mode & SEND_SHUTDOWN != 0 {
            peer_mode |= RCV_SHUTDOWN;
        }
        if let Some(other) = self.sock_get_mut(peer) {
            if !other.dead {
                other.shutdown |= peer_mode;
                self.wake_sock(peer.id, KEY_ALL);
            }
        }
    }

    /// `setsockopt(SO_LINGER, {1, 0})`.
    pub(super) fn sock_linger_zero(&mut self, fd: i32) -> KResult<()> {
        match self.fd_obj(fd)? {
            Obj::Sock(s) => {
                self.sock_mut(s).linger_zero = true;
                Ok(())
            }
            Obj::Listener(_) => Ok(()),
            _ => Err(libc::ENOTSOCK),
        }
    }

    /// The socket's last descriptor closed.
    pub(super) fn sock_release(&mut self, s: u32) {
        self.sock_mut(s).file = None;
        match self.sock(s).proto {
            Proto::Tcp => self.tcp_close(s),
            Proto::Unix => self.unix_release(s),
        }
    }

    /// `tcp_close`: RST if data was left unread or SO_LINGER is zero, else a FIN after the
    /// queued data, the socket living on as an orphan until the exchange ends.
    fn tcp_close(&mut self, s: u32) {
        let sock = self.sock_mut(s);
        sock.dead = true;
        match sock.state {
            State::Closed => self.sock_free(s),
            State::SynSent => {
                if let Some(l) = self.sock_mut(s).listener.take() {
                    self.listener_forget(l, s);
                }
                self.sock_free(s);
            }
            State::Established => {
                let both_closed = sock.done && sock.fin_sent;
                if (!sock.rcv.is_empty() || sock.linger_zero) && !both_closed {
                    if !sock.rcv.is_empty() {
                        hit(Case::RstWithUnreadData);
                    }
                    self.tcp_send_reset(s);
                } else {
                    let sock = self.sock_mut(s);
                    sock.shutdown = SHUTDOWN_MASK;
                    sock.fin_pending = true;
                    self.tcp_push(s);
                    self.sock_maybe_free(s);
                }
            }
        }
    }

    /// Sends an RST to the peer and destroys `s` (its unsent data is discarded).
    pub(super) fn tcp_send_reset(&mut self, s: u32) {
        let sock = self.sock_mut(s);
        sock.snd.clear();
        sock.state = State::Closed;
        if let Some(peer) = sock.peer {
            let from = self.sock_ref(s);
            self.transmit(Segment {
                from,
                to: peer,
                payload: Payload::Rst,
            });
        }
        if self.socks[s as usize].live {
            self.sock_free(s);
        }
    }

    /// `unix_release_sock`: the peer is shut both ways (ECONNRESET if we left data unread)
    /// and woken; our receive queue is purged, which uncharges the peer's skbs.
    fn unix_release(&mut self, s: u32) {
        let peer = self.sock(s).peer;
        let unread = !self.sock(s).rcv.is_empty();
        if unread {
            hit(Case::RstWithUnreadData);
        }
        if let Some(peer) = peer {
            if let Some(other) = self.sock_get_mut(peer) {
                other.shutdown = SHUTDOWN_MASK;
                if unread {
                    other.err = libc::ECONNRESET;
                }
                self.wake_sock(peer.id, KEY_ALL);
                let skbs = std::mem::take(&mut self.sock_mut(s).rcv_skbs);
                for (_, truesize) in skbs {
                    self.unix_uncharge(peer, truesize);
                }
            }
        }
        self.sock_free(s);
    }

    // ---- options and addresses ----

    pub(super) fn sock_take_error(&mut self, fd: i32) -> KResult<Option<Errno>> {
        let file = self.fd_file(fd)?;
        let result = match self.file(file).obj {
            Obj::Sock(s) => self.sock_mut(s).take_err(),
            Obj::Listener(_) => None,
            _ => return Err(libc::ENOTSOCK),
        };
        self.touch(file);
        Ok(result)
    }

    /// SIOCOUTQ: TCP counts bytes not yet acknowledged (queued or in flight); unix counts the
    /// truesize still charged (`sk_wmem_alloc`), as Linux does.
    pub(super) fn sock_outq(&self, s: u32) -> usize {
        let sock = self.sock(s);
        match sock.proto {
            Proto::Tcp => {
                let fin_unacked = sock.fin_sent && !sock.fin_acked && sock.state != State::Closed;
                sock.snd.len() + sock.in_flight + usize::from(fin_unacked)
            }
            Proto::Unix => sock.wmem,
        }
    }

    /// `getsockname` / `getpeername`. A unix socketpair has no IP address to give: it
    /// reports EAFNOSUPPORT.
    pub(super) fn sock_name(&mut self, fd: i32, peer: bool) -> KResult<SocketAddr> {
        match self.fd_obj(fd)? {
            Obj::Sock(s) => {
                let sock = self.sock(s);
                match (sock.proto, peer) {
                    (Proto::Unix, _) => Err(libc::EAFNOSUPPORT),
                    (Proto::Tcp, false) => Ok(sock.local),
                    (Proto::Tcp, true) if sock.state == State::Established => Ok(sock.remote),
                    (Proto::Tcp, true) => Err(libc::ENOTCONN),
                }
            }
            Obj::Listener(l) if !peer => Ok(self.listener_addr(l)),
            Obj::Listener(_) => Err(libc::ENOTCONN),
            _ => Err(libc::ENOTSOCK),
        }
    }
}

/// The truesize a unix stream skb carrying `size` bytes is charged at.
///
/// `unix_stream_sendmsg` puts `data_len = min(size, PAGE_ALIGN(size - SKB_MAX_HEAD(0)))`
/// bytes in page fragments and the rest in the linear head; `__alloc_skb` rounds the head
/// (`SKB_DATA_ALIGN(header) + shared info`) up to a kmalloc size class (powers of two from
/// 512 here) and charges `SKB_TRUESIZE` of it, and `alloc_skb_with_frags` adds each whole
/// page. Measured by writing one size until EAGAIN into a 212 992-byte send buffer (found
/// by the differential property, `diff-unix-truesize.ops`): 1-192 bytes cost 768, 193-704
/// cost 1 280, 705-1 728 cost 2 304, up to 3 776 cost 4 352, 3 777-4 096 (all in one page)
/// cost 4 864, 5 000 costs 6 400 and 8 192 cost 8 960; 64 KiB writes go as 36 544 + 28 992
/// bytes at 37 120 + 29 952 (E19: 233 152 bytes fit).
fn unix_skb_truesize(size: usize) -> usize {
    let data_len = size.min(
        size.saturating_sub(SKB_MAX_HEAD_BYTES)
            .next_multiple_of(PAGE_BYTES),
    );
    let header = size - data_len;
    let head_slab = (header.next_multiple_of(64) + SKB_SHINFO_BYTES)
        .next_power_of_two()
        .max(SKB_HEAD_SLAB_MIN_BYTES);
    head_slab + SKB_STRUCT_BYTES + data_len.div_ceil(PAGE_BYTES) * PAGE_BYTES
}
