//! `MultiPool`: several pools behind one handle, to spread the lock traffic of
//! one pool over many (ants' `MultiPool`).

use crate::builder::PoolBuilder;
use crate::cancel::CancelToken;
use crate::error::{BuildError, PoolError};
use crate::handle::TaskHandle;
use crate::job;
use crate::pool::task::Task;
use crate::pool::{Pool, Wait};
use crate::sync::{self, Condvar, Mutex};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a [`MultiPool`] picks the pool for the next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadBalancing {
    /// Pools in turn, starting at pool 0. When the pool in turn is full, the
    /// next ones are tried in order before the call blocks.
    RoundRobin,
    /// The pool with the fewest busy workers (plus queued tasks, with
    /// `queue_capacity`); the lowest index on ties.
    LeastTasks,
    /// For keyed work: a keyed task always goes to the pool its key hashes
    /// to ([`MultiPool::submit_keyed`]), which keeps the key's order; tasks
    /// without a key go round robin. (Keyed tasks go by key under every
    /// balancing: their order depends on it.)
    ByKey,
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
    /// Changed only under `transition`, together with the pools' own state,
    /// so that the two never disagree once `release` or `reboot` returns.
    closed: AtomicBool,
    transition: Mutex<()>,
    /// Told by every pool when it may have room.
    room: Arc<RoomSignal>,
    nonblocking: bool,
    max_blocking_tasks: usize,
    /// Calls the multi-pool refused (its pools' own counts miss them: it
    /// only probes them). Reporting only.
    rejected: std::sync::atomic::AtomicU64,
    /// Picks the pool of a key.
    keys: std::hash::RandomState,
}

/// How a submitter blocked on all the pools of a `MultiPool` learns that one
/// of them may have room: a generation counter that every pool bumps, when
/// someone waits, as room appears.
///
/// The waiter counts itself in `waiters`, then tries every pool, then sleeps
/// until the generation moves; a pool frees room, then reads `waiters` (pair
/// MULTI in `PROTOCOL.md`): either the waiter's try saw the room, or the pool
/// sees the waiter and bumps the generation.
#[derive(Debug)]
pub(crate) struct RoomSignal {
    waiters: crate::sync::atomic::AtomicUsize,
    /// Submitters asleep here now: the multi-pool's share of `waiting()`.
    blocked: AtomicUsize,
    generation: Mutex<u64>,
    changed: Condvar,
}

