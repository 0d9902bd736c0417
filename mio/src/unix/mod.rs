//! Unix only extensions, as `mio::unix`: pipes and [`SourceFd`].

pub mod pipe;
mod source_fd;

pub use self::source_fd::SourceFd;
