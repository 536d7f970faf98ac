//! `Consumer`: a stream's jobs run on a `workpool::Pool`.
//!
//! One reader loop (the thread that calls [`Consumer::run`]) reads entries
//! with `XREADGROUP ... COUNT k` where k is the room left: the pool's
//! capacity plus its queue capacity, minus the entries this consumer holds
//! (`state.rs`: `Held::ids`). Each entry becomes a pool task whose
//! `on_complete` hands the outcome to the settler thread (`settle.rs`),
//! which acks, dead-letters or schedules a retry, and only then releases
//! the entry. Beside reading, the loop:
//! - at start, re-reads the entries still pending under its own name
//!   (`XREADGROUP ... STREAMS s 0`), left by an earlier run of the same
//!   consumer;
//! - every half visibility timeout, reclaims with `XAUTOCLAIM` the entries
//!   idle longer than the visibility timeout (their consumer died), as
//!   room allows;
//! - every third of the visibility timeout, renews the lease of the entries
//!   it holds (`XCLAIM ... JUSTID`), so a job that runs longer than the
//!   timeout is not reclaimed from a live consumer;
//! - runs failed entries again once their backoff has passed
//!   (`XCLAIM`, which counts a delivery).
//!
//! Redis errors (a lost connection, a restarted server) are logged and
//! retried after 200 ms on a fresh connection; nothing held is released
//! until Redis has acked it. Only a shutdown bounds the retries: past its
//! `shutdown_timeout`, `run` returns and what is not acked stays pending in
//! Redis, for a reclaim (`tests/restart.rs` tests both).

mod settle;
mod state;
mod wire;

use crate::error::Error;
use crate::job::{Envelope, Job, JobId};
use crate::stats::{ConsumerStats, Counters};
use settle::Settle;
use state::{Config, Shared};
use std::fmt;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wire::Entry;
use workpool::{Pool, TaskError};

type Handler = dyn Fn(Job) -> Result<(), String> + Send + Sync;

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

/// Options of a [`Consumer`]: [`Consumer::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ConsumerBuilder {
    url: String,
    stream: String,
    group: String,
    consumer: Option<String>,
    capacity: usize,
    queue_capacity: usize,
    block: Duration,
    visibility_timeout: Duration,
    max_deliveries: u64,
    backoff: Duration,
    max_backoff: Duration,
    shutdown_timeout: Option<Duration>,
}

