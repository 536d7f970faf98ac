//! A `tracing` subscriber that panics on every error event, installed for
//! the whole process (so this file is a test binary of its own): the pool's
//! default panic handler logs through it, and the panic that escapes the log
//! line must not take the worker down or leave `release_timeout` waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use workpool::Pool;

struct PanicsOnError {
    events: Arc<AtomicUsize>,
}

impl Subscriber for PanicsOnError {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::ERROR {
            self.events.fetch_add(1, Ordering::SeqCst);
            panic!("the subscriber panicked");
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Regression (a panic outside the task's `catch_unwind` skipped the thread's
/// accounting, so `release_timeout` then timed out for ever). The worker
/// lives on (the same thread runs the next tasks) and the counts are right,
/// for a submitted task and for a spawned one whose handle was dropped (its
/// panic goes to the panic handler too).
#[test]
fn a_panicking_subscriber_in_the_default_panic_handler_harms_nothing() {
    let events = Arc::new(AtomicUsize::new(0));
    let subscriber = PanicsOnError {
        events: Arc::clone(&events),
    };
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let pool = Pool::builder()
        .capacity(1)
        .thread_name("subscriber")
        .build()
        .unwrap();
    let next_task_thread = || {
        let (tx, rx) = mpsc::channel();
        pool.submit(move || tx.send(current_thread_name()).unwrap())
            .unwrap();
        rx.recv_timeout(PATIENCE)
            .expect("the worker lives on and runs the next task")
    };
    pool.submit(|| panic!("a task panicked")).unwrap();
    assert_eq!(next_task_thread(), "subscriber-0");
    assert_eq!(pool.panicked(), 1);
    assert_eq!(events.load(Ordering::SeqCst), 1);

    let (go, wait) = mpsc::channel::<()>();
    let handle = pool
        .spawn(move || -> u32 {
            wait.recv().unwrap();
            panic!("a spawned task panicked")
        })
        .unwrap();
    drop(handle);
    go.send(()).unwrap();
    assert_eq!(next_task_thread(), "subscriber-0");
    assert_eq!(pool.panicked(), 2);
    assert_eq!(events.load(Ordering::SeqCst), 2);

    pool.wait_idle(PATIENCE).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.panicked,
            stats.cancelled
        ),
        (4, 2, 2, 0)
    );
    assert_eq!((pool.workers(), stats.workers_started), (1, 1));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

fn current_thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

const PATIENCE: Duration = Duration::from_secs(30);
