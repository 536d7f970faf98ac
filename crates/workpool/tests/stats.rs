//! `stats`, `health` and `monitor`: the figures after known workloads, and
//! the verdicts of a health policy as a pool fills and drains.

mod common;

use common::{wait_until, Gate, DEADLINE, PATIENCE};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use workpool::{
    CancelToken, HealthPolicy, LoadBalancing, MultiPool, Pool, PoolError, PoolWithFunc, Stats,
};

/// Hides the report of the panics these tests cause on purpose.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

fn settled(pool: &Pool) -> Stats {
    pool.wait_idle(PATIENCE).unwrap();
    pool.stats()
}

#[test]
fn counts_add_up_after_a_known_workload() {
    quiet_panics();
    let pool = Pool::builder().capacity(2).build().unwrap();
    for _ in 0..1000 {
        pool.submit(|| ()).unwrap();
    }
    for _ in 0..3 {
        pool.submit(|| panic!("on purpose")).unwrap();
    }
    let handles: Vec<_> = (0..10u64).map(|n| pool.spawn(move || n).unwrap()).collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = settled(&pool);
    assert_eq!(stats.submitted, 1013);
    assert_eq!(stats.completed, 1010);
    assert_eq!(stats.panicked, 3);
    assert_eq!(stats.cancelled, 0);
    assert_eq!(stats.rejected, 0);
    assert_eq!(
        stats.submitted,
        stats.finished(),
        "once idle, every task is accounted for"
    );
    assert_eq!(stats.capacity, Some(2));
    assert!(stats.workers_started >= 1 && stats.workers_started <= 2);
    assert_eq!(stats.busy, 0);
    assert_eq!(stats.queued, 0);
    assert!(stats.pools.is_empty());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn refusals_and_cancellations_are_counted_apart() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(1)
        .nonblocking(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    let queued = pool.spawn(|| ()).unwrap();
    assert_eq!(pool.submit(|| ()), Err(PoolError::Overloaded));
    assert!(pool.try_submit(|| ()).is_err());
    assert!(queued.cancel());
    gate.open();
    let stats = settled(&pool);
    assert_eq!(stats.submitted, 2);
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.cancelled, 1);
    assert_eq!(stats.completed, 1);
    assert_eq!(stats.submitted, stats.finished());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_deadline_counts_as_timed_out_whether_the_task_started_or_not() {
    let pool = Pool::builder().capacity(1).build().unwrap();
    let running = pool
        .task(|token: &CancelToken| token.wait_timeout(PATIENCE))
        .deadline(Duration::from_millis(20))
        .spawn()
        .unwrap();
    let queued = pool
        .task(|_: &CancelToken| ())
        .deadline(Duration::from_millis(20))
        .spawn()
        .unwrap();
    assert!(running.join().unwrap(), "the running task saw its deadline");
    let error = queued.join().unwrap_err();
    assert!(error.is_deadline());
    let stats = settled(&pool);
    assert_eq!(stats.timed_out, 2);
    assert_eq!(stats.cancelled, 1, "only the one that never started");
    assert_eq!(stats.completed, 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn latencies_are_sampled_and_bound_the_times_measured() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    // Tasks that start a worker are always timed, and so are the first 32
    // of a thread (its rate is not known yet); of those it queues fast
    // while both workers are busy, one in 32. Each further 32 are timed
    // whole only if the thread was held up over their submits: 200 tasks
    // make that happen six times in a row before every task is timed.
    let handles: Vec<_> = (0..200)
        .map(|_| {
            pool.spawn(|| std::thread::sleep(Duration::from_millis(1)))
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = settled(&pool);
    let run = stats.run_time;
    assert!(run.count >= 32 && run.count < 200, "{run:?}");
    assert!(run.min >= Duration::from_millis(1), "{run:?}");
    assert!(run.p50 >= run.min && run.p90 >= run.p50 && run.p99 >= run.p90);
    assert!(run.max >= run.p99 && run.mean >= run.min && run.mean <= run.max);
    assert!(run.max < DEADLINE, "{run:?}");
    let wait = stats.queue_wait;
    assert_eq!(wait.count, run.count);
    assert!(wait.max < DEADLINE, "{wait:?}");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn every_task_is_timed_while_workers_are_idle() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    for _ in 0..20 {
        // Each task finds a worker idle (or starts one): the locked way.
        pool.spawn(|| std::thread::sleep(Duration::from_millis(1)))
            .unwrap()
            .join()
            .unwrap();
        pool.wait_idle(PATIENCE).unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.run_time.count, 20, "{:?}", stats.run_time);
    assert!(stats.run_time.min >= Duration::from_millis(1));
    assert!(stats.queue_wait.p99 < DEADLINE);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn every_task_is_timed_at_a_trickle() {
    // Spawned and joined one at a time, most tasks reach a spinning worker
    // on the lock-free way; at this rate timing costs nothing, so each is
    // timed all the same.
    let pool = Pool::new(2).unwrap();
    for n in 0..10u32 {
        assert_eq!(pool.spawn(move || n).unwrap().join().unwrap(), n);
    }
    let stats = settled(&pool);
    assert_eq!(stats.completed, 10);
    assert_eq!(stats.run_time.count, 10, "{:?}", stats.run_time);
    assert_eq!(stats.queue_wait.count, 10, "{:?}", stats.queue_wait);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn uptime_grows_and_restarts_at_reboot() {
    let pool = Pool::new(1).unwrap();
    let first = pool.stats().uptime;
    wait_until("uptime grows", || pool.stats().uptime > first);
    std::thread::sleep(Duration::from_millis(30));
    let before = pool.stats().uptime;
    assert!(before >= Duration::from_millis(30));
    pool.release_timeout(PATIENCE).unwrap();
    pool.reboot().unwrap();
    assert!(pool.stats().uptime < before);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn idle_workers_that_expire_are_counted() {
    let pool = Pool::builder()
        .capacity(2)
        .expiry(Duration::from_millis(20))
        .build()
        .unwrap();
    let gate = Gate::new();
    for _ in 0..2 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(2);
    gate.open();
    wait_until("both workers expire", || pool.stats().workers_expired == 2);
    let stats = pool.stats();
    assert_eq!(stats.workers_started, 2);
    assert_eq!(stats.workers, 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn health_turns_bad_when_a_threshold_is_breached_and_good_again() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    let policy = HealthPolicy {
        max_saturation: 0.5,
        ..HealthPolicy::default()
    };
    assert!(pool.health(&policy).healthy);
    let gate = Gate::new();
    for _ in 0..2 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(2);
    let health = pool.health(&policy);
    assert!(!health.healthy);
    assert_eq!(health.problems.len(), 1, "{:?}", health.problems);
    let problem = &health.problems[0];
    assert!(
        problem.contains("100 %") && problem.contains("2 of 2") && problem.contains("50 %"),
        "{problem}"
    );
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    assert!(pool.health(&policy).healthy);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn the_error_rate_counts_only_the_window() {
    quiet_panics();
    let pool = Pool::new(2).unwrap();
    let policy = HealthPolicy {
        error_window: Duration::from_millis(200),
        ..HealthPolicy::default()
    };
    for _ in 0..5 {
        pool.submit(|| panic!("on purpose")).unwrap();
    }
    pool.wait_idle(PATIENCE).unwrap();
    let health = pool.health(&policy);
    assert!(!health.healthy);
    assert!(
        health.problems[0].contains("100.0 %"),
        "{:?}",
        health.problems
    );
    // Once the window has passed, the old panics no longer count: only the
    // tasks finished since the last check within the window do.
    std::thread::sleep(Duration::from_millis(250));
    for _ in 0..10 {
        pool.submit(|| ()).unwrap();
    }
    pool.wait_idle(PATIENCE).unwrap();
    let health = pool.health(&policy);
    assert!(health.healthy, "{:?}", health.problems);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_monitor_reports_until_it_is_stopped_or_the_pool_is_released() {
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    let monitor = pool
        .monitor(
            Duration::from_millis(5),
            HealthPolicy::default(),
            move |health, stats| {
                let _ = tx.send((health.healthy, stats.submitted));
            },
        )
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), (true, 0));
    pool.submit(|| ()).unwrap();
    pool.wait_idle(PATIENCE).unwrap();
    loop {
        let (_, submitted) = rx.recv_timeout(DEADLINE).unwrap();
        if submitted == 1 {
            break;
        }
    }
    monitor.stop();
    // Its thread is the pool's: release_timeout waits for it.
    pool.release_timeout(PATIENCE).unwrap();
    while rx.try_recv().is_ok() {}
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());

    let pool = Pool::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    let _monitor = pool
        .monitor(
            Duration::from_millis(5),
            HealthPolicy::default(),
            move |_, _| {
                let _ = tx.send(());
            },
        )
        .unwrap();
    rx.recv_timeout(DEADLINE).unwrap();
    pool.release_timeout(PATIENCE).unwrap();
    while rx.try_recv().is_ok() {}
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "release stops the monitor"
    );
    assert_eq!(
        pool.monitor(Duration::from_millis(5), HealthPolicy::default(), |_, _| {})
            .unwrap_err(),
        PoolError::Closed
    );
}

#[test]
fn a_multi_pool_sums_its_pools_and_lists_each() {
    let pools = MultiPool::new(3, 2, LoadBalancing::RoundRobin).unwrap();
    for _ in 0..30 {
        pools.submit(|| ()).unwrap();
    }
    pools.wait_idle(PATIENCE).unwrap();
    let stats = pools.stats();
    assert_eq!(stats.pools.len(), 3);
    assert_eq!(stats.submitted, 30);
    assert_eq!(stats.completed, 30);
    assert_eq!(stats.capacity, Some(6));
    assert_eq!(stats.pools.iter().map(|s| s.completed).sum::<u64>(), 30);
    assert!(stats.pools.iter().all(|s| s.completed == 10), "round robin");
    assert!(pools.health(&HealthPolicy::default()).healthy);
    pools.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_pool_with_func_has_stats_too() {
    let pool = PoolWithFunc::new(2, |_: u32| ()).unwrap();
    for n in 0..20 {
        pool.invoke(n).unwrap();
    }
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(pool.stats().completed, 20);
    assert!(pool.health(&HealthPolicy::default()).healthy);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_multi_pool_counts_its_own_refusals() {
    let pools = MultiPool::new(2, 1, LoadBalancing::RoundRobin).unwrap();
    pools.release();
    assert_eq!(pools.submit(|| ()), Err(PoolError::Closed));
    assert!(pools.spawn(|| ()).is_err());
    assert_eq!(pools.stats().rejected, 2);
}
