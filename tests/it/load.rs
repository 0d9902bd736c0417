//! `edgesim load` against tiny in-test echo servers on loopback: an honest one must give a
//! clean report, a corrupting or rude one must show up as errors, and a target off this
//! machine must be refused before any packet is sent.

use edgesim::load::{self, LoadConfig, LoadReport};
use edgesim::os::RealOs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the in-test server treats the bytes it echoes.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Echo {
    /// Echo every byte as it came.
    Honest,
    /// Echo, but flip the byte at this stream offset of every connection.
    FlipByteAt(u64),
    /// Accept, then close at once.
    CloseAtOnce,
    /// Read everything, answer nothing: what a server that lost its wakeup looks like.
    Swallow,
}

/// A thread-per-connection echo server on std::net, stopped (and joined) on drop. Every
/// loop in it ends by the stop flag or by `SERVER_LIFETIME_MAX`.
struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

const SERVER_LIFETIME_MAX: Duration = Duration::from_secs(10);

impl EchoServer {
    fn start(echo: Echo) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor_stop = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            let started = Instant::now();
            let mut workers = Vec::new();
            while !acceptor_stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME_MAX {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let worker_stop = Arc::clone(&acceptor_stop);
                        workers.push(std::thread::spawn(move || {
                            serve(stream, echo, &worker_stop)
                        }));
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(error) => panic!("accept: {error}"),
                }
            }
            for worker in workers {
                worker.join().unwrap();
            }
        });
        EchoServer {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(mut stream: TcpStream, echo: Echo, stop: &AtomicBool) {
    if echo == Echo::CloseAtOnce {
        return;
    }
    stream.set_nodelay(true).unwrap();
    // A short timeout so that the stop flag is seen even on a silent connection.
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    let mut offset = 0u64;
    while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME_MAX {
        let n_read = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => return,
        };
        if let Echo::FlipByteAt(flip_at) = echo {
            if (offset..offset + n_read as u64).contains(&flip_at) {
                buf[(flip_at - offset) as usize] ^= 0xff;
            }
        }
        offset += n_read as u64;
        if echo == Echo::Swallow {
            continue;
        }
        if stream.write_all(&buf[..n_read]).is_err() {
            return;
        }
    }
}

fn config(addr: SocketAddr, size: usize, pipeline: usize) -> LoadConfig {
    LoadConfig {
        addr,
        conns: 8,
        size,
        secs: 0.3,
        pipeline,
        client_threads: 2,
        server_pid: None,
    }
}

#[track_caller]
fn check_clean(report: &LoadReport) {
    assert_eq!(report.errors, 0, "first error: {:?}", report.first_error);
    assert!(
        report.messages_ok > 100,
        "only {} messages",
        report.messages_ok
    );
    let p50 = report.quantile_us(0.5);
    let p99 = report.quantile_us(0.99);
    assert!(0.0 < p50 && p50 <= p99 && p99 < 1e6, "p50 {p50} p99 {p99}");
    // The line the benchmark script parses: exactly these keys, in this order.
    let line = report.summary_line();
    let keys: Vec<&str> = line
        .split(' ')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["msgs_per_sec", "mb_per_sec", "p50_us", "p99_us", "errors"],
        "{line}"
    );
    assert!(line.ends_with(" errors=0"), "{line}");
    let msgs_per_sec: f64 = line.split(' ').next().unwrap()["msgs_per_sec=".len()..]
        .parse()
        .unwrap();
    assert!(msgs_per_sec > 0.0, "{line}");
}

#[test]
fn pingpong_against_an_honest_server_is_clean() {
    let server = EchoServer::start(Echo::Honest);
    let mut config = config(server.addr, 64, 1);
    config.server_pid = Some(std::process::id());
    let report = load::run(&RealOs::new(), &config).unwrap();
    check_clean(&report);
    // The in-test server lives in this process, so its CPU time is ours and is non-zero
    // only when the clock ticked; it must at least have been measured.
    assert!(report.server_cpu.is_some());
}

#[test]
fn pipelined_large_messages_are_clean() {
    // 4 KiB messages, 4 in flight: reads and writes split messages at arbitrary points.
    let server = EchoServer::start(Echo::Honest);
    let report = load::run(&RealOs::new(), &config(server.addr, 4096, 4)).unwrap();
    check_clean(&report);
}

