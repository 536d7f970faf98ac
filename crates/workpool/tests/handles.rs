//! Task handles: results come back right, a panic comes back as
//! `TaskError::Panicked` with its message (or, for a detached handle, goes to
//! the panic handler), and `on_complete` runs on the worker before `join`
//! returns.

mod common;

use common::{message, quiet_intentional_panics, Code, INTENTIONAL};

use common::{Gate, PATIENCE};
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use workpool::{Pool, PoolBuilder, TaskError};

/// A builder whose panic handler counts its calls and forwards each payload.
fn counting_handler(
    builder: PoolBuilder,
) -> (
    PoolBuilder,
    Arc<AtomicUsize>,
    mpsc::Receiver<Box<dyn Any + Send>>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let counted = Arc::clone(&calls);
    let tx = Mutex::new(tx);
    let builder = builder.panic_handler(move |payload| {
        counted.fetch_add(1, Ordering::SeqCst);
        let _ = tx.lock().unwrap().send(payload);
    });
    (builder, calls, rx)
}

#[test]
fn ten_thousand_handles_join_with_their_results() {
    let pool = Pool::builder().capacity(4).build().unwrap();
    let handles: Vec<_> = (0..10_000u64)
        .map(|i| pool.spawn(move || i * i + 1).unwrap())
        .collect();
    for (i, handle) in (0..10_000u64).zip(handles) {
        assert_eq!(handle.join().unwrap(), i * i + 1, "task {i}");
    }
    assert_eq!(pool.panicked(), 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn handles_carry_results_of_any_type() {
    let pool = Pool::new(2).unwrap();
    let text = pool.spawn(|| String::from("owned text")).unwrap();
    let vector = pool.spawn(|| vec![1u8, 2, 3]).unwrap();
    let unit = pool.spawn(|| ()).unwrap();
    let result = pool.spawn(|| "7".parse::<u32>()).unwrap();
    assert_eq!(text.join().unwrap(), "owned text");
    assert_eq!(vector.join().unwrap(), [1, 2, 3]);
    unit.join().unwrap();
    assert_eq!(result.join().unwrap(), Ok(7));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn wait_timeout_and_is_finished_follow_the_task() {
    let pool = Pool::new(1).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let handle = pool
        .spawn(move || {
            held.wait();
            "done"
        })
        .unwrap();
    gate.await_arrivals(1);
    assert!(!handle.is_finished());
    assert!(!handle.wait_timeout(Duration::from_millis(20)));
    assert!(!handle.is_finished());
    gate.open();
    assert!(handle.wait_timeout(PATIENCE));
    assert!(handle.is_finished());
    assert_eq!(handle.join().unwrap(), "done");
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_panicking_task_s_handle_says_panicked_with_its_message() {
    quiet_intentional_panics();
    let (builder, handler_calls, _payloads) = counting_handler(Pool::builder().capacity(1));
    let pool = builder.build().unwrap();

    let handle = pool
        .spawn(|| -> u32 { panic!("{INTENTIONAL}: no answer {}", 42) })
        .unwrap();
    let error = handle.join().unwrap_err();
    assert!(error.is_panic());
    assert!(!error.is_cancelled());
    assert!(!error.is_deadline());
    assert_eq!(error.panic_message(), Some("intentional: no answer 42"));
    assert_eq!(
        error.to_string(),
        "the task panicked: intentional: no answer 42"
    );
    assert!(format!("{error:?}").contains("intentional: no answer 42"));
    // The panic is the handle's: counted, but not handed to the handler.
    assert_eq!(pool.panicked(), 1);
    assert_eq!(handler_calls.load(Ordering::SeqCst), 0);

    // The payload is the value the task panicked with.
    let payload = error.into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("intentional: no answer 42")
    );

    // The pool (and its one worker) lives on.
    assert_eq!(pool.spawn(|| 7).unwrap().join().unwrap(), 7);
    assert_eq!(pool.panicked(), 1);
    assert_eq!(handler_calls.load(Ordering::SeqCst), 0);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_static_str_panic_and_a_non_string_payload_are_reported() {
    quiet_intentional_panics();
    let pool = Pool::new(1).unwrap();
    let error = pool
        .spawn(|| panic!("intentional: static"))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(error.panic_message(), Some("intentional: static"));
    assert_eq!(error.to_string(), "the task panicked: intentional: static");

    let error = pool
        .spawn(|| std::panic::panic_any(Code(7)))
        .unwrap()
        .join()
        .unwrap_err();
    assert!(error.is_panic());
    assert_eq!(error.panic_message(), None);
    assert_eq!(
        error.to_string(),
        "the task panicked with a payload that is not a string"
    );
    let payload = error.try_into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<Code>(), Some(&Code(7)));
    assert_eq!(pool.panicked(), 2);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_detached_handle_s_panic_goes_to_the_panic_handler() {
    quiet_intentional_panics();
    let (builder, handler_calls, payloads) = counting_handler(Pool::builder().capacity(1));
    let pool = builder.build().unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let handle = pool
        .spawn(move || {
            held.wait();
            panic!("{INTENTIONAL}: nobody joins me");
        })
        .unwrap();
    gate.await_arrivals(1);
    // Detached while the task runs: nobody can join its panic any more.
    drop(handle);
    gate.open();

    let payload = payloads.recv_timeout(PATIENCE).expect("the handler got it");
    assert_eq!(message(&*payload), Some("intentional: nobody joins me"));
    assert_eq!(handler_calls.load(Ordering::SeqCst), 1);
    assert_eq!(pool.panicked(), 1);

    // The pool lives on.
    assert_eq!(pool.spawn(|| 8).unwrap().join().unwrap(), 8);
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(handler_calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_joined_handle_s_panic_does_not_reach_the_panic_handler() {
    quiet_intentional_panics();
    let (builder, handler_calls, _payloads) = counting_handler(Pool::builder().capacity(2));
    let pool = builder.build().unwrap();
    let handles: Vec<_> = (0..10)
        .map(|i| pool.spawn(move || panic!("{INTENTIONAL}: {i}")).unwrap())
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let error = handle.join().unwrap_err();
        assert_eq!(
            error.panic_message(),
            Some(format!("intentional: {i}").as_str())
        );
    }
    assert_eq!(pool.panicked(), 10);
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(handler_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn on_complete_runs_on_the_worker_with_the_result_before_join_returns() {
    let pool = Pool::builder()
        .capacity(1)
        .thread_name("oncomplete")
        .build()
        .unwrap();
    // The callback's thread, and the value it was given.
    type Seen = Option<(String, Option<u32>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = Arc::clone(&seen);
    let handle = pool
        .task(|_token| 6 * 7)
        .on_complete(move |result| {
            let thread = thread::current().name().unwrap_or("").to_owned();
            *record.lock().unwrap() = Some((thread, result.as_ref().ok().copied()));
        })
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), 42);
    // Already there when join returned: the callback ran first.
    let (thread, value) = seen.lock().unwrap().take().expect("the callback ran");
    assert_eq!(value, Some(42));
    assert!(
        thread.starts_with("oncomplete-"),
        "the callback ran on {thread:?}, not on a worker"
    );
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn on_complete_sees_a_panic_of_its_task() {
    quiet_intentional_panics();
    let pool = Pool::new(1).unwrap();
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let handle = pool
        .task(|_token| -> u32 { panic!("{INTENTIONAL}: seen by the callback") })
        .on_complete(move |result: &Result<u32, TaskError>| {
            let error = result.as_ref().unwrap_err();
            *record.lock().unwrap() = Some(error.panic_message().map(str::to_owned));
        })
        .spawn()
        .unwrap();
    let error = handle.join().unwrap_err();
    assert_eq!(
        error.panic_message(),
        Some("intentional: seen by the callback")
    );
    assert_eq!(
        seen.lock().unwrap().take(),
        Some(Some("intentional: seen by the callback".to_owned()))
    );
    assert_eq!(pool.panicked(), 1);
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_panicking_on_complete_is_caught_counted_and_the_pool_lives_on() {
    quiet_intentional_panics();
    let (builder, handler_calls, payloads) = counting_handler(Pool::builder().capacity(1));
    let pool = builder.build().unwrap();
    let handle = pool
        .task(|_token| 5)
        .on_complete(|_result| panic!("{INTENTIONAL}: callback"))
        .spawn()
        .unwrap();
    // The task's own result is unharmed.
    assert_eq!(handle.join().unwrap(), 5);
    assert_eq!(pool.panicked(), 1);
    let payload = payloads.recv_timeout(PATIENCE).expect("the handler got it");
    assert_eq!(message(&*payload), Some("intentional: callback"));
    assert_eq!(handler_calls.load(Ordering::SeqCst), 1);

    // The worker and the pool live on.
    assert_eq!(pool.spawn(|| 6).unwrap().join().unwrap(), 6);
    assert_eq!(pool.workers(), 1);
    pool.release_timeout(PATIENCE).unwrap();
}
