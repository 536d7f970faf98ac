//! A task with a result: one allocation that holds the closure, its state,
//! its result and whoever waits for it. The queue carries it as a
//! tracked [`Task`](crate::task::Task); the handle holds the same `Arc`.
//!
//! Its state says who may do what, so that a task runs at most once and its
//! handle always learns what happened:
//!
//! ```text
//!            enter the queue            pop
//!   NEW ─────────────────────> NEW|IN_QUEUE ──> NEW ──start──> RUNNING ──> DONE
//!    │                              │                  │
//!    └──cancel──> CANCELLED <───────┴──cancel (a ghost: still in the queue)
//! ```
//!
//! `IN_QUEUE` is a flag beside the state. A task cancelled (or taken by its
//! scope's caller) while the flag is set is still physically in the queue:
//! a *ghost*. Its slot is counted free at once (`TaskQueue::ghost_made`),
//! and whoever pops it drops it (`TaskQueue::pop`).

use crate::cancel::CancelToken;
use crate::error::TaskError;
use crate::pool::Inner;
use crate::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::sync::{Arc, Condvar, Mutex};
use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;
use std::time::{Duration, Instant};

const NEW: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const CANCELLED: u8 = 3;
const STAGE: u8 = 0b0111;
const IN_QUEUE: u8 = 0b1000;

/// What a task's result is handed to once it is known.
pub(crate) type OnComplete<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send + 'static>;

/// A batch's callback, shared by its tasks: the task's index, its result.
pub(crate) type OnEachComplete<T> = Arc<dyn Fn(usize, &Result<T, TaskError>) + Send + Sync>;

/// What the pool's side needs of a tracked task, whatever its types.
pub(crate) trait Job: Send + Sync + 'static {
    fn stage(&self) -> &AtomicU8;
    /// Runs the task on a worker of `inner`, or, if it was cancelled before
    /// it could start, reports that to its handle. Returns whether it ran
    /// to its end without panicking.
    fn run(self: Arc<Self>, inner: &Inner) -> bool;
    /// Cancels the task if it has not started; a ghost left in the queue
    /// is counted (its slot freed) before the handle hears of it.
    fn cancel_before_start(&self, why: Why, inner: &Inner) -> Cancel;
    /// The task's token, if it has one: cancelled too when its deadline
    /// passes, so that a running task sees it.
    fn token(&self) -> Option<&CancelToken>;
    /// Runs the task on the calling thread if it has not started (a scope's
    /// caller, or a join from a worker of a pool), or cancels it there if
    /// its token is cancelled or its deadline has passed: a task stopped
    /// before it starts never runs, whoever reaches it first. `None` if it
    /// had started; otherwise whether it was taken out of the queue (a
    /// ghost, counted already). `accepted`: the pool took the task (not one
    /// it refused, run by its caller), so its completion and its panic count
    /// in the pool's figures.
    fn steal(&self, inner: &Inner, accepted: bool) -> Option<bool>;
    /// Whether the task has run to the end or been cancelled.
    fn has_ended(&self) -> bool;
    /// Records the deadline the maintenance thread fires at `at`, so that a
    /// task that reaches its start past it (on a released pool, whose
    /// maintenance thread has stopped, or before the thread woke) is
    /// stopped there. Then, unless the task has ended already, calls `arm`
    /// (which files the timer and returns its key) under the task's lock,
    /// and keeps the key: the task's end takes its timer back
    /// (`Inner::forget_deadline`), so that a finished task's memory is not
    /// held until its deadline is due.
    fn arm_deadline(&self, at: Instant, arm: &mut dyn FnMut() -> TimerKey);
}

/// A timer's key in the maintenance thread's list: when it fires, and a
/// number that keeps timers of the same instant apart.
pub(crate) type TimerKey = (Instant, u64);

/// Where task deadlines count from, as nanoseconds in a task's atomic: a
/// process-wide origin, so that a deadline fits a word (0: none).
fn deadline_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn deadline_nanos(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(deadline_origin()).as_nanos();
    u64::try_from(nanos)
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// Why a task is cancelled before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Cancelled,
    Deadline,
}

/// What [`Job::cancel_before_start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// Cancelled; it was not in the queue.
    Cancelled,
    /// Cancelled while in the queue: a ghost, whose slot is now free.
    Ghost,
    /// Too late: it runs or has run.
    TooLate,
}

