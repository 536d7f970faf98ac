//! What a task costs the allocator: a steady stream of small fire-and-forget
//! tasks allocates nothing (the closure travels in the queue's slot, not in a
//! box), on the submitter's thread or on the workers'. A counting global
//! allocator sees every thread's allocations; one test function runs the
//! cases one after another, so no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::Pool;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the count is a side effect.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's promises are `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TASKS: usize = 100_000;

/// Waits (spinning, which allocates nothing) until `done` reaches `n`.
fn wait_for(done: &AtomicUsize, n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < until, "tasks did not finish");
        std::thread::yield_now();
    }
}

/// Allocations made while `TASKS` tasks built by `task` are submitted and
/// run on a warmed-up pool of 2 workers.
fn allocations_per_stream<F>(pool: &Pool, task: impl Fn(Arc<AtomicUsize>) -> F) -> usize
where
    F: FnOnce() + Send + 'static,
{
    let done = Arc::new(AtomicUsize::new(0));
    // Warm-up: workers started, the idle list and the figures' storage at
    // their size.
    for _ in 0..TASKS / 10 {
        pool.submit(task(Arc::clone(&done))).unwrap();
    }
    wait_for(&done, TASKS / 10);
    let tasks: Vec<F> = (0..TASKS).map(|_| task(Arc::clone(&done))).collect();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for t in tasks {
        pool.submit(t).unwrap();
    }
    wait_for(&done, TASKS / 10 + TASKS);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn small_tasks_allocate_nothing_and_large_ones_a_box_each() {
    let pool = Pool::builder().capacity(2).build().unwrap();

    // A closure of two words (an `Arc` and a number): stored in place.
    let small = allocations_per_stream(&pool, |done| {
        let n = 1usize;
        move || {
            done.fetch_add(n, Ordering::SeqCst);
        }
    });
    // Not one per task, nor one per thousand: a worker parking now and then
    // may touch the allocator, the tasks never.
    assert!(
        small < TASKS / 1000,
        "{small} allocations for {TASKS} small tasks"
    );

    // A closure of eight words: boxed, one allocation each (so the count
    // above is no blind counter).
    let large = allocations_per_stream(&pool, |done| {
        let pad = [1u64; 8];
        move || {
            done.fetch_add(pad.iter().sum::<u64>() as usize / 8, Ordering::SeqCst);
        }
    });
    assert!(
        (TASKS..TASKS + TASKS / 1000).contains(&large),
        "{large} allocations for {TASKS} boxed tasks"
    );
    println!("allocations per {TASKS} tasks: small {small}, boxed {large}");
    pool.release_timeout(Duration::from_secs(10)).unwrap();
}
