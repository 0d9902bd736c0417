//! tokio servers written as tokio users write them, for edgesim's tests of unmodified code
//! on the simulator (tests/it/): an echo server, and a length-prefixed request server with
//! and without the classic framing bug.
//!
//! Nothing here names edgesim's simulator. The servers use `tokio::net` as they would in
//! production; the workspace's `[patch.crates-io]` makes tokio's mio edgesim's, so inside a
//! simulated world they run on the simulated kernel and outside one on Linux.
//!
//! `select!` is not used: its branch order comes from a thread-local random number seeded
//! by the OS, which would make a seed's run differ between processes (see
//! docs/UNMODIFIED.md, "Determinism").

use edgesim::server::{fnv1a, FNV_OFFSET};
use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes an echo connection reads per call.
const ECHO_CHUNK_BYTES: usize = 4096;

/// Runs `server` to its end on a tokio current-thread runtime (I/O and time enabled) built
/// on the calling thread: under edgesim's harness, a simulated thread.
pub fn on_current_thread<F>(server: F) -> io::Result<()>
where
    F: Future<Output = io::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server)
}

/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Accepts connections on `addr` forever and serves each with `serve` in a task of its own.
/// A connection's error ends that connection, not the server; accept errors that concern
/// one connection only (it was aborted, or a signal came) are skipped, and running out of
/// descriptors pauses accepting for a while, as hyper's and axum's accept loops do (swarm
/// mode's `accept_emfile` fault found the first version returning the error and dying).
async fn accept_loop<S, F>(addr: SocketAddr, serve: S) -> io::Result<()>
where
    S: Fn(TcpStream) -> F,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let connection = serve(stream);
                tokio::spawn(async move {
                    // The peer may have gone; that is its business.
                    let _ = connection.await;
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                ) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The echo server: every byte read is written back.
pub async fn echo(addr: SocketAddr) -> io::Result<()> {
    accept_loop(addr, echo_connection).await
}

async fn echo_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; ECHO_CHUNK_BYTES];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// How a request server finds its requests in the byte stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Correct: read the 4-byte length, then read until that many body bytes have come.
    UntilComplete,
    /// The classic bug: take whatever one `read` returns for one whole request. It works
    /// while every request arrives in one piece and alone, which loopback usually gives.
    OneReadPerRequest,
}

/// The request server of edgesim's frame protocol: a request is a 4-byte big-endian length
/// and that many bytes; its reply is 16 bytes: the length 12, the request's length and the
/// 64-bit FNV-1a hash of its body, all big-endian.
pub async fn frames(addr: SocketAddr, framing: Framing) -> io::Result<()> {
    match framing {
        Framing::UntilComplete => accept_loop(addr, frames_until_complete).await,
        Framing::OneReadPerRequest => accept_loop(addr, frames_one_read).await,
    }
}

/// The 16-byte reply to a request of `length` bytes whose body hashes to `hash`.
fn reply(length: u32, hash: u64) -> [u8; 16] {
    let mut frame = [0u8; 16];
    frame[..4].copy_from_slice(&12u32.to_be_bytes());
    frame[4..8].copy_from_slice(&length.to_be_bytes());
    frame[8..].copy_from_slice(&hash.to_be_bytes());
    frame
}

async fn frames_until_complete(mut stream: TcpStream) -> io::Result<()> {
    let mut prefix = [0u8; 4];
    let mut buf = vec![0u8; ECHO_CHUNK_BYTES];
    loop {
        match stream.read_exact(&mut prefix).await {
            Ok(_) => {}
            // The peer is done (between requests, or in the middle of one).
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let length = u32::from_be_bytes(prefix);
        // The body is hashed as it comes and never held, so a huge length costs no memory.
        let (mut remaining, mut hash) = (length as usize, FNV_OFFSET);
        while remaining > 0 {
            let want = remaining.min(buf.len());
            let n = stream.read(&mut buf[..want]).await?;
            if n == 0 {
                return Ok(());
            }
            hash = fnv1a(hash, &buf[..n]);
            remaining -= n;
        }
        stream.write_all(&reply(length, hash)).await?;
    }
}

async fn frames_one_read(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // The bug: these `n` bytes are taken for one whole request, prefix and body.
        let prefix_len = n.min(4);
        let mut prefix = [0u8; 4];
        prefix[..prefix_len].copy_from_slice(&buf[..prefix_len]);
        let length = u32::from_be_bytes(prefix);
        let hash = fnv1a(FNV_OFFSET, &buf[prefix_len..n]);
        stream.write_all(&reply(length, hash)).await?;
    }
}
