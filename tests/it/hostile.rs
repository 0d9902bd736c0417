//! Hostile peers against the real `edgesim serve` binary on loopback (ten thousand
//! connections at once, slowloris trickles, peers that never read, resets while the server
//! writes, an accept storm past the server's descriptor limit), and hostile code against
//! the simulator (a panicking handler, a run that never ends, a run's heap).
//!
//! The server runs as its own process so that its descriptors (`/proc/PID/fd`), resident
//! memory (`VmRSS`) and CPU time (`/proc/PID/stat`) are measured apart from the clients'.
//! Each test runs in a child process of this test binary, because the descriptor limit it
//! raises or lowers (inherited by the server it spawns) is process-wide. After each attack
//! the server must still be running, its descriptor count must come back to the baseline
//! it had before the attack, its resident memory must stay under a stated bound, and it
//! must still echo a fresh connection.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to let go of closed connections.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Read and write timeout of the clients' blocking sockets: generous, because the whole
/// suite shares two cores, yet bounded so that a server that stops answering fails the
/// test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Linux reports CPU time in `/proc/PID/stat` in clock ticks; `USER_HZ` is 100 on every
/// architecture Linux supports for user space ABI purposes.
const TICKS_PER_SEC: u64 = 100;

/// Runs the calling test's body in a fresh child process (this binary, asked for the exact
/// test), and returns `true` in that child. In the parent it waits for the child, fails
/// with its output if it failed, and returns `false`.
#[track_caller]
fn in_child(test: &str) -> bool {
    let Some(stderr) = crate::child::run_alone(module_path!(), test) else {
        return true;
    };
    // Figures for the README: the child's measurements, shown with --nocapture.
    for line in stderr.lines().filter(|l| l.starts_with("hostile:")) {
        eprintln!("{line}");
    }
    false
}

/// A running `edgesim serve` process.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
}

impl ServerProc {
    /// Starts the multi-reactor echo server (2 sub-reactors, edge-triggered) on an
    /// ephemeral loopback port and waits for its `listening on ADDR` line.
    fn start() -> ServerProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["serve", "--addr", "127.0.0.1:0", "--reactors", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("edgesim serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"));
        ServerProc { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics if the server has exited.
    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().expect("waitpid") {
            panic!("the server exited {when}: {status}");
        }
    }

    /// Open descriptors of the server process.
    fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("the server's fd directory")
            .count()
    }

    /// Resident memory of the server process, in bytes.
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("a VmRSS line");
        kib * 1024
    }

    /// User plus system CPU time the server has used, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("the server's stat");
        // The command name may contain spaces; the fields after it are fixed.
        let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Fields 14 (utime) and 15 (stime) of proc(5), counted from 1 with pid and comm.
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }

    /// Waits (bounded) until the server holds `baseline` descriptors again.
    fn settle_to(&mut self, baseline: usize, what: &str) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            self.assert_alive(what);
            let now = self.fd_count();
            if now == baseline {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the server holds {now} descriptors, {baseline} before"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then a bounded wait for a clean exit (status 0).
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                assert!(status.success(), "the server stopped with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // A failed test must not leave a server behind; after `stop` this is a no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking loopback client with bounded reads and writes.
fn client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A distinct message for connection `conn`.
fn message(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (conn * 31 + i * 7) as u8).collect()
}

/// Reads exactly `expected.len()` bytes and compares them.
fn expect_echo(stream: &mut TcpStream, expected: &[u8], what: &str) {
    let mut got = vec![0u8; expected.len()];
    stream
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("{what}: reading the echo: {e}"));
    assert_eq!(got, expected, "{what}: the echo differs");
}

