//! `UdpSocket`: Linux only (std's socket, non-blocking). Every call fails with
//! `Unsupported` inside a simulated world, which has no UDP.

use crate::sys::{self, udp::NO_UDP};
use std::fmt;
use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A non-blocking UDP socket, as `mio::net::UdpSocket`.
pub struct UdpSocket {
    pub(crate) inner: sys::udp::Socket,
}

/// Runs one std call on the socket, or fails as the simulator must.
macro_rules! on_linux {
    ($self:ident, $name:literal, |$std:ident| $call:expr) => {
        $self
            .inner
            .linux_only(concat!("mio::net::UdpSocket::", $name), NO_UDP, |$std| {
                $call
            })
    };
}

impl UdpSocket {
    /// Binds to `addr`, non-blocking.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: sys::udp::bind(addr)?,
        })
    }

    /// Wraps a std socket, which should already be non-blocking (inside a simulated world,
    /// every call on the result fails with `Unsupported`).
    pub fn from_std(socket: net::UdpSocket) -> UdpSocket {
        UdpSocket {
            inner: sys::Sock::adopt(socket, "mio::net::UdpSocket::from_std"),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        on_linux!(self, "local_addr", |std| std.local_addr())
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        on_linux!(self, "peer_addr", |std| std.peer_addr())
    }

    /// Sends `buf` to `target`.
    pub fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        on_linux!(self, "send_to", |std| std.send_to(buf, target))
    }

    /// Receives one datagram and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        on_linux!(self, "recv_from", |std| std.recv_from(buf))
    }

    /// Reads the next datagram and its sender without consuming it.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        on_linux!(self, "peek_from", |std| std.peek_from(buf))
    }

    /// Sends `buf` to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        on_linux!(self, "send", |std| std.send(buf))
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        on_linux!(self, "recv", |std| std.recv(buf))
    }

    /// Reads the next datagram without consuming it.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        on_linux!(self, "peek", |std| std.peek(buf))
    }

    /// Sets the default peer.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        on_linux!(self, "connect", |std| std.connect(addr))
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        on_linux!(self, "set_broadcast", |std| std.set_broadcast(on))
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        on_linux!(self, "broadcast", |std| std.broadcast())
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        on_linux!(self, "set_multicast_loop_v4", |std| std
            .set_multicast_loop_v4(on))
    }

    /// `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        on_linux!(self, "multicast_loop_v4", |std| std.multicast_loop_v4())
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        on_linux!(self, "set_multicast_ttl_v4", |std| std
            .set_multicast_ttl_v4(ttl))
    }

    /// `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        on_linux!(self, "multicast_ttl_v4", |std| std.multicast_ttl_v4())
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        on_linux!(self, "set_multicast_loop_v6", |std| std
            .set_multicast_loop_v6(on))
    }

    /// `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        on_linux!(self, "multicast_loop_v6", |std| std.multicast_loop_v6())
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        on_linux!(self, "set_ttl", |std| std.set_ttl(ttl))
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        on_linux!(self, "ttl", |std| std.ttl())
    }

    /// Joins an IPv4 multicast group.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        on_linux!(self, "join_multicast_v4", |std| std
            .join_multicast_v4(multiaddr, interface))
    }

    /// Joins an IPv6 multicast group.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        on_linux!(self, "join_multicast_v6", |std| std
            .join_multicast_v6(multiaddr, interface))
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        on_linux!(self, "leave_multicast_v4", |std| std
            .leave_multicast_v4(multiaddr, interface))
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        on_linux!(self, "leave_multicast_v6", |std| std
            .leave_multicast_v6(multiaddr, interface))
    }

    /// `IPV6_V6ONLY`.
    pub fn only_v6(&self) -> io::Result<bool> {
        sys::udp::only_v6(&self.inner)
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        on_linux!(self, "take_error", |std| std.take_error())
    }

    try_io_method!();
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UdpSocket").field(&self.inner).finish()
    }
}

source!(UdpSocket);
fd_conversions!(UdpSocket, "mio::net::UdpSocket");
std_conversion!(UdpSocket, net::UdpSocket, "mio::net::UdpSocket");
