//! What `bench` runs: the sizes of each workload, full or `--quick`, and the
//! list of points (one child process per implementation and run each).

use crate::cli::{Impl, Kind, Workload};
use crate::table::count;

/// Task counts and capacities of one bench.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sizes {
    pub(crate) empty_tasks: usize,
    pub(crate) sleep_tasks: usize,
    pub(crate) sleep_cap: usize,
    pub(crate) burst_tasks: usize,
    pub(crate) latency_tasks: usize,
    /// Task counts of the `empty` sweep.
    pub(crate) scaling_tasks: Vec<usize>,
    /// Capacities of the `sleep` sweep; each runs `SWEEP_WAVES` x cap tasks.
    pub(crate) scaling_caps: Vec<usize>,
    pub(crate) idle_tasks: usize,
    pub(crate) idle_ms: u64,
    /// Measured rounds of `cold`, each of `COLD_ROUND` tasks.
    pub(crate) cold_rounds: usize,
    pub(crate) join_tasks: usize,
    /// Jobs per run of `redis`.
    pub(crate) redis_jobs: usize,
    /// A thread per task manages about 18k tasks/s on 2 cores; `empty` and
    /// `join` points above this many tasks are cut to it (or, in the sweep,
    /// skipped).
    pub(crate) thread_empty_max: usize,
    pub(crate) runs: usize,
}

/// Sleep tasks per worker in a sweep point, so that every point's ideal time
/// is the same (10 waves of 10 ms).
pub(crate) const SWEEP_WAVES: usize = 10;
/// The sleep of a `sleep` task, ants' benchmark shape.
pub(crate) const SLEEP_MS: u64 = 10;
/// CPU work of a `burst` task.
pub(crate) const BURST_US: u64 = 50;
/// CPU work of a `latency` task.
pub(crate) const LATENCY_US: u64 = 100;
/// Empty tasks per round of `cold`.
pub(crate) const COLD_ROUND: usize = 100;
/// The idle gap before each round of `cold`: long enough that every pool's
/// workers have stopped spinning and parked.
pub(crate) const COLD_GAP_MS: u64 = 20;
/// Consumer processes of the `redis` points.
pub(crate) const REDIS_PROCS: [usize; 3] = [1, 2, 4];
/// Workers of each `workpool redis work` process, and the concurrency of
/// each apalis worker.
pub(crate) const REDIS_CAPACITY: usize = 64;
/// Jobs each `workpool redis work` process reads ahead (`--queue-capacity`):
/// apalis fetches its default batch of 10 into a buffer whenever it has a
/// free slot, so both hold up to this many beyond what they run.
pub(crate) const REDIS_READ_AHEAD: usize = 10;

impl Sizes {
    pub(crate) fn full() -> Sizes {
        Sizes {
            empty_tasks: 1_000_000,
            sleep_tasks: 100_000,
            sleep_cap: 10_000,
            burst_tasks: 10_000,
            latency_tasks: 20_000,
            scaling_tasks: vec![10_000, 100_000, 1_000_000],
            scaling_caps: vec![100, 1_000, 10_000],
            idle_tasks: 10_000,
            idle_ms: 2_000,
            cold_rounds: 200,
            join_tasks: 100_000,
            redis_jobs: 20_000,
            thread_empty_max: 100_000,
            runs: 3,
        }
    }

    /// About a minute on 2 cores: fewer tasks, smaller capacities, and one
    /// run per pair unless `--runs` says otherwise.
    pub(crate) fn quick() -> Sizes {
        Sizes {
            empty_tasks: 200_000,
            sleep_tasks: 20_000,
            sleep_cap: 2_000,
            burst_tasks: 4_000,
            latency_tasks: 4_000,
            scaling_tasks: vec![10_000, 100_000],
            scaling_caps: vec![100, 1_000],
            idle_tasks: 10_000,
            idle_ms: 1_000,
            cold_rounds: 50,
            join_tasks: 20_000,
            redis_jobs: 2_000,
            thread_empty_max: 10_000,
            runs: 1,
        }
    }
}

