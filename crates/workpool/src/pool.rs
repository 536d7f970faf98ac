//! `Pool`: the handle users hold, and `Inner`, the state its workers share.
//!
//! # How a task finds a worker (ants' `retrieveWorker`)
//!
//! First without the lock ([`Inner::try_lock_free`]):
//! - without a queue, a *hot* worker (one that just finished a task and
//!   polls for the next for a few microseconds before it parks) is claimed
//!   and handed the task ([`Inner::try_handoff`]);
//! - with a queue (`queue_capacity`), when the gauges say every worker is
//!   busy, the task is queued ([`Inner::try_enqueue`]).
//!
//! Otherwise under the pool's lock:
//! 1. An idle worker is popped from [`IdleWorkers`] (LIFO) and sent the task.
//! 2. Otherwise, below capacity, `workers` is raised and a new thread starts
//!    with the task.
//! 3. Otherwise the task is queued if the queue has room, or handed to a
//!    worker that turned hot meanwhile.
//! 4. Otherwise the caller fails with `Overloaded` (nonblocking, or too many
//!    blocked callers already), or spins briefly and then blocks with its
//!    task deposited: the next worker to free up takes the task and starts
//!    it at once, then wakes the caller (`take_deposit`); a queued task
//!    taken, `tune` growing the pool, the purge ending workers, a worker
//!    leaving, or `release` wake it to try again or give up
//!    (`wake_depositors`).
//!
//! # The queue, without the lock
//!
//! With a queue, a submitter that sees every worker busy (from the gauges)
//! pushes into the lock-free queue without taking the pool's lock, and a
//! worker that finishes a task takes the next queued one without it. Only
//! the moments when a worker goes idle or a submitter blocks need the lock.
//! Three Dekker pairs (a store, a `SeqCst` fence, a load on each side) make
//! sure no queued task is stranded and no submitter sleeps through room:
//! - a submitter publishes its task in the queue, then reads the idle and
//!   worker gauges ([`Inner::after_enqueue`]); a worker going idle publishes
//!   itself on the idle list, then looks at the queue (`worker_idle`).
//!   Whichever sees the other hands the task over under the lock
//!   ([`Inner::hand_queued_task`]).
//! - a blocked submitter publishes `waiting`, then retries the queue; a
//!   worker that takes a queued task then reads `waiting`
//!   ([`Inner::after_dequeue`]).
//! - a lock-free push counts itself in `pushers`, then reads `closed`;
//!   `release` sets `closed`, then waits for `pushers` to reach zero before
//!   it looks at the queue, so it sees every task that was accepted.
//!
//! Without a queue, a worker turning hot publishes itself in `hot`, then
//! reads `waiting` ([`Inner::next_handed`]), the fourth pair, with the
//! blocking path of `submit`.
//!
//! Neither crossbeam's queues nor the hot handoff are in loom's model (loom
//! switches spinning off, and no worker turns hot there); the stress and
//! property tests cover them.
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
use crate::sync::MutexGuard;
use crate::sync::{self, thread, Arc, Condvar, Mutex};
use crate::worker::{self, Idle, Mailbox, Order, Task};
use crossbeam_queue::{ArrayQueue, SegQueue};
use crossbeam_utils::{Backoff, CachePadded};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
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
    /// The purge thread sleeps here between rounds; `release` wakes it.
    purge_wakeup: Condvar,
    threads: Mutex<Registry>,
    /// `release_timeout` waits here for `State::threads` to reach zero.
    all_exited: Condvar,
    /// Live `Pool` handles; the last one to drop releases the pool.
    handles: ProtocolUsize,
    config: Config,
    /// Mirrors of `State` for the lock-free gauges. Written under the state
    /// lock, read without it: a gauge may be a moment stale, never torn. With a
    /// queue, `idle`, `workers`, `waiting` and `closed` take part in the
    /// Dekker pairs of the module docs, so they are written and read `SeqCst`.
    gauges: Gauges,
    /// Numbers worker threads in their names.
    next_worker_no: AtomicUsize,
    /// Keys of `Registry::live`.
    next_thread_id: AtomicUsize,
    /// Accepted tasks waiting for a worker; `None` without `queue_capacity`.
    /// crossbeam's queue lives outside loom's model: the queue's protocol is
    /// covered by the stress tests in `tests/queue.rs` instead.
    queue: Option<ArrayQueue<Task>>,
    /// Lock-free pushes into `queue` in flight (see the module docs).
    pushers: AtomicUsize,
    /// Without a queue: tasks on their way to hot workers (`try_handoff`),
    /// or `None`, an order for one hot worker to exit (`retire_hot`).
    /// Unbounded in type, bounded by `hot`: it never holds more entries than
    /// workers are polling it.
    handoff: SegQueue<Option<Task>>,
    /// Hot workers not yet claimed by a submitter (`try_handoff`). On a line
    /// of its own: every task of a busy pool touches it twice.
    hot: CachePadded<AtomicUsize>,
    /// With a queue: workers spinning for a queued task (`next_queued`).
    spinners: CachePadded<AtomicUsize>,
}

