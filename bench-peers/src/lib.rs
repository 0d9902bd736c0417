//! Shared command-line handling for the benchmark peers: the two dev-only echo servers that
//! `bench/echo.sh` compares edgesim's server against, kept apart from the product so that
//! their dependencies (tokio, mio) never reach the `edgesim` package.

use std::net::SocketAddr;
use std::process::exit;

/// What both peers accept: `--addr 127.0.0.1:PORT` and `--threads N`.
#[derive(Clone, Copy, Debug)]
pub struct PeerArgs {
    /// Where to listen; port 0 picks a free port, printed on the first line of stdout.
    pub addr: SocketAddr,
    /// How many threads serve connections.
    pub threads: usize,
}

/// Parses `--addr ADDR --threads N` from the process arguments, exiting with status 2 and a
/// usage line on anything else. Only loopback addresses are accepted, because these servers
/// exist to be benchmarked on this machine and nowhere else.
pub fn parse_args(program: &str) -> PeerArgs {
    let usage = format!("usage: {program} [--addr 127.0.0.1:PORT] [--threads N]");
    let mut args = PeerArgs {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 2,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let value = raw
            .next()
            .unwrap_or_else(|| fail(&usage, &format!("{flag} needs a value")));
        match flag.as_str() {
            "--addr" => {
                args.addr = value
                    .parse()
                    .unwrap_or_else(|_| fail(&usage, &format!("bad address {value:?}")));
            }
            "--threads" => {
                args.threads = value
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n >= 1)
                    .unwrap_or_else(|| fail(&usage, &format!("bad thread count {value:?}")));
            }
            _ => fail(&usage, &format!("unknown flag {flag:?}")),
        }
    }
    if !args.addr.ip().is_loopback() {
        fail(&usage, &format!("{} is not a loopback address", args.addr));
    }
    args
}

fn fail(usage: &str, message: &str) -> ! {
    eprintln!("error: {message}\n{usage}");
    exit(2)
}

/// Prints the bound address as the first line of stdout (the benchmark script waits for it)
/// and flushes, since stdout is a pipe there and would otherwise be block-buffered.
pub fn announce(addr: SocketAddr) {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {addr}");
    let _ = stdout.flush();
}
