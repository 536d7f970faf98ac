//! `Pool::map` and `MultiPool::map`: a stream of inputs through a closure
//! on the pool, with at most a window of inputs in flight, the results in
//! input order (or as they finish), as an `Iterator` or, on a `Pool`, as a
//! `futures_core::Stream`.
//!
//! Inputs go to the pool in chunks, one task per chunk: a task per input
//! costs a handle, a token and a wake-up each, which for a small closure
//! is most of the work (measured: one task per input through a window of
//! handles moved 4-7 M inputs/s on 2 workers, chunks of 64 about 150 M/s).
//! A chunk's size adapts to the closure: it starts at one input, so that a
//! slow closure keeps every worker busy from the first input, and doubles
//! while a chunk takes less than [`CHUNK_TIME`]; it never exceeds what
//! keeps two chunks per worker within the window. Each input runs under
//! its own `catch_unwind`: a panic is that input's [`TaskError`], the
//! chunk goes on.
//!
//! Every chunk reports once, to [`Reports`]: from its body when it ran, or
//! from its completion callback when it never did (cancelled, its deadline
//! passed, the pool released); a chunk the pool refused is reported by the
//! caller. The map keeps the reports in order for the caller (ordered) or
//! hands them over as they come (unordered). The inputs in flight, which
//! the window bounds, are those pulled and not yet yielded, so results
//! waiting for an earlier one count too: memory stays bounded whatever the
//! order of completion.

use crate::cancel::CancelToken;
use crate::error::{PoolError, TaskError};
use crate::handle::TaskHandle;
use crate::job::{self, Deadline, Job, Outcome, Spec};
use crate::multi::MultiPool;
use crate::pool::{Inner, Pool, SubmitAsync, Wait};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A chunk that runs faster than this doubles the next chunk's size: long
/// enough that a task's own cost (a few hundred nanoseconds, more with a
/// wake-up) is a few per cent of it, short enough that the last chunks of
/// a stream do not leave workers idle for long.
const CHUNK_TIME: Duration = Duration::from_micros(100);

/// A running chunk looks whether the map was stopped (an error, a drop, a
/// release) before every this many inputs: a look walks the token's
/// parents, which for inputs of a nanosecond cost as much as the inputs
/// at 8 (11 % of the workers' time in a profile of the `map` bench); a
/// chunk of slow inputs is small (`CHUNK_TIME`) and looks at its start.
const STOP_CHECK_EVERY: usize = 64;

/// The default window holds about this many bytes of inputs and results
/// (their inline size): 2 MiB, so that small inputs go out in chunks large
/// enough to cost the pool nothing per input (measured on 2 workers with a
/// nanosecond closure: a window of 128 inputs moved 5-8 M inputs/s, 4,096
/// about 50 M/s, 16,384 and more 65-87 M/s)...
const WINDOW_BYTES: usize = 2 << 20;
/// ...and at least this many inputs per unit of capacity, so that large
/// inputs still keep every worker busy...
const WINDOW_PER_WORKER: usize = 64;
/// ...and at most this many.
const MAX_DEFAULT_WINDOW: usize = 1 << 20;

/// The default window for inputs of type `In` and results of type `T`.
fn default_window<In, T>(workers: usize) -> usize {
    let per_input = std::mem::size_of::<In>() + std::mem::size_of::<Result<T, TaskError>>();
    (WINDOW_BYTES / per_input.max(1))
        .max(workers.saturating_mul(WINDOW_PER_WORKER))
        .min(MAX_DEFAULT_WINDOW)
}