/// How long a hot worker (or one spinning for the queue) keeps yielding for
/// a next task, past its spin, before it parks (`Inner::next_handed`,
/// `Inner::next_queued`). Long enough to bridge the gap between tasks
/// submitted at a steady pace (a parked worker takes 10-50 us to wake on a
/// small VM, which shows as submit-to-start latency); short enough that an
/// idle pool burns nothing measurable. At most a core's worth of workers
/// do it at once.
const HOT_FOR: Duration = Duration::from_micros(200);

/// How a worker stays awake for a next task before it parks
/// (`Inner::next_handed`, `Inner::next_queued`): it spins with a [`Backoff`],
/// then yields until [`HOT_FOR`] has passed. A task that comes meanwhile
/// starts at once instead of waking a parked worker, and yielding takes no
/// core from anyone who needs it.
struct Awake {
    backoff: Backoff,
    yielding_since: Option<Instant>,
}

impl Awake {
    fn new() -> Self {
        Awake {
            backoff: Backoff::new(),
            yielding_since: None,
        }
    }

    /// Waits a moment; false once the time to stay awake is up, or at once
    /// when `give_up` (the pool closed).
    fn wait(&mut self, give_up: bool) -> bool {
        if give_up {
            return false;
        }
        if !self.backoff.is_completed() {
            self.backoff.snooze();
            return true;
        }
        let since = *self.yielding_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= HOT_FOR {
            return false;
        }
        std::thread::yield_now();
        true
    }
}

/// What a hot worker found (`Inner::next_handed`).
pub(crate) enum Handed {
    Task(Task),
    /// An exit order from `tune` or `release`; the worker is no longer
    /// counted in `workers`.
    Retire,
    /// Nothing: the worker goes the locked way (`Inner::worker_idle`).
    Nothing,
}

/// Takes one off `count` if it is above zero; returns whether it did.
fn take_one(count: &AtomicUsize) -> bool {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
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
    /// The most workers that spin for a next task at once: the CPUs.
    spinners: usize,
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
    /// Callers blocked in `submit` whose task no worker has taken yet.
    waiting: usize,
    /// The tasks of blocked submitters, oldest first: a worker that frees up
    /// takes one from here and starts it at once, rather than wake the
    /// submitter and wait for the OS to run it.
    deposits: VecDeque<Deposit>,
    /// `UNBOUNDED` for an unbounded pool.
    capacity: usize,
    closed: bool,
    /// Raised by every `reboot`; a purge thread of an older epoch exits.
    epoch: u64,
    /// OS threads of the pool counted as started and not yet finished.
    threads: usize,
}

