//! A job as it travels: the JSON envelope in a stream entry, and the [`Job`]
//! a handler receives.

use crate::error::Error;
use crate::wire::Entry;
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
        // Digits only: `u64::from_str` would take a `+` that Redis never
        // writes.
        let number = |s: &str| {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| s.parse().ok()).flatten()
        };
        let (ms, seq) = self.0.split_once('-')?;
        Some((number(ms)?, number(seq)?))
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

    /// The milliseconds part of the entry ID: when the Redis server added
    /// the entry, by the server's clock (for an `XADD` with the ID `*`, as
    /// [`Producer`](crate::Producer) sends; a client that names its own ID
    /// names this time too). `None` for a text that is not
    /// `{milliseconds}-{sequence}`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// use workpool_redis::{Consumer, Job};
    ///
    /// fn notify(job: Job) -> Result<(), String> {
    ///     // When Redis added it, by the server's clock, whoever pushed it.
    ///     let added = job.id().added_at_ms().ok_or("not a stream entry ID")?;
    ///     let added = UNIX_EPOCH + Duration::from_millis(added);
    ///     println!("job {} added at {added:?}", job.id());
    ///     Ok(())
    /// }
    /// # let _ = Consumer::builder("redis://127.0.0.1:6379", "alerts", "notifiers").build(notify)?;
    /// # Ok::<(), workpool_redis::Error>(())
    /// ```
    pub fn added_at_ms(&self) -> Option<u64> {
        self.parts().map(|(ms, _)| ms)
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
        // Saturating: the envelope's count is whatever the writer put there.
        self.envelope.attempt.saturating_add(self.attempt)
    }

    /// When the producer pushed it, by the producer's clock: the job's own
    /// data, as its writer put it (another client may write any time).
    /// The consumer's pickup latency does not use it but the time in the
    /// [entry ID](JobId::added_at_ms), which is the Redis server's. A time
    /// beyond what this platform's `SystemTime` holds reads as the Unix
    /// epoch.
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
        let ms = Duration::from_millis(self.envelope.enqueued_at_ms);
        // `+` panics past the platform's range (which a hostile writer's
        // `u64::MAX` is, where `SystemTime` counts 100 ns in a `u64`).
        UNIX_EPOCH.checked_add(ms).unwrap_or(UNIX_EPOCH)
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

/// What the consumer makes of a stream entry read with `deliveries`
/// deliveries: `Ok(None)` for an entry deleted while pending (acked
/// without running), a [`Job`], or why it is none ([`Error::NotAJob`]:
/// no `job` field; [`Error::Json`]: that field is not a job's JSON
/// envelope, not UTF-8 included), for the dead-letter stream.
pub(crate) fn decode(entry: &Entry, deliveries: u64) -> Result<Option<Job>, Error> {
    if entry.fields.is_none() {
        return Ok(None);
    }
    let text = entry.job_field().ok_or_else(|| Error::NotAJob {
        id: entry.id.clone(),
    })?;
    Ok(Some(Job {
        id: JobId(entry.id.clone()),
        envelope: serde_json::from_slice(text)?,
        attempt: deliveries,
    }))
}

/// For the fuzz targets in `fuzz/`, not part of the API: what the consumer
/// makes of a reply's entries, `[[id, [field, value, ..] | nil], ..]`,
/// each read with `deliveries` deliveries (see the consumer's reader):
/// each entry's ID and its job, `None` for an entry deleted while pending,
/// or why it is no job (it is then dead-lettered).
///
/// # Examples
///
/// ```
/// use redis::Value;
///
/// let entry = |id: &str, fields: Value| Value::Array(vec![Value::BulkString(id.into()), fields]);
/// let field = |s: &str| Value::BulkString(s.into());
/// let job = r#"{"name":"x","attempt":0,"enqueued_at_ms":1,"payload":7}"#;
/// let reply = Value::Array(vec![
///     entry("5-0", Value::Array(vec![field("job"), field(job)])),
///     entry("6-0", Value::Array(vec![field("job"), field("not JSON")])),
///     entry("7-0", Value::Nil),
/// ]);
/// let decoded = workpool_redis::decode_entries(&reply, 1);
/// let job = decoded[0].1.as_ref().unwrap().as_ref().unwrap();
/// assert_eq!((job.payload(), job.id().added_at_ms()), (&serde_json::json!(7), Some(5)));
/// assert!(decoded[1].1.is_err());
/// assert!(matches!(decoded[2].1, Ok(None)));
/// ```
#[doc(hidden)]
pub fn decode_entries(
    reply: &redis::Value,
    deliveries: u64,
) -> Vec<(String, Result<Option<Job>, Error>)> {
    crate::wire::entries(reply)
        .iter()
        .map(|entry| (entry.id.clone(), decode(entry, deliveries)))
        .collect()
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

    fn entry(fields: Option<Vec<(&[u8], &[u8])>>) -> Entry {
        Entry {
            id: "1700000000000-3".to_owned(),
            fields: fields.map(|f| {
                f.into_iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect()
            }),
        }
    }

    fn job_entry(json: &[u8]) -> Entry {
        entry(Some(vec![(b"job", json)]))
    }

    #[test]
    fn an_entry_decodes_to_a_job_or_says_why_not() {
        let json = br#"{"name":"x","attempt":1,"enqueued_at_ms":1,"payload":[1]}"#;
        let job = decode(&job_entry(json), 2).unwrap().unwrap();
        assert_eq!(
            (job.name(), job.attempt(), job.id().added_at_ms()),
            ("x", 3, Some(1_700_000_000_000))
        );
        assert_eq!(job.enqueued_at(), UNIX_EPOCH + Duration::from_millis(1));
        assert!(
            decode(&entry(None), 1).unwrap().is_none(),
            "deleted while pending"
        );
        let no_job = decode(&entry(Some(vec![(b"other", b"{}")])), 1).unwrap_err();
        assert!(
            matches!(no_job, Error::NotAJob { ref id } if id == "1700000000000-3"),
            "{no_job}"
        );
        for bad in [
            &b"not JSON"[..],
            br#"{"name":"x","attempt":0,"payload":1}"#,
            br#"{"name":"x","attempt":"0","enqueued_at_ms":1,"payload":1}"#,
            br#"{"name":"x","attempt":-1,"enqueued_at_ms":1,"payload":1}"#,
            b"{\"name\":\"\xff\",\"attempt\":0,\"enqueued_at_ms\":1,\"payload\":1}",
        ] {
            let e = decode(&job_entry(bad), 1).unwrap_err();
            assert!(
                matches!(e, Error::Json(_)),
                "{}: {e}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// A writer's extreme numbers read as what they say, without overflow.
    #[test]
    fn extreme_numbers_in_an_envelope_do_not_overflow() {
        let json = br#"{"name":"x","attempt":18446744073709551615,"enqueued_at_ms":18446744073709551615,"payload":null}"#;
        let job = decode(&job_entry(json), u64::MAX).unwrap().unwrap();
        assert_eq!(job.attempt(), u64::MAX);
        let _ = job.enqueued_at();
    }

    #[test]
    fn added_at_ms_is_the_id_time_or_none() {
        let id = |s: &str| JobId(s.to_owned());
        assert_eq!(id("1700000000000-5").added_at_ms(), Some(1_700_000_000_000));
        for bad in [
            "",
            "-",
            "1",
            "1-",
            "-1",
            "x-1",
            "1-x",
            "1-2-3",
            "18446744073709551616-0",
            "+1-0",
        ] {
            assert_eq!(id(bad).added_at_ms(), None, "{bad:?}");
        }
    }
}
