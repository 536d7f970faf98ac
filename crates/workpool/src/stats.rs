//! What the pool has done and how long it took: `Stats`, latency
//! histograms, and the `HealthPolicy` that judges them.
//!
//! Recording is always on, so it must cost the hot path next to nothing:
//! - a worker counts the tasks it takes and completes on a cache line of
//!   its own, with a plain load and store (it is the only writer); a
//!   submitter counts nothing: `submitted` is what workers took, plus what
//!   is queued, plus what left the queue unrun (cancelled), so it lags by
//!   the few tasks on their way from a submit to a worker while the pool
//!   is busy, and is exact once it is idle;
//! - latencies are sampled by cost, not by count: a submitting thread
//!   stamps every task while it submits slowly (under about 20,000 tasks a
//!   second, [`FAST_SUBMIT_GAP`]), where timing costs nothing
//!   measurable, and one task in [`SAMPLE_EVERY`] while it submits faster
//!   (timing every task of `empty` cost 17 % of its throughput, one in 32
//!   about 4 %). The thread tells its rate from one clock read per
//!   [`SAMPLE_EVERY`] submits, the read that stamps its sampled task, so
//!   telling costs nothing more. A task that takes the pool's locked way
//!   (it wakes or starts a worker, or blocks) is always timed, since a
//!   clock read is small beside that. The worker times only the tasks
//!   stamped;
//! - histograms are log-linear buckets of cumulative counts, merged when
//!   read; a snapshot keeps its merged buckets, so that the figures of a
//!   window are the difference of two snapshots ([`Stats::since`]), which
//!   is how health judges recent figures (`Recorder::recent`).
//!
//! Build with `RUSTFLAGS="--cfg workpool_stats_off"` to compile recording
//! out, which is how its cost is measured (`workpool bench`, criterion).
//!
//! With the `serde` feature, `Stats`, `LatencySummary`, `Health` and
//! `HealthPolicy` are `Serialize` and `Deserialize`; see `mod seconds` for the
//! shape of their durations.

use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One submit in this many, per submitting thread, is timed while the
/// thread submits fast; it also checks its rate once per this many.
pub(crate) const SAMPLE_EVERY: u64 = 32;

/// A thread whose last [`SAMPLE_EVERY`] submits came this close together
/// on average (in nanoseconds) submits fast: above 20,000 tasks a second.
/// Timing a task costs about 50 ns (17 % of `empty`'s 294 ns a task in
/// docs/bench.md: three stamps of about 10 ns each with the time-stamp
/// counter, 24 ns with `Instant::now`, and two histogram records), so
/// below this rate timing every task costs at most 1 ms a second, 0.1 % of
/// one core.
pub(crate) const FAST_SUBMIT_GAP: u64 = 50_000;

/// Values below this many nanoseconds get a bucket each.
const LINEAR: usize = 16;
/// Sub-buckets per power of two above that: about 12 % wide.
const SUB_BITS: u32 = 3;
/// The largest exponent kept apart; longer times share the last buckets
/// (2^40 ns is about 18 minutes).
const MAX_EXP: u32 = 40;
const BUCKETS: usize = LINEAR + ((MAX_EXP - 4 + 1) as usize) * (1 << SUB_BITS);

/// A log-linear histogram of nanoseconds that several threads may record
/// into (rarely the same one at once) and anyone may read.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    fn record(&self, nanos: u64) {
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(nanos, Ordering::Relaxed);
        // Most values are neither: a load, not a read-modify-write.
        if nanos < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(nanos, Ordering::Relaxed);
        }
        if nanos > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(nanos, Ordering::Relaxed);
        }
    }

    fn add_to(&self, merged: &mut Merged) {
        for (into, bucket) in merged.buckets.iter_mut().zip(self.buckets.iter()) {
            *into += bucket.load(Ordering::Relaxed);
        }
        merged.sum += self.sum.load(Ordering::Relaxed);
        merged.min = merged.min.min(self.min.load(Ordering::Relaxed));
        merged.max = merged.max.max(self.max.load(Ordering::Relaxed));
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < LINEAR as u64 {
        return nanos as usize;
    }
    let exp = (63 - nanos.leading_zeros()).min(MAX_EXP);
    let sub = if exp == MAX_EXP && nanos >> MAX_EXP > 1 {
        (1 << SUB_BITS) - 1
    } else {
        ((nanos >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1)) as usize
    };
    LINEAR + (exp as usize - 4) * (1 << SUB_BITS) + sub
}

/// The largest value a bucket holds (the figure reported for it).
fn bucket_top(index: usize) -> u64 {
    if index < LINEAR {
        return index as u64;
    }
    let exp = (index - LINEAR) as u32 / (1 << SUB_BITS) + 4;
    let sub = (index - LINEAR) as u64 % (1 << SUB_BITS);
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + (sub + 1) * width - 1
}

/// Histograms summed over stripes, for one read.
struct Merged {
    buckets: Vec<u64>,
    sum: u64,
    min: u64,
    max: u64,
}

impl Merged {
    fn new() -> Merged {
        Merged {
            buckets: vec![0; BUCKETS],
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    fn summary(&self) -> LatencySummary {
        summarize(&self.buckets, self.sum, self.min, self.max)
    }
}

/// The summary of the values counted in `buckets`, whose total is `sum`
/// and which lie within `min..=max` (exact, or a bucket's bounds).
fn summarize(buckets: &[u64], sum: u64, min: u64, max: u64) -> LatencySummary {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return LatencySummary::default();
    }
    // A read races the recording of a task (its bucket counted, its min not
    // yet): keep the figures in order all the same.
    let min = min.min(max);
    let at = |q: f64| {
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                // Never above the largest value seen.
                return Duration::from_nanos(bucket_top(index).min(max).max(min));
            }
        }
        Duration::from_nanos(max)
    };
    LatencySummary {
        count,
        min: Duration::from_nanos(min),
        mean: Duration::from_nanos((sum / count).clamp(min, max)),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: Duration::from_nanos(max),
        sum: Duration::from_nanos(sum),
    }
}

