//! The dependence relation on Os operations: which calls give the same kernel state in
//! either order (independent), and which may not (dependent). The scheduler spends its
//! decisions where two threads' next calls are dependent (`sched::strategy`), and the
//! exhaustive search prunes orders of independent calls (`sched::exhaustive`).
//!
//! A call's [`Footprint`] is the set of objects it may read or write, resolved against the
//! kernel as it is when the call is about to run. Two calls are dependent when their
//! footprints share an object, unless both only read it (two atomic loads); a footprint
//! that is [`Footprint::any`] is dependent with everything. Where a call's reach is not
//! known, it is `any`. The objects:
//!
//! | object | calls that touch it |
//! |---|---|
//! | a connection (both ends of a TCP or unix stream and the wire between them) | every call on either end's descriptor: `read`, `write`, `shutdown`, `close`, `reset`, `dup`, the ioctls and socket options, `epoll_ctl` naming it |
//! | an epoll instance | `epoll_wait` on it (and its re-poll after a wakeup), `epoll_ctl` on it, and every call on a descriptor it watches (a call on a file wakes the instances on its wait queue, and a wait re-polls the files it watches); an instance watched by another instance reaches that one too; a call on a stream socket also reaches the instances watching the peer end when it wakes them itself: unix sockets, TCP with synchronous delivery (`latency_ns_max = 0`), and a TCP socket whose next segment acknowledges the peer's FIN (with latency, a segment wakes the peer when it is delivered, an event of the network) |
//! | a listener | `accept` on it, `connect` to its port, calls on a socket waiting in its queues, `close` and `shutdown` of it |
//! | an eventfd, a pipe | calls on its descriptors (a pipe's two ends are one object) |
//! | the descriptor table | calls that allocate or free descriptor numbers (`socket`-like calls, `accept`, `connect`, `dup`, `close`, `reset`, `listen`), and a call naming a number that is not open (an allocation may give it a file) |
//! | the port table | `listen`, `connect` |
//! | a lock, an atomic | acquiring the lock; accessing the atomic (loads only read) |
//! | the thread table | `spawn` (thread ids are handed out in order) |
//! | a thread | `unpark` of it is dependent with every call of that thread (`join` touches only the caller: it blocks until the thread ended, whatever the order, see `sys::join`) |
//!
//! `sleep`, a thread's first call after it was spawned, and its first call after a sleep are
//! `any`: their next call is not known, or they read the step counter (`sys::steps`).
//!
//! What "the same state in either order" leaves out, on purpose:
//! - **The random streams.** A fault or a latency drawn by one call and not the other changes
//!   which draw each call gets; the streams are treated as an oracle, not as shared state.
//!   In the exhaustive search faults are off and delivery is synchronous, so nothing draws.
//! - **The clock.** Every step costs virtual time, and segments in flight are delivered by
//!   time, at the step that passes their due time; which thread's call precedes a delivery
//!   therefore depends on the order of unrelated calls. A delivery is an event of the network
//!   on the receiving connection: dependent with the calls on it and on the instances watching
//!   it, as every call on that connection is. In the exhaustive search calls cost no time, so
//!   deliveries and deadlines happen only when no thread can run, at the same point of every
//!   equivalent order. The end of an EMFILE window (`Config::accept_emfile_window_ns`) is a
//!   timer of the same kind, an event of the descriptor table that `accept` depends on.

use super::epoll::Watcher;
use super::fdtable::Obj;
use super::Kernel;

/// A kernel call as the dependence relation sees it: which descriptors or table it names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KernelCall {
    /// A call on one descriptor that neither allocates nor frees a number (`shutdown`, the
    /// ioctls and socket options, eventfd reads and writes; `read` and `write` as well when
    /// told apart from them does not matter).
    Fd(i32),
    /// `read` on a descriptor.
    Read(i32),
    /// `write` (`writev`) on a descriptor.
    Write(i32),
    /// `close` or `reset`: the descriptor and the table.
    Close(i32),
    /// `dup`: the descriptor and the table.
    Dup(i32),
    /// `accept` on a listener: the listener and the table.
    Accept(i32),
    /// `connect` to a port: the port's listeners, the port table and the descriptor table.
    Connect(u16),
    /// `listen`: the port table and the descriptor table.
    Listen,
    /// `socketpair`, `pipe`, `eventfd`, `epoll_create`: the descriptor table only.
    Alloc,
    /// `epoll_ctl` on an instance for a descriptor.
    EpollCtl {
        /// The instance.
        epfd: i32,
        /// The descriptor registered, changed or removed.
        fd: i32,
    },
    /// `epoll_wait` on an instance, or its re-poll after a wakeup.
    EpollWait(i32),
}