/// What a [`Map`] sends its chunks to.
#[derive(Clone, Copy)]
enum Target<'p> {
    Pool(&'p Pool),
    Multi(&'p MultiPool),
}

impl<'p> Target<'p> {
    /// Its pools: one, or a multi-pool's.
    fn pools(self) -> &'p [Pool] {
        match self {
            Target::Pool(pool) => std::slice::from_ref(pool),
            Target::Multi(pools) => pools.pools(),
        }
    }

    /// How many chunks may run at once: the capacity, or, for an unbounded
    /// pool, the machine's parallelism.
    fn workers(self) -> usize {
        let capacity = match self {
            Target::Pool(pool) => pool.capacity(),
            Target::Multi(pools) => pools.capacity(),
        };
        capacity.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get)
        })
    }

    /// The map's token: a child of each pool's root, so that `release`
    /// cancels the chunks as it does any task.
    fn token(self) -> CancelToken {
        match self.pools() {
            [pool] => pool.inner.new_task_token(&[]),
            pools => {
                let roots: Vec<CancelToken> = pools
                    .iter()
                    .map(|pool| pool.inner.new_task_token(&[]))
                    .collect();
                CancelToken::with_parents(roots.iter().collect())
            }
        }
    }

    /// Where a panic of the closure is counted (a multi-pool's figures are
    /// the sum of its pools', so its first pool counts them), and whose
    /// task deadline the chunks get (a multi-pool's pools share options).
    fn first(self) -> &'p Arc<Inner> {
        &self.pools()[0].inner
    }

    /// Whether the caller is a worker of these pools.
    fn is_worker(self) -> bool {
        self.pools()
            .iter()
            .any(|pool| crate::pool::worker::is_worker_of(&pool.inner))
    }

    /// Submits a prepared chunk, as `wait` says; on a refusal the chunk
    /// stays the caller's.
    fn submit(self, chunk: &Prepared, wait: Wait) -> Result<TaskHandle<()>, PoolError> {
        match self {
            Target::Pool(pool) => {
                pool.inner
                    .submit_job(Arc::clone(&chunk.job), chunk.deadline, wait)?;
                Ok(chunk.handle_on(pool))
            }
            Target::Multi(pools) if matches!(wait, Wait::Probe | Wait::No) => {
                pools.probe_tracked(&chunk.job, &chunk.outcome, chunk.deadline)
            }
            Target::Multi(pools) => pools.place_tracked(&chunk.job, &chunk.outcome, chunk.deadline),
        }
    }
}

/// A chunk made and not yet accepted: kept across a refusal, to be
/// submitted again.
struct Prepared {
    seq: u64,
    len: usize,
    job: Arc<dyn Job>,
    outcome: Arc<dyn Outcome<()>>,
    deadline: Option<Deadline>,
}

impl Prepared {
    /// Its handle, once `pool` has taken it.
    fn handle_on(&self, pool: &Pool) -> TaskHandle<()> {
        TaskHandle::new(
            Arc::clone(&self.outcome),
            Arc::clone(&pool.inner) as job::SharedHost,
        )
    }
}

/// What a chunk reports, once.
enum Report<T> {
    /// It ran: the values of the inputs it reached that returned, the
    /// panics of those that did not (by position), how many it reached (it
    /// stops early when the map is stopped), and how long it took.
    Ran {
        values: Vec<T>,
        panics: VecDeque<(usize, TaskError)>,
        reached: usize,
        elapsed: Duration,
    },
    /// It never ran, for this reason (`Cancelled` or `DeadlineExceeded`).
    NotRun(TaskError),
}

/// A chunk's results, yielded in input order: the values of the inputs
/// that returned, and apart the few inputs without one (a panic, or not
/// reached), so that a chunk of `u64`s moves 8 bytes an input between the
/// worker and the caller, not the 24 of a `Result<u64, TaskError>`.
struct Results<T> {
    values: std::vec::IntoIter<T>,
    /// Inputs that panicked, by position in the chunk, in order.
    panics: VecDeque<(usize, TaskError)>,
    /// Inputs from here on were not reached, for this reason.
    reached: usize,
    missed: TaskError,
    /// The position of the next input to yield, and of the last.
    at: usize,
    len: usize,
    /// Inputs before this one yield the next value without a look at
    /// `panics` or `reached`.
    clear: usize,
}

impl<T> Results<T> {
    fn new(
        values: Vec<T>,
        panics: VecDeque<(usize, TaskError)>,
        reached: usize,
        missed: TaskError,
        len: usize,
    ) -> Self {
        let mut results = Results {
            values: values.into_iter(),
            panics,
            reached: reached.min(len),
            missed,
            at: 0,
            len,
            clear: 0,
        };
        results.clear = results.next_stop();
        results
    }

    fn empty() -> Self {
        Results::new(Vec::new(), VecDeque::new(), 0, TaskError::Cancelled, 0)
    }

    /// Where the run of plain values from `at` ends.
    fn next_stop(&self) -> usize {
        let panic = self.panics.front().map_or(self.len, |&(at, _)| at);
        panic.min(self.reached)
    }