/// The smallest value a bucket holds.
fn bucket_bottom(index: usize) -> u64 {
    match index {
        0 => 0,
        _ => bucket_top(index - 1) + 1,
    }
}

/// The summary of the tasks timed between two snapshots: `now`'s bucket
/// counts less `then`'s, with the sums of both. The window's shortest and
/// longest cannot be told from the cumulative ones (a minimum never goes
/// back up): they are the bounds of its lowest and highest buckets, within
/// about 12 % of the truth, and never outside the cumulative ones of `now`.
fn window(
    now: &[u64],
    then: &[u64],
    now_summary: &LatencySummary,
    then_summary: &LatencySummary,
) -> (LatencySummary, Vec<u64>) {
    let buckets: Vec<u64> = (0..now.len().max(then.len()))
        .map(|i| {
            let then = then.get(i).copied().unwrap_or(0);
            now.get(i).copied().unwrap_or(0).saturating_sub(then)
        })
        .collect();
    let (Some(lowest), Some(highest)) = (
        buckets.iter().position(|&n| n > 0),
        buckets.iter().rposition(|&n| n > 0),
    ) else {
        return (LatencySummary::default(), buckets);
    };
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    // The last bucket holds every longer value too: no top of its own.
    let top = match highest {
        last if last == BUCKETS - 1 => u64::MAX,
        index => bucket_top(index),
    };
    let max = top.min(nanos(now_summary.max));
    let min = bucket_bottom(lowest).max(nanos(now_summary.min));
    let sum = nanos(now_summary.sum.saturating_sub(then_summary.sum));
    (summarize(&buckets, sum, min, max), buckets)
}

/// Latencies of the sampled tasks, one stripe of the pool's.
struct Stripe {
    queue_wait: Histogram,
    run_time: Histogram,
}

/// A worker's own counts: written by that worker alone (a load and a store,
/// no read-modify-write), on a cache line of its own, read by `stats`.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounts {
    /// Tasks it took, counted before it runs them.
    taken: AtomicU64,
    /// Tasks it ran to their end.
    completed: AtomicU64,
}

impl WorkerCounts {
    #[inline]
    pub(crate) fn took(&self) {
        if !cfg!(workpool_stats_off) {
            bump(&self.taken);
        }
    }

    #[inline]
    pub(crate) fn completed(&self) {
        if !cfg!(workpool_stats_off) {
            bump(&self.completed);
        }
    }
}

/// `+1` by the one thread that writes `counter`.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The pool's figures, written as described in the module docs.
pub(crate) struct Recorder {
    stripes: Box<[CachePadded<Stripe>]>,
    /// The counts of live workers, and the sums of those that have exited.
    live: Mutex<Vec<std::sync::Arc<CachePadded<WorkerCounts>>>>,
    retired: WorkerCounts,
    /// Tasks that completed on a caller that ran them itself (a scope, or
    /// a join from a task of the pool), or keyed tasks run from their lane.
    completed_aside: AtomicU64,
    /// Keyed tasks run from their lane, and retried tasks whose wait was
    /// ended off a worker (neither taken from the queue by a worker):
    /// counted as taken.
    taken_aside: AtomicU64,
    /// Attempts of retried tasks that left their worker to wait: each such
    /// task is taken again when its wait is over, so each of these is
    /// left out of taken.
    left_to_retry: AtomicU64,
    /// Tasks of the pool's own that a worker took and completed but that
    /// stand for no task of the user's (the runner of a key's lane, whose
    /// tasks count aside): left out of taken and completed.
    own: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) workers_started: AtomicU64,
    pub(crate) workers_expired: AtomicU64,
    next_worker: AtomicUsize,
    /// The clock of sampled tasks: the CPU's time-stamp counter where it is
    /// usable (quanta calibrates it; a read costs about a third of
    /// `Instant::now` here), else the OS clock.
    clock: quanta::Clock,
    /// Where timestamps of sampled tasks count from.
    base: u64,
    /// Build or the latest reboot, for `uptime`.
    pub(crate) since: Mutex<Instant>,
    /// Snapshots taken by earlier health checks, oldest first, at least an
    /// eighth of a window apart (but the newest), from the newest one at
    /// least a window old: the baselines of `recent`.
    history: Mutex<std::collections::VecDeque<(Instant, Stats)>>,
}

/// At most this many snapshots in `Recorder::history` (each about 5 KiB):
/// checks with one window keep about nine; this bounds the memory of checks
/// whose windows differ.
const HISTORY: usize = 64;

/// What a submitting thread knows of its own rate, for `Recorder::sample`.
struct Sampler {
    /// Its submits so far.
    submits: Cell<u64>,
    /// The raw clock at its latest rate check, 0 before the first.
    checked_at: Cell<u64>,
    /// Its latest [`SAMPLE_EVERY`] submits came faster than one per
    /// [`FAST_SUBMIT_GAP`]: only one in [`SAMPLE_EVERY`] is timed.
    fast: Cell<bool>,
}

