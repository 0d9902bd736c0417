//! What one client will do: its messages and their sizes, drawn from the run's seed before
//! anything runs, so a replay sends exactly the same bytes.

use crate::scenario::{ClientSpec, Pattern};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::net::SocketAddr;

/// One client's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPlan {
    /// The client's number (0-based), part of every byte it sends.
    pub id: u32,
    /// The server.
    pub addr: SocketAddr,
    /// What it does.
    pub pattern: Pattern,
    /// Message sizes in bytes, in order.
    pub sizes: Vec<usize>,
    /// Messages kept in flight (1 for pingpong).
    pub depth: usize,
    /// Bytes per read call (small for the slow reader).
    pub read_chunk_bytes: usize,
    /// The scenario injects resets (network resets, aborted accepts): a connection that dies
    /// of one is retried from the start of its batch instead of failing the client.
    pub retry_on_reset: bool,
    /// Speak the frame handler's protocol instead of expecting an echo: each message goes
    /// out as a length-prefixed request, and its reply is [`FRAME_REPLY_BYTES`] bytes.
    pub frames: bool,
}

/// Bytes of the frame handler's reply to one request: a 4-byte length (12), the request's
/// length and the 64-bit FNV-1a hash of its body, all big-endian.
pub const FRAME_REPLY_BYTES: usize = 16;
/// Bytes of a frame request's length prefix.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Messages a pipelining client keeps in flight.
pub const PIPELINE_DEPTH: usize = 4;
/// Bytes a slow reader takes per read.
pub const SLOW_READ_BYTES: usize = 7;
/// Bytes other clients take per read.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

impl ClientPlan {
    /// The plan of client `id` of a workload, with sizes drawn from `seed`.
    pub fn new(spec: &ClientSpec, id: u32, addr: SocketAddr, seed: u64) -> ClientPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(sim::sched::derive_seed(seed, 100 + u64::from(id)));
        let (min, max) = spec.size_bytes;
        let sizes = (0..spec.messages)
            .map(|_| {
                let span = (max - min + 1) as u64;
                min + (rng.next_u64() % span) as usize
            })
            .collect();
        let depth = match spec.pattern {
            Pattern::Pipeline => PIPELINE_DEPTH,
            Pattern::Burst | Pattern::HalfClose => usize::MAX,
            _ => 1,
        };
        let read_chunk_bytes = if spec.pattern == Pattern::SlowReader {
            SLOW_READ_BYTES
        } else {
            READ_CHUNK_BYTES
        };
        ClientPlan {
            id,
            addr,
            pattern: spec.pattern,
            sizes,
            depth,
            read_chunk_bytes,
            retry_on_reset: false,
            frames: false,
        }
    }

    /// Bytes the whole plan sends (message bodies; a frame's prefix is not counted).
    pub fn total_bytes(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// Bytes the whole plan expects back: the echo of every byte, or one reply per frame.
    pub fn reply_bytes(&self) -> usize {
        if self.frames {
            self.sizes.len() * FRAME_REPLY_BYTES
        } else {
            self.total_bytes()
        }
    }
}

/// The byte client `id` sends at stream offset `offset`: a cheap hash, so that a byte lost,
/// duplicated or moved shows up as a mismatch at its own offset.
pub fn expected_byte(id: u32, offset: u64) -> u8 {
    let mut x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(id).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^= x >> 29;
    (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 56) as u8
}
