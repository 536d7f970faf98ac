//! Cancellation and deadlines: a task cancelled before it starts never runs
//! and frees its queue slot at once (with a queue and in hand-off mode); a
//! running task sees its token cancelled (by its handle, its deadline, a
//! parent token or `release`); a task queued past its deadline never runs;
//! `reboot` hands out fresh tokens.

mod common;

use common::{holds_throughout, wait_until, Gate, Pending, Probe, DEADLINE, PATIENCE};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::{CancelToken, Pool, PoolError, TaskError, TaskHandle};

/// A wait that only a cancel ends within a test's time.
const LONG: Duration = Duration::from_secs(60);

/// How late a deadline may fire on a loaded machine and still pass: on an
/// idle one it fires within a few milliseconds.
const LATE: Duration = Duration::from_millis(500);

/// Occupies the one worker of `pool` with a plain task (no handle, no
/// deadline) that waits at `gate`, and waits until it runs.
fn hold_the_worker(pool: &Pool, gate: &Arc<Gate>) {
    let held = Arc::clone(gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
}

/// A flag, down until the task that [`raise`] makes from it runs: proof
/// that the task ran.
fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// A task that raises `flag`.
fn raise(flag: &Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    let flag = Arc::clone(flag);
    move || flag.store(true, Ordering::SeqCst)
}

#[test]
fn a_task_cancelled_before_it_starts_never_runs_and_frees_its_slot() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(1)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    hold_the_worker(&pool, &gate);

    let ran = flag();
    let queued = pool.spawn(raise(&ran)).unwrap();
    assert_eq!(pool.queued(), 1);
    // The pool is full: worker busy, the one slot taken.
    let probe = Probe::new();
    let refused = pool.try_submit(probe.task()).unwrap_err();
    assert!(refused.is_full());
    drop(refused);

    assert!(queued.cancel(), "a queued task is stopped before it starts");
    assert!(queued.is_finished());
    // Its slot is free at once, while the worker is still held.
    assert_eq!(pool.queued(), 0);
    pool.try_submit(probe.task())
        .expect("the cancelled task's slot is free");
    assert_eq!(pool.queued(), 1);
    // Full again: the freed slot is counted once, not twice.
    assert!(pool.try_submit(probe.task()).unwrap_err().is_full());
    assert_eq!(pool.queued(), 1);

    let error = queued.join().unwrap_err();
    assert!(error.is_cancelled());
    assert!(!error.is_deadline());
    assert!(matches!(error, TaskError::Cancelled));
    assert_eq!(
        error.to_string(),
        "the task was cancelled before it started"
    );

    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 1);
    assert_eq!(pool.queued(), 0);
    assert!(!ran.load(Ordering::SeqCst), "the cancelled closure ran");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn cancel_is_idempotent_and_too_late_for_a_finished_task() {
    let pool = Pool::new(1).unwrap();
    let done = pool.spawn(|| 3).unwrap();
    assert!(done.wait_timeout(PATIENCE));
    assert!(!done.cancel(), "a finished task cannot be stopped");
    assert_eq!(done.join().unwrap(), 3);

    let gate = Gate::new();
    hold_the_worker(&pool, &gate);
    let queued = pool.spawn(|| 4).unwrap();
    assert!(queued.cancel());
    assert!(!queued.cancel(), "only the first cancel stops it");
    assert_eq!(pool.queued(), 0);
    assert!(queued.join().unwrap_err().is_cancelled());
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_cancelled_task_drops_its_closure_unrun() {
    let pool = Pool::new(1).unwrap();
    let gate = Gate::new();
    hold_the_worker(&pool, &gate);
    let captured = Arc::new(());
    let held = Arc::clone(&captured);
    let queued = pool.spawn(move || drop(held)).unwrap();
    assert_eq!(Arc::strong_count(&captured), 2);
    assert!(queued.cancel());
    // Dropped by the cancel, not when a worker gets to the queued ghost.
    assert_eq!(Arc::strong_count(&captured), 1);
    gate.open();
    assert!(queued.join().unwrap_err().is_cancelled());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_cancelled_task_frees_room_in_a_hand_off_pool() {
    // Hand-off: a task is admitted only when a worker is free for it, so a
    // spawn on the full pool blocks. Its token's parent is cancelled while
    // it waits: once admitted, it must not run, and the room it was
    // admitted into must come back.
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    hold_the_worker(&pool, &gate);

    let parent = CancelToken::new();
    let ran = flag();
    let (handles, handle) = mpsc::channel();
    let spawning = {
        let pool = pool.clone();
        let parent = parent.clone();
        let ran = Arc::clone(&ran);
        Pending::start(move || {
            let handle = pool
                .task(move |_token| ran.store(true, Ordering::SeqCst))
                .parent(&parent)
                .spawn()?;
            handles.send(handle).unwrap();
            Ok(())
        })
    };
    wait_until("the spawn blocks", || pool.waiting() == 1);
    spawning.assert_blocked();
    parent.cancel();
    gate.open();
    assert_eq!(spawning.outcome(), Ok(()));
    let handle = handle.recv_timeout(PATIENCE).unwrap();
    assert!(handle.join().unwrap_err().is_cancelled());
    assert!(!ran.load(Ordering::SeqCst), "the cancelled closure ran");

    // The room is back, exactly once: one task is admitted, the next is not.
    pool.wait_idle(PATIENCE).unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    pool.try_submit(probe.task_behind(&gate))
        .expect("the cancelled task gave its room back");
    gate.await_arrivals(1);
    assert!(pool.try_submit(probe.task()).unwrap_err().is_full());
    gate.open();
    probe.await_runs(1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn spawns_cancelled_at_once_in_a_hand_off_pool_leave_its_room_intact() {
    // Cancel races the worker that was handed the task: either may win, but
    // a task whose cancel won never runs, and either way the room of the
    // pool comes back whole.
    let pool = Pool::builder()
        .capacity(2)
        .queue_capacity(0)
        .disable_purge(true)
        .build()
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut stopped = 0;
    for _ in 0..500 {
        let runs = Arc::clone(&runs);
        let handle = pool
            .spawn(move || {
                runs.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        if handle.cancel() {
            stopped += 1;
            assert!(handle.join().unwrap_err().is_cancelled());
        } else {
            handle.join().unwrap();
        }
    }
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 500 - stopped);

    // Exactly `capacity` tasks are admitted, then no more.
    let gate = Gate::new();
    let probe = Probe::new();
    for _ in 0..2 {
        pool.try_submit(probe.task_behind(&gate))
            .expect("room for every worker");
    }
    gate.await_arrivals(2);
    assert!(pool.try_submit(probe.task()).unwrap_err().is_full());
    gate.open();
    probe.await_runs(2);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn cancel_of_a_running_task_cancels_its_token_and_returns_false() {
    let pool = Pool::new(1).unwrap();
    let (started, running) = mpsc::channel();
    let handle = pool
        .task(move |token| {
            started.send(()).unwrap();
            token.wait_timeout(LONG)
        })
        .spawn()
        .unwrap();
    running.recv_timeout(PATIENCE).unwrap();
    let asked = Instant::now();
    assert!(
        !handle.cancel(),
        "a running task is not stopped before start"
    );
    assert!(handle.join().unwrap(), "the task saw its token cancelled");
    assert!(asked.elapsed() < DEADLINE);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_deadline_cancels_the_token_on_time() {
    let pool = Pool::new(1).unwrap();
    let deadline = Duration::from_millis(200);
    let spawned = Instant::now();
    let handle = pool
        .task(|token| {
            let cancelled = token.wait_timeout(LONG);
            (cancelled, Instant::now())
        })
        .deadline(deadline)
        .spawn()
        .unwrap();
    let (cancelled, seen_at) = handle.join().unwrap();
    assert!(cancelled, "the deadline cancelled the token");
    let after = seen_at - spawned;
    assert!(
        after >= deadline,
        "the deadline fired early, after {after:?}"
    );
    assert!(
        after <= deadline + LATE,
        "the deadline fired {:?} late",
        after - deadline
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_task_queued_past_its_deadline_never_runs() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(4)
        .build()
        .unwrap();
    let gate = Gate::new();
    hold_the_worker(&pool, &gate);
    let ran = flag();
    let spawned = Instant::now();
    let handle = pool
        .task({
            let ran = Arc::clone(&ran);
            move |_token| ran.store(true, Ordering::SeqCst)
        })
        .deadline(Duration::from_millis(50))
        .spawn()
        .unwrap();
    assert_eq!(pool.queued(), 1);
    // The deadline ends it in the queue, while the worker is still held.
    assert!(handle.wait_timeout(PATIENCE), "the deadline never fired");
    assert!(spawned.elapsed() >= Duration::from_millis(50));
    wait_until("the expired task's slot is free", || pool.queued() == 0);
    let error = handle.join().unwrap_err();
    assert!(error.is_deadline());
    assert!(error.is_cancelled());
    assert!(matches!(error, TaskError::DeadlineExceeded));
    assert_eq!(
        error.to_string(),
        "the task's deadline passed before it started"
    );
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    assert!(!ran.load(Ordering::SeqCst), "the expired closure ran");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_task_that_expired_in_the_queue_has_freed_its_slot_when_its_handle_learns_it() {
    // As with `cancel`, whose slot is free when it returns: once the handle
    // says `DeadlineExceeded`, the slot is free for the next submit.
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(1)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    hold_the_worker(&pool, &gate);
    let mut stale = 0;
    for _ in 0..100 {
        let handle = pool
            .task(|_token| ())
            .deadline(Duration::from_millis(1))
            .spawn()
            .unwrap();
        assert!(handle.wait_timeout(PATIENCE), "the deadline never fired");
        if pool.queued() != 0 {
            stale += 1;
        }
        assert!(handle.join().unwrap_err().is_deadline());
        wait_until("the expired task's slot is free", || pool.queued() == 0);
    }
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(
        stale, 0,
        "{stale} of 100 handles said DeadlineExceeded while their slot was still taken"
    );
}

#[test]
fn the_pool_s_task_deadline_applies_to_spawn() {
    let pool = Pool::builder()
        .capacity(1)
        .task_deadline(Duration::from_millis(50))
        .build()
        .unwrap();
    // A quick task is not troubled by it.
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);

    let gate = Gate::new();
    hold_the_worker(&pool, &gate);
    let ran = flag();
    let expires = pool.spawn(raise(&ran)).unwrap();
    // Its own deadline replaces the pool's.
    let stays = pool
        .task(|token| token.is_cancelled())
        .deadline(LONG)
        .spawn()
        .unwrap();
    assert!(
        expires.wait_timeout(PATIENCE),
        "the pool's deadline never fired"
    );
    assert!(expires.join().unwrap_err().is_deadline());
    holds_throughout(
        Duration::from_millis(200),
        "the task with its own deadline waiting",
        || !stays.is_finished(),
    );
    gate.open();
    assert!(!stays.join().unwrap(), "its token was cancelled");
    assert!(!ran.load(Ordering::SeqCst));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_pool_without_purge_still_fires_deadlines() {
    let pool = Pool::builder()
        .capacity(1)
        .disable_purge(true)
        .build()
        .unwrap();
    let deadline = Duration::from_millis(100);
    let spawned = Instant::now();
    let running = pool
        .task(|token| (token.wait_timeout(LONG), Instant::now()))
        .deadline(deadline)
        .spawn()
        .unwrap();
    assert!(running.wait_timeout(PATIENCE), "the deadline never fired");
    let (cancelled, seen_at) = running.join().unwrap();
    assert!(cancelled);
    assert!(seen_at - spawned >= deadline);
    assert!(seen_at - spawned <= deadline + LATE);

    // And a queued one expires in the queue.
    let gate = Gate::new();
    hold_the_worker(&pool, &gate);
    let ran = flag();
    let queued = pool
        .task({
            let ran = Arc::clone(&ran);
            move |_token| ran.store(true, Ordering::SeqCst)
        })
        .deadline(Duration::from_millis(30))
        .spawn()
        .unwrap();
    assert!(queued.wait_timeout(PATIENCE), "the deadline never fired");
    assert!(queued.join().unwrap_err().is_deadline());
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    assert!(!ran.load(Ordering::SeqCst));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn many_deadlines_each_fire_on_time() {
    let pool = Pool::builder().capacity(8).build().unwrap();
    let spawned = Instant::now();
    let handles: Vec<_> = (1..=8u64)
        .rev()
        .map(|i| {
            let deadline = Duration::from_millis(20 * i);
            let handle = pool
                .task(|token| (token.wait_timeout(LONG), Instant::now()))
                .deadline(deadline)
                .spawn()
                .unwrap();
            (deadline, handle)
        })
        .collect();
    for (deadline, handle) in handles {
        let (cancelled, seen_at) = handle.join().unwrap();
        assert!(cancelled);
        assert!(seen_at - spawned >= deadline, "fired before {deadline:?}");
        assert!(seen_at - spawned <= deadline + LATE, "fired late");
    }
    pool.release_timeout(PATIENCE).unwrap();
}

/// Spawns `n` tasks under `parent` that each wait on their token; returns
/// their handles once all are running.
fn waiting_children(pool: &Pool, parent: &CancelToken, n: usize) -> Vec<TaskHandle<bool>> {
    let (started, running) = mpsc::channel();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let started = started.clone();
            pool.task(move |token| {
                started.send(()).unwrap();
                token.wait_timeout(LONG)
            })
            .parent(parent)
            .spawn()
            .unwrap()
        })
        .collect();
    for _ in 0..n {
        running.recv_timeout(PATIENCE).unwrap();
    }
    handles
}

#[test]
fn child_tokens_of_a_parent_are_cancelled_with_it() {
    let pool = Pool::builder().capacity(3).build().unwrap();
    let parent = CancelToken::new();
    let handles = waiting_children(&pool, &parent, 3);
    // A fourth waits in the queue: the parent stops it before it starts.
    let ran = flag();
    let queued = pool
        .task({
            let ran = Arc::clone(&ran);
            move |_token| ran.store(true, Ordering::SeqCst)
        })
        .parent(&parent)
        .spawn()
        .unwrap();
    assert_eq!(pool.queued(), 1);

    let cancelled_at = Instant::now();
    parent.cancel();
    for handle in handles {
        assert!(handle.join().unwrap(), "a child did not see the cancel");
    }
    assert!(cancelled_at.elapsed() < DEADLINE);
    assert!(queued.join().unwrap_err().is_cancelled());
    assert!(!ran.load(Ordering::SeqCst));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn cancelling_one_child_leaves_its_parent_and_siblings_alone() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    let parent = CancelToken::new();
    let mut handles = waiting_children(&pool, &parent, 2);
    let second = handles.pop().unwrap();
    let first = handles.pop().unwrap();
    assert!(!first.cancel());
    assert!(first.join().unwrap());
    assert!(!parent.is_cancelled());
    holds_throughout(Duration::from_millis(50), "the sibling running", || {
        !second.is_finished()
    });
    parent.cancel();
    assert!(second.join().unwrap());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_task_spawned_under_a_cancelled_parent_never_runs() {
    let pool = Pool::new(1).unwrap();
    let parent = CancelToken::new();
    parent.cancel();
    let ran = flag();
    let handle = pool
        .task({
            let ran = Arc::clone(&ran);
            move |_token| ran.store(true, Ordering::SeqCst)
        })
        .parent(&parent)
        .spawn()
        .unwrap();
    assert!(handle.join().unwrap_err().is_cancelled());
    assert!(!ran.load(Ordering::SeqCst));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn cancel_token_futures_and_waits_end_with_the_cancel() {
    let parent = CancelToken::new();
    let child = parent.child();
    let grandchild = child.child();
    assert!(!grandchild.wait_timeout(Duration::from_millis(1)));

    let waiter = {
        let grandchild = grandchild.clone();
        std::thread::spawn(move || {
            futures_executor::block_on(grandchild.cancelled());
            grandchild.is_cancelled()
        })
    };
    let sleeper = {
        let child = child.clone();
        std::thread::spawn(move || child.wait_timeout(LONG))
    };
    let asked = Instant::now();
    parent.cancel();
    assert!(waiter.join().unwrap());
    assert!(sleeper.join().unwrap());
    assert!(asked.elapsed() < DEADLINE);
    assert!(child.is_cancelled() && grandchild.is_cancelled());

    // A child's cancel leaves its parent alone.
    let parent = CancelToken::new();
    let child = parent.child();
    child.cancel();
    assert!(child.is_cancelled());
    assert!(!parent.is_cancelled());
}

#[test]
fn release_cancels_running_tokens_and_release_timeout_returns() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    let handles = waiting_children(&pool, &CancelToken::new(), 2);
    // Queued behind them: a task with a token never starts once released;
    // one without (`spawn`) still runs, as a submitted task does.
    let with_token_ran = flag();
    let with_token = pool
        .task({
            let ran = Arc::clone(&with_token_ran);
            move |_token| ran.store(true, Ordering::SeqCst)
        })
        .spawn()
        .unwrap();
    let without_token_ran = flag();
    let without_token = pool.spawn(raise(&without_token_ran)).unwrap();
    assert_eq!(pool.queued(), 2);

    let asked = Instant::now();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert!(
        asked.elapsed() < DEADLINE,
        "release_timeout waited {:?} for tasks whose tokens it cancelled",
        asked.elapsed()
    );
    for handle in handles {
        assert!(
            handle.join().unwrap(),
            "a running task's token was not cancelled"
        );
    }
    assert!(with_token.join().unwrap_err().is_cancelled());
    assert!(!with_token_ran.load(Ordering::SeqCst));
    without_token.join().unwrap();
    assert!(without_token_ran.load(Ordering::SeqCst));
}

#[test]
fn after_reboot_new_tasks_get_fresh_tokens() {
    let pool = Pool::new(2).unwrap();
    let mut running = waiting_children(&pool, &CancelToken::new(), 1);
    let before = running.pop().unwrap();
    pool.release();
    assert!(before.join().unwrap());
    assert_eq!(
        pool.spawn(|| ()).map(|_| ()),
        Err(PoolError::Closed),
        "a released pool takes no task"
    );
    pool.reboot().unwrap();

    let fresh = pool
        .task(|token| {
            (
                token.is_cancelled(),
                token.wait_timeout(Duration::from_millis(20)),
            )
        })
        .spawn()
        .unwrap();
    assert_eq!(fresh.join().unwrap(), (false, false));
    assert_eq!(pool.spawn(|| 5).unwrap().join().unwrap(), 5);

    // The new tokens are cancelled by the next release, as before.
    let again = waiting_children(&pool, &CancelToken::new(), 1)
        .pop()
        .unwrap();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert!(again.join().unwrap());
}
