//! A submitter thread: a random mix of every way in, each task tracked in
//! the ledger. The operations where two features meet are in `seams`.

mod seams;

use super::ledger::{Id, Ledger, Rec, Tracked, C};
use super::DELIBERATE;
use seams::Block;
use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};
use workpool::{
    BatchHandle, CancelToken, MultiPool, Pool, PoolError, Retry, TaskHandle, TrySubmitError,
};

/// Accepted tasks without a handle that tasks submitted (not the submitter
/// itself): the submitter adopts them into its own list, and the final
/// drain takes what is left once every handle has finished.
pub(crate) type Adopted = Arc<Mutex<Vec<Arc<Rec>>>>;

/// What every task with a handle returns: attempts made (retried tasks) or 0.
pub(crate) type Out = Result<u32, u32>;

/// Handles a submitter keeps before it waits for the oldest.
const MAX_HANDLES: usize = 128;

/// How long a handle may take once the soak waits for it.
pub(crate) const HANDLE_PATIENCE: Duration = Duration::from_secs(60);

/// An accepted task without a handle that has neither run nor been
/// reported cancelled this long after it was accepted is lost: tasks take
/// at most a few ms, and every release drains the queue.
const LOST_AFTER: Duration = Duration::from_secs(30);

/// xorshift64*: enough randomness for a mix, and no dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds differ at once.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A short task's work: a few microseconds of arithmetic.
fn spin(iterations: u32) {
    let mut x = 0u64;
    for i in 0..iterations {
        x = x.wrapping_add(black_box(u64::from(i)));
    }
    black_box(x);
}

/// What a task does: short CPU work, or a sleep of up to a few ms.
#[derive(Debug, Clone, Copy)]
enum Work {
    Spin(u32),
    Sleep(u32),
}

impl Work {
    fn run(self) {
        match self {
            Work::Spin(n) => spin(n),
            Work::Sleep(us) => thread::sleep(Duration::from_micros(u64::from(us))),
        }
    }
}

/// A handle the submitter holds until the task ends.
pub(crate) enum Pending {
    One {
        rec: Arc<Rec>,
        handle: TaskHandle<Out>,
        /// What `cancel()` returned, for a `spawn` cancelled by the soak.
        stopped: Option<bool>,
        /// For a retried task: the attempt that succeeds, and the most.
        retry: Option<(u32, u32)>,
    },
    Batch {
        recs: Vec<Arc<Rec>>,
        handle: BatchHandle<Out>,
    },
    /// A task that returns a 4 KiB block, every byte `fill`.
    Block {
        rec: Arc<Rec>,
        handle: TaskHandle<Block>,
        fill: u8,
    },
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::One { rec, .. } | Pending::Block { rec, .. } => {
                write!(f, "handle of task {}", rec.id())
            }
            Pending::Batch { recs, .. } => write!(
                f,
                "batch handle of tasks {}..",
                recs.first().map(|r| r.id().to_string()).unwrap_or_default()
            ),
        }
    }
}

