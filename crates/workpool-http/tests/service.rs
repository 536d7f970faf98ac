//! The parallel HTTP response service over real HTTP: each endpoint's
//! status, content type and body; deadlines; streaming; 200 concurrent
//! requests; and the layered shutdown.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::{client, fetch, without_timings, Gate, TestServer, DEADLINE, NEVER};
use std::sync::mpsc;
use std::time::Duration;
use workpool::{CancelToken, HealthPolicy, Pool};
use workpool_http::{
    handler, parallel_execute, stream_execute, ConcurrentWriter, Deadline, Handler,
};

const TEXT: &str = "text/plain; charset=utf-8";

fn pool(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .expiry(NEVER)
        .build()
        .expect("a pool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_gets_one_whole_line_from_each_of_five_tasks() {
    let server = TestServer::service(pool(4), HealthPolicy::default()).await;
    let (status, content_type, body) = fetch(&client(), &server.url("/concurrent/basic")).await;
    assert_eq!((status, content_type.as_str()), (200, TEXT), "{body}");
    let mut ids: Vec<char> = body
        .lines()
        .map(|line| {
            assert!(
                line.starts_with("Task ") && line.contains(" response from workpool-"),
                "a line written whole by a pool worker: {line:?}"
            );
            line.chars().nth(5).expect("an id")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ['0', '1', '2', '3', '4'], "{body}");
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_gathers_the_cache_the_database_and_the_api() {
    let server = TestServer::service(pool(4), HealthPolicy::default()).await;
    let (status, content_type, body) = fetch(&client(), &server.url("/concurrent/advanced")).await;
    assert_eq!((status, content_type.as_str()), (200, TEXT), "{body}");
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "API service responded",
            "Cache checked: nothing cached",
            "Database result loaded"
        ]
    );
    server.stop().await.expect("a clean stop");
}

/// The lines of a complete answer of `/parallel/execute`, timings taken out.
const EXECUTED: [&str; 3] = [
    "[0] ok: Task 1 completed",
    "[1] ok: Task 2 completed",
    "[2] ok: Task 3 completed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_execute_answers_every_result_in_the_order_given() {
    let server = TestServer::service(pool(4), HealthPolicy::default()).await;
    let (status, content_type, body) = fetch(&client(), &server.url("/parallel/execute")).await;
    assert_eq!((status, content_type.as_str()), (200, TEXT), "{body}");
    let lines = without_timings(&body);
    assert_eq!(lines[..3], EXECUTED, "{body}");
    assert!(
        lines[3].starts_with("3 of 3 handlers succeeded in "),
        "{body}"
    );
    assert_eq!(lines.len(), 4, "{body}");
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_and_a_panicking_handler_are_reported_beside_the_others() {
    let pool = pool(4);
    let server = TestServer::service(pool.clone(), HealthPolicy::default()).await;
    let (status, content_type, body) = fetch(&client(), &server.url("/concurrent/error")).await;
    assert_eq!((status, content_type.as_str()), (500, TEXT), "{body}");
    assert_eq!(
        without_timings(&body)[..4],
        [
            "[0] ok: Task 0 completed",
            "[1] error: database unavailable",
            "[2] panicked: handler 2 panicked on purpose",
            "[3] ok: Task 3 completed",
        ],
        "{body}"
    );
    let summary = &without_timings(&body)[4];
    assert!(
        summary.starts_with("2 of 4 handlers succeeded in ") && !summary.contains("deadline"),
        "{body}"
    );
    // The pool counted the panic, and its worker lived on.
    assert_eq!(pool.stats().panicked, 1);
    let (status, _, _) = fetch(&client(), &server.url("/parallel/execute")).await;
    assert_eq!(status, 200);
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_endpoint_sends_a_line_per_handler_then_a_summary() {
    let server = TestServer::service(pool(8), HealthPolicy::default()).await;
    let response = client()
        .get(server.url("/stream/concurrent"))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], TEXT);
    assert_eq!(headers["transfer-encoding"], "chunked");
    let body = response.text().await.expect("a body");
    let lines = without_timings(&body);
    assert_eq!(lines.len(), 6, "{body}");
    let mut seen: Vec<&str> = lines[..5].iter().map(String::as_str).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            "[0] ok: Chunk 0 ready after 250 ms",
            "[1] ok: Chunk 1 ready after 50 ms",
            "[2] ok: Chunk 2 ready after 200 ms",
            "[3] ok: Chunk 3 ready after 100 ms",
            "[4] ok: Chunk 4 ready after 150 ms",
        ]
    );
    assert!(
        lines[5].starts_with("5 of 5 handlers succeeded in "),
        "{body}"
    );
    server.stop().await.expect("a clean stop");
}

