//! The Os seam: epoll plus the few syscalls, clocks, threads and shared-state primitives a
//! reactor uses, expressed in Linux terms so that the simulated and the real kernel can be
//! compared call for call.
//!
//! Every server in this crate is generic over [`Os`]; it never names a backend. Two
//! implementations exist: [`RealOs`] (Linux, through the `real` crate) and [`SimOs`] (the
//! simulated kernel of the `sim` crate). Dispatch is static, so the real path costs what raw
//! epoll costs.
//!
//! # The contract every caller must expect
//!
//! * All descriptors are non-blocking. Any read, write or accept may fail with `EAGAIN`.
//! * Reads and writes may be short: a read returns what is there (at least one byte unless it
//!   reports EOF with `0`), a write may accept fewer bytes than offered.
//! * `epoll_wait` may return an event for a descriptor that is no longer ready by the time the
//!   caller acts (the kernel's report is a snapshot). Under edge triggering a caller that
//!   stops before `EAGAIN` may not be told again. Under level triggering an event repeats for
//!   as long as the condition holds.
//! * `epoll_wait` may return fewer events than are ready (`max_events`), and may return `EINTR`.
//! * Errors carry the raw errno ([`Errno`]); nothing is translated or hidden.
//! * A descriptor returned by the seam belongs to the caller until it hands it to
//!   [`Os::close`] or [`Os::reset`]; the seam never closes a descriptor on its own.

mod real_os;
mod sim_os;
mod types;

pub use real_os::RealOs;
pub use sim_os::SimOs;
pub use types::{CtlOp, EpollEvent, Errno, Events, Fd, Result, Shutdown, Token};

use std::net::SocketAddr;
use std::time::Duration;

