//! The real backend, method by method: every method of the `Os` seam runs against Linux,
//! including each error path the seam documents, so that the simulator has a measured
//! reference for every answer it gives.
//!
//! Tests that change or observe the whole process (the descriptor limit, the `SIGPIPE`
//! disposition, the set of open descriptors) re-run themselves alone in a child process;
//! see [`in_child`]. Every wait is bounded by [`PATIENCE`], and all traffic is loopback.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use edgesim::os::{
    CtlOp, EpollEvent, Errno, Events, Fd, Os, OsAtomic, OsJoin, OsMutex, OsThread, RealOs,
    Shutdown, Token,
};

/// How long any test waits for something the kernel will do "soon" (a loopback handshake,
/// a segment, a thread) before it declares failure.
const PATIENCE: Duration = Duration::from_secs(5);

/// A descriptor number that is certainly not open: far above any soft limit in use.
const NEVER_OPEN: Fd = Fd(i32::MAX - 7);

type TestResult = Result<(), Errno>;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Polls `probe` every millisecond until it answers `Some`, for at most [`PATIENCE`].
#[track_caller]
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(ms(1));
    }
}

/// Runs the calling test alone in a fresh process and returns `false` in the parent once the
/// child passed; in that child it returns `true` and the caller runs the body.
///
/// Process-wide state (the descriptor limit, the signal disposition, the descriptor table)
/// would otherwise be shared with every test running concurrently in this binary. The child
/// is this very binary, asked for the test's exact name.
#[track_caller]
fn in_child(test: &str) -> bool {
    crate::child::run_alone(module_path!(), test).is_none()
}

/// One `epoll_wait` with a timeout.
fn wait(os: &RealOs, epfd: Fd, max_events: usize, timeout: Duration) -> Vec<EpollEvent> {
    let mut out = Vec::new();
    os.epoll_wait(epfd, &mut out, max_events, Some(timeout))
        .expect("epoll_wait");
    out
}

/// Waits (bounded) for the first event that carries every bit of `bits`.
#[track_caller]
fn wait_for(os: &RealOs, epfd: Fd, bits: Events) -> EpollEvent {
    eventually(&format!("an event with {bits}"), || {
        wait(os, epfd, 16, ms(10))
            .into_iter()
            .find(|event| event.events.contains(bits))
    })
}

fn tokens(events: &[EpollEvent]) -> Vec<u64> {
    events.iter().map(|event| event.token.0).collect()
}

/// Accepts one connection, waiting (bounded) for the handshake.
#[track_caller]
fn accept_one(os: &RealOs, listener: Fd) -> (Fd, SocketAddr) {
    eventually("a connection to accept", || match os.accept(listener) {
        Ok(accepted) => Some(accepted),
        Err(Errno::EAGAIN) => None,
        Err(errno) => panic!("accept failed: {errno}"),
    })
}

/// A connected loopback TCP pair: `(listener, client, server)`.
fn tcp(os: &RealOs) -> (Fd, Fd, Fd) {
    let listener = os.listen(loopback(), 16, false).expect("listen");
    let addr = os.local_addr(listener).expect("listener address");
    let client = os.connect(addr).expect("connect");
    let (server, _) = accept_one(os, listener);
    (listener, client, server)
}

/// Reads exactly `len` bytes, waiting (bounded) for them to arrive.
#[track_caller]
fn read_exact(os: &RealOs, fd: Fd, len: usize) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    eventually(&format!("{len} bytes on {fd}"), || {
        match os.read(fd, &mut buf[..(len - data.len()).min(4096)]) {
            Ok(0) => panic!("end of file after {} of {len} bytes", data.len()),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) => {}
            Err(errno) => panic!("read failed: {errno}"),
        }
        (data.len() == len).then_some(())
    });
    data
}

/// Asserts the flags every descriptor the seam makes must carry.
#[track_caller]
fn assert_nonblocking_cloexec(fd: Fd) {
    assert_eq!(
        real::io::is_nonblocking(fd.0),
        Ok(true),
        "{fd} is non-blocking"
    );
    assert_eq!(
        real::io::is_cloexec(fd.0),
        Ok(true),
        "{fd} is close-on-exec"
    );
}

fn close_all(os: &RealOs, fds: &[Fd]) -> TestResult {
    fds.iter().try_for_each(|&fd| os.close(fd))
}

// ---- epoll ----

#[test]
fn epoll_wait_times_out_rounds_up_and_clears_its_output() -> TestResult {
    let os = RealOs::new();
    let epfd = os.epoll_create()?;
    assert_eq!(real::io::is_cloexec(epfd.0), Ok(true));
    let mut out = vec![EpollEvent::default(); 3];

    let start = Instant::now();
    assert_eq!(os.epoll_wait(epfd, &mut out, 8, Some(ms(20))), Ok(0));
    assert!(start.elapsed() >= ms(20), "waited {:?}", start.elapsed());
    assert!(out.is_empty(), "the output is cleared before it is filled");

    // A sub-millisecond timeout must still wait (rounded up), not become a busy poll.
    let start = Instant::now();
    assert_eq!(
        os.epoll_wait(epfd, &mut out, 8, Some(Duration::from_micros(200))),
        Ok(0)
    );
    assert!(start.elapsed() >= Duration::from_micros(200));
    assert_eq!(
        os.epoll_wait(epfd, &mut out, 8, Some(Duration::ZERO)),
        Ok(0)
    );

    assert_eq!(
        os.epoll_wait(epfd, &mut out, 0, Some(Duration::ZERO)),
        Err(Errno::EINVAL)
    );
    let efd = os.eventfd()?;
    assert_eq!(
        os.epoll_wait(efd, &mut out, 8, Some(Duration::ZERO)),
        Err(Errno::EINVAL),
        "an eventfd is not an epoll instance"
    );
    assert_eq!(
        os.epoll_wait(NEVER_OPEN, &mut out, 8, Some(Duration::ZERO)),
        Err(Errno::EBADF)
    );
    close_all(&os, &[efd, epfd])
}

