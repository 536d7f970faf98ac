//! Every error type of the crate.

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use sync_wrapper::SyncWrapper;

/// Why [`PoolBuilder::build`](crate::PoolBuilder::build) (or a constructor
/// such as [`Pool::new`](crate::Pool::new) or
/// [`MultiPool::new`](crate::MultiPool::new)) refused to make a pool.
///
/// The `Display` text names the option and the value at fault.
/// [`source`](std::error::Error::source) is the [`io::Error`] of
/// [`SpawnFailed`](BuildError::SpawnFailed), and `None` for every other
/// variant.
///
/// Two errors are equal when their variants and values are; two
/// `SpawnFailed` when their `io::Error`s have the same
/// [`kind`](io::Error::kind) and message.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BuildError {
    /// `capacity(0)`: a pool must be allowed at least one worker. Use
    /// `unbounded()` for a pool without a limit.
    ZeroCapacity,
    /// `expiry(Duration::ZERO)`: idle workers would expire the moment they go
    /// idle. Use `disable_purge(true)` to keep idle workers forever.
    ZeroExpiry,
    /// `capacity` is above
    /// [`PoolBuilder::MAX_CAPACITY`](crate::PoolBuilder::MAX_CAPACITY)
    /// (`usize::MAX` among them, which once read as unbounded). Use
    /// `unbounded()` for a pool without a limit.
    CapacityTooLarge {
        /// The `capacity` asked for.
        capacity: usize,
        /// The largest accepted.
        max: usize,
    },
    /// `expiry` is above
    /// [`PoolBuilder::MAX_EXPIRY`](crate::PoolBuilder::MAX_EXPIRY) (such as
    /// `Duration::MAX`, which no clock can add). Use `disable_purge(true)`
    /// to keep idle workers forever.
    ExpiryTooLong {
        /// The `expiry` asked for.
        expiry: Duration,
        /// The longest accepted.
        max: Duration,
    },
    /// `min_workers` is above
    /// [`PoolBuilder::thread_limit`](crate::PoolBuilder::thread_limit): the
    /// pool would have to start more threads than the pools of this process
    /// may keep alive. Checked before any thread starts.
    TooManyMinWorkers {
        /// The `min_workers` asked for.
        min_workers: usize,
        /// The thread limit of this process.
        max: usize,
    },
    /// `thread_name` contains a NUL byte, which no OS thread name may hold.
    ThreadNameHasNul {
        /// The prefix asked for.
        thread_name: String,
    },
    /// `stack_size` is below
    /// [`PoolBuilder::MIN_STACK_SIZE`](crate::PoolBuilder::MIN_STACK_SIZE)
    /// (a panic that prints a backtrace would overflow it and abort the
    /// process) or above
    /// [`PoolBuilder::MAX_STACK_SIZE`](crate::PoolBuilder::MAX_STACK_SIZE).
    StackSizeOutOfRange {
        /// The `stack_size` asked for, in bytes.
        stack_size: usize,
        /// The smallest accepted.
        min: usize,
        /// The largest accepted.
        max: usize,
    },
    /// `min_workers` is larger than `capacity`.
    MinWorkersAboveCapacity {
        /// The `min_workers` asked for.
        min_workers: usize,
        /// The pool's capacity.
        capacity: usize,
    },
    /// A [`MultiPool`](crate::MultiPool) was asked for zero pools.
    ZeroPools,
    /// A [`MultiPool`](crate::MultiPool) was asked for more than
    /// [`MultiPool::MAX_POOLS`](crate::MultiPool::MAX_POOLS) pools.
    TooManyPools {
        /// The number of pools asked for.
        pools: usize,
        /// The most accepted.
        max: usize,
    },
    /// `queue_capacity` is above
    /// [`PoolBuilder::MAX_QUEUE_CAPACITY`](crate::PoolBuilder::MAX_QUEUE_CAPACITY):
    /// its slots are allocated up front.
    QueueTooLarge {
        /// The `queue_capacity` asked for.
        queue_capacity: usize,
        /// The largest accepted.
        max: usize,
    },
    /// [`Autoscale::bounds`](crate::Autoscale::bounds) out of range: `min`
    /// must be at least 1 and at most `max`, and `max` at most
    /// [`PoolBuilder::MAX_CAPACITY`](crate::PoolBuilder::MAX_CAPACITY).
    AutoscaleBounds {
        /// The `min` asked for.
        min: usize,
        /// The `max` asked for.
        max: usize,
    },
    /// [`Autoscale::interval`](crate::Autoscale::interval) out of range:
    /// from [`Autoscale::MIN_INTERVAL`](crate::Autoscale::MIN_INTERVAL) to
    /// [`Autoscale::MAX_INTERVAL`](crate::Autoscale::MAX_INTERVAL).
    AutoscaleInterval {
        /// The interval asked for.
        interval: std::time::Duration,
    },
    /// [`PoolBuilder::autoscale`](crate::PoolBuilder::autoscale) on an
    /// [`unbounded`](crate::PoolBuilder::unbounded) pool, which has no
    /// capacity to scale.
    AutoscaleUnbounded,
    /// The operating system (or
    /// [`PoolBuilder::thread_limit`](crate::PoolBuilder::thread_limit))
    /// refused to start a thread (the purge thread or one of
    /// `min_workers`); nothing of the pool is left running. Holds the
    /// refusal, which [`source`](std::error::Error::source) returns too
    /// (in an `Arc`, so that the error stays `Clone`).
    SpawnFailed(Arc<io::Error>),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroCapacity => f.write_str(
                "capacity must be at least 1, got 0 (use `unbounded()` for a pool without a limit)",
            ),
            BuildError::ZeroExpiry => f.write_str(
                "expiry must be longer than zero, got 0s (use `disable_purge(true)` to keep idle workers)",
            ),
            BuildError::CapacityTooLarge { capacity, max } => write!(
                f,
                "capacity must be at most {max}, got {capacity} (use `unbounded()` for a pool without a limit)"
            ),
            BuildError::ExpiryTooLong { expiry, max } => write!(
                f,
                "expiry must be at most {max:?}, got {expiry:?} (use `disable_purge(true)` to keep idle workers)"
            ),
            BuildError::TooManyMinWorkers { min_workers, max } => write!(
                f,
                "min_workers must be at most {max}, the threads the pools of this process may keep alive, got {min_workers}"
            ),
            BuildError::ThreadNameHasNul { thread_name } => write!(
                f,
                "thread_name must not contain a NUL byte, got {thread_name:?}"
            ),
            BuildError::StackSizeOutOfRange {
                stack_size,
                min,
                max,
            } => write!(
                f,
                "stack_size must be from {min} to {max} bytes, got {stack_size}"
            ),
            BuildError::MinWorkersAboveCapacity {
                min_workers,
                capacity,
            } => write!(
                f,
                "min_workers must not exceed capacity, got min_workers {min_workers} with capacity {capacity}"
            ),
            BuildError::ZeroPools => f.write_str("a multi-pool needs at least 1 pool, got 0"),
            BuildError::AutoscaleBounds { min, max } => write!(
                f,
                "autoscale bounds must be 1 <= min <= max <= {}, got min {min}, max {max}",
                crate::PoolBuilder::MAX_CAPACITY
            ),
            BuildError::AutoscaleUnbounded => f.write_str(
                "autoscale needs a bounded pool, got `unbounded()` (set a capacity to start from)",
            ),
            BuildError::AutoscaleInterval { interval } => write!(
                f,
                "autoscale interval must be from {:?} to {:?}, got {interval:?}",
                crate::Autoscale::MIN_INTERVAL,
                crate::Autoscale::MAX_INTERVAL
            ),
            BuildError::TooManyPools { pools, max } => write!(
                f,
                "a multi-pool may have at most {max} pools, got {pools}"
            ),
            BuildError::QueueTooLarge {
                queue_capacity,
                max,
            } => write!(
                f,
                "queue_capacity must be at most {max}, got {queue_capacity} (its slots are allocated up front)"
            ),
            BuildError::SpawnFailed(error) => {
                write!(f, "the pool could not start a thread: {error}")
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::SpawnFailed(error) => Some(&**error),
            _ => None,
        }
    }
}

