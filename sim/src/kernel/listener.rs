//! Listening TCP sockets on loopback: ports, the accept queue, `connect` and `accept`.
//!
//! On loopback the handshake completes inside `connect`: the server side is created in the
//! listener's accept queue and the listener's `sk_data_ready` fires for **every**
//! connection, so an ET listener is re-queued by each new client even if the queue was not
//! empty (E26). A queue holds `backlog + 1` connections (`sk_acceptq_is_full` compares with
//! `>`); a SYN to a full queue is dropped in Linux and retried by the client after a second.
//! The model keeps such a client in SYN_SENT (poll mask 0) and completes it as soon as an
//! `accept` makes room, instead of waiting for the retransmission.
//!
//! A connect to a port nobody listens on is refused the way a non-blocking connect sees it:
//! the call succeeds (EINPROGRESS) and the socket reports ECONNREFUSED through SO_ERROR and
//! `IN|OUT|ERR|HUP|RDHUP` through poll (E25).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::coverage::{hit, Case};
use super::epoll::{HUP, IN, KEY_ALL, OUT, PRI, RDHUP};
use super::fdtable::Obj;
use super::stream::{Proto, State, RCV_SHUTDOWN, SHUTDOWN_MASK};
use super::{KResult, Kernel};

/// The first port `listen` tries for port 0 (the start of Linux's ephemeral range).
pub(super) const LISTEN_PORT_FIRST: u16 = 32_768;
/// The first ephemeral port of a client socket.
pub(super) const CLIENT_PORT_FIRST: u16 = 49_152;
/// The end (exclusive) of the ephemeral range (`ip_local_port_range` is 32768..60999).
const EPHEMERAL_PORT_END: u16 = 61_000;
/// `net.core.somaxconn` on the measured machine: the cap on `backlog`.
const SOMAXCONN: u32 = 4096;

/// A listening socket.
#[derive(Debug)]
pub(super) struct Listener {
    pub(super) file: u32,
    pub(super) addr: SocketAddr,
    backlog: usize,
    /// Established connections waiting for `accept` (server-side socket ids).
    pub(super) accept_queue: VecDeque<u32>,
    /// Clients whose SYN waits for room in the accept queue (client socket ids).
    syn_queue: VecDeque<u32>,
    /// Still listening (a `shutdown(SHUT_RD)` stops it).
    open: bool,
    /// `sk_shutdown` of the stopped socket: a later `shutdown` on the closed socket sets
    /// these bits (and fails with ENOTCONN).
    shutdown: u8,
}

/// The listeners bound to one port.
#[derive(Debug, Default)]
pub(super) struct PortGroup {
    pub(super) listeners: Vec<u32>,
    reuse_port: bool,
}

impl Kernel {
    pub(super) fn listener(&self, l: u32) -> &Listener {
        self.listeners[l as usize].as_ref().expect("live listener")
    }

    fn listener_mut(&mut self, l: u32) -> &mut Listener {
        self.listeners[l as usize].as_mut().expect("live listener")
    }

    /// `read` on a listening socket (ENOTCONN), or on one stopped by `shutdown(SHUT_RD)`:
    /// end of file once its reading half was shut, else ENOTCONN.
    pub(super) fn listener_read(&self, l: u32) -> KResult<usize> {
        let listener = self.listener(l);
        if !listener.open && listener.shutdown & RCV_SHUTDOWN != 0 {
            return Ok(0);
        }
        Err(libc::ENOTCONN)
    }

    pub(super) fn listener_addr(&self, l: u32) -> SocketAddr {
        self.listener(l).addr
    }

    pub(super) fn listener_open(
        &mut self,
        addr: SocketAddr,
        backlog: u32,
        reuse_port: bool,
    ) -> KResult<i32> {
        self.fd_room(1)?;
        let port = match addr.port() {
            0 => self.free_listen_port()?,
            port => port,
        };
        if let Some(group) = self.ports.get(&port) {
            if !(group.reuse_port && reuse_port) {
                return Err(libc::EADDRINUSE);
            }
        }
        let listener = Listener {
            file: u32::MAX,
            addr: SocketAddr::new(addr.ip(), port),
            backlog: backlog.min(SOMAXCONN) as usize,
            accept_queue: VecDeque::new(),
            syn_queue: VecDeque::new(),
            open: true,
            shutdown: 0,
        };
        let l = match self.free_listeners.pop() {
            Some(l) => {
                self.listeners[l as usize] = Some(listener);
                l
            }
            None => {
                self.listeners.push(Some(listener));
                (self.listeners.len() - 1) as u32
            }
        };
        let group = self.ports.entry(port).or_default();
        group.listeners.push(l);
        group.reuse_port = reuse_port;
        let file = self.file_new(Obj::Listener(l));
        self.listener_mut(l).file = file;
        self.fd_install(file)
    }

