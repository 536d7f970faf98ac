//! `workpool bench-one`: one run of one workload on one implementation, in a
//! process of its own, reported as one JSON line on stdout.

use super::compose;
use super::peers::{self, PeerError, Runner};
use super::plan::{Impl, Kind};
use super::stats::quantile_sorted;
use crate::cli::OneArgs;
use crate::probe::{self, Switches, ThreadSampler};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What a child reports to the parent: one run's raw figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChildReport {
    pub(crate) tasks: usize,
    pub(crate) cap: usize,
    /// Tasks that ran, as counted by the shared counter (`join`: results
    /// joined, their sum checked).
    pub(crate) completed: usize,
    /// Building the implementation (threads started up front included).
    pub(crate) build_ms: f64,
    /// From the first submit until the last task has ticked the counter
    /// (`join`: until the last result is joined).
    pub(crate) run_ms: f64,
    /// Shutting down and joining, where the implementation can join.
    pub(crate) release_ms: f64,
    pub(crate) peak_rss_kb: u64,
    /// Most OS threads alive at once during build and run, the main thread
    /// included, the sampler and the hogs not.
    pub(crate) peak_threads: usize,
    /// Busy-looping threads that ran beside the implementation.
    pub(crate) hogs: usize,
    /// `latency`: submit-to-start percentiles, in microseconds.
    pub(crate) latency_us: Option<Percentiles>,
    /// `idle`: the idle window and the CPU time the process used in it.
    pub(crate) idle: Option<IdleReport>,
    /// `cold`: per-round wall time, in microseconds.
    pub(crate) rounds_us: Option<RoundTimes>,
    /// `redis`: CPU time the redis-server process used during the
    /// throughput phase (counted by /proc in clock ticks: 10 ms resolution
    /// at the usual USER_HZ of 100).
    #[serde(default)]
    pub(crate) server_cpu_ms: Option<u64>,
    /// `redis`: CPU time all consumer processes used from their start until
    /// the throughput phase's end (the same resolution).
    #[serde(default)]
    pub(crate) consumers_cpu_ms: Option<u64>,
    /// Context switches of the implementation's threads and the submitting
    /// main thread, from before the build until the run's end, exited
    /// threads included (`getrusage`), the hogs' and the thread sampler's
    /// own taken out.
    #[serde(default)]
    pub(crate) voluntary_switches: u64,
    #[serde(default)]
    pub(crate) involuntary_switches: u64,
}

/// Wall time of the rounds of `cold`, each from its first submit until the
/// submitter, blocked, is woken by the round's last task; in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoundTimes {
    /// Measured rounds (the warm-up round not counted).
    pub(crate) rounds: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// Submit-to-start latency, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    /// p99 measured from when the task was due (or submitted, if earlier).
    /// A submit that blocks delays the next submits, and submit-to-start
    /// alone would not see that wait (coordinated omission).
    pub(crate) due_p99: f64,
}

/// CPU time burned while nothing was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdleReport {
    pub(crate) idle_ms: u64,
    /// Counted by /proc in clock ticks, so the resolution is a tick: 10 ms at
    /// the usual USER_HZ of 100.
    pub(crate) cpu_ms: u64,
    /// Live OS threads at the end of the window (expired workers gone).
    pub(crate) threads_after: usize,
}

/// Counts finished tasks and wakes the main thread when the last one ticks,
/// so that waiting costs no CPU the workers could use.
#[derive(Debug)]
struct Done {
    count: AtomicUsize,
    target: usize,
    reached: Mutex<bool>,
    woken: Condvar,
}