    /// The next result if it is a value: the common case, in a few
    /// instructions.
    #[inline]
    fn next_value(&mut self) -> Option<T> {
        if self.at < self.clear {
            self.at += 1;
            return self.values.next();
        }
        None
    }

    /// The next result, whatever it is.
    fn next(&mut self) -> Option<Result<T, TaskError>> {
        if let Some(value) = self.next_value() {
            return Some(Ok(value));
        }
        if self.at >= self.len {
            return None;
        }
        let at = self.at;
        self.at += 1;
        let result = match self.panics.front() {
            Some(&(panicked, _)) if panicked == at => match self.panics.pop_front() {
                Some((_, error)) => Err(error),
                None => Err(again(&self.missed)),
            },
            _ if at >= self.reached => Err(again(&self.missed)),
            _ => self
                .values
                .next()
                .map_or_else(|| Err(again(&self.missed)), Ok),
        };
        self.clear = self.next_stop().max(self.at);
        Some(result)
    }

    /// Results not yet yielded.
    fn len(&self) -> usize {
        self.len - self.at
    }
}

/// Where chunks report: the caller waits here, on the condvar or as a
/// waker.
struct Reports<T> {
    state: Mutex<ReportsState<T>>,
    arrived: Condvar,
}

struct ReportsState<T> {
    reports: Vec<(u64, Report<T>)>,
    waker: Option<Waker>,
    /// The caller sleeps on the condvar: a report must notify it (a
    /// notify nobody waits for still costs a system call).
    sleeping: bool,
}

impl<T> Reports<T> {
    fn new() -> Arc<Reports<T>> {
        Arc::new(Reports {
            state: Mutex::new(ReportsState {
                reports: Vec::new(),
                waker: None,
                sleeping: false,
            }),
            arrived: Condvar::new(),
        })
    }