    /// The next port of the ephemeral range no listener uses, deterministically.
    fn free_listen_port(&mut self) -> KResult<u16> {
        let span = EPHEMERAL_PORT_END - LISTEN_PORT_FIRST;
        for _ in 0..span {
            let port = self.listen_port_next;
            self.listen_port_next = if port + 1 >= EPHEMERAL_PORT_END {
                LISTEN_PORT_FIRST
            } else {
                port + 1
            };
            if !self.ports.contains_key(&port) {
                return Ok(port);
            }
        }
        Err(libc::EADDRINUSE)
    }

    fn next_client_port(&mut self) -> u16 {
        let port = self.client_port_next;
        self.client_port_next = if port + 1 >= EPHEMERAL_PORT_END {
            CLIENT_PORT_FIRST
        } else {
            port + 1
        };
        port
    }

    /// `inet_csk_listen_poll`: IN while a connection waits; a listener never reports OUT
    /// (E25). One stopped by `shutdown(SHUT_RD)` is a closed TCP socket: OUT|HUP.
    pub(super) fn listener_mask(&self, l: u32) -> u32 {
        let listener = self.listener(l);
        if !listener.open {
            // `tcp_poll` of a TCP_CLOSE socket with an empty send queue.
            let mut mask = OUT | HUP;
            if listener.shutdown & RCV_SHUTDOWN != 0 {
                mask |= IN | RDHUP;
            }
            return mask;
        }
        if listener.accept_queue.is_empty() {
            0
        } else {
            IN
        }
    }

