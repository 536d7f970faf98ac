//! A task with a result: one allocation that holds the closure, its state,
//! its result and whoever waits for it. The queue carries it as a
//! tracked [`Task`](crate::pool::task::Task); the handle holds the same `Arc`.
//!
//! Its state says who may do what, so that a task runs at most once and its
//! handle always learns what happened:
//!
//! ```text
//!            enter the queue            pop
//!   NEW ─────────────────────> NEW|IN_QUEUE ──> NEW ──start──> RUNNING ──> DONE
//!    │                              │                  │         │   ^
//!    └──cancel──> CANCELLED <───────┴──cancel (a ghost: still in the queue)
//!                                                        backoff │   │ due, or
//!                                                                v   │ gave up
//!                                                              WAITING
//! ```
//!
//! `WAITING` is a retried task between attempts (`Step::Again`): it has
//! left its worker, and the pool holds it until its wait is over
//! ([`Host::retry_after`]). It has started, so a cancel cannot stop it
//! before it starts; it goes through the queue again like a new task, and
//! whoever claims it back (`WAITING -> RUNNING`: the worker that runs its
//! next attempt, or whoever ends its wait early because its token was
//! cancelled) is the only one to touch it.
//!
//! `IN_QUEUE` is a flag beside the state. A task cancelled (or taken by its
//! scope's caller) while the flag is set is still physically in the queue:
//! a *ghost*. Its slot is counted free at once (`TaskQueue::ghost_made`),
//! and whoever pops it drops it (`TaskQueue::pop`).
//!
//! This layer never sees the pool: what the pool must hear of (a panic, a
//! ghost, a cancel, a completion on a caller, a timer no longer needed) it
//! reports through [`Host`], which the pool's `Inner` implements
//! (`pool/host.rs`) and the tests below fake.

use crate::cancel::CancelToken;
use crate::error::TaskError;
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
/// Between two attempts of a retried task: started, not running.
const WAITING: u8 = 4;
const STAGE: u8 = 0b0111;
const IN_QUEUE: u8 = 0b1000;
/// Held by its key's lane or by the maintenance thread (a keyed task, or a
/// delayed one not yet due): only its own runner starts it, never a
/// helping join, which would run it beside its key's running task or
/// before its time. Cleared by the claim that starts or cancels it.
const HELD: u8 = 0b1_0000;

/// What a task's result is handed to once it is known.
pub(crate) type OnComplete<T> = Box<dyn FnOnce(&Result<T, TaskError>) + Send + 'static>;

/// A batch's callback, shared by its tasks: the task's index, its result.
pub(crate) type OnEachComplete<T> = Arc<dyn Fn(usize, &Result<T, TaskError>) + Send + Sync>;

/// What a task tells the pool it runs in: each method is an event, named
/// after what happened, and the host decides what it counts and whom it
/// tells. A task calls none of them on its common path (run to the end, no
/// deadline), so [`Job`] takes `&dyn Host`: a generic host would make `Job`
/// unusable as `dyn Job`, which the queue and the timers hold, for no gain
/// on that path.
pub(crate) trait Host {
    /// A task panicked and nobody will join it (its handle was dropped), or
    /// its `on_complete` callback panicked: count the panic and hand
    /// `payload` to the panic handler.
    fn panicked_unjoined(&self, payload: Payload);
    /// A panic whose payload the host does not get: a task's, kept for its
    /// handle, or the `Drop` of a cancelled task's closure. Count it only.
    fn panic_counted(&self);
    /// A task still in the queue was taken out of turn (cancelled, or run
    /// by a caller): a ghost, whose slot is free from now on. Reported
    /// before the task's handle hears of the task's end.
    fn ghost_made(&self);
    /// A task was stopped before it started (`why`): it never runs.
    fn cancelled(&self, why: Why);
    /// A task of the pool ran to its end on a caller that took it (a
    /// scope, or a join from a worker), not on a worker.
    fn completed_aside(&self);
    /// A task with a deadline ended: the timer filed under `key`
    /// ([`Job::arm_deadline`]) is not needed any more.
    fn timer_done(&self, key: TimerKey);
    /// A ghost's place, freed at [`ghost_made`](Host::ghost_made), may now
    /// go to a submitter waiting for room. Reported by whoever took the
    /// task out of turn, once its handle has heard how it ended (the host
    /// may take its own locks here).
    fn room_freed(&self);
    /// A retried task failed an attempt on a worker and is to try again
    /// after `delay`: it is `WAITING`, off its worker. The host holds it
    /// meanwhile and submits it when due, or ends its wait
    /// ([`Job::give_up_waiting`]) once its token is cancelled.
    fn retry_after(&self, job: Arc<dyn Job>, delay: Duration);
}

/// What a handle holds of its pool: the host its task reports to.
pub(crate) type SharedHost = Arc<dyn Host + Send + Sync>;

/// Stops `job` if it has not started (it never runs), leaving its token
/// alone; a ghost's place goes to waiting submitters. Returns whether it
/// had not started.
pub(crate) fn stop_before_start(job: &dyn Job, why: Why, host: &dyn Host) -> bool {
    match job.cancel_before_start(why, host) {
        Cancel::Ghost => {
            host.room_freed();
            true
        }
        Cancel::Cancelled => true,
        Cancel::TooLate => false,
    }
}

/// Cancels `job`: the task itself if it has not started (stopped here,
/// before its token says so: a worker that saw the token first would stop
/// it too, but this call could not tell), then its token, which a running
/// task sees. Returns whether it was stopped before it started.
pub(crate) fn cancel(job: &dyn Job, why: Why, host: &dyn Host) -> bool {
    let stopped = stop_before_start(job, why, host);
    if let Some(token) = job.token() {
        token.cancel();
    }
    stopped
}

