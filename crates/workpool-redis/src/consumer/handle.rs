//! `Consumer` and `ConsumerHandle`, the types users hold: every public
//! method of both is declared here (the builder's defaults, the run, a
//! shutdown, the figures) and hands the work to `builder.rs`,
//! `reader.rs` or `state.rs` in a line or two.

use super::builder::ConsumerBuilder;
use super::state::{Config, Shared};
use super::{reader, Handler};
use crate::error::Error;
use crate::stats::ConsumerStats;
use std::fmt;
use std::sync::Arc;
use workpool::Pool;

/// Runs the jobs of a Redis stream and consumer group on a
/// [`workpool::Pool`] of its own, until [shut down](ConsumerHandle::shutdown).
///
/// See the [crate docs](crate) for the guarantees and an example.
#[must_use = "a consumer does nothing until `run` is called"]
pub struct Consumer {
    shared: Arc<Shared>,
    client: redis::Client,
    pool: Pool,
    handler: Arc<Handler>,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.shared.config.stream)
            .field("group", &self.shared.config.group)
            .field("consumer", &self.shared.config.consumer)
            .finish_non_exhaustive()
    }
}

/// Stops a running [`Consumer`] and reads its figures from another thread
/// (a signal handler's, a monitor's). Cheap to clone.
#[derive(Clone)]
pub struct ConsumerHandle {
    shared: Arc<Shared>,
    pool: Pool,
}

impl fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("ConsumerHandle { .. }")
    }
}

impl ConsumerHandle {
    /// Asks the consumer to stop: it reads nothing more (within its
    /// [`block`](ConsumerBuilder::block) time), lets the jobs it holds
    /// finish and ack, and `run` returns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let handle = consumer.handle();
    /// let reader = std::thread::spawn(move || consumer.run());
    /// // Later: on SIGTERM, or when the deploy says so.
    /// handle.shutdown();
    /// let stats = reader.join().expect("the reader panicked")?;
    /// println!("stopped; {} jobs left pending", stats.in_flight);
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    /// The consumer's figures now.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// # let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    /// #     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let handle = consumer.handle();
    /// std::thread::spawn(move || loop {
    ///     let stats = handle.stats();
    ///     println!("acked {}, in flight {}", stats.acked, stats.in_flight);
    ///     std::thread::sleep(Duration::from_secs(10));
    /// });
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn stats(&self) -> ConsumerStats {
        stats(&self.shared, &self.pool)
    }

    /// Sends the consumer's figures and its pool's to the `metrics` facade,
    /// every series labelled `stream`: the pool's under the library's names
    /// (`workpool_*`, labelled `pool` too), the consumer's own as
    /// `workpool_redis_jobs_total{outcome}` (read, acked, retried,
    /// dead_lettered, reclaimed), `workpool_redis_in_flight_jobs` and
    /// `workpool_redis_pickup_seconds{quantile}`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // A recorder (a Prometheus exporter, say) was installed at start.
    /// # let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    /// #     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let handle = consumer.handle();
    /// std::thread::spawn(move || loop {
    ///     // workpool_redis_jobs_total{stream="emails",outcome="acked"}, ...
    ///     handle.export_metrics();
    ///     std::thread::sleep(Duration::from_secs(15));
    /// });
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        export(&self.stats(), &self.pool, &self.shared.config.stream);
    }
}

/// Sends `stats` to the `metrics` facade: the pool's figures under the
/// library's names (`workpool_*`, labelled `pool` and `stream`), and the
/// consumer's own as `workpool_redis_jobs_total{outcome}` (read, acked,
/// retried, dead_lettered, reclaimed), `workpool_redis_in_flight_jobs` and
/// `workpool_redis_pickup_seconds{quantile}`, labelled `stream`.
#[cfg(feature = "metrics")]
fn export(stats: &ConsumerStats, pool: &Pool, stream: &str) {
    use metrics::{counter, gauge};
    pool.export_metrics_with(&[("stream", stream.to_owned())]);
    let stream = stream.to_owned();
    for (outcome, value) in [
        ("read", stats.read),
        ("acked", stats.acked),
        ("retried", stats.retried),
        ("dead_lettered", stats.dead_lettered),
        ("reclaimed", stats.reclaimed),
    ] {
        counter!("workpool_redis_jobs_total", "stream" => stream.clone(), "outcome" => outcome)
            .absolute(value);
    }
    gauge!("workpool_redis_in_flight_jobs", "stream" => stream.clone()).set(stats.in_flight as f64);
    let pickup = &stats.pickup_latency;
    for (quantile, value) in [
        ("0.5", pickup.p50),
        ("0.9", pickup.p90),
        ("0.99", pickup.p99),
        ("1", pickup.max),
    ] {
        gauge!("workpool_redis_pickup_seconds", "stream" => stream.clone(), "quantile" => quantile)
            .set(value.as_secs_f64());
    }
}