    pub(super) fn tcp_connect(&mut self, addr: SocketAddr) -> KResult<i32> {
        self.fd_room(1)?;
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.next_client_port());
        let client = self.sock_new(Proto::Tcp, local, addr);
        match self.pick_listener(addr, local.port()) {
            None => {
                // The RST answering the SYN, as `tcp_reset` in SYN_SENT handles it.
                let sock = self.sock_mut(client);
                sock.state = State::Closed;
                sock.err = libc::ECONNREFUSED;
                sock.shutdown = SHUTDOWN_MASK;
                sock.reset_seen = true;
            }
            Some(l) => {
                if self.listener(l).accept_queue.len() > self.listener(l).backlog {
                    let sock = self.sock_mut(client);
                    sock.state = State::SynSent;
                    sock.listener = Some(l);
                    self.listener_mut(l).syn_queue.push_back(client);
                } else {
                    self.establish(l, client);
                }
            }
        }
        self.sock_attach(client)
    }

    /// Whether a connection to `addr` would find an open listener now (read-only: for a
    /// harness that waits until a server has bound its own address).
    pub fn accepts_connections_to(&self, addr: SocketAddr) -> bool {
        self.pick_listener(addr, 0).is_some()
    }

    /// The listener that takes a connection to `addr`: among `SO_REUSEPORT` listeners one
    /// chosen by a hash of the client port, as `reuseport_select_sock` hashes the 4-tuple.
    fn pick_listener(&self, addr: SocketAddr, client_port: u16) -> Option<u32> {
        let group = self.ports.get(&addr.port())?;
        let open: Vec<u32> = group
            .listeners
            .iter()
            .copied()
            .filter(|&l| {
                let listener = self.listener(l);
                listener.open
                    && (listener.addr.ip().is_unspecified() || listener.addr.ip() == addr.ip())
            })
            .collect();
        if open.is_empty() {
            return None;
        }
        let hash = (u64::from(client_port)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        Some(open[(hash % open.len() as u64) as usize])
    }

    /// The handshake completes: a server-side socket joins the accept queue and the
    /// listener's `sk_data_ready` fires.
    fn establish(&mut self, l: u32, client: u32) {
        self.structure_changed();
        let listener = self.listener(l);
        let server_addr = match listener.addr.ip().is_unspecified() {
            true => SocketAddr::new(self.sock(client).remote.ip(), listener.addr.port()),
            false => listener.addr,
        };
        let client_addr = self.sock(client).local;
        let child = self.sock_new(Proto::Tcp, server_addr, client_addr);
        let (child_ref, client_ref) = (self.sock_ref(child), self.sock_ref(client));
        let sock = self.sock_mut(child);
        sock.peer = Some(client_ref);
        sock.listener = Some(l);
        let sock = self.sock_mut(client);
        sock.peer = Some(child_ref);
        sock.state = State::Established;
        sock.listener = None;
        self.listener_mut(l).accept_queue.push_back(child);
        let file = self.listener(l).file;
        self.wake(file, IN | PRI);
    }

    /// Completes waiting SYNs while the accept queue has room (`tcp_finish_connect` wakes
    /// the client with its state change).
    fn admit_waiting(&mut self, l: u32) {
        while self.listener(l).accept_queue.len() <= self.listener(l).backlog {
            let Some(client) = self.listener_mut(l).syn_queue.pop_front() else {
                return;
            };
            self.establish(l, client);
            if let Some(file) = self.sock(client).file {
                self.wake(file, KEY_ALL);
            }
        }
    }

    pub(super) fn listener_accept(&mut self, fd: i32) -> KResult<(i32, SocketAddr)> {
        let file = self.fd_file(fd)?;
        let l = match self.file(file).obj {
            Obj::Listener(l) => l,
            Obj::Sock(_) => return Err(libc::EINVAL),
            _ => return Err(libc::ENOTSOCK),
        };
        if !self.listener(l).open {
            return Err(libc::EINVAL);
        }
        if self.listener(l).accept_queue.is_empty() {
            return Err(libc::EAGAIN);
        }
        if self.listener(l).accept_queue.len() > 1 {
            hit(Case::AcceptWithSeveralPending);
        }
        if self.emfile_until_ns.is_some() {
            hit(Case::EmfileOnAccept);
            return Err(libc::EMFILE);
        }
        if self.chance(self.cfg.faults.accept_emfile) {
            hit(Case::EmfileOnAccept);
            if self.cfg.accept_emfile_window_ns > 0 {
                self.emfile_until_ns = Some(self.now_ns + self.cfg.accept_emfile_window_ns);
            }
            return Err(libc::EMFILE);
        }
        if self.chance(self.cfg.faults.accept_abort) {
            let child = self
                .listener_mut(l)
                .accept_queue
                .pop_front()
                .expect("non-empty");
            self.sock_mut(child).listener = None;
            self.structure_changed();
            self.sock_mut(child).dead = true;
            self.tcp_send_reset(child);
            self.admit_waiting(l);
            self.touch(file);
            return Err(libc::ECONNABORTED);
        }
        // `accept4` reserves the descriptor first: without one the connection stays queued.
        if let Err(e) = self.fd_room(1) {
            hit(Case::EmfileOnAccept);
            return Err(e);
        }
        let child = self
            .listener_mut(l)
            .accept_queue
            .pop_front()
            .expect("non-empty");
        self.sock_mut(child).listener = None;
        self.structure_changed();
        if self.chance(self.cfg.faults.accept_reset) {
            // The peer's RST reached the child while it sat in the accept queue. Linux does
            // not unlink such a child: `tcp_reset` moves it to TCP_CLOSE with `sk_err` set,
            // and `inet_csk_accept` hands it out all the same, so the caller's first read
            // fails with ECONNRESET and epoll reports ERR|HUP on it at once.
            self.network_reset(child);
        }
        let remote = self.sock(child).remote;
        let new_fd = self.sock_attach(child)?;
        self.admit_waiting(l);
        self.touch(file);
        Ok((new_fd, remote))
    }

    /// Drops `s` from the listener's queues (a pending client gave up, or was reset).
    pub(super) fn listener_forget(&mut self, l: u32, s: u32) {
        self.structure_changed();
        let Some(listener) = self.listeners[l as usize].as_mut() else {
            return;
        };
        listener.syn_queue.retain(|&c| c != s);
        listener.accept_queue.retain(|&c| c != s);
    }

    /// Stops listening: queued connections are reset (`inet_csk_listen_stop`), waiting SYNs
    /// are refused, and the port is released.
    fn listener_stop(&mut self, l: u32) {
        self.structure_changed();
        let port = self.listener(l).addr.port();
        if let Some(group) = self.ports.get_mut(&port) {
            group.listeners.retain(|&x| x != l);
            if group.listeners.is_empty() {
                self.ports.remove(&port);
            }
        }
        let listener = self.listener_mut(l);
        listener.open = false;
        let accepted = std::mem::take(&mut listener.accept_queue);
        let waiting = std::mem::take(&mut listener.syn_queue);
        for child in accepted {
            let sock = self.sock_mut(child);
            sock.listener = None;
            sock.dead = true;
            self.tcp_send_reset(child);
        }
        for client in waiting {
            self.sock_mut(client).listener = None;
            self.tcp_reset(client);
        }
    }

    pub(super) fn listener_release(&mut self, l: u32) {
        if self.listener(l).open {
            self.listener_stop(l);
        }
        self.listeners[l as usize] = None;
        self.free_listeners.push(l);
    }

    /// `inet_shutdown` on a listener: SHUT_RD (or RDWR) disconnects it, SHUT_WR does
    /// nothing; either way the state change wakes it.
    pub(super) fn listener_shutdown(&mut self, l: u32, how: i32) -> KResult<()> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(libc::EINVAL);
        }
        let mut result = Ok(());
        if !self.listener(l).open {
            // A stopped listener is a TCP_CLOSE socket: the bits are set, ENOTCONN returned.
            self.listener_mut(l).shutdown |= (how + 1) as u8;
            result = Err(libc::ENOTCONN);
        } else if how != libc::SHUT_WR {
            self.listener_stop(l);
        }
        let file = self.listener(l).file;
        self.wake(file, KEY_ALL);
        result
    }
}
