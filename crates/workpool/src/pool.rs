//! `Pool`: the handle users hold, and `Inner`, the state its workers share.
//!
//! # How a task finds a worker (ants' `retrieveWorker`, under one lock)
//!
//! 1. An idle worker is popped from [`IdleWorkers`] (LIFO) and sent the task.
//! 2. Otherwise, below capacity, `workers` is raised and a new thread starts
//!    with the task.
//! 3. Otherwise the caller fails with `Overloaded` (nonblocking, or too many
//!    blocked callers already), or spins briefly and then blocks on
//!    `capacity_freed` until a worker goes idle or exits, `tune` grows the
//!    pool, the purge ends workers, or `release` closes it.
//!
//! # Counting
//!
//! `State::workers` counts the workers that hold a place under the capacity:
//! it rises before a thread is spawned and falls as soon as a worker is told
//! (or decides) to exit, so capacity is freed at once. `State::threads` counts
//! the OS threads (workers and the purge thread) that have not finished; it is
//! what `release_timeout` waits for. It rises under the same lock, in the same
//! step, as the decision to start a thread (so a release can never miss a
//! thread about to start) and is lowered by each thread itself as the last
//! thing it does, after its join handle is filed for joining.

use crate::builder::{PanicHandler, PoolBuilder};
use crate::error::{BuildError, PoolError};
use crate::idle::IdleWorkers;
use crate::sync::atomic::{AtomicUsize as ProtocolUsize, Ordering as ProtocolOrdering};
use crate::sync::{self, thread, Arc, Condvar, Mutex};
use crate::worker::{self, Mailbox, Order, Task};
use crossbeam_utils::Backoff;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `State::capacity` of an unbounded pool.
const UNBOUNDED: usize = usize::MAX;

/// A pool of reusable worker threads with a hard capacity.
///
/// `Pool` is a cheap handle: clone it to share the pool between threads. When
/// the last handle is dropped the pool is [released](Pool::release) (without
/// waiting for running tasks, which still finish).
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
    inner: Arc<Inner>,
}

/// What the workers, the purge thread and every [`Pool`] handle share.
pub(crate) struct Inner {
    state: Mutex<State>,
    /// Blocked submitters wait here for capacity.
    capacity_freed: Condvar,
    /// The purge thread sleeps here between rounds; `release` wakes it.
    purge_wakeup: Condvar,
    threads: Mutex<Registry>,
    /// `release_timeout` waits here for `State::threads` to reach zero.
    all_exited: Condvar,
    /// Live `Pool` handles; the last one to drop releases the pool.
    handles: ProtocolUsize,
    config: Config,
    /// Mirrors of `State` for the lock-free gauges. Written under the state
    /// lock, read without it: a gauge may be a moment stale, never torn.
    gauges: Gauges,
    /// Numbers worker threads in their names.
    next_worker_no: AtomicUsize,
    /// Keys of `Registry::live`.
    next_thread_id: AtomicUsize,
}

struct Config {
    expiry: std::time::Duration,
    min_workers: usize,
    nonblocking: bool,
    max_blocking_tasks: usize,
    panic_handler: Option<PanicHandler>,
    disable_purge: bool,
    thread_name: String,
    stack_size: Option<usize>,
}

#[derive(Default)]
struct Gauges {
    workers: AtomicUsize,
    idle: AtomicUsize,
    waiting: AtomicUsize,
    capacity: AtomicUsize,
    closed: AtomicBool,
    panicked: AtomicUsize,
}

struct State {
    idle: IdleWorkers<Arc<Mailbox>>,
    /// Workers holding a place under the capacity: busy + idle.
    workers: usize,
    /// Callers blocked in `submit`.
    waiting: usize,
    /// `UNBOUNDED` for an unbounded pool.
    capacity: usize,
    closed: bool,
    /// Raised by every `reboot`; a purge thread of an older epoch exits.
    epoch: u64,
    /// OS threads of the pool counted as started and not yet finished.
    threads: usize,
}

