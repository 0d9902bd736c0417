//! The multi-reactor server against real Linux on loopback: every topology and trigger mode
//! echoes every byte intact under 200 concurrent connections, half-closes, resets and slow
//! readers; the frame handler streams requests larger than any buffer; and every descriptor
//! the server opened is closed once it stops.
//!
//! Descriptors are counted by a wrapper around the seam ([`CountingOs`]) that records what
//! each server opened and closed, so the check holds while other tests run in parallel.
//! The tests of this module run one at a time ([`SERIAL`]) so that the resident-memory
//! measurement sees only its own server. Every socket has a timeout and every wait a
//! deadline.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::os::fd::IntoRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use edgesim::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, RealOs, Result, Shutdown, Token};
use edgesim::server::{
    fnv1a, Balance, ConnHandle, Ctx, EchoHandler, FrameHandler, Handler, Model, Server,
    ServerConfig, Trigger, FNV_OFFSET,
};

/// How long a client socket waits for one read or write before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Serializes this module's tests: they are CPU-heavy and one of them measures the
/// process's resident memory.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The real seam, plus the set of descriptors opened through it and not yet closed.
#[derive(Clone)]
struct CountingOs {
    inner: RealOs,
    open: Arc<Mutex<BTreeSet<i32>>>,
}

impl CountingOs {
    fn new() -> CountingOs {
        CountingOs {
            inner: RealOs::new(),
            open: Arc::new(Mutex::new(BTreeSet::new())),
        }
    }

    fn opened(&self, fd: Result<Fd>) -> Result<Fd> {
        if let Ok(fd) = fd {
            self.open.lock().unwrap().insert(fd.0);
        }
        fd
    }

    fn closed(&self, fd: Fd, result: Result<()>) -> Result<()> {
        if result.is_ok() {
            self.open.lock().unwrap().remove(&fd.0);
        }
        result
    }

    fn open_fds(&self) -> Vec<i32> {
        self.open.lock().unwrap().iter().copied().collect()
    }
}

impl Os for CountingOs {
    type Mutex<T: Send + 'static> = <RealOs as Os>::Mutex<T>;
    type Atomic = <RealOs as Os>::Atomic;
    type Thread = <RealOs as Os>::Thread;
    type JoinHandle = <RealOs as Os>::JoinHandle;

