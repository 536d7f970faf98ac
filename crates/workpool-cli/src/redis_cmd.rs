//! `workpool redis produce` and `workpool redis work`: the demo of
//! workpool-redis (the README's "Beyond one machine"), for a user to watch
//! several processes share a stream, and for a test to kill one.
//!
//! A demo job is `{"id": u64, "sleep_ms": u64, "fail": bool}`; the worker
//! sleeps, records the run with `HINCRBY {stream}:runs {id} 1`, then fails
//! if `fail`, else succeeds (and is acked).

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use workpool_redis::{Consumer, Job, Producer};

/// `workpool redis ...`.
#[derive(Debug, Args)]
pub(crate) struct RedisArgs {
    #[command(subcommand)]
    pub(crate) command: RedisCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RedisCommand {
    /// Pushes --count demo jobs `{"id", "sleep_ms", "fail"}` onto --stream.
    Produce(ProduceArgs),
    /// Runs the demo jobs of --stream in consumer group --group on a pool of
    /// --capacity workers, until SIGINT or SIGTERM; then stops reading,
    /// finishes and acks its running jobs, and exits 0. Each run is counted
    /// with `HINCRBY {stream}:runs {id} 1`; failed jobs are retried, and
    /// after --max-deliveries moved to `{stream}:dead`.
    Work(WorkArgs),
    /// The `redis` workload's peer: an apalis worker (apalis-redis) running
    /// the demo job; `bench` starts these.
    #[command(name = "apalis-work", hide = true)]
    ApalisWork(crate::apalis_peer::ApalisWorkArgs),
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

/// A duration as humantime reads it (`500ms`, `5s`, `2m`, `1.5s`,
/// `1m 30s`), or a bare number of seconds (`2`, `0.5`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bare = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if bare {
        let secs: f64 = text
            .parse()
            .map_err(|_| format!("not a number of seconds: {text:?}"))?;
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("not a duration: {text:?}: {e} (try 500ms, 90s, 2m)"))
}

/// The demo job.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Demo {
    pub(crate) id: u64,
    pub(crate) sleep_ms: u64,
    pub(crate) fail: bool,
}

pub(crate) fn run(args: &RedisArgs) -> Result<(), String> {
    match &args.command {
        RedisCommand::Produce(p) => produce(p),
        RedisCommand::Work(w) => work(w),
        RedisCommand::ApalisWork(a) => crate::apalis_peer::work(a),
    }
}

fn produce(args: &ProduceArgs) -> Result<(), String> {
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
pub(crate) fn demo_producer(url: &str, stream: &str) -> Result<Producer, String> {
    Producer::builder(url, stream)
        .job_name("demo")
        .build()
        .map_err(|e| e.to_string())
}

/// Pushes the demo jobs `ids`, in batches of at most 1,000; `fails(id)`
/// marks those that fail each time they run. Returns how many do.
pub(crate) fn push_demo(
    producer: &Producer,
    ids: std::ops::Range<u64>,
    sleep_ms: u64,
    fails: impl Fn(u64) -> bool,
) -> Result<usize, String> {
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
        producer.push_batch(&jobs).map_err(|e| e.to_string())?;
        next = end;
    }
    Ok(failing)
}

thread_local! {
    /// One connection per worker thread, made on its first job.
    static CONN: RefCell<Option<redis::Connection>> = const { RefCell::new(None) };
}

fn work(args: &WorkArgs) -> Result<(), String> {
    let client = redis::Client::open(args.url.as_str()).map_err(|e| e.to_string())?;
    let runs = format!("{}:runs", args.stream);
    let handler = move |job: Job| -> Result<(), String> {
        let demo: Demo = job.decode().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(demo.sleep_ms));
        CONN.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some(client.get_connection().map_err(|e| e.to_string())?);
            }
            let conn = cell.as_mut().expect("just connected");
            let counted = redis::cmd("HINCRBY")
                .arg(&runs)
                .arg(demo.id)
                .arg(1)
                .query::<i64>(conn);
            if let Err(e) = counted {
                *cell = None; // reconnect on the next job
                return Err(e.to_string());
            }
            Ok(())
        })?;
        if demo.fail {
            return Err(format!("demo job {} fails (--fail-every)", demo.id));
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
    let consumer: Consumer = builder.build(handler).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
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
            if ticks % 20 != 0 {
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
    let stats = consumer.run().map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn nonsense_is_refused_with_the_text() {
        for bad in ["", "5 parsecs", "fast", "1..2", "-1s", "5x"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad:?}: {err}");
        }
    }
}
