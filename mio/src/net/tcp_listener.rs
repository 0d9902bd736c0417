//! `TcpListener`.

use super::TcpStream;
use crate::sys;
use std::fmt;
use std::io;
use std::net::{self, SocketAddr};

/// A non-blocking TCP listener, as `mio::net::TcpListener`.
pub struct TcpListener {
    pub(crate) inner: sys::tcp::Listener,
}

impl TcpListener {
    /// Binds and listens on `addr` (port 0 picks a free port), with `SO_REUSEADDR` and a
    /// backlog of 1024, non-blocking, as mio does.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: sys::tcp::bind(addr)?,
        })
    }

    /// Wraps a std listener, which should already be non-blocking. Inside a simulated world
    /// a std listener is a Linux socket, which the simulated run cannot use: every call on
    /// the result then fails with `Unsupported` naming this function.
    pub fn from_std(listener: net::TcpListener) -> TcpListener {
        TcpListener {
            inner: sys::Sock::adopt(listener, "mio::net::TcpListener::from_std"),
        }
    }

    /// Takes one queued connection; `WouldBlock` when none is queued. Call it until then
    /// after every readable event.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (inner, peer) = self.inner.accept()?;
        Ok((TcpStream { inner }, peer))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Sets `IP_TTL` (Linux only).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// `IP_TTL` (Linux only).
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpListener").field(&self.inner).finish()
    }
}

source!(TcpListener);
fd_conversions!(TcpListener, "mio::net::TcpListener");
std_conversion!(TcpListener, net::TcpListener, "mio::net::TcpListener");