    fn epoll_create(&self) -> Result<Fd> {
        self.opened(self.inner.epoll_create())
    }
    fn epoll_ctl(&self, epfd: Fd, op: CtlOp, fd: Fd, interest: Events, token: Token) -> Result<()> {
        self.inner.epoll_ctl(epfd, op, fd, interest, token)
    }
    fn epoll_wait(
        &self,
        epfd: Fd,
        out: &mut Vec<EpollEvent>,
        max_events: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.inner.epoll_wait(epfd, out, max_events, timeout)
    }
    fn listen(&self, addr: SocketAddr, backlog: u32, reuse_port: bool) -> Result<Fd> {
        self.opened(self.inner.listen(addr, backlog, reuse_port))
    }
    fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddr)> {
        let accepted = self.inner.accept(fd);
        if let Ok((fd, _)) = accepted {
            self.open.lock().unwrap().insert(fd.0);
        }
        accepted
    }
    fn connect(&self, addr: SocketAddr) -> Result<Fd> {
        self.opened(self.inner.connect(addr))
    }
    fn local_addr(&self, fd: Fd) -> Result<SocketAddr> {
        self.inner.local_addr(fd)
    }
    fn peer_addr(&self, fd: Fd) -> Result<SocketAddr> {
        self.inner.peer_addr(fd)
    }
    fn take_error(&self, fd: Fd) -> Result<Option<Errno>> {
        self.inner.take_error(fd)
    }
    fn inq(&self, fd: Fd) -> Result<usize> {
        self.inner.inq(fd)
    }
    fn outq(&self, fd: Fd) -> Result<usize> {
        self.inner.outq(fd)
    }
    fn read(&self, fd: Fd, buf: &mut [u8]) -> Result<usize> {
        self.inner.read(fd, buf)
    }
    fn write(&self, fd: Fd, buf: &[u8]) -> Result<usize> {
        self.inner.write(fd, buf)
    }
    fn writev(&self, fd: Fd, bufs: &[&[u8]]) -> Result<usize> {
        self.inner.writev(fd, bufs)
    }
    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        self.inner.shutdown(fd, how)
    }
    fn close(&self, fd: Fd) -> Result<()> {
        self.closed(fd, self.inner.close(fd))
    }
    fn dup(&self, fd: Fd) -> Result<Fd> {
        self.opened(self.inner.dup(fd))
    }
    fn reset(&self, fd: Fd) -> Result<()> {
        self.closed(fd, self.inner.reset(fd))
    }
    fn eventfd(&self) -> Result<Fd> {
        self.opened(self.inner.eventfd())
    }
    fn eventfd_read(&self, fd: Fd) -> Result<u64> {
        self.inner.eventfd_read(fd)
    }
    fn eventfd_write(&self, fd: Fd, value: u64) -> Result<()> {
        self.inner.eventfd_write(fd, value)
    }
    fn socketpair(&self) -> Result<(Fd, Fd)> {
        let pair = self.inner.socketpair();
        if let Ok((a, b)) = pair {
            self.open.lock().unwrap().extend([a.0, b.0]);
        }
        pair
    }
    fn pipe(&self) -> Result<(Fd, Fd)> {
        let pair = self.inner.pipe();
        if let Ok((a, b)) = pair {
            self.open.lock().unwrap().extend([a.0, b.0]);
        }
        pair
    }
    fn now(&self) -> Duration {
        self.inner.now()
    }
    fn sleep(&self, duration: Duration) {
        self.inner.sleep(duration)
    }
    fn spawn<F>(&self, name: &str, f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.spawn(name, f)
    }
    fn current(&self) -> Self::Thread {
        self.inner.current()
    }
    fn park(&self, timeout: Option<Duration>) {
        self.inner.park(timeout)
    }
    fn mutex<T: Send + 'static>(&self, value: T) -> Self::Mutex<T> {
        self.inner.mutex(value)
    }
    fn atomic(&self, value: u64) -> Self::Atomic {
        self.inner.atomic(value)
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A running server and the seam that counts its descriptors.
struct Running<H: Handler> {
    server: Server<CountingOs, H>,
    os: CountingOs,
}

fn start<H: Handler>(cfg: ServerConfig, handler: H) -> Running<H> {
    let os = CountingOs::new();
    let server = Server::start(os.clone(), cfg, handler, loopback()).expect("server starts");
    Running { server, os }
}

impl<H: Handler> Running<H> {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops the server and checks that every descriptor it opened is closed.
    #[track_caller]
    fn stop(self) {
        self.server.stop().expect("no server thread panicked");
        assert_eq!(
            self.os.open_fds(),
            Vec::<i32>::new(),
            "descriptors left open after stop"
        );
    }
}

/// The byte at `offset` of connection `conn`'s stream: a different sequence per connection,
/// so a byte that went to the wrong connection or the wrong place is caught.
fn pattern(conn: usize, offset: usize) -> u8 {
    let x = (offset as u64)
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(conn as u64 * 131);
    (x >> 7) as u8 ^ (offset / 251) as u8
}

fn stream_bytes(conn: usize, start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|offset| pattern(conn, offset))
        .collect()
}

fn client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads exactly `expected.len()` bytes and compares them, naming the first difference.
fn expect_bytes(
    stream: &mut TcpStream,
    expected: &[u8],
    what: &str,
) -> std::result::Result<(), String> {
    let mut got = vec![0u8; expected.len()];
    stream
        .read_exact(&mut got)
        .map_err(|error| format!("{what}: reading {} bytes: {error}", expected.len()))?;
    // Slice equality is one memcmp even in a debug build; the byte loop runs only to name
    // the first difference.
    if got == expected {
        return Ok(());
    }
    let offset = got.iter().zip(expected).position(|(a, b)| a != b);
    Err(format!("{what}: byte {} differs", offset.unwrap_or(0)))
}

