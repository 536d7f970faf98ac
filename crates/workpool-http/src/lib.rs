//! A [workpool] pool over HTTP, with axum: its figures for Prometheus, its
//! health for a load balancer, a live dashboard for a person, and
//! responses built by many pool tasks at once (FastGo's concurrent
//! responses).
//!
//! - [`PoolRouter`]: `/metrics` (Prometheus text, rendered by
//!   `metrics-exporter-prometheus` from [`Pool::export_metrics`]),
//!   `/health` ([`PoolHealth`]; 503 when the [`HealthPolicy`] is
//!   breached), `/stats` ([`PoolStats`]), `/history` ([`History`]: the
//!   last five minutes, sampled each second) and `/`, a dashboard that
//!   draws that history at once and charts the pool each second. The JSON
//!   is the library's own `Stats` and `Health` (workpool's `serde`
//!   feature). A `Router` to mount in any service.
//! - [`ConcurrentWriter`]: one response body that many tasks write into at
//!   once, buffered or streamed; [`ConcurrentResponse`] adds error
//!   reporting and runs its tasks on a pool.
//! - [`parallel_execute`]: handlers on a pool, results in order, as a
//!   response ([`ParallelResults`]); [`stream_execute`]: each result
//!   streamed as its handler ends. Both await the pool's task handles, so
//!   the async runtime never blocks, and both honour a [`Deadline`]
//!   (`?deadline_ms=`): past it the answer is 504 with the results that
//!   arrived.
//! - [`Service`]: the parallel HTTP response service (five endpoints that
//!   answer from pool tasks), the `workpool-http` binary's router;
//!   [`serve`] runs a router and shuts down in layers: stop
//!   accepting, let requests finish, release the pool.
//!
//! # Examples
//!
//! A service that shows its pool under `/pool` and answers one endpoint
//! from two handlers run on it:
//!
//! ```
//! use axum::body::{Body, Bytes};
//! use axum::extract::State;
//! use axum::http::{Request, StatusCode};
//! use axum::response::IntoResponse;
//! use axum::routing::get;
//! use axum::Router;
//! use tower::ServiceExt;
//! use workpool::Pool;
//! use workpool_http::{handler, parallel_execute, Deadline, Handler, PoolRouter};
//!
//! async fn both(State(pool): State<Pool>, deadline: Deadline) -> impl IntoResponse {
//!     let handlers: Vec<Handler<Bytes, String>> = vec![
//!         handler(|_| Ok(Bytes::from("from the database"))),
//!         handler(|_| Ok(Bytes::from("from the API"))),
//!     ];
//!     parallel_execute(&pool, deadline, handlers).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder().name("api").capacity(8).build()?;
//! let app = Router::new()
//!     .route("/both", get(both))
//!     .with_state(pool.clone())
//!     .nest("/pool", PoolRouter::new(pool).into_router());
//!
//! let answer = app.clone().oneshot(Request::get("/both").body(Body::empty())?).await?;
//! assert_eq!(answer.status(), StatusCode::OK);
//! let health = app.oneshot(Request::get("/pool/health").body(Body::empty())?).await?;
//! assert_eq!(health.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! [workpool]: workpool
//! [`Pool::export_metrics`]: workpool::Pool::export_metrics
//! [`HealthPolicy`]: workpool::HealthPolicy

// docs.rs (`--cfg docsrs`, see Cargo.toml) marks each feature-gated item
// with the feature it needs; `doc_cfg` does so for every `#[cfg]`d item.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod deadline;
mod figures;
mod history;
mod parallel;
mod prometheus;
mod router;
mod serve;
mod service;
mod writer;

pub use batch::HandlerError;
pub use deadline::{Deadline, DeadlineRejection, DefaultDeadline};
pub use figures::{PoolHealth, PoolStats};
pub use history::{History, HistorySample};
pub use parallel::{handler, parallel_execute, stream_execute, Handler, ParallelResults};
pub use router::PoolRouter;
pub use serve::{serve, shutdown_signal, ServeError, ShutdownLimits};
pub use service::Service;
pub use writer::{ConcurrentResponse, ConcurrentWriter, ResponseTask, WriteError};

// The README, this crate's page on crates.io: its example compiles as a
// doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