impl Pending {
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            Pending::One { handle, .. } => handle.is_finished(),
            Pending::Batch { handle, .. } => handle.is_finished(),
            Pending::Block { handle, .. } => handle.is_finished(),
        }
    }

    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        match self {
            Pending::One { handle, .. } => handle.wait_timeout(timeout),
            Pending::Batch { handle, .. } => handle.wait_timeout(timeout),
            Pending::Block { handle, .. } => handle.wait_timeout(timeout),
        }
    }

    /// The tasks it stands for: counted lost if it never finishes.
    pub(crate) fn recs(&self) -> Vec<Arc<Rec>> {
        match self {
            Pending::One { rec, .. } | Pending::Block { rec, .. } => vec![Arc::clone(rec)],
            Pending::Batch { recs, .. } => recs.clone(),
        }
    }

    /// Joins a finished handle and checks what it says.
    pub(crate) fn resolve(self) {
        match self {
            Pending::One {
                rec,
                handle,
                stopped,
                retry,
            } => {
                let result = handle.join();
                rec.report(&result);
                let cancelled = matches!(&result, Err(e) if e.is_cancelled());
                match stopped {
                    Some(true) if !cancelled => rec.mismatch(format_args!(
                        "cancel() said it stopped the task before it started, \
                         but its handle says {result:?}"
                    )),
                    Some(false) if cancelled => rec.mismatch(format_args!(
                        "cancel() said it was too late, but its handle says {result:?}"
                    )),
                    _ => {}
                }
                if let (Some((succeeds_at, most)), Ok(out)) = (retry, &result) {
                    let fine = match *out {
                        Ok(n) => n == succeeds_at && n <= most,
                        // All attempts failed, or a release ended the waits.
                        Err(n) => n >= 1 && n < succeeds_at && n <= most,
                    };
                    if !fine {
                        rec.mismatch(format_args!(
                            "retried (succeeds at attempt {succeeds_at}, at most \
                             {most} attempts), its handle says {out:?}"
                        ));
                    }
                }
            }
            Pending::Batch { recs, handle } => {
                let results = handle.join();
                if results.len() != recs.len() {
                    if let Some(rec) = recs.first() {
                        rec.mismatch(format_args!(
                            "a batch of {} gave {} results",
                            recs.len(),
                            results.len()
                        ));
                    }
                }
                for (rec, result) in recs.iter().zip(&results) {
                    rec.report(result);
                }
            }
            Pending::Block { rec, handle, fill } => {
                let result = handle
                    .join()
                    .map(|block| seams::check_block(&rec, &block, fill));
                if matches!(&result, Err(e) if e.is_deadline()) {
                    rec.count(C::DeadlineExceeded);
                }
                rec.report(&result);
            }
        }
    }
}

/// What a submitter leaves for the final drain.
#[derive(Debug, Default)]
pub(crate) struct Leftovers {
    /// Accepted tasks without a handle, not yet seen to run.
    pub(crate) plain: Vec<Arc<Rec>>,
    /// Handles not yet joined, the hung ones included.
    pub(crate) handles: Vec<Pending>,
    /// Where tasks still running may put more plain tasks: read once their
    /// handles have finished.
    pub(crate) adopted: Adopted,
}

/// A waker that does nothing, for polling a future once by hand.
struct NoWake;

impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// One submitter thread.
#[derive(Debug)]
pub(crate) struct Submitter {
    thread: u16,
    ledger: &'static Ledger,
    pool: Pool,
    /// The multi-pool, on the odd-numbered threads.
    multi: Option<MultiPool>,
    /// The multi-pool whose tasks spawn and join on it, on every thread.
    cross: MultiPool,
    adopted: Adopted,
    rng: Rng,
    seq: u64,
    /// Accepted tasks without a handle, with when they were accepted.
    plain: Vec<(Instant, Arc<Rec>)>,
    prune_at: usize,
    handles: VecDeque<Pending>,
    stuck: Vec<Pending>,
}

impl Submitter {
    pub(crate) fn new(
        thread: u16,
        ledger: &'static Ledger,
        pool: Pool,
        multi: Option<MultiPool>,
        cross: MultiPool,
        seed: u64,
    ) -> Submitter {
        Submitter {
            thread,
            ledger,
            pool,
            multi,
            cross,
            adopted: Adopted::default(),
            rng: Rng::new(seed ^ (u64::from(thread) << 32)),
            seq: 0,
            plain: Vec::new(),
            prune_at: 4096,
            handles: VecDeque::new(),
            stuck: Vec::new(),
        }
    }

    /// Submits until `stop`, then hands over what is still in flight.
    pub(crate) fn run(mut self, stop: &AtomicBool) -> Leftovers {
        while !stop.load(Ordering::Relaxed) {
            self.step();
            self.reap();
        }
        let mut handles: Vec<Pending> = self.handles.into_iter().collect();
        handles.append(&mut self.stuck);
        Leftovers {
            plain: self.plain.into_iter().map(|(_, rec)| rec).collect(),
            handles,
            adopted: self.adopted,
        }
    }

    fn track(&mut self, kind: &'static str, must_run: bool) -> (Tracked, Arc<Rec>) {
        self.seq += 1;
        let id = Id {
            thread: self.thread,
            seq: self.seq,
            sub: 0,
        };
        Tracked::new(self.ledger, id, kind, must_run)
    }

