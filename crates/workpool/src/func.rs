//! `PoolWithFunc<A>`: a pool bound to one function, fed arguments.

use crate::error::{BuildError, PoolError};
use crate::handle::TaskHandle;
use crate::pool::Pool;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A [`Pool`] bound to one function: [`invoke`](Self::invoke) runs it on a
/// worker with the argument given (ants' `PoolWithFunc`).
///
/// It has the same capacity, blocking, expiry and shutdown behaviour as a
/// `Pool` built with the same options, and is a cheap `Clone` handle too.
///
/// A clone of the `PoolWithFunc` (or of its pool) captured by the function
/// itself is a cycle: the pool then never sees its last handle drop, so
/// release such a pool explicitly.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use workpool::PoolWithFunc;
///
/// let total = Arc::new(AtomicU64::new(0));
/// let sink = Arc::clone(&total);
/// let pool = PoolWithFunc::new(2, move |n: u64| {
///     sink.fetch_add(n, Ordering::Relaxed);
/// })?;
/// for n in 1..=10 {
///     pool.invoke(n)?;
/// }
/// pool.release_timeout(Duration::from_secs(10))?;
/// assert_eq!(total.load(Ordering::Relaxed), 55);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PoolWithFunc<A> {
    pool: Pool,
    func: Arc<dyn Fn(A) + Send + Sync + 'static>,
}

impl<A: Send + 'static> PoolWithFunc<A> {
    /// A bounded pool of `capacity` workers that runs `f`, with every other
    /// option at its default. For options use
    /// [`PoolBuilder::build_with_func`](crate::PoolBuilder::build_with_func).
    ///
    /// # Errors
    ///
    /// As [`Pool::new`].
    pub fn new<F>(capacity: usize, f: F) -> Result<Self, BuildError>
    where
        F: Fn(A) + Send + Sync + 'static,
    {
        Ok(Self::from_parts(Pool::new(capacity)?, f))
    }

    pub(crate) fn from_parts<F>(pool: Pool, f: F) -> Self
    where
        F: Fn(A) + Send + Sync + 'static,
    {
        PoolWithFunc {
            pool,
            func: Arc::new(f),
        }
    }

    /// Runs the pool's function with `arg` on a worker; blocks, fails or
    /// spawns exactly as [`Pool::submit`] does.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`]; a refused `arg` is dropped.
    pub fn invoke(&self, arg: A) -> Result<(), PoolError> {
        let func = Arc::clone(&self.func);
        self.pool.submit(move || func(arg))
    }

    /// Runs the pool's function with `arg` on a worker, as
    /// [`invoke`](Self::invoke) does, and returns a handle that says when it
    /// has run, or how it failed (see [`Pool::spawn`]).
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`]; a refused `arg` is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(2, |n: u32| assert!(n < 10))?;
    /// assert!(pool.spawn(3)?.join().is_ok());
    /// assert!(pool.spawn(30)?.join().unwrap_err().is_panic());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(&self, arg: A) -> Result<TaskHandle<()>, PoolError> {
        let func = Arc::clone(&self.func);
        self.pool.spawn(move || func(arg))
    }

    /// See [`Pool::wait_idle`].
    ///
    /// # Errors
    ///
    /// As [`Pool::wait_idle`].
    pub fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        self.pool.wait_idle(timeout)
    }

    /// See [`Pool::stats`].
    pub fn stats(&self) -> crate::Stats {
        self.pool.stats()
    }

    /// See [`Pool::health`].
    pub fn health(&self, policy: &crate::HealthPolicy) -> crate::Health {
        self.pool.health(policy)
    }

    /// See [`Pool::workers`].
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// See [`Pool::idle`].
    pub fn idle(&self) -> usize {
        self.pool.idle()
    }

    /// See [`Pool::busy`].
    pub fn busy(&self) -> usize {
        self.pool.busy()
    }

    /// See [`Pool::waiting`].
    pub fn waiting(&self) -> usize {
        self.pool.waiting()
    }

    /// Accepted arguments waiting in the queue; see [`Pool::queued`].
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    /// See [`Pool::capacity`].
    pub fn capacity(&self) -> Option<usize> {
        self.pool.capacity()
    }

    /// See [`Pool::free`].
    pub fn free(&self) -> Option<usize> {
        self.pool.free()
    }

    /// See [`Pool::panicked`].
    pub fn panicked(&self) -> usize {
        self.pool.panicked()
    }

    /// See [`Pool::tune`].
    ///
    /// # Errors
    ///
    /// As [`Pool::tune`].
    pub fn tune(&self, capacity: usize) -> Result<(), PoolError> {
        self.pool.tune(capacity)
    }

    /// See [`Pool::release`].
    pub fn release(&self) {
        self.pool.release();
    }

    /// See [`Pool::release_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Pool::release_timeout`].
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        self.pool.release_timeout(timeout)
    }

    /// See [`Pool::reboot`].
    ///
    /// # Errors
    ///
    /// As [`Pool::reboot`].
    pub fn reboot(&self) -> Result<(), PoolError> {
        self.pool.reboot()
    }

    /// See [`Pool::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }
}

impl<A> Clone for PoolWithFunc<A> {
    fn clone(&self) -> Self {
        PoolWithFunc {
            pool: self.pool.clone(),
            func: Arc::clone(&self.func),
        }
    }
}

impl<A> fmt::Debug for PoolWithFunc<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolWithFunc")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}
