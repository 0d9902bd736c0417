//! The seam over the simulated kernel of the `sim` crate.
//!
//! `SimOs` is a zero-sized handle: the world it talks to is the one running on the calling
//! OS thread (see `sim::sched`), so it is `Copy`, `Send` and `Sync` at no cost, and every call
//! made through it is a preemption point of that world.

use super::{
    CtlOp, EpollEvent, Errno, Events, Fd, Os, OsAtomic, OsJoin, OsMutex, OsThread, Result,
    Shutdown, Token,
};
use sim::sched::{Outcome, Report, WorldConfig};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The simulated kernel of the world running on the calling OS thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimOs;

fn errno<T>(result: sim::kernel::KResult<T>) -> Result<T> {
    result.map_err(Errno)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl SimOs {
    /// Runs `main` as the first thread of a new simulated world built from `config`, on the
    /// calling OS thread, and reports how the run ended.
    pub fn run<F: FnOnce(SimOs) + 'static>(config: WorldConfig, main: F) -> Report {
        sim::sched::run(config, move || main(SimOs))
    }

    /// Runs `f` on the one thread of a world in conformance mode (synchronous delivery, no
    /// faults, nothing else to schedule) and returns its result.
    ///
    /// Panics with the run's outcome if `f` does not finish (it cannot deadlock alone, but a
    /// panic inside it is reported here).
    pub fn conformance<R: 'static, F: FnOnce(SimOs) -> R + 'static>(f: F) -> R {
        let slot: Rc<RefCell<Option<R>>> = Rc::new(RefCell::new(None));
        let filled = Rc::clone(&slot);
        let config = WorldConfig {
            max_steps: u64::MAX,
            ..WorldConfig::default()
        };
        let report = SimOs::run(config, move |os| {
            *filled.borrow_mut() = Some(f(os));
        });
        match report.outcome {
            Outcome::Finished => slot.borrow_mut().take().expect("the main thread finished"),
            other => panic!("the conformance run did not finish: {other:?}"),
        }
    }
}

impl Os for SimOs {
    type Mutex<T: Send + 'static> = sim::sync::Mutex<T>;
    type Atomic = sim::sync::Atomic;
    type Thread = SimThread;
    type JoinHandle = SimJoin;

    fn epoll_create(&self) -> Result<Fd> {
        errno(sim::sys::epoll_create()).map(Fd)
    }

    fn epoll_ctl(&self, epfd: Fd, op: CtlOp, fd: Fd, interest: Events, token: Token) -> Result<()> {
        let op = match op {
            CtlOp::Add => libc::EPOLL_CTL_ADD,
            CtlOp::Mod => libc::EPOLL_CTL_MOD,
            CtlOp::Del => libc::EPOLL_CTL_DEL,
        };
        errno(sim::sys::epoll_ctl(epfd.0, op, fd.0, interest.0, token.0))
    }

    fn epoll_wait(
        &self,
        epfd: Fd,
        out: &mut Vec<EpollEvent>,
        max_events: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        // The kernel fills plain pairs; the scratch vector is per OS thread so that the hot
        // path allocates nothing.
        thread_local! {
            static SCRATCH: RefCell<Vec<(u32, u64)>> = const { RefCell::new(Vec::new()) };
        }
        let mut pairs = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let result = sim::sys::epoll_wait(epfd.0, &mut pairs, max_events, timeout.map(nanos));
        out.clear();
        out.extend(pairs.iter().map(|&(events, token)| EpollEvent {
            events: Events(events),
            token: Token(token),
        }));
        SCRATCH.with(|s| *s.borrow_mut() = pairs);
        errno(result)
    }