    fn report(&self, seq: u64, report: Report<T>) {
        let (waker, sleeping) = {
            let mut state = job::lock(&self.state);
            state.reports.push((seq, report));
            (state.waker.take(), state.sleeping)
        };
        if sleeping {
            self.arrived.notify_one();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The reports so far, without waiting.
    fn take(&self) -> Vec<(u64, Report<T>)> {
        std::mem::take(&mut job::lock(&self.state).reports)
    }

    /// The reports, waiting for one.
    fn wait(&self) -> Vec<(u64, Report<T>)> {
        let mut state = job::lock(&self.state);
        while state.reports.is_empty() {
            state.sleeping = true;
            state = self
                .arrived
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.sleeping = false;
        }
        std::mem::take(&mut state.reports)
    }

    /// The reports, or, if none yet, `waker` kept to be woken by the next.
    fn poll(&self, waker: &Waker) -> Vec<(u64, Report<T>)> {
        let mut state = job::lock(&self.state);
        if state.reports.is_empty() {
            match &mut state.waker {
                Some(kept) => kept.clone_from(waker),
                None => state.waker = Some(waker.clone()),
            }
        }
        std::mem::take(&mut state.reports)
    }
}

/// The same reason again, for each input of a chunk that never ran.
fn again(error: &TaskError) -> TaskError {
    match error {
        TaskError::DeadlineExceeded => TaskError::DeadlineExceeded,
        _ => TaskError::Cancelled,
    }
}

/// The inputs of `inputs` through `f` on a pool: made by [`Pool::map`] and
/// [`MultiPool::map`]; an `Iterator` of `Result<T, TaskError>`, in input
/// order unless [`unordered`](Self::unordered).
///
/// Inputs are pulled lazily, on the caller's thread, as room in the
/// [`window`](Self::window) frees up: a panic in the input iterator
/// reaches the caller; a panic in `f` is that input's
/// [`TaskError::Panicked`], and the others go on. Dropping the `Map`
/// cancels what has not started (its tasks never run and free their room
/// at once) and waits for nothing; an input running then finishes on its
/// worker, its result dropped.
///
/// A full pool makes the map wait for room (a nonblocking one too: the map
/// tries again as its chunks report, or after a pause). An input the pool
/// refuses (closed, or `WouldDeadlock`) comes back as
/// [`TaskError::Cancelled`]: it never ran. `release` cancels the inputs not
/// started, as it does tasks.
///
/// # Examples
///
/// ```
/// let pool = workpool::Pool::new(4)?;
/// let lengths: Vec<usize> = pool
///     .map(["a", "bb", "ccc"], |word: &str| word.len())
///     .collect::<Result<_, _>>()?;
/// assert_eq!(lengths, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a map does nothing until it is iterated"]
pub struct Map<'p, I: Iterator, F, T> {
    target: Target<'p>,
    inputs: std::iter::Fuse<I>,
    f: Arc<F>,
    token: CancelToken,
    window: usize,
    ordered: bool,
    stop_on_error: bool,
    /// The size of the next chunk.
    chunk: usize,
    workers: usize,
    /// The number of the next chunk made (from 1).
    next_seq: u64,
    /// Ordered: the number of the chunk whose results come next.
    next_out: u64,
    /// The chunks submitted and not yet reported, with their handles (none
    /// for a chunk refused, which reports itself).
    flights: HashMap<u64, (usize, Option<TaskHandle<()>>)>,
    /// Inputs pulled and not yet yielded.
    in_flight: usize,
    /// Ordered: results of chunks reported before an earlier one.
    early: BTreeMap<u64, Results<T>>,
    /// Results to yield, a chunk's at a time (not copied out of its `Vec`).
    ready: VecDeque<Results<T>>,
    /// The chunk being yielded, taken from the front of `ready`: apart, so
    /// that `next` yields from it in a few instructions.
    current: Results<T>,
    reports: Arc<Reports<T>>,
    /// The first chunk that hit an error, when `stop_on_error` (`u64::MAX`:
    /// none); chunks after it stop (unordered: all stop).
    stop: Arc<AtomicU64>,
    /// A chunk refused as `Overloaded` while others of this map were in
    /// flight: submitted again once one of them reports.
    parked: Option<Prepared>,
    /// Async: a chunk waiting for room in this pool.
    submitting: Option<(Prepared, SubmitAsync<'p>, &'p Pool)>,
    /// Stopped by an error (`stop_on_error`): nothing more comes.
    ended: bool,
    /// Tries in a row that found the pool full with nothing of ours in
    /// flight (`pause_for_room`).
    full_rounds: u32,
    /// The inputs are all pulled.
    drained: bool,
    /// Where a panic of `f` is counted.
    counter: Arc<Inner>,
    /// The deadline of each chunk: the pool's task deadline, if any.
    deadline: Option<Deadline>,
}

impl<'p, I, F, T> Map<'p, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    fn new(target: Target<'p>, inputs: I, f: F) -> Self {
        let workers = target.workers().max(1);
        Map {
            target,
            inputs: inputs.fuse(),
            f: Arc::new(f),
            token: target.token(),
            window: default_window::<I::Item, T>(workers),
            ordered: true,
            stop_on_error: false,
            chunk: 1,
            workers,
            next_seq: 1,
            next_out: 1,
            flights: HashMap::new(),
            in_flight: 0,
            early: BTreeMap::new(),
            ready: VecDeque::new(),
            current: Results::empty(),
            reports: Reports::new(),
            stop: Arc::new(AtomicU64::new(u64::MAX)),
            parked: None,
            submitting: None,
            ended: false,
            full_rounds: 0,
            drained: false,
            counter: Arc::clone(target.first()),
            deadline: target.first().spec::<()>(None).deadline,
        }
    }

    pub(crate) fn on_pool(pool: &'p Pool, inputs: I, f: F) -> Self {
        Map::new(Target::Pool(pool), inputs, f)
    }

    pub(crate) fn on_multi(pools: &'p MultiPool, inputs: I, f: F) -> Self {
        Map::new(Target::Multi(pools), inputs, f)
    }

