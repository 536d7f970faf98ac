//! Delayed tasks (`Pool::spawn_after`, `TaskBuilder::delay`): held by the
//! maintenance thread, no worker and no thread of their own, started on
//! time; cancelled while they wait, cancelled by `release`; refused by a
//! closed pool; waiting for room when due on a full pool; keeping a key's
//! order; a deadline counted from when they are due.

mod common;

use common::{hold_a_worker, DEADLINE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workpool::{Pool, PoolError, TaskError};

/// Threads of this process (Linux), or `None`.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn ten_thousand_delayed_tasks_hold_no_thread_and_start_on_time() {
    let pool = Pool::new(2).unwrap();
    // The maintenance thread (which holds them) runs already.
    pool.spawn(|| ()).unwrap().join().unwrap();
    let before = threads();
    let delay = Duration::from_secs(1);
    let first_due = Instant::now() + delay;
    let handles: Vec<_> = (0..10_000)
        .map(|_| pool.spawn_after(delay, Instant::now).unwrap())
        .collect();
    // Each is due 1 s after its own spawn: between these two instants.
    let last_due = Instant::now() + delay;
    if let (Some(before), Some(after)) = (before, threads()) {
        assert!(
            after <= before,
            "{} threads more while 10,000 tasks wait",
            after - before
        );
    }
    assert_eq!(pool.busy(), 0, "a waiting task holds a worker");
    assert_eq!(pool.queued(), 0, "a waiting task holds a queue slot");
    let mut lateness: Vec<Duration> = Vec::new();
    for handle in handles {
        let started = handle.join().unwrap();
        assert!(started >= first_due, "a task started before any was due");
        lateness.push(started.saturating_duration_since(last_due));
    }
    lateness.sort();
    let median = lateness[lateness.len() / 2];
    let worst = *lateness.last().unwrap();
    eprintln!(
        "10,000 delayed tasks: median start {median:?}, worst {worst:?} after the last was due"
    );
    // On an idle machine all start within a few milliseconds of their time;
    // the bounds are for a loaded CI machine.
    assert!(
        median < Duration::from_millis(250),
        "median start {median:?} after the last was due"
    );
    assert!(
        worst < Duration::from_secs(2),
        "worst start {worst:?} after the last was due"
    );
}

#[test]
fn a_delayed_task_never_starts_early() {
    let pool = Pool::new(2).unwrap();
    let handles: Vec<_> = (1..=20u64)
        .map(|n| {
            let delay = Duration::from_millis(5 * n);
            let due = Instant::now() + delay;
            (due, pool.spawn_after(delay, Instant::now).unwrap())
        })
        .collect();
    for (due, handle) in handles {
        let started = handle.join().unwrap();
        assert!(started >= due, "started {:?} early", due - started);
    }
}

#[test]
fn a_delayed_task_cancelled_while_it_waits_never_runs() {
    let pool = Pool::new(1).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let handle = pool
        .spawn_after(Duration::from_millis(50), move || {
            flag.store(true, Ordering::SeqCst)
        })
        .unwrap();
    assert!(handle.cancel());
    assert!(matches!(handle.join(), Err(TaskError::Cancelled)));
    std::thread::sleep(Duration::from_millis(100));
    pool.wait_idle(DEADLINE).unwrap();
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn release_cancels_delayed_tasks_and_a_closed_pool_refuses_them() {
    let pool = Pool::new(1).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let waiting = pool
        .task(move |_token| flag.store(true, Ordering::SeqCst))
        .delay(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    pool.release_timeout(DEADLINE).unwrap();
    assert!(matches!(waiting.join(), Err(TaskError::Cancelled)));
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(
        pool.spawn_after(Duration::from_millis(1), || ())
            .unwrap_err(),
        PoolError::Closed
    );
}

#[test]
fn a_delayed_task_due_on_a_full_pool_waits_for_room_then_runs() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .build()
        .unwrap();
    let gate = hold_a_worker(&pool);
    let handle = pool
        .spawn_after(Duration::from_millis(10), || "ran")
        .unwrap();
    // Due while the only worker is held: it waits for room.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!handle.is_finished());
    gate.open();
    assert!(handle.wait_timeout(DEADLINE));
    assert_eq!(handle.join().unwrap(), "ran");
}

#[test]
fn delayed_keyed_tasks_keep_their_key_s_order() {
    let pool = Pool::new(4).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..50)
        .map(|n| {
            let log = Arc::clone(&log);
            pool.task(move |_token| log.lock().unwrap().push(n))
                .key("k")
                .delay(Duration::from_millis(20))
                .spawn()
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn a_delayed_task_s_deadline_counts_from_when_it_is_due() {
    let pool = Pool::new(1).unwrap();
    // Due after 1 s, with a deadline of 500 ms: counted from the spawn it
    // would have passed before the task was due; from when it is due, the
    // idle pool starts it well within it.
    let handle = pool
        .task(|_token| "ran")
        .delay(Duration::from_secs(1))
        .deadline(Duration::from_millis(500))
        .spawn()
        .unwrap();
    assert_eq!(
        handle.join().unwrap(),
        "ran",
        "the deadline counted from the spawn"
    );
}

#[test]
fn a_delay_too_long_to_write_down_waits_for_a_cancel() {
    let pool = Pool::new(1).unwrap();
    let handle = pool.spawn_after(Duration::MAX, || ()).unwrap();
    assert!(!handle.wait_timeout(Duration::from_millis(20)));
    assert!(handle.cancel());
    assert!(matches!(handle.join(), Err(TaskError::Cancelled)));
}

#[test]
fn delayed_tasks_count_one_each_in_the_pool_s_figures() {
    let pool = Pool::new(1).unwrap();
    let waiting = pool.spawn_after(Duration::from_secs(3600), || ()).unwrap();
    assert_eq!(
        pool.stats().submitted,
        1,
        "accepted, though held out of the queue"
    );
    assert!(waiting.cancel());
    let ran = pool.spawn_after(Duration::from_millis(5), || ()).unwrap();
    ran.join().unwrap();
    pool.wait_idle(DEADLINE).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.cancelled),
        (2, 1, 1),
        "{stats:?}"
    );
}

#[test]
fn a_join_from_a_task_never_starts_a_delayed_task_early() {
    // A join from a worker runs a task not yet started (a helping join);
    // a delayed task waits for its time all the same.
    let pool = Arc::new(Pool::new(2).unwrap());
    let inner = Arc::clone(&pool);
    let delay = Duration::from_millis(200);
    let spawned = Instant::now();
    let started = pool
        .spawn(move || {
            inner
                .spawn_after(delay, Instant::now)
                .unwrap()
                .join()
                .unwrap()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        started - spawned >= delay,
        "started {:?} after its spawn",
        started - spawned
    );
}
