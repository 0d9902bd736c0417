//! The trace: one compact record per step (which thread made which call with which
//! arguments and result), plus scheduler and epoll details, folded into a running hash and,
//! when asked for, kept for printing. Records are plain numbers so that recording costs a few
//! nanoseconds and printing is stable across runs and machines.

use std::fmt;

/// A simulated call, as it appears in the trace.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Op {
    EpollCreate,
    EpollCtl,
    EpollWait,
    Listen,
    Accept,
    Connect,
    LocalAddr,
    PeerAddr,
    TakeError,
    Inq,
    Outq,
    Read,
    Write,
    Shutdown,
    Close,
    Dup,
    Reset,
    Eventfd,
    EventfdRead,
    EventfdWrite,
    Socketpair,
    Pipe,
    Now,
    Sleep,
    Spawn,
    Join,
    Park,
    Unpark,
    Lock,
    Atomic,
}

impl Op {
    /// Whether the `eintr_io` fault may interrupt the call (`epoll_wait` has its own fault,
    /// `eintr`, on its own path).
    pub(crate) fn interruptible(self) -> bool {
        matches!(self, Op::Read | Op::Write | Op::Accept | Op::Connect)
    }

    /// The call's name in the trace.
    pub fn name(self) -> &'static str {
        match self {
            Op::EpollCreate => "epoll_create",
            Op::EpollCtl => "epoll_ctl",
            Op::EpollWait => "epoll_wait",
            Op::Listen => "listen",
            Op::Accept => "accept",
            Op::Connect => "connect",
            Op::LocalAddr => "getsockname",
            Op::PeerAddr => "getpeername",
            Op::TakeError => "so_error",
            Op::Inq => "inq",
            Op::Outq => "outq",
            Op::Read => "read",
            Op::Write => "write",
            Op::Shutdown => "shutdown",
            Op::Close => "close",
            Op::Dup => "dup",
            Op::Reset => "reset",
            Op::Eventfd => "eventfd",
            Op::EventfdRead => "efd_read",
            Op::EventfdWrite => "efd_write",
            Op::Socketpair => "socketpair",
            Op::Pipe => "pipe",
            Op::Now => "now",
            Op::Sleep => "sleep",
            Op::Spawn => "spawn",
            Op::Join => "join",
            Op::Park => "park",
            Op::Unpark => "unpark",
            Op::Lock => "lock",
            Op::Atomic => "atomic",
        }
    }
}

/// One trace entry.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Record {
    /// Thread `tid` made call `op` at `step`; `ret` is the value, or `-errno`.
    Call {
        /// The step number (one per preemption point).
        step: u64,
        /// The calling thread.
        tid: u32,
        /// The call.
        op: Op,
        /// Its first two arguments (descriptor, length, flags...), `-1` when unused.
        args: [i64; 2],
        /// The result: a value, or `-errno`.
        ret: i64,
    },
    /// One event returned by the `epoll_wait` just recorded.
    Event {
        /// The event bits.
        events: u32,
        /// The registration's token.
        token: u64,
    },
    /// A fault was injected into the call that follows.
    Fault {
        /// The step.
        step: u64,
        /// The thread.
        tid: u32,
        /// Which fault.
        what: &'static str,
    },
    /// A thread blocked (its call returns later, with a step of its own).
    Blocked {
        /// The step of the call that blocked.
        step: u64,
        /// The thread.
        tid: u32,
        /// What it waits for.
        block: super::Block,
    },
    /// The scheduler moved from one thread to another.
    Switch {
        /// The step.
        step: u64,
        /// The thread that runs next.
        to: u32,
    },
}

/// The trace of one run: a hash of every record and, when enabled, the records themselves.
#[derive(Clone, Debug)]
pub struct Trace {
    keep: bool,
    records: Vec<Record>,
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    /// A trace that keeps its records when `keep` is set, and only hashes otherwise.
    pub fn new(keep: bool) -> Trace {
        Trace {
            keep,
            records: Vec::new(),
            hash: FNV_OFFSET,
        }
    }

    fn mix(&mut self, word: u64) {
        // FNV-1a over whole words: cheap, stable, and order-sensitive, which is all a
        // run-twice-and-compare check needs.
        self.hash = (self.hash ^ word).wrapping_mul(FNV_PRIME);
    }

    /// Appends a record.
    pub fn push(&mut self, record: Record) {
        match record {
            Record::Call {
                step,
                tid,
                op,
                args,
                ret,
            } => {
                self.mix(step);
                self.mix(u64::from(tid) << 8 | op as u64);
                self.mix(args[0] as u64);
                self.mix(args[1] as u64);
                self.mix(ret as u64);
            }
            Record::Event { events, token } => {
                self.mix(u64::from(events));
                self.mix(token);
            }
            Record::Fault { step, tid, what } => {
                self.mix(step);
                self.mix(u64::from(tid));
                what.bytes().for_each(|b| self.mix(u64::from(b)));
            }
            Record::Blocked { step, tid, block } => {
                self.mix(step ^ 0x424c);
                self.mix(u64::from(tid));
                self.mix(block_code(block));
            }
            Record::Switch { step, to } => {
                self.mix(step ^ 0x5357);
                self.mix(u64::from(to));
            }
        }
        if self.keep {
            self.records.push(record);
        }
    }

