//! `Pool`, the handle users hold, and the state its workers share.
//!
//! Every public method of `Pool` is declared here, with its documentation,
//! and hands the work to the file named after its concern (`Pool::scope`
//! and `Pool::parallel_execute` to `crate::scope`).
//!
//! One concern a file; `PROTOCOL.md` beside them describes how they fit
//! together and names the pairs of operations that must see each other.
//! The subsystems own their state behind private fields, changed through
//! methods named after events (the table in `state.rs`):
//! - `state.rs`: [`Inner`], made of the subsystems, and `State`, their
//!   halves under the pool's lock;
//! - `admission.rs`: the lock-free way in and its closed bit, and the
//!   pool's life (pair RELEASE);
//! - `crew.rs`: the workers under the capacity, the idle list and the
//!   capacity, with their gauges (`tune`'s half of pair TUNE);
//! - `deposit.rs`: blocked and async submitters waiting for room, served
//!   oldest first (pair DEPOSIT);
//! - `dispatch.rs`: how `submit` finds a worker (submitter halves of PARK
//!   and SPIN);
//! - `queue.rs`: the queue, and what admits a task (bounded or hand-off);
//! - `hot.rs`: workers spinning for a next task, claimed by submitters
//!   (pair SPIN);
//! - `next.rs`: a worker's side: take, spin, park, leave (worker halves of
//!   PARK and TUNE);
//! - `lifecycle.rs`: `tune`, `release`, `release_timeout`,
//!   `drain_timeout`, `reboot`, and `wait_idle` with its watch;
//! - `threads.rs`: starting, counting and joining the pool's threads;
//! - `maintenance.rs`: the maintenance thread, its timers (task
//!   deadlines) and its rounds;
//! - `purge.rs`: one round of idle expiry;
//! - `spawn.rs`: tasks with handles (`make_job`), `spawn`, `task` and
//!   batches;
//! - `submit.rs`: `try_submit`, `submit_timeout`, and the async submits
//!   with their futures;
//! - `observe.rs`: `stats`, `health`, monitors, metrics export;
//! - `task.rs`: [`Task`], what travels from a submitter to a worker;
//! - `worker.rs`: a worker thread's loop, and where it parks;
//! - `idle.rs`: the idle list, ordered by the moment each worker went idle;
//! - `host.rs`: what the task layer (`job.rs`) reports to the pool, the
//!   [`Host`](crate::job::Host) trait, implemented by [`Inner`];
//! - `loom.rs`: the loom models, one per pair and per defect once found
//!   (`RUSTFLAGS="--cfg loom" cargo test -p workpool --release --lib`).

mod admission;
mod crew;
mod deposit;
mod dispatch;
mod host;
mod hot;
mod idle;
mod keys;
mod lifecycle;
mod maintenance;
mod next;
mod observe;
mod purge;
mod queue;
mod scale;
mod spawn;
mod state;
mod submit;
pub(crate) mod task;
mod threads;
pub(crate) mod worker;

#[cfg(all(test, loom))]
mod loom;

pub(crate) use dispatch::Wait;
pub(crate) use lifecycle::log_quietly;
#[cfg(feature = "metrics")]
pub(crate) use observe::export;
pub use observe::Monitor;
pub(crate) use state::Inner;
pub use submit::{SpawnAsync, SubmitAsync};

