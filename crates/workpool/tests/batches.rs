//! Batches: `spawn_batch` gives the results in submission order however the
//! tasks finish, `progress` counts finished tasks, `cancel` stops the tasks
//! not started, and a `BatchHandle` can be awaited; `Pool::batch`'s shared
//! token, per-task callback and per-task deadline.

mod common;

use common::quiet_intentional_panics;

use common::{wait_until, Gate, DEADLINE, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use workpool::{CancelToken, Pool, TaskError};

/// A wait that only a cancel ends within a test's time.
const LONG: Duration = Duration::from_secs(60);

/// Records the order in which tasks finish, and lets a task wait until
/// another has finished.
#[derive(Default)]
struct FinishOrder {
    done: Mutex<Vec<usize>>,
    changed: Condvar,
}

impl FinishOrder {
    fn finish(&self, task: usize) {
        self.done.lock().unwrap().push(task);
        self.changed.notify_all();
    }

    /// Blocks until `task` has finished; fails after [`PATIENCE`].
    fn await_finished(&self, task: usize) {
        let done = self.done.lock().unwrap();
        let (done, _) = self
            .changed
            .wait_timeout_while(done, PATIENCE, |done| !done.contains(&task))
            .unwrap();
        assert!(done.contains(&task), "task {task} never finished");
    }

    fn order(&self) -> Vec<usize> {
        self.done.lock().unwrap().clone()
    }
}

#[test]
fn results_come_back_in_submission_order_when_tasks_finish_out_of_order() {
    const N: usize = 6;
    let pool = Pool::builder().capacity(N).build().unwrap();
    let order = Arc::new(FinishOrder::default());
    // Each task waits for the one submitted after it: the last finishes
    // first, the first last.
    let batch = pool
        .spawn_batch((0..N).map(|i| {
            let order = Arc::clone(&order);
            move || {
                if i + 1 < N {
                    order.await_finished(i + 1);
                }
                order.finish(i);
                format!("result {i}")
            }
        }))
        .unwrap();
    assert_eq!(batch.len(), N);
    assert!(!batch.is_empty());
    let results: Vec<String> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(order.order(), (0..N).rev().collect::<Vec<_>>());
    let expected: Vec<String> = (0..N).map(|i| format!("result {i}")).collect();
    assert_eq!(results, expected);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_large_batch_keeps_its_order() {
    let pool = Pool::builder().capacity(4).build().unwrap();
    let batch = pool
        .spawn_batch((0..5_000u64).map(|i| move || i * 3))
        .unwrap();
    let results: Vec<u64> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(results, (0..5_000u64).map(|i| i * 3).collect::<Vec<_>>());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn progress_counts_the_finished_tasks() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    let gate = Gate::new();
    let batch = pool
        .spawn_batch((0..4usize).map(|i| {
            let gate = Arc::clone(&gate);
            move || {
                gate.wait();
                i
            }
        }))
        .unwrap();
    gate.await_arrivals(2);
    assert_eq!(batch.progress(), (0, 4));
    assert!(!batch.is_finished());
    assert!(!batch.wait_timeout(Duration::from_millis(10)));

    gate.let_through(1);
    wait_until("one task finished", || batch.progress().0 == 1);
    gate.await_arrivals(3);
    assert_eq!(batch.progress(), (1, 4), "a held task counted as finished");
    assert!(!batch.is_finished());

    gate.let_through(2);
    wait_until("three tasks finished", || batch.progress().0 == 3);
    assert_eq!(batch.progress(), (3, 4));
    assert!(!batch.is_finished());

    gate.open();
    assert!(batch.wait_timeout(PATIENCE));
    assert!(batch.is_finished());
    assert_eq!(batch.progress(), (4, 4));
    let results: Vec<usize> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(results, [0, 1, 2, 3]);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn cancel_stops_the_tasks_of_a_batch_not_yet_started() {
    let pool = Pool::builder().capacity(1).build().unwrap();
    let gate = Gate::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let batch = pool
        .spawn_batch((0..5usize).map(|i| {
            let gate = Arc::clone(&gate);
            let ran = Arc::clone(&ran);
            move || {
                gate.wait();
                ran.fetch_add(1, Ordering::SeqCst);
                i
            }
        }))
        .unwrap();
    gate.await_arrivals(1);
    assert_eq!(pool.queued(), 4);
    assert_eq!(batch.cancel(), 4, "the four queued tasks are stopped");
    assert_eq!(pool.queued(), 0, "their slots are free");
    // The cancelled ones count as finished; the running one does not yet.
    assert_eq!(batch.progress(), (4, 5));
    assert!(!batch.is_finished());
    gate.open();
    assert!(batch.wait_timeout(PATIENCE));
    let results = batch.join();
    assert_eq!(results.len(), 5);
    assert_eq!(*results[0].as_ref().unwrap(), 0);
    for result in &results[1..] {
        assert!(matches!(result, Err(TaskError::Cancelled)), "{result:?}");
    }
    pool.wait_idle(PATIENCE).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "a cancelled task ran");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_batch_can_be_awaited() {
    let pool = Pool::builder().capacity(3).build().unwrap();
    let gate = Gate::new();
    let batch = pool
        .spawn_batch((0..10u32).map(|i| {
            let gate = Arc::clone(&gate);
            move || {
                gate.wait();
                i * i
            }
        }))
        .unwrap();
    let opener = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            gate.await_arrivals(3);
            gate.open();
        })
    };
    let results = futures_executor::block_on(batch);
    opener.join().unwrap();
    let squares: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(squares, (0..10u32).map(|i| i * i).collect::<Vec<_>>());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn an_empty_batch_is_finished_at_once() {
    let pool = Pool::new(1).unwrap();
    let batch = pool.spawn_batch(Vec::<fn() -> u8>::new()).unwrap();
    assert!(batch.is_empty());
    assert!(batch.is_finished());
    assert_eq!(batch.progress(), (0, 0));
    assert!(batch.wait_timeout(Duration::ZERO));
    assert!(batch.join().is_empty());
    let awaited = pool.spawn_batch(Vec::<fn() -> u8>::new()).unwrap();
    assert!(futures_executor::block_on(awaited).is_empty());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_panicking_task_of_a_batch_is_its_own_result() {
    quiet_intentional_panics();
    let pool = Pool::new(2).unwrap();
    let batch = pool
        .spawn_batch((0..4u32).map(|i| {
            move || {
                if i == 2 {
                    panic!("intentional: task {i}");
                }
                i
            }
        }))
        .unwrap();
    let results = batch.join();
    assert_eq!(*results[0].as_ref().unwrap(), 0);
    assert_eq!(*results[1].as_ref().unwrap(), 1);
    assert_eq!(
        results[2].as_ref().unwrap_err().panic_message(),
        Some("intentional: task 2")
    );
    assert_eq!(*results[3].as_ref().unwrap(), 3);
    assert_eq!(pool.panicked(), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_batch_on_a_released_pool_is_refused() {
    let pool = Pool::new(1).unwrap();
    pool.release();
    let refused = pool.spawn_batch((0..3).map(|i| move || i));
    assert_eq!(refused.unwrap_err(), workpool::PoolError::Closed);
}

#[test]
fn a_token_batch_s_cancel_also_stops_its_running_tasks() {
    let pool = Pool::builder().capacity(2).build().unwrap();
    let (started, running) = std::sync::mpsc::channel();
    let batch = pool
        .batch((0..5usize).map(|i| {
            let started = started.clone();
            move |token: &CancelToken| {
                started.send(i).unwrap();
                token.wait_timeout(LONG)
            }
        }))
        .spawn()
        .unwrap();
    for _ in 0..2 {
        running.recv_timeout(PATIENCE).unwrap();
    }
    let asked = Instant::now();
    assert_eq!(batch.cancel(), 3, "the three queued tasks are stopped");
    assert!(batch.wait_timeout(PATIENCE));
    assert!(asked.elapsed() < DEADLINE);
    let results = batch.join();
    let ran: Vec<bool> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(ran, [true, true], "the running tasks saw the cancel");
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_token_batch_calls_back_once_per_task_with_its_index() {
    let pool = Pool::builder().capacity(3).build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let batch = pool
        .batch((0..8u32).map(|n| move |_token: &CancelToken| n * 10))
        .on_complete(move |index, result| {
            record
                .lock()
                .unwrap()
                .push((index, *result.as_ref().unwrap()));
        })
        .spawn()
        .unwrap();
    let results: Vec<u32> = batch.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(results, (0..8u32).map(|n| n * 10).collect::<Vec<_>>());
    // Every callback had run when join returned.
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..8usize).map(|i| (i, i as u32 * 10)).collect::<Vec<_>>()
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_token_batch_s_deadline_counts_for_each_task_from_its_own_submit() {
    // A hand-off pool of one worker: the second task is submitted only once
    // the first has finished, `OFFSET` later. Each task's deadline counts
    // from its own submit, so the first one's deadline, passing while the
    // second runs, must not cut the second short through the token they
    // share.
    const DEADLINE_EACH: Duration = Duration::from_millis(300);
    const OFFSET: Duration = Duration::from_millis(200);
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .build()
        .unwrap();
    let gate = Gate::new();
    let spawning = {
        let pool = pool.clone();
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            pool.batch((0..2usize).map(|i| {
                let gate = Arc::clone(&gate);
                move |token: &CancelToken| {
                    if i == 0 {
                        gate.wait();
                        return None;
                    }
                    token.wait_timeout(LONG);
                    Some(Instant::now())
                }
            }))
            .deadline(DEADLINE_EACH)
            .spawn()
            .unwrap()
        })
    };
    gate.await_arrivals(1);
    wait_until("the second submit waits for room", || pool.waiting() == 1);
    // The offset between the two submits is the point of the test.
    std::thread::sleep(OFFSET);
    let opened = Instant::now();
    gate.open();
    let batch = spawning.join().unwrap();
    let results = batch.join();
    assert_eq!(*results[0].as_ref().unwrap(), None);
    let second_cancelled_at = results[1]
        .as_ref()
        .expect("the second task ran")
        .expect("the second task returns when cancelled");
    let ran_for = second_cancelled_at - opened;
    assert!(
        ran_for >= DEADLINE_EACH,
        "the second task was cancelled {ran_for:?} after its submit, before its own deadline of {DEADLINE_EACH:?}"
    );
    pool.release_timeout(PATIENCE).unwrap();
}
