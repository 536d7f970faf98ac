//! `PoolRouter` over real HTTP: `/metrics` parses as Prometheus text and
//! equals `Pool::stats`, `/health` turns 503 while the policy is breached
//! and 200 once it is not, `/stats` (the library's `Stats` beside the
//! pool's name) and the dashboard page.

mod common;

use axum::Router;
use common::{client, fetch, parse_metrics, sample, wait_until, Gate, TestServer, DEADLINE, NEVER};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use workpool::{HealthPolicy, Pool};
use workpool_http::{PoolHealth, PoolRouter, PoolStats};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_equal_the_pool_stats_after_a_known_workload() {
    let pool = Pool::builder()
        .name("scraped")
        .capacity(4)
        .expiry(NEVER)
        .panic_handler(|_| ())
        .build()
        .expect("a pool");
    let server = TestServer::service(pool.clone(), HealthPolicy::default()).await;
    let ran = Arc::new(AtomicUsize::new(0));
    const TASKS: usize = 500;
    for _ in 0..TASKS {
        let ran = Arc::clone(&ran);
        pool.submit(move || {
            ran.fetch_add(1, Ordering::Relaxed);
        })
        .expect("accepted");
    }
    for _ in 0..3 {
        pool.submit(|| panic!("counted, not fatal"))
            .expect("accepted");
    }
    pool.wait_idle(DEADLINE).expect("idle");
    assert_eq!(ran.load(Ordering::Relaxed), TASKS);

    let (status, content_type, text) = fetch(&client(), &server.url("/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let scrape = parse_metrics(&text);
    // The pool is idle and no worker expires: the figures hold still.
    let stats = pool.stats();
    let pool_label = [("pool", "scraped")];
    let outcome = |o: &'static str| [("pool", "scraped"), ("outcome", o)];
    assert_eq!(stats.submitted, (TASKS + 3) as u64);
    assert_eq!(stats.completed, TASKS as u64);
    assert_eq!(stats.panicked, 3);
    for (name, labels, want) in [
        (
            "workpool_tasks_submitted_total",
            &pool_label[..],
            stats.submitted as f64,
        ),
        (
            "workpool_tasks_total",
            &outcome("completed")[..],
            stats.completed as f64,
        ),
        (
            "workpool_tasks_total",
            &outcome("panicked")[..],
            stats.panicked as f64,
        ),
        (
            "workpool_tasks_total",
            &outcome("cancelled")[..],
            stats.cancelled as f64,
        ),
        (
            "workpool_tasks_total",
            &outcome("timed_out")[..],
            stats.timed_out as f64,
        ),
        (
            "workpool_tasks_total",
            &outcome("rejected")[..],
            stats.rejected as f64,
        ),
        (
            "workpool_workers_started_total",
            &pool_label[..],
            stats.workers_started as f64,
        ),
        (
            "workpool_workers_expired_total",
            &pool_label[..],
            stats.workers_expired as f64,
        ),
        ("workpool_workers", &pool_label[..], stats.workers as f64),
        ("workpool_busy_workers", &pool_label[..], 0.0),
        ("workpool_idle_workers", &pool_label[..], stats.idle as f64),
        ("workpool_waiting_submitters", &pool_label[..], 0.0),
        ("workpool_queued_tasks", &pool_label[..], 0.0),
        ("workpool_capacity", &pool_label[..], 4.0),
        (
            "workpool_queue_wait_seconds_count",
            &pool_label[..],
            stats.queue_wait.count as f64,
        ),
        (
            "workpool_run_seconds_count",
            &pool_label[..],
            stats.run_time.count as f64,
        ),
    ] {
        assert_eq!(sample(&scrape, name, labels), want, "{name} {labels:?}");
    }
    assert!(stats.queue_wait.count > 0, "some tasks were timed");
    let p99 = sample(
        &scrape,
        "workpool_queue_wait_seconds",
        &[("pool", "scraped"), ("quantile", "0.99")],
    );
    assert_eq!(p99, stats.queue_wait.p99.as_secs_f64());
    assert!(sample(&scrape, "workpool_uptime_seconds", &pool_label) > 0.0);

    // Each scrape exports afresh: the next one sees the next tasks.
    for _ in 0..10 {
        pool.submit(|| ()).expect("accepted");
    }
    pool.wait_idle(DEADLINE).expect("idle");
    let (_, _, text) = fetch(&client(), &server.url("/metrics")).await;
    let again = parse_metrics(&text);
    assert_eq!(
        sample(&again, "workpool_tasks_total", &outcome("completed")),
        (TASKS + 10) as f64
    );
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_in_one_process_keep_their_figures_apart() {
    let a = Pool::builder()
        .name("a")
        .capacity(2)
        .build()
        .expect("a pool");
    let b = Pool::builder()
        .name("b")
        .capacity(3)
        .build()
        .expect("a pool");
    let router = Router::new()
        .nest("/a", PoolRouter::new(a.clone()).into_router())
        .nest("/b", PoolRouter::new(b.clone()).into_router());
    let server = TestServer::router(router, a).await;
    let (status, _, text) = fetch(&client(), &server.url("/b/metrics")).await;
    assert_eq!(status, 200);
    let scrape = parse_metrics(&text);
    assert_eq!(sample(&scrape, "workpool_capacity", &[("pool", "b")]), 3.0);
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.labels.get("pool") == Some("b")),
        "only pool b's figures under /b: {text}"
    );
    server.stop().await.expect("a clean stop");
    b.release();
}

async fn health(server: &TestServer) -> (u16, PoolHealth) {
    let response = client()
        .get(server.url("/health"))
        .send()
        .await
        .expect("a response");
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, response.json().await.expect("PoolHealth"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_saturation_breaches_the_policy_and_200_after() {
    let pool = Pool::builder()
        .name("saturated")
        .capacity(2)
        .expiry(NEVER)
        .build()
        .expect("a pool");
    let policy = HealthPolicy {
        max_saturation: 0.5,
        ..HealthPolicy::default()
    };
    let server = TestServer::service(pool.clone(), policy).await;
    let (status, body) = health(&server).await;
    assert_eq!((status, body.health.healthy), (200, true), "{body:?}");
    assert_eq!(body.pool, "saturated");

    let gate = Gate::new();
    for _ in 0..2 {
        let gate = gate.clone();
        // Busy is counted from the moment submit hands the task over.
        pool.submit(move || gate.wait()).expect("accepted");
    }
    let (status, body) = health(&server).await;
    assert_eq!((status, body.health.healthy), (503, false), "{body:?}");
    assert_eq!((body.stats.busy, body.stats.capacity), (2, Some(2)));
    let problems = &body.health.problems;
    assert_eq!(problems.len(), 1, "{body:?}");
    assert!(
        problems[0].contains("saturation 100 %") && problems[0].contains("50 %"),
        "{body:?}"
    );

    gate.open();
    pool.wait_idle(DEADLINE).expect("idle");
    let (status, body) = health(&server).await;
    assert_eq!((status, body.health.healthy), (200, true), "{body:?}");
    assert!(body.health.problems.is_empty());
    assert_eq!(body.stats.completed, 2);
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_a_submitter_is_blocked_and_200_after() {
    // One worker and no queue: a second submit blocks until the first
    // task ends.
    let pool = Pool::builder()
        .name("blocked")
        .capacity(1)
        .queue_capacity(0)
        .expiry(NEVER)
        .build()
        .expect("a pool");
    let policy = HealthPolicy {
        max_waiting: 0,
        // Only the blocked submitter may breach: one busy worker of one
        // is full saturation.
        max_saturation: 1.0,
        ..HealthPolicy::default()
    };
    let server = TestServer::service(pool.clone(), policy).await;
    let gate = Gate::new();
    let held = gate.clone();
    pool.submit(move || held.wait()).expect("accepted");
    let submitter = std::thread::spawn({
        let pool = pool.clone();
        move || pool.submit(|| ())
    });
    // Nothing signals "now blocked inside submit" but the pool's gauge.
    wait_until("the second submitter blocks", || pool.waiting() == 1).await;

    let (status, body) = health(&server).await;
    assert_eq!(
        (status, body.health.healthy, body.stats.waiting),
        (503, false, 1),
        "{body:?}"
    );
    assert!(
        body.health.problems[0].contains("1 callers are blocked in submit, above the limit of 0"),
        "{body:?}"
    );

    gate.open();
    tokio::task::spawn_blocking(move || submitter.join())
        .await
        .expect("the joining thread ran")
        .expect("the submitter did not panic")
        .expect("the blocked submit was accepted");
    pool.wait_idle(DEADLINE).expect("idle");
    let (status, body) = health(&server).await;
    assert_eq!(
        (status, body.health.healthy, body.stats.waiting),
        (200, true, 0),
        "{body:?}"
    );
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_is_the_pool_stats_as_json() {
    let pool = Pool::builder()
        .name("counted")
        .capacity(3)
        .expiry(NEVER)
        .build()
        .expect("a pool");
    let server = TestServer::service(pool.clone(), HealthPolicy::default()).await;
    let batch = pool
        .spawn_batch((0..20u32).map(|n| move || n))
        .expect("accepted");
    assert_eq!(batch.join().len(), 20);
    pool.wait_idle(DEADLINE).expect("idle");
    let response = client()
        .get(server.url("/stats"))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let json: serde_json::Value = response.json().await.expect("JSON");
    // One object: the name beside the library's `Stats`, durations in
    // seconds.
    assert_eq!(json["pool"], "counted");
    assert_eq!(json["completed"], 20);
    assert!(json["uptime_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(json["queue_wait"]["p99_seconds"].is_f64(), "{json}");
    assert!(json.get("stats").is_none() && json.get("pools").is_none());
    let body: PoolStats = serde_json::from_value(json).expect("PoolStats");
    let stats = pool.stats();
    assert_eq!(body.pool, "counted");
    let got = &body.stats;
    assert_eq!(
        (
            got.submitted,
            got.completed,
            got.workers,
            got.idle,
            got.busy
        ),
        (20, 20, stats.workers, stats.idle, 0)
    );
    assert_eq!((got.capacity, got.queued, got.waiting), (Some(3), 0, 0));
    // The pool is idle: its latencies hold still.
    assert_eq!(got.queue_wait, stats.queue_wait);
    assert_eq!(got.run_time, stats.run_time);
    assert!(got.uptime > std::time::Duration::ZERO);
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_one_page_with_its_script_inline() {
    let pool = Pool::new(2).expect("a pool");
    let server = TestServer::service(pool, HealthPolicy::default()).await;
    let (status, content_type, page) = fetch(&client(), &server.url("/")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    for id in [
        "workers",
        "busy",
        "waiting",
        "queued",
        "capacity",
        "tasks-per-second",
        "queue-wait-p99",
        "submitted",
        "completed",
        "chart-workers",
        "chart-rate",
        "chart-wait",
        "window",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no element #{id}");
    }
    assert!(page.contains("<canvas") && page.contains("<script>"));
    // No build step and nothing from elsewhere: no external script, style
    // sheet or font.
    for outside in ["<script src", "<link", "http://", "https://", "@import"] {
        assert!(!page.contains(outside), "the page loads {outside:?}");
    }
    server.stop().await.expect("a clean stop");
}
