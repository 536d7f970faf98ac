//! What `bench` runs: the implementations, workloads and kinds of run (the
//! domain's enums, which clap parses), the sizes of each workload, full or
//! `--quick`, and the list of points (one child process per implementation
//! and run each), with why an implementation skips a point.

use super::table::count;
use clap::ValueEnum;

/// The implementations `bench` compares. threadfin pins `once_cell <= 1.14`,
/// so the workspace's lockfile holds once_cell 1.14 (which costs only older
/// versions of the library's dev-dependencies: proptest 1.11, tempfile 3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub(crate) enum Impl {
    /// workpool with default options (a bounded queue of
    /// `PoolBuilder::DEFAULT_QUEUE_CAPACITY` tasks), capacity = cap.
    Workpool,
    /// workpool with `queue_capacity(0)`: no queue, every task handed to a
    /// worker (ants' semantics).
    #[value(name = "workpool-handoff", alias = "workpool_handoff")]
    WorkpoolHandoff,
    /// `std::thread::spawn` per task, at most `cap` alive.
    Thread,
    /// threadpool 1.8 with `cap` threads.
    Threadpool,
    /// `rayon::ThreadPool::spawn`, `cap` threads.
    Rayon,
    /// tokio `spawn_blocking` on a current-thread runtime,
    /// `max_blocking_threads` = cap.
    Tokio,
    /// rusty_pool with core size min(cores, cap), max size `cap` and a 60 s
    /// keep-alive: it grows on demand.
    #[value(name = "rusty_pool", alias = "rusty-pool")]
    RustyPool,
    /// threadfin with 0 to `cap` threads, its default 60 s keep-alive and no
    /// queue limit (the closest match in features: min/max threads, queue
    /// limit, joinable tasks).
    Threadfin,
    /// No pool, the floor: one bounded crossbeam channel drained by `cap`
    /// threads.
    Crossbeam,
    /// apalis 1.0 on its Redis backend (apalis-redis), a worker of
    /// concurrency 64 per process: the `redis` workload's peer, and only
    /// there.
    Apalis,
}

impl Impl {
    /// Every implementation, in table order.
    pub(crate) const ALL: [Impl; 10] = [
        Impl::Workpool,
        Impl::WorkpoolHandoff,
        Impl::Thread,
        Impl::Threadpool,
        Impl::Rayon,
        Impl::Tokio,
        Impl::RustyPool,
        Impl::Threadfin,
        Impl::Crossbeam,
        Impl::Apalis,
    ];

    /// Whether it has a row in `workload`'s table: `redis` compares
    /// workpool-redis with apalis, a job queue on Redis that the other
    /// workloads leave out.
    pub(crate) fn runs(self, workload: Workload) -> bool {
        match workload {
            Workload::Redis => matches!(self, Impl::Workpool | Impl::Apalis),
            Workload::Map => matches!(self, Impl::Workpool | Impl::Rayon | Impl::Tokio),
            Workload::Keyed => matches!(
                self,
                Impl::Workpool | Impl::RustyPool | Impl::Rayon | Impl::Thread
            ),
            _ => self != Impl::Apalis,
        }
    }

    /// Whether its tasks give results to join, so that it runs `join`:
    /// threadpool and the crossbeam floor only fire and forget.
    pub(crate) fn gives_results(self) -> bool {
        !matches!(self, Impl::Threadpool | Impl::Crossbeam | Impl::Apalis)
    }

    /// The name on the command line (clap's, see [`value_name`]), in tables
    /// and in JSON.
    pub(crate) fn name(self) -> String {
        value_name(&self)
    }
}

/// The workloads of `bench`, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub(crate) enum Workload {
    /// Empty tasks, cap = cores: the cost of dispatch. Tasks/s.
    Empty,
    /// Tasks that sleep 10 ms, cap 10,000 (ants' benchmark). Wall ms.
    Sleep,
    /// 50 µs CPU tasks, cap = cores, beside the ideal time. Wall ms.
    Burst,
    /// 100 µs CPU tasks at half the pool's rate: submit-to-start p50/p99/max.
    Latency,
    /// `empty` over growing task counts, `sleep` over growing capacities.
    Scaling,
    /// CPU time burned while idle after a burst.
    Idle,
    /// Rounds of 100 empty tasks 20 ms apart, so workers park in between:
    /// per-round wall time p50/p99.
    Cold,
    /// Tasks that return a u64, all spawned, then joined in order and
    /// summed, cap = cores: the cost of a result. Tasks/s.
    Join,
    /// 10 ms sleep jobs through one local Redis (a `redis-server` of the
    /// bench's own), drained by 1, 2 and 4 `workpool redis work` processes
    /// of capacity 64, beside one in-process pool of 64 x processes (the
    /// ceiling): jobs/s and pickup p99. workpool only.
    Redis,
    /// Small inputs through a function on cap = cores, results in input
    /// order and as they finish: `Pool::map` against rayon's
    /// `par_iter().collect()` and `par_bridge()`, and tokio's
    /// `stream::iter(..).map(spawn_blocking).buffered(n)`. Inputs/s.
    Map,
    /// Tasks over 1,000 keys, one key's tasks one at a time, cap = cores:
    /// `submit_keyed` against a `Mutex` per key inside the task (rusty_pool,
    /// rayon) and a thread per key. Tasks/s.
    Keyed,
}

