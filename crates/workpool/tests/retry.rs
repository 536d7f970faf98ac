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

/// A retried task that always fails with "failed", on `pool`, and the
/// channel that hears of each failure.
fn always_failing(
    pool: &Pool,
    retry: Retry,
) -> (
    workpool::TaskHandle<Result<(), &'static str>>,
    mpsc::Receiver<()>,
) {
    let (failed, failures) = mpsc::channel();
    let handle = pool
        .task(move |_token| {
            let _ = failed.send(());
            Err::<(), _>("failed")
        })
        .retry(retry)
        .spawn()
        .unwrap();
    (handle, failures)
}

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
    let (handle, first_failure) = always_failing(&pool, Retry::exponential(LONG).max_attempts(5));
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

// A wait between attempts holds no worker: the task leaves its worker, the
// maintenance thread holds it, and it comes back through the queue.

/// A task that fails its first attempt (telling `failed`) and succeeds
/// after, recording when each attempt started.
fn fails_once(
    failed: mpsc::Sender<()>,
    starts: Arc<Mutex<Vec<Instant>>>,
) -> impl FnOnce(&workpool::CancelToken) -> Result<usize, usize> + Clone + Send + 'static {
    move |_token| {
        let mut starts = starts.lock().unwrap();
        starts.push(Instant::now());
        if starts.len() == 1 {
            let _ = failed.send(());
            Err(1)
        } else {
            Ok(starts.len())
        }
    }
}

