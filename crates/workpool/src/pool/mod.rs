//! `Pool`, the handle users hold, and the state its workers share.
//!
//! One concern a file; `PROTOCOL.md` beside them describes how they fit
//! together and names the pairs of operations that must see each other:
//! - `state.rs`: [`Inner`], `State` and the gauges, changed together;
//! - `dispatch.rs`: how `submit` finds a worker;
//! - `queue.rs`: the queue, and what admits a task (bounded or hand-off);
//! - `hot.rs`: workers spinning for a next task, claimed by submitters;
//! - `deposit.rs`: blocked submitters, served oldest first;
//! - `next.rs`: a worker's side: take, spin, park, leave;
//! - `lifecycle.rs`: `tune`, `release`, `release_timeout`, `reboot`;
//! - `threads.rs`: starting, counting and joining the pool's threads;
//! - `purge.rs`: idle expiry;
//! - `timer.rs`: the maintenance thread: purge rounds and task deadlines;
//! - `observe.rs`: `stats`, `health`, monitors, metrics export;
//! - `results.rs`: tasks with handles, batches, `try_submit`,
//!   `submit_timeout`, async submits and `wait_idle`;
//! - `task.rs`: [`Task`], what travels from a submitter to a worker;
//! - `worker.rs`: a worker thread's loop, and where it parks;
//! - `idle.rs`: the idle list, ordered by the moment each worker went idle;
//! - `host.rs`: what the task layer (`job.rs`) reports to the pool, the
//!   [`Host`](crate::job::Host) trait, implemented by [`Inner`];
//! - `loom.rs`: the loom models, one per pair and per defect once found
//!   (`RUSTFLAGS="--cfg loom" cargo test -p workpool --release --lib`).

mod deposit;
mod dispatch;
mod host;
mod hot;
mod idle;
mod lifecycle;
mod next;
mod observe;
mod purge;
mod queue;
mod results;
mod state;
pub(crate) mod task;
mod threads;
mod timer;
pub(crate) mod worker;

#[cfg(all(test, loom))]
mod loom;

pub(crate) use dispatch::Wait;
pub(crate) use lifecycle::log_quietly;
#[cfg(feature = "metrics")]
pub(crate) use observe::export;
pub use observe::Monitor;
pub use results::{SpawnAsync, SubmitAsync};
pub(crate) use state::Inner;

use crate::builder::PoolBuilder;
use crate::error::{BuildError, PoolError};
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use state::UNBOUNDED;
use std::fmt;
use std::time::Duration;
use task::Task;

/// A pool of reusable worker threads with a hard capacity.
///
/// At most [`capacity`](Pool::capacity) workers run tasks at once. A task
/// that finds every worker busy waits in a bounded queue
/// ([`queue_capacity`](PoolBuilder::queue_capacity), 1,024 by default);
/// when the workers and the queue are full, [`submit`](Pool::submit) blocks
/// (backpressure) or, [nonblocking](PoolBuilder::nonblocking), fails.
///
/// `Pool` is a cheap handle: clone it to share the pool between threads. When
/// the last handle is dropped the pool is [released](Pool::release) without
/// waiting: running and queued tasks still finish, but only if the process
/// lives on. A `main` that returns ends them with the process, so it should
/// call [`release_timeout`](Pool::release_timeout) (closed, every thread
/// ended) or [`wait_idle`](Pool::wait_idle) (every task done, the pool open)
/// before it returns.
///
/// A `Pool` clone captured by the pool's own panic handler is a cycle: the
/// pool then never sees its last handle drop. Release such a pool
/// explicitly.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use workpool::Pool;
///
/// let pool = Pool::new(4)?;
/// let sum = Arc::new(AtomicUsize::new(0));
/// for i in 1..=100 {
///     let sum = Arc::clone(&sum);
///     pool.submit(move || {
///         sum.fetch_add(i, Ordering::Relaxed);
///     })?;
/// }
/// // Wait for every task and every thread of the pool.
/// pool.release_timeout(Duration::from_secs(10))?;
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool {
    pub(crate) inner: Arc<Inner>,
}

