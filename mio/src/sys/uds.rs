//! Unix domain sockets. The simulated kernel has unix stream socket pairs (no filesystem
//! addresses, no listeners, no datagrams), so `UnixStream::pair` works in both backends and
//! everything that needs a path fails with `Unsupported` inside a simulated world.
//!
//! On Linux these are std's sockets switched to non-blocking mode. std connects before it
//! switches, so a connect to a listener whose backlog is full waits instead of failing with
//! `WouldBlock` as mio's does.

use super::{in_world, sim_io, unsupported, SimFd, Sock};
use std::io;
use std::os::unix::net;

/// Why unix calls that need an address fail in the simulator.
pub(crate) const NO_PATHS: &str = "the simulator's unix sockets are socket pairs only (no \
                                   paths, listeners or datagrams)";

pub(crate) type Stream = Sock<net::UnixStream>;
pub(crate) type Listener = Sock<net::UnixListener>;
pub(crate) type Datagram = Sock<net::UnixDatagram>;

/// Fails in the simulator with `Unsupported` naming `call`; on Linux runs `make` and sets
/// the result non-blocking.
pub(crate) fn linux_socket<S>(
    call: &str,
    make: impl FnOnce() -> io::Result<S>,
    set_nonblocking: impl Fn(&S) -> io::Result<()>,
) -> io::Result<Sock<S>> {
    if in_world() {
        return Err(unsupported(call, NO_PATHS));
    }
    let socket = make()?;
    set_nonblocking(&socket)?;
    Ok(Sock::Real(socket))
}

/// Two connected, non-blocking unix stream sockets.
pub(crate) fn stream_pair() -> io::Result<(Stream, Stream)> {
    if in_world() {
        let (a, b) = sim_io(sim::sys::socketpair())?;
        return Ok((Sock::Sim(SimFd(a)), Sock::Sim(SimFd(b))));
    }
    let (a, b) = net::UnixStream::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((Sock::Real(a), Sock::Real(b)))
}

/// Two connected, non-blocking unix datagram sockets (Linux only).
pub(crate) fn datagram_pair() -> io::Result<(Datagram, Datagram)> {
    if in_world() {
        return Err(unsupported("mio::net::UnixDatagram::pair", NO_PATHS));
    }
    let (a, b) = net::UnixDatagram::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((Sock::Real(a), Sock::Real(b)))
}
