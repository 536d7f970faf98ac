//! Idle expiry: the purge ends workers idle for `expiry`, keeps `min_workers`,
//! never runs with `disable_purge`, and never touches busy workers.

mod common;

use common::{holds_throughout, wait_until, Gate, Pending, Probe};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};
use workpool::{Pool, PoolBuilder};

const EXPIRY: Duration = Duration::from_millis(100);
const PATIENCE: Duration = Duration::from_secs(30);

fn builder(capacity: usize) -> PoolBuilder {
    Pool::builder().capacity(capacity).expiry(EXPIRY)
}

/// Runs `n` tasks at once, so that the pool has (at least) `n` workers, and
/// waits until they are all back on the idle list. Returns when the tasks
/// were let go: no worker can have gone idle before.
fn burst(pool: &Pool, n: usize) -> Instant {
    let gate = Gate::new();
    for _ in 0..n {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(n);
    assert_eq!(pool.workers(), n);
    let let_go = Instant::now();
    gate.open();
    gate.await_passed(n);
    let_go
}

#[test]
fn idle_workers_expire_after_the_expiry() {
    let pool = builder(4).build().unwrap();
    let let_go = burst(&pool, 4);

    wait_until("every idle worker has expired", || pool.workers() == 0);
    let after = let_go.elapsed();
    assert!(
        after >= EXPIRY,
        "workers expired {after:?} after going idle"
    );
    assert_eq!(pool.idle(), 0);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn min_workers_outlive_the_expiry() {
    let pool = builder(4).min_workers(2).build().unwrap();
    assert_eq!(pool.workers(), 2, "min_workers start at build");
    burst(&pool, 4);

    wait_until("the pool shrinks to min_workers", || pool.workers() == 2);
    holds_throughout(5 * EXPIRY, "two idle workers stay", || {
        pool.workers() == 2 && pool.idle() == 2
    });

    let probe = Probe::new();
    pool.submit(probe.task()).unwrap();
    probe.await_runs(1);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn disable_purge_keeps_every_idle_worker() {
    let pool = builder(3).disable_purge(true).build().unwrap();
    burst(&pool, 3);
    wait_until("every worker is idle", || pool.idle() == 3);

    // Waiting is the point here: several expiries pass and nothing changes.
    thread::sleep(5 * EXPIRY);
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.idle(), 3);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn a_pool_whose_workers_all_expired_starts_new_ones() {
    let pool = builder(3).build().unwrap();
    burst(&pool, 3);
    wait_until("every idle worker has expired", || pool.workers() == 0);

    let gate = Gate::new();
    let probe = Probe::new();
    for _ in 0..3 {
        pool.submit(probe.task_behind(&gate)).unwrap();
    }
    gate.await_arrivals(3);
    assert_eq!(pool.workers(), 3);
    gate.open();
    probe.await_runs(3);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(probe.runs(), 3);
}

#[test]
fn busy_workers_never_expire_and_blocked_submitters_wait_for_them() {
    let pool = builder(2).queue_capacity(0).build().unwrap();
    let gate = Gate::new();
    for _ in 0..2 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(2);

    let probe = Probe::new();
    let blocked: Vec<Pending> = (0..3)
        .map(|_| {
            let (pool, task) = (pool.clone(), probe.task_behind(&gate));
            Pending::start(move || pool.submit(task))
        })
        .collect();
    wait_until("three callers are blocked", || pool.waiting() == 3);

    // Several purge rounds pass: the busy workers stay, nobody is let in.
    holds_throughout(4 * EXPIRY, "the pool is unchanged", || {
        pool.workers() == 2 && pool.waiting() == 3 && probe.runs() == 0
    });
    for submit in &blocked {
        submit.assert_blocked();
    }

    // A worker that frees up serves one blocked caller (whose task then
    // holds it at the gate in turn).
    gate.let_through(1);
    wait_until("one caller is served", || pool.waiting() == 2);
    gate.await_arrivals(3);
    assert_eq!(pool.workers(), 2);
    gate.open();
    for submit in blocked {
        assert_eq!(submit.outcome(), Ok(()));
    }
    probe.await_runs(3);
    wait_until("the idle workers expire", || pool.workers() == 0);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// Runs one task and reports the thread it ran on.
fn thread_of_next_task(pool: &Pool) -> ThreadId {
    let (tx, rx) = mpsc::channel();
    pool.submit(move || tx.send(thread::current().id()).unwrap())
        .unwrap();
    rx.recv_timeout(PATIENCE).expect("the task ran")
}

#[test]
fn the_warmest_worker_is_reused_and_the_cold_one_expires() {
    let expiry = Duration::from_millis(300);
    let pool = Pool::builder().capacity(2).expiry(expiry).build().unwrap();
    burst(&pool, 2);
    wait_until("both workers are idle", || pool.idle() == 2);

    let warm = thread_of_next_task(&pool);
    let mut tasks = 1;
    while pool.workers() == 2 {
        assert!(tasks < 100_000, "the cold worker never expired");
        // Hand the next task over only when the last worker is back on the
        // idle list, so LIFO has both to choose from.
        wait_until("every worker is idle", || pool.idle() == pool.workers());
        assert_eq!(thread_of_next_task(&pool), warm, "task {tasks}");
        tasks += 1;
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        pool.workers(),
        1,
        "the cold worker expired, the warm one not"
    );
    assert_eq!(thread_of_next_task(&pool), warm);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}
