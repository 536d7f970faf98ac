//! Where two features meet: one regression test per defect that a review of
//! the seams between features found (scopes x panic payloads, join-help x
//! cancellation, bounded waits x helping, MultiPool x deadlock detection,
//! reboot x release, tune x spinning workers, deadlines x release, scopes x
//! stats, wakers x the pool's lock, draining, `wait_idle` x steady work).
//!
//! Each test fails (or hangs, bounded by [`within`]) on the code before its
//! fix; the defect's number is in the test's name.

mod common;

use common::{quiet_intentional_panics, Gate, INTENTIONAL};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};
use workpool::{CancelToken, LoadBalancing, MultiPool, Pool, PoolError};

/// How long a call that must return may take before the test calls it a
/// hang.
const HANG: Duration = Duration::from_secs(10);

/// Runs `f` on a thread of its own and returns its value; fails the test if
/// it has not returned within `limit` (the thread is left behind, hung).
#[track_caller]
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: no return within {limit:?} (a hang)"),
    }
}

/// A panic payload whose own `Drop` panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{INTENTIONAL}: the payload's drop panics");
    }
}

/// Defect 1: once a first panic was kept, `scope` dropped each later panic
/// payload where it waited; a payload whose `Drop` panics unwound out of
/// the wait, and `scope` returned while a task still read the caller's
/// data (a use-after-free that AddressSanitizer reports: `data` is dropped
/// right after).
#[test]
fn d01_scope_waits_for_every_task_when_a_panic_payload_panics_on_drop() {
    quiet_intentional_panics();
    let pool = Pool::new(4).unwrap();
    let data = vec![7u64; 4096];
    let panicked = AtomicUsize::new(0);
    let started = AtomicBool::new(false);
    let read_after_the_panics = AtomicBool::new(false);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|| {
                panicked.fetch_add(1, SeqCst);
                panic!("{INTENTIONAL}: kept");
            });
            s.spawn(|| {
                panicked.fetch_add(1, SeqCst);
                panic::panic_any(PanicsOnDrop);
            });
            // Spawned last, so that the scope's caller meets the payloads
            // first; started on a worker before the scope waits.
            s.spawn(|| {
                started.store(true, SeqCst);
                while panicked.load(SeqCst) < 2 {
                    thread::yield_now();
                }
                // The caller drops the second payload meanwhile.
                thread::sleep(Duration::from_millis(200));
                assert_eq!(data.iter().sum::<u64>(), 7 * 4096);
                read_after_the_panics.store(true, SeqCst);
            });
            while !started.load(SeqCst) {
                thread::yield_now();
            }
        })
    }));
    let finished_first = read_after_the_panics.load(SeqCst);
    drop(data);
    // A task still running now reads freed memory: AddressSanitizer (in
    // `.ci/run`) reports it here. Wait for it, so that it does.
    common::wait_until("the scope's last task ended", || {
        read_after_the_panics.load(SeqCst)
    });
    assert!(
        finished_first,
        "scope returned while one of its tasks still borrowed the caller's data"
    );
    let payload = outcome.expect_err("a task of the scope panicked");
    assert_eq!(common::message(&*payload), Some("intentional: kept"));
}

/// Defect 2: a join from a worker of the same pool ran a queued task whose
/// token had been cancelled through its parent.
#[test]
fn d02_a_helping_join_never_runs_a_task_cancelled_before_it_started() {
    let pool = Pool::new(1).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let (own, flag) = (pool.clone(), Arc::clone(&ran));
    let outer = pool
        .spawn(move || {
            let parent = CancelToken::new();
            let child = own
                .task(move |_| flag.store(true, SeqCst))
                .parent(&parent)
                .spawn()
                .unwrap();
            // Queued: this task holds the only worker.
            parent.cancel();
            child.join()
        })
        .unwrap();
    let result = within(HANG, "the outer join", move || outer.join().unwrap());
    assert!(result.unwrap_err().is_cancelled());
    assert!(!ran.load(SeqCst), "a task cancelled before it started ran");

    // The same after `release`, which cancels every task token.
    let pool = Pool::new(1).unwrap();
    let (own, flag) = (pool.clone(), Arc::clone(&ran));
    let (tx, rx) = mpsc::channel::<()>();
    let (spawned, child_queued) = mpsc::channel::<()>();
    let outer = pool
        .spawn(move || {
            let child = own.task(move |_| flag.store(true, SeqCst)).spawn().unwrap();
            spawned.send(()).unwrap();
            rx.recv().unwrap();
            child.join()
        })
        .unwrap();
    child_queued.recv().unwrap();
    pool.release();
    tx.send(()).unwrap();
    let result = within(HANG, "the outer join", move || outer.join().unwrap());
    assert!(result.unwrap_err().is_cancelled());
    assert!(!ran.load(SeqCst), "a task cancelled by release ran");
}