    fn listen(&self, addr: SocketAddr, backlog: u32, reuse_port: bool) -> Result<Fd> {
        errno(sim::sys::listen(addr, backlog, reuse_port)).map(Fd)
    }

    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddr)> {
        errno(sim::sys::accept(fd.0)).map(|(fd, addr)| (Fd(fd), addr))
    }

    fn connect(&self, addr: SocketAddr) -> Result<Fd> {
        errno(sim::sys::connect(addr)).map(Fd)
    }

    fn local_addr(&self, fd: Fd) -> Result<SocketAddr> {
        errno(sim::sys::local_addr(fd.0))
    }

    fn peer_addr(&self, fd: Fd) -> Result<SocketAddr> {
        errno(sim::sys::peer_addr(fd.0))
    }

    fn take_error(&self, fd: Fd) -> Result<Option<Errno>> {
        errno(sim::sys::take_error(fd.0)).map(|e| e.map(Errno))
    }

    fn inq(&self, fd: Fd) -> Result<usize> {
        errno(sim::sys::inq(fd.0))
    }

    fn outq(&self, fd: Fd) -> Result<usize> {
        errno(sim::sys::outq(fd.0))
    }

    fn read(&self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        errno(sim::sys::read(fd.0, buf))
    }

    fn write(&self, fd: Fd, buf: &[u8]) -> Result<usize> {
        errno(sim::sys::writev(fd.0, &[buf]))
    }

    fn writev(&self, fd: Fd, bufs: &[&[u8]]) -> Result<usize> {
        errno(sim::sys::writev(fd.0, bufs))
    }

    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        errno(sim::sys::shutdown(fd.0, how))
    }

    fn close(&self, fd: Fd) -> Result<()> {
        errno(sim::sys::close(fd.0))
    }

    fn dup(&self, fd: Fd) -> Result<Fd> {
        errno(sim::sys::dup(fd.0)).map(Fd)
    }

    fn reset(&self, fd: Fd) -> Result<()> {
        errno(sim::sys::reset(fd.0))
    }

    fn eventfd(&self) -> Result<Fd> {
        errno(sim::sys::eventfd()).map(Fd)
    }

    fn eventfd_read(&self, fd: Fd) -> Result<u64> {
        errno(sim::sys::eventfd_read(fd.0))
    }

    fn eventfd_write(&self, fd: Fd, value: u64) -> Result<()> {
        errno(sim::sys::eventfd_write(fd.0, value))
    }

    fn socketpair(&self) -> Result<(Fd, Fd)> {
        errno(sim::sys::socketpair()).map(|(a, b)| (Fd(a), Fd(b)))
    }

    fn pipe(&self) -> Result<(Fd, Fd)> {
        errno(sim::sys::pipe()).map(|(r, w)| (Fd(r), Fd(w)))
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(sim::sys::now_ns())
    }

    fn sleep(&self, duration: Duration) {
        sim::sys::sleep(nanos(duration));
    }

    fn spawn<F>(&self, name: &str, f: F) -> SimJoin
    where
        F: FnOnce() + Send + 'static,
    {
        SimJoin(sim::sys::spawn(name, Box::new(f)))
    }

    fn current(&self) -> SimThread {
        SimThread(sim::sys::current())
    }

    fn park(&self, timeout: Option<Duration>) {
        sim::sys::park(timeout.map(nanos));
    }

    fn mutex<T: Send + 'static>(&self, value: T) -> sim::sync::Mutex<T> {
        sim::sync::Mutex::new(value)
    }

    fn atomic(&self, value: u64) -> sim::sync::Atomic {
        sim::sync::Atomic::new(value)
    }
}

impl<T: Send> OsMutex<T> for sim::sync::Mutex<T> {
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        sim::sync::Mutex::lock(self, f)
    }
}

impl OsAtomic for sim::sync::Atomic {
    fn load(&self) -> u64 {
        sim::sync::Atomic::load(self)
    }
    fn store(&self, value: u64) {
        sim::sync::Atomic::store(self, value)
    }
    fn swap(&self, value: u64) -> u64 {
        sim::sync::Atomic::swap(self, value)
    }
    fn compare_exchange(&self, current: u64, new: u64) -> std::result::Result<u64, u64> {
        sim::sync::Atomic::compare_exchange(self, current, new)
    }
    fn fetch_add(&self, delta: u64) -> u64 {
        sim::sync::Atomic::fetch_add(self, delta)
    }
    fn fetch_sub(&self, delta: u64) -> u64 {
        sim::sync::Atomic::fetch_sub(self, delta)
    }
}

/// A simulated thread, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimThread(pub u32);

impl OsThread for SimThread {
    fn unpark(&self) {
        sim::sys::unpark(self.0);
    }
}

/// The handle of a spawned simulated thread.
#[derive(Debug)]
pub struct SimJoin(u32);

impl OsJoin for SimJoin {
    type Thread = SimThread;
    fn thread(&self) -> SimThread {
        SimThread(self.0)
    }
    fn join(self) -> std::result::Result<(), String> {
        sim::sys::join(self.0)
    }
}
