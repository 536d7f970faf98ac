//! The settler thread: acks finished jobs, dead-letters the ones out of
//! deliveries, and schedules retries, in batches (one pipeline, one round
//! trip, for whatever has finished since the last one).
//!
//! An entry leaves `held` only once Redis has answered its `XACK`, so the
//! in-flight count never drops below what Redis still counts as pending.

use super::state::Shared;
use crate::job::now_ms;
use crate::stats::Counters;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A run that ended, sent by the pool's worker (`on_complete`).
#[derive(Debug)]
pub(crate) struct Settle {
    pub(crate) id: String,
    /// The job's JSON, copied into the dead-letter entry.
    pub(crate) job: String,
    pub(crate) deliveries: u64,
    pub(crate) outcome: Result<(), String>,
}

/// The longest one connect or one round trip of the settler may take, so
/// that a shutdown that gives up on Redis is not stuck in a socket call.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

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

fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
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
            Err(error) if s.deliveries >= c.max_deliveries => {
                tracing::warn!(id = %s.id, deliveries = s.deliveries, %error, "workpool-redis: dead-lettered");
                pipe.cmd("XADD")
                    .arg(&c.dead_stream)
                    .arg("*")
                    .arg("id")
                    .arg(&s.id)
                    .arg("job")
                    .arg(&s.job)
                    .arg("error")
                    .arg(&error)
                    .arg("deliveries")
                    .arg(s.deliveries)
                    .arg("consumer")
                    .arg(&c.consumer)
                    .arg("failed_at_ms")
                    .arg(now_ms())
                    .ignore();
                dead.push(s.id);
            }
            Err(error) => {
                tracing::debug!(id = %s.id, deliveries = s.deliveries, %error, "workpool-redis: will retry");
                retries.push((Instant::now() + c.backoff_for(s.deliveries), s.id));
            }
        }
    }
    let done: Vec<&String> = acks.iter().chain(&dead).collect();
    if !done.is_empty() {
        pipe.cmd("XACK")
            .arg(&c.stream)
            .arg(&c.group)
            .arg(&done)
            .ignore();
        // Until Redis has them: a lost connection, or a restarted server,
        // is retried; the entries stay held (and so count) meanwhile. Only
        // a shutdown past its timeout stops the retries.
        loop {
            let result = match conn {
                Some(conn) => pipe.query::<()>(conn),
                None => connect(client).and_then(|mut fresh| {
                    let r = pipe.query::<()>(&mut fresh);
                    *conn = Some(fresh);
                    r
                }),
            };
            match result {
                Ok(()) => break,
                Err(e) if shared.abandoned() => {
                    tracing::warn!(error = %e, n = done.len(), "workpool-redis: shutdown timed out; entries not acked stay pending, for a reclaim");
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