/// Moves the task into the queue. False if it was cancelled already.
pub(crate) fn enter_queue(stage: &AtomicU8) -> bool {
    stage
        .compare_exchange(NEW, NEW | IN_QUEUE, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Takes the task out of the queue (popped, or a push that failed).
/// Returns false if it became a ghost while queued: it must not run.
pub(crate) fn leave_queue(stage: &AtomicU8) -> bool {
    let before = stage.fetch_and(!IN_QUEUE, Ordering::SeqCst);
    before & STAGE == NEW
}

/// Claims a not-started task for `to` (RUNNING or CANCELLED). `None` if it
/// had started or ended; otherwise whether it was in the queue (a ghost).
fn claim(stage: &AtomicU8, to: u8) -> Option<bool> {
    let mut now = stage.load(Ordering::SeqCst);
    loop {
        if now & STAGE != NEW {
            return None;
        }
        match stage.compare_exchange(
            now,
            to | (now & IN_QUEUE),
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => return Some(now & IN_QUEUE != 0),
            Err(actual) => now = actual,
        }
    }
}

/// What several handles share: a batch counts its finished tasks here.
pub(crate) struct Group {
    pub(crate) done: AtomicUsize,
    pub(crate) total: usize,
    pub(crate) waiter: Mutex<Waiters>,
    pub(crate) all_done: Condvar,
}

impl Group {
    pub(crate) fn new(total: usize) -> Group {
        Group {
            done: AtomicUsize::new(0),
            total,
            waiter: Mutex::new(Waiters {
                finished: total == 0,
                ..Waiters::default()
            }),
            all_done: Condvar::new(),
        }
    }

    fn one_done(&self) {
        if self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.total {
            let mut waiters = crate::sync::lock(&self.waiter);
            waiters.finished = true;
            let waker = waiters.waker.take();
            let threads = waiters.threads;
            drop(waiters);
            if threads > 0 {
                self.all_done.notify_all();
            }
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// Who waits for a result, under the slot's lock.
#[derive(Default)]
pub(crate) struct Waiters {
    pub(crate) finished: bool,
    pub(crate) threads: u32,
    pub(crate) waker: Option<Waker>,
}

/// The part of a tracked task that its handle reads: not generic over the
/// closure.
pub(crate) struct Shared<T> {
    pub(crate) slot: Mutex<Slot<T>>,
    pub(crate) finished: Condvar,
    stage: AtomicU8,
    token: Option<CancelToken>,
    group: Option<Arc<Group>>,
    /// The deadline, in [`deadline_nanos`] (0: none): checked as the task
    /// starts. Not part of the protocol: std's atomic even under loom.
    deadline: std::sync::atomic::AtomicU64,
}

pub(crate) struct Slot<T> {
    pub(crate) result: Option<Result<T, TaskError>>,
    pub(crate) waiters: Waiters,
    /// The handle was dropped without joining: a panic goes to the pool's
    /// panic handler instead.
    pub(crate) detached: bool,
    /// The task's timer in the maintenance thread's list, taken back when
    /// the task ends.
    timer: Option<TimerKey>,
}

struct Body<F, T> {
    f: F,
    on_complete: Option<OnComplete<T>>,
}

/// A tracked task: its closure and its result, in one allocation.
pub(crate) struct Cell<F, T> {
    shared: Shared<T>,
    body: Mutex<Option<Body<F, T>>>,
}

/// Options a tracked task is made with.
pub(crate) struct Spec<T> {
    pub(crate) token: Option<CancelToken>,
    pub(crate) on_complete: Option<OnComplete<T>>,
    pub(crate) group: Option<Arc<Group>>,
    /// Armed by the maintenance thread once the task is accepted.
    pub(crate) deadline: Option<Duration>,
}

impl<T> Default for Spec<T> {
    fn default() -> Self {
        Spec {
            token: None,
            on_complete: None,
            group: None,
            deadline: None,
        }
    }
}

impl<F, T> Cell<F, T>
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(f: F, spec: Spec<T>) -> Arc<Cell<F, T>> {
        Arc::new(Cell {
            shared: Shared {
                slot: Mutex::new(Slot {
                    result: None,
                    waiters: Waiters::default(),
                    detached: false,
                    timer: None,
                }),
                finished: Condvar::new(),
                stage: AtomicU8::new(NEW),
                token: spec.token,
                group: spec.group,
                deadline: std::sync::atomic::AtomicU64::new(0),
            },
            body: Mutex::new(Some(Body {
                f,
                on_complete: spec.on_complete,
            })),
        })
    }

    fn take_body(&self) -> Option<Body<F, T>> {
        crate::sync::lock(&self.body).take()
    }

    /// Ends the task with `result`: the callback first, on this thread, then
    /// the handle learns it.
    /// `accepted`: the task is the pool's (not one it refused, run by its
    /// caller), so its panic counts in the pool's figures.
    fn finish(
        &self,
        result: Result<T, TaskError>,
        on_complete: Option<OnComplete<T>>,
        inner: &Inner,
        accepted: bool,
    ) {
        if let Some(callback) = on_complete {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(&result))) {
                inner.task_panicked(payload);
            }
        }
        let shared = &self.shared;
        let mut slot = crate::sync::lock(&shared.slot);
        let result = match result {
            // Nobody can join it any more: the panic handler gets the panic.
            Err(TaskError::Panicked(payload)) if slot.detached => {
                drop(slot);
                inner.task_panicked(payload.into_inner());
                slot = crate::sync::lock(&shared.slot);
                None
            }
            Err(TaskError::Panicked(payload)) => {
                if accepted {
                    inner.count_panic();
                }
                Some(Err(TaskError::Panicked(payload)))
            }
            result => Some(result),
        };
        if !slot.detached {
            slot.result = result;
        }
        slot.waiters.finished = true;
        let timer = slot.timer.take();
        let waker = slot.waiters.waker.take();
        let threads = slot.waiters.threads;
        drop(slot);
        if let Some(key) = timer {
            inner.forget_deadline(key);
        }
        if threads > 0 {
            shared.finished.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(group) = &shared.group {
            group.one_done();
        }
    }

    /// Runs the closure of a task claimed for RUNNING, and ends it. Returns
    /// whether it ran to its end without panicking.
    fn run_claimed(&self, inner: &Inner, accepted: bool) -> bool {
        let Some(Body { f, on_complete }) = self.take_body() else {
            return false;
        };
        let shared = &self.shared;
        #[cfg(loom)]
        let fresh = CancelToken::new();
        #[cfg(loom)]
        let token = shared.token.as_ref().unwrap_or(&fresh);
        #[cfg(not(loom))]
        let token = shared.token.as_ref().unwrap_or_else(|| never());
        let result =
            panic::catch_unwind(AssertUnwindSafe(|| f(token))).map_err(TaskError::panicked);
        shared.stage.store(DONE, Ordering::SeqCst);
        let completed = result.is_ok();
        self.finish(result, on_complete, inner, accepted);
        completed
    }

    fn cancelled(&self, why: Why, inner: &Inner) {
        inner.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        if why == Why::Deadline {
            inner
                .stats
                .timed_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let body = self.take_body();
        let error = match why {
            Why::Cancelled => TaskError::Cancelled,
            Why::Deadline => TaskError::DeadlineExceeded,
        };
        let on_complete = body.and_then(|body| {
            // The closure is dropped here, unrun.
            let Body { f, on_complete } = body;
            if panic::catch_unwind(AssertUnwindSafe(move || drop(f))).is_err() {
                inner.count_panic();
            }
            on_complete
        });
        self.finish(Err(error), on_complete, inner, true);
    }

    /// Why the task must not start now, if it must not: its token is
    /// cancelled (by its handle, a parent, or `release`), or its deadline
    /// has passed.
    fn stopped_at_start(&self) -> Option<Why> {
        let shared = &self.shared;
        if shared.token.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Some(Why::Cancelled);
        }
        // The clock is read only for a task with a deadline.
        let deadline = shared.deadline.load(std::sync::atomic::Ordering::Acquire);
        if deadline != 0 && deadline_nanos(Instant::now()) >= deadline {
            return Some(Why::Deadline);
        }
        None
    }
}

impl<F, T> Job for Cell<F, T>
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    fn stage(&self) -> &AtomicU8 {
        &self.shared.stage
    }

    fn run(self: Arc<Self>, inner: &Inner) -> bool {
        let shared = &self.shared;
        // A task with a token is cancelled with it: by its handle, a parent,
        // its deadline, or `release` (the pool's root token). One without a
        // token runs even when queued at a release, as a submitted task does.
        // A deadline that passes before the start cancels the task itself,
        // from the maintenance thread, or here if that thread has not (a
        // released pool's has stopped).
        if let Some(why) = self.stopped_at_start() {
            if claim(&shared.stage, CANCELLED).is_some() {
                self.cancelled(why, inner);
            }
            return false;
        }
        if claim(&shared.stage, RUNNING).is_none() {
            // Cancelled while on its way to this worker; the canceller has
            // told the handle.
            return false;
        }
        self.run_claimed(inner, true)
    }

    fn steal(&self, inner: &Inner, accepted: bool) -> Option<bool> {
        // The same checks as a worker's `run`: a helping join must not run
        // a task that a worker would have stopped.
        let stopped = self.stopped_at_start();
        let in_queue = claim(
            &self.shared.stage,
            if stopped.is_some() {
                CANCELLED
            } else {
                RUNNING
            },
        )?;
        if in_queue {
            inner.count_ghost();
        }
        match stopped {
            Some(why) => self.cancelled(why, inner),
            None => {
                if self.run_claimed(inner, accepted) && accepted {
                    inner.stats.completed_aside();
                }
            }
        }
        Some(in_queue)
    }

    fn arm_deadline(&self, at: Instant, arm: &mut dyn FnMut() -> TimerKey) {
        let shared = &self.shared;
        shared
            .deadline
            .store(deadline_nanos(at), std::sync::atomic::Ordering::Release);
        let mut slot = crate::sync::lock(&shared.slot);
        if !slot.waiters.finished {
            slot.timer = Some(arm());
        }
    }

    fn cancel_before_start(&self, why: Why, inner: &Inner) -> Cancel {
        match claim(&self.shared.stage, CANCELLED) {
            None => Cancel::TooLate,
            Some(in_queue) => {
                // The slot is free before the handle hears of it.
                if in_queue {
                    inner.count_ghost();
                }
                self.cancelled(why, inner);
                if in_queue {
                    Cancel::Ghost
                } else {
                    Cancel::Cancelled
                }
            }
        }
    }

    fn token(&self) -> Option<&CancelToken> {
        self.shared.token.as_ref()
    }

    fn has_ended(&self) -> bool {
        matches!(
            self.shared.stage.load(Ordering::SeqCst) & STAGE,
            DONE | CANCELLED
        )
    }
}

/// What a handle needs of its task, whatever the closure's type.
pub(crate) trait Outcome<T>: Job {
    fn shared(&self) -> &Shared<T>;
    /// The same task, as the pool's side sees it.
    fn as_job(self: Arc<Self>) -> Arc<dyn Job>;
}

impl<F, T> Outcome<T> for Cell<F, T>
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    fn shared(&self) -> &Shared<T> {
        &self.shared
    }

    fn as_job(self: Arc<Self>) -> Arc<dyn Job> {
        self
    }
}

impl<T> Shared<T> {
    pub(crate) fn is_finished(&self) -> bool {
        crate::sync::lock(&self.slot).waiters.finished
    }
}

/// A token that is never cancelled, for tasks made without one. (Under
/// loom each run makes its own: loom's objects live in one model.)
#[cfg(not(loom))]
fn never() -> &'static CancelToken {
    static NEVER: std::sync::OnceLock<CancelToken> = std::sync::OnceLock::new();
    NEVER.get_or_init(CancelToken::new)
}

/// Locks one of std's mutexes (side structures that take no part in the
/// protocol: deadlines, history, the root token), ignoring poisoning.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<F, T> fmt::Debug for Cell<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Job { .. }")
    }
}

/// The panic payload type, named once.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// What a handle costs in memory: every task with a result holds one
    /// cell until its handle is joined or dropped.
    #[test]
    fn a_cell_for_a_u64_result_stays_small() {
        fn size_of_cell<F>(_: &F) -> usize
        where
            F: FnOnce(&CancelToken) -> u64 + Send + 'static,
        {
            std::mem::size_of::<Cell<F, u64>>()
        }
        let captured = 7u64;
        let size = size_of_cell(&move |_: &CancelToken| captured);
        assert!(size <= 160, "a cell for a u64 takes {size} bytes");
        println!("a cell for a u64 result and an 8-byte closure: {size} bytes");
    }
}