#[test]
fn epoll_wait_without_timeout_blocks_until_an_event() -> TestResult {
    let os = RealOs::new();
    let epfd = os.epoll_create()?;
    let efd = os.eventfd()?;
    os.epoll_ctl(epfd, CtlOp::Add, efd, Events::IN, Token(42))?;

    // The waiter runs on its own thread so that this test stays bounded even if the
    // backend never returned.
    let (sender, receiver) = mpsc::channel();
    let waiter_os = os.clone();
    let waiter = os.spawn("edgesim-waiter", move || {
        let mut out = Vec::new();
        let result = waiter_os.epoll_wait(epfd, &mut out, 4, None);
        let _ = sender.send((result, out));
    });
    std::thread::sleep(ms(30));
    assert!(
        receiver.try_recv().is_err(),
        "epoll_wait(None) returned with nothing ready"
    );
    os.eventfd_write(efd, 1)?;
    let (result, out) = receiver.recv_timeout(PATIENCE).expect("the waiter woke");
    assert_eq!(result, Ok(1));
    assert_eq!(tokens(&out), [42]);
    assert_eq!(out[0].events, Events::IN);
    waiter.join().expect("the waiter did not panic");
    close_all(&os, &[efd, epfd])
}

#[test]
fn epoll_ctl_reports_linux_validity_errors() -> TestResult {
    let os = RealOs::new();
    let epfd = os.epoll_create()?;
    let other_epfd = os.epoll_create()?;
    let efd = os.eventfd()?;
    let spare = os.eventfd()?;
    let token = Token(1);
    // Every call here registers under one token; only the error matters.
    let ctl = |epfd, op, fd, events| os.epoll_ctl(epfd, op, fd, events, token);

    ctl(epfd, CtlOp::Add, efd, Events::IN)?;
    assert_eq!(ctl(epfd, CtlOp::Add, efd, Events::IN), Err(Errno::EEXIST));
    assert_eq!(ctl(epfd, CtlOp::Mod, spare, Events::IN), Err(Errno::ENOENT));
    assert_eq!(
        ctl(epfd, CtlOp::Del, spare, Events::NONE),
        Err(Errno::ENOENT)
    );

    // Closed (never open) descriptors, as the target and as the instance.
    assert_eq!(
        ctl(epfd, CtlOp::Add, NEVER_OPEN, Events::IN),
        Err(Errno::EBADF)
    );
    assert_eq!(
        ctl(NEVER_OPEN, CtlOp::Add, efd, Events::IN),
        Err(Errno::EBADF)
    );

    // A regular file has no poll method.
    let file = tempfile::tempfile().expect("a temporary file");
    let file_fd = Fd(file.as_raw_fd());
    assert_eq!(
        ctl(epfd, CtlOp::Add, file_fd, Events::IN),
        Err(Errno::EPERM)
    );

    // EXCLUSIVE rules: not with MOD, not with ONESHOT, not with RDHUP, not on an epoll target;
    // and an item added with EXCLUSIVE can never be modified.
    assert_eq!(
        ctl(epfd, CtlOp::Mod, efd, Events::IN | Events::EXCLUSIVE),
        Err(Errno::EINVAL)
    );
    let exclusive_oneshot = Events::IN | Events::EXCLUSIVE | Events::ONESHOT;
    assert_eq!(
        ctl(epfd, CtlOp::Add, spare, exclusive_oneshot),
        Err(Errno::EINVAL)
    );
    let exclusive_rdhup = Events::IN | Events::EXCLUSIVE | Events::RDHUP;
    assert_eq!(
        ctl(epfd, CtlOp::Add, spare, exclusive_rdhup),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        ctl(epfd, CtlOp::Add, other_epfd, Events::IN | Events::EXCLUSIVE),
        Err(Errno::EINVAL)
    );
    ctl(epfd, CtlOp::Add, spare, Events::IN | Events::EXCLUSIVE)?;
    assert_eq!(ctl(epfd, CtlOp::Mod, spare, Events::IN), Err(Errno::EINVAL));

    // An instance cannot watch itself; a non-epoll descriptor is no instance; loops fail.
    assert_eq!(ctl(epfd, CtlOp::Add, epfd, Events::IN), Err(Errno::EINVAL));
    assert_eq!(ctl(efd, CtlOp::Add, spare, Events::IN), Err(Errno::EINVAL));
    ctl(epfd, CtlOp::Add, other_epfd, Events::IN)?;
    assert_eq!(
        ctl(other_epfd, CtlOp::Add, epfd, Events::IN),
        Err(Errno(libc::ELOOP))
    );

    ctl(epfd, CtlOp::Del, efd, Events::NONE)?;
    assert_eq!(ctl(epfd, CtlOp::Del, efd, Events::NONE), Err(Errno::ENOENT));
    drop(file);
    close_all(&os, &[spare, efd, other_epfd, epfd])
}

