//! TCP as `mio::net` offers it: a non-blocking listener and stream whose descriptors live on
//! the backend chosen when they were created (see the [module documentation](super)).

use super::event::Source;
use super::sys::Sys;
use super::{Interest, Registry, Token};
use crate::os::{CtlOp, Fd, Shutdown as SeamShutdown};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

/// The backlog mio's `TcpListener::bind` asks for.
const LISTEN_BACKLOG: u32 = 1024;

/// A descriptor and the kernel it lives on, closed on drop.
struct Socket {
    sys: Sys,
    fd: Fd,
}

impl Socket {
    fn ctl(
        &self,
        registry: &Registry,
        op: CtlOp,
        token: Token,
        interests: Option<Interest>,
    ) -> io::Result<()> {
        registry.ctl(&self.sys, op, self.fd, token, interests)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.sys.close_on_drop(self.fd);
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.sys {
            Sys::Real(_) => "linux",
            Sys::Sim(_) => "sim",
        };
        write!(f, "{} on {backend}", self.fd)
    }
}

/// Implements `Source` for a type with a `socket: Socket` field.
macro_rules! source_via_socket {
    ($ty:ty) => {
        impl Source for $ty {
            fn register(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                self.socket
                    .ctl(registry, CtlOp::Add, token, Some(interests))
            }
            fn reregister(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                self.socket
                    .ctl(registry, CtlOp::Mod, token, Some(interests))
            }
            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                self.socket.ctl(registry, CtlOp::Del, Token(0), None)
            }
        }
    };
}

/// A non-blocking TCP listener, as `mio::net::TcpListener`.
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// Binds and listens on `addr` (port 0 picks a free port), with `SO_REUSEADDR`.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let sys = Sys::here();
        let fd = sys.listen(addr, LISTEN_BACKLOG)?;
        Ok(TcpListener {
            socket: Socket { sys, fd },
        })
    }

    /// Takes one queued connection; `WouldBlock` when none is queued. Call it until then
    /// after every readable event.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let sys = &self.socket.sys;
        let (fd, addr) = sys.accept(self.socket.fd)?;
        let socket = Socket {
            sys: sys.clone(),
            fd,
        };
        Ok((TcpStream { socket }, addr))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.sys.local_addr(self.socket.fd)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.sys.take_error(self.socket.fd)
    }
}

source_via_socket!(TcpListener);

/// A non-blocking TCP stream, as `mio::net::TcpStream`.
#[derive(Debug)]
pub struct TcpStream {
    socket: Socket,
}

impl TcpStream {
    /// Starts connecting to `addr`; the connection may still be in progress on return.
    /// Register for writable readiness, then check [`TcpStream::take_error`] (and
    /// [`TcpStream::peer_addr`], which fails with `NotConnected` until it is done).
    pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let sys = Sys::here();
        let fd = sys.connect(addr)?;
        Ok(TcpStream {
            socket: Socket { sys, fd },
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.sys.peer_addr(self.socket.fd)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.sys.local_addr(self.socket.fd)
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => SeamShutdown::Read,
            Shutdown::Write => SeamShutdown::Write,
            Shutdown::Both => SeamShutdown::Both,
        };
        self.socket.sys.shutdown(self.socket.fd, how)
    }

    /// Accepted and ignored: both backends always set `TCP_NODELAY` (Nagle changes latency,
    /// not correctness).
    pub fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    /// Always `true` (see [`TcpStream::set_nodelay`]).
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(true)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it: how a non-blocking
    /// connect ended.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.sys.take_error(self.socket.fd)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.sys.read(self.socket.fd, buf)
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.sys.write(self.socket.fd, buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        self.socket.sys.writev(self.socket.fd, &slices)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is buffered in user space.
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

source_via_socket!(TcpStream);