/// Whether two refusals read the same: the same kind and message. (An
/// `io::Error` is not `PartialEq`; an OS error's message holds its code.)
fn same_io_error(a: &io::Error, b: &io::Error) -> bool {
    a.kind() == b.kind() && a.to_string() == b.to_string()
}

// By hand only because `io::Error` is not `PartialEq`: each arm compares
// what `#[derive(PartialEq)]` would, and the match on `self` is exhaustive,
// so a new variant cannot be forgotten.
impl PartialEq for BuildError {
    fn eq(&self, other: &BuildError) -> bool {
        use BuildError as E;
        match self {
            E::ZeroCapacity => matches!(other, E::ZeroCapacity),
            E::ZeroExpiry => matches!(other, E::ZeroExpiry),
            E::CapacityTooLarge { capacity, max } => matches!(
                other,
                E::CapacityTooLarge { capacity: c, max: m } if (c, m) == (capacity, max)
            ),
            E::ExpiryTooLong { expiry, max } => matches!(
                other,
                E::ExpiryTooLong { expiry: e, max: m } if (e, m) == (expiry, max)
            ),
            E::TooManyMinWorkers { min_workers, max } => matches!(
                other,
                E::TooManyMinWorkers { min_workers: w, max: m } if (w, m) == (min_workers, max)
            ),
            E::ThreadNameHasNul { thread_name } => matches!(
                other,
                E::ThreadNameHasNul { thread_name: n } if n == thread_name
            ),
            E::StackSizeOutOfRange {
                stack_size,
                min,
                max,
            } => matches!(
                other,
                E::StackSizeOutOfRange { stack_size: s, min: lo, max: hi }
                    if (s, lo, hi) == (stack_size, min, max)
            ),
            E::MinWorkersAboveCapacity {
                min_workers,
                capacity,
            } => matches!(
                other,
                E::MinWorkersAboveCapacity { min_workers: w, capacity: c }
                    if (w, c) == (min_workers, capacity)
            ),
            E::ZeroPools => matches!(other, E::ZeroPools),
            E::AutoscaleBounds { min, max } => matches!(
                other,
                E::AutoscaleBounds { min: lo, max: hi } if (lo, hi) == (min, max)
            ),
            E::AutoscaleUnbounded => matches!(other, E::AutoscaleUnbounded),
            E::AutoscaleInterval { interval } => matches!(
                other,
                E::AutoscaleInterval { interval: i } if i == interval
            ),
            E::TooManyPools { pools, max } => matches!(
                other,
                E::TooManyPools { pools: p, max: m } if (p, m) == (pools, max)
            ),
            E::QueueTooLarge {
                queue_capacity,
                max,
            } => matches!(
                other,
                E::QueueTooLarge { queue_capacity: q, max: m } if (q, m) == (queue_capacity, max)
            ),
            E::SpawnFailed(error) => matches!(
                other,
                E::SpawnFailed(e) if same_io_error(e, error)
            ),
        }
    }
}