#[test]
fn epoll_reports_tokens_in_level_edge_and_oneshot_modes() -> TestResult {
    let os = RealOs::new();
    let epfd = os.epoll_create()?;
    let (level, edge, oneshot) = (os.eventfd()?, os.eventfd()?, os.eventfd()?);
    // Tokens use the high half too, to show the full 64 bits come back untouched.
    let (level_token, edge_token, oneshot_token) =
        (Token::new(1, u32::MAX), Token::new(2, 7), Token::new(3, 0));
    os.epoll_ctl(epfd, CtlOp::Add, level, Events::IN, level_token)?;
    os.epoll_ctl(epfd, CtlOp::Add, edge, Events::IN | Events::ET, edge_token)?;
    os.epoll_ctl(
        epfd,
        CtlOp::Add,
        oneshot,
        Events::IN | Events::ONESHOT,
        oneshot_token,
    )?;
    assert!(
        wait(&os, epfd, 8, Duration::ZERO).is_empty(),
        "nothing is ready yet"
    );

    for fd in [level, edge, oneshot] {
        os.eventfd_write(fd, 1)?;
    }
    // The ready list is FIFO by wakeup.
    let first = wait(&os, epfd, 8, Duration::ZERO);
    assert_eq!(
        tokens(&first),
        [level_token.0, edge_token.0, oneshot_token.0]
    );
    assert!(first.iter().all(|event| event.events == Events::IN));

    // Level repeats; edge waits for a new wakeup; oneshot is disarmed.
    assert_eq!(tokens(&wait(&os, epfd, 8, Duration::ZERO)), [level_token.0]);
    os.eventfd_write(edge, 1)?;
    os.eventfd_write(oneshot, 1)?;
    assert_eq!(
        tokens(&wait(&os, epfd, 8, Duration::ZERO)),
        [level_token.0, edge_token.0]
    );

    // Re-arming a oneshot registration with data pending reports it at once.
    os.epoll_ctl(
        epfd,
        CtlOp::Mod,
        oneshot,
        Events::IN | Events::ONESHOT,
        oneshot_token,
    )?;
    let rearmed = wait(&os, epfd, 8, Duration::ZERO);
    assert!(tokens(&rearmed).contains(&oneshot_token.0), "{rearmed:?}");

    // max_events bounds one call; the rest stays ready for the next.
    os.eventfd_write(edge, 1)?;
    assert_eq!(wait(&os, epfd, 1, Duration::ZERO).len(), 1);

    // Draining removes readiness; a level registration then goes quiet.
    for fd in [level, edge, oneshot] {
        os.eventfd_read(fd)?;
    }
    assert!(wait(&os, epfd, 8, Duration::ZERO).is_empty());
    close_all(&os, &[level, edge, oneshot, epfd])
}

// ---- TCP ----

#[test]
fn accept_on_an_empty_backlog_is_eagain() -> TestResult {
    let os = RealOs::new();
    let listener = os.listen(loopback(), 16, false)?;
    assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EAGAIN));
    os.close(listener)
}

#[test]
fn listen_connect_accept_agree_on_addresses_and_flags() -> TestResult {
    let os = RealOs::new();
    let listener = os.listen(loopback(), 16, false)?;
    let listen_addr = os.local_addr(listener)?;
    assert_eq!(listen_addr.ip(), loopback().ip());
    assert_ne!(listen_addr.port(), 0, "port 0 picks a free port");
    assert_eq!(os.peer_addr(listener), Err(Errno::ENOTCONN));
    assert_nonblocking_cloexec(listener);

    let client = os.connect(listen_addr)?;
    assert_nonblocking_cloexec(client);
    assert_eq!(real::net::nodelay(client.0), Ok(true));
    let epfd = os.epoll_create()?;
    os.epoll_ctl(epfd, CtlOp::Add, client, Events::OUT | Events::ET, Token(5))?;
    let connected = wait_for(&os, epfd, Events::OUT);
    assert!(
        !connected.events.intersects(Events::ERR | Events::HUP),
        "{connected:?}"
    );
    assert_eq!(os.take_error(client), Ok(None));

    let (server, peer) = accept_one(&os, listener);
    assert_nonblocking_cloexec(server);
    assert_eq!(real::net::nodelay(server.0), Ok(true));
    assert_eq!(Ok(peer), os.local_addr(client));
    assert_eq!(os.peer_addr(server), Ok(peer));
    assert_eq!(os.peer_addr(client), Ok(listen_addr));
    assert_eq!(os.local_addr(server), Ok(listen_addr));
    close_all(&os, &[epfd, server, client, listener])
}

#[test]
fn reuse_port_lets_listeners_share_a_port() -> TestResult {
    let os = RealOs::new();
    let first = os.listen(loopback(), 16, true)?;
    let addr = os.local_addr(first)?;
    let second = os.listen(addr, 16, true)?;
    assert_eq!(os.local_addr(second), Ok(addr));
    assert_eq!(os.listen(addr, 16, false), Err(Errno::EADDRINUSE));
    close_all(&os, &[second, first])
}