    /// The hash of every record so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The kept records (empty unless the trace was created with `keep`).
    pub fn records(&self) -> &[Record] {
        &self.records
    }
}

/// A number for each kind of block, for the hash.
fn block_code(block: super::Block) -> u64 {
    match block {
        super::Block::Epoll(epfd) => 1 << 32 | u64::from(epfd as u32),
        super::Block::Sleep => 2 << 32,
        super::Block::Park => 3 << 32,
        super::Block::Mutex(id) => 4 << 32 ^ id,
        super::Block::Join(tid) => 5 << 32 | u64::from(tid),
        super::Block::Held => 6 << 32,
    }
}

/// The name of a Linux errno value as the trace prints it.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EAGAIN => "EAGAIN",
        libc::EBADF => "EBADF",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EEXIST => "EEXIST",
        libc::EINTR => "EINTR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOENT => "ENOENT",
        libc::ENOTCONN => "ENOTCONN",
        libc::EPERM => "EPERM",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EISCONN => "EISCONN",
        libc::EINPROGRESS => "EINPROGRESS",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

/// The names of the epoll bits set in `events` (`in,out,rdhup,et`), or `-` for none.
pub fn events_name(events: u32) -> String {
    const NAMES: [(i32, &str); 9] = [
        (libc::EPOLLIN, "in"),
        (libc::EPOLLPRI, "pri"),
        (libc::EPOLLOUT, "out"),
        (libc::EPOLLERR, "err"),
        (libc::EPOLLHUP, "hup"),
        (libc::EPOLLRDHUP, "rdhup"),
        (libc::EPOLLET, "et"),
        (libc::EPOLLONESHOT, "oneshot"),
        (libc::EPOLLEXCLUSIVE, "exclusive"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| events & (*bit as u32) != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

/// The arguments of a call as the trace shows them.
fn call_args(op: Op, args: [i64; 2]) -> String {
    let [a, b] = args;
    match op {
        Op::EpollCtl => {
            let ctl = match (b >> 32) as i32 {
                libc::EPOLL_CTL_ADD => "add",
                libc::EPOLL_CTL_MOD => "mod",
                libc::EPOLL_CTL_DEL => "del",
                _ => "?",
            };
            format!(
                "{}, {ctl}, {}, {}",
                a >> 32,
                a as i32,
                events_name(b as u32)
            )
        }
        Op::Shutdown => {
            let how = match b as i32 {
                libc::SHUT_RD => "rd",
                libc::SHUT_WR => "wr",
                _ => "rdwr",
            };
            format!("{a}, {how}")
        }
        Op::Atomic => {
            let what = ["load", "store", "swap", "cas", "add", "sub"];
            let name = what.get(a as usize).copied().unwrap_or("?");
            if name == "load" {
                name.to_string()
            } else {
                format!("{name} {b}")
            }
        }
        Op::Lock => format!("#{a}"),
        Op::Listen => format!("port {a}, backlog {b}"),
        Op::Connect => format!("port {a}"),
        _ => args
            .iter()
            .filter(|&&x| x != -1)
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

impl Record {
    /// A call record as its trace line without the step and thread (`read(7, 16384) =
    /// EAGAIN`); other records as their whole line.
    pub fn call_text(&self) -> String {
        let line = self.to_string();
        match self {
            Record::Call { tid, .. } => line
                .split_once(&format!("t{tid} "))
                .map_or(line.clone(), |(_, call)| call.to_string()),
            _ => line,
        }
    }
}

/// Prints a record as one trace line, e.g. `    212 t3 read(7, 16384) = EAGAIN`.
impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Record::Call {
                step,
                tid,
                op,
                args,
                ret,
            } => {
                write!(
                    f,
                    "{step:>7} t{tid} {}({}) = ",
                    op.name(),
                    call_args(op, args)
                )?;
                // Calls return -errno (Linux's errnos are below 4096); an atomic returns the
                // previous value, which may use all 64 bits.
                if op == Op::Atomic {
                    write!(f, "{}", ret as u64)
                } else if (-4095..0).contains(&ret) {
                    f.write_str(&errno_name(-ret as i32))
                } else {
                    write!(f, "{ret}")
                }
            }
            Record::Event { events, token } => {
                write!(
                    f,
                    "          event token {token:#x}: {}",
                    events_name(events)
                )
            }
            Record::Fault { step, tid, what } => write!(f, "{step:>7} t{tid} fault {what}"),
            Record::Blocked { step, tid, block } => {
                let what = match block {
                    super::Block::Epoll(epfd) => format!("epoll_wait({epfd})"),
                    super::Block::Sleep => "sleep".to_string(),
                    super::Block::Park => "park".to_string(),
                    super::Block::Mutex(id) => format!("lock(#{id})"),
                    super::Block::Join(t) => format!("join({t})"),
                    super::Block::Held => {
                        return write!(f, "{step:>7} t{tid} is held off the processor");
                    }
                };
                write!(f, "{step:>7} t{tid} {what} blocks")
            }
            Record::Switch { step, to } => write!(f, "{step:>7} -> t{to}"),
        }
    }
}
