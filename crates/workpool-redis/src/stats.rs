//! `ConsumerStats`: the consumer's figures beside its pool's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use workpool::LatencySummary;

/// A snapshot of a consumer's figures: [`Consumer::stats`](crate::Consumer::stats),
/// and what [`Consumer::run`](crate::Consumer::run) returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Entries read with `XREADGROUP` (new ones and, at start, its own
    /// pending ones re-read).
    pub read: u64,
    /// Jobs acked (`XACK`) after their handler returned `Ok`.
    pub acked: u64,
    /// Failed runs scheduled to run again after a backoff.
    pub retried: u64,
    /// Jobs moved to the dead-letter stream (and acked there).
    pub dead_lettered: u64,
    /// Entries taken over from another consumer with `XAUTOCLAIM`.
    pub reclaimed: u64,
    /// Entries this consumer holds (pending under its name): running,
    /// queued in the pool, or waiting for a retry. Never above the pool's
    /// capacity plus its queue capacity. After `run` has returned: the
    /// failed jobs left pending for a later retry.
    pub in_flight: u64,
    /// From the entry's `XADD` to the start of its run, over the last
    /// 65,536 runs: the Redis server's clock at the read (a `TIME` sent in
    /// the same round trip) minus the time in the entry's ID (the server's
    /// clock at the `XADD`), plus this host's monotonic time from the
    /// read's reply to the run. No client's clock is read, so a job whose
    /// writer put any `enqueued_at_ms` in it, or a host whose clock is off,
    /// measures the same. Not recorded for an entry whose ID's time is
    /// after the server's clock (an ID a client named in `XADD` instead of
    /// `*`) or is not `{ms}-{seq}`: its `count` is then below the runs'.
    pub pickup_latency: LatencySummary,
    /// The pool's own figures.
    pub pool: workpool::Stats,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) read: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) reclaimed: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The last [`Samples::KEEP`] pickup latencies, a ring.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    ring: Mutex<(Vec<Duration>, usize, u64)>,
}

impl Samples {
    const KEEP: usize = 1 << 16;

    pub(crate) fn record(&self, d: Duration) {
        let mut g = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let (ring, next, count) = &mut *g;
        if ring.len() < Self::KEEP {
            ring.push(d);
        } else {
            ring[*next] = d;
        }
        *next = (*next + 1) % Self::KEEP;
        *count += 1;
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        let mut sorted = {
            let g = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            g.0.clone()
        };
        if sorted.is_empty() {
            return LatencySummary::default();
        }
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let total: Duration = sorted.iter().sum();
        LatencySummary {
            count: sorted.len() as u64,
            min: sorted[0],
            mean: total / sorted.len() as u32,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: sorted[sorted.len() - 1],
            sum: total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_1_to_100_ms() {
        let s = Samples::default();
        for ms in 1..=100 {
            s.record(Duration::from_millis(ms));
        }
        let sum = s.summary();
        assert_eq!(sum.count, 100);
        assert_eq!(sum.min, Duration::from_millis(1));
        assert_eq!(sum.max, Duration::from_millis(100));
        assert_eq!(sum.p99, Duration::from_millis(99));
    }
}
