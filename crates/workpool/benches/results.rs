//! What a result costs: tasks with handles beside plain `submit`.
//!
//! - `one_task/{submit_spin,submit_channel,spawn_join}`: one task handed to
//!   an idle worker (capacity 1, kept alive) and waited for: `submit` of an
//!   empty task with the submitter spinning on an atomic (as `hot_path`'s
//!   `handoff/idle_worker`), `submit` with the submitter blocked on a
//!   channel, and `spawn` of a task returning a `u64` then
//!   `TaskHandle::join`.
//! - `stream/{submit,spawn_detached,spawn_join}`: 100,000 tasks from one
//!   submitter on `available_parallelism` workers with the default queue:
//!   `submit`, `spawn` with the handle dropped at once (detached; both tick a
//!   counter the submitter waits on), and `spawn` of every task then `join`
//!   of every handle in order, summing the results (`workpool bench
//!   --workload join`).
//! - `batch/{spawn_batch,spawn_each}`: 1,000 tasks returning a `u64` on the
//!   same pool: `spawn_batch` then `BatchHandle::join`, beside 1,000 `spawn`s
//!   then 1,000 `join`s.
//!
//! Criterion's throughput (tasks/s) gives the per-task figure of each group.
//!
//! Run: `cargo bench -p workpool --bench results`.

mod common;

use common::Done;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use workpool::Pool;

const STREAM_TASKS: usize = 100_000;
const BATCH_TASKS: usize = 1_000;

/// The result of task `i`: never 0, so a lost result shows in the sum.
fn value(i: usize) -> u64 {
    (i as u64 + 1) * 3
}

/// The sum of the results of tasks `0..tasks`.
fn expected_sum(tasks: usize) -> u64 {
    (0..tasks).map(value).sum()
}

fn one_task(c: &mut Criterion) {
    let pool = Pool::builder()
        .capacity(1)
        .min_workers(1)
        .disable_purge(true)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("one_task");
    group.throughput(Throughput::Elements(1));

    let finished = Arc::new(AtomicUsize::new(0));
    group.bench_function("submit_spin", |b| {
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

    let (tx, rx) = mpsc::channel::<()>();
    group.bench_function("submit_channel", |b| {
        b.iter(|| {
            let tx = tx.clone();
            pool.submit(move || tx.send(()).unwrap()).unwrap();
            rx.recv().unwrap();
        })
    });

    group.bench_function("spawn_join", |b| {
        b.iter(|| {
            let n = black_box(14u64);
            let handle = pool.spawn(move || n * 3).unwrap();
            assert_eq!(handle.join().unwrap(), 42);
        })
    });
    group.finish();
    pool.release_timeout(Duration::from_secs(10)).unwrap();
}

fn stream(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = Pool::builder()
        .capacity(cores)
        .expiry(Duration::from_secs(60))
        .build()
        .unwrap();
    let done = Arc::new(Done::default());
    let mut group = c.benchmark_group("stream");
    group.sample_size(20);
    group.throughput(Throughput::Elements(STREAM_TASKS as u64));

    // Sends `STREAM_TASKS` counting tasks through `submit` and waits for all.
    let counted = |submit: &dyn Fn(Box<dyn FnOnce() + Send>)| {
        done.expect(STREAM_TASKS);
        let start = Instant::now();
        for _ in 0..STREAM_TASKS {
            let done = Arc::clone(&done);
            submit(Box::new(move || done.tick()));
        }
        done.wait();
        start.elapsed()
    };

    group.bench_function("submit", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| counted(&|t| pool.submit(t).unwrap()))
                .sum()
        })
    });
    group.bench_function("spawn_detached", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| counted(&|t| drop(pool.spawn(t).unwrap())))
                .sum()
        })
    });
    group.bench_function("spawn_join", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..STREAM_TASKS)
                        .map(|i| pool.spawn(move || value(i)).unwrap())
                        .collect();
                    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
                    let elapsed = start.elapsed();
                    assert_eq!(sum, expected_sum(STREAM_TASKS));
                    elapsed
                })
                .sum()
        })
    });
    group.finish();
    pool.release_timeout(Duration::from_secs(10)).unwrap();
}

fn batch(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = Pool::builder()
        .capacity(cores)
        .expiry(Duration::from_secs(60))
        .build()
        .unwrap();
    let expected = expected_sum(BATCH_TASKS);
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(BATCH_TASKS as u64));

    group.bench_function("spawn_batch", |b| {
        b.iter(|| {
            let batch = pool
                .spawn_batch((0..BATCH_TASKS).map(|i| move || value(i)))
                .unwrap();
            let sum: u64 = batch.join().into_iter().map(Result::unwrap).sum();
            assert_eq!(sum, expected);
        })
    });
    group.bench_function("spawn_each", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..BATCH_TASKS)
                .map(|i| pool.spawn(move || value(i)).unwrap())
                .collect();
            let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, expected);
        })
    });
    group.finish();
    pool.release_timeout(Duration::from_secs(10)).unwrap();
}

criterion_group!(results, one_task, stream, batch);
criterion_main!(results);