impl Eq for BuildError {}

/// Why a pool refused a call.
///
/// Every task that [`Pool::submit`](crate::Pool::submit) refuses comes back as
/// one of these at the call, and the task is not run.
///
/// One type for every call of a pool, so each method's `# Errors` section
/// says which variants it can return; this table gathers them.
/// [`PoolWithFunc`]'s methods return what the [`Pool`] methods of the same
/// name do (`invoke` as `submit`), and the futures of `submit_async` and
/// `spawn_async` resolve to these too. [`source`](std::error::Error::source)
/// is `Some` for [`SpawnFailed`](PoolError::SpawnFailed) only.
///
/// | Variant | Returned by |
/// |---|---|
/// | [`Closed`](PoolError::Closed) | [`Pool::submit`], [`Pool::spawn`], [`TaskBuilder::spawn`], [`Pool::spawn_batch`], [`BatchBuilder::spawn`], [`Pool::submit_timeout`], [`Pool::submit_async`], [`Pool::spawn_async`], [`Pool::release_timeout`], [`Pool::drain_timeout`], [`Pool::monitor`]; [`MultiPool::submit`], [`MultiPool::spawn`], [`MultiPool::release_timeout`] |
/// | [`Overloaded`](PoolError::Overloaded) | [`Pool::submit`], [`Pool::spawn`], [`TaskBuilder::spawn`], [`Pool::spawn_batch`], [`BatchBuilder::spawn`], [`Pool::submit_timeout`]; [`Pool::submit_async`] and [`Pool::spawn_async`] on a nonblocking pool; [`MultiPool::submit`], [`MultiPool::spawn`] |
/// | [`Timeout`](PoolError::Timeout) | [`Pool::submit_timeout`], [`Pool::wait_idle`], [`Pool::release_timeout`], [`Pool::drain_timeout`]; [`MultiPool::wait_idle`], [`MultiPool::release_timeout`] |
/// | [`WouldDeadlock`](PoolError::WouldDeadlock) | from a task of the pool: [`Pool::submit`], [`Pool::spawn`], [`TaskBuilder::spawn`], [`Pool::spawn_batch`], [`BatchBuilder::spawn`], [`Pool::submit_timeout`], [`Pool::wait_idle`], [`Pool::release_timeout`], [`Pool::drain_timeout`]; [`MultiPool::submit`], [`MultiPool::spawn`], [`MultiPool::wait_idle`], [`MultiPool::release_timeout`] |
/// | [`InvalidCapacity`](PoolError::InvalidCapacity) | [`Pool::tune`], [`MultiPool::tune`] |
/// | [`CapacityTooLarge`](PoolError::CapacityTooLarge) | [`Pool::tune`], [`MultiPool::tune`] |
/// | [`Unbounded`](PoolError::Unbounded) | [`Pool::tune`], [`MultiPool::tune`] |
/// | [`InvalidIndex`](PoolError::InvalidIndex) | the `*_by_index` methods of [`MultiPool`] ([`MultiPool::workers_by_index`] and the like) |
/// | [`SpawnFailed`](PoolError::SpawnFailed) | [`Pool::submit`], [`Pool::spawn`], [`TaskBuilder::spawn`], [`Pool::spawn_batch`], [`BatchBuilder::spawn`], [`Pool::submit_timeout`], [`Pool::submit_async`], [`Pool::spawn_async`], [`Pool::reboot`], [`Pool::monitor`]; [`MultiPool::submit`], [`MultiPool::spawn`], [`MultiPool::reboot`] |
///
/// [`try_submit`](crate::Pool::try_submit) has its own error,
/// [`TrySubmitError`], which gives the task back.
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use workpool::{Pool, PoolError};
/// let pool = Pool::new(1)?;
/// assert_eq!(pool.tune(0), Err(PoolError::InvalidCapacity));
/// assert!(pool.tune(0).unwrap_err().source().is_none());
/// pool.release();
/// assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
/// # Ok::<(), Box<dyn Error>>(())
/// ```
///
/// [`Pool`]: crate::Pool
/// [`PoolWithFunc`]: crate::PoolWithFunc
/// [`MultiPool`]: crate::MultiPool
/// [`Pool::submit`]: crate::Pool::submit
/// [`Pool::spawn`]: crate::Pool::spawn
/// [`TaskBuilder::spawn`]: crate::TaskBuilder::spawn
/// [`Pool::spawn_batch`]: crate::Pool::spawn_batch
/// [`BatchBuilder::spawn`]: crate::BatchBuilder::spawn
/// [`Pool::submit_timeout`]: crate::Pool::submit_timeout
/// [`Pool::submit_async`]: crate::Pool::submit_async
/// [`Pool::spawn_async`]: crate::Pool::spawn_async
/// [`Pool::wait_idle`]: crate::Pool::wait_idle
/// [`Pool::release_timeout`]: crate::Pool::release_timeout
/// [`Pool::drain_timeout`]: crate::Pool::drain_timeout
/// [`Pool::tune`]: crate::Pool::tune
/// [`Pool::reboot`]: crate::Pool::reboot
/// [`Pool::monitor`]: crate::Pool::monitor
/// [`MultiPool::submit`]: crate::MultiPool::submit
/// [`MultiPool::spawn`]: crate::MultiPool::spawn
/// [`MultiPool::wait_idle`]: crate::MultiPool::wait_idle
/// [`MultiPool::release_timeout`]: crate::MultiPool::release_timeout
/// [`MultiPool::tune`]: crate::MultiPool::tune
/// [`MultiPool::reboot`]: crate::MultiPool::reboot
/// [`MultiPool::workers_by_index`]: crate::MultiPool::workers_by_index
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool has been released; it takes no new tasks until
    /// [`reboot`](crate::Pool::reboot).
    Closed,
    /// Every worker is busy and the pool is at capacity, and the pool is
    /// nonblocking, or `max_blocking_tasks` callers are already blocked.
    Overloaded,
    /// A call with a time limit ran out of time:
    /// [`release_timeout`](crate::Pool::release_timeout) before every thread
    /// of the pool had exited, [`drain_timeout`](crate::Pool::drain_timeout)
    /// before the queue was drained and every thread had exited,
    /// [`wait_idle`](crate::Pool::wait_idle) before every task had finished,
    /// or [`submit_timeout`](crate::Pool::submit_timeout) before there was
    /// room (its task is dropped without running).
    Timeout,
    /// The call would block until a task of this same pool ends, and it was
    /// made from a task of the pool: a task submitting to its own full pool,
    /// or calling [`wait_idle`](crate::Pool::wait_idle),
    /// [`release_timeout`](crate::Pool::release_timeout) or
    /// [`drain_timeout`](crate::Pool::drain_timeout) (which would wait for
    /// its own thread). Blocking could hang for ever, so the call fails at
    /// once.
    WouldDeadlock,
    /// [`tune`](crate::Pool::tune) was asked for a capacity of 0; a pool must
    /// be allowed at least one worker.
    InvalidCapacity,
    /// [`tune`](crate::Pool::tune) was asked for a capacity above
    /// [`PoolBuilder::MAX_CAPACITY`](crate::PoolBuilder::MAX_CAPACITY); the
    /// capacity is left as it was.
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: usize,
        /// The largest accepted.
        max: usize,
    },
    /// [`tune`](crate::Pool::tune) was called on an unbounded pool, which has
    /// no capacity to change.
    Unbounded,
    /// A [`MultiPool`](crate::MultiPool) was asked about a pool it does not have.
    InvalidIndex {
        /// The index asked for.
        index: usize,
        /// How many pools there are.
        len: usize,
    },
    /// The operating system (or
    /// [`PoolBuilder::thread_limit`](crate::PoolBuilder::thread_limit))
    /// refused to start a thread: a worker for a task (the task was not
    /// run), the purge thread or a `min_workers` worker of a
    /// [`reboot`](crate::Pool::reboot) (the pool is closed again), or the
    /// thread of a [`monitor`](crate::Pool::monitor). Holds the refusal,
    /// which [`source`](std::error::Error::source) returns too (in an
    /// `Arc`, so that the error stays `Clone`).
    SpawnFailed(Arc<io::Error>),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Closed => f.write_str("the pool is closed and takes no new tasks"),
            PoolError::Overloaded => f.write_str(
                "the pool is overloaded: every worker is busy and no caller may wait for one",
            ),
            PoolError::Timeout => f.write_str(
                "the timeout passed before the pool was done (threads still running, tasks unfinished, or no room)",
            ),
            PoolError::WouldDeadlock => f.write_str(
                "the call would wait for a task of its own pool from inside one of its tasks, and could deadlock",
            ),
            PoolError::InvalidCapacity => f.write_str("capacity must be at least 1, got 0"),
            PoolError::CapacityTooLarge { capacity, max } => {
                write!(f, "capacity must be at most {max}, got {capacity}")
            }
            PoolError::Unbounded => {
                f.write_str("the pool is unbounded, so its capacity cannot be tuned")
            }
            PoolError::InvalidIndex { index, len } => write!(
                f,
                "pool index {index} is out of range for a multi-pool of {len} pools"
            ),
            PoolError::SpawnFailed(error) => {
                write!(f, "the pool could not start a thread: {error}")
            }
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::SpawnFailed(error) => Some(&**error),
            _ => None,
        }
    }
}

