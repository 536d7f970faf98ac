//! `ConsumerBuilder`: a consumer's options, their defaults, and `build`,
//! which checks them (the pool's limits), connects and creates the group.

use super::state::Config;
use super::{Consumer, Handler};
use crate::error::Error;
use crate::job::Job;
use crate::wire;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use workpool::Pool;

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
    /// The defaults, documented on each option (for [`Consumer::builder`]).
    pub(super) fn new(url: String, stream: String, group: String) -> ConsumerBuilder {
        ConsumerBuilder {
            url,
            stream,
            group,
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
    /// Default: 100 ms. Keep it well under a third of the
    /// [visibility timeout](Self::visibility_timeout): the lease renewals
    /// and the heartbeat that keep the consumer's entries and its place in
    /// the group wait for the read in progress.
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
    /// A consumer of the group idle this long (`idle` in `XINFO
    /// CONSUMERS`) that holds no entry, once the reclaim has taken its
    /// entries, is dead too: it is removed from the group (`XGROUP
    /// DELCONSUMER`), so a consumer killed with `kill -9` does not stay
    /// listed for ever. A live one sends a heartbeat every third of the
    /// timeout, so give every consumer of a group the same timeout. A
    /// consumer of another library that holds nothing and reads only new
    /// entries may look idle on Redis before 7.2 (where a read that finds
    /// nothing does not count) and be removed: it holds nothing, and Redis
    /// lists it again at its next read that gets an entry.
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
    /// [`ConsumerStats::in_flight`](crate::ConsumerStats::in_flight), and
    /// another consumer reclaims them after the visibility timeout (or
    /// this one re-reads them when it starts again under the same name).
    /// Default: the [visibility timeout](Self::visibility_timeout), after
    /// which others would reclaim them anyway, since a consumer that
    /// stopped reading no longer renews its leases.
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
        let mut conn = wire::connect(&client)?;
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
        let handler: Arc<Handler> = Arc::new(move |job| handler(job).map_err(|e| e.to_string()));
        Ok(Consumer::new(config, client, pool, handler))
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
