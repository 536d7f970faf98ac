//! The tables `bench` prints: one per workload (two for the `scaling` sweep).

use super::plan::{Impl, Kind, Workload};
use super::plan::{Point, REDIS_CAPACITY, REDIS_PROCS, REDIS_READ_AHEAD};
use super::record::{Record, Status};
use super::redis::PACE;
use super::table::{count, rate, ratio, sig3, Table};

fn opt(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

fn mb(v: Option<f64>) -> String {
    opt(v, |v| format!("{v:.1}"))
}

/// Context switches per 1,000,000 tasks, voluntary / nonvoluntary.
fn switches(r: &Record) -> String {
    match (
        r.voluntary_switches_per_m_tasks,
        r.nonvoluntary_switches_per_m_tasks,
    ) {
        (Some(v), Some(n)) => format!("{} / {}", rate(v), rate(n)),
        _ => "-".to_owned(),
    }
}

/// The column [`switches`] fills.
const SWITCHES: &str = "switches/M vol / invol";

fn threads(v: Option<usize>) -> String {
    v.map_or_else(|| "-".to_owned(), count)
}

/// A row for a pair that did not finish: its status, and the reason under
/// the table.
/// Adds a row per record: `cells` of it if it ran, or its status (and a note
/// with the reason) if it failed or was skipped.
fn add_rows(table: &mut Table, records: &[Record], cells: impl Fn(&Record) -> Vec<String>) {
    for r in records {
        if !not_ok(table, r) {
            table.row(cells(r));
        }
    }
}

/// The word a table shows for a pair that did not finish.
fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
    }
}

fn not_ok(table: &mut Table, r: &Record) -> bool {
    if r.status == Status::Ok {
        return false;
    }
    let word = status_word(r.status);
    table.row(vec![r.imp.clone(), word.to_owned()]);
    if let Some(e) = &r.error {
        table.note(format!("{}: {word}: {e}", r.imp));
    }
    true
}

/// Notes the implementations that ran another task count than the title's.
fn note_cut_counts(table: &mut Table, point: &Point, records: &[Record]) {
    for r in records.iter().filter(|r| r.tasks != point.tasks) {
        table.note(format!(
            "{}: {} tasks, not {} (one OS thread per task)",
            r.imp,
            count(r.tasks),
            count(point.tasks)
        ));
    }
}

fn empty(point: &Point, records: &[Record]) -> Table {
    throughput(
        format!(
            "empty: {} empty tasks, cap {} (the cost of dispatch; tasks/s, higher is better)",
            count(point.tasks),
            point.cap
        ),
        point,
        records,
    )
}

fn join(point: &Point, records: &[Record]) -> Table {
    let mut t = throughput(
        format!(
            "join: {} tasks returning a u64, all spawned, then joined in order and summed, cap {} \
             (the cost of a result; tasks/s, higher is better)",
            count(point.tasks),
            point.cap
        ),
        point,
        records,
    );
    t.note(
        "a thread per task keeps at most cap alive, joining the oldest first; rayon: \
         in_place_scope, one spawn per task writing its own slot",
    );
    t
}

fn map(point: &Point, records: &[Record]) -> Table {
    let order = if point.kind == Kind::Map {
        "in input order"
    } else {
        "as they finish"
    };
    let mut t = throughput(
        format!(
            "map: {} small inputs through a function, results {order}, cap {} \
             (inputs/s in the tasks/s column, higher is better; peak RSS: what it holds)",
            count(point.tasks),
            point.cap
        ),
        point,
        records,
    );
    t.note(if point.kind == Kind::Map {
        "workpool: Pool::map (a window of inputs in flight); rayon: into_par_iter().map().collect() \
         (every result in memory); tokio: stream::iter().map(spawn_blocking).buffered(64 x cap)"
    } else {
        "workpool: Pool::map(..).unordered(); rayon: par_bridge().map().reduce(); \
         tokio: stream::iter().map(spawn_blocking).buffer_unordered(64 x cap)"
    });
    t
}

fn keyed(point: &Point, records: &[Record]) -> Table {
    let mut t = throughput(
        format!(
            "keyed: {} tasks over 1,000 keys, one key's tasks one at a time, cap {} \
             (tasks/s, higher is better)",
            count(point.tasks),
            point.cap
        ),
        point,
        records,
    );
    t.note(
        "workpool: submit_keyed (in order per key); rusty_pool and rayon: a Mutex per key taken \
         inside the task (no order; a waiting task holds its worker); thread: one thread per key \
         fed by a channel",
    );
    t
}