/// Defect 3: `wait_timeout` from a worker of the same pool ran the queued
/// task inline before it looked at its bound.
#[test]
fn d03_wait_timeout_on_a_worker_keeps_its_bound() {
    let pool = Pool::new(1).unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let own = pool.clone();
    let outer = pool
        .spawn(move || {
            // Queued behind this task; it waits for the test's word.
            let slow = own
                .spawn(move || rx.recv_timeout(Duration::from_secs(3)).is_ok())
                .unwrap();
            let began = Instant::now();
            let finished = slow.wait_timeout(Duration::from_millis(10));
            (finished, began.elapsed(), slow)
        })
        .unwrap();
    let (finished, took, slow) = within(HANG, "the outer task", move || outer.join().unwrap());
    assert!(!finished);
    assert!(
        took < Duration::from_secs(1),
        "wait_timeout(10 ms) took {took:?}"
    );
    tx.send(()).unwrap();
    assert!(
        slow.join().unwrap(),
        "the slow task ran on a worker, after the word"
    );
}

/// Defect 4, first part: a blocking submit from a task of a `MultiPool`
/// whose pools are all full waited for ever; `Pool` says `WouldDeadlock`.
#[test]
fn d04_a_multi_pool_refuses_a_self_submit_that_would_deadlock() {
    let builder = Pool::builder().capacity(1).queue_capacity(0);
    let pools = MultiPool::with_builder(1, LoadBalancing::RoundRobin, builder).unwrap();
    let own = pools.clone();
    let handle = pools.spawn(move || own.submit(|| ())).unwrap();
    let result = within(HANG, "a self-submit on a full multi-pool", move || {
        handle.join().unwrap()
    });
    assert_eq!(result, Err(PoolError::WouldDeadlock));
}

