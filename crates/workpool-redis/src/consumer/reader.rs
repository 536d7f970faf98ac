//! The reader loop, on the thread that calls `Consumer::run`: it reads
//! with `XREADGROUP` as room allows, re-reads its own pending entries at
//! start, reclaims a dead consumer's (`XAUTOCLAIM`) and removes the dead
//! consumers left holding nothing (`XGROUP DELCONSUMER`), renews its
//! leases (`XCLAIM ... JUSTID`) and shows itself alive (a heartbeat read),
//! runs due retries, and hands each entry to the pool; then, on shutdown,
//! waits for the settler (`settle.rs`) to ack what it holds.
//!
//! Pickup latency is measured from the entry's ID, the Redis server's
//! clock when it added the entry, never from the `enqueued_at_ms` a
//! client wrote into the job (any client can write any time there). "Now"
//! is the server's clock too: every read sends `TIME` in the same
//! pipeline, right behind it (no extra round trip), and the time from
//! that reply to the run's start is added on this host's monotonic clock.
//! So no two hosts' wall clocks are compared; the reply's way back over
//! the network (well under a millisecond on a LAN) is not counted.

use super::settle::{self, Settle};
use super::state::Shared;
use super::Handler;
use crate::error::Error;
use crate::job::{self, Job};
use crate::stats::Counters;
use crate::wire::{self, Read};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
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

/// When a batch of entries was read: the server's clock at its reply, and
/// this host's monotonic clock as the reply arrived.
#[derive(Debug, Clone, Copy)]
struct ReadClock {
    server_us: Option<u64>,
    received: Instant,
}

impl ReadClock {
    fn of(read: &Read) -> ReadClock {
        ReadClock {
            server_us: read.server_us,
            received: Instant::now(),
        }
    }

