//! `workpool soak`: submitter threads drive a random mix of every way into
//! a `Pool` and a `MultiPool` for a while, beside tune storms and
//! release/reboot cycles, and a ledger checks every task's fate: none lost,
//! none run twice, none run once refused or reported cancelled. A second
//! `MultiPool`, the cross multi-pool, runs tasks that spawn, join and submit
//! on it. Then the pools are drained and released, and the process must be
//! back to its threads of before, with its memory within a bound. A pool
//! that finishes nothing for a while with work outstanding is hung. Linux
//! only: threads and memory come from /proc.

mod ledger;
mod mix;

use crate::probe;
use ledger::{Ledger, Totals, C};
use mix::{Leftovers, Rng, Submitter, HANDLE_PATIENCE};
use std::any::Any;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use workpool::{BuildError, LoadBalancing, MultiPool, Pool, PoolBuilder};

/// What every deliberate panic throws; anything else is a failure.
pub(crate) const DELIBERATE: &str = "soak: deliberate panic";

/// What the `Drop` of a [`PanicsOnDrop`] payload throws.
pub(crate) const DROP_PANIC: &str = "soak: deliberate panic in a panic payload's Drop";

/// A panic payload whose `Drop` panics in turn (with [`DROP_PANIC`]): a
/// scope that meets it while it waits for its tasks must still wait for all
/// of them. Counts itself made and dropped, so that a payload dropped twice
/// shows.
pub(crate) struct PanicsOnDrop {
    ledger: &'static Ledger,
    shard: usize,
}

impl PanicsOnDrop {
    pub(crate) fn new(ledger: &'static Ledger, shard: usize) -> PanicsOnDrop {
        ledger.add(shard, C::PayloadsMade, 1);
        PanicsOnDrop { ledger, shard }
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.ledger.add(self.shard, C::PayloadsDropped, 1);
        // A panic while one unwinds aborts the process, and the soak with it,
        // before it could say what happened: then the drop stays quiet.
        if !thread::panicking() {
            std::panic::panic_any(DROP_PANIC);
        }
    }
}

impl std::fmt::Debug for PanicsOnDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("PanicsOnDrop")
    }
}

/// How long the final drain may wait for each step.
const DRAIN: Duration = Duration::from_secs(60);

/// How long the pools' threads may take to leave /proc once joined.
const THREADS_GONE: Duration = Duration::from_secs(5);

/// A run with no task run for this long is hung.
const STALL: Duration = Duration::from_secs(30);

/// A pool with tasks running, queued or waiting that finishes none for this
/// long is hung (its tasks take a few ms): a deadlock inside one pool shows
/// here even while the others keep the run's count going.
const POOL_STALL: Duration = Duration::from_secs(10);

/// The thread name prefix of the cross multi-pool: its tasks read it to
/// tell on which of its pools they run.
pub(crate) const CROSS_NAME: &str = "soak-cross";

/// How far off the cross multi-pool's and the pool's `task_deadline` is:
/// never reached, so it cancels nothing (a deadline gives a task no token,
/// so a release does not cancel it either: its tasks still must run), but
/// the maintenance thread holds an entry for every task accepted with a
/// handle.
const FAR_DEADLINE: Duration = Duration::from_secs(3600);

/// In how many release/reboot cycles in 100 the cross multi-pool is one of
/// those released. Rarely: a release empties the deadline heap, and a heap
/// that keeps finished tasks must have time to grow past the RSS bound.
const CROSS_RELEASE_PERCENT: u64 = 10;

/// How long a `release_timeout` of the control thread may take: the tasks
/// are at most a few ms, so this is a hang.
const RELEASE_PATIENCE: Duration = Duration::from_secs(30);

/// The options every pool of the soak shares: deliberate panics are
/// counted, any other is a failure.
pub(crate) fn builder(ledger: &'static Ledger) -> PoolBuilder {
    Pool::builder().panic_handler(move |payload: Box<dyn Any + Send>| {
        if payload.downcast_ref::<&str>() == Some(&DELIBERATE) {
            ledger.add(0, C::PanicsReported, 1);
        } else {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a payload that is not a string".to_owned());
            ledger.fail(format!("a task panicked unexpectedly: {message}"));
        }
    })
}

