//! `TaskBuilder`: a task with a cancel token, a deadline, a completion
//! callback and retries; and `Retry`, the retry schedule.

use crate::cancel::CancelToken;
use crate::error::{PoolError, TaskError};
use crate::handle::{BatchHandle, TaskHandle};
use crate::job::{Deadline, OnComplete, OnEachComplete, Step, Work};
use crate::pool::Pool;
use backon::BackoffBuilder;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task being configured: made by [`Pool::task`], started by
/// [`spawn`](Self::spawn).
///
/// The closure gets the task's [`CancelToken`], which is cancelled by the
/// handle's [`cancel`](TaskHandle::cancel), by the deadline, by a
/// [`parent`](Self::parent) token, and by the pool's
/// [`release`](Pool::release).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool::Pool;
///
/// let pool = Pool::new(2)?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let handle = pool
///     // A long wait that a cancel or the deadline ends early.
///     .task(|token| token.wait_timeout(Duration::from_secs(60)))
///     .deadline(Duration::from_millis(20))
///     .on_complete(move |result| tx.send(result.is_ok()).unwrap())
///     .spawn()?;
/// // Cancelled while it waited, or, on a busy machine, before it started.
/// assert!(handle.join().unwrap_or_else(|e| e.is_deadline()));
/// assert!(rx.try_recv().is_ok(), "the callback ran before `join` returned");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a task builder does nothing until `spawn` is called"]
pub struct TaskBuilder<'p, F, T> {
    pool: &'p Pool,
    f: F,
    deadline: Option<Deadline>,
    on_complete: Option<OnComplete<T>>,
    parents: Vec<CancelToken>,
    /// The hash of the task's key, if it has one.
    key: Option<u64>,
    /// How long the maintenance thread holds it before it is submitted.
    delay: Option<Duration>,
    /// Set by [`retry`](Self::retry).
    retry: Option<RetryPlan<F, T>>,
}

