//! `MultiPool`: several pools behind one handle, to spread the lock traffic of
//! one pool over many (ants' `MultiPool`).

use crate::builder::PoolBuilder;
use crate::error::{BuildError, PoolError};
use crate::pool::Pool;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a [`MultiPool`] picks the pool for the next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadBalancing {
    /// Pools in turn, starting at pool 0. A pool that answers
    /// [`PoolError::Overloaded`] is followed by one retry on the least-loaded
    /// pool.
    RoundRobin,
    /// The pool with the fewest busy workers (plus queued tasks, with
    /// `queue_capacity`); the lowest index on ties.
    LeastTasks,
}

/// Several [`Pool`]s of the same options behind one cheap `Clone` handle.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool::{LoadBalancing, MultiPool};
///
/// let pools = MultiPool::new(4, 2, LoadBalancing::RoundRobin)?;
/// assert_eq!(pools.len(), 4);
/// assert_eq!(pools.capacity(), Some(8));
/// let (tx, rx) = std::sync::mpsc::channel();
/// for i in 0..8 {
///     let tx = tx.clone();
///     pools.submit(move || tx.send(i).unwrap())?;
/// }
/// let mut got: Vec<i32> = rx.iter().take(8).collect();
/// got.sort();
/// assert_eq!(got, (0..8).collect::<Vec<_>>());
/// pools.release_timeout(Duration::from_secs(10))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MultiPool {
    inner: Arc<MultiInner>,
}

struct MultiInner {
    pools: Vec<Pool>,
    balancing: LoadBalancing,
    next: AtomicUsize,
    closed: AtomicBool,
}

impl MultiPool {
    /// `pools` pools of `capacity_per_pool` workers each, every other option
    /// at its default.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroPools`] for 0 pools, and the errors of
    /// [`PoolBuilder::build`].
    pub fn new(
        pools: usize,
        capacity_per_pool: usize,
        balancing: LoadBalancing,
    ) -> Result<Self, BuildError> {
        Self::with_builder(
            pools,
            balancing,
            PoolBuilder::new().capacity(capacity_per_pool),
        )
    }

    /// `pools` pools, each built from a clone of `builder`.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroPools`] for 0 pools, and the errors of
    /// [`PoolBuilder::build`]; pools already built are released.
    pub fn with_builder(
        pools: usize,
        balancing: LoadBalancing,
        builder: PoolBuilder,
    ) -> Result<Self, BuildError> {
        if pools == 0 {
            return Err(BuildError::ZeroPools);
        }
        builder.validate()?;
        let pools = (0..pools)
            .map(|_| builder.clone().build())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultiPool {
            inner: Arc::new(MultiInner {
                pools,
                balancing,
                next: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Runs `task` on the pool that the load balancing picks; see
    /// [`Pool::submit`].
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] once the multi-pool is released, and the errors
    /// of [`Pool::submit`] from the pool picked (after the round-robin
    /// retry, if there was one).
    pub fn submit<F>(&self, task: F) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        if self.is_closed() {
            return Err(PoolError::Closed);
        }
        match self.inner.balancing {
            LoadBalancing::LeastTasks => self.inner.pools[self.least_loaded()].submit(task),
            LoadBalancing::RoundRobin => {
                let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.len();
                match self.inner.pools[i].submit_task(Box::new(task)) {
                    Ok(()) => Ok(()),
                    Err((PoolError::Overloaded, task)) => {
                        let fallback = &self.inner.pools[self.least_loaded()];
                        fallback.submit_task(task).map_err(|(error, _task)| error)
                    }
                    Err((error, _task)) => Err(error),
                }
            }
        }
    }

    /// How many pools there are.
    pub fn len(&self) -> usize {
        self.inner.pools.len()
    }

    /// Always false: a multi-pool has at least one pool.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn least_loaded(&self) -> usize {
        let mut best = 0;
        let mut best_busy = usize::MAX;
        for (i, pool) in self.inner.pools.iter().enumerate() {
            // Queued tasks are load too (0 without `queue_capacity`).
            let busy = pool.busy() + pool.queued();
            if busy < best_busy {
                best = i;
                best_busy = busy;
            }
        }
        best
    }

    fn sum(&self, gauge: impl Fn(&Pool) -> usize) -> usize {
        self.inner.pools.iter().map(gauge).sum()
    }

    fn pool(&self, index: usize) -> Result<&Pool, PoolError> {
        self.inner.pools.get(index).ok_or(PoolError::InvalidIndex {
            index,
            len: self.len(),
        })
    }

    /// Live workers of every pool.
    pub fn workers(&self) -> usize {
        self.sum(Pool::workers)
    }

    /// Idle workers of every pool.
    pub fn idle(&self) -> usize {
        self.sum(Pool::idle)
    }

    /// Busy workers of every pool.
    pub fn busy(&self) -> usize {
        self.sum(Pool::busy)
    }

    /// Callers blocked in `submit` on every pool.
    pub fn waiting(&self) -> usize {
        self.sum(Pool::waiting)
    }

    /// Tasks waiting in the pools' queues, summed; see [`Pool::queued`].
    pub fn queued(&self) -> usize {
        self.sum(Pool::queued)
    }

    /// The sum of the pools' capacities; `None` if they are unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.inner.pools.iter().map(Pool::capacity).sum()
    }

    /// The sum of the pools' free places; `None` if they are unbounded.
    pub fn free(&self) -> Option<usize> {
        self.inner.pools.iter().map(Pool::free).sum()
    }

    /// Live workers of pool `index`.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    pub fn workers_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::workers)
    }

    /// Free places of pool `index`; `None` if it is unbounded.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    pub fn free_by_index(&self, index: usize) -> Result<Option<usize>, PoolError> {
        self.pool(index).map(Pool::free)
    }

    /// Callers blocked in `submit` on pool `index`.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    pub fn waiting_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::waiting)
    }

    /// Sets the capacity of every pool to `capacity_per_pool`; see
    /// [`Pool::tune`].
    ///
    /// # Errors
    ///
    /// As [`Pool::tune`]; the checks fail before any pool is changed.
    pub fn tune(&self, capacity_per_pool: usize) -> Result<(), PoolError> {
        for pool in &self.inner.pools {
            pool.tune(capacity_per_pool)?;
        }
        Ok(())
    }

    /// Releases every pool; see [`Pool::release`]. Idempotent.
    pub fn release(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for pool in &self.inner.pools {
            pool.release();
        }
    }

    /// Releases every pool and waits, within one `timeout` for all of them,
    /// until each has no thread left.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the multi-pool was already released;
    /// [`PoolError::Timeout`] if some pool still had threads when `timeout`
    /// passed.
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Err(PoolError::Closed);
        }
        let deadline = Instant::now().checked_add(timeout);
        // Close all first so that every pool winds down in parallel.
        for pool in &self.inner.pools {
            pool.release();
        }
        let mut result = Ok(());
        for pool in &self.inner.pools {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            match pool.wait_for_threads(left) {
                Err(PoolError::Timeout) => result = Err(PoolError::Timeout),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
        result
    }

    /// Reopens every pool; a no-op on an open multi-pool.
    pub fn reboot(&self) {
        for pool in &self.inner.pools {
            pool.reboot();
        }
        self.inner.closed.store(false, Ordering::Release);
    }

    /// Whether the multi-pool is released.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for MultiPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiPool")
            .field("len", &self.len())
            .field("balancing", &self.inner.balancing)
            .field("workers", &self.workers())
            .field("closed", &self.is_closed())
            .finish()
    }
}