// By hand for the same reason as `BuildError`'s.
impl PartialEq for PoolError {
    fn eq(&self, other: &PoolError) -> bool {
        use PoolError as E;
        match self {
            E::Closed => matches!(other, E::Closed),
            E::Overloaded => matches!(other, E::Overloaded),
            E::Timeout => matches!(other, E::Timeout),
            E::WouldDeadlock => matches!(other, E::WouldDeadlock),
            E::InvalidCapacity => matches!(other, E::InvalidCapacity),
            E::CapacityTooLarge { capacity, max } => matches!(
                other,
                E::CapacityTooLarge { capacity: c, max: m } if (c, m) == (capacity, max)
            ),
            E::Unbounded => matches!(other, E::Unbounded),
            E::InvalidIndex { index, len } => matches!(
                other,
                E::InvalidIndex { index: i, len: l } if (i, l) == (index, len)
            ),
            E::SpawnFailed(error) => matches!(
                other,
                E::SpawnFailed(e) if same_io_error(e, error)
            ),
        }
    }
}

impl Eq for PoolError {}

/// Why a task's handle has no value: the task panicked, or it was cancelled
/// before it could start. Modelled on tokio's `JoinError`.
///
/// The `Display` text quotes the panic message.
///
/// # Examples
///
/// ```
/// let pool = workpool::Pool::new(1)?;
/// let handle = pool.spawn(|| -> u32 { panic!("no answer") })?;
/// let error = handle.join().unwrap_err();
/// assert!(error.is_panic());
/// assert_eq!(error.to_string(), "the task panicked: no answer");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the payload is the value it panicked with.
    Panicked(PanicPayload),
    /// The task was cancelled before it started: by its handle, by its
    /// cancel token, or by [`release`](crate::Pool::release). It never ran.
    Cancelled,
    /// The task's deadline passed before it started. It never ran.
    DeadlineExceeded,
}

