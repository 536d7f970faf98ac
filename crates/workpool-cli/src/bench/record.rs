//! The result of one implementation at one workload point: what a table row
//! shows and what `--json` writes.

use super::child::ChildReport;
use super::plan::Point;
use super::plan::{Impl, Kind, Workload};
use super::stats;
use serde::{Deserialize, Serialize};

/// One line of `workpool bench --json FILE`: one implementation on one
/// workload point (the `scaling` sweep writes one line per point), the median
/// of its runs.
///
/// Every line has every field; a figure that does not apply to the workload,
/// or that a failed or skipped pair lacks, is `null`. Times are in
/// milliseconds unless the name says otherwise.
///
/// - `workload`: `empty`, `sleep`, `burst`, `latency`, `scaling`, `idle`,
///   `cold`, `join` or `redis`.
/// - `kind`: what the process ran: the workload's name, or for `scaling`
///   `empty` (the task-count sweep) or `sleep` (the capacity sweep); `redis`
///   writes a `redis` line (the consumer processes) and a `sleep` line (the
///   in-process ceiling) per process count.
/// - `impl`: `workpool`, `workpool-handoff`, `thread`, `threadpool`, `rayon`,
///   `tokio`, `rusty_pool`, `threadfin` or `crossbeam`.
/// - `tasks`: tasks per run (`cold`: rounds x 100, the warm-up round not
///   counted); `cap`: the most threads running tasks.
/// - `hogs`: busy-looping threads that ran beside the implementation in each
///   run (`--hogs`).
/// - `quick`: whether `--quick` sizes ran.
/// - `runs`: runs asked for; `samples`: the main figure of each run.
/// - `status`: `ok`, `failed` (a run crashed, timed out or lost tasks) or
///   `skipped` (too slow for this implementation, or, on `join`, its tasks
///   give no results); `error`: why, or `null`.
/// - `metric`: the name of the main figure, the field `value` copies:
///   `tasks_per_sec` (empty, join, redis), `wall_ms` (sleep, burst, the sleep sweep),
///   `ns_per_task` (the empty sweep), `p99_us` (latency, cold), `idle_cpu_ms`
///   (idle). `higher_is_better`: its direction.
/// - `value`: the median of `samples`; `ratio`: `value` over workpool's
///   `value` at the same point (`null` without workpool or when its value
///   is 0).
/// - `completed`: tasks that ran, counted by the tasks (`join`: results
///   joined, their sum checked; equals `tasks`).
/// - `wall_ms`: build + run; `build_ms`: building the pool, threads started
///   up front included; `run_ms`: first submit to last task done;
///   `release_ms`: shutting down and joining (rayon cannot join); `cold`'s
///   `run_ms` includes its idle gaps;
///   `tasks_per_sec` and `ns_per_task`: over `run_ms`. These come from the
///   median run (the lower middle one for an even count).
/// - `peak_rss_mb`: the highest `VmHWM` of the runs, in MiB;
///   `peak_threads`: the most OS threads alive at once in any run, main
///   thread included, hogs not.
/// - `ideal_ms` (burst): tasks x work / cap.
/// - `p50_us`, `p99_us`, `max_us`: `latency`: submit-to-start latency;
///   `cold`: the wall time of a round, from its first submit until the
///   blocked submitter is woken by its last task; `redis` (p50, p99):
///   pickup, enqueue to start, the worst consumer process's, at 80 % of
///   the consumers' capacity rate;
///   `due_p99_us`: p99 from when the task was due by the pacing schedule
///   (or from its submit, if that was earlier), which also counts the wait
///   a blocking submit imposes on the tasks after it.
/// - `idle_ms`, `idle_cpu_ms`, `idle_cpu_pct`, `idle_threads` (idle): the
///   idle window, the CPU time the process used in it (10 ms resolution), as
///   a percentage of one core, and the threads alive at its end.
/// - `server_cpu_pct` (redis): the CPU time redis-server used in the
///   throughput phase, as a percentage of one core over that phase (Redis
///   runs its commands on one thread: near 100 it is the bottleneck).
/// - `voluntary_switches_per_m_tasks`, `nonvoluntary_switches_per_m_tasks`
///   (every workload but `redis`, from the median run): context switches of
///   the implementation's threads and the submitting thread from before the
///   build until the run's end (`getrusage`, exited threads included, the
///   hogs' and the bench's own sampler thread's taken out), per 1,000,000
///   tasks. Voluntary: a thread blocked (a parked worker, a submitter
///   waiting for room); nonvoluntary: the scheduler preempted one.
/// - `consumers_cpu_pct` (redis): the CPU time of all consumer processes
///   from their start to the throughput phase's end, over that phase, as a
///   percentage of one core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) workload: String,
    pub(crate) kind: String,
    #[serde(rename = "impl")]
    pub(crate) imp: String,
    pub(crate) tasks: usize,
    pub(crate) cap: usize,
    pub(crate) hogs: usize,
    pub(crate) quick: bool,
    pub(crate) runs: usize,
    pub(crate) status: Status,
    pub(crate) error: Option<String>,
    pub(crate) metric: String,
    pub(crate) higher_is_better: bool,
    pub(crate) value: Option<f64>,
    pub(crate) samples: Vec<f64>,
    pub(crate) ratio: Option<f64>,
    pub(crate) completed: Option<usize>,
    pub(crate) wall_ms: Option<f64>,
    pub(crate) build_ms: Option<f64>,
    pub(crate) run_ms: Option<f64>,
    pub(crate) release_ms: Option<f64>,
    pub(crate) tasks_per_sec: Option<f64>,
    pub(crate) ns_per_task: Option<f64>,
    pub(crate) peak_rss_mb: Option<f64>,
    pub(crate) peak_threads: Option<usize>,
    pub(crate) ideal_ms: Option<f64>,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) max_us: Option<f64>,
    pub(crate) due_p99_us: Option<f64>,
    pub(crate) idle_ms: Option<u64>,
    pub(crate) idle_cpu_ms: Option<u64>,
    pub(crate) idle_cpu_pct: Option<f64>,
    pub(crate) idle_threads: Option<usize>,
    pub(crate) server_cpu_pct: Option<f64>,
    pub(crate) consumers_cpu_pct: Option<f64>,
    pub(crate) voluntary_switches_per_m_tasks: Option<f64>,
    pub(crate) nonvoluntary_switches_per_m_tasks: Option<f64>,
}

