//! The conformance interpreter: runs a parsed script over any [`Os`] and returns its
//! transcript, so that one script can be compared line for line between Linux and the
//! simulator.
//!
//! Everything here goes through the seam, including the settling that lets loopback
//! delivery finish on Linux before an operation looks at readiness; on the simulator, which
//! delivers immediately in conformance mode, settling ends at the first look.

use super::parse::{Name, Op, Script};
use crate::os::{EpollEvent, Errno, Events, Fd, Os, Token};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The pause between two looks while settling.
const SETTLE_LOOK_INTERVAL: Duration = Duration::from_millis(1);

/// How many looks settling takes at most (about 200 ms with the interval above), so that a
/// queue that never empties cannot hang a script.
const SETTLE_LOOKS_MAX: usize = 200;

/// Backlog of `listen L` and of the listener behind `tcp A B`: room for the few pending
/// connections a script makes.
const LISTEN_BACKLOG: u32 = 16;

/// `fill X` writes chunks of this size, as the measurements in the notes did.
const FILL_CHUNK_BYTES: usize = 4096;

/// The most chunks `fill X` writes (64 MiB), well above any autotuned socket buffer.
const FILL_WRITES_MAX: usize = 16 * 1024;

/// The read size of `drain X`.
const DRAIN_CHUNK_BYTES: usize = 64 * 1024;

/// The most reads `drain X` makes (256 MiB), well above anything `fill` can queue.
const DRAIN_READS_MAX: usize = 4 * 1024;

/// The descriptor a name has when the operation that should have defined it failed: every
/// call on it fails with `EBADF`, as it would in a program that kept the `-1`.
const NO_FD: Fd = Fd(-1);

/// Runs `script` on `os` and returns one transcript line per operation: the operation as
/// written, ` -> `, the result.
pub fn run<O: Os>(os: &O, script: &Script) -> Vec<String> {
    let mut runner = Runner {
        os,
        script,
        fds: vec![NO_FD; script.names.len()],
        listen_addrs: vec![None; script.names.len()],
        tcp_streams: BTreeSet::new(),
        events: Vec::new(),
    };
    script
        .lines
        .iter()
        .map(|line| format!("{} -> {}", line.text, runner.step(&line.op)))
        .collect()
}

/// The interpreter's view of the descriptors the script holds.
struct Runner<'r, O: Os> {
    os: &'r O,
    script: &'r Script,
    /// The descriptor number of each name. A closed name keeps its old number, so a later
    /// operation on it may reach a descriptor that reused the number, like a real program.
    fds: Vec<Fd>,
    /// The address each `listen` name was bound to, so that `connect` can still aim at it
    /// after the listener was closed (and be refused).
    listen_addrs: Vec<Option<SocketAddr>>,
    /// The open connected TCP descriptors: the ones whose send queue settling watches.
    tcp_streams: BTreeSet<Fd>,
    /// The event buffer `wait` reuses.
    events: Vec<EpollEvent>,
}

