//! `PoolBuilder`: one method per option, validated by `build`.

use crate::error::BuildError;
use crate::func::PoolWithFunc;
use crate::pool::Pool;
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What a pool calls with the payload of a task's panic.
pub(crate) type PanicHandler = Arc<dyn Fn(Box<dyn Any + Send>) + Send + Sync + 'static>;

/// The default time an idle worker waits for a task before the purge ends it.
pub(crate) const DEFAULT_EXPIRY: Duration = Duration::from_secs(1);

/// Options of a [`Pool`], set one method at a time and checked by
/// [`build`](PoolBuilder::build).
///
/// Every method takes and returns the builder by value, so a configured
/// builder can be stored, cloned and handed on (for example to
/// [`MultiPool::with_builder`](crate::MultiPool::with_builder)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool::Pool;
///
/// let pool = Pool::builder()
///     .capacity(8)
///     .min_workers(2)
///     .expiry(Duration::from_secs(10))
///     .thread_name("crawler")
///     .build()?;
/// assert_eq!(pool.capacity(), Some(8));
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), workpool::BuildError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    pub(crate) capacity: Option<usize>,
    pub(crate) expiry: Duration,
    pub(crate) min_workers: usize,
    pub(crate) nonblocking: bool,
    pub(crate) max_blocking_tasks: usize,
    pub(crate) panic_handler: Option<PanicHandler>,
    pub(crate) disable_purge: bool,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) queue_capacity: usize,
    pub(crate) task_deadline: Option<Duration>,
    pub(crate) name: String,
    /// Set by `MultiPool` for its pools: told when room may have appeared.
    pub(crate) room: Option<Arc<crate::multi::RoomSignal>>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder::new()
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("capacity", &self.capacity)
            .field("expiry", &self.expiry)
            .field("min_workers", &self.min_workers)
            .field("nonblocking", &self.nonblocking)
            .field("max_blocking_tasks", &self.max_blocking_tasks)
            .field("panic_handler", &self.panic_handler.as_ref().map(|_| ".."))
            .field("disable_purge", &self.disable_purge)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("queue_capacity", &self.queue_capacity)
            .field("task_deadline", &self.task_deadline)
            .field("name", &self.name)
            .finish()
    }
}

impl PoolBuilder {
    /// A builder with every option at its default: capacity = the number of
    /// CPUs ([`std::thread::available_parallelism`], 1 if unknown), expiry 1 s,
    /// no `min_workers`, blocking submits without a limit on blocked callers,
    /// panics logged with `tracing::error!`, purge on, threads named
    /// `workpool-{n}`, the platform's default stack size, a queue of
    /// [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY) tasks.
    pub fn new() -> Self {
        PoolBuilder {
            capacity: Some(std::thread::available_parallelism().map_or(1, |n| n.get())),
            expiry: DEFAULT_EXPIRY,
            min_workers: 0,
            nonblocking: false,
            max_blocking_tasks: 0,
            panic_handler: None,
            disable_purge: false,
            thread_name: "workpool".to_owned(),
            stack_size: None,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            task_deadline: None,
            name: "workpool".to_owned(),
            room: None,
        }
    }

    /// The pool's name: the `pool` label of its metrics (with the `metrics`
    /// feature) and a field of its log lines. Default: `workpool`. It does
    /// not name the threads: see [`thread_name`](Self::thread_name).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder().name("crawler").build()?;
    /// assert_eq!(pool.name(), "crawler");
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A deadline for every task with a handle ([`Pool::spawn`],
    /// [`Pool::task`], batches) that does not set its own with
    /// [`TaskBuilder::deadline`](crate::TaskBuilder::deadline): counted from
    /// the task's acceptance, it cancels the task's token when it passes, and a task
    /// not started by then never runs (its handle says
    /// [`TaskError::DeadlineExceeded`](crate::TaskError::DeadlineExceeded)).
    /// Tasks of `submit` have no handle and no deadline. Default: none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::builder()
    ///     .task_deadline(Duration::from_secs(30))
    ///     .build()?;
    /// assert_eq!(pool.spawn(|| 1)?.join()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_deadline(mut self, deadline: Duration) -> Self {
        self.task_deadline = Some(deadline);
        self
    }

    /// The most worker threads alive at once, and so the most tasks running at
    /// once. Default: the number of CPUs. `build` refuses 0 with
    /// [`BuildError::ZeroCapacity`]. Replaces an earlier
    /// [`unbounded`](Self::unbounded).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// No limit on worker threads: `submit` never blocks and never fails with
    /// `Overloaded` (ants' pool of size <= 0). Replaces an earlier
    /// [`capacity`](Self::capacity).
    pub fn unbounded(mut self) -> Self {
        self.capacity = None;
        self
    }

    /// How long a worker may stay idle before the purge thread ends it; the
    /// purge runs once per `expiry`, so a worker ends between one and two
    /// expiries after its last task. Default: 1 s. `build` refuses zero with
    /// [`BuildError::ZeroExpiry`].
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// Workers started by `build` (and by `reboot`) and kept alive past the
    /// expiry. Default: 0. `build` refuses more than the capacity with
    /// [`BuildError::MinWorkersAboveCapacity`].
    pub fn min_workers(mut self, min_workers: usize) -> Self {
        self.min_workers = min_workers;
        self
    }

