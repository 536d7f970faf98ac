//! Shutdown: `release`, `release_timeout`, `reboot`, and the release that
//! dropping the last handle does.

mod common;

use common::{holds_throughout, returns_promptly, wait_until, Gate, Pending, Probe};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use workpool::{Pool, PoolError};

const PATIENCE: Duration = Duration::from_secs(30);

/// Submits `n` tasks that each add their number (`first`, `first + 1`, ...)
/// to `sum`; returns what the sum must grow by.
fn submit_numbers(pool: &Pool, sum: &Arc<AtomicU64>, first: u64, n: u64) -> u64 {
    for i in first..first + n {
        let sum = Arc::clone(sum);
        pool.submit(move || {
            sum.fetch_add(i, Ordering::Relaxed);
        })
        .unwrap();
    }
    (first..first + n).sum()
}

#[test]
fn release_refuses_new_tasks_and_lets_running_ones_finish_once() {
    let pool = Pool::new(4).unwrap();
    let gate = Gate::new();
    let probes: Vec<Probe> = (0..4).map(|_| Probe::new()).collect();
    for probe in &probes {
        pool.submit(probe.task_behind(&gate)).unwrap();
    }
    gate.await_arrivals(4);

    pool.release();
    assert!(pool.is_closed());
    let refused = Probe::new();
    assert_eq!(pool.submit(refused.task()), Err(PoolError::Closed));
    assert!(refused.all_tasks_dropped(), "a refused task is dropped");
    assert_eq!(pool.workers(), 4, "running tasks are not interrupted");

    gate.open();
    wait_until("every worker has exited", || pool.workers() == 0);
    for probe in &probes {
        probe.await_runs(1);
    }
    assert!(
        probes.iter().all(|p| p.runs() == 1),
        "each ran exactly once"
    );
    assert_eq!(refused.runs(), 0);
}

#[test]
fn release_is_idempotent() {
    let pool = Pool::new(2).unwrap();
    let probe = Probe::new();
    pool.submit(probe.task()).unwrap();
    probe.await_runs(1);

    pool.release();
    pool.release();
    assert!(pool.is_closed());
    assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
    assert_eq!(
        pool.release_timeout(PATIENCE),
        Err(PoolError::Closed),
        "release_timeout on a released pool"
    );
    wait_until("every worker has exited", || pool.workers() == 0);
    assert_eq!(probe.runs(), 1);
}

#[test]
fn release_timeout_waits_for_running_tasks() {
    let pool = Pool::new(2).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = mpsc::channel();
    {
        let done = Arc::clone(&done);
        pool.submit(move || {
            started_tx.send(()).unwrap();
            thread::sleep(Duration::from_millis(200)); // the task's work
            done.store(true, Ordering::SeqCst);
        })
        .unwrap();
    }
    started.recv_timeout(PATIENCE).expect("the task started");

    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert!(done.load(Ordering::SeqCst), "the task finished first");
    assert_eq!(pool.workers(), 0);
    assert!(pool.is_closed());
}

#[test]
fn release_timeout_gives_up_in_time_on_a_blocked_task() {
    let pool = Pool::new(1).unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    pool.submit(probe.task_behind(&gate)).unwrap();
    gate.await_arrivals(1);

    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    assert_eq!(pool.release_timeout(timeout), Err(PoolError::Timeout));
    let took = start.elapsed();
    assert!(
        took >= timeout,
        "gave up after {took:?}, before the timeout"
    );
    assert!(
        took < timeout + Duration::from_secs(5),
        "gave up only after {took:?}"
    );

    // The pool is closed all the same, and the task still runs to its end.
    assert!(pool.is_closed());
    assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
    assert_eq!(pool.release_timeout(timeout), Err(PoolError::Closed));
    gate.open();
    probe.await_runs(1);
    wait_until("the worker has exited", || pool.workers() == 0);
}

#[test]
fn release_timeout_on_a_released_pool_returns_closed() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(pool.release_timeout(PATIENCE), Err(PoolError::Closed));
    assert!(pool.is_closed());
}