#[test]
fn ipv6_loopback_addresses_round_trip() -> TestResult {
    let os = RealOs::new();
    let listener = match os.listen(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)), 16, false) {
        Ok(fd) => fd,
        // Without IPv6 on loopback there is nothing to measure; the IPv4 tests still run.
        Err(errno) if errno.0 == libc::EADDRNOTAVAIL || errno.0 == libc::EAFNOSUPPORT => {
            return Ok(())
        }
        Err(errno) => return Err(errno),
    };
    let addr = os.local_addr(listener)?;
    assert!(addr.is_ipv6());
    let client = os.connect(addr)?;
    let (server, peer) = accept_one(&os, listener);
    assert!(peer.is_ipv6());
    assert_eq!(os.local_addr(client), Ok(peer));
    assert_eq!(os.peer_addr(client), Ok(addr));
    close_all(&os, &[server, client, listener])
}

#[test]
fn connect_refused_is_reported_through_so_error() -> TestResult {
    let os = RealOs::new();
    // A port that was just free: bound by a listener that is then closed.
    let listener = os.listen(loopback(), 1, false)?;
    let addr = os.local_addr(listener)?;
    os.close(listener)?;

    // Loopback connects are asynchronous too: the refusal comes later, as a socket error.
    let client = os.connect(addr)?;
    let epfd = os.epoll_create()?;
    os.epoll_ctl(epfd, CtlOp::Add, client, Events::OUT, Token(3))?;
    let failed = wait_for(&os, epfd, Events::ERR);
    assert!(failed.events.contains(Events::HUP), "{failed:?}");
    assert_eq!(os.take_error(client), Ok(Some(Errno::ECONNREFUSED)));
    assert_eq!(
        os.take_error(client),
        Ok(None),
        "reading SO_ERROR clears it"
    );
    assert_eq!(os.take_error(NEVER_OPEN), Err(Errno::EBADF));
    close_all(&os, &[epfd, client])
}

#[test]
fn read_write_writev_and_shutdown_over_tcp() -> TestResult {
    let os = RealOs::new();
    let (listener, client, server) = tcp(&os);
    let mut buf = [0u8; 64];
    assert_eq!(os.read(server, &mut buf), Err(Errno::EAGAIN));
    assert_eq!(
        os.read(server, &mut []),
        Ok(0),
        "an empty buffer reads nothing"
    );

    assert_eq!(os.write(client, b"hello"), Ok(5));
    assert_eq!(read_exact(&os, server, 5), b"hello");
    assert_eq!(os.writev(client, &[b"ab", b"", b"cde"]), Ok(5));
    assert_eq!(read_exact(&os, server, 5), b"abcde");

    // Half-close: the server sees IN|RDHUP, then end of file, and can still answer.
    let epfd = os.epoll_create()?;
    os.epoll_ctl(
        epfd,
        CtlOp::Add,
        server,
        Events::IN | Events::RDHUP,
        Token(8),
    )?;
    os.shutdown(client, Shutdown::Write)?;
    let half_closed = wait_for(&os, epfd, Events::IN | Events::RDHUP);
    assert!(!half_closed.events.contains(Events::HUP), "{half_closed:?}");
    assert_eq!(os.read(server, &mut buf), Ok(0));
    assert_eq!(os.write(server, b"bye"), Ok(3));
    assert_eq!(read_exact(&os, client, 3), b"bye");
    assert_eq!(
        os.write(client, b"x"),
        Err(Errno::EPIPE),
        "the client shut its writing half"
    );

    os.shutdown(client, Shutdown::Read)?;
    os.shutdown(server, Shutdown::Both)?;
    let (reader, writer) = os.pipe()?;
    assert_eq!(
        os.shutdown(reader, Shutdown::Both),
        Err(Errno(libc::ENOTSOCK))
    );
    assert_eq!(os.shutdown(NEVER_OPEN, Shutdown::Both), Err(Errno::EBADF));
    close_all(&os, &[reader, writer, epfd, server, client, listener])
}

#[test]
fn writev_passes_a_bounded_number_of_buffers_per_call() -> TestResult {
    let os = RealOs::new();
    let (a, b) = os.socketpair()?;
    let bufs: Vec<&[u8]> = vec![b"x"; 100];
    let written = os.writev(a, &bufs)?;
    // A short write is within the contract; it stops at a buffer boundary here.
    assert_eq!(written, real::io::WRITEV_BUFFERS_MAX);
    assert_eq!(os.inq(b), Ok(written));
    assert_eq!(os.writev(a, &[]), Ok(0));
    close_all(&os, &[a, b])
}

#[test]
fn write_to_a_dead_peer_is_epipe_and_never_a_signal() -> TestResult {
    if !in_child("write_to_a_dead_peer_is_epipe_and_never_a_signal") {
        return Ok(());
    }
    // With SIGPIPE at its default action, a single signal would kill this child.
    real::process::restore_default_sigpipe();
    assert!(!real::process::sigpipe_ignored());
    let os = RealOs::new();

    // TCP: the peer closes; our first write may still be accepted (the peer answers it with
    // a reset), after which writes fail with EPIPE.
    let (listener, client, server) = tcp(&os);
    os.close(server)?;
    let failed = eventually(
        "a failed write to a TCP socket whose peer closed",
        || match os.write(client, b"x") {
            Ok(_) | Err(Errno::EAGAIN) => None,
            Err(errno) => Some(errno),
        },
    );
    assert_eq!(failed, Errno::EPIPE);
    assert_eq!(os.writev(client, &[b"y"]), Err(Errno::EPIPE));

    // Unix stream socket.
    let (a, b) = os.socketpair()?;
    os.close(b)?;
    assert_eq!(os.write(a, b"x"), Err(Errno::EPIPE));
    assert_eq!(os.writev(a, &[b"x", b"y"]), Err(Errno::EPIPE));
    assert!(
        !real::process::sigpipe_ignored(),
        "sockets never needed SIGPIPE ignored"
    );

    // Pipe: no MSG_NOSIGNAL exists, so the backend ignores SIGPIPE before writing.
    let (reader, writer) = os.pipe()?;
    os.close(reader)?;
    assert_eq!(os.write(writer, b"x"), Err(Errno::EPIPE));
    assert_eq!(os.writev(writer, &[b"x"]), Err(Errno::EPIPE));
    assert!(real::process::sigpipe_ignored());
    close_all(&os, &[writer, a, client, listener])
}