/// A table of tasks/s per implementation: `empty` and `join` differ only
/// in their title and notes.
fn throughput(title: String, point: &Point, records: &[Record]) -> Table {
    let mut t = Table::new(
        title,
        &[
            "impl",
            "tasks",
            "tasks/s",
            "vs workpool",
            "ns/task",
            "peak RSS MB",
            "peak threads",
            SWITCHES,
        ],
    );
    add_rows(&mut t, records, |r| {
        vec![
            r.imp.clone(),
            count(r.tasks),
            opt(r.value, rate),
            ratio(r.ratio),
            opt(r.ns_per_task, sig3),
            mb(r.peak_rss_mb),
            threads(r.peak_threads),
            switches(r),
        ]
    });
    note_cut_counts(&mut t, point, records);
    t
}

fn sleep(point: &Point, records: &[Record]) -> Table {
    let ideal = point.tasks.div_ceil(point.cap) as u64 * point.sleep_ms;
    let mut t = Table::new(
        format!(
            "sleep: {} tasks of {} ms sleep, cap {} (wall ms with the build, lower is better; ideal {ideal} ms)",
            count(point.tasks),
            point.sleep_ms,
            count(point.cap)
        ),
        &[
            "impl",
            "wall ms",
            "vs workpool",
            "of it build ms",
            "peak RSS MB",
            "peak threads",
            SWITCHES,
        ],
    );
    add_rows(&mut t, records, |r| {
        vec![
            r.imp.clone(),
            opt(r.value, sig3),
            ratio(r.ratio),
            opt(r.build_ms, sig3),
            mb(r.peak_rss_mb),
            threads(r.peak_threads),
            switches(r),
        ]
    });
    t
}

fn burst(point: &Point, records: &[Record]) -> Table {
    let ideal = point.tasks as f64 * point.work_us as f64 / 1e3 / point.cap as f64;
    let mut t = Table::new(
        format!(
            "burst: {} tasks of {} µs CPU, cap {} (wall ms, lower is better; ideal {} ms)",
            count(point.tasks),
            point.work_us,
            point.cap,
            sig3(ideal)
        ),
        &[
            "impl",
            "wall ms",
            "vs workpool",
            "vs ideal",
            "peak RSS MB",
            "peak threads",
        ],
    );
    add_rows(&mut t, records, |r| {
        vec![
            r.imp.clone(),
            opt(r.value, sig3),
            ratio(r.ratio),
            ratio(r.value.zip(r.ideal_ms).map(|(v, i)| v / i)),
            mb(r.peak_rss_mb),
            threads(r.peak_threads),
        ]
    });
    t
}

fn latency(point: &Point, records: &[Record]) -> Table {
    let interval_us = point.work_us as f64 * 2.0 / point.cap as f64;
    let mut t = Table::new(
        format!(
            "latency: {} tasks of {} µs CPU, cap {}, one due every {} µs (half the pool's rate); \
             submit-to-start µs, lower is better",
            count(point.tasks),
            point.work_us,
            point.cap,
            sig3(interval_us)
        ),
        &[
            "impl",
            "p50 µs",
            "p99 µs",
            "max µs",
            "p99 vs workpool",
            "p99 from due µs",
            "peak RSS MB",
            "peak threads",
        ],
    );
    add_rows(&mut t, records, |r| {
        vec![
            r.imp.clone(),
            opt(r.p50_us, sig3),
            opt(r.p99_us, sig3),
            opt(r.max_us, sig3),
            ratio(r.ratio),
            opt(r.due_p99_us, sig3),
            mb(r.peak_rss_mb),
            threads(r.peak_threads),
        ]
    });
    t.note(
        "p99 from due: from when the schedule said to submit, so a blocking submit's delay \
         to the tasks after it counts too (sleep overshoot of ~60 µs included)",
    );
    t
}

