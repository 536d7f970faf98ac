//! Looking inside the pool: `stats`, `health`, a monitor thread, and the
//! export of the figures to the `metrics` facade.

use super::state::Inner;
use super::Pool;
use crate::error::PoolError;
use crate::stats::{Health, HealthPolicy, Stats};
use crate::sync::Arc;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

impl Inner {
    pub(crate) fn snapshot(&self) -> Stats {
        let recorder = &self.stats;
        let (queue_wait, run_time, buckets) = recorder.latencies();
        let (taken, completed) = recorder.taken_and_completed();
        let queued = self.queue.len();
        let gauges = &self.gauges;
        let workers = gauges.workers.load(Ordering::Relaxed);
        let idle = gauges.idle.load(Ordering::Relaxed);
        let capacity = match gauges.capacity.load(Ordering::Relaxed) {
            super::state::UNBOUNDED => None,
            capacity => Some(capacity),
        };
        Stats {
            // What workers took, what waits, and what left the queue unrun.
            submitted: taken + queued as u64 + self.queue.set_aside(),
            completed,
            panicked: self.panicked.load(Ordering::Relaxed) as u64,
            cancelled: recorder.cancelled.load(Ordering::Relaxed),
            timed_out: recorder.timed_out.load(Ordering::Relaxed),
            rejected: recorder.rejected.load(Ordering::Relaxed),
            workers,
            idle,
            busy: workers.saturating_sub(idle),
            waiting: gauges.waiting.load(Ordering::Relaxed),
            queued,
            capacity,
            workers_started: recorder.workers_started.load(Ordering::Relaxed),
            workers_expired: recorder.workers_expired.load(Ordering::Relaxed),
            uptime: crate::job::lock(&recorder.since).elapsed(),
            queue_wait,
            run_time,
            pools: Vec::new(),
            buckets,
        }
    }

    /// One snapshot, and the verdict of `policy` on the figures of its
    /// window (`Recorder::recent`).
    pub(crate) fn check(&self, policy: &HealthPolicy) -> (Health, Stats) {
        let stats = self.snapshot();
        let recent = self.recent(&stats, policy.error_window);
        let health = Health::judge(&recent, policy, recent.error_rate());
        (health, stats)
    }

    /// The figures of the last `window` of this pool, from `stats`, its
    /// snapshot now; remembers `stats` as a baseline for later checks.
    pub(crate) fn recent(&self, stats: &Stats, window: Duration) -> Stats {
        self.stats.recent(stats, window)
    }
}