/// What the pool's side needs of a tracked task, whatever its types.
pub(crate) trait Job: Send + Sync + 'static {
    fn stage(&self) -> &AtomicU8;
    /// Runs the task on a worker of `host`, or, if it was cancelled before
    /// it could start, reports that to its handle. Returns whether it ran
    /// to its end without panicking.
    fn run(self: Arc<Self>, host: &dyn Host) -> bool;
    /// Cancels the task if it has not started; a ghost left in the queue
    /// is reported (its slot freed) before the handle hears of it.
    fn cancel_before_start(&self, why: Why, host: &dyn Host) -> Cancel;
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
    fn steal(&self, host: &dyn Host, accepted: bool) -> Option<bool>;
    /// Whether the task has run to the end or been cancelled.
    fn has_ended(&self) -> bool;
    /// Records the deadline the maintenance thread fires at `at`, so that a
    /// task that reaches its start past it (on a released pool, whose
    /// maintenance thread has stopped, or before the thread woke) is
    /// stopped there. Then, unless the task has ended already, calls `arm`
    /// (which files the timer and returns its key) under the task's lock,
    /// and keeps the key: the task's end gives its timer back
    /// ([`Host::timer_done`]), so that a finished task's memory is not
    /// held until its deadline is due.
    fn arm_deadline(&self, at: Instant, arm: &mut dyn FnMut(u64) -> u64);
    /// Ends a retried task waiting between attempts (its token cancelled,
    /// or its pool closing) with its last result, on the calling thread.
    /// False if it was not waiting. The caller must own the wait (it took
    /// the task from where the host held it), so that no worker can claim
    /// it at the same time.
    fn give_up_waiting(&self, host: &dyn Host) -> bool;
}

/// A timer's key in the maintenance thread's list: when it fires (in
/// [`deadline_nanos`]), and a number (never 0) that keeps timers of the
/// same instant apart. The task keeps only the number: its deadline is in
/// its atomic already, so a deadline adds 16 bytes to a cell, not 40.
pub(crate) type TimerKey = (u64, u64);

/// When a tracked task's deadline falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// This long after the pool accepts the task (time blocked for room
    /// does not count).
    After(Duration),
    /// At this instant, whenever the task was accepted: one deadline for
    /// all the tasks of a request.
    At(Instant),
}

impl Deadline {
    /// The instant it falls at, for a task accepted now (`None`: too far to
    /// be written down, that is never).
    pub(crate) fn instant(self) -> Option<Instant> {
        match self {
            Deadline::After(after) => Instant::now().checked_add(after),
            Deadline::At(at) => Some(at),
        }
    }
}

/// Where task deadlines count from, as nanoseconds in a task's atomic: a
/// process-wide origin, so that a deadline fits a word (0: none).
fn deadline_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The instant of a deadline word (the inverse of [`deadline_nanos`]).
pub(crate) fn deadline_instant(word: u64) -> Instant {
    deadline_origin() + Duration::from_nanos(word.saturating_sub(1))
}