fn idle(point: &Point, records: &[Record]) -> Table {
    let mut t = Table::new(
        format!(
            "idle: CPU the process burns over {} s idle after {} empty tasks, cap {} \
             (10 ms resolution; lower is better)",
            sig3(point.idle_ms as f64 / 1e3),
            count(point.tasks),
            point.cap
        ),
        &[
            "impl",
            "CPU ms",
            "% of a core",
            "vs workpool",
            "threads after",
            "peak RSS MB",
            "peak threads",
        ],
    );
    add_rows(&mut t, records, |r| {
        vec![
            r.imp.clone(),
            opt(r.value, sig3),
            opt(r.idle_cpu_pct, |p| format!("{p:.1}")),
            ratio(r.ratio),
            threads(r.idle_threads),
            mb(r.peak_rss_mb),
            threads(r.peak_threads),
        ]
    });
    t.note("threads after: live threads at the end of the idle window, main thread included");
    t
}

fn cold(point: &Point, records: &[Record]) -> Table {
    let mut t = Table::new(
        format!(
            "cold: {} rounds of {} empty tasks, each after {} ms idle, cap {}; \
             wall µs per round, lower is better",
            count(point.tasks.div_ceil(point.round_tasks)),
            point.round_tasks,
            point.gap_ms,
            point.cap
        ),
        &[
            "impl",
            "p50 µs",
            "p99 µs",
            "max µs",
            "p99 vs workpool",
            "peak RSS MB",
            "peak threads",
            SWITCHES,
        ],
    );
    add_rows(&mut t, records, |r| {
        vec![
            r.imp.clone(),
            opt(r.p50_us, sig3),
            opt(r.p99_us, sig3),
            opt(r.max_us, sig3),
            ratio(r.ratio),
            mb(r.peak_rss_mb),
            threads(r.peak_threads),
            switches(r),
        ]
    });
    t.note(
        "a round: from its first submit until the submitter, blocked, is woken by its last \
         task; one unmeasured round first starts the threads",
    );
    t
}

