//! `workpool-http`: the parallel HTTP response service on a workpool pool,
//! with the pool's `/metrics`, `/health` and dashboard; shuts down in layers
//! on SIGINT or SIGTERM.

use clap::Parser;
use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;
use workpool::{HealthPolicy, Pool};
use workpool_http::{serve, shutdown_signal, Service, ShutdownLimits};

/// Answers HTTP requests from handlers run in parallel on a workpool pool.
#[derive(Parser, Debug)]
#[command(name = "workpool-http", version)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The pool's capacity: the most handlers running at once.
    #[arg(long, default_value_t = 16)]
    capacity: usize,
    /// The deadline of a request without `?deadline_ms=`, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    deadline_ms: u64,
    /// On shutdown, how long requests in flight may go on, in seconds.
    #[arg(long, default_value_t = 30)]
    grace_secs: u64,
    /// On shutdown, how long the pool's threads may take to exit, in seconds.
    #[arg(long, default_value_t = 10)]
    release_timeout_secs: u64,
}

/// Why the binary stopped with an error.
#[derive(Debug)]
enum RunError {
    Pool(workpool::BuildError),
    Bind(SocketAddr, std::io::Error),
    Serve(workpool_http::ServeError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Pool(error) => write!(f, "cannot build the pool: {error}"),
            RunError::Bind(addr, error) => write!(f, "cannot listen on {addr}: {error}"),
            RunError::Serve(error) => write!(f, "{error}"),
        }
    }
}

/// Whether the log (the fmt subscriber writes to stdout) gets ANSI colours:
/// only on a terminal, so that a log file or a log collector's pipe holds
/// plain text, and never where `NO_COLOR` is set to something
/// (<https://no-color.org>), which an explicit `with_ansi` would otherwise
/// override.
fn colour_log(stdout_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(colour_log(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .init();
    // A panicking handler is reported in its answer and counted by the
    // pool; a log line says where, instead of the default hook's stderr.
    std::panic::set_hook(Box::new(|panic| warn!("{panic}")));
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), RunError> {
    let pool = Pool::builder()
        .name("workpool-http")
        .thread_name("http-pool")
        .capacity(args.capacity)
        .build()
        .map_err(RunError::Pool)?;
    let policy = HealthPolicy::default();
    // A periodic health check, in the log; the pool's release
    // (the last layer of the shutdown) stops it.
    let monitor = pool.monitor(Duration::from_secs(10), policy.clone(), |health, _| {
        if !health.healthy {
            warn!(problems = ?health.problems, "the pool is unhealthy");
        }
    });
    if let Err(error) = &monitor {
        warn!(%error, "no periodic health check");
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| RunError::Bind(args.addr, e))?;
    let addr = listener.local_addr().unwrap_or(args.addr);
    let router = Service::new(pool.clone())
        .health_policy(policy)
        .default_deadline(Duration::from_millis(args.deadline_ms))
        .router();
    info!(
        capacity = args.capacity,
        "listening on http://{addr} (dashboard at /)"
    );
    let limits = ShutdownLimits {
        grace: Duration::from_secs(args.grace_secs),
        release_timeout: Duration::from_secs(args.release_timeout_secs),
    };
    serve(listener, router, pool, shutdown_signal(), limits)
        .await
        .map_err(RunError::Serve)?;
    drop(monitor);
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::colour_log;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour_log(true, None));
        assert!(
            colour_log(true, Some("".into())),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour_log(true, Some("1".into())));
        assert!(!colour_log(false, None));
        assert!(!colour_log(false, Some("1".into())));
    }
}
