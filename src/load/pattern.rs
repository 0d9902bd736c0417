//! The bytes every load message carries: a window into one fixed pseudo-random block, placed
//! by the connection and sequence number. Generating and checking a message are then a
//! `memcpy` and a `memcmp`, and an echo that mixes up connections, drops, repeats or
//! reorders messages, or flips a byte, shows up as a mismatch.

/// Distinct placements of a message in the block. Prime, so that the sequence number walks
/// through all of them and consecutive messages of a connection never look alike.
const PLACEMENTS: usize = 251;

/// The pattern for messages of one size.
#[derive(Clone, Debug)]
pub struct Pattern {
    block: Vec<u8>,
    size: usize,
}

impl Pattern {
    /// The pattern for messages of `size` bytes (at least 1).
    pub fn new(size: usize) -> Pattern {
        assert!(size >= 1, "a message has at least one byte");
        // A fixed xorshift stream: the block must look random (so no two placements agree)
        // but be the same in every run, so a failure is reproducible.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let block = (0..size + PLACEMENTS)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        Pattern { block, size }
    }

    /// The message size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The bytes of message `seq` on connection `conn_id`.
    pub fn message(&self, conn_id: u64, seq: u64) -> &[u8] {
        let placement = (conn_id.wrapping_mul(61).wrapping_add(seq) % PLACEMENTS as u64) as usize;
        &self.block[placement..placement + self.size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_differ() {
        let pattern = Pattern::new(64);
        for conn_id in 0..4 {
            for seq in 0..300 {
                let this = pattern.message(conn_id, seq);
                assert_eq!(this.len(), 64);
                assert_ne!(this, pattern.message(conn_id, seq + 1));
                assert_ne!(this, pattern.message(conn_id + 1, seq));
            }
        }
    }
}