/// The purge thread sleeps for one expiry between rounds; a release must wake
/// it even if it comes before the purge thread first went to sleep.
#[test]
fn release_timeout_does_not_wait_out_the_purge_interval() {
    let pool = Pool::builder()
        .capacity(2)
        .expiry(Duration::from_secs(600))
        .build()
        .unwrap();
    assert_eq!(
        pool.release_timeout(Duration::from_secs(5)),
        Ok(()),
        "right after build"
    );

    pool.reboot().unwrap();
    assert_eq!(
        pool.release_timeout(Duration::from_secs(5)),
        Ok(()),
        "right after reboot"
    );
}

#[test]
fn reboot_reopens_and_runs_the_next_thousand_tasks_exactly() {
    let pool = Pool::builder()
        .capacity(4)
        .min_workers(2)
        .expiry(Duration::from_millis(200))
        .build()
        .unwrap();
    let sum = Arc::new(AtomicU64::new(0));

    let expected = submit_numbers(&pool, &sum, 1, 1_000);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(sum.load(Ordering::Relaxed), expected);
    assert_eq!(pool.workers(), 0);
    assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));

    pool.reboot().unwrap();
    assert!(!pool.is_closed());
    assert_eq!(pool.capacity(), Some(4));
    assert_eq!(pool.workers(), 2, "min_workers start again");
    let expected = expected + submit_numbers(&pool, &sum, 1_001, 1_000);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(sum.load(Ordering::Relaxed), expected);
    assert_eq!(expected, (1..=2_000).sum::<u64>());
}

#[test]
fn reboot_keeps_the_options() {
    let pool = Pool::builder()
        .capacity(2)
        .queue_capacity(0)
        .min_workers(1)
        .nonblocking(true)
        .build()
        .unwrap();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    pool.reboot().unwrap();
    assert_eq!(pool.capacity(), Some(2));
    assert_eq!(pool.workers(), 1);
    wait_until("the min worker is idle", || pool.idle() == 1);

    let gate = Gate::new();
    for _ in 0..2 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(2);
    assert_eq!(pool.workers(), 2);
    assert_eq!(
        pool.submit(|| ()),
        Err(PoolError::Overloaded),
        "nonblocking"
    );
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn reboot_on_an_open_pool_is_a_no_op() {
    let pool = Pool::builder().capacity(3).min_workers(1).build().unwrap();
    pool.reboot().unwrap();
    assert!(!pool.is_closed());
    assert_eq!(pool.workers(), 1, "no extra min_workers");
    assert_eq!(pool.capacity(), Some(3));

    let sum = Arc::new(AtomicU64::new(0));
    let expected = submit_numbers(&pool, &sum, 1, 100);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(sum.load(Ordering::Relaxed), expected);
}

thread_local! {
    /// Dropped when the thread that set it exits.
    static EXIT_SIGNAL: RefCell<Option<Sender<()>>> = const { RefCell::new(None) };
}

/// Wraps `body` so that the worker running it holds a clone of `exited` until
/// the worker thread exits.
fn signalling_exit(
    exited: &Sender<()>,
    body: impl FnOnce() + Send + 'static,
) -> impl FnOnce() + Send + 'static {
    let exited = exited.clone();
    move || {
        EXIT_SIGNAL.with(|s| *s.borrow_mut() = Some(exited));
        body();
    }
}

#[test]
fn dropping_the_last_handle_releases_the_pool_without_waiting() {
    let pool = Pool::builder()
        .capacity(2)
        .disable_purge(true)
        .build()
        .unwrap();
    let (exited_tx, exited) = mpsc::channel::<()>();
    let gate = Gate::new();
    let blocked = Probe::new();
    pool.submit(signalling_exit(&exited_tx, blocked.task_behind(&gate)))
        .unwrap();
    gate.await_arrivals(1);
    let quick = Probe::new();
    pool.submit(signalling_exit(&exited_tx, quick.task()))
        .unwrap();
    quick.await_runs(1);
    drop(exited_tx);

    // A clone keeps the pool open.
    let clone = pool.clone();
    drop(pool);
    assert!(!clone.is_closed());
    let later = Probe::new();
    assert_eq!(clone.submit(later.task()), Ok(()));
    later.await_runs(1);
    assert_eq!(
        exited.try_recv(),
        Err(TryRecvError::Empty),
        "no worker exited"
    );

    // Dropping the last handle does not wait for the blocked task.
    assert_eq!(
        returns_promptly(move || {
            drop(clone);
            Ok(())
        }),
        Ok(())
    );
    assert_eq!(blocked.runs(), 0);
    assert_ne!(
        exited.try_recv(),
        Err(TryRecvError::Disconnected),
        "the busy worker is still there"
    );

    // The blocked task finishes, then every worker exits.
    gate.open();
    blocked.await_runs(1);
    assert_eq!(
        exited.recv_timeout(Duration::from_secs(10)),
        Err(RecvTimeoutError::Disconnected),
        "every worker thread exits"
    );
}

