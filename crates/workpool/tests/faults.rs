//! Faults from outside the pool's own code: a panic handler, an
//! `on_complete` callback, a captured value's `Drop` or a `tracing`
//! subscriber that panics; a task that never ends; and the OS refusing to
//! make threads (for real, under a lowered `RLIMIT_NPROC`, in a child
//! process). Each time the worker lives on, the counts stay right, and
//! every thread the pool can still end, ends.
//!
//! The thread-creation faults injected at will (a test-only spawn hook) are
//! unit tests beside the code: `src/pool/threads.rs`.
// `libc::setrlimit`, `setuid` and friends, in the child process only.
#![allow(unsafe_code)]

mod common;

use common::{message, quiet_intentional_panics, INTENTIONAL};

use common::{current_thread_name, name_of_thread_running_next_task, wait_until, Gate, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use workpool::{Pool, PoolError, TaskError};

/// A one-worker pool whose panic handler keeps every payload's message.
fn pool_keeping_panics(name: &str) -> (Pool, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    let pool = Pool::builder()
        .capacity(1)
        .thread_name(name)
        .panic_handler(move |payload| {
            let text = message(&*payload).unwrap_or("?").to_owned();
            kept.lock().unwrap().push(text);
        })
        .build()
        .unwrap();
    (pool, seen)
}

/// A value whose `Drop` panics.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{INTENTIONAL}: drop of {}", self.0);
    }
}

/// The pool's counts once it is idle: (submitted, completed, panicked,
/// cancelled).
fn counts(pool: &Pool) -> (u64, u64, u64, u64) {
    pool.wait_idle(PATIENCE).unwrap();
    let stats = pool.stats();
    (
        stats.submitted,
        stats.completed,
        stats.panicked,
        stats.cancelled,
    )
}