    /// A task's work: `long_percent` in 100 sleep 50 µs to 3 ms (evenly on
    /// a log scale, so most of them well under 1 ms), the others spin for up
    /// to a few µs.
    fn work(&mut self, long_percent: u64) -> Work {
        if self.rng.chance(long_percent) {
            let fraction = self.rng.below(1 << 20) as f64 / f64::from(1 << 20);
            Work::Sleep((50.0 * 60f64.powf(fraction)) as u32)
        } else {
            Work::Spin(self.rng.below(4000) as u32)
        }
    }

    /// Keeps an accepted task without a handle until it is seen to run (or
    /// be reported cancelled); one unresolved for [`LOST_AFTER`] is lost.
    fn keep(&mut self, rec: Arc<Rec>) {
        let now = Instant::now();
        self.plain.push((now, rec));
        if self.plain.len() >= self.prune_at {
            self.plain.retain(|(accepted, rec)| {
                if rec.is_resolved() {
                    return false;
                }
                let age = now.saturating_duration_since(*accepted);
                if age < LOST_AFTER {
                    return true;
                }
                rec.lose(format_args!(
                    "accepted {} s ago, and since neither run nor reported cancelled",
                    age.as_secs()
                ));
                false
            });
            self.prune_at = (self.plain.len() * 2).max(4096);
        }
    }

    fn hold(&mut self, pending: Pending) {
        self.handles.push_back(pending);
    }

    /// Holds the handle of a task once accepted, or counts why it was
    /// refused.
    fn hold_spawned(&mut self, rec: Arc<Rec>, spawned: Result<TaskHandle<Out>, PoolError>) {
        match spawned {
            Ok(handle) => {
                rec.accepted();
                self.hold(Pending::One {
                    rec,
                    handle,
                    stopped: None,
                    retry: None,
                });
            }
            Err(e) => self.refused(&rec, &e),
        }
    }

    /// Joins the handles that have finished, oldest first, and waits for
    /// the oldest while too many are held; adopts what tasks submitted.
    fn reap(&mut self) {
        let adopted = std::mem::take(&mut *lock(&self.adopted));
        for rec in adopted {
            self.keep(rec);
        }
        for _ in 0..8 {
            match self.handles.front() {
                Some(p) if p.is_finished() => {
                    if let Some(p) = self.handles.pop_front() {
                        p.resolve();
                    }
                }
                _ => break,
            }
        }
        while self.handles.len() > MAX_HANDLES {
            let Some(p) = self.handles.pop_front() else {
                break;
            };
            if p.wait(HANDLE_PATIENCE) {
                p.resolve();
            } else {
                self.ledger.fail(format!(
                    "the {p:?} did not finish within {} s (a hang?)",
                    HANDLE_PATIENCE.as_secs()
                ));
                self.stuck.push(p);
            }
        }
    }

    /// The outcome of a plain submit.
    fn submitted(&mut self, rec: Arc<Rec>, result: Result<(), PoolError>) {
        match result {
            Ok(()) => {
                rec.accepted();
                self.keep(rec);
            }
            Err(e) => self.refused(&rec, &e),
        }
    }

    fn refused(&self, rec: &Rec, error: &PoolError) {
        rec.refused();
        self.refusal(rec.id(), error);
    }

    /// Counts a refusal's reason; only `Closed` and `Timeout` are expected.
    fn refusal(&self, id: Id, error: &PoolError) {
        let shard = usize::from(self.thread);
        match error {
            PoolError::Closed => self.ledger.add(shard, C::Closed, 1),
            PoolError::Timeout => self.ledger.add(shard, C::TimedOut, 1),
            other => self.ledger.fail(format!(
                "task {id}: refused with an unexpected error: {other}"
            )),
        }
    }

