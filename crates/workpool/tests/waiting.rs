//! Waiting without closing: `wait_idle` returns once every accepted task has
//! ended (or fails with `Timeout`), `submit_timeout` gives up after its
//! timeout without running the task, and `try_submit` never blocks and gives
//! a refused closure back.

mod common;

use common::{wait_until, Gate, Pending, Probe, DEADLINE, PATIENCE};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::{Pool, PoolBuilder, PoolError, TrySubmitError};

/// A pool whose idle workers never expire (expiry is not the concern here).
fn builder(capacity: usize) -> PoolBuilder {
    Pool::builder().capacity(capacity).disable_purge(true)
}

/// Fills every worker of `pool` with a task that waits at `gate`, and waits
/// until they are all running.
fn occupy_all_workers(pool: &Pool, gate: &Arc<Gate>) {
    let capacity = pool.capacity().expect("a bounded pool");
    for _ in 0..capacity {
        let held = Arc::clone(gate);
        pool.submit(move || held.wait()).unwrap();
    }
    gate.await_arrivals(capacity);
}

#[test]
fn wait_idle_returns_once_the_last_queued_task_ends_and_the_pool_stays_open() {
    let pool = builder(2).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    for _ in 0..6 {
        pool.submit(probe.task_behind(&gate)).unwrap();
    }
    gate.await_arrivals(2);
    assert_eq!(pool.queued(), 4);

    let waiting = {
        let pool = pool.clone();
        Pending::start(move || pool.wait_idle(PATIENCE))
    };
    gate.let_through(5);
    probe.await_runs(5);
    // One task is still held: wait_idle has not returned.
    gate.await_arrivals(6);
    waiting.assert_blocked();
    assert_eq!(probe.runs(), 5);

    gate.let_through(1);
    assert_eq!(waiting.outcome(), Ok(()));
    // Every task had ended by then.
    assert_eq!(probe.runs(), 6);
    assert_eq!(pool.queued(), 0);
    assert!(!pool.is_closed());

    // The pool is open: it takes and runs the next task.
    pool.submit(probe.task()).unwrap();
    probe.await_runs(7);
    pool.wait_idle(PATIENCE).unwrap();
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn wait_idle_waits_for_tasks_with_handles_too() {
    let pool = builder(1).build().unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let handle = pool.spawn(move || held.wait()).unwrap();
    let queued = pool.spawn(|| 5).unwrap();
    gate.await_arrivals(1);
    let waiting = {
        let pool = pool.clone();
        Pending::start(move || pool.wait_idle(PATIENCE))
    };
    waiting.assert_blocked();
    gate.open();
    assert_eq!(waiting.outcome(), Ok(()));
    assert!(handle.is_finished());
    assert!(queued.is_finished());
    assert_eq!(queued.join().unwrap(), 5);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn wait_idle_times_out_while_a_task_is_held() {
    let pool = builder(1).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    let timeout = Duration::from_millis(100);
    let asked = Instant::now();
    assert_eq!(pool.wait_idle(timeout), Err(PoolError::Timeout));
    let waited = asked.elapsed();
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(waited < timeout + DEADLINE, "gave up after {waited:?}");
    assert!(!pool.is_closed());
    gate.open();
    assert_eq!(pool.wait_idle(PATIENCE), Ok(()));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn wait_idle_on_an_idle_pool_returns_at_once() {
    let pool = builder(2).build().unwrap();
    assert_eq!(pool.wait_idle(Duration::ZERO), Ok(()));
    pool.spawn(|| ()).unwrap().join().unwrap();
    assert_eq!(pool.wait_idle(PATIENCE), Ok(()));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn wait_idle_after_a_queued_task_was_cancelled_returns() {
    // The cancelled task stays in the queue as a ghost until a worker pops
    // it: wait_idle must still see the pool idle once the worker is free.
    let pool = builder(1).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    let queued = pool.spawn(|| ()).unwrap();
    assert!(queued.cancel());
    gate.open();
    assert_eq!(pool.wait_idle(PATIENCE), Ok(()));
    assert_eq!(pool.queued(), 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn wait_idle_from_a_task_of_the_pool_would_deadlock() {
    let pool = builder(2).build().unwrap();
    let inner = pool.clone();
    let handle = pool.spawn(move || inner.wait_idle(PATIENCE)).unwrap();
    assert_eq!(handle.join().unwrap(), Err(PoolError::WouldDeadlock));
    pool.release_timeout(PATIENCE).unwrap();
}

/// `submit_timeout` on the full `pool`: `Timeout` after about the timeout,
/// and the task never runs.
fn submit_timeout_times_out_on(pool: &Pool, gate: &Gate) {
    let probe = Probe::new();
    let timeout = Duration::from_millis(150);
    let asked = Instant::now();
    assert_eq!(
        pool.submit_timeout(probe.task(), timeout),
        Err(PoolError::Timeout)
    );
    let waited = asked.elapsed();
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(waited < timeout + DEADLINE, "gave up after {waited:?}");
    assert!(probe.all_tasks_dropped(), "the refused task was kept");
    assert_eq!(pool.waiting(), 0);
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 0, "the timed-out task ran");
}

#[test]
fn submit_timeout_on_a_full_hand_off_pool_times_out_and_the_task_never_runs() {
    let pool = builder(1).queue_capacity(0).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    submit_timeout_times_out_on(&pool, &gate);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn submit_timeout_on_a_full_queue_times_out_and_the_task_never_runs() {
    let pool = builder(1).queue_capacity(2).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    let queued = Probe::new();
    for _ in 0..2 {
        pool.submit(queued.task()).unwrap();
    }
    assert_eq!(pool.queued(), 2);
    submit_timeout_times_out_on(&pool, &gate);
    assert_eq!(queued.runs(), 2);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn submit_timeout_succeeds_when_room_comes_in_time() {
    let pool = builder(1).queue_capacity(0).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    let probe = Probe::new();
    let submit = {
        let pool = pool.clone();
        let task = probe.task();
        Pending::start(move || pool.submit_timeout(task, PATIENCE))
    };
    wait_until("the submit waits for room", || pool.waiting() == 1);
    submit.assert_blocked();
    gate.open();
    assert_eq!(submit.outcome(), Ok(()));
    probe.await_runs(1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn submit_timeout_on_a_pool_with_room_does_not_wait() {
    let pool = builder(2).build().unwrap();
    let probe = Probe::new();
    assert_eq!(pool.submit_timeout(probe.task(), Duration::ZERO), Ok(()));
    probe.await_runs(1);
    pool.release();
    assert_eq!(
        pool.submit_timeout(probe.task(), PATIENCE),
        Err(PoolError::Closed)
    );
}

#[test]
fn try_submit_on_a_full_pool_gives_the_same_closure_back() {
    let pool = builder(1).queue_capacity(0).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);

    let captured = Arc::new(String::from("captured by the refused closure"));
    let (tx, rx) = mpsc::channel();
    let inside = Arc::clone(&captured);
    let task = move || tx.send(Arc::clone(&inside)).unwrap();
    assert_eq!(Arc::strong_count(&captured), 2);

    let refused = pool.try_submit(task).unwrap_err();
    assert!(refused.is_full());
    assert!(!refused.is_closed());
    assert!(matches!(refused, TrySubmitError::Full(_)));
    assert_eq!(
        refused.to_string(),
        "the pool is full: every worker is busy and the queue is full"
    );
    // Refused at once: nothing waits, and the closure (with what it
    // captured) is alive in the error, not dropped, not run.
    assert_eq!(pool.waiting(), 0);
    assert_eq!(Arc::strong_count(&captured), 2);
    assert!(rx.try_recv().is_err());
    let task = refused.into_inner();
    assert_eq!(Arc::strong_count(&captured), 2);

    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    pool.try_submit(task)
        .expect("an idle pool takes the closure again");
    let sent = rx.recv_timeout(PATIENCE).expect("the closure ran");
    assert!(
        Arc::ptr_eq(&sent, &captured),
        "what ran is not the closure given back"
    );
    drop(sent);
    wait_until("the closure is dropped after its run", || {
        Arc::strong_count(&captured) == 1
    });
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn try_submit_on_a_full_queue_is_refused_without_blocking() {
    let pool = builder(1).queue_capacity(1).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    let probe = Probe::new();
    pool.try_submit(probe.task()).expect("the queue has room");
    assert_eq!(pool.queued(), 1);
    let refused = pool.try_submit(probe.task()).unwrap_err();
    assert!(refused.is_full());
    assert_eq!(pool.queued(), 1);
    gate.open();
    probe.await_runs(1);
    // The closure given back runs when submitted again.
    pool.submit(refused.into_inner()).unwrap();
    probe.await_runs(2);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn try_submit_on_a_released_pool_gives_the_closure_back_as_closed() {
    let pool = builder(1).build().unwrap();
    pool.release();
    let (tx, rx) = mpsc::channel();
    let refused = pool
        .try_submit(move || tx.send("ran where it was called").unwrap())
        .unwrap_err();
    assert!(refused.is_closed());
    assert!(matches!(refused, TrySubmitError::Closed(_)));
    refused.into_inner()();
    assert_eq!(rx.try_recv(), Ok("ran where it was called"));
}

#[test]
fn try_submit_from_a_task_of_its_full_pool_is_full_not_a_deadlock() {
    let pool = builder(1).queue_capacity(0).build().unwrap();
    let inner = pool.clone();
    let handle = pool
        .spawn(move || inner.try_submit(|| ()).map_err(|e| e.is_full()))
        .unwrap();
    assert_eq!(handle.join().unwrap(), Err(true));
    pool.release_timeout(PATIENCE).unwrap();
}
