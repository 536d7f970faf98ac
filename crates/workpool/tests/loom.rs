//! Loom models of the pool's races that matter most. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p workpool --release --test loom`.
//!
//! Under `--cfg loom` the pool's locks, condvars, protocol atomics and threads
//! are loom's (see `src/sync.rs`), so each model explores the interleavings of
//! the real code. The purge thread is disabled in every model: loom ignores
//! timeouts, so the purge is covered by the ordinary expiry tests instead.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;
use workpool::{Pool, PoolError};

/// Long enough never to pass inside a model; loom ignores it anyway.
const FOREVER: Duration = Duration::from_secs(3600);

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

fn pool(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .disable_purge(true)
        .build()
        .expect("valid options")
}

fn counting_task(ran: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let ran = Arc::clone(ran);
    move || {
        ran.fetch_add(1, Ordering::SeqCst);
    }
}

/// Submits a counting task from a thread of its own.
fn submit_from_thread(
    pool: &Pool,
    ran: &Arc<AtomicUsize>,
) -> thread::JoinHandle<Result<(), PoolError>> {
    let pool = pool.clone();
    let task = counting_task(ran);
    thread::spawn(move || pool.submit(task))
}

/// A submit racing a release: the task either runs exactly once and
/// `release_timeout` has waited for it, or it is refused with `Closed` and
/// never runs. Either way no thread is left.
#[test]
fn submit_racing_release_runs_the_task_once_or_refuses_it() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        let released = pool.release_timeout(FOREVER);
        let submitted = submitter.join().unwrap();
        assert_eq!(released, Ok(()));
        match submitted {
            Ok(()) => assert_eq!(ran.load(Ordering::SeqCst), 1),
            Err(e) => {
                assert_eq!(e, PoolError::Closed);
                assert_eq!(ran.load(Ordering::SeqCst), 0);
            }
        }
        assert_eq!(pool.workers(), 0);
    });
}

/// A worker going idle racing a submitter that finds the pool at capacity:
/// the submitter is never left blocked with an idle worker beside it.
#[test]
fn worker_going_idle_wakes_a_blocked_submitter() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
}

/// A release racing a submitter blocked at capacity: the submitter returns
/// `Closed` (or got the worker first); the running task still finishes.
#[test]
fn release_wakes_a_blocked_submitter() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        // `release_timeout` releases exactly as `release` does, then waits for
        // the worker through the pool's own (modelled) lock.
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        let submitted = submitter.join().unwrap();
        let expected = if submitted.is_ok() { 2 } else { 1 };
        assert_eq!(ran.load(Ordering::SeqCst), expected);
        if let Err(e) = submitted {
            assert_eq!(e, PoolError::Closed);
        }
    });
}

/// The last handle dropped on one thread while another submits through its
/// own clone: every accepted task runs, and every thread ends by itself.
#[test]
fn last_handle_drop_racing_a_submit_loses_nothing() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        drop(pool);
        // The clone in the submitter keeps the pool open until it drops.
        assert_eq!(submitter.join().unwrap(), Ok(()));
        // Loom runs every thread to its end before the execution completes,
        // and reports a deadlock if one never ends; the worker must run the
        // task and exit on its own.
    });
}

/// Two submitters racing for the one worker that `min_workers` started idle:
/// both tasks run, one after the other, on a pool that never exceeds its
/// capacity of one.
#[test]
fn submitters_racing_for_a_min_worker_both_get_it_in_turn() {
    model(|| {
        let pool = Pool::builder()
            .capacity(1)
            .min_workers(1)
            .disable_purge(true)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        pool.submit(counting_task(&ran)).unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert!(pool.workers() <= 1);
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
}

/// `tune` growing the pool racing the worker that frees up, while a
/// submitter is blocked with its task deposited: the task runs exactly once,
/// on the worker that freed up (which takes the deposit) or on a new one
/// (the submitter, told to retry, takes its task back first).
#[test]
fn tune_up_racing_a_freed_worker_runs_a_deposited_task_once() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        pool.tune(2).unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!(pool.workers(), 0);
    });
}
