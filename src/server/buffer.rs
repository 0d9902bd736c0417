//! Per-connection byte buffers: the inbound bytes a handler has not consumed yet, and the
//! outbound ring that `writev` drains in at most two slices.
//!
//! Both allocate lazily and give their memory back when they empty out beyond a small
//! retained size, so ten thousand idle connections cost almost nothing and a burst does not
//! pin its peak forever. Limits are enforced by the reactor, which looks at `len()`; the
//! buffers themselves only grow on demand.

/// Storage a drained buffer keeps for reuse; anything larger is freed.
const RETAINED_BYTES_MAX: usize = 16 * 1024;

/// Bytes received but not yet consumed by the handler, oldest first.
#[derive(Default, Debug)]
pub(crate) struct Inbound {
    bytes: Vec<u8>,
    start: usize,
}

impl Inbound {
    /// Unconsumed bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unconsumed bytes, oldest first.
    pub(crate) fn data(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Appends newly received bytes.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        // Compacting before growing keeps the storage at most twice the live data.
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Drops the first `n` unconsumed bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.bytes.len());
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
            if self.bytes.capacity() > RETAINED_BYTES_MAX {
                self.bytes = Vec::new();
            }
        }
    }
}

/// Bytes waiting to be written, as a ring so that appending never moves pending data and a
/// flush is one `writev` of at most two slices.
#[derive(Default, Debug)]
pub(crate) struct Outbound {
    /// Ring storage; its length is the ring's capacity (zero until first use).
    ring: Vec<u8>,
    head: usize,
    len: usize,
}

impl Outbound {
    /// Pending bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pending bytes as (first, second) slices, in order; the second may be empty.
    pub(crate) fn slices(&self) -> (&[u8], &[u8]) {
        let capacity = self.ring.len();
        if self.head + self.len <= capacity {
            (&self.ring[self.head..self.head + self.len], &[])
        } else {
            let wrapped = self.head + self.len - capacity;
            (&self.ring[self.head..], &self.ring[..wrapped])
        }
    }

    /// Appends `data` after everything pending.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let needed = self.len + data.len();
        if needed > self.ring.len() {
            self.grow(needed);
        }
        let capacity = self.ring.len();
        let tail = (self.head + self.len) % capacity;
        let first = data.len().min(capacity - tail);
        self.ring[tail..tail + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
    }

    /// Drops the first `n` pending bytes (those a write accepted).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
            if self.ring.len() > RETAINED_BYTES_MAX {
                self.ring = Vec::new();
            }
        } else {
            self.head = (self.head + n) % self.ring.len();
        }
    }

    /// Reallocates to a power of two of at least `needed` bytes, unwrapping the data.
    fn grow(&mut self, needed: usize) {
        let capacity = needed.next_power_of_two().max(4096);
        let mut ring = vec![0u8; capacity];
        let (first, second) = self.slices();
        ring[..first.len()].copy_from_slice(first);
        ring[first.len()..first.len() + second.len()].copy_from_slice(second);
        self.ring = ring;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(out: &Outbound) -> Vec<u8> {
        let (a, b) = out.slices();
        [a, b].concat()
    }

    #[test]
    fn outbound_keeps_order_across_wraparound_and_growth() {
        let mut out = Outbound::default();
        let mut model: Vec<u8> = Vec::new();
        let mut next = 0u8;
        // Pushes and partial consumes of co-prime sizes walk the head all around the ring.
        for round in 0..200usize {
            let chunk: Vec<u8> = (0..(round * 37) % 1500)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            out.push(&chunk);
            model.extend_from_slice(&chunk);
            let take = (round * 53) % 1700;
            out.consume(take);
            model.drain(..take.min(model.len()));
            assert_eq!(pending(&out), model, "round {round}");
        }
    }

    #[test]
    fn buffers_release_large_storage_when_drained() {
        let mut out = Outbound::default();
        out.push(&vec![7u8; 100_000]);
        out.consume(100_000);
        assert!(out.ring.is_empty());
        let mut inbound = Inbound::default();
        inbound.extend(&vec![1u8; 100_000]);
        inbound.consume(40_000);
        assert_eq!(inbound.len(), 60_000);
        inbound.consume(60_000);
        assert_eq!(inbound.bytes.capacity(), 0);
    }
}
