//! `UnixStream`: socket pairs on both backends; connecting to a path on Linux only.

use crate::sys::{self, uds::NO_PATHS};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

/// A non-blocking unix stream socket, as `mio::net::UnixStream`.
pub struct UnixStream {
    pub(crate) inner: sys::uds::Stream,
}

impl UnixStream {
    /// Connects to the socket at `path` (Linux only).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixStream::connect",
            || net::UnixStream::connect(path),
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixStream { inner })
    }

    /// Connects to `address` (Linux only).
    pub fn connect_addr(address: &SocketAddr) -> io::Result<UnixStream> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixStream::connect_addr",
            || net::UnixStream::connect_addr(address),
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixStream { inner })
    }

    /// Wraps a std stream, which should already be non-blocking (inside a simulated world,
    /// every call on the result fails with `Unsupported`).
    pub fn from_std(stream: net::UnixStream) -> UnixStream {
        UnixStream {
            inner: sys::Sock::adopt(stream, "mio::net::UnixStream::from_std"),
        }
    }

    /// Two connected sockets, on both backends.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = sys::uds::stream_pair()?;
        Ok((UnixStream { inner: a }, UnixStream { inner: b }))
    }

    /// The local address (Linux only).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let call = "mio::net::UnixStream::local_addr";
        self.inner
            .linux_only(call, NO_PATHS, net::UnixStream::local_addr)
    }

    /// The peer's address (Linux only).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let call = "mio::net::UnixStream::peer_addr";
        self.inner
            .linux_only(call, NO_PATHS, net::UnixStream::peer_addr)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    try_io_method!();
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixStream").field(&self.inner).finish()
    }
}

source!(UnixStream);
fd_conversions!(UnixStream, "mio::net::UnixStream");
std_conversion!(UnixStream, net::UnixStream, "mio::net::UnixStream");
read_impls!(UnixStream);
write_impls!(UnixStream);