impl Pool {
    /// A snapshot of the pool's figures: counts by outcome, the gauges,
    /// uptime, and latencies of queue wait and run time (of every task at a
    /// trickle, sampled at high rates: see
    /// [`LatencySummary`](crate::LatencySummary)). Reading them takes no
    /// lock the workers take; recording them costs each task a counter on a
    /// cache line of its own thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(2)?;
    /// for _ in 0..100 {
    ///     pool.submit(|| ())?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// let stats = pool.stats();
    /// assert_eq!(stats.submitted, 100);
    /// assert_eq!(stats.completed, 100);
    /// assert!(stats.queue_wait.count > 0);
    /// // The figures since an earlier snapshot: none since this one.
    /// assert_eq!(pool.stats().since(&stats).completed, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.snapshot()
    }

    /// Judges the pool by `policy`: each threshold breached is one sentence
    /// in [`Health::problems`], with the figure and the threshold. The
    /// gauges are judged as they are now; the error rate and the p99 of
    /// queue wait over `policy.error_window`, from the snapshot of the
    /// newest earlier check at least that old (see
    /// [`HealthPolicy::error_window`]), so an old burst stops counting.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::HealthPolicy;
    /// let pool = workpool::Pool::new(2)?;
    /// let health = pool.health(&HealthPolicy::default());
    /// assert!(health.healthy, "{:?}", health.problems);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self, policy: &HealthPolicy) -> Health {
        self.check(policy).0
    }

    /// [`health`](Self::health) with the snapshot its verdict was drawn
    /// from: one snapshot for both, so they agree (a `/health` endpoint
    /// shows them side by side). The figures are since the build, as
    /// [`stats`](Self::stats) gives them; the verdict judged the error rate
    /// and queue wait of the policy's window, which the problems name.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::HealthPolicy;
    /// let pool = workpool::Pool::new(2)?;
    /// let (health, stats) = pool.check(&HealthPolicy::default());
    /// assert!(health.healthy);
    /// assert_eq!(stats.busy, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, policy: &HealthPolicy) -> (Health, Stats) {
        self.inner.check(policy)
    }

    /// Sends the pool's figures to the [`metrics`] facade, labelled
    /// `pool = name()`: `workpool_tasks_submitted_total`,
    /// `workpool_tasks_total{outcome}` (completed, panicked, cancelled,
    /// timed_out, rejected), `workpool_workers_started_total`,
    /// `workpool_workers_expired_total`, the gauges `workpool_workers`,
    /// `workpool_busy_workers`, `workpool_idle_workers`,
    /// `workpool_waiting_submitters`, `workpool_queued_tasks`,
    /// `workpool_capacity`, `workpool_uptime_seconds`, and the sampled
    /// latencies `workpool_queue_wait_seconds` and `workpool_run_seconds`
    /// as gauges by `quantile` (0.5, 0.9, 0.99, 1 for the max) with their
    /// `_count`. Call it when the figures are read (a `/metrics` handler, a
    /// monitor): nothing is recorded per task, so the hot path pays
    /// nothing for the export.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::builder().name("ingest").build()?;
    /// pool.spawn(|| ())?.join()?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// // What it sends: `workpool_tasks_total{pool="ingest",outcome="completed"}` = 1.
    /// assert_eq!(pool.stats().completed, 1);
    /// pool.export_metrics(); // a no-op until a recorder is installed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        self.export_metrics_with(&[]);
    }

    /// [`export_metrics`](Self::export_metrics) with more labels beside
    /// `pool`, for a pool that serves one of several sources (for example
    /// `("stream", "jobs")` in `workpool-redis`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder().name("consumer").build()?;
    /// pool.export_metrics_with(&[("stream", "jobs".to_owned())]);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics_with(&self, labels: &[(&'static str, String)]) {
        let mut all = vec![metrics::Label::new("pool", self.name().to_owned())];
        all.extend(
            labels
                .iter()
                .map(|(key, value)| metrics::Label::new(*key, value.clone())),
        );
        export(&self.stats(), &all);
    }

    /// The pool's name ([`PoolBuilder::name`](crate::PoolBuilder::name)).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::Pool;
    /// assert_eq!(Pool::new(1)?.name(), "workpool");
    /// assert_eq!(Pool::builder().name("mailer").build()?.name(), "mailer");
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Checks the pool's health every `interval` on a thread of its own and
    /// calls `callback` with the verdict and the figures it was drawn from:
    /// a periodic health check. It stops when the returned
    /// [`Monitor`] is stopped or dropped, or when the pool is released; the
    /// pool counts its thread, so `release_timeout` waits for it.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] on a released pool; [`PoolError::SpawnFailed`]
    /// if its thread could not start.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use workpool::HealthPolicy;
    ///
    /// let pool = workpool::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let monitor = pool.monitor(Duration::from_millis(10), HealthPolicy::default(), move |health, stats| {
    ///     let _ = tx.send((health.healthy, stats.workers));
    /// })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, (true, 0));
    /// monitor.stop();
    /// pool.release_timeout(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn monitor<F>(
        &self,
        interval: Duration,
        policy: HealthPolicy,
        callback: F,
    ) -> Result<Monitor, PoolError>
    where
        F: FnMut(&Health, &Stats) + Send + 'static,
    {
        let shared = Arc::new(MonitorShared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        {
            let state = self.inner.lock_state();
            if state.closed {
                return Err(PoolError::Closed);
            }
            crate::job::lock(&self.inner.monitors).push(Arc::downgrade(&shared));
        }
        let weak = Arc::downgrade(&self.inner);
        let theirs = Arc::clone(&shared);
        let mut callback = callback;
        let name = format!("{}-monitor", self.inner.config.thread_name);
        let body = move || loop {
            {
                let mut stop = crate::job::lock(&theirs.stop);
                let until = Instant::now() + interval;
                while !*stop {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    stop = theirs
                        .wake
                        .wait_timeout(stop, until - now)
                        .map(|(stop, _)| stop)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                if *stop {
                    return;
                }
            }
            // The monitor holds the pool weakly: it never keeps a pool
            // alive, and ends with it.
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if inner.is_closed() {
                return;
            }
            let (health, stats) = inner.check(&policy);
            drop(inner);
            callback(&health, &stats);
        };
        self.inner
            .spawn_counted(name, body)
            .map_err(|e| PoolError::SpawnFailed(std::sync::Arc::new(e)))?;
        Ok(Monitor { shared })
    }
}

impl Inner {
    /// `release`: every monitor stops.
    pub(super) fn stop_monitors(&self) {
        let monitors = std::mem::take(&mut *crate::job::lock(&self.monitors));
        for monitor in monitors.iter().filter_map(Weak::upgrade) {
            monitor.stop();
        }
    }
}

pub(crate) struct MonitorShared {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl MonitorShared {
    fn stop(&self) {
        *crate::job::lock(&self.stop) = true;
        self.wake.notify_all();
    }
}

/// A periodic health check started by [`Pool::monitor`]; stops when
/// dropped.
#[must_use = "the monitor stops when this handle is dropped"]
pub struct Monitor {
    shared: Arc<MonitorShared>,
}

impl Monitor {
    /// Stops the monitor: its callback is not called again once its thread
    /// has seen this (at once if it is waiting for its next check).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use workpool::HealthPolicy;
    ///
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let policy = HealthPolicy::default();
    /// let monitor = pool.monitor(Duration::from_millis(1), policy, move |health, _| {
    ///     let _ = tx.send(health.healthy);
    /// })?;
    /// assert!(rx.recv()?);
    /// monitor.stop();
    /// // Its thread ends and drops the callback: the channel closes.
    /// rx.iter().for_each(drop);
    /// assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("stopped", &*crate::job::lock(&self.shared.stop))
            .finish()
    }
}

/// Sends `stats` to the `metrics` facade with `labels` (the pool's name,
/// and whatever a caller adds, such as a stream).
#[cfg(feature = "metrics")]
pub(crate) fn export(stats: &Stats, labels: &[metrics::Label]) {
    use metrics::{counter, gauge, Label};
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<Label> {
        let mut all = labels.to_vec();
        all.extend(extra.iter().map(|&(key, value)| Label::new(key, value)));
        all
    };
    let base = labels.to_vec();
    counter!("workpool_tasks_submitted_total", base.clone()).absolute(stats.submitted);
    for (outcome, value) in [
        ("completed", stats.completed),
        ("panicked", stats.panicked),
        ("cancelled", stats.cancelled),
        ("timed_out", stats.timed_out),
        ("rejected", stats.rejected),
    ] {
        counter!("workpool_tasks_total", with(&[("outcome", outcome)])).absolute(value);
    }
    counter!("workpool_workers_started_total", base.clone()).absolute(stats.workers_started);
    counter!("workpool_workers_expired_total", base.clone()).absolute(stats.workers_expired);
    for (name, value) in [
        ("workpool_workers", stats.workers),
        ("workpool_busy_workers", stats.busy),
        ("workpool_idle_workers", stats.idle),
        ("workpool_waiting_submitters", stats.waiting),
        ("workpool_queued_tasks", stats.queued),
    ] {
        gauge!(name, base.clone()).set(value as f64);
    }
    if let Some(capacity) = stats.capacity {
        gauge!("workpool_capacity", base.clone()).set(capacity as f64);
    }
    gauge!("workpool_uptime_seconds", base.clone()).set(stats.uptime.as_secs_f64());
    for (name, summary) in [
        ("workpool_queue_wait_seconds", &stats.queue_wait),
        ("workpool_run_seconds", &stats.run_time),
    ] {
        for (quantile, value) in [
            ("0.5", summary.p50),
            ("0.9", summary.p90),
            ("0.99", summary.p99),
            ("1", summary.max),
        ] {
            gauge!(name, with(&[("quantile", quantile)])).set(value.as_secs_f64());
        }
        counter!(format!("{name}_count"), base.clone()).absolute(summary.count);
    }
}