/// `redis`: per process count, a row for workpool-redis, one for apalis
/// and one for the in-process ceiling (a workpool `Pool` of their total
/// capacity in one process).
fn redis(points: &[(&Point, &[Record])]) -> Table {
    let Some((p0, _)) = points.first() else {
        return Table::default();
    };
    let mut t = Table::new(
        format!(
            "redis: {} jobs of {} ms sleep through one local Redis, {} jobs at once per \
             process (jobs/s, higher is better)",
            count(p0.tasks),
            p0.sleep_ms,
            REDIS_CAPACITY
        ),
        &[
            "processes",
            "impl",
            "cap",
            "jobs/s",
            "vs apalis",
            "vs in-process",
            "pickup p50 ms",
            "pickup p99 ms",
            "p99 vs apalis",
            "Redis CPU %",
            "consumers CPU %",
            "peak RSS MB",
        ],
    );
    let find = |kind: Kind, procs: usize, imp: Impl| {
        points
            .iter()
            .find(|(p, _)| p.kind == kind && p.procs == procs)
            .and_then(|(_, rs)| rs.iter().find(|r| r.imp == imp.name()))
            .filter(|r| r.status == Status::Ok)
    };
    let ms = |v: Option<f64>| opt(v.map(|v| v / 1e3), sig3);
    let mut rates: Vec<(Impl, usize, f64)> = Vec::new();
    for (p, rs) in points.iter().filter(|(p, _)| p.kind == Kind::Redis) {
        let apalis = find(Kind::Redis, p.procs, Impl::Apalis);
        let inproc = find(Kind::Sleep, p.procs, Impl::Workpool).and_then(|c| c.tasks_per_sec);
        for r in rs.iter() {
            if r.status != Status::Ok {
                let word = status_word(r.status);
                t.row(vec![p.procs.to_string(), r.imp.clone(), word.to_owned()]);
                if let Some(e) = &r.error {
                    t.note(format!("{} at {} process(es): {word}: {e}", r.imp, p.procs));
                }
                continue;
            }
            if let (Some(imp), Some(v)) = (
                [Impl::Workpool, Impl::Apalis]
                    .into_iter()
                    .find(|i| i.name() == r.imp),
                r.value,
            ) {
                rates.push((imp, p.procs, v));
            }
            let vs = |mine: Option<f64>, theirs: Option<f64>| {
                ratio(mine.zip(theirs).map(|(m, a)| m / a))
            };
            t.row(vec![
                p.procs.to_string(),
                r.imp.clone(),
                count(p.cap),
                opt(r.value, rate),
                vs(r.value, apalis.and_then(|a| a.value)),
                vs(r.value, inproc),
                ms(r.p50_us),
                ms(r.p99_us),
                vs(r.p99_us, apalis.and_then(|a| a.p99_us)),
                opt(r.server_cpu_pct, |v| format!("{v:.0}")),
                opt(r.consumers_cpu_pct, |v| format!("{v:.0}")),
                mb(r.peak_rss_mb),
            ]);
        }
        if let Some(c) = inproc {
            t.row(vec![
                p.procs.to_string(),
                "in-process".to_owned(),
                count(p.cap),
                rate(c),
                "-".to_owned(),
                ratio(Some(1.0)),
            ]);
        }
    }
    for imp in [Impl::Workpool, Impl::Apalis] {
        let at = |procs: usize| {
            rates
                .iter()
                .find(|(i, p, _)| *i == imp && *p == procs)
                .map(|r| r.2)
        };
        let (lo, hi) = (REDIS_PROCS[0], REDIS_PROCS[REDIS_PROCS.len() - 1]);
        if let (Some(a), Some(b)) = (at(lo), at(hi)) {
            t.note(format!(
                "{}: {lo} to {hi} processes scales throughput {:.2}x",
                imp.name(),
                b / a
            ));
        }
    }
    t.note(format!(
        "jobs/s: every job pushed at once, from the first push until the last has run; \
         ideal: {} jobs/s per process ({REDIS_CAPACITY} / {} ms); in-process: the same jobs \
         on one workpool Pool of the processes' total capacity in one process (the ceiling)",
        rate(REDIS_CAPACITY as f64 * 1e3 / p0.sleep_ms.max(1) as f64),
        p0.sleep_ms
    ));
    t.note(format!(
        "pickup: enqueue to start, from the consumers' own figures (the worst process's), in a \
         second phase on fresh consumers with the jobs pushed at {:.0} % of their capacity rate",
        PACE * 100.0
    ));
    t.note(format!(
        "workpool: `workpool redis work --capacity {REDIS_CAPACITY} --queue-capacity \
         {REDIS_READ_AHEAD}` (a Pool of {REDIS_CAPACITY} workers and {REDIS_READ_AHEAD} jobs \
         read ahead, as apalis buffers its default batch of 10; a blocking thread::sleep per \
         job); apalis: apalis-redis 1.0 as its README sets it up, `.concurrency(\
         {REDIS_CAPACITY})`, polled every 100 ms (`poll_with_interval`; without one it never \
         sees jobs pushed after it started), the job an async tokio::time::sleep",
    ));
    t.note(
        "Redis CPU %: redis-server's CPU time over the throughput phase, as a share of one \
         core; Redis runs commands on one thread, so near 100 it is the bottleneck; \
         consumers CPU %: all consumer processes' CPU time from their start, over the same \
         phase (200 = both cores of a 2-core machine)",
    );
    t.note("peak RSS: the largest consumer process's");
    t
}

/// One table for a sweep: a row per implementation, a column per point.
fn sweep(
    title: String,
    column: impl Fn(&Point) -> String,
    cell: impl Fn(&Record) -> String,
    points: &[(&Point, &[Record])],
) -> Table {
    let mut headers = vec!["impl".to_owned()];
    headers.extend(points.iter().map(|(p, _)| column(p)));
    let mut t = Table {
        title,
        headers,
        ..Table::default()
    };
    let Some((_, first)) = points.first() else {
        return t;
    };
    for (i, r0) in first.iter().enumerate() {
        let mut row = vec![r0.imp.clone()];
        for (p, records) in points {
            let r = &records[i];
            row.push(match r.status {
                Status::Ok => cell(r),
                status => status_word(status).to_owned(),
            });
            if r.status != Status::Ok {
                if let Some(e) = &r.error {
                    t.note(format!("{} at {}: {e}", r.imp, column(p)));
                }
            }
        }
        t.row(row);
    }
    t
}

