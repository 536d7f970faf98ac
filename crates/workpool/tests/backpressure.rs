//! Backpressure: at capacity with every worker busy, `submit` blocks (or, in
//! nonblocking mode or past `max_blocking_tasks`, fails with `Overloaded`);
//! `release` and `tune` wake the blocked callers.

mod common;

use common::{holds_throughout, returns_promptly, wait_until, Gate, Pending, Probe};
use std::sync::Arc;
use std::time::Duration;
use workpool::{Pool, PoolBuilder, PoolError};

/// A bounded pool without a queue (ants' hand-off: `submit` blocks as soon
/// as every worker is busy; `tests/queue.rs` covers the queue's
/// backpressure), whose idle workers never expire (expiry is not the concern
/// here, and a purge would change the worker counts the tests assert).
fn builder(capacity: usize) -> PoolBuilder {
    Pool::builder()
        .capacity(capacity)
        .queue_capacity(0)
        .disable_purge(true)
}

/// Fills every worker of `pool` with a task that waits at `gate`, and waits
/// until they are all running.
fn occupy_all_workers(pool: &Pool, gate: &Arc<Gate>) {
    let capacity = pool.capacity().expect("a bounded pool");
    for _ in 0..capacity {
        let gate = Arc::clone(gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(capacity);
    assert_eq!(pool.busy(), capacity);
}

/// Starts a `submit` of `probe`'s task on a thread of its own.
fn submit_in_background(pool: &Pool, probe: &Probe) -> Pending {
    let pool = pool.clone();
    let task = probe.task();
    Pending::start(move || pool.submit(task))
}

fn await_waiting(pool: &Pool, n: usize) {
    wait_until(&format!("{n} callers are blocked in submit"), || {
        pool.waiting() == n
    });
}

fn shut_down(pool: &Pool, gate: &Gate) {
    gate.open();
    assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
}

#[test]
fn submit_at_capacity_blocks_until_a_worker_is_free() {
    let pool = builder(2).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);

    let probe = Probe::new();
    let submit = submit_in_background(&pool, &probe);
    await_waiting(&pool, 1);
    submit.assert_blocked();
    assert_eq!(probe.runs(), 0);
    assert_eq!(pool.workers(), 2, "a blocked submit must not add a worker");

    gate.let_through(1);
    assert_eq!(submit.outcome(), Ok(()));
    probe.await_runs(1);
    assert_eq!(pool.waiting(), 0);
    assert_eq!(pool.workers(), 2);
    assert_eq!(gate.passed(), 1, "the other task is still held");

    shut_down(&pool, &gate);
    assert_eq!(probe.runs(), 1);
}

#[test]
fn nonblocking_pool_refuses_at_capacity_and_drops_the_task() {
    let pool = builder(1).nonblocking(true).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);

    let probe = Probe::new();
    let refused = {
        let (pool, task) = (pool.clone(), probe.task());
        returns_promptly(move || pool.submit(task))
    };
    assert_eq!(refused, Err(PoolError::Overloaded));
    assert!(probe.all_tasks_dropped(), "a refused task is dropped");
    assert_eq!(pool.waiting(), 0);
    assert_eq!(pool.workers(), 1);

    shut_down(&pool, &gate);
    assert_eq!(probe.runs(), 0, "a refused task never runs");
}

#[test]
fn nonblocking_pool_accepts_again_once_a_worker_is_free() {
    let pool = builder(1).nonblocking(true).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    assert_eq!(pool.submit(|| ()), Err(PoolError::Overloaded));

    gate.let_through(1);
    wait_until("the worker is idle again", || pool.idle() == 1);
    let probe = Probe::new();
    assert_eq!(pool.submit(probe.task()), Ok(()));
    probe.await_runs(1);

    shut_down(&pool, &gate);
}

/// `min_workers` start idle at build: a nonblocking pool must hand them
/// tasks at once, even before their threads have got going.
#[test]
fn nonblocking_pool_hands_tasks_to_min_workers_right_after_build() {
    for _ in 0..20 {
        let pool = builder(2).min_workers(2).nonblocking(true).build().unwrap();
        let probe = Probe::new();
        assert_eq!(pool.submit(probe.task()), Ok(()), "first task");
        assert_eq!(pool.submit(probe.task()), Ok(()), "second task");
        probe.await_runs(2);
        assert_eq!(pool.workers(), 2);
        assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
    }
}