impl TaskError {
    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(1)?;
    /// let error = pool.spawn(|| -> u32 { panic!("boom") })?.join().unwrap_err();
    /// assert!(error.is_panic());
    /// assert!(!error.is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// Whether the task was cancelled before it started, by a caller or by
    /// its deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::TaskError;
    /// assert!(TaskError::Cancelled.is_cancelled());
    /// assert!(TaskError::DeadlineExceeded.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled | TaskError::DeadlineExceeded)
    }

    /// Whether the task was cancelled by its deadline rather than by a
    /// caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::TaskError;
    /// assert!(TaskError::DeadlineExceeded.is_deadline());
    /// assert!(!TaskError::Cancelled.is_deadline());
    /// ```
    pub fn is_deadline(&self) -> bool {
        matches!(self, TaskError::DeadlineExceeded)
    }

    /// The panic payload, to re-raise it with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the task did not panic.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(1)?;
    /// let handle = pool.spawn(|| -> u32 { std::panic::panic_any(7_u8) })?;
    /// let payload = handle.join().unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`TaskError::into_panic` on a task that did not panic")
    }

    /// The panic payload, or the error itself if the task did not panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::TaskError;
    /// let pool = workpool::Pool::new(1)?;
    /// let error = pool.spawn(|| -> u32 { panic!("boom") })?.join().unwrap_err();
    /// let payload = error.try_into_panic().expect("it panicked");
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    /// assert!(matches!(TaskError::Cancelled.try_into_panic(), Err(TaskError::Cancelled)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError> {
        match self {
            TaskError::Panicked(payload) => Ok(payload.into_inner()),
            other => Err(other),
        }
    }

    /// The panic message, if the task panicked with a string.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(1)?;
    /// let error = pool.spawn(|| -> u32 { panic!("no {}", "answer") })?.join().unwrap_err();
    /// assert_eq!(error.panic_message(), Some("no answer"));
    /// assert_eq!(workpool::TaskError::Cancelled.panic_message(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked(payload) => payload.message(),
            _ => None,
        }
    }

    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> TaskError {
        TaskError::Panicked(PanicPayload::new(payload))
    }
}

