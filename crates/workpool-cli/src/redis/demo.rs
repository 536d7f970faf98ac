//! `workpool redis produce` and `workpool redis work`: the demo of
//! workpool-redis (the README's "Beyond one machine"), for a user to watch
//! several processes share a stream, and for a test to kill one.
//!
//! A demo job is `{"id": u64, "sleep_ms": u64, "fail": bool}`; the worker
//! sleeps, records the run with `HINCRBY {stream}:runs {id} 1`, then fails
//! if `fail`, else succeeds (and is acked).

use crate::duration::parse_duration;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use workpool_redis::{Consumer, Job, Producer};

/// Why `produce` or `work` stopped; each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// The producer could not connect or load its scripts.
    #[error("{0}")]
    Producer(#[source] workpool_redis::Error),
    /// A batch of demo jobs was refused.
    #[error("{0}")]
    Push(#[source] workpool_redis::Error),
    /// `--url` is not a Redis URL.
    #[error("{0}")]
    Url(#[source] redis::RedisError),
    /// The consumer could not be built (connection, group, pool).
    #[error("{0}")]
    Consumer(#[source] workpool_redis::Error),
    /// SIGINT or SIGTERM could not be watched.
    #[error("{0}")]
    Signal(#[source] std::io::Error),
    /// The consumer stopped with an error.
    #[error("{0}")]
    Run(#[source] workpool_redis::Error),
}

/// Why one demo job failed; workpool-redis retries it, then dead-letters it.
#[derive(Debug, thiserror::Error)]
enum JobError {
    /// Not a demo job.
    #[error("{0}")]
    Decode(#[source] workpool_redis::Error),
    /// The worker thread's own connection, for the run count.
    #[error("{0}")]
    Connect(#[source] redis::RedisError),
    /// `HINCRBY {stream}:runs` failed (the connection is remade next job).
    #[error("{0}")]
    Count(#[source] redis::RedisError),
    /// A job pushed with `fail: true`.
    #[error("demo job {0} fails (--fail-every)")]
    Fails(u64),
}

/// Options of `workpool redis produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// The Redis server.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub(crate) url: String,
    /// The stream to push onto.
    #[arg(long, default_value = "jobs")]
    pub(crate) stream: String,
    /// Jobs to push, with ids 0..count.
    #[arg(long, default_value_t = 2000)]
    pub(crate) count: u64,
    /// How long each job sleeps.
    #[arg(long, default_value_t = 20)]
    pub(crate) sleep_ms: u64,
    /// Every K-th job (ids K-1, 2K-1, ..) fails each time it runs.
    #[arg(long, value_name = "K")]
    pub(crate) fail_every: Option<u64>,
}

/// Options of `workpool redis work`.
#[derive(Debug, Args)]
pub(crate) struct WorkArgs {
    /// The Redis server.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub(crate) url: String,
    /// The stream to read.
    #[arg(long, default_value = "jobs")]
    pub(crate) stream: String,
    /// The consumer group (created at the stream's start if missing).
    #[arg(long, default_value = "workers")]
    pub(crate) group: String,
    /// Workers of the pool: jobs run (and held) at once.
    #[arg(long, default_value_t = 64)]
    pub(crate) capacity: usize,
    /// Jobs read ahead beyond --capacity and queued in the pool, so that a
    /// worker that finishes finds its next job without a round trip to
    /// Redis; the process holds at most capacity + this.
    #[arg(long, default_value_t = 0)]
    pub(crate) queue_capacity: usize,
    /// Jobs pending longer than this (their consumer died) are reclaimed:
    /// 500ms, 5s, 1m.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) visibility_timeout: Duration,
    /// Deliveries a job gets before it moves to `{stream}:dead`.
    #[arg(long, default_value_t = 5)]
    pub(crate) max_deliveries: u64,
    /// This consumer's name in the group. Default: `{hostname}-{pid}`.
    #[arg(long)]
    pub(crate) consumer: Option<String>,
}

/// The demo job.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Demo {
    pub(crate) id: u64,
    pub(crate) sleep_ms: u64,
    pub(crate) fail: bool,
}

/// `workpool redis produce`.
pub(crate) fn produce(args: &ProduceArgs) -> Result<(), DemoError> {
    let producer = demo_producer(&args.url, &args.stream)?;
    let failing = push_demo(&producer, 0..args.count, args.sleep_ms, |id| {
        args.fail_every.is_some_and(|k| k > 0 && (id + 1) % k == 0)
    })?;
    println!(
        "pushed {} jobs onto {} ({failing} that always fail)",
        args.count, args.stream
    );
    Ok(())
}

/// A producer of demo jobs (job name `demo`) onto `stream`.
pub(crate) fn demo_producer(url: &str, stream: &str) -> Result<Producer, DemoError> {
    Producer::builder(url, stream)
        .job_name("demo")
        .build()
        .map_err(DemoError::Producer)
}

/// Pushes the demo jobs `ids`, in batches of at most 1,000; `fails(id)`
/// marks those that fail each time they run. Returns how many do.
pub(crate) fn push_demo(
    producer: &Producer,
    ids: std::ops::Range<u64>,
    sleep_ms: u64,
    fails: impl Fn(u64) -> bool,
) -> Result<usize, DemoError> {
    let mut failing = 0;
    let mut next = ids.start;
    while next < ids.end {
        let end = (next + 1000).min(ids.end);
        let jobs: Vec<Demo> = (next..end)
            .map(|id| Demo {
                id,
                sleep_ms,
                fail: fails(id),
            })
            .collect();
        failing += jobs.iter().filter(|j| j.fail).count();
        producer.push_batch(&jobs).map_err(DemoError::Push)?;
        next = end;
    }
    Ok(failing)
}

thread_local! {
    /// One connection per worker thread, made on its first job.
    static CONN: RefCell<Option<redis::Connection>> = const { RefCell::new(None) };
}

/// `workpool redis work`: runs until SIGINT or SIGTERM.
pub(crate) fn work(args: &WorkArgs) -> Result<(), DemoError> {
    let client = redis::Client::open(args.url.as_str()).map_err(DemoError::Url)?;
    let runs = format!("{}:runs", args.stream);
    let handler = move |job: Job| -> Result<(), JobError> {
        let demo: Demo = job.decode().map_err(JobError::Decode)?;
        std::thread::sleep(Duration::from_millis(demo.sleep_ms));
        CONN.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some(client.get_connection().map_err(JobError::Connect)?);
            }
            let conn = cell.as_mut().expect("just connected");
            let counted = redis::cmd("HINCRBY")
                .arg(&runs)
                .arg(demo.id)
                .arg(1)
                .query::<i64>(conn);
            if let Err(e) = counted {
                *cell = None; // reconnect on the next job
                return Err(JobError::Count(e));
            }
            Ok(())
        })?;
        if demo.fail {
            return Err(JobError::Fails(demo.id));
        }
        Ok(())
    };
    let mut builder = workpool_redis::Consumer::builder(&args.url, &args.stream, &args.group)
        .capacity(args.capacity)
        .queue_capacity(args.queue_capacity)
        .visibility_timeout(args.visibility_timeout)
        .max_deliveries(args.max_deliveries);
    if let Some(name) = &args.consumer {
        builder = builder.consumer_name(name);
    }
    let consumer: Consumer = builder.build(handler).map_err(DemoError::Consumer)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(DemoError::Signal)?;
    }
    let handle = consumer.handle();
    eprintln!(
        "workpool redis work: {} reading {} as {} in group {}, capacity {}; SIGINT or SIGTERM stops it",
        std::process::id(),
        args.stream,
        consumer.name(),
        args.group,
        args.capacity
    );
    // Waits for the signal, printing the figures once a second while they
    // change.
    let watcher = std::thread::spawn(move || {
        let mut last = None;
        let mut ticks = 0u32;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            ticks += 1;
            if !ticks.is_multiple_of(20) {
                continue;
            }
            let s = handle.stats();
            let now = (
                s.read,
                s.acked,
                s.retried,
                s.dead_lettered,
                s.reclaimed,
                s.in_flight,
            );
            if last != Some(now) {
                last = Some(now);
                eprintln!(
                    "read {} acked {} retried {} dead-lettered {} reclaimed {} in flight {}",
                    now.0, now.1, now.2, now.3, now.4, now.5
                );
            }
        }
        eprintln!("workpool redis work: stopping: finishing the jobs it holds");
        handle.shutdown();
    });
    let stats = consumer.run().map_err(DemoError::Run)?;
    let _ = watcher.join();
    println!(
        "read {} acked {} retried {} dead-lettered {} reclaimed {} left pending {}; pickup p50 {:?} p99 {:?}",
        stats.read,
        stats.acked,
        stats.retried,
        stats.dead_lettered,
        stats.reclaimed,
        stats.in_flight,
        stats.pickup_latency.p50,
        stats.pickup_latency.p99
    );
    Ok(())
}
