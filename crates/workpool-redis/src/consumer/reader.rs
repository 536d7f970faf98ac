//! The reader loop, on the thread that calls `Consumer::run`: it reads
//! with `XREADGROUP` as room allows, re-reads its own pending entries at
//! start, reclaims a dead consumer's (`XAUTOCLAIM`), renews its leases
//! (`XCLAIM ... JUSTID`), runs due retries, and hands each entry to the
//! pool; then, on shutdown, waits for the settler (`settle.rs`) to ack
//! what it holds.

use super::settle::{self, Settle};
use super::state::Shared;
use super::Handler;
use crate::error::Error;
use crate::job::{Envelope, Job, JobId};
use crate::stats::Counters;
use crate::wire::{self, Entry};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use workpool::{Pool, TaskError};

/// Reads and runs jobs until `shared` is shut down, then waits for the
/// jobs it holds to be settled (until the shutdown timeout), stops the
/// settler and releases `pool` (the body of [`Consumer::run`]).
///
/// [`Consumer::run`]: super::Consumer::run
pub(super) fn run(
    shared: &Arc<Shared>,
    client: &redis::Client,
    pool: &Pool,
    handler: &Arc<Handler>,
) -> Result<(), Error> {
    let (tx, rx) = mpsc::channel::<Settle>();
    let settler = {
        let shared = Arc::clone(shared);
        let client = client.clone();
        std::thread::Builder::new()
            .name("workpool-redis-settle".into())
            .spawn(move || settle::run(&shared, &client, &rx))
            .map_err(|e| Error::Build(workpool::BuildError::SpawnFailed(Arc::new(e))))?
    };
    let mut reader = Reader {
        shared,
        client,
        conn: None,
        pool,
        handler,
        tx: &tx,
        own_cursor: Some("0".to_owned()),
        last_reclaim: None,
        last_touch: Instant::now(),
    };
    reader.read_until_shutdown();
    // Stopped reading: wait for every entry held that is not waiting
    // for a retry to be settled, until the shutdown timeout.
    let deadline = Instant::now() + shared.config.shutdown_timeout;
    let settled = {
        let mut held = shared.held();
        loop {
            if held.ids.len() <= held.retries.len() {
                break true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            held = shared
                .released
                .wait_timeout(held, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    };
    if !settled {
        let unsettled = {
            let held = shared.held();
            held.ids.len() - held.retries.len()
        };
        tracing::warn!(
            unsettled,
            timeout = ?shared.config.shutdown_timeout,
            "workpool-redis: shutdown timed out; jobs not acked stay pending in Redis, for a reclaim by another consumer"
        );
        shared
            .abandon
            .store(true, std::sync::atomic::Ordering::Release);
    }
    drop(tx);
    // Bounded: once abandoned, the settler returns after its current
    // round trip, whose connect, read and write time out.
    let _ = settler.join();
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = pool.release_timeout(left.max(Duration::from_millis(100)));
    Ok(())
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
            let io = wire::IO_TIMEOUT;
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
            .is_none_or(|at| at.elapsed() >= c.visibility_timeout / 2);
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
            wire::ack(&c.stream, &c.group, &trimmed).query::<()>(self.conn()?)?;
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