    /// At most `window` inputs in flight: pulled from the inputs and not
    /// yet yielded (queued, running, or finished and waiting for an
    /// earlier one); the map's memory is bounded by it. Default: as many
    /// as fit in 2 MiB by the inline size of an input and its result (at
    /// least 64 per unit of the pool's capacity, at most 2^20): 52,428
    /// `u64`s to `u64`s. The window also bounds the chunks inputs go out
    /// in (at most a quarter of it per worker), so a small window costs a
    /// fast closure its speed; a slow closure never needs a large one
    /// (its chunks stay small, one or two inputs per worker in flight).
    /// `0` is read as 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let pool = workpool::Pool::new(4)?;
    /// let pulled = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&pulled);
    /// let inputs = (0..1_000).inspect(move |_| { counted.fetch_add(1, Ordering::SeqCst); });
    /// let mut squares = pool.map(inputs, |n: u64| n * n).window(8);
    /// assert_eq!(squares.next().unwrap()?, 0);
    /// assert!(pulled.load(Ordering::SeqCst) <= 8, "never more than the window ahead");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// Yields results as they finish instead of in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let mut squares: Vec<u64> = pool
    ///     .map(1..=100u64, |n| n * n)
    ///     .unordered()
    ///     .collect::<Result<_, _>>()?;
    /// squares.sort_unstable();
    /// assert_eq!(squares, (1..=100u64).map(|n| n * n).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// Ends the map at the first error (a panic of `f`, or an input
    /// cancelled): it is the last item yielded; the inputs not started
    /// never run, and no more inputs are pulled. In order, every input
    /// before the failing one still yields its result; unordered, what
    /// finished before it.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let results: Vec<_> = pool
    ///     .map(0..1_000_000u32, |n| if n == 10 { panic!("bad input") } else { n })
    ///     .stop_on_error()
    ///     .collect();
    /// assert_eq!(results.len(), 11, "0 to 9, then the error");
    /// assert!(results[10].as_ref().unwrap_err().is_panic());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop_on_error(mut self) -> Self {
        self.stop_on_error = true;
        self
    }

    /// The map as a [`futures_core::Stream`]: it awaits results and room
    /// without blocking its executor's thread, as
    /// [`spawn_async`](Pool::spawn_async) does (inputs are still pulled on
    /// the polling thread). On a nonblocking pool or a [`MultiPool`], which
    /// keep no list of async waiters, a stream that finds no room with none
    /// of its inputs in flight yields to its executor and tries again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::pin::pin;
    /// use futures_core::Stream;
    ///
    /// let pool = workpool::Pool::new(2)?;
    /// let mut stream = pin!(pool.map(1..=3, |n: i32| n * 10).into_stream());
    /// let sum = futures_executor::block_on(async {
    ///     let mut sum = 0;
    ///     while let Some(result) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
    ///         sum += result.unwrap();
    ///     }
    ///     sum
    /// });
    /// assert_eq!(sum, 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_stream(self) -> MapStream<'p, I, F, T> {
        MapStream { map: self }
    }

    /// The largest chunk that keeps two chunks per worker in the window.
    fn max_chunk(&self) -> usize {
        (self.window / (2 * self.workers)).max(1)
    }

    /// Pulls the next chunk's inputs and makes its task; `None` once the
    /// inputs are done (or the window is full).
    fn prepare(&mut self) -> Option<Prepared> {
        let room = self.window - self.in_flight;
        let size = self.chunk.min(room).min(self.max_chunk());
        if size == 0 {
            return None;
        }
        if self.drained {
            return None;
        }
        let items: Vec<I::Item> = self.inputs.by_ref().take(size).collect();
        if items.len() < size {
            self.drained = true;
        }
        if items.is_empty() {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let len = items.len();
        let f = Arc::clone(&self.f);
        let stop = Arc::clone(&self.stop);
        let reports = Arc::clone(&self.reports);
        let (stop_on_error, ordered) = (self.stop_on_error, self.ordered);
        let counter = Arc::clone(&self.counter);
        let body = move |token: &CancelToken| {
            let started = Instant::now();
            let mut values = Vec::with_capacity(len);
            let mut panics = VecDeque::new();
            let mut items = items.into_iter();
            let mut n = 0usize;
            // One `catch_unwind` for the run of inputs, not one per input (a
            // landing pad around each call kept a closure of nanoseconds
            // from being inlined into the loop): a panic ends the run at its
            // input, which gets the panic, and the next run goes on from
            // the input after it.
            loop {
                let run = catch_unwind(AssertUnwindSafe(|| {
                    for item in items.by_ref() {
                        // Unordered, a stop stops every chunk; in order,
                        // only those after the failing one. Looked at every
                        // few inputs: for a closure of nanoseconds the look
                        // would cost as much.
                        if n % STOP_CHECK_EVERY == 0 {
                            let stopped = stop.load(Ordering::Relaxed);
                            if token.is_cancelled()
                                || stopped < seq
                                || (!ordered && stopped != u64::MAX)
                            {
                                return;
                            }
                        }
                        n += 1;
                        values.push(f(item));
                    }
                }));
                let Err(payload) = run else {
                    break;
                };
                counter.count_panic();
                panics.push_back((n - 1, TaskError::panicked(payload)));
                if stop_on_error {
                    stop.fetch_min(seq, Ordering::Relaxed);
                    break;
                }
            }
            let elapsed = started.elapsed();
            let report = Report::Ran {
                values,
                panics,
                reached: n,
                elapsed,
            };
            reports.report(seq, report);
        };
        let reports = Arc::clone(&self.reports);
        let spec = Spec {
            token: Some(self.token.clone()),
            on_complete: Some(Box::new(move |result: &Result<(), TaskError>| {
                // It ran and reported from its body; or it never ran.
                if let Err(error) = result {
                    reports.report(seq, Report::NotRun(again(error)));
                }
            })),
            deadline: self.deadline,
            ..Spec::default()
        };
        let (job, outcome) = job::tracked(body, spec);
        self.in_flight += len;
        Some(Prepared {
            seq,
            len,
            job,
            outcome,
            deadline: self.deadline,
        })
    }

    /// A chunk the pool took.
    fn accepted(&mut self, chunk: Prepared, handle: TaskHandle<()>) {
        self.flights.insert(chunk.seq, (chunk.len, Some(handle)));
    }

    /// A chunk the pool refused for good: its inputs never run.
    fn refused(&mut self, chunk: Prepared) {
        self.flights.insert(chunk.seq, (chunk.len, None));
        self.reports
            .report(chunk.seq, Report::NotRun(TaskError::Cancelled));
    }

    /// Whether another chunk may go out now.
    fn has_room(&self) -> bool {
        !self.ended
            && self.parked.is_none()
            && self.submitting.is_none()
            && self.in_flight < self.window
            && self.flights.len() < 2 * self.workers
    }

    /// Sends out chunks while the window has room, blocking for room in
    /// the pool as `submit` does.
    fn top_up(&mut self) {
        if let Some(chunk) = self.parked.take() {
            self.send(chunk, Wait::Block);
        }
        while self.has_room() {
            let Some(chunk) = self.prepare() else {
                return;
            };
            self.send(chunk, Wait::Block);
        }
    }

    fn send(&mut self, chunk: Prepared, wait: Wait) {
        match self.target.submit(&chunk, wait) {
            Ok(handle) => {
                self.full_rounds = 0;
                self.accepted(chunk, handle);
            }
            // Full (a nonblocking pool, or too many blocked submitters):
            // tried again once a chunk of ours reports, or, with none in
            // flight, after a pause (`pause_for_room`).
            Err(PoolError::Overloaded) => self.parked = Some(chunk),
            Err(_) => self.refused(chunk),
        }
    }

    /// A nonblocking pool was full and none of this map's chunks is in
    /// flight, so no report will say when to try again: the map waits as
    /// a blocking submit would, but by polling (a nonblocking pool keeps
    /// no list of blocked submitters), backing off from a spin to 1 ms.
    fn pause_for_room(&mut self) {
        self.full_rounds += 1;
        if self.full_rounds < 8 {
            std::thread::yield_now();
        } else {
            let micros = 50u64 << (self.full_rounds - 8).min(5);
            std::thread::sleep(Duration::from_micros(micros.min(1_000)));
        }
    }

    /// On a worker of the pool, waiting for the chunks could wait for
    /// ever: they may be queued behind the caller's own task. Instead the
    /// caller joins its earliest chunk, which runs it here if it has not
    /// started (a helping join) and otherwise waits for the worker that
    /// runs it.
    fn help(&mut self) {
        let earliest = self
            .flights
            .iter_mut()
            .filter(|(_, (_, handle))| handle.is_some())
            .min_by_key(|(seq, _)| **seq)
            .and_then(|(_, (_, handle))| handle.take());
        match earliest {
            // The chunk reports from its body, or from its callback.
            Some(handle) => drop(handle.join()),
            // Only refused chunks, which reported at once.
            None => {
                let reports = self.reports.wait();
                self.file(reports);
            }
        }
    }

    /// Files `reports`: their results go to `ready`, in order if ordered.
    fn file(&mut self, reports: Vec<(u64, Report<T>)>) {
        for (seq, report) in reports {
            let Some((len, _handle)) = self.flights.remove(&seq) else {
                continue;
            };
            let results = match report {
                Report::Ran {
                    values,
                    panics,
                    reached,
                    elapsed,
                } => {
                    self.adapt(reached, elapsed);
                    Results::new(values, panics, reached, TaskError::Cancelled, len)
                }
                // The same reason for each input.
                Report::NotRun(error) => Results::new(Vec::new(), VecDeque::new(), 0, error, len),
            };
            if self.ordered {
                self.early.insert(seq, results);
            } else {
                self.ready.push_back(results);
            }
        }
        if self.ordered {
            while let Some(results) = self.early.remove(&self.next_out) {
                self.ready.push_back(results);
                self.next_out += 1;
            }
        }
    }

    /// The next chunk's size, from how long `ran` inputs took.
    fn adapt(&mut self, ran: usize, elapsed: Duration) {
        if ran == 0 {
            return;
        }
        if ran >= self.chunk && elapsed < CHUNK_TIME {
            self.chunk = (self.chunk * 2).min(self.max_chunk());
        } else if elapsed > 4 * CHUNK_TIME && self.chunk > 1 {
            self.chunk /= 2;
        }
    }

    /// The next ready result, counted out of the window; ends the map at
    /// an error when `stop_on_error`.
    fn yield_ready(&mut self) -> Option<Result<T, TaskError>> {
        let result = loop {
            if let Some(result) = self.current.next() {
                break result;
            }
            self.current = self.ready.pop_front()?;
        };
        self.in_flight -= 1;
        if result.is_err() && self.stop_on_error {
            self.stop();
        }
        Some(result)
    }

    /// Nothing more comes: what has not started never runs.
    fn stop(&mut self) {
        self.ended = true;
        self.stop.store(0, Ordering::Relaxed);
        self.cancel_flights();
        self.flights.clear();
        self.ready.clear();
        self.current = Results::empty();
        self.early.clear();
        self.parked = None;
        self.submitting = None;
    }

    /// Whether everything pulled has been yielded and nothing is left.
    fn is_done(&self) -> bool {
        self.ended
            || (self.drained
                && self.flights.is_empty()
                && self.current.len() == 0
                && self.ready.iter().all(|chunk| chunk.len() == 0)
                && self.parked.is_none()
                && self.submitting.is_none())
    }

    /// Async: sends out chunks while there is room, never blocking; a
    /// chunk that finds the pool full waits for room as a future (or, with
    /// chunks of ours in flight, for one of them).
    fn top_up_async(&mut self, cx: &mut Context<'_>) {
        if let Some((chunk, mut submit, pool)) = self.submitting.take() {
            match Pin::new(&mut submit).poll(cx) {
                Poll::Pending => {
                    self.submitting = Some((chunk, submit, pool));
                    return;
                }
                Poll::Ready(result) => {
                    drop(submit);
                    self.after_async_submit(pool, chunk, result);
                }
            }
        }
        if let Some(chunk) = self.parked.take() {
            self.send_async(chunk, cx);
        }
        while self.has_room() {
            let Some(chunk) = self.prepare() else {
                return;
            };
            self.send_async(chunk, cx);
        }
    }

    fn send_async(&mut self, chunk: Prepared, cx: &mut Context<'_>) {
        match self.target.submit(&chunk, Wait::Probe) {
            Ok(handle) => self.accepted(chunk, handle),
            Err(PoolError::Overloaded) if !self.flights.is_empty() => self.parked = Some(chunk),
            Err(PoolError::Overloaded) => match self.target {
                Target::Pool(pool) if !pool.inner.is_nonblocking() => {
                    self.submit_when_room(pool, chunk, cx);
                }
                // Nothing of ours in flight and no list of waiters to join
                // (a nonblocking pool, a multi-pool): yield to the executor
                // and try again (as `pause_for_room` does).
                _ => {
                    self.parked = Some(chunk);
                    cx.waker().wake_by_ref();
                }
            },
            Err(_) => self.refused(chunk),
        }
    }

    /// Submits `chunk` as a future that waits for room in `pool`.
    fn submit_when_room(&mut self, pool: &'p Pool, chunk: Prepared, cx: &mut Context<'_>) {
        let task = crate::pool::task::Task::tracked(Arc::clone(&chunk.job));
        let armed = chunk.deadline.map(|d| (d, Arc::clone(&chunk.job)));
        let mut submit = SubmitAsync::new(&pool.inner, task, armed);
        match Pin::new(&mut submit).poll(cx) {
            Poll::Pending => self.submitting = Some((chunk, submit, pool)),
            Poll::Ready(result) => self.after_async_submit(pool, chunk, result),
        }
    }

    fn after_async_submit(
        &mut self,
        pool: &'p Pool,
        chunk: Prepared,
        result: Result<(), PoolError>,
    ) {
        match result {
            Ok(()) => {
                let handle = chunk.handle_on(pool);
                self.accepted(chunk, handle);
            }
            Err(_) => self.refused(chunk),
        }
    }

    /// The answer that needs no waiting: a result ready (after filing the
    /// reports that came), or the end; `None` if there is neither yet.
    fn answer_now(&mut self) -> Option<Option<Result<T, TaskError>>> {
        loop {
            if let Some(result) = self.yield_ready() {
                return Some(Some(result));
            }
            if self.is_done() {
                return Some(None);
            }
            let reports = self.reports.take();
            if reports.is_empty() {
                return None;
            }
            self.file(reports);
        }
    }

    fn poll_next_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, TaskError>>> {
        loop {
            if let Some(answer) = self.answer_now() {
                return Poll::Ready(answer);
            }
            self.top_up_async(cx);
            if self.is_done() {
                return Poll::Ready(None);
            }
            let reports = self.reports.poll(cx.waker());
            if reports.is_empty() {
                return Poll::Pending;
            }
            self.file(reports);
        }
    }
}

