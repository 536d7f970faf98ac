//! `MultiPool`: construction, summed gauges, per-pool gauges, load balancing
//! (round robin with its fallback, least tasks), tune, shutdown and reboot.

mod common;

use common::{wait_until, Gate, Pending, Probe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, ThreadId};
use std::time::Duration;
use workpool::{BuildError, LoadBalancing, MultiPool, Pool, PoolError};

const PATIENCE: Duration = Duration::from_secs(30);

/// `pools` pools of `capacity` workers whose idle workers never expire.
fn multi(pools: usize, capacity: usize, balancing: LoadBalancing) -> MultiPool {
    let builder = Pool::builder()
        .capacity(capacity)
        .queue_capacity(0)
        .disable_purge(true);
    MultiPool::with_builder(pools, balancing, builder).unwrap()
}

/// Live workers of every pool, by index.
fn workers_by_pool(pools: &MultiPool) -> Vec<usize> {
    (0..pools.len())
        .map(|i| pools.workers_by_index(i).unwrap())
        .collect()
}

/// Submits a task that waits at `gate`, and waits until it is running.
fn submit_held(pools: &MultiPool, gate: &Arc<Gate>) {
    let before = gate.arrived();
    let held = Arc::clone(gate);
    pools.submit(move || held.wait()).unwrap();
    gate.await_arrivals(before + 1);
}

/// Submits a task that reports the thread it runs on; returns that thread.
fn thread_of_task(pools: &MultiPool) -> ThreadId {
    let (tx, rx) = mpsc::channel();
    pools
        .submit(move || tx.send(thread::current().id()).unwrap())
        .unwrap();
    rx.recv_timeout(PATIENCE).expect("the task ran")
}

