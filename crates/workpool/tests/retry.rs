//! Retried tasks: `TaskBuilder::retry` runs the closure again after each
//! `Err`, stops at the first `Ok`, gives up after `max_attempts` with the last
//! `Err`, and stops at once when its token is cancelled, even in the middle of
//! a long backoff.

mod common;

use common::{DEADLINE, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workpool::{Pool, Retry, TaskError};

/// A backoff far longer than any test: only a cancel ends it in time.
const LONG: Duration = Duration::from_secs(60);

/// A counter of attempts, shared with the task.
fn attempts() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn retry_stops_at_the_first_ok() {
    let pool = Pool::new(2).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let handle = pool
        .task(move |_token| {
            let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt < 3 {
                Err(format!("attempt {attempt} failed"))
            } else {
                Ok(attempt)
            }
        })
        .retry(
            Retry::exponential(Duration::from_millis(1))
                .max_attempts(10)
                .without_jitter(),
        )
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), Ok(3));
    assert_eq!(tries.load(Ordering::SeqCst), 3, "it ran on after the Ok");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_first_ok_is_not_retried() {
    let pool = Pool::new(1).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let handle = pool
        .task(move |_token| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>("first time")
        })
        .retry(Retry::exponential(LONG).max_attempts(5))
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), Ok("first time"));
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn an_always_failing_task_runs_exactly_max_attempts_times() {
    let pool = Pool::new(2).unwrap();
    for max in [1, 2, 4, 7] {
        let tries = attempts();
        let counted = Arc::clone(&tries);
        let handle = pool
            .task(move |_token| Err::<(), _>(counted.fetch_add(1, Ordering::SeqCst) + 1))
            .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(max))
            .spawn()
            .unwrap();
        // The last Err is the result.
        assert_eq!(handle.join().unwrap(), Err(max), "max_attempts({max})");
        assert_eq!(tries.load(Ordering::SeqCst), max, "max_attempts({max})");
    }
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn zero_max_attempts_still_runs_once() {
    let pool = Pool::new(1).unwrap();
    let retry = Retry::exponential(Duration::from_millis(1)).max_attempts(0);
    assert_eq!(retry.attempts(), 1);
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let handle = pool
        .task(move |_token| Err::<(), _>(counted.fetch_add(1, Ordering::SeqCst)))
        .retry(retry)
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), Err(0));
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn the_default_is_three_attempts() {
    let pool = Pool::new(1).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let retry = Retry::exponential(Duration::from_millis(1));
    assert_eq!(retry.attempts(), 3);
    let handle = pool
        .task(move |_token| Err::<(), _>(counted.fetch_add(1, Ordering::SeqCst) + 1))
        .retry(retry)
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), Err(3));
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_cancel_during_a_long_backoff_ends_the_retry_at_once() {
    let pool = Pool::new(1).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let (failed, first_failure) = mpsc::channel();
    let handle = pool
        .task(move |_token| {
            let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
            failed.send(()).unwrap();
            Err::<(), _>(attempt)
        })
        .retry(Retry::exponential(LONG).max_attempts(5).without_jitter())
        .spawn()
        .unwrap();
    first_failure.recv_timeout(PATIENCE).unwrap();
    let cancelled_at = Instant::now();
    assert!(!handle.cancel(), "the task had started");
    assert!(
        handle.wait_timeout(DEADLINE),
        "the retry slept through its cancel"
    );
    assert!(cancelled_at.elapsed() < DEADLINE);
    assert_eq!(handle.join().unwrap(), Err(1), "the last Err is the result");
    assert_eq!(
        tries.load(Ordering::SeqCst),
        1,
        "it retried after the cancel"
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_deadline_ends_a_long_backoff() {
    let pool = Pool::new(1).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let spawned = Instant::now();
    let handle = pool
        .task(move |_token| Err::<(), _>(counted.fetch_add(1, Ordering::SeqCst) + 1))
        .retry(Retry::exponential(LONG).max_attempts(5))
        .deadline(Duration::from_millis(100))
        .spawn()
        .unwrap();
    assert!(
        handle.wait_timeout(DEADLINE),
        "the retry slept through its deadline"
    );
    assert!(spawned.elapsed() >= Duration::from_millis(100));
    assert_eq!(handle.join().unwrap(), Err(1));
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_release_ends_a_long_backoff() {
    let pool = Pool::new(1).unwrap();
    let (failed, first_failure) = mpsc::channel();
    let handle = pool
        .task(move |_token| {
            let _ = failed.send(());
            Err::<(), _>("failed")
        })
        .retry(Retry::exponential(LONG).max_attempts(5))
        .spawn()
        .unwrap();
    first_failure.recv_timeout(PATIENCE).unwrap();
    let asked = Instant::now();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert!(asked.elapsed() < DEADLINE);
    assert_eq!(handle.join().unwrap(), Err("failed"));
}

#[test]
fn the_retried_task_s_token_is_the_same_across_attempts_and_seen_by_it() {
    // The closure may look at the token between its own steps; a cancel
    // that comes during an attempt ends the retry after that attempt.
    let pool = Pool::new(1).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let (attempting, attempt_started) = mpsc::channel();
    let handle = pool
        .task(move |token| {
            counted.fetch_add(1, Ordering::SeqCst);
            attempting.send(()).unwrap();
            // Waits for the cancel, then fails.
            let cancelled = token.wait_timeout(LONG);
            Err::<(), _>(cancelled)
        })
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(5))
        .spawn()
        .unwrap();
    attempt_started.recv_timeout(PATIENCE).unwrap();
    assert!(!handle.cancel());
    assert_eq!(handle.join().unwrap(), Err(true));
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn on_complete_sees_only_the_final_result_of_a_retried_task() {
    let pool = Pool::new(1).unwrap();
    let results: Arc<Mutex<Vec<Result<u32, String>>>> = Arc::default();
    let record = Arc::clone(&results);
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let handle = pool
        .task(move |_token| {
            let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt < 2 {
                Err(attempt)
            } else {
                Ok(attempt)
            }
        })
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
        .on_complete(move |result: &Result<Result<usize, usize>, TaskError>| {
            record.lock().unwrap().push(match result {
                Ok(Ok(n)) => Ok(*n as u32),
                Ok(Err(n)) => Err(format!("err {n}")),
                Err(e) => Err(e.to_string()),
            });
        })
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), Ok(2));
    assert_eq!(*results.lock().unwrap(), [Ok(2)]);
    pool.release_timeout(PATIENCE).unwrap();
}