/// Defect 4, second part: two tasks on two pools, each joining a subtask
/// queued on the other's pool, deadlocked; a join from a worker of any pool
/// now runs a task that has not started, wherever it is queued.
#[test]
fn d04_joins_across_pools_help_instead_of_deadlocking() {
    let (p0, p1) = (Pool::new(1).unwrap(), Pool::new(1).unwrap());
    let both = Arc::new(Barrier::new(2));
    let cross = |home: &Pool, other: &Pool, n: u32| {
        let (other, both) = (other.clone(), Arc::clone(&both));
        home.spawn(move || {
            both.wait();
            // Queued: the other pool's only worker is in the other task.
            let sub = other.spawn(move || n * 10).unwrap();
            sub.join().unwrap()
        })
        .unwrap()
    };
    let (a, b) = (cross(&p0, &p1, 1), cross(&p1, &p0, 2));
    let (a, b) = within(HANG, "two cross-pool joins", move || {
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (10, 20));

    // And on one MultiPool: each subtask lands on the other task's pool.
    let pools = MultiPool::new(2, 1, LoadBalancing::RoundRobin).unwrap();
    let (first_spawned, go) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let spawn_pair = |n: u32, first: bool| {
        let (own, first_spawned, go) = (pools.clone(), Arc::clone(&first_spawned), Arc::clone(&go));
        pools
            .spawn(move || {
                go.wait();
                if !first {
                    first_spawned.wait();
                }
                let sub = own.spawn(move || n * 10).unwrap();
                if first {
                    first_spawned.wait();
                }
                sub.join().unwrap()
            })
            .unwrap()
    };
    // Round robin: task 0 on pool 0, task 1 on pool 1, then the subtasks
    // go to pool 0 (task 1's, spawned first) and pool 1 (task 0's).
    let (a, b) = (spawn_pair(1, false), spawn_pair(2, true));
    let (a, b) = within(HANG, "cross-pool joins on a MultiPool", move || {
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (10, 20));
}

/// Defect 5: a `release` between `reboot`'s unlock and its start of
/// `min_workers` left those workers parked on a closed pool, so
/// `release_timeout` timed out for ever after.
#[test]
fn d05_reboot_racing_release_leaves_no_worker_parked() {
    let pool = Pool::builder().capacity(4).min_workers(2).build().unwrap();
    for round in 0..200 {
        pool.release();
        let (rebooter, releaser) = (pool.clone(), pool.clone());
        let start = Arc::new(Barrier::new(2));
        let go = Arc::clone(&start);
        let a = thread::spawn(move || {
            go.wait();
            let _ = rebooter.reboot();
        });
        start.wait();
        // Release as soon as the reboot has reopened the pool: while it
        // starts its maintenance thread and its `min_workers`.
        while releaser.is_closed() {
            std::hint::spin_loop();
        }
        let released = releaser.release_timeout(Duration::from_secs(5));
        a.join().unwrap();
        assert_eq!(released, Ok(()), "round {round}: workers left parked");
        assert_eq!(pool.workers(), 0, "round {round}");
        pool.reboot().unwrap();
    }
}

/// Defect 7: after `tune` down, a worker spinning for its next task took
/// one submitted after the tune before it checked the capacity, so more
/// tasks than the new capacity ran at once.
#[test]
fn d07_after_tune_down_spinning_workers_keep_the_new_capacity() {
    let pool = Pool::builder().capacity(4).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    for _ in 0..30 {
        pool.tune(4).unwrap();
        // Four workers run a task each and end together: they then spin
        // for a next task (as many as there are CPUs).
        let gate = Arc::new(Barrier::new(5));
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let (gate, tx) = (Arc::clone(&gate), tx.clone());
            pool.submit(move || {
                gate.wait();
                tx.send(()).unwrap();
            })
            .unwrap();
        }
        gate.wait();
        for _ in 0..4 {
            rx.recv().unwrap();
        }
        // No task runs now: at most one may run at once from here on.
        pool.tune(1).unwrap();
        for _ in 0..4 {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            pool.submit(move || {
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, SeqCst);
            })
            .unwrap();
        }
        pool.wait_idle(HANG).unwrap();
    }
    assert_eq!(most.load(SeqCst), 1, "tasks ran at once after tune(1)");
}

/// Defect 8: `release` cleared every pending deadline, though the queued
/// tasks without a token that it lets run then started past theirs.
#[test]
fn d08_a_deadline_holds_for_a_task_still_queued_at_release() {
    let pool = Pool::builder()
        .capacity(1)
        .task_deadline(Duration::from_millis(50))
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let late = pool.spawn(move || flag.store(true, SeqCst)).unwrap();
    pool.release();
    // Time is the point here: the deadline passes while the task waits.
    thread::sleep(Duration::from_millis(150));
    gate.open();
    let result = within(HANG, "the late task's join", move || late.join());
    assert!(result.unwrap_err().is_deadline());
    assert!(!ran.load(SeqCst), "a task started past its deadline");
}

/// Defect 9: `parallel_execute` counted a caught panic and then the task as
/// completed too; a scope task the pool refused (run by the caller) was
/// never submitted, yet its panic was counted.
#[test]
fn d09_scopes_keep_the_stats_identity() {
    quiet_intentional_panics();
    let pool = Pool::new(2).unwrap();
    let results = pool.parallel_execute(vec![
        Box::new(|| 1) as Box<dyn FnOnce() -> i32 + Send>,
        Box::new(|| panic!("{INTENTIONAL}: in parallel_execute")),
        Box::new(|| 3),
    ]);
    assert!(results[1].as_ref().unwrap_err().is_panic());
    assert_eq!(
        (results[0].as_ref().ok(), results[2].as_ref().ok()),
        (Some(&1), Some(&3))
    );
    pool.wait_idle(HANG).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.panicked),
        (3, 2, 1)
    );
    assert_eq!(
        stats.submitted,
        stats.completed + stats.panicked + stats.cancelled
    );

    // A released pool refuses the scope's task; the caller runs it.
    pool.release();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| s.spawn(|| panic!("{INTENTIONAL}: refused, run by the caller")))
    }));
    assert!(outcome.is_err());
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.panicked),
        (3, 2, 1)
    );
}

