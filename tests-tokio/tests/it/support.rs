//! What the tests share: the fault environment tokio must tolerate, seed counts,
//! addresses, a small blocking-style client over mio for the harness's own clients, and
//! running one test alone in a child process.

use edgesim::harness::{Client, ClientSpec, Pattern, SimSpec};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// Seeds a correct server must pass (the acceptance count; a few seconds each in a
/// debug build, so the default suite runs them all).
pub const PASS_SEEDS: std::ops::Range<u64> = 0..1000;

/// The faults a correct tokio server must absorb: short reads and writes, segments split
/// in delivery, latency, `EINTR` from `epoll_wait` and buffers small enough that writes hit
/// `WouldBlock` (docs/UNMODIFIED.md, "Faults").
pub fn faults(sim: &mut SimSpec) {
    sim.faults.kernel.short_read = 0.2;
    sim.faults.kernel.short_write = 0.2;
    sim.faults.kernel.segment = 0.3;
    sim.faults.sched.eintr = 0.05;
    sim.latency_us_max = 50;
    sim.sndbuf_bytes = 4096;
    sim.rcvbuf_bytes = 4096;
}

/// The standard workload: messages larger than one read and than the buffers, so that
/// every transfer takes several reads, writes and wakeups.
pub fn workload() -> ClientSpec {
    ClientSpec {
        count: 3,
        messages: 4,
        size_bytes: (1, 12_000),
        pattern: Pattern::Pingpong,
    }
}

/// Where the simulated servers listen: any address works in a simulated world, whose ports
/// are its own.
pub fn sim_addr() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("a valid address")
}

/// A loopback address with a port that was free a moment ago, for a server on Linux that
/// binds its own address.
pub fn free_linux_addr() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe listener");
    probe.local_addr().expect("a bound listener has an address")
}

/// Polls a [`Conn`] call may wait through before it gives up: 10 s of (virtual or wall)
/// time, so every client ends.
const POLLS_MAX: usize = 1000;
/// How long one of those polls waits.
const POLL_WAIT: Duration = Duration::from_millis(10);

/// One TCP connection driven to completion call by call, on mio (so on the simulator
/// inside a world and on Linux outside one): what a test client needs to hold a
/// conversation with a server.
pub struct Conn {
    poll: Poll,
    events: Events,
    stream: TcpStream,
}

/// Whether a call's error means "not now": try again after a poll.
fn not_now(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::WouldBlock | ErrorKind::NotConnected | ErrorKind::Interrupted
    )
}

impl Conn {
    /// Connects to the harness's server.
    pub fn connect(client: &Client) -> Result<Conn, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let mut stream = TcpStream::connect(client.addr()).map_err(|e| format!("connect: {e}"))?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut stream, Token(0), interest)
            .map_err(|e| format!("register: {e}"))?;
        Ok(Conn {
            poll,
            events: Events::with_capacity(4),
            stream,
        })
    }

    fn wait(&mut self) -> Result<(), String> {
        match self.poll.poll(&mut self.events, Some(POLL_WAIT)) {
            Err(e) if e.kind() != ErrorKind::Interrupted => Err(format!("poll: {e}")),
            _ => Ok(()),
        }
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut sent = 0;
        for _ in 0..POLLS_MAX {
            while sent < bytes.len() {
                match self.stream.write(&bytes[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if not_now(e.kind()) => break,
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            if sent == bytes.len() {
                return Ok(());
            }
            self.wait()?;
        }
        Err(format!(
            "wrote {sent} of {} bytes before giving up",
            bytes.len()
        ))
    }

    /// Shuts down the writing half: the peer reads end of file.
    pub fn shutdown_write(&mut self) -> Result<(), String> {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))
    }

    /// Reads until the peer closes (`Some(n)`: until `n` bytes came) and returns the bytes.
    pub fn read(&mut self, until_bytes: Option<usize>) -> Result<Vec<u8>, String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        for _ in 0..POLLS_MAX {
            loop {
                if until_bytes.is_some_and(|n| got.len() >= n) {
                    return Ok(got);
                }
                match self.stream.read(&mut buf) {
                    Ok(0) if until_bytes.is_none() => return Ok(got),
                    Ok(0) => return Err(format!("end of file after {} bytes", got.len())),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if not_now(e.kind()) => break,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            self.wait()?;
        }
        Err(format!("read {} bytes before giving up", got.len()))
    }
}

/// Set in a child process to the name of the test it runs.
const CHILD_ENV: &str = "EDGESIM_TOKIO_TEST_CHILD";

/// Whether this process is the child that runs test `name` (see [`run_in_child`]).
pub fn in_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

/// Runs test `name` of this binary alone in a child process and returns what it printed on
/// stdout; fails with the child's output if the child failed. In the child, [`in_child`]
/// is true. `/proc/self/exe` still runs this binary if a concurrent build replaced it.
#[track_caller]
pub fn run_in_child(name: &str) -> String {
    let output = Command::new("/proc/self/exe")
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, name)
        .output()
        .expect("the test binary can run itself");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {name} failed or ran no test ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