/// How far a call on a stream socket may reach across the connection.
#[derive(Copy, Clone)]
enum Reach {
    /// Any call: whatever the socket's state allows.
    Any,
    /// A read: only what the window it opens makes the two ends send.
    Read,
}

/// The kinds of object a footprint names; the kind sits in a key's top bits.
#[derive(Copy, Clone)]
#[repr(u64)]
enum Kind {
    Conn = 1,
    Epoll,
    Listener,
    File,
    Pipe,
    FdTable,
    Ports,
    Lock,
    Atomic,
    Threads,
}

/// Where a key's kind starts.
const KIND_SHIFT: u32 = 28;
/// A key flag: the call only reads the object (two reads commute).
const READ: u32 = 1 << 27;
/// The objects a footprint holds before it gives up and becomes `any`.
const KEYS_MAX: usize = 6;

/// What one call may touch: a few objects, or anything.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Footprint {
    keys: [u32; KEYS_MAX],
    len: u8,
    any: bool,
    /// The thread whose every call this one is dependent with (`unpark`), or
    /// `u32::MAX`.
    thread: u32,
}

impl Default for Footprint {
    fn default() -> Footprint {
        Footprint {
            keys: [0; KEYS_MAX],
            len: 0,
            any: false,
            thread: u32::MAX,
        }
    }
}

impl Footprint {
    /// A footprint dependent with every call.
    pub fn any() -> Footprint {
        Footprint {
            any: true,
            ..Footprint::default()
        }
    }

    /// The footprint of acquiring the lock numbered `id` (see [`object_id`]).
    pub fn lock(id: u32) -> Footprint {
        Footprint::of(Kind::Lock, id, false)
    }

    /// The footprint of an access to the atomic numbered `id` (see [`object_id`]); `read`
    /// for a load.
    pub fn atomic(id: u32, read: bool) -> Footprint {
        Footprint::of(Kind::Atomic, id, read)
    }

    /// The footprint of `spawn`.
    pub fn spawn() -> Footprint {
        Footprint::of(Kind::Threads, 0, false)
    }

    /// The footprint of a call that is dependent with every call of thread `tid` and
    /// touches nothing else (`unpark`; `park` names its own thread).
    pub fn thread(tid: u32) -> Footprint {
        Footprint {
            thread: tid,
            ..Footprint::default()
        }
    }

    fn of(kind: Kind, id: u32, read: bool) -> Footprint {
        let mut footprint = Footprint::default();
        footprint.push(key(kind, id) | if read { READ } else { 0 });
        footprint
    }

    /// Whether the footprint is dependent with everything.
    pub fn is_any(&self) -> bool {
        self.any
    }

    fn push(&mut self, key: u32) {
        if self.any || self.keys[..self.len as usize].contains(&key) {
            return;
        }
        if self.len as usize == KEYS_MAX {
            // Conservative: a call that reaches this many objects is treated as reaching all.
            self.any = true;
            return;
        }
        self.keys[self.len as usize] = key;
        self.len += 1;
    }

    /// Whether a call of thread `mine` with this footprint and a call of thread `theirs`
    /// with footprint `other` may give different states in the two orders.
    pub fn depends(&self, mine: u32, other: &Footprint, theirs: u32) -> bool {
        if self.any || other.any || self.thread == theirs || other.thread == mine {
            return true;
        }
        let ours = &self.keys[..self.len as usize];
        other.keys[..other.len as usize]
            .iter()
            .any(|&b| ours.iter().any(|&a| conflict(a, b)))
    }

    /// This footprint and `other` as one (the calls of both).
    pub fn union(&self, other: &Footprint) -> Footprint {
        let mut joined = *self;
        joined.any |= other.any;
        if joined.thread == u32::MAX {
            joined.thread = other.thread;
        } else if other.thread != u32::MAX && other.thread != joined.thread {
            joined.any = true;
        }
        for &k in &other.keys[..other.len as usize] {
            joined.push(k);
        }
        joined
    }
}

/// How many kinds of object there are (keys' kinds are `1..KINDS`).
pub(crate) const KINDS: usize = Kind::Threads as usize + 1;

/// A footprint's object, taken apart: its kind (`1..KINDS`), its id, and whether the call
/// only reads it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Object {
    pub(crate) kind: usize,
    pub(crate) id: usize,
    pub(crate) read: bool,
}

thread_local! {
    /// The run this OS thread's world is in, and the next object id it hands out.
    static NUMBERING: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 1)) };
}

