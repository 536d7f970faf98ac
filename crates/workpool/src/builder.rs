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
    pub(crate) autoscale: Option<crate::Autoscale>,
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
            .field("autoscale", &self.autoscale)
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::PoolBuilder;
    /// let pool = PoolBuilder::new().build()?;
    /// let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// assert_eq!(pool.capacity(), Some(cpus));
    /// assert_eq!(pool.queue_capacity(), PoolBuilder::DEFAULT_QUEUE_CAPACITY);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
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
            autoscale: None,
            name: "workpool".to_owned(),
            room: None,
        }
    }

    /// The pool's name: the `pool` label of its metrics (with the `metrics`
    /// feature) and a field of its log lines. Default: `workpool`. It does
    /// not name the threads: see [`thread_name`](Self::thread_name). Any
    /// string is kept as given, the empty one and NUL bytes included.
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
    /// `Duration::ZERO` has passed at acceptance: a task that no worker takes
    /// at once never runs, and one that started sees its token cancelled.
    /// A deadline too far away for the clock to add (`Duration::MAX`) never
    /// fires, as if none were set.
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

    /// Lets the pool find its own capacity: every
    /// [`interval`](crate::Autoscale::interval) its maintenance thread
    /// hands the last interval's figures (completions, run time, whether
    /// tasks waited for a worker) to the policy, and applies the capacity
    /// it answers as [`Pool::tune`](crate::Pool::tune) would, within the
    /// policy's [`bounds`](crate::Autoscale::bounds); each change is a
    /// `tracing` event (info) with the figures that decided it, and
    /// [`Stats::capacity`](crate::Stats::capacity) shows the capacity in
    /// force. The pool starts at its [`capacity`](Self::capacity), brought
    /// within the bounds. A manual `tune` pauses it until
    /// [`Pool::resume_autoscale`](crate::Pool::resume_autoscale). Off by
    /// default: a pool without it runs no policy and costs nothing more.
    /// `build` checks the policy's settings
    /// ([`BuildError::AutoscaleBounds`], [`BuildError::AutoscaleInterval`]),
    /// and refuses it on an [`unbounded`](Self::unbounded) pool
    /// ([`BuildError::AutoscaleUnbounded`]) and with `min_workers` above its
    /// lower bound ([`BuildError::MinWorkersAboveCapacity`]). On a
    /// [`MultiPool`](crate::MultiPool), each pool scales on its own.
    ///
    /// See [`Autoscale`](crate::Autoscale) for when to use it, and its two
    /// policies.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{Autoscale, Pool};
    /// let pool = Pool::builder()
    ///     .capacity(8)
    ///     .autoscale(Autoscale::latency().bounds(2, 256))
    ///     .build()?;
    /// assert!(pool.is_autoscaling());
    /// pool.tune(16)?; // the user's capacity holds...
    /// assert!(!pool.is_autoscaling());
    /// pool.resume_autoscale(); // ...until this
    /// assert!(pool.is_autoscaling());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn autoscale(mut self, autoscale: crate::Autoscale) -> Self {
        self.autoscale = Some(autoscale);
        self
    }

    /// The most worker threads alive at once, and so the most tasks running at
    /// once. Default: the number of CPUs. `build` refuses 0 with
    /// [`BuildError::ZeroCapacity`], and more than
    /// [`MAX_CAPACITY`](Self::MAX_CAPACITY) (`usize::MAX` included) with
    /// [`BuildError::CapacityTooLarge`]. Replaces an earlier
    /// [`unbounded`](Self::unbounded).
    ///
    /// The capacity bounds the workers; it starts none. Threads are made as
    /// tasks need them, so a capacity far above what the machine can run
    /// (say 1,000,000) is accepted, and a task that needs a thread the OS or
    /// [`thread_limit`](Self::thread_limit) refuses gets
    /// [`PoolError::SpawnFailed`](crate::PoolError::SpawnFailed) at the call.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, Pool};
    /// let pool = Pool::builder().capacity(4).build()?;
    /// assert_eq!(pool.capacity(), Some(4));
    /// assert!(matches!(Pool::builder().capacity(0).build(), Err(BuildError::ZeroCapacity)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// No limit on worker threads: `submit` never blocks and never fails with
    /// `Overloaded` (ants' pool of size <= 0). Replaces an earlier
    /// [`capacity`](Self::capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::builder().unbounded().build()?;
    /// assert_eq!(pool.capacity(), None);
    /// assert_eq!(pool.tune(4), Err(PoolError::Unbounded));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unbounded(mut self) -> Self {
        self.capacity = None;
        self
    }

    /// How long a worker may stay idle before the purge thread ends it; the
    /// purge runs once per `expiry`, so a worker ends between one and two
    /// expiries after its last task. Default: 1 s. `build` refuses zero with
    /// [`BuildError::ZeroExpiry`], and more than
    /// [`MAX_EXPIRY`](Self::MAX_EXPIRY) (`Duration::MAX` included) with
    /// [`BuildError::ExpiryTooLong`]: to keep idle workers for ever, use
    /// [`disable_purge`](Self::disable_purge).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool::{BuildError, Pool};
    /// let pool = Pool::builder().expiry(Duration::from_millis(10)).build()?;
    /// pool.spawn(|| ())?.join()?;
    /// // Idle for 10 to 20 ms, its worker ends.
    /// while pool.workers() > 0 {
    ///     std::thread::yield_now();
    /// }
    /// let zero = Pool::builder().expiry(Duration::ZERO).build();
    /// assert!(matches!(zero, Err(BuildError::ZeroExpiry)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// Workers started by `build` (and by `reboot`) and kept alive past the
    /// expiry. Default: 0 (workers start with the first tasks). `build`
    /// refuses more than the capacity with
    /// [`BuildError::MinWorkersAboveCapacity`], and, bounded or not, more
    /// than [`thread_limit`](Self::thread_limit) with
    /// [`BuildError::TooManyMinWorkers`], before it starts any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, Pool};
    /// let pool = Pool::builder().capacity(4).min_workers(2).build()?;
    /// assert_eq!((pool.workers(), pool.idle()), (2, 2));
    /// let too_many = Pool::builder().capacity(4).min_workers(5).build();
    /// assert!(matches!(too_many, Err(BuildError::MinWorkersAboveCapacity { .. })));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn min_workers(mut self, min_workers: usize) -> Self {
        self.min_workers = min_workers;
        self
    }

    /// When every worker is busy and the pool is at capacity, `submit` fails at
    /// once with [`PoolError::Overloaded`](crate::PoolError::Overloaded)
    /// instead of blocking. Default: false (block).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::builder().capacity(1).queue_capacity(0).nonblocking(true).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // no room left
    /// assert_eq!(pool.submit(|| ()), Err(PoolError::Overloaded));
    /// tx.send(())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    /// The most callers that may be blocked in `submit` at once; the next one
    /// gets [`PoolError::Overloaded`](crate::PoolError::Overloaded). Default:
    /// 0, no limit. `usize::MAX` is a limit no program reaches: no limit
    /// either. It bounds blocked threads: futures of
    /// [`submit_async`](crate::Pool::submit_async) that wait for room hold no
    /// thread and are not counted against it (they are in
    /// [`waiting`](crate::Pool::waiting)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use workpool::{Pool, PoolError};
    /// let pool = Pool::builder().capacity(1).queue_capacity(0).max_blocking_tasks(1).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?; // no room left
    /// let other = pool.clone();
    /// let blocked = std::thread::spawn(move || other.submit(|| ()));
    /// while pool.waiting() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(pool.submit(|| ()), Err(PoolError::Overloaded));
    /// tx.send(())?;
    /// assert_eq!(blocked.join().unwrap(), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_blocking_tasks(mut self, max_blocking_tasks: usize) -> Self {
        self.max_blocking_tasks = max_blocking_tasks;
        self
    }

    /// Called on the worker thread with the payload of every task that panics
    /// (of fire-and-forget tasks; a task with a handle reports its panic to
    /// the handle). A panic inside the handler is caught and logged too; the
    /// worker lives on either way. Default: log the panic message with
    /// `tracing::error!`.
    ///
    /// The payload is what `panic!` made: a `&'static str` for a literal
    /// message, a `String` for a formatted one. Printing the box itself shows
    /// only `Any { .. }`; downcast it to read the message:
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let (tx, rx) = mpsc::channel();
    /// let pool = workpool::Pool::builder()
    ///     .panic_handler(move |payload| {
    ///         let message = payload
    ///             .downcast_ref::<&str>()
    ///             .map(|s| s.to_string())
    ///             .or_else(|| payload.downcast_ref::<String>().cloned());
    ///         let _ = tx.send(message);
    ///     })
    ///     .build()?;
    /// # let hook = std::panic::take_hook();
    /// # std::panic::set_hook(Box::new(|_| {}));
    /// pool.submit(|| panic!("boom"))?;
    /// pool.submit(|| panic!("disk {} is full", 3))?;
    /// let mut got = vec![rx.recv()?, rx.recv()?];
    /// got.sort();
    /// # std::panic::set_hook(hook);
    /// assert_eq!(got, [Some("boom".to_owned()), Some("disk 3 is full".to_owned())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = workpool::Pool::builder()
    ///     .expiry(Duration::from_millis(1))
    ///     .disable_purge(true)
    ///     .build()?;
    /// pool.spawn(|| ())?.join()?;
    /// // Idle far past its expiry, the worker is kept.
    /// assert_eq!(pool.workers(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disable_purge(mut self, disable_purge: bool) -> Self {
        self.disable_purge = disable_purge;
        self
    }

    /// Worker threads are named `{prefix}-{n}` (n counts from 0 per pool) and
    /// the purge thread `{prefix}-purge`. Default: `workpool`.
    ///
    /// `build` refuses a prefix with a NUL byte, which no OS thread name may
    /// hold, with [`BuildError::ThreadNameHasNul`]. An empty prefix names the
    /// threads `-0`, `-1`, ... and `-purge`. A prefix of any length is
    /// accepted: [`std::thread::Thread::name`] gives the whole name, while
    /// Linux shows its first 15 bytes (in `ps`, `top`, `/proc`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::builder().thread_name("crawler").build()?;
    /// let name = pool.spawn(|| std::thread::current().name().map(str::to_owned))?.join()?;
    /// assert_eq!(name.as_deref(), Some("crawler-0"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// The stack size of worker threads, in bytes. Default: the platform's
    /// (2 MiB on Linux, or `RUST_MIN_STACK`).
    ///
    /// `build` refuses a size below [`MIN_STACK_SIZE`](Self::MIN_STACK_SIZE)
    /// or above [`MAX_STACK_SIZE`](Self::MAX_STACK_SIZE) (0 and `usize::MAX`
    /// among them) with [`BuildError::StackSizeOutOfRange`]. Within them, a
    /// size the OS cannot give makes `build` (or the `submit` that needs a
    /// new worker) fail with `SpawnFailed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, Pool};
    /// let pool = Pool::builder().stack_size(8 << 20).build()?;
    /// // 1 MiB on the stack of a worker.
    /// let sum = pool.spawn(|| [1u8; 1 << 20].iter().map(|&b| usize::from(b)).sum::<usize>())?;
    /// assert_eq!(sum.join()?, 1 << 20);
    /// let tiny = Pool::builder().stack_size(1024).build();
    /// assert!(matches!(tiny, Err(BuildError::StackSizeOutOfRange { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::Pool;
    /// let pool = Pool::builder().queue_capacity(16).build()?;
    /// assert_eq!(pool.queue_capacity(), 16);
    /// // Ants' hand-off: no queue.
    /// assert_eq!(Pool::builder().queue_capacity(0).build()?.queue_capacity(), 0);
    /// # Ok::<(), workpool::BuildError>(())
    /// ```
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

    /// The largest [`capacity`](Self::capacity) that `build` and
    /// [`Pool::tune`] accept: 2^48 - 1 on 64-bit targets, far above the
    /// threads any machine runs, yet low enough that the capacities of
    /// [`MultiPool::MAX_POOLS`](crate::MultiPool::MAX_POOLS) pools add up
    /// without overflow. (`usize::MAX` marks an unbounded pool inside.)
    pub const MAX_CAPACITY: usize = usize::MAX >> 16;

    /// The longest [`expiry`](Self::expiry) that `build` accepts: 365 days.
    pub const MAX_EXPIRY: Duration = Duration::from_secs(365 * 24 * 60 * 60);

    /// The smallest [`stack_size`](Self::stack_size) that `build` accepts:
    /// 64 KiB. The standard panic hook printing a backtrace
    /// (`RUST_BACKTRACE=1`) needs about 32 KiB of stack; with less, a
    /// panicking task overflows it and the process aborts.
    pub const MIN_STACK_SIZE: usize = 64 * 1024;

    /// The largest [`stack_size`](Self::stack_size) that `build` accepts:
    /// 1 GiB, Go's limit for a goroutine's stack on 64-bit targets.
    pub const MAX_STACK_SIZE: usize = 1 << 30;

    /// The most threads that the pools of this process (workers, purge and
    /// monitor threads of every pool together) keep alive at once. A thread
    /// beyond it is not attempted: the task that needed it gets
    /// [`PoolError::SpawnFailed`](crate::PoolError::SpawnFailed), and
    /// `build` refuses more [`min_workers`](Self::min_workers).
    ///
    /// Why a limit: every Rust thread takes four memory mappings (its stack
    /// and the signal stack, each with a guard page), and Linux allows a
    /// process `vm.max_map_count` of them (65,530 by default). Near that
    /// limit the OS may make the thread, but `std` then fails to map its
    /// signal stack inside it, and that panic cannot unwind: the process
    /// aborts. So on Linux the limit is three quarters of
    /// `vm.max_map_count / 4` (12,286 threads by default), leaving a quarter
    /// to the rest of the process; elsewhere, and if `/proc` cannot be read,
    /// 65,536. Read once per process.
    ///
    /// Other limits of the OS (`RLIMIT_NPROC`, `kernel.threads-max`, memory)
    /// make thread creation fail cleanly: those come back as `SpawnFailed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, Pool, PoolBuilder};
    /// let limit = PoolBuilder::thread_limit();
    /// assert!(limit >= 1);
    /// // Refused before any thread starts.
    /// let too_many = Pool::builder().unbounded().min_workers(limit + 1).build();
    /// assert!(matches!(too_many, Err(BuildError::TooManyMinWorkers { .. })));
    /// ```
    pub fn thread_limit() -> usize {
        static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *LIMIT.get_or_init(|| {
            let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                .ok()
                .and_then(|text| text.trim().parse::<usize>().ok());
            match maps {
                Some(maps) if cfg!(target_os = "linux") => (maps / 4 * 3 / 4).max(1),
                _ => 1 << 16,
            }
        })
    }

    /// Checks the options and starts the pool: its purge thread, unless purge
    /// is disabled, and `min_workers` idle workers.
    ///
    /// # Errors
    ///
    /// For an invalid option, the [`BuildError`] that names it:
    /// [`ZeroCapacity`](BuildError::ZeroCapacity),
    /// [`CapacityTooLarge`](BuildError::CapacityTooLarge),
    /// [`ZeroExpiry`](BuildError::ZeroExpiry),
    /// [`ExpiryTooLong`](BuildError::ExpiryTooLong),
    /// [`MinWorkersAboveCapacity`](BuildError::MinWorkersAboveCapacity),
    /// [`TooManyMinWorkers`](BuildError::TooManyMinWorkers),
    /// [`QueueTooLarge`](BuildError::QueueTooLarge),
    /// [`ThreadNameHasNul`](BuildError::ThreadNameHasNul) or
    /// [`StackSizeOutOfRange`](BuildError::StackSizeOutOfRange);
    /// [`BuildError::SpawnFailed`] if a thread could not be started (nothing
    /// of the pool is left running then).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool::{BuildError, Pool};
    /// let pool = Pool::builder().capacity(2).build()?;
    /// assert_eq!(pool.capacity(), Some(2));
    /// assert!(!pool.is_closed());
    /// let error = Pool::builder().capacity(0).build().unwrap_err();
    /// assert_eq!(error, BuildError::ZeroCapacity);
    /// # Ok::<(), BuildError>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let (tx, rx) = mpsc::channel();
    /// let pool = workpool::Pool::builder()
    ///     .capacity(2)
    ///     .build_with_func(move |n: u32| tx.send(n * 2).unwrap())?;
    /// pool.invoke(21)?;
    /// assert_eq!(rx.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_with_func<A, F>(self, f: F) -> Result<PoolWithFunc<A>, BuildError>
    where
        A: Send + 'static,
        F: Fn(A) + Send + Sync + 'static,
    {
        Ok(PoolWithFunc::from_parts(self.build()?, f))
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if let Some(capacity) = self.capacity {
            if capacity == 0 {
                return Err(BuildError::ZeroCapacity);
            }
            if capacity > Self::MAX_CAPACITY {
                return Err(BuildError::CapacityTooLarge {
                    capacity,
                    max: Self::MAX_CAPACITY,
                });
            }
        }
        if self.expiry.is_zero() {
            return Err(BuildError::ZeroExpiry);
        }
        if self.expiry > Self::MAX_EXPIRY {
            return Err(BuildError::ExpiryTooLong {
                expiry: self.expiry,
                max: Self::MAX_EXPIRY,
            });
        }
        if let Some(capacity) = self.capacity {
            if self.min_workers > capacity {
                return Err(BuildError::MinWorkersAboveCapacity {
                    min_workers: self.min_workers,
                    capacity,
                });
            }
        }
        let thread_limit = Self::thread_limit();
        if self.min_workers > thread_limit {
            return Err(BuildError::TooManyMinWorkers {
                min_workers: self.min_workers,
                max: thread_limit,
            });
        }
        if self.queue_capacity > Self::MAX_QUEUE_CAPACITY {
            return Err(BuildError::QueueTooLarge {
                queue_capacity: self.queue_capacity,
                max: Self::MAX_QUEUE_CAPACITY,
            });
        }
        if self.thread_name.contains('\0') {
            return Err(BuildError::ThreadNameHasNul {
                thread_name: self.thread_name.clone(),
            });
        }
        if let Some(autoscale) = &self.autoscale {
            autoscale.check()?;
            if self.capacity.is_none() {
                return Err(BuildError::AutoscaleUnbounded);
            }
            let (min, _) = autoscale.bounds_of();
            if self.min_workers > min {
                return Err(BuildError::MinWorkersAboveCapacity {
                    min_workers: self.min_workers,
                    capacity: min,
                });
            }
        }
        if let Some(stack_size) = self.stack_size {
            if !(Self::MIN_STACK_SIZE..=Self::MAX_STACK_SIZE).contains(&stack_size) {
                return Err(BuildError::StackSizeOutOfRange {
                    stack_size,
                    min: Self::MIN_STACK_SIZE,
                    max: Self::MAX_STACK_SIZE,
                });
            }
        }
        Ok(())
    }
}