use crate::builder::PoolBuilder;
use crate::cancel::CancelToken;
use crate::error::{BuildError, PoolError, TaskError, TrySubmitError};
use crate::handle::{BatchHandle, TaskHandle};
use crate::map::Map;
use crate::scope::{self, Scope};
use crate::spawn::{BatchBuilder, TaskBuilder};
use crate::stats::{Health, HealthPolicy, Stats};
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use crew::UNBOUNDED;
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
            inner: Arc::new_cyclic(|me| Inner::new(builder, me.clone())),
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

    /// Runs `f` on a worker and returns a handle to its result.
    ///
    /// Blocks, fails or starts a worker exactly as [`submit`](Self::submit)
    /// does. The task is cancelled if the handle's
    /// [`cancel`](TaskHandle::cancel) or its deadline (see
    /// [`task_deadline`](crate::PoolBuilder::task_deadline)) comes before it
    /// starts. It has no [`CancelToken`], so, like a submitted task, it runs
    /// even if it is still queued when the pool is released; for a closure
    /// that wants its token (and is cancelled by `release`), use
    /// [`task`](Self::task).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit):
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let handles: Vec<_> = (0..8u64)
    ///     .map(|n| pool.spawn(move || n * 2))
    ///     .collect::<Result<_, _>>()?;
    /// let doubled: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(doubled, [0, 2, 4, 6, 8, 10, 12, 14]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.spawn(f)
    }

    /// A task whose closure gets its [`CancelToken`], with a deadline, a
    /// completion callback or retries: see [`TaskBuilder`].
    ///
    /// The closure is `FnOnce`: it may move out of what it captures. Only
    /// [`retry`](TaskBuilder::retry), which runs it again, asks for an
    /// `FnMut`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let handle = pool.task(|token| !token.is_cancelled()).spawn()?;
    /// assert!(handle.join()?);
    /// // It may move out of what it captures.
    /// let message = String::from("hello");
    /// let handle = pool.task(move |_token| message).spawn()?;
    /// assert_eq!(handle.join()?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task<F, T>(&self, f: F) -> TaskBuilder<'_, F, T>
    where
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        TaskBuilder::new(self, f)
    }

    /// Submits every task of `tasks`, in order, and returns one handle to
    /// all their results. Each submit blocks for room as
    /// [`submit`](Self::submit) does; no thread coordinates the batch.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), for the first task refused:
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed). The tasks submitted before it are cancelled (those already
    /// running finish).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let words = ["a", "bb", "ccc"];
    /// let batch = pool.spawn_batch(words.map(|w| move || w.len()))?;
    /// let lengths: Vec<usize> = batch.join().into_iter().map(Result::unwrap).collect();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_batch<I, F, T>(&self, tasks: I) -> Result<BatchHandle<T>, PoolError>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.spawn_batch(tasks)
    }

    /// A batch whose closures get a [`CancelToken`] (one for the batch),
    /// with a callback per task and a deadline: see [`BatchBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = workpool::Pool::new(4)?;
    /// let failed = Arc::new(AtomicUsize::new(0));
    /// let seen = Arc::clone(&failed);
    /// let batch = pool
    ///     .batch((0..10u32).map(|n| move |_token: &workpool::CancelToken| {
    ///         if n % 5 == 4 { Err(n) } else { Ok(n) }
    ///     }))
    ///     .on_complete(move |_index, result| {
    ///         if !matches!(result, Ok(Ok(_))) {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .spawn()?;
    /// assert_eq!(batch.join().len(), 10);
    /// assert_eq!(failed.load(Ordering::Relaxed), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<I, F, T>(&self, tasks: I) -> BatchBuilder<'_, F, T>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        BatchBuilder::new(self, tasks.into_iter().collect())
    }

    /// Runs `task` if there is room now, never blocking; otherwise gives the
    /// closure back inside the error, to be tried again without cloning
    /// what it captured.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] when every worker is busy and the queue is
    /// full; [`TrySubmitError::Closed`] on a released pool;
    /// [`TrySubmitError::SpawnFailed`] if no thread could start for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use workpool::{Pool, TrySubmitError};
    ///
    /// let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?;
    /// let refused = pool.try_submit(|| println!("later")).unwrap_err();
    /// assert!(matches!(refused, TrySubmitError::Full(_)));
    /// tx.send(()).unwrap();
    /// let task = refused.into_inner();
    /// pool.submit(move || { task(); })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit<F>(&self, task: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.try_submit(task)
    }

    /// [`submit`](Self::submit) that blocks for room for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if there was no room in time, and the errors
    /// of [`submit`](Self::submit):
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed). A refused task is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use workpool::{Pool, PoolError};
    ///
    /// let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?;
    /// let late = pool.submit_timeout(|| (), Duration::from_millis(10));
    /// assert_eq!(late, Err(PoolError::Timeout));
    /// tx.send(()).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout<F>(&self, task: F, timeout: Duration) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.submit_timeout(task, timeout)
    }

    /// [`submit`](Self::submit) for async code: waits for room without
    /// blocking the executor's thread (the waiter is a `Waker`, removed if
    /// the future is dropped). Works on any executor.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool is released (also while the
    /// future waits); [`PoolError::Overloaded`] at once on a nonblocking
    /// pool (a blocking one waits for room however many callers wait);
    /// [`PoolError::SpawnFailed`] if a new worker thread could not be
    /// started. Never `WouldDeadlock`: the future waits without blocking a
    /// thread.
    ///
    /// # Examples
    ///
    /// ```
    /// # use futures_executor::block_on;
    /// let pool = workpool::Pool::new(2)?;
    /// block_on(async {
    ///     pool.submit_async(|| println!("hello")).await?;
    ///     let answer = pool.spawn_async(|| 42).await?.await?;
    ///     assert_eq!(answer, 42);
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async<F>(&self, task: F) -> SubmitAsync<'_>
    where
        F: FnOnce() + Send + 'static,
    {
        SubmitAsync::new(&self.inner, Task::new(task), None)
    }

    /// [`spawn`](Self::spawn) for async code: waits for room as
    /// [`submit_async`](Self::submit_async) does, then gives the task's
    /// handle.
    ///
    /// # Errors
    ///
    /// As [`submit_async`](Self::submit_async): [`PoolError::Closed`],
    /// [`PoolError::Overloaded`] or [`PoolError::SpawnFailed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_executor::block_on;
    /// let pool = workpool::Pool::new(2)?;
    /// let handle = block_on(pool.spawn_async(|| 6 * 7))?;
    /// assert_eq!(block_on(handle)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_async<F, T>(&self, task: F) -> SpawnAsync<'_, T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.spawn_async(task)
    }

    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's
    /// stack; returns once every task spawned in it has finished.
    ///
    /// While it waits, the caller runs the scope's tasks that no worker has
    /// started yet, instead of sleeping, so a scope opened inside a task of
    /// a full pool still completes. A task the pool refuses (full and
    /// called from one of its tasks, or released) runs on the caller at
    /// once. If a task panics, the panic is raised again here once every
    /// task has finished (the first one in spawn order, if several did; the
    /// others are dropped, a payload whose own `Drop` panics included, its
    /// panic caught); a panic of `f` itself likewise waits for the
    /// tasks first. Whatever unwinds, `scope` never returns while a task
    /// still runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let words = vec!["alpha", "beta", "gamma"];
    /// let mut lengths = vec![0; words.len()];
    /// pool.scope(|s| {
    ///     for (word, length) in words.iter().zip(lengths.iter_mut()) {
    ///         s.spawn(move || *length = word.len());
    ///     }
    /// });
    /// assert_eq!(lengths, [5, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        scope::scope(self, f)
    }

    /// Runs every closure of `fns` on the pool and returns their results in
    /// the order given, a panic as [`TaskError::Panicked`] (FastGo's
    /// `ParallelExecute`). The closures may borrow from the
    /// caller: it returns once all have run (see [`scope`](Self::scope)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let text = String::from("borrowed, not moved");
    /// let results = pool.parallel_execute(vec![
    ///     Box::new(|| text.len()) as Box<dyn FnOnce() -> usize + Send>,
    ///     Box::new(|| text.split(' ').count()),
    /// ]);
    /// assert_eq!(results[0].as_ref().unwrap(), &19);
    /// assert_eq!(results[1].as_ref().unwrap(), &3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parallel_execute<I, F, T>(&self, fns: I) -> Vec<Result<T, TaskError>>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() -> T + Send,
        T: Send,
    {
        scope::parallel_execute(self, fns)
    }

    /// Runs `task` after every task with an equal `key` accepted before it,
    /// and never beside one: tasks of one key run one at a time, in the
    /// order they were accepted; tasks of different keys run in parallel,
    /// up to the capacity. A task waiting for its key holds no worker and
    /// no thread, and an idle key costs no memory.
    ///
    /// The first task of an idle key is submitted as [`submit`](Self::submit)
    /// submits (it blocks for room, or is refused); a task whose key is busy
    /// waits in the key's lane. Waiting tasks count against a bound of their
    /// own, the [`queue_capacity`](Self::queue_capacity): past it a keyed
    /// submit blocks (in a nonblocking pool, [`Overloaded`](PoolError::Overloaded))
    /// until the lanes have drained a quarter. A task of the pool may submit
    /// the next task of its own key (a follow-up) without
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) while the lanes have room.
    /// A panic of a keyed task is handled as any task's, and the key's next
    /// task runs. [`release`](Self::release) treats waiting keyed tasks as
    /// queued ones: they run, in order.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit): [`Closed`](PoolError::Closed),
    /// [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let pool = workpool::Pool::new(4)?;
    /// let inbox: Arc<Mutex<Vec<(&str, u32)>>> = Arc::default();
    /// for n in 0..100 {
    ///     for recipient in ["alice", "bob"] {
    ///         let inbox = Arc::clone(&inbox);
    ///         pool.submit_keyed(recipient, move || inbox.lock().unwrap().push((recipient, n)))?;
    ///     }
    /// }
    /// pool.wait_idle(std::time::Duration::from_secs(10))?;
    /// let inbox = inbox.lock().unwrap();
    /// for recipient in ["alice", "bob"] {
    ///     let got: Vec<u32> = inbox.iter().filter(|m| m.0 == recipient).map(|m| m.1).collect();
    ///     assert_eq!(got, (0..100).collect::<Vec<_>>(), "each recipient's messages in order");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_keyed<K, F>(&self, key: K, task: F) -> Result<(), PoolError>
    where
        K: std::hash::Hash,
        F: FnOnce() + Send + 'static,
    {
        let hash = self.inner.keys.hash(&key);
        self.inner.submit_keyed(hash, Task::new(task), Wait::Block)
    }

    /// [`submit_keyed`](Self::submit_keyed) with a handle to the task's
    /// result, as [`spawn`](Self::spawn).
    ///
    /// # Errors
    ///
    /// As [`submit_keyed`](Self::submit_keyed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let first = pool.spawn_keyed(7u64, || "first")?;
    /// let second = pool.spawn_keyed(7u64, || "second")?;
    /// assert_eq!(first.join()?, "first");
    /// assert_eq!(second.join()?, "second");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_keyed<K, F, T>(&self, key: K, task: F) -> Result<TaskHandle<T>, PoolError>
    where
        K: std::hash::Hash,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let hash = self.inner.keys.hash(&key);
        self.inner.spawn_keyed(hash, task)
    }

    /// [`spawn`](Self::spawn) once `delay` has passed: the pool's
    /// maintenance thread holds the task meanwhile (no worker, no thread of
    /// its own), then submits it, in order with other delayed tasks; one
    /// that finds the pool full is tried again every millisecond until it
    /// has room. Its handle can cancel it while it waits; `release` and
    /// [`drain_timeout`](Self::drain_timeout) cancel it. For a token, a key or a deadline too, see
    /// [`TaskBuilder::delay`].
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] once the pool is released. A refusal when it
    /// is due (the pool released meanwhile) is the handle's
    /// [`TaskError::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = workpool::Pool::new(1)?;
    /// let start = Instant::now();
    /// let reminder = pool.spawn_after(Duration::from_millis(20), || "ring")?;
    /// assert_eq!(pool.busy(), 0, "it holds no worker while it waits");
    /// assert_eq!(reminder.join()?, "ring");
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_after<F, T>(&self, delay: Duration, task: F) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.spawn_after(delay, task)
    }

    /// Runs `f` on each input of `inputs`, in parallel on this pool, and
    /// yields the results in input order, pulling inputs lazily with at
    /// most a [`window`](Map::window) of them in flight: memory stays
    /// bounded however long the input. See [`Map`] for its options
    /// ([`unordered`](Map::unordered), [`stop_on_error`](Map::stop_on_error),
    /// [`into_stream`](Map::into_stream)).
    ///
    /// A map over a map is a pipeline: the inner map's results are the
    /// outer one's inputs, pulled as the outer one has room, so both
    /// stages (on two pools, or one) run at once without a thread of their
    /// own, bounded end to end.
    ///
    /// # Examples
    ///
    /// ```
    /// let parse = workpool::Pool::new(2)?;
    /// let square = workpool::Pool::new(2)?;
    /// let lines = (1..=1_000).map(|n| n.to_string());
    /// let parsed = parse.map(lines, |line: String| line.parse::<u64>().unwrap());
    /// let squares = square.map(parsed.map(Result::unwrap), |n| n * n);
    /// let total: u64 = squares.map(Result::unwrap).sum();
    /// assert_eq!(total, (1..=1_000u64).map(|n| n * n).sum());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I, F, T>(&self, inputs: I, f: F) -> Map<'_, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Map::on_pool(self, inputs.into_iter(), f)
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
        self.inner.crew.workers()
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
        self.inner.crew.idle()
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
        self.inner.waiting.count()
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
        match self.inner.crew.capacity() {
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

    /// Hands the capacity back to the pool's autoscaler, paused by a
    /// manual [`tune`](Self::tune): it goes on from the capacity in force,
    /// with a fresh window. Returns false if the pool does not autoscale
    /// ([`PoolBuilder::autoscale`](crate::PoolBuilder::autoscale)).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Autoscale, Pool};
    /// let pool = Pool::builder().autoscale(Autoscale::throughput().bounds(1, 32)).build()?;
    /// pool.tune(4)?;
    /// assert!(!pool.is_autoscaling());
    /// assert!(pool.resume_autoscale());
    /// assert!(pool.is_autoscaling());
    /// assert!(!Pool::new(2)?.resume_autoscale(), "no autoscaler to resume");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume_autoscale(&self) -> bool {
        self.inner.resume_autoscale()
    }

    /// Whether the pool's capacity is the autoscaler's now: set with
    /// [`PoolBuilder::autoscale`](crate::PoolBuilder::autoscale), and not
    /// paused by a manual [`tune`](Self::tune).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Autoscale, Pool};
    /// assert!(!Pool::new(2)?.is_autoscaling());
    /// let pool = Pool::builder().autoscale(Autoscale::latency()).build()?;
    /// assert!(pool.is_autoscaling());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_autoscaling(&self) -> bool {
        self.inner.is_autoscaling()
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
    /// deadline still holds (it is checked where the task starts). Delayed
    /// tasks not yet due ([`spawn_after`](Self::spawn_after)) are cancelled,
    /// as by `release`: a drain waits for the tasks there are, not for the
    /// time some were to start; a retried task waiting between attempts
    /// ([`TaskBuilder::retry`](crate::TaskBuilder::retry)) ends with its
    /// last `Err`.
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

    /// Waits until the pool is idle (no task running, none queued), without
    /// closing it; on a released pool too. Every task accepted before the
    /// call has then finished, but those the maintenance thread holds,
    /// which are neither running nor queued: delayed tasks not yet due
    /// ([`spawn_after`](Self::spawn_after)) and retried tasks waiting
    /// between attempts ([`TaskBuilder::retry`](crate::TaskBuilder::retry)).
    ///
    /// Each caller returns once the pool has been idle at least once since
    /// its call began, even if tasks were submitted after that moment (by
    /// it or by others) and run now: those are not waited for, so a caller
    /// cannot be starved by steady work, and every caller waiting when the
    /// pool goes idle is released together (threadpool's and rusty_pool's
    /// "join generations"). Tasks submitted while the pool has not yet been
    /// idle are waited for.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if tasks were still running or queued when
    /// `timeout` passed; [`PoolError::WouldDeadlock`] from a task of this
    /// pool (it would wait for itself). Never `Closed`: a released pool is
    /// waited for as an open one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let pool = workpool::Pool::new(2)?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let done = Arc::clone(&done);
    ///     pool.submit(move || { done.fetch_add(1, Ordering::SeqCst); })?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(done.load(Ordering::SeqCst), 10);
    /// assert!(!pool.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.wait_idle(timeout)
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

    /// A snapshot of the pool's figures: counts by outcome, the gauges,
    /// uptime, and latencies of queue wait and run time (of every task at a
    /// trickle, sampled at high rates: see
    /// [`LatencySummary`](crate::LatencySummary)). Reading them takes no
    /// lock the workers take; recording them costs each task a counter on a
    /// cache line of its own thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::new(2)?;
    /// for _ in 0..100 {
    ///     pool.submit(|| ())?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// let stats = pool.stats();
    /// assert_eq!(stats.submitted, 100);
    /// assert_eq!(stats.completed, 100);
    /// assert!(stats.queue_wait.count > 0);
    /// // The figures since an earlier snapshot: none since this one.
    /// assert_eq!(pool.stats().since(&stats).completed, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.snapshot()
    }

    /// Judges the pool by `policy`: each threshold breached is one sentence
    /// in [`Health::problems`], with the figure and the threshold. The
    /// gauges are judged as they are now; the error rate and the p99 of
    /// queue wait over `policy.error_window`, from the snapshot of the
    /// newest earlier check at least that old (see
    /// [`HealthPolicy::error_window`]), so an old burst stops counting.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::HealthPolicy;
    /// let pool = workpool::Pool::new(2)?;
    /// let health = pool.health(&HealthPolicy::default());
    /// assert!(health.healthy, "{:?}", health.problems);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self, policy: &HealthPolicy) -> Health {
        self.inner.check(policy).0
    }

    /// [`health`](Self::health) with the snapshot its verdict was drawn
    /// from: one snapshot for both, so they agree (a `/health` endpoint
    /// shows them side by side). The figures are since the build, as
    /// [`stats`](Self::stats) gives them; the verdict judged the error rate
    /// and queue wait of the policy's window, which the problems name.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::HealthPolicy;
    /// let pool = workpool::Pool::new(2)?;
    /// let (health, stats) = pool.check(&HealthPolicy::default());
    /// assert!(health.healthy);
    /// assert_eq!(stats.busy, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, policy: &HealthPolicy) -> (Health, Stats) {
        self.inner.check(policy)
    }

    /// Sends the pool's figures to the [`metrics`] facade, labelled
    /// `pool = name()`: `workpool_tasks_submitted_total`,
    /// `workpool_tasks_total{outcome}` (completed, panicked, cancelled,
    /// timed_out, rejected), `workpool_workers_started_total`,
    /// `workpool_workers_expired_total`, the gauges `workpool_workers`,
    /// `workpool_busy_workers`, `workpool_idle_workers`,
    /// `workpool_waiting_submitters`, `workpool_queued_tasks`,
    /// `workpool_capacity`, `workpool_uptime_seconds`, and the sampled
    /// latencies `workpool_queue_wait_seconds` and `workpool_run_seconds`
    /// as gauges by `quantile` (0.5, 0.9, 0.99, 1 for the max) with their
    /// `_count`. Call it when the figures are read (a `/metrics` handler, a
    /// monitor): nothing is recorded per task, so the hot path pays
    /// nothing for the export.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::builder().name("ingest").build()?;
    /// pool.spawn(|| ())?.join()?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// // What it sends: `workpool_tasks_total{pool="ingest",outcome="completed"}` = 1.
    /// assert_eq!(pool.stats().completed, 1);
    /// pool.export_metrics(); // a no-op until a recorder is installed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        self.inner.export_metrics(&[]);
    }

    /// [`export_metrics`](Self::export_metrics) with more labels beside
    /// `pool`, for a pool that serves one of several sources (for example
    /// `("stream", "jobs")` in `workpool-redis`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder().name("consumer").build()?;
    /// pool.export_metrics_with(&[("stream", "jobs".to_owned())]);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics_with(&self, labels: &[(&'static str, String)]) {
        self.inner.export_metrics(labels);
    }

    /// The pool's name ([`PoolBuilder::name`](crate::PoolBuilder::name)).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::Pool;
    /// assert_eq!(Pool::new(1)?.name(), "workpool");
    /// assert_eq!(Pool::builder().name("mailer").build()?.name(), "mailer");
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Checks the pool's health every `interval` on a thread of its own and
    /// calls `callback` with the verdict and the figures it was drawn from:
    /// a periodic health check. It stops when the returned
    /// [`Monitor`] is stopped or dropped, or when the pool is released; the
    /// pool counts its thread, so `release_timeout` waits for it.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] on a released pool; [`PoolError::SpawnFailed`]
    /// if its thread could not start.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use workpool::HealthPolicy;
    ///
    /// let pool = workpool::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let monitor = pool.monitor(Duration::from_millis(10), HealthPolicy::default(), move |health, stats| {
    ///     let _ = tx.send((health.healthy, stats.workers));
    /// })?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, (true, 0));
    /// monitor.stop();
    /// pool.release_timeout(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn monitor<F>(
        &self,
        interval: Duration,
        policy: HealthPolicy,
        callback: F,
    ) -> Result<Monitor, PoolError>
    where
        F: FnMut(&Health, &Stats) + Send + 'static,
    {
        self.inner.monitor(interval, policy, callback)
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
