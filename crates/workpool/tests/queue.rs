//! The bounded queue (`queue_capacity`): accepted tasks wait in it when every
//! worker is busy, `submit` blocks or fails only when it is full too, and a
//! queued task runs exactly once, also across `release`.

mod common;

use common::{returns_promptly, wait_until, Gate, Pending, Probe, NEVER, PATIENCE};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;
use workpool::{BuildError, Pool, PoolBuilder, PoolError};

fn builder(capacity: usize, queue: usize) -> PoolBuilder {
    Pool::builder()
        .capacity(capacity)
        .queue_capacity(queue)
        .disable_purge(true)
}

/// Fills every worker of `pool` with a task that waits at `gate`.
fn occupy_all_workers(pool: &Pool, gate: &Arc<Gate>, probe: &Probe) {
    let capacity = pool.capacity().expect("a bounded pool");
    for _ in 0..capacity {
        pool.submit(probe.task_behind(gate)).unwrap();
    }
    gate.await_arrivals(capacity);
}

#[test]
fn without_a_queue_nothing_is_queued() {
    let pool = builder(1, 0).nonblocking(true).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    assert_eq!(pool.submit(probe.task()), Err(PoolError::Overloaded));
    assert_eq!(pool.queued(), 0);
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 1);
}

#[test]
fn a_full_pool_queues_up_to_the_queue_capacity_then_refuses() {
    let pool = builder(2, 3).nonblocking(true).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);

    for queued in 1..=3 {
        pool.submit(probe.task()).unwrap();
        assert_eq!(pool.queued(), queued);
    }
    assert_eq!(pool.submit(probe.task()), Err(PoolError::Overloaded));
    assert_eq!(pool.workers(), 2, "a queued task must not start a worker");
    assert_eq!(pool.busy(), 2);
    assert_eq!(probe.runs(), 0);

    gate.open();
    probe.await_runs(5);
    wait_until("the queue is empty", || pool.queued() == 0);
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 5, "each accepted task runs exactly once");
}

#[test]
fn submit_blocks_only_when_the_queue_is_full_and_gets_in_when_a_slot_frees() {
    let pool = builder(1, 1).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    returns_promptly({
        let (pool, task) = (pool.clone(), probe.task_behind(&gate));
        move || pool.submit(task)
    })
    .unwrap();
    assert_eq!(pool.queued(), 1);

    let blocked = Pending::start({
        let (pool, task) = (pool.clone(), probe.task_behind(&gate));
        move || pool.submit(task)
    });
    wait_until("the third submit blocks", || pool.waiting() == 1);
    blocked.assert_blocked();

    // The running task ends; the worker takes the queued one, which frees
    // the slot for the blocked submitter.
    gate.let_through(1);
    assert_eq!(blocked.outcome(), Ok(()));
    assert_eq!(pool.waiting(), 0);

    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 3);
}

#[test]
fn max_blocking_tasks_counts_only_callers_blocked_on_a_full_queue() {
    let pool = builder(1, 1).max_blocking_tasks(1).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    pool.submit(probe.task()).unwrap();
    let blocked = Pending::start({
        let (pool, task) = (pool.clone(), probe.task());
        move || pool.submit(task)
    });
    wait_until("one submit blocks", || pool.waiting() == 1);
    assert_eq!(pool.submit(probe.task()), Err(PoolError::Overloaded));
    gate.open();
    assert_eq!(blocked.outcome(), Ok(()));
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 3);
}

#[test]
fn queued_tasks_run_in_submission_order_before_the_worker_goes_idle() {
    let pool = builder(1, 8).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..8 {
        let order = Arc::clone(&order);
        pool.submit(move || order.lock().unwrap().push(i)).unwrap();
    }
    assert_eq!(pool.queued(), 8);
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
}

#[test]
fn release_still_runs_queued_tasks_and_release_timeout_waits_for_them() {
    let pool = builder(1, 10).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    for _ in 0..10 {
        pool.submit(probe.task()).unwrap();
    }

    // The worker is held at the gate, so the queue cannot drain in time.
    assert_eq!(
        pool.release_timeout(Duration::from_millis(50)),
        Err(PoolError::Timeout)
    );
    assert_eq!(pool.submit(probe.task()), Err(PoolError::Closed));
    assert_eq!(pool.queued(), 10, "release keeps the accepted tasks");

    gate.open();
    probe.await_runs(11);
    wait_until("every worker has left", || pool.workers() == 0);
    assert_eq!(pool.queued(), 0);
    assert_eq!(probe.runs(), 11);
}

