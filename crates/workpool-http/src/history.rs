//! `/history`: the last five minutes of a pool's figures, one sample a
//! second, kept by a task the router starts, so that a dashboard opened now
//! draws them at once instead of starting from an empty chart.
//!
//! Each sample holds the snapshot ([`Stats`]) and the figures of the last
//! window ([`Stats::since`] the snapshot of about a window before: the
//! window of the router's `HealthPolicy`, 60 s by default), so a p99
//! drawn from them recovers once a bad minute is over, where the p99 since
//! the build never does.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;
use workpool::{Pool, Stats};

/// How often the router samples its pool.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// How many samples it keeps: five minutes at one a second.
pub(crate) const SAMPLES: usize = 300;

/// The body of `/history`: the pool's latest samples, oldest first, at
/// most 300 (five minutes at one a second). `/history?after=N` gives only
/// those whose `seq` is above `N`: what a page that has sample `N` lacks.
///
/// ```text
/// {"pool":"api","interval_seconds":1.0,"window_seconds":60.0,"taken":181,
///  "samples":[{"seq":0,"at_seconds":0.0,"stats":{...},"recent":{...}}, ...]}
/// ```
///
/// # Examples
///
/// ```
/// use axum::body::{to_bytes, Body};
/// use axum::http::Request;
/// use tower::ServiceExt;
/// use workpool_http::{History, PoolRouter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = workpool::Pool::builder().name("api").build()?;
/// // Built inside the runtime: the router samples its pool from now on.
/// let app: axum::Router = PoolRouter::new(pool).into_router();
/// let history = loop {
///     let response = app.clone().oneshot(Request::get("/history").body(Body::empty())?).await?;
///     let body = to_bytes(response.into_body(), usize::MAX).await?;
///     let history: History = serde_json::from_slice(&body)?;
///     if history.taken > 0 {
///         break history;
///     }
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// };
/// assert_eq!((history.pool.as_str(), history.window_seconds), ("api", 60.0));
/// assert_eq!(history.samples[0].seq, 0);
/// assert_eq!(history.samples[0].stats.submitted, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct History {
    /// The pool's name.
    pub pool: String,
    /// Seconds between two samples: 1.
    pub interval_seconds: f64,
    /// The window of each sample's `recent` figures, in seconds: the
    /// router's `HealthPolicy::error_window`.
    pub window_seconds: f64,
    /// Samples taken since the router started: the `seq` of the next one.
    /// Lower than a page's latest `seq` when the server restarted.
    pub taken: u64,
    /// The samples asked for, oldest first.
    pub samples: Vec<HistorySample>,
}

/// One sample of [`History`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistorySample {
    /// Its number: 0 for the router's first, one more for each after.
    pub seq: u64,
    /// When it was taken, in seconds since the first sample (the server's
    /// monotonic clock).
    pub at_seconds: f64,
    /// The pool's figures then, since its build.
    pub stats: Stats,
    /// The figures of the window that ended then: `stats` less the
    /// snapshot of about `window_seconds` before (up to an eighth of a
    /// window and a second more, never before the router's first sample). Its
    /// `uptime_seconds` is the length of that window; its gauges are those
    /// of `stats`.
    pub recent: Stats,
}