impl<'p, F, T> TaskBuilder<'p, F, T>
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(pool: &'p Pool, f: F) -> Self {
        TaskBuilder {
            pool,
            f,
            deadline: None,
            on_complete: None,
            parents: Vec::new(),
            key: None,
            delay: None,
            retry: None,
        }
    }

    /// Holds the task until `delay` has passed: the pool's maintenance
    /// thread keeps it meanwhile (no worker, no thread of its own), then
    /// submits it. A delayed task that finds the pool full is tried again
    /// every millisecond, in order, until it has room; its deadline, if
    /// it has one, counts from then. It can be cancelled while it waits;
    /// `release` cancels it. See [`Pool::spawn_after`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = workpool::Pool::new(2)?;
    /// let start = Instant::now();
    /// let later = pool.task(|_token| Instant::now()).delay(Duration::from_millis(30)).spawn()?;
    /// assert!(later.join()? - start >= Duration::from_millis(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Gives the task a key: tasks with equal keys run one at a time, in
    /// the order they were accepted; see [`Pool::spawn_keyed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let pool = workpool::Pool::new(4)?;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let handles: Vec<_> = (0..10)
    ///     .map(|n| {
    ///         let log = Arc::clone(&log);
    ///         pool.task(move |_token| log.lock().unwrap().push(n)).key("alice").spawn()
    ///     })
    ///     .collect::<Result<_, _>>()?;
    /// for handle in handles {
    ///     handle.join()?;
    /// }
    /// assert_eq!(*log.lock().unwrap(), (0..10).collect::<Vec<_>>(), "in order, one at a time");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key<K: std::hash::Hash>(mut self, key: K) -> Self {
        self.key = Some(self.pool.inner.keys.hash(&key));
        self
    }

    /// Cancels the task's token once `deadline` has passed since the pool
    /// accepted the task (time blocked waiting for room does not count);
    /// a task not started by then never runs, and its handle says
    /// [`TaskError::DeadlineExceeded`]. Replaces the pool's
    /// [`task_deadline`](crate::PoolBuilder::task_deadline). Default: the
    /// pool's, or none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // holds the only worker
    /// let late = pool.task(|_token| "ran").deadline(Duration::from_millis(10)).spawn()?;
    /// assert!(late.join().unwrap_err().is_deadline());
    /// tx.send(())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(Deadline::After(deadline));
        self
    }

    /// Cancels the task's token at `at`, whenever the pool accepted it: one
    /// deadline for every task of a request (Go's `context.WithDeadline`).
    /// A task not started by then never runs, and its handle says
    /// [`TaskError::DeadlineExceeded`]; an instant already past means the
    /// task never runs. Replaces [`deadline`](Self::deadline) and the
    /// pool's [`task_deadline`](crate::PoolBuilder::task_deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = workpool::Pool::new(2)?;
    /// let request_ends = Instant::now() + Duration::from_secs(30);
    /// let fast = pool.task(|_token| 1).deadline_at(request_ends).spawn()?;
    /// assert_eq!(fast.join()?, 1);
    /// // An instant already past: the task never runs.
    /// let late = pool.task(|_token| 2).deadline_at(Instant::now()).spawn()?;
    /// assert!(late.join().unwrap_err().is_deadline());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline_at(mut self, at: Instant) -> Self {
        self.deadline = Some(Deadline::At(at));
        self
    }

    /// Runs `callback` on the worker once the task has ended (or on the
    /// thread that cancelled it before it started), with its result, before
    /// the handle sees it. A panic in the callback is caught, counted and
    /// handed to the panic handler, like a task's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let handle = pool
    ///     .task(|_token| 6 * 7)
    ///     .on_complete(move |result| tx.send(result.as_ref().ok().copied()).unwrap())
    ///     .spawn()?;
    /// assert_eq!(handle.join()?, 42);
    /// // It ran before `join` returned.
    /// assert_eq!(rx.try_recv()?, Some(42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_complete<C>(mut self, callback: C) -> Self
    where
        C: FnOnce(&Result<T, TaskError>) + Send + 'static,
    {
        self.on_complete = Some(Box::new(callback));
        self
    }

    /// Makes the task's token a child of `parent` too: cancelling `parent`
    /// cancels this task (fan-out: one token stops every straggler).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::CancelToken;
    /// let pool = workpool::Pool::new(1)?;
    /// let stop = CancelToken::new();
    /// let handle = pool
    ///     .task(|token| token.wait_timeout(Duration::from_secs(60)))
    ///     .parent(&stop)
    ///     .spawn()?;
    /// stop.cancel();
    /// // Cancelled while it waited, or before it started.
    /// assert!(handle.join().unwrap_or_else(|e| e.is_cancelled()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parent(mut self, parent: &CancelToken) -> Self {
        self.parents.push(parent.clone());
        self
    }

    /// Submits the task, as [`Pool::submit`] would (blocking for room,
    /// unless the pool is nonblocking), and returns its handle.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`]: [`Closed`](PoolError::Closed),
    /// [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let handle = pool.task(|token| token.is_cancelled()).spawn()?;
    /// assert!(!handle.join()?);
    /// pool.release();
    /// assert_eq!(pool.task(|_token| ()).spawn().unwrap_err(), workpool::PoolError::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(self) -> Result<TaskHandle<T>, PoolError> {
        let TaskBuilder {
            pool,
            f,
            deadline,
            on_complete,
            parents,
            key,
            delay,
            retry,
        } = self;
        let inner = &pool.inner;
        match retry {
            None => inner.spawn_with_token(f, deadline, on_complete, &parents, key, delay),
            Some(plan) => {
                let f = plan.attempts(f);
                inner.spawn_with_token(f, deadline, on_complete, &parents, key, delay)
            }
        }
    }
}

