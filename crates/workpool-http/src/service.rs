//! `Service`: the parallel HTTP response service, five endpoints each
//! answering from handlers run on the pool, beside the pool's `/metrics`,
//! `/health`, `/stats`, `/history` and `/`.
//!
//! The handlers stand in for real work: they wait on their
//! [`CancelToken`] rather than sleep, the way a blocking call with a timeout
//! would, so that a deadline ends them at once and frees their worker.

use crate::deadline::{Deadline, DefaultDeadline};
use crate::parallel::{handler, parallel_execute, stream_execute, Handler};
use crate::router::PoolRouter;
use crate::writer::{text_response, ConcurrentResponse, ConcurrentWriter, ResponseTask};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use std::fmt;
use std::time::Duration;
use workpool::{CancelToken, HealthPolicy, Pool};

/// The whole service of the `workpool-http` binary, as a `Router` (tests
/// serve the same one):
///
/// | route (GET) | answer |
/// |---|---|
/// | `/concurrent/basic` | five tasks write a line each into one [`ConcurrentWriter`] |
/// | `/concurrent/advanced` | a [`ConcurrentResponse`] written by a cache check, a "database" (50 ms) and an "API" (80 ms) |
/// | `/parallel/execute` | three handlers (100, 150, 50 ms) by [`parallel_execute`], results in order |
/// | `/concurrent/error` | four handlers, one failing and one panicking: every result, status 500 |
/// | `/stream/concurrent` | five handlers by [`stream_execute`], each line sent as its handler ends |
/// | `/metrics`, `/health`, `/stats`, `/history`, `/` | the pool, by [`PoolRouter`] |
///
/// Every endpoint but the pool's takes `?deadline_ms=` (default: the
/// service's [`default_deadline`](Self::default_deadline)); past it the
/// answer is 504 with the results that had arrived.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool_http::Service;
///
/// # fn main() -> Result<(), workpool::BuildError> {
/// let pool = workpool::Pool::new(16)?;
/// let app: axum::Router = Service::new(pool)
///     .default_deadline(Duration::from_secs(2))
///     .router();
/// # Ok(())
/// # }
/// ```
pub struct Service {
    pool: Pool,
    policy: HealthPolicy,
    default_deadline: Duration,
}

impl Service {
    /// The service on `pool`, judged by [`HealthPolicy::default`], with a
    /// default deadline of [`Deadline::DEFAULT`].
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::{to_bytes, Body};
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use workpool_http::Service;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = Service::new(workpool::Pool::new(8)?).router();
    /// let response = app.oneshot(Request::get("/concurrent/basic").body(Body::empty())?).await?;
    /// assert_eq!(response.status(), StatusCode::OK);
    /// let body = to_bytes(response.into_body(), usize::MAX).await?;
    /// assert_eq!(std::str::from_utf8(&body)?.lines().count(), 5); // a line per task
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(pool: Pool) -> Service {
        Service {
            pool,
            policy: HealthPolicy::default(),
            default_deadline: Deadline::DEFAULT,
        }
    }

    /// The thresholds of `/health`. Default: [`HealthPolicy::default`].
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use workpool::HealthPolicy;
    /// use workpool_http::Service;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let policy = HealthPolicy { max_waiting: 10, ..HealthPolicy::default() };
    /// let app = Service::new(workpool::Pool::new(8)?).health_policy(policy).router();
    /// let health = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    /// assert_eq!(health.status(), StatusCode::OK); // an idle pool breaches nothing
    /// # Ok(())
    /// # }
    /// ```
    pub fn health_policy(mut self, policy: HealthPolicy) -> Service {
        self.policy = policy;
        self
    }

    /// The deadline of a request without `?deadline_ms=`. Default:
    /// [`Deadline::DEFAULT`], at most [`Deadline::MAX`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use workpool_http::Service;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = Service::new(workpool::Pool::new(8)?)
    ///     .default_deadline(Duration::from_millis(20))
    ///     .router();
    /// // Its handlers take up to 150 ms: too long, unless the request asks for more.
    /// let request = Request::get("/parallel/execute").body(Body::empty())?;
    /// assert_eq!(app.clone().oneshot(request).await?.status(), StatusCode::GATEWAY_TIMEOUT);
    /// let asked = Request::get("/parallel/execute?deadline_ms=5000").body(Body::empty())?;
    /// assert_eq!(app.oneshot(asked).await?.status(), StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    pub fn default_deadline(mut self, deadline: Duration) -> Service {
        self.default_deadline = deadline;
        self
    }

    /// The routes.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use workpool_http::Service;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app: axum::Router = Service::new(workpool::Pool::new(8)?).router();
    /// for path in ["/parallel/execute", "/stats", "/metrics"] {
    ///     let response = app.clone().oneshot(Request::get(path).body(Body::empty())?).await?;
    ///     assert_eq!(response.status(), StatusCode::OK, "{path}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(self) -> Router {
        let endpoints = Router::new()
            .route("/concurrent/basic", get(basic))
            .route("/concurrent/advanced", get(advanced))
            .route("/parallel/execute", get(execute))
            .route("/concurrent/error", get(errors))
            .route("/stream/concurrent", get(stream))
            .layer(Extension(DefaultDeadline(self.default_deadline)))
            .with_state(self.pool.clone());
        endpoints.merge(
            PoolRouter::new(self.pool)
                .health_policy(self.policy)
                .into_router(),
        )
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("pool", &self.pool.name())
            .field("policy", &self.policy)
            .field("default_deadline", &self.default_deadline)
            .finish()
    }
}