/// At most `capacity` items, oldest first: a push when full drops the
/// oldest. Its buffer is allocated once and never grows.
pub(crate) struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// An empty ring of room for `capacity` items, at least one.
    pub(crate) fn new(capacity: usize) -> Ring<T> {
        let capacity = capacity.max(1);
        Ring {
            items: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds `item` as the newest; returns the oldest if it had to go.
    pub(crate) fn push(&mut self, item: T) -> Option<T> {
        // Out first, so the length never passes the capacity and the
        // buffer never reallocates.
        let dropped = if self.items.len() == self.capacity {
            self.items.pop_front()
        } else {
            None
        };
        self.items.push_back(item);
        dropped
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.items.iter()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.items.len()
    }
}

/// The earlier snapshots a sample's `recent` figures are taken against:
/// the sampler's own, kept at most one per eighth of a window (about nine,
/// 5 KiB each with their histograms), rather than one per sample.
struct Baselines {
    window: Duration,
    kept: VecDeque<(Instant, Stats)>,
}

impl Baselines {
    fn new(window: Duration) -> Baselines {
        Baselines {
            window,
            kept: VecDeque::new(),
        }
    }

    /// The snapshot to take the window ending at `now` against: the newest
    /// kept one at least a window old, or, while none is that old, the
    /// oldest (the window then starts at the router's first sample).
    /// Older ones are of no more use, and go.
    fn baseline(&mut self, now: Instant) -> Option<&Stats> {
        let window = self.window;
        let old_enough = |taken: &Instant| now.saturating_duration_since(*taken) >= window;
        while self.kept.get(1).is_some_and(|(taken, _)| old_enough(taken)) {
            self.kept.pop_front();
        }
        self.kept.front().map(|(_, stats)| stats)
    }

    /// Keeps `stats`, taken at `at`, unless the newest kept one is less
    /// than an eighth of a window older: kept ones are then less than an
    /// eighth of a window and an interval apart, and a baseline less than
    /// that older than the window.
    fn keep(&mut self, at: Instant, stats: Stats) {
        let spaced = self
            .kept
            .back()
            .is_none_or(|(newest, _)| at.saturating_duration_since(*newest) >= self.window / 8);
        if spaced {
            self.kept.push_back((at, stats));
        }
    }
}

/// The samples, each kept as its JSON: a [`Stats`] holds its histogram
/// (about 5 KiB), which `/history` never serves, where a sample's JSON (two
/// `Stats`) is about 1.3 KB, so five minutes of them take about 400 KB.
struct Samples {
    ring: Ring<(u64, Box<RawValue>)>,
    taken: u64,
}

/// `/history`'s body as served: the samples as kept, in [`History`]'s shape.
#[derive(Serialize)]
pub(crate) struct HistoryBody<'a> {
    pool: &'a str,
    interval_seconds: f64,
    window_seconds: f64,
    taken: u64,
    samples: Vec<Box<RawValue>>,
}

/// A router's history: the samples, and the task that takes them.
pub(crate) struct Keeper {
    pool: Pool,
    window: Duration,
    samples: Arc<Mutex<Samples>>,
    running: OnceLock<Running>,
}

/// The sampling task; aborted when dropped, with the router's state, so
/// no task outlives the router.
struct Running(AbortHandle);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Keeper {
    /// A history of `pool`, whose samples' `recent` figures span `window`.
    /// Nothing is sampled until [`start`](Self::start).
    pub(crate) fn new(pool: Pool, window: Duration) -> Keeper {
        Keeper {
            pool,
            window,
            samples: Arc::new(Mutex::new(Samples {
                ring: Ring::new(SAMPLES),
                taken: 0,
            })),
            running: OnceLock::new(),
        }
    }

    /// Starts the sampling task on the tokio runtime this is called from,
    /// unless it runs already; outside a runtime, does nothing (the router
    /// calls it again on each request, which always runs in one).
    pub(crate) fn start(&self) {
        if self.running.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.running.get_or_init(|| {
            let task = sample(self.pool.clone(), self.window, Arc::clone(&self.samples));
            Running(runtime.spawn(task).abort_handle())
        });
    }

    /// The body of `/history?after=after`: the samples whose `seq` is above
    /// `after`, or all of them.
    pub(crate) fn body<'a>(&self, pool: &'a str, after: Option<u64>) -> HistoryBody<'a> {
        let samples = lock(&self.samples);
        let wanted = |seq: u64| after.is_none_or(|after| seq > after);
        // Newest first until the first one the page has, then in order.
        let mut picked: Vec<Box<RawValue>> = samples
            .ring
            .iter()
            .rev()
            .take_while(|(seq, _)| wanted(*seq))
            .map(|(_, json)| json.clone())
            .collect();
        picked.reverse();
        HistoryBody {
            pool,
            interval_seconds: INTERVAL.as_secs_f64(),
            window_seconds: self.window.as_secs_f64(),
            taken: samples.taken,
            samples: picked,
        }
    }
}