/// Deliberate panics would print a message each, thousands a second; the
/// others still print. Deliberate: [`DELIBERATE`], a [`PanicsOnDrop`]
/// payload, and the panic of its `Drop` ([`DROP_PANIC`]), wherever that
/// drop happens (in the library or in the soak).
fn quiet_deliberate_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let deliberate = payload.is::<PanicsOnDrop>()
            || payload
                .downcast_ref::<&str>()
                .is_some_and(|s| *s == DELIBERATE || *s == DROP_PANIC);
        if !deliberate {
            previous(info);
        }
    }));
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Sleeps `total` in short naps; false if `stop` was set meanwhile.
fn nap(stop: &AtomicBool, total: Duration) -> bool {
    let until = Instant::now() + total;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep((until - now).min(Duration::from_millis(10)));
    }
}

/// The soak's pools, each a handle onto shared state.
#[derive(Debug, Clone)]
struct Pools {
    pool: Pool,
    multi: MultiPool,
    cross: MultiPool,
}

/// Releases `multi` as the control thread does; `name` for the failure.
fn release_multi(multi: &MultiPool, quick: bool, name: &str, ledger: &Ledger) {
    if quick {
        multi.release();
        return;
    }
    let started = Instant::now();
    if let Err(e) = multi.release_timeout(RELEASE_PATIENCE) {
        ledger.fail(format!(
            "the {name}'s release_timeout failed after {:.1} s: {e}",
            started.elapsed().as_secs_f64()
        ));
    }
}

