//! `PoolWithFunc`: a pool bound to one function, built with `new` or
//! `build_with_func`, with the capacity, refusals, tuning and shutdown of `Pool`.

mod common;

use common::{current_thread_name, wait_until_within, Gate, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use workpool::{Pool, PoolError, PoolWithFunc};

/// The argument of the pools below that need to hold a worker or hear back.
enum Job {
    /// Hold the worker until the gate opens.
    Wait(Arc<Gate>),
    /// Say which thread ran the job.
    Report(mpsc::Sender<String>),
}

fn run_job(job: Job) {
    match job {
        Job::Wait(gate) => gate.wait(),
        Job::Report(reply) => {
            reply.send(current_thread_name()).unwrap();
        }
    }
}

/// Invokes a `Report` job and returns the name of the thread that ran it.
fn report(pool: &PoolWithFunc<Job>) -> Result<String, PoolError> {
    let (tx, rx) = mpsc::channel();
    pool.invoke(Job::Report(tx))?;
    Ok(rx.recv_timeout(PATIENCE).expect("the job did not run"))
}

/// A pool that adds every argument to the returned total.
fn summing_pool(capacity: usize) -> (PoolWithFunc<usize>, Arc<AtomicUsize>) {
    let total = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&total);
    let pool = PoolWithFunc::new(capacity, move |n: usize| {
        sink.fetch_add(n, Ordering::Relaxed);
    })
    .unwrap();
    (pool, total)
}

#[test]
fn new_pool_with_func_sums_a_thousand_arguments_exactly() {
    let (pool, total) = summing_pool(4);
    assert_eq!(pool.capacity(), Some(4));
    for n in 1..=1_000 {
        pool.invoke(n).unwrap();
    }
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(total.load(Ordering::Relaxed), 500_500);
}

#[test]
fn build_with_func_applies_the_builder_options() {
    let pool = Pool::builder()
        .capacity(2)
        .thread_name("func")
        .build_with_func(run_job)
        .unwrap();
    assert_eq!(pool.capacity(), Some(2));
    assert_eq!(report(&pool), Ok("func-0".to_owned()));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn build_with_func_sums_exactly_from_several_threads() {
    let total = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&total);
    let pool = Pool::builder()
        .capacity(3)
        .build_with_func(move |n: usize| {
            sink.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
    thread::scope(|scope| {
        for part in 0..4 {
            let pool = pool.clone();
            scope.spawn(move || {
                for n in (1..=1_000).filter(|n| n % 4 == part) {
                    pool.invoke(n).unwrap();
                }
            });
        }
    });
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(total.load(Ordering::Relaxed), 500_500);
}

#[test]
fn invocations_never_run_more_at_once_than_the_capacity() {
    const CAPACITY: usize = 2;
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let (now, max) = (Arc::clone(&running), Arc::clone(&max_running));
    let pool = PoolWithFunc::new(CAPACITY, move |_: usize| {
        let current = now.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(current, Ordering::SeqCst);
        thread::yield_now();
        now.fetch_sub(1, Ordering::SeqCst);
    })
    .unwrap();
    for n in 0..1_000 {
        pool.invoke(n).unwrap();
        assert!(pool.workers() <= CAPACITY);
    }
    pool.release_timeout(PATIENCE).unwrap();
    let max_running = max_running.load(Ordering::SeqCst);
    assert!(
        (1..=CAPACITY).contains(&max_running),
        "{max_running} ran at once"
    );
}

#[test]
fn nonblocking_pool_with_func_refuses_with_overloaded() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .nonblocking(true)
        .build_with_func(run_job)
        .unwrap();
    let gate = Gate::new();
    pool.invoke(Job::Wait(Arc::clone(&gate))).unwrap();
    assert_eq!((pool.busy(), pool.free()), (1, Some(0)));
    let (tx, rx) = mpsc::channel();
    assert_eq!(pool.invoke(Job::Report(tx)), Err(PoolError::Overloaded));
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert!(rx.try_recv().is_err(), "a refused argument was run");
}

#[test]
fn released_pool_with_func_refuses_and_reboot_reopens_it() {
    let (pool, total) = summing_pool(2);
    pool.invoke(1).unwrap();
    pool.release();
    assert!(pool.is_closed());
    assert_eq!(pool.invoke(10), Err(PoolError::Closed));
    assert_eq!(pool.release_timeout(PATIENCE), Err(PoolError::Closed));

    pool.reboot().unwrap();
    assert!(!pool.is_closed());
    pool.invoke(100).unwrap();
    pool.reboot().unwrap(); // a no-op on an open pool
    assert!(!pool.is_closed());
    pool.release_timeout(PATIENCE).unwrap();
    assert!(pool.is_closed());
    assert_eq!(total.load(Ordering::Relaxed), 101);
    assert_eq!(pool.workers(), 0);
}

#[test]
fn release_timeout_times_out_while_an_invocation_runs() {
    let pool = PoolWithFunc::new(1, run_job).unwrap();
    let gate = Gate::new();
    pool.invoke(Job::Wait(Arc::clone(&gate))).unwrap();
    assert_eq!(
        pool.release_timeout(Duration::from_millis(20)),
        Err(PoolError::Timeout)
    );
    assert!(pool.is_closed());
    gate.open();
    wait_until_within(PATIENCE, "the held worker exits", || pool.workers() == 0);
}

#[test]
fn tune_changes_the_capacity_and_refuses_zero() {
    let (pool, _) = summing_pool(2);
    assert_eq!(pool.tune(0), Err(PoolError::InvalidCapacity));
    assert_eq!(pool.capacity(), Some(2));
    pool.tune(6).unwrap();
    assert_eq!((pool.capacity(), pool.free()), (Some(6), Some(6)));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn tune_on_an_unbounded_pool_with_func_is_refused() {
    let pool = Pool::builder()
        .unbounded()
        .build_with_func(|_: ()| ())
        .unwrap();
    assert_eq!(pool.tune(3), Err(PoolError::Unbounded));
    assert_eq!((pool.capacity(), pool.free()), (None, None));
}

#[test]
fn growing_the_capacity_wakes_a_blocked_invoke() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .build_with_func(run_job)
        .unwrap();
    let gate = Gate::new();
    pool.invoke(Job::Wait(Arc::clone(&gate))).unwrap();

    let (result_tx, result) = mpsc::channel();
    let blocked = pool.clone();
    thread::spawn(move || result_tx.send(report(&blocked)).unwrap());
    wait_until_within(PATIENCE, "the second invoke is blocked", || {
        pool.waiting() == 1
    });

    pool.tune(2).unwrap();
    let name = result
        .recv_timeout(PATIENCE)
        .expect("tune did not wake the caller");
    assert_eq!(name, Ok("workpool-1".to_owned()));
    assert_eq!(pool.workers(), 2);
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
}
