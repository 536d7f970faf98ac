//! Time given as an instant: a task's deadline at an instant
//! (`TaskBuilder::deadline_at`, `BatchBuilder::deadline_at`), a token
//! cancelled at an instant or after a while (`CancelToken::cancel_at`,
//! `cancel_after`); and the closure kinds of `Pool::task`.

mod common;

use common::{hold_a_worker, DEADLINE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use workpool::{CancelToken, Pool, Retry, TaskError};

/// How late a timer may fire on a loaded machine and still pass: on an
/// idle one it fires within a few milliseconds.
const LATE: Duration = Duration::from_millis(500);

#[test]
fn a_deadline_at_a_past_instant_means_the_task_never_runs() {
    let pool = Pool::new(2).unwrap();
    for past in [Instant::now(), Instant::now() - Duration::from_secs(1)] {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let handle = pool
            .task(move |_token| flag.store(true, Ordering::SeqCst))
            .deadline_at(past)
            .spawn()
            .unwrap();
        assert!(matches!(handle.join(), Err(TaskError::DeadlineExceeded)));
        assert!(!ran.load(Ordering::SeqCst), "a task past its instant ran");
    }
    // The same for a batch: every task of it.
    let ran = Arc::new(AtomicBool::new(false));
    let tasks = (0..8).map(|_| {
        let flag = Arc::clone(&ran);
        move |_: &CancelToken| flag.store(true, Ordering::SeqCst)
    });
    let batch = pool
        .batch(tasks)
        .deadline_at(Instant::now())
        .spawn()
        .unwrap();
    assert!(batch
        .join()
        .iter()
        .all(|r| matches!(r, Err(TaskError::DeadlineExceeded))));
    assert!(!ran.load(Ordering::SeqCst));
    pool.wait_idle(DEADLINE).unwrap();
}

#[test]
fn a_task_past_its_instant_never_runs_even_when_a_worker_takes_it_at_once() {
    // Idle workers take a task the moment it is queued, before the pool
    // has filed its timer: the instant is checked where a task starts.
    let pool = Pool::new(2).unwrap();
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let past = Instant::now();
    let handles: Vec<_> = (0..20_000)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.task(move |_token| ran.fetch_add(1, Ordering::SeqCst))
                .deadline_at(past)
                .spawn()
                .unwrap()
        })
        .collect();
    for handle in handles {
        assert!(matches!(handle.join(), Err(TaskError::DeadlineExceeded)));
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "tasks past their instant ran"
    );
}

#[test]
fn a_deadline_at_an_instant_counts_from_that_instant_not_from_acceptance() {
    let pool = Pool::new(1).unwrap();
    let gate = hold_a_worker(&pool);
    // One instant for a request; the second task is accepted later, but its
    // deadline is the same instant, not 50 ms after its acceptance.
    let at = Instant::now() + Duration::from_millis(50);
    let first = pool.task(|_token| 1).deadline_at(at).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let second = pool.task(|_token| 2).deadline_at(at).spawn().unwrap();
    let started = Instant::now();
    assert!(matches!(first.join(), Err(TaskError::DeadlineExceeded)));
    assert!(matches!(second.join(), Err(TaskError::DeadlineExceeded)));
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(40) + LATE,
        "the second task's deadline fell {waited:?} after it was spawned, not at the shared instant"
    );
    gate.open();
}

#[test]
fn a_running_task_sees_its_token_cancelled_at_the_instant() {
    let pool = Pool::new(1).unwrap();
    let at = Instant::now() + Duration::from_millis(20);
    let handle = pool
        .task(|token| token.wait_timeout(Duration::from_secs(60)))
        .deadline_at(at)
        .spawn()
        .unwrap();
    // Cancelled while it waited (or, on a busy machine, before it started).
    assert!(handle.join().unwrap_or_else(|e| e.is_deadline()));
    assert!(Instant::now() >= at);
}

#[test]
fn cancel_after_cancels_on_time_and_wakes_children() {
    let token = CancelToken::new();
    let child = token.child();
    let started = Instant::now();
    token.cancel_after(Duration::from_millis(30));
    assert!(!token.is_cancelled(), "cancelled before its time");
    assert!(child.wait_timeout(Duration::from_secs(60)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(30),
        "cancelled early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(30) + LATE,
        "cancelled late: {waited:?}"
    );
}

#[test]
fn cancel_at_fires_timers_in_the_order_of_their_instants_whatever_the_order_filed() {
    let now = Instant::now();
    let (tx, rx) = mpsc::channel();
    let tokens: Vec<CancelToken> = (0..5).map(|_| CancelToken::new()).collect();
    // Filed latest first: each later one must not delay an earlier one.
    for (n, token) in tokens.iter().enumerate().rev() {
        token.cancel_at(now + Duration::from_millis(20 * (n as u64 + 1)));
    }
    let waiters: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(n, token)| {
            let token = token.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                assert!(token.wait_timeout(Duration::from_secs(60)));
                tx.send((n, Instant::now())).unwrap();
            })
        })
        .collect();
    drop(tx);
    for waiter in waiters {
        waiter.join().unwrap();
    }
    for (n, at) in rx {
        let due = now + Duration::from_millis(20 * (n as u64 + 1));
        assert!(at >= due, "token {n} cancelled before its instant");
        assert!(at < due + LATE, "token {n} cancelled {:?} late", at - due);
    }
}

#[test]
fn cancel_at_a_past_instant_cancels_at_once_and_an_earlier_cancel_wins() {
    let token = CancelToken::new();
    token.cancel_at(Instant::now() - Duration::from_millis(1));
    assert!(token.is_cancelled());
    // A huge delay is never, not a panic.
    let never = CancelToken::new();
    never.cancel_after(Duration::MAX);
    never.cancel();
    assert!(never.is_cancelled());
}

#[test]
fn task_takes_an_fn_once_that_moves_out_what_it_captured() {
    let pool = Pool::new(1).unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let message = String::from("to recipient 7");
    // `move |_| send(msg)` moves `message` out: an `FnOnce`, not an `FnMut`.
    let handle = pool
        .task(move |_token| tx.send(message).unwrap())
        .spawn()
        .unwrap();
    handle.join().unwrap();
    assert_eq!(rx.recv().unwrap(), "to recipient 7");
}

#[test]
fn retry_delays_is_the_schedule_a_retried_task_follows() {
    let ms = Duration::from_millis;
    let retry = Retry::exponential(ms(5)).max_attempts(4).without_jitter();
    let delays: Vec<Duration> = retry.delays().collect();
    assert_eq!(delays, [ms(5), ms(10), ms(20)]);
    assert_eq!(delays.len() + 1, retry.attempts());
    // With jitter: each wait at least its step and at most twice it.
    let jittered: Vec<Duration> = Retry::exponential(ms(5)).max_attempts(4).delays().collect();
    for (got, step) in jittered.iter().zip(&delays) {
        assert!(
            got >= step && *got <= *step * 2,
            "{got:?} outside [{step:?}, 2x]"
        );
    }
}