impl Workload {
    /// Every workload, in table order.
    pub(crate) const ALL: [Workload; 11] = [
        Workload::Empty,
        Workload::Sleep,
        Workload::Burst,
        Workload::Latency,
        Workload::Scaling,
        Workload::Idle,
        Workload::Cold,
        Workload::Join,
        Workload::Redis,
        Workload::Map,
        Workload::Keyed,
    ];

    /// The name on the command line (clap's, see [`value_name`]), in tables
    /// and in JSON.
    pub(crate) fn name(self) -> String {
        value_name(&self)
    }
}

/// What one child process runs; `scaling` runs `empty` and `sleep` points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Empty tasks.
    Empty,
    /// Tasks that sleep.
    Sleep,
    /// CPU tasks.
    Burst,
    /// Paced CPU tasks, submit-to-start latency.
    Latency,
    /// A burst of empty tasks, then idle CPU time.
    Idle,
    /// Rounds of empty tasks after idle gaps, per-round wall time.
    Cold,
    /// Tasks with results, spawned, then joined in order.
    Join,
    /// Jobs through Redis to consumer processes (run by `bench` itself).
    Redis,
    /// Inputs through a map, results in input order.
    Map,
    /// Inputs through a map, results as they finish.
    MapUnordered,
    /// Tasks over 1,000 keys.
    Keyed,
}

impl Kind {
    /// The name on the command line (clap's, see [`value_name`]) and in JSON.
    pub(crate) fn name(self) -> String {
        value_name(&self)
    }
}

/// The name clap gives `value` on the command line: its `#[value(name)]`, or
/// else its variant's name in kebab-case. Aliases are accepted on the command
/// line but never printed.
fn value_name<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .expect("no variant is #[value(skip)]")
        .get_name()
        .to_owned()
}

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
    /// Inputs of `map`.
    pub(crate) map_inputs: usize,
    /// Tasks of `keyed`.
    pub(crate) keyed_tasks: usize,
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
            map_inputs: 1_000_000,
            keyed_tasks: 1_000_000,
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
            map_inputs: 200_000,
            keyed_tasks: 200_000,
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
            Workload::Map => {
                out.push(point(w, Kind::Map, sizes.map_inputs, cores));
                out.push(point(w, Kind::MapUnordered, sizes.map_inputs, cores));
            }
            Workload::Keyed => out.push(point(w, Kind::Keyed, sizes.keyed_tasks, cores)),
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

/// Why an implementation has no run at a point; its row reads "skipped"
/// with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Skip {
    /// apalis beside thread pools, or a thread pool on `redis`.
    #[error("{} does not run {}", imp.name(), workload.name())]
    NotItsWorkload { imp: Impl, workload: Workload },
    /// The `redis` workload's in-process ceiling.
    #[error("the in-process ceiling is one workpool Pool")]
    Ceiling,
    /// `join` on a pool that only fires and forgets.
    #[error("its tasks give no results to join (fire and forget only)")]
    NoResults,
    /// A thread per task over the `scaling` sweep's larger counts.
    #[error("over {} empty tasks, one OS thread each", count(*max))]
    ThreadPerTask { max: usize },
}

/// The task count `imp` runs at `point`, or why it is skipped: a thread per
/// task would take minutes over a million empty tasks, and `join` needs
/// tasks that give results.
pub(crate) fn tasks_for(imp: Impl, point: &Point, sizes: &Sizes) -> Result<usize, Skip> {
    if !imp.runs(point.workload) {
        return Err(Skip::NotItsWorkload {
            imp,
            workload: point.workload,
        });
    }
    if point.workload == Workload::Redis && point.kind == Kind::Sleep && imp != Impl::Workpool {
        return Err(Skip::Ceiling);
    }
    if point.kind == Kind::Join && !imp.gives_results() {
        return Err(Skip::NoResults);
    }
    let cut = imp == Impl::Thread
        && matches!(point.kind, Kind::Empty | Kind::Join)
        && !point.tasks_given
        && point.tasks > sizes.thread_empty_max;
    match (cut, point.workload) {
        (false, _) => Ok(point.tasks),
        (true, Workload::Scaling) => Err(Skip::ThreadPerTask {
            max: sizes.thread_empty_max,
        }),
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
        assert_eq!(
            skipped.to_string(),
            "over 100,000 empty tasks, one OS thread each"
        );
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
        assert!(why.to_string().contains("ceiling"), "{why}");
        let why = tasks_for(Impl::Rayon, &ps[0], &sizes).unwrap_err();
        assert_eq!(why.to_string(), "rayon does not run redis");
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
        assert!(why.to_string().contains("no results"), "{why}");
        // A thread per task is cut as on `empty`, unless --tasks set the count.
        assert_eq!(tasks_for(Impl::Thread, &ps[0], &sizes), Ok(10_000));
        let given = points(&[Workload::Join], &sizes, Some(30_000), None, 2, 0);
        assert_eq!(tasks_for(Impl::Thread, &given[0], &sizes), Ok(30_000));
    }
}