std::thread_local! {
    /// This thread's rate of submits, to any pool: what timing costs it
    /// depends on how often it submits, not where.
    static SAMPLER: Sampler = const {
        Sampler {
            submits: Cell::new(0),
            checked_at: Cell::new(0),
            fast: Cell::new(false),
        }
    };
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let stripes = (cpus * 4).next_power_of_two().clamp(4, 64);
        let now = Instant::now();
        let clock = quanta::Clock::new();
        Recorder {
            stripes: (0..stripes)
                .map(|_| {
                    CachePadded::new(Stripe {
                        queue_wait: Histogram::new(),
                        run_time: Histogram::new(),
                    })
                })
                .collect(),
            live: Mutex::new(Vec::new()),
            retired: WorkerCounts::default(),
            completed_aside: AtomicU64::new(0),
            taken_aside: AtomicU64::new(0),
            left_to_retry: AtomicU64::new(0),
            own: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            workers_started: AtomicU64::new(0),
            workers_expired: AtomicU64::new(0),
            next_worker: AtomicUsize::new(0),
            base: clock.raw(),
            clock,
            since: Mutex::new(now),
            history: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// A task is being submitted: its timestamp if it is to be timed (every
    /// one while this thread submits slowly, one in [`SAMPLE_EVERY`] while
    /// it submits fast), else 0.
    #[inline]
    pub(crate) fn sample(&self) -> u64 {
        if cfg!(workpool_stats_off) {
            return 0;
        }
        SAMPLER.with(|sampler| {
            let n = sampler.submits.get();
            sampler.submits.set(n.wrapping_add(1));
            if n % SAMPLE_EVERY == 0 {
                self.check_rate(sampler)
            } else if sampler.fast.get() {
                // The hot path at high rates: a thread-local load, an add
                // and two tests, no clock.
                0
            } else {
                self.stamp()
            }
        })
    }

    /// One submit in [`SAMPLE_EVERY`]: stamps it, and from the same clock
    /// read tells whether the thread's last [`SAMPLE_EVERY`] submits came
    /// fast. The raw clock is the same counter for every pool's `Clock`, so
    /// a thread that submits to several is judged by all its submits.
    #[inline(never)]
    fn check_rate(&self, sampler: &Sampler) -> u64 {
        let raw = self.clock.raw();
        let last = sampler.checked_at.replace(raw);
        // The first submit of a thread has no rate yet: slow until told.
        let fast =
            last != 0 && self.clock.delta_as_nanos(last, raw) < SAMPLE_EVERY * FAST_SUBMIT_GAP;
        sampler.fast.set(fast);
        self.clock.delta_as_nanos(self.base, raw) + 1
    }

    /// [`stamp`](Self::stamp), or 0 when recording is compiled out.
    pub(crate) fn stamp_unless_off(&self) -> u64 {
        if cfg!(workpool_stats_off) {
            0
        } else {
            self.stamp()
        }
    }

    /// Now, as a task timestamp (never 0).
    pub(crate) fn stamp(&self) -> u64 {
        self.clock.delta_as_nanos(self.base, self.clock.raw()) + 1
    }

    /// A worker starts: its number (which picks its stripe) and its counts.
    pub(crate) fn worker_started(&self) -> (usize, std::sync::Arc<CachePadded<WorkerCounts>>) {
        let counts = std::sync::Arc::new(CachePadded::new(WorkerCounts::default()));
        lock(&self.live).push(std::sync::Arc::clone(&counts));
        (self.next_worker.fetch_add(1, Ordering::Relaxed), counts)
    }

    /// A worker exits: its counts join the retired ones, in one step under
    /// the lock `stats` reads them with.
    pub(crate) fn worker_exited(&self, counts: &std::sync::Arc<CachePadded<WorkerCounts>>) {
        let mut live = lock(&self.live);
        live.retain(|other| !std::sync::Arc::ptr_eq(other, counts));
        self.retired
            .taken
            .fetch_add(counts.taken.load(Ordering::Relaxed), Ordering::Relaxed);
        self.retired
            .completed
            .fetch_add(counts.completed.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// A task ran to its end on a caller that took it from the pool.
    pub(crate) fn completed_aside(&self) {
        self.completed_aside.fetch_add(1, Ordering::Relaxed);
    }

    /// A task ran off the queue: a keyed task from its lane, or a retried
    /// task whose wait was ended where it was held; `completed`: to its
    /// end (a panic or a cancel is counted where it happens).
    pub(crate) fn ran_aside(&self, completed: bool) {
        self.taken_aside.fetch_add(1, Ordering::Relaxed);
        if completed {
            self.completed_aside.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A retried task left its worker to wait for its next attempt: the
    /// worker counted it as taken, and counts it again when it comes back.
    pub(crate) fn left_to_retry(&self) {
        self.left_to_retry.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker ran a task of the pool's own (a lane's runner), which it
    /// counts as taken and completed like any.
    pub(crate) fn own_task_ran(&self) {
        self.own.fetch_add(1, Ordering::Relaxed);
    }

    /// The times of a sampled task, recorded by the worker numbered `worker`.
    pub(crate) fn timed(&self, worker: usize, submitted: u64, started: u64, ended: u64) {
        let stripe = &self.stripes[worker & (self.stripes.len() - 1)];
        stripe.queue_wait.record(started.saturating_sub(submitted));
        stripe.run_time.record(ended.saturating_sub(started));
    }

    /// `(taken, completed)`: tasks workers took, and tasks that completed.
    pub(crate) fn taken_and_completed(&self) -> (u64, u64) {
        // A runner is counted in `own` once it starts, as taken before and
        // as completed when it ends: until then the difference lags by it,
        // as `submitted` lags a task on its way (never below zero).
        let own = self.own.load(Ordering::Relaxed);
        let left = self.left_to_retry.load(Ordering::Relaxed);
        let live = lock(&self.live);
        let mut taken =
            self.retired.taken.load(Ordering::Relaxed) + self.taken_aside.load(Ordering::Relaxed);
        let mut completed = self.retired.completed.load(Ordering::Relaxed)
            + self.completed_aside.load(Ordering::Relaxed);
        for counts in live.iter() {
            taken += counts.taken.load(Ordering::Relaxed);
            completed += counts.completed.load(Ordering::Relaxed);
        }
        (
            taken.saturating_sub(own).saturating_sub(left),
            completed.saturating_sub(own),
        )
    }

    /// The summaries of queue wait and run time since the build, and the
    /// bucket counts they were drawn from.
    pub(crate) fn latencies(&self) -> (LatencySummary, LatencySummary, Buckets) {
        let mut wait = Merged::new();
        let mut run = Merged::new();
        for stripe in self.stripes.iter() {
            stripe.queue_wait.add_to(&mut wait);
            stripe.run_time.add_to(&mut run);
        }
        let (queue_wait, run_time) = (wait.summary(), run.summary());
        let buckets = Buckets {
            queue_wait: wait.buckets,
            run_time: run.buckets,
        };
        (queue_wait, run_time, buckets)
    }

    /// The figures of the last `window`, for a health check: `now` less the
    /// snapshot of the newest check made at least `window` ago, or `now`
    /// whole (since the build) while no check is that old: a burst is
    /// judged for a whole window after the first check that saw it, never
    /// forgotten sooner. Remembers `now` for later checks, at most one
    /// snapshot per eighth of a window (a newer one replaces the newest
    /// while they are closer), so a window may reach back up to an eighth
    /// further, plus the time between two checks.
    pub(crate) fn recent(&self, now: &Stats, window: Duration) -> Stats {
        let at = Instant::now();
        let cutoff = at.checked_sub(window);
        let old_enough = |taken: &Instant| cutoff.is_some_and(|cutoff| *taken <= cutoff);
        let mut history = lock(&self.history);
        // The newest snapshot old enough is the baseline: older ones are of
        // no more use.
        while history.get(1).is_some_and(|(taken, _)| old_enough(taken)) {
            history.pop_front();
        }
        let recent = match history.front() {
            Some((taken, baseline)) if old_enough(taken) => now.since(baseline),
            _ => now.clone(),
        };
        let len = history.len();
        let crowded =
            len >= 2 && history[len - 1].0.duration_since(history[len - 2].0) < window / 8;
        if crowded {
            history[len - 1] = (at, now.clone());
        } else {
            history.push_back((at, now.clone()));
        }
        if history.len() > HISTORY {
            history.pop_front();
        }
        recent
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Recorder { .. }")
    }
}

/// The serde shape of every `Duration` of the figures: seconds, as an
/// `f64`, in a field whose name ends in `_seconds` (`p99_seconds`,
/// `uptime_seconds`, `error_window_seconds`).
///
/// Why not serde's own `{"secs": 0, "nanos": 1200000}`: these figures are
/// logged, graphed and queried (jq, a log pipeline, a dashboard's
/// script), where a single number with its unit in its name is what every
/// tool reads, and what Prometheus' `_seconds` figures already use. An
/// `f64` holds a `Duration` to the nanosecond up to 2^23 s (97 days), so a
/// round trip gives back the very same `Duration` for any latency or
/// window, and one within a few nanoseconds for a longer uptime.
///
/// Reading one back, a negative, infinite or NaN number of seconds (or one
/// beyond `Duration::MAX`) is an error that names the value and why.
#[cfg(feature = "serde")]
mod seconds {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        // One division of the whole nanoseconds (exact in an `f64` below
        // 2^53) gives the `f64` nearest the decimal figure, which then
        // prints as that decimal: 1.846246167, where `as_secs_f64` (whole
        // seconds plus nanoseconds / 1e9, rounded twice) prints
        // 1.8462461669999999.
        let nanos = duration.as_nanos();
        let seconds = if nanos < 1 << 53 {
            nanos as f64 / 1e9
        } else {
            duration.as_secs_f64()
        };
        serializer.serialize_f64(seconds)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(|error| {
            de::Error::custom(format_args!(
                "{seconds:?} is not a duration in seconds: {error}"
            ))
        })
    }
}

/// A summary of timed latencies, from a task's submit to its start (queue
/// wait) and from its start to its end (run time).
///
/// What is timed: every task a thread submits while it submits fewer than
/// about 20,000 a second (timing is then too cheap to measure), and every
/// task that wakes or starts a worker, or waits for room; of the tasks a
/// thread submits faster than that while every worker is busy, one in 32.
/// So `count` is the number of tasks timed, not of tasks run, under load.
///
/// Percentiles are accurate to about 12 % (the width of a histogram
/// bucket), never above `max`. In a summary of a window
/// ([`Stats::since`]), `min` and `max` are that accurate too: they are the
/// bounds of the lowest and highest buckets the window's tasks fell in.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let pool = workpool::Pool::new(2)?;
/// for _ in 0..3 {
///     pool.spawn(|| std::thread::sleep(Duration::from_millis(1)))?.join()?;
/// }
/// pool.wait_idle(Duration::from_secs(10))?;
/// let run = pool.stats().run_time;
/// assert_eq!(run.count, 3); // a trickle: every task is timed
/// assert!(run.min >= Duration::from_millis(1));
/// assert!(run.min <= run.p50 && run.p50 <= run.p99 && run.p99 <= run.max);
/// assert!(run.sum >= 3 * run.min && run.sum <= 3 * run.max);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// With the `serde` feature, its JSON has each duration in seconds (an
/// `f64`), the field named with a `_seconds` suffix:
///
/// ```text
/// {"count":3,"min_seconds":0.001048575,"mean_seconds":0.001063006,
///  "p50_seconds":0.001048575,"p90_seconds":0.001114111,"p99_seconds":0.001114111,
///  "max_seconds":0.001114111,"sum_seconds":0.003189018}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LatencySummary {
    /// Tasks timed.
    pub count: u64,
    /// The shortest.
    #[cfg_attr(feature = "serde", serde(rename = "min_seconds", with = "seconds"))]
    pub min: Duration,
    /// The mean.
    #[cfg_attr(feature = "serde", serde(rename = "mean_seconds", with = "seconds"))]
    pub mean: Duration,
    /// The median.
    #[cfg_attr(feature = "serde", serde(rename = "p50_seconds", with = "seconds"))]
    pub p50: Duration,
    /// 90 % were at most this.
    #[cfg_attr(feature = "serde", serde(rename = "p90_seconds", with = "seconds"))]
    pub p90: Duration,
    /// 99 % were at most this.
    #[cfg_attr(feature = "serde", serde(rename = "p99_seconds", with = "seconds"))]
    pub p99: Duration,
    /// The longest.
    #[cfg_attr(feature = "serde", serde(rename = "max_seconds", with = "seconds"))]
    pub max: Duration,
    /// The total of the `count` durations timed (exact, not bucketed): over
    /// a window, `run_time.sum` divided by the window's length is the mean
    /// number of workers busy with timed tasks, a rate a control loop can
    /// act on.
    #[cfg_attr(feature = "serde", serde(rename = "sum_seconds", with = "seconds"))]
    pub sum: Duration,
}

/// The bucket counts behind a [`Stats`]' two latency summaries (indices as
/// `bucket_of`; empty where none were read), kept so that
/// [`Stats::since`] can subtract one snapshot from another.
#[derive(Clone, PartialEq, Default)]
pub(crate) struct Buckets {
    queue_wait: Vec<u64>,
    run_time: Vec<u64>,
}

impl Buckets {
    /// Adds `other`'s counts to these, bucket by bucket.
    fn add(&mut self, other: &Buckets) {
        for (into, from) in [
            (&mut self.queue_wait, &other.queue_wait),
            (&mut self.run_time, &other.run_time),
        ] {
            if into.len() < from.len() {
                into.resize(from.len(), 0);
            }
            for (into, from) in into.iter_mut().zip(from) {
                *into += from;
            }
        }
    }
}

impl fmt::Debug for Buckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hundreds of counts, which the summaries beside them sum up.
        f.debug_struct("Buckets").finish_non_exhaustive()
    }
}

/// A snapshot of a pool's figures: [`Pool::stats`](crate::Pool::stats).
///
/// Counts are since the pool was built; [`since`](Self::since) gives those
/// of a window between two snapshots. Once the pool is idle,
/// `submitted == completed + panicked + cancelled`, unless an `on_complete`
/// callback or the `Drop` of a cancelled task's closure panicked, or an
/// input of a [`Pool::map`](crate::Pool::map) did (a map runs its inputs
/// in chunks, one task each): such a panic is counted in `panicked` beside
/// the task's own outcome. Keyed tasks count one each, as any task, and so
/// do delayed ones (from their acceptance, though held out of the queue).
///
/// # Serialization
///
/// With the `serde` feature, a `Stats` is `Serialize` and `Deserialize`:
/// every public field under its own name, durations in seconds in fields
/// named `*_seconds` (the [`LatencySummary`] shape), `capacity` `null`
/// when unbounded, and `pools` left out for a single pool (empty):
///
/// ```text
/// {"submitted":3,"completed":3,"panicked":0,"cancelled":0,"timed_out":0,"rejected":0,
///  "workers":2,"idle":2,"busy":0,"waiting":0,"queued":0,"capacity":2,
///  "workers_started":2,"workers_expired":0,"uptime_seconds":0.004521372,
///  "queue_wait":{"count":3,"min_seconds":0.000011263,...,"sum_seconds":0.000098304},
///  "run_time":{"count":3,"min_seconds":0.001048575,...,"sum_seconds":0.003189018}}
/// ```
///
/// The histogram behind the latency summaries (hundreds of bucket counts)
/// is not written: a `Stats` read back has every public figure, equal to
/// the one written, but no histogram, so [`since`](Self::since) needs its
/// `earlier` snapshot (and itself) from [`Pool::stats`](crate::Pool::stats)
/// in this process to give the latencies of a window; take the window
/// before writing it (`now.since(&earlier)` serializes as any `Stats`).
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let pool = workpool::Pool::builder().capacity(2).build()?;
/// pool.spawn(|| ())?.join()?;
/// pool.wait_idle(std::time::Duration::from_secs(10))?;
/// let json = serde_json::to_value(pool.stats())?;
/// assert_eq!(json["capacity"], 2);
/// assert!(json["uptime_seconds"].as_f64().unwrap() > 0.0);
/// assert_eq!(json["run_time"]["count"], 1);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// Tasks accepted (not the refused ones).
    pub submitted: u64,
    /// Tasks that ran to the end without panicking. A task is counted on
    /// its worker just after its handle learns the result, so a `join` may
    /// return a moment before the count moves; once
    /// [`wait_idle`](crate::Pool::wait_idle) returns, every finished task
    /// is counted.
    pub completed: u64,
    /// Tasks that panicked (and panicking `on_complete` callbacks).
    pub panicked: u64,
    /// Tasks that never started: cancelled by their handle, a token, a
    /// deadline or `release`.
    pub cancelled: u64,
    /// Tasks whose deadline passed, whether they had started or not.
    pub timed_out: u64,
    /// Tasks refused at the call (`Closed`, `Overloaded`, `WouldDeadlock`,
    /// `Timeout`, `SpawnFailed`).
    pub rejected: u64,
    /// Live workers, as [`Pool::workers`](crate::Pool::workers).
    pub workers: usize,
    /// Idle workers, as [`Pool::idle`](crate::Pool::idle).
    pub idle: usize,
    /// Busy workers, as [`Pool::busy`](crate::Pool::busy).
    pub busy: usize,
    /// Blocked submitters, as [`Pool::waiting`](crate::Pool::waiting).
    pub waiting: usize,
    /// Queued tasks, as [`Pool::queued`](crate::Pool::queued).
    pub queued: usize,
    /// The capacity; `None` if unbounded.
    pub capacity: Option<usize>,
    /// Worker threads started.
    pub workers_started: u64,
    /// Workers ended by idle expiry.
    pub workers_expired: u64,
    /// Since the pool was built, or last rebooted.
    #[cfg_attr(feature = "serde", serde(rename = "uptime_seconds", with = "seconds"))]
    pub uptime: Duration,
    /// From submit to start, of the tasks timed.
    pub queue_wait: LatencySummary,
    /// From start to end, of the tasks timed.
    pub run_time: LatencySummary,
    /// One entry per pool of a [`MultiPool`](crate::MultiPool), by index;
    /// empty for a single pool.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub pools: Vec<Stats>,
    /// The buckets `queue_wait` and `run_time` were drawn from, for `since`.
    /// Not serialized: see the type's docs.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) buckets: Buckets,
}