/// Starts numbering the locks and atomics of a new run on this OS thread.
pub(crate) fn number_objects_anew() {
    NUMBERING.with(|n| n.set((n.get().0.wrapping_add(1), 1)));
}

/// The object id of the lock or atomic whose id slot is `slot`: numbered in the order of
/// first use within the run (an object made in an earlier run is numbered afresh), so the
/// ids of a run depend only on the run. Ids name objects for the dependence relation, never
/// an order or a trace.
pub fn object_id(slot: &std::sync::atomic::AtomicU64) -> u32 {
    use std::sync::atomic::Ordering;
    let (run, next) = NUMBERING.with(|n| n.get());
    let held = slot.load(Ordering::Relaxed);
    if held >> 32 == u64::from(run) && held as u32 != 0 {
        return held as u32;
    }
    // Past the key's id bits, ids wrap: two objects then share one, which only adds
    // dependence.
    let id = next;
    NUMBERING.with(|n| n.set((run, if next + 1 >= READ { 1 } else { next + 1 })));
    slot.store(u64::from(run) << 32 | u64::from(id), Ordering::Relaxed);
    id
}

impl Footprint {
    /// The objects named (empty for `any`).
    pub(crate) fn objects(&self) -> impl Iterator<Item = Object> + '_ {
        self.keys[..self.len as usize].iter().map(|&k| Object {
            kind: (k >> KIND_SHIFT) as usize,
            id: (k & (READ - 1)) as usize,
            read: k & READ != 0,
        })
    }

    /// The thread every call of which this one is dependent with, if any.
    pub(crate) fn thread_named(&self) -> Option<u32> {
        (self.thread != u32::MAX).then_some(self.thread)
    }
}

/// The key of object `id` of `kind`. Ids beyond the key's bits share keys: more
/// dependence, never less.
fn key(kind: Kind, id: impl Into<u64>) -> u32 {
    (kind as u32) << KIND_SHIFT | (id.into() % u64::from(READ)) as u32
}

/// Two keys conflict when they name one object and not both only read it.
fn conflict(a: u32, b: u32) -> bool {
    (a | READ) == (b | READ) && (a & b & READ) == 0
}

impl Kernel {
    /// Something a footprint is resolved from changed (descriptors, files, epoll items,
    /// socket pairs, listener queues): the cached footprints are stale.
    pub(super) fn structure_changed(&mut self) {
        self.structure_epoch += 1;
    }

    /// The open file description a call on one descriptor is made on, with the structure
    /// epoch: as long as both stay, so does the call's footprint.
    pub(crate) fn call_file(&self, call: KernelCall) -> Option<(u32, u64)> {
        let (KernelCall::Fd(fd)
        | KernelCall::Read(fd)
        | KernelCall::Write(fd)
        | KernelCall::EpollWait(fd)) = call
        else {
            return None;
        };
        self.fd_file(fd)
            .ok()
            .map(|file| (file, self.structure_epoch))
    }

    /// A footprint of `call` that holds whatever the sockets' queues: [`Kernel::footprint`]
    /// of the call made as a generic [`KernelCall::Fd`] (which reaches a peer's instances
    /// whenever a call on the socket may), from a per-file cache for the calls on one
    /// descriptor (the calls of every step). The reduced walk asks at most preemption
    /// points, and the structure changes far less often than it asks.
    pub fn footprint_cached(&mut self, call: KernelCall) -> Footprint {
        let (KernelCall::Fd(fd)
        | KernelCall::Read(fd)
        | KernelCall::Write(fd)
        | KernelCall::EpollWait(fd)) = call
        else {
            return self.footprint(call);
        };
        let call = match call {
            KernelCall::EpollWait(_) => call,
            _ => KernelCall::Fd(fd),
        };
        let Ok(file) = self.fd_file(fd) else {
            return self.footprint(call);
        };
        let epoch = self.structure_epoch;
        if let Some(&(at, footprint)) = self.footprint_cache.get(file as usize) {
            if at == epoch {
                debug_assert_eq!(footprint, self.footprint(call), "a stale footprint");
                return footprint;
            }
        }
        let footprint = self.footprint(call);
        if self.footprint_cache.len() <= file as usize {
            self.footprint_cache
                .resize(file as usize + 1, (0, Footprint::default()));
        }
        self.footprint_cache[file as usize] = (epoch, footprint);
        footprint
    }

