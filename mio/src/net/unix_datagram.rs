//! `UnixDatagram`: Linux only (the simulator has no datagram sockets).

use crate::sys::{self, uds::NO_PATHS};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

/// A non-blocking unix datagram socket, as `mio::net::UnixDatagram`.
pub struct UnixDatagram {
    pub(crate) inner: sys::uds::Datagram,
}

/// Runs one std call on the socket, or fails as the simulator must.
macro_rules! on_linux {
    ($self:ident, $name:literal, |$std:ident| $call:expr) => {
        $self.inner.linux_only(
            concat!("mio::net::UnixDatagram::", $name),
            NO_PATHS,
            |$std| $call,
        )
    };
}

impl UnixDatagram {
    /// A socket bound to `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixDatagram::bind",
            || net::UnixDatagram::bind(path),
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixDatagram { inner })
    }

    /// A socket bound to `address`.
    pub fn bind_addr(address: &SocketAddr) -> io::Result<UnixDatagram> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixDatagram::bind_addr",
            || net::UnixDatagram::bind_addr(address),
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixDatagram { inner })
    }

    /// Wraps a std socket, which should already be non-blocking (inside a simulated world,
    /// every call on the result fails with `Unsupported`).
    pub fn from_std(socket: net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            inner: sys::Sock::adopt(socket, "mio::net::UnixDatagram::from_std"),
        }
    }

    /// Connects to the socket at `path`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        on_linux!(self, "connect", |std| std.connect(path))
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixDatagram::unbound",
            net::UnixDatagram::unbound,
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixDatagram { inner })
    }

    /// Two connected sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = sys::uds::datagram_pair()?;
        Ok((UnixDatagram { inner: a }, UnixDatagram { inner: b }))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        on_linux!(self, "local_addr", |std| std.local_addr())
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        on_linux!(self, "peer_addr", |std| std.peer_addr())
    }

    /// Receives one datagram and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        on_linux!(self, "recv_from", |std| std.recv_from(buf))
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        on_linux!(self, "recv", |std| std.recv(buf))
    }

    /// Sends `buf` to the socket at `path`.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        on_linux!(self, "send_to", |std| std.send_to(buf, path))
    }

    /// Sends `buf` to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        on_linux!(self, "send", |std| std.send(buf))
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        on_linux!(self, "take_error", |std| std.take_error())
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        on_linux!(self, "shutdown", |std| std.shutdown(how))
    }

    try_io_method!();
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixDatagram").field(&self.inner).finish()
    }
}

source!(UnixDatagram);
fd_conversions!(UnixDatagram, "mio::net::UnixDatagram");
std_conversion!(UnixDatagram, net::UnixDatagram, "mio::net::UnixDatagram");
