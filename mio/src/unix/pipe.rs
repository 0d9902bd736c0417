//! Unix pipes, as `mio::unix::pipe`: both ends non-blocking, on both backends.

use crate::sys;
use std::fmt;
use std::io;
use std::process::{ChildStderr, ChildStdin, ChildStdout};

/// A new pipe: `(write end, read end)`, non-blocking and close-on-exec.
pub fn new() -> io::Result<(Sender, Receiver)> {
    let (write, read) = sys::pipe::new()?;
    Ok((Sender { inner: write }, Receiver { inner: read }))
}

/// The writing end of a pipe, as `mio::unix::pipe::Sender`.
pub struct Sender {
    pub(crate) inner: sys::pipe::End,
}

/// The reading end of a pipe, as `mio::unix::pipe::Receiver`.
pub struct Receiver {
    pub(crate) inner: sys::pipe::End,
}

/// The inherent methods both ends share.
macro_rules! end_methods {
    ($end:ident, $name:literal) => {
        impl $end {
            /// Sets or clears `O_NONBLOCK` (a simulated pipe is always non-blocking, and
            /// clearing it fails with `Unsupported`).
            pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
                let call = concat!($name, "::set_nonblocking");
                sys::pipe::set_nonblocking(&self.inner, nonblocking, call)
            }

            try_io_method!();
        }
    };
}

end_methods!(Sender, "mio::unix::pipe::Sender");
end_methods!(Receiver, "mio::unix::pipe::Receiver");

/// A child's standard stream as a pipe end (a Linux descriptor: inside a simulated world
/// every call on the result fails with `Unsupported`).
macro_rules! from_child {
    ($end:ident, $child:ty, $name:literal) => {
        impl From<$child> for $end {
            fn from(child: $child) -> $end {
                $end {
                    inner: sys::Sock::adopt(child.into(), $name),
                }
            }
        }
    };
}

from_child!(
    Sender,
    ChildStdin,
    "From<ChildStdin> for mio::unix::pipe::Sender"
);
from_child!(
    Receiver,
    ChildStdout,
    "From<ChildStdout> for mio::unix::pipe::Receiver"
);
from_child!(
    Receiver,
    ChildStderr,
    "From<ChildStderr> for mio::unix::pipe::Receiver"
);

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sender").field(&self.inner).finish()
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Receiver").field(&self.inner).finish()
    }
}

source!(Sender);
source!(Receiver);
fd_conversions!(Sender, "mio::unix::pipe::Sender");
fd_conversions!(Receiver, "mio::unix::pipe::Receiver");
write_impls!(Sender);
read_impls!(Receiver);