impl Done {
    /// Leaked: one per process, and a `&'static` spares every task the
    /// reference-count traffic of an `Arc` on a shared cache line.
    fn leak(target: usize) -> &'static Done {
        Box::leak(Box::new(Done {
            count: AtomicUsize::new(0),
            target,
            reached: Mutex::new(false),
            woken: Condvar::new(),
        }))
    }

    #[inline]
    fn tick(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            *self.reached.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.woken.notify_all();
        }
    }

    fn wait(&self) {
        let mut reached = self.reached.lock().unwrap_or_else(|e| e.into_inner());
        while !*reached {
            reached = self.woken.wait(reached).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn completed(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// Keeps the CPU busy for `work`, by the clock: a task is as long on a slow
/// core, a shared one or a fast one, so `burst`'s ideal time (tasks x work /
/// cap) is exact and no calibration is needed. A task preempted midway still
/// ends on time, so the ideal measures the pool's dispatch, not the host.
#[inline]
pub(crate) fn busy_for(work: Duration) {
    let start = Instant::now();
    while start.elapsed() < work {
        std::hint::spin_loop();
    }
}

/// Why a `bench-one` run failed; `bench` prints it in the pair's row.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildError {
    /// `--hogs`: a busy-looping thread could not be started.
    #[error("cannot start a hog thread: {0}")]
    Hog(#[source] std::io::Error),
    /// The implementation failed to build, take a task, join or stop.
    #[error("{0}")]
    Peer(#[from] PeerError),
    /// `--kind redis`, which `bench` runs itself.
    #[error("redis runs from `workpool bench` itself, not bench-one")]
    RedisHere,
    /// `join`'s results do not add up.
    #[error("join: the {tasks} results sum to {sum}, not {expected}")]
    WrongSum {
        tasks: usize,
        sum: u64,
        expected: u64,
    },
}

/// Threads that busy-loop, never yielding, from before the implementation is
/// built until the run ends: they compete with its workers and its submitter
/// for the cores, as other work on an oversubscribed machine does.
#[derive(Debug)]
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Switches>>,
}

impl Hogs {
    fn start(n: usize) -> Result<Hogs, ChildError> {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = Arc::clone(&stop);
                thread::Builder::new()
                    .name(format!("hog-{i}"))
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                        // Preempted again and again: not the measured
                        // implementation's switches, the caller takes them out.
                        Switches::of_this_thread()
                    })
                    .map_err(ChildError::Hog)
            })
            .collect::<Result<_, _>>()?;
        Ok(Hogs { stop, threads })
    }

    fn count(&self) -> usize {
        self.threads.len()
    }

    /// Stops the hogs; the context switches of their own threads.
    fn stop(self) -> Switches {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .fold(Switches::default(), Switches::plus)
    }
}

/// Runs `rounds` of `round` empty tasks (the last one shorter if `tasks` is
/// not a multiple), each after `gap` of idleness, blocking until each round
/// is done; one unmeasured round first starts the threads of lazy pools.
/// Returns the tasks that ran in the measured rounds and their wall times.
fn cold(
    runner: &mut Runner,
    tasks: usize,
    round: usize,
    gap: Duration,
) -> Result<(usize, RoundTimes), PeerError> {
    let run_round = |runner: &mut Runner, n: usize| -> Result<(usize, u64), PeerError> {
        // One counter per round, so the submitter waits for its own round.
        let done = Done::leak(n);
        let start = Instant::now();
        for _ in 0..n {
            runner.submit(move || done.tick())?;
        }
        done.wait();
        Ok((done.completed(), start.elapsed().as_nanos() as u64))
    };
    run_round(runner, round.min(tasks))?;
    let mut completed = 0;
    let mut times = Vec::with_capacity(tasks.div_ceil(round));
    while completed < tasks {
        thread::sleep(gap);
        let (ran, ns) = run_round(runner, round.min(tasks - completed))?;
        completed += ran;
        times.push(ns);
    }
    times.sort_unstable();
    let us = |v: u64| v as f64 / 1e3;
    Ok((
        completed,
        RoundTimes {
            rounds: times.len(),
            p50: us(quantile_sorted(&times, 0.50)),
            p99: us(quantile_sorted(&times, 0.99)),
            max: us(times.last().copied().unwrap_or(0)),
        },
    ))
}