impl<'p, F, U, E> TaskBuilder<'p, F, Result<U, E>>
where
    F: FnOnce(&CancelToken) -> Result<U, E> + Clone + Send + 'static,
    U: Send + 'static,
    E: Send + 'static,
{
    /// Runs the task again after each `Err`, waiting as `retry` says
    /// between attempts, until it returns `Ok`, the attempts run out (the
    /// last `Err` is the result), or its token is cancelled (which also ends
    /// a wait between attempts at once): a `WithRetry` for pool tasks.
    ///
    /// A wait holds no worker: the task leaves its worker, the pool's
    /// maintenance thread holds it (as it holds a [delayed](Self::delay)
    /// task), and it comes back through the queue when its wait is over,
    /// taking a place only then. Meanwhile the task has started: its
    /// handle's [`cancel`](TaskHandle::cancel) (or its deadline, or
    /// `release`) ends the wait at once, on the cancelling thread, and the
    /// result is the last `Err`; [`Pool::wait_idle`] does not wait for it,
    /// as for a delayed task. Two exceptions wait on their thread instead:
    /// a [keyed](Self::key) task (its key's next task must not start
    /// before it ends), and a task run by a caller rather than a worker (a
    /// helping `join`).
    ///
    /// Each attempt runs a fresh copy of the closure as it was given, as
    /// tower's retry clones its request: so the closure must be `Clone`,
    /// and what must outlive an attempt (a counter, a cursor) lives behind
    /// an `Arc`. Not `FnMut`: Rust fixes a closure's kind where it is
    /// written, from the bound of [`Pool::task`], which is `FnOnce` so that
    /// a task without retries may move out of what it captures.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use workpool::{Pool, Retry};
    ///
    /// let pool = Pool::new(2)?;
    /// let tries = Arc::new(AtomicUsize::new(0));
    /// let seen = Arc::clone(&tries);
    /// let handle = pool
    ///     .task(move |_token| {
    ///         let tries = seen.fetch_add(1, Ordering::SeqCst) + 1;
    ///         if tries < 3 { Err(tries) } else { Ok(tries) }
    ///     })
    ///     .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(5))
    ///     .spawn()?;
    /// assert_eq!(handle.join()?, Ok(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A one-worker pool runs other tasks while a retry waits:
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{Pool, Retry};
    /// let pool = Pool::new(1)?;
    /// let failing = pool
    ///     .task(|_token| Err::<(), _>("down"))
    ///     .retry(Retry::exponential(Duration::from_secs(60)).max_attempts(2))
    ///     .spawn()?;
    /// // The only worker is free during the 60 s wait.
    /// assert_eq!(pool.spawn(|| 7)?.join()?, 7);
    /// failing.cancel();
    /// assert_eq!(failing.join()?, Err("down"), "its wait ended with its last error");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(RetryPlan::new(retry));
        self
    }
}

impl<F, T> fmt::Debug for TaskBuilder<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("deadline", &self.deadline)
            .field("on_complete", &self.on_complete.as_ref().map(|_| ".."))
            .field("parents", &self.parents.len())
            .field("retry", &self.retry.as_ref().map(|plan| &plan.retry))
            .finish()
    }
}

/// How a retried task waits between attempts: exponential backoff with
/// jitter (the schedule is the `backon` crate's `ExponentialBuilder`).
///
/// Defaults: 3 attempts in all, the delay doubling from `first_delay`, at
/// most 60 s, with a random jitter of up to one delay added to each wait so
/// that many failing tasks do not retry in step.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool::Retry;
///
/// let retry = Retry::exponential(Duration::from_millis(10))
///     .max_attempts(5)
///     .max_delay(Duration::from_secs(1));
/// assert_eq!(retry.attempts(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct Retry {
    first_delay: Duration,
    max_delay: Duration,
    factor: f32,
    max_attempts: usize,
    jitter: bool,
}

impl Retry {
    /// Waits `first_delay`, then twice as long after each further failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::Retry;
    /// let retry = Retry::exponential(Duration::from_millis(10));
    /// assert_eq!(retry.attempts(), 3);
    /// assert!(format!("{retry:?}").contains("first_delay: 10ms"));
    /// ```
    pub fn exponential(first_delay: Duration) -> Retry {
        Retry {
            first_delay,
            max_delay: Duration::from_secs(60),
            factor: 2.0,
            max_attempts: 3,
            jitter: true,
        }
    }