impl fmt::Debug for Keeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keeper")
            .field("window", &self.window)
            .field("taken", &lock(&self.samples).taken)
            .field("running", &self.running.get().is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it cannot leave the ring half-changed: each
    // change is one push.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sampling task: each [`INTERVAL`], a snapshot of `pool` and the
/// figures of its last `window`, into `samples`. Runs until aborted.
async fn sample(pool: Pool, window: Duration, samples: Arc<Mutex<Samples>>) {
    let mut ticks = tokio::time::interval(INTERVAL);
    // A late tick (a starved runtime) is not made up for by a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut baselines = Baselines::new(window);
    let mut first = None;
    loop {
        let at = ticks.tick().await.into_std();
        let first = *first.get_or_insert(at);
        let stats = pool.stats();
        let recent = match baselines.baseline(at) {
            Some(baseline) => stats.since(baseline),
            None => stats.since(&stats),
        };
        let seq = lock(&samples).taken;
        let sample = HistorySample {
            seq,
            at_seconds: at.saturating_duration_since(first).as_secs_f64(),
            stats,
            recent,
        };
        match serde_json::value::to_raw_value(&sample) {
            Ok(json) => {
                let mut samples = lock(&samples);
                samples.ring.push((seq, json));
                samples.taken = seq + 1;
            }
            // Never for these types (no map with non-string keys); a
            // sample lost is better than a sampler ended.
            Err(error) => tracing::warn!(%error, "a history sample could not be written"),
        }
        baselines.keep(at, sample.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_its_latest_items_in_order_and_drops_the_oldest() {
        let mut ring = Ring::new(3);
        assert_eq!(ring.iter().count(), 0);
        for n in 0..3 {
            assert_eq!(ring.push(n), None, "room for {n}");
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(ring.push(3), Some(0), "the oldest goes");
        assert_eq!(ring.push(4), Some(1));
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(ring.iter().rev().copied().collect::<Vec<_>>(), [4, 3, 2]);
    }

    #[test]
    fn a_ring_never_grows_past_its_capacity_nor_reallocates() {
        let mut ring = Ring::new(SAMPLES);
        let buffer = ring.items.capacity();
        assert!(buffer >= SAMPLES);
        for n in 0..10 * SAMPLES {
            ring.push(n);
            assert_eq!(ring.len(), (n + 1).min(SAMPLES));
        }
        assert_eq!(ring.items.capacity(), buffer, "the buffer never grew");
        // The last SAMPLES pushed, oldest first.
        assert!(ring.iter().copied().eq(9 * SAMPLES..10 * SAMPLES));
    }

    #[test]
    fn a_ring_of_no_room_keeps_one() {
        let mut ring = Ring::new(0);
        assert_eq!(ring.push('a'), None);
        assert_eq!(ring.push('b'), Some('a'));
        assert_eq!(ring.iter().copied().collect::<String>(), "b");
    }

    /// Snapshots told apart by their `submitted`.
    fn snapshots() -> impl Fn(u64) -> Stats {
        let pool = Pool::new(1).expect("a pool");
        let base = pool.stats();
        pool.release();
        move |submitted| {
            let mut stats = base.clone();
            stats.submitted = submitted;
            stats
        }
    }

    #[test]
    fn the_baseline_is_the_newest_snapshot_a_window_old() {
        let window = Duration::from_secs(8);
        let stats = snapshots();
        let mut baselines = Baselines::new(window);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(baselines.baseline(at(0)).is_none(), "nothing kept yet");
        // One a second; kept one per second (an eighth of 8 s).
        for s in 0..20 {
            if s > 0 {
                let baseline = baselines.baseline(at(s)).expect("one kept").submitted;
                // A window back, or the first while none is that old.
                assert_eq!(baseline, s.saturating_sub(8), "at {s} s");
            }
            baselines.keep(at(s), stats(s));
        }
        // Only what a later baseline may need is kept.
        assert!(baselines.kept.len() <= 10, "{}", baselines.kept.len());
    }

    #[test]
    fn baselines_are_kept_an_eighth_of_a_window_apart() {
        let window = Duration::from_secs(80);
        let stats = snapshots();
        let mut baselines = Baselines::new(window);
        let start = Instant::now();
        for s in 0..400u64 {
            let now = start + Duration::from_secs(s);
            if let Some(baseline) = baselines.baseline(now) {
                // Never younger than a window once one is that old, never
                // older than a window and an eighth.
                let age = s - baseline.submitted;
                assert!(s < 80 || (80..=90).contains(&age), "age {age} at {s} s");
            }
            baselines.keep(now, stats(s));
        }
        // A window and an eighth at 10 s apart, and the newest.
        assert!(baselines.kept.len() <= 11, "{}", baselines.kept.len());
    }
}