#[test]
fn a_flipped_byte_is_an_error() {
    // Offset 1000 falls inside message 15 of each connection, after some clean traffic.
    let server = EchoServer::start(Echo::FlipByteAt(1000));
    let report = load::run(&RealOs::new(), &config(server.addr, 64, 2)).unwrap();
    assert!(report.errors > 0, "no error reported");
    let first_error = report.first_error.clone().unwrap();
    assert!(
        first_error.contains("message 15 came back altered"),
        "{first_error}"
    );
    assert!(report
        .summary_line()
        .contains(&format!("errors={}", report.errors)));
    // The stream stays aligned after the flip, so later messages still count as good.
    assert!(report.messages_ok > 0);
}

#[test]
fn a_server_that_hangs_up_is_an_error() {
    let server = EchoServer::start(Echo::CloseAtOnce);
    let report = load::run(&RealOs::new(), &config(server.addr, 64, 1)).unwrap();
    assert_eq!(report.messages_ok, 0);
    assert!(report.errors >= 1, "no error reported");
}

#[test]
fn a_server_that_stops_answering_is_a_stall() {
    let server = EchoServer::start(Echo::Swallow);
    let mut config = config(server.addr, 64, 1);
    // Long enough past the stall bound that a slow start on a busy machine still crosses it.
    config.secs = load::STALL_MIN.as_secs_f64() + 0.5;
    let report = load::run(&RealOs::new(), &config).unwrap();
    assert_eq!(report.messages_ok, 0);
    assert_eq!(report.errors, 8, "first error: {:?}", report.first_error);
    let first_error = report.first_error.unwrap();
    assert!(
        first_error.contains("stall: message 0 unanswered"),
        "{first_error}"
    );
}

#[test]
fn a_refused_connection_is_an_error() {
    // Bind then drop a listener: its port is free and nothing listens on it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = load::run(&RealOs::new(), &config(addr, 64, 1)).unwrap();
    assert_eq!(report.messages_ok, 0);
    assert_eq!(report.errors, 8, "first error: {:?}", report.first_error);
}

#[test]
fn a_non_loopback_target_is_refused_with_exit_2() {
    // Nothing is sent: the address is checked before any socket is made.
    let code = load::load_cli("10.1.2.3:7".parse().unwrap(), 1, 64, 0.1, 1);
    assert_eq!(code, ExitCode::from(2));
    let refused = load::run(
        &RealOs::new(),
        &config("192.168.0.1:7".parse().unwrap(), 64, 1),
    );
    assert!(refused.unwrap_err().0.contains("only loopback"));
}

#[test]
fn the_cli_exits_0_when_clean_and_2_for_an_unreadable_server_pid() {
    let server = EchoServer::start(Echo::Honest);
    let own_pid = Some(std::process::id());
    let clean = load::load_cli_with_server_pid(server.addr, 4, 64, 0.2, 2, own_pid);
    assert_eq!(clean, ExitCode::SUCCESS);
    // Pids stop far below u32::MAX, so this one has no /proc entry.
    let no_such_pid = Some(u32::MAX);
    let refused = load::load_cli_with_server_pid(server.addr, 4, 64, 0.2, 2, no_such_pid);
    assert_eq!(refused, ExitCode::from(2));
}

/// Runs `edgesim load ARGS...` and returns its exit code, stdout and stderr.
fn edgesim_load(args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .arg("load")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status.code(), stdout, stderr)
}

#[test]
fn the_binary_refuses_a_non_loopback_target() {
    let args = [
        "--addr",
        "10.1.2.3:7",
        "--conns",
        "1",
        "--size",
        "64",
        "--secs",
        "0.1",
    ];
    let (code, stdout, stderr) = edgesim_load(&args);
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("only loopback"), "stderr: {stderr}");
    assert!(stdout.is_empty(), "stdout: {stdout}");
}

#[test]
fn the_binary_prints_server_cpu_then_the_summary_last() {
    let server = EchoServer::start(Echo::Honest);
    let addr = server.addr.to_string();
    let pid = std::process::id().to_string();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "4",
        "--size",
        "256",
        "--secs",
        "0.3",
        "--pipeline",
        "3",
        "--server-pid",
        &pid,
    ];
    let (code, stdout, stderr) = edgesim_load(&args);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with("msgs_per_sec=") && last.ends_with(" errors=0"),
        "{stdout}"
    );
    let before_last = lines[lines.len() - 2];
    let server_us: f64 = before_last
        .strip_prefix("server_cpu_us_per_msg=")
        .unwrap_or_else(|| panic!("{stdout}"))
        .parse()
        .unwrap();
    assert!(server_us >= 0.0, "{stdout}");
}
