//! Picks the sub-loop for a new connection: round-robin, least connections, or a hash of
//! the peer's address.
//!
//! It runs only on the main loop, so its own state (the round-robin cursor) needs no lock;
//! least-connections reads the per-loop counters that sub-loops decrement as connections
//! close, which may be a moment stale and that is fine for balancing.

use super::config::Balance;
use super::handler::fnv1a;
use super::handler::FNV_OFFSET;
use crate::os::OsAtomic;
use std::net::{IpAddr, SocketAddr};

/// The main loop's balancing state.
pub(crate) struct Balancer {
    policy: Balance,
    next: usize,
}

impl Balancer {
    pub(crate) fn new(policy: Balance) -> Balancer {
        Balancer { policy, next: 0 }
    }

    /// The index of the loop that gets a connection from `peer`, given each loop's open
    /// connection counter. `counts` must not be empty.
    pub(crate) fn pick<A: OsAtomic>(&mut self, peer: SocketAddr, counts: &[&A]) -> usize {
        let n_loops = counts.len();
        match self.policy {
            Balance::RoundRobin => {
                let loop_idx = self.next % n_loops;
                self.next = self.next.wrapping_add(1);
                loop_idx
            }
            Balance::LeastConn => {
                // The first minimum wins, so ties break the same way every run.
                let mut best_idx = 0;
                let mut best_count = u64::MAX;
                for (loop_idx, count) in counts.iter().enumerate() {
                    let count = count.load();
                    if count < best_count {
                        best_idx = loop_idx;
                        best_count = count;
                    }
                }
                best_idx
            }
            Balance::SourceHash => {
                // Only the address, not the port: one client host sticks to one loop.
                let hash = match peer.ip() {
                    IpAddr::V4(ip) => fnv1a(FNV_OFFSET, &ip.octets()),
                    IpAddr::V6(ip) => fnv1a(FNV_OFFSET, &ip.octets()),
                };
                (hash % n_loops as u64) as usize
            }
        }
    }
}
