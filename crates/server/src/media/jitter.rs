//! Send jitter of outbound audio: for every audio chunk, the actual send time minus the
//! scheduled send time, over all media sessions of a process (issue 12's "frame send jitter
//! p99 < 20 ms", reported by `dialtone bench voice`).
//!
//! A chunk's scheduled send time is when the pacing allows it: `send_ahead` before the audio
//! queued ahead of it will have finished playing, and not before the chunk existed (its
//! synthesis finished, or the cache answered). Lock-free: one atomic counter per millisecond.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Lateness is counted per millisecond up to this; later sends count in the last bucket
/// (and in `max`).
const BUCKETS: usize = 1_000;

/// A histogram of send lateness (ms), shared by every session of a [`super::Media`].
pub struct SendJitter {
    counts: Vec<AtomicU64>,
    max_us: AtomicU64,
}

impl Default for SendJitter {
    fn default() -> Self {
        Self { counts: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(), max_us: AtomicU64::new(0) }
    }
}

impl SendJitter {
    /// Records one chunk sent `late` after its scheduled time (zero when on time).
    pub fn record(&self, late: Duration) {
        let ms = usize::try_from(late.as_millis()).unwrap_or(BUCKETS).min(BUCKETS);
        self.counts[ms].fetch_add(1, Ordering::Relaxed);
        // A read first: the maximum rarely moves, and every session's every chunk comes here.
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        if us > self.max_us.load(Ordering::Relaxed) {
            self.max_us.fetch_max(us, Ordering::Relaxed);
        }
    }

    /// Chunks recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The `p`-quantile (0..=1) in whole ms (a chunk 0.4 ms late is in bucket 0), nearest
    /// rank; `None` before any chunk.
    pub fn quantile_ms(&self, p: f64) -> Option<u64> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((n as f64 * p).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        counts
            .iter()
            .position(|c| {
                seen += c;
                seen >= rank
            })
            .map(|ms| ms as u64)
    }

    /// `{"chunks", "p50_ms", "p99_ms", "max_ms"}` for reports.
    pub fn summary(&self) -> Value {
        let max_us = self.max_us.load(Ordering::Relaxed);
        json!({
            "chunks": self.count(),
            "p50_ms": self.quantile_ms(0.5),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": (self.count() > 0).then(|| max_us as f64 / 1000.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_send_lateness() {
        let j = SendJitter::default();
        assert_eq!(j.quantile_ms(0.99), None);
        for ms in 0..100u64 {
            j.record(Duration::from_micros(ms * 1000 + 400));
        }
        assert_eq!((j.count(), j.quantile_ms(0.5), j.quantile_ms(0.99)), (100, Some(49), Some(98)));
        j.record(Duration::from_secs(5));
        assert_eq!(j.quantile_ms(1.0), Some(1000), "later than a second: the last bucket");
        assert_eq!(j.summary()["max_ms"], 5000.0);
    }
}