#[test]
fn a_handle_held_by_a_blocked_submitter_keeps_the_pool_open() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(1);
    let probe = Probe::new();
    let waiter = {
        let (pool, task) = (pool.clone(), probe.task());
        Pending::start(move || pool.submit(task))
    };
    wait_until("the caller is blocked", || pool.waiting() == 1);

    drop(pool);
    waiter.assert_blocked();
    gate.open();
    assert_eq!(waiter.outcome(), Ok(()), "its handle kept the pool open");
    probe.await_runs(1);
}

/// Regression (a submit could succeed after `release()` returned, on the
/// lock-free hand-off to a worker that just finished a task): once
/// `release` has returned, every `submit` is refused.
#[test]
fn no_submit_is_accepted_once_release_has_returned() {
    for queue in [0, 16] {
        for _ in 0..300 {
            let pool = Pool::builder()
                .capacity(2)
                .queue_capacity(queue)
                .disable_purge(true)
                .build()
                .unwrap();
            // A finished task leaves its worker spinning for the next.
            pool.submit(|| ()).unwrap();
            pool.submit(|| ()).unwrap();
            pool.release();
            assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
        }
    }
}

/// Regression (reboot broke the hard capacity): `min_workers` above a
/// lowered capacity started them all again on reboot.
#[test]
fn reboot_keeps_min_workers_within_the_capacity_in_force() {
    let pool = Pool::builder()
        .capacity(8)
        .min_workers(4)
        .disable_purge(true)
        .build()
        .unwrap();
    assert_eq!(pool.workers(), 4);
    pool.tune(2).unwrap();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    pool.reboot().unwrap();
    assert_eq!(pool.workers(), 2, "min_workers capped by the capacity");
    assert_eq!(pool.idle(), 2);

    let gate = Gate::new();
    for _ in 0..4 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(2);
    holds_throughout(Duration::from_millis(100), "2 tasks at most run", || {
        gate.arrived() == 2 && pool.workers() == 2
    });
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(gate.passed(), 4);
}

/// Regression (reboot could strand a queued task): with `min_workers` and a
/// queue, a submit racing `reboot` queued its task beside idle workers that
/// were never told. Every accepted task runs.
#[test]
fn a_submit_racing_reboot_is_never_stranded() {
    for _ in 0..200 {
        let pool = Pool::builder()
            .capacity(1)
            .min_workers(1)
            .queue_capacity(4)
            .disable_purge(true)
            .build()
            .unwrap();
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        let probe = Probe::new();
        let submitter = {
            let (pool, probe) = (pool.clone(), probe.clone());
            thread::spawn(move || loop {
                match pool.submit(probe.task()) {
                    Err(PoolError::Closed) => thread::yield_now(),
                    done => return done,
                }
            })
        };
        pool.reboot().unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(()));
        probe.await_runs(1);
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }
}

/// Regression (`release_timeout` from inside a task waited for its own
/// thread for ever): it releases the pool and returns `WouldDeadlock`.
#[test]
fn release_timeout_from_a_task_of_the_pool_would_deadlock() {
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    let inside = pool.clone();
    pool.submit(move || tx.send(inside.release_timeout(PATIENCE)).unwrap())
        .unwrap();
    assert_eq!(
        rx.recv_timeout(PATIENCE).unwrap(),
        Err(PoolError::WouldDeadlock)
    );
    assert!(pool.is_closed(), "released all the same");
    assert_eq!(pool.release_timeout(PATIENCE), Err(PoolError::Closed));
}