impl Stats {
    /// Tasks that have ended: completed, panicked or cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(2)?;
    /// pool.submit(|| ())?;
    /// assert!(pool.spawn(|| -> u32 { panic!("boom") })?.join().is_err());
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// let stats = pool.stats();
    /// assert_eq!((stats.completed, stats.panicked), (1, 1));
    /// assert_eq!(stats.finished(), 2);
    /// assert_eq!(stats.finished(), stats.submitted);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finished(&self) -> u64 {
        self.completed + self.panicked + self.cancelled
    }

    /// The figures of the window between `earlier` and this snapshot, both
    /// of the same pool: each count is what happened in between, the
    /// latency summaries are of the tasks timed in between (from the
    /// difference of the two snapshots' histograms), and `uptime` is the
    /// window's length (zero if the pool was rebooted in between). The
    /// gauges (`workers`, `idle`, `busy`, `waiting`, `queued`, `capacity`)
    /// are this snapshot's. For a [`MultiPool`](crate::MultiPool)'s, each
    /// pool is subtracted from the same pool of `earlier`, and the sum is
    /// taken as [`MultiPool::stats`](crate::MultiPool::stats) takes it.
    ///
    /// Counts that went down (snapshots given in the wrong order, or of
    /// different pools) count as zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(2)?;
    /// pool.spawn(|| ())?.join()?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// let earlier = pool.stats();
    /// for _ in 0..3 {
    ///     pool.spawn(|| std::thread::sleep(Duration::from_millis(2)))?.join()?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// let recent = pool.stats().since(&earlier);
    /// assert_eq!((recent.submitted, recent.completed), (3, 3));
    /// assert_eq!(recent.run_time.count, 3);
    /// // Within a bucket (about 12 %) of the 2 ms each slept.
    /// assert!(recent.run_time.min >= Duration::from_micros(1750));
    /// assert!(recent.run_time.sum >= Duration::from_millis(6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn since(&self, earlier: &Stats) -> Stats {
        if !self.pools.is_empty() {
            let pools = self
                .pools
                .iter()
                .enumerate()
                .map(|(index, pool)| match earlier.pools.get(index) {
                    Some(then) => pool.since(then),
                    None => pool.clone(),
                })
                .collect();
            let mut total = Stats::sum(pools);
            // A multi-pool counts its own refusals beside its pools'.
            total.rejected = self.rejected.saturating_sub(earlier.rejected);
            return total;
        }
        let (queue_wait, queue_wait_buckets) = window(
            &self.buckets.queue_wait,
            &earlier.buckets.queue_wait,
            &self.queue_wait,
            &earlier.queue_wait,
        );
        let (run_time, run_time_buckets) = window(
            &self.buckets.run_time,
            &earlier.buckets.run_time,
            &self.run_time,
            &earlier.run_time,
        );
        Stats {
            submitted: self.submitted.saturating_sub(earlier.submitted),
            completed: self.completed.saturating_sub(earlier.completed),
            panicked: self.panicked.saturating_sub(earlier.panicked),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
            timed_out: self.timed_out.saturating_sub(earlier.timed_out),
            rejected: self.rejected.saturating_sub(earlier.rejected),
            workers: self.workers,
            idle: self.idle,
            busy: self.busy,
            waiting: self.waiting,
            queued: self.queued,
            capacity: self.capacity,
            workers_started: self.workers_started.saturating_sub(earlier.workers_started),
            workers_expired: self.workers_expired.saturating_sub(earlier.workers_expired),
            uptime: self.uptime.saturating_sub(earlier.uptime),
            queue_wait,
            run_time,
            pools: Vec::new(),
            buckets: Buckets {
                queue_wait: queue_wait_buckets,
                run_time: run_time_buckets,
            },
        }
    }

    /// Panicked tasks over finished ones, 0 when none finished.
    pub(crate) fn error_rate(&self) -> f64 {
        match self.finished() {
            0 => 0.0,
            finished => self.panicked as f64 / finished as f64,
        }
    }

    /// The sum of several pools' figures (a `MultiPool`'s); latencies are
    /// the worst of theirs, counts summed.
    pub(crate) fn sum(pools: Vec<Stats>) -> Stats {
        let mut total = Stats {
            submitted: 0,
            completed: 0,
            panicked: 0,
            cancelled: 0,
            timed_out: 0,
            rejected: 0,
            workers: 0,
            idle: 0,
            busy: 0,
            waiting: 0,
            queued: 0,
            capacity: Some(0),
            workers_started: 0,
            workers_expired: 0,
            uptime: Duration::ZERO,
            queue_wait: LatencySummary::default(),
            run_time: LatencySummary::default(),
            pools: Vec::new(),
            buckets: Buckets::default(),
        };
        for s in &pools {
            total.submitted += s.submitted;
            total.completed += s.completed;
            total.panicked += s.panicked;
            total.cancelled += s.cancelled;
            total.timed_out += s.timed_out;
            total.rejected += s.rejected;
            total.workers += s.workers;
            total.idle += s.idle;
            total.busy += s.busy;
            total.waiting += s.waiting;
            total.queued += s.queued;
            total.capacity = total.capacity.zip(s.capacity).map(|(a, b)| a + b);
            total.workers_started += s.workers_started;
            total.workers_expired += s.workers_expired;
            total.uptime = total.uptime.max(s.uptime);
            total.queue_wait = worst(total.queue_wait, s.queue_wait);
            total.run_time = worst(total.run_time, s.run_time);
            total.buckets.add(&s.buckets);
        }
        total.pools = pools;
        total
    }
}

