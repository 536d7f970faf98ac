//! Helpers shared by the integration tests: a server on an ephemeral
//! loopback port, a client, a gate that holds pool tasks until the test
//! lets them go, and the Prometheus text parsed by a parser crate.

// Each test file uses some of these.
#![allow(dead_code)]

use axum::Router;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workpool::{HealthPolicy, Pool};
use workpool_http::{serve, ServeError, Service, ShutdownLimits};

/// How long a test waits for something that must happen eventually.
/// Generous: the tests run in parallel on two loaded cores.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// An expiry long enough that no idle worker expires while a test runs,
/// so that the worker gauges hold still between two reads.
pub(crate) const NEVER: Duration = Duration::from_secs(600);

/// A server on 127.0.0.1 at an ephemeral port, served from a tokio task.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// Serves the whole service on `pool`, judged by `policy`.
    pub(crate) async fn service(pool: Pool, policy: HealthPolicy) -> TestServer {
        // A default deadline far beyond any test's need: a loaded machine
        // slows the answers, never cuts them short.
        let router = Service::new(pool.clone())
            .health_policy(policy)
            .default_deadline(Duration::from_secs(60))
            .router();
        TestServer::router(router, pool).await
    }

    /// Serves `router`; `pool` is released on [`stop`](Self::stop).
    pub(crate) async fn router(router: Router, pool: Pool) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let limits = ShutdownLimits {
            grace: DEADLINE,
            release_timeout: DEADLINE,
        };
        let served = tokio::spawn(serve(listener, router, pool, shutdown, limits));
        TestServer {
            base,
            stop: Some(stop),
            served,
        }
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signals the shutdown without waiting for it.
    pub(crate) fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts the server down in layers and returns how `serve` ended.
    pub(crate) async fn stop(mut self) -> Result<(), ServeError> {
        self.signal_stop();
        tokio::time::timeout(DEADLINE * 3, &mut self.served)
            .await
            .expect("the server stopped in time")
            .expect("the server task did not panic")
    }
}

/// A client for loopback: no proxy, every call bounded in time.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("a client")
}

/// GETs `url`: the status, the content type and the body as text.
pub(crate) async fn fetch(client: &reqwest::Client, url: &str) -> (u16, String, String) {
    let response = client.get(url).send().await.expect("a response");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.text().await.expect("a body");
    (status, content_type, body)
}

/// The Prometheus text, parsed by `prometheus-parse`.
pub(crate) fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text that parses")
}

/// The value of the sample `name` whose labels include every pair of
/// `labels`; fails the test if there is not exactly one.
pub(crate) fn sample(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name} is not a plain value: {other:?}"),
        })
        .collect();
    assert_eq!(found.len(), 1, "samples of {name} {labels:?}: {found:?}");
    found[0]
}

/// Holds pool tasks until the test opens it.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    state: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate::default()
    }

    /// Blocks until the gate is open (or [`DEADLINE`] passes, so that a
    /// failing test never leaves a worker blocked for ever).
    pub(crate) fn wait(&self) {
        let (open, changed) = &*self.state;
        let guard = open.lock().unwrap_or_else(|e| e.into_inner());
        let _ = changed
            .wait_timeout_while(guard, DEADLINE, |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
    }

    pub(crate) fn open(&self) {
        let (open, changed) = &*self.state;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }
}

/// Polls `condition` until it holds; fails the test after [`DEADLINE`].
/// Only for states that nothing signals (a thread blocked inside the pool).
pub(crate) async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// GETs `/history` (with `?after=` when `after` is given), checks it is
/// JSON that no cache keeps, and reads it.
pub(crate) async fn history(
    client: &reqwest::Client,
    server: &TestServer,
    after: Option<u64>,
) -> workpool_http::History {
    let query = after.map_or(String::new(), |after| format!("?after={after}"));
    let response = client
        .get(server.url(&format!("/history{query}")))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 200, "/history{query}");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("a History")
}

/// Reads `/history` until `condition` holds of it (the router samples
/// once a second, and nothing signals a sample); fails the test after
/// [`DEADLINE`].
pub(crate) async fn history_until(
    client: &reqwest::Client,
    server: &TestServer,
    what: &str,
    condition: impl Fn(&workpool_http::History) -> bool,
) -> workpool_http::History {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let history = history(client, server, None).await;
        if condition(&history) {
            return history;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: {} samples, the latest {:?}",
            history.samples.len(),
            history.samples.last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines of a text answer with the timings taken out:
/// `[0] ok (101 ms): Task 1 completed` becomes `[0] ok: Task 1 completed`.
pub(crate) fn without_timings(body: &str) -> Vec<String> {
    body.lines()
        .map(|line| match (line.find(" ("), line.find(" ms)")) {
            (Some(open), Some(close)) if open < close => {
                format!("{}{}", &line[..open], &line[close + " ms)".len()..])
            }
            _ => line.to_owned(),
        })
        .collect()
}
