//! The seam over real Linux, through the `real` crate: every method is the syscall it names,
//! with the errno passed through; threads, locks and atomics are the standard library's.
//!
//! This is the backend the simulator is measured against, so it adds no policy: no retries
//! on `EINTR`, no hidden buffering, no translation of errors.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{
    CtlOp, EpollEvent, Errno, Events, Fd, Os, OsAtomic, OsJoin, OsMutex, OsThread, Result,
    Shutdown, Token,
};

/// The real Linux kernel.
///
/// Cheap to clone (it only holds the instant it was created, the zero of [`Os::now`]);
/// clones share that zero, so times taken through different clones compare.
#[derive(Clone, Debug)]
pub struct RealOs {
    /// The zero of [`Os::now`].
    start: Instant,
}

impl RealOs {
    /// A backend whose clock starts now.
    pub fn new() -> RealOs {
        RealOs {
            start: Instant::now(),
        }
    }
}

impl Default for RealOs {
    fn default() -> RealOs {
        RealOs::new()
    }
}

fn errno(error: real::Errno) -> Errno {
    Errno(error.0)
}

/// A `std` mutex. Poisoning is ignored: a panic while the lock was held already fails the
/// thread that panicked, and the seam has no way to report poisoning to the others.
#[derive(Debug, Default)]
pub struct RealMutex<T>(std::sync::Mutex<T>);

impl<T: Send> OsMutex<T> for RealMutex<T> {
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// An `AtomicU64` used with `SeqCst` everywhere, matching the seam's sequentially consistent
/// contract (and the simulator, where every access is a preemption point).
#[derive(Debug, Default)]
pub struct RealAtomic(AtomicU64);

impl OsAtomic for RealAtomic {
    fn load(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn store(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst)
    }

    fn swap(&self, value: u64) -> u64 {
        self.0.swap(value, Ordering::SeqCst)
    }

    fn compare_exchange(&self, current: u64, new: u64) -> std::result::Result<u64, u64> {
        self.0
            .compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
    }

    fn fetch_add(&self, delta: u64) -> u64 {
        self.0.fetch_add(delta, Ordering::SeqCst)
    }

    fn fetch_sub(&self, delta: u64) -> u64 {
        self.0.fetch_sub(delta, Ordering::SeqCst)
    }
}

/// A `std` thread handle, for unparking.
#[derive(Clone, Debug)]
pub struct RealThread(std::thread::Thread);

impl OsThread for RealThread {
    fn unpark(&self) {
        self.0.unpark()
    }
}

/// A `std` join handle.
#[derive(Debug)]
pub struct RealJoinHandle(std::thread::JoinHandle<()>);

impl OsJoin for RealJoinHandle {
    type Thread = RealThread;

    fn thread(&self) -> RealThread {
        RealThread(self.0.thread().clone())
    }

    fn join(self) -> std::result::Result<(), String> {
        self.0.join().map_err(|payload| panic_message(&*payload))
    }
}

/// The message of a panic payload: `panic!` with a literal gives a `&str`, with format
/// arguments a `String`; anything else (`panic_any`) has no message to show.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

impl Os for RealOs {
    type Mutex<T: Send + 'static> = RealMutex<T>;
    type Atomic = RealAtomic;
    type Thread = RealThread;
    type JoinHandle = RealJoinHandle;

    fn epoll_create(&self) -> Result<Fd> {
        real::epoll::epoll_create().map(Fd).map_err(errno)
    }

    fn epoll_ctl(&self, epfd: Fd, op: CtlOp, fd: Fd, interest: Events, token: Token) -> Result<()> {
        let op = match op {
            CtlOp::Add => real::epoll::CtlOp::Add,
            CtlOp::Mod => real::epoll::CtlOp::Mod,
            CtlOp::Del => real::epoll::CtlOp::Del,
        };
        real::epoll::epoll_ctl(epfd.0, op, fd.0, interest.0, token.0).map_err(errno)
    }

    fn epoll_wait(
        &self,
        epfd: Fd,
        out: &mut Vec<EpollEvent>,
        max_events: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        real::epoll::epoll_wait(epfd.0, out, max_events, timeout, |events, data| {
            EpollEvent {
                events: Events(events),
                token: Token(data),
            }
        })
        .map_err(errno)
    }

