//! The mio echo peer: one thread per core, each with its own epoll instance and its own
//! `SO_REUSEPORT` listener (the kernel spreads connections over them), edge-triggered,
//! every read and write drained to `WouldBlock`. It stands for "a hand-written reactor with
//! no runtime", the closest peer to edgesim's server.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

/// The listener's token; connections use their slot index.
const LISTENER: Token = Token(usize::MAX);
/// Events taken per `epoll_wait`.
const EVENTS_MAX: usize = 256;
/// One read call's buffer, shared by all connections of a thread.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Pending connections per listener.
const BACKLOG_MAX: i32 = 1024;

struct Conn {
    stream: TcpStream,
    /// Echo bytes the socket did not take yet; written before anything newer.
    pending: Vec<u8>,
}

fn main() {
    let args = edgesim_bench_peers::parse_args("mio-echo");
    // All listeners are bound before any thread starts, so that the first one fixes the
    // port (when 0 was asked) and the rest join it.
    let first = reuse_port_listener(args.addr);
    let addr = first.local_addr().expect("local_addr");
    let mut listeners = vec![first];
    for _ in 1..args.threads {
        listeners.push(reuse_port_listener(addr));
    }
    edgesim_bench_peers::announce(addr);
    let handles: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(idx, listener)| {
            std::thread::Builder::new()
                .name(format!("mio-echo-{idx}"))
                .spawn(move || reactor(listener))
                .expect("spawn")
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

fn reuse_port_listener(addr: SocketAddr) -> TcpListener {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket.set_nonblocking(true).expect("O_NONBLOCK");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(BACKLOG_MAX).expect("listen");
    TcpListener::from_std(socket.into())
}

fn reactor(mut listener: TcpListener) {
    let mut poll = Poll::new().expect("epoll_create");
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register listener");
    let mut events = Events::with_capacity(EVENTS_MAX);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free_slots: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    loop {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {error}");
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&poll, &listener, &mut conns, &mut free_slots);
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            // Under edge triggering each side must be drained, or its next edge may never
            // come; a writable edge only matters when something is pending.
            let alive = flush(conn) && echo_all(conn, &mut buf);
            if !alive {
                let mut dead = conns[slot].take().expect("slot is live");
                let _ = poll.registry().deregister(&mut dead.stream);
                free_slots.push(slot);
            }
        }
    }
}

fn accept_all(
    poll: &Poll,
    listener: &TcpListener,
    conns: &mut Vec<Option<Conn>>,
    free_slots: &mut Vec<usize>,
) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nodelay(true);
                let slot = free_slots.pop().unwrap_or_else(|| {
                    conns.push(None);
                    conns.len() - 1
                });
                let interest = Interest::READABLE | Interest::WRITABLE;
                if poll
                    .registry()
                    .register(&mut stream, Token(slot), interest)
                    .is_err()
                {
                    free_slots.push(slot);
                    continue;
                }
                conns[slot] = Some(Conn {
                    stream,
                    pending: Vec::new(),
                });
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => return,
            // A connection that died in the backlog is skipped; anything else (fd
            // exhaustion) waits for the next edge rather than spinning here.
            Err(error) if error.kind() == ErrorKind::ConnectionAborted => continue,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => {
                eprintln!("accept: {error}");
                return;
            }
        }
    }
}

/// Writes pending bytes until none are left or the socket is full. False when the
/// connection is dead.
fn flush(conn: &mut Conn) -> bool {
    let mut written_total = 0;
    let alive = loop {
        if written_total == conn.pending.len() {
            break true;
        }
        match conn.stream.write(&conn.pending[written_total..]) {
            Ok(0) => break false,
            Ok(n) => written_total += n,
            Err(error) if error.kind() == ErrorKind::WouldBlock => break true,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    conn.pending.drain(..written_total);
    alive
}

/// Reads until `WouldBlock` and echoes each chunk, keeping what the socket will not take.
/// False when the connection is dead or the peer closed it.
fn echo_all(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let mut chunk = &buf[..n];
        // Order matters: new bytes go out directly only when nothing older is waiting.
        while conn.pending.is_empty() && !chunk.is_empty() {
            match conn.stream.write(chunk) {
                Ok(0) => return false,
                Ok(written) => chunk = &chunk[written..],
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        conn.pending.extend_from_slice(chunk);
    }
}