/// One workload at one size: every implementation runs it `runs` times.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) workload: Workload,
    pub(crate) kind: Kind,
    pub(crate) tasks: usize,
    pub(crate) cap: usize,
    /// CPU work per task (`burst`, `latency`), µs.
    pub(crate) work_us: u64,
    pub(crate) sleep_ms: u64,
    pub(crate) idle_ms: u64,
    /// Tasks per round (`cold`).
    pub(crate) round_tasks: usize,
    /// The idle gap before each round (`cold`), ms.
    pub(crate) gap_ms: u64,
    /// Busy-looping threads beside the implementation in every run.
    pub(crate) hogs: usize,
    /// Whether `--tasks` set the count (then no implementation's is cut).
    pub(crate) tasks_given: bool,
    /// `redis`: consumer processes (the ceiling's pool has `cap` = this x
    /// [`REDIS_CAPACITY`]); 0 elsewhere.
    pub(crate) procs: usize,
}

/// The points of `workloads`, in order; `tasks` and `cap` override every
/// workload's but the `scaling` sweep's (`cold` rounds `tasks` up to whole
/// rounds); every point runs beside `hogs` busy-looping threads.
pub(crate) fn points(
    workloads: &[Workload],
    sizes: &Sizes,
    tasks: Option<usize>,
    cap: Option<usize>,
    cores: usize,
    hogs: usize,
) -> Vec<Point> {
    let point = |workload, kind, default_tasks: usize, default_cap: usize| Point {
        workload,
        kind,
        tasks: tasks.unwrap_or(default_tasks),
        cap: cap.unwrap_or(default_cap),
        work_us: if kind == Kind::Latency {
            LATENCY_US
        } else {
            BURST_US
        },
        sleep_ms: SLEEP_MS,
        idle_ms: sizes.idle_ms,
        round_tasks: COLD_ROUND,
        gap_ms: COLD_GAP_MS,
        hogs,
        tasks_given: tasks.is_some(),
        procs: 0,
    };
    let mut out = Vec::new();
    for &w in workloads {
        match w {
            Workload::Empty => out.push(point(w, Kind::Empty, sizes.empty_tasks, cores)),
            Workload::Sleep => out.push(point(w, Kind::Sleep, sizes.sleep_tasks, sizes.sleep_cap)),
            Workload::Burst => out.push(point(w, Kind::Burst, sizes.burst_tasks, cores)),
            Workload::Latency => out.push(point(w, Kind::Latency, sizes.latency_tasks, cores)),
            Workload::Idle => out.push(point(w, Kind::Idle, sizes.idle_tasks, cores)),
            Workload::Join => out.push(point(w, Kind::Join, sizes.join_tasks, cores)),
            Workload::Cold => {
                let p = point(w, Kind::Cold, sizes.cold_rounds * COLD_ROUND, cores);
                out.push(Point {
                    tasks: p.tasks.div_ceil(COLD_ROUND) * COLD_ROUND,
                    ..p
                });
            }
            // Per process count, the consumer processes, then the same jobs
            // on one in-process pool of their total capacity. `--cap` does
            // not apply: each process has REDIS_CAPACITY workers.
            Workload::Redis => {
                for procs in REDIS_PROCS {
                    let cap = procs * REDIS_CAPACITY;
                    for kind in [Kind::Redis, Kind::Sleep] {
                        out.push(Point {
                            cap,
                            procs,
                            ..point(w, kind, sizes.redis_jobs, cap)
                        });
                    }
                }
            }
            Workload::Scaling => {
                for &n in &sizes.scaling_tasks {
                    out.push(Point {
                        tasks: n,
                        cap: cores,
                        tasks_given: false,
                        ..point(w, Kind::Empty, n, cores)
                    });
                }
                for &c in &sizes.scaling_caps {
                    out.push(Point {
                        tasks: c * SWEEP_WAVES,
                        cap: c,
                        tasks_given: false,
                        ..point(w, Kind::Sleep, c, c)
                    });
                }
            }
        }
    }
    out
}