#[test]
fn min_workers_are_idle_not_busy_right_after_build() {
    let pool = builder(3).min_workers(3).build().unwrap();
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.busy(), 0, "no task has been handed to them");
    assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
}

#[test]
fn max_blocking_tasks_refuses_the_caller_past_the_limit() {
    let pool = builder(1).max_blocking_tasks(2).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);

    let accepted = Probe::new();
    let first = submit_in_background(&pool, &accepted);
    let second = submit_in_background(&pool, &accepted);
    await_waiting(&pool, 2);

    let refused = Probe::new();
    let third = {
        let (pool, task) = (pool.clone(), refused.task());
        returns_promptly(move || pool.submit(task))
    };
    assert_eq!(third, Err(PoolError::Overloaded));
    assert!(refused.all_tasks_dropped());
    assert_eq!(pool.waiting(), 2, "the refusal leaves the blocked callers");
    first.assert_blocked();
    second.assert_blocked();

    gate.open();
    assert_eq!(first.outcome(), Ok(()));
    assert_eq!(second.outcome(), Ok(()));
    accepted.await_runs(2);
    assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
    assert_eq!(accepted.runs(), 2);
    assert_eq!(refused.runs(), 0);
}

#[test]
fn release_wakes_blocked_submitters_with_closed() {
    let pool = builder(1).build().unwrap();
    let gate = Gate::new();
    let running = Probe::new();
    pool.submit(running.task_behind(&gate)).unwrap();
    gate.await_arrivals(1);

    let refused = Probe::new();
    let blocked: Vec<Pending> = (0..3)
        .map(|_| submit_in_background(&pool, &refused))
        .collect();
    await_waiting(&pool, 3);

    pool.release();
    for submit in blocked {
        assert_eq!(submit.outcome(), Err(PoolError::Closed));
    }
    assert!(refused.all_tasks_dropped(), "refused tasks are dropped");
    assert_eq!(refused.runs(), 0);
    assert_eq!(pool.waiting(), 0);

    // The task that was running is not interrupted.
    assert_eq!(running.runs(), 0);
    gate.open();
    running.await_runs(1);
    wait_until("the last worker exits", || pool.workers() == 0);
    assert_eq!(refused.runs(), 0);
}

#[test]
fn tune_up_wakes_blocked_submitters_at_once() {
    let pool = builder(1).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);

    let probe = Probe::new();
    let blocked: Vec<Pending> = (0..2)
        .map(|_| submit_in_background(&pool, &probe))
        .collect();
    await_waiting(&pool, 2);

    pool.tune(3).unwrap();
    for submit in blocked {
        assert_eq!(submit.outcome(), Ok(()));
    }
    probe.await_runs(2);
    assert_eq!(gate.passed(), 0, "the original task is still held");
    assert_eq!(pool.waiting(), 0);
    assert_eq!(pool.capacity(), Some(3));

    shut_down(&pool, &gate);
}

#[test]
fn tune_down_is_lazy_and_new_submits_respect_the_new_capacity() {
    let pool = builder(4).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);

    pool.tune(2).unwrap();
    assert_eq!(pool.capacity(), Some(2));
    assert_eq!(pool.free(), Some(0));
    assert_eq!(pool.workers(), 4, "running tasks are not interrupted");
    assert_eq!(gate.passed(), 0);

    // Above the new capacity, a new task must wait.
    let probe = Probe::new();
    let submit = submit_in_background(&pool, &probe);
    await_waiting(&pool, 1);

    // The first two workers to finish exit instead of taking the task.
    gate.let_through(2);
    wait_until("two workers exit", || pool.workers() == 2);
    submit.assert_blocked();
    assert_eq!(pool.waiting(), 1);
    assert_eq!(probe.runs(), 0);

    // The third to finish is within the capacity: it serves the caller.
    gate.let_through(1);
    assert_eq!(submit.outcome(), Ok(()));
    probe.await_runs(1);
    gate.let_through(1);
    wait_until("both remaining workers are idle", || pool.idle() == 2);
    assert_eq!(pool.workers(), 2);

    // From now on at most two tasks run at once.
    let second_gate = Gate::new();
    occupy_all_workers(&pool, &second_gate);
    let late = Probe::new();
    let submit = submit_in_background(&pool, &late);
    await_waiting(&pool, 1);
    assert_eq!(pool.workers(), 2);
    submit.assert_blocked();
    second_gate.open();
    assert_eq!(submit.outcome(), Ok(()));
    late.await_runs(1);

    shut_down(&pool, &gate);
}

