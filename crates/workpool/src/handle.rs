//! `TaskHandle<T>` and `BatchHandle<T>`: a task's result, joined from a
//! thread or awaited from any executor.

use crate::error::TaskError;
use crate::job::{self, Group, Outcome, SharedHost, Why};
use crate::pool::worker;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use crate::sync::MutexGuard;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Runs a task not yet started on the calling thread.
pub(crate) struct Stealer {
    job: Arc<dyn job::Job>,
    host: SharedHost,
}

impl Stealer {
    pub(crate) fn run_here(&self) {
        if let Some(true) = self.job.steal(&*self.host, true) {
            self.host.room_freed();
        }
    }

    /// Runs a task the pool refused on the calling thread.
    pub(crate) fn run_refused(&self) {
        let _ = self.job.steal(&*self.host, false);
    }
}

/// Waits on `finished` until the waiters under `guard` say finished, or
/// `until` passes (`None`: no limit); gives the guard back, still locked,
/// if finished. The waiting thread is counted, so that the one who
/// finishes notifies only when someone waits.
fn wait_finished<'a, S>(
    finished: &crate::sync::Condvar,
    mut guard: MutexGuard<'a, S>,
    until: Option<Instant>,
    waiters: impl Fn(&mut S) -> &mut job::Waiters,
) -> Option<MutexGuard<'a, S>> {
    while !waiters(&mut guard).finished {
        // The clock is read only when there is a wait to bound.
        let left = match until {
            None => Duration::from_secs(3600),
            Some(until) => {
                let now = Instant::now();
                if until <= now {
                    return None;
                }
                until - now
            }
        };
        waiters(&mut guard).threads += 1;
        guard = crate::sync::wait_timeout(finished, guard, left);
        waiters(&mut guard).threads -= 1;
    }
    Some(guard)
}

/// The result of one task: [`join`](Self::join) it, wait for it with a
/// timeout, [`cancel`](Self::cancel) it, or `.await` it.
///
/// The future stores its waker in the task, and the worker that ends the
/// task wakes it: no polling loop and no thread per await, on any executor.
///
/// Dropping the handle detaches the task: it still runs, and a panic it
/// raises goes to the pool's panic handler. While a handle lives, the panic
/// is its own: [`join`](Self::join) returns it as [`TaskError::Panicked`]
/// and the panic handler is not called. Every panic is counted in
/// [`Pool::panicked`](crate::Pool::panicked).
///
/// # Examples
///
/// ```
/// let pool = workpool::Pool::new(2)?;
/// let handle = pool.spawn(|| 6 * 7)?;
/// assert_eq!(handle.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a dropped handle detaches its task; call `join` or `.await` for its result"]
pub struct TaskHandle<T: 'static> {
    job: Arc<dyn Outcome<T>>,
    /// The pool the task reports to.
    host: SharedHost,
    /// The result was taken (joined or awaited to the end).
    taken: bool,
}

