//! The tokio echo peer: a multi-thread runtime (current-thread with `--threads 1`), one
//! task per connection, read then `write_all`. It stands for "what a well-kept async runtime does" in the benchmark.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Large enough that a pipelined 4 KiB workload is echoed in few reads.
const READ_BUF_BYTES: usize = 64 * 1024;

fn main() {
    let args = edgesim_bench_peers::parse_args("tokio-echo");
    // One thread gets the current-thread runtime: it skips the work-stealing machinery
    // that a single worker cannot use, which is that configuration's best shot.
    let mut builder = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut multi = tokio::runtime::Builder::new_multi_thread();
        multi.worker_threads(args.threads);
        multi
    };
    let runtime = builder.enable_io().build().expect("tokio runtime");
    runtime.block_on(serve(args.addr));
}

async fn serve(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    edgesim_bench_peers::announce(listener.local_addr().expect("local_addr"));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(echo(stream));
            }
            // A connection that died in the backlog, or a momentary fd shortage, must not
            // stop the server.
            Err(error) => eprintln!("accept: {error}"),
        }
    }
}

async fn echo(mut stream: TcpStream) {
    // Latency-bound pingpong needs small segments out at once.
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; READ_BUF_BYTES];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
