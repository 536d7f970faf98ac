//! `PoolRouter`: `/metrics`, `/health`, `/stats`, `/history` and the
//! dashboard `/` for one pool, as an axum `Router` any service can mount.

use crate::figures::{PoolHealth, PoolStats};
use crate::history::Keeper;
use crate::prometheus::{self, Exporter};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use workpool::{HealthPolicy, Pool};

/// The dashboard: one HTML file, its script inline, drawing on `<canvas>`;
/// nothing to build and nothing fetched from elsewhere.
const DASHBOARD: &str = include_str!("dashboard.html");

/// Builds the routes that show one pool:
///
/// | route | answer |
/// |---|---|
/// | `GET /metrics` | Prometheus text: every `workpool_*` figure, labelled `pool` |
/// | `GET /health` | [`PoolHealth`](crate::PoolHealth): 200 when the [`HealthPolicy`] holds, 503 when not |
/// | `GET /stats` | [`PoolStats`](crate::PoolStats): every figure of [`Pool::stats`] |
/// | `GET /history` | [`History`](crate::History): the last 5 minutes of samples, one a second; `?after=N`: those after sample `N` |
/// | `GET /` | a dashboard charting workers, busy, waiting, queued, tasks/s and the p99 queue wait of the policy's window over the last 5 minutes: `history` at once, then each second |
///
/// The router samples its pool each second from the moment it is built
/// inside a tokio runtime (else from its first request), keeping 300
/// samples; each holds the snapshot and the figures of the last
/// [`error_window`](HealthPolicy::error_window) of the health policy (60 s
/// by default), so the p99 the dashboard shows is the one `/health` judges.
/// The sampling task ends when the router (every clone of it) is dropped.
///
/// Mount it at the root with `merge`, or under a prefix with `nest` (the
/// dashboard finds `stats` and `history` beside itself).
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use workpool::HealthPolicy;
/// use workpool_http::PoolRouter;
///
/// # fn main() -> Result<(), workpool::BuildError> {
/// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
/// let app: Router = Router::new().nest(
///     "/pool",
///     PoolRouter::new(pool)
///         .health_policy(HealthPolicy { max_waiting: 10, ..HealthPolicy::default() })
///         .into_router(),
/// );
/// # Ok(())
/// # }
/// ```
pub struct PoolRouter {
    pool: Pool,
    policy: HealthPolicy,
    exporter: Exporter,
}

/// What the handlers share.
struct Shown {
    pool: Pool,
    policy: HealthPolicy,
    exporter: Exporter,
    /// Its drop ends the sampling task.
    history: Keeper,
}

impl Shown {
    /// Starts the sampling task, for a router built outside a runtime: a
    /// request always runs in one.
    fn sampled(self: Arc<Self>) -> Arc<Self> {
        self.history.start();
        self
    }
}

