//! No OS thread of a pool outlives `release_timeout` (which joins them all) or,
//! eventually, the drop of its last handle. Threads are counted in
//! `/proc/self/task`, so every check runs inside one test, one after another:
//! tests running in parallel would change the count.
#![cfg(target_os = "linux")]

mod common;

use common::{wait_until, Gate};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use workpool::{LoadBalancing, MultiPool, Pool, PoolError};

const PATIENCE: Duration = Duration::from_secs(30);
/// The expiry of the pool whose idle workers must expire during the test;
/// the other pools keep the default of a second, so that a purge thread that
/// was not joined would still be listed long after `UNLISTING`.
const SHORT_EXPIRY: Duration = Duration::from_millis(200);

/// The threads of this process now.
fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// How long the kernel may still list a thread that has been joined. A join
/// returns when the kernel wakes the joiner from the exiting thread, a moment
/// before it takes the thread off `/proc/self/task` (plain `std::thread`
/// spawn-and-join shows it too, about once in a thousand joins). A thread
/// that was not joined (a parked worker, a purge thread asleep for an expiry
/// of a second) stays far longer.
const UNLISTING: Duration = Duration::from_millis(100);

/// Fails the test unless the process is back to `baseline` threads right
/// away, allowing only for [`UNLISTING`].
#[track_caller]
fn assert_no_thread_left(baseline: usize, after: &str) {
    let deadline = Instant::now() + UNLISTING;
    while os_threads() != baseline && Instant::now() < deadline {
        thread::yield_now();
    }
    assert_eq!(os_threads(), baseline, "threads left after {after}");
}

/// Starts `n` tasks that all wait at one gate, so `n` workers must be alive
/// together, and waits until they have all arrived. The tasks end when the
/// caller opens the gate.
fn hold(submit: impl Fn(Box<dyn FnOnce() + Send>), n: usize) -> Arc<Gate> {
    let gate = Gate::new();
    for _ in 0..n {
        let gate = Arc::clone(&gate);
        submit(Box::new(move || gate.wait()));
    }
    gate.await_arrivals(n);
    gate
}

fn on_pool(pool: &Pool) -> impl Fn(Box<dyn FnOnce() + Send>) + '_ {
    move |task| pool.submit(task).unwrap()
}

#[test]
fn no_pool_thread_outlives_its_pool() {
    let baseline = os_threads();

    release_timeout_joins_every_worker_and_the_purge_thread(baseline);
    release_timeout_joins_workers_after_some_expired(baseline);
    release_timeout_joins_workers_of_a_pool_without_purge(baseline);
    release_timeout_joins_every_thread_of_a_multi_pool(baseline);
    reboot_starts_the_threads_again_and_only_once(baseline);
    threads_blocked_past_a_timeout_exit_once_their_task_ends(baseline);
    dropping_the_last_handle_ends_every_thread(baseline);
}

fn release_timeout_joins_every_worker_and_the_purge_thread(baseline: usize) {
    let pool = Pool::builder().capacity(8).min_workers(2).build().unwrap();
    let gate = hold(on_pool(&pool), 8);
    assert_eq!(
        os_threads(),
        baseline + 8 + 1,
        "8 workers and the purge thread"
    );
    gate.open();

    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_no_thread_left(baseline, "release_timeout");
}

fn release_timeout_joins_workers_after_some_expired(baseline: usize) {
    let pool = Pool::builder()
        .capacity(8)
        .min_workers(2)
        .expiry(SHORT_EXPIRY)
        .build()
        .unwrap();
    hold(on_pool(&pool), 8).open();
    wait_until("the pool shrinks to min_workers", || pool.workers() == 2);
    wait_until("the expired workers' threads end", || {
        os_threads() == baseline + 2 + 1
    });

    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_no_thread_left(baseline, "release_timeout");
}

fn release_timeout_joins_workers_of_a_pool_without_purge(baseline: usize) {
    let pool = Pool::builder()
        .capacity(4)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = hold(on_pool(&pool), 4);
    assert_eq!(os_threads(), baseline + 4, "4 workers and no purge thread");
    gate.open();

    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_no_thread_left(baseline, "release_timeout");
}

fn release_timeout_joins_every_thread_of_a_multi_pool(baseline: usize) {
    let builder = Pool::builder().capacity(2).min_workers(1);
    let pools = MultiPool::with_builder(3, LoadBalancing::RoundRobin, builder).unwrap();
    let gate = hold(|task| pools.submit(task).unwrap(), 6);
    assert_eq!(
        os_threads(),
        baseline + 6 + 3,
        "6 workers and 3 purge threads"
    );
    gate.open();

    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
    assert_no_thread_left(baseline, "release_timeout");
}

fn reboot_starts_the_threads_again_and_only_once(baseline: usize) {
    let pool = Pool::builder().capacity(4).min_workers(1).build().unwrap();
    hold(on_pool(&pool), 4).open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_no_thread_left(baseline, "the first release_timeout");

    pool.reboot().unwrap();
    pool.reboot().unwrap(); // a no-op on the open pool
    assert_eq!(
        os_threads(),
        baseline + 1 + 1,
        "one min worker, one purge thread"
    );
    let gate = hold(on_pool(&pool), 4);
    assert_eq!(os_threads(), baseline + 4 + 1);
    gate.open();

    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_no_thread_left(baseline, "release_timeout");
}

fn threads_blocked_past_a_timeout_exit_once_their_task_ends(baseline: usize) {
    let pool = Pool::new(2).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);

    assert_eq!(
        pool.release_timeout(Duration::from_millis(100)),
        Err(PoolError::Timeout)
    );
    assert!(os_threads() > baseline, "the blocked worker is still there");
    gate.open();
    wait_until("the last worker's thread ends", || os_threads() == baseline);
}

fn dropping_the_last_handle_ends_every_thread(baseline: usize) {
    let pool = Pool::builder().capacity(4).min_workers(1).build().unwrap();
    let clone = pool.clone();
    let gate = hold(on_pool(&pool), 4);
    drop(pool);
    assert!(!clone.is_closed(), "a clone keeps the pool open");
    assert_eq!(os_threads(), baseline + 4 + 1);

    // The last drop does not wait for the held tasks; once they end, every
    // thread of the pool ends.
    drop(clone);
    assert!(
        os_threads() >= baseline + 4,
        "the busy workers are still there"
    );
    gate.open();
    wait_until("every thread of the pool ends", || os_threads() == baseline);
}