/// One echo client: `messages` messages of `size` bytes, either one at a time (write the
/// whole message, then read its echo: a peer that writes before it reads, gnet R10) or
/// pipelined (a writer thread sends everything while this thread reads).
fn echo_client(
    addr: SocketAddr,
    conn: usize,
    size: usize,
    messages: usize,
    pipelined: bool,
) -> std::result::Result<(), String> {
    let mut stream = client(addr);
    let what = format!("conn {conn} ({size} B x {messages}, pipelined={pipelined})");
    if pipelined {
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            for message in 0..messages {
                writer.write_all(&stream_bytes(conn, message * size, size))?;
            }
            Ok(())
        });
        for message in 0..messages {
            expect_bytes(
                &mut stream,
                &stream_bytes(conn, message * size, size),
                &what,
            )?;
        }
        sender
            .join()
            .unwrap()
            .map_err(|error| format!("{what}: writing: {error}"))?;
    } else {
        for message in 0..messages {
            let bytes = stream_bytes(conn, message * size, size);
            stream
                .write_all(&bytes)
                .map_err(|error| format!("{what}: writing: {error}"))?;
            expect_bytes(&mut stream, &bytes, &what)?;
        }
    }
    Ok(())
}

/// Message sizes from one byte to one MiB; large ones get fewer messages.
const SIZES: [usize; 7] = [1, 10, 1000, 4096, 65_537, 262_144, 1 << 20];

fn messages_for(size: usize) -> usize {
    if size >= 262_144 {
        2
    } else {
        4
    }
}