impl RoomSignal {
    fn new() -> RoomSignal {
        RoomSignal {
            waiters: crate::sync::atomic::AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            generation: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    /// A pool may have room (or closed).
    #[inline]
    pub(crate) fn notify(&self) {
        use crate::sync::atomic::{fence, Ordering};
        // [MULTI, pool half] the room is published; now look for a waiter.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        *sync::lock(&self.generation) += 1;
        self.changed.notify_all();
    }

    fn generation(&self) -> u64 {
        *sync::lock(&self.generation)
    }
}

impl MultiPool {
    /// The most pools a multi-pool may have: 4,096. More pools than cores
    /// spread no more lock traffic, and each pool allocates its queue and
    /// (with purge on) starts a thread at once.
    pub const MAX_POOLS: usize = 4096;

    /// `pools` pools of `capacity_per_pool` workers each, every other option
    /// at its default.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroPools`] for 0 pools, [`BuildError::TooManyPools`]
    /// for more than [`MAX_POOLS`](Self::MAX_POOLS), and the errors of
    /// [`PoolBuilder::build`] (`capacity_per_pool` 0 or above
    /// [`PoolBuilder::MAX_CAPACITY`] among them).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(4, 8, LoadBalancing::RoundRobin)?;
    /// assert_eq!((pools.len(), pools.capacity()), (4, Some(32)));
    /// let none = MultiPool::new(0, 8, LoadBalancing::RoundRobin);
    /// assert!(matches!(none, Err(BuildError::ZeroPools)));
    /// # Ok::<(), BuildError>(())
    /// ```
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

    /// `pools` pools, each built from a clone of `builder`. The worker
    /// threads of pool `i` are named `{prefix}-{i}-{n}` (and its purge
    /// thread `{prefix}-{i}-purge`), `prefix` being the builder's
    /// [`thread_name`](PoolBuilder::thread_name), so that a stack dump or
    /// `top -H` tells the pools apart.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder()
    ///     .capacity(2)
    ///     .thread_name("mp")
    ///     .nonblocking(true);
    /// let pools = MultiPool::with_builder(3, LoadBalancing::RoundRobin, builder)?;
    /// // Round robin: the first task goes to pool 0, the second to pool 1.
    /// let first = pools.spawn(|| std::thread::current().name().map(str::to_owned))?;
    /// let second = pools.spawn(|| std::thread::current().name().map(str::to_owned))?;
    /// assert_eq!(first.join()?.as_deref(), Some("mp-0-0"));
    /// assert_eq!(second.join()?.as_deref(), Some("mp-1-0"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroPools`] for 0 pools, [`BuildError::TooManyPools`]
    /// for more than [`MAX_POOLS`](Self::MAX_POOLS), both before any pool is
    /// built, and the errors of [`PoolBuilder::build`]; pools already built
    /// are released.
    pub fn with_builder(
        pools: usize,
        balancing: LoadBalancing,
        builder: PoolBuilder,
    ) -> Result<Self, BuildError> {
        if pools == 0 {
            return Err(BuildError::ZeroPools);
        }
        if pools > Self::MAX_POOLS {
            return Err(BuildError::TooManyPools {
                pools,
                max: Self::MAX_POOLS,
            });
        }
        builder.validate()?;
        let room = Arc::new(RoomSignal::new());
        let (nonblocking, max_blocking_tasks) = (builder.nonblocking, builder.max_blocking_tasks);
        let mut builder = builder;
        builder.room = Some(Arc::clone(&room));
        let prefix = builder.thread_name.clone();
        let pools = (0..pools)
            .map(|index| {
                let mut one = builder.clone();
                one.thread_name = format!("{prefix}-{index}");
                one.build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultiPool {
            inner: Arc::new(MultiInner {
                pools,
                balancing,
                next: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                transition: Mutex::new(()),
                room,
                nonblocking,
                max_blocking_tasks,
                rejected: std::sync::atomic::AtomicU64::new(0),
                keys: std::hash::RandomState::new(),
            }),
        })
    }

    /// Runs `task` on the pool that the load balancing picks; see
    /// [`Pool::submit`].
    ///
    /// # Errors
    ///
    /// The pool picked is tried first, then the others in order; when every
    /// pool is full, a blocking call waits for the first pool that has room
    /// (not for the one picked).
    ///
    /// - [`PoolError::Closed`] once the multi-pool is released;
    /// - [`PoolError::Overloaded`] when every pool is full and the
    ///   multi-pool is nonblocking, or `max_blocking_tasks` callers are
    ///   already blocked;
    /// - [`PoolError::WouldDeadlock`] when every pool is full and it is
    ///   called from a task of one of its pools (it could wait for its own
    ///   worker);
    /// - [`PoolError::SpawnFailed`] if the pool tried could not start a
    ///   worker thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 4, LoadBalancing::LeastTasks)?;
    /// let ran = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..100 {
    ///     let ran = Arc::clone(&ran);
    ///     pools.submit(move || {
    ///         ran.fetch_add(1, Ordering::Relaxed);
    ///     })?;
    /// }
    /// pools.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(ran.load(Ordering::Relaxed), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit<F>(&self, task: F) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.place(Task::new(task)).map(|_| ())
    }

    /// Runs `task` on the pool that the load balancing picks, as
    /// [`submit`](Self::submit) does, and returns a handle to its result
    /// (see [`Pool::spawn`]).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit): [`PoolError::Closed`],
    /// [`PoolError::Overloaded`], [`PoolError::WouldDeadlock`] or
    /// [`PoolError::SpawnFailed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::LeastTasks)?;
    /// let handle = pools.spawn(|| 6 * 7)?;
    /// assert_eq!(handle.join()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(&self, task: F) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The pools share their options: the first one's deadline is theirs.
        let spec = self.inner.pools[0].inner.spec(None);
        let deadline = spec.deadline;
        // Made before a pool is chosen; its handle is bound below to the
        // pool that took it (`make_job` would bind it to its own pool).
        let (job, outcome) = job::tracked(move |_: &CancelToken| task(), spec);
        self.place_tracked(&job, &outcome, deadline)
    }

    /// [`Pool::submit_keyed`] on the pool that `key` hashes to: every task
    /// of a key goes to the same pool, which runs them one at a time, in
    /// order. A key's pool is not chosen by load: a full pool blocks (or
    /// refuses) its keys' tasks though others have room.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit_keyed`] on that pool; [`PoolError::Closed`] once
    /// the multi-pool is released.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(4, 2, LoadBalancing::ByKey)?;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// for n in 0..50 {
    ///     let log = Arc::clone(&log);
    ///     pools.submit_keyed("one key", move || log.lock().unwrap().push(n))?;
    /// }
    /// pools.wait_idle(std::time::Duration::from_secs(10))?;
    /// assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_keyed<K, F>(&self, key: K, task: F) -> Result<(), PoolError>
    where
        K: std::hash::Hash,
        F: FnOnce() + Send + 'static,
    {
        self.pool_of(&key)?.submit_keyed(key, task)
    }

    /// [`Pool::spawn_keyed`] on the pool that `key` hashes to: see
    /// [`submit_keyed`](Self::submit_keyed).
    ///
    /// # Errors
    ///
    /// As [`submit_keyed`](Self::submit_keyed).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::ByKey)?;
    /// let handle = pools.spawn_keyed(42u32, || "done")?;
    /// assert_eq!(handle.join()?, "done");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_keyed<K, F, T>(&self, key: K, task: F) -> Result<TaskHandle<T>, PoolError>
    where
        K: std::hash::Hash,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.pool_of(&key)?.spawn_keyed(key, task)
    }

