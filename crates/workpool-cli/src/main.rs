//! `workpool`: workpool's command-line companion.
//!
//! `workpool bench` runs a set of workloads on workpool and on the thread
//! pools it is measured against, each (implementation, workload) run in a
//! process of its own so that peak memory and thread counts are per pair,
//! and prints one table per workload. `workpool soak` drives a pool with a
//! random mix for a while and checks that no task is lost or run twice and
//! that threads and memory come back. Linux only: memory, threads and CPU
//! time come from /proc.
//!
//! The modules follow the commands: [`cli`] parses, `main` dispatches;
//! `bench/` holds everything only `bench` (and its `bench-one` child) uses,
//! `soak/` the soak, `redis/` the `workpool redis` commands; [`duration`]
//! and [`probe`] serve more than one of them.

mod bench;
mod cli;
mod duration;
mod probe;
mod redis;
mod soak;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each error's text already names its cause (as the errors of
            // workpool-redis do), so `{e}`, not the chain `{e:#}`.
            eprintln!("workpool: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; every error below comes up as an `anyhow::Error`.
fn run(command: &cli::Command) -> anyhow::Result<()> {
    match command {
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Soak(args) => Ok(soak::run(&args.settings())?),
        cli::Command::Redis(args) => redis::run(args),
        cli::Command::BenchOne(args) => {
            let report = bench::child::run(args)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