/// Submit-to-start latency is measured against this sleep granularity: a
/// submitter that is ahead of schedule by less than this submits at once.
const PACING_SLACK: Duration = Duration::from_micros(200);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs one workload once and returns its figures.
pub(crate) fn run(args: &OneArgs) -> Result<ChildReport, ChildError> {
    let work = Duration::from_micros(args.work_us);
    let tasks = args.tasks;
    let done = Done::leak(tasks);

    let switches_before = Switches::of_process();
    // The hogs start first and are not counted in the peak thread count.
    let hogs = Hogs::start(args.hogs)?;
    let sampler = ThreadSampler::start();
    let start = Instant::now();
    let mut runner = Runner::start(args.imp, args.cap)?;
    let built = Instant::now();
    let mut latencies = None;
    let mut rounds = None;
    // The sum of the results `join` joined; its tasks tick no counter.
    let mut joined = None;
    // `map` runs to its end inside its call; its inputs tick no counter.
    let mut mapped = false;
    let mut keyed_out_of_order = None;

    match args.kind {
        Kind::Empty | Kind::Idle => {
            for _ in 0..tasks {
                runner.submit(move || done.tick())?;
            }
        }
        Kind::Sleep => {
            let nap = Duration::from_millis(args.sleep_ms);
            for _ in 0..tasks {
                runner.submit(move || {
                    thread::sleep(nap);
                    done.tick();
                })?;
            }
        }
        Kind::Burst => {
            for _ in 0..tasks {
                runner.submit(move || {
                    busy_for(work);
                    done.tick();
                })?;
            }
        }
        Kind::Latency => {
            // Each task writes when it started, in ns since `t0`; the
            // submitter keeps when each was due and when it was submitted.
            let starts: &'static [AtomicU64] =
                Box::leak((0..tasks).map(|_| AtomicU64::new(0)).collect());
            let mut due_ns = Vec::with_capacity(tasks);
            let mut submit_ns = Vec::with_capacity(tasks);
            // Half the pool's rate: cap workers each finish one task per
            // work_us, so one task every 2 * work_us / cap.
            let interval = Duration::from_nanos(args.work_us * 2_000 / args.cap as u64)
                .max(Duration::from_nanos(1));
            let t0 = Instant::now();
            for (i, slot) in starts.iter().enumerate() {
                let due = t0 + interval * i as u32;
                let now = Instant::now();
                // A spinning submitter would take a core from the workers;
                // sleeping overshoots by ~60 µs, so tasks due within the
                // slack go out at once, as a small batch.
                if due > now + PACING_SLACK {
                    thread::sleep(due - now);
                }
                due_ns.push((due - t0).as_nanos() as u64);
                submit_ns.push(t0.elapsed().as_nanos() as u64);
                runner.submit(move || {
                    slot.store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    busy_for(work);
                    done.tick();
                })?;
            }
            latencies = Some((starts, due_ns, submit_ns));
        }
        Kind::Cold => {
            let gap = Duration::from_millis(args.gap_ms);
            rounds = Some(cold(&mut runner, tasks, args.round_tasks, gap)?);
        }
        Kind::Join => joined = Some(runner.spawn_join(tasks)?),
        Kind::Redis => return Err(ChildError::RedisHere),
        Kind::Map | Kind::MapUnordered => {
            compose::map(&runner, tasks, args.kind == Kind::Map, args.cap)?;
            mapped = true;
        }
        Kind::Keyed => {
            let tick: &'static (dyn Fn() + Sync) = Box::leak(Box::new(move || done.tick()));
            let out_of_order = compose::keyed(&runner, tasks, tick)?;
            done.wait();
            keyed_out_of_order = Some(out_of_order.load(Ordering::Relaxed));
        }
    }
    if rounds.is_none() && joined.is_none() && !mapped {
        done.wait();
    }
    if let (Some(wrong), Impl::Workpool | Impl::Thread) = (keyed_out_of_order, args.imp) {
        if wrong > 0 {
            return Err(ChildError::Peer(PeerError::WrongResult(format!(
                "{wrong} keyed tasks out of their key's order"
            ))));
        }
    }
    let finished = Instant::now();
    if let Some(sum) = joined {
        let expected = peers::join_sum(tasks);
        if sum != expected {
            return Err(ChildError::WrongSum {
                tasks,
                sum,
                expected,
            });
        }
    }
    let (peak_threads, sampler_switches) = sampler.finish();
    let peak_threads = peak_threads.saturating_sub(hogs.count());
    let hog_switches = hogs.stop();
    let switches = Switches::of_process()
        .minus(switches_before)
        .minus(hog_switches.plus(sampler_switches));

    let idle = if args.kind == Kind::Idle {
        let before = probe::cpu_ticks();
        thread::sleep(Duration::from_millis(args.idle_ms));
        let after = probe::cpu_ticks();
        Some(IdleReport {
            idle_ms: args.idle_ms,
            cpu_ms: probe::ticks_to_ms(after.saturating_sub(before)),
            threads_after: probe::threads(),
        })
    } else {
        None
    };

    let releasing = Instant::now();
    runner.shutdown()?;
    let release_ms = ms(releasing.elapsed());

    Ok(ChildReport {
        tasks,
        cap: args.cap,
        completed: match (rounds, joined) {
            (Some((ran, _)), _) => ran,
            (None, Some(_)) => tasks,
            (None, None) if mapped => tasks,
            (None, None) => done.completed(),
        },
        build_ms: ms(built - start),
        run_ms: ms(finished - built),
        release_ms,
        peak_rss_kb: probe::peak_rss_kb(),
        peak_threads,
        hogs: args.hogs,
        latency_us: latencies.map(|(starts, due, submit)| percentiles(starts, &due, &submit)),
        idle,
        rounds_us: rounds.map(|(_, times)| times),
        server_cpu_ms: None,
        consumers_cpu_ms: None,
        voluntary_switches: switches.voluntary,
        involuntary_switches: switches.involuntary,
    })
}