/// Combines two summaries: counts and sums add, each figure the larger (a
/// mean weighted by count).
fn worst(a: LatencySummary, b: LatencySummary) -> LatencySummary {
    if a.count == 0 {
        return b;
    }
    if b.count == 0 {
        return a;
    }
    let count = a.count + b.count;
    let mean = (a.mean.as_nanos() * u128::from(a.count) + b.mean.as_nanos() * u128::from(b.count))
        / u128::from(count);
    LatencySummary {
        count,
        min: a.min.min(b.min),
        mean: Duration::from_nanos(mean as u64),
        p50: a.p50.max(b.p50),
        p90: a.p90.max(b.p90),
        p99: a.p99.max(b.p99),
        max: a.max.max(b.max),
        sum: a.sum + b.sum,
    }
}

/// Thresholds a pool is judged by ([`Pool::health`](crate::Pool::health));
/// each field gives its default. Build one with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use workpool::HealthPolicy;
///
/// let strict = HealthPolicy { max_waiting: 10, ..HealthPolicy::default() };
/// assert_eq!(strict.max_error_rate, 0.1);
/// ```
///
/// With the `serde` feature it reads from (and writes to) a configuration:
/// the durations in seconds, in fields named `error_window_seconds` and
/// `max_queue_wait_p99_seconds`; a field left out takes its default.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use workpool::HealthPolicy;
///
/// let policy: HealthPolicy =
///     serde_json::from_str(r#"{"max_waiting": 10, "error_window_seconds": 30}"#)?;
/// assert_eq!(policy.max_waiting, 10);
/// assert_eq!(policy.error_window, Duration::from_secs(30));
/// assert_eq!(policy.max_queue_wait_p99, Duration::from_secs(1)); // the default
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct HealthPolicy {
    /// Panicked tasks over finished ones, within `error_window`. Default 0.1.
    pub max_error_rate: f64,
    /// The window of recent figures a check judges: the error rate AND the
    /// p99 of queue wait are measured over it, so a burst stops counting
    /// once it is this old (the gauges are judged as they are now). The
    /// baseline is the snapshot of the newest earlier check at least this
    /// old (checks keep one per eighth of a window, so the window may reach
    /// back up to an eighth further, plus the time between two checks);
    /// while no check is that old, the figures since the build are judged,
    /// so a burst is never forgotten before a whole window. Default 60 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{HealthPolicy, Pool};
    ///
    /// let policy = HealthPolicy {
    ///     error_window: Duration::from_millis(100),
    ///     ..HealthPolicy::default()
    /// };
    /// let pool = Pool::new(2)?;
    /// std::panic::set_hook(Box::new(|_| {})); // quiet: the panic is on purpose
    /// assert!(pool.spawn(|| panic!("once"))?.join().is_err());
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert!(!pool.health(&policy).healthy, "100 % of the tasks panicked");
    /// // A window later, the panic is forgotten.
    /// std::thread::sleep(Duration::from_millis(150));
    /// pool.spawn(|| ())?.join()?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// let health = pool.health(&policy);
    /// assert!(health.healthy, "{:?}", health.problems);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg_attr(
        feature = "serde",
        serde(rename = "error_window_seconds", with = "seconds")
    )]
    pub error_window: Duration,
    /// Callers blocked in `submit`. Default 100.
    pub max_waiting: usize,
    /// Busy workers over the capacity (0 to 1). Default 0.9: at 1.0 every
    /// worker is busy.
    pub max_saturation: f64,
    /// Queued tasks. Default 1,000.
    pub max_queued: usize,
    /// p99 of the time from submit to start, of the tasks timed within
    /// `error_window`. Default 1 s.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "max_queue_wait_p99_seconds", with = "seconds")
    )]
    pub max_queue_wait_p99: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            max_error_rate: 0.1,
            error_window: Duration::from_secs(60),
            max_waiting: 100,
            max_saturation: 0.9,
            max_queued: 1000,
            max_queue_wait_p99: Duration::from_secs(1),
        }
    }
}