/// The task count `imp` runs at `point`, or why it is skipped: a thread per
/// task would take minutes over a million empty tasks, and `join` needs
/// tasks that give results.
pub(crate) fn tasks_for(imp: Impl, point: &Point, sizes: &Sizes) -> Result<usize, String> {
    if !imp.runs(point.workload) {
        return Err(format!(
            "{} does not run {}",
            imp.name(),
            point.workload.name()
        ));
    }
    if point.workload == Workload::Redis && point.kind == Kind::Sleep && imp != Impl::Workpool {
        return Err("the in-process ceiling is one workpool Pool".to_owned());
    }
    if point.kind == Kind::Join && !imp.gives_results() {
        return Err("its tasks give no results to join (fire and forget only)".to_owned());
    }
    let cut = imp == Impl::Thread
        && matches!(point.kind, Kind::Empty | Kind::Join)
        && !point.tasks_given
        && point.tasks > sizes.thread_empty_max;
    match (cut, point.workload) {
        (false, _) => Ok(point.tasks),
        (true, Workload::Scaling) => Err(format!(
            "over {} empty tasks, one OS thread each",
            count(sizes.thread_empty_max)
        )),
        (true, _) => Ok(sizes.thread_empty_max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_spare_the_sweep() {
        let sizes = Sizes::full();
        let ps = points(
            &[Workload::Empty, Workload::Scaling],
            &sizes,
            Some(500),
            Some(3),
            2,
            0,
        );
        assert_eq!((ps[0].tasks, ps[0].cap), (500, 3));
        let sweep: Vec<_> = ps[1..].iter().map(|p| (p.kind, p.tasks, p.cap)).collect();
        assert_eq!(
            sweep,
            [
                (Kind::Empty, 10_000, 2),
                (Kind::Empty, 100_000, 2),
                (Kind::Empty, 1_000_000, 2),
                (Kind::Sleep, 1_000, 100),
                (Kind::Sleep, 10_000, 1_000),
                (Kind::Sleep, 100_000, 10_000),
            ]
        );
    }

    #[test]
    fn thread_per_task_is_cut_or_skipped_on_big_empty_points() {
        let sizes = Sizes::full();
        let ps = points(
            &[Workload::Empty, Workload::Scaling],
            &sizes,
            None,
            None,
            2,
            0,
        );
        assert_eq!(tasks_for(Impl::Thread, &ps[0], &sizes), Ok(100_000));
        assert_eq!(tasks_for(Impl::Workpool, &ps[0], &sizes), Ok(1_000_000));
        assert_eq!(tasks_for(Impl::Thread, &ps[1], &sizes), Ok(10_000));
        let skipped = tasks_for(Impl::Thread, &ps[3], &sizes).unwrap_err();
        assert_eq!(skipped, "over 100,000 empty tasks, one OS thread each");
        let given = points(&[Workload::Empty], &sizes, Some(2_000_000), None, 2, 0);
        assert_eq!(tasks_for(Impl::Thread, &given[0], &sizes), Ok(2_000_000));
    }

    #[test]
    fn latency_tasks_are_longer() {
        let ps = points(
            &[Workload::Burst, Workload::Latency],
            &Sizes::quick(),
            None,
            None,
            2,
            0,
        );
        assert_eq!((ps[0].work_us, ps[1].work_us), (BURST_US, LATENCY_US));
    }

    #[test]
    fn cold_runs_whole_rounds_and_every_point_has_the_hogs() {
        let ps = points(&[Workload::Cold], &Sizes::quick(), None, None, 2, 3);
        assert_eq!((ps[0].kind, ps[0].tasks, ps[0].cap), (Kind::Cold, 5_000, 2));
        assert_eq!((ps[0].round_tasks, ps[0].gap_ms), (COLD_ROUND, COLD_GAP_MS));
        assert_eq!(ps[0].hogs, 3);
        assert_eq!(Sizes::full().cold_rounds * COLD_ROUND, 20_000);
        let given = points(&[Workload::Cold], &Sizes::full(), Some(250), None, 2, 0);
        assert_eq!(given[0].tasks, 300);
        assert_eq!(tasks_for(Impl::Thread, &given[0], &Sizes::full()), Ok(300));
        let all = points(&Workload::ALL, &Sizes::quick(), None, None, 2, 1);
        assert!(all.iter().all(|p| p.hogs == 1));
        assert!(all.iter().any(|p| p.kind == Kind::Cold));
    }

    #[test]
    fn redis_runs_workpool_at_each_process_count_beside_its_ceiling() {
        let sizes = Sizes::quick();
        let ps = points(&[Workload::Redis], &sizes, None, Some(3), 2, 0);
        let got: Vec<_> = ps
            .iter()
            .map(|p| (p.kind, p.procs, p.cap, p.tasks))
            .collect();
        assert_eq!(
            got,
            [
                (Kind::Redis, 1, 64, 2_000),
                (Kind::Sleep, 1, 64, 2_000),
                (Kind::Redis, 2, 128, 2_000),
                (Kind::Sleep, 2, 128, 2_000),
                (Kind::Redis, 4, 256, 2_000),
                (Kind::Sleep, 4, 256, 2_000),
            ]
        );
        assert_eq!(Sizes::full().redis_jobs, 20_000);
        assert_eq!(tasks_for(Impl::Workpool, &ps[0], &sizes), Ok(2_000));
        assert_eq!(tasks_for(Impl::Apalis, &ps[0], &sizes), Ok(2_000));
        assert_eq!(tasks_for(Impl::Workpool, &ps[1], &sizes), Ok(2_000));
        let why = tasks_for(Impl::Apalis, &ps[1], &sizes).unwrap_err();
        assert!(why.contains("ceiling"), "{why}");
        let why = tasks_for(Impl::Rayon, &ps[0], &sizes).unwrap_err();
        assert_eq!(why, "rayon does not run redis");
        let empty = points(&[Workload::Empty], &sizes, None, None, 2, 0);
        assert!(tasks_for(Impl::Apalis, &empty[0], &sizes).is_err());
    }

    #[test]
    fn join_runs_on_cores_and_skips_pools_without_results() {
        let sizes = Sizes::quick();
        let ps = points(&[Workload::Join], &sizes, None, None, 2, 0);
        assert_eq!(
            (ps[0].kind, ps[0].tasks, ps[0].cap),
            (Kind::Join, 20_000, 2)
        );
        assert_eq!(Sizes::full().join_tasks, 100_000);
        let ran: Vec<String> = Impl::ALL
            .into_iter()
            .filter(|&i| tasks_for(i, &ps[0], &sizes).is_ok())
            .map(Impl::name)
            .collect();
        assert_eq!(
            ran,
            [
                "workpool",
                "workpool-handoff",
                "thread",
                "rayon",
                "tokio",
                "rusty_pool",
                "threadfin"
            ]
        );
        let why = tasks_for(Impl::Crossbeam, &ps[0], &sizes).unwrap_err();
        assert!(why.contains("no results"), "{why}");
        // A thread per task is cut as on `empty`, unless --tasks set the count.
        assert_eq!(tasks_for(Impl::Thread, &ps[0], &sizes), Ok(10_000));
        let given = points(&[Workload::Join], &sizes, Some(30_000), None, 2, 0);
        assert_eq!(tasks_for(Impl::Thread, &given[0], &sizes), Ok(30_000));
    }
}
