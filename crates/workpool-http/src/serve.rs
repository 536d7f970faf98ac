//! `serve`: an axum server whose shutdown goes in layers: stop
//! accepting, let the requests in flight finish, then release the pool.

use axum::Router;
use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{info, warn};
use workpool::{Pool, PoolError};

/// How long each layer of the shutdown may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownLimits {
    /// How long requests in flight may go on once the server stops
    /// accepting; then they are dropped (their pool handlers cancelled).
    /// Default 30 s.
    pub grace: Duration,
    /// How long the pool's threads may take to exit once released
    /// ([`Pool::release_timeout`]). Default 10 s.
    pub release_timeout: Duration,
}

impl Default for ShutdownLimits {
    fn default() -> Self {
        ShutdownLimits {
            grace: Duration::from_secs(30),
            release_timeout: Duration::from_secs(10),
        }
    }
}

/// Why [`serve`] ended with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The server failed on its listener.
    Io(io::Error),
    /// The pool's threads had not all exited within the release timeout,
    /// or the pool had been released before.
    Release(PoolError),
    /// The thread that waited for the pool's release panicked or was
    /// cancelled.
    ReleaseThread(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io(error) => write!(f, "the server failed: {error}"),
            ServeError::Release(error) => write!(f, "the pool did not release cleanly: {error}"),
            ServeError::ReleaseThread(why) => {
                write!(f, "waiting for the pool's release failed: {why}")
            }
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(error) => Some(error),
            ServeError::Release(error) => Some(error),
            ServeError::ReleaseThread(_) => None,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then shuts
/// down in layers:
///
/// 1. stop accepting connections, and close idle keep-alive ones;
/// 2. let the requests in flight finish, for [`ShutdownLimits::grace`] at
///    most (past it they are dropped, which cancels their handlers);
/// 3. release `pool`: it refuses new tasks, cancels task tokens, stops its
///    monitors, lets its queue drain, and its threads exit, waited for up to
///    [`ShutdownLimits::release_timeout`] on a blocking thread (the async
///    runtime never waits on the pool).
///
/// # Errors
///
/// [`ServeError::Io`] if the server fails; [`ServeError::Release`] if the
/// pool's threads do not exit in time.
///
/// # Examples
///
/// ```
/// use workpool_http::{serve, Service, ShutdownLimits};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = workpool::Pool::new(4)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let router = Service::new(pool.clone()).router();
/// // Here the server stops at once; a binary passes `shutdown_signal()`.
/// serve(listener, router, pool.clone(), async {}, ShutdownLimits::default()).await?;
/// assert!(pool.is_closed());
/// # Ok(())
/// # }
/// ```
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    pool: Pool,
    shutdown: F,
    limits: ShutdownLimits,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (fired, stopping) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        info!("shutdown, layer 1: no new connections; requests in flight go on");
        let _ = fired.send(());
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(signal);
    let patience = async move {
        match stopping.await {
            Ok(()) => tokio::time::sleep(limits.grace).await,
            // The server ended before any signal: nothing to time.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served.map_err(ServeError::Io)?,
        () = patience => warn!(
            grace = ?limits.grace,
            "shutdown, layer 2: requests still running past the grace period are dropped"
        ),
    }
    info!("shutdown, layer 2 done: no request is in flight");

    info!("shutdown, layer 3: releasing the pool");
    let timeout = limits.release_timeout;
    let released = tokio::task::spawn_blocking(move || pool.release_timeout(timeout))
        .await
        .map_err(|e| ServeError::ReleaseThread(e.to_string()))?;
    released.map_err(ServeError::Release)?;
    info!("shutdown, layer 3 done: every thread of the pool has exited");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM: the `shutdown` of
/// [`serve`] for a binary. If a handler cannot be installed, it logs why
/// and waits for the other signal only.
///
/// # Examples
///
/// ```no_run
/// use workpool_http::{serve, shutdown_signal, Service, ShutdownLimits};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = workpool::Pool::new(16)?;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// let router = Service::new(pool.clone()).router();
/// // Serves until Ctrl-C or SIGTERM, then shuts down in layers.
/// serve(listener, router, pool, shutdown_signal(), ShutdownLimits::default()).await?;
/// # Ok(())
/// # }
/// ```
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("SIGINT received"),
        () = terminate => info!("SIGTERM received"),
    }
}