impl ConsumerBuilder {
    /// This consumer's name in the group. Default: `{hostname}-{pid}`.
    /// Give a name that survives a restart (a pod name, a host and slot) to
    /// have a restarted consumer re-read its own pending entries at once;
    /// otherwise another consumer reclaims them after the visibility
    /// timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // A name that survives a restart: the pod's.
    /// let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "senders-0".to_owned());
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .consumer_name(pod.clone())
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// assert_eq!(consumer.name(), pod);
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// Workers of the pool: the most jobs running at once. Default: 8.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .capacity(32)
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// assert_eq!(consumer.pool().capacity(), Some(32));
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Jobs read ahead and queued in the pool while every worker is busy
    /// ([`workpool::PoolBuilder::queue_capacity`]). Default: 0, so a
    /// process holds only what it can run now, and the rest of the stream
    /// stays free for other consumers.
    ///
    /// Without a read-ahead, a worker that finishes waits for the ack and
    /// the next `XREADGROUP` (two round trips) before it starts again. For
    /// jobs of a few milliseconds that wait is a real share of the job: in
    /// `workpool bench --workload redis` (10 ms jobs, capacity 64, 2
    /// cores), 10 jobs of read-ahead took 4 processes from 0.70x to 0.93x
    /// of the in-process ceiling. For jobs of seconds, keep 0.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // Jobs of a few ms: read 10 ahead, so a free worker never waits for Redis.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "thumbnails", "resizers")
    ///     .capacity(64)
    ///     .queue_capacity(10)
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// assert_eq!(consumer.pool().queue_capacity(), 10);
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// How long one `XREADGROUP` waits for new entries (`BLOCK`), which is
    /// also how long a shutdown may wait for the read in progress.
    /// Default: 100 ms.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // Fewer round trips on a quiet stream; a shutdown may wait up to 1 s.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "reports", "builders")
    ///     .block(Duration::from_secs(1))
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// An entry pending this long without its lease renewed is taken to
    /// belong to a dead consumer and is reclaimed. A live consumer renews
    /// its entries' leases every third of it. Default: 30 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // A dead consumer's jobs are reclaimed after 2 minutes; a live one renews
    /// // its leases every 40 s, however long its jobs run.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "videos", "encoders")
    ///     .visibility_timeout(Duration::from_secs(120))
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// Deliveries a job gets (its first run included); a job that fails on
    /// the last one is moved to the dead-letter stream `{stream}:dead`
    /// with its error. Default: 5.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // A job that fails on its 3rd delivery moves to `payments:dead`.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "payments", "chargers")
    ///     .max_deliveries(3)
    ///     .build(|job: Job| -> Result<(), String> {
    ///         Err(format!("card declined (delivery {})", job.attempt()))
    ///     })?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn max_deliveries(mut self, max: u64) -> Self {
        self.max_deliveries = max.max(1);
        self
    }

    /// The wait before the first retry of a failed job, doubled for each
    /// later one, up to [`max_backoff`](Self::max_backoff) and at most
    /// half the visibility timeout. Default: 100 ms.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // A failed job runs again after 1 s, 2 s, 4 s, then 8 s.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "webhooks", "senders")
    ///     .backoff(Duration::from_secs(1))
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// The longest wait between retries. Default: 10 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // Retries after 0.1, 0.2, 0.4, 0.8, 1.6 s, then every 2 s.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "webhooks", "senders")
    ///     .max_deliveries(10)
    ///     .max_backoff(Duration::from_secs(2))
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How long [`run`](Consumer::run) waits, once shut down, for the jobs
    /// it holds to finish and be acked. Past it (a stuck handler, or Redis
    /// gone so that acks cannot be sent), `run` returns anyway: the
    /// entries not acked stay pending in Redis, counted in
    /// [`ConsumerStats::in_flight`], and another consumer reclaims them
    /// after the visibility timeout (or this one re-reads them when it
    /// starts again under the same name). Default: the
    /// [visibility timeout](Self::visibility_timeout), after which others
    /// would reclaim them anyway, since a consumer that stopped reading no
    /// longer renews its leases.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // Jobs still running 5 s after a shutdown stay pending, for a reclaim.
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .shutdown_timeout(Duration::from_secs(5))
    ///     .build(|_job: Job| Ok::<(), String>(()))?;
    /// let handle = consumer.handle();
    /// std::thread::spawn(move || handle.shutdown());
    /// let stats = consumer.run()?; // returns within about 5 s of the shutdown
    /// println!("{} jobs left pending", stats.in_flight);
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Connects, creates the group (`XGROUP CREATE ... 0 MKSTREAM`, from the
    /// stream's start) if it does not exist, and builds the pool.
    /// `handler` runs each job; its `Err` is retried.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`] for a bad URL or if Redis cannot be reached;
    /// [`Error::Build`] for a capacity of 0 or the pool's other limits.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Email { to: String, subject: String }
    ///
    /// let consumer = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders")
    ///     .build(|job: Job| -> Result<(), workpool_redis::Error> {
    ///         let email: Email = job.decode()?; // an `Err` is retried
    ///         println!("sending {:?} to {}", email.subject, email.to);
    ///         Ok(())
    ///     })?;
    /// consumer.run()?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn build<F, E>(self, handler: F) -> Result<Consumer, Error>
    where
        F: Fn(Job) -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = settle::connect(&client)?;
        wire::ensure_group(&mut conn, &self.stream, &self.group)?;
        let pool = Pool::builder()
            .name(format!("redis:{}", self.stream))
            .capacity(self.capacity)
            .queue_capacity(self.queue_capacity)
            .build()?;
        let config = Config {
            dead_stream: format!("{}:dead", self.stream),
            consumer: self.consumer.unwrap_or_else(default_name),
            stream: self.stream,
            group: self.group,
            room: self.capacity + self.queue_capacity,
            block: self.block,
            visibility_timeout: self.visibility_timeout,
            max_deliveries: self.max_deliveries,
            backoff: self.backoff,
            max_backoff: self.max_backoff,
            shutdown_timeout: self.shutdown_timeout.unwrap_or(self.visibility_timeout),
        };
        Ok(Consumer {
            shared: Arc::new(Shared::new(config)),
            client,
            pool,
            handler: Arc::new(move |job| handler(job).map_err(|e| e.to_string())),
        })
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

impl Consumer {
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
        ConsumerBuilder {
            url: url.into(),
            stream: stream.into(),
            group: group.into(),
            consumer: None,
            capacity: 8,
            queue_capacity: 0,
            block: Duration::from_millis(100),
            visibility_timeout: Duration::from_secs(30),
            max_deliveries: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            shutdown_timeout: None,
        }
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
        let (tx, rx) = mpsc::channel::<Settle>();
        let settler = {
            let shared = Arc::clone(&self.shared);
            let client = self.client.clone();
            std::thread::Builder::new()
                .name("workpool-redis-settle".into())
                .spawn(move || settle::run(&shared, &client, &rx))
                .map_err(|e| {
                    Error::Build(workpool::BuildError::SpawnFailed {
                        reason: e.to_string(),
                    })
                })?
        };
        let mut reader = Reader {
            shared: &self.shared,
            client: &self.client,
            conn: None,
            pool: &self.pool,
            handler: &self.handler,
            tx: &tx,
            own_cursor: Some("0".to_owned()),
            last_reclaim: None,
            last_touch: Instant::now(),
        };
        reader.read_until_shutdown();
        // Stopped reading: wait for every entry held that is not waiting
        // for a retry to be settled, until the shutdown timeout.
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        let settled = {
            let mut held = self.shared.held();
            loop {
                if held.ids.len() <= held.retries.len() {
                    break true;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break false;
                }
                held = self
                    .shared
                    .released
                    .wait_timeout(held, left.min(Duration::from_millis(100)))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        if !settled {
            let unsettled = {
                let held = self.shared.held();
                held.ids.len() - held.retries.len()
            };
            tracing::warn!(
                unsettled,
                timeout = ?self.shared.config.shutdown_timeout,
                "workpool-redis: shutdown timed out; jobs not acked stay pending in Redis, for a reclaim by another consumer"
            );
            self.shared
                .abandon
                .store(true, std::sync::atomic::Ordering::Release);
        }
        drop(tx);
        // Bounded: once abandoned, the settler returns after its current
        // round trip, whose connect, read and write time out.
        let _ = settler.join();
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = self
            .pool
            .release_timeout(left.max(Duration::from_millis(100)));
        Ok(self.stats())
    }
}

struct Reader<'a> {
    shared: &'a Arc<Shared>,
    client: &'a redis::Client,
    conn: Option<redis::Connection>,
    pool: &'a Pool,
    handler: &'a Arc<Handler>,
    tx: &'a Sender<Settle>,
    /// While `Some`: re-reading its own pending entries from this ID on.
    own_cursor: Option<String>,
    last_reclaim: Option<Instant>,
    last_touch: Instant,
}

impl Reader<'_> {
    fn read_until_shutdown(&mut self) {
        while !self.shared.stopping() {
            if let Err(e) = self.step() {
                tracing::warn!(error = %e, "workpool-redis: read failed; reconnecting");
                self.conn = None;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn conn(&mut self) -> redis::RedisResult<&mut redis::Connection> {
        if self.conn.is_none() {
            // A server that hangs without closing the socket (a paused VM,
            // a dropped route) must not stop the reader for good: a read
            // past its `BLOCK` by this much fails, and the loop reconnects.
            let io = settle::IO_TIMEOUT;
            let mut conn = self.client.get_connection_with_timeout(io)?;
            conn.set_read_timeout(Some(self.shared.config.block + io))?;
            conn.set_write_timeout(Some(io))?;
            let c = &self.shared.config;
            // A server restarted without its data has lost the group.
            wire::ensure_group(&mut conn, &c.stream, &c.group)?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// One round: due retries, then room, then one of: re-read own
    /// pending, reclaim, or read new entries.
    fn step(&mut self) -> redis::RedisResult<()> {
        let c = self.shared.config.clone();
        self.retry_due()?;
        if self.last_touch.elapsed() >= c.visibility_timeout / 3 {
            let ids: Vec<String> = self.shared.held().ids.iter().cloned().collect();
            if !ids.is_empty() {
                wire::touch(self.conn()?, &c.stream, &c.group, &c.consumer, &ids)?;
            }
            self.last_touch = Instant::now();
        }
        let room = {
            let held = self.shared.held();
            let room = c.room.saturating_sub(held.ids.len());
            if room == 0 {
                // Full: wait for a release, a due retry, or shutdown.
                let next_retry = held.retries.peek().map(|r| r.0 .0);
                let wait = next_retry
                    .map_or(c.block, |at| at.saturating_duration_since(Instant::now()))
                    .min(c.block);
                drop(
                    self.shared
                        .released
                        .wait_timeout(held, wait)
                        .unwrap_or_else(|e| e.into_inner()),
                );
                return Ok(());
            }
            room
        };
        if let Some(cursor) = self.own_cursor.clone() {
            let entries = wire::read_group(
                self.conn()?,
                &c.stream,
                &c.group,
                &c.consumer,
                room,
                None,
                &cursor,
            )?;
            match entries.last() {
                None => self.own_cursor = None,
                Some((last, _)) => self.own_cursor = Some(last.clone()),
            }
            Counters::add(&self.shared.counters.read, entries.len() as u64);
            return self.start(entries, None);
        }
        let reclaim_due = self
            .last_reclaim
            .map_or(true, |at| at.elapsed() >= c.visibility_timeout / 2);
        if reclaim_due {
            self.last_reclaim = Some(Instant::now());
            let (_, entries) = wire::autoclaim(
                self.conn()?,
                &c.stream,
                &c.group,
                &c.consumer,
                c.visibility_timeout,
                "0-0",
                room,
            )?;
            if !entries.is_empty() {
                tracing::info!(
                    n = entries.len(),
                    "workpool-redis: reclaimed entries of a dead consumer"
                );
                Counters::add(&self.shared.counters.reclaimed, entries.len() as u64);
                return self.start(entries, None);
            }
        }
        let block = {
            let held = self.shared.held();
            held.retries
                .peek()
                .map_or(c.block, |r| {
                    r.0 .0.saturating_duration_since(Instant::now())
                })
                .min(c.block)
        };
        if block.is_zero() {
            return Ok(());
        }
        let entries = wire::read_group(
            self.conn()?,
            &c.stream,
            &c.group,
            &c.consumer,
            room,
            Some(block),
            ">",
        )?;
        Counters::add(&self.shared.counters.read, entries.len() as u64);
        self.start(entries, Some(1))
    }

    /// Claims the failed entries whose backoff has passed and runs them.
    fn retry_due(&mut self) -> redis::RedisResult<()> {
        let due: Vec<String> = {
            let mut held = self.shared.held();
            let now = Instant::now();
            let mut due = Vec::new();
            while held.retries.peek().is_some_and(|r| r.0 .0 <= now) {
                due.push(held.retries.pop().expect("peeked").0 .1);
            }
            due
        };
        if due.is_empty() {
            return Ok(());
        }
        let c = self.shared.config.clone();
        let claimed = match wire::claim(self.conn()?, &c.stream, &c.group, &c.consumer, &due) {
            Ok(claimed) => claimed,
            Err(e) => {
                // Put them back, to be tried again after the reconnect.
                let mut held = self.shared.held();
                let now = Instant::now();
                for id in due {
                    held.retries.push(std::cmp::Reverse((now, id)));
                }
                return Err(e);
            }
        };
        // Entries no longer pending here (acked or reclaimed by another
        // consumer meanwhile) are not ours to run.
        let mut held = self.shared.held();
        for id in &due {
            if !claimed.iter().any(|(c, _)| c == id) {
                held.ids.remove(id);
            }
        }
        for (id, _) in &claimed {
            held.ids.remove(id);
        }
        drop(held);
        self.shared.released.notify_all();
        self.start(claimed, None)
    }

    /// Holds `entries` and hands each to the pool. `deliveries` is the
    /// delivery count when known (1 for a new entry), else it is asked of
    /// Redis.
    fn start(&mut self, entries: Vec<Entry>, deliveries: Option<u64>) -> redis::RedisResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let counts = match deliveries {
            Some(n) => vec![n; entries.len()],
            None => {
                let c = &self.shared.config;
                let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
                let (stream, group) = (c.stream.clone(), c.group.clone());
                wire::deliveries(self.conn()?, &stream, &group, &ids)?
            }
        };
        let mut trimmed = Vec::new();
        for ((id, job), deliveries) in entries.into_iter().zip(counts) {
            {
                let mut held = self.shared.held();
                if !held.ids.insert(id.clone()) {
                    continue; // already running here
                }
            }
            let Some(text) = job else {
                trimmed.push(id);
                continue;
            };
            self.submit(id, text, deliveries);
        }
        if !trimmed.is_empty() {
            let c = self.shared.config.clone();
            tracing::warn!(ids = ?trimmed, "workpool-redis: pending entries no longer in the stream (trimmed): acked without running");
            redis::cmd("XACK")
                .arg(&c.stream)
                .arg(&c.group)
                .arg(&trimmed)
                .query::<()>(self.conn()?)?;
            let mut held = self.shared.held();
            for id in &trimmed {
                held.ids.remove(id);
            }
        }
        Ok(())
    }

    fn submit(&self, id: String, text: String, deliveries: u64) {
        let tx = self.tx.clone();
        let settle_id = id.clone();
        let settle_job = text.clone();
        let c = &self.shared.config;
        let envelope = serde_json::from_str::<Envelope>(&text);
        let over = deliveries > c.max_deliveries;
        let finish = move |outcome: Result<(), String>| {
            let _ = tx.send(Settle {
                id: settle_id,
                job: settle_job,
                deliveries,
                outcome,
            });
        };
        let envelope = match envelope {
            Ok(_) if over => {
                // Its consumers died (or were killed) while running it, each
                // time: a poison job. Not run again.
                return finish(Err(format!(
                    "delivered {deliveries} times, more than max_deliveries ({}), without finishing",
                    c.max_deliveries
                )));
            }
            Ok(envelope) => envelope,
            Err(e) => return finish(Err(format!("not a job: {e}"))),
        };
        let id_again = id.clone();
        let job = Job {
            id: JobId(id),
            envelope,
            attempt: deliveries,
        };
        let handler = Arc::clone(self.handler);
        let enqueued = job.enqueued_at();
        let mut job = Some(job);
        let shared = Arc::clone(self.shared);
        let spawned = self
            .pool
            .task(move |_token| {
                // `task` takes an `FnMut` (for its retries, unused here):
                // the job moves out on the one call.
                let Some(job) = job.take() else {
                    return Err("run twice by the pool".to_owned());
                };
                let pickup = SystemTime::now().duration_since(enqueued);
                shared.pickup.record(pickup.unwrap_or_default());
                handler(job)
            })
            .on_complete(move |result: &Result<Result<(), String>, TaskError>| {
                finish(match result {
                    Ok(outcome) => outcome.clone(),
                    Err(e) => Err(match e.panic_message() {
                        Some(m) => format!("handler panicked: {m}"),
                        None => format!("handler did not finish: {e}"),
                    }),
                });
            })
            .spawn();
        if let Err(e) = spawned {
            // Only a released pool refuses (room was counted): the entry
            // stays pending in Redis, for a reclaim or a restart.
            tracing::error!(error = %e, "workpool-redis: pool refused a job; it stays pending");
            self.shared.held().ids.remove(&id_again);
        }
    }
}