/// The verdict of a [`HealthPolicy`] on a pool. With the `serde` feature
/// its JSON is `{"healthy":false,"problems":["3 tasks are queued, above the
/// limit of 2"]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Health {
    /// No threshold is breached.
    pub healthy: bool,
    /// One sentence per breach, with the figure and the threshold.
    pub problems: Vec<String>,
}

impl Health {
    /// Judges `stats`, the figures of the policy's window
    /// (`Recorder::recent`), by `policy`; `error_rate` is measured by the
    /// caller over that window (a multi-pool's is its worst pool's).
    pub(crate) fn judge(stats: &Stats, policy: &HealthPolicy, error_rate: f64) -> Health {
        let mut problems = Vec::new();
        if error_rate > policy.max_error_rate {
            problems.push(format!(
                "error rate {:.1} % is above the limit of {:.1} % (panicked tasks over finished ones in the last {:?})",
                error_rate * 100.0,
                policy.max_error_rate * 100.0,
                policy.error_window
            ));
        }
        if stats.waiting > policy.max_waiting {
            problems.push(format!(
                "{} callers are blocked in submit, above the limit of {}",
                stats.waiting, policy.max_waiting
            ));
        }
        if let Some(capacity) = stats.capacity.filter(|&c| c > 0) {
            let saturation = stats.busy as f64 / capacity as f64;
            if saturation > policy.max_saturation {
                problems.push(format!(
                    "saturation {:.0} % ({} of {} workers busy) is above the limit of {:.0} %",
                    saturation * 100.0,
                    stats.busy,
                    capacity,
                    policy.max_saturation * 100.0
                ));
            }
        }
        if stats.queued > policy.max_queued {
            problems.push(format!(
                "{} tasks are queued, above the limit of {}",
                stats.queued, policy.max_queued
            ));
        }
        if stats.queue_wait.count > 0 && stats.queue_wait.p99 > policy.max_queue_wait_p99 {
            problems.push(format!(
                "p99 queue wait {:?} is above the limit of {:?} (tasks timed in the last {:?})",
                stats.queue_wait.p99, policy.max_queue_wait_p99, policy.error_window
            ));
        }
        Health {
            healthy: problems.is_empty(),
            problems,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_with_the_value_and_hold_it() {
        let mut last = 0;
        for nanos in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            1_000,
            123_456,
            1 << 39,
            1 << 41,
            u64::MAX,
        ] {
            let index = bucket_of(nanos);
            assert!(index >= last, "bucket of {nanos} went down");
            assert!(index < BUCKETS);
            if nanos < 1 << MAX_EXP {
                assert!(
                    bucket_top(index) >= nanos,
                    "bucket {index} tops below {nanos}"
                );
            }
            last = index;
        }
    }

    #[test]
    fn percentiles_come_within_a_bucket_of_the_truth() {
        let histogram = Histogram::new();
        for micros in 1..=1000u64 {
            histogram.record(micros * 1000);
        }
        let mut merged = Merged::new();
        histogram.add_to(&mut merged);
        let summary = merged.summary();
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.min, Duration::from_micros(1));
        assert_eq!(summary.max, Duration::from_micros(1000));
        for (got, want) in [(summary.p50, 500), (summary.p90, 900), (summary.p99, 990)] {
            let want = Duration::from_micros(want);
            assert!(
                got >= want && got <= want + want / 7,
                "{got:?} for {want:?}"
            );
        }
    }