    /// From the entry's `XADD` (the time in its ID) to now. `None` where it
    /// cannot be told: an ID that is not `{ms}-{seq}`, a server whose
    /// `TIME` was unreadable, or an ID after the server's clock (an ID a
    /// client named in `XADD`, not one the server gave), so that a hostile
    /// ID neither fails the job nor skews the figures.
    fn pickup(&self, added_ms: Option<u64>) -> Option<Duration> {
        let added_us = added_ms?.checked_mul(1000)?;
        let waited = self.server_us?.checked_sub(added_us)?;
        Some(Duration::from_micros(waited).saturating_add(self.received.elapsed()))
    }
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
            // Even holding nothing on a quiet stream: the others' sweep
            // (below) takes a consumer idle a visibility timeout for dead.
            wire::heartbeat(self.conn()?, &c.stream, &c.group, &c.consumer)?;
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
            let read = wire::read_group(
                self.conn()?,
                &c.stream,
                &c.group,
                &c.consumer,
                room,
                None,
                &cursor,
            )?;
            match read.entries.last() {
                None => self.own_cursor = None,
                Some(last) => self.own_cursor = Some(last.id.clone()),
            }
            Counters::add(&self.shared.counters.read, read.entries.len() as u64);
            return self.start(read, None);
        }
        let reclaim_due = self
            .last_reclaim
            .is_none_or(|at| at.elapsed() >= c.visibility_timeout / 2);
        if reclaim_due {
            self.last_reclaim = Some(Instant::now());
            let (_, read) = wire::autoclaim(
                self.conn()?,
                &c.stream,
                &c.group,
                &c.consumer,
                c.visibility_timeout,
                "0-0",
                room,
            )?;
            let reclaimed = read.entries.len();
            if reclaimed > 0 {
                tracing::info!(
                    n = reclaimed,
                    "workpool-redis: reclaimed entries of a dead consumer"
                );
                Counters::add(&self.shared.counters.reclaimed, reclaimed as u64);
                self.start(read, None)?;
            }
            // After the claim (and once what it took is held and running):
            // a dead consumer whose entries it took now holds nothing.
            self.remove_dead_consumers()?;
            if reclaimed > 0 {
                return Ok(());
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
        let read = wire::read_group(
            self.conn()?,
            &c.stream,
            &c.group,
            &c.consumer,
            room,
            Some(block),
            ">",
        )?;
        Counters::add(&self.shared.counters.read, read.entries.len() as u64);
        self.start(read, Some(1))
    }

    /// Removes from the group the consumers that hold nothing (after the
    /// reclaim just made) and have been idle the visibility timeout: the
    /// threshold of the reclaim, so one that is dead for it is dead for
    /// this. A live consumer is not idle that long: it sends a heartbeat
    /// every third of it (one stalled longer holds nothing, and is listed
    /// again at its next read). A failure of the script itself (a server
    /// without `XINFO` in scripts) is logged, not retried: it costs a
    /// listing, not a job.
    fn remove_dead_consumers(&mut self) -> redis::RedisResult<()> {
        let c = self.shared.config.clone();
        let removed = wire::remove_idle_consumers(
            self.conn()?,
            &c.stream,
            &c.group,
            &c.consumer,
            c.visibility_timeout,
        );
        match removed {
            Ok(names) if !names.is_empty() => {
                tracing::info!(
                    ?names,
                    "workpool-redis: removed dead consumers holding nothing from the group"
                );
            }
            Ok(_) => {}
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                return Err(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, "workpool-redis: could not remove dead consumers from the group");
            }
        }
        Ok(())
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
        let read = match wire::claim(self.conn()?, &c.stream, &c.group, &c.consumer, &due) {
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
            if !read.entries.iter().any(|e| &e.id == id) {
                held.ids.remove(id);
            }
        }
        for entry in &read.entries {
            held.ids.remove(&entry.id);
        }
        drop(held);
        self.shared.released.notify_all();
        self.start(read, None)
    }

    /// Holds the entries read and hands each to the pool. `deliveries` is
    /// the delivery count when known (1 for a new entry), else it is asked
    /// of Redis.
    fn start(&mut self, read: Read, deliveries: Option<u64>) -> redis::RedisResult<()> {
        if read.entries.is_empty() {
            return Ok(());
        }
        let clock = ReadClock::of(&read);
        let counts = match deliveries {
            Some(n) => vec![n; read.entries.len()],
            None => {
                let c = &self.shared.config;
                let ids: Vec<&str> = read.entries.iter().map(|e| e.id.as_str()).collect();
                let (stream, group) = (c.stream.clone(), c.group.clone());
                wire::deliveries(self.conn()?, &stream, &group, &ids)?
            }
        };
        let mut trimmed = Vec::new();
        for (entry, deliveries) in read.entries.into_iter().zip(counts) {
            {
                let mut held = self.shared.held();
                if !held.ids.insert(entry.id.clone()) {
                    continue; // already running here
                }
            }
            let raw = entry.job_field().unwrap_or_default().to_vec();
            match job::decode(&entry, deliveries) {
                Ok(None) => trimmed.push(entry.id),
                Ok(Some(job)) => self.submit(job, raw, deliveries, clock),
                // Any client can XADD anything: what is no job is
                // dead-lettered at once with the reason, never run.
                Err(e) => self.settle_unrun(entry.id, raw, deliveries, format!("not a job: {e}")),
            }
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

    /// Hands an entry that is not run to the settler as failed with
    /// `error`, to be dead-lettered without a retry.
    fn settle_unrun(&self, id: String, job: Vec<u8>, deliveries: u64, error: String) {
        let _ = self.tx.send(Settle {
            id,
            job,
            deliveries,
            outcome: Err(error),
            retryable: false,
        });
    }

    fn submit(&self, job: Job, raw: Vec<u8>, deliveries: u64, clock: ReadClock) {
        let c = &self.shared.config;
        let id = job.id().as_str().to_owned();
        if deliveries > c.max_deliveries {
            // Its consumers died (or were killed) while running it, each
            // time: a poison job. Not run again.
            let error = format!(
                "delivered {deliveries} times, more than max_deliveries ({}), without finishing",
                c.max_deliveries
            );
            return self.settle_unrun(id, raw, deliveries, error);
        }
        let tx = self.tx.clone();
        let settle_id = id.clone();
        let finish = move |outcome: Result<(), String>| {
            let _ = tx.send(Settle {
                id: settle_id,
                job: raw,
                deliveries,
                outcome,
                retryable: true,
            });
        };
        let handler = Arc::clone(self.handler);
        let added_ms = job.id().added_at_ms();
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
                if let Some(pickup) = clock.pickup(added_ms) {
                    shared.pickup.record(pickup);
                }
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
            self.shared.held().ids.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReadClock;
    use std::time::{Duration, Instant};

    fn clock(server_us: Option<u64>) -> ReadClock {
        ReadClock {
            server_us,
            received: Instant::now(),
        }
    }

    #[test]
    fn pickup_is_the_server_clock_minus_the_id_time() {
        let at_read = clock(Some(10_500_000)); // 10.5 s after the epoch
        let pickup = at_read.pickup(Some(10_000)).expect("an ID before the read");
        // 0.5 s by the server's clock, plus the little time since `received`.
        assert!(pickup >= Duration::from_millis(500), "{pickup:?}");
        assert!(pickup < Duration::from_secs(30), "{pickup:?}");
    }

    #[test]
    fn pickup_is_unknown_for_what_cannot_be_told() {
        let at_read = clock(Some(10_500_000));
        assert_eq!(at_read.pickup(None), None, "an ID that is not ms-seq");
        assert_eq!(at_read.pickup(Some(10_501)), None, "an ID after the read");
        assert_eq!(
            at_read.pickup(Some(u64::MAX)),
            None,
            "an ID no clock reaches"
        );
        assert_eq!(clock(None).pickup(Some(1)), None, "no TIME reply");
    }
}
