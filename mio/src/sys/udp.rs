//! UDP: Linux only. The simulated kernel has no datagram sockets, so inside a simulated world
//! every UDP call fails with `Unsupported`, naming the call.

use super::{in_world, real_io, unsupported, Sock};
use std::io;
use std::net::{self, SocketAddr};
use std::os::fd::AsRawFd;

/// Why UDP calls fail in the simulator.
pub(crate) const NO_UDP: &str = "the simulator has no UDP (it models TCP, unix socket pairs, \
                                 pipes and eventfd)";

pub(crate) type Socket = Sock<net::UdpSocket>;

/// A non-blocking UDP socket bound to `addr`.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<Socket> {
    if in_world() {
        return Err(unsupported("mio::net::UdpSocket::bind", NO_UDP));
    }
    let socket = net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(Sock::Real(socket))
}

/// `IPV6_V6ONLY`, which std does not offer for UDP.
pub(crate) fn only_v6(socket: &Socket) -> io::Result<bool> {
    socket.linux_only("mio::net::UdpSocket::only_v6", NO_UDP, |std| {
        real_io(real::net::only_v6(std.as_raw_fd()))
    })
}