impl PoolRouter {
    /// The routes for `pool`, judged by [`HealthPolicy::default`], with a
    /// Prometheus recorder of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use workpool_http::PoolRouter;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
    /// let app: axum::Router = PoolRouter::new(pool).into_router();
    /// let health = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    /// assert_eq!(health.status(), StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(pool: Pool) -> PoolRouter {
        PoolRouter {
            pool,
            policy: HealthPolicy::default(),
            exporter: Exporter::own(),
        }
    }

    /// The thresholds `/health` judges by. Default: [`HealthPolicy::default`].
    /// Its [`error_window`](HealthPolicy::error_window) is also the window
    /// of the `recent` figures of `/history`, whose p99 queue wait the
    /// dashboard shows.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::http::{Request, StatusCode};
    /// use tower::ServiceExt;
    /// use workpool::HealthPolicy;
    /// use workpool_http::PoolRouter;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = workpool::Pool::new(1)?;
    /// let policy = HealthPolicy { max_saturation: 0.5, ..HealthPolicy::default() };
    /// let app: axum::Router = PoolRouter::new(pool.clone()).health_policy(policy).into_router();
    /// let (release, wait) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || drop(wait.recv()))?; // its one worker is busy: 100 % > 50 %
    /// while pool.busy() < 1 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// let health = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    /// assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// # release.send(())?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn health_policy(mut self, policy: HealthPolicy) -> PoolRouter {
        self.policy = policy;
        self
    }

    /// Records into the recorder an application installed globally (e.g.
    /// with `PrometheusBuilder::new().install_recorder()`), whose handle
    /// this is, so that `/metrics` shows the application's figures beside
    /// the pool's. Default: a recorder of the router's own, so that
    /// several routers in one process never mix their figures.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::{to_bytes, Body};
    /// use axum::http::Request;
    /// use metrics_exporter_prometheus::PrometheusBuilder;
    /// use tower::ServiceExt;
    /// use workpool_http::PoolRouter;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let handle = PrometheusBuilder::new().install_recorder()?;
    /// metrics::counter!("orders_total").increment(3); // the application's own
    /// let pool = workpool::Pool::builder().name("images").build()?;
    /// let app: axum::Router = PoolRouter::new(pool).prometheus_handle(handle).into_router();
    /// let response = app.oneshot(Request::get("/metrics").body(Body::empty())?).await?;
    /// let body = to_bytes(response.into_body(), usize::MAX).await?;
    /// let text = std::str::from_utf8(&body)?;
    /// assert!(text.contains("orders_total 3"));
    /// assert!(text.contains(r#"workpool_tasks_submitted_total{pool="images"} 0"#));
    /// # Ok(())
    /// # }
    /// ```
    pub fn prometheus_handle(mut self, handle: PrometheusHandle) -> PoolRouter {
        self.exporter = Exporter::Global(handle);
        self
    }

    /// The routes, ready to mount into a router of any state.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::body::{to_bytes, Body};
    /// use axum::{extract::State, http::Request, routing::get, Router};
    /// use tower::ServiceExt;
    /// use workpool_http::{PoolRouter, PoolStats};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = workpool::Pool::builder().name("images").capacity(8).build()?;
    /// // Mounted in an application whose state is a `String`:
    /// let app = Router::new()
    ///     .route("/", get(|State(motd): State<String>| async move { motd }))
    ///     .nest("/pool", PoolRouter::new(pool).into_router())
    ///     .with_state("hello".to_owned());
    /// let response = app.oneshot(Request::get("/pool/stats").body(Body::empty())?).await?;
    /// let body = to_bytes(response.into_body(), usize::MAX).await?;
    /// let stats: PoolStats = serde_json::from_slice(&body)?;
    /// assert_eq!(stats.pool, "images");
    /// assert_eq!(stats.stats.capacity, Some(8));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let history = Keeper::new(self.pool.clone(), self.policy.error_window);
        // Inside a runtime (the usual case: built in `main` under
        // `#[tokio::main]`), sampling starts now, so the history holds
        // what happened before the first request.
        history.start();
        let shown = Arc::new(Shown {
            pool: self.pool,
            policy: self.policy,
            exporter: self.exporter,
            history,
        });
        Router::new()
            .route("/", get(dashboard))
            .route("/metrics", get(metrics))
            .route("/health", get(health))
            .route("/stats", get(stats))
            .route("/history", get(samples))
            .with_state(shown)
    }
}

impl fmt::Debug for PoolRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolRouter")
            .field("pool", &self.pool.name())
            .field("policy", &self.policy)
            .field("exporter", &self.exporter)
            .finish()
    }
}

/// Figures change from one read to the next: no cache may keep them.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn metrics(State(shown): State<Arc<Shown>>) -> Response {
    let shown = shown.sampled();
    let text = shown.exporter.render(&shown.pool);
    no_store(([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response())
}

async fn health(State(shown): State<Arc<Shown>>) -> Response {
    let shown = shown.sampled();
    // The verdict and the figures beside it come from one snapshot.
    let (verdict, stats) = shown.pool.check(&shown.policy);
    let body = PoolHealth::new(shown.pool.name(), verdict, stats);
    let status = if body.health.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_store((status, Json(body)).into_response())
}

async fn stats(State(shown): State<Arc<Shown>>) -> Response {
    let shown = shown.sampled();
    let body = PoolStats::new(shown.pool.name(), shown.pool.stats());
    no_store(Json(body).into_response())
}

/// The query of `/history`.
#[derive(Debug, Deserialize)]
struct After {
    /// Only the samples whose `seq` is above this.
    after: Option<u64>,
}

async fn samples(State(shown): State<Arc<Shown>>, Query(after): Query<After>) -> Response {
    let shown = shown.sampled();
    let body = shown.history.body(shown.pool.name(), after.after);
    no_store(Json(body).into_response())
}

async fn dashboard(State(shown): State<Arc<Shown>>) -> Html<&'static str> {
    shown.sampled();
    Html(DASHBOARD)
}