    /// Attempts in all, the first included. Default 3. `0` is read as 1:
    /// a task runs at least once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::Retry;
    /// let first = Duration::from_millis(10);
    /// assert_eq!(Retry::exponential(first).max_attempts(5).attempts(), 5);
    /// assert_eq!(Retry::exponential(first).max_attempts(0).attempts(), 1);
    /// ```
    pub fn max_attempts(mut self, attempts: usize) -> Retry {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The longest wait between attempts. Default 60 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::Retry;
    /// // 100 ms, 200 ms, then 250 ms between the next attempts.
    /// let retry = Retry::exponential(Duration::from_millis(100))
    ///     .max_delay(Duration::from_millis(250));
    /// assert!(format!("{retry:?}").contains("max_delay: 250ms"));
    /// ```
    pub fn max_delay(mut self, max_delay: Duration) -> Retry {
        self.max_delay = max_delay;
        self
    }

    /// How much longer each wait is than the one before. Default 2. Values
    /// below 1 are read as 1 (a constant delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::Retry;
    /// let triple = Retry::exponential(Duration::from_millis(10)).factor(3.0);
    /// assert!(format!("{triple:?}").contains("factor: 3.0"));
    /// // Below 1: a constant delay.
    /// let constant = Retry::exponential(Duration::from_millis(10)).factor(0.5);
    /// assert!(format!("{constant:?}").contains("factor: 1.0"));
    /// ```
    pub fn factor(mut self, factor: f32) -> Retry {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// No random jitter: the waits are exactly the schedule's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::Retry;
    /// // Waits of exactly 10 ms, then 20 ms.
    /// let retry = Retry::exponential(Duration::from_millis(10)).without_jitter();
    /// assert!(format!("{retry:?}").contains("jitter: false"));
    /// ```
    pub fn without_jitter(mut self) -> Retry {
        self.jitter = false;
        self
    }

    /// Attempts in all, the first included.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{Pool, Retry};
    /// let retry = Retry::exponential(Duration::from_millis(1)).max_attempts(4);
    /// let pool = Pool::new(1)?;
    /// let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    /// let handle = pool
    ///     .task(move |_token| {
    ///         Err::<(), usize>(runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
    ///     })
    ///     .retry(retry.clone())
    ///     .spawn()?;
    /// assert_eq!(handle.join()?, Err(retry.attempts()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attempts(&self) -> usize {
        self.max_attempts
    }

    /// The waits between attempts, one fewer than the attempts: the
    /// schedule a task's retries follow, for code that retries on its own
    /// terms (a fresh draw of the jitter each call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::Retry;
    /// let ms = Duration::from_millis;
    /// let retry = Retry::exponential(ms(10)).max_attempts(4).max_delay(ms(15)).without_jitter();
    /// let delays: Vec<Duration> = retry.delays().collect();
    /// assert_eq!(delays, [ms(10), ms(15), ms(15)]);
    /// ```
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + 'static {
        let mut builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.first_delay.min(self.max_delay))
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .with_max_times(self.max_attempts - 1);
        if self.jitter {
            builder = builder.with_jitter();
        }
        builder.build()
    }
}

/// What `retry` set: the schedule, and how to copy the closure and judge
/// its result, taken where the closure is known to be `Clone` and its
/// result a `Result`, so that the builders keep one type with or without
/// retries.
struct RetryPlan<F, T> {
    retry: Retry,
    copy: fn(&F) -> F,
    failed: fn(&T) -> bool,
}

impl<F, U, E> RetryPlan<F, Result<U, E>>
where
    F: Clone,
{
    fn new(retry: Retry) -> Self {
        RetryPlan {
            retry,
            copy: F::clone,
            failed: Result::is_err,
        }
    }
}