#[test]
fn dropping_the_last_handle_still_runs_queued_tasks() {
    let pool = builder(1, 4).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    for _ in 0..4 {
        pool.submit(probe.task()).unwrap();
    }
    drop(pool);
    gate.open();
    probe.await_runs(5);
    wait_until("every task is dropped", || probe.all_tasks_dropped());
}

#[test]
fn an_unbounded_pool_never_queues() {
    let pool = Pool::builder()
        .unbounded()
        .queue_capacity(4)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    for _ in 0..8 {
        pool.submit(probe.task_behind(&gate)).unwrap();
    }
    gate.await_arrivals(8);
    assert_eq!(pool.queued(), 0);
    assert_eq!(pool.workers(), 8);
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 8);
}

#[test]
fn tune_up_starts_workers_for_queued_tasks_at_once() {
    let pool = builder(1, 4).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    for _ in 0..3 {
        pool.submit(probe.task_behind(&gate)).unwrap();
    }
    assert_eq!(pool.queued(), 3);
    pool.tune(3).unwrap();
    // Two new workers take two queued tasks; the third waits for a worker.
    gate.await_arrivals(3);
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.queued(), 1);
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 4);
}

#[test]
fn a_queue_above_the_maximum_is_refused_by_name_and_value() {
    let too_large = PoolBuilder::MAX_QUEUE_CAPACITY + 1;
    let error = builder(2, too_large).build().unwrap_err();
    assert_eq!(
        error,
        BuildError::QueueTooLarge {
            queue_capacity: too_large,
            max: PoolBuilder::MAX_QUEUE_CAPACITY
        }
    );
    let message = error.to_string();
    assert!(message.contains("queue_capacity"), "{message}");
    assert!(message.contains(&too_large.to_string()), "{message}");
    assert!(builder(2, PoolBuilder::MAX_QUEUE_CAPACITY / 1024)
        .build()
        .is_ok());
}

/// Many submitters, short and uneven tasks, workers going idle and coming
/// back all the time: every accepted task runs exactly once.
fn stress(pool: &Pool, submitters: usize, per_submitter: usize) {
    let runs: Arc<Vec<AtomicU8>> = Arc::new(
        (0..submitters * per_submitter)
            .map(|_| AtomicU8::new(0))
            .collect(),
    );
    let start = Arc::new(Barrier::new(submitters));
    let threads: Vec<_> = (0..submitters)
        .map(|s| {
            let (pool, runs, start) = (pool.clone(), Arc::clone(&runs), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..per_submitter {
                    let slot = s * per_submitter + i;
                    let runs = Arc::clone(&runs);
                    pool.submit(move || {
                        runs[slot].fetch_add(1, Ordering::Relaxed);
                        if slot % 7 == 0 {
                            thread::yield_now();
                        }
                    })
                    .unwrap();
                    // Now and then let the pool run dry, so workers go idle
                    // while submitters race them.
                    if i % 97 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    pool.release_timeout(PATIENCE).unwrap();
    let wrong: Vec<_> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.load(Ordering::Relaxed) != 1)
        .map(|(i, r)| (i, r.load(Ordering::Relaxed)))
        .take(10)
        .collect();
    assert!(wrong.is_empty(), "tasks run other than once: {wrong:?}");
    assert_eq!(pool.queued(), 0);
}

#[test]
fn stress_every_accepted_task_runs_exactly_once() {
    for (capacity, queue) in [(1, 1), (2, 4), (2, 64), (3, 1024)] {
        let pool = builder(capacity, queue).expiry(NEVER).build().unwrap();
        stress(&pool, 3, 20_000);
    }
}

#[test]
fn stress_with_purge_ending_idle_workers_loses_nothing() {
    let pool = Pool::builder()
        .capacity(2)
        .queue_capacity(8)
        .expiry(Duration::from_millis(1))
        .build()
        .unwrap();
    stress(&pool, 2, 20_000);
}

/// Submitters race a release: each submit either is accepted and its task
/// runs exactly once, or is refused with `Closed` and never runs.
#[test]
fn stress_submit_racing_release_runs_each_accepted_task_once() {
    for round in 0..20 {
        let pool = builder(2, 16).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(3));
        let (accepted_tx, accepted_rx) = mpsc::channel();
        for _ in 0..2 {
            let (pool, ran, start, tx) = (
                pool.clone(),
                Arc::clone(&ran),
                Arc::clone(&start),
                accepted_tx.clone(),
            );
            thread::spawn(move || {
                start.wait();
                let mut accepted = 0;
                loop {
                    let ran = Arc::clone(&ran);
                    match pool.submit(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }) {
                        Ok(()) => accepted += 1,
                        Err(e) => {
                            assert_eq!(e, PoolError::Closed);
                            break;
                        }
                    }
                }
                tx.send(accepted).unwrap();
            });
        }
        drop(accepted_tx);
        start.wait();
        // Let the submitters get going; how far they get does not matter.
        for _ in 0..(round * 50) {
            thread::yield_now();
        }
        pool.release_timeout(PATIENCE).unwrap();
        let accepted: usize = accepted_rx.iter().sum();
        assert_eq!(ran.load(Ordering::SeqCst), accepted, "round {round}");
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.workers(), 0);
    }
}

