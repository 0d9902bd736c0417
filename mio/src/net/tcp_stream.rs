//! `TcpStream`.

use crate::sys;
use std::fmt;
use std::io;
use std::net::{self, Shutdown, SocketAddr};

/// A non-blocking TCP stream, as `mio::net::TcpStream`.
pub struct TcpStream {
    pub(crate) inner: sys::tcp::Stream,
}

impl TcpStream {
    /// Starts connecting to `addr`; the connection may still be in progress on return.
    /// Register for writable readiness, then check [`TcpStream::take_error`] (and
    /// [`TcpStream::peer_addr`], which fails with `NotConnected` until it is done).
    pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: sys::tcp::connect(addr)?,
        })
    }

    /// Wraps a std stream, which should already be non-blocking. Inside a simulated world a
    /// std stream is a Linux socket, which the simulated run cannot use: every call on the
    /// result then fails with `Unsupported` naming this function.
    pub fn from_std(stream: net::TcpStream) -> TcpStream {
        TcpStream {
            inner: sys::Sock::adopt(stream, "mio::net::TcpStream::from_std"),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Sets `TCP_NODELAY`. Both backends start with it on (edgesim's sockets do); the
    /// simulator always behaves as if it were on and ignores this call, since Nagle's
    /// algorithm changes latency, not correctness.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// `TCP_NODELAY` (always `true` in the simulator).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Sets `IP_TTL` (Linux only).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// `IP_TTL` (Linux only).
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it: how a non-blocking
    /// connect ended.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Reads without consuming (`MSG_PEEK`; Linux only).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf)
    }

    try_io_method!();
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(&self.inner).finish()
    }
}

source!(TcpStream);
fd_conversions!(TcpStream, "mio::net::TcpStream");
std_conversion!(TcpStream, net::TcpStream, "mio::net::TcpStream");
read_impls!(TcpStream);
write_impls!(TcpStream);