    fn listen(&self, addr: SocketAddr, backlog: u32, reuse_port: bool) -> Result<Fd> {
        real::net::listen(addr, backlog, reuse_port)
            .map(Fd)
            .map_err(errno)
    }

    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddr)> {
        real::net::accept(fd.0)
            .map(|(fd, addr)| (Fd(fd), addr))
            .map_err(errno)
    }

    fn connect(&self, addr: SocketAddr) -> Result<Fd> {
        real::net::connect(addr).map(Fd).map_err(errno)
    }

    fn local_addr(&self, fd: Fd) -> Result<SocketAddr> {
        real::net::local_addr(fd.0).map_err(errno)
    }

    fn peer_addr(&self, fd: Fd) -> Result<SocketAddr> {
        real::net::peer_addr(fd.0).map_err(errno)
    }

    fn take_error(&self, fd: Fd) -> Result<Option<Errno>> {
        real::net::take_error(fd.0)
            .map(|pending| pending.map(errno))
            .map_err(errno)
    }

    fn inq(&self, fd: Fd) -> Result<usize> {
        real::io::inq(fd.0).map_err(errno)
    }

    fn outq(&self, fd: Fd) -> Result<usize> {
        real::io::outq(fd.0).map_err(errno)
    }

    fn read(&self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        real::io::read(fd.0, buf).map_err(errno)
    }

    fn write(&self, fd: Fd, buf: &[u8]) -> Result<usize> {
        real::io::write(fd.0, buf).map_err(errno)
    }

    fn writev(&self, fd: Fd, bufs: &[&[u8]]) -> Result<usize> {
        real::io::writev(fd.0, bufs).map_err(errno)
    }

    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        let how = match how {
            Shutdown::Read => real::io::Shutdown::Read,
            Shutdown::Write => real::io::Shutdown::Write,
            Shutdown::Both => real::io::Shutdown::Both,
        };
        real::io::shutdown(fd.0, how).map_err(errno)
    }

    fn close(&self, fd: Fd) -> Result<()> {
        real::io::close(fd.0).map_err(errno)
    }

    fn dup(&self, fd: Fd) -> Result<Fd> {
        real::io::dup(fd.0).map(Fd).map_err(errno)
    }

    fn reset(&self, fd: Fd) -> Result<()> {
        real::net::reset(fd.0).map_err(errno)
    }

    fn eventfd(&self) -> Result<Fd> {
        real::io::eventfd().map(Fd).map_err(errno)
    }

    fn eventfd_read(&self, fd: Fd) -> Result<u64> {
        real::io::eventfd_read(fd.0).map_err(errno)
    }

    fn eventfd_write(&self, fd: Fd, value: u64) -> Result<()> {
        real::io::eventfd_write(fd.0, value).map_err(errno)
    }

    fn socketpair(&self) -> Result<(Fd, Fd)> {
        real::net::socketpair()
            .map(|(a, b)| (Fd(a), Fd(b)))
            .map_err(errno)
    }

    fn pipe(&self) -> Result<(Fd, Fd)> {
        real::io::pipe()
            .map(|(reader, writer)| (Fd(reader), Fd(writer)))
            .map_err(errno)
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration)
    }

    /// Starts a named `std` thread. Panics if the OS refuses to create it (the seam has no
    /// error path for spawning; running out of threads is fatal for a test harness anyway).
    fn spawn<F>(&self, name: &str, f: F) -> RealJoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(f)
            .unwrap_or_else(|error| panic!("cannot spawn thread {name:?}: {error}"));
        RealJoinHandle(handle)
    }

    fn current(&self) -> RealThread {
        RealThread(std::thread::current())
    }

    fn park(&self, timeout: Option<Duration>) {
        match timeout {
            Some(timeout) => std::thread::park_timeout(timeout),
            None => std::thread::park(),
        }
    }

    fn mutex<T: Send + 'static>(&self, value: T) -> RealMutex<T> {
        RealMutex(std::sync::Mutex::new(value))
    }

    fn atomic(&self, value: u64) -> RealAtomic {
        RealAtomic(AtomicU64::new(value))
    }
}