/// Tracks how many tasks run at once, and the most seen since the last
/// `reset`.
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Concurrency {
    /// A task that counts itself running for `hold`.
    fn task(self: &Arc<Self>, hold: Duration) -> impl FnOnce() + Send + 'static {
        let this = Arc::clone(self);
        move || {
            let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
            this.most.fetch_max(now, Ordering::SeqCst);
            thread::sleep(hold);
            this.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn reset(&self) {
        self.most.store(0, Ordering::SeqCst);
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

/// Regression (tune down was not enforced with a queue): workers took queued
/// tasks whatever the capacity, so with a steady stream `tune(2)` left all 8
/// running until the queue ran dry. Compared with the capacity in force, not
/// the largest ever set, and measured while the queue is still full.
#[test]
fn tune_down_is_enforced_with_a_queue() {
    let pool = builder(8, 1024).build().unwrap();
    let seen = Arc::new(Concurrency::default());
    let hold = Duration::from_millis(2);
    for _ in 0..1000 {
        pool.submit(seen.task(hold)).unwrap();
    }
    wait_until("the stream runs on 8 workers", || seen.most() == 8);

    pool.tune(2).unwrap();
    // Settled: the tasks running at the call have ended, and each excess
    // worker left before taking a next task. About 2 ms; the queue holds
    // about 250 ms of work for 8 workers.
    wait_until("the excess workers left", || pool.workers() <= 2);
    seen.reset();
    assert!(
        pool.queued() > 0,
        "the excess workers only left once the queue ran dry"
    );
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert!(
        seen.most() <= 2,
        "{} tasks ran at once after tune(2) settled",
        seen.most()
    );
}

/// Regression (two freed queue slots woke one blocked submitter): the pool
/// and its queue full, four submitters blocked; the four workers each take a
/// long queued task at about the same moment. Each freed slot must serve a
/// distinct submitter, while the long tasks still run (a pipeline that waits
/// for its submitter would otherwise deadlock).
#[test]
fn freed_slots_each_serve_a_blocked_submitter() {
    const N: usize = 4;
    let pool = builder(N, N).build().unwrap();
    let (first, long) = (Gate::new(), Gate::new());
    let probe = Probe::new();
    occupy_all_workers(&pool, &first, &probe);
    for _ in 0..N {
        pool.submit(probe.task_behind(&long)).unwrap();
    }
    assert_eq!(pool.queued(), N);
    let blocked: Vec<Pending> = (0..N)
        .map(|_| {
            let (pool, task) = (pool.clone(), probe.task());
            Pending::start(move || pool.submit(task))
        })
        .collect();
    wait_until("every submitter is blocked", || pool.waiting() == N);

    first.open();
    long.await_arrivals(N);
    for submit in blocked {
        assert_eq!(
            submit.outcome(),
            Ok(()),
            "a submitter slept beside a free slot"
        );
    }
    assert_eq!(pool.waiting(), 0);
    assert_eq!(pool.queued(), N, "their tasks wait behind the long ones");
    long.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(probe.runs(), 3 * N);
}

/// Blocked submitters are served in the order they blocked, each by its own
/// unit of room.
#[test]
fn blocked_submitters_are_served_oldest_first() {
    let pool = builder(1, 1).build().unwrap();
    let gate = Gate::new();
    let probe = Probe::new();
    occupy_all_workers(&pool, &gate, &probe);
    pool.submit(probe.task_behind(&gate)).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut blocked = Vec::new();
    for n in 0..3 {
        let (handle, order) = (pool.clone(), Arc::clone(&order));
        blocked.push(Pending::start(move || {
            handle.submit(move || order.lock().unwrap().push(n))
        }));
        wait_until(&format!("{} submitters are blocked", n + 1), || {
            pool.waiting() == n + 1
        });
    }
    gate.open();
    for submit in blocked {
        assert_eq!(submit.outcome(), Ok(()));
    }
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
}