/// What a task panicked with: the payload, and its message when it is a
/// string. `Sync` (the payload is reachable only by value), so that a
/// [`TaskError`] converts into `Box<dyn Error + Send + Sync>` and
/// `anyhow::Error`.
pub struct PanicPayload {
    /// Boxed, so that a `Result<T, TaskError>` stays small beside `T`.
    inner: Box<Panic>,
}

/// The message, read once, and the payload, reachable by value only.
struct Panic(Option<String>, SyncWrapper<Box<dyn Any + Send + 'static>>);

impl PanicPayload {
    fn new(payload: Box<dyn Any + Send + 'static>) -> PanicPayload {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        PanicPayload {
            inner: Box::new(Panic(message, SyncWrapper::new(payload))),
        }
    }

    /// The panic message, if the payload is a string (as `panic!` makes it).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::TaskError;
    /// let pool = workpool::Pool::new(1)?;
    /// let error = pool.spawn(|| -> u32 { panic!("boom") })?.join().unwrap_err();
    /// let TaskError::Panicked(payload) = error else { panic!("{error}") };
    /// assert_eq!(payload.message(), Some("boom"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.inner.0.as_deref()
    }

    /// The payload, to re-raise it with [`std::panic::resume_unwind`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::TaskError;
    /// let pool = workpool::Pool::new(1)?;
    /// let error = pool.spawn(|| -> u32 { std::panic::panic_any(7_u8) })?.join().unwrap_err();
    /// let TaskError::Panicked(payload) = error else { panic!("{error}") };
    /// assert_eq!(payload.message(), None);
    /// assert_eq!(payload.into_inner().downcast_ref::<u8>(), Some(&7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        self.inner.1.into_inner()
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PanicPayload")
            .field(&self.message().unwrap_or("Box<dyn Any>"))
            .finish()
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(_) => f
                .debug_tuple("Panicked")
                .field(&self.panic_message().unwrap_or("Box<dyn Any>"))
                .finish(),
            TaskError::Cancelled => f.write_str("Cancelled"),
            TaskError::DeadlineExceeded => f.write_str("DeadlineExceeded"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(_) => match self.panic_message() {
                Some(message) => write!(f, "the task panicked: {message}"),
                None => f.write_str("the task panicked with a payload that is not a string"),
            },
            TaskError::Cancelled => f.write_str("the task was cancelled before it started"),
            TaskError::DeadlineExceeded => {
                f.write_str("the task's deadline passed before it started")
            }
        }
    }
}