/// The control thread: every `every` or so (0.5x to 1.5x), closes the pool,
/// the multi-pool or both (and, one time in ten, the cross multi-pool), with
/// `release_timeout` (one time in four with `release`, which does not
/// wait), leaves them closed for up to 30 ms, and reboots them. Submitters
/// meanwhile see `Closed`.
fn control(
    pools: Pools,
    ledger: &'static Ledger,
    shard: usize,
    stop: &AtomicBool,
    every: Duration,
    mut rng: Rng,
) {
    let Pools { pool, multi, cross } = pools;
    loop {
        let wait = every.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0);
        if !nap(stop, wait) {
            return;
        }
        let which = rng.below(3);
        let quick = rng.chance(25);
        let (on_pool, on_multi) = (which != 1, which != 0);
        let on_cross = rng.chance(CROSS_RELEASE_PERCENT);
        if on_pool {
            if quick {
                pool.release();
            } else {
                let started = Instant::now();
                if let Err(e) = pool.release_timeout(RELEASE_PATIENCE) {
                    ledger.fail(format!(
                        "the pool's release_timeout failed after {:.1} s: {e}",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        if on_multi {
            release_multi(&multi, quick, "multi-pool", ledger);
        }
        if on_cross {
            release_multi(&cross, quick, "cross multi-pool", ledger);
        }
        thread::sleep(Duration::from_micros(rng.below(30_000)));
        if on_pool {
            if let Err(e) = pool.reboot() {
                ledger.fail(format!("the pool's reboot failed: {e}"));
            }
        }
        if on_multi {
            if let Err(e) = multi.reboot() {
                ledger.fail(format!("the multi-pool's reboot failed: {e}"));
            }
        }
        if on_cross {
            if let Err(e) = cross.reboot() {
                ledger.fail(format!("the cross multi-pool's reboot failed: {e}"));
            }
        }
        ledger.add(shard, C::Releases, 1);
    }
}

/// The tuner: storms of 1 to 20 `tune`s, the pool between 1 and 32
/// workers, each pool of the multi-pool between 1 and 16, each of the
/// cross multi-pool between 1 and 4, every few ms.
fn tuner(pools: Pools, ledger: &'static Ledger, shard: usize, stop: &AtomicBool, mut rng: Rng) {
    let Pools { pool, multi, cross } = pools;
    loop {
        if !nap(stop, Duration::from_millis(rng.range(1, 50))) {
            return;
        }
        for _ in 0..rng.range(1, 20) {
            let results = [
                pool.tune(rng.range(1, 32) as usize),
                multi.tune(rng.range(1, 16) as usize),
                cross.tune(rng.range(1, 4) as usize),
            ];
            for result in results {
                if let Err(e) = result {
                    ledger.fail(format!("tune failed: {e}"));
                }
            }
            ledger.add(shard, C::Tunes, 3);
            if rng.chance(30) {
                thread::sleep(Duration::from_micros(rng.below(200)));
            }
        }
    }
}

/// The per-second line's figures.
struct Line<'a> {
    elapsed: Duration,
    totals: &'a Totals,
    threads: usize,
    rss_kb: u64,
    pools: &'a Pools,
}

impl Line<'_> {
    fn print(&self) {
        let t = self.totals;
        let (p, m, c) = (
            self.pools.pool.stats(),
            self.pools.multi.stats(),
            self.pools.cross.stats(),
        );
        println!(
            "soak elapsed={}s accepted={} ran={} cancelled={} refused={} lost={} \
             duplicated={} threads={} rss_mb={:.1} pool_submitted={} pool_completed={} \
             multi_submitted={} multi_completed={} cross_submitted={} cross_completed={}",
            self.elapsed.as_secs(),
            t.get(C::Accepted),
            t.get(C::Ran),
            t.get(C::Cancelled),
            t.get(C::Refused),
            t.get(C::Lost),
            t.get(C::Duplicated),
            self.threads,
            mb(self.rss_kb),
            p.submitted,
            p.completed,
            m.submitted,
            m.completed,
            c.submitted,
            c.completed,
        );
    }
}

/// Watches one pool for [`POOL_STALL`]: work outstanding, none finished.
#[derive(Debug)]
struct Progress {
    name: &'static str,
    finished: u64,
    since: Instant,
}

impl Progress {
    fn new(name: &'static str) -> Progress {
        Progress {
            name,
            finished: 0,
            since: Instant::now(),
        }
    }

    /// `finished`: the pool's tasks finished so far; `outstanding`: its
    /// work in words, `None` if it has none.
    fn check(&mut self, ledger: &Ledger, finished: u64, outstanding: Option<String>) {
        let Some(outstanding) = outstanding else {
            self.since = Instant::now();
            return;
        };
        if finished != self.finished {
            (self.finished, self.since) = (finished, Instant::now());
        } else if self.since.elapsed() >= POOL_STALL {
            ledger.fail(format!(
                "the {} finished no task for {} s (a hang?) with {outstanding}",
                self.name,
                self.since.elapsed().as_secs()
            ));
        }
    }
}

/// A pool's work outstanding in words, `None` if it has none.
fn pool_outstanding(pool: &Pool) -> Option<String> {
    let (busy, queued, waiting) = (pool.busy(), pool.queued(), pool.waiting());
    (busy + queued + waiting > 0)
        .then(|| format!("running {busy}, queued {queued}, callers waiting {waiting}: {pool:?}"))
}

/// A multi-pool's work outstanding in words, pool by pool; `None` if it has
/// none.
fn multi_outstanding(multi: &MultiPool) -> Option<String> {
    let mut any = false;
    let mut text = String::new();
    for index in 0..multi.len() {
        let busy = multi.busy_by_index(index).unwrap_or(0);
        let queued = multi.queued_by_index(index).unwrap_or(0);
        let waiting = multi.waiting_by_index(index).unwrap_or(0);
        any |= busy + queued + waiting > 0;
        let _ = write!(
            text,
            "pool {index}: running {busy}, queued {queued}, callers waiting {waiting}; "
        );
    }
    let all = multi.waiting();
    any |= all > 0;
    any.then(|| format!("{text}callers waiting in all {all}: {multi:?}"))
}

/// The names of the process's threads, from /proc/self/task/*/comm.
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut names: Vec<String> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// What one soak runs (`workpool soak`'s options).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// How long the submitters run, in seconds.
    pub(crate) secs: u64,
    /// Submitter threads; the odd-numbered ones also drive the multi-pool.
    pub(crate) threads: usize,
    /// How far the RSS may grow over its figure after the warm-up, in MiB.
    pub(crate) rss_slack_mb: u64,
    /// The seed of the random mix; `None`: from the clock.
    pub(crate) seed: Option<u64>,
}

/// Why a soak failed (each broken invariant is printed before it returns).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SoakError {
    /// One of the soak's pools could not be built.
    #[error("cannot build the {what}: {source}")]
    Build {
        /// "pool", "multi-pool" or "cross multi-pool".
        what: &'static str,
        #[source]
        source: BuildError,
    },
    /// A submitter, the tuner or the control thread could not be started.
    #[error("cannot start a thread of the soak: {0}")]
    Thread(#[source] std::io::Error),
    /// Submitter, tuner or control threads still busy after the stop.
    #[error(
        "soak failed: threads of the soak still busy {secs} s after the stop (a hang in \
         a submit or a release?): {stuck}; pool: {pool}; multi-pool: {multi}; cross \
         multi-pool: {cross}"
    )]
    Hang {
        secs: u64,
        /// The busy threads' names, comma-separated.
        stuck: String,
        /// What each pool still holds, or its `Debug` when idle.
        pool: String,
        multi: String,
        cross: String,
    },
    /// Invariants broken: the ledger's counts of each kind.
    #[error(
        "soak failed: {failures} failure(s) (the first and the last are listed above): \
         lost={lost} duplicated={duplicated} refused_ran={refused_ran} \
         cancelled_ran={cancelled_ran} mismatched={mismatched}"
    )]
    Failed {
        failures: u64,
        lost: u64,
        duplicated: u64,
        refused_ran: u64,
        cancelled_ran: u64,
        mismatched: u64,
    },
}