/// A submitter blocked in `submit`, with its task.
struct Deposit {
    task: Task,
    /// Set when the submitter should take its task back and try again
    /// (room appeared: `tune`, the purge, an exit) or give up (`release`).
    retry: bool,
    /// The submitter waits here, under the pool's lock; it is also how the
    /// submitter finds its own deposit again.
    wake: Arc<Condvar>,
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
                deposits: VecDeque::new(),
                capacity,
                closed: false,
                epoch: 0,
                threads: 0,
            }),
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
                spinners: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            gauges: Gauges::default(),
            next_worker_no: AtomicUsize::new(0),
            next_thread_id: AtomicUsize::new(0),
            queue: (builder.queue_capacity > 0).then(|| ArrayQueue::new(builder.queue_capacity)),
            pushers: AtomicUsize::new(0),
            handoff: SegQueue::new(),
            hot: CachePadded::new(AtomicUsize::new(0)),
            spinners: CachePadded::new(AtomicUsize::new(0)),
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
    /// over, not from when it starts. A worker that just finished still
    /// counts as busy while it polls for a next task (200 µs at most), until
    /// it parks on the idle list: the idle list's order (the warmest worker
    /// is reused first, the coldest expires first) is about parked workers.
    pub fn busy(&self) -> usize {
        self.workers().saturating_sub(self.idle())
    }

    /// Accepted tasks waiting in the queue for a worker; always 0 without
    /// [`queue_capacity`](PoolBuilder::queue_capacity).
    pub fn queued(&self) -> usize {
        self.inner.queue.as_ref().map_or(0, ArrayQueue::len)
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
    /// callers blocked in `submit` return it, idle workers exit, running and
    /// queued tasks finish and then their workers exit. Idempotent; does not
    /// wait.
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
        self.inner.gauges.closed.load(Ordering::SeqCst)
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
        let mut task = task;
        // A full pool of short tasks frees a hot worker or a queue slot
        // within microseconds: wait for one here, without the lock, rather
        // than go through it for every try.
        loop {
            task = match self.try_lock_free(task) {
                Ok(()) => return Ok(()),
                Err(task) => task,
            };
            if !sync::SPIN
                || self.config.nonblocking
                || backoff.is_completed()
                || !self.no_room_hint()
            {
                break;
            }
            backoff.snooze();
        }
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
            // Every worker is busy. Busy workers take queued tasks before they
            // go idle (under this lock), so a task queued here needs no
            // hand-over.
            task = match self.place_at_capacity(task) {
                Ok(()) => return Ok(()),
                Err(task) => task,
            };
            if self.config.nonblocking {
                return Err((PoolError::Overloaded, task));
            }
            // A busy pool frees a worker (or a queue slot) within microseconds
            // when its tasks are short; sleeping on the condvar costs more.
            // Spin on the gauges, not the lock, which the workers need to go
            // idle.
            if sync::SPIN && !backoff.is_completed() {
                drop(state);
                while !backoff.is_completed() && self.no_room_hint() {
                    backoff.snooze();
                }
                task = match self.try_lock_free(task) {
                    Ok(()) => return Ok(()),
                    Err(task) => task,
                };
                state = sync::lock(&self.state);
                continue;
            }
            let limit = self.config.max_blocking_tasks;
            if limit != 0 && state.waiting >= limit {
                return Err((PoolError::Overloaded, task));
            }
            state.waiting += 1;
            self.set_waiting_gauge(&state);
            // Dekker with `after_dequeue` and `next_handed`: `waiting` is
            // published, so a queue slot freed or a worker turning hot after
            // this look finds our deposit.
            fence(Ordering::SeqCst);
            task = match self.place_at_capacity(task) {
                Ok(()) => {
                    state.waiting -= 1;
                    self.set_waiting_gauge(&state);
                    return Ok(());
                }
                Err(task) => task,
            };
            let wake = Arc::new(Condvar::new());
            state.deposits.push_back(Deposit {
                task,
                retry: false,
                wake: Arc::clone(&wake),
            });
            loop {
                state = sync::wait(&wake, state);
                let Some(at) = state
                    .deposits
                    .iter()
                    .position(|d| Arc::ptr_eq(&d.wake, &wake))
                else {
                    // A worker took the task: it runs now.
                    return Ok(());
                };
                if state.deposits[at].retry || state.closed {
                    let deposit = state.deposits.remove(at).expect("found above");
                    state.waiting -= 1;
                    self.set_waiting_gauge(&state);
                    task = deposit.task;
                    break;
                }
                // A spurious wake-up: keep waiting.
            }
        }
    }

    /// Under the lock: takes the oldest deposited task, for a worker that
    /// is free to run it now, and wakes its submitter.
    fn take_deposit(&self, state: &mut State) -> Option<Task> {
        let deposit = state.deposits.pop_front()?;
        state.waiting -= 1;
        self.set_waiting_gauge(state);
        deposit.wake.notify_one();
        Some(deposit.task)
    }

    /// Under the lock: tells blocked submitters (the oldest, or all) to take
    /// their task back and try again, because room may have appeared or the
    /// pool closed.
    fn wake_depositors(&self, state: &mut State, all: bool) {
        let n = if all { state.deposits.len() } else { 1 };
        for deposit in state.deposits.iter_mut().take(n) {
            deposit.retry = true;
            deposit.wake.notify_one();
        }
    }

    /// The lock-free way in: a hot worker claimed, or (with a queue) a queue
    /// slot taken while every worker is busy. Gives the task back when
    /// neither is there, or the pool is closed; the locked path then decides.
    fn try_lock_free(self: &Arc<Self>, task: Task) -> Result<(), Task> {
        match &self.queue {
            Some(_) => self.try_enqueue(task),
            None => self.try_handoff(task),
        }
    }

    /// Where a task goes when every worker is busy and the pool is at
    /// capacity, short of blocking: the queue, or a worker that turned hot.
    fn place_at_capacity(&self, task: Task) -> Result<(), Task> {
        match &self.queue {
            Some(queue) => queue.push(task),
            None => self.hand_to_hot_worker(task),
        }
    }

    /// Direct mode: hands `task` to a hot worker, if one can be claimed.
    ///
    /// A worker that finishes a task turns "hot" for a few microseconds
    /// (`next_handed`): it counts itself in `hot` and polls `handoff`. A
    /// submitter claims one hot worker by taking one off the count, then
    /// pushes its task; a hot worker may stop polling only by taking itself
    /// off the count too. So `hot` is always hot workers minus tasks on
    /// their way to them, and every task pushed has a worker polling for it.
    /// This is the pool's fast path: no lock, and no thread parked or woken.
    fn try_handoff(&self, task: Task) -> Result<(), Task> {
        // Checked before the claim: once `release` has returned, no task may
        // be accepted. A release racing this submit may let its task in;
        // the claimed worker, counted as a thread, runs it.
        if self.gauges.closed.load(Ordering::SeqCst) {
            return Err(task);
        }
        self.hand_to_hot_worker(task)
    }

    fn hand_to_hot_worker(&self, task: Task) -> Result<(), Task> {
        if take_one(&self.hot) {
            self.handoff.push(Some(task));
            Ok(())
        } else {
            Err(task)
        }
    }

    /// Direct mode, on a worker that finished its task: turns hot and polls
    /// for a task handed over by `try_handoff`, for [`HOT_FOR`] at most.
    pub(crate) fn next_handed(&self) -> Handed {
        let gauges = &self.gauges;
        // A worker above a lowered capacity, or of a closed pool, goes the
        // locked way, where it exits.
        if self.queue.is_some()
            || !sync::SPIN
            || gauges.closed.load(Ordering::SeqCst)
            || gauges.workers.load(Ordering::SeqCst) > gauges.capacity.load(Ordering::SeqCst)
            // With a core's worth of workers already spinning, more would only
            // take the cores from the tasks and from the submitter.
            || self.hot.load(Ordering::Relaxed) >= self.config.spinners
            // A blocked submitter's task is waiting: `worker_idle` takes it.
            || gauges.waiting.load(Ordering::SeqCst) != 0
        {
            return Handed::Nothing;
        }
        // Dekker with the blocking path of `submit`: we are published as
        // hot; now look for a submitter that blocked before it could see us,
        // and take its deposit (`worker_idle`) unless one claimed us already.
        // The `SeqCst` read-modify-write orders the load after it; no fence.
        self.hot.fetch_add(1, Ordering::SeqCst);
        if gauges.waiting.load(Ordering::SeqCst) != 0 && take_one(&self.hot) {
            return Handed::Nothing;
        }
        let mut awake = Awake::new();
        loop {
            if let Some(entry) = self.handoff.pop() {
                return entry.map_or(Handed::Retire, Handed::Task);
            }
            if awake.wait(gauges.closed.load(Ordering::Relaxed)) {
                continue;
            }
            if take_one(&self.hot) {
                return Handed::Nothing;
            }
            // Every hot worker is claimed: a task is on its way to one of us,
            // and none may leave before it is taken.
            std::thread::yield_now();
        }
    }

    /// Under the lock: ends up to `n` hot workers now, as `tune` and
    /// `release` end idle ones, by claiming them as a submitter would and
    /// handing them an exit order. They are no longer counted in `workers`
    /// from here on.
    fn retire_hot(&self, state: &mut State, n: usize) {
        let mut retired = 0;
        while retired < n && take_one(&self.hot) {
            self.handoff.push(None);
            retired += 1;
        }
        state.workers -= retired;
        self.set_workers_gauge(state);
    }

    /// With a queue, when the gauges say every worker is busy and the pool
    /// is at capacity, the task goes straight into the queue.
    fn try_enqueue(self: &Arc<Self>, task: Task) -> Result<(), Task> {
        let Some(queue) = &self.queue else {
            return Err(task);
        };
        if !self.no_room_hint() {
            return Err(task);
        }
        let gauges = &self.gauges;
        // Dekker with `release`: either we see the pool closed, or `release`
        // sees us in `pushers` and waits for this push before it drains.
        self.pushers.fetch_add(1, Ordering::SeqCst);
        let pushed = if gauges.closed.load(Ordering::SeqCst) {
            Err(task)
        } else {
            queue.push(task)
        };
        self.pushers.fetch_sub(1, Ordering::SeqCst);
        pushed?;
        self.after_enqueue();
        Ok(())
    }

    /// Whether the gauges say that every worker is busy and the pool is at
    /// capacity (or closed: then the locked path says so). A hint only; the
    /// locked path decides.
    fn no_room_hint(&self) -> bool {
        let gauges = &self.gauges;
        self.hot.load(Ordering::SeqCst) == 0
            && gauges.idle.load(Ordering::SeqCst) == 0
            && gauges.workers.load(Ordering::SeqCst) >= gauges.capacity.load(Ordering::SeqCst)
            && !gauges.closed.load(Ordering::SeqCst)
    }

    /// A task was queued without the lock: if a worker went idle or left
    /// meanwhile, nobody may be coming back for it, so hand it over.
    fn after_enqueue(self: &Arc<Self>) {
        // Dekker with `worker_idle`: the task is published; now look at the
        // workers. A worker that went idle before it could see the task shows
        // in the idle gauge; one that left shows in the worker gauge.
        fence(Ordering::SeqCst);
        if !self.no_room_hint() {
            let _ = self.hand_queued_task(sync::lock(&self.state));
        }
    }

    /// A worker took a queued task: wake a submitter blocked on a full queue.
    fn after_dequeue(&self) {
        // Dekker with the blocking path of `submit`: the slot is freed; now
        // look for a submitter that published `waiting` before it could see it.
        fence(Ordering::SeqCst);
        if self.gauges.waiting.load(Ordering::SeqCst) != 0 {
            self.wake_depositors(&mut sync::lock(&self.state), false);
        }
    }

    /// Under the lock: if a task is queued and no busy worker is bound to come
    /// back for it, hands it to an idle worker, or starts a worker for it
    /// (on a closed pool too, if no worker is left to drain the queue).
    /// Returns whether it handed a task over.
    fn hand_queued_task(self: &Arc<Self>, mut state: MutexGuard<'_, State>) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        if queue.is_empty() {
            return false;
        }
        if let Some((worker, since)) = state.idle.pop_with_time() {
            match queue.pop() {
                Some(task) => {
                    self.set_idle_gauge(&state);
                    drop(state);
                    self.after_dequeue();
                    worker.send(Order::Run(task));
                    return true;
                }
                // A busy worker took it meanwhile.
                None => state.idle.push(worker, since),
            }
            return false;
        }
        let room = if state.closed {
            state.workers == 0
        } else {
            state.workers < state.capacity
        };
        if !room {
            // Every worker is busy: each takes queued tasks before going idle.
            return false;
        }
        let Some(task) = queue.pop() else {
            return false;
        };
        state.workers += 1;
        state.threads += 1;
        self.set_workers_gauge(&state);
        drop(state);
        self.after_dequeue();
        if let Err((error, task)) = self.start_worker(task) {
            // The task was accepted, so it must run, and no thread of the
            // pool can take it now: run it here rather than lose it.
            tracing::warn!(%error, "workpool: running a queued task on the caller's thread");
            self.run_task(task);
        }
        true
    }

    /// With a queue: the next queued task for a worker that finished one,
    /// spinning briefly for it before the worker goes idle.
    pub(crate) fn next_queued(&self) -> Option<Task> {
        let queue = self.queue.as_ref()?;
        if let Some(task) = queue.pop() {
            self.after_dequeue();
            return Some(task);
        }
        // At most a core's worth of workers spin for the queue (see
        // `next_handed`); the count is paid only once the queue runs dry.
        if !sync::SPIN || self.spinners.fetch_add(1, Ordering::Relaxed) >= self.config.spinners {
            self.spinners.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let mut awake = Awake::new();
        let task = loop {
            if let Some(task) = queue.pop() {
                break Some(task);
            }
            if !awake.wait(self.gauges.closed.load(Ordering::Relaxed)) {
                break None;
            }
        };
        self.spinners.fetch_sub(1, Ordering::Relaxed);
        if task.is_some() {
            self.after_dequeue();
        }
        task
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
            self.wake_depositors(&mut state, false);
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
        self.wake_depositors(&mut state, true);
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

    /// A worker finished its task and found none queued: it takes a task
    /// queued meanwhile, goes back on the idle list, or exits if the pool is
    /// closed or above its capacity (a lazy `tune` down). A worker never
    /// leaves while tasks are queued, so a closed pool still runs them.
    pub(crate) fn worker_idle(self: &Arc<Self>, mailbox: &Arc<Mailbox>) -> Idle {
        // Read the clock before locking, to keep the critical section short;
        // `IdleWorkers::push` keeps the order if another push overtakes us.
        let now = Instant::now();
        let mut state = sync::lock(&self.state);
        if let Some(task) = self.queue.as_ref().and_then(ArrayQueue::pop) {
            drop(state);
            self.after_dequeue();
            return Idle::Run(task);
        }
        if state.closed || state.workers > state.capacity {
            state.workers -= 1;
            self.set_workers_gauge(&state);
            self.wake_depositors(&mut state, false);
            return Idle::Exit;
        }
        if let Some(task) = self.take_deposit(&mut state) {
            return Idle::Run(task);
        }
        state.idle.push(Arc::clone(mailbox), now);
        self.set_idle_gauge(&state);
        drop(state);
        if let Some(queue) = &self.queue {
            // Dekker with `after_enqueue`: we are published as idle; now look
            // at the queue for a task pushed by a submitter that saw us busy.
            fence(Ordering::SeqCst);
            if !queue.is_empty() {
                let _ = self.hand_queued_task(sync::lock(&self.state));
            }
        }
        Idle::Wait
    }

    fn tune(self: &Arc<Self>, capacity: usize) -> Result<(), PoolError> {
        if capacity == 0 {
            return Err(PoolError::InvalidCapacity);
        }
        let mut state = sync::lock(&self.state);
        if state.capacity == UNBOUNDED {
            return Err(PoolError::Unbounded);
        }
        let grew = capacity > state.capacity;
        state.capacity = capacity;
        self.gauges.capacity.store(capacity, Ordering::SeqCst);
        if grew {
            self.wake_depositors(&mut state, true);
        }
        // Idle workers above the new capacity end now, oldest first, so the
        // capacity holds for the next tasks too; busy ones end lazily as
        // their tasks finish (`worker_idle`).
        let excess = state.workers.saturating_sub(capacity);
        let retired = state.idle.take_oldest(excess);
        state.workers -= retired.len();
        self.set_workers_gauge(&state);
        self.set_idle_gauge(&state);
        let excess = state.workers.saturating_sub(capacity);
        self.retire_hot(&mut state, excess);
        drop(state);
        for worker in retired {
            worker.send(Order::Exit);
        }
        // New room goes to queued tasks first, at once.
        if grew {
            while self.hand_queued_task(sync::lock(&self.state)) {}
        }
        Ok(())
    }

    /// Closes the pool; returns false if it was closed already.
    fn release(self: &Arc<Self>) -> bool {
        let mut state = sync::lock(&self.state);
        if state.closed {
            return false;
        }
        state.closed = true;
        self.gauges.closed.store(true, Ordering::SeqCst);
        self.wake_depositors(&mut state, true);
        self.purge_wakeup.notify_all();
        if self.queue.is_some() {
            // A lock-free push that saw the pool open may still be in flight;
            // the queue we drain below must hold its task. Pushes never block,
            // so this wait is short.
            drop(state);
            let backoff = Backoff::new();
            while self.pushers.load(Ordering::SeqCst) != 0 {
                backoff.snooze();
            }
            state = sync::lock(&self.state);
            if !state.closed {
                // Rebooted meanwhile: the idle workers serve the new life.
                return true;
            }
        }
        let idle = state.idle.drain_all();
        state.workers -= idle.len();
        self.set_workers_gauge(&state);
        self.set_idle_gauge(&state);
        self.retire_hot(&mut state, usize::MAX);
        // Idle workers take what is still queued before they exit; a worker
        // never leaves while tasks are queued (`worker_idle`).
        let mut orders = Vec::with_capacity(idle.len());
        for worker in idle {
            let order = match self.queue.as_ref().and_then(ArrayQueue::pop) {
                Some(task) => {
                    state.workers += 1;
                    Order::Run(task)
                }
                None => Order::Exit,
            };
            orders.push((worker, order));
        }
        self.set_workers_gauge(&state);
        // With no worker left, one is started to drain the queue.
        let _ = self.hand_queued_task(state);
        for (worker, order) in orders {
            worker.send(order);
        }
        true
    }

    fn release_timeout(self: &Arc<Self>, timeout: Duration) -> Result<(), PoolError> {
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
            self.gauges.closed.store(false, Ordering::SeqCst);
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
                self.wake_depositors(&mut state, true);
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
        self.gauges.workers.store(state.workers, Ordering::SeqCst);
    }

    fn set_idle_gauge(&self, state: &State) {
        self.gauges.idle.store(state.idle.len(), Ordering::SeqCst);
    }

    fn set_waiting_gauge(&self, state: &State) {
        self.gauges.waiting.store(state.waiting, Ordering::SeqCst);
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
