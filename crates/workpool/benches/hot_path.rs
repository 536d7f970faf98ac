//! The hot paths of `submit`, one at a time, for measuring each change to
//! them before and after:
//!
//! - `handoff/idle_worker`: one task handed to a parked-or-spinning idle
//!   worker and seen finished by the submitter: the round trip of one task.
//! - `stream/{handoff,default_queue}`: 100,000 empty tasks from one submitter
//!   on `available_parallelism` workers, without a queue (`queue_capacity(0)`:
//!   each task waits for a worker to come back) and with the default queue of
//!   1,024.
//! - `stream/crossbeam_floor`: the same tasks through one crossbeam
//!   `bounded(1024)` channel drained by as many threads: no pool at all, the
//!   floor that the queue is measured against.
//!
//! Run: `cargo bench -p workpool --bench hot_path`.

mod common;

use common::Done;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::Pool;

const STREAM_TASKS: usize = 100_000;

type Task = Box<dyn FnOnce() + Send>;

/// Sends `tasks` counting tasks through `submit` and waits for all of them.
fn stream(done: &Arc<Done>, tasks: usize, submit: impl Fn(Task)) -> Duration {
    done.expect(tasks);
    let start = Instant::now();
    for _ in 0..tasks {
        let done = Arc::clone(done);
        submit(Box::new(move || done.tick()));
    }
    done.wait();
    start.elapsed()
}

fn handoff(c: &mut Criterion) {
    let pool = Pool::builder()
        .capacity(1)
        .min_workers(1)
        .disable_purge(true)
        .build()
        .unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(1));
    group.bench_function("idle_worker", |b| {
        b.iter(|| {
            let before = finished.load(Ordering::Acquire);
            let theirs = Arc::clone(&finished);
            pool.submit(move || {
                theirs.fetch_add(1, Ordering::Release);
            })
            .unwrap();
            while finished.load(Ordering::Acquire) == before {
                std::hint::spin_loop();
            }
        })
    });
    group.finish();
    pool.release_timeout(Duration::from_secs(10)).unwrap();
}

fn streams(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let done = Arc::new(Done::default());
    let mut group = c.benchmark_group("stream");
    group.sample_size(20);
    group.throughput(Throughput::Elements(STREAM_TASKS as u64));

    for (name, queue) in [("handoff", 0), ("default_queue", 1024)] {
        let pool = Pool::builder()
            .capacity(cores)
            .queue_capacity(queue)
            .expiry(Duration::from_secs(60))
            .build()
            .unwrap();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| stream(&done, STREAM_TASKS, |t| pool.submit(t).unwrap()))
                    .sum()
            })
        });
        pool.release_timeout(Duration::from_secs(10)).unwrap();
    }

    let (tx, rx) = crossbeam_channel::bounded::<Task>(1024);
    let drains: Vec<_> = (0..cores)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().for_each(|task| task()))
        })
        .collect();
    group.bench_function("crossbeam_floor", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| stream(&done, STREAM_TASKS, |t| tx.send(t).unwrap()))
                .sum()
        })
    });
    drop(tx);
    for drain in drains {
        drain.join().unwrap();
    }
    group.finish();
}

criterion_group!(hot_path, handoff, streams);
criterion_main!(hot_path);
