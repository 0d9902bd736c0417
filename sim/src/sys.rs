//! The system-call layer simulated threads use: each function is a preemption point, then
//! the kernel call, then the bookkeeping (threads the call woke, one trace record).
//!
//! Calls made outside a simulated world panic: there is no kernel to talk to.

use crate::kernel::{Errno, KResult, Kernel, KernelCall};
use crate::sched::{
    block, preempt, preempt_then, with_world, Access, Block, Op, Record, ThreadState, Wake, World,
};
use std::net::SocketAddr;

/// A value a call returns, as the trace's single number.
trait TraceValue {
    fn trace_value(&self) -> i64;
}

impl TraceValue for () {
    fn trace_value(&self) -> i64 {
        0
    }
}

impl TraceValue for i32 {
    fn trace_value(&self) -> i64 {
        i64::from(*self)
    }
}

impl TraceValue for usize {
    fn trace_value(&self) -> i64 {
        *self as i64
    }
}

impl TraceValue for u64 {
    fn trace_value(&self) -> i64 {
        *self as i64
    }
}

impl TraceValue for (i32, i32) {
    fn trace_value(&self) -> i64 {
        i64::from(self.0) << 32 | i64::from(self.1)
    }
}

impl TraceValue for (i32, SocketAddr) {
    fn trace_value(&self) -> i64 {
        i64::from(self.0)
    }
}

impl TraceValue for SocketAddr {
    fn trace_value(&self) -> i64 {
        i64::from(self.port())
    }
}

impl TraceValue for Option<Errno> {
    fn trace_value(&self) -> i64 {
        i64::from(self.unwrap_or(0))
    }
}

fn encode<T: TraceValue>(result: &KResult<T>) -> i64 {
    match result {
        Ok(value) => value.trace_value(),
        Err(errno) => -i64::from(*errno),
    }
}

/// What every kernel call returns once the run is over and the remaining threads unwind:
/// their destructors must not change the kernel the checkers are about to read.
const TORN_DOWN: Errno = libc::ESHUTDOWN;

/// One kernel call: preempt, call, collect wakeups, record. `names` is what the call names,
/// for the dependence relation.
fn call<T: TraceValue>(
    op: Op,
    args: [i64; 2],
    names: KernelCall,
    f: impl FnOnce(&mut Kernel) -> KResult<T>,
) -> KResult<T> {
    call_observed(op, args, names, f, |_, _| {})
}

/// [`call`], then `observe` with the result, in the same visit to the world: the hazard
/// observer's bookkeeping must not cost every read a second one.
fn call_observed<T: TraceValue>(
    op: Op,
    args: [i64; 2],
    names: KernelCall,
    f: impl FnOnce(&mut Kernel) -> KResult<T>,
    observe: impl FnOnce(&mut World, &KResult<T>),
) -> KResult<T> {
    preempt_then(Access::Kernel(names), |w| {
        if w.tearing_down {
            return Err(TORN_DOWN);
        }
        if op.interruptible() && w.interrupted(true) {
            w.record(op, args, -i64::from(libc::EINTR));
            return Err(libc::EINTR);
        }
        let result = f(&mut w.kernel);
        w.collect_kernel_wakeups();
        w.record(op, args, encode(&result));
        observe(w, &result);
        result
    })
}

/// `epoll_create1`.
pub fn epoll_create() -> KResult<i32> {
    call(Op::EpollCreate, [-1, -1], KernelCall::Alloc, |k| {
        k.epoll_create()
    })
}

/// `epoll_ctl`; `op` is `libc::EPOLL_CTL_*`.
pub fn epoll_ctl(epfd: i32, op: i32, fd: i32, events: u32, data: u64) -> KResult<()> {
    let args = [
        i64::from(epfd) << 32 | i64::from(fd),
        i64::from(op) << 32 | i64::from(events),
    ];
    call(Op::EpollCtl, args, KernelCall::EpollCtl { epfd, fd }, |k| {
        k.epoll_ctl(epfd, op, fd, events, data)
    })
}