impl<T: Send + 'static> TaskHandle<T> {
    pub(crate) fn new(job: Arc<dyn Outcome<T>>, host: SharedHost) -> TaskHandle<T> {
        TaskHandle {
            job,
            host,
            taken: false,
        }
    }

    /// Whether the task has ended: run to the end (or panicked), or been
    /// cancelled before it started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(1)?;
    /// let handle = pool.spawn(|| ())?;
    /// assert!(handle.wait_timeout(Duration::from_secs(10)));
    /// assert!(handle.is_finished());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.job.shared().is_finished()
    }

    /// Blocks until the task has ended or `timeout` has passed; returns
    /// whether it has ended. The task runs on either way. It never runs the
    /// task on the calling thread, as [`join`](Self::join) may: that run
    /// could not keep the bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let gated = pool.spawn(move || rx.recv())?;
    /// assert!(!gated.wait_timeout(Duration::from_millis(1)));
    /// tx.send(())?;
    /// assert!(gated.wait_timeout(Duration::from_secs(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait(Instant::now().checked_add(timeout)).is_some()
    }

    /// Waits until the task has ended (or `until` passes: `None`), and
    /// returns the slot, still locked, so that `join` takes the result
    /// without locking again.
    fn wait(&self, until: Option<Instant>) -> Option<MutexGuard<'_, job::Slot<T>>> {
        // Only an unbounded wait helps: a task run here could not be
        // bounded by `until`.
        if until.is_none() {
            self.help_if_worker();
        }
        let shared = self.job.shared();
        wait_finished(
            &shared.finished,
            crate::sync::lock(&shared.slot),
            until,
            |slot| &mut slot.waiters,
        )
    }

    /// Cancels the task: a task that has not started never runs (its queue
    /// slot is free at once, and its handle says
    /// [`TaskError::Cancelled`]); a running task's
    /// [`CancelToken`](crate::CancelToken) is cancelled, which it sees if it
    /// looks. Returns whether the task was stopped before it started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::builder().capacity(1).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let busy = pool.spawn(move || rx.recv())?;
    /// let queued = pool.spawn(|| "never")?;
    /// assert!(queued.cancel());
    /// assert!(queued.join().unwrap_err().is_cancelled());
    /// tx.send(()).unwrap();
    /// assert!(busy.join()?.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        job::cancel(&*self.job, Why::Cancelled, &*self.host)
    }

    /// [`cancel`](Self::cancel) for a given reason: the loom models cancel
    /// by deadline this way, without the maintenance thread's clock.
    #[cfg(all(test, loom))]
    pub(crate) fn cancel_for(&self, why: Why) -> bool {
        job::cancel(&*self.job, why, &*self.host)
    }

    /// Blocks until the task has ended and returns its result.
    ///
    /// Called from a task of any pool (a worker thread) on a task that has
    /// not started, it runs that task here instead of waiting for a worker
    /// (which, in a full pool, might be itself, or one that waits for this
    /// one: two pools joining each other's tasks), as rayon's joins help
    /// while they wait. A task cancelled before it started (by its handle,
    /// its token's parent, its deadline or `release`) is not run: the join
    /// returns why. Nor is a keyed task ([`Pool::spawn_keyed`](crate::Pool::spawn_keyed)),
    /// which runs only in its key's turn, or a delayed one not yet due
    /// ([`Pool::spawn_after`](crate::Pool::spawn_after)): the join waits for
    /// them, so a task that joins one holds its worker meanwhile.
    /// [`wait_timeout`](Self::wait_timeout) never runs the task here: it
    /// could not keep its bound.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] with the payload if the task panicked;
    /// [`TaskError::Cancelled`] or [`TaskError::DeadlineExceeded`] if it was
    /// cancelled before it started.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let handle = pool.spawn(|| "done")?;
    /// assert_eq!(handle.join()?, "done");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(mut self) -> Result<T, TaskError> {
        let result = self
            .wait(None)
            .and_then(|mut slot| slot.result.take())
            .expect("a finished task's handle holds its result until taken");
        self.taken = true;
        result
    }

    /// A worker thread (of any pool) waiting for a task not yet started
    /// runs it: waiting would hold a worker that the task, or a task it
    /// waits for, may need.
    fn help_if_worker(&self) {
        if worker::is_a_worker() {
            self.run_here();
        }
    }

    /// Runs the task on the calling thread if it has not started.
    pub(crate) fn run_here(&self) {
        self.stealer().run_here();
    }

    /// What runs the task here, without being its handle.
    pub(crate) fn stealer(&self) -> Stealer {
        Stealer {
            job: Arc::clone(&self.job).as_job(),
            host: Arc::clone(&self.host),
        }
    }

    fn take_result(&mut self) -> Result<T, TaskError> {
        self.taken = true;
        crate::sync::lock(&self.job.shared().slot)
            .result
            .take()
            .expect("a finished task's handle holds its result until taken")
    }
}

impl<T: Send + 'static> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.taken, "a TaskHandle polled after it completed");
        {
            let mut slot = crate::sync::lock(&self.job.shared().slot);
            if !slot.waiters.finished {
                match &mut slot.waiters.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    waker => *waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(self.take_result())
    }
}

impl<T: 'static> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        if !self.taken {
            let mut slot = crate::sync::lock(&self.job.shared().slot);
            slot.detached = true;
            slot.waiters.waker = None;
        }
    }
}

impl<T: 'static> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.job.shared().is_finished())
            .finish()
    }
}

/// The results of a batch of tasks ([`Pool::spawn_batch`](crate::Pool::spawn_batch)),
/// in submission order, with one handle and no coordinator thread: each
/// task counts itself done, and the last one wakes the waiter.
///
/// Dropping it detaches the tasks: they still run.
///
/// # Examples
///
/// ```
/// let pool = workpool::Pool::new(4)?;
/// let batch = pool.spawn_batch((1..=4u64).map(|n| move || n * n))?;
/// let squares: Vec<u64> = batch.join().into_iter().map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a dropped batch handle detaches its tasks; call `join` or `.await` for the results"]
pub struct BatchHandle<T: 'static> {
    handles: Vec<TaskHandle<T>>,
    group: Arc<Group>,
    /// The token the batch's tasks share, if they have one.
    token: Option<crate::cancel::CancelToken>,
    taken: bool,
}