#[test]
fn reset_gives_the_peer_econnreset_after_its_unread_data() -> TestResult {
    let os = RealOs::new();
    let (listener, client, server) = tcp(&os);
    let epfd = os.epoll_create()?;
    // Mask 0: only ERR and HUP, which are always reported.
    os.epoll_ctl(epfd, CtlOp::Add, server, Events::NONE, Token(4))?;

    assert_eq!(os.write(client, b"abc"), Ok(3));
    eventually("3 bytes queued at the server", || {
        (os.inq(server) == Ok(3)).then_some(())
    });
    os.reset(client)?;
    let reset = wait_for(&os, epfd, Events::ERR | Events::HUP);
    assert_eq!(reset.token, Token(4));

    let mut buf = [0u8; 16];
    assert_eq!(
        os.read(server, &mut buf),
        Ok(3),
        "unread data comes before the reset"
    );
    assert_eq!(os.read(server, &mut buf), Err(Errno::ECONNRESET));
    assert_eq!(
        os.read(server, &mut buf),
        Ok(0),
        "the error is reported once"
    );
    assert_eq!(os.write(server, b"x"), Err(Errno::EPIPE));
    assert_eq!(os.reset(NEVER_OPEN), Err(Errno::EBADF));
    close_all(&os, &[epfd, server, listener])
}

/// The seam allows `ECONNABORTED` for a connection that died in the backlog. Linux 6.18 does
/// not produce it for TCP: `accept` hands out the reset connection like any other, and the
/// reset shows on the first read (`ECONNRESET`), while `getpeername` says `ENOTCONN`. The
/// simulator should model what Linux does; servers must handle both.
#[test]
fn accept_returns_a_connection_reset_while_queued() -> TestResult {
    let os = RealOs::new();
    let listener = os.listen(loopback(), 16, false)?;
    let epfd = os.epoll_create()?;
    os.epoll_ctl(epfd, CtlOp::Add, listener, Events::IN, Token(1))?;
    let client = os.connect(os.local_addr(listener)?)?;
    wait_for(&os, epfd, Events::IN);
    os.reset(client)?;
    // Loopback delivers the reset within the `close`, but give a slow machine a moment.
    std::thread::sleep(ms(20));

    let (server, _) = os.accept(listener)?;
    let mut buf = [0u8; 8];
    let first = eventually("the queued reset to show", || {
        match os.read(server, &mut buf) {
            Err(Errno::EAGAIN) => None,
            other => Some(other),
        }
    });
    assert_eq!(first, Err(Errno::ECONNRESET));
    assert_eq!(os.peer_addr(server), Err(Errno::ENOTCONN));
    assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EAGAIN));
    close_all(&os, &[server, epfd, listener])
}

/// At the descriptor limit `accept` fails with `EMFILE` and the connection stays queued, so a
/// level-triggered listener keeps reporting it; one free descriptor lets it through. With no
/// descriptor free, `EMFILE` comes even from an empty backlog. Runs alone because the limit
/// is process-wide.
#[test]
fn accept_at_the_descriptor_limit_is_emfile_and_keeps_the_connection() -> TestResult {
    if !in_child("accept_at_the_descriptor_limit_is_emfile_and_keeps_the_connection") {
        return Ok(());
    }
    let os = RealOs::new();
    let listener = os.listen(loopback(), 16, false)?;
    let epfd = os.epoll_create()?;
    os.epoll_ctl(epfd, CtlOp::Add, listener, Events::IN, Token(1))?;
    let client = os.connect(os.local_addr(listener)?)?;
    wait_for(&os, epfd, Events::IN);

    // Lower the soft limit just above what is open, then use up every number below it.
    let (soft, _) = real::process::nofile_limit().map_err(|e| Errno(e.0))?;
    let highest = *real::process::open_fds()
        .map_err(|e| Errno(e.0))?
        .last()
        .unwrap();
    let limit = u64::try_from(highest).unwrap() + 1 + 8;
    real::process::set_nofile_soft_limit(limit).map_err(|e| Errno(e.0))?;
    let mut fillers = Vec::new();
    let exhausted = loop {
        assert!(fillers.len() < 1024, "the limit of {limit} never bit");
        match os.eventfd() {
            Ok(fd) => fillers.push(fd),
            Err(errno) => break errno,
        }
    };
    assert_eq!(exhausted, Errno::EMFILE);

    assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EMFILE));
    let still_ready = wait(&os, epfd, 4, Duration::ZERO);
    assert_eq!(tokens(&still_ready), [1], "the connection is still queued");
    assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EMFILE));

    os.close(fillers.pop().expect("at least one filler"))?;
    let (server, _) = os.accept(listener)?;
    // Linux reserves the new descriptor before it looks at the queue, so at the limit even
    // an empty backlog answers EMFILE, not EAGAIN.
    assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EMFILE));
    os.close(fillers.pop().expect("a second filler"))?;
    assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EAGAIN));

    close_all(&os, &fillers)?;
    real::process::set_nofile_soft_limit(soft).map_err(|e| Errno(e.0))?;
    close_all(&os, &[server, client, epfd, listener])
}

