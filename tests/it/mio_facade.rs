//! The mio facade and the harness: the example reactor (examples/echo_reactor/reactor.rs),
//! unchanged, runs on Linux through `edgesim::mio` and in the simulator, where its
//! incomplete-drain variant is caught as a stall with its seed.
//!
//! `edgesim::mio` re-exports this workspace's `mio` crate, which the workspace's
//! `[patch.crates-io]` also makes every crate's `mio`: the file compiled against "the mio
//! crate" and against the facade is now one implementation, so it is run once. That real
//! mio programs compile against the crate is checked with mio's own example instead
//! (tests-tokio, `mio_example`).

use edgesim::harness::{ClientSpec, EdgeModel, Harness, Pattern, Verdict};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The example reactor against the facade.
mod on_edgesim {
    use edgesim::mio;
    include!("../../examples/echo_reactor/reactor.rs");
}

/// Seeds the correct reactor must pass by default (about 5 s in a debug build on two
/// cores); `EDGESIM_SEEDS=0..2000` runs the full acceptance range (about 30 s).
const PASS_SEEDS: std::ops::Range<u64> = 0..300;

/// Messages big enough that one 4 KiB read cannot take a whole one.
fn workload() -> ClientSpec {
    ClientSpec {
        count: 3,
        messages: 4,
        size_bytes: (1, 20_000),
        pattern: Pattern::Pingpong,
    }
}

fn harness(drain: on_edgesim::Drain) -> Harness {
    Harness::new(move |listener| on_edgesim::serve(listener, drain)).clients(workload())
}

#[test]
fn correct_reactor_passes_every_seed() {
    let explored = harness(on_edgesim::Drain::UntilWouldBlock).check_seeds(PASS_SEEDS);
    assert!(explored.explored >= 1);
}

#[test]
fn one_read_per_event_is_caught_as_a_stall_with_its_seed() {
    let explored = harness(on_edgesim::Drain::OneRead).explore(0..50);
    let failure = explored
        .first_failure
        .expect("some seed of 0..50 catches the incomplete drain");
    assert_eq!(failure.verdict, Verdict::Stall, "{failure:#?}");
    let diagnosis = failure.diagnosis.join("\n");
    assert!(
        diagnosis.contains("unread bytes") && diagnosis.contains("stopped reading before EAGAIN"),
        "the diagnosis names the undrained socket: {diagnosis}"
    );
    // The seed replays exactly.
    let again = harness(on_edgesim::Drain::OneRead).run(failure.seed);
    assert_eq!(
        (again.verdict, again.trace_hash),
        (failure.verdict, failure.trace_hash)
    );
}

/// Messages smaller than the reactor's 4 KiB read, and no fault set by the test: swarm
/// mode's environments alone must still catch the one-read flaw. With pipelined clients
/// several messages queue up before the loop reads, more than one read takes, and the
/// one-read loop waits for an edge that does not come; a pingpong of small messages is
/// drained by one read and is no bug on Linux.
fn small_messages() -> ClientSpec {
    ClientSpec {
        count: 3,
        messages: 6,
        size_bytes: (1, 4000),
        pattern: Pattern::Pipeline,
    }
}

#[test]
fn one_read_is_caught_with_small_messages_and_no_fault_settings() {
    let flawed = Harness::new(|l| on_edgesim::serve(l, on_edgesim::Drain::OneRead))
        .clients(small_messages())
        .explore(0..200);
    let failure = flawed
        .first_failure
        .expect("swarm mode finds the one-read flaw within 200 seeds");
    assert_eq!(failure.verdict, Verdict::Stall, "{failure:#?}");
    eprintln!(
        "one-read, small messages: first failure at seed {}",
        failure.seed
    );
    Harness::new(|l| on_edgesim::serve(l, on_edgesim::Drain::UntilWouldBlock))
        .clients(small_messages())
        .check_seeds(PASS_SEEDS);
}

