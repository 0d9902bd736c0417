//! The mio echo peer: one acceptor thread hands connections round-robin to one reactor
//! thread per core (gnet's and edgesim's multi-reactor shape), each with its own epoll
//! instance, edge-triggered, every read and write drained to `WouldBlock`. It stands for "a
//! hand-written reactor with no runtime", the closest peer to edgesim's server.
//!
//! Round-robin rather than `SO_REUSEPORT` listeners: the kernel spreads reuseport
//! connections by a hash of their addresses, so 64 connections often split 40/24 over two
//! threads, and the throughput of a run then depends on that draw more than on the server.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Mutex};

/// The acceptor's listener token.
const LISTENER: Token = Token(usize::MAX);
/// A reactor's waker token; connections use their slot index.
const WAKER: Token = Token(usize::MAX - 1);
/// Events taken per `epoll_wait`.
const EVENTS_MAX: usize = 256;
/// One read call's buffer, shared by all connections of a thread.
const READ_BUF_BYTES: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    /// Echo bytes the socket did not take yet; written before anything newer.
    pending: Vec<u8>,
}

/// Where the acceptor leaves a reactor's new connections, and how it wakes the reactor.
struct Inbox {
    streams: Mutex<Vec<TcpStream>>,
    waker: Waker,
}

fn main() {
    let args = edgesim_bench_peers::parse_args("mio-echo");
    let mut listener = TcpListener::bind(args.addr).expect("bind");
    edgesim_bench_peers::announce(listener.local_addr().expect("local_addr"));
    let mut inboxes = Vec::new();
    let mut handles = Vec::new();
    for idx in 0..args.threads {
        let poll = Poll::new().expect("epoll_create");
        let inbox = Arc::new(Inbox {
            streams: Mutex::new(Vec::new()),
            waker: Waker::new(poll.registry(), WAKER).expect("eventfd"),
        });
        inboxes.push(Arc::clone(&inbox));
        let handle = std::thread::Builder::new()
            .name(format!("mio-echo-{idx}"))
            .spawn(move || reactor(poll, &inbox))
            .expect("spawn");
        handles.push(handle);
    }
    acceptor(&mut listener, &inboxes);
    for handle in handles {
        let _ = handle.join();
    }
}

/// Accepts forever, handing connection `n` to reactor `n % threads`.
fn acceptor(listener: &mut TcpListener, inboxes: &[Arc<Inbox>]) {
    let mut poll = Poll::new().expect("epoll_create");
    poll.registry()
        .register(listener, LISTENER, Interest::READABLE)
        .expect("register listener");
    let mut events = Events::with_capacity(EVENTS_MAX);
    let mut next_reactor = 0;
    loop {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {error}");
        }
        // Under edge triggering the backlog must be drained, or its next edge never comes.
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let inbox = &inboxes[next_reactor];
                    next_reactor = (next_reactor + 1) % inboxes.len();
                    inbox.streams.lock().expect("inbox lock").push(stream);
                    inbox.waker.wake().expect("wake reactor");
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                // A connection that died in the backlog is skipped.
                Err(error) if error.kind() == ErrorKind::ConnectionAborted => continue,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // Anything else (fd exhaustion) waits for the next edge rather than
                // spinning here.
                Err(error) => {
                    eprintln!("accept: {error}");
                    break;
                }
            }
        }
    }
}

fn reactor(mut poll: Poll, inbox: &Inbox) {
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
            if event.token() == WAKER {
                let new_streams = std::mem::take(&mut *inbox.streams.lock().expect("inbox lock"));
                for stream in new_streams {
                    adopt(&poll, stream, &mut conns, &mut free_slots);
                }
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

/// Registers a handed-over connection. Data may already be waiting; the registration's
/// first edge reports it, since epoll checks readiness when a file is added.
fn adopt(
    poll: &Poll,
    mut stream: TcpStream,
    conns: &mut Vec<Option<Conn>>,
    free_slots: &mut Vec<usize>,
) {
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
        return;
    }
    conns[slot] = Some(Conn {
        stream,
        pending: Vec::new(),
    });
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
