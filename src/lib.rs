//! edgesim: a deterministic simulation and test harness for epoll-based network servers.
//!
//! The [`os`] seam has two implementations, the real Linux kernel and a seeded simulated
//! one; everything above it (the conformance runner, the servers, the workload clients) is
//! generic over the seam and runs unchanged on both.

pub mod conform;
pub mod evaluate;
pub mod explain;
pub mod harness;
pub mod load;
pub mod mio;
pub mod netpoll;
#[deny(missing_docs)]
pub mod os;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod swarm;
pub mod workload;