#[test]
fn a_retry_backing_off_for_a_second_on_one_worker_lets_100_other_tasks_run_meanwhile() {
    let pool = Pool::new(1).unwrap();
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (failed, first_failure) = mpsc::channel();
    let backoff = Duration::from_secs(1);
    let retried = pool
        .task(fails_once(failed, Arc::clone(&starts)))
        .retry(Retry::exponential(backoff).max_attempts(2).without_jitter())
        .spawn()
        .unwrap();
    first_failure.recv_timeout(PATIENCE).unwrap();
    let others: Vec<_> = (0..100)
        .map(|n| pool.spawn(move || (n, Instant::now())).unwrap())
        .collect();
    let mut last_other = None;
    for (n, handle) in others.into_iter().enumerate() {
        let (ran, at) = handle.join().unwrap();
        assert_eq!(ran, n);
        last_other = Some(at);
    }
    assert_eq!(retried.join().unwrap(), Ok(2));
    let starts = starts.lock().unwrap();
    let (first, second) = (starts[0], starts[1]);
    assert!(
        last_other.unwrap() < second,
        "the 100 tasks waited for the retried task's second attempt: the wait held the worker"
    );
    assert!(second - first >= backoff, "the second attempt came early");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn tasks_waiting_between_attempts_hold_no_thread_and_no_place() {
    // 200 retried tasks on 2 workers, each failing its first attempt and
    // waiting 300 ms: every first attempt runs before any second one (a
    // wait on the worker would give 100 x 300 ms of first attempts), and
    // while they wait the workers are idle and the queue has room.
    let pool = Pool::builder()
        .capacity(2)
        .queue_capacity(4)
        .build()
        .unwrap();
    let attempts_run: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (failed, failures) = mpsc::channel();
    let backoff = Duration::from_millis(300);
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let tries = attempts();
            let log = Arc::clone(&attempts_run);
            let failed = failed.clone();
            pool.task(move |_token| {
                let attempt = tries.fetch_add(1, Ordering::SeqCst) + 1;
                log.lock().unwrap().push(attempt);
                if attempt == 1 {
                    let _ = failed.send(());
                    Err(())
                } else {
                    Ok(attempt)
                }
            })
            .retry(Retry::exponential(backoff).max_attempts(2).without_jitter())
            .spawn()
            .unwrap()
        })
        .collect();
    for _ in 0..200 {
        failures.recv_timeout(PATIENCE).unwrap();
    }
    // Workers poll for a moment after a task, then park.
    common::wait_until("no worker is busy while the retries wait", || {
        pool.busy() == 0 || attempts_run.lock().unwrap().len() > 200
    });
    assert_eq!(pool.queued(), 0);
    for handle in handles {
        assert_eq!(handle.join().unwrap(), Ok(2));
    }
    let log = attempts_run.lock().unwrap();
    assert_eq!(log.len(), 400);
    assert!(
        log[..200].iter().all(|&attempt| attempt == 1),
        "a second attempt ran before every first one had: a wait held a worker"
    );
    // A worker counts a task once it has run it, a moment after its handle
    // hears of it.
    pool.wait_idle(PATIENCE).unwrap();
    let stats = pool.stats();
    assert_eq!(
        stats.submitted, 200,
        "each retried task counts once: {stats:?}"
    );
    assert_eq!(stats.completed, 200, "{stats:?}");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn the_stats_identity_holds_while_tasks_wait_between_attempts_and_after_cancels() {
    let pool = Pool::new(2).unwrap();
    let (failed, failures) = mpsc::channel();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let failed = failed.clone();
            pool.task(move |_token| {
                let _ = failed.send(());
                Err::<(), _>("down")
            })
            .retry(Retry::exponential(LONG).max_attempts(2))
            .spawn()
            .unwrap()
        })
        .collect();
    for _ in 0..10 {
        failures.recv_timeout(PATIENCE).unwrap();
    }
    common::wait_until("every retried task waits", || pool.busy() == 0);
    let waiting = pool.stats();
    assert_eq!(waiting.submitted, 10, "{waiting:?}");
    assert_eq!(waiting.completed + waiting.panicked + waiting.cancelled, 0);
    for handle in &handles {
        assert!(!handle.cancel(), "a waiting retry had started");
    }
    for handle in handles {
        assert_eq!(handle.join().unwrap(), Err("down"));
    }
    let after = pool.stats();
    assert_eq!(after.submitted, 10, "{after:?}");
    assert_eq!(
        after.completed, 10,
        "a retry that gave up completed: {after:?}"
    );
    assert_eq!(after.cancelled, 0, "{after:?}");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_keyed_retried_task_keeps_its_key_until_its_last_attempt() {
    // The key's next task must not start while the retried one waits.
    let pool = Pool::new(2).unwrap();
    let log: Arc<Mutex<Vec<&str>>> = Arc::default();
    let tries = attempts();
    let (counted, first) = (Arc::clone(&tries), Arc::clone(&log));
    let retried = pool
        .task(move |_token| {
            let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
            first.lock().unwrap().push("retried");
            if attempt < 3 {
                Err(attempt)
            } else {
                Ok(attempt)
            }
        })
        .key("k")
        .retry(Retry::exponential(Duration::from_millis(20)).max_attempts(3))
        .spawn()
        .unwrap();
    let second = Arc::clone(&log);
    let next = pool
        .spawn_keyed("k", move || second.lock().unwrap().push("next"))
        .unwrap();
    assert_eq!(retried.join().unwrap(), Ok(3));
    next.join().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["retried", "retried", "retried", "next"]
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_batch_s_retries_wait_off_their_worker() {
    // One worker, three tasks that fail once: the three first attempts run
    // before any second one.
    let pool = Pool::new(1).unwrap();
    let log: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let tasks = (0..3).map(|n| {
        let log = Arc::clone(&log);
        let tries = attempts();
        move |_: &workpool::CancelToken| {
            let attempt = tries.fetch_add(1, Ordering::SeqCst) + 1;
            log.lock().unwrap().push((n, attempt));
            if attempt == 1 {
                Err(n)
            } else {
                Ok(n)
            }
        }
    });
    let retry = Retry::exponential(Duration::from_millis(50))
        .max_attempts(2)
        .without_jitter();
    let batch = pool.batch(tasks).retry(retry).spawn().unwrap();
    let results: Vec<_> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(results, [Ok(0), Ok(1), Ok(2)]);
    let log = log.lock().unwrap();
    let firsts: Vec<_> = log.iter().take(3).map(|&(_, attempt)| attempt).collect();
    assert_eq!(firsts, [1, 1, 1], "a wait held the worker: {log:?}");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_panic_in_a_later_attempt_is_the_task_s_panic() {
    common::quiet_intentional_panics();
    let pool = Pool::new(1).unwrap();
    let tries = attempts();
    let counted = Arc::clone(&tries);
    let handle = pool
        .task(move |_token| -> Result<(), ()> {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(())
            } else {
                panic!("{}", common::INTENTIONAL)
            }
        })
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
        .spawn()
        .unwrap();
    assert!(handle.join().unwrap_err().is_panic());
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    pool.wait_idle(PATIENCE).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.panicked, stats.completed),
        (1, 1, 0),
        "{stats:?}"
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_drain_ends_a_waiting_retry_with_its_last_error() {
    let pool = Pool::new(1).unwrap();
    let (handle, first_failure) = always_failing(&pool, Retry::exponential(LONG).max_attempts(2));
    first_failure.recv_timeout(PATIENCE).unwrap();
    assert_eq!(pool.drain_timeout(PATIENCE), Ok(()));
    assert_eq!(handle.join().unwrap(), Err("failed"));
}

#[test]
fn a_cancel_reaches_a_retry_whose_wait_is_over_but_finds_the_pool_full() {
    // The retried task comes due while its one worker is held and its
    // queue is full: it waits for room off the queue; a cancel then ends
    // it with its last error without waiting for room.
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (failed, first_failure) = mpsc::channel();
    let backoff = Duration::from_millis(100);
    let handle = pool
        .task(move |_token| {
            let _ = failed.send(());
            Err::<(), _>("failed")
        })
        .retry(Retry::exponential(backoff).max_attempts(2).without_jitter())
        .spawn()
        .unwrap();
    first_failure.recv_timeout(PATIENCE).unwrap();
    let failed_at = Instant::now();
    let gate = common::hold_a_worker(&pool);
    pool.submit(|| ()).unwrap(); // fills the queue
                                 // Nothing says "it came due and found no room": time does (a wait
                                 // past its due time; had the pool had room by then, the second
                                 // attempt would have ended the task, and the test proves less).
    std::thread::sleep((failed_at + 3 * backoff).saturating_duration_since(Instant::now()));
    let cancelled_at = Instant::now();
    assert!(!handle.cancel());
    assert!(handle.wait_timeout(DEADLINE), "the cancel waited for room");
    assert!(cancelled_at.elapsed() < DEADLINE);
    assert_eq!(handle.join().unwrap(), Err("failed"));
    assert_eq!(gate.passed(), 0, "the held worker was never free");
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_task_joining_a_waiting_retry_on_a_one_worker_pool_takes_it_instead_of_deadlocking() {
    // The retried task waits off the only worker; a task then takes that
    // worker and joins it. Waiting for a worker would wait for itself: the
    // join takes the retried task, waits out its wait and runs its next
    // attempt in place.
    let pool = Pool::new(1).unwrap();
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (failed, first_failure) = mpsc::channel();
    let backoff = Duration::from_millis(100);
    let retried = pool
        .task(fails_once(failed, Arc::clone(&starts)))
        .retry(Retry::exponential(backoff).max_attempts(3).without_jitter())
        .spawn()
        .unwrap();
    first_failure.recv_timeout(PATIENCE).unwrap();
    let joiner = pool.spawn(move || retried.join()).unwrap();
    assert!(
        joiner.wait_timeout(DEADLINE),
        "the join waited for its own worker"
    );
    assert_eq!(joiner.join().unwrap().unwrap(), Ok(2));
    let starts = starts.lock().unwrap();
    assert!(
        starts[1] - starts[0] >= backoff,
        "the join cut the wait short"
    );
    pool.wait_idle(PATIENCE).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed), (2, 2), "{stats:?}");
    pool.release_timeout(PATIENCE).unwrap();
}