/// How a pair ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    Failed,
    Skipped,
}

/// The main figure of a point: its field name and whether higher is better.
pub(crate) fn metric(point: &Point) -> (&'static str, bool) {
    match (point.workload, point.kind) {
        (Workload::Scaling, Kind::Empty) => ("ns_per_task", false),
        (_, Kind::Empty | Kind::Join | Kind::Redis) => ("tasks_per_sec", true),
        (_, Kind::Map | Kind::MapUnordered | Kind::Keyed) => ("tasks_per_sec", true),
        (_, Kind::Sleep | Kind::Burst) => ("wall_ms", false),
        (_, Kind::Latency | Kind::Cold) => ("p99_us", false),
        (_, Kind::Idle) => ("idle_cpu_ms", false),
    }
}

/// The figures one run gives, by field name.
fn figure(name: &str, r: &ChildReport) -> f64 {
    match name {
        "tasks_per_sec" => r.tasks as f64 / (r.run_ms / 1e3),
        "ns_per_task" => r.run_ms * 1e6 / r.tasks as f64,
        "wall_ms" => r.build_ms + r.run_ms,
        "p99_us" => match (r.latency_us, r.rounds_us) {
            (Some(l), _) => l.p99,
            (None, Some(c)) => c.p99,
            (None, None) => f64::NAN,
        },
        "idle_cpu_ms" => r.idle.map_or(f64::NAN, |i| i.cpu_ms as f64),
        _ => f64::NAN,
    }
}

impl Record {
    fn blank(point: &Point, imp: Impl, tasks: usize, quick: bool, runs: usize) -> Record {
        let (metric, higher_is_better) = metric(point);
        Record {
            workload: point.workload.name(),
            kind: point.kind.name(),
            imp: imp.name(),
            tasks,
            cap: point.cap,
            hogs: point.hogs,
            quick,
            runs,
            status: Status::Ok,
            error: None,
            metric: metric.to_owned(),
            higher_is_better,
            value: None,
            samples: Vec::new(),
            ratio: None,
            completed: None,
            wall_ms: None,
            build_ms: None,
            run_ms: None,
            release_ms: None,
            tasks_per_sec: None,
            ns_per_task: None,
            peak_rss_mb: None,
            peak_threads: None,
            ideal_ms: None,
            p50_us: None,
            p99_us: None,
            max_us: None,
            due_p99_us: None,
            idle_ms: None,
            idle_cpu_ms: None,
            idle_cpu_pct: None,
            idle_threads: None,
            server_cpu_pct: None,
            consumers_cpu_pct: None,
            voluntary_switches_per_m_tasks: None,
            nonvoluntary_switches_per_m_tasks: None,
        }
    }

