//! The `redis` workload's peer: apalis 1.0 on its Redis backend
//! (apalis-redis), the crate a Rust user picks for jobs on Redis.
//!
//! It runs the same demo job as `workpool redis work` (sleep, then
//! `HINCRBY {queue}:runs {id} 1`), configured as apalis-redis's README shows
//! (`RedisStorage::new(conn)`, `Config::default()`, a `WorkerBuilder` per
//! process) plus the two settings the comparison needs:
//!
//! - `.concurrency(n)`, the `capacity` of a workpool consumer;
//! - `poll_with_interval(100 ms)`. apalis-redis 1.0 files every push in its
//!   scheduled set (run at "now") and never publishes it, so a worker that
//!   found its queue empty sleeps until something wakes it. Without a poll
//!   strategy nothing does, and jobs pushed after it started were never run
//!   (tried: 0 of 20,000 in 15 s). 100 ms is the poll interval apalis's
//!   Redis storage had as its default before 1.0.
//!
//! The job sleeps with `tokio::time::sleep`, the way an apalis handler waits;
//! it costs apalis no thread, where each workpool job holds a worker thread.

use crate::duration::parse_duration;
use apalis::prelude::{BackendExt, BoxDynError, TaskSink, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::TaskSinkError;
use apalis_core::error::WorkerError;
use apalis_redis::{Config, ConnectionManager, RedisError, RedisStorage};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why the apalis worker or producer stopped; each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApalisError {
    /// The tokio runtime could not be built.
    #[error("{0}")]
    Runtime(#[source] std::io::Error),
    /// apalis-redis could not connect (`apalis_redis::connect`), or the
    /// peer's own connection (for the run counts, for `ZCARD`) failed.
    #[error("{0}")]
    Redis(#[source] RedisError),
    /// SIGTERM could not be watched.
    #[error("{0}")]
    Signal(#[source] std::io::Error),
    /// The worker stopped with an error.
    #[error("apalis worker: {0}")]
    Worker(#[source] WorkerError),
    /// apalis's `TaskSink::push_bulk` refused a batch.
    #[error("{0}")]
    Push(#[source] TaskSinkError<apalis_redis::Error>),
}

/// Most jobs the producer lets wait in apalis's scheduled set. apalis-redis
/// 1.0's fetch script moves every due job of that set to its queue with one
/// Lua `unpack`, which fails past about 8,000 values ("too many results to
/// unpack"), and the worker then stops with that error: 20,000 jobs pushed
/// at once stop every worker. So the producer pushes in batches and waits
/// while this many wait there; a worker's every fetch empties the set, so
/// this holds the producer back only while apalis falls behind.
const SCHEDULED_MAX: usize = 4_000;

/// apalis's job: the demo job, with the enqueue time the workpool-redis
/// envelope carries (ms since the epoch, as workpool-redis's, so that both
/// pickups are read alike).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApalisDemo {
    id: u64,
    sleep_ms: u64,
    enqueued_at_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Options of the hidden `workpool redis apalis-work`.
#[derive(Debug, Args)]
pub(crate) struct ApalisWorkArgs {
    /// The Redis server.
    #[arg(long)]
    pub(crate) url: String,
    /// apalis's queue (its keys are `{queue}:*`); runs are counted in
    /// `{queue}:runs`.
    #[arg(long)]
    pub(crate) queue: String,
    /// The worker's name, unique among live workers of the queue.
    #[arg(long)]
    pub(crate) name: String,
    /// Jobs run at once (`WorkerBuilder::concurrency`).
    #[arg(long)]
    pub(crate) concurrency: usize,
    /// How often an idle worker polls.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub(crate) poll: Duration,
}

fn runtime(multi: bool) -> Result<tokio::runtime::Runtime, ApalisError> {
    let mut b = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().map_err(ApalisError::Runtime)
}

fn storage(conn: ConnectionManager, queue: &str) -> RedisStorage<ApalisDemo> {
    RedisStorage::new(conn).with_config(Config::default().queue(queue))
}

/// Runs apalis's worker until SIGTERM, then prints the line
/// `bench`'s `redis` workload reads: `ran N; pickup p50 X p99 Y`.
pub(crate) fn work(args: &ApalisWorkArgs) -> Result<(), ApalisError> {
    runtime(true)?.block_on(async {
        let conn = apalis_redis::connect(args.url.as_str())
            .await
            .map_err(ApalisError::Redis)?;
        let counter = redis1::Client::open(args.url.as_str())
            .map_err(ApalisError::Redis)?
            .get_multiplexed_async_connection()
            .await
            .map_err(ApalisError::Redis)?;
        let runs = Arc::new(format!("{}:runs", args.queue));
        let pickups = Arc::new(Mutex::new(Vec::<Duration>::new()));
        let seen = Arc::clone(&pickups);
        let handler = move |job: ApalisDemo| {
            let mut counter = counter.clone();
            let runs = Arc::clone(&runs);
            let pickups = Arc::clone(&seen);
            async move {
                let enqueued = UNIX_EPOCH + Duration::from_millis(job.enqueued_at_ms);
                let pickup = SystemTime::now()
                    .duration_since(enqueued)
                    .unwrap_or_default();
                pickups.lock().expect("not poisoned").push(pickup);
                tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
                redis1::cmd("HINCRBY")
                    .arg(runs.as_str())
                    .arg(job.id)
                    .arg(1)
                    .query_async::<i64>(&mut counter)
                    .await?;
                Ok::<(), BoxDynError>(())
            }
        };
        let backend = storage(conn, &args.queue).poll_with_interval(args.poll);
        let worker = WorkerBuilder::new(args.name.as_str())
            .backend(backend)
            .concurrency(args.concurrency)
            .build(handler);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(ApalisError::Signal)?;
        worker
            .run_until(async move {
                term.recv().await;
                Ok::<(), std::io::Error>(())
            })
            .await
            .map_err(ApalisError::Worker)?;
        let mut all = std::mem::take(&mut *pickups.lock().expect("not poisoned"));
        all.sort_unstable();
        let at = |q: f64| {
            all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "ran {}; pickup p50 {:?} p99 {:?}",
            all.len(),
            at(0.5),
            at(0.99)
        );
        Ok(())
    })
}

/// Pushes demo jobs through apalis's own `TaskSink`, from a thread that is
/// not async.
#[derive(Debug)]
pub(crate) struct ApalisProducer {
    rt: tokio::runtime::Runtime,
    storage: RedisStorage<ApalisDemo>,
    scheduled: String,
}

impl ApalisProducer {
    pub(crate) fn new(url: &str, queue: &str) -> Result<ApalisProducer, ApalisError> {
        let rt = runtime(false)?;
        let conn = rt
            .block_on(apalis_redis::connect(url))
            .map_err(ApalisError::Redis)?;
        let storage = storage(conn, queue);
        let scheduled = storage.get_config().scheduled_jobs_set();
        Ok(ApalisProducer {
            rt,
            storage,
            scheduled,
        })
    }

    /// Pushes the jobs `ids` (at most [`SCHEDULED_MAX`] at a time).
    pub(crate) fn push(&mut self, ids: Range<u64>, sleep_ms: u64) -> Result<(), ApalisError> {
        let ApalisProducer {
            rt,
            storage,
            scheduled,
        } = self;
        rt.block_on(async {
            let mut next = ids.start;
            while next < ids.end {
                let end = (next + 1000).min(ids.end);
                loop {
                    let waiting: usize = redis1::cmd("ZCARD")
                        .arg(scheduled.as_str())
                        .query_async(storage.get_connection())
                        .await
                        .map_err(ApalisError::Redis)?;
                    if waiting + (end - next) as usize <= SCHEDULED_MAX {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let enqueued_at_ms = now_ms();
                let jobs = (next..end)
                    .map(|id| ApalisDemo {
                        id,
                        sleep_ms,
                        enqueued_at_ms,
                    })
                    .collect();
                storage.push_bulk(jobs).await.map_err(ApalisError::Push)?;
                next = end;
            }
            Ok(())
        })
    }
}

/// The number of apalis workers registered on `queue` (`ZCARD
/// {queue}:workers`).
pub(crate) fn workers_key(queue: &str) -> String {
    Config::default().queue(queue).workers_set()
}