    /// When every worker is busy and the pool is at capacity, `submit` fails at
    /// once with [`PoolError::Overloaded`](crate::PoolError::Overloaded)
    /// instead of blocking. Default: false (block).
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    /// The most callers that may be blocked in `submit` at once; the next one
    /// gets [`PoolError::Overloaded`](crate::PoolError::Overloaded). Default:
    /// 0, no limit.
    pub fn max_blocking_tasks(mut self, max_blocking_tasks: usize) -> Self {
        self.max_blocking_tasks = max_blocking_tasks;
        self
    }

    /// Called on the worker thread with the payload of every task that panics.
    /// A panic inside the handler is caught and logged too; the worker lives
    /// on either way. Default: log the panic message with `tracing::error!`.
    pub fn panic_handler<H>(mut self, handler: H) -> Self
    where
        H: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.panic_handler = Some(Arc::new(handler));
        self
    }

    /// Never end idle workers. Default: false. The pool's maintenance thread,
    /// which purges idle workers and fires deadlines, then starts only once
    /// a task has a deadline.
    pub fn disable_purge(mut self, disable_purge: bool) -> Self {
        self.disable_purge = disable_purge;
        self
    }

    /// Worker threads are named `{prefix}-{n}` (n counts from 0 per pool) and
    /// the purge thread `{prefix}-purge`. Default: `workpool`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// The stack size of worker threads, in bytes. Default: the platform's
    /// (2 MiB on Linux, or `RUST_MIN_STACK`).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Up to `queue_capacity` accepted tasks may wait in a bounded queue when
    /// every worker is busy; `submit` blocks (or,
    /// [`nonblocking`](Self::nonblocking), fails with
    /// [`Overloaded`](crate::PoolError::Overloaded)) only when the queue is
    /// full too. Default: [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY)
    /// (1,024 slots, 24 KiB allocated by `build`).
    ///
    /// `queue_capacity(0)` is ants' pure hand-off: no queue, so a task is
    /// accepted only when a worker is free to take it, and `submit` blocks as
    /// soon as every worker is busy. A Go pool can afford a hand-over per task
    /// because a goroutine switch costs about 100 ns; an OS thread switch
    /// costs microseconds and, on a busy machine, a scheduler slice, so short
    /// tasks flow several times faster through a queue, as in every Rust pool.
    ///
    /// A queued task is accepted: it runs exactly once, and
    /// [`release`](Pool::release) still runs it
    /// ([`release_timeout`](Pool::release_timeout) waits for the queue to
    /// drain). `build` refuses more than
    /// [`MAX_QUEUE_CAPACITY`](Self::MAX_QUEUE_CAPACITY) with
    /// [`BuildError::QueueTooLarge`]. An unbounded pool rarely queues: it
    /// starts a worker for every task that finds none idle.
    pub fn queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// The default [`queue_capacity`](Self::queue_capacity): enough for a
    /// submitter to run well ahead of short tasks (`workpool bench`'s `empty`
    /// gains nothing from more), small enough to allocate up front.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

    /// The largest [`queue_capacity`](Self::queue_capacity) that `build`
    /// accepts: 2^26 tasks, whose slots take 1.5 GiB before any task is queued.
    pub const MAX_QUEUE_CAPACITY: usize = 1 << 26;

    /// Checks the options and starts the pool: its purge thread, unless purge
    /// is disabled, and `min_workers` idle workers.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`], [`BuildError::ZeroExpiry`] or
    /// [`BuildError::MinWorkersAboveCapacity`] or [`BuildError::QueueTooLarge`]
    /// for an invalid option;
    /// [`BuildError::SpawnFailed`] if a thread could not be started.
    pub fn build(self) -> Result<Pool, BuildError> {
        self.validate()?;
        Pool::start(self)
    }

    /// Builds a [`PoolWithFunc`] that runs `f` on every argument passed to
    /// [`invoke`](PoolWithFunc::invoke).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_with_func<A, F>(self, f: F) -> Result<PoolWithFunc<A>, BuildError>
    where
        A: Send + 'static,
        F: Fn(A) + Send + Sync + 'static,
    {
        Ok(PoolWithFunc::from_parts(self.build()?, f))
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.capacity == Some(0) {
            return Err(BuildError::ZeroCapacity);
        }
        if self.expiry.is_zero() {
            return Err(BuildError::ZeroExpiry);
        }
        if let Some(capacity) = self.capacity {
            if self.min_workers > capacity {
                return Err(BuildError::MinWorkersAboveCapacity {
                    min_workers: self.min_workers,
                    capacity,
                });
            }
        }
        if self.queue_capacity > Self::MAX_QUEUE_CAPACITY {
            return Err(BuildError::QueueTooLarge {
                queue_capacity: self.queue_capacity,
                max: Self::MAX_QUEUE_CAPACITY,
            });
        }
        Ok(())
    }
}