// ---- any descriptor ----

/// `dup` shares the open file description, and with it the epoll registration, which lives
/// on (with its old token) after the original number is closed. Runs alone because it
/// checks descriptor numbers.
#[test]
fn dup_shares_registrations_and_takes_the_lowest_number() -> TestResult {
    if !in_child("dup_shares_registrations_and_takes_the_lowest_number") {
        return Ok(());
    }
    let os = RealOs::new();
    let epfd = os.epoll_create()?;
    let efd = os.eventfd()?;
    os.epoll_ctl(epfd, CtlOp::Add, efd, Events::IN | Events::ET, Token(9))?;
    let copy = os.dup(efd)?;
    assert_ne!(copy, efd);
    assert_eq!(real::io::is_cloexec(copy.0), Ok(true));

    os.close(efd)?;
    os.eventfd_write(copy, 1)?;
    let events = wait(&os, epfd, 4, Duration::ZERO);
    assert_eq!(tokens(&events), [9], "the registration outlived close(efd)");
    // The registration is keyed by (description, number): the old number is closed, the
    // copy was never registered.
    assert_eq!(
        os.epoll_ctl(epfd, CtlOp::Del, efd, Events::NONE, Token(9)),
        Err(Errno::EBADF)
    );
    assert_eq!(
        os.epoll_ctl(epfd, CtlOp::Del, copy, Events::NONE, Token(9)),
        Err(Errno::ENOENT)
    );

    // The lowest free number: the one just closed.
    let again = os.dup(copy)?;
    assert_eq!(again, efd);
    assert_eq!(
        os.eventfd_read(again),
        Ok(1),
        "both numbers read the same counter"
    );
    assert_eq!(os.dup(NEVER_OPEN), Err(Errno::EBADF));
    close_all(&os, &[again, copy, epfd])
}

#[test]
fn close_of_a_number_that_is_not_open_is_ebadf() -> TestResult {
    let os = RealOs::new();
    assert_eq!(os.close(NEVER_OPEN), Err(Errno::EBADF));
    let efd = os.eventfd()?;
    os.close(efd)
}

// ---- eventfd, socketpair, pipe ----

#[test]
fn eventfd_counts_resets_and_refuses_overflow() -> TestResult {
    let os = RealOs::new();
    let efd = os.eventfd()?;
    assert_nonblocking_cloexec(efd);
    assert_eq!(os.eventfd_read(efd), Err(Errno::EAGAIN), "a zero counter");
    os.eventfd_write(efd, 1)?;
    os.eventfd_write(efd, 2)?;
    assert_eq!(os.eventfd_read(efd), Ok(3));
    assert_eq!(
        os.eventfd_read(efd),
        Err(Errno::EAGAIN),
        "reading resets the counter"
    );

    assert_eq!(os.eventfd_write(efd, u64::MAX), Err(Errno::EINVAL));
    os.eventfd_write(efd, u64::MAX - 1)?;
    assert_eq!(
        os.eventfd_write(efd, 1),
        Err(Errno::EAGAIN),
        "the sum would exceed MAX - 1"
    );
    assert_eq!(os.eventfd_read(efd), Ok(u64::MAX - 1));

    // Every write is a wakeup under ET, even when the counter was already non-zero.
    let epfd = os.epoll_create()?;
    os.epoll_ctl(epfd, CtlOp::Add, efd, Events::IN | Events::ET, Token(2))?;
    os.eventfd_write(efd, 1)?;
    assert_eq!(tokens(&wait(&os, epfd, 4, Duration::ZERO)), [2]);
    os.eventfd_write(efd, 1)?;
    assert_eq!(tokens(&wait(&os, epfd, 4, Duration::ZERO)), [2]);
    assert_eq!(os.eventfd_read(efd), Ok(2));
    assert_eq!(os.eventfd_read(NEVER_OPEN), Err(Errno::EBADF));
    close_all(&os, &[epfd, efd])
}