/// Runs the soak `args` describes; an error names every invariant broken.
pub(crate) fn run(args: &Settings) -> Result<(), SoakError> {
    let secs = args.secs;
    let run_for = Duration::from_secs(secs);
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Rng::new(seed);
    let warm_up = (run_for / 10).max(Duration::from_secs(1)).min(run_for);
    let every = (run_for / 10).clamp(Duration::from_millis(500), Duration::from_secs(3));
    let slack_kb = args.rss_slack_mb * 1024;
    let control_shard = args.threads;
    let ledger = Ledger::leak(args.threads + 1);
    quiet_deliberate_panics();

    let threads_before = probe::threads();
    let rss_start = probe::rss_kb();
    let balancing = if rng.chance(50) {
        LoadBalancing::RoundRobin
    } else {
        LoadBalancing::LeastTasks
    };
    println!(
        "soak: {secs} s, {} submitter threads, seed {seed}; a pool (8 workers, tuned \
         1..32, queue 256, min_workers 2, expiry 250 ms, task_deadline 1 h) and a \
         multi-pool (2 pools, {balancing:?}, 4 workers each, tuned 1..16, hand-off) on \
         the odd threads; a cross multi-pool (2 pools, RoundRobin, 2 workers each, \
         tuned 1..4, queue 4, task_deadline 1 h) whose tasks spawn, join and submit \
         on it; release/reboot every ~{:.1} s (the cross multi-pool one time in {})",
        args.threads,
        every.as_secs_f64(),
        100 / CROSS_RELEASE_PERCENT
    );
    println!(
        "soak: before the pools: threads={threads_before} rss_mb={:.1}; RSS bound: \
         the figure after {} s of warm-up + {} MiB",
        mb(rss_start),
        warm_up.as_secs(),
        args.rss_slack_mb
    );

    let pool = builder(ledger)
        .name("soak-pool")
        .thread_name("soak-pool")
        .capacity(8)
        .queue_capacity(256)
        .min_workers(2)
        .expiry(Duration::from_millis(250))
        .task_deadline(FAR_DEADLINE)
        .build()
        .map_err(|source| SoakError::Build {
            what: "pool",
            source,
        })?;
    let multi = MultiPool::with_builder(
        2,
        balancing,
        builder(ledger)
            .name("soak-multi")
            .thread_name("soak-multi")
            .capacity(4)
            .queue_capacity(0)
            .expiry(Duration::from_millis(500)),
    )
    .map_err(|source| SoakError::Build {
        what: "multi-pool",
        source,
    })?;
    // Small and queued, so that its pools are often full of tasks joining
    // subtasks queued on the other pool. Round robin sends a task's
    // subtasks to both pools in turn.
    let cross = MultiPool::with_builder(
        2,
        LoadBalancing::RoundRobin,
        builder(ledger)
            .name(CROSS_NAME)
            .thread_name(CROSS_NAME)
            .capacity(2)
            .queue_capacity(4)
            .expiry(Duration::from_millis(500))
            .task_deadline(FAR_DEADLINE),
    )
    .map_err(|source| SoakError::Build {
        what: "cross multi-pool",
        source,
    })?;
    let pools = Pools {
        pool: pool.clone(),
        multi: multi.clone(),
        cross: cross.clone(),
    };

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |name: String, f: Box<dyn FnOnce() -> Leftovers + Send>| {
        thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(SoakError::Thread)
    };
    let mut workers: Vec<JoinHandle<Leftovers>> = Vec::with_capacity(args.threads + 2);
    for index in 0..args.threads {
        let multi = (index % 2 == 1).then(|| multi.clone());
        let submitter = Submitter::new(
            index as u16,
            ledger,
            pool.clone(),
            multi,
            cross.clone(),
            seed,
        );
        let stop = Arc::clone(&stop);
        workers.push(spawn(
            format!("soak-submit-{index}"),
            Box::new(move || submitter.run(&stop)),
        )?);
    }
    {
        let (pools, stop) = (pools.clone(), Arc::clone(&stop));
        let rng = Rng::new(seed ^ 0xC0_47_01);
        workers.push(spawn(
            "soak-control".to_owned(),
            Box::new(move || {
                control(pools, ledger, control_shard, &stop, every, rng);
                Leftovers::default()
            }),
        )?);
    }
    {
        let (pools, stop) = (pools.clone(), Arc::clone(&stop));
        let rng = Rng::new(seed ^ 0x70_4E);
        workers.push(spawn(
            "soak-tuner".to_owned(),
            Box::new(move || {
                tuner(pools, ledger, control_shard, &stop, rng);
                Leftovers::default()
            }),
        )?);
    }

    // Once a second: the line, and the checks that need no drain.
    let mut rss_warm: Option<u64> = None;
    let mut rss_peak_after_warm = 0u64;
    let mut threads_peak = threads_before;
    let mut last_ran = (0u64, Instant::now());
    let mut progress = [
        Progress::new("pool"),
        Progress::new("multi-pool"),
        Progress::new("cross multi-pool"),
    ];
    let mut stopped_early = None;
    let mut tick = 1u64;
    loop {
        let due = started + Duration::from_secs(tick);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        tick += 1;
        let elapsed = started.elapsed();
        let totals = ledger.totals();
        let (threads, rss_kb) = (probe::threads(), probe::rss_kb());
        threads_peak = threads_peak.max(threads);
        Line {
            elapsed,
            totals: &totals,
            threads,
            rss_kb,
            pools: &pools,
        }
        .print();
        match rss_warm {
            None if elapsed >= warm_up => rss_warm = Some(rss_kb),
            Some(warm) => {
                rss_peak_after_warm = rss_peak_after_warm.max(rss_kb);
                if rss_kb > warm + slack_kb {
                    ledger.fail(format!(
                        "RSS grew to {:.1} MB at {} s, past the bound of {:.1} MB \
                         ({:.1} MB after warm-up + {} MiB)",
                        mb(rss_kb),
                        elapsed.as_secs(),
                        mb(warm + slack_kb),
                        mb(warm),
                        args.rss_slack_mb
                    ));
                }
            }
            None => {}
        }
        let ran = totals.get(C::Ran);
        if ran != last_ran.0 {
            last_ran = (ran, Instant::now());
        } else if last_ran.1.elapsed() >= STALL {
            ledger.fail(format!(
                "no task ran for {} s (a hang?): {pool:?}, {multi:?}, {cross:?}",
                STALL.as_secs()
            ));
        }
        let [on_pool, on_multi, on_cross] = &mut progress;
        on_pool.check(ledger, pool.stats().finished(), pool_outstanding(&pool));
        on_multi.check(ledger, multi.stats().finished(), multi_outstanding(&multi));
        on_cross.check(ledger, cross.stats().finished(), multi_outstanding(&cross));
        if ledger.failures() > 0 {
            stopped_early = Some(elapsed);
            break;
        }
        if elapsed >= run_for {
            break;
        }
    }

    // Stop the submitters, then drain.
    stop.store(true, Ordering::SeqCst);
    let until = Instant::now() + DRAIN;
    while !workers.iter().all(JoinHandle::is_finished) && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
    }
    if !workers.iter().all(JoinHandle::is_finished) {
        let stuck: Vec<String> = workers
            .iter()
            .filter(|w| !w.is_finished())
            .filter_map(|w| w.thread().name().map(str::to_owned))
            .collect();
        for note in ledger.notes() {
            println!("soak: FAIL: {note}");
        }
        return Err(SoakError::Hang {
            secs: DRAIN.as_secs(),
            stuck: stuck.join(", "),
            pool: pool_outstanding(&pool).unwrap_or_else(|| format!("idle: {pool:?}")),
            multi: multi_outstanding(&multi).unwrap_or_else(|| format!("idle: {multi:?}")),
            cross: multi_outstanding(&cross).unwrap_or_else(|| format!("idle: {cross:?}")),
        });
    }
    let mut plain = Vec::new();
    let mut handles = Vec::new();
    let mut adopted = Vec::new();
    for worker in workers {
        let name = worker.thread().name().unwrap_or("a soak thread").to_owned();
        match worker.join() {
            Ok(mut left) => {
                plain.append(&mut left.plain);
                handles.append(&mut left.handles);
                adopted.push(left.adopted);
            }
            Err(_) => ledger.fail(format!("{name} panicked (see above)")),
        }
    }
    if let Err(e) = pool.wait_idle(DRAIN) {
        ledger.fail(format!("the pool's final wait_idle failed: {e}; {pool:?}"));
    }
    if let Err(e) = multi.wait_idle(DRAIN) {
        ledger.fail(format!(
            "the multi-pool's final wait_idle failed: {e}; {multi:?}"
        ));
    }
    if let Err(e) = cross.wait_idle(DRAIN) {
        ledger.fail(format!(
            "the cross multi-pool's final wait_idle failed: {e}; {}",
            multi_outstanding(&cross).unwrap_or_else(|| format!("{cross:?}"))
        ));
    }
    let until = Instant::now() + HANDLE_PATIENCE;
    for pending in handles {
        if pending.wait(until.saturating_duration_since(Instant::now())) {
            pending.resolve();
        } else {
            for rec in pending.recs() {
                rec.lose(format_args!(
                    "its handle never finished, even after the final wait_idle"
                ));
            }
        }
    }
    // The tasks that submitted these have all ended (their handles above).
    for list in adopted {
        plain.append(&mut list.lock().unwrap_or_else(|e| e.into_inner()));
    }
    for (name, result) in [
        ("pool", pool.release_timeout(DRAIN)),
        ("multi-pool", multi.release_timeout(DRAIN)),
        ("cross multi-pool", cross.release_timeout(DRAIN)),
    ] {
        if let Err(e) = result {
            ledger.fail(format!("the {name}'s final release_timeout failed: {e}"));
        }
    }
    for rec in &plain {
        if !rec.is_resolved() {
            rec.lose(format_args!(
                "accepted, but after the final drain it had not run, and no handle \
                 said it was cancelled"
            ));
        }
    }
    drop(plain);
    let elapsed = started.elapsed();
    let drained = [
        ("pool", pool.stats()),
        ("multi-pool", multi.stats()),
        ("cross multi-pool", cross.stats()),
    ];
    drop((pool, multi, cross, pools));

    // The process is back to its threads of before the pools.
    let until = Instant::now() + THREADS_GONE;
    let mut threads_after = probe::threads();
    while threads_after > threads_before && Instant::now() < until {
        thread::sleep(Duration::from_millis(10));
        threads_after = probe::threads();
    }
    if threads_after > threads_before {
        ledger.fail(format!(
            "{} thread(s) left {} s after the final release_timeout: {threads_after} \
             now, {threads_before} before the pools; the process's threads: {}",
            threads_after - threads_before,
            THREADS_GONE.as_secs(),
            thread_names().join(", ")
        ));
    }
    let rss_end = probe::rss_kb();
    if let Some(warm) = rss_warm {
        if rss_end > warm + slack_kb {
            ledger.fail(format!(
                "RSS at the end is {:.1} MB, past the bound of {:.1} MB",
                mb(rss_end),
                mb(warm + slack_kb)
            ));
        }
    }

    let t = ledger.totals();
    if ledger.failures() == 0 {
        // Every accepted task ran, or was reported cancelled.
        if t.get(C::Accepted) != t.get(C::Ran) + t.get(C::Cancelled) + t.get(C::Lost) {
            ledger.fail(format!(
                "the ledger does not balance: accepted {} != ran {} + cancelled {} + lost {}",
                t.get(C::Accepted),
                t.get(C::Ran),
                t.get(C::Cancelled),
                t.get(C::Lost)
            ));
        }
        if t.get(C::PanicsThrown) != t.get(C::PanicsReported) {
            ledger.fail(format!(
                "{} deliberate panics, but {} reported to a handle or the panic handler",
                t.get(C::PanicsThrown),
                t.get(C::PanicsReported)
            ));
        }
    }
    // A payload may be leaked (by design or not: not this check's business),
    // but never dropped twice.
    if t.get(C::PayloadsDropped) > t.get(C::PayloadsMade) {
        ledger.fail(format!(
            "{} panic payloads whose Drop panics were made, but {} drops ran",
            t.get(C::PayloadsMade),
            t.get(C::PayloadsDropped)
        ));
    }

    println!(
        "soak: done after {:.1} s{}: accepted={} ran={} cancelled={} refused={} lost={} \
         duplicated={} refused_ran={} cancelled_ran={} mismatched={}",
        elapsed.as_secs_f64(),
        stopped_early.map_or(String::new(), |at| format!(
            " (stopped at {} s, on a failure)",
            at.as_secs()
        )),
        t.get(C::Accepted),
        t.get(C::Ran),
        t.get(C::Cancelled),
        t.get(C::Refused),
        t.get(C::Lost),
        t.get(C::Duplicated),
        t.get(C::RefusedRan),
        t.get(C::CancelledRan),
        t.get(C::Mismatched),
    );
    println!(
        "soak: also: {} retry attempts, {} deliberate panics ({} reported), {} refused \
         with Closed, {} try_submit Full ({} given back and resubmitted), {} \
         submit_timeout Timeout, {} async submits abandoned, {} cancel calls, {} \
         release/reboot cycles, {} tunes",
        t.get(C::Retries),
        t.get(C::PanicsThrown),
        t.get(C::PanicsReported),
        t.get(C::Closed),
        t.get(C::Full),
        t.get(C::Resubmitted),
        t.get(C::TimedOut),
        t.get(C::Abandoned),
        t.get(C::CancelCalls),
        t.get(C::Releases),
        t.get(C::Tunes),
    );
    println!(
        "soak: seams: scopes {} (panic payloads whose Drop panics: {} made, {} dropped), \
         parallel_execute {}, cross-pool joins {} ({} run inline by the join, {} on the \
         other pool), self-submits {} ({} accepted), refused from a worker: {} \
         WouldDeadlock, {} Overloaded; large results {}, short deadlines {} ({} exceeded)",
        t.get(C::PanickingScopes),
        t.get(C::PayloadsMade),
        t.get(C::PayloadsDropped),
        t.get(C::ParallelExecutes),
        t.get(C::CrossJoins),
        t.get(C::JoinsInline),
        t.get(C::JoinsAcross),
        t.get(C::SelfSubmits),
        t.get(C::SelfSubmitsAccepted),
        t.get(C::WouldDeadlock),
        t.get(C::Overloaded),
        t.get(C::LargeResults),
        t.get(C::ShortDeadlines),
        t.get(C::DeadlineExceeded),
    );
    for (name, stats) in &drained {
        // Not an invariant of the soak: said, not failed.
        let gap = if stats.submitted == stats.finished() {
            String::new()
        } else {
            format!(
                " (note: submitted != completed + panicked + cancelled = {})",
                stats.finished()
            )
        };
        println!(
            "soak: {name} stats after the drain: submitted={} completed={} panicked={} \
             cancelled={} timed_out={} rejected={} workers_started={}{gap}",
            stats.submitted,
            stats.completed,
            stats.panicked,
            stats.cancelled,
            stats.timed_out,
            stats.rejected,
            stats.workers_started,
        );
    }
    println!(
        "soak: threads: {threads_before} before the pools, {threads_peak} at most, \
         {threads_after} after the final release_timeout"
    );
    match rss_warm {
        Some(warm) => println!(
            "soak: rss: {:.1} MB at the start, {:.1} MB after warm-up ({} s), {:.1} MB \
             at most after it, {:.1} MB at the end; bound {:.1} MB (warm-up + {} MiB)",
            mb(rss_start),
            mb(warm),
            warm_up.as_secs(),
            mb(rss_peak_after_warm),
            mb(rss_end),
            mb(warm + slack_kb),
            args.rss_slack_mb
        ),
        None => println!(
            "soak: rss: {:.1} MB at the start, {:.1} MB at the end (stopped before the \
             warm-up ended: no bound checked)",
            mb(rss_start),
            mb(rss_end)
        ),
    }
    let failures = ledger.failures();
    if failures == 0 {
        println!("soak: ok");
        return Ok(());
    }
    for note in ledger.notes() {
        println!("soak: FAIL: {note}");
    }
    Err(SoakError::Failed {
        failures,
        lost: t.get(C::Lost),
        duplicated: t.get(C::Duplicated),
        refused_ran: t.get(C::RefusedRan),
        cancelled_ran: t.get(C::CancelledRan),
        mismatched: t.get(C::Mismatched),
    })
}