    /// A pair that did not run, or whose run went wrong.
    pub(crate) fn not_run(
        point: &Point,
        imp: Impl,
        tasks: usize,
        quick: bool,
        runs: usize,
        status: Status,
        error: String,
    ) -> Record {
        Record {
            status,
            error: Some(error),
            ..Record::blank(point, imp, tasks, quick, runs)
        }
    }

    /// The median of `reports` (at least one, all of this pair).
    pub(crate) fn from_runs(
        point: &Point,
        imp: Impl,
        tasks: usize,
        quick: bool,
        reports: &[ChildReport],
    ) -> Record {
        let mut rec = Record::blank(point, imp, tasks, quick, reports.len());
        let samples: Vec<f64> = reports.iter().map(|r| figure(&rec.metric, r)).collect();
        let Some(mid) = stats::median_index(&samples) else {
            rec.status = Status::Failed;
            rec.error = Some("no run finished".to_owned());
            return rec;
        };
        let r = &reports[mid];
        rec.value = stats::median(&samples);
        rec.samples = samples;
        rec.completed = Some(r.completed);
        rec.wall_ms = Some(r.build_ms + r.run_ms);
        rec.build_ms = Some(r.build_ms);
        rec.run_ms = Some(r.run_ms);
        rec.release_ms = Some(r.release_ms);
        rec.tasks_per_sec = Some(figure("tasks_per_sec", r));
        rec.ns_per_task = Some(figure("ns_per_task", r));
        rec.peak_rss_mb = reports
            .iter()
            .map(|r| r.peak_rss_kb as f64 / 1024.0)
            .reduce(f64::max);
        rec.peak_threads = reports.iter().map(|r| r.peak_threads).max();
        if point.kind == Kind::Burst {
            rec.ideal_ms = Some(r.tasks as f64 * point.work_us as f64 / 1e3 / point.cap as f64);
        }
        if let Some(l) = r.latency_us {
            // `redis` has neither max nor due p99: NaN, written as null.
            let finite = |v: f64| Some(v).filter(|v| v.is_finite());
            (rec.p50_us, rec.p99_us, rec.max_us) = (Some(l.p50), Some(l.p99), finite(l.max));
            rec.due_p99_us = finite(l.due_p99);
        }
        if let Some(c) = r.rounds_us {
            (rec.p50_us, rec.p99_us, rec.max_us) = (Some(c.p50), Some(c.p99), Some(c.max));
        }
        if let Some(cpu) = r.server_cpu_ms {
            rec.server_cpu_pct = Some(cpu as f64 * 100.0 / r.run_ms.max(1.0));
        }
        if let Some(cpu) = r.consumers_cpu_ms {
            rec.consumers_cpu_pct = Some(cpu as f64 * 100.0 / r.run_ms.max(1.0));
        }
        if point.kind != Kind::Redis && r.tasks > 0 {
            let per_m = |n: u64| n as f64 * 1e6 / r.tasks as f64;
            rec.voluntary_switches_per_m_tasks = Some(per_m(r.voluntary_switches));
            rec.nonvoluntary_switches_per_m_tasks = Some(per_m(r.involuntary_switches));
        }
        if let Some(i) = r.idle {
            rec.idle_ms = Some(i.idle_ms);
            rec.idle_cpu_ms = Some(i.cpu_ms);
            rec.idle_cpu_pct = Some(i.cpu_ms as f64 * 100.0 / i.idle_ms.max(1) as f64);
            rec.idle_threads = Some(i.threads_after);
        }
        rec
    }
}

