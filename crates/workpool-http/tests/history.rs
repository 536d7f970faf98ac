//! `/history` over real HTTP: the router's own samples, one a second, hold
//! what happened before anyone asked; `?after=` gives only the newer ones;
//! each sample's `recent` figures are those of the health policy's window,
//! so their p99 queue wait recovers after a burst where the p99 since the
//! build does not; and the sampling task ends with its router.

mod common;

use axum::body::{to_bytes, Body};
use axum::http::Request;
use common::{client, history, history_until, Gate, TestServer, DEADLINE, NEVER};
use std::time::{Duration, Instant};
use tower::ServiceExt;
use workpool::{HealthPolicy, Pool};
use workpool_http::{History, PoolRouter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_holds_the_activity_of_before_it_was_asked_for() {
    let pool = Pool::builder()
        .name("remembered")
        .capacity(4)
        .expiry(NEVER)
        .build()
        .expect("a pool");
    let server = TestServer::service(pool.clone(), HealthPolicy::default()).await;
    let client = client();
    // A sample of the idle pool first, so that the activity falls between
    // two samples.
    let idle = history_until(&client, &server, "a first sample", |h| h.taken >= 1).await;
    assert_eq!(idle.samples[0].seq, 0);
    assert_eq!(idle.samples[0].at_seconds, 0.0);
    assert_eq!(idle.samples[0].stats.submitted, 0);

    const TASKS: u64 = 200;
    let batch = pool
        .spawn_batch((0..TASKS).map(|n| move || n))
        .expect("accepted");
    assert_eq!(batch.join().len() as u64, TASKS);
    pool.wait_idle(DEADLINE).expect("idle");

    let after = history_until(&client, &server, "a sample after the tasks", |h| {
        h.samples.last().is_some_and(|s| s.stats.completed == TASKS)
    })
    .await;
    assert_eq!(after.pool, "remembered");
    assert_eq!(
        (after.interval_seconds, after.window_seconds),
        (1.0, 60.0),
        "one a second; the default policy's window"
    );
    assert_eq!(after.taken, after.samples.len() as u64, "none dropped yet");
    // In order, one a second, each numbered one more than the last.
    for (pair, n) in after.samples.windows(2).zip(1u64..) {
        assert_eq!((pair[0].seq, pair[1].seq), (n - 1, n));
        let gap = pair[1].at_seconds - pair[0].at_seconds;
        assert!(gap >= 0.99, "samples {gap} s apart");
        assert!(pair[0].stats.completed <= pair[1].stats.completed);
    }
    let latest = after.samples.last().expect("a sample");
    assert_eq!(latest.stats.submitted, TASKS);
    assert!(latest.stats.queue_wait.count > 0, "the tasks were timed");
    // Within the policy's minute: the window holds the tasks too.
    assert_eq!(latest.recent.completed, TASKS);
    assert_eq!(
        latest.recent.queue_wait.count,
        latest.stats.queue_wait.count
    );
    assert!(latest.recent.uptime <= latest.stats.uptime);

    // `?after=` gives what a page holding sample N lacks: nothing more
    // than the latest, all but the first after sample 0.
    let newer = history(&client, &server, Some(latest.seq)).await;
    assert!(
        newer.samples.iter().all(|s| s.seq > latest.seq),
        "{:?}",
        newer.samples.iter().map(|s| s.seq).collect::<Vec<_>>()
    );
    let but_first = history(&client, &server, Some(0)).await;
    assert_eq!(but_first.samples.first().map(|s| s.seq), Some(1));
    assert!(but_first.taken >= after.taken);
    server.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_p99_recovers_once_the_window_has_passed_and_the_p99_since_the_build_does_not() {
    let pool = Pool::builder()
        .name("recovering")
        .capacity(1)
        .expiry(NEVER)
        .build()
        .expect("a pool");
    // A window of seconds, not the default minute, so the test takes
    // seconds.
    let window = Duration::from_secs(2);
    let policy = HealthPolicy {
        error_window: window,
        ..HealthPolicy::default()
    };
    let server = TestServer::service(pool.clone(), policy).await;
    let client = client();
    history_until(&client, &server, "a first sample", |h| h.taken >= 1).await;

    // A burst: 50 tasks queued behind the one worker, held for 300 ms.
    let gate = Gate::new();
    let held = gate.clone();
    pool.submit(move || held.wait()).expect("accepted");
    for _ in 0..50 {
        pool.submit(|| ()).expect("accepted");
    }
    // The wait is the figure under test: the queued tasks wait this long.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.open();
    pool.wait_idle(DEADLINE).expect("idle");
    let burst = pool.stats().queue_wait.p99;
    assert!(
        burst >= Duration::from_millis(250),
        "the burst's p99 {burst:?}"
    );

    let during = history_until(&client, &server, "a sample with the burst", |h| {
        h.samples.iter().any(|s| s.stats.completed == 51)
    })
    .await;
    assert_eq!(during.window_seconds, 2.0);
    // The first sample after the burst (within a second of it): its
    // window holds the burst.
    let sample = during
        .samples
        .iter()
        .find(|s| s.stats.completed == 51)
        .expect("a sample with the burst");
    assert!(
        sample.recent.queue_wait.p99 >= Duration::from_millis(250),
        "the burst is within the window: {:?}",
        sample.recent.queue_wait
    );

    // Then fast tasks, a few every 50 ms, until a sample's window holds
    // them alone.
    let deadline = Instant::now() + DEADLINE;
    let recovered = loop {
        for _ in 0..3 {
            pool.spawn(|| ()).expect("accepted").join().expect("ran");
        }
        let now = history(&client, &server, None).await;
        let latest = now.samples.last().expect("a sample").clone();
        if latest.recent.queue_wait.count > 0 && latest.recent.queue_wait.p99 < burst / 10 {
            break latest;
        }
        assert!(
            Instant::now() < deadline,
            "the recent p99 never recovered: {:?}",
            latest.recent.queue_wait
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The window is the policy's: a window at least, at most an eighth of
    // one and a sample interval more (and a second for a late tick), and
    // not since the build.
    let covered = recovered.recent.uptime;
    assert!(
        // Less by the microseconds between a tick and its snapshot at most.
        covered + Duration::from_millis(50) >= window
            && covered <= window + window / 8 + Duration::from_secs(2),
        "the recent figures span {covered:?}"
    );
    assert!(covered < recovered.stats.uptime);
    assert!(recovered.recent.completed > 0);
    // What the dashboard showed before: the p99 since the build, which
    // still holds the burst, and would for as long as the process lives.
    assert!(
        recovered.stats.queue_wait.p99 >= burst / 2,
        "since the build: {:?}",
        recovered.stats.queue_wait
    );
    server.stop().await.expect("a clean stop");
}

/// The tasks alive on the current runtime.
fn alive() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn get_history(app: &axum::Router) -> History {
    let request = Request::get("/history")
        .body(Body::empty())
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("an answer");
    assert_eq!(response.status().as_u16(), 200);
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    serde_json::from_slice(&body).expect("a History")
}

/// Yields to the runtime until `alive() == want`, or fails after
/// [`DEADLINE`]: an aborted task is dropped when the runtime next runs it.
async fn until_alive(want: usize, what: &str) {
    let deadline = Instant::now() + DEADLINE;
    while alive() != want {
        assert!(Instant::now() < deadline, "{what}: {} tasks alive", alive());
        tokio::task::yield_now().await;
    }
}

#[test]
fn the_sampling_task_starts_with_the_router_and_ends_when_it_is_dropped() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let pool = Pool::builder().name("sampled").build().expect("a pool");
    runtime.block_on(async {
        assert_eq!(alive(), 0);
        let app: axum::Router = PoolRouter::new(pool.clone()).into_router();
        assert_eq!(alive(), 1, "built in a runtime: sampling at once");
        let first = get_history(&app).await;
        let clone = app.clone();
        drop(app);
        // A clone still serves: the task goes on.
        let later = loop {
            let later = get_history(&clone).await;
            if later.taken > first.taken.max(1) {
                break later;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(later.samples.len() >= 2);
        assert_eq!(alive(), 1);
        drop(clone);
        until_alive(0, "the sampling task ends with the last clone").await;
    });
    pool.release();
}

#[test]
fn a_router_built_outside_a_runtime_samples_from_its_first_request() {
    let pool = Pool::builder().name("lazy").build().expect("a pool");
    let app: axum::Router = PoolRouter::new(pool.clone()).into_router();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        assert_eq!(alive(), 0, "no runtime to sample on until now");
        let first = get_history(&app).await;
        assert_eq!(alive(), 1, "the first request started it");
        assert!(first.taken <= 1);
        let sampled = loop {
            let h = get_history(&app).await;
            if h.taken >= 1 {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(sampled.samples[0].seq, 0);
        // More requests start nothing more.
        get_history(&app).await;
        assert_eq!(alive(), 1);
        drop(app);
        until_alive(0, "the sampling task ends with the router").await;
    });
    pool.release();
}
