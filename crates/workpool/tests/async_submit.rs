//! Async use: handles awaited on a current-thread runtime leave its thread
//! free for other tasks, `submit_async` on a full pool waits without blocking
//! the thread, and a dropped `submit_async` future leaves no waiter behind.

mod common;

use common::{Gate, Probe, PATIENCE};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use workpool::{Pool, PoolError};

/// A waker that does nothing, to poll a future by hand.
struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn noop_waker() -> Waker {
    Waker::from(Arc::new(Noop))
}

/// Runs `f` on a current-thread tokio runtime on a thread of its own, and
/// fails the test if it has not finished within [`PATIENCE`]: a future that
/// blocks its thread turns into a failure, not a hung test.
fn on_current_thread_runtime<F, Fut>(f: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future,
    Fut::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _ = tx.send(runtime.block_on(f()));
    });
    rx.recv_timeout(PATIENCE)
        .expect("the runtime's thread did not finish in time (blocked, or panicked)")
}

/// A one-worker hand-off pool, full: its worker waits at the returned gate.
fn full_pool() -> (Pool, Arc<Gate>) {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .disable_purge(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    (pool, gate)
}

#[test]
fn a_thousand_handles_complete_on_a_current_thread_runtime_while_a_ticker_ticks() {
    const N: u64 = 1_000;
    const TICKS_BEFORE_OPENING: usize = 10;
    let pool = Pool::builder().capacity(4).build().unwrap();
    let gate = Gate::new();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let gate = Arc::clone(&gate);
            pool.spawn(move || {
                gate.wait();
                i * 3
            })
            .unwrap()
        })
        .collect();
    let ticks = Arc::new(AtomicUsize::new(0));
    let (results, ticks_seen) = {
        let ticks = Arc::clone(&ticks);
        let gate = Arc::clone(&gate);
        on_current_thread_runtime(move || async move {
            // The tasks are held until this ticker, on the runtime's one
            // thread, has ticked: the handles can only complete if awaiting
            // them leaves the thread free.
            let ticker = {
                let ticks = Arc::clone(&ticks);
                tokio::spawn(async move {
                    loop {
                        if ticks.fetch_add(1, Ordering::SeqCst) + 1 == TICKS_BEFORE_OPENING {
                            gate.open();
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
            };
            let mut results = Vec::with_capacity(handles.len());
            for handle in handles {
                results.push(handle.await.unwrap());
            }
            let ticks_seen = ticks.load(Ordering::SeqCst);
            ticker.abort();
            (results, ticks_seen)
        })
    };
    assert_eq!(results, (0..N).map(|i| i * 3).collect::<Vec<_>>());
    assert!(
        ticks_seen >= TICKS_BEFORE_OPENING,
        "the ticker ticked {ticks_seen} times"
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_handle_awaited_with_futures_executor_gives_its_result() {
    let pool = Pool::new(2).unwrap();
    let handle = pool.spawn(|| "awaited").unwrap();
    assert_eq!(futures_executor::block_on(handle).unwrap(), "awaited");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn submit_async_on_a_full_pool_lets_other_futures_run() {
    let (pool, gate) = full_pool();
    let probe = Probe::new();
    let (submitted, other) = {
        let pool = pool.clone();
        let probe = probe.clone();
        on_current_thread_runtime(move || async move {
            let submit = pool.submit_async(probe.task());
            let other = async {
                // Runs while the submit waits for room, on the same thread.
                while pool.waiting() != 1 {
                    tokio::task::yield_now().await;
                }
                let ran_before_room = probe.runs();
                gate.open();
                ran_before_room
            };
            tokio::join!(submit, other)
        })
    };
    assert_eq!(submitted, Ok(()));
    assert_eq!(other, 0, "the task ran before the pool had room");
    probe.await_runs(1);
    assert_eq!(pool.waiting(), 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn spawn_async_on_a_full_pool_gives_a_handle_once_there_is_room() {
    let (pool, gate) = full_pool();
    let (value, other) = {
        let pool = pool.clone();
        on_current_thread_runtime(move || async move {
            let spawn = async {
                let handle = pool.spawn_async(|| 21 * 2).await?;
                Ok(handle.await.expect("the task ran"))
            };
            let other = async {
                while pool.waiting() != 1 {
                    tokio::task::yield_now().await;
                }
                gate.open();
                "other ran"
            };
            let (value, other): (Result<i32, PoolError>, _) = tokio::join!(spawn, other);
            (value, other)
        })
    };
    assert_eq!(value, Ok(42));
    assert_eq!(other, "other ran");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_dropped_submit_async_future_leaves_no_waiter_behind() {
    let (pool, gate) = full_pool();
    let probe = Probe::new();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut pending = pin!(pool.submit_async(probe.task()));
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pool.waiting(), 1);
        // Polled again: still one waiter, not two.
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pool.waiting(), 1);
    }
    assert_eq!(pool.waiting(), 0, "the dropped future left its waiter");
    assert!(
        probe.all_tasks_dropped(),
        "the dropped future's task lives on"
    );

    // The pool is unharmed: room goes to the next submit.
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    futures_executor::block_on(pool.submit_async(probe.task())).unwrap();
    probe.await_runs(1);
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 1, "the dropped future's task ran");
}

#[test]
fn a_dropped_spawn_async_future_never_runs_its_task() {
    let (pool, gate) = full_pool();
    let probe = Probe::new();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut pending = pin!(pool.spawn_async(probe.task()));
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pool.waiting(), 1);
    }
    assert_eq!(pool.waiting(), 0);
    gate.open();
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn one_of_two_async_waiters_dropped_the_other_still_gets_room() {
    let (pool, gate) = full_pool();
    let probe = Probe::new();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut kept = Box::pin(pool.submit_async(probe.task()));
    assert!(kept.as_mut().poll(&mut cx).is_pending());
    {
        let mut dropped = pin!(pool.submit_async(probe.task()));
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pool.waiting(), 2);
    }
    assert_eq!(pool.waiting(), 1);
    gate.open();
    assert_eq!(futures_executor::block_on(kept), Ok(()));
    probe.await_runs(1);
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(probe.runs(), 1);
    assert_eq!(pool.waiting(), 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_pending_submit_async_sees_a_release() {
    let (pool, gate) = full_pool();
    let probe = Probe::new();
    let (result, ()) = {
        let pool = pool.clone();
        let probe = probe.clone();
        on_current_thread_runtime(move || async move {
            let submit = pool.submit_async(probe.task());
            let release = async {
                while pool.waiting() != 1 {
                    tokio::task::yield_now().await;
                }
                pool.release();
            };
            tokio::join!(submit, release)
        })
    };
    assert_eq!(result, Err(PoolError::Closed));
    assert_eq!(pool.waiting(), 0);
    gate.open();
    assert!(probe.all_tasks_dropped());
    assert_eq!(probe.runs(), 0);
}

#[test]
fn submit_async_on_a_full_nonblocking_pool_is_overloaded_at_once() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .nonblocking(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    let result = futures_executor::block_on(pool.submit_async(|| ()));
    assert_eq!(result, Err(PoolError::Overloaded));
    assert_eq!(pool.waiting(), 0);
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
}
