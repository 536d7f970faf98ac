//! A stream entry as any client may `XADD` it, through the consumer's
//! decoder (`workpool_redis::decode_entries`, the reader's own path from a
//! reply to a job or a dead-letter reason): no input panics, and each
//! decodes to a job exactly when its `job` field is a job's JSON envelope.
//!
//! Input: one flag byte, then the entry's ID and its fields and values,
//! separated by 0xFF (a byte no UTF-8 text holds, so any JSON fits
//! between two). Flags: bit 0, the entry was deleted (nil fields); bit 1,
//! the ID comes as a simple string; bit 2, the fields come as a number
//! (no list); bits 3-7, the delivery count (31: `u64::MAX`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use redis::Value;
use serde::Deserialize;
use workpool_redis::Error;

/// The envelope the producer writes, as the decoder must read it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Envelope {
    name: String,
    attempt: u64,
    enqueued_at_ms: u64,
    payload: serde_json::Value,
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let deleted = flags & 1 != 0;
    let deliveries = match u64::from(flags >> 3) {
        31 => u64::MAX,
        n => n,
    };
    let mut parts = rest.split(|&b| b == 0xFF);
    let id_bytes = parts.next().unwrap_or_default().to_vec();
    let pairs: Vec<&[u8]> = parts.collect();
    let id = if flags & 2 != 0 {
        Value::SimpleString(String::from_utf8_lossy(&id_bytes).into_owned())
    } else {
        Value::BulkString(id_bytes.clone())
    };
    let fields = if deleted {
        Value::Nil
    } else if flags & 4 != 0 {
        Value::Int(pairs.len() as i64)
    } else {
        Value::Array(
            pairs
                .iter()
                .map(|p| Value::BulkString(p.to_vec()))
                .collect(),
        )
    };
    let reply = Value::Array(vec![Value::Array(vec![id, fields])]);

    let decoded = workpool_redis::decode_entries(&reply, deliveries);
    assert_eq!(decoded.len(), 1, "one entry in, one out");
    let (id, outcome) = &decoded[0];
    assert_eq!(id, &String::from_utf8_lossy(&id_bytes));
    // The first `job` field, as the decoder looks for it.
    let job_field = if deleted || flags & 4 != 0 {
        None
    } else {
        pairs
            .chunks_exact(2)
            .find(|kv| kv[0] == b"job")
            .map(|kv| kv[1])
    };
    match outcome {
        Ok(None) => assert!(deleted, "only a deleted entry decodes to nothing"),
        Ok(Some(job)) => {
            let text = job_field.expect("a job has a `job` field");
            let envelope: Envelope =
                serde_json::from_slice(text).expect("a job's field is an envelope");
            assert_eq!(job.id().as_str(), id);
            assert_eq!(job.name(), envelope.name);
            assert_eq!(job.attempt(), envelope.attempt.saturating_add(deliveries));
            assert_eq!(job.payload(), &envelope.payload);
            let _ = job.enqueued_at();
            let _ = job.decode::<serde_json::Value>();
            if let Some(ms) = job.id().added_at_ms() {
                let before_dash = id.split_once('-').map(|(ms, _)| ms.parse::<u64>());
                assert_eq!(before_dash, Some(Ok(ms)), "{id} read as {ms} ms");
            }
            assert_eq!(job.id().cmp(job.id()), std::cmp::Ordering::Equal);
        }
        Err(e) => {
            assert!(!deleted);
            match e {
                Error::NotAJob { id: named } => {
                    assert_eq!(named, id);
                    assert!(job_field.is_none(), "a `job` field was there");
                }
                Error::Json(_) => {
                    let text = job_field.expect("a JSON error has a `job` field");
                    assert!(serde_json::from_slice::<Envelope>(text).is_err());
                }
                other => panic!("an entry refused with {other:?}"),
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
