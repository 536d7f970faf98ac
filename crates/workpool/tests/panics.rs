//! Panicking tasks: the panic handler gets the payload, a panic in the handler
//! is caught too, the pool counts panics, and workers and pool live on.

mod common;

use common::{quiet_intentional_panics, Code, INTENTIONAL};

use common::{current_thread_name, name_of_thread_running_next_task, PATIENCE};
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use workpool::Pool;

/// Submits a task that panics, and returns the name of the thread it ran on.
fn name_of_thread_running_panicking_task(pool: &Pool) -> String {
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        tx.send(current_thread_name()).unwrap();
        panic!("{INTENTIONAL}: task");
    })
    .unwrap();
    rx.recv_timeout(PATIENCE).expect("the task did not run")
}

/// A one-worker pool whose handler forwards every payload to the receiver.
fn pool_forwarding_payloads(name: &str) -> (Pool, mpsc::Receiver<Box<dyn Any + Send>>) {
    let (tx, rx) = mpsc::channel();
    let pool = Pool::builder()
        .capacity(1)
        .thread_name(name)
        .panic_handler(move |payload| tx.send(payload).unwrap())
        .build()
        .unwrap();
    (pool, rx)
}

#[test]
fn panic_handler_gets_a_formatted_message_payload() {
    quiet_intentional_panics();
    let (pool, payloads) = pool_forwarding_payloads("fmt");
    pool.submit(|| panic!("{INTENTIONAL}: boom {}", 42))
        .unwrap();
    let payload = payloads.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("intentional: boom 42")
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn panic_handler_gets_a_literal_message_payload() {
    quiet_intentional_panics();
    let (pool, payloads) = pool_forwarding_payloads("literal");
    pool.submit(|| panic!("intentional: literal")).unwrap();
    let payload = payloads.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        payload.downcast_ref::<&'static str>(),
        Some(&"intentional: literal")
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn panic_handler_gets_a_custom_payload() {
    quiet_intentional_panics();
    let (pool, payloads) = pool_forwarding_payloads("custom");
    pool.submit(|| std::panic::panic_any(Code(7))).unwrap();
    let payload = payloads.recv_timeout(PATIENCE).unwrap();
    assert_eq!(payload.downcast_ref::<Code>(), Some(&Code(7)));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn worker_lives_on_after_a_panic_and_runs_the_next_task() {
    quiet_intentional_panics();
    let (pool, payloads) = pool_forwarding_payloads("survivor");
    assert_eq!(name_of_thread_running_panicking_task(&pool), "survivor-0");
    payloads.recv_timeout(PATIENCE).unwrap();
    // One worker of capacity 1: a replacement thread would be "survivor-1".
    assert_eq!(name_of_thread_running_next_task(&pool), "survivor-0");
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.panicked(), 1);
    assert!(!pool.is_closed());
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn panic_in_handler_is_caught_and_pool_lives_on() {
    quiet_intentional_panics();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let pool = Pool::builder()
        .capacity(1)
        .thread_name("fragile")
        .panic_handler(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            panic!("{INTENTIONAL}: handler");
        })
        .build()
        .unwrap();
    for round in 1..=2 {
        assert_eq!(name_of_thread_running_panicking_task(&pool), "fragile-0");
        // The handler runs on the worker before it takes the next task.
        assert_eq!(name_of_thread_running_next_task(&pool), "fragile-0");
        assert_eq!(calls.load(Ordering::SeqCst), round);
        assert_eq!(pool.panicked(), round);
    }
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn default_handler_logs_and_pool_lives_on() {
    quiet_intentional_panics();
    let pool = Pool::builder()
        .capacity(1)
        .thread_name("plain")
        .build()
        .unwrap();
    assert_eq!(name_of_thread_running_panicking_task(&pool), "plain-0");
    assert_eq!(name_of_thread_running_next_task(&pool), "plain-0");
    assert_eq!(pool.panicked(), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn panics_interleaved_with_normal_tasks_are_each_handled_once() {
    quiet_intentional_panics();
    let handled = Arc::new(AtomicUsize::new(0));
    let normal = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handled);
    let pool = Pool::builder()
        .capacity(4)
        .panic_handler(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    for i in 0..200 {
        if i % 2 == 0 {
            pool.submit(move || panic!("{INTENTIONAL}: task {i}"))
                .unwrap();
        } else {
            let normal = Arc::clone(&normal);
            pool.submit(move || {
                normal.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    }
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(normal.load(Ordering::SeqCst), 100);
    assert_eq!(handled.load(Ordering::SeqCst), 100);
    assert_eq!(pool.panicked(), 100);
}

#[test]
fn panicked_counts_only_panics() {
    quiet_intentional_panics();
    let pool = Pool::builder()
        .capacity(2)
        .panic_handler(|_| ())
        .build()
        .unwrap();
    for _ in 0..5 {
        pool.submit(|| ()).unwrap();
    }
    for _ in 0..3 {
        pool.submit(|| panic!("{INTENTIONAL}: counted")).unwrap();
    }
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(pool.panicked(), 3);
}