impl<O: Os> Runner<'_, O> {
    fn fd(&self, name: Name) -> Fd {
        self.fds[name.0]
    }

    /// Binds `name` to a new descriptor. The number may be one a closed name still points
    /// at; it is no longer the TCP stream it was, unless `is_tcp_stream` says it is again.
    fn define(&mut self, name: Name, fd: Fd, is_tcp_stream: bool) {
        self.fds[name.0] = fd;
        self.tcp_streams.remove(&fd);
        if is_tcp_stream {
            self.tcp_streams.insert(fd);
        }
    }

    fn step(&mut self, op: &Op) -> String {
        let os = self.os;
        match *op {
            Op::Tcp { client, server } => match self.tcp_pair() {
                Ok((client_fd, server_fd)) => {
                    self.define(client, client_fd, true);
                    self.define(server, server_fd, true);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Unix { a, b } => match os.socketpair() {
                Ok((a_fd, b_fd)) => {
                    self.define(a, a_fd, false);
                    self.define(b, b_fd, false);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Pipe { read, write } => match os.pipe() {
                Ok((read_fd, write_fd)) => {
                    self.define(read, read_fd, false);
                    self.define(write, write_fd, false);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Eventfd { efd } => match os.eventfd() {
                Ok(fd) => {
                    self.define(efd, fd, false);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Listen { listener } => match self.listener() {
                Ok((fd, addr)) => {
                    self.define(listener, fd, false);
                    self.listen_addrs[listener.0] = Some(addr);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Connect { client, listener } => {
                let addr = match self.listen_addrs[listener.0] {
                    Some(addr) => addr,
                    None => match os.local_addr(self.fd(listener)) {
                        Ok(addr) => addr,
                        Err(errno) => return errno_name(errno),
                    },
                };
                match os.connect(addr) {
                    Ok(fd) => {
                        self.define(client, fd, true);
                        ok_or_errno(self.settle_connect(fd))
                    }
                    Err(errno) => errno_name(errno),
                }
            }
            Op::Epoll { epoll } => match os.epoll_create() {
                Ok(fd) => {
                    self.define(epoll, fd, false);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Accept { socket, listener } => {
                self.settle();
                match os.accept(self.fd(listener)) {
                    Ok((fd, _peer)) => {
                        self.define(socket, fd, true);
                        "ok".to_string()
                    }
                    Err(errno) => errno_name(errno),
                }
            }
            Op::Ctl {
                epoll,
                op,
                target,
                interest,
            } => {
                // The token is the target's name index, so an event can be named by the
                // name it was added under even after that name was closed.
                let token = Token(target.0 as u64);
                ok_or_errno(os.epoll_ctl(self.fd(epoll), op, self.fd(target), interest, token))
            }
            Op::Wait { epoll, max_events } => {
                self.settle();
                let mut events = std::mem::take(&mut self.events);
                let result = os.epoll_wait(
                    self.fd(epoll),
                    &mut events,
                    max_events,
                    Some(Duration::ZERO),
                );
                let text = match result {
                    Ok(_) if events.is_empty() => "none".to_string(),
                    Ok(_) => {
                        let described: Vec<String> =
                            events.iter().map(|event| self.describe(event)).collect();
                        described.join(" ")
                    }
                    Err(errno) => errno_name(errno),
                };
                self.events = events;
                text
            }
            Op::Write { fd, len } => match os.write(self.fd(fd), &pattern(len)) {
                Ok(written_bytes) => written_bytes.to_string(),
                Err(errno) => errno_name(errno),
            },
            Op::Fill { fd } => self.fill(self.fd(fd)),
            Op::Read { fd, len } => {
                self.settle();
                let mut buf = vec![0u8; len];
                match os.read(self.fd(fd), &mut buf) {
                    Ok(read_bytes) => read_bytes.to_string(),
                    Err(errno) => errno_name(errno),
                }
            }
            Op::Drain { fd } => {
                self.settle();
                self.drain(self.fd(fd))
            }
            Op::Shutdown { fd, how } => ok_or_errno(os.shutdown(self.fd(fd), how)),
            Op::Close { fd } => {
                let result = os.close(self.fd(fd));
                if result.is_ok() {
                    self.tcp_streams.remove(&self.fd(fd));
                }
                ok_or_errno(result)
            }
            Op::Dup { fd, copy } => match os.dup(self.fd(fd)) {
                Ok(copy_fd) => {
                    let is_tcp_stream = self.tcp_streams.contains(&self.fd(fd));
                    self.define(copy, copy_fd, is_tcp_stream);
                    "ok".to_string()
                }
                Err(errno) => errno_name(errno),
            },
            Op::Rst { fd } => {
                let result = os.reset(self.fd(fd));
                if result.is_ok() {
                    self.tcp_streams.remove(&self.fd(fd));
                }
                ok_or_errno(result)
            }
            Op::EfdWrite { efd, value } => ok_or_errno(os.eventfd_write(self.fd(efd), value)),
            Op::EfdRead { efd } => match os.eventfd_read(self.fd(efd)) {
                Ok(value) => value.to_string(),
                Err(errno) => errno_name(errno),
            },
        }
    }

    /// `X:flags`, with X the name the registration was added under and the conditions in
    /// transcript order.
    fn describe(&self, event: &EpollEvent) -> String {
        let name = usize::try_from(event.token.0)
            .ok()
            .and_then(|name_idx| self.script.names.get(name_idx));
        let flags: Vec<&str> = Events::CONDITIONS
            .iter()
            .filter(|(bit, _)| event.events.contains(*bit))
            .map(|(_, flag)| *flag)
            .collect();
        let flags = if flags.is_empty() {
            "-".to_string()
        } else {
            flags.join(",")
        };
        match name {
            Some(name) => format!("{name}:{flags}"),
            // Tokens are name indices, so this only happens if a backend invents a token.
            None => format!("?{}:{flags}", event.token.0),
        }
    }

    /// A listener on 127.0.0.1 with an ephemeral port, and the address it got.
    fn listener(&self) -> Result<(Fd, SocketAddr), Errno> {
        let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let fd = self.os.listen(any_port, LISTEN_BACKLOG, false)?;
        match self.os.local_addr(fd) {
            Ok(addr) => Ok((fd, addr)),
            Err(errno) => {
                let _ = self.os.close(fd);
                Err(errno)
            }
        }
    }

    /// `tcp A B`: listen, connect, accept, close the listener. Whatever was opened is
    /// closed again if a step fails, so a failed pair leaves no descriptor behind.
    fn tcp_pair(&self) -> Result<(Fd, Fd), Errno> {
        let (listener, addr) = self.listener()?;
        let result = self.os.connect(addr).and_then(|client| {
            let accepted = self
                .settle_connect(client)
                .and_then(|()| self.accept_settled(listener));
            match accepted {
                Ok(server) => Ok((client, server)),
                Err(errno) => {
                    let _ = self.os.close(client);
                    Err(errno)
                }
            }
        });
        let closed = self.os.close(listener);
        let (client, server) = result?;
        closed.map(|()| (client, server))
    }

    /// Waits until the connection of `fd` is established or failed: Linux completes a
    /// loopback handshake in softirq context, usually before `connect` returns, but not
    /// always. `SO_ERROR` is then read (and so cleared), as a program checking its connect
    /// would.
    fn settle_connect(&self, fd: Fd) -> Result<(), Errno> {
        for _ in 0..SETTLE_LOOKS_MAX {
            let connected = self.os.peer_addr(fd).is_ok();
            match self.os.take_error(fd)? {
                Some(errno) => return Err(errno),
                None if connected => return Ok(()),
                None => self.os.sleep(SETTLE_LOOK_INTERVAL),
            }
        }
        Err(Errno(libc::EINPROGRESS))
    }

    /// Accepts the connection `tcp A B` just made, giving the handshake's last ACK time to
    /// reach the listener.
    fn accept_settled(&self, listener: Fd) -> Result<Fd, Errno> {
        for _ in 0..SETTLE_LOOKS_MAX {
            match self.os.accept(listener) {
                Err(Errno::EAGAIN) => self.os.sleep(SETTLE_LOOK_INTERVAL),
                accepted => return accepted.map(|(fd, _peer)| fd),
            }
        }
        Err(Errno::EAGAIN)
    }

    /// Lets loopback delivery settle: looks at the send queue (`SIOCOUTQ`) of every open
    /// TCP stream until all are empty or none changed since the previous look.
    ///
    /// A queue that stays non-empty but still is one whose receiver is full (after `fill`)
    /// or one whose ACK the peer delays; either way nothing more will arrive soon. Unix
    /// sockets, pipes and eventfd deliver inside the writing call, so they are not looked
    /// at.
    fn settle(&self) {
        let mut previous_outqs: Option<Vec<usize>> = None;
        for _ in 0..SETTLE_LOOKS_MAX {
            let outqs: Vec<usize> = self
                .tcp_streams
                .iter()
                .map(|&fd| self.os.outq(fd).unwrap_or(0))
                .collect();
            if outqs.iter().all(|&queued_bytes| queued_bytes == 0)
                || previous_outqs.as_ref() == Some(&outqs)
            {
                return;
            }
            previous_outqs = Some(outqs);
            self.os.sleep(SETTLE_LOOK_INTERVAL);
        }
    }

    /// `fill X`: 4 KiB writes until `EAGAIN`.
    fn fill(&self, fd: Fd) -> String {
        let chunk = pattern(FILL_CHUNK_BYTES);
        let mut written_any = false;
        for _ in 0..FILL_WRITES_MAX {
            match self.os.write(fd, &chunk) {
                Ok(_) => written_any = true,
                Err(Errno::EAGAIN) if written_any => return "some".to_string(),
                Err(errno) if written_any => return format!("some,{}", errno_name(errno)),
                Err(errno) => return errno_name(errno),
            }
        }
        // The bound is far above any buffer on this machine; reaching it means the other
        // end consumes as fast as we write, which no script sets up.
        "some,unfinished".to_string()
    }

    /// `drain X`: reads until `EAGAIN` or end of file.
    fn drain(&self, fd: Fd) -> String {
        let mut buf = vec![0u8; DRAIN_CHUNK_BYTES];
        let mut read_any = false;
        for _ in 0..DRAIN_READS_MAX {
            match self.os.read(fd, &mut buf) {
                Ok(0) if read_any => return "some,eof".to_string(),
                Ok(0) => return "eof".to_string(),
                Ok(_) => read_any = true,
                Err(Errno::EAGAIN) if read_any => return "some".to_string(),
                Err(Errno::EAGAIN) => return "none".to_string(),
                // A reset after unread data returns the data first, then the error.
                Err(errno) if read_any => return format!("some,{}", errno_name(errno)),
                Err(errno) => return errno_name(errno),
            }
        }
        "some,unfinished".to_string()
    }
}

/// `len` bytes of a fixed pattern, so that a transcript never depends on what was sent.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|byte_idx| b'a' + (byte_idx % 26) as u8)
        .collect()
}

fn ok_or_errno(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(errno) => errno_name(errno),
    }
}

/// The symbolic errno name, including the few that only conformance scripts meet.
fn errno_name(errno: Errno) -> String {
    let extra = [
        (libc::EINPROGRESS, "EINPROGRESS"),
        (libc::ELOOP, "ELOOP"),
        (libc::ENOTSOCK, "ENOTSOCK"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::EISCONN, "EISCONN"),
        (libc::ENOTTY, "ENOTTY"),
        (libc::ESPIPE, "ESPIPE"),
        (libc::EFAULT, "EFAULT"),
    ];
    match extra.iter().find(|(number, _)| *number == errno.0) {
        Some((_, name)) => name.to_string(),
        None => errno.name(),
    }
}
