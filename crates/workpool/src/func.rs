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
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::PoolWithFunc;
    /// let pool = PoolWithFunc::new(4, |name: String| println!("hello, {name}"))?;
    /// assert_eq!(pool.capacity(), Some(4));
    /// pool.invoke("world".to_owned())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// As [`Pool::submit`]: [`Closed`](PoolError::Closed),
    /// [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed). A refused `arg` is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let (tx, rx) = mpsc::channel();
    /// let pool = workpool::PoolWithFunc::new(2, move |n: u32| tx.send(n * n).unwrap())?;
    /// pool.invoke(7)?;
    /// assert_eq!(rx.recv()?, 49);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// As [`Pool::submit`]: [`Closed`](PoolError::Closed),
    /// [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed). A refused `arg` is dropped.
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
    /// As [`Pool::wait_idle`]: [`PoolError::Timeout`] or
    /// [`PoolError::WouldDeadlock`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let sum = Arc::new(AtomicU32::new(0));
    /// let sink = Arc::clone(&sum);
    /// let pool = workpool::PoolWithFunc::new(2, move |n: u32| {
    ///     sink.fetch_add(n, Ordering::SeqCst);
    /// })?;
    /// for n in 1..=4 {
    ///     pool.invoke(n)?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(sum.load(Ordering::SeqCst), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        self.pool.wait_idle(timeout)
    }

    /// See [`Pool::stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::PoolWithFunc::new(2, |_: u8| ())?;
    /// for n in 0..5 {
    ///     pool.invoke(n)?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pool.stats().completed, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.pool.stats()
    }

    /// See [`Pool::health`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{HealthPolicy, PoolWithFunc};
    /// let pool = PoolWithFunc::new(2, |_: u8| ())?;
    /// let health = pool.health(&HealthPolicy::default());
    /// assert!(health.healthy, "{:?}", health.problems);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self, policy: &crate::HealthPolicy) -> crate::Health {
        self.pool.health(policy)
    }

    /// See [`Pool::workers`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder()
    ///     .capacity(4)
    ///     .min_workers(2)
    ///     .build_with_func(|_: u8| ())?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// See [`Pool::idle`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::builder()
    ///     .capacity(4)
    ///     .min_workers(2)
    ///     .build_with_func(|_: u8| ())?;
    /// pool.spawn(1)?.join()?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pool.idle(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle(&self) -> usize {
        self.pool.idle()
    }

    /// See [`Pool::busy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// // Each argument is a gate that the task waits on.
    /// let pool = workpool::PoolWithFunc::new(2, |gate: mpsc::Receiver<()>| {
    ///     gate.recv().ok();
    /// })?;
    /// let (open, gate) = mpsc::channel();
    /// pool.invoke(gate)?;
    /// assert_eq!(pool.busy(), 1);
    /// open.send(())?;
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pool.busy(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy(&self) -> usize {
        self.pool.busy()
    }

    /// How many callers are waiting for room now: blocked in `invoke` (or
    /// `spawn`), like those of [`Pool::waiting`] (ants' `Waiting`). Not
    /// arguments in the queue: see [`queued`](Self::queued).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::Pool::builder()
    ///     .capacity(1)
    ///     .queue_capacity(0)
    ///     .build_with_func(|gate: mpsc::Receiver<()>| { gate.recv().ok(); })?;
    /// let (open, gate) = mpsc::channel();
    /// pool.invoke(gate)?; // no room left
    /// let other = pool.clone();
    /// let blocked = std::thread::spawn(move || other.invoke(mpsc::channel().1));
    /// while pool.waiting() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!((pool.waiting(), pool.queued()), (1, 0));
    /// open.send(())?;
    /// assert_eq!(blocked.join().unwrap(), Ok(()));
    /// assert_eq!(pool.waiting(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiting(&self) -> usize {
        self.pool.waiting()
    }

    /// Accepted arguments waiting in the queue; see [`Pool::queued`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = workpool::PoolWithFunc::new(1, |gate: mpsc::Receiver<()>| {
    ///     gate.recv().ok();
    /// })?;
    /// let (open, gate) = mpsc::channel();
    /// pool.invoke(gate)?; // holds the only worker
    /// pool.invoke(mpsc::channel().1)?;
    /// assert_eq!(pool.queued(), 1);
    /// open.send(())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    /// See [`Pool::capacity`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(3, |_: u8| ())?;
    /// assert_eq!(pool.capacity(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.pool.capacity()
    }

    /// How many more workers may start now: capacity minus live workers,
    /// idle ones included (ants' `Free`); `None` for an unbounded pool. See
    /// [`Pool::free`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder()
    ///     .capacity(4)
    ///     .min_workers(1)
    ///     .build_with_func(|_: u8| ())?;
    /// assert_eq!(pool.free(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn free(&self) -> Option<usize> {
        self.pool.free()
    }

    /// See [`Pool::panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(1, |n: u32| assert!(n < 10, "too big"))?;
    /// assert!(pool.spawn(30)?.join().unwrap_err().is_panic());
    /// assert_eq!(pool.panicked(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn panicked(&self) -> usize {
        self.pool.panicked()
    }

    /// See [`Pool::tune`].
    ///
    /// # Errors
    ///
    /// As [`Pool::tune`]: [`PoolError::InvalidCapacity`],
    /// [`PoolError::CapacityTooLarge`] or [`PoolError::Unbounded`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(2, |_: u8| ())?;
    /// pool.tune(6)?;
    /// assert_eq!(pool.capacity(), Some(6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity: usize) -> Result<(), PoolError> {
        self.pool.tune(capacity)
    }

    /// See [`Pool::release`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(2, |_: u8| ())?;
    /// pool.release();
    /// assert_eq!(pool.invoke(1), Err(workpool::PoolError::Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) {
        self.pool.release();
    }

    /// See [`Pool::release_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Pool::release_timeout`]: [`PoolError::Closed`],
    /// [`PoolError::Timeout`] or [`PoolError::WouldDeadlock`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::PoolWithFunc::new(2, |_: u8| ())?;
    /// let handle = pool.spawn(1)?;
    /// pool.release_timeout(Duration::from_secs(10))?;
    /// assert!(handle.is_finished());
    /// assert_eq!(pool.workers(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        self.pool.release_timeout(timeout)
    }

    /// See [`Pool::reboot`].
    ///
    /// # Errors
    ///
    /// As [`Pool::reboot`]: [`PoolError::SpawnFailed`] only.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(2, |_: u8| ())?;
    /// pool.release();
    /// pool.reboot()?;
    /// assert!(!pool.is_closed());
    /// assert!(pool.spawn(1)?.join().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reboot(&self) -> Result<(), PoolError> {
        self.pool.reboot()
    }

    /// See [`Pool::is_closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::PoolWithFunc::new(2, |_: u8| ())?;
    /// assert!(!pool.is_closed());
    /// pool.release();
    /// assert!(pool.is_closed());
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
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
            .field("name", &self.pool.name())
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}