/// Runs `n_conns` concurrent echo clients (sizes and pingpong/pipelined mixed) against a
/// server built from `cfg`, then stops it and checks its descriptors.
#[track_caller]
fn echo_matrix(cfg: ServerConfig, n_conns: usize) {
    let label = format!(
        "{} {} reactors={} workers={} {}",
        cfg.model, cfg.trigger, cfg.reactors, cfg.workers, cfg.balance
    );
    let running = start(cfg, EchoHandler);
    let addr = running.addr();
    let started = Instant::now();
    let clients: Vec<_> = (0..n_conns)
        .map(|conn| {
            let size = SIZES[conn % SIZES.len()];
            let pipelined = (conn / SIZES.len()) % 2 == 1;
            std::thread::spawn(move || echo_client(addr, conn, size, messages_for(size), pipelined))
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|client| client.join().unwrap().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{label}: {} clients failed, first: {}",
        failures.len(),
        failures[0]
    );
    eprintln!("{label}: {n_conns} connections in {:?}", started.elapsed());
    running.stop();
}

fn config(model: Model, reactors: usize, trigger: Trigger) -> ServerConfig {
    ServerConfig {
        model,
        reactors,
        trigger,
        ..ServerConfig::default()
    }
}

#[test]
fn multi_reactor_edge_echoes_200_connections() {
    let _serial = serial();
    echo_matrix(config(Model::MultiReactor, 2, Trigger::Edge), 200);
}

#[test]
fn single_reactor_level_echoes_200_connections() {
    let _serial = serial();
    echo_matrix(config(Model::SingleReactor, 1, Trigger::Level), 200);
}

#[test]
fn other_topologies_and_modes_echo() {
    let _serial = serial();
    echo_matrix(config(Model::MultiReactor, 3, Trigger::EdgeOneshot), 42);
    echo_matrix(config(Model::MultiReactor, 2, Trigger::Level), 42);
    echo_matrix(config(Model::SingleReactor, 1, Trigger::Edge), 42);
    echo_matrix(config(Model::ReusePort, 2, Trigger::Edge), 42);
    echo_matrix(
        ServerConfig {
            balance: Balance::LeastConn,
            ..config(Model::MultiReactor, 2, Trigger::Edge)
        },
        28,
    );
    echo_matrix(
        ServerConfig {
            balance: Balance::SourceHash,
            ..config(Model::MultiReactor, 2, Trigger::Level)
        },
        28,
    );
}

#[test]
fn worker_pool_echoes_in_every_trigger_mode() {
    let _serial = serial();
    for trigger in [Trigger::Edge, Trigger::Level, Trigger::EdgeOneshot] {
        echo_matrix(
            ServerConfig {
                workers: 3,
                ..config(Model::MultiReactor, 2, trigger)
            },
            42,
        );
    }
}

#[test]
fn tiny_budgets_and_buffers_still_echo_everything() {
    let _serial = serial();
    // Budgets and limits far below the message sizes force every re-queue path: budget
    // re-reads and re-writes, backpressure pauses and resumes, ring wrap-around.
    for trigger in [Trigger::Edge, Trigger::Level, Trigger::EdgeOneshot] {
        echo_matrix(
            ServerConfig {
                read_buffer_bytes: 1000,
                read_budget_bytes: 3000,
                write_budget_bytes: 2000,
                outbound_bytes_max: 5000,
                backpressure_grace: Duration::from_millis(50),
                ..config(Model::MultiReactor, 2, trigger)
            },
            21,
        );
    }
}

#[test]
fn half_closed_clients_get_every_byte_then_end_of_file() {
    let _serial = serial();
    for trigger in [Trigger::Edge, Trigger::Level, Trigger::EdgeOneshot] {
        let running = start(config(Model::MultiReactor, 2, trigger), EchoHandler);
        let addr = running.addr();
        let clients: Vec<_> = (0..20usize)
            .map(|conn| {
                std::thread::spawn(move || {
                    let size = [0usize, 1, 5000, 300_000][conn % 4];
                    let mut stream = client(addr);
                    let bytes = stream_bytes(conn, 0, size);
                    let mut writer = stream.try_clone().unwrap();
                    let sender = std::thread::spawn(move || {
                        writer.write_all(&bytes).unwrap();
                        writer.shutdown(NetShutdown::Write).unwrap();
                    });
                    let mut echoed = Vec::new();
                    stream
                        .read_to_end(&mut echoed)
                        .expect("read to end of file");
                    sender.join().unwrap();
                    assert_eq!(echoed.len(), size, "{trigger} conn {conn}: echoed length");
                    assert!(
                        echoed == stream_bytes(conn, 0, size),
                        "{trigger} conn {conn}: bytes differ"
                    );
                })
            })
            .collect();
        for client in clients {
            client.join().expect("half-close client");
        }
        running.stop();
    }
}

/// Waits until the server holds exactly `baseline` descriptors.
#[track_caller]
fn settle_to(os: &CountingOs, baseline: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while os.open_fds().len() != baseline {
        assert!(
            Instant::now() < deadline,
            "{what}: server holds {} descriptors, expected {baseline}",
            os.open_fds().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn clients_reset_mid_stream_and_the_server_lets_go() {
    let _serial = serial();
    for trigger in [Trigger::Edge, Trigger::Level] {
        let running = start(config(Model::MultiReactor, 2, trigger), EchoHandler);
        let addr = running.addr();
        let baseline = running.os.open_fds().len();
        let clients: Vec<_> = (0..50usize)
            .map(|conn| {
                std::thread::spawn(move || {
                    let mut stream = client(addr);
                    // Send a lot, read a little, then reset with data in flight both ways.
                    let _ = stream.write_all(&stream_bytes(conn, 0, 200_000));
                    let mut some = [0u8; 1000];
                    let _ = stream.read(&mut some);
                    let fd = Fd(stream.into_raw_fd());
                    RealOs::new().reset(fd).expect("reset");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        settle_to(&running.os, baseline, "after resets");
        // The server is still healthy.
        echo_client(addr, 999, 70_000, 3, true).unwrap();
        running.stop();
    }
}

fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Runs `n_conns` clients that each send `blocks` copies of a 64 KiB block while reading
/// the echo slowly (4 KiB every 10 ms) for half a second, then at full speed; returns the
/// peak growth of this process's resident memory during the slow phase.
fn slow_readers_peak_growth(cfg: ServerConfig, n_conns: usize, blocks: usize) -> usize {
    const BLOCK_BYTES: usize = 65_536;
    let running = start(cfg, EchoHandler);
    let addr = running.addr();
    let before = resident_bytes();
    let peak = Arc::new(Mutex::new(before));
    let clients: Vec<_> = (0..n_conns)
        .map(|conn| {
            let peak = Arc::clone(&peak);
            std::thread::spawn(move || {
                // One block per connection, sent again and again: generating a fresh pattern
                // for every byte would make the clients, not the server, the bottleneck of a
                // debug build. The other tests check where every byte lands.
                let block = Arc::new(stream_bytes(conn, 0, BLOCK_BYTES));
                let mut stream = client(addr);
                let mut writer = stream.try_clone().unwrap();
                let to_send = Arc::clone(&block);
                let sender = std::thread::spawn(move || {
                    for _ in 0..blocks {
                        writer.write_all(&to_send).unwrap();
                    }
                });
                let mut offset = 0;
                let slow_until = Instant::now() + Duration::from_millis(500);
                while offset < BLOCK_BYTES * blocks {
                    let in_block = offset % BLOCK_BYTES;
                    let step = if Instant::now() < slow_until {
                        std::thread::sleep(Duration::from_millis(10));
                        let mut peak = peak.lock().unwrap();
                        *peak = (*peak).max(resident_bytes());
                        4096
                    } else {
                        BLOCK_BYTES - in_block
                    };
                    let expected = &block[in_block..in_block + step];
                    expect_bytes(&mut stream, expected, "slow reader").unwrap();
                    offset += step;
                }
                sender.join().unwrap();
            })
        })
        .collect();
    for client in clients {
        client.join().expect("slow reader");
    }
    running.stop();
    let growth = peak.lock().unwrap().saturating_sub(before);
    growth
}

/// Resident growth allowed with 200 slow readers of 2 MiB each: the outbound limit (64 KiB)
/// plus one read buffer per connection is about 26 MiB, and the rest is slack for the 400
/// client threads. Loopback holds about 4 MiB per direction in socket buffers, so most of
/// these bytes wait in the kernel; the next test makes the server hold them.
const SLOW_READERS_RSS_GROWTH_BYTES_MAX: usize = 96 << 20;

#[test]
fn slow_readers_keep_resident_memory_bounded() {
    let _serial = serial();
    let cfg = config(Model::MultiReactor, 2, Trigger::Edge);
    let growth = slow_readers_peak_growth(cfg, 200, 32);
    eprintln!("200 slow readers: resident growth {} KiB", growth / 1024);
    assert!(
        growth < SLOW_READERS_RSS_GROWTH_BYTES_MAX,
        "resident memory grew by {growth} bytes with 200 slow readers"
    );
}

/// Resident growth allowed when 8 slow readers each send 48 MiB: far more than the socket
/// buffers hold, so without backpressure the server would buffer some 300 MiB.
const BACKPRESSURE_RSS_GROWTH_BYTES_MAX: usize = 48 << 20;

#[test]
fn backpressure_bounds_memory_when_peers_send_more_than_the_kernel_buffers() {
    let _serial = serial();
    for trigger in [Trigger::Level, Trigger::Edge] {
        let cfg = ServerConfig {
            // The grace period is for peers that make no progress at all; these readers
            // are slow but steady, and the long grace keeps a descheduled client thread
            // from turning into a false overdrive on a busy machine.
            backpressure_grace: Duration::from_secs(30),
            ..config(Model::MultiReactor, 2, trigger)
        };
        let growth = slow_readers_peak_growth(cfg, 8, 768);
        eprintln!(
            "{trigger}: 8 slow readers of 48 MiB: resident growth {} KiB",
            growth / 1024
        );
        assert!(
            growth < BACKPRESSURE_RSS_GROWTH_BYTES_MAX,
            "{trigger}: resident memory grew by {growth} bytes: backpressure did not hold"
        );
    }
}

/// A peer that writes its whole request before reading any of the answer (gnet bug R10):
/// with a request larger than what the socket buffers of both directions hold, an absolute
/// backpressure deadlocks both sides. After the grace period the server reads on, up to its
/// hard limit, and the exchange completes.
#[test]
fn a_peer_that_writes_everything_before_reading_is_not_deadlocked() {
    let _serial = serial();
    // Far beyond the loopback socket buffers (about 4 MiB each way here).
    const REQUEST_BYTES: usize = 24 << 20;
    for trigger in [Trigger::Edge, Trigger::Level] {
        let running = start(
            ServerConfig {
                backpressure_grace: Duration::from_millis(100),
                outbound_hard_bytes_max: 32 << 20,
                ..config(Model::MultiReactor, 2, trigger)
            },
            EchoHandler,
        );
        let mut stream = client(running.addr());
        let block = stream_bytes(7, 0, 1 << 20);
        for _ in 0..REQUEST_BYTES >> 20 {
            stream
                .write_all(&block)
                .expect("the server keeps reading the request");
        }
        for _ in 0..REQUEST_BYTES >> 20 {
            expect_bytes(&mut stream, &block, &format!("{trigger}: echo")).unwrap();
        }
        running.stop();
    }
}

/// Sends frames of `sizes` pipelined and checks each response's length and digest.
fn frame_client(addr: SocketAddr, conn: usize, sizes: &[usize]) {
    let mut stream = client(addr);
    let mut writer = stream.try_clone().unwrap();
    let requests: Vec<usize> = sizes.to_vec();
    let sender = std::thread::spawn(move || {
        for (idx, &size) in requests.iter().enumerate() {
            writer.write_all(&(size as u32).to_be_bytes()).unwrap();
            for start in (0..size).step_by(65_536) {
                let len = 65_536.min(size - start);
                writer
                    .write_all(&stream_bytes(conn + idx, start, len))
                    .unwrap();
            }
        }
    });
    for (idx, &size) in sizes.iter().enumerate() {
        let mut response = [0u8; 16];
        stream.read_exact(&mut response).expect("frame response");
        let mut hash = FNV_OFFSET;
        for start in (0..size).step_by(65_536) {
            hash = fnv1a(
                hash,
                &stream_bytes(conn + idx, start, 65_536.min(size - start)),
            );
        }
        assert_eq!(u32::from_be_bytes(response[..4].try_into().unwrap()), 12);
        assert_eq!(
            u32::from_be_bytes(response[4..8].try_into().unwrap()) as usize,
            size
        );
        assert_eq!(
            u64::from_be_bytes(response[8..].try_into().unwrap()),
            hash,
            "conn {conn} request {idx}"
        );
    }
    sender.join().unwrap();
}

#[test]
fn frame_handler_streams_requests_larger_than_any_buffer() {
    let _serial = serial();
    for workers in [0, 2] {
        let running = start(
            ServerConfig {
                workers,
                ..config(Model::MultiReactor, 2, Trigger::Edge)
            },
            FrameHandler,
        );
        let addr = running.addr();
        // 3 MiB is twelve times the inbound limit and 48 times the read buffer.
        let sizes = [0usize, 1, 3, 1000, 70_000, 3 << 20, 5];
        let clients: Vec<_> = (0..8usize)
            .map(|conn| std::thread::spawn(move || frame_client(addr, conn * 100, &sizes)))
            .collect();
        for client in clients {
            client.join().expect("frame client");
        }
        running.stop();
    }
}

/// Records every opened connection's handle, so the test can talk to it from outside.
struct RecordingHandler {
    opened: Arc<Mutex<Vec<ConnHandle>>>,
}

impl Handler for RecordingHandler {
    type State = ();

    fn on_open(&self, ctx: &mut Ctx<'_>) {
        self.opened.lock().unwrap().push(ctx.info().handle);
    }

    fn on_traffic(&self, _state: &mut (), ctx: &mut Ctx<'_>) {
        let n = ctx.input().len();
        ctx.consume(n);
    }
}

#[test]
fn handle_writes_and_closes_from_another_thread() {
    let _serial = serial();
    let opened = Arc::new(Mutex::new(Vec::new()));
    let running = start(
        config(Model::MultiReactor, 2, Trigger::Edge),
        RecordingHandler {
            opened: Arc::clone(&opened),
        },
    );
    let mut stream = client(running.addr());
    let deadline = Instant::now() + Duration::from_secs(5);
    let handle = loop {
        if let Some(handle) = opened.lock().unwrap().first().copied() {
            break handle;
        }
        assert!(Instant::now() < deadline, "on_open never ran");
        std::thread::sleep(Duration::from_millis(1));
    };
    let server_handle = running.server.handle();
    let writer = std::thread::spawn(move || {
        assert!(server_handle.write(handle, b"hello ".to_vec()));
        assert!(server_handle.write(handle, b"world".to_vec()));
        assert!(server_handle.close(handle));
        // The connection is gone: a stale handle is accepted and ignored.
        server_handle.write(handle, b"never".to_vec());
    });
    writer.join().unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read to end of file");
    assert_eq!(got, b"hello world");
    running.stop();
}

/// The environment variable that tells a re-executed test binary it is the server child of
/// [`descriptor_exhaustion_pauses_accepting_without_spinning`].
const EMFILE_CHILD_ENV: &str = "EDGESIM_SERVER_EMFILE_CHILD";

/// CPU time (user + system, in clock ticks of 10 ms) of process `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The server half, run alone in a child process because it lowers the process's
/// descriptor limit: it leaves room for exactly two connections, prints its port, serves
/// until its stdin closes, then restores the limit and stops.
fn emfile_child() {
    let running = start(config(Model::MultiReactor, 2, Trigger::Edge), EchoHandler);
    let (soft, _) = real::process::nofile_limit().unwrap();
    let lowest_free = (0..).find(|&fd| !real::process::is_open(fd)).unwrap();
    assert!(
        !real::process::is_open(lowest_free + 1),
        "descriptor numbers are not contiguous"
    );
    real::process::set_nofile_soft_limit(lowest_free as u64 + 2).unwrap();
    // libtest prints the test name on the same line, so the port gets its own marker.
    println!("\nSERVER_PORT={}", running.addr().port());
    let mut rest = String::new();
    let _ = std::io::stdin().read_to_string(&mut rest);
    real::process::set_nofile_soft_limit(soft).unwrap();
    running.stop();
}

/// A child process that is killed if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn descriptor_exhaustion_pauses_accepting_without_spinning() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let name = "server_real::descriptor_exhaustion_pauses_accepting_without_spinning";
    if std::env::var(EMFILE_CHILD_ENV).as_deref() == Ok(name) {
        emfile_child();
        return;
    }
    let _serial = serial();
    let mut guard = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(EMFILE_CHILD_ENV, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the test binary can re-execute itself"),
    );
    let child = &mut guard.0;
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut port = None;
    let mut line = String::new();
    while port.is_none() && stdout.read_line(&mut line).unwrap() > 0 {
        port = line
            .trim()
            .strip_prefix("SERVER_PORT=")
            .map(|p| p.parse::<u16>().unwrap());
        line.clear();
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", port.expect("the child prints its port"))
        .parse()
        .unwrap();

    // Four clients for room for two: the last two wait in the backlog while accept fails.
    let mut clients: Vec<TcpStream> = (0..4).map(|_| client(addr)).collect();
    for (idx, stream) in clients.iter_mut().enumerate() {
        stream.write_all(&[idx as u8]).unwrap();
    }
    for (idx, stream) in clients.iter_mut().enumerate().take(2) {
        expect_bytes(stream, &[idx as u8], "accepted before the limit").unwrap();
    }
    let ticks_before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_millis(600));
    let ticks_spent = cpu_ticks(child.id()) - ticks_before;
    // A loop retrying accept at once would burn the whole 600 ms (60 ticks).
    assert!(
        ticks_spent < 15,
        "the server used {ticks_spent} ticks while out of descriptors"
    );
    for stream in &mut clients[2..] {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(
            stream.read(&mut byte).is_err(),
            "served although no descriptor was free"
        );
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    // Two descriptors come free; after its backoff the server accepts the waiting two.
    clients.drain(..2);
    for (idx, stream) in clients.iter_mut().enumerate() {
        expect_bytes(stream, &[idx as u8 + 2], "accepted after the backoff").unwrap();
    }
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server child did not stop");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        status.success() && rest.contains("1 passed"),
        "child failed:\n{rest}\n{stderr}"
    );
}

#[test]
fn a_stop_requested_from_another_thread_closes_connections_and_stop_joins() {
    let _serial = serial();
    for model in [Model::MultiReactor, Model::SingleReactor, Model::ReusePort] {
        let running = start(config(model, 2, Trigger::Edge), EchoHandler);
        let mut streams: Vec<TcpStream> = (0..6).map(|_| client(running.addr())).collect();
        for (conn, stream) in streams.iter_mut().enumerate() {
            stream.write_all(b"ping").unwrap();
            expect_bytes(stream, b"ping", &format!("{model} conn {conn}")).unwrap();
        }
        let handle = running.server.handle();
        std::thread::spawn(move || handle.request_stop())
            .join()
            .unwrap();
        for stream in &mut streams {
            let mut rest = Vec::new();
            stream
                .read_to_end(&mut rest)
                .expect("end of file after the stop");
            assert!(rest.is_empty());
        }
        running.stop();
    }
}
