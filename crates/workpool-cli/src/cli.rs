//! The command line (clap): `workpool bench`, the hidden `workpool
//! bench-one` that `bench` re-executes once per (implementation, workload)
//! run, `workpool soak`, and `workpool redis` (whose arguments are
//! [`crate::redis::RedisArgs`]); and the checks of their values.

use crate::bench::plan::{Impl, Kind, Workload};
use crate::duration::{parse_duration, DurationError};
use crate::soak;
use clap::{Args, Parser, Subcommand};
use std::num::ParseIntError;
use std::path::PathBuf;
use std::time::Duration;

/// workpool's companion tool. Linux only: figures come from /proc.
#[derive(Debug, Parser)]
#[command(name = "workpool", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Runs each workload on workpool and on its peers, every
    /// (implementation, workload) pair in a process of its own, and prints one
    /// table per workload. Linux only: peak memory, threads and CPU time are
    /// read from /proc.
    Bench(BenchArgs),
    /// Drives a pool and a multi-pool with a random mix for a while and
    /// checks that no task is lost or run twice, and that threads and memory
    /// come back. Linux only: threads and RSS are read from /proc.
    ///
    /// Submitter threads (--threads) draw from every way in: short and long
    /// tasks (µs to 3 ms), panicking ones, spawn and cancel, deadlines,
    /// retries, spawn_batch, batches with on_complete, scopes (also opened
    /// from a task), submit_async and spawn_async, try_submit and
    /// submit_timeout on a full pool, keyed tasks on 8 keys (never two of
    /// a key at once), delayed tasks, and maps of up to 40 inputs (each
    /// input a tracked task, one perhaps panicking); the odd-numbered
    /// threads use a
    /// MultiPool (hand-off, no queue) for half of what it offers. Where
    /// features meet: scopes whose tasks panic, one with a payload whose
    /// Drop panics (the scope must end only after all its tasks), and
    /// parallel_execute with a panicking closure; on a second, small
    /// MultiPool with a queue, tasks that spawn subtasks on it and join them
    /// (often across its pools) or submit to it, blocking; tasks returning
    /// 4 KiB inline on pools with a 1 h task_deadline (whose maintenance
    /// thread holds an entry per task), and tasks with a 1-5 ms deadline.
    /// Beside them, a tuner thread storms `tune` between 1 and 32 workers,
    /// and a control thread every few seconds (3 s, or a tenth of a shorter
    /// run) closes a pool with release_timeout (or release), and reboots it.
    ///
    /// Every task has an id and a record in a ledger, which prints once a
    /// second: elapsed, accepted, ran, cancelled, refused, lost, duplicated,
    /// the process's OS threads and RSS, and the pools' stats() submitted and
    /// completed. At the end the submitters stop, the pools are drained
    /// (wait_idle) and released (release_timeout), and a summary counts each
    /// kind of operation.
    ///
    /// The run fails (exit status 1, each failure printed) on: a task lost
    /// (accepted, but after the drain neither run nor reported cancelled by
    /// its handle or callback; or its closure dropped unrun although nothing
    /// could cancel it), a task run twice, a refused task that ran, a task
    /// reported cancelled that ran, a handle that contradicts its task, an
    /// unexpected panic, a scope that ends before its tasks or with a panic
    /// not theirs, a failed release_timeout, reboot or wait_idle, no task run
    /// for 30 s, a pool with work outstanding that finishes none for 10 s
    /// (a deadlock), OS threads above their count before the pools 5 s
    /// after the final release_timeout, or RSS past its bound: the RSS after
    /// the warm-up (the first tenth of the run, at least 1 s) plus
    /// --rss-slack-mb (64 MiB), checked every second and at the end. At the
    /// soak's rate (about 100,000 tasks a second in release mode on 2 cores)
    /// a leak of 16 bytes a task crosses 64 MiB within a minute, 2 bytes a
    /// task within 10 minutes, while the allocator's and the threads' own
    /// swings stay within a few MiB. The first failure stops the run early.
    Soak(SoakArgs),
    /// Runs one workload once on one implementation and prints one JSON line;
    /// `bench` starts one of these per run so that peak memory is per pair.
    #[command(name = "bench-one", hide = true)]
    BenchOne(OneArgs),
    /// Pools on many hosts draining one Redis stream (workpool-redis):
    /// `produce` pushes demo jobs, `work` runs them until SIGINT/SIGTERM.
    Redis(crate::redis::RedisArgs),
}

