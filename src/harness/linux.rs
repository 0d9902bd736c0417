//! The harness's Linux arm: the same server and the same clients over loopback, on OS
//! threads, so one test body checks a server in the simulator and on the real kernel (as
//! turmoil's conformance tests run one body against both).
//!
//! Linux gives no seed, no trace and no step count, so the verdict is coarser: `crash` if
//! the server fails, `corrupt` if a client sees wrong bytes, `stall` if a client sees no
//! progress for the bound given. There is no spin or leak check (the server shares this
//! process), and the server cannot be stopped: its thread keeps running, and its sockets
//! stay open, until the process exits. Run the test in a process of its own if that matters.

use super::{Harness, RunResult, Server, Verdict};
use crate::mio::net::TcpListener;
use crate::os::RealOs;
use crate::runner::{judge_real_clients, real_result};
use crate::workload::Progress;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a server that binds its own address has to do it on Linux.
const LISTEN_WAIT_LINUX: Duration = Duration::from_secs(10);
/// How often the listener table is read meanwhile.
const LISTEN_POLL_LINUX: Duration = Duration::from_millis(2);

/// Where the server thread leaves its error, if it returns one.
type ErrorSlot = Arc<Mutex<Option<String>>>;

fn take(slot: &ErrorSlot) -> Option<String> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

impl Harness {
    /// Runs the server and the clients on Linux, over loopback, with real threads; a client
    /// that sees no progress for `stall_after` fails the run as a stall, so it is bounded.
    /// Only the standard clients' sizes and contents come from a seed (0).
    pub fn run_linux(&self, stall_after: Duration) -> RunResult {
        let start = Instant::now();
        let server_error: ErrorSlot = Arc::default();
        let addr = match start_linux_server(&self.server, &server_error) {
            Ok(addr) => addr,
            Err(error) => return real_result(Verdict::Crash, vec![error], start),
        };
        let progress = Arc::new(Progress::new());
        let done = self.run_clients(&RealOs::new(), addr, 0, &progress, Some(stall_after));
        let mut verdict = Verdict::Pass;
        let mut diagnosis = Vec::new();
        for error in done.panic.into_iter().chain(take(&server_error)) {
            verdict = Verdict::Crash;
            diagnosis.push(error);
        }
        judge_real_clients(&mut verdict, &mut diagnosis, &done.standard);
        if verdict == Verdict::Pass && !done.user_failures.is_empty() {
            verdict = Verdict::Corrupt;
        }
        diagnosis.extend(done.user_failures);
        real_result(verdict, diagnosis, start)
    }
}

/// Starts the server on an OS thread named `server`, which is never joined, and returns the
/// address the clients connect to once a listener is there.
fn start_linux_server(server: &Server, server_error: &ErrorSlot) -> Result<SocketAddr, String> {
    let report = |slot: ErrorSlot| {
        move |result: io::Result<()>| {
            if let Err(error) = result {
                let message = format!("the server returned an error: {error}");
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
            }
        }
    };
    let thread = std::thread::Builder::new().name("server".to_string());
    let spawned = match server {
        Server::Given(server) => {
            let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
            let listener = TcpListener::bind(any_port).map_err(|e| format!("bind failed: {e}"))?;
            let addr = listener
                .local_addr()
                .map_err(|e| format!("local_addr failed: {e}"))?;
            let (server, done) = (Arc::clone(server), report(Arc::clone(server_error)));
            thread.spawn(move || done(server(listener))).map(|_| addr)
        }
        Server::Binds(addr, server) => {
            let (server, done, addr) =
                (Arc::clone(server), report(Arc::clone(server_error)), *addr);
            thread.spawn(move || done(server(addr))).map(|_| addr)
        }
    };
    let addr = spawned.map_err(|e| format!("the server thread did not start: {e}"))?;
    let deadline = Instant::now() + LISTEN_WAIT_LINUX;
    while !listening_on_linux(addr) {
        if let Some(error) = take(server_error) {
            return Err(format!("{error} (before it listened on {addr})"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the server did not listen on {addr} within {} s",
                LISTEN_WAIT_LINUX.as_secs()
            ));
        }
        std::thread::sleep(LISTEN_POLL_LINUX);
    }
    Ok(addr)
}

/// Whether Linux's TCP table (`/proc/net/tcp`, `/proc/net/tcp6`) has a listening socket
/// that takes connections to `addr`. Reading the table, unlike a probing connect, is
/// invisible to the server.
fn listening_on_linux(addr: SocketAddr) -> bool {
    let table = match addr {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let Ok(text) = std::fs::read_to_string(table) else {
        return false;
    };
    text.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(local), Some(state)) = (fields.nth(1), fields.nth(1)) else {
            return false;
        };
        // State 0A is TCP_LISTEN.
        state == "0A" && listener_matches(local, addr)
    })
}

/// Whether a table entry's local address (`HEXIP:HEXPORT`, the address as the kernel's
/// 32-bit words in host byte order) takes connections to `addr`: same port, and the same
/// address or the unspecified one.
fn listener_matches(local: &str, addr: SocketAddr) -> bool {
    let Some((ip_hex, port_hex)) = local.split_once(':') else {
        return false;
    };
    if u16::from_str_radix(port_hex, 16) != Ok(addr.port()) {
        return false;
    }
    let words: Option<Vec<u32>> = (0..ip_hex.len() / 8)
        .map(|i| u32::from_str_radix(&ip_hex[i * 8..i * 8 + 8], 16).ok())
        .collect();
    let Some(words) = words else {
        return false;
    };
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let wanted = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    bytes == wanted || bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::listener_matches;

    #[test]
    fn proc_net_tcp_addresses_are_read_as_the_kernel_writes_them() {
        let addr = "127.0.0.1:9000".parse().unwrap();
        assert!(listener_matches("0100007F:2328", addr));
        assert!(listener_matches("00000000:2328", addr));
        assert!(!listener_matches("0100007F:2329", addr));
        assert!(!listener_matches("0200007F:2328", addr));
        let v6 = "[::1]:9000".parse().unwrap();
        assert!(listener_matches(
            "00000000000000000000000001000000:2328",
            v6
        ));
    }
}
