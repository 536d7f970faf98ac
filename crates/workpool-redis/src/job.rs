//! A job as it travels: the JSON envelope in a stream entry, and the [`Job`]
//! a handler receives.

use crate::error::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The stream entry's field that holds the job's JSON envelope.
pub(crate) const FIELD: &str = "job";

/// A job's ID: the ID Redis gave its stream entry (`1700000000000-0`).
/// IDs order as the stream does: by milliseconds, then by sequence (not as
/// strings, where `…-10` would sort before `…-9`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId(pub(crate) String);

impl JobId {
    /// `(milliseconds, sequence)`, or `None` for a text that is not an
    /// entry ID (those order after every entry ID, by text).
    fn parts(&self) -> Option<(u64, u64)> {
        let (ms, seq) = self.0.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl Ord for JobId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.parts(), other.parts()) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => self.0.cmp(&other.0),
        }
        .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl JobId {
    /// The entry ID as Redis writes it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::Producer;
    ///
    /// let producer = Producer::new("redis://127.0.0.1:6379", "jobs")?;
    /// let id = producer.push(&42)?;
    /// // `{milliseconds}-{sequence}`, as in `1700000000000-0`.
    /// let (ms, seq) = id.as_str().split_once('-').expect("a stream entry ID");
    /// assert!(ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok());
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// What the producer writes into the entry's `job` field, as JSON:
/// `{"name": .., "attempt": 0, "enqueued_at_ms": .., "payload": ..}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) name: String,
    /// Attempts made before this entry was written: 0 from a producer.
    pub(crate) attempt: u64,
    /// Milliseconds since the Unix epoch, by the producer's clock.
    pub(crate) enqueued_at_ms: u64,
    pub(crate) payload: serde_json::Value,
}

impl Envelope {
    pub(crate) fn new<T: Serialize + ?Sized>(name: &str, payload: &T) -> Result<Envelope, Error> {
        Ok(Envelope {
            name: name.to_owned(),
            attempt: 0,
            enqueued_at_ms: now_ms(),
            payload: serde_json::to_value(payload)?,
        })
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A job handed to the consumer's handler.
///
/// Delivery is at least once: the same job (same [`id`](Self::id)) may run
/// again after a crash, a lost acknowledgement or a reclaim; see the crate
/// docs for how to make its effect idempotent.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) id: JobId,
    pub(crate) envelope: Envelope,
    pub(crate) attempt: u64,
}

impl Job {
    /// The stream entry's ID: the same on every delivery of this job.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// fn send(job: Job) -> Result<(), String> {
    ///     // The same on every delivery: the mail API drops a repeated key.
    ///     let idempotency_key = format!("emails:{}", job.id());
    ///     println!("sending with key {idempotency_key}");
    ///     Ok(())
    /// }
    /// # let _ = Consumer::builder("redis://127.0.0.1:6379", "emails", "senders").build(send)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The name the producer gave the job.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // Jobs pushed with `push_named("resize", ..)` and `push_named("delete", ..)`.
    /// fn handle(job: Job) -> Result<(), String> {
    ///     match job.name() {
    ///         "resize" => Ok(()),
    ///         "delete" => Ok(()),
    ///         other => Err(format!("no handler for {other:?}")),
    ///     }
    /// }
    /// # let _ = Consumer::builder("redis://127.0.0.1:6379", "images", "workers").build(handle)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.envelope.name
    }

    /// Which delivery this is, from 1: Redis's delivery count of the entry
    /// (plus attempts the envelope records from before it was written).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// fn charge(job: Job) -> Result<(), String> {
    ///     if job.attempt() > 1 {
    ///         // A retry, or a reclaim from a consumer that died.
    ///         println!("job {}: delivery {}", job.id(), job.attempt());
    ///     }
    ///     Ok(())
    /// }
    /// # let consumer = Consumer::builder("redis://127.0.0.1:6379", "payments", "chargers");
    /// # let _ = consumer.build(charge)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn attempt(&self) -> u64 {
        self.envelope.attempt + self.attempt
    }

    /// When the producer pushed it, by the producer's clock.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime};
    /// use workpool_redis::{Consumer, Job};
    ///
    /// fn notify(job: Job) -> Result<(), String> {
    ///     // By two clocks (the producer's, this host's): an estimate.
    ///     let age = SystemTime::now().duration_since(job.enqueued_at()).unwrap_or_default();
    ///     if age > Duration::from_secs(300) {
    ///         return Ok(()); // stale: acked without sending
    ///     }
    ///     Ok(())
    /// }
    /// # let _ = Consumer::builder("redis://127.0.0.1:6379", "alerts", "notifiers").build(notify)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn enqueued_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.envelope.enqueued_at_ms)
    }

    /// The payload as JSON.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// // Pushed as `producer.push(&json!({"image": 42}))`.
    /// fn resize(job: Job) -> Result<(), String> {
    ///     let image = job.payload()["image"].as_u64().ok_or("no image ID")?;
    ///     println!("resizing image {image}");
    ///     Ok(())
    /// }
    /// # let _ = Consumer::builder("redis://127.0.0.1:6379", "images", "resizers").build(resize)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn payload(&self) -> &serde_json::Value {
        &self.envelope.payload
    }

    /// The payload decoded into `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] if the payload is not a `T`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workpool_redis::{Consumer, Job};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Resize { image: u64, width: u32 }
    ///
    /// fn resize(job: Job) -> Result<(), workpool_redis::Error> {
    ///     let Resize { image, width } = job.decode()?;
    ///     println!("resizing image {image} to {width} px");
    ///     Ok(())
    /// }
    /// # let _ = Consumer::builder("redis://127.0.0.1:6379", "images", "resizers").build(resize)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(T::deserialize(&self.envelope.payload)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_as_the_stream_does() {
        let id = |s: &str| JobId(s.to_owned());
        assert!(id("1700000000000-9") < id("1700000000000-10"));
        assert!(id("999-5") < id("1000-0"));
        assert!(id("1000-0") < id("not-an-id"));
        let mut ids = vec![id("5-10"), id("5-9"), id("4-100")];
        ids.sort();
        assert_eq!(ids, [id("4-100"), id("5-9"), id("5-10")]);
    }

    #[test]
    fn envelope_round_trips() {
        let e = Envelope::new("demo", &serde_json::json!({"id": 7})).unwrap();
        let text = serde_json::to_string(&e).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        let job = Job {
            id: JobId("1-0".into()),
            envelope: back,
            attempt: 2,
        };
        assert_eq!(job.name(), "demo");
        assert_eq!(job.attempt(), 2);
        assert_eq!(job.payload()["id"], 7);
        #[derive(Deserialize)]
        struct P {
            id: u64,
        }
        assert_eq!(job.decode::<P>().unwrap().id, 7);
    }
}
