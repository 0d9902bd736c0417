//! `UnixListener`: Linux only (the simulator has no path-addressed unix sockets).

use super::UnixStream;
use crate::sys::{self, uds::NO_PATHS};
use std::fmt;
use std::io;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

/// A non-blocking unix listener, as `mio::net::UnixListener`.
pub struct UnixListener {
    pub(crate) inner: sys::uds::Listener,
}

impl UnixListener {
    /// Binds to `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixListener::bind",
            || net::UnixListener::bind(path),
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixListener { inner })
    }

    /// Binds to `address`.
    pub fn bind_addr(address: &SocketAddr) -> io::Result<UnixListener> {
        let inner = sys::uds::linux_socket(
            "mio::net::UnixListener::bind_addr",
            || net::UnixListener::bind_addr(address),
            |s| s.set_nonblocking(true),
        )?;
        Ok(UnixListener { inner })
    }

    /// Wraps a std listener, which should already be non-blocking (inside a simulated
    /// world, every call on the result fails with `Unsupported`).
    pub fn from_std(listener: net::UnixListener) -> UnixListener {
        UnixListener {
            inner: sys::Sock::adopt(listener, "mio::net::UnixListener::from_std"),
        }
    }

    /// Takes one queued connection (non-blocking); `WouldBlock` when none is queued.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let call = "mio::net::UnixListener::accept";
        self.inner.linux_only(call, NO_PATHS, |listener| {
            let (stream, peer) = listener.accept()?;
            stream.set_nonblocking(true)?;
            Ok((UnixStream::from_std(stream), peer))
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let call = "mio::net::UnixListener::local_addr";
        self.inner
            .linux_only(call, NO_PATHS, net::UnixListener::local_addr)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixListener").field(&self.inner).finish()
    }
}

source!(UnixListener);
fd_conversions!(UnixListener, "mio::net::UnixListener");
std_conversion!(UnixListener, net::UnixListener, "mio::net::UnixListener");