    fn step(&mut self) {
        if self.rng.chance(seams::PERCENT) {
            self.seam_step();
            return;
        }
        let roll = self.rng.below(100);
        let multi = self.multi.is_some() && self.rng.chance(50);
        match roll {
            0..=34 => {
                let work = self.work(0);
                self.submit(work, multi, false);
            }
            35..=41 => {
                let work = self.work(100);
                self.submit(work, multi, false);
            }
            42..=43 => self.submit(Work::Spin(0), multi, true),
            44..=51 => self.spawn(multi, false, false),
            52..=56 => self.spawn(multi, true, false),
            57..=58 => self.spawn(multi, false, true),
            59..=63 => self.deadline_task(),
            64..=66 => self.retry_task(),
            67..=70 => self.spawn_batch(),
            71..=73 => self.batch_with_callback(),
            74..=75 => self.scope(),
            76 => self.scope_in_task(),
            77..=80 => self.async_submits(),
            81 => self.abandoned_async_submit(),
            82..=87 => self.try_submit_burst(),
            88..=89 => self.keyed_spawn(),
            90 => self.delayed_task(),
            91 => self.map(),
            _ => self.submit_timeout(),
        }
    }

    /// `submit` (or `MultiPool::submit`): runs, panics or sleeps.
    fn submit(&mut self, work: Work, multi: bool, panics: bool) {
        let kind = match (multi, panics) {
            (false, false) => "submit",
            (false, true) => "submit, panics",
            (true, false) => "multi submit",
            (true, true) => "multi submit, panics",
        };
        let (t, rec) = self.track(kind, true);
        let task = move || {
            t.ran();
            work.run();
            if panics {
                t.panics();
                std::panic::panic_any(DELIBERATE);
            }
        };
        let result = match (&self.multi, multi) {
            (Some(pools), true) => pools.submit(task),
            _ => self.pool.submit(task),
        };
        self.submitted(rec, result);
    }

    /// `spawn`, kept to join; perhaps cancelled at once, perhaps panicking.
    fn spawn(&mut self, multi: bool, cancel: bool, panics: bool) {
        let kind = match (multi, cancel, panics) {
            (false, false, false) => "spawn",
            (false, true, _) => "spawn, cancelled",
            (false, false, true) => "spawn, panics",
            (true, false, false) => "multi spawn",
            (true, true, _) => "multi spawn, cancelled",
            (true, false, true) => "multi spawn, panics",
        };
        let (t, rec) = self.track(kind, !cancel);
        let work = self.work(15);
        let task = move || -> Out {
            t.ran();
            work.run();
            if panics {
                t.panics();
                std::panic::panic_any(DELIBERATE);
            }
            Ok(0)
        };
        let result = match (&self.multi, multi) {
            (Some(pools), true) => pools.spawn(task),
            _ => self.pool.spawn(task),
        };
        match result {
            Ok(handle) => {
                rec.accepted();
                let stopped = if cancel {
                    spin(self.rng.below(3000) as u32);
                    self.ledger.add(usize::from(self.thread), C::CancelCalls, 1);
                    Some(handle.cancel())
                } else {
                    None
                };
                self.hold(Pending::One {
                    rec,
                    handle,
                    stopped,
                    retry: None,
                });
            }
            Err(e) => self.refused(&rec, &e),
        }
    }

    /// `pool.task(..).deadline(..)`: waits on its token for up to 2 ms, with
    /// a deadline of up to 2 ms; cancelled by the deadline or a release
    /// before it starts, or cut short while it waits.
    fn deadline_task(&mut self) {
        let (t, rec) = self.track("task with a deadline", false);
        let wait = Duration::from_micros(self.rng.below(2000));
        let deadline = Duration::from_micros(self.rng.below(2000));
        let task = move |token: &CancelToken| -> Out {
            t.ran();
            token.wait_timeout(wait);
            Ok(0)
        };
        self.hold_spawned(rec, self.pool.task(task).deadline(deadline).spawn());
    }

    /// `pool.spawn_keyed(..)` on one of 8 keys: runs once, like `spawn`,
    /// and never beside another task of its key (checked by a flag per
    /// key, shared by the submitters).
    fn keyed_spawn(&mut self) {
        static RUNNING: [std::sync::atomic::AtomicBool; 8] =
            [const { std::sync::atomic::AtomicBool::new(false) }; 8];
        let (t, rec) = self.track("keyed spawn", true);
        let key = self.rng.below(8) as usize;
        let work = self.work(5);
        let task = move || -> Out {
            t.ran();
            if RUNNING[key].swap(true, Ordering::SeqCst) {
                t.mismatch(format_args!("two tasks of key {key} ran at once"));
            }
            work.run();
            RUNNING[key].store(false, Ordering::SeqCst);
            Ok(0)
        };
        self.hold_spawned(rec, self.pool.spawn_keyed(key, task));
    }