/// Every table, in workload order. `records[i]` belongs to `points[i]`, one
/// record per implementation in the same order at every point.
pub(crate) fn tables(points: &[Point], records: &[Vec<Record>]) -> Vec<Table> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let p = &points[i];
        if p.workload == Workload::Redis {
            let mut end = i;
            while end < points.len() && points[end].workload == Workload::Redis {
                end += 1;
            }
            let pairs: Vec<(&Point, &[Record])> = points[i..end]
                .iter()
                .zip(&records[i..end])
                .map(|(p, r)| (p, r.as_slice()))
                .collect();
            out.push(redis(&pairs));
            i = end;
            continue;
        }
        if p.workload == Workload::Scaling {
            let mut end = i;
            while end < points.len() && points[end].workload == Workload::Scaling {
                end += 1;
            }
            let pairs: Vec<(&Point, &[Record])> = points[i..end]
                .iter()
                .zip(&records[i..end])
                .map(|(p, r)| (p, r.as_slice()))
                .collect();
            let of = |kind| {
                pairs
                    .iter()
                    .filter(|(p, _)| p.kind == kind)
                    .copied()
                    .collect::<Vec<_>>()
            };
            let empties = of(Kind::Empty);
            if let Some((p0, _)) = empties.first() {
                out.push(sweep(
                    format!(
                        "scaling, empty tasks on cap {}: ns per task (vs workpool), lower is better",
                        p0.cap
                    ),
                    |p| format!("{} tasks", count(p.tasks)),
                    |r| format!("{} ({})", opt(r.value, sig3), ratio(r.ratio)),
                    &empties,
                ));
            }
            let sleeps = of(Kind::Sleep);
            if let Some((p0, _)) = sleeps.first() {
                out.push(sweep(
                    format!(
                        "scaling, {} waves of {} ms sleep tasks (ideal {} ms): wall ms / peak RSS MB / peak threads",
                        p0.tasks / p0.cap,
                        p0.sleep_ms,
                        (p0.tasks / p0.cap) as u64 * p0.sleep_ms
                    ),
                    |p| format!("cap {}", count(p.cap)),
                    |r| {
                        format!(
                            "{} / {} / {}",
                            opt(r.value, sig3),
                            mb(r.peak_rss_mb),
                            threads(r.peak_threads)
                        )
                    },
                    &sleeps,
                ));
            }
            i = end;
            continue;
        }
        let rs = &records[i];
        out.push(match p.kind {
            Kind::Empty => empty(p, rs),
            Kind::Sleep => sleep(p, rs),
            Kind::Burst => burst(p, rs),
            Kind::Latency => latency(p, rs),
            Kind::Idle => idle(p, rs),
            Kind::Cold => cold(p, rs),
            Kind::Join => join(p, rs),
            Kind::Redis => redis(&[(p, rs.as_slice())]),
            Kind::Map | Kind::MapUnordered => map(p, rs),
            Kind::Keyed => keyed(p, rs),
        });
        i += 1;
    }
    if let Some(hogs) = points.first().map(|p| p.hogs).filter(|&h| h > 0) {
        let with = match hogs {
            1 => " (with 1 hog thread)".to_owned(),
            n => format!(" (with {n} hog threads)"),
        };
        for t in &mut out {
            t.title.push_str(&with);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::child::{ChildReport, RoundTimes};
    use crate::bench::plan::Impl;
    use crate::bench::plan::{points, Sizes};
    use crate::bench::record::fill_ratios;

    fn report(tasks: usize, run_ms: f64) -> ChildReport {
        ChildReport {
            tasks,
            cap: 2,
            completed: tasks,
            build_ms: 0.0,
            run_ms,
            release_ms: 0.0,
            peak_rss_kb: 2048,
            peak_threads: 3,
            hogs: 0,
            latency_us: None,
            idle: None,
            rounds_us: None,
            server_cpu_ms: None,
            consumers_cpu_ms: None,
            // 10,000 and 1,000 per million tasks.
            voluntary_switches: tasks as u64 / 100,
            involuntary_switches: tasks as u64 / 1000,
        }
    }

    #[test]
    fn empty_table_shows_rates_ratios_and_failures() {
        let sizes = Sizes::quick();
        let ps = points(&[Workload::Empty], &sizes, None, None, 2, 0);
        let p = &ps[0];
        let mut records = vec![vec![
            Record::from_runs(p, Impl::Workpool, p.tasks, true, &[report(p.tasks, 40.0)]),
            Record::from_runs(p, Impl::Thread, 10_000, true, &[report(10_000, 500.0)]),
            Record::not_run(
                p,
                Impl::Tokio,
                p.tasks,
                true,
                1,
                Status::Failed,
                "timed out after 120 s".into(),
            ),
        ]];
        fill_ratios(&mut records);
        let text = tables(&ps, &records)[0].render();
        let expected = "\
empty: 200,000 empty tasks, cap 2 (the cost of dispatch; tasks/s, higher is better)
impl        tasks  tasks/s  vs workpool  ns/task  peak RSS MB  peak threads  switches/M vol / invol
-------- -------- -------- ------------ -------- ------------ ------------- -----------------------
workpool  200,000   5.00 M        1.00x      200          2.0             3         10.0 k / 1.00 k
thread     10,000   20.0 k        0.00x    50000          2.0             3         10.0 k / 1.00 k
tokio      failed
  tokio: failed: timed out after 120 s
  thread: 10,000 tasks, not 200,000 (one OS thread per task)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn sweep_tables_have_a_column_per_point() {
        let sizes = Sizes::quick();
        let ps = points(&[Workload::Scaling], &sizes, None, None, 2, 0);
        let mut records: Vec<Vec<Record>> = ps
            .iter()
            .map(|p| {
                vec![
                    Record::from_runs(p, Impl::Workpool, p.tasks, true, &[report(p.tasks, 100.0)]),
                    match tasks_or_skip(p) {
                        Some(n) => Record::from_runs(p, Impl::Thread, n, true, &[report(n, 200.0)]),
                        None => Record::not_run(
                            p,
                            Impl::Thread,
                            p.tasks,
                            true,
                            1,
                            Status::Skipped,
                            "too slow".into(),
                        ),
                    },
                ]
            })
            .collect();
        fill_ratios(&mut records);
        let ts = tables(&ps, &records);
        assert_eq!(ts.len(), 2);
        let empty = ts[0].render();
        assert!(empty.contains("10,000 tasks"), "{empty}");
        assert!(empty.contains("skipped"), "{empty}");
        assert!(empty.contains("10000 (1.00x)"), "{empty}");
        let sleep = ts[1].render();
        assert!(sleep.contains("cap 1,000"), "{sleep}");
        assert!(sleep.contains("200 / 2.0 / 3"), "{sleep}");
        assert!(sleep.contains("ideal 100 ms"), "{sleep}");
    }

    #[test]
    fn cold_table_has_a_row_per_implementation_and_titles_name_the_hogs() {
        let ps = points(
            &[Workload::Cold, Workload::Empty],
            &Sizes::quick(),
            None,
            None,
            2,
            2,
        );
        let mut records: Vec<Vec<Record>> = ps
            .iter()
            .map(|p| {
                [(Impl::Workpool, 100.0), (Impl::Crossbeam, 150.0)]
                    .map(|(imp, p99)| {
                        let run = ChildReport {
                            rounds_us: (p.kind == Kind::Cold).then_some(RoundTimes {
                                rounds: 50,
                                p50: 40.0,
                                p99,
                                max: 300.0,
                            }),
                            hogs: 2,
                            ..report(p.tasks, 10.0)
                        };
                        Record::from_runs(p, imp, p.tasks, true, &[run])
                    })
                    .into()
            })
            .collect();
        fill_ratios(&mut records);
        let ts = tables(&ps, &records);
        let text = ts[0].render();
        let expected = "\
cold: 50 rounds of 100 empty tasks, each after 20 ms idle, cap 2; wall µs per round, lower is better (with 2 hog threads)
impl       p50 µs  p99 µs  max µs  p99 vs workpool  peak RSS MB  peak threads  switches/M vol / invol
--------- ------- ------- ------- ---------------- ------------ ------------- -----------------------
workpool     40.0     100     300            1.00x          2.0             3         10.0 k / 1.00 k
crossbeam    40.0     150     300            1.50x          2.0             3         10.0 k / 1.00 k
";
        assert!(text.starts_with(expected), "{text}");
        assert!(
            ts[1].title.ends_with("(with 2 hog threads)"),
            "{}",
            ts[1].title
        );
        let none = points(&[Workload::Cold], &Sizes::quick(), None, None, 2, 0);
        let t = tables(&none, &records[..1])[0].render();
        assert!(!t.contains("hog"), "{t}");
    }

    #[test]
    fn join_table_shows_rates_and_skipped_pools() {
        let sizes = Sizes::quick();
        let ps = points(&[Workload::Join], &sizes, None, None, 2, 0);
        let p = &ps[0];
        let mut records = vec![[Impl::Workpool, Impl::Thread, Impl::Threadpool]
            .map(|imp| match crate::bench::plan::tasks_for(imp, p, &sizes) {
                Ok(n) => Record::from_runs(p, imp, n, true, &[report(n, n as f64 / 1e4)]),
                Err(why) => {
                    Record::not_run(p, imp, p.tasks, true, 1, Status::Skipped, why.to_string())
                }
            })
            .into()];
        fill_ratios(&mut records);
        assert_eq!(records[0][0].metric, "tasks_per_sec");
        let text = tables(&ps, &records)[0].render();
        let expected = "\
join: 20,000 tasks returning a u64, all spawned, then joined in order and summed, cap 2 (the cost of a result; tasks/s, higher is better)
impl          tasks  tasks/s  vs workpool  ns/task  peak RSS MB  peak threads  switches/M vol / invol
---------- -------- -------- ------------ -------- ------------ ------------- -----------------------
workpool     20,000   10.0 M        1.00x      100          2.0             3         10.0 k / 1.00 k
thread       10,000   10.0 M        1.00x      100          2.0             3         10.0 k / 1.00 k
threadpool  skipped
  threadpool: skipped: its tasks give no results to join (fire and forget only)
  thread: 10,000 tasks, not 20,000 (one OS thread per task)
";
        assert!(text.starts_with(expected), "{text}");
    }

    #[test]
    fn redis_table_compares_each_process_count_with_apalis_and_the_ceiling() {
        let sizes = Sizes::quick();
        let ps = points(&[Workload::Redis], &sizes, None, None, 2, 0);
        let records: Vec<Vec<Record>> = ps
            .iter()
            .map(|p| {
                [Impl::Workpool, Impl::Apalis]
                    .into_iter()
                    .map(|imp| match crate::bench::plan::tasks_for(imp, p, &sizes) {
                        Ok(n) => {
                            // workpool: 2,000 jobs in 500 ms x procs^-0.9; apalis 1 s.
                            let ms = if imp == Impl::Apalis { 1000.0 } else { 500.0 };
                            let ms = if p.kind == Kind::Sleep { 400.0 } else { ms };
                            let run = ChildReport {
                                latency_us: Some(crate::bench::child::Percentiles {
                                    p50: 1e3,
                                    p99: if imp == Impl::Apalis { 100e3 } else { 5e3 },
                                    max: f64::NAN,
                                    due_p99: f64::NAN,
                                }),
                                server_cpu_ms: Some(250),
                                consumers_cpu_ms: Some(600),
                                voluntary_switches: 0,
                                involuntary_switches: 0,
                                ..report(n, ms / p.procs as f64)
                            };
                            Record::from_runs(p, imp, n, true, &[run])
                        }
                        Err(why) => Record::not_run(
                            p,
                            imp,
                            p.tasks,
                            true,
                            1,
                            Status::Skipped,
                            why.to_string(),
                        ),
                    })
                    .collect()
            })
            .collect();
        let text = tables(&ps, &records)[0].render();
        let row = |procs: &str, imp: &str| {
            text.lines()
                .find(|l| l.split_whitespace().take(2).eq([procs, imp]))
                .unwrap_or_else(|| panic!("no {procs} {imp} row in {text}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        // processes impl cap jobs/s vs-apalis vs-in-process p50 p99 p99-vs-apalis redis% consumers% rss
        assert_eq!(
            row("1", "workpool"),
            [
                "1", "workpool", "64", "4.00", "k", "2.00x", "0.80x", "1.00", "5.00", "0.05x",
                "50", "120", "2.0"
            ]
        );
        assert_eq!(row("4", "apalis")[3..6], ["8.00", "k", "1.00x"]);
        assert_eq!(row("4", "in-process")[3..7], ["20.0", "k", "-", "1.00x"]);
        assert!(
            text.contains("workpool: 1 to 4 processes scales throughput 4.00x"),
            "{text}"
        );
        assert!(
            text.contains("apalis: 1 to 4 processes scales throughput 4.00x"),
            "{text}"
        );
        assert!(
            !text.contains("skipped"),
            "the ceiling's apalis record has no row: {text}"
        );
    }

    fn tasks_or_skip(p: &Point) -> Option<usize> {
        crate::bench::plan::tasks_for(Impl::Thread, p, &Sizes::quick()).ok()
    }
}