/// Options of `workpool bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Smaller task counts and capacities and one run per pair (unless
    /// --runs says otherwise), so that the whole run takes under a minute on
    /// 2 cores; the tables say which sizes ran.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Implementations to run (repeat, or a comma list). Default: all.
    #[arg(long = "impl", value_name = "IMPL", value_enum, value_delimiter = ',')]
    pub(crate) impls: Vec<Impl>,

    /// Workloads to run (repeat, or a comma list). Default: all.
    #[arg(long, value_name = "WORKLOAD", value_enum, value_delimiter = ',')]
    pub(crate) workload: Vec<Workload>,

    /// Tasks per run for every workload but `scaling`, whose sweep sets its
    /// own.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) tasks: Option<usize>,

    /// Capacity (most threads) for every workload but `scaling`.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) cap: Option<usize>,

    /// Runs per pair; tables show the median (and the highest peak memory and
    /// thread count of the runs). Default: 3, or 1 with --quick.
    #[arg(long, value_name = "N", value_parser = runs)]
    pub(crate) runs: Option<usize>,

    /// Writes one JSON object per line per pair (and per sweep point).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Draws the figures as an SVG chart.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,

    /// How long a single run may take before it is killed and its row reads
    /// "failed": 90s, 2m, 500ms, 1m 30s, or a bare number of seconds; at
    /// least 1 ms.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = timeout)]
    pub(crate) timeout: Duration,

    /// Threads that busy-loop inside every child process while it builds the
    /// implementation and runs the workload, to measure on an oversubscribed
    /// machine. Default: 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) hogs: usize,
}

/// Options of `workpool soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// How long the submitters run, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = positive_u64)]
    pub(crate) secs: u64,

    /// Submitter threads (1 to 64); the odd-numbered ones also drive the
    /// multi-pool.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = submitters)]
    pub(crate) threads: usize,

    /// How far the RSS may grow over its figure at the end of the warm-up,
    /// in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub(crate) rss_slack_mb: u64,

    /// The seed of the random mix (printed at the start: the same seed makes
    /// the same choices, not the same timing). Default: from the clock.
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
}

impl SoakArgs {
    /// What `soak::run` needs of them.
    pub(crate) fn settings(&self) -> soak::Settings {
        soak::Settings {
            secs: self.secs,
            threads: self.threads,
            rss_slack_mb: self.rss_slack_mb,
            seed: self.seed,
        }
    }
}

/// Options of the hidden `workpool bench-one`.
#[derive(Debug, Args)]
pub(crate) struct OneArgs {
    #[arg(long = "impl", value_enum)]
    pub(crate) imp: Impl,
    #[arg(long, value_enum)]
    pub(crate) kind: Kind,
    #[arg(long, value_parser = positive)]
    pub(crate) tasks: usize,
    #[arg(long, value_parser = positive)]
    pub(crate) cap: usize,
    /// CPU work per task of `burst` and `latency`, in microseconds, timed
    /// by the clock.
    #[arg(long, default_value_t = 50)]
    pub(crate) work_us: u64,
    /// Sleep per task of `sleep`, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) sleep_ms: u64,
    /// The idle window of `idle`, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub(crate) idle_ms: u64,
    /// Tasks per round of `cold`.
    #[arg(long, default_value_t = 100, value_parser = positive)]
    pub(crate) round_tasks: usize,
    /// The idle gap before each round of `cold`, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub(crate) gap_ms: u64,
    /// Threads that busy-loop beside the implementation during build and run.
    #[arg(long, default_value_t = 0)]
    pub(crate) hogs: usize,
}