impl Pool {
    /// A bounded pool of `capacity` workers with every other option at its
    /// default (see [`PoolBuilder::new`]).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] for a capacity of 0;
    /// [`BuildError::CapacityTooLarge`] above
    /// [`PoolBuilder::MAX_CAPACITY`];
    /// [`BuildError::SpawnFailed`] if the purge thread could not start.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, Pool};
    /// let pool = Pool::new(4)?;
    /// assert_eq!(pool.capacity(), Some(4));
    /// assert!(matches!(Pool::new(0), Err(BuildError::ZeroCapacity)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn new(capacity: usize) -> Result<Pool, BuildError> {
        PoolBuilder::new().capacity(capacity).build()
    }

    /// A builder for a pool with options; see [`PoolBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder().capacity(2).queue_capacity(8).build()?;
    /// assert_eq!(pool.capacity(), Some(2));
    /// assert_eq!(pool.queue_capacity(), 8);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn start(builder: PoolBuilder) -> Result<Pool, BuildError> {
        let pool = Pool {
            inner: Arc::new(Inner::new(builder)),
        };
        log_quietly(|| {
            tracing::debug!(pool = %pool.name(), capacity = ?pool.capacity(), "workpool: built");
        });
        if let Err(e) = pool.inner.start_background(0) {
            // Dropping the only handle releases what did start.
            return Err(BuildError::SpawnFailed(std::sync::Arc::new(e)));
        }
        Ok(pool)
    }

    /// Runs `task` on a worker of the pool.
    ///
    /// Hands the task to an idle worker, starts a new worker below capacity,
    /// or queues it. When every worker is busy and the queue is full (with
    /// `queue_capacity(0)`: as soon as every worker is busy), it blocks until
    /// there is room; in nonblocking mode, or when `max_blocking_tasks`
    /// callers are already blocked, it fails at once.
    ///
    /// A task accepted here runs exactly once, even if the pool is released
    /// meanwhile. A panic in the task goes to the panic handler; the worker
    /// and the pool live on.
    ///
    /// # Errors
    ///
    /// - [`PoolError::Closed`] if the pool is released (also when the
    ///   release happens while this call is blocked);
    /// - [`PoolError::Overloaded`] at once on a nonblocking pool, or when
    ///   `max_blocking_tasks` callers are already blocked;
    /// - [`PoolError::WouldDeadlock`] if it would block on a task of this
    ///   same pool (it can only wait for room that its own task holds);
    /// - [`PoolError::SpawnFailed`] if a new worker thread could not be
    ///   started.
    ///
    /// A refused task is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.submit(move || tx.send(6 * 7).unwrap())?;
    /// assert_eq!(rx.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit<F>(&self, task: F) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner
            .submit(Task::new(task), Wait::Block)
            .map_err(|(error, _task)| error)
    }

    /// [`submit`](Self::submit) for a task already boxed, giving it back with
    /// the error, so that a refused task can be tried elsewhere.
    pub(crate) fn submit_task(&self, task: Task, wait: Wait) -> Result<(), (PoolError, Task)> {
        self.inner.submit(task, wait)
    }

    /// The waiting half of [`release_timeout`](Self::release_timeout), for a
    /// pool already released.
    pub(crate) fn wait_for_threads(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.wait_for_threads(timeout)
    }

    /// Live worker threads, busy and idle (ants' `Running`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::builder().capacity(4).min_workers(2).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// pool.release_timeout(Duration::from_secs(10))?;
    /// assert_eq!(pool.workers(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.inner.gauges.workers.load(Ordering::Relaxed)
    }

    /// Workers parked on the idle list, waiting for a task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// // `min_workers` are on the idle list when `build` returns.
    /// let pool = workpool::Pool::builder().capacity(4).min_workers(2).build()?;
    /// assert_eq!(pool.idle(), 2);
    /// pool.spawn(|| ())?.join()?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pool.idle(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle(&self) -> usize {
        self.inner.gauges.idle.load(Ordering::Relaxed)
    }

    /// Workers not parked on the idle list: those running a task, and those
    /// that just finished one and poll for the next for a moment (200 µs at
    /// most) before they park. The idle list's order (the warmest worker is
    /// reused first, the coldest expires first) is about parked workers.
    ///
    /// It is [`workers`](Self::workers) minus [`idle`](Self::idle), two
    /// gauges read one after the other: while a worker starts, parks or
    /// exits between the two reads it can be off by one for that moment.
    /// Once [`wait_idle`](Self::wait_idle) has returned it reads 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?;
    /// assert_eq!(pool.busy(), 1);
    /// tx.send(())?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pool.busy(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy(&self) -> usize {
        self.workers().saturating_sub(self.idle())
    }

    /// Accepted tasks that no worker has taken yet: waiting in the queue, or,
    /// with `queue_capacity(0)`, for a moment on their way to the worker
    /// found for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // holds the only worker
    /// pool.submit(|| ())?;
    /// assert_eq!(pool.queued(), 1);
    /// tx.send(())?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pool.queued(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }

    /// How many callers are waiting for room now: blocked in `submit` (or
    /// `spawn`, `submit_timeout`, ...), or awaiting `submit_async` (ants'
    /// `Waiting`). Not tasks in the queue: see [`queued`](Self::queued).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::builder().capacity(1).queue_capacity(0).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // no room left
    /// let other = pool.clone();
    /// let blocked = std::thread::spawn(move || other.submit(|| ()));
    /// while pool.waiting() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!((pool.waiting(), pool.queued()), (1, 0));
    /// tx.send(())?;
    /// assert_eq!(blocked.join().unwrap(), Ok(()));
    /// assert_eq!(pool.waiting(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiting(&self) -> usize {
        self.inner.gauges.waiting.load(Ordering::Relaxed)
    }

    /// The queue's slots ([`PoolBuilder::queue_capacity`]): how many
    /// accepted tasks may wait while every worker is busy; 0 for ants'
    /// hand-off.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder().queue_capacity(16).build()?;
    /// assert_eq!(pool.queue_capacity(), 16);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn queue_capacity(&self) -> usize {
        self.inner.queue.slots()
    }

    /// The most workers alive at once; `None` for an unbounded pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::Pool;
    /// assert_eq!(Pool::new(4)?.capacity(), Some(4));
    /// assert_eq!(Pool::builder().unbounded().build()?.capacity(), None);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        match self.inner.gauges.capacity.load(Ordering::Relaxed) {
            UNBOUNDED => None,
            capacity => Some(capacity),
        }
    }

    /// How many more workers may start now: capacity minus live workers,
    /// idle ones included (ants' `Free`); `None` for an unbounded pool.
    ///
    /// Not how many tasks can start without waiting: idle workers take tasks
    /// too, and are not counted here. 0 while a lowered capacity is still
    /// above the live workers.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::Pool;
    /// let pool = Pool::builder().capacity(4).min_workers(1).build()?;
    /// // The idle worker counts: three more may start.
    /// assert_eq!(pool.free(), Some(3));
    /// assert_eq!(Pool::builder().unbounded().build()?.free(), None);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn free(&self) -> Option<usize> {
        self.capacity().map(|c| c.saturating_sub(self.workers()))
    }

    /// Tasks that have panicked since the pool was built.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(1)?;
    /// let handle = pool.spawn(|| -> u32 { panic!("boom") })?;
    /// assert!(handle.join().unwrap_err().is_panic());
    /// assert_eq!(pool.panicked(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn panicked(&self) -> usize {
        self.inner
            .panicked
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes the capacity. Growing starts workers for queued tasks and
    /// wakes blocked submitters at once. Shrinking interrupts no task: idle
    /// workers above the new capacity exit at once, and busy ones exit when
    /// their task ends, so once the tasks running at the call have ended, at
    /// most `capacity` tasks run at once.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidCapacity`] for 0; [`PoolError::CapacityTooLarge`]
    /// above [`PoolBuilder::MAX_CAPACITY`]; [`PoolError::Unbounded`] on an
    /// unbounded pool. Nothing else (a released pool is tuned too).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::new(2)?;
    /// pool.tune(8)?;
    /// assert_eq!(pool.capacity(), Some(8));
    /// assert_eq!(pool.tune(0), Err(PoolError::InvalidCapacity));
    /// assert_eq!(pool.capacity(), Some(8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity: usize) -> Result<(), PoolError> {
        self.inner.tune(capacity)
    }

    /// Closes the pool, in layers: new tasks are refused with
    /// [`PoolError::Closed`] and callers blocked in `submit` return it;
    /// every [`CancelToken`](crate::CancelToken) of a task of the pool is
    /// cancelled, so running tasks that look at theirs stop, and queued
    /// tasks that have one never start (their handles say
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled)); tasks without
    /// a token (`submit`, `spawn`) finish, queued ones included; then the
    /// workers exit, idle ones at once. Once `release` has returned, every
    /// `submit` is refused. Idempotent; does not wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::new(2)?;
    /// let handle = pool.spawn(|| 42)?;
    /// pool.release();
    /// assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
    /// // A task without a token, accepted before, still runs.
    /// assert_eq!(handle.join()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) {
        self.inner.release();
    }

    /// [`release`](Self::release)s the pool, then waits until every worker
    /// and the purge thread have exited and been joined (so every queued task
    /// has run).
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool was already closed (nothing is
    /// waited for); [`PoolError::Timeout`] if threads were still running when
    /// `timeout` passed (they go on and exit when their tasks end);
    /// [`PoolError::WouldDeadlock`] when called from a task of this pool,
    /// which would wait for its own thread: the pool is released, but not
    /// waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::new(2)?;
    /// let handle = pool.spawn(|| 42)?;
    /// pool.release_timeout(Duration::from_secs(10))?;
    /// assert!(handle.is_finished());
    /// assert_eq!(pool.workers(), 0);
    /// assert_eq!(pool.release_timeout(Duration::from_secs(10)), Err(PoolError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.release_timeout(timeout)
    }

    /// Shuts the pool down losing nothing: refuses new tasks (callers blocked
    /// in `submit` get [`PoolError::Closed`] back with their task), runs
    /// every accepted task, queued ones included, with its
    /// [`CancelToken`](crate::CancelToken) left alone, then waits until
    /// every worker and the maintenance thread have exited, as
    /// [`release_timeout`](Self::release_timeout) does. A queued task's own
    /// deadline still holds (it is checked where the task starts).
    ///
    /// Compared: [`release`](Self::release) and `release_timeout` cancel
    /// every task token, so queued tasks that have one (from
    /// [`task`](Self::task), [`batch`](Self::batch)) never run and their
    /// handles say [`TaskError::Cancelled`](crate::TaskError::Cancelled);
    /// `drain_timeout` runs them.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool was already closed (nothing is
    /// waited for); [`PoolError::Timeout`] if tasks were still running or
    /// queued when `timeout` passed: the pool stays closed and its workers
    /// go on draining the queue; [`PoolError::WouldDeadlock`] when called
    /// from a task of this pool (the pool is closed, but not waited for).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::new(1)?;
    /// let handles: Vec<_> = (0..4)
    ///     .map(|n| pool.task(move |token| (n, token.is_cancelled())).spawn())
    ///     .collect::<Result<_, _>>()?;
    /// pool.drain_timeout(Duration::from_secs(10))?;
    /// for (n, handle) in handles.into_iter().enumerate() {
    ///     // Every task ran, and none saw its token cancelled.
    ///     assert_eq!(handle.join()?, (n, false));
    /// }
    /// assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.drain_timeout(timeout)
    }

    /// Reopens a released pool with the same options: the purge thread and
    /// `min_workers` (never more than the capacity in force) start again. A
    /// no-op on an open pool. Workers of the previous life that are still
    /// running stay and are reused.
    ///
    /// # Errors
    ///
    /// [`PoolError::SpawnFailed`] if a thread could not start; the pool is
    /// then closed again, and a later `reboot` may try again. Nothing else:
    /// on an open pool it does nothing and returns `Ok`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// pool.release();
    /// pool.reboot()?;
    /// assert!(!pool.is_closed());
    /// assert_eq!(pool.spawn(|| 7)?.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reboot(&self) -> Result<(), PoolError> {
        self.inner.reboot()
    }

    /// Whether the pool is released.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// assert!(!pool.is_closed());
    /// pool.release();
    /// assert!(pool.is_closed());
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.release();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("workers", &self.workers())
            .field("idle", &self.idle())
            .field("queued", &self.queued())
            .field("waiting", &self.waiting())
            .field("closed", &self.is_closed())
            .finish()
    }
}