/// `epoll_wait`: appends up to `max_events` `(events, data)` pairs to `out` (cleared first);
/// blocks until one is ready or `timeout_ns` passes (`None` waits forever).
pub fn epoll_wait(
    epfd: i32,
    out: &mut Vec<(u32, u64)>,
    max_events: usize,
    timeout_ns: Option<u64>,
) -> KResult<usize> {
    out.clear();
    let args = [i64::from(epfd), max_events as i64];
    let access = Access::Kernel(KernelCall::EpollWait(epfd));
    let entry = preempt_then(access, |w| {
        if w.tearing_down {
            return None;
        }
        if w.interrupted(false) {
            w.record(Op::EpollWait, args, -i64::from(libc::EINTR));
            return Some(Err(libc::EINTR));
        }
        Some(Ok((
            w.current_tid(),
            timeout_ns.map(|t| w.now_ns.saturating_add(t)),
        )))
    });
    let (me, deadline) = match entry {
        None => return Err(TORN_DOWN),
        Some(Err(errno)) => return Err(errno),
        Some(Ok(entry)) => entry,
    };
    // The thread's wait after it blocked, if it did.
    let mut woken: Option<Wake> = None;
    loop {
        // One visit polls, and either returns the events or queues the thread as a waiter.
        let polled = with_world(|w| {
            if let Some(wake) = woken {
                w.kernel.epoll_remove_waiter(epfd, me);
                if wake == Wake::Timeout && w.tearing_down {
                    return Some(Ok(0));
                }
            }
            let polled = w.kernel.epoll_poll(epfd, max_events, out);
            w.collect_kernel_wakeups();
            let n = match polled {
                Ok(n) => n,
                Err(errno) => {
                    w.record(Op::EpollWait, args, -i64::from(errno));
                    return Some(Err(errno));
                }
            };
            let expired = deadline.is_some_and(|d| w.now_ns >= d);
            if n > 0 || expired || timeout_ns == Some(0) {
                if let Some(observer) = w.observer.as_mut() {
                    observer.on_events(&w.kernel, me, w.step, epfd, out);
                }
                w.record(Op::EpollWait, args, n as i64);
                for &(events, token) in out.iter() {
                    w.trace.push(Record::Event { events, token });
                }
                return Some(Ok(n));
            }
            if let Some(observer) = w.observer.as_mut() {
                observer.on_block(&w.kernel, me, w.step);
            }
            w.kernel.epoll_add_waiter(epfd, me);
            None
        });
        if let Some(result) = polled {
            return result;
        }
        woken = Some(block(Block::Epoll(epfd), deadline, access));
    }
}

/// `listen` on `addr`.
pub fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> KResult<i32> {
    let args = [i64::from(addr.port()), i64::from(backlog)];
    call(Op::Listen, args, KernelCall::Listen, |k| {
        k.listen(addr, backlog, reuse_port)
    })
}

/// `accept4`.
pub fn accept(fd: i32) -> KResult<(i32, SocketAddr)> {
    call_observed(
        Op::Accept,
        [i64::from(fd), -1],
        KernelCall::Accept(fd),
        |k| k.accept(fd),
        |w, result| {
            if result.is_err_and(|errno| errno != libc::EINTR) {
                w.observe_drained(fd);
            }
        },
    )
}

/// Non-blocking `connect`.
pub fn connect(addr: SocketAddr) -> KResult<i32> {
    let port = addr.port();
    call(
        Op::Connect,
        [i64::from(port), -1],
        KernelCall::Connect(port),
        |k| k.connect(addr),
    )
}

/// `getsockname`.
pub fn local_addr(fd: i32) -> KResult<SocketAddr> {
    call(
        Op::LocalAddr,
        [i64::from(fd), -1],
        KernelCall::Fd(fd),
        |k| k.local_addr(fd),
    )
}

/// `getpeername`.
pub fn peer_addr(fd: i32) -> KResult<SocketAddr> {
    call(Op::PeerAddr, [i64::from(fd), -1], KernelCall::Fd(fd), |k| {
        k.peer_addr(fd)
    })
}