/// Short reads and writes, split segments and EINTR from `epoll_wait`: faults a correct
/// loop absorbs (unlike resets and aborted accepts, which a client sees).
#[test]
fn correct_reactor_passes_under_faults() {
    let harness = harness(on_edgesim::Drain::UntilWouldBlock).sim(|sim| {
        sim.faults.kernel.short_read = 0.2;
        sim.faults.kernel.short_write = 0.2;
        sim.faults.kernel.segment = 0.3;
        sim.faults.sched.eintr = 0.1;
    });
    harness.check_seeds(1000..1100);
}

/// Textbook edges (only empty to non-empty) give a loop fewer second chances than Linux
/// does; a loop that drains to WouldBlock needs none.
#[test]
fn correct_reactor_passes_with_strict_edges_and_the_flawed_one_does_not() {
    let strict = |sim: &mut edgesim::harness::SimSpec| sim.edge = EdgeModel::Strict;
    harness(on_edgesim::Drain::UntilWouldBlock)
        .sim(strict)
        .check_seeds(0..100);
    let flawed = harness(on_edgesim::Drain::OneRead)
        .sim(strict)
        .explore(0..50);
    let failure = flawed.first_failure.expect("the incomplete drain fails");
    assert_eq!(failure.verdict, Verdict::Stall, "{failure:#?}");
}

#[test]
fn a_failing_check_panics_with_the_seed_and_the_replay_command() {
    let harness = harness(on_edgesim::Drain::OneRead).jobs(1);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        harness.check_seeds(0..50);
    }))
    .expect_err("the flawed reactor fails a seed of 0..50");
    let message = panic
        .downcast_ref::<String>()
        .expect("the harness panics with a String");
    assert!(message.contains("verdict stall at SEED="), "{message}");
    assert!(message.contains("replay: EDGESIM_SEED="), "{message}");
    assert!(message.contains("--exact"), "{message}");
}

