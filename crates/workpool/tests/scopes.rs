//! Scopes and `parallel_execute`: tasks borrow from the caller's stack,
//! every task has finished when `scope` returns (also when one panics, whose
//! panic `scope` then raises), a scope opened inside a task of a full pool
//! completes, and `parallel_execute` gives results in order.

mod common;

use common::{message, quiet_intentional_panics, INTENTIONAL};

use common::{Gate, PATIENCE};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workpool::{Pool, TaskError};

#[test]
fn scope_tasks_borrow_the_caller_s_data() {
    let pool = Pool::new(4).unwrap();
    let words = [
        String::from("alpha"),
        String::from("be"),
        String::from("gam"),
    ];
    let mut lengths = vec![0; words.len()];
    let total = AtomicUsize::new(0);
    let returned = pool.scope(|s| {
        for (word, length) in words.iter().zip(lengths.iter_mut()) {
            let total = &total;
            s.spawn(move || {
                *length = word.len();
                total.fetch_add(word.len(), Ordering::SeqCst);
            });
        }
        "the closure's value"
    });
    assert_eq!(returned, "the closure's value");
    assert_eq!(lengths, [5, 2, 3]);
    assert_eq!(total.into_inner(), 10);
    // The borrowed data is still the caller's.
    assert_eq!(words.len(), 3);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn every_task_has_finished_when_scope_returns() {
    const N: usize = 4;
    let pool = Pool::new(N).unwrap();
    let gate = Gate::new();
    let finished = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..N {
            let gate = &gate;
            let finished = &finished;
            s.spawn(move || {
                gate.wait();
                // A little work after the gate, so the scope has something
                // to wait for.
                let mut x = 0u64;
                for i in 0..100_000u64 {
                    x = x.wrapping_add(std::hint::black_box(i));
                }
                std::hint::black_box(x);
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Every task is running (held) when the closure lets them go and
        // returns: `scope` must still wait for all of them.
        gate.await_arrivals(N);
        assert_eq!(finished.load(Ordering::SeqCst), 0);
        gate.open();
    });
    assert_eq!(finished.load(Ordering::SeqCst), N);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn scope_tasks_may_spawn_more_scope_tasks() {
    // What the tasks touch is shared, not borrowed: should `scope` return
    // too early, a late task must not touch a dead stack frame.
    let pool = Pool::new(2).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    pool.scope(|s| {
        for _ in 0..4 {
            let count = Arc::clone(&count);
            s.spawn(move || {
                count.fetch_add(1, Ordering::SeqCst);
                for _ in 0..3 {
                    let count = Arc::clone(&count);
                    s.spawn(move || {
                        count.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
        }
    });
    assert_eq!(
        count.load(Ordering::SeqCst),
        4 + 4 * 3,
        "scope returned before every nested task had run"
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_task_spawned_by_a_scope_task_while_scope_waits_is_waited_for() {
    // The outer task runs on a worker and spawns its nested tasks only once
    // the scope's caller is (most likely) waiting for it; the nested tasks
    // are held until well after the outer one has finished. `scope` must
    // not return before they have run. Shared, not borrowed, state: should
    // `scope` return early, the late tasks touch nothing dead.
    let pool = Pool::new(3).unwrap();
    let outer_gate = Gate::new();
    let nested_gate = Gate::new();
    let nested_ran = Arc::new(AtomicUsize::new(0));
    let opener = {
        let (outer_gate, nested_gate) = (Arc::clone(&outer_gate), Arc::clone(&nested_gate));
        std::thread::spawn(move || {
            outer_gate.await_arrivals(1);
            // Time for the caller to get into its wait: the point of the test.
            std::thread::sleep(Duration::from_millis(100));
            outer_gate.open();
            nested_gate.await_arrivals(2);
            std::thread::sleep(Duration::from_millis(100));
            nested_gate.open();
        })
    };
    pool.scope(|s| {
        let (outer, nested, ran) = (
            Arc::clone(&outer_gate),
            Arc::clone(&nested_gate),
            Arc::clone(&nested_ran),
        );
        s.spawn(move || {
            outer.wait();
            for _ in 0..2 {
                let (nested, ran) = (Arc::clone(&nested), Arc::clone(&ran));
                s.spawn(move || {
                    nested.wait();
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        // The outer task runs on a worker, not on the caller.
        outer_gate.await_arrivals(1);
    });
    assert_eq!(
        nested_ran.load(Ordering::SeqCst),
        2,
        "scope returned before the tasks spawned by its task had run"
    );
    opener.join().unwrap();
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_panicking_scope_task_is_raised_after_every_other_task_finished() {
    quiet_intentional_panics();
    const OTHERS: usize = 3;
    let pool = Pool::new(OTHERS + 1).unwrap();
    let gate = Gate::new();
    let finished = AtomicUsize::new(0);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..OTHERS {
                let gate = &gate;
                let finished = &finished;
                s.spawn(move || {
                    gate.wait();
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            gate.await_arrivals(OTHERS);
            s.spawn(|| panic!("{INTENTIONAL}: scope task"));
            gate.open();
        });
    }));
    let payload = outcome.expect_err("scope did not raise the task's panic");
    assert_eq!(message(&*payload), Some("intentional: scope task"));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        OTHERS,
        "scope raised the panic before the other tasks had finished"
    );
    assert_eq!(pool.panicked(), 1);
    // The pool lives on.
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_panic_of_the_scope_closure_waits_for_its_tasks() {
    quiet_intentional_panics();
    let pool = Pool::new(2).unwrap();
    let gate = Gate::new();
    let finished = AtomicUsize::new(0);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..2 {
                let gate = &gate;
                let finished = &finished;
                s.spawn(move || {
                    gate.wait();
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            gate.await_arrivals(2);
            gate.open();
            panic!("{INTENTIONAL}: the closure");
        });
    }));
    let payload = outcome.expect_err("scope swallowed the closure's panic");
    assert_eq!(message(&*payload), Some("intentional: the closure"));
    assert_eq!(finished.load(Ordering::SeqCst), 2);
    pool.release_timeout(PATIENCE).unwrap();
}

/// A task of a one-worker pool opens a scope and spawns several tasks in it:
/// no worker is free for them, so the scope must run them itself.
fn scope_inside_a_task_of_a_full_pool(queue_capacity: usize) {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(queue_capacity)
        .build()
        .unwrap();
    let inner = pool.clone();
    let handle = pool
        .spawn(move || {
            let numbers: Vec<u64> = (1..=8).collect();
            let mut squares = vec![0u64; numbers.len()];
            inner.scope(|s| {
                for (n, square) in numbers.iter().zip(squares.iter_mut()) {
                    s.spawn(move || *square = n * n);
                }
            });
            squares
        })
        .unwrap();
    assert!(
        handle.wait_timeout(PATIENCE),
        "a scope inside a task of a full pool hung"
    );
    assert_eq!(handle.join().unwrap(), [1, 4, 9, 16, 25, 36, 49, 64]);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_scope_inside_a_task_of_a_full_pool_completes() {
    scope_inside_a_task_of_a_full_pool(1024);
}

#[test]
fn a_scope_inside_a_task_of_a_full_hand_off_pool_completes() {
    scope_inside_a_task_of_a_full_pool(0);
}

#[test]
fn scope_tasks_refused_by_a_released_pool_run_on_the_caller() {
    let pool = Pool::new(2).unwrap();
    pool.release();
    let caller = std::thread::current().id();
    let ran_on = Mutex::new(Vec::new());
    pool.scope(|s| {
        for _ in 0..3 {
            let ran_on = &ran_on;
            s.spawn(move || ran_on.lock().unwrap().push(std::thread::current().id()));
        }
    });
    let ran_on = ran_on.into_inner().unwrap();
    assert_eq!(ran_on, [caller; 3]);
}

#[test]
fn parallel_execute_returns_results_in_order_with_a_panic_as_err() {
    quiet_intentional_panics();
    let pool = Pool::new(3).unwrap();
    let text = String::from("borrowed by every closure");
    let text = &text;
    let fns: Vec<Box<dyn FnOnce() -> usize + Send + '_>> = vec![
        Box::new(|| text.len()),
        Box::new(|| text.split(' ').count()),
        Box::new(|| panic!("{INTENTIONAL}: second of four")),
        Box::new(|| text.find("every").unwrap()),
    ];
    let results = pool.parallel_execute(fns);
    assert_eq!(results.len(), 4);
    assert_eq!(*results[0].as_ref().unwrap(), 25);
    assert_eq!(*results[1].as_ref().unwrap(), 4);
    match &results[2] {
        Err(error @ TaskError::Panicked(_)) => {
            assert_eq!(error.panic_message(), Some("intentional: second of four"));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(*results[3].as_ref().unwrap(), 12);
    assert_eq!(pool.panicked(), 1);
    // The pool lives on.
    assert_eq!(pool.spawn(|| 2).unwrap().join().unwrap(), 2);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn parallel_execute_keeps_the_order_of_many_closures_that_finish_out_of_order() {
    let pool = Pool::new(4).unwrap();
    let gate = Arc::new(Gate::default());
    let results = pool.parallel_execute((0..40usize).map(|i| {
        let gate = Arc::clone(&gate);
        move || {
            // The first four hold their workers until the rest are done.
            if i < 4 {
                gate.wait();
            } else if i == 39 {
                gate.open();
            }
            i * 10
        }
    }));
    let values: Vec<usize> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, (0..40).map(|i| i * 10).collect::<Vec<_>>());
    pool.release_timeout(PATIENCE).unwrap();
}
