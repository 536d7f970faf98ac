//! Health judges recent figures: a burst of queue wait makes a pool
//! unhealthy for the policy's window, and is forgotten once the window has
//! passed; `Stats::since` counts only what happened after its baseline.

mod common;

use common::{Gate, DEADLINE, PATIENCE};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::{HealthPolicy, LoadBalancing, MultiPool, Pool};

/// Holds the only worker for `hold` while `queued` tasks wait behind it.
fn burst(pool: &Pool, queued: usize, hold: Duration) {
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    for _ in 0..queued {
        pool.submit(|| ()).unwrap();
    }
    // The wait is the figure under test: the queued tasks wait this long.
    std::thread::sleep(hold);
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
}

#[test]
fn health_forgets_a_burst_of_queue_wait_once_its_window_has_passed() {
    let pool = Pool::builder().capacity(1).build().unwrap();
    let window = Duration::from_millis(300);
    let policy = HealthPolicy {
        error_window: window,
        max_queue_wait_p99: Duration::from_millis(100),
        // The one worker may still count as busy just after a join.
        max_saturation: 1.0,
        ..HealthPolicy::default()
    };
    // Enough queued tasks that the burst is timed however the pool samples
    // them, and that the light traffic below can never dilute it under 1 %
    // of the figures since the build.
    burst(&pool, 1000, Duration::from_millis(300));
    let judged = Instant::now();
    let health = pool.health(&policy);
    assert!(!health.healthy, "the burst is within the window");
    assert!(
        health.problems.iter().any(|p| p.contains("p99 queue wait")),
        "{:?}",
        health.problems
    );
    // Light traffic, checked as a monitor would check it: unhealthy while
    // the window holds the burst, healthy again once it no longer does.
    loop {
        pool.spawn(|| ()).unwrap().join().unwrap();
        let health = pool.health(&policy);
        let elapsed = judged.elapsed();
        if elapsed < window {
            assert!(!health.healthy, "forgot the burst after {elapsed:?}");
        } else if health.healthy {
            break;
        }
        assert!(
            elapsed < DEADLINE,
            "still unhealthy {elapsed:?} after the burst: {:?}",
            health.problems
        );
        // The pace of the light traffic: about a hundred tasks a second.
        std::thread::sleep(Duration::from_millis(10));
    }
    // The figures since the build still hold the burst.
    assert!(pool.stats().queue_wait.max >= Duration::from_millis(250));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn since_counts_only_the_tasks_after_its_baseline() {
    let pool = Pool::new(2).unwrap();
    for _ in 0..5 {
        pool.spawn(|| ()).unwrap().join().unwrap();
    }
    pool.wait_idle(PATIENCE).unwrap();
    let earlier = pool.stats();
    for _ in 0..7 {
        pool.spawn(|| std::thread::sleep(Duration::from_millis(2)))
            .unwrap()
            .join()
            .unwrap();
    }
    pool.wait_idle(PATIENCE).unwrap();
    let later = pool.stats();
    let recent = later.since(&earlier);
    assert_eq!((recent.submitted, recent.completed), (7, 7));
    assert_eq!(recent.finished(), 7);
    assert_eq!(recent.run_time.count, 7, "{:?}", recent.run_time);
    assert_eq!(recent.queue_wait.count, 7, "{:?}", recent.queue_wait);
    // Only the sleeping tasks: the window's shortest is within a bucket
    // (about 12 %) of 2 ms, while the build's is one of the empty tasks.
    assert!(
        recent.run_time.min >= Duration::from_micros(1750),
        "{:?}",
        recent.run_time
    );
    assert!(later.run_time.min < Duration::from_millis(1));
    assert!(recent.run_time.sum >= Duration::from_millis(14));
    assert_eq!(
        later.run_time.sum,
        earlier.run_time.sum + recent.run_time.sum
    );
    let run = recent.run_time;
    assert!(run.min <= run.p50 && run.p50 <= run.p90 && run.p90 <= run.p99);
    assert!(run.p99 <= run.max && run.min <= run.mean && run.mean <= run.max);
    assert_eq!(recent.uptime, later.uptime - earlier.uptime);
    // Gauges are the later snapshot's.
    assert_eq!(
        (recent.workers, recent.queued),
        (later.workers, later.queued)
    );
    // Against itself, nothing happened.
    let none = later.since(&later);
    assert_eq!((none.submitted, none.run_time.count), (0, 0));
    assert_eq!(none.run_time, workpool::LatencySummary::default());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn since_on_a_multi_pool_subtracts_pool_by_pool() {
    let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin).unwrap();
    for _ in 0..4 {
        pools.submit(|| ()).unwrap();
    }
    pools.wait_idle(PATIENCE).unwrap();
    let earlier = pools.stats();
    for _ in 0..6 {
        pools.submit(|| ()).unwrap();
    }
    pools.wait_idle(PATIENCE).unwrap();
    let recent = pools.stats().since(&earlier);
    assert_eq!(recent.completed, 6);
    assert_eq!(recent.pools.len(), 2);
    assert!(recent.pools.iter().all(|p| p.completed == 3), "round robin");
    assert_eq!(
        recent.run_time.count,
        recent.pools.iter().map(|p| p.run_time.count).sum::<u64>()
    );
    pools.release_timeout(PATIENCE).unwrap();
}
