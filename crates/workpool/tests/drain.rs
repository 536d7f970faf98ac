//! Draining: `drain_timeout` refuses new tasks, runs every accepted one
//! with its token untouched, then releases; out of time it says `Timeout`
//! and leaves the pool closed with the rest queued.

mod common;

use common::Gate;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use workpool::{Pool, PoolError};

const HANG: Duration = Duration::from_secs(10);

/// Defect 14: no shutdown ran every accepted task: `release` and
/// `release_timeout` cancel queued tasks that carry a token.
/// `drain_timeout` refuses new tasks, runs every accepted one with its
/// token untouched, then releases.
#[test]
fn d14_drain_timeout_runs_every_accepted_task_with_its_token_untouched() {
    let pool = Pool::new(2).unwrap();
    let gate = Gate::new();
    let cancelled_seen = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let (gate, seen, ran) = (
                Arc::clone(&gate),
                Arc::clone(&cancelled_seen),
                Arc::clone(&ran),
            );
            pool.task(move |token| {
                gate.wait();
                if token.is_cancelled() {
                    seen.fetch_add(1, SeqCst);
                }
                ran.fetch_add(1, SeqCst);
            })
            .spawn()
            .unwrap()
        })
        .collect();
    gate.await_arrivals(2);
    let draining = pool.clone();
    let drain = thread::spawn(move || draining.drain_timeout(HANG));
    common::wait_until("the pool refuses new tasks", || pool.is_closed());
    assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
    gate.open();
    assert_eq!(drain.join().unwrap(), Ok(()));
    assert_eq!(ran.load(SeqCst), 100, "every accepted task ran");
    assert_eq!(
        cancelled_seen.load(SeqCst),
        0,
        "no task saw its token cancelled"
    );
    assert!(handles.into_iter().all(|h| h.join().is_ok()));
    assert_eq!(pool.workers(), 0);

    // Out of time: Timeout, the pool closed, the rest still queued.
    let pool = Pool::new(1).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    let queued = pool.spawn(|| 5).unwrap();
    assert_eq!(
        pool.drain_timeout(Duration::from_millis(20)),
        Err(PoolError::Timeout)
    );
    assert!(pool.is_closed());
    assert_eq!(pool.queued(), 1);
    gate.open();
    assert_eq!(queued.join().unwrap(), 5);
}