fn stats(shared: &Shared, pool: &Pool) -> ConsumerStats {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &shared.counters;
    ConsumerStats {
        read: c.read.load(Relaxed),
        acked: c.acked.load(Relaxed),
        retried: c.retried.load(Relaxed),
        dead_lettered: c.dead_lettered.load(Relaxed),
        reclaimed: c.reclaimed.load(Relaxed),
        in_flight: shared.held().ids.len() as u64,
        pickup_latency: shared.pickup.summary(),
        pool: pool.stats(),
    }
}

impl Consumer {
    /// A consumer of `config`'s stream, not yet running (for
    /// [`ConsumerBuilder::build`]).
    pub(super) fn new(
        config: Config,
        client: redis::Client,
        pool: Pool,
        handler: Arc<Handler>,
    ) -> Consumer {
        Consumer {
            shared: Arc::new(Shared::new(config)),
            client,
            pool,
            handler,
        }
    }

    /// A builder for a consumer of `stream` in `group` at `url`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379/0", "emails", "senders")
    ///     .capacity(16)
    ///     .visibility_timeout(Duration::from_secs(60))
    ///     .build(|job: Job| {
    ///         println!("{} {}: {}", job.id(), job.name(), job.payload());
    ///         Ok::<(), String>(())
    ///     })?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn builder(
        url: impl Into<String>,
        stream: impl Into<String>,
        group: impl Into<String>,
    ) -> ConsumerBuilder {
        ConsumerBuilder::new(url.into(), stream.into(), group.into())
    }

    /// Its name in the group.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// // Without `consumer_name`: `{hostname}-{pid}`.
    /// assert!(consumer.name().ends_with(&format!("-{}", std::process::id())));
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.config.consumer
    }

    /// The pool its jobs run on (for its stats and gauges).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .capacity(4)
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// assert_eq!(consumer.pool().name(), "redis:emails");
    /// assert_eq!(consumer.pool().capacity(), Some(4));
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A handle to stop it and read its figures while `run` runs.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// # let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    /// #     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let handle = consumer.handle();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_secs(60)); // run for a minute
    ///     handle.shutdown();
    /// });
    /// let stats = consumer.run()?;
    /// println!("acked {} in a minute", stats.acked);
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn handle(&self) -> ConsumerHandle {
        ConsumerHandle {
            shared: Arc::clone(&self.shared),
            pool: self.pool.clone(),
        }
    }

    /// Its figures now.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .capacity(4)
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let stats = consumer.stats();
    /// assert_eq!(stats.read, 0); // nothing is read before `run`
    /// assert_eq!(stats.pool.capacity, Some(4));
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn stats(&self) -> ConsumerStats {
        stats(&self.shared, &self.pool)
    }

    /// See [`ConsumerHandle::export_metrics`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // A recorder (a Prometheus exporter, say) was installed at start.
    /// # let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    /// #     .build(|_job: Job| Ok::<(), String>(()))?;
    /// // Every series exists, at 0, before the first job.
    /// consumer.export_metrics();
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        export(&self.stats(), &self.pool, &self.shared.config.stream);
    }

    /// Reads and runs jobs on the calling thread until
    /// [`ConsumerHandle::shutdown`]; then reads nothing more, waits for the
    /// jobs it holds to finish and be acked (or dead-lettered), releases the
    /// pool and returns its figures. The wait is bounded by the
    /// [`shutdown_timeout`](ConsumerBuilder::shutdown_timeout): past it
    /// (Redis gone, a handler stuck), what is not acked is left pending.
    /// Entries left pending (those, and failed jobs still waiting for a
    /// retry) are counted in [`ConsumerStats::in_flight`]: this consumer
    /// re-reads them when it starts again under the same name, or another
    /// reclaims them after the visibility timeout. None is acked without
    /// its handler's `Ok`.
    ///
    /// # Errors
    ///
    /// None once started: Redis errors are logged and retried. The
    /// `Result` is kept for errors a later version may not retry.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let handle = consumer.handle();
    /// # std::thread::spawn(move || handle.shutdown());
    /// // Blocks until `handle.shutdown()`, called from another thread.
    /// let stats = consumer.run()?;
    /// println!(
    ///     "read {}, acked {}, retried {}, dead-lettered {}, left pending {}",
    ///     stats.read, stats.acked, stats.retried, stats.dead_lettered, stats.in_flight
    /// );
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn run(self) -> Result<ConsumerStats, Error> {
        reader::run(&self.shared, &self.client, &self.pool, &self.handler)?;
        Ok(self.stats())
    }
}
