//! `Producer`: jobs into a stream with `XADD`.

use crate::error::Error;
use crate::job::{Envelope, JobId};
use crate::wire;
use serde::Serialize;
use std::fmt;
use std::sync::Mutex;

/// Pushes jobs onto a Redis stream, each an entry whose `job` field holds
/// the JSON envelope `{"name", "attempt", "enqueued_at_ms", "payload"}`.
///
/// # Examples
///
/// ```no_run
/// use workpool_redis::Producer;
///
/// let producer = Producer::builder("redis://127.0.0.1:6379", "jobs")
///     .job_name("resize")
///     .maxlen(1_000_000)
///     .build()?;
/// let id = producer.push(&serde_json::json!({"image": 42}))?;
/// println!("pushed {id}");
/// # Ok::<(), workpool_redis::Error>(())
/// ```
///
/// A call that fails on a lost connection (a restarted server, a dropped
/// route) returns the error; the next call connects again. Each round trip
/// times out after 5 s.
pub struct Producer {
    client: redis::Client,
    /// `None` after a connection error, until the next call.
    conn: Mutex<Option<redis::Connection>>,
    stream: String,
    name: String,
    maxlen: Option<usize>,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.stream)
            .field("maxlen", &self.maxlen)
            .finish_non_exhaustive()
    }
}

/// Options of a [`Producer`]: [`Producer::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProducerBuilder {
    url: String,
    stream: String,
    name: String,
    maxlen: Option<usize>,
}

impl ProducerBuilder {
    /// The name written into each job pushed with [`Producer::push`].
    /// Default: `"job"`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// let producer = Producer::builder("redis://127.0.0.1:6379", "images")
    ///     .job_name("resize")
    ///     .build()?;
    /// // A job named "resize": a handler reads it as `job.name()`.
    /// producer.push(&serde_json::json!({"image": 42}))?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn job_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Trims the stream to about `maxlen` entries on each push
    /// (`XADD ... MAXLEN ~ maxlen`). Default: no trimming.
    ///
    /// Redis trims the oldest entries whether or not a consumer group has
    /// read them: a job trimmed before it ran is lost (a consumer that
    /// meets its ID pending acks it and says so in the log). Size it well
    /// above the backlog you expect.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// // About the last million entries are kept; older ones go, run or not.
    /// let producer = Producer::builder("redis://127.0.0.1:6379", "events")
    ///     .maxlen(1_000_000)
    ///     .build()?;
    /// producer.push(&serde_json::json!({"clicked": "buy"}))?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = Some(maxlen);
        self
    }

    /// Connects.
    ///
    /// # Errors
    ///
    /// [`Error::Redis`] for a bad URL or a failed connection.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// let producer = Producer::builder("redis://127.0.0.1:6379", "images")
    ///     .job_name("resize")
    ///     .build()?;
    /// assert_eq!(producer.stream(), "images");
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn build(self) -> Result<Producer, Error> {
        let client = redis::Client::open(self.url.as_str())?;
        let conn = wire::connect(&client)?;
        Ok(Producer {
            client,
            conn: Mutex::new(Some(conn)),
            stream: self.stream,
            name: self.name,
            maxlen: self.maxlen,
        })
    }
}

impl Producer {
    /// A builder for a producer onto `stream` at `url`
    /// (`redis://host:port/db`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// // Database 2 of the server.
    /// let producer = Producer::builder("redis://127.0.0.1:6379/2", "images")
    ///     .maxlen(100_000)
    ///     .build()?;
    /// producer.push(&serde_json::json!({"image": 42}))?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn builder(url: impl Into<String>, stream: impl Into<String>) -> ProducerBuilder {
        ProducerBuilder {
            url: url.into(),
            stream: stream.into(),
            name: "job".to_owned(),
            maxlen: None,
        }
    }

    /// A producer with every option at its default.
    ///
    /// # Errors
    ///
    /// As [`ProducerBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// // Job name "job", no trimming.
    /// let producer = Producer::new("redis://127.0.0.1:6379", "emails")?;
    /// producer.push(&serde_json::json!({"to": "ada@example.com"}))?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn new(url: &str, stream: &str) -> Result<Producer, Error> {
        Producer::builder(url, stream).build()
    }

    /// The stream it pushes to.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// let producer = Producer::new("redis://127.0.0.1:6379", "emails")?;
    /// assert_eq!(producer.stream(), "emails");
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Pushes one job under the producer's [job name](ProducerBuilder::job_name).
    ///
    /// # Errors
    ///
    /// [`Error::Json`] if `job` cannot be serialized; [`Error::Redis`] if
    /// `XADD` failed (the job may or may not have been added).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// #[derive(serde::Serialize)]
    /// struct Resize { image: u64, width: u32 }
    ///
    /// let producer = Producer::new("redis://127.0.0.1:6379", "images")?;
    /// let id = producer.push(&Resize { image: 42, width: 320 })?;
    /// println!("queued as {id}");
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn push<T: Serialize + ?Sized>(&self, job: &T) -> Result<JobId, Error> {
        self.push_named(&self.name, job)
    }

    /// Pushes one job under `name`.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use serde_json::json;
    /// use workpool_redis::Producer;
    ///
    /// let producer = Producer::new("redis://127.0.0.1:6379", "images")?;
    /// producer.push_named("resize", &json!({"image": 42, "width": 320}))?;
    /// producer.push_named("delete", &json!({"image": 7}))?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn push_named<T: Serialize + ?Sized>(&self, name: &str, job: &T) -> Result<JobId, Error> {
        let text = serde_json::to_string(&Envelope::new(name, job)?)?;
        let id: String = self.query(|conn| self.xadd(&text).query(conn))?;
        Ok(JobId(id))
    }

    /// Pushes many jobs in one round trip (a pipeline), in order; returns
    /// their IDs in the same order.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push); on [`Error::Redis`] some of the jobs may
    /// have been added.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// let producer = Producer::new("redis://127.0.0.1:6379", "images")?;
    /// let images: Vec<u64> = (1..=100).collect();
    /// let ids = producer.push_batch(&images)?; // one round trip
    /// assert_eq!(ids.len(), 100);
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn push_batch<'a, T, I>(&self, jobs: I) -> Result<Vec<JobId>, Error>
    where
        T: Serialize + 'a,
        I: IntoIterator<Item = &'a T>,
    {
        let mut pipe = redis::pipe();
        let mut n = 0;
        for job in jobs {
            let text = serde_json::to_string(&Envelope::new(&self.name, job)?)?;
            pipe.add_command(self.xadd(&text));
            n += 1;
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self.query(|conn| pipe.query(conn))?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    fn xadd(&self, text: &str) -> redis::Cmd {
        wire::push(&self.stream, self.maxlen, text)
    }

    /// Runs `f` on the connection, connecting first if the last call lost
    /// it; drops it if `f` fails on the connection itself.
    fn query<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.is_none() {
            *conn = Some(wire::connect(&self.client)?);
        }
        let result = f(conn.as_mut().expect("just connected"));
        if let Err(e) = &result {
            if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                *conn = None;
            }
        }
        Ok(result?)
    }
}