/// p50, p99 and max of submit-to-start, and p99 of due-to-start, in
/// microseconds, from start, due and submit times in ns since one origin.
fn percentiles(starts: &[AtomicU64], due: &[u64], submit: &[u64]) -> Percentiles {
    let start: Vec<u64> = starts.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    let mut waited: Vec<u64> = start
        .iter()
        .zip(submit)
        .map(|(s, b)| s.saturating_sub(*b))
        .collect();
    // A task submitted early, within the pacing slack, counts from its submit.
    let mut late: Vec<u64> = start
        .iter()
        .zip(due.iter().zip(submit))
        .map(|(s, (d, b))| s.saturating_sub(*d.min(b)))
        .collect();
    waited.sort_unstable();
    late.sort_unstable();
    let us = |v: u64| v as f64 / 1e3;
    Percentiles {
        p50: us(quantile_sorted(&waited, 0.50)),
        p99: us(quantile_sorted(&waited, 0.99)),
        max: us(waited.last().copied().unwrap_or(0)),
        due_p99: us(quantile_sorted(&late, 0.99)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Impl;

    fn one(kind: Kind, tasks: usize) -> OneArgs {
        OneArgs {
            imp: Impl::Workpool,
            kind,
            tasks,
            cap: 2,
            work_us: 20,
            sleep_ms: 1,
            idle_ms: 20,
            round_tasks: 10,
            gap_ms: 1,
            hogs: 0,
        }
    }

    #[test]
    fn every_kind_counts_every_task() {
        for kind in [
            Kind::Empty,
            Kind::Sleep,
            Kind::Burst,
            Kind::Latency,
            Kind::Idle,
            Kind::Cold,
            Kind::Join,
        ] {
            let report = run(&one(kind, 55)).unwrap();
            assert_eq!(report.completed, 55, "{kind:?}");
            assert_eq!(report.latency_us.is_some(), kind == Kind::Latency);
            assert_eq!(report.idle.is_some(), kind == Kind::Idle);
            assert_eq!(report.rounds_us.is_some(), kind == Kind::Cold);
            assert!(report.peak_threads >= 1);
        }
    }

    #[test]
    fn cold_times_every_round_and_hogs_are_not_counted() {
        let args = OneArgs {
            hogs: 2,
            ..one(Kind::Cold, 35)
        };
        let report = run(&args).unwrap();
        assert_eq!(report.completed, 35);
        assert_eq!(report.hogs, 2);
        let r = report.rounds_us.unwrap();
        assert_eq!(r.rounds, 4);
        assert!(0.0 < r.p50 && r.p50 <= r.p99 && r.p99 <= r.max, "{r:?}");
        // That the hogs are left out of `peak_threads` is checked end to end
        // (tests/bench.rs): here other tests' threads share the process.
    }

    #[test]
    fn every_sleeping_task_counts_a_voluntary_switch() {
        // Each task sleeps 1 ms, which blocks its worker: at least one
        // voluntary switch a task (other tests' threads may add theirs).
        let report = run(&one(Kind::Sleep, 55)).unwrap();
        assert!(report.voluntary_switches >= 55, "{report:?}");
    }

    #[test]
    fn late_submits_count_from_when_they_were_due() {
        let starts: Vec<AtomicU64> = [150, 300, 400].map(AtomicU64::new).into();
        // Task 0 went out early (at 50, due 100); tasks 1 and 2 were due at
        // 200 and 300 but went out at 290 and 390, after a blocked submit.
        let p = percentiles(&starts, &[100, 200, 300], &[50, 290, 390]);
        assert_eq!((p.p50, p.p99, p.max), (0.01, 0.1, 0.1));
        assert_eq!(p.due_p99, 0.1);
        let p = percentiles(&starts, &[100, 100, 100], &[50, 290, 390]);
        assert_eq!(p.due_p99, 0.3);
    }

    #[test]
    fn busy_for_lasts_at_least_its_work() {
        let start = Instant::now();
        busy_for(Duration::from_micros(300));
        assert!(start.elapsed() >= Duration::from_micros(300));
    }
}
