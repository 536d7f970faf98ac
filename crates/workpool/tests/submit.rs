//! Submitting tasks: every accepted task runs exactly once, refusals come back
//! at the call, the capacity is never exceeded, the gauges count from hand-over,
//! idle workers are reused LIFO, and thread options apply.

mod common;

use common::{
    current_thread_name, name_of_thread_running_next_task, wait_until_within, Gate, PATIENCE,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use workpool::{Pool, PoolError};

/// Submits a task that waits at `gate`.
fn submit_gated(pool: &Pool, gate: &Arc<Gate>) {
    let gate = Arc::clone(gate);
    pool.submit(move || gate.wait()).unwrap();
}

/// Raises `max` to `value` if it is larger.
fn record_max(max: &AtomicUsize, value: usize) {
    max.fetch_max(value, Ordering::SeqCst);
}

#[test]
fn thousand_tasks_add_up_exactly() {
    let pool = Pool::new(4).unwrap();
    let sum = Arc::new(AtomicUsize::new(0));
    for i in 1..=1_000 {
        let sum = Arc::clone(&sum);
        pool.submit(move || {
            sum.fetch_add(i, Ordering::Relaxed);
        })
        .unwrap();
    }
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(sum.load(Ordering::Relaxed), 500_500);
}

#[test]
fn every_accepted_task_runs_exactly_once_and_every_refused_one_never() {
    const TOTAL: usize = 1_000;
    const CAPACITY: usize = 4;
    let pool = Pool::builder()
        .capacity(CAPACITY)
        .queue_capacity(0)
        .nonblocking(true)
        .build()
        .unwrap();
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TOTAL).map(|_| AtomicU8::new(0)).collect());
    let gate = Gate::new();
    let mut accepted = vec![false; TOTAL];
    for (id, accepted) in accepted.iter_mut().enumerate() {
        // The first tasks hold every worker until half of them are submitted,
        // so refusals are certain; after that, they race the workers.
        if id == TOTAL / 2 {
            gate.open();
        }
        let (runs, gate) = (Arc::clone(&runs), Arc::clone(&gate));
        match pool.submit(move || {
            gate.wait();
            runs[id].fetch_add(1, Ordering::Relaxed);
        }) {
            Ok(()) => *accepted = true,
            Err(error) => assert_eq!(error, PoolError::Overloaded),
        }
    }
    pool.release_timeout(PATIENCE).unwrap();

    let accepted_count = accepted.iter().filter(|&&a| a).count();
    let refused_count = TOTAL - accepted_count;
    assert_eq!(accepted_count + refused_count, TOTAL);
    assert_eq!(
        &accepted[..CAPACITY],
        &[true; CAPACITY],
        "an idle pool refused"
    );
    assert!(
        accepted[CAPACITY..TOTAL / 2].iter().all(|&a| !a),
        "a task was accepted while every worker was held"
    );
    for (id, runs) in runs.iter().enumerate() {
        let expected = u8::from(accepted[id]);
        assert_eq!(
            runs.load(Ordering::Relaxed),
            expected,
            "task {id} ran wrongly"
        );
    }
    let ran: usize = runs
        .iter()
        .map(|r| usize::from(r.load(Ordering::Relaxed)))
        .sum();
    assert_eq!(ran, accepted_count);
}

/// What tasks record about the concurrency they saw.
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    max_running: AtomicUsize,
    max_workers: AtomicUsize,
    ran: AtomicUsize,
}

impl Concurrency {
    /// The body of a task: counts itself as running while it yields once,
    /// and samples the pool's worker count.
    fn task(&self, pool: &Pool) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        record_max(&self.max_running, now);
        record_max(&self.max_workers, pool.workers());
        thread::yield_now();
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.ran.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn capacity_is_never_exceeded_by_many_submitters() {
    const CAPACITY: usize = 3;
    const SUBMITTERS: usize = 4;
    const PER_SUBMITTER: usize = 1_250;
    let pool = Pool::new(CAPACITY).unwrap();
    let seen = Arc::new(Concurrency::default());

    thread::scope(|scope| {
        for _ in 0..SUBMITTERS {
            scope.spawn(|| {
                for _ in 0..PER_SUBMITTER {
                    let (task_seen, gauges) = (Arc::clone(&seen), pool.clone());
                    pool.submit(move || task_seen.task(&gauges)).unwrap();
                    record_max(&seen.max_workers, pool.workers());
                }
            });
        }
    });
    pool.release_timeout(PATIENCE).unwrap();

    assert_eq!(seen.ran.load(Ordering::Relaxed), SUBMITTERS * PER_SUBMITTER);
    let max_running = seen.max_running.load(Ordering::SeqCst);
    assert!(
        (1..=CAPACITY).contains(&max_running),
        "{max_running} tasks ran at once"
    );
    let max_workers = seen.max_workers.load(Ordering::SeqCst);
    assert!(
        max_workers <= CAPACITY,
        "{max_workers} workers alive at once"
    );
}

#[test]
fn busy_counts_a_task_from_hand_over() {
    let pool = Pool::builder()
        .capacity(4)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    for _ in 0..3 {
        submit_gated(&pool, &gate);
    }
    // Counted as soon as submit returns, whether or not the tasks started.
    assert_eq!(pool.busy(), 3);
    assert_eq!(pool.idle(), 0);
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.free(), Some(1));
    assert_eq!(pool.waiting(), 0);

