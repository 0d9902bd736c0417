//! The kernel model: an fd table over open file descriptions, the objects behind them and
//! epoll. It is a plain state machine: no threads, no clock of its own; the scheduler tells
//! it the time and collects the threads its wakeups made runnable.

use std::net::SocketAddr;

/// A Linux errno value (`libc::EAGAIN` and friends).
pub type Errno = i32;

/// A kernel call's result.
pub type KResult<T> = Result<T, Errno>;

/// Which file operations queue an edge-triggered epoll item.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum EdgeModel {
    /// Linux 6.18: every wakeup the object issues (each arrival, each write-space release,
    /// each connection, each eventfd write) queues the item.
    #[default]
    Linux,
    /// The textbook model: an item is queued only when `mask & requested` goes from empty to
    /// non-empty.
    Strict,
}

/// Sizes and limits of the simulated kernel.
#[derive(Clone, Debug)]
pub struct Config {
    /// Which operations raise an edge.
    pub edge: EdgeModel,
    /// Per-socket TCP send buffer.
    pub tcp_sndbuf_bytes: usize,
    /// Per-socket TCP receive buffer.
    pub tcp_rcvbuf_bytes: usize,
    /// Per-socket unix stream send buffer.
    pub unix_sndbuf_bytes: usize,
    /// Pipe capacity.
    pub pipe_capacity_bytes: usize,
    /// Highest number of open descriptors (`RLIMIT_NOFILE`); beyond it calls fail with EMFILE.
    pub fd_limit: usize,
    /// Upper bound of the delivery latency of a TCP segment; 0 delivers synchronously inside
    /// the sender's call (conformance mode).
    pub latency_ns_max: u64,
    /// Fault probabilities; all zero in conformance mode.
    pub faults: Faults,
    /// Seed of the kernel's own ChaCha stream (segmentation, latency and fault draws).
    pub seed: u64,
}

/// Fault probabilities, each in `0.0..=1.0`, drawn per opportunity from the kernel's stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// A read returns fewer bytes than available (at least one).
    pub short_read: f64,
    /// A write accepts fewer bytes than would fit (at least one).
    pub short_write: f64,
    /// A TCP write is cut into several segments delivered separately.
    pub segment: f64,
    /// An established TCP connection is reset by the network (both ends see the RST).
    pub reset: f64,
    /// `accept` fails with ECONNABORTED (the queued connection is dropped, its client sees
    /// a reset).
    pub accept_abort: f64,
    /// `accept` fails with EMFILE although descriptors are left (the connection stays queued).
    pub accept_emfile: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            edge: EdgeModel::Linux,
            tcp_sndbuf_bytes: 16 * 1024,
            tcp_rcvbuf_bytes: 64 * 1024,
            unix_sndbuf_bytes: 208 * 1024,
            pipe_capacity_bytes: 64 * 1024,
            fd_limit: 1024,
            latency_ns_max: 0,
            faults: Faults::default(),
            seed: 0,
        }
    }
}

/// The simulated kernel.
#[derive(Debug, Default)]
pub struct Kernel {}

impl Kernel {
    /// A kernel with `config`.
    pub fn new(_config: Config) -> Kernel {
        todo!()
    }
}

#[allow(unused_variables)]
impl Kernel {
    /// `epoll_create1`.
    pub fn epoll_create(&mut self) -> KResult<i32> {
        todo!()
    }
    /// `epoll_ctl`; `op` is `libc::EPOLL_CTL_ADD|MOD|DEL`.
    pub fn epoll_ctl(&mut self, epfd: i32, op: i32, fd: i32, events: u32, data: u64) -> KResult<()> {
        todo!()
    }
    /// One `ep_send_events` pass: appends at most `max_events` `(events, data)` pairs to `out`
    /// and returns how many. Never blocks.
    pub fn epoll_poll(&mut self, epfd: i32, max_events: usize, out: &mut Vec<(u32, u64)>) -> KResult<usize> {
        todo!()
    }
    /// Thread `tid` sleeps in `epoll_wait` on `epfd` (pushed on the instance's LIFO stack).
    pub fn epoll_add_waiter(&mut self, epfd: i32, tid: u32) {
        todo!()
    }
    /// Thread `tid` stopped waiting (timeout, or it was woken and ran).
    pub fn epoll_remove_waiter(&mut self, epfd: i32, tid: u32) {
        todo!()
    }
    /// Threads woken since the last call, in wakeup order.
    pub fn take_woken(&mut self, into: &mut Vec<u32>) {
        todo!()
    }
    pub fn listen(&mut self, addr: SocketAddr, backlog: u32, reuse_port: bool) -> KResult<i32> {
        todo!()
    }
    pub fn accept(&mut self, fd: i32) -> KResult<(i32, SocketAddr)> {
        todo!()
    }
    pub fn connect(&mut self, addr: SocketAddr) -> KResult<i32> {
        todo!()
    }
    pub fn local_addr(&mut self, fd: i32) -> KResult<SocketAddr> {
        todo!()
    }
    pub fn peer_addr(&mut self, fd: i32) -> KResult<SocketAddr> {
        todo!()
    }
    pub fn take_error(&mut self, fd: i32) -> KResult<Option<Errno>> {
        todo!()
    }
    pub fn inq(&mut self, fd: i32) -> KResult<usize> {
        todo!()
    }
    pub fn outq(&mut self, fd: i32) -> KResult<usize> {
        todo!()
    }
    pub fn read(&mut self, fd: i32, buf: &mut [u8]) -> KResult<usize> {
        todo!()
    }
    pub fn writev(&mut self, fd: i32, bufs: &[&[u8]]) -> KResult<usize> {
        todo!()
    }
    /// `how` is `libc::SHUT_RD|SHUT_WR|SHUT_RDWR`.
    pub fn shutdown(&mut self, fd: i32, how: i32) -> KResult<()> {
        todo!()
    }
    pub fn close(&mut self, fd: i32) -> KResult<()> {
        todo!()
    }
    pub fn dup(&mut self, fd: i32) -> KResult<i32> {
        todo!()
    }
    pub fn reset(&mut self, fd: i32) -> KResult<()> {
        todo!()
    }
    pub fn eventfd(&mut self) -> KResult<i32> {
        todo!()
    }
    pub fn eventfd_read(&mut self, fd: i32) -> KResult<u64> {
        todo!()
    }
    pub fn eventfd_write(&mut self, fd: i32, value: u64) -> KResult<()> {
        todo!()
    }
    pub fn socketpair(&mut self) -> KResult<(i32, i32)> {
        todo!()
    }
    pub fn pipe(&mut self) -> KResult<(i32, i32)> {
        todo!()
    }
    /// The virtual time (ns) of the next in-flight delivery or kernel timer, if any.
    pub fn next_timer_ns(&self) -> Option<u64> {
        todo!()
    }
    /// Moves the kernel to virtual time `now_ns`: deliveries and timers due by then happen.
    pub fn advance(&mut self, now_ns: u64) {
        todo!()
    }
}
