//! Latency histograms: fixed buckets (so histograms from many hosts and minutes add up) and
//! percentiles read back from them.

/// Upper bounds of the buckets, in microseconds; one more bucket holds everything above.
pub const BOUNDS_US: [u64; 24] = [
    100, 200, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 20_000, 30_000, 50_000, 75_000,
    100_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000,
    30_000_000, 60_000_000,
];

/// Counts of durations per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    /// A histogram from its counts (fewer counts than buckets are the first ones; extra counts
    /// join the last bucket).
    pub fn from_counts(counts: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for (i, c) in counts.iter().enumerate() {
            h.add_to(i.min(BOUNDS_US.len()), *c);
        }
        h
    }

    /// The counts, without trailing empty buckets.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    fn add_to(&mut self, bucket: usize, n: u64) {
        if n == 0 {
            return;
        }
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += n;
    }

    /// Counts one duration.
    pub fn record(&mut self, duration_us: u64) {
        let bucket = BOUNDS_US.partition_point(|b| *b < duration_us);
        self.add_to(bucket, 1);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (i, c) in other.counts.iter().enumerate() {
            self.add_to(i, *c);
        }
    }

    /// How many durations it holds.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..=1) in microseconds, interpolated linearly inside its bucket;
    /// `None` when empty. Durations above the last bound count as that bound.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let low = if i == 0 { 0 } else { BOUNDS_US[i - 1] } as f64;
                let Some(high) = BOUNDS_US.get(i) else {
                    return Some(low);
                };
                let within = (rank - seen as f64) / *c as f64;
                return Some(low + (*high as f64 - low) * within);
            }
            seen += c;
        }
        BOUNDS_US.last().map(|b| *b as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_buckets() {
        let mut h = Histogram::default();
        h.record(50);
        h.record(100);
        h.record(101);
        h.record(u64::MAX);
        assert_eq!(h.counts()[0], 2);
        assert_eq!(h.counts()[1], 1);
        assert_eq!(h.counts()[BOUNDS_US.len()], 1);
        assert_eq!(h.total(), 4);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let mut h = Histogram::default();
        for _ in 0..100 {
            h.record(1_500); // 1..2 ms
        }
        let p50 = h.quantile_us(0.5).unwrap();
        assert!((1_000.0..=2_000.0).contains(&p50), "{p50}");
        assert_eq!(Histogram::default().quantile_us(0.5), None);
        let mut slow = Histogram::default();
        slow.record(10);
        for _ in 0..99 {
            slow.record(250_000);
        }
        assert!(slow.quantile_us(0.99).unwrap() > 200_000.0);
        assert!(slow.quantile_us(0.01).unwrap() <= 100.0);
    }

    #[test]
    fn merged_histograms_add_up() {
        let mut a = Histogram::from_counts(&[1, 2]);
        a.merge(&Histogram::from_counts(&[0, 0, 3]));
        assert_eq!(a.counts(), &[1, 2, 3]);
        let extra =
            Histogram::from_counts(&[0; 40].iter().chain([&5]).copied().collect::<Vec<_>>());
        assert_eq!(extra.counts().len(), BOUNDS_US.len() + 1);
        assert_eq!(extra.total(), 5);
    }
}