/// Wakes by calling back into the pool: takes its lock.
struct ReentrantWaker {
    pool: Pool,
    woken: mpsc::Sender<usize>,
}

impl Wake for ReentrantWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.pool.tune(2).unwrap();
        let _ = self.woken.send(self.pool.capacity().unwrap());
    }
}

/// Defect 10: async submitters' wakers were woken under the pool's lock; a
/// waker that calls back into the pool deadlocked it.
#[test]
fn d10_a_waker_that_calls_back_into_the_pool_does_not_deadlock_it() {
    // All of it on a thread of its own: on a deadlocked pool even dropping
    // the future hangs.
    within(HANG, "the re-entrant waker", || {
        let pool = Pool::builder()
            .capacity(1)
            .queue_capacity(0)
            .build()
            .unwrap();
        let gate = Gate::new();
        let held = Arc::clone(&gate);
        pool.submit(move || held.wait()).unwrap();
        gate.await_arrivals(1);
        let (woken, wakes) = mpsc::channel();
        let waker = Waker::from(Arc::new(ReentrantWaker {
            pool: pool.clone(),
            woken,
        }));
        let mut cx = Context::from_waker(&waker);
        let mut submit = pool.submit_async(|| ());
        assert!(Pin::new(&mut submit).poll(&mut cx).is_pending());
        gate.open();
        assert_eq!(
            wakes.recv_timeout(HANG / 2),
            Ok(2),
            "the waker never finished: the pool deadlocked"
        );
        assert!(matches!(
            Pin::new(&mut submit).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
        drop(submit);
        pool.wait_idle(HANG).unwrap();
    });
}

/// Defect 11, third part: a `MultiPool` checked `max_blocking_tasks` and
/// counted the blocked caller in two steps, so concurrent callers exceeded
/// it.
#[test]
fn d11_a_multi_pool_never_blocks_more_callers_than_max_blocking_tasks() {
    let builder = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .max_blocking_tasks(1);
    for round in 0..50 {
        let pools = MultiPool::with_builder(1, LoadBalancing::RoundRobin, builder.clone()).unwrap();
        let gate = Gate::new();
        let held = Arc::clone(&gate);
        pools.submit(move || held.wait()).unwrap();
        gate.await_arrivals(1);
        let callers = 8;
        let start = Arc::new(Barrier::new(callers));
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                let (pools, start) = (pools.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    pools.submit(|| ())
                })
            })
            .collect();
        // Let every caller reach its verdict, then free the pool.
        common::wait_until("every caller but the blocked ones returned", || {
            threads.iter().filter(|t| t.is_finished()).count() >= callers - 1
        });
        thread::sleep(Duration::from_millis(5));
        let blocked = threads.iter().filter(|t| !t.is_finished()).count();
        gate.open();
        let accepted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(Result::is_ok)
            .count();
        assert!(
            blocked <= 1,
            "round {round}: {blocked} callers blocked at once"
        );
        assert!(
            accepted <= 1,
            "round {round}: {accepted} blocked callers were accepted"
        );
        pools.release_timeout(HANG).unwrap();
    }
}

/// Defect 15: `wait_idle` waited for tasks submitted while it waited, so
/// one caller's next task starved another caller that had seen the pool
/// idle. Every waiter now returns once the pool has been idle at least once
/// since it began to wait.
#[test]
fn d15_every_wait_idle_caller_returns_once_the_pool_was_idle() {
    let pool = Pool::new(2).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    let next_gate = Gate::new();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (pool, next_gate) = (pool.clone(), Arc::clone(&next_gate));
            thread::spawn(move || {
                let result = pool.wait_idle(Duration::from_secs(3));
                // Work again at once, holding the pool busy.
                let held = Arc::clone(&next_gate);
                pool.submit(move || held.wait()).unwrap();
                result
            })
        })
        .collect();
    // Both must be waiting when the pool goes idle: no gauge says so, so
    // give them time (generous) to get there.
    thread::sleep(Duration::from_millis(200));
    gate.open();
    let began = Instant::now();
    for waiter in waiters {
        let result = within(HANG, "a wait_idle caller", move || waiter.join().unwrap());
        assert_eq!(result, Ok(()));
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "a waiter returned only after {:?}",
        began.elapsed()
    );
    next_gate.open();
    pool.wait_idle(HANG).unwrap();
}
