//! With the `serde` feature: the JSON of `Stats`, `LatencySummary`,
//! `Health` and `HealthPolicy`. The field names a user sees, durations as
//! seconds, round trips that give back every public figure, and the error
//! for a number of seconds that is not a duration.

mod common;

use common::DEADLINE;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;
use workpool::{Health, HealthPolicy, LatencySummary, LoadBalancing, MultiPool, Pool, Stats};

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

const LATENCY_KEYS: [&str; 8] = [
    "count",
    "max_seconds",
    "mean_seconds",
    "min_seconds",
    "p50_seconds",
    "p90_seconds",
    "p99_seconds",
    "sum_seconds",
];

const STATS_KEYS: [&str; 17] = [
    "busy",
    "cancelled",
    "capacity",
    "completed",
    "idle",
    "panicked",
    "queue_wait",
    "queued",
    "rejected",
    "run_time",
    "submitted",
    "timed_out",
    "uptime_seconds",
    "waiting",
    "workers",
    "workers_expired",
    "workers_started",
];

/// [`STATS_KEYS`] and `extra`, sorted.
fn stats_keys(extra: &[&'static str]) -> Vec<&'static str> {
    let mut keys: Vec<&str> = STATS_KEYS.iter().chain(extra).copied().collect();
    keys.sort_unstable();
    keys
}

/// Every public figure of two snapshots, compared one by one: a `Stats`
/// read back has no histogram, so `==` on the whole would compare that too.
fn assert_same_figures(got: &Stats, want: &Stats) {
    assert_eq!(
        (
            got.submitted,
            got.completed,
            got.panicked,
            got.cancelled,
            got.timed_out,
            got.rejected
        ),
        (
            want.submitted,
            want.completed,
            want.panicked,
            want.cancelled,
            want.timed_out,
            want.rejected
        )
    );
    assert_eq!(
        (got.workers, got.idle, got.busy, got.waiting, got.queued),
        (
            want.workers,
            want.idle,
            want.busy,
            want.waiting,
            want.queued
        )
    );
    assert_eq!(got.capacity, want.capacity);
    assert_eq!(
        (got.workers_started, got.workers_expired, got.uptime),
        (want.workers_started, want.workers_expired, want.uptime)
    );
    assert_eq!(got.queue_wait, want.queue_wait);
    assert_eq!(got.run_time, want.run_time);
    assert_eq!(got.pools.len(), want.pools.len());
    for (got, want) in got.pools.iter().zip(&want.pools) {
        assert_same_figures(got, want);
    }
}

#[test]
fn a_latency_summary_is_seconds_in_fields_named_seconds_and_round_trips() {
    let summary = LatencySummary {
        count: 3,
        min: Duration::from_nanos(11_263),
        mean: Duration::from_micros(1_063),
        p50: Duration::from_millis(1),
        p90: Duration::from_nanos(1_114_111),
        p99: Duration::from_millis(250),
        max: Duration::from_secs(2),
        sum: Duration::new(3, 189_018),
    };
    let json = serde_json::to_value(summary).expect("serializes");
    assert_eq!(keys(&json), LATENCY_KEYS);
    assert_eq!(
        json,
        json!({
            "count": 3,
            "min_seconds": 0.000011263,
            "mean_seconds": 0.001063,
            "p50_seconds": 0.001,
            "p90_seconds": 0.001114111,
            "p99_seconds": 0.25,
            "max_seconds": 2.0,
            "sum_seconds": 3.000189018,
        })
    );
    let text = serde_json::to_string(&summary).expect("serializes");
    let back: LatencySummary = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back, summary);
}

#[test]
fn a_duration_is_written_as_its_decimal_figure() {
    // Whole seconds plus nanoseconds / 1e9 would print 1.8462461669999999.
    let summary = LatencySummary {
        p99: Duration::new(1, 846_246_167),
        sum: Duration::new(11, 765_884_266),
        ..LatencySummary::default()
    };
    let text = serde_json::to_string(&summary).expect("serializes");
    assert!(text.contains(r#""p99_seconds":1.846246167,"#), "{text}");
    assert!(text.contains(r#""sum_seconds":11.765884266}"#), "{text}");
}

#[test]
fn the_stats_of_a_pool_round_trip_with_every_public_figure() {
    let pool = Pool::builder()
        .capacity(2)
        .panic_handler(|_| ())
        .build()
        .expect("a pool");
    for _ in 0..3 {
        pool.spawn(|| std::thread::sleep(Duration::from_millis(1)))
            .expect("accepted")
            .join()
            .expect("ran");
    }
    pool.submit(|| panic!("counted")).expect("accepted");
    pool.wait_idle(DEADLINE).expect("idle");
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.panicked), (3, 1));

    let json = serde_json::to_value(&stats).expect("serializes");
    // A single pool's `pools` is empty, and left out.
    assert_eq!(keys(&json), stats_keys(&[]));
    assert_eq!(keys(&json["queue_wait"]), LATENCY_KEYS);
    assert_eq!(keys(&json["run_time"]), LATENCY_KEYS);
    assert_eq!(json["completed"], 3);
    assert_eq!(json["panicked"], 1);
    assert_eq!(json["capacity"], 2);
    assert_eq!(json["run_time"]["count"], 4);
    assert_eq!(
        json["uptime_seconds"].as_f64(),
        Some(stats.uptime.as_secs_f64())
    );
    assert_eq!(
        json["run_time"]["p99_seconds"].as_f64(),
        Some(stats.run_time.p99.as_secs_f64())
    );

    let text = serde_json::to_string(&stats).expect("serializes");
    let back: Stats = serde_json::from_str(&text).expect("reads back");
    assert_same_figures(&back, &stats);
    // And it writes the same JSON again.
    assert_eq!(serde_json::to_value(&back).expect("serializes"), json);
}

#[test]
fn an_unbounded_pool_has_a_null_capacity() {
    let pool = Pool::builder().unbounded().build().expect("a pool");
    let json = serde_json::to_value(pool.stats()).expect("serializes");
    assert_eq!(json["capacity"], Value::Null);
    let back: Stats = serde_json::from_value(json).expect("reads back");
    assert_eq!(back.capacity, None);
}

#[test]
fn a_multi_pool_writes_each_pool_under_pools() {
    let pools = MultiPool::new(2, 2, LoadBalancing::RoundRobin).expect("pools");
    for n in 0..4u32 {
        pools
            .spawn(move || n)
            .expect("accepted")
            .join()
            .expect("ran");
    }
    pools.wait_idle(DEADLINE).expect("idle");
    let stats = pools.stats();
    let json = serde_json::to_value(&stats).expect("serializes");
    assert_eq!(keys(&json), stats_keys(&["pools"]));
    let each = json["pools"].as_array().expect("an array");
    assert_eq!(each.len(), 2);
    for pool in each {
        assert_eq!(keys(pool), stats_keys(&[]));
        assert_eq!(pool["completed"], 2);
    }
    let back: Stats = serde_json::from_value(json).expect("reads back");
    assert_same_figures(&back, &stats);
}

#[test]
fn a_verdict_is_healthy_and_its_problems() {
    let pool = Pool::builder().capacity(1).build().expect("a pool");
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = std::sync::mpsc::channel::<()>();
    pool.submit(move || {
        let _ = started.send(());
        let _ = held.recv_timeout(DEADLINE);
    })
    .expect("accepted");
    running.recv_timeout(DEADLINE).expect("the task started");
    let strict = HealthPolicy {
        max_saturation: 0.5,
        ..HealthPolicy::default()
    };
    let health = pool.health(&strict);
    assert!(!health.healthy);
    let json = serde_json::to_value(&health).expect("serializes");
    assert_eq!(keys(&json), ["healthy", "problems"]);
    assert_eq!(json["healthy"], false);
    assert_eq!(json["problems"], json!(health.problems));
    let back: Health = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, health);
    release.send(()).expect("the task waits");
    pool.wait_idle(DEADLINE).expect("idle");

    let fine = serde_json::to_value(pool.health(&HealthPolicy::default())).expect("serializes");
    assert_eq!(fine, json!({"healthy": true, "problems": []}));
}

#[test]
fn a_health_policy_round_trips_and_a_field_left_out_takes_its_default() {
    let policy = HealthPolicy {
        max_error_rate: 0.25,
        error_window: Duration::from_millis(1500),
        max_waiting: 3,
        max_saturation: 0.75,
        max_queued: 40,
        max_queue_wait_p99: Duration::from_millis(20),
    };
    let json = serde_json::to_value(&policy).expect("serializes");
    assert_eq!(
        json,
        json!({
            "max_error_rate": 0.25,
            "error_window_seconds": 1.5,
            "max_waiting": 3,
            "max_saturation": 0.75,
            "max_queued": 40,
            "max_queue_wait_p99_seconds": 0.02,
        })
    );
    let back: HealthPolicy = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, policy);

    let partial: HealthPolicy =
        serde_json::from_str(r#"{"max_queued": 5, "error_window_seconds": 2}"#).expect("reads");
    assert_eq!(
        partial,
        HealthPolicy {
            max_queued: 5,
            error_window: Duration::from_secs(2),
            ..HealthPolicy::default()
        }
    );
    let empty: HealthPolicy = serde_json::from_str("{}").expect("reads");
    assert_eq!(empty, HealthPolicy::default());
}

#[test]
fn a_number_of_seconds_that_is_not_a_duration_is_refused_with_its_value() {
    let negative = serde_json::from_str::<HealthPolicy>(r#"{"error_window_seconds": -1.5}"#)
        .expect_err("a negative window");
    let message = negative.to_string();
    assert!(
        message.contains("-1.5 is not a duration in seconds") && message.contains("negative"),
        "{message}"
    );
    let huge = serde_json::from_str::<LatencySummary>(
        r#"{"count":1,"min_seconds":0,"mean_seconds":0,"p50_seconds":0,"p90_seconds":0,
            "p99_seconds":1e300,"max_seconds":0,"sum_seconds":0}"#,
    )
    .expect_err("beyond Duration::MAX");
    let message = huge.to_string();
    assert!(
        message.contains("1e300 is not a duration in seconds") && message.contains("too big"),
        "{message}"
    );
    let text = serde_json::from_str::<HealthPolicy>(r#"{"max_queue_wait_p99_seconds": "1s"}"#)
        .expect_err("a string");
    assert!(text.to_string().contains("invalid type"), "{text}");
}

proptest! {
    /// Seconds as an `f64` give back the very `Duration`, to the
    /// nanosecond, up to 2^23 s (97 days).
    #[test]
    fn a_duration_below_97_days_round_trips_to_the_nanosecond(
        nanos in 0u64..(1u64 << 23) * 1_000_000_000,
        count: u64,
    ) {
        let d = Duration::from_nanos(nanos);
        let summary = LatencySummary {
            count, min: d, mean: d, p50: d, p90: d, p99: d, max: d, sum: d,
        };
        let text = serde_json::to_string(&summary).unwrap();
        let back: LatencySummary = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, summary);
    }
}
