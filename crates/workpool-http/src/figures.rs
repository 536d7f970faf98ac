//! The JSON of `/stats` and `/health`: the library's `Stats` and `Health`
//! in a shape with units in the names (seconds as floats), since the
//! library itself has no serde dependency.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use workpool::{Health, LatencySummary, Stats};

/// The body of `/stats`: every figure of [`Stats`], durations in seconds.
/// The dashboard polls it each second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatsJson {
    /// The pool's name, the `pool` label of its metrics.
    pub pool: String,
    /// Tasks accepted since the build (or the last reboot's counters).
    pub submitted: u64,
    /// Tasks that ran to their end without panicking.
    pub completed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks that never started (cancelled).
    pub cancelled: u64,
    /// Tasks whose deadline passed.
    pub timed_out: u64,
    /// Tasks refused at the call.
    pub rejected: u64,
    /// Live workers, busy and idle.
    pub workers: usize,
    /// Workers parked on the idle list.
    pub idle: usize,
    /// Workers holding a task.
    pub busy: usize,
    /// Callers blocked in `submit`.
    pub waiting: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// The capacity; `null` for an unbounded pool.
    pub capacity: Option<usize>,
    /// Worker threads started.
    pub workers_started: u64,
    /// Workers ended by idle expiry.
    pub workers_expired: u64,
    /// Since the build or the last reboot.
    pub uptime_seconds: f64,
    /// From submit to start, sampled, since the build.
    pub queue_wait: LatencyJson,
    /// From start to end, sampled, since the build.
    pub run_time: LatencyJson,
}

impl StatsJson {
    /// The figures of `stats`, for the pool named `pool`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::StatsJson;
    ///
    /// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
    /// let json = StatsJson::new(pool.name(), &pool.stats());
    /// assert_eq!(json.pool, "images");
    /// assert_eq!(json.capacity, Some(8));
    /// assert!(serde_json::to_string(&json)?.contains(r#""submitted":0"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(pool: &str, stats: &Stats) -> StatsJson {
        StatsJson {
            pool: pool.to_owned(),
            submitted: stats.submitted,
            completed: stats.completed,
            panicked: stats.panicked,
            cancelled: stats.cancelled,
            timed_out: stats.timed_out,
            rejected: stats.rejected,
            workers: stats.workers,
            idle: stats.idle,
            busy: stats.busy,
            waiting: stats.waiting,
            queued: stats.queued,
            capacity: stats.capacity,
            workers_started: stats.workers_started,
            workers_expired: stats.workers_expired,
            uptime_seconds: stats.uptime.as_secs_f64(),
            queue_wait: LatencyJson::new(&stats.queue_wait),
            run_time: LatencyJson::new(&stats.run_time),
        }
    }
}

/// A [`LatencySummary`] in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencyJson {
    /// Tasks timed: every task at low rates, one in 32 of those queued
    /// behind busy workers above about 20,000 submits a second per thread.
    pub count: u64,
    /// The shortest.
    pub min_seconds: f64,
    /// The mean.
    pub mean_seconds: f64,
    /// The median.
    pub p50_seconds: f64,
    /// The 90th percentile.
    pub p90_seconds: f64,
    /// The 99th percentile.
    pub p99_seconds: f64,
    /// The longest.
    pub max_seconds: f64,
}

impl LatencyJson {
    fn new(summary: &LatencySummary) -> LatencyJson {
        let s = Duration::as_secs_f64;
        LatencyJson {
            count: summary.count,
            min_seconds: s(&summary.min),
            mean_seconds: s(&summary.mean),
            p50_seconds: s(&summary.p50),
            p90_seconds: s(&summary.p90),
            p99_seconds: s(&summary.p99),
            max_seconds: s(&summary.max),
        }
    }
}

/// The body of `/health`: the verdict of the router's
/// [`HealthPolicy`](workpool::HealthPolicy), and the figures it is mostly
/// drawn from. Served with 200 when healthy, 503 when not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthJson {
    /// The pool's name.
    pub pool: String,
    /// No threshold of the policy is breached.
    pub healthy: bool,
    /// One sentence per breach, with the figure and the threshold.
    pub problems: Vec<String>,
    /// Live workers.
    pub workers: usize,
    /// Workers holding a task.
    pub busy: usize,
    /// Callers blocked in `submit`.
    pub waiting: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// The capacity; `null` for an unbounded pool.
    pub capacity: Option<usize>,
    /// Busy workers over the capacity, 0 to 1; `null` when unbounded.
    pub saturation: Option<f64>,
    /// Tasks that ran to their end.
    pub completed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// The p99 of the time from submit to start, since the build.
    pub queue_wait_p99_seconds: f64,
    /// Since the build or the last reboot.
    pub uptime_seconds: f64,
}

impl HealthJson {
    /// The verdict `health` with the figures of `stats`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::HealthPolicy;
    /// use workpool_http::HealthJson;
    ///
    /// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
    /// let (verdict, stats) = pool.check(&HealthPolicy::default());
    /// let json = HealthJson::new(pool.name(), verdict, &stats);
    /// assert!(json.healthy && json.problems.is_empty());
    /// assert_eq!(json.saturation, Some(0.0)); // no worker is busy
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn new(pool: &str, health: Health, stats: &Stats) -> HealthJson {
        HealthJson {
            pool: pool.to_owned(),
            healthy: health.healthy,
            problems: health.problems,
            workers: stats.workers,
            busy: stats.busy,
            waiting: stats.waiting,
            queued: stats.queued,
            capacity: stats.capacity,
            saturation: stats
                .capacity
                .filter(|&c| c > 0)
                .map(|c| stats.busy as f64 / c as f64),
            completed: stats.completed,
            panicked: stats.panicked,
            queue_wait_p99_seconds: stats.queue_wait.p99.as_secs_f64(),
            uptime_seconds: stats.uptime.as_secs_f64(),
        }
    }
}
