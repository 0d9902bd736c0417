//! TCP on both backends: the constructors and the calls beyond plain I/O.

use super::{in_world, real_io, sim_io, Side, SimFd, Sock};
use std::io;
use std::net::{self, SocketAddr};
use std::os::fd::AsRawFd;

/// The backlog mio's `TcpListener::bind` asks for.
const LISTEN_BACKLOG: u32 = 1024;

/// What the simulator says about socket options it does not model.
const NO_IP_OPTIONS: &str = "the simulator does not model IP options (TTL)";

pub(crate) type Listener = Sock<net::TcpListener>;
pub(crate) type Stream = Sock<net::TcpStream>;

/// A non-blocking listener with `SO_REUSEADDR` on `addr`.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<Listener> {
    if in_world() {
        let fd = sim_io(sim::sys::listen(addr, LISTEN_BACKLOG, false))?;
        Ok(Sock::Sim(SimFd(fd)))
    } else {
        let fd = real_io(real::owned::listen(addr, LISTEN_BACKLOG, false))?;
        Ok(Sock::Real(fd.into()))
    }
}

/// A non-blocking connect, possibly still in progress on return.
pub(crate) fn connect(addr: SocketAddr) -> io::Result<Stream> {
    if in_world() {
        Ok(Sock::Sim(SimFd(sim_io(sim::sys::connect(addr))?)))
    } else {
        let fd = real_io(real::owned::connect(addr))?;
        Ok(Sock::Real(fd.into()))
    }
}

impl Listener {
    pub(crate) fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        match self.side()? {
            Side::Sim(fd) => {
                let (new, peer) = sim_io(sim::sys::accept(fd))?;
                Ok((Sock::Sim(SimFd(new)), peer))
            }
            Side::Real(std) => {
                let (new, peer) = real_io(real::owned::accept(std.as_raw_fd()))?;
                Ok((Sock::Real(new.into()), peer))
            }
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.side()? {
            Side::Sim(fd) => sim_io(sim::sys::local_addr(fd)),
            Side::Real(std) => std.local_addr(),
        }
    }

    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let call = "mio::net::TcpListener::set_ttl";
        self.linux_only(call, NO_IP_OPTIONS, |std| std.set_ttl(ttl))
    }

    pub(crate) fn ttl(&self) -> io::Result<u32> {
        let call = "mio::net::TcpListener::ttl";
        self.linux_only(call, NO_IP_OPTIONS, net::TcpListener::ttl)
    }
}

impl Stream {
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self.side()? {
            Side::Sim(fd) => sim_io(sim::sys::peer_addr(fd)),
            Side::Real(std) => std.peer_addr(),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.side()? {
            Side::Sim(fd) => sim_io(sim::sys::local_addr(fd)),
            Side::Real(std) => std.local_addr(),
        }
    }

    /// In the simulator `TCP_NODELAY` is always on and this is accepted and ignored: Nagle's
    /// algorithm changes latency, not correctness.
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self.side()? {
            Side::Sim(_) => Ok(()),
            Side::Real(std) => std.set_nodelay(nodelay),
        }
    }

    pub(crate) fn nodelay(&self) -> io::Result<bool> {
        match self.side()? {
            Side::Sim(_) => Ok(true),
            Side::Real(std) => std.nodelay(),
        }
    }

    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let call = "mio::net::TcpStream::set_ttl";
        self.linux_only(call, NO_IP_OPTIONS, |std| std.set_ttl(ttl))
    }

    pub(crate) fn ttl(&self) -> io::Result<u32> {
        let call = "mio::net::TcpStream::ttl";
        self.linux_only(call, NO_IP_OPTIONS, net::TcpStream::ttl)
    }

    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let call = "mio::net::TcpStream::peek";
        let why = "the simulated kernel has no MSG_PEEK";
        self.linux_only(call, why, |std| std.peek(buf))
    }
}