/// A fresh connection gets a 4 KiB message echoed; returns how long that took.
fn probe(addr: SocketAddr, what: &str) -> Duration {
    let start = Instant::now();
    let mut stream = client(addr);
    let payload = message(7, 4096);
    stream.write_all(&payload).expect("probe write");
    expect_echo(&mut stream, &payload, what);
    start.elapsed()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// Sets the soft descriptor limit, with the errno in the panic message.
fn set_soft_limit(soft: u64) {
    real::process::set_nofile_soft_limit(soft)
        .unwrap_or_else(|e| panic!("setting the soft RLIMIT_NOFILE to {soft}: {e:?}"));
}

/// Connections held open at once by the 10k test.
const CONNS_10K: usize = 10_000;

/// Resident memory the server may use with 10,000 idle connections. Per connection it
/// keeps a slot and buffers that grow only with pending data; the loops share their 64 KiB
/// read buffers. Measured under 10 MiB in all; the bound leaves room for allocator slack
/// and catches a per-connection buffer (even 4 KiB each would be 40 MiB).
const RSS_10K_BYTES_MAX: u64 = 32 << 20;

/// Descriptors beyond the connections that client and server each need (the test binary,
/// the listener, epoll instances, eventfds, pipes).
const FD_HEADROOM: u64 = 256;

#[test]
fn ten_thousand_concurrent_connections() {
    if !in_child("ten_thousand_concurrent_connections") {
        return;
    }
    let (soft_before, hard) = real::process::nofile_limit().expect("getrlimit");
    let needed = CONNS_10K as u64 + FD_HEADROOM;
    assert!(
        hard >= needed,
        "the hard RLIMIT_NOFILE is {hard}; this test needs {needed}"
    );
    // Raised before the server starts, so it inherits the limit too.
    set_soft_limit(needed.max(soft_before));
    let started = Instant::now();
    let mut server = ServerProc::start();
    let addr = server.addr;
    let baseline = server.fd_count();
    let rss_before = server.rss_bytes();

    let mut conns = Vec::with_capacity(CONNS_10K);
    // In batches, so the listen backlog (1024) never overflows into SYN retransmits.
    for batch_start in (0..CONNS_10K).step_by(500) {
        let batch: Vec<TcpStream> = (batch_start..batch_start + 500)
            .map(|_| client(addr))
            .collect();
        for (i, stream) in batch.iter().enumerate() {
            (&*stream)
                .write_all(&message(batch_start + i, 16))
                .expect("write");
        }
        for (i, mut stream) in batch.into_iter().enumerate() {
            expect_echo(&mut stream, &message(batch_start + i, 16), "10k");
            conns.push(stream);
        }
    }
    server.assert_alive("with 10,000 connections");
    let held = server.fd_count();
    let rss_held = server.rss_bytes();
    assert_eq!(
        held,
        baseline + CONNS_10K,
        "the server should hold every connection at once"
    );
    // Every connection still works while all are open.
    for (i, stream) in conns.iter_mut().enumerate().step_by(97) {
        stream.write_all(&message(i, 64)).unwrap();
        expect_echo(stream, &message(i, 64), "10k second round");
    }
    let probe_held = probe(addr, "probe with 10,000 connections open");
    drop(conns);
    server.settle_to(baseline, "after closing 10,000 connections");
    probe(addr, "probe after 10,000 connections");
    let rss_after = server.rss_bytes();
    eprintln!(
        "hostile: 10k connections: held {held} fds (baseline {baseline}), rss {:.1} MiB before, \
         {:.1} MiB with all open, {:.1} MiB after; probe {:.1} ms; {:.1} s in all",
        mib(rss_before),
        mib(rss_held),
        mib(rss_after),
        probe_held.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64()
    );
    assert!(
        rss_held.max(rss_after) < RSS_10K_BYTES_MAX,
        "resident memory {:.1} MiB over the bound",
        mib(rss_held.max(rss_after))
    );
    server.stop();
    set_soft_limit(soft_before);
}

/// Slowloris peers and the bytes each trickles, one byte per round.
const SLOWLORIS_PEERS: usize = 400;
const SLOWLORIS_BYTES: usize = 24;
/// A fresh client must get its echo within this while the trickle goes on (generous: the
/// suite shares two cores; an unresponsive server would miss it by far).
const SLOWLORIS_PROBE_MAX: Duration = Duration::from_secs(5);
const SLOWLORIS_RSS_BYTES_MAX: u64 = 64 << 20;

#[test]
fn slowloris_peers_trickling_one_byte_at_a_time() {
    let mut server = ServerProc::start();
    let addr = server.addr;
    let baseline = server.fd_count();
    let mut peers: Vec<TcpStream> = (0..SLOWLORIS_PEERS).map(|_| client(addr)).collect();
    let mut probe_worst = Duration::ZERO;
    let mut rss_peak = 0;
    for round in 0..SLOWLORIS_BYTES {
        for (i, peer) in peers.iter_mut().enumerate() {
            peer.write_all(&message(i, SLOWLORIS_BYTES)[round..round + 1])
                .expect("one byte");
        }
        if round % 6 == 0 {
            probe_worst = probe_worst.max(probe(addr, "probe during slowloris"));
            rss_peak = rss_peak.max(server.rss_bytes());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, peer) in peers.iter_mut().enumerate() {
        expect_echo(peer, &message(i, SLOWLORIS_BYTES), "slowloris");
    }
    server.assert_alive("after slowloris");
    drop(peers);
    server.settle_to(baseline, "after slowloris");
    probe(addr, "probe after slowloris");
    rss_peak = rss_peak.max(server.rss_bytes());
    eprintln!(
        "hostile: slowloris: {SLOWLORIS_PEERS} peers x {SLOWLORIS_BYTES} single bytes; worst probe {:.1} ms; peak rss {:.1} MiB",
        probe_worst.as_secs_f64() * 1e3,
        mib(rss_peak)
    );
    assert!(
        probe_worst < SLOWLORIS_PROBE_MAX,
        "a fresh client waited {probe_worst:?} for its echo"
    );
    assert!(
        rss_peak < SLOWLORIS_RSS_BYTES_MAX,
        "resident memory {:.1} MiB",
        mib(rss_peak)
    );
    server.stop();
}

/// Peers that send and never read.
const DEAF_PEERS: usize = 12;
/// What each tries to send: more than the kernel buffers on both sides (a few MiB each)
/// plus the server's hard output limit (8 MiB), so the server must either stop reading or
/// cut the peer off.
const DEAF_BYTES: usize = 32 << 20;
/// How long the peers keep pushing.
const DEAF_DURATION: Duration = Duration::from_secs(4);
/// The server's own bound per connection: it stops reading a peer whose pending output
/// reached the hard output limit (8 MiB), but the growing output buffer briefly holds its
/// old and new copies while it is reallocated, so twice that, plus the input limit
/// (256 KiB) per peer and 32 MiB for the process. Measured peaks: 94 to 173 MiB; about
/// 13 MiB per peer at the worst moment, 8 MiB once the buffer settles.
const DEAF_RSS_BYTES_MAX: u64 = DEAF_PEERS as u64 * ((16 << 20) + (256 << 10)) + (32 << 20);

#[test]
fn peers_that_never_read_keep_server_memory_bounded() {
    let mut server = ServerProc::start();
    let addr = server.addr;
    let baseline = server.fd_count();
    let rss_before = server.rss_bytes();
    let pushers: Vec<_> = (0..DEAF_PEERS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = client(addr);
                stream
                    .set_write_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let chunk = message(i, 64 << 10);
                let deadline = Instant::now() + DEAF_DURATION;
                let mut sent = 0usize;
                while sent < DEAF_BYTES && Instant::now() < deadline {
                    match stream.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        // The server cut this peer off: what a bounded server may do.
                        Err(_) => return (sent, true),
                    }
                }
                (sent, false)
            })
        })
        .collect();
    let mut rss_peak = rss_before;
    let mut probe_worst = Duration::ZERO;
    let watch_until = Instant::now() + DEAF_DURATION;
    while Instant::now() < watch_until {
        rss_peak = rss_peak.max(server.rss_bytes());
        probe_worst = probe_worst.max(probe(addr, "probe while peers never read"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let results: Vec<(usize, bool)> = pushers
        .into_iter()
        .map(|p| p.join().expect("pusher"))
        .collect();
    rss_peak = rss_peak.max(server.rss_bytes());
    server.assert_alive("after peers that never read");
    server.settle_to(baseline, "after peers that never read");
    probe(addr, "probe after peers that never read");
    let sent_mib: f64 = results.iter().map(|(s, _)| mib(*s as u64)).sum();
    let cut = results.iter().filter(|(_, cut)| *cut).count();
    eprintln!(
        "hostile: never-reading peers: {DEAF_PEERS} peers sent {sent_mib:.1} MiB in all, {cut} cut off by the server; \
         rss {:.1} MiB before, peak {:.1} MiB (bound {:.1}); worst probe {:.1} ms",
        mib(rss_before),
        mib(rss_peak),
        mib(DEAF_RSS_BYTES_MAX),
        probe_worst.as_secs_f64() * 1e3
    );
    assert!(
        rss_peak < DEAF_RSS_BYTES_MAX,
        "resident memory peaked at {:.1} MiB",
        mib(rss_peak)
    );
    server.stop();
}

/// Rounds of peers that fill the server's output and then reset.
const RESET_ROUNDS: usize = 4;
const RESET_PEERS: usize = 50;
/// What each peer pushes at most before its reset: enough to fill the kernel buffers
/// between it and the server and leave output pending in the server.
const RESET_FILL_BYTES_MAX: usize = 6 << 20;
const RESET_RSS_BYTES_MAX: u64 = 128 << 20;

#[test]
fn resets_while_the_server_writes() {
    let mut server = ServerProc::start();
    let addr = server.addr;
    let baseline = server.fd_count();
    let mut rss_peak = 0;
    let (mut cut_by_server, mut with_echo_pending) = (0usize, 0usize);
    for round in 0..RESET_ROUNDS {
        let peers: Vec<TcpStream> = (0..RESET_PEERS).map(|_| client(addr)).collect();
        let chunk = message(round, 64 << 10);
        for peer in &peers {
            peer.set_nonblocking(true).unwrap();
        }
        // Push until the kernel refuses more (or RESET_FILL_BYTES_MAX): the echo backs up
        // into the server's output buffer, so the server is mid-write when the reset comes.
        // Past that the server may cut a peer off (its hard output limit); that is fine.
        let fill_until = Instant::now() + Duration::from_secs(2);
        let mut sent = vec![0usize; peers.len()];
        let mut done = vec![false; peers.len()];
        while done.iter().any(|d| !d) && Instant::now() < fill_until {
            for (idx, peer) in peers.iter().enumerate() {
                if done[idx] {
                    continue;
                }
                match (&*peer).write(&chunk) {
                    Ok(n) => {
                        sent[idx] += n;
                        done[idx] = sent[idx] >= RESET_FILL_BYTES_MAX;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => done[idx] = true,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
                        ) =>
                    {
                        cut_by_server += 1;
                        done[idx] = true;
                    }
                    Err(e) => panic!("write before the reset: {e}"),
                }
            }
        }
        rss_peak = rss_peak.max(server.rss_bytes());
        for peer in peers {
            // Echoed bytes waiting unread here mean the server was writing to this peer.
            if real::io::inq(peer.as_raw_fd()).unwrap_or(0) > 0 {
                with_echo_pending += 1;
            }
            // SO_LINGER {1, 0} and close: the server's next write gets ECONNRESET or EPIPE.
            real::net::reset(peer.into_raw_fd()).expect("reset");
        }
        server.assert_alive("after resets");
    }
    server.settle_to(baseline, "after resets mid-write");
    probe(addr, "probe after resets");
    rss_peak = rss_peak.max(server.rss_bytes());
    eprintln!(
        "hostile: resets mid-write: {RESET_ROUNDS} rounds x {RESET_PEERS} peers, {with_echo_pending} reset with echo \
         unread, {cut_by_server} cut off by the server first; peak rss {:.1} MiB",
        mib(rss_peak)
    );
    assert!(
        rss_peak < RESET_RSS_BYTES_MAX,
        "resident memory {:.1} MiB",
        mib(rss_peak)
    );
    server.stop();
}

/// The server's soft descriptor limit in the accept storm.
const STORM_FD_LIMIT: u64 = 64;
/// Connections in the storm: several times what the server can hold.
const STORM_CONNS: usize = 240;
/// Queued connections that must be served once descriptors free up.
const STORM_LATE: usize = 20;
/// How long the server's CPU time is watched while the storm holds it at its limit.
const STORM_WATCH: Duration = Duration::from_secs(2);
/// CPU it may use in that time: a server that retries `accept` at once after `EMFILE`
/// burns a whole core (200 ticks); one that backs off uses almost nothing.
const STORM_CPU_TICKS_MAX: u64 = 20;
const STORM_RSS_BYTES_MAX: u64 = 64 << 20;

#[test]
fn accept_storm_past_the_fd_limit() {
    if !in_child("accept_storm_past_the_fd_limit") {
        return;
    }
    let (soft_before, _) = real::process::nofile_limit().expect("getrlimit");
    // Only the server gets the low limit: lowered around its start, inherited at fork.
    set_soft_limit(STORM_FD_LIMIT);
    let server = std::panic::catch_unwind(ServerProc::start);
    set_soft_limit(soft_before);
    let mut server = server.expect("the server starts under a low descriptor limit");
    let addr = server.addr;
    let baseline = server.fd_count();
    let capacity = STORM_FD_LIMIT as usize - baseline;
    assert!(
        capacity + STORM_LATE < STORM_CONNS,
        "the storm must exceed what the server can hold"
    );

    // The kernel completes every handshake into the backlog (1024), whether or not the
    // server can accept.
    let mut storm: Vec<TcpStream> = (0..STORM_CONNS).map(|_| client(addr)).collect();
    // Wait until the server has taken all it can.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while server.fd_count() < STORM_FD_LIMIT as usize {
        assert!(
            Instant::now() < deadline,
            "the server never reached its limit"
        );
        server.assert_alive("during the storm");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ticks_before = server.cpu_ticks();
    std::thread::sleep(STORM_WATCH);
    let storm_ticks = server.cpu_ticks() - ticks_before;
    server.assert_alive("at its descriptor limit");
    let rss_storm = server.rss_bytes();

    // The accepted connections are served even while the rest wait: the first ones were
    // accepted first.
    for (i, stream) in storm.iter_mut().enumerate().take(capacity.min(8)) {
        stream.write_all(&message(i, 32)).unwrap();
        expect_echo(
            stream,
            &message(i, 32),
            "an accepted connection during the storm",
        );
    }

    // Free the server's descriptors: the queued latecomers must now be accepted and served.
    let late = storm.split_off(STORM_CONNS - STORM_LATE);
    drop(storm);
    let served_from = Instant::now();
    for (i, mut stream) in late.into_iter().enumerate() {
        stream.write_all(&message(i, 32)).unwrap();
        expect_echo(
            &mut stream,
            &message(i, 32),
            "a queued connection after the storm",
        );
    }
    let late_served = served_from.elapsed();
    server.settle_to(baseline, "after the accept storm");
    probe(addr, "probe after the accept storm");
    eprintln!(
        "hostile: accept storm: fd limit {STORM_FD_LIMIT}, baseline {baseline} fds, {STORM_CONNS} connections; \
         server CPU {} ms in {} ms at the limit; {STORM_LATE} queued peers served within {:.1} ms after fds freed; rss {:.1} MiB",
        storm_ticks * 1000 / TICKS_PER_SEC,
        STORM_WATCH.as_millis(),
        late_served.as_secs_f64() * 1e3,
        mib(rss_storm)
    );
    assert!(
        storm_ticks <= STORM_CPU_TICKS_MAX,
        "the server used {storm_ticks} ticks of CPU in {STORM_WATCH:?} at its fd limit (spinning?)"
    );
    assert!(rss_storm < STORM_RSS_BYTES_MAX);
    server.stop();
}

// Hostile code: the simulator must protect itself from the code it runs. A panic in a
// simulated thread ends the world with a crash that names the thread and the message; a
// run that never finishes ends at its step budget; a run's heap is measured and bounded.

/// A handler that panics on the first bytes it sees, as buggy user code would.
struct PanickingHandler;

impl edgesim::server::Handler for PanickingHandler {
    type State = ();

    fn on_open(&self, _ctx: &mut edgesim::server::Ctx<'_>) {}

    fn on_traffic(&self, _state: &mut (), _ctx: &mut edgesim::server::Ctx<'_>) {
        panic!("the handler exploded on purpose");
    }
}

fn bench_echo() -> edgesim::scenario::Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench-echo.toml");
    edgesim::scenario::load(path.as_ref()).expect("the benchmark scenario parses")
}

/// Runs the panicking handler in the simulator at `seed` and returns the world's report.
fn panicking_world(seed: u64) -> sim::sched::Report {
    use edgesim::os::{Os, SimOs};
    let config = edgesim::runner::world_config(&bench_echo(), seed, false);
    SimOs::run(config, |os| {
        let server = edgesim::server::Server::start(
            os,
            edgesim::server::ServerConfig::default(),
            PanickingHandler,
            "127.0.0.1:0".parse().unwrap(),
        )
        .expect("the server starts in the simulator");
        let fd = os.connect(server.local_addr()).expect("connect");
        // Bounded: the world ends at the panic long before this loop does.
        for _ in 0..1_000 {
            let _ = os.write(fd, b"boom");
            os.sleep(Duration::from_millis(1));
        }
        let _ = os.close(fd);
        drop(server);
    })
}

#[test]
fn a_panic_in_simulated_code_is_a_crash_with_thread_and_message() {
    let report = panicking_world(3);
    match &report.outcome {
        sim::sched::Outcome::Crash { name, message, .. } => {
            assert!(
                message.contains("the handler exploded on purpose"),
                "message: {message}"
            );
            assert!(name.starts_with("loop-"), "the panicking thread: {name}");
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    // The crash replays from its seed: same step, same trace.
    let again = panicking_world(3);
    assert_eq!(report.steps, again.steps);
    assert_eq!(report.trace.hash(), again.trace.hash());
}

/// Runs `edgesim ARGS` with a bounded wait; returns (exit code, stdout).
fn edgesim_bounded(args: &[&str], limit: Duration) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("edgesim runs");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).expect("utf-8 output");
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("edgesim {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().expect("reader"))
}

#[test]
fn a_run_past_max_steps_is_inconclusive_with_a_replay_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/bench-echo.toml"
    ))
    .unwrap();
    // The benchmark needs about 10,000 steps; 1,000 cannot finish it.
    let text = if text.contains("max_steps") {
        text.lines()
            .map(|l| {
                if l.trim_start().starts_with("max_steps") {
                    "max_steps = 1000".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else if text.contains("[sim]") {
        text.replace("[sim]", "[sim]\nmax_steps = 1000")
    } else {
        format!("{text}\n[sim]\nmax_steps = 1000\n")
    };
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let (code, stdout) = edgesim_bounded(&["run", path, "--seed", "5"], Duration::from_secs(120));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verdict=inconclusive seed=5 ")
            || last.starts_with("verdict=spin seed=5 "),
        "last line: {last}\n{stdout}"
    );
    assert!(
        last.contains(" steps=1000 "),
        "the run stops at its budget: {last}"
    );
    assert_eq!(code, 1, "a non-pass verdict exits 1");
    assert!(
        stdout.contains(&format!("replay: edgesim run {path} --seed 5 --trace")),
        "the replay command is printed:\n{stdout}"
    );
}

/// Heap one simulated run of the benchmark may need: measured about 0.5 MiB; the bound
/// catches a trace or a buffer that grows with the run instead of being capped.
const RUN_HEAP_BYTES_MAX: u64 = 16 << 20;

#[test]
fn explore_reports_a_bounded_heap_peak_per_run() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench-echo.toml");
    let (code, stdout) = edgesim_bounded(
        &["explore", path, "--seeds", "0..8", "--jobs", "2"],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{stdout}");
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak_run_heap_bytes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak_run_heap_bytes line:\n{stdout}"));
    eprintln!("hostile: explore bench-echo seeds 0..8: peak heap of one run {peak} bytes");
    assert!(peak > 0 && peak < RUN_HEAP_BYTES_MAX, "peak {peak} bytes");
    assert!(stdout
        .lines()
        .last()
        .unwrap_or_default()
        .starts_with("explored=8 "));
}

// Hostile input, in the default suite: the fuzz targets' properties (fuzz/fuzz_targets/)
// checked on every prefix of every seed file and on each seed with one line dropped, so a
// parser panic on a cut-off or half-edited file shows up without a nightly fuzzer.

/// The seed corpus files of one fuzz target.
fn seeds(target: &str) -> Vec<(String, String)> {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {dir}");
    files
}

/// Every prefix (at character boundaries) and every one-line deletion of `text`.
fn variants(text: &str) -> Vec<String> {
    let mut out: Vec<String> = (0..=text.len())
        .filter(|&cut| text.is_char_boundary(cut))
        .map(|cut| text[..cut].to_string())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    for drop in 0..lines.len() {
        let kept: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, l)| *l)
            .collect();
        out.push(kept.join("\n"));
    }
    out
}

#[test]
fn cut_or_edited_scenarios_are_located_errors_never_panics() {
    let mut rejected = 0;
    for (path, text) in seeds("scenario") {
        for variant in variants(&text) {
            if let Err(error) = edgesim::scenario::parse("cut.toml", &variant) {
                let lines = variant.matches('\n').count() + 1;
                assert!(
                    (1..=lines).contains(&error.line) && !error.message.is_empty(),
                    "{path}: an error outside the text ({error}) for:\n{variant}"
                );
                rejected += 1;
            }
        }
    }
    assert!(rejected > 0, "some cut-off scenario must be rejected");
}

#[test]
fn cut_or_edited_ops_scripts_are_located_errors_never_panics() {
    let mut rejected = 0;
    for (path, text) in seeds("ops") {
        for variant in variants(&text) {
            if let Err(error) = edgesim::conform::parse(&variant) {
                let lines = variant.lines().count().max(1);
                assert!(
                    (1..=lines).contains(&error.line) && !error.message.is_empty(),
                    "{path}: an error outside the text ({error}) for:\n{variant}"
                );
                rejected += 1;
            }
        }
    }
    assert!(rejected > 0, "some cut-off script must be rejected");
}