#[test]
fn socketpair_and_pipe_carry_bytes_and_report_eof() -> TestResult {
    let os = RealOs::new();
    let (a, b) = os.socketpair()?;
    let (reader, writer) = os.pipe()?;
    for fd in [a, b, reader, writer] {
        assert_nonblocking_cloexec(fd);
    }
    let mut buf = [0u8; 16];

    assert_eq!(os.write(a, b"ping"), Ok(4));
    assert_eq!(os.read(b, &mut buf), Ok(4));
    assert_eq!(os.write(b, b"pong"), Ok(4));
    assert_eq!(os.read(a, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"pong");
    assert_eq!(os.read(a, &mut buf), Err(Errno::EAGAIN));
    os.close(b)?;
    assert_eq!(os.read(a, &mut buf), Ok(0));

    assert_eq!(os.read(reader, &mut buf), Err(Errno::EAGAIN));
    assert_eq!(os.writev(writer, &[b"to", b"pipe"]), Ok(6));
    assert_eq!(os.read(reader, &mut buf), Ok(6));
    assert_eq!(&buf[..6], b"topipe");
    assert_eq!(
        os.read(writer, &mut buf),
        Err(Errno::EBADF),
        "the write end cannot read"
    );
    assert_eq!(
        os.write(reader, b"x"),
        Err(Errno::EBADF),
        "the read end cannot write"
    );
    os.close(writer)?;
    assert_eq!(os.read(reader, &mut buf), Ok(0));
    close_all(&os, &[reader, a])
}

#[test]
fn inq_and_outq_count_unread_bytes() -> TestResult {
    let os = RealOs::new();

    // TCP: the receiver counts what it has not read; the sender counts what is not yet
    // acknowledged, which on loopback drains to zero quickly.
    let (listener, client, server) = tcp(&os);
    assert_eq!(os.write(client, &[7u8; 1000]), Ok(1000));
    eventually("1000 bytes at the server", || {
        (os.inq(server) == Ok(1000)).then_some(())
    });
    eventually("the client's bytes acknowledged", || {
        (os.outq(client) == Ok(0)).then_some(())
    });
    assert_eq!(
        os.inq(listener),
        Err(Errno::EINVAL),
        "a listener has no receive queue"
    );

    // Unix: SIOCOUTQ is the send buffer's memory charge, an upper bound of unread bytes.
    let (a, b) = os.socketpair()?;
    assert_eq!(os.write(a, b"0123456789"), Ok(10));
    assert_eq!(os.inq(b), Ok(10));
    assert!(os.outq(a)? >= 10);
    let mut buf = [0u8; 16];
    assert_eq!(os.read(b, &mut buf), Ok(10));
    assert_eq!((os.inq(b), os.outq(a)), (Ok(0), Ok(0)));

    // Pipe: both ends see the bytes in the shared buffer.
    let (reader, writer) = os.pipe()?;
    assert_eq!(os.write(writer, b"abcdef"), Ok(6));
    assert_eq!((os.inq(reader), os.outq(writer)), (Ok(6), Ok(6)));
    assert_eq!(os.read(reader, &mut buf), Ok(6));
    assert_eq!(os.outq(writer), Ok(0));

    let efd = os.eventfd()?;
    assert_eq!(
        os.inq(efd),
        Err(Errno(libc::ENOTTY)),
        "an eventfd has no queue"
    );
    close_all(&os, &[efd, reader, writer, a, b, server, client, listener])
}

// ---- time and threads ----

#[test]
fn now_is_monotonic_and_shared_by_clones() {
    let os = RealOs::new();
    let before = os.now();
    os.sleep(ms(20));
    let after = os.now();
    assert!(after >= before + ms(20), "{before:?} then {after:?}");
    let clone = os.clone();
    assert!(clone.now() >= after, "a clone keeps the same zero");
    let younger = RealOs::new();
    assert!(
        younger.now() <= os.now(),
        "a new backend starts its own clock"
    );
}

#[test]
fn spawn_names_threads_and_join_returns_panic_messages() {
    let os = RealOs::new();
    let (sender, receiver) = mpsc::channel();
    let named = os.spawn("edgesim-named", move || {
        let name = std::thread::current().name().map(str::to_string);
        sender.send(name).expect("the test listens");
    });
    assert_eq!(named.join(), Ok(()));
    let name = receiver.recv_timeout(PATIENCE).expect("the thread ran");
    assert_eq!(name.as_deref(), Some("edgesim-named"));

    let formatted = os.spawn("edgesim-panics", || panic!("boom {}", 7));
    assert_eq!(formatted.join(), Err("boom 7".to_string()));
    let literal = os.spawn("edgesim-panics", || panic!("plain boom"));
    assert_eq!(literal.join(), Err("plain boom".to_string()));
    let other = os.spawn("edgesim-panics", || std::panic::panic_any(7u32));
    assert!(other.join().is_err());
}

#[test]
fn unpark_before_park_makes_park_return_at_once() {
    let os = RealOs::new();
    os.current().unpark();
    let start = Instant::now();
    os.park(Some(PATIENCE));
    assert!(
        start.elapsed() < PATIENCE / 2,
        "park waited {:?}",
        start.elapsed()
    );
}

#[test]
fn unpark_wakes_a_parked_thread() {
    let os = RealOs::new();
    let woken = Arc::new(os.atomic(0));
    let (sender, receiver) = mpsc::channel();
    let parked_os = os.clone();
    let parked_woken = Arc::clone(&woken);
    let parked = os.spawn("edgesim-parked", move || {
        // Parking may return spuriously, so wait for the flag, bounded in time. Each park
        // lasts up to PATIENCE, so only a working unpark ends it quickly.
        let deadline = parked_os.now() + PATIENCE * 2;
        while parked_woken.load() == 0 && parked_os.now() < deadline {
            parked_os.park(Some(PATIENCE));
        }
        let _ = sender.send(parked_os.now());
    });
    std::thread::sleep(ms(20));
    let unparked_at = os.now();
    woken.store(1);
    parked.thread().unpark();
    let woke_at = receiver
        .recv_timeout(PATIENCE * 3)
        .expect("the parked thread ended");
    assert!(
        woke_at.saturating_sub(unparked_at) < PATIENCE / 2,
        "unpark took {:?}",
        woke_at.saturating_sub(unparked_at)
    );
    assert_eq!(parked.join(), Ok(()));

    // A timeout alone ends a park too.
    let start = Instant::now();
    os.park(Some(ms(10)));
    assert!(start.elapsed() < PATIENCE);
}

#[test]
fn mutex_serialises_and_survives_a_panicking_holder() {
    let os = RealOs::new();
    let counter = Arc::new(os.mutex(0u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let counter = Arc::clone(&counter);
            os.spawn("edgesim-counter", move || {
                for _ in 0..1000 {
                    counter.lock(|value| *value += 1);
                }
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join(), Ok(()));
    }
    assert_eq!(counter.lock(|value| *value), 4000);

    let poisoner = Arc::clone(&counter);
    let panicked = os.spawn("edgesim-poisoner", move || {
        poisoner.lock(|value| {
            *value = 1;
            panic!("panic with the lock held");
        })
    });
    assert_eq!(panicked.join(), Err("panic with the lock held".to_string()));
    assert_eq!(counter.lock(|value| *value), 1, "poisoning is ignored");
}

#[test]
fn atomic_operations_return_previous_values() {
    let os = RealOs::new();
    let cell = os.atomic(5);
    assert_eq!(cell.load(), 5);
    cell.store(6);
    assert_eq!(cell.swap(7), 6);
    assert_eq!(cell.compare_exchange(7, 8), Ok(7));
    assert_eq!(cell.compare_exchange(7, 9), Err(8));
    assert_eq!(cell.fetch_add(u64::MAX), 8, "wrapping add");
    assert_eq!(cell.load(), 7);
    assert_eq!(cell.fetch_sub(8), 7, "wrapping subtract");
    assert_eq!(cell.load(), u64::MAX);
}

// ---- descriptor hygiene ----

/// Every kind of descriptor, and every error path that makes one internally, ends with the
/// descriptor table exactly as it began: nothing leaked, and a sentinel opened before the
/// workload is untouched, so no wrapper closed a number it did not own. Runs alone because
/// other tests open descriptors concurrently.
#[test]
fn no_descriptor_leaks_or_double_closes() -> TestResult {
    if !in_child("no_descriptor_leaks_or_double_closes") {
        return Ok(());
    }
    let os = RealOs::new();
    let sentinel = os.eventfd()?;
    os.eventfd_write(sentinel, 5)?;
    let before = real::process::open_fds().map_err(|e| Errno(e.0))?;

    for _ in 0..3 {
        let epfd = os.epoll_create()?;
        let listener = os.listen(loopback(), 16, true)?;
        let addr = os.local_addr(listener)?;
        // Error paths that create a socket internally and must close it.
        assert_eq!(os.listen(addr, 16, false), Err(Errno::EADDRINUSE));
        assert_eq!(os.accept(listener).map(|_| ()), Err(Errno::EAGAIN));
        let client = os.connect(addr)?;
        let (server, _) = accept_one(&os, listener);
        os.epoll_ctl(epfd, CtlOp::Add, server, Events::IN, Token(1))?;
        let copy = os.dup(server)?;
        let efd = os.eventfd()?;
        let (a, b) = os.socketpair()?;
        let (reader, writer) = os.pipe()?;
        // `reset` closes even a descriptor it cannot linger (the option fails first).
        assert_eq!(os.reset(reader), Err(Errno(libc::ENOTSOCK)));
        os.reset(client)?;
        close_all(&os, &[writer, a, b, efd, copy, server, listener, epfd])?;

        let refused = os.connect(addr)?;
        eventually("the refusal", || os.take_error(refused).ok().flatten());
        os.close(refused)?;
    }

    let after = real::process::open_fds().map_err(|e| Errno(e.0))?;
    assert_eq!(before, after, "the descriptor table is as it was");
    assert_eq!(
        os.eventfd_read(sentinel),
        Ok(5),
        "the sentinel was never closed"
    );
    os.close(sentinel)?;
    assert_eq!(os.close(sentinel), Err(Errno::EBADF));
    Ok(())
}

/// A signal handled while a thread waits in `epoll_wait` ends the wait with `EINTR`; the
/// backend hands it up instead of retrying. Runs alone because the handler is process-wide.
#[test]
fn epoll_wait_interrupted_by_a_signal_is_eintr() -> TestResult {
    if !in_child("epoll_wait_interrupted_by_a_signal_is_eintr") {
        return Ok(());
    }
    use std::os::unix::thread::JoinHandleExt;
    let os = RealOs::new();
    let epfd = os.epoll_create()?;
    real::process::install_interrupting_handler(libc::SIGUSR1).map_err(|e| Errno(e.0))?;
    let (sender, receiver) = mpsc::channel();
    let waiter_os = os.clone();
    let waiter = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = sender.send(waiter_os.epoll_wait(epfd, &mut out, 4, Some(PATIENCE)));
    });
    // The signal may land before the waiter is inside epoll_wait; keep sending until it is.
    let result = eventually("the waiter to be interrupted", || {
        real::process::signal_thread(waiter.as_pthread_t(), libc::SIGUSR1)
            .expect("the waiter is alive until joined");
        receiver.recv_timeout(ms(10)).ok()
    });
    assert_eq!(result, Err(Errno::EINTR));
    waiter.join().expect("the waiter did not panic");
    os.close(epfd)
}