/// `getsockopt(SO_ERROR)`.
pub fn take_error(fd: i32) -> KResult<Option<Errno>> {
    call(
        Op::TakeError,
        [i64::from(fd), -1],
        KernelCall::Fd(fd),
        |k| k.take_error(fd),
    )
}

/// `SIOCINQ`.
pub fn inq(fd: i32) -> KResult<usize> {
    call(Op::Inq, [i64::from(fd), -1], KernelCall::Fd(fd), |k| {
        k.inq(fd)
    })
}

/// `SIOCOUTQ`.
pub fn outq(fd: i32) -> KResult<usize> {
    call(Op::Outq, [i64::from(fd), -1], KernelCall::Fd(fd), |k| {
        k.outq(fd)
    })
}

/// `read`.
pub fn read(fd: i32, buf: &mut [u8]) -> KResult<usize> {
    let args = [i64::from(fd), buf.len() as i64];
    let asked_for_bytes = !buf.is_empty();
    call_observed(
        Op::Read,
        args,
        KernelCall::Read(fd),
        |k| k.read(fd, buf),
        |w, result| match result {
            // An interrupted read took nothing and proves nothing about the socket.
            Err(libc::EINTR) => {}
            Ok(0) | Err(_) if asked_for_bytes => w.observe_drained(fd),
            Ok(_) => w.observe_read(fd),
            Err(_) => {}
        },
    )
}

/// `writev` (a `write` is a one-buffer `writev`).
pub fn writev(fd: i32, bufs: &[&[u8]]) -> KResult<usize> {
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    call(
        Op::Write,
        [i64::from(fd), len as i64],
        KernelCall::Fd(fd),
        |k| k.writev(fd, bufs),
    )
}

/// `shutdown`; `how` is `libc::SHUT_*`.
pub fn shutdown(fd: i32, how: i32) -> KResult<()> {
    let args = [i64::from(fd), i64::from(how)];
    call(Op::Shutdown, args, KernelCall::Fd(fd), |k| {
        k.shutdown(fd, how)
    })
}

/// `close`.
pub fn close(fd: i32) -> KResult<()> {
    preempt(Access::Kernel(KernelCall::Close(fd)));
    with_world(|w| {
        if w.tearing_down {
            return Err(TORN_DOWN);
        }
        w.observe_drained(fd);
        let result = w.kernel.close(fd);
        w.collect_kernel_wakeups();
        w.record(Op::Close, [i64::from(fd), -1], encode(&result));
        result
    })
}

/// `dup`.
pub fn dup(fd: i32) -> KResult<i32> {
    call(Op::Dup, [i64::from(fd), -1], KernelCall::Dup(fd), |k| {
        k.dup(fd)
    })
}

/// `SO_LINGER 0` then `close`.
pub fn reset(fd: i32) -> KResult<()> {
    call(Op::Reset, [i64::from(fd), -1], KernelCall::Close(fd), |k| {
        k.reset(fd)
    })
}

/// `eventfd`.
pub fn eventfd() -> KResult<i32> {
    call(Op::Eventfd, [-1, -1], KernelCall::Alloc, |k| k.eventfd())
}

/// Reads and resets an eventfd counter.
pub fn eventfd_read(fd: i32) -> KResult<u64> {
    // A successful read empties the counter, so it drains as much as EAGAIN does.
    call_observed(
        Op::EventfdRead,
        [i64::from(fd), -1],
        KernelCall::Fd(fd),
        |k| k.eventfd_read(fd),
        |w, _| w.observe_drained(fd),
    )
}

/// Adds to an eventfd counter.
pub fn eventfd_write(fd: i32, value: u64) -> KResult<()> {
    let args = [i64::from(fd), value as i64];
    call(Op::EventfdWrite, args, KernelCall::Fd(fd), |k| {
        k.eventfd_write(fd, value)
    })
}

/// `socketpair(AF_UNIX, SOCK_STREAM)`.
pub fn socketpair() -> KResult<(i32, i32)> {
    call(Op::Socketpair, [-1, -1], KernelCall::Alloc, |k| {
        k.socketpair()
    })
}