#[test]
fn a_panicking_panic_handler_leaves_the_worker_and_the_counts_right() {
    quiet_intentional_panics();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let pool = Pool::builder()
        .capacity(1)
        .thread_name("f-handler")
        .panic_handler(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            panic!("{INTENTIONAL}: the handler");
        })
        .build()
        .unwrap();
    pool.submit(|| panic!("{INTENTIONAL}: a task")).unwrap();
    assert_eq!(name_of_thread_running_next_task(&pool), "f-handler-0");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(pool.panicked(), 1, "the task's panic, counted once");
    assert_eq!(counts(&pool), (2, 1, 1, 0));
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// The callback's panic goes to the panic handler and counts in
/// `panicked` (as `Stats::panicked` says); the task itself completed and
/// its handle has its value.
#[test]
fn a_panicking_on_complete_callback_leaves_the_worker_and_the_counts_right() {
    quiet_intentional_panics();
    let (pool, seen) = pool_keeping_panics("f-callback");
    let handle = pool
        .task(|_| 7)
        .on_complete(|result| {
            assert!(matches!(result, Ok(7)));
            panic!("{INTENTIONAL}: the callback");
        })
        .spawn()
        .unwrap();
    assert_eq!(handle.join().unwrap(), 7);
    assert_eq!(name_of_thread_running_next_task(&pool), "f-callback-0");
    assert_eq!(*seen.lock().unwrap(), ["intentional: the callback"]);
    assert_eq!(pool.panicked(), 1);
    assert_eq!(counts(&pool), (2, 2, 1, 0));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// A `submit` closure's captured value is dropped at the end of its call,
/// on the worker: its panic is the task's.
#[test]
fn a_panicking_drop_of_a_submitted_tasks_capture_is_the_tasks_panic() {
    quiet_intentional_panics();
    let (pool, seen) = pool_keeping_panics("f-drop-submit");
    let bomb = PanicsOnDrop("a submitted task's capture");
    pool.submit(move || {
        let _ = &bomb;
    })
    .unwrap();
    assert_eq!(name_of_thread_running_next_task(&pool), "f-drop-submit-0");
    assert_eq!(
        *seen.lock().unwrap(),
        ["intentional: drop of a submitted task's capture"]
    );
    assert_eq!(pool.panicked(), 1);
    assert_eq!(counts(&pool), (2, 1, 1, 0));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// A `spawn` closure's capture panicking on drop: the handle says the task
/// panicked, with that message.
#[test]
fn a_panicking_drop_of_a_spawned_tasks_capture_reaches_its_handle() {
    quiet_intentional_panics();
    let (pool, seen) = pool_keeping_panics("f-drop-spawn");
    let bomb = PanicsOnDrop("a spawned task's capture");
    let handle = pool
        .spawn(move || {
            let _ = &bomb;
            5
        })
        .unwrap();
    let error = handle.join().unwrap_err();
    assert_eq!(
        error.panic_message(),
        Some("intentional: drop of a spawned task's capture")
    );
    assert_eq!(name_of_thread_running_next_task(&pool), "f-drop-spawn-0");
    assert!(seen.lock().unwrap().is_empty(), "the handle got the panic");
    assert_eq!(pool.panicked(), 1);
    assert_eq!(counts(&pool), (2, 1, 1, 0));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// A spawned task's result that panics on drop, its handle dropped before
/// the task ended: the result is dropped on the worker, and its panic goes
/// to the panic handler.
#[test]
fn a_panicking_drop_of_an_unjoined_result_goes_to_the_panic_handler() {
    quiet_intentional_panics();
    let (pool, seen) = pool_keeping_panics("f-drop-result");
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let handle = pool
        .spawn(move || {
            held.wait();
            PanicsOnDrop("an unjoined result")
        })
        .unwrap();
    gate.await_arrivals(1);
    drop(handle);
    gate.open();
    assert_eq!(name_of_thread_running_next_task(&pool), "f-drop-result-0");
    assert_eq!(
        *seen.lock().unwrap(),
        ["intentional: drop of an unjoined result"]
    );
    assert_eq!(pool.panicked(), 1);
    assert_eq!(counts(&pool), (2, 1, 1, 0));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// Cancelling a queued task drops its closure on the cancelling thread:
/// the panic of a capture's `Drop` is caught there, and counted.
#[test]
fn a_panicking_drop_of_a_cancelled_tasks_capture_does_not_escape_cancel() {
    quiet_intentional_panics();
    let (pool, _seen) = pool_keeping_panics("f-drop-cancel");
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    let bomb = PanicsOnDrop("a cancelled task's capture");
    let handle = pool
        .spawn(move || {
            let _ = &bomb;
        })
        .unwrap();
    assert!(handle.cancel(), "cancelled before it started");
    assert!(matches!(handle.join(), Err(TaskError::Cancelled)));
    gate.open();
    assert_eq!(name_of_thread_running_next_task(&pool), "f-drop-cancel-0");
    assert_eq!(pool.panicked(), 1);
    // The drop's panic is counted beside the cancellation.
    assert_eq!(counts(&pool), (3, 2, 1, 1));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// A subscriber that panics on every event.
struct PanicsOnEveryEvent {
    events: Arc<AtomicUsize>,
}

impl Subscriber for PanicsOnEveryEvent {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        self.events.fetch_add(1, Ordering::SeqCst);
        panic!("{INTENTIONAL}: the subscriber");
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Regression (`tune` and `release` wrote their log line while they still
/// held workers taken off the idle list and not yet told to exit: a
/// subscriber that panicked there left those workers parked for ever, so
/// `release_timeout` timed out and their threads leaked; `reboot` logged
/// before it started the purge thread and the min_workers). A subscriber
/// panicking on the caller's thread (this one, as its default) no longer
/// escapes the calls, and the pool ends whole.
#[test]
fn a_panicking_subscriber_harms_neither_tune_nor_release_nor_reboot() {
    quiet_intentional_panics();
    let pool = Pool::builder()
        .capacity(3)
        .min_workers(3)
        .thread_name("f-subscriber")
        .build()
        .unwrap();
    wait_until("the min_workers are idle", || pool.idle() == 3);
    let events = Arc::new(AtomicUsize::new(0));
    let subscriber = PanicsOnEveryEvent {
        events: Arc::clone(&events),
    };
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(pool.tune(1), Ok(()));
        assert_eq!(pool.workers(), 1, "two idle workers retired");
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        assert_eq!(pool.workers(), 0);
        assert_eq!(pool.reboot(), Ok(()));
        assert!(!pool.is_closed());
    });
    assert!(
        events.load(Ordering::SeqCst) >= 3,
        "the subscriber was called"
    );
    assert_eq!(pool.workers(), 1, "min_workers, under the tuned capacity");
    assert_eq!(name_of_thread_running_next_task(&pool), "f-subscriber-3");
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// Threads of this process whose name starts with `prefix` (Linux shows
/// the first 15 bytes of a name).
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(prefix))
        .count()
}

/// A task that never ends: `release_timeout` gives up in time, and every
/// other thread of the pool (idle workers, the purge thread) exits; only
/// the stuck worker is still counted.
#[test]
fn a_task_that_never_ends_leaves_release_timeout_on_time_and_the_rest_shut_down() {
    let pool = Pool::builder()
        .capacity(4)
        .thread_name("f-stuck")
        .build()
        .unwrap();
    let (unstick, stuck) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    pool.submit(move || {
        started_tx.send(current_thread_name()).unwrap();
        // Never ends while the test looks: nothing is sent until the end.
        let _ = stuck.recv();
    })
    .unwrap();
    let stuck_name = started.recv_timeout(PATIENCE).unwrap();
    // Three more workers, idle once their tasks end.
    let gate = Gate::new();
    for _ in 0..3 {
        let gate = Arc::clone(&gate);
        pool.submit(move || gate.wait()).unwrap();
    }
    gate.await_arrivals(3);
    gate.open();
    wait_until("three workers are idle", || pool.idle() == 3);
    assert_eq!(pool.workers(), 4);

    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    assert_eq!(pool.release_timeout(timeout), Err(PoolError::Timeout));
    let took = started.elapsed();
    assert!(took >= timeout, "gave up early, after {took:?}");
    assert!(
        took < timeout + Duration::from_millis(700),
        "gave up late, after {took:?}"
    );
    assert_eq!((pool.workers(), pool.idle()), (1, 0), "only the stuck one");
    #[cfg(target_os = "linux")]
    {
        wait_until("the other threads of the pool exit", || {
            threads_named("f-stuck") == 1
        });
        assert!(stuck_name.starts_with("f-stuck-"));
    }
    assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
    assert_eq!(pool.release_timeout(timeout), Err(PoolError::Closed));

    // Once it ends after all, its worker exits too.
    drop(unstick);
    wait_until("the stuck worker exits", || pool.workers() == 0);
    #[cfg(target_os = "linux")]
    wait_until("no thread of the pool is left", || {
        threads_named("f-stuck") == 0
    });
}

// ---- the OS refusing threads for real: RLIMIT_NPROC in a child ----

#[cfg(target_os = "linux")]
mod nproc {
    use super::{Gate, Pool, PoolError, PATIENCE};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const CHILD: &str = "WORKPOOL_FAULTS_NPROC_CHILD";
    /// `nobody`: root is exempt from `RLIMIT_NPROC`, so a root child
    /// drops to this user first.
    const NOBODY: u32 = 65534;
    /// New threads the lowered limit leaves the child.
    const HEADROOM: u64 = 6;

    fn nproc_limit() -> libc::rlimit {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `getrlimit` writes the limit into the struct we own.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) };
        assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
        limit
    }

    fn set_nproc_limit(soft: u64, hard: u64) -> std::io::Result<()> {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `setrlimit` only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &limit) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Threads (tasks) of every process whose real user is `uid`: what
    /// `RLIMIT_NPROC` counts.
    fn tasks_of_user(uid: u32) -> u64 {
        let mut count = 0;
        for process in std::fs::read_dir("/proc").unwrap().flatten() {
            // Processes only (`self` is one of them again).
            if !process
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let Ok(tasks) = std::fs::read_dir(process.path().join("task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let status = std::fs::read_to_string(task.path().join("status"));
                let real = status.ok().and_then(|status| {
                    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
                    line.split_whitespace().nth(1)?.parse::<u32>().ok()
                });
                if real == Some(uid) {
                    count += 1;
                }
            }
        }
        count
    }

    /// Makes `RLIMIT_NPROC` bite this process: as root, which it spares,
    /// by dropping to `nobody`. Gives the user it now runs as, or why not.
    fn become_limited() -> Result<u32, String> {
        // SAFETY: plain calls without pointers (`setgroups` with none).
        unsafe {
            if libc::getuid() != 0 {
                return Ok(libc::getuid());
            }
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                return Err(format!(
                    "running as root, which RLIMIT_NPROC spares, and could not drop to \
                     uid {NOBODY}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(libc::getuid())
        }
    }

    /// The OS refuses threads for real: past a lowered `RLIMIT_NPROC`,
    /// `submit` gets `SpawnFailed` at the call, every task accepted before
    /// runs, and once the limit is raised again new tasks get workers.
    #[test]
    fn threads_refused_by_rlimit_nproc_come_back_as_spawn_failed() {
        if std::env::var_os(CHILD).is_none() {
            let output = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "nproc::threads_refused_by_rlimit_nproc_come_back_as_spawn_failed",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .output()
                .expect("the child runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "the child failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                output.status
            );
            if let Some(line) = stdout.lines().find(|l| l.contains("SKIPPED")) {
                eprintln!("\n!!! RLIMIT_NPROC fault test {line}\n");
                return;
            }
            assert!(stdout.contains("NPROC CHILD DONE"), "{stdout}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            println!(
                "{}",
                stdout
                    .lines()
                    .find(|l| l.contains("accepted"))
                    .unwrap_or("")
            );
            return;
        }

        // The child.
        let original = nproc_limit();
        let uid = match become_limited() {
            Ok(uid) => uid,
            Err(why) => {
                println!("SKIPPED: {why}");
                return;
            }
        };
        let allowed = tasks_of_user(uid) + HEADROOM;
        if let Err(e) = set_nproc_limit(allowed.min(original.rlim_max), original.rlim_max) {
            println!("SKIPPED: could not lower RLIMIT_NPROC: {e}");
            return;
        }

        let pool = Pool::builder()
            .capacity(1000)
            .thread_name("nproc")
            .disable_purge(true)
            .build()
            .unwrap();
        let gate = Gate::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let held_task = |gate: &Arc<Gate>, ran: &Arc<AtomicUsize>| {
            let (gate, ran) = (Arc::clone(gate), Arc::clone(ran));
            move || {
                gate.wait();
                ran.fetch_add(1, Ordering::SeqCst);
            }
        };
        // Every task holds its worker, so each one needs a new thread.
        let mut accepted = 0;
        let refusal = loop {
            match pool.submit(held_task(&gate, &ran)) {
                Ok(()) => accepted += 1,
                Err(error) => break error,
            }
            assert!(accepted < 200, "RLIMIT_NPROC refused no thread");
        };
        let PoolError::SpawnFailed(refused) = &refusal else {
            panic!("expected SpawnFailed, got {refusal:?}");
        };
        // EAGAIN, kept as the OS gave it.
        assert_eq!(refused.raw_os_error(), Some(11), "{refused}");
        assert!(std::error::Error::source(&refusal).is_some());
        assert!(accepted >= 1, "the limit left room for {HEADROOM} threads");
        assert_eq!((pool.workers(), pool.queued()), (accepted, 0));
        assert_eq!(pool.stats().rejected, 1);
        // Tried again while the limit holds: refused again, nothing queued.
        assert!(matches!(pool.submit(|| ()), Err(PoolError::SpawnFailed(_))));
        // Every accepted task runs.
        gate.await_arrivals(accepted);
        gate.open();
        pool.wait_idle(PATIENCE).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), accepted);

        // The soft limit back up to the hard one: new threads again.
        set_nproc_limit(original.rlim_max, original.rlim_max).unwrap();
        let gate = Gate::new();
        let more = accepted + 4;
        for _ in 0..more {
            pool.submit(held_task(&gate, &ran)).unwrap();
        }
        gate.await_arrivals(more);
        assert_eq!(pool.workers(), more, "4 new threads beside the old ones");
        gate.open();
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), accepted + more);
        let stats = pool.stats();
        assert_eq!(
            (stats.submitted, stats.completed, stats.rejected),
            ((accepted + more) as u64, (accepted + more) as u64, 2)
        );
        println!("uid {uid}: {accepted} tasks accepted under RLIMIT_NPROC {allowed}");
        println!("NPROC CHILD DONE");
    }
}