/// `at` as a deadline word: nanoseconds past [`deadline_origin`], plus 1
/// (0 means none); ordered as the instants are.
pub(crate) fn deadline_nanos(at: Instant) -> u64 {
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

/// Moves the task into the queue (a new one, or a retried one whose wait
/// is over). False if it was cancelled already.
pub(crate) fn enter_queue(stage: &AtomicU8) -> bool {
    let mut now = stage.load(Ordering::SeqCst);
    loop {
        if !matches!(now & STAGE, NEW | WAITING) || now & IN_QUEUE != 0 {
            return false;
        }
        match stage.compare_exchange(now, now | IN_QUEUE, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(actual) => now = actual,
        }
    }
}

/// The task is held (see [`HELD`]) until its runner claims it, or until
/// [`unhold`] lets it go to the queue.
pub(crate) fn hold(stage: &AtomicU8) {
    stage.fetch_or(HELD, Ordering::SeqCst);
}

/// A delayed task came due: from the queue on, it is a task like any.
pub(crate) fn unhold(stage: &AtomicU8) {
    stage.fetch_and(!HELD, Ordering::SeqCst);
}

/// When a wait of `delay` from now is over (an instant too far to write
/// down is a century: the wait ends with a cancel or `release`).
pub(crate) fn due_at(delay: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(delay)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Whether the task is a retried one between attempts.
pub(crate) fn is_waiting(stage: &AtomicU8) -> bool {
    stage.load(Ordering::SeqCst) & STAGE == WAITING
}

/// Takes the task out of the queue (popped, or a push that failed).
/// Returns false if it became a ghost while queued: it must not run.
pub(crate) fn leave_queue(stage: &AtomicU8) -> bool {
    let before = stage.fetch_and(!IN_QUEUE, Ordering::SeqCst);
    matches!(before & STAGE, NEW | WAITING)
}

/// Claims a not-started task for `to` (RUNNING or CANCELLED). `None` if it
/// had started or ended; otherwise whether it was in the queue (a ghost).
fn claim(stage: &AtomicU8, to: u8) -> Option<bool> {
    claim_from(stage, NEW, to)
}

/// Claims a task in stage `from` for `to`: [`claim`], or a retried task
/// between attempts claimed back for RUNNING. `None` if it was not in
/// `from`; otherwise whether it was in the queue.
fn claim_from(stage: &AtomicU8, from: u8, to: u8) -> Option<bool> {
    let mut now = stage.load(Ordering::SeqCst);
    loop {
        if now & STAGE != from {
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
    /// The number of the task's timer in the maintenance thread's list (0:
    /// none), taken back when the task ends; its key is
    /// `(deadline, timer)`.
    timer: u64,
}

struct Body<F, T> {
    f: F,
    on_complete: Option<OnComplete<T>>,
    /// A retried task's last result, while it waits for its next attempt:
    /// its result if the wait is cut short.
    last: Option<T>,
    /// When that wait is over.
    due: Option<Instant>,
}

/// What a tracked task runs: a closure, run once, or a retried closure
/// ([`crate::spawn`]'s `Attempts`), which may leave its worker between
/// attempts. Every `FnOnce(&CancelToken) -> T` is one.
pub(crate) trait Work<T>: Send + 'static {
    /// Runs the task (one attempt, or, where it may not leave its
    /// thread, every attempt with the waits between them).
    /// `may_leave`: the caller can hold the task aside between attempts
    /// (a worker; not a helping join, a scope's caller, or a key's lane,
    /// whose next task must wait for this one).
    fn attempt(self, token: &CancelToken, may_leave: bool) -> Step<Self, T>
    where
        Self: Sized;
}

/// How an attempt ended.
pub(crate) enum Step<W, T> {
    /// With the task's result.
    Done(T),
    /// With a result to retry after `Duration`: the task goes on as `W`;
    /// `T` is its result should the wait be cut short.
    Again(W, T, Duration),
}

impl<F, T> Work<T> for F
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
{
    #[inline]
    fn attempt(self, token: &CancelToken, _may_leave: bool) -> Step<Self, T> {
        Step::Done(self(token))
    }
}

/// How a run of a task's closure ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// To its end, with a result.
    Completed,
    /// Panicked (its handle has the panic), or was not there to run.
    Failed,
    /// An attempt failed and the task waits this long before the next one
    /// (`WAITING`).
    Waits(Duration),
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
    /// Armed by the maintenance thread once the task is accepted; one at
    /// an instant is also checked where the task starts from its making
    /// on, so that a task whose instant is past never runs, even if a
    /// worker takes it before its timer is filed.
    pub(crate) deadline: Option<Deadline>,
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
    F: Work<T>,
    T: Send + 'static,
{
    pub(crate) fn new(f: F, spec: Spec<T>) -> Arc<Cell<F, T>> {
        Arc::new(Cell {
            shared: Shared {
                slot: Mutex::new(Slot {
                    result: None,
                    waiters: Waiters::default(),
                    detached: false,
                    timer: 0,
                }),
                finished: Condvar::new(),
                stage: AtomicU8::new(NEW),
                token: spec.token,
                group: spec.group,
                deadline: std::sync::atomic::AtomicU64::new(match spec.deadline {
                    Some(Deadline::At(at)) => deadline_nanos(at),
                    _ => 0,
                }),
            },
            body: Mutex::new(Some(Body {
                f,
                on_complete: spec.on_complete,
                last: None,
                due: None,
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
        host: &dyn Host,
        accepted: bool,
    ) {
        if let Some(callback) = on_complete {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(&result))) {
                host.panicked_unjoined(payload);
            }
        }
        let shared = &self.shared;
        let mut slot = crate::sync::lock(&shared.slot);
        let result = match result {
            // Nobody can join it any more: the panic handler gets the panic.
            Err(TaskError::Panicked(payload)) if slot.detached => {
                drop(slot);
                host.panicked_unjoined(payload.into_inner());
                slot = crate::sync::lock(&shared.slot);
                None
            }
            Err(TaskError::Panicked(payload)) => {
                if accepted {
                    host.panic_counted();
                }
                Some(Err(TaskError::Panicked(payload)))
            }
            result => Some(result),
        };
        if !slot.detached {
            slot.result = result;
        }
        slot.waiters.finished = true;
        let timer = std::mem::take(&mut slot.timer);
        let waker = slot.waiters.waker.take();
        let threads = slot.waiters.threads;
        drop(slot);
        if timer != 0 {
            let deadline = shared.deadline.load(std::sync::atomic::Ordering::Acquire);
            host.timer_done((deadline, timer));
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

    /// Runs the closure of a task claimed for RUNNING, and ends it, unless
    /// it is to wait for another attempt (`may_leave`): then it is
    /// `WAITING`, its body back in place.
    fn run_claimed(&self, host: &dyn Host, accepted: bool, may_leave: bool) -> Ran {
        let Some(Body { f, on_complete, .. }) = self.take_body() else {
            return Ran::Failed;
        };
        let shared = &self.shared;
        #[cfg(loom)]
        let fresh = CancelToken::new();
        #[cfg(loom)]
        let token = shared.token.as_ref().unwrap_or(&fresh);
        #[cfg(not(loom))]
        let token = shared.token.as_ref().unwrap_or_else(|| never());
        let result = match panic::catch_unwind(AssertUnwindSafe(|| f.attempt(token, may_leave))) {
            Ok(Step::Done(value)) => Ok(value),
            Ok(Step::Again(next, last, delay)) => {
                // The body first: whoever claims the task back finds it.
                *crate::sync::lock(&self.body) = Some(Body {
                    f: next,
                    on_complete,
                    last: Some(last),
                    due: Some(due_at(delay)),
                });
                shared.stage.store(WAITING, Ordering::SeqCst);
                return Ran::Waits(delay);
            }
            Err(payload) => Err(TaskError::panicked(payload)),
        };
        shared.stage.store(DONE, Ordering::SeqCst);
        let completed = result.is_ok();
        self.finish(result, on_complete, host, accepted);
        if completed {
            Ran::Completed
        } else {
            Ran::Failed
        }
    }

    /// Ends a task claimed back from `WAITING` with the last result of
    /// its attempts.
    fn end_wait(&self, host: &dyn Host) {
        let Some(Body {
            on_complete, last, ..
        }) = self.take_body()
        else {
            return;
        };
        self.shared.stage.store(DONE, Ordering::SeqCst);
        // Always there: an attempt that waits leaves its result.
        let result = last.ok_or(TaskError::Cancelled);
        self.finish(result, on_complete, host, true);
    }

    /// Runs a task claimed for RUNNING on a worker: if it is to wait for
    /// another attempt, the host holds it meanwhile.
    fn ran(self: Arc<Self>, host: &dyn Host, may_leave: bool) -> bool {
        match self.run_claimed(host, true, may_leave) {
            Ran::Completed => true,
            Ran::Failed => false,
            Ran::Waits(delay) => {
                host.retry_after(self, delay);
                false
            }
        }
    }

    /// A retried task's wait is over and a worker took it from the queue:
    /// its next attempt, unless its token was cancelled (or its deadline
    /// passed) while it waited, which ends it with its last result. False
    /// if someone else claimed it first (then it is theirs).
    fn resume(self: Arc<Self>, host: &dyn Host) -> bool {
        if claim_from(&self.shared.stage, WAITING, RUNNING).is_none() {
            return false;
        }
        if self.stopped_at_start().is_some() {
            self.end_wait(host);
            return true;
        }
        self.ran(host, true)
    }

    /// A helping join reached a retried task between attempts (off its
    /// worker, held by the pool or queued again): waiting for a worker
    /// could wait for the joiner's own, so the joiner takes the task and
    /// waits out the rest of its wait here, then runs its remaining
    /// attempts, as it runs a task not started.
    fn steal_waiting(&self, host: &dyn Host) -> Option<bool> {
        let in_queue = claim_from(&self.shared.stage, WAITING, RUNNING)?;
        if in_queue {
            host.ghost_made();
        }
        let due = crate::sync::lock(&self.body)
            .as_ref()
            .and_then(|body| body.due);
        let cancelled = match (&self.shared.token, due) {
            (Some(token), Some(due)) => {
                token.wait_timeout(due.saturating_duration_since(Instant::now()))
            }
            _ => false,
        };
        let completed = if cancelled || self.stopped_at_start().is_some() {
            self.end_wait(host);
            true
        } else {
            self.run_claimed(host, true, false) == Ran::Completed
        };
        if completed {
            host.completed_aside();
        }
        Some(in_queue)
    }

    fn cancelled(&self, why: Why, host: &dyn Host) {
        host.cancelled(why);
        let body = self.take_body();
        let error = match why {
            Why::Cancelled => TaskError::Cancelled,
            Why::Deadline => TaskError::DeadlineExceeded,
        };
        let on_complete = body.and_then(|body| {
            // The closure is dropped here, unrun.
            let Body { f, on_complete, .. } = body;
            if panic::catch_unwind(AssertUnwindSafe(move || drop(f))).is_err() {
                host.panic_counted();
            }
            on_complete
        });
        self.finish(Err(error), on_complete, host, true);
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
    F: Work<T>,
    T: Send + 'static,
{
    fn stage(&self) -> &AtomicU8 {
        &self.shared.stage
    }

    fn run(self: Arc<Self>, host: &dyn Host) -> bool {
        let shared = &self.shared;
        let now = shared.stage.load(Ordering::SeqCst);
        if now & STAGE == WAITING {
            return self.resume(host);
        }
        // A keyed task, held by its lane, waits for a retry on its worker:
        // its key's next task must not start before it ends.
        let may_leave = now & HELD == 0;
        // A task with a token is cancelled with it: by its handle, a parent,
        // its deadline, or `release` (the pool's root token). One without a
        // token runs even when queued at a release, as a submitted task does.
        // A deadline that passes before the start cancels the task itself,
        // from the maintenance thread, or here if that thread has not (a
        // released pool's has stopped).
        if let Some(why) = self.stopped_at_start() {
            if claim(&shared.stage, CANCELLED).is_some() {
                self.cancelled(why, host);
            }
            return false;
        }
        if claim(&shared.stage, RUNNING).is_none() {
            // Cancelled while on its way to this worker; the canceller has
            // told the handle.
            return false;
        }
        self.ran(host, may_leave)
    }

    fn steal(&self, host: &dyn Host, accepted: bool) -> Option<bool> {
        let now = self.shared.stage.load(Ordering::SeqCst);
        // A held task waits for its own runner: to the caller it is as if
        // it had started.
        if now & HELD != 0 {
            return None;
        }
        if now & STAGE == WAITING {
            return self.steal_waiting(host);
        }
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
            host.ghost_made();
        }
        match stopped {
            Some(why) => self.cancelled(why, host),
            None => {
                // On a caller's thread, which it must not leave: a retried
                // task waits between attempts here.
                if self.run_claimed(host, accepted, false) == Ran::Completed && accepted {
                    host.completed_aside();
                }
            }
        }
        Some(in_queue)
    }

    fn give_up_waiting(&self, host: &dyn Host) -> bool {
        if claim_from(&self.shared.stage, WAITING, RUNNING).is_none() {
            return false;
        }
        self.end_wait(host);
        true
    }

    fn arm_deadline(&self, at: Instant, arm: &mut dyn FnMut(u64) -> u64) {
        let shared = &self.shared;
        let deadline = deadline_nanos(at);
        shared
            .deadline
            .store(deadline, std::sync::atomic::Ordering::Release);
        let mut slot = crate::sync::lock(&shared.slot);
        if !slot.waiters.finished {
            slot.timer = arm(deadline);
        }
    }

    fn cancel_before_start(&self, why: Why, host: &dyn Host) -> Cancel {
        match claim(&self.shared.stage, CANCELLED) {
            None => Cancel::TooLate,
            Some(in_queue) => {
                // The slot is free before the handle hears of it.
                if in_queue {
                    host.ghost_made();
                }
                self.cancelled(why, host);
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
    F: Work<T>,
    T: Send + 'static,
{
    fn shared(&self) -> &Shared<T> {
        &self.shared
    }

    fn as_job(self: Arc<Self>) -> Arc<dyn Job> {
        self
    }
}

/// A tracked task made of `f` and `spec`, seen from both sides: the pool's
/// (to queue and run) and the handle's (to wait for its result). One cell;
/// every tracked task is made here (`Inner::make_job`, `MultiPool::spawn`).
#[inline]
pub(crate) fn tracked<F, T>(f: F, spec: Spec<T>) -> (Arc<dyn Job>, Arc<dyn Outcome<T>>)
where
    F: Work<T>,
    T: Send + 'static,
{
    let cell = Cell::new(f, spec);
    let job: Arc<dyn Job> = cell.clone();
    (job, cell)
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

/// Runs `f`, dropping quietly whatever panic it raises.
pub(crate) fn quietly(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        drop_quietly(payload);
    }
}

/// Drops a panic payload under `catch_unwind`. A payload whose `Drop`
/// panics leaves a second payload (usually the message of that panic),
/// dropped the same way; should its `Drop` panic too, the third is
/// forgotten rather than dropped: a leak, never an unwind.
pub(crate) fn drop_quietly(payload: Payload) {
    if let Err(second) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        if let Err(third) = panic::catch_unwind(AssertUnwindSafe(move || drop(second))) {
            std::mem::forget(third);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as Counter;
    use std::sync::mpsc;

    /// What the task layer reported, in order.
    #[derive(Debug, PartialEq)]
    enum Event {
        PanickedUnjoined(String),
        PanicCounted,
        GhostMade,
        Cancelled(Why),
        CompletedAside,
        TimerDone(TimerKey),
        RoomFreed,
        RetryAfter(Duration),
    }

    /// A host that records each event instead of counting it.
    #[derive(Default)]
    struct FakeHost {
        events: std::sync::Mutex<Vec<Event>>,
    }

    impl FakeHost {
        fn record(&self, event: Event) {
            lock(&self.events).push(event);
        }

        /// The events reported since the last call.
        fn take(&self) -> Vec<Event> {
            std::mem::take(&mut *lock(&self.events))
        }
    }

    impl Host for FakeHost {
        fn panicked_unjoined(&self, payload: Payload) {
            self.record(Event::PanickedUnjoined(message(&payload)));
        }
        fn panic_counted(&self) {
            self.record(Event::PanicCounted);
        }
        fn ghost_made(&self) {
            self.record(Event::GhostMade);
        }
        fn cancelled(&self, why: Why) {
            self.record(Event::Cancelled(why));
        }
        fn completed_aside(&self) {
            self.record(Event::CompletedAside);
        }
        fn timer_done(&self, key: TimerKey) {
            self.record(Event::TimerDone(key));
        }
        fn room_freed(&self) {
            self.record(Event::RoomFreed);
        }
        fn retry_after(&self, _job: Arc<dyn Job>, delay: Duration) {
            self.record(Event::RetryAfter(delay));
        }
    }

    fn message(payload: &Payload) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    }

    /// The test tasks' closure, one type for them all.
    type Counted = Arc<Cell<Box<dyn FnOnce(&CancelToken) -> u32 + Send>, u32>>;

    /// A task that counts its runs in `runs` and returns 42.
    fn counted(runs: &Arc<Counter>, spec: Spec<u32>) -> Counted {
        let runs = Arc::clone(runs);
        Cell::new(
            Box::new(move |_: &CancelToken| {
                runs.fetch_add(1, Ordering::SeqCst);
                42
            }),
            spec,
        )
    }

    /// A fake host, and a task that counts its runs and returns 42.
    fn setup(spec: Spec<u32>) -> (FakeHost, Arc<Counter>, Counted) {
        let runs = Arc::new(Counter::new(0));
        let cell = counted(&runs, spec);
        (FakeHost::default(), runs, cell)
    }

    /// The error of a task that ended without running.
    fn never_ran<F>(cell: &Cell<F, u32>, runs: &Counter) -> TaskError {
        assert_eq!(runs.load(Ordering::SeqCst), 0, "the task ran");
        result(cell).unwrap().unwrap_err()
    }

    fn with_token(token: &CancelToken) -> Spec<u32> {
        Spec {
            token: Some(token.clone()),
            ..Spec::default()
        }
    }

    /// The result the handle would take.
    fn result<F, T>(cell: &Cell<F, T>) -> Option<Result<T, TaskError>> {
        crate::sync::lock(&cell.shared.slot).result.take()
    }

    fn stage<F, T>(cell: &Cell<F, T>) -> u8 {
        cell.shared.stage.load(Ordering::SeqCst)
    }

    fn detach<F, T>(cell: &Cell<F, T>) {
        crate::sync::lock(&cell.shared.slot).detached = true;
    }

    #[test]
    fn a_task_run_to_its_end_keeps_its_result_and_reports_nothing() {
        let (host, runs, cell) = setup(Spec::default());
        assert_eq!(stage(&cell), NEW);
        assert!(!cell.has_ended());
        assert!(Arc::clone(&cell).run(&host));
        assert_eq!(stage(&cell), DONE);
        assert!(cell.has_ended());
        assert!(cell.shared.is_finished());
        assert_eq!(result(&cell).unwrap().unwrap(), 42);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_second_run_after_done_does_nothing() {
        let (host, runs, cell) = setup(Spec::default());
        assert!(Arc::clone(&cell).run(&host));
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(cell.steal(&host, true), None);
        assert_eq!(
            cell.cancel_before_start(Why::Cancelled, &host),
            Cancel::TooLate
        );
        assert!(!enter_queue(cell.stage()));
        assert_eq!(stage(&cell), DONE);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(result(&cell).unwrap().unwrap(), 42);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_joined_panic_is_counted_and_kept_for_the_handle() {
        let host = FakeHost::default();
        let cell = Cell::new(|_: &CancelToken| -> u32 { panic!("boom") }, Spec::default());
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(stage(&cell), DONE);
        let error = result(&cell).unwrap().unwrap_err();
        assert_eq!(error.panic_message(), Some("boom"));
        assert_eq!(host.take(), [Event::PanicCounted]);
    }

    #[test]
    fn a_detached_panic_goes_to_the_panic_handler() {
        let host = FakeHost::default();
        let cell = Cell::new(|_: &CancelToken| -> u32 { panic!("boom") }, Spec::default());
        detach(&cell);
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(stage(&cell), DONE);
        assert!(cell.shared.is_finished());
        assert!(result(&cell).is_none(), "nobody would take it");
        assert_eq!(host.take(), [Event::PanickedUnjoined("boom".to_owned())]);
    }

    #[test]
    fn cancelled_before_it_was_queued_it_never_runs_and_makes_no_ghost() {
        let (host, runs, cell) = setup(Spec::default());
        assert_eq!(
            cell.cancel_before_start(Why::Cancelled, &host),
            Cancel::Cancelled
        );
        assert_eq!(stage(&cell), CANCELLED);
        assert!(cell.has_ended());
        assert_eq!(host.take(), [Event::Cancelled(Why::Cancelled)]);
        // It needs no place in the queue, and whoever reaches it later
        // neither runs it nor reports it again.
        assert!(!enter_queue(cell.stage()));
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(cell.steal(&host, true), None);
        assert_eq!(
            cell.cancel_before_start(Why::Deadline, &host),
            Cancel::TooLate
        );
        assert!(never_ran(&cell, &runs).is_cancelled());
        assert_eq!(host.take(), []);
    }

    #[test]
    fn cancelled_in_the_queue_it_is_a_ghost_that_must_not_run() {
        let (host, runs, cell) = setup(Spec::default());
        assert!(enter_queue(cell.stage()));
        assert_eq!(stage(&cell), NEW | IN_QUEUE);
        assert_eq!(
            cell.cancel_before_start(Why::Cancelled, &host),
            Cancel::Ghost
        );
        assert_eq!(stage(&cell), CANCELLED | IN_QUEUE);
        // The slot is free before the handle hears of the end.
        assert_eq!(
            host.take(),
            [Event::GhostMade, Event::Cancelled(Why::Cancelled)]
        );
        // Popped: a ghost, which the worker drops.
        assert!(!leave_queue(cell.stage()));
        assert_eq!(stage(&cell), CANCELLED);
        assert!(!Arc::clone(&cell).run(&host));
        assert!(never_ran(&cell, &runs).is_cancelled());
        assert_eq!(host.take(), []);
    }

    #[test]
    fn cancel_stops_a_queued_task_frees_its_room_after_its_handle_heard_then_cancels_its_token() {
        let token = CancelToken::new();
        let (host, runs, cell) = setup(Spec {
            token: Some(token.clone()),
            ..Spec::default()
        });
        assert!(enter_queue(cell.stage()));
        assert!(cancel(&*cell, Why::Cancelled, &host));
        assert!(token.is_cancelled());
        // The slot, the handle, then the room: a waiting submitter woken
        // for it finds the task ended.
        assert_eq!(
            host.take(),
            [
                Event::GhostMade,
                Event::Cancelled(Why::Cancelled),
                Event::RoomFreed
            ]
        );
        // Too late a second time: nothing stopped, nothing reported.
        assert!(!stop_before_start(&*cell, Why::Deadline, &host));
        assert!(never_ran(&cell, &runs).is_cancelled());
        assert_eq!(host.take(), []);
    }

    #[test]
    fn cancel_of_a_task_not_queued_frees_no_room() {
        let (host, _runs, cell) = setup(Spec::default());
        assert!(stop_before_start(&*cell, Why::Deadline, &host));
        assert_eq!(host.take(), [Event::Cancelled(Why::Deadline)]);
    }

    #[test]
    fn a_task_that_leaves_the_queue_uncancelled_runs() {
        let (host, runs, cell) = setup(Spec::default());
        assert!(enter_queue(cell.stage()));
        assert!(!enter_queue(cell.stage()), "queued twice");
        assert!(leave_queue(cell.stage()));
        assert_eq!(stage(&cell), NEW);
        assert!(Arc::clone(&cell).run(&host));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_deadline_passed_at_the_start_stops_the_task_and_gives_its_timer_back() {
        let (host, runs, cell) = setup(Spec::default());
        let at = Instant::now();
        let key = (deadline_nanos(at), 7);
        cell.arm_deadline(at, &mut |_| 7);
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(stage(&cell), CANCELLED);
        assert!(never_ran(&cell, &runs).is_deadline());
        assert_eq!(
            host.take(),
            [Event::Cancelled(Why::Deadline), Event::TimerDone(key)]
        );
    }

    #[test]
    fn a_deadline_not_yet_due_lets_the_task_run_and_gives_its_timer_back() {
        let (host, runs, cell) = setup(Spec::default());
        let at = Instant::now() + Duration::from_secs(3600);
        let key = (deadline_nanos(at), 3);
        cell.arm_deadline(at, &mut |_| 3);
        assert!(Arc::clone(&cell).run(&host));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(result(&cell).unwrap().unwrap(), 42);
        assert_eq!(host.take(), [Event::TimerDone(key)]);
    }

    #[test]
    fn a_deadline_armed_on_an_ended_task_files_no_timer() {
        let host = FakeHost::default();
        let cell = counted(&Arc::new(Counter::new(0)), Spec::default());
        assert!(Arc::clone(&cell).run(&host));
        let mut filed = false;
        cell.arm_deadline(Instant::now(), &mut |_| {
            filed = true;
            1
        });
        assert!(!filed);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_token_cancelled_before_the_start_stops_the_task() {
        let host = FakeHost::default();
        let runs = Arc::new(Counter::new(0));
        let token = CancelToken::new();
        let cell = counted(&runs, with_token(&token));
        assert!(enter_queue(cell.stage()));
        token.cancel();
        // Popped: still a task, not a ghost; the worker finds it stopped.
        assert!(leave_queue(cell.stage()));
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(stage(&cell), CANCELLED);
        assert!(never_ran(&cell, &runs).is_cancelled());
        assert_eq!(host.take(), [Event::Cancelled(Why::Cancelled)]);
    }

    #[test]
    fn cancelled_while_running_the_task_sees_its_token_and_runs_to_its_end() {
        let host = FakeHost::default();
        let token = CancelToken::new();
        let (started, on_started) = mpsc::channel();
        let (go, on_go) = mpsc::channel::<()>();
        let cell = Cell::new(
            move |token: &CancelToken| {
                started.send(()).unwrap();
                on_go.recv().unwrap();
                token.is_cancelled()
            },
            Spec {
                token: Some(token.clone()),
                ..Spec::default()
            },
        );
        std::thread::scope(|s| {
            let worker = s.spawn(|| Arc::clone(&cell).run(&host));
            on_started.recv().unwrap();
            assert_eq!(stage(&cell), RUNNING);
            // What `TaskHandle::cancel` does: too late to stop it, so
            // only its token says so.
            assert_eq!(
                cell.cancel_before_start(Why::Cancelled, &host),
                Cancel::TooLate
            );
            token.cancel();
            go.send(()).unwrap();
            assert!(worker.join().unwrap());
        });
        assert_eq!(stage(&cell), DONE);
        assert!(result(&cell).unwrap().unwrap(), "the task saw its token");
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_caller_that_steals_an_accepted_task_counts_its_completion_aside() {
        let (host, runs, cell) = setup(Spec::default());
        assert_eq!(cell.steal(&host, true), Some(false));
        assert_eq!(stage(&cell), DONE);
        assert_eq!(host.take(), [Event::CompletedAside]);
        // Whoever reaches it next finds it done.
        assert_eq!(cell.steal(&host, true), None);
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(result(&cell).unwrap().unwrap(), 42);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_caller_that_steals_a_queued_task_leaves_a_ghost() {
        let (host, runs, cell) = setup(Spec::default());
        assert!(enter_queue(cell.stage()));
        assert_eq!(cell.steal(&host, true), Some(true));
        assert_eq!(host.take(), [Event::GhostMade, Event::CompletedAside]);
        assert!(!leave_queue(cell.stage()), "a ghost must not run");
        assert!(!Arc::clone(&cell).run(&host));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_refused_task_run_by_its_caller_counts_nothing() {
        let (host, runs, cell) = setup(Spec::default());
        assert_eq!(cell.steal(&host, false), Some(false));
        assert_eq!(result(&cell).unwrap().unwrap(), 42);
        // Its panic is not the pool's either.
        let panics = Cell::new(|_: &CancelToken| -> u32 { panic!("boom") }, Spec::default());
        assert_eq!(panics.steal(&host, false), Some(false));
        assert!(result(&panics).unwrap().unwrap_err().is_panic());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn an_accepted_task_that_panics_on_its_caller_is_counted_not_completed() {
        let host = FakeHost::default();
        let cell = Cell::new(|_: &CancelToken| -> u32 { panic!("boom") }, Spec::default());
        assert_eq!(cell.steal(&host, true), Some(false));
        assert!(result(&cell).unwrap().unwrap_err().is_panic());
        assert_eq!(host.take(), [Event::PanicCounted]);
    }

    #[test]
    fn a_caller_does_not_run_a_stopped_task() {
        let host = FakeHost::default();
        let runs = Arc::new(Counter::new(0));
        let token = CancelToken::new();
        let cell = counted(&runs, with_token(&token));
        token.cancel();
        assert_eq!(cell.steal(&host, true), Some(false));
        assert_eq!(stage(&cell), CANCELLED);
        assert!(result(&cell).unwrap().unwrap_err().is_cancelled());
        // A deadline passed, on a queued task: a ghost, ended by the caller.
        let late = counted(&runs, Spec::default());
        late.arm_deadline(Instant::now(), &mut |_| 1);
        assert!(enter_queue(late.stage()));
        assert_eq!(late.steal(&host, true), Some(true));
        assert!(result(&late).unwrap().unwrap_err().is_deadline());
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let events = host.take();
        assert_eq!(
            events[..3],
            [
                Event::Cancelled(Why::Cancelled),
                Event::GhostMade,
                Event::Cancelled(Why::Deadline),
            ]
        );
        assert!(matches!(events[3..], [Event::TimerDone((_, 1))]));
    }

    #[test]
    fn on_complete_sees_the_result_and_its_panic_is_reported() {
        let host = FakeHost::default();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let on_complete = |seen: &Arc<std::sync::Mutex<Vec<String>>>| -> OnComplete<u32> {
            let seen = Arc::clone(seen);
            Box::new(move |result: &Result<u32, TaskError>| {
                lock(&seen).push(format!("{result:?}"));
            })
        };
        let ran = counted(
            &Arc::new(Counter::new(0)),
            Spec {
                on_complete: Some(on_complete(&seen)),
                ..Spec::default()
            },
        );
        assert!(Arc::clone(&ran).run(&host));
        let cancelled = counted(
            &Arc::new(Counter::new(0)),
            Spec {
                on_complete: Some(on_complete(&seen)),
                ..Spec::default()
            },
        );
        cancelled.cancel_before_start(Why::Cancelled, &host);
        assert_eq!(
            *lock(&seen),
            ["Ok(42)".to_owned(), "Err(Cancelled)".to_owned()]
        );
        assert_eq!(host.take(), [Event::Cancelled(Why::Cancelled)]);

        // A callback that panics: reported, and the handle still gets the
        // result.
        let panics = counted(
            &Arc::new(Counter::new(0)),
            Spec {
                on_complete: Some(Box::new(|_: &Result<u32, TaskError>| panic!("callback"))),
                ..Spec::default()
            },
        );
        assert!(Arc::clone(&panics).run(&host), "the task itself completed");
        assert_eq!(result(&panics).unwrap().unwrap(), 42);
        assert_eq!(
            host.take(),
            [Event::PanickedUnjoined("callback".to_owned())]
        );
    }

    #[test]
    fn dropping_the_closure_of_a_cancelled_task_counts_its_panic() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("drop");
            }
        }
        let host = FakeHost::default();
        let bomb = Bomb;
        let cell = Cell::new(
            move |_: &CancelToken| {
                let _bomb = &bomb;
            },
            Spec::default(),
        );
        assert_eq!(
            cell.cancel_before_start(Why::Cancelled, &host),
            Cancel::Cancelled
        );
        assert!(result(&cell).unwrap().unwrap_err().is_cancelled());
        assert_eq!(
            host.take(),
            [Event::Cancelled(Why::Cancelled), Event::PanicCounted]
        );
    }

    #[test]
    fn a_group_counts_each_task_of_the_batch_that_ends() {
        let host = FakeHost::default();
        assert!(lock_group(&Group::new(0)), "an empty batch is done at once");
        let group = Arc::new(Group::new(3));
        let spec = || Spec {
            group: Some(Arc::clone(&group)),
            ..Spec::default()
        };
        let runs = Arc::new(Counter::new(0));
        let tasks = [
            counted(&runs, spec()),
            counted(&runs, spec()),
            counted(&runs, spec()),
        ];
        assert!(Arc::clone(&tasks[0]).run(&host));
        assert_eq!(group.done.load(Ordering::SeqCst), 1);
        tasks[1].cancel_before_start(Why::Cancelled, &host);
        assert_eq!(group.done.load(Ordering::SeqCst), 2);
        // A task that ended counts once, however often it is reached.
        assert!(!Arc::clone(&tasks[1]).run(&host));
        assert!(!Arc::clone(&tasks[0]).run(&host));
        assert_eq!(group.done.load(Ordering::SeqCst), 2);
        assert!(!lock_group(&group));
        assert_eq!(tasks[2].steal(&host, true), Some(false));
        assert_eq!(group.done.load(Ordering::SeqCst), 3);
        assert!(lock_group(&group));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// A retried task's work: fails `left` more times (waiting 5 ms
    /// between attempts where it may leave, giving up where it may not),
    /// then returns `Ok(7)`.
    struct Flaky {
        left: u32,
        runs: Arc<Counter>,
    }

    impl Work<Result<u32, u32>> for Flaky {
        fn attempt(self, _token: &CancelToken, may_leave: bool) -> Step<Self, Result<u32, u32>> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            match (self.left, may_leave) {
                (0, _) => Step::Done(Ok(7)),
                (left, true) => Step::Again(
                    Flaky {
                        left: left - 1,
                        runs: self.runs,
                    },
                    Err(left),
                    Duration::from_millis(5),
                ),
                (left, false) => Step::Done(Err(left)),
            }
        }
    }

    /// A retried task's cell.
    type FlakyCell = Arc<Cell<Flaky, Result<u32, u32>>>;

    fn flaky(left: u32, token: &CancelToken) -> (Arc<Counter>, FlakyCell) {
        let runs = Arc::new(Counter::new(0));
        let spec = Spec {
            token: Some(token.clone()),
            ..Spec::default()
        };
        let work = Flaky {
            left,
            runs: Arc::clone(&runs),
        };
        (runs, Cell::new(work, spec))
    }

    /// A retried task that failed its first attempt on a worker (`left`
    /// more failures to come) and now waits, off it: the host heard.
    fn waiting_retry(left: u32) -> (FakeHost, CancelToken, Arc<Counter>, FlakyCell) {
        let host = FakeHost::default();
        let token = CancelToken::new();
        let (runs, cell) = flaky(left, &token);
        assert!(!Arc::clone(&cell).run(&host), "it has not ended");
        assert_eq!(host.take(), [Event::RetryAfter(Duration::from_millis(5))]);
        (host, token, runs, cell)
    }

    #[test]
    fn a_retried_task_leaves_its_worker_waiting_and_comes_back_through_the_queue() {
        let (host, _token, runs, cell) = waiting_retry(1);
        assert_eq!(stage(&cell), WAITING);
        assert!(!cell.has_ended());
        assert!(!cell.shared.is_finished());
        // Started: a cancel cannot stop it before it starts.
        assert_eq!(
            cell.cancel_before_start(Why::Cancelled, &host),
            Cancel::TooLate
        );
        // Its wait is over: through the queue, to a worker.
        assert!(enter_queue(&cell.shared.stage));
        assert!(!enter_queue(&cell.shared.stage), "in the queue once");
        assert!(leave_queue(&cell.shared.stage));
        assert!(Arc::clone(&cell).run(&host));
        assert_eq!(stage(&cell), DONE);
        assert_eq!(result(&cell).unwrap().unwrap(), Ok(7));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(host.take(), []);
    }

    #[test]
    fn a_waiting_retry_whose_token_is_cancelled_ends_with_its_last_result() {
        // Where the wait is cut short (given up by whoever holds it), and
        // where the worker that takes it back sees the cancel: no attempt
        // runs after the cancel, and the result is the last one.
        for given_up in [true, false] {
            let (host, token, runs, cell) = waiting_retry(3);
            token.cancel();
            if given_up {
                assert!(cell.give_up_waiting(&host));
                assert!(!cell.give_up_waiting(&host), "given up once");
            } else {
                assert!(enter_queue(&cell.shared.stage));
                assert!(leave_queue(&cell.shared.stage));
                assert!(Arc::clone(&cell).run(&host));
            }
            assert_eq!(stage(&cell), DONE);
            assert_eq!(result(&cell).unwrap().unwrap(), Err(3));
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            assert_eq!(host.take(), [], "a retry that ran is not cancelled");
        }
    }

    #[test]
    fn a_helping_join_takes_a_waiting_retry_and_waits_out_its_wait_in_place() {
        // Held by the pool, and queued again: the joiner claims it (a ghost
        // if queued), waits until it is due, then runs its next attempts
        // without leaving.
        for queued in [false, true] {
            let (host, _token, runs, cell) = waiting_retry(2);
            if queued {
                assert!(enter_queue(&cell.shared.stage));
            }
            let start = Instant::now();
            assert_eq!(cell.steal(&host, true), Some(queued));
            assert!(
                start.elapsed() >= Duration::from_millis(4),
                "it did not wait"
            );
            assert_eq!(
                result(&cell).unwrap().unwrap(),
                Err(1),
                "gave up where it could not leave"
            );
            assert_eq!(runs.load(Ordering::SeqCst), 2);
            let mut events = host.take();
            if queued {
                assert_eq!(events.remove(0), Event::GhostMade);
            }
            assert_eq!(events, [Event::CompletedAside]);
            assert!(!cell.give_up_waiting(&host), "the joiner owns it");
            if queued {
                assert!(
                    !leave_queue(&cell.shared.stage),
                    "its place in the queue is a ghost"
                );
            }
        }
    }

    #[test]
    fn a_retried_task_run_by_a_caller_or_a_lane_never_leaves() {
        let host = FakeHost::default();
        let token = CancelToken::new();
        let (runs, cell) = flaky(1, &token);
        assert_eq!(cell.steal(&host, true), Some(false));
        assert_eq!(
            result(&cell).unwrap().unwrap(),
            Err(1),
            "it waited in place"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let (runs, keyed) = flaky(1, &token);
        hold(&keyed.shared.stage);
        assert!(Arc::clone(&keyed).run(&host));
        assert_eq!(result(&keyed).unwrap().unwrap(), Err(1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(host.take(), [Event::CompletedAside], "neither left to wait");
    }

    fn lock_group(group: &Group) -> bool {
        crate::sync::lock(&group.waiter).finished
    }

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