impl<I, F, T> Iterator for Map<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The common case, inlined into the caller's loop: a value of the
        // chunk being yielded.
        if let Some(value) = self.current.next_value() {
            self.in_flight -= 1;
            return Some(Ok(value));
        }
        self.next_slow()
    }
}

impl<I, F, T> Map<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    /// `next` once the chunk being yielded is done: the next chunk, and
    /// chunks sent out to keep the window full.
    #[inline(never)]
    fn next_slow(&mut self) -> Option<Result<T, TaskError>> {
        loop {
            if let Some(answer) = self.answer_now() {
                return answer;
            }
            self.top_up();
            if self.is_done() {
                return None;
            }
            if self.flights.is_empty() && self.parked.is_some() {
                self.pause_for_room();
                continue;
            }
            if self.target.is_worker() {
                self.help();
                continue;
            }
            let reports = self.reports.wait();
            self.file(reports);
        }
    }
}

impl<I: Iterator, F, T> Map<'_, I, F, T> {
    /// Cancels the chunks not started: their tasks never run and free
    /// their room at once; running ones see the token between inputs.
    fn cancel_flights(&self) {
        self.token.cancel();
        for handle in self
            .flights
            .values()
            .filter_map(|(_, handle)| handle.as_ref())
        {
            let _ = handle.cancel();
        }
    }
}

impl<I: Iterator, F, T> Drop for Map<'_, I, F, T> {
    fn drop(&mut self) {
        self.cancel_flights();
    }
}

impl<I: Iterator, F, T> fmt::Debug for Map<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("window", &self.window)
            .field("ordered", &self.ordered)
            .field("stop_on_error", &self.stop_on_error)
            .field("in_flight", &self.in_flight)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

/// A [`Map`] as a [`futures_core::Stream`]: made by
/// [`Map::into_stream`].
#[must_use = "streams do nothing unless polled"]
pub struct MapStream<'p, I: Iterator, F, T> {
    map: Map<'p, I, F, T>,
}

// The stream never pins what it holds (its one future, a `SubmitAsync`, is
// `Unpin` itself): it may move whatever `I`, `F` and `T` are.
impl<I: Iterator, F, T> Unpin for MapStream<'_, I, F, T> {}

impl<I, F, T> futures_core::Stream for MapStream<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.map.poll_next_result(cx)
    }
}

impl<I: Iterator, F, T> fmt::Debug for MapStream<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapStream").field(&self.map).finish()
    }
}
