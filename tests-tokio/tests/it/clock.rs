//! tokio's timers on the simulator's virtual clock (`mio::virtual_clock!` in main.rs): a
//! `tokio::time::timeout` fires when virtual time says so, not before, and a long tokio
//! sleep costs virtual time, not wall time.
//!
//! With tokio's paused clock (`start_paused`) the first test would fail: when its I/O poll
//! finds nothing ready, tokio advances its own clock to the next timer at once, although
//! the client (another simulated thread) has not yet had its delay.

use crate::support::{sim_addr, Conn};
use edgesim::harness::{Harness, Verdict};
use edgesim_tokio_tests::on_current_thread;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long the server waits for the client's byte.
const TIMEOUT: Duration = Duration::from_millis(100);

/// Answers one connection: "in time" if its first byte comes within [`TIMEOUT`], "too late"
/// otherwise, after sleeping `pause` (tokio's sleep).
async fn deadline_server(addr: SocketAddr, pause: Duration) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let (mut stream, _) = listener.accept().await?;
    let mut byte = [0u8; 1];
    let answer: &[u8] = match tokio::time::timeout(TIMEOUT, stream.read(&mut byte)).await {
        Ok(Ok(1)) => b"in time",
        Ok(_) => b"closed",
        Err(_elapsed) => b"too late",
    };
    tokio::time::sleep(pause).await;
    stream.write_all(answer).await
}

/// The server above, and one client that sends its byte after `delay` of its own sleep,
/// sleeps `pause` too (its reads give up after 10 s) and expects `answer`.
fn harness(delay: Duration, pause: Duration, answer: &'static str) -> Harness {
    Harness::serving_at(sim_addr(), move |addr| {
        on_current_thread(deadline_server(addr, pause))
    })
    .no_standard_clients()
    .client(1, move |client| {
        let mut conn = Conn::connect(client)?;
        client.sleep(delay);
        conn.write_all(b"!")?;
        client.sleep(pause);
        let got = conn.read(None)?;
        client.progress(got.len() as u64);
        match got == answer.as_bytes() {
            true => Ok(()),
            false => Err(format!("got {:?}", String::from_utf8_lossy(&got))),
        }
    })
}

#[test]
fn a_timeout_does_not_fire_before_its_virtual_time() {
    harness(TIMEOUT / 2, Duration::ZERO, "in time").check_seeds(0..20);
}

#[test]
fn a_timeout_fires_at_its_virtual_time() {
    let passing = harness(TIMEOUT * 2, Duration::ZERO, "too late");
    passing.check_seeds(0..20);
    let result = passing.run(0);
    assert!(
        result.elapsed_ms >= TIMEOUT.as_secs_f64() * 1e3,
        "the run's virtual time covers the timeout: {result:#?}"
    );
}

#[test]
fn a_long_tokio_sleep_costs_virtual_time_not_wall_time() {
    let an_hour = Duration::from_secs(3600);
    let wall = Instant::now();
    let result = harness(Duration::ZERO, an_hour, "in time").run(1);
    let wall = wall.elapsed();
    assert_eq!(result.verdict, Verdict::Pass, "{result:#?}");
    assert!(
        result.elapsed_ms >= an_hour.as_secs_f64() * 1e3,
        "{result:#?}"
    );
    assert!(
        wall < Duration::from_secs(30),
        "an hour of tokio sleep took {wall:?}"
    );
}