/// The operating system as a reactor sees it.
///
/// Methods are grouped as the syscalls they stand for. Unless a method says otherwise it is
/// non-blocking; the blocking ones are [`Os::epoll_wait`] (with a timeout), [`Os::sleep`],
/// [`Os::park`], [`OsJoin::join`] and [`OsMutex::lock`] while another thread holds the lock.
///
/// In the simulator every method is a preemption point: another simulated thread may run
/// before the call takes effect.
pub trait Os: Clone + Send + Sync + 'static {
    /// A mutual-exclusion lock whose waiting is visible to the scheduler.
    type Mutex<T: Send + 'static>: OsMutex<T>;
    /// A 64-bit atomic cell (flags, counters).
    type Atomic: OsAtomic;
    /// A handle to a thread, used to unpark it.
    type Thread: OsThread;
    /// The handle returned by [`Os::spawn`].
    type JoinHandle: OsJoin<Thread = Self::Thread>;

    // ---- epoll ----

    /// `epoll_create1(EPOLL_CLOEXEC)`.
    fn epoll_create(&self) -> Result<Fd>;

    /// `epoll_ctl(epfd, op, fd, {interest, token})`.
    ///
    /// `interest` holds the requested conditions (any of [`Events::IN`], [`Events::PRI`],
    /// [`Events::OUT`], [`Events::RDHUP`], possibly none) and the modes ([`Events::ET`],
    /// [`Events::ONESHOT`], [`Events::EXCLUSIVE`]). `ERR` and `HUP` are always reported
    /// whether requested or not. Linux's validity rules apply: `EEXIST` on a second `Add` of
    /// the same descriptor, `ENOENT` on `Mod`/`Del` of an unregistered one, `EBADF` for a
    /// closed descriptor, `EPERM` for a file that cannot be polled, `EINVAL` for
    /// `EXCLUSIVE` with `Mod`, with an epoll target, or with bits other than
    /// `IN|OUT|ERR|HUP|ET|EXCLUSIVE`, and `EINVAL` for an epoll instance watching itself.
    /// A registration belongs to the open file description: it survives `close(fd)` while a
    /// `dup` of it is open. `token` is returned untouched with every event.
    fn epoll_ctl(&self, epfd: Fd, op: CtlOp, fd: Fd, interest: Events, token: Token) -> Result<()>;

    /// `epoll_wait(epfd, out, max_events, timeout)`.
    ///
    /// Clears `out`, then fills it with at most `max_events` events (at least one unless the
    /// timeout expired) in the order the kernel reports them. `timeout` of `None` waits
    /// forever, `Some(Duration::ZERO)` only looks. Returns the number of events. May fail
    /// with `EINTR`. Events may be stale by the time they are handled.
    fn epoll_wait(
        &self,
        epfd: Fd,
        out: &mut Vec<EpollEvent>,
        max_events: usize,
        timeout: Option<Duration>,
    ) -> Result<usize>;

    // ---- TCP ----

    /// A non-blocking TCP listener bound to `addr` (port 0 picks a free port), with
    /// `SO_REUSEADDR`, and `SO_REUSEPORT` when `reuse_port` is set.
    fn listen(&self, addr: SocketAddr, backlog: u32, reuse_port: bool) -> Result<Fd>;

    /// `accept4(fd, NONBLOCK|CLOEXEC)`, with `TCP_NODELAY` set on the new socket.
    ///
    /// `EAGAIN` when the backlog is empty. `EMFILE`/`ENFILE` when no descriptor is left
    /// (the connection stays in the backlog), `ECONNABORTED` when a queued connection died,
    /// `EINTR` when interrupted: each is returned as such.
    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddr)>;

    /// A non-blocking TCP socket connecting to `addr`, with `TCP_NODELAY`.
    ///
    /// The connection may still be in progress on return (`EINPROGRESS` is not an error
    /// here): wait for `OUT` (or `ERR`/`HUP`) and ask [`Os::take_error`] for the outcome.
    fn connect(&self, addr: SocketAddr) -> Result<Fd>;

    /// `getsockname`.
    fn local_addr(&self, fd: Fd) -> Result<SocketAddr>;

    /// `getpeername`.
    fn peer_addr(&self, fd: Fd) -> Result<SocketAddr>;

    /// `getsockopt(SO_ERROR)`: the pending socket error, cleared by reading it.
    fn take_error(&self, fd: Fd) -> Result<Option<Errno>>;

    /// `ioctl(SIOCINQ)`: bytes readable now.
    fn inq(&self, fd: Fd) -> Result<usize>;

    /// `ioctl(SIOCOUTQ)`: bytes written but not yet acknowledged by the peer (for stream
    /// sockets), or not yet read (pipes and unix sockets report what the peer has not read).
    fn outq(&self, fd: Fd) -> Result<usize>;

    // ---- any descriptor ----

    /// `read(fd, buf)`. `Ok(0)` is end of file (or an empty `buf`); `EAGAIN` when nothing is
    /// there yet. May return fewer bytes than are available.
    fn read(&self, fd: Fd, buf: &mut [u8]) -> Result<usize>;

    /// `write(fd, buf)`. May accept fewer bytes than offered; `EAGAIN` when none fit;
    /// `EPIPE` (never a signal) when the peer is gone.
    fn write(&self, fd: Fd, buf: &[u8]) -> Result<usize>;

    /// `writev(fd, bufs)`: like [`Os::write`] over the concatenation of `bufs`.
    fn writev(&self, fd: Fd, bufs: &[&[u8]]) -> Result<usize>;

    /// `shutdown(fd, how)`.
    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()>;

    /// `close(fd)`. The open file description, and with it its epoll registrations, lives on
    /// while another descriptor (a `dup`) refers to it.
    fn close(&self, fd: Fd) -> Result<()>;

    /// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: a new descriptor, the lowest free number, sharing the
    /// open file description (and so its epoll registrations).
    fn dup(&self, fd: Fd) -> Result<Fd>;

    /// `setsockopt(SO_LINGER, {1, 0})` then `close(fd)`: the peer sees a reset.
    fn reset(&self, fd: Fd) -> Result<()>;

    // ---- eventfd, socketpair, pipe ----

    /// `eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC)`: a 64-bit counter.
    fn eventfd(&self) -> Result<Fd>;

    /// Reads and resets the counter; `EAGAIN` when it is zero.
    fn eventfd_read(&self, fd: Fd) -> Result<u64>;

    /// Adds `value` to the counter; `EAGAIN` if the sum would exceed `u64::MAX - 1`,
    /// `EINVAL` for `u64::MAX`.
    fn eventfd_write(&self, fd: Fd, value: u64) -> Result<()>;

    /// `socketpair(AF_UNIX, SOCK_STREAM|NONBLOCK|CLOEXEC)`.
    fn socketpair(&self) -> Result<(Fd, Fd)>;

    /// `pipe2(NONBLOCK|CLOEXEC)`: `(read end, write end)`.
    fn pipe(&self) -> Result<(Fd, Fd)>;

    // ---- time and threads ----

    /// Monotonic time since the backend started (virtual in the simulator).
    fn now(&self) -> Duration;

    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration);

    /// Starts a thread running `f`.
    fn spawn<F>(&self, name: &str, f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static;

    /// The calling thread.
    fn current(&self) -> Self::Thread;

    /// Blocks until the calling thread is unparked or `timeout` passes. Like
    /// `std::thread::park`, it may return spuriously; an `unpark` that comes first is
    /// remembered (one token).
    fn park(&self, timeout: Option<Duration>);

    /// A new lock around `value`.
    fn mutex<T: Send + 'static>(&self, value: T) -> Self::Mutex<T>;

    /// A new atomic cell holding `value`.
    fn atomic(&self, value: u64) -> Self::Atomic;
}

/// A lock shared between threads of one [`Os`].
pub trait OsMutex<T>: Send + Sync {
    /// Runs `f` with the lock held. In the simulator, taking the lock is a preemption point
    /// and a thread that waits for it is blocked, visible to the scheduler.
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

/// A sequentially consistent 64-bit atomic cell. Every access is a preemption point in the
/// simulator, so races between a check and an update are explored.
pub trait OsAtomic: Send + Sync {
    /// Reads the value.
    fn load(&self) -> u64;
    /// Writes the value.
    fn store(&self, value: u64);
    /// Writes the value, returning the previous one.
    fn swap(&self, value: u64) -> u64;
    /// Writes `new` if the value is `current`; returns the previous value either way.
    fn compare_exchange(&self, current: u64, new: u64) -> std::result::Result<u64, u64>;
    /// Adds (wrapping), returning the previous value.
    fn fetch_add(&self, delta: u64) -> u64;
    /// Subtracts (wrapping), returning the previous value.
    fn fetch_sub(&self, delta: u64) -> u64;
}

/// A thread that can be unparked.
pub trait OsThread: Clone + Send + Sync + 'static {
    /// Wakes the thread if it is parked, or makes its next `park` return at once.
    fn unpark(&self);
}

/// The handle of a spawned thread.
pub trait OsJoin: Send {
    /// The thread's handle.
    type Thread: OsThread;
    /// The spawned thread.
    fn thread(&self) -> Self::Thread;
    /// Blocks until the thread ends; `Err` carries its panic message.
    fn join(self) -> std::result::Result<(), String>;
}