fn shut_down(pools: &MultiPool, gate: &Gate) {
    gate.open();
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn zero_pools_is_refused() {
    assert_eq!(
        MultiPool::new(0, 4, LoadBalancing::RoundRobin).unwrap_err(),
        BuildError::ZeroPools
    );
    assert_eq!(
        MultiPool::with_builder(0, LoadBalancing::LeastTasks, Pool::builder()).unwrap_err(),
        BuildError::ZeroPools
    );
}

#[test]
fn new_builds_pools_of_the_capacity_asked() {
    let pools = MultiPool::new(3, 2, LoadBalancing::RoundRobin).unwrap();
    assert_eq!(pools.len(), 3);
    assert!(!pools.is_empty());
    assert_eq!(pools.capacity(), Some(6));
    for i in 0..3 {
        assert_eq!(pools.free_by_index(i), Ok(Some(2)));
    }
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn with_builder_applies_the_builder_to_every_pool() {
    let builder = Pool::builder()
        .capacity(3)
        .min_workers(1)
        .disable_purge(true);
    let pools = MultiPool::with_builder(2, LoadBalancing::LeastTasks, builder).unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools.capacity(), Some(6));
    assert_eq!(workers_by_pool(&pools), [1, 1], "min_workers in each pool");
    assert_eq!(pools.free(), Some(4));

    assert_eq!(
        MultiPool::with_builder(2, LoadBalancing::RoundRobin, Pool::builder().capacity(0))
            .unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn unbounded_pools_have_no_capacity() {
    let builder = Pool::builder().unbounded().disable_purge(true);
    let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder).unwrap();
    assert_eq!(pools.capacity(), None);
    assert_eq!(pools.free(), None);
    assert_eq!(pools.free_by_index(1), Ok(None));
    assert_eq!(pools.tune(4), Err(PoolError::Unbounded));
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn out_of_range_index_is_refused_with_the_index_and_len() {
    let pools = multi(3, 1, LoadBalancing::RoundRobin);
    let invalid = PoolError::InvalidIndex { index: 3, len: 3 };
    assert_eq!(pools.workers_by_index(3), Err(invalid.clone()));
    assert_eq!(pools.free_by_index(3), Err(invalid.clone()));
    assert_eq!(pools.waiting_by_index(3), Err(invalid));
    assert_eq!(
        pools.workers_by_index(usize::MAX),
        Err(PoolError::InvalidIndex {
            index: usize::MAX,
            len: 3
        })
    );
    assert_eq!(pools.workers_by_index(2), Ok(0));
    assert_eq!(pools.waiting_by_index(2), Ok(0));
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn aggregates_are_sums_over_the_pools() {
    let pools = multi(2, 2, LoadBalancing::RoundRobin);
    let gate = Gate::new();
    for _ in 0..4 {
        submit_held(&pools, &gate);
    }
    assert_eq!(workers_by_pool(&pools), [2, 2]);
    assert_eq!(pools.workers(), 4);
    assert_eq!(pools.busy(), 4);
    assert_eq!(pools.idle(), 0);
    assert_eq!(pools.capacity(), Some(4));
    assert_eq!(pools.free(), Some(0));
    assert_eq!(pools.free_by_index(0), Ok(Some(0)));

    // Every pool is full: both callers block on the multi-pool, waiting for
    // whichever pool has room first.
    let probe = Probe::new();
    let mut blocked = Vec::new();
    for n in 1..=2 {
        let (handle, task) = (pools.clone(), probe.task());
        blocked.push(Pending::start(move || handle.submit(task)));
        wait_until(&format!("{n} callers are blocked"), || pools.waiting() == n);
    }
    assert_eq!(pools.waiting(), 2);
    assert_eq!(pools.waiting_by_index(0), Ok(0));
    assert_eq!(pools.waiting_by_index(1), Ok(0));

    gate.open();
    for submit in blocked {
        assert_eq!(submit.outcome(), Ok(()));
    }
    probe.await_runs(2);
    wait_until("every worker is idle", || pools.idle() == 4);
    assert_eq!((pools.workers(), pools.busy(), pools.waiting()), (4, 0, 0));
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn round_robin_starts_at_pool_zero_and_goes_in_turn() {
    let pools = multi(3, 2, LoadBalancing::RoundRobin);
    let gate = Gate::new();
    let expected = [
        [1, 0, 0],
        [1, 1, 0],
        [1, 1, 1],
        [2, 1, 1],
        [2, 2, 1],
        [2, 2, 2],
    ];
    for (n, expected) in expected.iter().enumerate() {
        submit_held(&pools, &gate);
        assert_eq!(&workers_by_pool(&pools), expected, "after task {n}");
    }
    shut_down(&pools, &gate);
}

#[test]
fn least_tasks_picks_the_least_busy_pool_lowest_index_first() {
    let pools = multi(3, 2, LoadBalancing::LeastTasks);
    let gates: Vec<Arc<Gate>> = (0..3).map(|_| Gate::new()).collect();

    // Ties everywhere: pool 0, then 1, then 2.
    let mut threads = Vec::new();
    for (n, gate) in gates.iter().enumerate() {
        let (tx, rx) = mpsc::channel();
        let held = Arc::clone(gate);
        pools
            .submit(move || {
                tx.send(thread::current().id()).unwrap();
                held.wait();
            })
            .unwrap();
        threads.push(rx.recv_timeout(PATIENCE).unwrap());
        let mut expected = vec![0; 3];
        expected[..=n].fill(1);
        assert_eq!(workers_by_pool(&pools), expected);
    }

    // Pool 1 goes idle: it is the least busy, so it gets the next task, on
    // its one (idle) worker.
    gates[1].open();
    wait_until("pool 1's worker is idle", || pools.busy() == 2);
    assert_eq!(thread_of_task(&pools), threads[1]);
    assert_eq!(workers_by_pool(&pools), [1, 1, 1]);

    // Pools 0 and 2 busy, pool 1 idle again: pool 1 once more.
    wait_until("pool 1's worker is idle again", || pools.busy() == 2);
    let gate = Gate::new();
    submit_held(&pools, &gate);
    assert_eq!(workers_by_pool(&pools), [1, 1, 1]);
    assert_eq!(pools.busy(), 3);
    // All tied at one busy worker: the lowest index, pool 0, grows.
    submit_held(&pools, &gate);
    assert_eq!(workers_by_pool(&pools), [2, 1, 1]);

    for gate in &gates {
        gate.open();
    }
    shut_down(&pools, &gate);
}

#[test]
fn round_robin_falls_back_to_the_least_loaded_pool_once() {
    let builder = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .nonblocking(true)
        .disable_purge(true);
    let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder).unwrap();
    let gate = Gate::new();

    submit_held(&pools, &gate); // pool 0's only worker is held
    let pool1_thread = thread_of_task(&pools); // pool 1's worker, then idle
    wait_until("pool 1's worker is idle", || pools.busy() == 1);

    // Round robin is back at the full pool 0; the task runs on pool 1.
    let (tx, rx) = mpsc::channel();
    let held = Arc::clone(&gate);
    let fell_back = pools.submit(move || {
        tx.send(thread::current().id()).unwrap();
        held.wait();
    });
    assert_eq!(fell_back, Ok(()), "refused instead of falling back");
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), pool1_thread);
    assert_eq!(workers_by_pool(&pools), [1, 1]);

    // Every pool full: Overloaded, and the task is dropped unrun.
    let refused = Probe::new();
    assert_eq!(pools.submit(refused.task()), Err(PoolError::Overloaded));
    assert!(refused.all_tasks_dropped());
    assert_eq!(pools.submit(refused.task()), Err(PoolError::Overloaded));

    shut_down(&pools, &gate);
    assert_eq!(refused.runs(), 0);
}

#[test]
fn tune_sets_every_pool() {
    let pools = multi(3, 2, LoadBalancing::RoundRobin);
    pools.tune(5).unwrap();
    assert_eq!(pools.capacity(), Some(15));
    for i in 0..3 {
        assert_eq!(pools.free_by_index(i), Ok(Some(5)));
    }
    assert_eq!(pools.tune(0), Err(PoolError::InvalidCapacity));
    assert_eq!(pools.capacity(), Some(15));

    // The new capacity holds: five tasks at once in each pool.
    let gate = Gate::new();
    for _ in 0..15 {
        submit_held(&pools, &gate);
    }
    assert_eq!(workers_by_pool(&pools), [5, 5, 5]);
    assert_eq!(pools.free(), Some(0));
    shut_down(&pools, &gate);
}

#[test]
fn release_timeout_then_reboot() {
    let pools = multi(2, 2, LoadBalancing::RoundRobin);
    let probe = Probe::new();
    pools.submit(probe.task()).unwrap();

    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
    assert_eq!(probe.runs(), 1);
    assert!(pools.is_closed());
    assert_eq!(pools.workers(), 0);
    assert_eq!(pools.submit(probe.task()), Err(PoolError::Closed));
    assert_eq!(pools.release_timeout(PATIENCE), Err(PoolError::Closed));

    pools.reboot().unwrap();
    assert!(!pools.is_closed());
    assert_eq!(pools.capacity(), Some(4));
    pools.submit(probe.task()).unwrap();
    probe.await_runs(2);

    // reboot on an open multi-pool changes nothing.
    pools.reboot().unwrap();
    assert!(!pools.is_closed());
    pools.release();
    assert!(pools.is_closed());
    assert_eq!(pools.submit(|| ()), Err(PoolError::Closed));
    assert_eq!(pools.release_timeout(PATIENCE), Err(PoolError::Closed));
}

#[test]
fn release_timeout_times_out_on_a_blocked_task() {
    let pools = multi(2, 1, LoadBalancing::RoundRobin);
    let gate = Gate::new();
    submit_held(&pools, &gate);
    assert_eq!(
        pools.release_timeout(Duration::from_millis(200)),
        Err(PoolError::Timeout)
    );
    assert!(pools.is_closed());
    gate.open();
    wait_until("every worker has exited", || pools.workers() == 0);
}

#[test]
fn a_thousand_tasks_add_up_exactly() {
    for balancing in [LoadBalancing::RoundRobin, LoadBalancing::LeastTasks] {
        let pools = MultiPool::new(4, 2, balancing).unwrap();
        let sum = Arc::new(AtomicU64::new(0));
        for i in 1..=1_000u64 {
            let sum = Arc::clone(&sum);
            pools
                .submit(move || {
                    sum.fetch_add(i, Ordering::Relaxed);
                })
                .unwrap();
        }
        assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
        assert_eq!(sum.load(Ordering::Relaxed), 500_500, "{balancing:?}");
    }
}

/// Regression (a blocking submit waited on the pool it picked): with every
/// pool busy, the next submit takes the first pool that frees up, even while
/// the pool that round robin picked stays busy.
#[test]
fn a_blocked_submit_takes_the_first_pool_with_room() {
    let pools = multi(4, 1, LoadBalancing::RoundRobin);
    let (held, short) = (Gate::new(), Gate::new());
    submit_held(&pools, &held); // pool 0, held until the end
    for _ in 1..4 {
        submit_held(&pools, &short); // pools 1-3
    }
    assert_eq!(pools.busy(), 4);
    let probe = Probe::new();
    let blocked = {
        let (pools, task) = (pools.clone(), probe.task());
        // Round robin is back at pool 0, which stays busy.
        Pending::start(move || pools.submit(task))
    };
    wait_until("the submit is blocked", || pools.waiting() == 1);
    short.open();
    assert_eq!(blocked.outcome(), Ok(()), "it waited for pool 0");
    probe.await_runs(1);
    assert_eq!(held.passed(), 0, "pool 0 was still busy");
    assert_eq!(pools.waiting(), 0);
    shut_down(&pools, &held);
}

/// `release` wakes a submitter blocked on every pool with `Closed`.
#[test]
fn release_wakes_a_submitter_blocked_on_every_pool() {
    let pools = multi(2, 1, LoadBalancing::LeastTasks);
    let gate = Gate::new();
    submit_held(&pools, &gate);
    submit_held(&pools, &gate);
    let probe = Probe::new();
    let blocked = {
        let (pools, task) = (pools.clone(), probe.task());
        Pending::start(move || pools.submit(task))
    };
    wait_until("the submit is blocked", || pools.waiting() == 1);
    pools.release();
    assert_eq!(blocked.outcome(), Err(PoolError::Closed));
    assert!(pools.is_closed());
    shut_down_released(&pools, &gate);
    assert_eq!(probe.runs(), 0);
}

fn shut_down_released(pools: &MultiPool, gate: &Gate) {
    gate.open();
    assert_eq!(pools.release_timeout(PATIENCE), Err(PoolError::Closed));
    wait_until("every worker exited", || pools.workers() == 0);
}

#[test]
fn each_pool_names_its_threads_with_its_index() {
    let builder = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .thread_name("mp");
    let pools = MultiPool::with_builder(4, LoadBalancing::RoundRobin, builder).unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    // One task per pool, each held until all four have started: round robin
    // then puts exactly one on each pool.
    for _ in 0..4 {
        let (tx, gate) = (tx.clone(), Arc::clone(&gate));
        pools
            .submit(move || {
                tx.send(common::current_thread_name()).unwrap();
                gate.wait();
            })
            .unwrap();
    }
    let mut names: Vec<String> = (0..4).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    names.sort();
    assert_eq!(names, ["mp-0-0", "mp-1-0", "mp-2-0", "mp-3-0"]);
    // Every per-pool gauge agrees with the sum, by index.
    assert_eq!(pools.busy(), 4);
    for i in 0..4 {
        assert_eq!(pools.busy_by_index(i).unwrap(), 1);
        assert_eq!(pools.idle_by_index(i).unwrap(), 0);
        assert_eq!(pools.queued_by_index(i).unwrap(), 0);
        assert_eq!(pools.capacity_by_index(i).unwrap(), Some(1));
        assert_eq!(pools.free_by_index(i).unwrap(), Some(0));
    }
    for bad in [
        pools.busy_by_index(4),
        pools.idle_by_index(4),
        pools.queued_by_index(4),
    ] {
        assert!(matches!(
            bad,
            Err(PoolError::InvalidIndex { index: 4, len: 4 })
        ));
    }
    gate.open();
    pools.release_timeout(PATIENCE).unwrap();
}