/// Fills `ratio` of every record: its value over workpool's at the same
/// point. `points[i]` holds the records of point i.
pub(crate) fn fill_ratios(points: &mut [Vec<Record>]) {
    for records in points {
        let base = records
            .iter()
            .find(|r| r.imp == Impl::Workpool.name())
            .and_then(|r| r.value)
            .filter(|&v| v != 0.0 && v.is_finite());
        for r in records.iter_mut() {
            r.ratio = base.zip(r.value).map(|(b, v)| v / b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::child::{IdleReport, Percentiles, RoundTimes};
    use crate::bench::plan::{points, Sizes};

    fn report(run_ms: f64, rss_kb: u64, threads: usize) -> ChildReport {
        ChildReport {
            tasks: 1000,
            cap: 2,
            completed: 1000,
            build_ms: 1.0,
            run_ms,
            release_ms: 0.5,
            peak_rss_kb: rss_kb,
            peak_threads: threads,
            hogs: 0,
            latency_us: Some(Percentiles {
                p50: 1.0,
                p99: run_ms,
                max: 100.0,
                due_p99: 200.0,
            }),
            idle: Some(IdleReport {
                idle_ms: 2000,
                cpu_ms: 20,
                threads_after: 2,
            }),
            rounds_us: None,
            server_cpu_ms: None,
            consumers_cpu_ms: None,
            voluntary_switches: 0,
            involuntary_switches: 0,
        }
    }

    #[test]
    fn median_run_and_peaks_over_runs() {
        let ps = points(&[Workload::Empty], &Sizes::full(), None, None, 2, 0);
        let runs = [
            report(4.0, 3000, 3),
            report(1.0, 5120, 3),
            report(2.0, 1000, 9),
        ];
        let rec = Record::from_runs(&ps[0], Impl::Rayon, 1000, false, &runs);
        assert_eq!(rec.metric, "tasks_per_sec");
        assert!(rec.higher_is_better);
        assert_eq!(rec.samples, [250_000.0, 1_000_000.0, 500_000.0]);
        assert_eq!(rec.value, Some(500_000.0));
        assert_eq!(rec.run_ms, Some(2.0));
        assert_eq!(rec.wall_ms, Some(3.0));
        assert_eq!(rec.ns_per_task, Some(2000.0));
        assert_eq!(rec.peak_rss_mb, Some(5.0));
        assert_eq!(rec.peak_threads, Some(9));
        assert_eq!(rec.status, Status::Ok);
    }

    #[test]
    fn ratios_are_against_workpool_at_the_same_point() {
        let ps = points(&[Workload::Burst], &Sizes::full(), None, None, 2, 0);
        let wp = Record::from_runs(&ps[0], Impl::Workpool, 1000, false, &[report(99.0, 1, 1)]);
        let other = Record::from_runs(&ps[0], Impl::Thread, 1000, false, &[report(199.0, 1, 1)]);
        let failed = Record::not_run(
            &ps[0],
            Impl::Tokio,
            1000,
            false,
            3,
            Status::Failed,
            "x".into(),
        );
        assert_eq!(wp.ideal_ms, Some(25.0));
        let mut all = vec![vec![wp, other, failed]];
        fill_ratios(&mut all);
        assert_eq!(all[0][0].ratio, Some(1.0));
        assert_eq!(all[0][1].ratio, Some(2.0));
        assert_eq!(all[0][2].ratio, None);
    }

    #[test]
    fn json_has_every_documented_field() {
        let ps = points(&[Workload::Idle], &Sizes::quick(), None, None, 2, 0);
        let rec = Record::from_runs(&ps[0], Impl::Workpool, 1000, true, &[report(1.0, 1, 1)]);
        assert_eq!(rec.idle_cpu_pct, Some(1.0));
        let json = serde_json::to_value(&rec).unwrap();
        let obj = json.as_object().unwrap();
        // Every field is present, `null` or not (docs/bench.md's table and the
        // integration test hold the full list).
        assert!(obj.contains_key("idle_threads") && obj.contains_key("due_p99_us"));
        assert_eq!(obj["impl"], "workpool");
        assert_eq!(obj["status"], "ok");
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn cold_reports_round_percentiles_and_hogs() {
        let ps = points(&[Workload::Cold], &Sizes::quick(), None, None, 2, 2);
        let runs = [2.0, 9.0, 4.0].map(|p99| ChildReport {
            latency_us: None,
            idle: None,
            hogs: 2,
            rounds_us: Some(RoundTimes {
                rounds: 50,
                p50: 1.0,
                p99,
                max: 20.0,
            }),
            ..report(1.0, 1, 1)
        });
        let rec = Record::from_runs(&ps[0], Impl::Crossbeam, 5_000, true, &runs);
        assert_eq!(
            (rec.metric.as_str(), rec.higher_is_better),
            ("p99_us", false)
        );
        assert_eq!(rec.samples, [2.0, 9.0, 4.0]);
        assert_eq!(rec.value, Some(4.0));
        assert_eq!(
            (rec.p50_us, rec.p99_us, rec.max_us),
            (Some(1.0), Some(4.0), Some(20.0))
        );
        assert_eq!(rec.due_p99_us, None);
        assert_eq!(rec.hogs, 2);
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["hogs"], 2);
        assert_eq!(json["workload"], "cold");
        let skipped = Record::not_run(
            &ps[0],
            Impl::Thread,
            5_000,
            true,
            1,
            Status::Failed,
            "x".into(),
        );
        assert_eq!(skipped.hogs, 2);
    }
}