impl<T: Send + 'static> BatchHandle<T> {
    pub(crate) fn new(
        handles: Vec<TaskHandle<T>>,
        group: Arc<Group>,
        token: Option<crate::cancel::CancelToken>,
    ) -> BatchHandle<T> {
        BatchHandle {
            handles,
            group,
            token,
            taken: false,
        }
    }

    /// `(finished, total)`: how many tasks of the batch have ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let batch = pool.spawn_batch((0..3).map(|_| || ()))?;
    /// batch.wait_timeout(std::time::Duration::from_secs(10));
    /// assert_eq!(batch.progress(), (3, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn progress(&self) -> (usize, usize) {
        (self.group.done.load(Ordering::SeqCst), self.group.total)
    }

    /// Whether every task of the batch has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // holds the only worker
    /// let batch = pool.spawn_batch((0..3).map(|n| move || n))?;
    /// assert!(!batch.is_finished());
    /// tx.send(())?;
    /// assert!(batch.wait_timeout(Duration::from_secs(10)));
    /// assert!(batch.is_finished());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        crate::sync::lock(&self.group.waiter).finished
    }

    /// Blocks until every task has ended or `timeout` has passed; returns
    /// whether all have ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // holds the only worker
    /// let batch = pool.spawn_batch((0..3).map(|n| move || n))?;
    /// assert!(!batch.wait_timeout(Duration::from_millis(1)));
    /// tx.send(())?;
    /// assert!(batch.wait_timeout(Duration::from_secs(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let until = Instant::now().checked_add(timeout);
        // Only an unbounded wait (`join`) helps, as `TaskHandle::join`.
        if until.is_none() {
            for handle in &self.handles {
                if !handle.is_finished() {
                    handle.help_if_worker();
                }
            }
        }
        let waiters = crate::sync::lock(&self.group.waiter);
        wait_finished(&self.group.all_done, waiters, until, |w| w).is_some()
    }

    /// Cancels every task of the batch (see [`TaskHandle::cancel`]): those
    /// not started never run, and running ones see their token cancelled
    /// (tasks of [`Pool::batch`](crate::Pool::batch) have one). Returns how
    /// many were stopped before they started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // holds the only worker
    /// let batch = pool.spawn_batch((0..3).map(|n| move || n))?;
    /// assert_eq!(batch.cancel(), 3);
    /// tx.send(())?;
    /// assert!(batch.join().iter().all(|r| r.as_ref().is_err_and(|e| e.is_cancelled())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> usize {
        // Every task not started is stopped first: cancelling the tokens
        // first would end running tasks, whose workers would then start
        // queued ones before they could be stopped.
        let stopped = self
            .handles
            .iter()
            .filter(|h| job::stop_before_start(&*h.job, Why::Cancelled, &*h.host))
            .count();
        if let Some(token) = &self.token {
            token.cancel();
        }
        for handle in &self.handles {
            handle.cancel();
        }
        stopped
    }

    /// Blocks until every task has ended; their results in submission order.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let batch = pool.spawn_batch((1..=3).map(|n| move || n * 10))?;
    /// let tens: Vec<i32> = batch.join().into_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(tens, [10, 20, 30]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(mut self) -> Vec<Result<T, TaskError>> {
        self.wait_timeout(Duration::MAX);
        self.take_results()
    }

    /// How many tasks the batch has.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let batch = pool.spawn_batch((0..5).map(|n| move || n))?;
    /// assert_eq!(batch.len(), 5);
    /// assert_eq!(batch.join().len(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the batch has no task.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let none = pool.spawn_batch(Vec::<fn() -> u8>::new())?;
    /// assert!(none.is_empty() && none.is_finished());
    /// assert!(none.join().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    fn take_results(&mut self) -> Vec<Result<T, TaskError>> {
        self.taken = true;
        self.handles
            .iter_mut()
            .map(TaskHandle::take_result)
            .collect()
    }
}

impl<T: Send + 'static> Future for BatchHandle<T> {
    type Output = Vec<Result<T, TaskError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.taken, "a BatchHandle polled after it completed");
        {
            let mut waiters = crate::sync::lock(&self.group.waiter);
            if !waiters.finished {
                match &mut waiters.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    waker => *waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(self.take_results())
    }
}

impl<T: 'static> fmt::Debug for BatchHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchHandle")
            .field("done", &self.group.done.load(Ordering::Relaxed))
            .field("total", &self.group.total)
            .finish()
    }
}