/// The pool's OS threads, so that `release_timeout` can join them.
struct Registry {
    live: HashMap<usize, thread::JoinHandle<()>>,
    /// Threads that have run their last line and only need joining.
    finished: Vec<thread::JoinHandle<()>>,
}

/// Threads in `Registry::finished` beyond which spawning a worker joins them,
/// so a pool without purge that churns threads keeps a bounded list.
const REAP_THRESHOLD: usize = 64;

impl Pool {
    /// A bounded pool of `capacity` workers with every other option at its
    /// default (see [`PoolBuilder::new`]).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] for a capacity of 0;
    /// [`BuildError::SpawnFailed`] if the purge thread could not start.
    pub fn new(capacity: usize) -> Result<Pool, BuildError> {
        PoolBuilder::new().capacity(capacity).build()
    }

    /// A builder for a pool with options; see [`PoolBuilder`].
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn start(builder: PoolBuilder) -> Result<Pool, BuildError> {
        let capacity = builder.capacity.unwrap_or(UNBOUNDED);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                idle: IdleWorkers::new(),
                workers: 0,
                waiting: 0,
                capacity,
                closed: false,
                epoch: 0,
                threads: 0,
            }),
            capacity_freed: Condvar::new(),
            purge_wakeup: Condvar::new(),
            threads: Mutex::new(Registry {
                live: HashMap::new(),
                finished: Vec::new(),
            }),
            all_exited: Condvar::new(),
            handles: ProtocolUsize::new(1),
            config: Config {
                expiry: builder.expiry,
                min_workers: builder.min_workers,
                nonblocking: builder.nonblocking,
                max_blocking_tasks: builder.max_blocking_tasks,
                panic_handler: builder.panic_handler,
                disable_purge: builder.disable_purge,
                thread_name: builder.thread_name,
                stack_size: builder.stack_size,
            },
            gauges: Gauges::default(),
            next_worker_no: AtomicUsize::new(0),
            next_thread_id: AtomicUsize::new(0),
        });
        inner.gauges.capacity.store(capacity, Ordering::Relaxed);
        let pool = Pool { inner };
        if let Err(e) = pool.inner.start_background(0) {
            // Dropping the only handle releases what did start.
            return Err(BuildError::SpawnFailed {
                reason: e.to_string(),
            });
        }
        Ok(pool)
    }

    /// Runs `task` on a worker of the pool.
    ///
    /// Hands the task to an idle worker, or starts a new worker below
    /// capacity. At capacity with every worker busy, it blocks until a worker
    /// is free (backpressure); in nonblocking mode, or when
    /// `max_blocking_tasks` callers are already blocked, it fails at once.
    ///
    /// A task accepted here runs exactly once, even if the pool is released
    /// meanwhile. A panic in the task goes to the panic handler; the worker
    /// and the pool live on.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool is released (also when the release
    /// happens while this call is blocked); [`PoolError::Overloaded`] as
    /// above; [`PoolError::SpawnFailed`] if a new worker thread could not be
    /// started. A refused task is dropped without running.
    pub fn submit<F>(&self, task: F) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner
            .submit(Box::new(task))
            .map_err(|(error, _task)| error)
    }

    /// [`submit`](Self::submit) for a boxed task that gives the task back
    /// with the error, so a refused task can be tried elsewhere.
    pub(crate) fn submit_task(&self, task: Task) -> Result<(), (PoolError, Task)> {
        self.inner.submit(task)
    }

    /// The waiting half of [`release_timeout`](Self::release_timeout), for a
    /// pool already released.
    pub(crate) fn wait_for_threads(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.wait_for_threads(timeout)
    }

    /// Live worker threads, busy and idle (ants' `Running`).
    pub fn workers(&self) -> usize {
        self.inner.gauges.workers.load(Ordering::Relaxed)
    }

    /// Workers parked on the idle list, waiting for a task.
    pub fn idle(&self) -> usize {
        self.inner.gauges.idle.load(Ordering::Relaxed)
    }

    /// Workers holding a task, counted from the moment `submit` hands the task
    /// over, not from when it starts.
    pub fn busy(&self) -> usize {
        self.workers().saturating_sub(self.idle())
    }

    /// Callers blocked in `submit` now.
    pub fn waiting(&self) -> usize {
        self.inner.gauges.waiting.load(Ordering::Relaxed)
    }

    /// The most workers alive at once; `None` for an unbounded pool.
    pub fn capacity(&self) -> Option<usize> {
        match self.inner.gauges.capacity.load(Ordering::Relaxed) {
            UNBOUNDED => None,
            capacity => Some(capacity),
        }
    }

    /// Workers that could still be started: capacity minus workers (0 while a
    /// lowered capacity is still above the live workers); `None` for an
    /// unbounded pool.
    pub fn free(&self) -> Option<usize> {
        self.capacity().map(|c| c.saturating_sub(self.workers()))
    }

    /// Tasks that have panicked since the pool was built.
    pub fn panicked(&self) -> usize {
        self.inner.gauges.panicked.load(Ordering::Relaxed)
    }

    /// Changes the capacity. Growing wakes blocked submitters at once.
    /// Shrinking interrupts no task: idle workers above the new capacity
    /// exit at once, and a busy worker that finishes its task while the pool
    /// still has more workers than its capacity exits then.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidCapacity`] for 0; [`PoolError::Unbounded`] on an
    /// unbounded pool.
    pub fn tune(&self, capacity: usize) -> Result<(), PoolError> {
        self.inner.tune(capacity)
    }

    /// Closes the pool: new tasks are refused with [`PoolError::Closed`],
    /// callers blocked in `submit` return it, idle workers exit, running tasks
    /// finish and then their workers exit. Idempotent; does not wait.
    pub fn release(&self) {
        self.inner.release();
    }

    /// [`release`](Self::release)s the pool, then waits until every worker
    /// and the purge thread have exited and been joined.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool was already closed (nothing is
    /// waited for); [`PoolError::Timeout`] if threads were still running when
    /// `timeout` passed (they go on and exit when their tasks end).
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.release_timeout(timeout)
    }

    /// Reopens a released pool with the same options: the purge thread and
    /// `min_workers` start again. A no-op on an open pool. Workers of the
    /// previous life that are still running stay and are reused.
    pub fn reboot(&self) {
        self.inner.reboot();
    }

    /// Whether the pool is released.
    pub fn is_closed(&self) -> bool {
        self.inner.gauges.closed.load(Ordering::Acquire)
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, ProtocolOrdering::Relaxed);
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, ProtocolOrdering::AcqRel) == 1 {
            self.inner.release();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.capacity())
            .field("workers", &self.workers())
            .field("idle", &self.idle())
            .field("waiting", &self.waiting())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Inner {
    /// Gives a refused task back with the error (see `MultiPool::submit`).
    fn submit(self: &Arc<Self>, task: Task) -> Result<(), (PoolError, Task)> {
        let backoff = Backoff::new();
        let mut state = sync::lock(&self.state);
        loop {
            if state.closed {
                return Err((PoolError::Closed, task));
            }
            if let Some(worker) = state.idle.pop() {
                self.set_idle_gauge(&state);
                drop(state);
                worker.send(Order::Run(task));
                return Ok(());
            }
            if state.workers < state.capacity {
                state.workers += 1;
                state.threads += 1;
                self.set_workers_gauge(&state);
                drop(state);
                return self.start_worker(task);
            }
            if self.config.nonblocking {
                return Err((PoolError::Overloaded, task));
            }
            // A busy pool frees a worker within microseconds when its tasks
            // are short; sleeping on the condvar would cost more than that.
            if sync::SPIN && !backoff.is_completed() {
                drop(state);
                backoff.snooze();
                state = sync::lock(&self.state);
                continue;
            }
            let limit = self.config.max_blocking_tasks;
            if limit != 0 && state.waiting >= limit {
                return Err((PoolError::Overloaded, task));
            }
            state.waiting += 1;
            self.set_waiting_gauge(&state);
            state = sync::wait(&self.capacity_freed, state);
            state.waiting -= 1;
            self.set_waiting_gauge(&state);
        }
    }

    /// Starts a worker for `task`. The caller has counted it in
    /// `State::workers` and `State::threads`; both are given back, with the
    /// task, if the OS refuses the thread.
    fn start_worker(self: &Arc<Self>, task: Task) -> Result<(), (PoolError, Task)> {
        // The task travels in a shared cell so that it comes back if the OS
        // refuses the thread (`Builder::spawn` would drop it with the closure).
        let cell = std::sync::Arc::new(std::sync::Mutex::new(Some(task)));
        let first = std::sync::Arc::clone(&cell);
        let take = move |cell: &std::sync::Mutex<Option<Task>>| {
            cell.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        let mailbox = Arc::new(Mailbox::new());
        let inner = Arc::clone(self);
        let spawned = self.spawn_thread(self.worker_name(), move || {
            worker::run(inner, mailbox, take(&first));
        });
        spawned.map_err(|e| {
            let mut state = sync::lock(&self.state);
            state.workers -= 1;
            self.set_workers_gauge(&state);
            if state.waiting > 0 {
                self.capacity_freed.notify_one();
            }
            self.thread_gone(&mut state);
            let error = PoolError::SpawnFailed {
                reason: e.to_string(),
            };
            (
                error,
                take(&cell).expect("a thread that never started took its task"),
            )
        })
    }

    /// Starts the workers that `min_workers` is short of and puts them on the
    /// idle list before returning, so the pool's first tasks find them there.
    fn start_idle_workers(self: &Arc<Self>) -> std::io::Result<()> {
        let missing = {
            let mut state = sync::lock(&self.state);
            let missing = self.config.min_workers.saturating_sub(state.workers);
            state.workers += missing;
            state.threads += missing;
            self.set_workers_gauge(&state);
            missing
        };
        // Until they are on the idle list these workers are ours alone: no
        // submitter can reach them, so on failure we may send them `Exit`.
        let mut started = Vec::with_capacity(missing);
        for _ in 0..missing {
            let mailbox = Arc::new(Mailbox::new());
            let theirs = Arc::clone(&mailbox);
            let inner = Arc::clone(self);
            match self.spawn_thread(self.worker_name(), move || worker::run(inner, theirs, None)) {
                Ok(()) => started.push(mailbox),
                Err(e) => {
                    let mut state = sync::lock(&self.state);
                    state.workers -= missing;
                    self.set_workers_gauge(&state);
                    for _ in started.len()..missing {
                        self.thread_gone(&mut state);
                    }
                    drop(state);
                    for worker in started {
                        worker.send(Order::Exit);
                    }
                    return Err(e);
                }
            }
        }
        let mut state = sync::lock(&self.state);
        let now = Instant::now();
        for worker in started {
            state.idle.push(worker, now);
        }
        self.set_idle_gauge(&state);
        if state.waiting > 0 {
            self.capacity_freed.notify_all();
        }
        Ok(())
    }

    fn worker_name(&self) -> String {
        let no = self.next_worker_no.fetch_add(1, Ordering::Relaxed);
        format!("{}-{no}", self.config.thread_name)
    }

    /// Spawns a thread of the pool, already counted in `State::threads`, and
    /// files its handle, so that `release_timeout` can join it.
    fn spawn_thread<F>(self: &Arc<Self>, name: String, body: F) -> std::io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let mut builder = thread::Builder::new().name(name);
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let id = self.next_thread_id.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::clone(self);
        // The registry stays locked until the handle is in it, so the thread
        // cannot report itself finished before it is registered.
        let mut threads = sync::lock(&self.threads);
        let handle = builder.spawn(move || {
            body();
            inner.thread_finished(id);
        })?;
        threads.live.insert(id, handle);
        let reap = if threads.finished.len() >= REAP_THRESHOLD {
            std::mem::take(&mut threads.finished)
        } else {
            Vec::new()
        };
        drop(threads);
        join_all(reap);
        Ok(())
    }

    /// The last thing a pool thread does: file its handle for joining, then
    /// stop counting itself.
    fn thread_finished(&self, id: usize) {
        {
            let mut threads = sync::lock(&self.threads);
            if let Some(handle) = threads.live.remove(&id) {
                threads.finished.push(handle);
            }
        }
        self.thread_gone(&mut sync::lock(&self.state));
    }

    /// A thread counted in `State::threads` finished or never started.
    fn thread_gone(&self, state: &mut State) {
        state.threads -= 1;
        if state.threads == 0 {
            self.all_exited.notify_all();
        }
    }

    /// Runs a task, catching its panic (and a panic of the panic handler).
    pub(crate) fn run_task(&self, task: Task) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(task)) {
            self.gauges.panicked.fetch_add(1, Ordering::Relaxed);
            self.handle_panic(payload);
        }
    }

    #[cold]
    fn handle_panic(&self, payload: Box<dyn Any + Send>) {
        let Some(handler) = &self.config.panic_handler else {
            tracing::error!(
                panic = %panic_message(&*payload),
                "a task of the workpool panicked; the worker lives on"
            );
            drop_quietly(payload);
            return;
        };
        if let Err(second) = panic::catch_unwind(AssertUnwindSafe(|| handler(payload))) {
            tracing::error!(
                panic = %panic_message(&*second),
                "the workpool's panic handler panicked; the worker lives on"
            );
            drop_quietly(second);
        }
    }

    /// A worker finished its task: it goes back on the idle list, or exits
    /// if the pool is closed or above its capacity (a lazy `tune` down).
    /// Returns whether the worker should wait for another task.
    pub(crate) fn worker_idle(&self, mailbox: &Arc<Mailbox>) -> bool {
        // Read the clock before locking, to keep the critical section short;
        // `IdleWorkers::push` keeps the order if another push overtakes us.
        let now = Instant::now();
        let mut state = sync::lock(&self.state);
        if state.closed || state.workers > state.capacity {
            state.workers -= 1;
            self.set_workers_gauge(&state);
            if state.waiting > 0 {
                self.capacity_freed.notify_one();
            }
            return false;
        }
        state.idle.push(Arc::clone(mailbox), now);
        self.set_idle_gauge(&state);
        if state.waiting > 0 {
            self.capacity_freed.notify_one();
        }
        true
    }

    fn tune(&self, capacity: usize) -> Result<(), PoolError> {
        if capacity == 0 {
            return Err(PoolError::InvalidCapacity);
        }
        let mut state = sync::lock(&self.state);
        if state.capacity == UNBOUNDED {
            return Err(PoolError::Unbounded);
        }
        let grew = capacity > state.capacity;
        state.capacity = capacity;
        self.gauges.capacity.store(capacity, Ordering::Relaxed);
        if grew && state.waiting > 0 {
            self.capacity_freed.notify_all();
        }
        // Idle workers above the new capacity end now, oldest first, so the
        // capacity holds for the next tasks too; busy ones end lazily as
        // their tasks finish (`worker_idle`).
        let excess = state.workers.saturating_sub(capacity);
        let retired = state.idle.take_oldest(excess);
        state.workers -= retired.len();
        self.set_workers_gauge(&state);
        self.set_idle_gauge(&state);
        drop(state);
        for worker in retired {
            worker.send(Order::Exit);
        }
        Ok(())
    }

    /// Closes the pool; returns false if it was closed already.
    fn release(&self) -> bool {
        let idle = {
            let mut state = sync::lock(&self.state);
            if state.closed {
                return false;
            }
            state.closed = true;
            self.gauges.closed.store(true, Ordering::Release);
            let idle = state.idle.drain_all();
            state.workers -= idle.len();
            self.set_workers_gauge(&state);
            self.set_idle_gauge(&state);
            self.capacity_freed.notify_all();
            self.purge_wakeup.notify_all();
            idle
        };
        for worker in idle {
            worker.send(Order::Exit);
        }
        true
    }

    fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        if !self.release() {
            return Err(PoolError::Closed);
        }
        self.wait_for_threads(timeout)
    }

    /// Waits until every thread of the pool has exited, then joins them.
    fn wait_for_threads(&self, timeout: Duration) -> Result<(), PoolError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = sync::lock(&self.state);
        while state.threads > 0 {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Err(PoolError::Timeout);
            }
            state = sync::wait_timeout(&self.all_exited, state, left);
        }
        drop(state);
        let finished = std::mem::take(&mut sync::lock(&self.threads).finished);
        join_all(finished);
        Ok(())
    }

    fn reboot(self: &Arc<Self>) {
        let epoch = {
            let mut state = sync::lock(&self.state);
            if !state.closed {
                return;
            }
            state.closed = false;
            self.gauges.closed.store(false, Ordering::Release);
            state.epoch += 1;
            state.epoch
        };
        if let Err(e) = self.start_background(epoch) {
            tracing::error!(error = %e, "workpool: reboot could not start a thread");
        }
    }

    /// Starts the purge thread of `epoch` and the missing `min_workers`.
    fn start_background(self: &Arc<Self>, epoch: u64) -> std::io::Result<()> {
        if !self.config.disable_purge {
            sync::lock(&self.state).threads += 1;
            let inner = Arc::clone(self);
            let name = format!("{}-purge", self.config.thread_name);
            if let Err(e) = self.spawn_thread(name, move || inner.purge_loop(epoch)) {
                self.thread_gone(&mut sync::lock(&self.state));
                return Err(e);
            }
        }
        self.start_idle_workers()
    }

    /// The purge thread: every `expiry`, ends the workers idle for at least
    /// `expiry`, oldest first, keeping `min_workers`.
    fn purge_loop(&self, epoch: u64) {
        let expiry = self.config.expiry;
        let mut state = sync::lock(&self.state);
        loop {
            // Checked under the lock before every wait: a release that came
            // while we purged must not be slept through.
            if state.closed || state.epoch != epoch {
                return;
            }
            state = sync::wait_timeout(&self.purge_wakeup, state, expiry);
            if state.closed || state.epoch != epoch {
                return;
            }
            let expired = match Instant::now().checked_sub(expiry) {
                Some(cutoff) => {
                    let keep = self.config.min_workers.min(state.capacity);
                    let limit = state.workers.saturating_sub(keep);
                    state.idle.expire_older_than(cutoff, limit)
                }
                None => Vec::new(),
            };
            if !expired.is_empty() {
                state.workers -= expired.len();
                self.set_workers_gauge(&state);
                self.set_idle_gauge(&state);
                if state.waiting > 0 {
                    self.capacity_freed.notify_all();
                }
            }
            drop(state);
            for worker in expired {
                worker.send(Order::Exit);
            }
            let finished = std::mem::take(&mut sync::lock(&self.threads).finished);
            join_all(finished);
            state = sync::lock(&self.state);
        }
    }

    fn set_workers_gauge(&self, state: &State) {
        self.gauges.workers.store(state.workers, Ordering::Relaxed);
    }

    fn set_idle_gauge(&self, state: &State) {
        self.gauges.idle.store(state.idle.len(), Ordering::Relaxed);
    }

    fn set_waiting_gauge(&self, state: &State) {
        self.gauges.waiting.store(state.waiting, Ordering::Relaxed);
    }
}

fn join_all(handles: Vec<thread::JoinHandle<()>>) {
    for handle in handles {
        // A pool thread catches every panic of user code, so `join` only
        // fails if the pool itself is broken; nothing is left to do then.
        let _ = handle.join();
    }
}

/// The message of a panic payload, as `std` prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Drops a panic payload, whose own `Drop` may panic too.
fn drop_quietly(payload: Box<dyn Any + Send>) {
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
}