/// Handlers that each wait for their own channel: the test decides the
/// order they end in.
async fn gated_stream(State(gates): State<GatedStream>, deadline: Deadline) -> Response {
    let receivers = gates
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    let handlers = receivers.into_iter().enumerate().map(|(n, rx)| {
        move |_: &CancelToken| match rx.recv_timeout(DEADLINE) {
            Ok(()) => Ok(Bytes::from(format!("handler {n}"))),
            Err(_) => Err("never let go"),
        }
    });
    stream_execute(gates.1.clone(), deadline, handlers)
}

#[derive(Clone)]
struct GatedStream(
    std::sync::Arc<std::sync::Mutex<Option<Vec<mpsc::Receiver<()>>>>>,
    Pool,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_line_arrives_while_the_other_handlers_still_run() {
    let pool = pool(3);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel::<()>()).unzip();
    let state = GatedStream(
        std::sync::Arc::new(std::sync::Mutex::new(Some(receivers))),
        pool.clone(),
    );
    let router = Router::new()
        .route("/gated", get(gated_stream))
        .with_state(state);
    let server = TestServer::router(router, pool).await;
    let mut response = client()
        .get(server.url("/gated"))
        .send()
        .await
        .expect("the headers come before any result");
    assert_eq!(response.status().as_u16(), 200);

    // Let the handlers go one by one, in an order of the test's choosing;
    // each line must arrive while the handlers after it are still held.
    let mut received = String::new();
    for n in [2, 0, 1] {
        senders[n].send(()).expect("the handler waits");
        let want = format!("[{n}] ok");
        while !received.contains(&want) {
            let chunk = tokio::time::timeout(DEADLINE, response.chunk())
                .await
                .expect("a chunk in time")
                .expect("a readable stream")
                .expect("the stream goes on while handlers are held");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    while let Some(chunk) = response.chunk().await.expect("a readable stream") {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    let lines = without_timings(&received);
    assert_eq!(
        lines[..3],
        [
            "[2] ok: handler 2",
            "[0] ok: handler 0",
            "[1] ok: handler 1"
        ],
        "{received}"
    );
    assert!(
        lines[3].starts_with("3 of 3 handlers succeeded"),
        "{received}"
    );
    server.stop().await.expect("a clean stop");
}

/// One handler that answers at once, one that waits for its token.
async fn partial(State(pool): State<Pool>, deadline: Deadline) -> impl IntoResponse {
    let handlers: Vec<Handler<Bytes, String>> = vec![
        handler(|_| Ok(Bytes::from("quick"))),
        handler(|token| {
            token.wait_timeout(DEADLINE * 2);
            Err("stopped by the deadline".to_owned())
        }),
    ];
    parallel_execute(&pool, deadline, handlers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_the_answer_is_504_with_the_results_that_arrived() {
    let pool = pool(4);
    let router = Router::new()
        .route("/partial", get(partial))
        .with_state(pool.clone());
    let server = TestServer::router(router, pool.clone()).await;
    let (status, content_type, body) =
        fetch(&client(), &server.url("/partial?deadline_ms=1500")).await;
    assert_eq!((status, content_type.as_str()), (504, TEXT), "{body}");
    let lines = without_timings(&body);
    assert_eq!(
        lines[..2],
        [
            "[0] ok: quick",
            "[1] deadline: not finished by the deadline"
        ],
        "{body}"
    );
    assert!(
        lines[2].starts_with("1 of 2 handlers succeeded in ")
            && lines[2].ends_with("; the deadline of 1500 ms passed"),
        "{body}"
    );
    // The late handler saw its token cancelled and gave its worker back.
    pool.wait_idle(DEADLINE).expect("the late handler stopped");
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_endpoints_answer_504_past_their_deadline() {
    let server = TestServer::service(pool(8), HealthPolicy::default()).await;
    let client = client();
    // Task 2 waits 150 ms: it cannot end by 100 ms.
    let (status, _, body) = fetch(&client, &server.url("/parallel/execute?deadline_ms=100")).await;
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("[1] deadline (") && body.ends_with("; the deadline of 100 ms passed\n"),
        "{body}"
    );
    // The API waits 80 ms.
    let (status, _, body) =
        fetch(&client, &server.url("/concurrent/advanced?deadline_ms=40")).await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("deadline of 40 ms passed: tasks ["), "{body}");
    assert!(!body.contains("API service responded"), "{body}");
    // The stream ends at the deadline, with a line for each late handler.
    let (status, _, body) = fetch(&client, &server.url("/stream/concurrent?deadline_ms=120")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("[0] deadline (") && body.contains("[2] deadline ("),
        "{body}"
    );
    assert!(
        body.ends_with("; the deadline of 120 ms passed\n"),
        "{body}"
    );
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_deadline_is_refused_with_400() {
    let server = TestServer::service(pool(2), HealthPolicy::default()).await;
    let client = client();
    let (status, content_type, body) =
        fetch(&client, &server.url("/parallel/execute?deadline_ms=soon")).await;
    assert_eq!((status, content_type.as_str()), (400, TEXT));
    assert!(
        body.starts_with("deadline_ms must be a whole number of milliseconds"),
        "{body}"
    );
    let (status, _, body) = fetch(
        &client,
        &server.url("/concurrent/basic?deadline_ms=86400000"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body, "deadline_ms must be at most 300000, got 86400000\n");
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_all_get_complete_ordered_answers() {
    // Every handler waits (100, 150 or 50 ms) without working: 600 of them
    // share 128 workers, so the load is the pool's queue, not the CPU.
    let server = TestServer::service(pool(128), HealthPolicy::default()).await;
    let client = client();
    let url = server.url("/parallel/execute");
    let requests: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { fetch(&client, &url).await })
        })
        .collect();
    for request in requests {
        let (status, _, body) = request.await.expect("the request task ran");
        assert_eq!(status, 200, "{body}");
        let lines = without_timings(&body);
        assert_eq!(lines[..3], EXECUTED, "{body}");
        assert!(
            lines[3].starts_with("3 of 3 handlers succeeded in "),
            "{body}"
        );
    }
    server.stop().await.expect("a clean stop");
}

/// A request whose handler waits at a gate, after saying it has started.
async fn held(State((pool, gate, started)): State<(Pool, Gate, mpsc::Sender<()>)>) -> Response {
    let writer = ConcurrentWriter::new();
    let theirs = writer.clone();
    let handle = pool
        .spawn_async(move || {
            let _ = started.send(());
            gate.wait();
            theirs.write("finished after the shutdown began\n")
        })
        .await;
    match handle {
        Ok(handle) => match handle.await {
            Ok(Ok(())) => writer.finish().into_response(),
            other => format!("{other:?}").into_response(),
        },
        Err(error) => error.to_string().into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_lets_requests_finish_then_releases_the_pool() {
    let pool = pool(2);
    let gate = Gate::new();
    let (started, has_started) = mpsc::channel();
    let router =
        Router::new()
            .route("/held", get(held))
            .with_state((pool.clone(), gate.clone(), started));
    let mut server = TestServer::router(router, pool.clone()).await;
    let client = client();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = server.url("/held");
        async move { fetch(&client, &url).await }
    });
    tokio::task::spawn_blocking(move || has_started.recv_timeout(DEADLINE))
        .await
        .expect("the waiting thread ran")
        .expect("the request reached its handler");

    // Layer 1: no new connections.
    server.signal_stop();
    let addr = server.base.trim_start_matches("http://").to_owned();
    common::wait_until("the listener is closed", || {
        std::net::TcpStream::connect_timeout(
            &addr.parse().expect("an address"),
            Duration::from_millis(200),
        )
        .is_err()
    })
    .await;
    // Layer 2: the request in flight still finishes, and the pool is open
    // for it meanwhile.
    assert!(!pool.is_closed());
    assert!(!in_flight.is_finished());
    gate.open();
    let (status, _, body) = in_flight.await.expect("the request task ran");
    assert_eq!(
        (status, body.as_str()),
        (200, "finished after the shutdown began\n")
    );
    // Layer 3: the pool is released, and its threads have exited.
    server.stop().await.expect("a clean stop");
    assert!(pool.is_closed());
    assert_eq!(pool.workers(), 0);
}
