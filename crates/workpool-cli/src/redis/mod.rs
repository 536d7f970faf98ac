//! `workpool redis produce|work|apalis-work`: the command's arguments and
//! its dispatch to [`demo`] (workpool-redis's demo) and [`apalis`] (the
//! `redis` workload's peer). Neither of the two imports the other; `bench`'s
//! `redis` workload uses both.

pub(crate) mod apalis;
pub(crate) mod demo;

use clap::{Args, Subcommand};

/// `workpool redis ...`.
#[derive(Debug, Args)]
pub(crate) struct RedisArgs {
    #[command(subcommand)]
    pub(crate) command: RedisCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RedisCommand {
    /// Pushes --count demo jobs `{"id", "sleep_ms", "fail"}` onto --stream.
    Produce(demo::ProduceArgs),
    /// Runs the demo jobs of --stream in consumer group --group on a pool of
    /// --capacity workers, until SIGINT or SIGTERM; then stops reading,
    /// finishes and acks its running jobs, and exits 0. Each run is counted
    /// with `HINCRBY {stream}:runs {id} 1`; failed jobs are retried, and
    /// after --max-deliveries moved to `{stream}:dead`.
    Work(demo::WorkArgs),
    /// The `redis` workload's peer: an apalis worker (apalis-redis) running
    /// the demo job; `bench` starts these.
    #[command(name = "apalis-work", hide = true)]
    ApalisWork(apalis::ApalisWorkArgs),
}

/// Runs the `workpool redis` subcommand `args` names.
pub(crate) fn run(args: &RedisArgs) -> anyhow::Result<()> {
    match &args.command {
        RedisCommand::Produce(p) => demo::produce(p)?,
        RedisCommand::Work(w) => demo::work(w)?,
        RedisCommand::ApalisWork(a) => apalis::work(a)?,
    }
    Ok(())
}
