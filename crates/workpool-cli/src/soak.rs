//! `workpool soak`: submitter threads drive a random mix of every way into
//! a `Pool` and a `MultiPool` for a while, beside tune storms and
//! release/reboot cycles, and a ledger checks every task's fate: none lost,
//! none run twice, none run once refused or reported cancelled. Then the
//! pools are drained and released, and the process must be back to its
//! threads of before, with its memory within a bound. Linux only: threads
//! and memory come from /proc.

mod ledger;
mod mix;

use crate::cli::SoakArgs;
use crate::probe;
use ledger::{Ledger, Totals, C};
use mix::{Leftovers, Rng, Submitter, HANDLE_PATIENCE};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use workpool::{LoadBalancing, MultiPool, Pool, PoolBuilder};

/// What every deliberate panic throws; anything else is a failure.
pub(crate) const DELIBERATE: &str = "soak: deliberate panic";

/// How long the final drain may wait for each step.
const DRAIN: Duration = Duration::from_secs(60);

/// How long the pools' threads may take to leave /proc once joined.
const THREADS_GONE: Duration = Duration::from_secs(5);

/// A run with no task run for this long is hung.
const STALL: Duration = Duration::from_secs(30);

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
/// others still print.
fn quiet_deliberate_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|s| *s == DELIBERATE);
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

/// The control thread: every `every` or so (0.5x to 1.5x), closes the pool,
/// the multi-pool or both, with `release_timeout` (one time in four with
/// `release`, which does not wait), leaves them closed for up to 30 ms,
/// and reboots them. Submitters meanwhile see `Closed`.
fn control(
    pool: Pool,
    multi: MultiPool,
    ledger: &'static Ledger,
    shard: usize,
    stop: &AtomicBool,
    every: Duration,
    mut rng: Rng,
) {
    loop {
        let wait = every.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0);
        if !nap(stop, wait) {
            return;
        }
        let which = rng.below(3);
        let quick = rng.chance(25);
        let (on_pool, on_multi) = (which != 1, which != 0);
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
            if quick {
                multi.release();
            } else {
                let started = Instant::now();
                if let Err(e) = multi.release_timeout(RELEASE_PATIENCE) {
                    ledger.fail(format!(
                        "the multi-pool's release_timeout failed after {:.1} s: {e}",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
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
        ledger.add(shard, C::Releases, 1);
    }
}

/// The tuner: storms of 1 to 20 `tune`s, the pool between 1 and 32
/// workers, each pool of the multi-pool between 1 and 16, every few ms.
fn tuner(
    pool: Pool,
    multi: MultiPool,
    ledger: &'static Ledger,
    shard: usize,
    stop: &AtomicBool,
    mut rng: Rng,
) {
    loop {
        if !nap(stop, Duration::from_millis(rng.range(1, 50))) {
            return;
        }
        for _ in 0..rng.range(1, 20) {
            let results = [
                pool.tune(rng.range(1, 32) as usize),
                multi.tune(rng.range(1, 16) as usize),
            ];
            for result in results {
                if let Err(e) = result {
                    ledger.fail(format!("tune failed: {e}"));
                }
            }
            ledger.add(shard, C::Tunes, 2);
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
    pool: &'a Pool,
    multi: &'a MultiPool,
}

impl Line<'_> {
    fn print(&self) {
        let t = self.totals;
        let (p, m) = (self.pool.stats(), self.multi.stats());
        println!(
            "soak elapsed={}s accepted={} ran={} cancelled={} refused={} lost={} \
             duplicated={} threads={} rss_mb={:.1} pool_submitted={} pool_completed={} \
             multi_submitted={} multi_completed={}",
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
        );
    }
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

/// Runs the soak `args` describes; an error names every invariant broken.
pub(crate) fn run(args: &SoakArgs) -> Result<(), String> {
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
         1..32, queue 256, min_workers 2, expiry 250 ms) and a multi-pool (2 pools, \
         {balancing:?}, 4 workers each, tuned 1..16, hand-off) on the odd threads; \
         release/reboot every ~{:.1} s",
        args.threads,
        every.as_secs_f64()
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
        .build()
        .map_err(|e| format!("cannot build the pool: {e}"))?;
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
    .map_err(|e| format!("cannot build the multi-pool: {e}"))?;

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |name: String, f: Box<dyn FnOnce() -> Leftovers + Send>| {
        thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(|e| format!("cannot start a thread of the soak: {e}"))
    };
    let mut workers: Vec<JoinHandle<Leftovers>> = Vec::with_capacity(args.threads + 2);
    for index in 0..args.threads {
        let multi = (index % 2 == 1).then(|| multi.clone());
        let submitter = Submitter::new(index as u16, ledger, pool.clone(), multi, seed);
        let stop = Arc::clone(&stop);
        workers.push(spawn(
            format!("soak-submit-{index}"),
            Box::new(move || submitter.run(&stop)),
        )?);
    }
    {
        let (pool, multi, stop) = (pool.clone(), multi.clone(), Arc::clone(&stop));
        let rng = Rng::new(seed ^ 0xC0_47_01);
        workers.push(spawn(
            "soak-control".to_owned(),
            Box::new(move || {
                control(pool, multi, ledger, control_shard, &stop, every, rng);
                Leftovers::default()
            }),
        )?);
    }
    {
        let (pool, multi, stop) = (pool.clone(), multi.clone(), Arc::clone(&stop));
        let rng = Rng::new(seed ^ 0x70_4E);
        workers.push(spawn(
            "soak-tuner".to_owned(),
            Box::new(move || {
                tuner(pool, multi, ledger, control_shard, &stop, rng);
                Leftovers::default()
            }),
        )?);
    }

    // Once a second: the line, and the checks that need no drain.
    let mut rss_warm: Option<u64> = None;
    let mut rss_peak_after_warm = 0u64;
    let mut threads_peak = threads_before;
    let mut last_ran = (0u64, Instant::now());
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
            pool: &pool,
            multi: &multi,
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
                "no task ran for {} s (a hang?): {pool:?}, {multi:?}",
                STALL.as_secs()
            ));
        }
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
        return Err(format!(
            "soak failed: threads of the soak still busy {} s after the stop (a hang in \
             a submit or a release?): {}; {pool:?}; {multi:?}",
            DRAIN.as_secs(),
            stuck.join(", ")
        ));
    }
    let mut plain = Vec::new();
    let mut handles = Vec::new();
    for worker in workers {
        let name = worker.thread().name().unwrap_or("a soak thread").to_owned();
        match worker.join() {
            Ok(mut left) => {
                plain.append(&mut left.plain);
                handles.append(&mut left.handles);
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
    for (name, result) in [
        ("pool", pool.release_timeout(DRAIN)),
        ("multi-pool", multi.release_timeout(DRAIN)),
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
    let drained = [("pool", pool.stats()), ("multi-pool", multi.stats())];
    drop((pool, multi));

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
    Err(format!(
        "soak failed: {failures} failure(s) (the first {} are listed above): lost={} \
         duplicated={} refused_ran={} cancelled_ran={} mismatched={}",
        ledger.notes().len(),
        t.get(C::Lost),
        t.get(C::Duplicated),
        t.get(C::RefusedRan),
        t.get(C::CancelledRan),
        t.get(C::Mismatched),
    ))
}
