//! Autoscale on a real pool: a downstream with a knee (simulated with
//! sleeps: up to `knee` calls at once take `base`, past it calls queue and
//! slow every call), a feeder that keeps the pool saturated, and the
//! capacity each policy settles at; a manual `tune` pausing the policy
//! until `resume_autoscale`; bad settings refused at build. The policies'
//! behaviour itself is tested deterministically in `src/autoscale.rs`.

mod common;

use common::PATIENCE;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::{Autoscale, BuildError, Pool, PoolError};

/// A downstream with a knee.
struct Downstream {
    knee: usize,
    base: Duration,
    calls: AtomicUsize,
}

impl Downstream {
    fn call(&self) {
        let now = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let queueing = (now as f64 / self.knee as f64).max(1.0);
        let contention = Duration::from_micros(200) * now.saturating_sub(self.knee) as u32;
        std::thread::sleep(self.base.mul_f64(queueing) + contention);
        self.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps `pool` saturated with calls to `downstream` for `period`; returns
/// the capacities seen every 100 ms.
fn feed(pool: &Pool, downstream: &Arc<Downstream>, period: Duration) -> Vec<usize> {
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (pool, downstream, stop) = (pool.clone(), Arc::clone(downstream), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let downstream = Arc::clone(&downstream);
                // Blocks while the pool is full: it stays saturated.
                if pool.submit(move || downstream.call()).is_err() {
                    break;
                }
            }
        })
    };
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < period {
        std::thread::sleep(Duration::from_millis(100));
        seen.push(pool.capacity().unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    feeder.join().unwrap();
    seen
}

fn downstream(knee: usize) -> Arc<Downstream> {
    Arc::new(Downstream {
        knee,
        base: Duration::from_millis(5),
        calls: AtomicUsize::new(0),
    })
}

/// A pool of `scale` started at `start`, fed for `period`: the capacities.
fn settle(scale: Autoscale, start: usize, period: Duration) -> Vec<usize> {
    let pool = Pool::builder()
        .capacity(start)
        .queue_capacity(8)
        .autoscale(scale.bounds(1, 128))
        .build()
        .unwrap();
    let seen = feed(&pool, &downstream(16), period);
    assert_eq!(
        pool.stats().capacity,
        pool.capacity(),
        "Stats shows the capacity in force"
    );
    pool.release_timeout(PATIENCE).unwrap();
    seen
}

#[test]
fn each_policy_finds_a_downstream_s_knee() {
    // Knee 16, from capacity 2; generous bounds for a shared CI machine:
    // within half to twice the knee over the last second of 6.
    for scale in [Autoscale::throughput(), Autoscale::latency()] {
        let seen = settle(scale, 2, Duration::from_secs(6));
        let last_second = &seen[seen.len() - 10..];
        assert!(
            last_second.iter().all(|&c| (8..=32).contains(&c)),
            "{scale:?}: {seen:?}"
        );
    }
}

#[test]
fn each_policy_backs_off_from_an_oversized_start() {
    // From 64, four times the knee: run time is 4x its no-load level (the
    // latency policy's start-up probe finds it), and completions are flat
    // or falling with more threads (the throughput policy's steps, at least
    // a sixteenth of the capacity, see past a window's noise).
    for scale in [Autoscale::throughput(), Autoscale::latency()] {
        let seen = settle(scale, 64, Duration::from_secs(6));
        let last_second = &seen[seen.len() - 10..];
        assert!(
            last_second.iter().all(|&c| (8..=32).contains(&c)),
            "{scale:?}: {seen:?}"
        );
    }
}

#[test]
fn a_manual_tune_pauses_the_policy_until_resume() {
    let pool = Pool::builder()
        .capacity(2)
        .queue_capacity(8)
        .autoscale(
            Autoscale::latency()
                .bounds(1, 64)
                .interval(Duration::from_millis(50)),
        )
        .build()
        .unwrap();
    let calls = downstream(16);
    pool.tune(3).unwrap();
    assert!(!pool.is_autoscaling());
    let paused = feed(&pool, &calls, Duration::from_millis(800));
    assert!(
        paused.iter().all(|&c| c == 3),
        "the policy moved a tuned pool: {paused:?}"
    );
    assert!(pool.resume_autoscale());
    let resumed = feed(&pool, &calls, Duration::from_secs(2));
    assert!(
        resumed.iter().any(|&c| c > 3),
        "the policy never took over: {resumed:?}"
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn an_idle_autoscaled_pool_sheds_capacity_toward_its_lower_bound() {
    let pool = Pool::builder()
        .capacity(32)
        .autoscale(
            Autoscale::throughput()
                .bounds(2, 64)
                .interval(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    common::wait_until("the capacity falls to the lower bound", || {
        pool.capacity() == Some(2)
    });
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn the_start_is_brought_within_the_bounds_and_a_pool_without_autoscale_keeps_its_capacity() {
    let pool = Pool::builder()
        .capacity(500)
        .autoscale(Autoscale::throughput().bounds(1, 16))
        .build()
        .unwrap();
    assert_eq!(pool.capacity(), Some(16));
    let plain = Pool::new(7).unwrap();
    assert!(!plain.is_autoscaling());
    assert!(!plain.resume_autoscale());
    assert_eq!(plain.capacity(), Some(7));
}

#[test]
fn bad_autoscale_settings_are_refused_at_build_naming_them() {
    let refused = |builder: workpool::PoolBuilder| builder.build().map(|_| ()).unwrap_err();
    let error = refused(Pool::builder().autoscale(Autoscale::throughput().bounds(0, 8)));
    assert!(matches!(
        error,
        BuildError::AutoscaleBounds { min: 0, max: 8 }
    ));
    assert!(error.to_string().contains("min 0"), "{error}");
    let error = refused(Pool::builder().autoscale(Autoscale::latency().bounds(9, 3)));
    assert!(matches!(
        error,
        BuildError::AutoscaleBounds { min: 9, max: 3 }
    ));
    let error = refused(
        Pool::builder().autoscale(Autoscale::latency().interval(Duration::from_secs(7200))),
    );
    assert!(
        error.to_string().contains("2h") || error.to_string().contains("7200"),
        "{error}"
    );
    let error = refused(
        Pool::builder()
            .unbounded()
            .autoscale(Autoscale::throughput()),
    );
    assert!(matches!(error, BuildError::AutoscaleUnbounded), "{error}");
    let error = refused(
        Pool::builder()
            .min_workers(4)
            .capacity(8)
            .autoscale(Autoscale::throughput().bounds(2, 8)),
    );
    assert!(matches!(
        error,
        BuildError::MinWorkersAboveCapacity {
            min_workers: 4,
            capacity: 2
        }
    ));
    // A manual tune is still checked as always.
    let pool = Pool::builder()
        .autoscale(Autoscale::throughput())
        .build()
        .unwrap();
    assert_eq!(pool.tune(0), Err(PoolError::InvalidCapacity));
    assert!(pool.is_autoscaling(), "a refused tune pauses nothing");
}