#[test]
fn tune_down_retires_excess_idle_workers_at_once() {
    let pool = builder(4).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    gate.open();
    wait_until("every worker is idle", || pool.idle() == 4);

    pool.tune(2).unwrap();
    assert_eq!(pool.workers(), 2);
    assert_eq!(pool.idle(), 2);
    assert_eq!(pool.free(), Some(0));

    // The two left are all there is: a third task waits.
    let second_gate = Gate::new();
    occupy_all_workers(&pool, &second_gate);
    let probe = Probe::new();
    let submit = submit_in_background(&pool, &probe);
    await_waiting(&pool, 1);
    assert_eq!(pool.workers(), 2);
    submit.assert_blocked();
    second_gate.open();
    assert_eq!(submit.outcome(), Ok(()));
    probe.await_runs(1);
    shut_down(&pool, &gate);
}

#[test]
fn free_and_capacity_track_tune() {
    let pool = builder(4).build().unwrap();
    assert_eq!((pool.capacity(), pool.free()), (Some(4), Some(4)));

    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    assert_eq!((pool.capacity(), pool.free()), (Some(4), Some(3)));

    pool.tune(8).unwrap();
    assert_eq!((pool.capacity(), pool.free()), (Some(8), Some(7)));
    pool.tune(2).unwrap();
    assert_eq!((pool.capacity(), pool.free()), (Some(2), Some(1)));
    assert_eq!(pool.tune(0), Err(PoolError::InvalidCapacity));
    assert_eq!((pool.capacity(), pool.free()), (Some(2), Some(1)));
    assert_eq!(pool.workers(), 1);

    shut_down(&pool, &gate);
}

#[test]
fn unbounded_pool_never_blocks_and_cannot_be_tuned() {
    let pool = Pool::builder()
        .unbounded()
        .disable_purge(true)
        .build()
        .unwrap();
    assert_eq!((pool.capacity(), pool.free()), (None, None));
    assert_eq!(pool.tune(4), Err(PoolError::Unbounded));

    let gate = Gate::new();
    for _ in 0..16 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(16);
    assert_eq!(pool.workers(), 16);
    assert_eq!(pool.waiting(), 0);

    shut_down(&pool, &gate);
}

#[test]
fn blocked_submitters_stay_blocked_while_every_worker_is_busy() {
    let pool = builder(2).build().unwrap();
    let gate = Gate::new();
    occupy_all_workers(&pool, &gate);
    let probe = Probe::new();
    let submit = submit_in_background(&pool, &probe);
    await_waiting(&pool, 1);

    holds_throughout(
        Duration::from_millis(200),
        "the caller stays blocked",
        || pool.waiting() == 1 && probe.runs() == 0 && pool.workers() == 2,
    );
    submit.assert_blocked();

    gate.open();
    assert_eq!(submit.outcome(), Ok(()));
    probe.await_runs(1);
    assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
}

/// Regression (a task submitting to its own full pool hung for ever, and the
/// `Pool` clone it held kept the pool from being released): the submit that
/// would block on its own pool fails at once with `WouldDeadlock`.
#[test]
fn a_task_submitting_to_its_own_full_pool_gets_would_deadlock() {
    for queue in [0, 1] {
        let pool = Pool::builder()
            .capacity(1)
            .queue_capacity(queue)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let inside = pool.clone();
        pool.submit(move || {
            // With a queue, the first goes in the queue; the next would wait.
            let results: Vec<_> = (0..=queue).map(|_| inside.submit(|| ())).collect();
            tx.send(results).unwrap();
        })
        .unwrap();
        let results = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the task hung");
        let (last, queued) = results.split_last().unwrap();
        assert!(
            queued.iter().all(Result::is_ok),
            "queue {queue}: {results:?}"
        );
        assert_eq!(*last, Err(PoolError::WouldDeadlock), "queue {queue}");
        drop(pool);
    }
    assert_eq!(
        PoolError::WouldDeadlock.to_string(),
        "the call would wait for a task of its own pool from inside one of its tasks, and could deadlock"
    );
}

/// A task may still submit to its own pool while there is room, and to
/// another pool that is full (that one's workers are not waiting on it).
#[test]
fn a_task_may_submit_to_its_own_pool_with_room() {
    let pool = builder(2).build().unwrap();
    let probe = Probe::new();
    let (inside, task) = (pool.clone(), probe.task());
    pool.submit(move || inside.submit(task).unwrap()).unwrap();
    probe.await_runs(1);
    assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
}