    gate.open();
    wait_until_within(PATIENCE, "the 3 workers are idle", || pool.idle() == 3);
    assert_eq!((pool.busy(), pool.workers(), pool.free()), (0, 3, Some(1)));

    let second = Gate::new();
    submit_gated(&pool, &second);
    submit_gated(&pool, &second);
    assert_eq!((pool.busy(), pool.idle(), pool.workers()), (2, 1, 3));
    second.open();
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn tasks_may_submit_more_tasks_to_an_unbounded_pool() {
    // Each task below depth 5 submits 3 children: 1 + 3 + 9 + 27 + 81 + 243.
    const EXPECTED: usize = 364;
    fn spawn_tree(pool: &Pool, depth: u32, done: mpsc::Sender<()>, failed: Arc<AtomicBool>) {
        let (child_pool, child_failed) = (pool.clone(), Arc::clone(&failed));
        let accepted = pool.submit(move || {
            if depth < 5 {
                for _ in 0..3 {
                    spawn_tree(
                        &child_pool,
                        depth + 1,
                        done.clone(),
                        Arc::clone(&child_failed),
                    );
                }
            }
            done.send(()).unwrap();
        });
        if accepted.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
    }

    let pool = Pool::builder().unbounded().build().unwrap();
    let (done, finished) = mpsc::channel();
    let failed = Arc::new(AtomicBool::new(false));
    spawn_tree(&pool, 0, done, Arc::clone(&failed));
    for n in 0..EXPECTED {
        finished
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("only {n} of {EXPECTED} tasks finished"));
    }
    pool.release_timeout(PATIENCE).unwrap();
    assert!(
        finished.try_recv().is_err(),
        "more tasks ran than were submitted"
    );
    assert!(
        !failed.load(Ordering::SeqCst),
        "a nested submit was refused"
    );
}

#[test]
fn sequential_tasks_reuse_one_worker_thread() {
    let pool = Pool::builder()
        .capacity(4)
        .thread_name("seq")
        .disable_purge(true)
        .build()
        .unwrap();
    let mut names = BTreeSet::new();
    for _ in 0..20 {
        names.insert(name_of_thread_running_next_task(&pool));
        // The task has reported; wait for its worker to be back on the list.
        wait_until_within(PATIENCE, "the worker is idle again", || pool.idle() == 1);
    }
    assert_eq!(names, BTreeSet::from(["seq-0".to_owned()]));
    assert_eq!(pool.workers(), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn the_most_recently_idle_worker_is_reused_first() {
    let pool = Pool::builder()
        .capacity(4)
        .min_workers(4)
        .thread_name("lifo")
        .build()
        .unwrap();
    wait_until_within(PATIENCE, "the min_workers are idle", || pool.idle() == 4);
    let mut names = BTreeSet::new();
    for _ in 0..20 {
        names.insert(name_of_thread_running_next_task(&pool));
        wait_until_within(PATIENCE, "the worker is idle again", || pool.idle() == 4);
    }
    // LIFO keeps taking the same warm worker; FIFO would rotate through all 4.
    assert_eq!(names.len(), 1, "tasks ran on {names:?}");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn worker_threads_are_named_prefix_dash_number() {
    let pool = Pool::builder()
        .capacity(3)
        .thread_name("namer")
        .build()
        .unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    for _ in 0..3 {
        let (tx, gate) = (tx.clone(), Arc::clone(&gate));
        pool.submit(move || {
            tx.send(current_thread_name()).unwrap();
            gate.wait();
        })
        .unwrap();
    }
    let names: BTreeSet<String> = (0..3).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    gate.open();
    let expected: BTreeSet<String> = (0..3).map(|n| format!("namer-{n}")).collect();
    assert_eq!(names, expected);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn default_thread_name_prefix_is_workpool() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(name_of_thread_running_next_task(&pool), "workpool-0");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn stack_size_option_gives_tasks_a_bigger_stack() {
    const BIG: usize = 4 << 20; // twice the 2 MiB default: overflows without the option
    let pool = Pool::builder()
        .capacity(1)
        .stack_size(8 << 20)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        let mut buffer = [0u8; BIG];
        for (i, byte) in buffer.iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let buffer = std::hint::black_box(&buffer);
        tx.send(buffer.iter().map(|&b| usize::from(b)).sum::<usize>())
            .unwrap();
    })
    .unwrap();
    let expected: usize = (0..BIG).map(|i| i % 251).sum();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(expected));
    pool.release_timeout(PATIENCE).unwrap();
}
