//! What a user-written client gets from the harness: the server's address, its own number,
//! a seed of its own, a way to report progress, and the simulated clock.

use crate::os::{Os, SimOs};
use crate::workload::Progress;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One user-written client's view of the run, in the simulator or on Linux. Connect with
/// [`crate::mio::net::TcpStream::connect`] to [`Client::addr`] and drive it with a
/// [`crate::mio::Poll`], as any mio client would.
pub struct Client {
    index: usize,
    addr: SocketAddr,
    seed: u64,
    progress: Arc<Progress>,
}

impl Client {
    pub(super) fn new(
        index: usize,
        addr: SocketAddr,
        seed: u64,
        progress: Arc<Progress>,
    ) -> Client {
        Client {
            index,
            addr,
            seed,
            progress,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This client's number among the clients added by the same [`super::Harness::client`]
    /// call, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A seed derived from the run's seed for this client alone: draw message sizes or
    /// contents from it (never from a thread RNG), so that a replay sends the same bytes.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Reports `bytes` of useful work (bytes received and checked, say). The checkers use
    /// progress to tell a run that ran out of steps while still working (`inconclusive`)
    /// from one that stopped moving (`spin` or `stall`).
    pub fn progress(&self, bytes: u64) {
        // Only the simulator's checkers read when progress happened.
        let now = if sim::sched::in_world() {
            SimOs.now()
        } else {
            Duration::ZERO
        };
        self.progress.record(bytes, now);
    }

    /// Sleeps for `duration`: virtual time in the simulator, wall time on Linux
    /// ([`super::Harness::run_linux`]). Never call `std::thread::sleep` in a simulated
    /// thread: it would stop the whole world, which runs on one OS thread.
    pub fn sleep(&self, duration: Duration) {
        super::sleep(duration);
    }
}
