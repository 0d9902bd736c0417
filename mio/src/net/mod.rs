//! Networking primitives, as `mio::net`: TCP on both backends, unix stream socket pairs on
//! both, UDP and path-addressed unix sockets on Linux only (in a simulated world they fail
//! with `Unsupported`, naming the call).

mod tcp_listener;
mod tcp_stream;
mod udp;
mod unix_datagram;
mod unix_listener;
mod unix_stream;

pub use self::tcp_listener::TcpListener;
pub use self::tcp_stream::TcpStream;
pub use self::udp::UdpSocket;
pub use self::unix_datagram::UnixDatagram;
pub use self::unix_listener::UnixListener;
pub use self::unix_stream::UnixStream;
