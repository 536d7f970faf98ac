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
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub(crate) String);

impl JobId {
    /// The entry ID as Redis writes it.
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
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The name the producer gave the job.
    pub fn name(&self) -> &str {
        &self.envelope.name
    }

    /// Which delivery this is, from 1: Redis's delivery count of the entry
    /// (plus attempts the envelope records from before it was written).
    pub fn attempt(&self) -> u64 {
        self.envelope.attempt + self.attempt
    }

    /// When the producer pushed it, by the producer's clock.
    pub fn enqueued_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.envelope.enqueued_at_ms)
    }

    /// The payload as JSON.
    pub fn payload(&self) -> &serde_json::Value {
        &self.envelope.payload
    }

    /// The payload decoded into `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] if the payload is not a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(T::deserialize(&self.envelope.payload)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