    /// A snapshot of `histogram` as `Stats` keeps it: the run-time summary
    /// and its buckets.
    fn snapshot(histogram: &Histogram) -> Stats {
        let mut merged = Merged::new();
        histogram.add_to(&mut merged);
        Stats {
            run_time: merged.summary(),
            buckets: Buckets {
                queue_wait: Vec::new(),
                run_time: merged.buckets,
            },
            ..Stats::sum(Vec::new())
        }
    }

    #[test]
    fn a_window_summarises_only_what_was_recorded_after_its_baseline() {
        let histogram = Histogram::new();
        for micros in [1u64, 2, 5_000_000] {
            histogram.record(micros * 1000);
        }
        let earlier = snapshot(&histogram);
        for micros in 100..200u64 {
            histogram.record(micros * 1000);
        }
        let later = snapshot(&histogram);
        let run = later.since(&earlier).run_time;
        assert_eq!(run.count, 100);
        assert_eq!(run.sum, later.run_time.sum - earlier.run_time.sum);
        assert_eq!(run.mean, Duration::from_nanos(14_950_000 / 100));
        // Not the 1 us and 5 s of before the baseline: the bounds of the
        // buckets 100 us and 199 us fell in.
        let (lowest, highest) = (bucket_of(100_000), bucket_of(199_000));
        assert_eq!(run.min, Duration::from_nanos(bucket_bottom(lowest)));
        assert_eq!(run.max, Duration::from_nanos(bucket_top(highest)));
        assert!(run.min <= Duration::from_micros(100) && run.min >= Duration::from_micros(88));
        assert!(run.max >= Duration::from_micros(199) && run.max <= Duration::from_micros(224));
        assert!(run.p50 >= Duration::from_micros(149) && run.p50 <= Duration::from_micros(168));
        assert!(run.min <= run.p50 && run.p99 <= run.max);
        // No queue wait was kept, and nothing changes against itself.
        assert_eq!(later.since(&earlier).queue_wait, LatencySummary::default());
        assert_eq!(later.since(&later).run_time, LatencySummary::default());
    }