#[test]
fn a_user_client_sees_the_echo_and_its_errors_fail_the_run() {
    use edgesim::mio::net::TcpStream;
    use edgesim::mio::{Events, Interest, Poll, Token};
    use std::io::ErrorKind;

    // Sends `len` bytes and reads them back; `expect_extra` asks for one byte more than
    // the echo holds, which a correct server never sends (it hangs up instead).
    fn echo_once(client: &edgesim::harness::Client, expect_extra: bool) -> Result<(), String> {
        let len = 1 + (client.seed() % 30_000) as usize;
        let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut poll = Poll::new().map_err(|e| e.to_string())?;
        let mut stream = TcpStream::connect(client.addr()).map_err(|e| e.to_string())?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut stream, Token(9), interest)
            .map_err(|e| e.to_string())?;
        let (mut sent, mut echoed) = (0, Vec::new());
        let mut events = Events::with_capacity(2);
        let mut buf = [0u8; 1024];
        loop {
            match poll.poll(&mut events, None) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => other.map_err(|e| e.to_string())?,
            }
            assert!(events.iter().all(|e| e.token() == Token(9)));
            while sent < len {
                match stream.write(&message[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::NotConnected => break,
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            if sent == len {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
            loop {
                match stream.read(&mut buf) {
                    Ok(0) if expect_extra => return Err("the echo ended".to_string()),
                    Ok(0) if echoed == message => return Ok(()),
                    Ok(0) => return Err(format!("end of file after {}", echoed.len())),
                    Ok(n) => {
                        echoed.extend_from_slice(&buf[..n]);
                        client.progress(n as u64);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::NotConnected => break,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        }
    }

    let good = Harness::new(|l| on_edgesim::serve(l, on_edgesim::Drain::UntilWouldBlock))
        .no_standard_clients()
        .client(2, |c| echo_once(c, false));
    good.check_seeds(0..40);
    let picky = Harness::new(|l| on_edgesim::serve(l, on_edgesim::Drain::UntilWouldBlock))
        .no_standard_clients()
        .client(1, |c| echo_once(c, true));
    let result = picky.run(3);
    assert_eq!(result.verdict, Verdict::Corrupt, "{result:#?}");
    assert!(
        result.diagnosis[0].contains("the echo ended"),
        "{result:#?}"
    );
}

#[test]
fn a_connection_the_server_forgets_to_close_is_a_leak() {
    // A server that accepts and then forgets its connections (as if it lost them from its
    // table without closing them).
    let harness = Harness::new(|mut listener| {
        use edgesim::mio::{Events, Interest, Poll, Token};
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, Token(0), Interest::READABLE)?;
        let mut events = Events::with_capacity(4);
        loop {
            let _ = poll.poll(&mut events, None);
            while let Ok((stream, _)) = listener.accept() {
                std::mem::forget(stream);
            }
        }
    })
    .no_standard_clients()
    .client(1, |client| {
        let stream = edgesim::mio::net::TcpStream::connect(client.addr());
        client.sleep(Duration::from_millis(1));
        drop(stream);
        Ok(())
    });
    let result = harness.run(0);
    assert_eq!(result.verdict, Verdict::Leak, "{result:#?}");
    assert!(
        result.diagnosis[0].contains("(Tcp) is still open"),
        "{result:#?}"
    );
}

/// Serves one echo exchange on Linux with `serve` running on its own OS thread, and stops
/// it through its waker.
fn echo_on_linux(port_and_stop: impl FnOnce() -> (u16, Box<dyn FnOnce() + Send>)) {
    let (port, stop) = port_and_stop();
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout bounds the test");
    let writer = {
        let mut client = client.try_clone().expect("clone");
        let message = message.clone();
        std::thread::spawn(move || {
            client.write_all(&message).expect("write");
            client
                .shutdown(std::net::Shutdown::Write)
                .expect("shutdown");
        })
    };
    let mut echoed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    client.read_to_end(&mut echoed).expect("read the echo");
    assert!(Instant::now() < deadline);
    writer.join().expect("the writer finished");
    assert_eq!(echoed.len(), message.len());
    assert!(echoed == message, "the echo differs");
    stop();
}

#[test]
fn the_same_reactor_serves_on_linux_through_the_facade() {
    echo_on_linux(|| {
        // Outside a simulated world the facade is Linux.
        let listener =
            edgesim::mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut server = on_edgesim::EchoServer::new(listener, on_edgesim::Drain::UntilWouldBlock)
            .expect("server");
        let stopper = server.stopper();
        let thread = std::thread::spawn(move || server.run());
        let stop = move || {
            stopper.stop().expect("wake");
            thread
                .join()
                .expect("no panic")
                .expect("the loop ends cleanly");
        };
        (port, Box::new(stop))
    });
}

#[test]
fn poll_times_out_with_no_events_in_the_simulator_and_on_linux() {
    fn poll_twice() -> (bool, bool) {
        let mut poll = edgesim::mio::Poll::new().expect("poll");
        let mut events = edgesim::mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_millis(2)))
            .expect("a timeout is not an error");
        let timed_out = events.is_empty();
        let waker =
            edgesim::mio::Waker::new(poll.registry(), edgesim::mio::Token(5)).expect("waker");
        waker.wake().expect("wake");
        poll.poll(&mut events, Some(Duration::from_millis(2)))
            .expect("poll");
        let woken = events
            .iter()
            .any(|e| e.token() == edgesim::mio::Token(5) && e.is_readable());
        (timed_out, woken)
    }
    assert_eq!(poll_twice(), (true, true), "on Linux");
    let in_sim = edgesim::os::SimOs::conformance(|_| poll_twice());
    assert_eq!(in_sim, (true, true), "in the simulator");
}

#[test]
fn a_server_may_run_its_loop_on_a_thread_of_its_own() {
    // The acceptor thread hands the listener to a loop thread and waits for it, as a server
    // with a control thread would; `harness::spawn` keeps both inside the world.
    let harness = Harness::new(|listener| {
        let worker = edgesim::harness::spawn("server-loop", move || {
            let _ = on_edgesim::serve(listener, on_edgesim::Drain::UntilWouldBlock);
        });
        worker.join().map_err(std::io::Error::other)
    })
    .clients(workload());
    let result = harness.run(11);
    assert_eq!(result.verdict, Verdict::Pass, "{result:#?}");
    assert!(
        result
            .trace
            .iter()
            .any(|line| line.contains("= server-loop")),
        "the loop ran on a simulated thread: {:#?}",
        &result.trace[..8]
    );
}

/// One body, both backends: addresses, half-close seen as `is_read_closed`, a clean
/// `take_error`, and readiness after a write. Returns what it observed so the two runs can
/// be compared.
fn stream_facts() -> Vec<String> {
    use edgesim::mio::net::{TcpListener, TcpStream};
    use edgesim::mio::{Events, Interest, Poll, Token};
    use std::io::ErrorKind;

    let mut facts = Vec::new();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    poll.registry()
        .register(&mut listener, Token(0), Interest::READABLE)
        .expect("register listener");
    let addr = listener.local_addr().expect("addr");
    let mut client = TcpStream::connect(addr).expect("connect");
    poll.registry()
        .register(
            &mut client,
            Token(1),
            Interest::WRITABLE | Interest::READABLE,
        )
        .expect("register client");
    // Bounded: loopback completes in a few polls on either backend.
    let mut accepted = None;
    for _ in 0..50 {
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        if accepted.is_none() {
            match listener.accept() {
                Ok(pair) => accepted = Some(pair),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        if accepted.is_some() && client.peer_addr().is_ok() {
            break;
        }
    }
    let (mut server, peer) = accepted.expect("the connection was accepted");
    facts.push(format!(
        "peer is client: {}",
        Some(peer) == client.local_addr().ok()
    ));
    facts.push(format!(
        "client peer: {}",
        client.peer_addr().ok() == Some(addr)
    ));
    facts.push(format!(
        "take_error: {:?}",
        client.take_error().map(|e| e.is_none()).ok()
    ));
    poll.registry()
        .register(&mut server, Token(2), Interest::READABLE)
        .expect("register server");
    client.write_all(b"ping").expect("write");
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut got = Vec::new();
    let mut read_closed = false;
    for _ in 0..50 {
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        for event in events.iter().filter(|e| e.token() == Token(2)) {
            read_closed |= event.is_read_closed();
        }
        let mut buf = [0u8; 16];
        let eof = loop {
            match server.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) => panic!("read: {e}"),
            }
        };
        if eof && read_closed {
            break;
        }
    }
    facts.push(format!("server read {:?}", String::from_utf8_lossy(&got)));
    facts.push(format!("read closed: {read_closed}"));
    let again = poll
        .registry()
        .register(&mut server, Token(3), Interest::READABLE);
    facts.push(format!(
        "second register: {:?}",
        again.map_err(|e| e.kind())
    ));
    facts
}

#[test]
fn stream_facts_agree_between_linux_and_the_simulator() {
    let linux = stream_facts();
    let simulated = edgesim::os::SimOs::conformance(|_| stream_facts());
    assert_eq!(linux, simulated);
    assert_eq!(
        linux,
        [
            "peer is client: true",
            "client peer: true",
            "take_error: Some(true)",
            "server read \"ping\"",
            "read closed: true",
            "second register: Err(AlreadyExists)",
        ]
    );
}

#[test]
fn a_linux_socket_cannot_be_registered_with_a_simulated_poll() {
    let mut linux_listener =
        edgesim::mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let kind = edgesim::os::SimOs::conformance(move |_| {
        let poll = edgesim::mio::Poll::new().expect("a simulated poll");
        let result = poll.registry().register(
            &mut linux_listener,
            edgesim::mio::Token(0),
            edgesim::mio::Interest::READABLE,
        );
        // Dropped outside its world's reach: the Linux descriptor is closed on Linux.
        drop(linux_listener);
        result.map_err(|e| e.kind())
    });
    assert_eq!(kind, Err(std::io::ErrorKind::InvalidInput));
}

#[test]
fn the_first_failure_does_not_depend_on_the_number_of_jobs() {
    // One message of at most 4500 bytes outgrows one 4 KiB read only now and then, so the
    // first failure is a later seed and the workers race for the seeds before it.
    let flawed = |jobs| {
        Harness::new(|l| on_edgesim::serve(l, on_edgesim::Drain::OneRead))
            .clients(ClientSpec {
                count: 1,
                messages: 1,
                size_bytes: (1, 4500),
                pattern: Pattern::Pingpong,
            })
            .jobs(jobs)
            .explore(0..200)
            .first_failure
            .map(|f| (f.seed, f.verdict, f.trace_hash))
    };
    let one = flawed(1);
    assert!(
        one.is_some_and(|(seed, _, _)| seed > 0),
        "a later seed of 0..200 fails: {one:?}"
    );
    assert_eq!(one, flawed(2));
    assert_eq!(one, flawed(3));
}

/// What the simulator does not model fails with `Unsupported`, and the message names the
/// call; what it does model (unix socket pairs, pipes) works in both backends.
fn coverage_facts() -> Vec<String> {
    use edgesim::mio::net::{TcpListener, UdpSocket, UnixListener, UnixStream};
    use std::os::fd::AsRawFd;

    let mut facts = Vec::new();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let outcome = |result: std::io::Result<()>| match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?}: {e}", e.kind()),
    };
    facts.push(outcome(UdpSocket::bind(any).map(drop)));
    facts.push(outcome(
        UnixListener::bind("/nonexistent-dir/edgesim.sock").map(drop),
    ));
    let (mut a, mut b) = UnixStream::pair().expect("a socket pair");
    a.write_all(b"pair").expect("write");
    let mut buf = [0u8; 8];
    facts.push(format!(
        "pair read {:?}",
        b.read(&mut buf).map(|n| &buf[..n] == b"pair")
    ));
    let (mut sender, mut receiver) = edgesim::mio::unix::pipe::new().expect("a pipe");
    sender.write_all(b"pipe").expect("write");
    facts.push(format!(
        "pipe read {:?}",
        receiver.read(&mut buf).map(|n| &buf[..n] == b"pipe")
    ));
    let simulated = a.as_raw_fd() >= edgesim::mio::SIM_FD_BASE;
    facts.push(format!("raw fd above the simulated base: {simulated}"));
    let std_listener = std::net::TcpListener::bind(any).expect("a Linux listener");
    let adopted = TcpListener::from_std(std_listener);
    facts.push(outcome(adopted.local_addr().map(drop)));
    facts
}

#[test]
fn unsupported_calls_name_themselves_and_pairs_and_pipes_work_in_both_backends() {
    let linux = coverage_facts();
    assert_eq!(linux[0], "ok", "UDP works on Linux: {linux:?}");
    assert!(linux[1].starts_with("NotFound"), "{linux:?}");
    assert_eq!(
        linux[2..5],
        [
            "pair read Ok(true)",
            "pipe read Ok(true)",
            "raw fd above the simulated base: false"
        ]
    );
    assert_eq!(linux[5], "ok");
    let simulated = edgesim::os::SimOs::conformance(|_| coverage_facts());
    assert_eq!(
        simulated[0],
        "Unsupported: mio::net::UdpSocket::bind: the simulator has no UDP (it models TCP, \
         unix socket pairs, pipes and eventfd)"
    );
    assert!(
        simulated[1].starts_with("Unsupported: mio::net::UnixListener::bind: "),
        "{simulated:?}"
    );
    assert_eq!(
        simulated[2..5],
        [
            "pair read Ok(true)",
            "pipe read Ok(true)",
            "raw fd above the simulated base: true"
        ]
    );
    assert!(
        simulated[5].starts_with("Unsupported: mio::net::TcpListener::from_std: "),
        "{simulated:?}"
    );
}