impl<F, T> RetryPlan<F, T> {
    /// The retried task of `f`.
    fn attempts(&self, f: F) -> Attempts<F, T> {
        Attempts {
            f,
            copy: self.copy,
            failed: self.failed,
            delays: Box::new(self.retry.delays()),
        }
    }
}

impl<F, T> Clone for RetryPlan<F, T> {
    fn clone(&self) -> Self {
        RetryPlan {
            retry: self.retry.clone(),
            copy: self.copy,
            failed: self.failed,
        }
    }
}

/// A retried task: `f` run again (a fresh copy each attempt) after each
/// failed result, until one succeeds, the delays run out, or its token is
/// cancelled. Between attempts it leaves its worker where it may
/// ([`Step::Again`]), else it waits on its token.
pub(crate) struct Attempts<F, T> {
    f: F,
    copy: fn(&F) -> F,
    failed: fn(&T) -> bool,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
}

impl<F, T> Work<T> for Attempts<F, T>
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    fn attempt(mut self, token: &CancelToken, may_leave: bool) -> Step<Self, T> {
        loop {
            let result = (self.copy)(&self.f)(token);
            if !(self.failed)(&result) {
                return Step::Done(result);
            }
            let delay = match self.delays.next() {
                Some(delay) if !token.is_cancelled() => delay,
                _ => return Step::Done(result),
            };
            if may_leave {
                return Step::Again(self, result, delay);
            }
            if token.wait_timeout(delay) {
                return Step::Done(result);
            }
        }
    }
}

/// A batch being configured: made by [`Pool::batch`], started by
/// [`spawn`](Self::spawn). Its tasks' tokens are children of one batch
/// [`CancelToken`], cancelled
/// by [`BatchHandle::cancel`](crate::BatchHandle::cancel), by a
/// [`parent`](Self::parent), and by the pool's [`release`](Pool::release).
#[must_use = "a batch builder does nothing until `spawn` is called"]
pub struct BatchBuilder<'p, F, T> {
    pool: &'p Pool,
    tasks: Vec<F>,
    deadline: Option<Deadline>,
    on_complete: Option<OnEachComplete<T>>,
    parents: Vec<CancelToken>,
    /// Set by [`retry`](Self::retry).
    retry: Option<RetryPlan<F, T>>,
}

