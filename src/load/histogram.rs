//! A fixed-size log-linear latency histogram: recording is an index computation and an
//! increment, so the load generator can time every message without allocating, and
//! per-thread histograms merge by adding counts.

/// Sub-buckets per power of two, as a bit count: 2^5 = 32 sub-buckets keep every recorded
/// value within 1/32 (about 3 %) of its bucket's bounds.
const SUB_BITS: u32 = 5;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Values below `SUB_BUCKETS` get a bucket each; every higher power of two gets
/// `SUB_BUCKETS` buckets, up to `u64::MAX`.
const BUCKETS: usize = SUB_BUCKETS + (64 - SUB_BITS as usize) * SUB_BUCKETS;

/// Counts of nanosecond values.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram. This is the only allocation it ever makes.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, value_ns: u64) {
        self.counts[bucket_of(value_ns)] += 1;
        self.total += 1;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds every count of `other` to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// The value at quantile `q` (0.0..=1.0): the upper bound of the bucket holding the
    /// value of rank `ceil(q * count)`, so the answer never understates a latency. `None`
    /// when nothing was recorded.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket_idx, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(upper_bound_of(bucket_idx));
            }
        }
        unreachable!("BUG: the counts sum to total, so the rank is always reached")
    }
}

/// The bucket holding `value`.
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let mantissa = (value >> (exponent - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    (exponent - SUB_BITS + 1) as usize * SUB_BUCKETS + mantissa
}

/// The largest value that falls in bucket `bucket_idx`.
fn upper_bound_of(bucket_idx: usize) -> u64 {
    if bucket_idx < SUB_BUCKETS {
        return bucket_idx as u64;
    }
    let exponent = (bucket_idx / SUB_BUCKETS) as u32 + SUB_BITS - 1;
    let mantissa = (bucket_idx % SUB_BUCKETS) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    let lower = ((SUB_BUCKETS as u64) + mantissa) << (exponent - SUB_BITS);
    lower + (width - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_bounds_it() {
        let mut value = 1u64;
        // Values grow by about 1/7 per step until they would overflow.
        for _ in 0..2000 {
            let bucket_idx = bucket_of(value);
            assert!(bucket_idx < BUCKETS, "value {value} bucket {bucket_idx}");
            let upper = upper_bound_of(bucket_idx);
            assert!(upper >= value, "value {value} upper {upper}");
            // Within one sub-bucket width: about 3 % above the value at most.
            assert!(
                upper - value <= value / SUB_BUCKETS as u64,
                "value {value} upper {upper}"
            );
            if bucket_idx > 0 {
                assert!(upper_bound_of(bucket_idx - 1) < value, "value {value}");
            }
            match value.checked_add(value / 7 + 1) {
                Some(next) => value = next,
                None => break,
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(upper_bound_of(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut histogram = Histogram::new();
        assert_eq!(histogram.quantile_ns(0.5), None);
        for value_ns in 1..=10_000u64 {
            histogram.record(value_ns);
        }
        let p50 = histogram.quantile_ns(0.5).unwrap();
        let p99 = histogram.quantile_ns(0.99).unwrap();
        assert!((5000..=5000 + 5000 / 32).contains(&p50), "p50 {p50}");
        assert!((9900..=9900 + 9900 / 32).contains(&p99), "p99 {p99}");

        let mut other = Histogram::new();
        other.record(1_000_000);
        histogram.merge(&other);
        assert_eq!(histogram.count(), 10_001);
        assert!(histogram.quantile_ns(1.0).unwrap() >= 1_000_000);
    }
}
