//! Every error type of the crate.

use std::fmt;

/// Why [`PoolBuilder::build`](crate::PoolBuilder::build) (or a constructor
/// such as [`Pool::new`](crate::Pool::new) or
/// [`MultiPool::new`](crate::MultiPool::new)) refused to make a pool.
///
/// The `Display` text names the option and the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `capacity(0)`: a pool must be allowed at least one worker. Use
    /// `unbounded()` for a pool without a limit.
    ZeroCapacity,
    /// `expiry(Duration::ZERO)`: idle workers would expire the moment they go
    /// idle. Use `disable_purge(true)` to keep idle workers forever.
    ZeroExpiry,
    /// `min_workers` is larger than `capacity`.
    MinWorkersAboveCapacity {
        /// The `min_workers` asked for.
        min_workers: usize,
        /// The pool's capacity.
        capacity: usize,
    },
    /// A [`MultiPool`](crate::MultiPool) was asked for zero pools.
    ZeroPools,
    /// `queue_capacity` is above
    /// [`PoolBuilder::MAX_QUEUE_CAPACITY`](crate::PoolBuilder::MAX_QUEUE_CAPACITY):
    /// its slots are allocated up front.
    QueueTooLarge {
        /// The `queue_capacity` asked for.
        queue_capacity: usize,
        /// The largest accepted.
        max: usize,
    },
    /// The operating system refused to start a thread (the purge thread or
    /// one of `min_workers`); nothing of the pool is left running.
    SpawnFailed {
        /// The operating system's reason.
        reason: String,
    },
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
            BuildError::MinWorkersAboveCapacity {
                min_workers,
                capacity,
            } => write!(
                f,
                "min_workers must not exceed capacity, got min_workers {min_workers} with capacity {capacity}"
            ),
            BuildError::ZeroPools => f.write_str("a multi-pool needs at least 1 pool, got 0"),
            BuildError::QueueTooLarge {
                queue_capacity,
                max,
            } => write!(
                f,
                "queue_capacity must be at most {max}, got {queue_capacity} (its slots are allocated up front)"
            ),
            BuildError::SpawnFailed { reason } => {
                write!(f, "the pool could not start a thread: {reason}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Why a pool refused a call.
///
/// Every task that [`Pool::submit`](crate::Pool::submit) refuses comes back as
/// one of these at the call, and the task is not run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool has been released; it takes no new tasks until
    /// [`reboot`](crate::Pool::reboot).
    Closed,
    /// Every worker is busy and the pool is at capacity, and the pool is
    /// nonblocking, or `max_blocking_tasks` callers are already blocked.
    Overloaded,
    /// [`release_timeout`](crate::Pool::release_timeout) gave up before every
    /// thread of the pool had exited.
    Timeout,
    /// The call would block until a task of this same pool ends, and it was
    /// made from a task of the pool: a task submitting to its own full pool,
    /// or calling [`release_timeout`](crate::Pool::release_timeout) (which
    /// would wait for its own thread). Blocking could hang for ever, so the
    /// call fails at once.
    WouldDeadlock,
    /// [`tune`](crate::Pool::tune) was asked for a capacity of 0; a pool must
    /// be allowed at least one worker.
    InvalidCapacity,
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
    /// The operating system refused to start a worker thread; the task was not
    /// run.
    SpawnFailed {
        /// The operating system's reason.
        reason: String,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Closed => f.write_str("the pool is closed and takes no new tasks"),
            PoolError::Overloaded => f.write_str(
                "the pool is overloaded: every worker is busy and no caller may wait for one",
            ),
            PoolError::Timeout => {
                f.write_str("the pool's threads did not all exit before the timeout")
            }
            PoolError::WouldDeadlock => f.write_str(
                "the call would wait for a task of its own pool from inside one of its tasks, and could deadlock",
            ),
            PoolError::InvalidCapacity => f.write_str("capacity must be at least 1, got 0"),
            PoolError::Unbounded => {
                f.write_str("the pool is unbounded, so its capacity cannot be tuned")
            }
            PoolError::InvalidIndex { index, len } => write!(
                f,
                "pool index {index} is out of range for a multi-pool of {len} pools"
            ),
            PoolError::SpawnFailed { reason } => {
                write!(f, "the pool could not start a worker thread: {reason}")
            }
        }
    }
}

impl std::error::Error for PoolError {}
