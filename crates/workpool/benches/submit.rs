//! The submit path beside the crates users would pick instead, in one run.
//!
//! - `empty`: 1,000,000 empty tasks on `available_parallelism` workers: the
//!   cost of dispatch itself.
//! - `sleep`: 100,000 tasks of 10 ms sleep on a capacity of 10,000 (the shape
//!   of ants' own benchmark).
//!
//! Each pool is built once, outside the timing, and warmed by the first
//! sample; a thread per task has nothing to build. Spawning a thread per task
//! is 10-300x slower, so it runs 10,000 tasks of each workload (at most `cap`
//! threads alive); criterion's throughput (tasks/s) keeps the figures
//! comparable.
//!
//! Run: `cargo bench -p workpool --bench submit`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const EMPTY_TASKS: usize = 1_000_000;
const SLEEP_TASKS: usize = 100_000;
const SLEEP_CAPACITY: usize = 10_000;
const SLEEP: Duration = Duration::from_millis(10);
const THREAD_PER_TASK_TASKS: usize = 10_000;

/// Counts finished tasks and wakes the waiter when the last one is in.
struct Latch {
    done: AtomicUsize,
    target: usize,
    finished: Mutex<bool>,
    wakeup: Condvar,
}

impl Latch {
    fn new(target: usize) -> Arc<Self> {
        Arc::new(Latch {
            done: AtomicUsize::new(0),
            target,
            finished: Mutex::new(false),
            wakeup: Condvar::new(),
        })
    }

    fn count(&self) {
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            *self.finished.lock().unwrap() = true;
            self.wakeup.notify_all();
        }
    }

    fn wait(&self) {
        let mut finished = self.finished.lock().unwrap();
        while !*finished {
            finished = self.wakeup.wait(finished).unwrap();
        }
    }
}

/// Runs `tasks` tasks of `work` through `submit` and waits for all of them.
fn run<S>(tasks: usize, work: fn(), submit: S) -> Duration
where
    S: Fn(Box<dyn FnOnce() + Send>),
{
    let latch = Latch::new(tasks);
    let start = Instant::now();
    for _ in 0..tasks {
        let latch = Arc::clone(&latch);
        submit(Box::new(move || {
            work();
            latch.count();
        }));
    }
    latch.wait();
    start.elapsed()
}

/// One thread per task, at most `cap` alive: the thread is joined when the
/// window is full, oldest first.
fn thread_per_task(tasks: usize, cap: usize, work: fn()) -> Duration {
    let start = Instant::now();
    let mut alive = std::collections::VecDeque::with_capacity(cap);
    for _ in 0..tasks {
        if alive.len() == cap {
            let oldest: std::thread::JoinHandle<()> = alive.pop_front().unwrap();
            oldest.join().unwrap();
        }
        alive.push_back(std::thread::spawn(work));
    }
    for handle in alive {
        handle.join().unwrap();
    }
    start.elapsed()
}

fn empty() {}

fn sleep() {
    std::thread::sleep(SLEEP);
}

fn bench_workload(
    c: &mut Criterion,
    name: &str,
    tasks: usize,
    cap: usize,
    work: fn(),
    sample_time: Duration,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.measurement_time(sample_time);
    group.warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(tasks as u64));

    let pool = workpool::Pool::builder()
        .capacity(cap)
        .expiry(Duration::from_secs(60))
        .build()
        .unwrap();
    group.bench_function(BenchmarkId::new("workpool", tasks), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run(tasks, work, |task| pool.submit(task).unwrap()))
                .sum()
        })
    });
    pool.release_timeout(Duration::from_secs(60)).unwrap();

    let pool = threadpool::ThreadPool::new(cap);
    group.bench_function(BenchmarkId::new("threadpool", tasks), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run(tasks, work, |task| pool.execute(task)))
                .sum()
        })
    });
    pool.join();
    drop(pool);

    let share = THREAD_PER_TASK_TASKS.min(tasks);
    group.throughput(Throughput::Elements(share as u64));
    group.bench_function(BenchmarkId::new("thread_per_task", share), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| thread_per_task(share, cap, work)).sum())
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    bench_workload(
        c,
        "empty",
        EMPTY_TASKS,
        cores,
        empty,
        Duration::from_secs(5),
    );
    bench_workload(
        c,
        "sleep",
        SLEEP_TASKS,
        SLEEP_CAPACITY,
        sleep,
        Duration::from_secs(10),
    );
}

criterion_group!(submit, benches);
criterion_main!(submit);