impl<'p, F, T> BatchBuilder<'p, F, T>
where
    F: FnOnce(&CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(pool: &'p Pool, tasks: Vec<F>) -> Self {
        BatchBuilder {
            pool,
            tasks,
            deadline: None,
            on_complete: None,
            parents: Vec::new(),
            retry: None,
        }
    }

    /// A deadline for each task, counted from its acceptance: see
    /// [`TaskBuilder::deadline`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use workpool::CancelToken;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // holds the only worker
    /// let tasks = (0..3).map(|n| move |_: &CancelToken| n);
    /// let batch = pool.batch(tasks).deadline(Duration::from_millis(10)).spawn()?;
    /// assert!(batch.join().iter().all(|r| r.as_ref().is_err_and(|e| e.is_deadline())));
    /// tx.send(())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(Deadline::After(deadline));
        self
    }

    /// One deadline at an instant for every task of the batch: see
    /// [`TaskBuilder::deadline_at`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use workpool::CancelToken;
    /// let pool = workpool::Pool::new(2)?;
    /// let soon = Instant::now() + Duration::from_secs(30);
    /// let batch = pool.batch((0..3).map(|n| move |_: &CancelToken| n)).deadline_at(soon).spawn()?;
    /// assert_eq!(batch.join().into_iter().collect::<Result<Vec<_>, _>>()?, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline_at(mut self, at: Instant) -> Self {
        self.deadline = Some(Deadline::At(at));
        self
    }

    /// Runs `callback` once per task as it ends, with the task's index in
    /// the batch and its result (NotifyHub's per-message callback): see
    /// [`TaskBuilder::on_complete`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let pool = workpool::Pool::new(2)?;
    /// let indices = Arc::new(AtomicUsize::new(0));
    /// let seen = Arc::clone(&indices);
    /// let batch = pool
    ///     .batch((0..4).map(|n| move |_: &workpool::CancelToken| n))
    ///     .on_complete(move |index, _result| { seen.fetch_add(index, Ordering::SeqCst); })
    ///     .spawn()?;
    /// assert_eq!(batch.join().len(), 4);
    /// assert_eq!(indices.load(Ordering::SeqCst), 1 + 2 + 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_complete<C>(mut self, callback: C) -> Self
    where
        C: Fn(usize, &Result<T, TaskError>) + Send + Sync + 'static,
    {
        self.on_complete = Some(Arc::new(callback));
        self
    }

    /// Makes the batch's token a child of `parent` too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::CancelToken;
    /// let pool = workpool::Pool::new(2)?;
    /// let stop = CancelToken::new();
    /// let long = Duration::from_secs(60);
    /// let waits = (0..3).map(|_| move |token: &CancelToken| token.wait_timeout(long));
    /// let batch = pool.batch(waits).parent(&stop).spawn()?;
    /// stop.cancel();
    /// // Each was cancelled while it waited, or before it started.
    /// assert!(batch.join().into_iter().all(|r| r.unwrap_or_else(|e| e.is_cancelled())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parent(mut self, parent: &CancelToken) -> Self {
        self.parents.push(parent.clone());
        self
    }

    /// Submits the tasks in order, each as [`Pool::submit`] would.
    ///
    /// # Errors
    ///
    /// As [`Pool::spawn_batch`], for the first task refused:
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::CancelToken;
    /// let pool = workpool::Pool::new(2)?;
    /// let batch = pool.batch((1..=3).map(|n| move |_: &CancelToken| n * 2)).spawn()?;
    /// let doubled: Vec<i32> = batch.join().into_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(doubled, [2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(self) -> Result<BatchHandle<T>, PoolError> {
        let inner = &self.pool.inner;
        let token = Some(inner.new_task_token(&self.parents));
        match self.retry {
            None => inner.submit_batch(self.tasks, token, self.deadline, self.on_complete),
            Some(plan) => {
                let tasks = self.tasks.into_iter().map(|f| plan.attempts(f));
                inner.submit_batch(tasks, token, self.deadline, self.on_complete)
            }
        }
    }
}

impl<'p, F, U, E> BatchBuilder<'p, F, Result<U, E>>
where
    F: FnOnce(&CancelToken) -> Result<U, E> + Clone + Send + 'static,
    U: Send + 'static,
    E: Send + 'static,
{
    /// Runs each task again after each `Err`, as `retry` says: see
    /// [`TaskBuilder::retry`]. Each task has its own attempts and waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use workpool::{CancelToken, Pool, Retry};
    ///
    /// let pool = Pool::new(2)?;
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let tasks = (0..3).map(|n| {
    ///     let runs = Arc::clone(&runs);
    ///     let tries = Arc::new(AtomicUsize::new(0));
    ///     move |_: &CancelToken| {
    ///         runs.fetch_add(1, Ordering::SeqCst);
    ///         if tries.fetch_add(1, Ordering::SeqCst) == 0 { Err(n) } else { Ok(n) }
    ///     }
    /// });
    /// let retry = Retry::exponential(Duration::from_millis(1));
    /// let batch = pool.batch(tasks).retry(retry).spawn()?;
    /// let results: Vec<_> = batch.join().into_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(results, [Ok(0), Ok(1), Ok(2)]);
    /// assert_eq!(runs.load(Ordering::SeqCst), 6, "each ran twice");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(RetryPlan::new(retry));
        self
    }
}

impl<F, T> fmt::Debug for BatchBuilder<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("tasks", &self.tasks.len())
            .field("deadline", &self.deadline)
            .field("on_complete", &self.on_complete.as_ref().map(|_| ".."))
            .field("parents", &self.parents.len())
            .field("retry", &self.retry.as_ref().map(|plan| &plan.retry))
            .finish()
    }
}
