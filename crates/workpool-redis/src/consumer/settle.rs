//! The settler thread: acks finished jobs, dead-letters the ones out of
//! deliveries, and schedules retries, in batches (one pipeline, one round
//! trip, for whatever has finished since the last one).
//!
//! An entry leaves `held` only once Redis has answered its `XACK`, so the
//! in-flight count never drops below what Redis still counts as pending.

use super::state::Shared;
use crate::job::now_ms;
use crate::stats::Counters;
use crate::wire::{self, DeadLetter};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A run that ended, sent by the pool's worker (`on_complete`).
#[derive(Debug)]
pub(crate) struct Settle {
    pub(crate) id: String,
    /// The entry's `job` field as read (empty if none), copied into the
    /// dead-letter entry.
    pub(crate) job: Vec<u8>,
    pub(crate) deliveries: u64,
    pub(crate) outcome: Result<(), String>,
    /// Whether a failure may be retried: not for an entry that is no job
    /// (it would fail the same way again), which is dead-lettered at once.
    pub(crate) retryable: bool,
}

pub(crate) fn run(shared: &Arc<Shared>, client: &redis::Client, rx: &Receiver<Settle>) {
    let mut conn = None;
    loop {
        if shared.abandoned() {
            return;
        }
        let first = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(s) => s,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        if !settle(shared, client, &mut conn, batch) {
            return;
        }
    }
}

/// Settles one batch; `false` when it gave up because a shutdown ran out
/// of time (the batch's entries stay held, and pending in Redis).
fn settle(
    shared: &Shared,
    client: &redis::Client,
    conn: &mut Option<redis::Connection>,
    batch: Vec<Settle>,
) -> bool {
    let c = &shared.config;
    let mut pipe = redis::pipe();
    pipe.atomic();
    let (mut acks, mut dead, mut retries) = (Vec::new(), Vec::new(), Vec::new());
    for s in batch {
        match s.outcome {
            Ok(()) => acks.push(s.id),
            Err(error) if !s.retryable || s.deliveries >= c.max_deliveries => {
                tracing::warn!(id = %s.id, deliveries = s.deliveries, %error, "workpool-redis: dead-lettered");
                let copy = DeadLetter {
                    id: &s.id,
                    job: &s.job,
                    error: &error,
                    deliveries: s.deliveries,
                    consumer: &c.consumer,
                    failed_at_ms: now_ms(),
                };
                pipe.add_command(wire::dead_letter(
                    &c.stream,
                    &c.dead_stream,
                    &c.group,
                    &copy,
                ))
                .ignore();
                dead.push(s.id);
            }
            Err(error) => {
                tracing::debug!(id = %s.id, deliveries = s.deliveries, %error, "workpool-redis: will retry");
                retries.push((Instant::now() + c.backoff_for(s.deliveries), s.id));
            }
        }
    }
    if !acks.is_empty() {
        pipe.add_command(wire::ack(&c.stream, &c.group, &acks))
            .ignore();
    }
    let done = acks.len() + dead.len();
    if done > 0 {
        // Until Redis has them: a lost connection, or a restarted server,
        // is retried; the entries stay held (and so count) meanwhile. Only
        // a shutdown past its timeout stops the retries.
        loop {
            let result = match conn {
                Some(conn) => pipe.query::<()>(conn),
                None => wire::connect(client).and_then(|mut fresh| {
                    let r = pipe.query::<()>(&mut fresh);
                    *conn = Some(fresh);
                    r
                }),
            };
            match result {
                Ok(()) => break,
                Err(e) if shared.abandoned() => {
                    tracing::warn!(error = %e, n = done, "workpool-redis: shutdown timed out; entries not acked stay pending, for a reclaim");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "workpool-redis: ack failed; retrying");
                    *conn = None;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    Counters::add(&shared.counters.acked, acks.len() as u64);
    Counters::add(&shared.counters.dead_lettered, dead.len() as u64);
    Counters::add(&shared.counters.retried, retries.len() as u64);
    let mut held = shared.held();
    for id in acks.iter().chain(&dead) {
        held.ids.remove(id);
    }
    for retry in retries {
        held.retries.push(std::cmp::Reverse(retry));
    }
    drop(held);
    shared.released.notify_all();
    true
}

#[cfg(test)]
mod tests {
    use crate::common::{self, redis_or_skip};
    use crate::wire::{self, DeadLetter};

    /// A settle batch sent again after its reply was lost must not copy a
    /// dead entry twice.
    #[test]
    fn dead_lettering_an_entry_twice_copies_it_once() {
        let server = redis_or_skip!();
        let mut conn = server.conn();
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("s")
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut conn)
            .unwrap();
        let id: String = redis::cmd("XADD")
            .arg("s")
            .arg("*")
            .arg("job")
            .arg("{}")
            .query(&mut conn)
            .unwrap();
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("STREAMS")
            .arg("s")
            .arg(">")
            .query(&mut conn)
            .unwrap();
        let copy = DeadLetter {
            id: &id,
            job: b"{}",
            error: "boom",
            deliveries: 5,
            consumer: "c",
            failed_at_ms: 7,
        };
        let dead_letter = |conn: &mut redis::Connection| -> i64 {
            wire::dead_letter("s", "s:dead", "g", &copy)
                .query(conn)
                .unwrap()
        };
        assert_eq!(dead_letter(&mut conn), 1, "the first call copies it");
        assert_eq!(dead_letter(&mut conn), 0, "a replay copies nothing");
        let copies: u64 = redis::cmd("XLEN").arg("s:dead").query(&mut conn).unwrap();
        assert_eq!(copies, 1);
        assert_eq!(common::pending(&mut conn, "s", "g"), 0);
        let fields: Vec<Vec<(String, Vec<String>)>> = redis::cmd("XRANGE")
            .arg("s:dead")
            .arg("-")
            .arg("+")
            .query(&mut conn)
            .map(|v: Vec<(String, Vec<String>)>| vec![v])
            .unwrap();
        assert_eq!(
            fields[0][0].1,
            [
                "id",
                id.as_str(),
                "job",
                "{}",
                "error",
                "boom",
                "deliveries",
                "5",
                "consumer",
                "c",
                "failed_at_ms",
                "7"
            ]
        );
    }
}
