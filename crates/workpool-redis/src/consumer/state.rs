//! What the consumer's reader loop, its settler thread and the pool's
//! workers share.

use crate::stats::{Counters, Samples};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
    pub(crate) dead_stream: String,
    /// Pool capacity plus queue capacity: the most entries it may hold.
    pub(crate) room: usize,
    pub(crate) block: Duration,
    pub(crate) visibility_timeout: Duration,
    pub(crate) max_deliveries: u64,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
    /// How long a shutdown waits for held jobs to finish and be acked.
    pub(crate) shutdown_timeout: Duration,
}

impl Config {
    /// Before the `deliveries`-th run is retried: `backoff` doubled per
    /// delivery after the first, capped at `max_backoff` and at half the
    /// visibility timeout (a longer wait would let another consumer
    /// reclaim the entry as if this one had died).
    pub(crate) fn backoff_for(&self, deliveries: u64) -> Duration {
        let doublings = deliveries.saturating_sub(1).min(20) as u32;
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
            .min(self.visibility_timeout / 2)
    }
}

/// The entries the consumer holds, and the failed ones waiting for a retry.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Every entry pending under this consumer's name that it knows of:
    /// read or claimed, not yet acked or dead-lettered. Its length is the
    /// in-flight count that `XREADGROUP`'s `COUNT` keeps within `room`.
    pub(crate) ids: HashSet<String>,
    /// Failed entries (a subset of `ids`) and when to run them again.
    pub(crate) retries: BinaryHeap<Reverse<(Instant, String)>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) held: Mutex<Held>,
    /// Signalled when an entry is released from `held`, and on shutdown.
    pub(crate) released: Condvar,
    pub(crate) stop: AtomicBool,
    /// Set when a shutdown ran out of time: the settler stops retrying
    /// acks, and what it has not acked stays pending in Redis.
    pub(crate) abandon: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) pickup: Samples,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        Shared {
            config,
            held: Mutex::new(Held::default()),
            released: Condvar::new(),
            stop: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
            counters: Counters::default(),
            pickup: Samples::default(),
        }
    }

    pub(crate) fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub(crate) fn abandoned(&self) -> bool {
        self.abandon.load(Ordering::Acquire)
    }

    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let _held = self.held();
        self.released.notify_all();
    }
}