/// Why clap refused a value; it prints this after the flag and the value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArgError {
    /// 0 where at least 1 is needed.
    #[error("must be at least 1")]
    Zero,
    /// Not a `usize`.
    #[error("not a whole number: {0}")]
    NotWhole(#[source] ParseIntError),
    /// `--runs`: the reason, and why it matters.
    #[error("{0} (the median of zero runs is nothing)")]
    Runs(#[source] Box<ArgError>),
    /// `--threads` of `soak` past 64.
    #[error("at most 64, got {0}")]
    TooMany(usize),
    /// A `--timeout` under 1 ms.
    #[error("must be at least 1 ms")]
    TooShort,
    /// Not a duration at all.
    #[error("{0}")]
    Duration(#[from] DurationError),
}

fn positive(s: &str) -> Result<usize, ArgError> {
    match s.parse::<usize>() {
        Ok(0) => Err(ArgError::Zero),
        Ok(n) => Ok(n),
        Err(e) => Err(ArgError::NotWhole(e)),
    }
}

fn positive_u64(s: &str) -> Result<u64, ArgError> {
    positive(s).map(|n| n as u64)
}

/// A `--timeout`: a humantime duration or a bare number of seconds (see
/// [`parse_duration`]), of at least 1 ms.
fn timeout(s: &str) -> Result<Duration, ArgError> {
    match parse_duration(s)? {
        d if d < Duration::from_millis(1) => Err(ArgError::TooShort),
        d => Ok(d),
    }
}

fn submitters(s: &str) -> Result<usize, ArgError> {
    match positive(s)? {
        n if n > 64 => Err(ArgError::TooMany(n)),
        n => Ok(n),
    }
}

fn runs(s: &str) -> Result<usize, ArgError> {
    positive(s).map_err(|e| ArgError::Runs(Box::new(e)))
}

/// Removes repeats, keeping the first of each, so `--impl a,b --impl a` runs
/// `a` once.
pub(crate) fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for &item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::ValueEnum;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("workpool").chain(args.iter().copied()))
    }

    fn bench(args: &[&str]) -> BenchArgs {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        match parse(&all).expect("valid arguments").command {
            Command::Bench(b) => b,
            other => panic!("not bench: {other:?}"),
        }
    }

    #[test]
    fn lists_and_repeats_both_work() {
        let b = bench(&[
            "--impl",
            "workpool,rayon",
            "--impl",
            "crossbeam",
            "--workload",
            "empty",
        ]);
        assert_eq!(b.impls, [Impl::Workpool, Impl::Rayon, Impl::Crossbeam]);
        assert_eq!(b.workload, [Workload::Empty]);
        assert_eq!(b.runs, None);
        assert_eq!(b.timeout, Duration::from_secs(120));
        assert_eq!(b.hogs, 0);
    }

    #[test]
    fn hogs_and_the_rusty_pool_alias_parse() {
        let b = bench(&["--hogs", "3", "--impl", "rusty-pool,workpool-handoff"]);
        assert_eq!(b.hogs, 3);
        assert_eq!(b.impls, [Impl::RustyPool, Impl::WorkpoolHandoff]);
        assert_eq!(bench(&["--hogs", "0"]).hogs, 0);
        let err = parse(&["bench", "--hogs", "many"]).unwrap_err();
        assert!(err.to_string().contains("--hogs"), "{err}");
        let one = match parse(&[
            "bench-one",
            "--impl",
            "workpool",
            "--kind",
            "cold",
            "--tasks",
            "200",
            "--cap",
            "2",
            "--hogs",
            "2",
        ])
        .expect("valid arguments")
        .command
        {
            Command::BenchOne(one) => one,
            other => panic!("not bench-one: {other:?}"),
        };
        assert_eq!((one.kind, one.hogs), (Kind::Cold, 2));
        assert_eq!((one.round_tasks, one.gap_ms), (100, 20));
    }

    #[test]
    fn every_name_parses_back() {
        for imp in Impl::ALL {
            assert_eq!(bench(&["--impl", &imp.name()]).impls, [imp]);
        }
        for w in Workload::ALL {
            assert_eq!(bench(&["--workload", &w.name()]).workload, [w]);
        }
    }

    #[test]
    fn names_users_see_are_unchanged() {
        let names = |all: Vec<String>| all.join(" ");
        assert_eq!(
            names(Impl::ALL.map(Impl::name).into()),
            "workpool workpool-handoff thread threadpool rayon tokio rusty_pool threadfin \
             crossbeam apalis"
        );
        assert_eq!(
            names(Workload::ALL.map(Workload::name).into()),
            "empty sleep burst latency scaling idle cold join redis map keyed"
        );
        assert_eq!(
            names(Kind::value_variants().iter().map(|k| k.name()).collect()),
            "empty sleep burst latency idle cold join redis map map-unordered keyed"
        );
        // The table order is the order of declaration, so that the choices
        // clap lists in --help and in errors come in table order too.
        assert_eq!(Impl::ALL, Impl::value_variants());
        assert_eq!(Workload::ALL, Workload::value_variants());
    }

    #[test]
    fn multi_word_names_parse_in_both_spellings() {
        for (spelling, imp) in [
            ("rusty_pool", Impl::RustyPool),
            ("rusty-pool", Impl::RustyPool),
            ("workpool-handoff", Impl::WorkpoolHandoff),
            ("workpool_handoff", Impl::WorkpoolHandoff),
        ] {
            assert_eq!(bench(&["--impl", spelling]).impls, [imp], "{spelling}");
            let one = parse(&[
                "bench-one",
                "--impl",
                spelling,
                "--kind",
                "empty",
                "--tasks",
                "1",
                "--cap",
                "1",
            ])
            .expect("valid arguments");
            match one.command {
                Command::BenchOne(one) => assert_eq!(one.imp, imp, "{spelling}"),
                other => panic!("not bench-one: {other:?}"),
            }
        }
        // Either spelling is the same implementation, run once.
        let b = bench(&[
            "--impl",
            "rusty-pool,rusty_pool,workpool_handoff,workpool-handoff",
        ]);
        assert_eq!(dedup(&b.impls), [Impl::RustyPool, Impl::WorkpoolHandoff]);
        // Tables and JSON print one spelling, the one clap lists.
        assert_eq!(Impl::RustyPool.name(), "rusty_pool");
        assert_eq!(Impl::WorkpoolHandoff.name(), "workpool-handoff");
        let err = parse(&["bench", "--impl", "nosuchpool"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rusty_pool") && err.contains("workpool-handoff"),
            "{err}"
        );
        assert!(
            !err.contains("rusty-pool") && !err.contains("workpool_handoff"),
            "{err}"
        );
    }

    #[test]
    fn timeout_takes_a_duration_or_seconds() {
        for (text, want) in [
            ("90s", Duration::from_secs(90)),
            ("2m", Duration::from_secs(120)),
            ("500ms", Duration::from_millis(500)),
            ("1m 30s", Duration::from_secs(90)),
            ("45", Duration::from_secs(45)),
            ("1ms", Duration::from_millis(1)),
        ] {
            assert_eq!(bench(&["--timeout", text]).timeout, want, "{text}");
        }
        for bad in ["0", "0s", "500us", "soon", "5 parsecs"] {
            let err = parse(&["bench", "--timeout", bad]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad}");
            let text = err.to_string();
            assert!(text.contains(&format!("'{bad}'")), "{text}");
            assert!(text.contains("--timeout"), "{text}");
        }
        let err = parse(&["bench", "--timeout", "100us"]).unwrap_err();
        assert!(err.to_string().contains("at least 1 ms"), "{err}");
    }

    #[test]
    fn bad_impl_names_the_value() {
        let err = parse(&["bench", "--impl", "workpool,nosuchpool"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        let text = err.to_string();
        assert!(text.contains("'nosuchpool'"), "{text}");
        assert!(text.contains("--impl"), "{text}");
        assert!(text.contains("rusty_pool"), "lists the choices: {text}");
    }

    #[test]
    fn bad_workload_names_the_value() {
        let err = parse(&["bench", "--workload", "soak"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        let text = err.to_string();
        assert!(text.contains("'soak'"), "{text}");
        assert!(text.contains("--workload"), "{text}");
    }

    #[test]
    fn zero_runs_tasks_and_cap_are_refused() {
        for flag in ["--runs", "--tasks", "--cap", "--timeout"] {
            let err = parse(&["bench", flag, "0"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{flag}");
            let text = err.to_string();
            assert!(text.contains("'0'") && text.contains(flag), "{text}");
            assert!(text.contains("at least 1"), "{text}");
        }
        let err = parse(&["bench", "--runs", "three"]).unwrap_err();
        assert!(err.to_string().contains("'three'"));
    }

    #[test]
    fn soak_defaults_and_limits() {
        let soak = |args: &[&str]| {
            let mut all = vec!["soak"];
            all.extend_from_slice(args);
            match parse(&all).map(|c| c.command) {
                Ok(Command::Soak(s)) => Ok(s),
                Ok(other) => panic!("not soak: {other:?}"),
                Err(e) => Err(e),
            }
        };
        let s = soak(&[]).expect("valid arguments");
        assert_eq!(
            (s.secs, s.threads, s.rss_slack_mb, s.seed),
            (60, 4, 64, None)
        );
        let s = soak(&["--secs", "3", "--threads", "2", "--seed", "9"]).expect("valid");
        assert_eq!((s.secs, s.threads, s.seed), (3, 2, Some(9)));
        for bad in [["--secs", "0"], ["--threads", "0"], ["--threads", "65"]] {
            let err = soak(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad:?}");
            assert!(err.to_string().contains(bad[0]), "{err}");
        }
    }

    #[test]
    fn dedup_keeps_first_order() {
        assert_eq!(dedup(&[3, 1, 3, 2, 1]), [3, 1, 2]);
    }

    #[test]
    fn command_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// The crate's README (its crates.io page) shows these command lines;
    /// each must still parse, with the subcommand it names.
    #[test]
    fn the_readme_commands_parse() {
        let readme = include_str!("../README.md");
        let lines: Vec<&str> = readme
            .lines()
            .filter_map(|line| line.strip_prefix("workpool "))
            .collect();
        assert!(lines.len() >= 5, "README commands found: {lines:?}");
        for line in lines {
            let args: Vec<&str> = line.split_whitespace().collect();
            let cli = parse(&args).unwrap_or_else(|e| panic!("`workpool {line}`: {e}"));
            let named = match cli.command {
                Command::Bench(_) => "bench",
                Command::Soak(_) => "soak",
                Command::Redis(_) => "redis",
                Command::BenchOne(_) => "bench-one",
            };
            assert_eq!(args[0], named, "`workpool {line}`");
        }
    }
}