impl std::error::Error for TaskError {}

/// Why [`try_submit`](crate::Pool::try_submit) refused a task, with the
/// task given back (like crossbeam's `TrySendError`), so that it can be
/// tried again without cloning what it captured.
///
/// # Examples
///
/// ```
/// use workpool::{Pool, TrySubmitError};
///
/// let pool = Pool::new(1)?;
/// pool.release();
/// let answer = String::from("42");
/// let refused = pool.try_submit(move || println!("{answer}")).unwrap_err();
/// assert!(matches!(refused, TrySubmitError::Closed(_)));
/// let task = refused.into_inner();
/// task(); // the same closure, with what it captured
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum TrySubmitError<F> {
    /// Every worker is busy and the queue is full (or the call was made
    /// from a task of the same full pool).
    Full(F),
    /// The pool is released.
    Closed(F),
    /// No worker thread could be started for it.
    SpawnFailed(F),
}

impl<F> TrySubmitError<F> {
    /// The task that was refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::new(1)?;
    /// pool.release();
    /// let (tx, rx) = mpsc::channel();
    /// let refused = pool.try_submit(move || tx.send(42).unwrap()).unwrap_err();
    /// let task = refused.into_inner();
    /// task(); // the same closure, run here
    /// assert_eq!(rx.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(f)
            | TrySubmitError::Closed(f)
            | TrySubmitError::SpawnFailed(f) => f,
        }
    }

    /// Whether the pool was full.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::builder().capacity(1).queue_capacity(0).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // no room left
    /// let refused = pool.try_submit(|| ()).unwrap_err();
    /// assert!(refused.is_full() && !refused.is_closed());
    /// tx.send(())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }

    /// Whether the pool was released.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(1)?;
    /// pool.release();
    /// let refused = pool.try_submit(|| ()).unwrap_err();
    /// assert!(refused.is_closed() && !refused.is_full());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySubmitError::Closed(_))
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Closed(_) => f.write_str("Closed(..)"),
            TrySubmitError::SpawnFailed(_) => f.write_str("SpawnFailed(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => {
                f.write_str("the pool is full: every worker is busy and the queue is full")
            }
            TrySubmitError::Closed(_) => f.write_str("the pool is closed and takes no new tasks"),
            TrySubmitError::SpawnFailed(_) => {
                f.write_str("the pool could not start a worker thread for the task")
            }
        }
    }
}

impl<F> std::error::Error for TrySubmitError<F> {}
