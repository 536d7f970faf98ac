//! `workpool bench`: plans the points, runs every run of every pair in a
//! child process of its own, and prints, writes and draws the results.
//!
//! - [`plan`]: the implementations, workloads and sizes, and the points;
//! - [`child`] (`workpool bench-one`, one run in a process of its own) on
//!   [`peers`] (each implementation behind one `Runner`); [`redis`]: the
//!   `redis` workload, which runs from here, not in a child;
//! - [`record`]: one JSON line per pair; [`report`] and [`table`]: the
//!   tables; [`chart`]: the SVG; [`stats`]: medians and quantiles.

pub(crate) mod chart;
pub(crate) mod child;
pub(crate) mod compose;
pub(crate) mod peers;
pub(crate) mod plan;
pub(crate) mod record;
pub(crate) mod redis;
pub(crate) mod report;
pub(crate) mod stats;
pub(crate) mod table;

use crate::cli::{dedup, BenchArgs};
use crate::probe::{self, Machine};
use chart::ChartError;
use child::ChildReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan::{Impl, Kind, Point, Sizes, Workload};
use record::{fill_ratios, Record, Status};
use redis::RedisBenchError;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// Why `bench` stopped (a failed run only fails its row: see [`RunError`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// `current_exe`, which every child runs, is unknown.
    #[error("cannot find this program: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// `--json`.
    #[error("cannot write {}: {source}", path.display())]
    WriteJson {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--svg`.
    #[error("cannot draw {}: {source}", path.display())]
    Draw {
        path: PathBuf,
        #[source]
        source: ChartError,
    },
}

/// Why one run failed; its row reads "failed" with this text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The child process did not start.
    #[error("cannot start: {0}")]
    Start(#[source] std::io::Error),
    /// Waiting for it failed.
    #[error("{0}")]
    Wait(#[source] std::io::Error),
    /// It ran past `--timeout` (as [`describe`] writes it) and was killed.
    #[error("timed out after {0}, killed")]
    TimedOut(String),
    /// It failed: its status and the last line of its stderr.
    #[error("{status}: {why}")]
    Exited { status: ExitStatus, why: String },
    /// Its last line is not a report.
    #[error("unreadable report {line:?}: {source}")]
    Unreadable {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// Fewer tasks ran than were submitted.
    #[error("{completed} of {tasks} tasks ran")]
    Incomplete { completed: usize, tasks: usize },
    /// A `redis` run.
    #[error("{0}")]
    Redis(#[from] RedisBenchError),
}

/// Runs the bench `args` describes and prints its tables to stdout.
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cores = probe::cores();
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let runs = args.runs.unwrap_or(sizes.runs);
    let impls = if args.impls.is_empty() {
        Impl::ALL.to_vec()
    } else {
        dedup(&args.impls)
    };
    let workloads = if args.workload.is_empty() {
        Workload::ALL.to_vec()
    } else {
        dedup(&args.workload)
    };
    let points = plan::points(&workloads, &sizes, args.tasks, args.cap, cores, args.hogs);
    let exe = std::env::current_exe().map_err(BenchError::CurrentExe)?;
    let timeout = args.timeout;

    let planned: Vec<Vec<Result<usize, plan::Skip>>> = points
        .iter()
        .map(|p| {
            impls
                .iter()
                .map(|&i| plan::tasks_for(i, p, &sizes))
                .collect()
        })
        .collect();
    let total = planned.iter().flatten().filter(|t| t.is_ok()).count() * runs;
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );

    // One redis-server for every `redis` point, stopped when dropped; or why
    // there is none.
    let redis = planned
        .iter()
        .zip(&points)
        .any(|(t, p)| p.kind == Kind::Redis && t.iter().any(Result::is_ok))
        .then(redis::Server::start);

    let mut records: Vec<Vec<Record>> = Vec::with_capacity(points.len());
    for (point, tasks) in points.iter().zip(&planned) {
        let mut row = Vec::with_capacity(impls.len());
        for (&imp, tasks) in impls.iter().zip(tasks) {
            // No row at all where it does not belong (apalis beside thread
            // pools), so that sweeps keep one row per implementation.
            if !imp.runs(point.workload) {
                continue;
            }
            let server = match (point.kind, &redis) {
                (Kind::Redis, Some(Ok(server))) => Some(server),
                _ => None,
            };
            // Why it is skipped: the plan's reason, or no redis-server.
            let planned = match (tasks, &redis) {
                (Ok(_), Some(Err(why))) if point.kind == Kind::Redis => Err(why.to_string()),
                (Ok(tasks), _) => Ok(*tasks),
                (Err(why), _) => Err(why.to_string()),
            };
            let tasks = match planned {
                Ok(tasks) => tasks,
                Err(why) => {
                    row.push(Record::not_run(
                        point,
                        imp,
                        point.tasks,
                        args.quick,
                        runs,
                        Status::Skipped,
                        why,
                    ));
                    continue;
                }
            };
            let mut reports = Vec::with_capacity(runs);
            let mut failure = None;
            for run in 1..=runs {
                bar.set_message(format!(
                    "{} on {} ({} tasks, cap {}), run {run}/{runs}",
                    imp.name(),
                    point.workload.name(),
                    tasks,
                    point.cap
                ));
                let report = match server {
                    Some(server) => {
                        redis::run(&exe, server, imp, point, run, timeout).map_err(RunError::from)
                    }
                    None => run_child(&exe, imp, point, tasks, timeout),
                };
                match report {
                    Ok(r) => reports.push(r),
                    Err(e) => failure = failure.or(Some(format!("run {run}: {e}"))),
                }
                bar.inc(1);
            }
            row.push(match failure {
                None => Record::from_runs(point, imp, tasks, args.quick, &reports),
                Some(e) => Record::not_run(point, imp, tasks, args.quick, runs, Status::Failed, e),
            });
        }
        records.push(row);
    }
    bar.finish_and_clear();
    fill_ratios(&mut records);

    let mut out = String::new();
    out.push_str(&format!(
        "workpool bench: {} implementations, {} workloads, median of {runs} run{}, one process per run{}\n",
        impls.len(),
        workloads.len(),
        if runs == 1 { "" } else { "s" },
        match args.hogs {
            0 => String::new(),
            1 => ", 1 busy-looping hog thread in each".to_owned(),
            n => format!(", {n} busy-looping hog threads in each"),
        }
    ));
    if args.quick {
        out.push_str(
            "--quick: smaller sizes than the full bench (which runs 1,000,000 empty tasks, \
             100,000 sleep tasks at cap 10,000, 10,000 burst and 20,000 latency tasks, \
             a 2 s idle window, 200 cold rounds, 100,000 join tasks, 20,000 redis jobs) and 1 \
             run per pair unless \
             --runs is given\n",
        );
    }
    for table in report::tables(&points, &records) {
        out.push('\n');
        out.push_str(&table.render());
    }
    let machine = Machine::read();
    out.push_str(&format!(
        "\nmachine: {} cores, {}, Linux {}; took {:.1} s\n",
        machine.cores,
        machine.cpu,
        machine.kernel,
        started.elapsed().as_secs_f64()
    ));
    print!("{out}");

    if let Some(path) = &args.json {
        write_json(path, &records).map_err(|source| BenchError::WriteJson {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &args.svg {
        chart::draw(path, &points, &records, &machine).map_err(|source| BenchError::Draw {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

fn write_json(path: &Path, records: &[Vec<Record>]) -> std::io::Result<()> {
    let mut file = BufWriter::new(File::create(path)?);
    for r in records.iter().flatten() {
        serde_json::to_writer(&mut file, r)?;
        file.write_all(b"\n")?;
    }
    file.flush()
}

/// Runs one run of `imp` at `point` in a child process and reads its report.
fn run_child(
    exe: &Path,
    imp: Impl,
    point: &Point,
    tasks: usize,
    timeout: Duration,
) -> Result<ChildReport, RunError> {
    let mut child = Command::new(exe)
        .arg("bench-one")
        .args(["--impl", &imp.name()])
        .args(["--kind", &point.kind.name()])
        .args(["--tasks", &tasks.to_string()])
        .args(["--cap", &point.cap.to_string()])
        .args(["--work-us", &point.work_us.to_string()])
        .args(["--sleep-ms", &point.sleep_ms.to_string()])
        .args(["--idle-ms", &point.idle_ms.to_string()])
        .args(["--round-tasks", &point.round_tasks.to_string()])
        .args(["--gap-ms", &point.gap_ms.to_string()])
        .args(["--hogs", &point.hogs.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Start)?;
    // Read both pipes on their own threads, so a chatty child never blocks
    // on a full pipe while we wait for it to exit.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = match child.wait_timeout(timeout).map_err(RunError::Wait)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::TimedOut(describe(timeout)));
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let why = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(RunError::Exited {
            status,
            why: why.to_owned(),
        });
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let report: ChildReport =
        serde_json::from_str(line).map_err(|source| RunError::Unreadable {
            line: line.to_owned(),
            source,
        })?;
    if report.completed != tasks {
        return Err(RunError::Incomplete {
            completed: report.completed,
            tasks,
        });
    }
    Ok(report)
}

/// A `--timeout` as a reason says it: `120 s` in whole seconds, as before
/// durations were accepted, else as humantime writes it (`1s 500ms`).
fn describe(timeout: Duration) -> String {
    if timeout.subsec_nanos() == 0 {
        format!("{} s", timeout.as_secs())
    } else {
        humantime::format_duration(timeout).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use std::time::Duration;

    #[test]
    fn timeouts_read_as_given() {
        assert_eq!(describe(Duration::from_secs(120)), "120 s");
        assert_eq!(describe(Duration::from_millis(500)), "500ms");
        assert_eq!(describe(Duration::from_millis(1500)), "1s 500ms");
    }
}