/// Why a demo handler gave up.
#[derive(Debug)]
enum DemoError {
    /// Its token was cancelled while it worked: the deadline passed.
    Cancelled,
    /// A downstream service it stands for is down.
    Unavailable(&'static str),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Cancelled => f.write_str("cancelled at the deadline"),
            DemoError::Unavailable(what) => write!(f, "{what} unavailable"),
        }
    }
}

/// Work that takes `ms`, or less if the token is cancelled first.
fn work(token: &CancelToken, ms: u64) -> Result<(), DemoError> {
    if token.wait_timeout(Duration::from_millis(ms)) {
        return Err(DemoError::Cancelled);
    }
    Ok(())
}

fn worker_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("an unnamed thread")
        .to_owned()
}

/// `/concurrent/basic` (FastGo's `ConcurrentWrite`): five tasks write into
/// one writer.
async fn basic(State(pool): State<Pool>, deadline: Deadline) -> Response {
    let writer = ConcurrentWriter::new();
    let handlers = (0..5).map(|id| {
        let writer = writer.clone();
        move |_: &CancelToken| writer.write(format!("Task {id} response from {}\n", worker_name()))
    });
    let results = parallel_execute(&pool, deadline, handlers).await;
    let mut body = writer.finish().to_vec();
    // The lines written are the answer; a task that did not write its
    // line (late, or refused) is named after them.
    for (index, result) in results.results().iter().enumerate() {
        if let Err(error) = result {
            body.extend_from_slice(format!("Task {index}: {error}\n").as_bytes());
        }
    }
    text_response(results.status(), body)
}

/// `/concurrent/advanced` (FastGo's `WithConcurrentResponse`): parallel
/// tasks, a slow database and a slower API write into one response.
async fn advanced(State(pool): State<Pool>, deadline: Deadline) -> Response {
    let tasks: Vec<ResponseTask> = vec![
        Box::new(|cr, _| {
            let _ = cr.write("Cache checked: nothing cached\n");
        }),
        Box::new(|cr, token| match work(token, 50) {
            Ok(()) => {
                let _ = cr.write("Database result loaded\n");
            }
            Err(error) => cr.fail(format_args!("database: {error}")),
        }),
        Box::new(|cr, token| match work(token, 80) {
            Ok(()) => {
                let _ = cr.write("API service responded\n");
            }
            Err(error) => cr.fail(format_args!("API: {error}")),
        }),
    ];
    ConcurrentResponse::run(&pool, deadline, tasks).await
}

/// `/parallel/execute` (FastGo's `ParallelExecute`): results in the order
/// given, whatever order the handlers end in.
async fn execute(State(pool): State<Pool>, deadline: Deadline) -> Response {
    let handlers: Vec<Handler<Bytes, DemoError>> = [(1, 100), (2, 150), (3, 50)]
        .into_iter()
        .map(|(n, ms)| {
            handler(move |token| {
                work(token, ms)?;
                Ok(Bytes::from(format!("Task {n} completed\n")))
            })
        })
        .collect();
    axum::response::IntoResponse::into_response(parallel_execute(&pool, deadline, handlers).await)
}

/// `/concurrent/error`: a failing and a panicking handler are
/// reported while the others' results still arrive.
async fn errors(State(pool): State<Pool>, deadline: Deadline) -> Response {
    let handlers: Vec<Handler<Bytes, DemoError>> = vec![
        handler(|token| {
            work(token, 20)?;
            Ok(Bytes::from("Task 0 completed"))
        }),
        handler(|_| Err(DemoError::Unavailable("database"))),
        handler(|_| panic!("handler 2 panicked on purpose")),
        handler(|token| {
            work(token, 40)?;
            Ok(Bytes::from("Task 3 completed"))
        }),
    ];
    axum::response::IntoResponse::into_response(parallel_execute(&pool, deadline, handlers).await)
}

/// `/stream/concurrent`, a streaming response: each result as its handler ends.
async fn stream(State(pool): State<Pool>, deadline: Deadline) -> Response {
    let handlers = [250u64, 50, 200, 100, 150]
        .into_iter()
        .enumerate()
        .map(|(n, ms)| {
            move |token: &CancelToken| {
                work(token, ms)?;
                Ok::<_, DemoError>(Bytes::from(format!("Chunk {n} ready after {ms} ms")))
            }
        });
    stream_execute(pool, deadline, handlers)
}