/// `pipe2`: `(read end, write end)`.
pub fn pipe() -> KResult<(i32, i32)> {
    call(Op::Pipe, [-1, -1], KernelCall::Alloc, |k| k.pipe())
}

/// Virtual time in ns. Not a preemption point: reading a clock is not a system call a
/// reactor's correctness can depend on interleaving with.
pub fn now_ns() -> u64 {
    with_world(|w| w.now_ns)
}

/// Whether a connection to `addr` would find an open listener now. Not a preemption point
/// and not traced: it only reads the kernel, for a harness that waits for a server to bind.
pub fn is_listening(addr: SocketAddr) -> bool {
    with_world(|w| w.kernel.accepts_connections_to(addr))
}

/// Steps taken so far (preemption points passed). Not a preemption point.
pub fn steps() -> u64 {
    with_world(|w| w.step)
}

/// Sleeps for `ns` of virtual time. Dependent with every call, and so is its return: a
/// sleeper often reads the step counter next (the driver's idle window), and which calls
/// came before that read depends on the order of all of them.
pub fn sleep(ns: u64) {
    preempt(Access::Any);
    let deadline = with_world(|w| {
        w.record(Op::Sleep, [ns as i64, -1], 0);
        w.now_ns.saturating_add(ns)
    });
    while with_world(|w| w.now_ns < deadline && !w.tearing_down) {
        block(Block::Sleep, Some(deadline), Access::Any);
    }
}

/// Starts a simulated thread running `body`; returns its id.
pub fn spawn(name: &str, body: Box<dyn FnOnce()>) -> u32 {
    preempt(Access::Spawn);
    with_world(|w| {
        let tid = w.spawn(name, body);
        w.record(Op::Spawn, [i64::from(tid), -1], 0);
        tid
    })
}

/// Waits for thread `tid` to end; `Err` carries its panic message.
///
/// Its preemption point and its return touch only the caller's own state: a join made
/// before one of `tid`'s calls blocks, and one made after it either blocks too or (after
/// `tid`'s last) returns at once; either way the caller goes on past it once `tid` ended,
/// with the same result, so the order of a join and `tid`'s calls is not a choice.
pub fn join(tid: u32) -> Result<(), String> {
    preempt(Access::Local);
    loop {
        let result = with_world(|w| {
            w.threads[tid as usize].result.clone().or_else(|| {
                w.tearing_down
                    .then(|| Err("the world was torn down".to_string()))
            })
        });
        if let Some(result) = result {
            with_world(|w| w.record(Op::Join, [i64::from(tid), -1], 0));
            return result;
        }
        block(Block::Join(tid), None, Access::Local);
    }
}

/// The calling simulated thread's id.
pub fn current() -> u32 {
    with_world(|w| w.current_tid())
}

/// Parks the calling thread until unparked or `timeout_ns` passes; may return spuriously
/// (the `spurious_wakeup` fault).
pub fn park(timeout_ns: Option<u64>) {
    preempt(Access::Local);
    let (me, deadline, spurious) = with_world(|w| {
        let me = w.current_tid();
        let p = w.config.faults.spurious_wakeup;
        let spurious = p > 0.0 && w.fault(p, "spurious-wakeup");
        w.record(Op::Park, [-1, -1], 0);
        (me, timeout_ns.map(|t| w.now_ns.saturating_add(t)), spurious)
    });
    let token = with_world(|w| std::mem::take(&mut w.threads[me as usize].park_token));
    if token || spurious {
        return;
    }
    block(Block::Park, deadline, Access::Local);
    with_world(|w| w.threads[me as usize].park_token = false);
}

/// Unparks thread `tid` (or leaves it a token if it is not parked).
pub fn unpark(tid: u32) {
    preempt(Access::Thread(tid));
    with_world(|w| {
        w.record(Op::Unpark, [i64::from(tid), -1], 0);
        if matches!(
            w.threads[tid as usize].state,
            ThreadState::Blocked(Block::Park, _)
        ) {
            w.wake(tid, Wake::Woken);
        } else {
            w.threads[tid as usize].park_token = true;
        }
    });
}
