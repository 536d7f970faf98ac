//! The JSON of `/stats` and `/health`: the library's own `Stats` and
//! `Health` (workpool's `serde` feature), beside the pool's name.

use serde::{Deserialize, Serialize};
use workpool::{Health, Stats};

/// The body of `/stats`: the pool's name, and every figure of
/// [`Pool::stats`](workpool::Pool::stats) beside it in the same object
/// (flattened), in the JSON of [`Stats`]: durations in seconds, in fields
/// named `*_seconds`.
///
/// ```text
/// {"pool":"images","submitted":20,"completed":20,"panicked":0,"cancelled":0,
///  "timed_out":0,"rejected":0,"workers":3,"idle":3,"busy":0,"waiting":0,"queued":0,
///  "capacity":3,"workers_started":3,"workers_expired":0,"uptime_seconds":0.0123,
///  "queue_wait":{"count":20,"min_seconds":0.000001,...,"sum_seconds":0.00031},
///  "run_time":{"count":20,...}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name, the `pool` label of its metrics.
    pub pool: String,
    /// The figures since the build (or the last reboot).
    #[serde(flatten)]
    pub stats: Stats,
}

impl PoolStats {
    /// The figures `stats` of the pool named `pool`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::PoolStats;
    ///
    /// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
    /// let body = PoolStats::new(pool.name(), pool.stats());
    /// let json = serde_json::to_value(&body)?;
    /// assert_eq!(json["pool"], "images");
    /// assert_eq!(json["capacity"], 8);
    /// assert_eq!(json["queue_wait"]["p99_seconds"], 0.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(pool: &str, stats: Stats) -> PoolStats {
        PoolStats {
            pool: pool.to_owned(),
            stats,
        }
    }
}

/// The body of `/health`: the pool's name, the verdict of the router's
/// [`HealthPolicy`](workpool::HealthPolicy) (`healthy`, `problems`) and the
/// snapshot it was drawn from, all in one object (flattened). Served with
/// 200 when healthy, 503 when not.
///
/// The verdict judges the policy's window (the error rate and the p99
/// queue wait of its last `error_window`); the figures beside it are the
/// snapshot's, since the build, as in `/stats`.
///
/// ```text
/// {"pool":"images","healthy":false,
///  "problems":["saturation 100 % (2 of 2 workers busy) is above the limit of 50 %"],
///  "submitted":2,"completed":0,...,"busy":2,...,"capacity":2,...}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PoolHealth {
    /// The pool's name.
    pub pool: String,
    /// The verdict: `healthy`, and one sentence per breach in `problems`.
    #[serde(flatten)]
    pub health: Health,
    /// The snapshot the verdict was drawn from.
    #[serde(flatten)]
    pub stats: Stats,
}

impl PoolHealth {
    /// The verdict `health` on the pool named `pool`, with the figures of
    /// `stats` beside it.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::HealthPolicy;
    /// use workpool_http::PoolHealth;
    ///
    /// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
    /// let (verdict, stats) = pool.check(&HealthPolicy::default());
    /// let body = PoolHealth::new(pool.name(), verdict, stats);
    /// let json = serde_json::to_value(&body)?;
    /// assert_eq!(json["healthy"], true);
    /// assert_eq!(json["busy"], 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(pool: &str, health: Health, stats: Stats) -> PoolHealth {
        PoolHealth {
            pool: pool.to_owned(),
            health,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use workpool::HealthPolicy;

    #[test]
    fn a_body_reads_back_with_its_name_and_figures() {
        let pool = workpool::Pool::builder()
            .name("flat")
            .capacity(2)
            .build()
            .expect("a pool");
        pool.spawn(|| ()).expect("accepted").join().expect("ran");
        pool.wait_idle(Duration::from_secs(20)).expect("idle");
        let (verdict, stats) = pool.check(&HealthPolicy::default());
        let health = PoolHealth::new(pool.name(), verdict, stats.clone());
        let json = serde_json::to_value(&health).expect("serializes");
        // One object: the name, the verdict and the figures side by side.
        assert_eq!(json["pool"], "flat");
        assert_eq!(json["healthy"], true);
        assert_eq!(json["completed"], 1);
        assert!(json.get("health").is_none() && json.get("stats").is_none());
        let back: PoolHealth = serde_json::from_value(json).expect("reads back");
        assert_eq!(back.pool, "flat");
        assert_eq!(back.health, health.health);
        assert_eq!(back.stats.completed, 1);
        assert_eq!(back.stats.run_time, stats.run_time);

        let body = PoolStats::new(pool.name(), stats.clone());
        let text = serde_json::to_string(&body).expect("serializes");
        let back: PoolStats = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.pool, "flat");
        assert_eq!(back.stats.uptime, stats.uptime);
        assert_eq!(back.stats.queue_wait, stats.queue_wait);
        pool.release();
    }
}
