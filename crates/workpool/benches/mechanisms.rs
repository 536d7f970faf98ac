//! One mechanism of the hot path at a time, beside what it replaced:
//!
//! - `ring/*`: the pool's own bounded ring (`workpool::internals::Ring`,
//!   the closed bit in its tail word) against crossbeam's `ArrayQueue`,
//!   which the pool used before beside a separate admission word: one push
//!   and one pop on one thread (the cost of the operations themselves), and
//!   100,000 values from a producer to a consumer thread through 1,024
//!   slots (the cost under contention for the head and tail lines).
//! - `small_task/*`: making and running a task of two words (an `Arc` and a
//!   number, what most `submit` closures capture) stored in place
//!   (`workpool::internals::SmallTask`) against the `Box<dyn FnOnce>` every
//!   task was before; and one of eight words, which is boxed either way.
//! - `wake_chain/*`: a burst of tasks reaching workers that have all parked:
//!   from the first submit until the last task has run, with as many tasks
//!   as workers, so each needs a wake-up; default queue and hand-off.
//!
//! Run: `cargo bench -p workpool --features internals --bench mechanisms`.

mod common;

use common::Done;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use workpool::internals::{Ring, SmallTask};
use workpool::Pool;

const STREAM: usize = 100_000;
const SLOTS: usize = 1_024;

/// The operations of a bounded queue that the benches use, so that the ring
/// and crossbeam's `ArrayQueue` run the same code around them.
trait Bounded<T>: Send + Sync {
    fn push(&self, value: T) -> Result<(), T>;
    fn pop(&self) -> Option<T>;
}

impl<T: Send> Bounded<T> for Ring<T> {
    #[inline]
    fn push(&self, value: T) -> Result<(), T> {
        Ring::push(self, value)
    }
    #[inline]
    fn pop(&self) -> Option<T> {
        Ring::pop(self)
    }
}

impl<T: Send> Bounded<T> for ArrayQueue<T> {
    #[inline]
    fn push(&self, value: T) -> Result<(), T> {
        ArrayQueue::push(self, value)
    }
    #[inline]
    fn pop(&self) -> Option<T> {
        ArrayQueue::pop(self)
    }
}

/// `STREAM` values from this thread to a consumer thread; returns when the
/// consumer has popped them all.
fn stream<Q: Bounded<usize> + 'static>(queue: &Arc<Q>) {
    let consumer = {
        let queue = Arc::clone(queue);
        thread::spawn(move || {
            let mut sum = 0usize;
            let mut got = 0;
            while got < STREAM {
                match queue.pop() {
                    Some(v) => {
                        sum = sum.wrapping_add(v);
                        got += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
            sum
        })
    };
    for i in 0..STREAM {
        let mut v = i;
        while let Err(back) = queue.push(v) {
            v = back;
            std::hint::spin_loop();
        }
    }
    black_box(consumer.join().unwrap());
}

fn ring(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    group.throughput(Throughput::Elements(1));
    let ours: Ring<usize> = Ring::new(SLOTS);
    group.bench_function("push_pop/workpool_ring", |b| {
        b.iter(|| {
            Bounded::push(&ours, black_box(7)).unwrap();
            black_box(Bounded::pop(&ours))
        })
    });
    let theirs: ArrayQueue<usize> = ArrayQueue::new(SLOTS);
    group.bench_function("push_pop/crossbeam_array_queue", |b| {
        b.iter(|| {
            Bounded::push(&theirs, black_box(7)).unwrap();
            black_box(Bounded::pop(&theirs))
        })
    });
    group.throughput(Throughput::Elements(STREAM as u64));
    let ours = Arc::new(Ring::<usize>::new(SLOTS));
    group.bench_function("stream_to_one_consumer/workpool_ring", |b| {
        b.iter(|| stream(&ours))
    });
    let theirs = Arc::new(ArrayQueue::<usize>::new(SLOTS));
    group.bench_function("stream_to_one_consumer/crossbeam_array_queue", |b| {
        b.iter(|| stream(&theirs))
    });
    group.finish();
}

fn small_task(c: &mut Criterion) {
    let mut group = c.benchmark_group("small_task");
    group.throughput(Throughput::Elements(1));
    let counter = Arc::new(AtomicUsize::new(0));
    // Two words: an `Arc` and a number.
    group.bench_function("two_words/in_place", |b| {
        b.iter_batched(
            || Arc::clone(&counter),
            |theirs| {
                let n = black_box(1usize);
                SmallTask::new(move || {
                    theirs.fetch_add(n, Ordering::Relaxed);
                })
                .run()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("two_words/boxed_dyn_fn_once", |b| {
        b.iter_batched(
            || Arc::clone(&counter),
            |theirs| {
                let n = black_box(1usize);
                let task: Box<dyn FnOnce() + Send> = Box::new(move || {
                    theirs.fetch_add(n, Ordering::Relaxed);
                });
                black_box(task)()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("eight_words/in_place_or_boxed", |b| {
        b.iter_batched(
            || Arc::clone(&counter),
            |theirs| {
                let words = black_box([1usize; 7]);
                SmallTask::new(move || {
                    theirs.fetch_add(words.iter().sum(), Ordering::Relaxed);
                })
                .run()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A pool of `workers` started workers, with or without a queue.
fn parked_pool(workers: usize, queue: bool) -> Pool {
    let builder = Pool::builder()
        .capacity(workers)
        .min_workers(workers)
        .disable_purge(true);
    let builder = if queue {
        builder
    } else {
        builder.queue_capacity(0)
    };
    builder.build().expect("a pool")
}

fn wake_chain(c: &mut Criterion) {
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let mut group = c.benchmark_group("wake_chain");
    group.throughput(Throughput::Elements(workers as u64));
    for (name, queue) in [("default_queue", true), ("handoff", false)] {
        let pool = parked_pool(workers, queue);
        let done = Arc::new(Done::default());
        group.bench_function(format!("burst_to_parked_workers/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Long past the workers' time to stay awake: all park.
                    thread::sleep(Duration::from_millis(2));
                    done.expect(workers);
                    let start = Instant::now();
                    for _ in 0..workers {
                        let done = Arc::clone(&done);
                        pool.submit(move || done.tick()).unwrap();
                    }
                    done.wait();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ring, small_task, wake_chain);
criterion_main!(benches);