    /// The footprint of `call` if it ran now.
    pub fn footprint(&self, call: KernelCall) -> Footprint {
        let mut fp = Footprint::default();
        match call {
            KernelCall::Fd(fd) => self.fd_footprint(fd, Reach::Any, &mut fp),
            KernelCall::Read(fd) => self.fd_footprint(fd, Reach::Read, &mut fp),
            KernelCall::Write(fd) => self.fd_footprint(fd, Reach::Any, &mut fp),
            KernelCall::Close(fd) | KernelCall::Dup(fd) | KernelCall::Accept(fd) => {
                fp.push(key(Kind::FdTable, 0u32));
                self.fd_footprint(fd, Reach::Any, &mut fp);
            }
            KernelCall::Connect(port) => {
                fp.push(key(Kind::FdTable, 0u32));
                fp.push(key(Kind::Ports, 0u32));
                if let Some(group) = self.ports.get(&port) {
                    for &l in &group.listeners {
                        fp.push(key(Kind::Listener, l));
                        self.watchers_footprint(self.listener(l).file, &mut fp);
                    }
                }
            }
            KernelCall::Listen => {
                fp.push(key(Kind::FdTable, 0u32));
                fp.push(key(Kind::Ports, 0u32));
            }
            KernelCall::Alloc => fp.push(key(Kind::FdTable, 0u32)),
            KernelCall::EpollCtl { epfd, fd } => {
                self.fd_footprint(epfd, Reach::Any, &mut fp);
                self.fd_footprint(fd, Reach::Any, &mut fp);
            }
            KernelCall::EpollWait(epfd) => self.fd_footprint(epfd, Reach::Any, &mut fp),
        }
        fp
    }

    /// The object behind `fd` and the epoll instances its wakeups reach; the descriptor
    /// table when `fd` is not open.
    fn fd_footprint(&self, fd: i32, reach: Reach, fp: &mut Footprint) {
        let Ok(file) = self.fd_file(fd) else {
            fp.push(key(Kind::FdTable, 0u32));
            return;
        };
        match self.file(file).obj {
            Obj::Sock(s) => {
                let sock = self.sock(s);
                let peer = sock
                    .peer
                    .and_then(|p| self.sock_get(p).map(|peer| (p.id, peer)));
                let conn = peer.map_or(s, |(id, _)| id.min(s));
                fp.push(key(Kind::Conn, conn));
                // A socket in a listener's queues (or whose peer is) changes when it is
                // accepted or the listener closes.
                let queued = sock.listener.or(peer.and_then(|(_, p)| p.listener));
                if let Some(l) = queued {
                    fp.push(key(Kind::Listener, l));
                }
                self.watchers_footprint(file, fp);
                // The peer's instances are woken by what reaches the peer: at once on unix
                // sockets and on a synchronous wire, else when the segment is delivered (an
                // event of the network), except the ACK of a FIN this socket still owes. A
                // TCP read reaches the peer only through the window it opens: when the peer
                // (or this socket) has something to send then.
                let synchronous = self.cfg.latency_ns_max == 0;
                let reaches_peer = sock.proto == super::stream::Proto::Unix
                    || sock.ack_pending
                    || (synchronous
                        && match reach {
                            Reach::Any => true,
                            Reach::Read => {
                                sock.may_transmit()
                                    || peer.is_some_and(|(_, peer)| peer.may_transmit())
                            }
                        });
                if let Some(peer_file) = peer.and_then(|(_, p)| p.file).filter(|_| reaches_peer) {
                    self.watchers_footprint(peer_file, fp);
                }
            }
            Obj::Listener(l) => {
                fp.push(key(Kind::Listener, l));
                self.watchers_footprint(file, fp);
            }
            Obj::PipeRead(p) | Obj::PipeWrite(p) => {
                fp.push(key(Kind::Pipe, p));
                let (read_file, write_file) = self.pipe_files(p);
                for end in [read_file, write_file].into_iter().flatten() {
                    self.watchers_footprint(end, fp);
                }
            }
            Obj::EventFd(_) => {
                fp.push(key(Kind::File, file));
                self.watchers_footprint(file, fp);
            }
            Obj::Epoll(ep) => {
                fp.push(key(Kind::Epoll, ep));
                self.watchers_footprint(file, fp);
            }
        }
    }

    /// The epoll instances on `file`'s wait queue, and the instances watching those (one
    /// level of nesting; deeper nests are rare and reach `any` through the key limit).
    fn watchers_footprint(&self, file: u32, fp: &mut Footprint) {
        for &Watcher { ep, .. } in &self.file(file).watchers {
            fp.push(key(Kind::Epoll, ep));
            for outer in &self.file(self.ep(ep).file).watchers {
                fp.push(key(Kind::Epoll, outer.ep));
            }
        }
    }
}