    #[test]
    fn bucket_bounds_meet() {
        for index in 1..BUCKETS {
            assert_eq!(bucket_bottom(index), bucket_top(index - 1) + 1);
            assert_eq!(bucket_of(bucket_bottom(index)), index);
            assert_eq!(bucket_of(bucket_top(index - 1)), index - 1);
        }
    }

    /// How many of `submits` calls of `sample`, on a thread of their own
    /// (the rate is a thread's), were stamped; `pause` is run between them.
    fn stamped(submits: u64, pause: fn()) -> u64 {
        let recorder = std::sync::Arc::new(Recorder::new());
        std::thread::spawn(move || {
            (0..submits)
                .filter(|_| {
                    pause();
                    recorder.sample() != 0
                })
                .count() as u64
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_slow_submitter_has_every_task_stamped() {
        // 100 us apart: 10,000 a second, under the fast rate.
        let pause = || std::thread::sleep(Duration::from_micros(100));
        assert_eq!(stamped(3 * SAMPLE_EVERY, pause), 3 * SAMPLE_EVERY);
    }

    #[test]
    fn a_fast_submitter_has_one_task_in_sample_every_stamped() {
        // Back to back: the first `SAMPLE_EVERY` are stamped (no rate is
        // known yet), then one in `SAMPLE_EVERY`, unless a preemption made
        // a stretch of them slow.
        let submits = 100 * SAMPLE_EVERY;
        let stamped = stamped(submits, || {});
        assert!(stamped >= SAMPLE_EVERY + 99, "{stamped}");
        assert!(stamped < submits / 4, "{stamped} of {submits}");
    }

    #[test]
    fn checks_keep_a_bounded_history_however_often_they_come() {
        let recorder = Recorder::new();
        let window = Duration::from_millis(16);
        let stats = Stats::sum(Vec::new());
        let start = Instant::now();
        while start.elapsed() < 8 * window {
            recorder.recent(&stats, window);
        }
        // One snapshot per eighth of a window, over a window and an eighth
        // back from the baseline, and the newest.
        let kept = lock(&recorder.history).len();
        assert!((2..=11).contains(&kept), "{kept}");
    }

    /// A `Stats` read back is the one written, all but its histogram:
    /// `since` then has no buckets to subtract (the type's docs say so).
    #[cfg(feature = "serde")]
    #[test]
    fn a_stats_read_back_is_the_one_written_but_its_histogram() {
        let histogram = Histogram::new();
        for micros in [3u64, 40, 500, 6_000] {
            histogram.record(micros * 1000);
        }
        let written = Stats {
            submitted: 4,
            completed: 4,
            capacity: None,
            uptime: Duration::new(11, 765_884_266),
            ..snapshot(&histogram)
        };
        assert!(written.buckets.run_time.iter().sum::<u64>() == 4);
        let json = serde_json::to_string(&written).expect("serializes");
        let read: Stats = serde_json::from_str(&json).expect("reads back");
        assert_eq!(
            read,
            Stats {
                buckets: Buckets::default(),
                ..written
            }
        );
    }

    #[test]
    fn health_names_each_breach_with_its_figure_and_threshold() {
        let stats = Stats {
            waiting: 12,
            busy: 4,
            capacity: Some(4),
            queued: 2000,
            ..Stats::sum(Vec::new())
        };
        let health = Health::judge(&stats, &HealthPolicy::default(), 0.5);
        assert!(!health.healthy);
        assert_eq!(health.problems.len(), 3, "{:?}", health.problems);
        assert!(health.problems[0].contains("50.0 %") && health.problems[0].contains("10.0 %"));
        assert!(health.problems[1].contains("100 %") && health.problems[1].contains("90 %"));
        assert!(health.problems[2].contains("2000") && health.problems[2].contains("1000"));
        let fine = Health::judge(&Stats::sum(Vec::new()), &HealthPolicy::default(), 0.0);
        assert!(fine.healthy && fine.problems.is_empty());
    }
}
