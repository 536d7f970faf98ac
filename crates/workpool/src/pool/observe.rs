//! Looking inside the pool, the machinery of `Pool::stats`, `health`,
//! `check`, `monitor` and `export_metrics`: the snapshot, the health
//! verdict, the monitor thread ([`Monitor`]), and the export of the figures
//! to the `metrics` facade.

use super::state::Inner;
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
        let workers = self.crew.workers();
        let idle = self.crew.idle();
        let capacity = match self.crew.capacity() {
            super::crew::UNBOUNDED => None,
            capacity => Some(capacity),
        };
        Stats {
            // What workers took, what waits, what left the queue unrun, and
            // the delayed tasks not (yet) queued.
            submitted: taken + queued as u64 + self.queue.set_aside() + self.maintenance.held(),
            completed,
            panicked: self.panicked.load(Ordering::Relaxed) as u64,
            cancelled: recorder.cancelled.load(Ordering::Relaxed),
            timed_out: recorder.timed_out.load(Ordering::Relaxed),
            rejected: recorder.rejected.load(Ordering::Relaxed),
            workers,
            idle,
            busy: workers.saturating_sub(idle),
            waiting: self.waiting.count(),
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

    /// `Pool::export_metrics_with`: one snapshot, labelled `pool = name`
    /// and `labels`.
    #[cfg(feature = "metrics")]
    pub(super) fn export_metrics(&self, labels: &[(&'static str, String)]) {
        let mut all = vec![metrics::Label::new("pool", self.name.clone())];
        all.extend(
            labels
                .iter()
                .map(|(key, value)| metrics::Label::new(*key, value.clone())),
        );
        export(&self.snapshot(), &all);
    }

    /// `Pool::monitor`: registers a monitor (refused on a released pool)
    /// and starts its thread, counted among the pool's.
    pub(super) fn monitor<F>(
        self: &Arc<Self>,
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
            let state = self.lock_state();
            if state.life.is_closed() {
                return Err(PoolError::Closed);
            }
            crate::job::lock(&self.monitors).push(Arc::downgrade(&shared));
        }
        let weak = Arc::downgrade(self);
        let theirs = Arc::clone(&shared);
        let mut callback = callback;
        let name = format!("{}-monitor", self.config.thread_name);
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
        self.spawn_counted(name, body)
            .map_err(|e| PoolError::SpawnFailed(std::sync::Arc::new(e)))?;
        Ok(Monitor { shared })
    }

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

/// A periodic health check started by [`Pool::monitor`](crate::Pool::monitor); stops when
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
