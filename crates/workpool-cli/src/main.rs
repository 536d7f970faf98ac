//! `workpool`: workpool's command-line companion.
//!
//! `workpool bench` runs a set of workloads on workpool and on the thread
//! pools it is measured against, each (implementation, workload) run in a
//! process of its own so that peak memory and thread counts are per pair,
//! and prints one table per workload. `workpool soak` drives a pool with a
//! random mix for a while and checks that no task is lost or run twice and
//! that threads and memory come back. Linux only: memory, threads and CPU
//! time come from /proc.

mod apalis_peer;
mod bench;
mod chart;
mod child;
mod cli;
mod peers;
mod plan;
mod probe;
mod record;
mod redis_bench;
mod redis_cmd;
mod report;
mod soak;
mod stats;
mod table;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = match &cli.command {
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Soak(args) => soak::run(args),
        cli::Command::Redis(args) => redis_cmd::run(args),
        cli::Command::BenchOne(args) => child::run(args).and_then(|report| {
            serde_json::to_string(&report)
                .map(|line| println!("{line}"))
                .map_err(|e| e.to_string())
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workpool: {e}");
            ExitCode::FAILURE
        }
    }
}