    /// `pool.task(..).delay(..)`: held by the maintenance thread for up to
    /// 2 ms, then run; cancelled by a release while it waits.
    fn delayed_task(&mut self) {
        let (t, rec) = self.track("delayed task", false);
        let delay = Duration::from_micros(self.rng.below(2000));
        let work = self.work(5);
        let task = move |_token: &CancelToken| -> Out {
            t.ran();
            work.run();
            Ok(0)
        };
        self.hold_spawned(rec, self.pool.task(task).delay(delay).spawn());
    }

    /// `pool.map(..)` over up to 40 inputs, each a tracked task, in order,
    /// one perhaps panicking, in a window of up to 16: each result is its
    /// input's, a release cancels those not started.
    fn map(&mut self) {
        let n = self.rng.range(1, 41);
        let panics_at = self.rng.chance(20).then(|| self.rng.below(n));
        let window = self.rng.range(1, 17) as usize;
        let mut recs = Vec::with_capacity(n as usize);
        let mut inputs = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (t, rec) = self.track("map input", false);
            rec.accepted();
            recs.push(rec);
            inputs.push((i, t, self.work(2)));
        }
        let results: Vec<Result<Out, workpool::TaskError>> = self
            .pool
            .map(inputs, move |(i, t, work): (u64, Tracked, Work)| -> Out {
                t.ran();
                work.run();
                if Some(i) == panics_at {
                    t.panics();
                    std::panic::panic_any(DELIBERATE);
                }
                Ok(i as u32)
            })
            .window(window)
            .collect();
        if results.len() != recs.len() {
            if let Some(rec) = recs.first() {
                rec.mismatch(format_args!(
                    "a map of {} inputs gave {} results",
                    recs.len(),
                    results.len()
                ));
            }
        }
        for (i, (rec, result)) in recs.iter().zip(&results).enumerate() {
            if matches!(result, Ok(Ok(got)) if *got as usize != i) {
                rec.mismatch(format_args!("input {i} of a map gave {result:?}"));
            }
            rec.report(result);
        }
    }

    /// `pool.task(..).retry(..)`: fails until a chosen attempt (perhaps
    /// beyond the last), each attempt counted apart from the task's run;
    /// now and then cancelled at once (before its first attempt, during
    /// one, or while it waits between two, off its worker).
    fn retry_task(&mut self) {
        let cancel = self.rng.chance(20);
        let kind = if cancel {
            "retried task, cancelled"
        } else {
            "retried task"
        };
        let (t, rec) = self.track(kind, false);
        let most = self.rng.range(1, 4) as u32;
        let succeeds_at = self.rng.range(1, 5) as u32;
        let first = Duration::from_micros(self.rng.range(20, 200));
        let work = self.work(5);
        // Each attempt runs a fresh copy of the closure: the count and the
        // guard are shared by the copies (the guard goes with the last).
        let (t, attempts) = (Arc::new(t), Arc::new(AtomicU32::new(0)));
        let task = move |_: &CancelToken| -> Out {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt == 1 {
                t.ran();
            } else {
                t.retried();
            }
            work.run();
            if attempt >= succeeds_at {
                Ok(attempt)
            } else {
                Err(attempt)
            }
        };
        let retry = Retry::exponential(first)
            .max_attempts(most as usize)
            .max_delay(Duration::from_millis(2));
        match self.pool.task(task).retry(retry).spawn() {
            Ok(handle) => {
                rec.accepted();
                let stopped = cancel.then(|| handle.cancel());
                self.hold(Pending::One {
                    rec,
                    handle,
                    stopped,
                    retry: Some((succeeds_at, most)),
                });
            }
            Err(e) => self.refused(&rec, &e),
        }
    }

    /// `spawn_batch` of 1 to 16 tasks; now and then cancelled at once.
    fn spawn_batch(&mut self) {
        let cancel = self.rng.chance(20);
        let kind = if cancel {
            "spawn_batch, cancelled"
        } else {
            "spawn_batch"
        };
        let size = self.rng.range(1, 16) as usize;
        let mut recs = Vec::with_capacity(size);
        let mut tasks = Vec::with_capacity(size);
        for _ in 0..size {
            let (t, rec) = self.track(kind, !cancel);
            let work = self.work(5);
            tasks.push(move || -> Out {
                t.ran();
                work.run();
                Ok(0)
            });
            recs.push(rec);
        }
        match self.pool.spawn_batch(tasks) {
            Ok(handle) => {
                for rec in &recs {
                    rec.accepted();
                }
                if cancel {
                    self.ledger.add(usize::from(self.thread), C::CancelCalls, 1);
                    handle.cancel();
                }
                self.hold(Pending::Batch { recs, handle });
            }
            Err(e) => self.batch_refused(recs, &e),
        }
    }

    /// A batch refused partway: those accepted before the refusal were
    /// cancelled, or had started and finish.
    fn batch_refused(&mut self, recs: Vec<Arc<Rec>>, error: &PoolError) {
        if let Some(rec) = recs.first() {
            self.refusal(rec.id(), error);
        }
        for rec in recs {
            rec.either();
            self.keep(rec);
        }
    }

    /// `pool.batch(..).on_complete(..)`, detached: the callback reports each
    /// task's end; perhaps a deadline, perhaps cancelled at once.
    fn batch_with_callback(&mut self) {
        let size = self.rng.range(1, 16) as usize;
        let mut recs = Vec::with_capacity(size);
        let mut tasks = Vec::with_capacity(size);
        for _ in 0..size {
            let (t, rec) = self.track("batch with on_complete", false);
            let work = self.work(5);
            tasks.push(move |token: &CancelToken| -> Out {
                t.ran();
                if !token.is_cancelled() {
                    work.run();
                }
                Ok(0)
            });
            recs.push(rec);
        }
        let recs = Arc::new(recs);
        let told = Arc::clone(&recs);
        let mut batch = self.pool.batch(tasks).on_complete(
            move |index, result: &Result<Out, workpool::TaskError>| match told.get(index) {
                Some(rec) => rec.report(result),
                None => {
                    if let Some(rec) = told.first() {
                        rec.mismatch(format_args!(
                            "on_complete called with index {index} in a batch of {}",
                            told.len()
                        ));
                    }
                }
            },
        );
        if self.rng.chance(50) {
            batch = batch.deadline(Duration::from_micros(self.rng.below(3000)));
        }
        let cancel = self.rng.chance(10);
        match batch.spawn() {
            Ok(handle) => {
                for rec in recs.iter() {
                    rec.accepted();
                }
                if cancel {
                    self.ledger.add(usize::from(self.thread), C::CancelCalls, 1);
                    handle.cancel();
                }
                drop(handle);
                for rec in recs.iter() {
                    self.keep(Arc::clone(rec));
                }
            }
            Err(e) => self.batch_refused(recs.to_vec(), &e),
        }
    }

    /// `pool.scope`: tasks that borrow a counter on this stack.
    fn scope(&mut self) {
        let size = self.rng.range(1, 8) as usize;
        let mut recs = Vec::with_capacity(size);
        let mut guards = Vec::with_capacity(size);
        for _ in 0..size {
            let (t, rec) = self.track("scope task", true);
            guards.push((t, self.work(5)));
            recs.push(rec);
        }
        let count = AtomicU32::new(0);
        self.pool.scope(|s| {
            for (t, work) in guards {
                let count = &count;
                s.spawn(move || {
                    t.ran();
                    work.run();
                    count.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        settle_scope(&recs, count.load(Ordering::SeqCst));
    }

    /// A task that opens a scope on its own pool, from a worker.
    fn scope_in_task(&mut self) {
        let (t, rec) = self.track("task opening a scope", true);
        let pool = self.pool.clone();
        let size = self.rng.range(1, 6) as u16;
        let task = move || {
            t.ran();
            let mut recs = Vec::with_capacity(usize::from(size));
            let mut guards = Vec::with_capacity(usize::from(size));
            for sub in 1..=size {
                let id = Id { sub, ..t.id() };
                let (guard, rec) = Tracked::new(t.ledger(), id, "scope task in a task", true);
                guards.push(guard);
                recs.push(rec);
            }
            let count = AtomicU32::new(0);
            pool.scope(|s| {
                for guard in guards {
                    let count = &count;
                    s.spawn(move || {
                        guard.ran();
                        spin(500);
                        count.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            settle_scope(&recs, count.load(Ordering::SeqCst));
        };
        let result = self.pool.submit(task);
        self.submitted(rec, result);
    }

    /// `submit_async` and `spawn_async` on `futures_executor::block_on`; the
    /// handle awaited there or kept.
    fn async_submits(&mut self) {
        let (t1, rec1) = self.track("submit_async", true);
        let (t2, rec2) = self.track("spawn_async", true);
        let (w1, w2) = (self.work(10), self.work(10));
        let pool = &self.pool;
        let (submitted, spawned) = futures_executor::block_on(async {
            let submitted = pool
                .submit_async(move || {
                    t1.ran();
                    w1.run();
                })
                .await;
            let spawned = pool
                .spawn_async(move || -> Out {
                    t2.ran();
                    w2.run();
                    Ok(0)
                })
                .await;
            (submitted, spawned)
        });
        self.submitted(rec1, submitted);
        match spawned {
            Ok(handle) => {
                rec2.accepted();
                if self.rng.chance(50) {
                    let result = futures_executor::block_on(handle);
                    rec2.report(&result);
                } else {
                    self.hold(Pending::One {
                        rec: rec2,
                        handle,
                        stopped: None,
                        retry: None,
                    });
                }
            }
            Err(e) => self.refused(&rec2, &e),
        }
    }

    /// A `submit_async` polled by hand and dropped if it has to wait: the
    /// task it held must never run.
    fn abandoned_async_submit(&mut self) {
        let (t, rec) = self.track("submit_async, abandoned", true);
        let work = self.work(50);
        let waker = Waker::from(Arc::new(NoWake));
        let mut cx = Context::from_waker(&waker);
        let mut future = Box::pin(self.pool.submit_async(move || {
            t.ran();
            work.run();
        }));
        let mut polled = future.as_mut().poll(&mut cx);
        if polled.is_pending() && self.rng.chance(50) {
            thread::sleep(Duration::from_micros(50));
            polled = future.as_mut().poll(&mut cx);
        }
        match polled {
            Poll::Ready(result) => {
                drop(future);
                self.submitted(rec, result);
            }
            Poll::Pending => {
                drop(future);
                self.ledger.add(usize::from(self.thread), C::Abandoned, 1);
                rec.refused();
            }
        }
    }

    /// Up to 32 `try_submit`s until the pool is full; a closure given back
    /// is dropped, or submitted again with `submit`.
    fn try_submit_burst(&mut self) {
        let burst = self.rng.range(1, 32);
        let long = self.rng.range(0, 60);
        for _ in 0..burst {
            let (t, rec) = self.track("try_submit", true);
            let work = self.work(long);
            let task = move || {
                t.ran();
                work.run();
            };
            match self.pool.try_submit(task) {
                Ok(()) => {
                    rec.accepted();
                    self.keep(rec);
                }
                Err(refused) => {
                    let shard = usize::from(self.thread);
                    let full = refused.is_full();
                    match &refused {
                        TrySubmitError::Full(_) => self.ledger.add(shard, C::Full, 1),
                        TrySubmitError::Closed(_) => self.ledger.add(shard, C::Closed, 1),
                        other => self
                            .ledger
                            .fail(format!("task {}: try_submit refused it: {other}", rec.id())),
                    }
                    if full && self.rng.chance(50) {
                        self.ledger.add(shard, C::Resubmitted, 1);
                        let task = refused.into_inner();
                        let result = self.pool.submit(task);
                        self.submitted(rec, result);
                    } else {
                        drop(refused);
                        rec.refused();
                    }
                    if full {
                        break;
                    }
                }
            }
        }
    }

    /// `submit_timeout` with a limit of up to 300 µs.
    fn submit_timeout(&mut self) {
        let (t, rec) = self.track("submit_timeout", true);
        let work = self.work(30);
        let limit = Duration::from_micros(self.rng.below(300));
        let result = self.pool.submit_timeout(
            move || {
                t.ran();
                work.run();
            },
            limit,
        );
        self.submitted(rec, result);
    }
}

/// The list behind a mutex, even if a thread panicked holding it (the
/// vector is whole between pushes).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scope has returned: each of its tasks ran, once.
fn settle_scope(recs: &[Arc<Rec>], count: u32) {
    for rec in recs {
        rec.accepted();
        if rec.runs() == 0 {
            rec.lose(format_args!("its scope returned, but it never ran"));
        }
    }
    if count as usize != recs.len() {
        if let Some(rec) = recs.first() {
            rec.mismatch(format_args!(
                "a scope of {} tasks saw {count} of them run",
                recs.len()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rng_stays_in_range_and_varies() {
        let mut rng = Rng::new(7);
        let draws: Vec<u64> = (0..1000).map(|_| rng.range(3, 9)).collect();
        assert!(draws.iter().all(|&d| (3..=9).contains(&d)));
        for value in 3..=9 {
            assert!(draws.contains(&value), "{value} never drawn");
        }
        assert_ne!(Rng::new(1).next(), Rng::new(2).next());
    }

    #[test]
    fn a_short_mix_balances_on_a_small_pool() {
        let ledger = Ledger::leak(2);
        let pool = super::super::builder(ledger)
            .capacity(2)
            .task_deadline(Duration::from_secs(3600))
            .build()
            .expect("a pool");
        let multi = MultiPool::with_builder(
            2,
            workpool::LoadBalancing::RoundRobin,
            super::super::builder(ledger).capacity(1).queue_capacity(0),
        )
        .expect("pools");
        let cross = MultiPool::with_builder(
            2,
            workpool::LoadBalancing::RoundRobin,
            super::super::builder(ledger)
                .capacity(2)
                .queue_capacity(4)
                .task_deadline(Duration::from_secs(3600)),
        )
        .expect("pools");
        // On its own thread, bounded: a deadlock in a pool (cross-pool joins
        // once did) fails the test instead of hanging it.
        let (pools, (tx, rx)) = ((pool, multi, cross), std::sync::mpsc::channel());
        thread::spawn(move || {
            let (pool, multi, cross) = pools;
            let stop = AtomicBool::new(false);
            let mut submitter = Submitter::new(
                1,
                ledger,
                pool.clone(),
                Some(multi.clone()),
                cross.clone(),
                42,
            );
            for _ in 0..3000 {
                submitter.step();
                submitter.reap();
            }
            stop.store(true, Ordering::SeqCst);
            let left = submitter.run(&stop);
            pool.wait_idle(Duration::from_secs(30)).expect("idle");
            multi.wait_idle(Duration::from_secs(30)).expect("idle");
            cross.wait_idle(Duration::from_secs(30)).expect("idle");
            for pending in left.handles {
                assert!(pending.wait(Duration::from_secs(30)));
                pending.resolve();
            }
            for rec in left.plain.iter().chain(lock(&left.adopted).iter()) {
                assert!(rec.is_resolved(), "{rec:?}");
            }
            for pools in [&multi, &cross] {
                pools
                    .release_timeout(Duration::from_secs(30))
                    .expect("release");
            }
            pool.release_timeout(Duration::from_secs(30))
                .expect("release");
            let _ = tx.send(());
        });
        let finished = rx.recv_timeout(Duration::from_secs(120));
        assert_eq!(ledger.failures(), 0, "{:?}", ledger.notes());
        assert!(finished.is_ok(), "the mix hung (or panicked: see above)");
        let t = ledger.totals();
        assert_eq!(
            t.get(C::Accepted),
            t.get(C::Ran) + t.get(C::Cancelled),
            "{t:?}"
        );
        assert_eq!(t.get(C::PanicsThrown), t.get(C::PanicsReported), "{t:?}");
        assert!(
            t.get(C::PanickingScopes) > 0 && t.get(C::CrossJoins) > 0,
            "{t:?}"
        );
    }
}