    /// The pool of `key`.
    fn pool_of<K: std::hash::Hash>(&self, key: &K) -> Result<&Pool, PoolError> {
        use std::hash::BuildHasher;
        if self.is_closed() {
            return Err(PoolError::Closed);
        }
        let hash = self.inner.keys.hash_one(key);
        Ok(&self.inner.pools[(hash % self.inner.pools.len() as u64) as usize])
    }

    /// [`Pool::map`] across the pools: each chunk of inputs goes where the
    /// load balancing places a task. Its stream form
    /// ([`Map::into_stream`](crate::Map::into_stream)) tries the pools in
    /// turn without blocking and, when all are full and none of its chunks
    /// is in flight, yields to its executor and tries again (a multi-pool
    /// keeps no list of async waiters).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::LeastTasks)?;
    /// let doubled: Vec<u32> = pools.map(0..100u32, |n| n * 2).collect::<Result<_, _>>()?;
    /// assert_eq!(doubled, (0..100u32).map(|n| n * 2).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I, F, T>(&self, inputs: I, f: F) -> crate::Map<'_, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        crate::Map::on_multi(self, inputs.into_iter(), f)
    }

    /// Places a tracked task made for these pools (`spawn`, the chunks of
    /// `map`), arms its deadline on the pool that took it, and binds its
    /// handle to that pool. The job stays the caller's on a refusal.
    pub(crate) fn place_tracked<T: Send + 'static>(
        &self,
        job: &Arc<dyn job::Job>,
        outcome: &Arc<dyn job::Outcome<T>>,
        deadline: Option<job::Deadline>,
    ) -> Result<TaskHandle<T>, PoolError> {
        let index = self.place(Task::tracked(Arc::clone(job)))?;
        Ok(self.taken(index, job, outcome, deadline))
    }

    /// [`place_tracked`](Self::place_tracked) without waiting: the pools
    /// are tried in turn, `Overloaded` if all are full (the async `map`).
    pub(crate) fn probe_tracked<T: Send + 'static>(
        &self,
        job: &Arc<dyn job::Job>,
        outcome: &Arc<dyn job::Outcome<T>>,
        deadline: Option<job::Deadline>,
    ) -> Result<TaskHandle<T>, PoolError> {
        if self.is_closed() {
            return Err(PoolError::Closed);
        }
        let index = self
            .try_each(self.first_pick(), Task::tracked(Arc::clone(job)))
            .map_err(|(error, _)| error)?;
        Ok(self.taken(index, job, outcome, deadline))
    }

    /// A tracked task the pool `index` took: its deadline armed there, its
    /// handle bound to that pool.
    fn taken<T: Send + 'static>(
        &self,
        index: usize,
        job: &Arc<dyn job::Job>,
        outcome: &Arc<dyn job::Outcome<T>>,
        deadline: Option<job::Deadline>,
    ) -> TaskHandle<T> {
        let inner = &self.inner.pools[index].inner;
        if let Some(deadline) = deadline {
            inner.arm_deadline(deadline, job);
        }
        TaskHandle::new(Arc::clone(outcome), Arc::clone(inner) as job::SharedHost)
    }

    /// The pools, for `map`.
    pub(crate) fn pools(&self) -> &[Pool] {
        &self.inner.pools
    }

    /// Waits until no task runs or waits in any pool; see
    /// [`Pool::wait_idle`]. One `timeout` for all of them.
    ///
    /// # Errors
    ///
    /// As [`Pool::wait_idle`]: [`PoolError::Timeout`] if some pool was
    /// still busy when `timeout` passed; [`PoolError::WouldDeadlock`] from a
    /// task of one of its pools.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// for _ in 0..8 {
    ///     pools.submit(|| std::thread::sleep(Duration::from_millis(5)))?;
    /// }
    /// pools.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!((pools.busy(), pools.queued()), (0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        let deadline = Instant::now().checked_add(timeout);
        for pool in &self.inner.pools {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            pool.wait_idle(left)?;
        }
        Ok(())
    }

    /// The sum of the pools' figures, with each pool's in
    /// [`Stats::pools`](crate::Stats::pools) by index. Counts and gauges
    /// add up; latency percentiles are the worst pool's, the mean is
    /// weighted by count.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// for _ in 0..10 {
    ///     pools.submit(|| ())?;
    /// }
    /// pools.wait_idle(Duration::from_secs(10))?;
    /// let stats = pools.stats();
    /// assert_eq!(stats.completed, 10);
    /// assert_eq!(stats.pools.len(), 2);
    /// assert_eq!(stats.pools.iter().map(|p| p.completed).sum::<u64>(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> crate::Stats {
        let mut stats = crate::Stats::sum(self.inner.pools.iter().map(Pool::stats).collect());
        stats.rejected += self
            .inner
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed);
        stats
    }

    /// Sends each pool's figures to the `metrics` facade, as
    /// [`Pool::export_metrics`] does, labelled `pool = "{name}/{index}"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder().name("fetch").capacity(2);
    /// let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder)?;
    /// // Into whichever recorder the program installed (none here: a no-op);
    /// // the gauges are labelled pool="fetch/0" and pool="fetch/1".
    /// pools.export_metrics();
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        for (index, pool) in self.inner.pools.iter().enumerate() {
            let label = metrics::Label::new("pool", format!("{}/{index}", pool.name()));
            crate::pool::export(&pool.stats(), &[label]);
        }
    }

    /// Judges the multi-pool as a whole by `policy`: its summed gauges, the
    /// worst p99 of queue wait of its pools and their highest error rate,
    /// both over the policy's window (as [`Pool::health`] measures them).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{HealthPolicy, LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// let health = pools.health(&HealthPolicy::default());
    /// assert!(health.healthy && health.problems.is_empty());
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn health(&self, policy: &crate::HealthPolicy) -> crate::Health {
        let stats = self.stats();
        let recent: Vec<crate::Stats> = self
            .inner
            .pools
            .iter()
            .zip(&stats.pools)
            .map(|(pool, own)| pool.inner.recent(own, policy.error_window))
            .collect();
        let error_rate = recent
            .iter()
            .map(crate::Stats::error_rate)
            .fold(0.0, f64::max);
        crate::Health::judge(&crate::Stats::sum(recent), policy, error_rate)
    }

    /// Places `task` on the pool that the load balancing picks, or another
    /// with room; returns the index of the pool that took it.
    fn place(&self, task: Task) -> Result<usize, PoolError> {
        let placed = self.try_place(task);
        if placed.is_err() {
            // The pools were only probed: the refusal is the multi-pool's.
            self.inner
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        placed
    }

    fn try_place(&self, task: Task) -> Result<usize, PoolError> {
        if self.is_closed() {
            return Err(PoolError::Closed);
        }
        let first = self.first_pick();
        let mut task = match self.try_each(first, task) {
            Ok(index) => return Ok(index),
            Err((PoolError::Overloaded, task)) => task,
            Err((error, _)) => return Err(error),
        };
        if self.inner.nonblocking {
            return Err(PoolError::Overloaded);
        }
        if self
            .inner
            .pools
            .iter()
            .any(|pool| crate::pool::worker::is_worker_of(&pool.inner))
        {
            // Blocking here could only end once a task of these pools ends,
            // maybe the caller's own: refuse, as `Pool::submit` does.
            return Err(PoolError::WouldDeadlock);
        }
        // Every pool is full: wait for the first to have room, not for the
        // one picked.
        let room = &self.inner.room;
        let limit = self.inner.max_blocking_tasks;
        // Checked and counted in one step, so that callers arriving at once
        // cannot all pass the check.
        let counted = room
            .blocked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |blocked| {
                (limit == 0 || blocked < limit).then_some(blocked + 1)
            });
        if counted.is_err() {
            return Err(PoolError::Overloaded);
        }
        room.waiters
            .fetch_add(1, crate::sync::atomic::Ordering::SeqCst);
        let result = loop {
            // [MULTI, waiter half] counted in `waiters`; now try every pool.
            crate::sync::atomic::fence(crate::sync::atomic::Ordering::SeqCst);
            let seen = room.generation();
            task = match self.try_each(first, task) {
                Ok(index) => break Ok(index),
                Err((PoolError::Overloaded, task)) => task,
                Err((error, _)) => break Err(error),
            };
            let mut generation = sync::lock(&room.generation);
            while *generation == seen {
                generation = sync::wait(&room.changed, generation);
            }
        };
        room.blocked.fetch_sub(1, Ordering::Relaxed);
        room.waiters
            .fetch_sub(1, crate::sync::atomic::Ordering::SeqCst);
        result
    }

    /// Tries every pool once without blocking, from `first` on; the index
    /// of the pool that took the task.
    /// The pool the load balancing picks first.
    fn first_pick(&self) -> usize {
        match self.inner.balancing {
            LoadBalancing::LeastTasks => self.least_loaded(),
            LoadBalancing::RoundRobin | LoadBalancing::ByKey => {
                self.inner.next.fetch_add(1, Ordering::Relaxed) % self.len()
            }
        }
    }

    fn try_each(&self, first: usize, task: Task) -> Result<usize, (PoolError, Task)> {
        let mut task = task;
        for k in 0..self.len() {
            let index = (first + k) % self.len();
            task = match self.inner.pools[index].submit_task(task, Wait::Probe) {
                Ok(()) => return Ok(index),
                Err((PoolError::Overloaded, task)) => task,
                Err(refused) => return Err(refused),
            };
        }
        Err((PoolError::Overloaded, task))
    }

    /// How many pools there are.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(3, 2, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.len(), 3);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.pools.len()
    }

    /// Always false: a multi-pool has at least one pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(1, 2, LoadBalancing::RoundRobin)?;
    /// assert!(!pools.is_empty());
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
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

    /// Live workers of every pool, summed.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder().capacity(4).min_workers(1);
    /// let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder)?;
    /// // min_workers(1): each pool starts one worker at once.
    /// assert_eq!(pools.workers(), 2);
    /// assert_eq!(pools.workers_by_index(1)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.sum(Pool::workers)
    }

    /// Idle workers of every pool, summed: live threads that wait for a
    /// task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder().capacity(4).min_workers(2);
    /// let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder)?;
    /// pools.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pools.idle(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle(&self) -> usize {
        self.sum(Pool::idle)
    }

    /// Busy workers of every pool, summed: those running a task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 1, LoadBalancing::RoundRobin)?;
    /// let started = Arc::new(Barrier::new(3));
    /// let finish = Arc::new(Barrier::new(3));
    /// for _ in 0..2 {
    ///     let (started, finish) = (Arc::clone(&started), Arc::clone(&finish));
    ///     pools.submit(move || {
    ///         started.wait();
    ///         finish.wait();
    ///     })?;
    /// }
    /// started.wait();
    /// assert_eq!(pools.busy(), 2);
    /// assert_eq!((pools.busy_by_index(0)?, pools.busy_by_index(1)?), (1, 1));
    /// finish.wait();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy(&self) -> usize {
        self.sum(Pool::busy)
    }

    /// Callers waiting for room (not queued tasks: see
    /// [`queued`](Self::queued)): blocked in `submit` or awaiting
    /// `submit_async` on one pool (see [`Pool::waiting`]), or blocked on
    /// the multi-pool as a whole (every pool full).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// // Room everywhere: no one waits.
    /// pools.submit(|| ())?;
    /// assert_eq!(pools.waiting(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiting(&self) -> usize {
        self.sum(Pool::waiting) + self.inner.room.blocked.load(Ordering::Relaxed)
    }

    /// Tasks waiting in the pools' queues, summed; see [`Pool::queued`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder().capacity(1).queue_capacity(4);
    /// let pools = MultiPool::with_builder(1, LoadBalancing::RoundRobin, builder)?;
    /// let started = Arc::new(Barrier::new(2));
    /// let finish = Arc::new(Barrier::new(2));
    /// let (s, f) = (Arc::clone(&started), Arc::clone(&finish));
    /// pools.submit(move || {
    ///     s.wait();
    ///     f.wait();
    /// })?;
    /// started.wait();
    /// // The only worker is busy: these two wait in pool 0's queue.
    /// pools.submit(|| ())?;
    /// pools.submit(|| ())?;
    /// assert_eq!((pools.queued(), pools.queued_by_index(0)?), (2, 2));
    /// finish.wait();
    /// pools.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pools.queued(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.sum(Pool::queued)
    }

    /// The sum of the pools' capacities; `None` if they are unbounded.
    /// (It cannot overflow: see [`PoolBuilder::MAX_CAPACITY`].)
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(4, 8, LoadBalancing::LeastTasks)?;
    /// assert_eq!(pools.capacity(), Some(32));
    /// assert_eq!(pools.capacity_by_index(3)?, Some(8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.inner.pools.iter().map(Pool::capacity).sum()
    }

    /// Workers that could still be started, summed over the pools (see
    /// [`Pool::free`]: capacity minus live workers, idle ones included);
    /// `None` if they are unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 3, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.free(), Some(6));
    /// assert_eq!(pools.free_by_index(0)?, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn free(&self) -> Option<usize> {
        self.inner.pools.iter().map(Pool::free).sum()
    }

    /// Live workers of pool `index`; see [`workers`](Self::workers).
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool, PoolError};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.workers_by_index(0)?, 0); // workers start on demand
    /// assert!(matches!(
    ///     pools.workers_by_index(2),
    ///     Err(PoolError::InvalidIndex { index: 2, len: 2 })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::workers)
    }

    /// Idle workers of pool `index`; see [`idle`](Self::idle).
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder().capacity(2).min_workers(1);
    /// let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder)?;
    /// pools.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(pools.idle_by_index(1)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::idle)
    }

    /// Busy workers of pool `index`; see [`busy`](Self::busy).
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.busy_by_index(0)?, 0);
    /// assert!(pools.busy_by_index(5).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::busy)
    }

    /// Tasks waiting in the queue of pool `index`; see
    /// [`queued`](Self::queued).
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.queued_by_index(1)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::queued)
    }

    /// The capacity of pool `index`; `None` if it is unbounded.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 5, LoadBalancing::RoundRobin)?;
    /// pools.tune(7)?;
    /// assert_eq!(pools.capacity_by_index(0)?, Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity_by_index(&self, index: usize) -> Result<Option<usize>, PoolError> {
        self.pool(index).map(Pool::capacity)
    }

    /// Workers that pool `index` could still start; `None` if it is
    /// unbounded. See [`free`](Self::free).
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 4, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.free_by_index(1)?, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn free_by_index(&self, index: usize) -> Result<Option<usize>, PoolError> {
        self.pool(index).map(Pool::free)
    }

    /// Callers waiting for room on pool `index` (see [`Pool::waiting`]); a
    /// call blocked on the multi-pool as a whole, every pool full, counts in
    /// [`waiting`](Self::waiting) only.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidIndex`] if there is no such pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// assert_eq!(pools.waiting_by_index(0)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn waiting_by_index(&self, index: usize) -> Result<usize, PoolError> {
        self.pool(index).map(Pool::waiting)
    }

    /// Sets the capacity of every pool to `capacity_per_pool`; see
    /// [`Pool::tune`].
    ///
    /// # Errors
    ///
    /// As [`Pool::tune`]: [`PoolError::InvalidCapacity`] for 0,
    /// [`PoolError::CapacityTooLarge`] above
    /// [`PoolBuilder::MAX_CAPACITY`], [`PoolError::Unbounded`] for pools
    /// built [`unbounded`](PoolBuilder::unbounded) (with
    /// [`with_builder`](Self::with_builder)). The pools share their options,
    /// so the checks fail on the first pool, before any pool is changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool, PoolError};
    /// let pools = MultiPool::new(2, 4, LoadBalancing::RoundRobin)?;
    /// pools.tune(16)?;
    /// assert_eq!(pools.capacity(), Some(32));
    /// assert!(matches!(pools.tune(0), Err(PoolError::InvalidCapacity)));
    /// assert_eq!(pools.capacity(), Some(32));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity_per_pool: usize) -> Result<(), PoolError> {
        for pool in &self.inner.pools {
            pool.tune(capacity_per_pool)?;
        }
        Ok(())
    }

    /// Hands each pool's capacity back to its autoscaler, paused by
    /// [`tune`](Self::tune): see [`Pool::resume_autoscale`]. Each pool of a
    /// multi-pool built [`with_builder`](Self::with_builder) a builder with
    /// [`autoscale`](PoolBuilder::autoscale) scales on its own. Returns
    /// false if the pools do not autoscale.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Autoscale, LoadBalancing, MultiPool, Pool};
    /// let builder = Pool::builder().capacity(4).autoscale(Autoscale::throughput().bounds(1, 16));
    /// let pools = MultiPool::with_builder(2, LoadBalancing::RoundRobin, builder)?;
    /// pools.tune(8)?; // pauses every pool's autoscaler
    /// assert!(pools.resume_autoscale());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume_autoscale(&self) -> bool {
        let mut resumed = false;
        for pool in &self.inner.pools {
            resumed |= pool.resume_autoscale();
        }
        resumed
    }

    /// Releases every pool; see [`Pool::release`]. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool, PoolError};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// pools.release();
    /// assert!(pools.is_closed());
    /// assert!(matches!(pools.submit(|| ()), Err(PoolError::Closed)));
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn release(&self) {
        let _transition = sync::lock(&self.inner.transition);
        self.inner.closed.store(true, Ordering::SeqCst);
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
    /// passed; [`PoolError::WouldDeadlock`] from a task of one of its pools
    /// (released, not waited for).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{LoadBalancing, MultiPool, PoolError};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// pools.submit(|| std::thread::sleep(Duration::from_millis(10)))?;
    /// // The running task finishes; then every thread has ended.
    /// pools.release_timeout(Duration::from_secs(10))?;
    /// assert_eq!(pools.workers(), 0);
    /// assert!(matches!(
    ///     pools.release_timeout(Duration::from_secs(1)),
    ///     Err(PoolError::Closed)
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        {
            let _transition = sync::lock(&self.inner.transition);
            if self.inner.closed.swap(true, Ordering::SeqCst) {
                return Err(PoolError::Closed);
            }
            // Close all first so that every pool winds down in parallel.
            for pool in &self.inner.pools {
                pool.release();
            }
        }
        let deadline = Instant::now().checked_add(timeout);
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
    ///
    /// # Errors
    ///
    /// [`PoolError::SpawnFailed`] if a pool could not start a thread; every
    /// pool is then closed again, and so is the multi-pool. Nothing else: on
    /// an open multi-pool it does nothing and returns `Ok`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// pools.release();
    /// pools.reboot()?;
    /// assert!(!pools.is_closed());
    /// assert_eq!(pools.spawn(|| 1 + 1)?.join()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reboot(&self) -> Result<(), PoolError> {
        let _transition = sync::lock(&self.inner.transition);
        if !self.inner.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        for pool in &self.inner.pools {
            if let Err(error) = pool.reboot() {
                for pool in &self.inner.pools {
                    pool.release();
                }
                return Err(error);
            }
        }
        self.inner.closed.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the multi-pool is released.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{LoadBalancing, MultiPool};
    /// let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin)?;
    /// assert!(!pools.is_closed());
    /// pools.release();
    /// assert!(pools.is_closed());
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for MultiPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pools share one builder, so the first pool's name is the
        // builder's (and every pool's); `with_builder` refuses 0 pools.
        f.debug_struct("MultiPool")
            .field("name", &self.inner.pools[0].name())
            .field("len", &self.len())
            .field("balancing", &self.inner.balancing)
            .field("workers", &self.workers())
            .field("closed", &self.is_closed())
            .finish()
    }
}
