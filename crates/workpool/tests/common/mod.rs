//! Helpers shared by the integration tests: a gate that holds tasks until the
//! test lets them go, a probe that tells whether a task ran or was dropped,
//! a submit that runs on its own thread so the test can watch it block, and
//! polling with a deadline for conditions that only become true eventually.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use workpool::{Pool, PoolError};

/// How long a test waits for something that must happen eventually. Generous:
/// the tests run in parallel on two loaded cores.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// How long a test gives a call that takes a timeout (`release_timeout`,
/// `recv_timeout`), or a condition it polls with [`wait_until_within`], where
/// [`DEADLINE`] would be too short.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// An expiry long enough that no idle worker expires while a test runs.
pub(crate) const NEVER: Duration = Duration::from_secs(600);

/// Polls `condition` every millisecond until it holds; fails the test if it
/// still does not after [`DEADLINE`].
#[track_caller]
pub(crate) fn wait_until(what: &str, condition: impl Fn() -> bool) {
    wait_until_within(DEADLINE, what, condition);
}

/// [`wait_until`] with a deadline of `limit`.
#[track_caller]
pub(crate) fn wait_until_within(limit: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Checks `condition` every few milliseconds for `period` and fails the test
/// the first time it does not hold. For "nothing changes while time passes",
/// where waiting is the point of the test.
#[track_caller]
pub(crate) fn holds_throughout(period: Duration, what: &str, condition: impl Fn() -> bool) {
    let end = Instant::now() + period;
    loop {
        assert!(condition(), "{what} stopped holding");
        if Instant::now() >= end {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A gate that tasks wait at until the test lets them through, one at a time
/// or all at once. It counts the tasks that reached it, so the test knows
/// when they are all running.
#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    arrived: usize,
    passed: usize,
    permits: usize,
    open: bool,
}

impl Gate {
    pub(crate) fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    /// Called by a task: blocks until the test lets one task through or opens
    /// the gate.
    pub(crate) fn wait(&self) {
        let mut state = self.state.lock().unwrap();
        state.arrived += 1;
        self.changed.notify_all();
        while !state.open && state.permits == 0 {
            state = self.changed.wait(state).unwrap();
        }
        if !state.open {
            state.permits -= 1;
        }
        state.passed += 1;
        self.changed.notify_all();
    }

    /// Lets `n` more tasks through (now, or as they arrive).
    pub(crate) fn let_through(&self, n: usize) {
        self.state.lock().unwrap().permits += n;
        self.changed.notify_all();
    }

    /// Lets every task through, now and from now on.
    pub(crate) fn open(&self) {
        self.state.lock().unwrap().open = true;
        self.changed.notify_all();
    }

    /// Tasks that have reached the gate so far (passed or still waiting).
    pub(crate) fn arrived(&self) -> usize {
        self.state.lock().unwrap().arrived
    }

    /// Tasks that have gone through the gate so far.
    pub(crate) fn passed(&self) -> usize {
        self.state.lock().unwrap().passed
    }

    /// Blocks until `n` tasks have reached the gate; fails the test after
    /// [`DEADLINE`].
    #[track_caller]
    pub(crate) fn await_arrivals(&self, n: usize) {
        self.await_count(n, |s| s.arrived, "reached the gate");
    }

    /// Blocks until `n` tasks have gone through the gate; fails the test after
    /// [`DEADLINE`].
    #[track_caller]
    pub(crate) fn await_passed(&self, n: usize) {
        self.await_count(n, |s| s.passed, "gone through the gate");
    }

    #[track_caller]
    fn await_count(&self, n: usize, count: fn(&GateState) -> usize, what: &str) {
        let state = self.state.lock().unwrap();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, DEADLINE, |s| count(s) < n)
            .unwrap();
        let got = count(&state);
        assert!(
            got >= n,
            "only {got} of {n} tasks {what} within {DEADLINE:?}"
        );
    }
}

/// Tells whether the tasks made from it ran, how often, and whether they
/// have been dropped.
#[derive(Clone, Default)]
pub(crate) struct Probe {
    runs: Arc<AtomicUsize>,
}

impl Probe {
    pub(crate) fn new() -> Probe {
        Probe::default()
    }

    /// A task that records its run.
    pub(crate) fn task(&self) -> impl FnOnce() + Send + 'static {
        let runs = Arc::clone(&self.runs);
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A task that waits at `gate`, then records its run.
    pub(crate) fn task_behind(&self, gate: &Arc<Gate>) -> impl FnOnce() + Send + 'static {
        let runs = Arc::clone(&self.runs);
        let gate = Arc::clone(gate);
        move || {
            gate.wait();
            runs.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many times its tasks have run.
    pub(crate) fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// Whether every task made from this probe (and every clone of it but
    /// this one) has been dropped: a dropped task can never run.
    pub(crate) fn all_tasks_dropped(&self) -> bool {
        Arc::strong_count(&self.runs) == 1
    }

    /// Waits until its tasks have run `n` times; fails the test after
    /// [`DEADLINE`].
    #[track_caller]
    pub(crate) fn await_runs(&self, n: usize) {
        wait_until(&format!("the probe's tasks ran {n} times"), || {
            self.runs() >= n
        });
    }
}

/// A call (typically a `submit`) made on a thread of its own, so that the
/// test can see whether it is still blocked.
pub(crate) struct Pending {
    outcome: Receiver<Result<(), PoolError>>,
    thread: thread::JoinHandle<()>,
}

impl Pending {
    /// Starts `call` on a new thread.
    pub(crate) fn start(call: impl FnOnce() -> Result<(), PoolError> + Send + 'static) -> Pending {
        let (tx, outcome) = mpsc::channel();
        let thread = thread::spawn(move || {
            let _ = tx.send(call());
        });
        Pending { outcome, thread }
    }

    /// Fails the test if the call has returned.
    #[track_caller]
    pub(crate) fn assert_blocked(&self) {
        match self.outcome.try_recv() {
            Err(TryRecvError::Empty) => {}
            Ok(result) => panic!("the call returned {result:?} while it should be blocked"),
            Err(TryRecvError::Disconnected) => panic!("the calling thread panicked"),
        }
    }

    /// Waits for the call to return and gives its result; fails the test
    /// after [`DEADLINE`].
    #[track_caller]
    pub(crate) fn outcome(self) -> Result<(), PoolError> {
        let result = self
            .outcome
            .recv_timeout(DEADLINE)
            .expect("the call did not return in time");
        self.thread.join().expect("the calling thread panicked");
        result
    }
}

/// Runs `call` on a thread of its own and gives its result; fails the test if
/// it has not returned within [`DEADLINE`] (a call that should never block
/// turns into a failure, not a hung test).
#[track_caller]
pub(crate) fn returns_promptly(
    call: impl FnOnce() -> Result<(), PoolError> + Send + 'static,
) -> Result<(), PoolError> {
    Pending::start(call).outcome()
}

/// The name of the thread this runs on, `<unnamed>` for a thread without one.
pub(crate) fn current_thread_name() -> String {
    thread::current().name().unwrap_or("<unnamed>").to_owned()
}

/// Runs one task on `pool` and returns the name of the thread it ran on; fails
/// the test if the task has not reported within [`PATIENCE`].
#[track_caller]
pub(crate) fn name_of_thread_running_next_task(pool: &Pool) -> String {
    let (tx, rx) = mpsc::channel();
    pool.submit(move || tx.send(current_thread_name()).unwrap())
        .unwrap();
    rx.recv_timeout(PATIENCE).expect("the task did not run")
}

/// Every panic the tests cause on purpose says this first (or panics with
/// a [`Code`]).
pub(crate) const INTENTIONAL: &str = "intentional";

/// A panic payload that is neither `&str` nor `String`.
#[derive(Debug, PartialEq)]
pub(crate) struct Code(pub(crate) u32);

/// Keeps the std hook from printing the panics caused on purpose; every other
/// panic (a failing assertion, say) is printed as usual. The hook is global to
/// the test binary, so it is installed once and never removed.
pub(crate) fn quiet_intentional_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let intentional = payload.is::<Code>()
                || message(payload).is_some_and(|m| m.starts_with(INTENTIONAL));
            if !intentional {
                print(info);
            }
        }));
    });
}

/// The message of a panic payload, if it is a string.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

/// Occupies a worker of `pool` with a plain task that waits at a new gate,
/// and waits until it runs; returns the gate, to open.
#[allow(dead_code)] // not every test binary holds a worker this way
#[track_caller]
pub(crate) fn hold_a_worker(pool: &workpool::Pool) -> std::sync::Arc<Gate> {
    let gate = Gate::new();
    let held = std::sync::Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    gate
}

/// Makes `key` busy on `pool` with a keyed task that waits at a new gate,
/// and waits until it runs; returns the gate, to open.
#[allow(dead_code)] // not every test binary uses keys
#[track_caller]
pub(crate) fn hold_a_key<K: std::hash::Hash>(
    pool: &workpool::Pool,
    key: K,
) -> std::sync::Arc<Gate> {
    let gate = Gate::new();
    let held = std::sync::Arc::clone(&gate);
    pool.submit_keyed(key, move || held.wait()).unwrap();
    gate.await_arrivals(1);
    gate
}
