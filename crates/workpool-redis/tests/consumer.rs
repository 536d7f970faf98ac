//! One consumer in this process against a redis-server of the test's own.

mod common;

use common::{counts, demo_handler, pending, redis_or_skip, wait_for, Demo};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use workpool_redis::{Consumer, ConsumerStats, Producer};

fn push(url: &str, stream: &str, jobs: impl Iterator<Item = Demo>) -> usize {
    let jobs: Vec<Demo> = jobs.collect();
    let producer = Producer::new(url, stream).unwrap();
    producer.push_batch(&jobs).unwrap().len()
}

fn demo(n: u64, sleep_ms: u64) -> impl Iterator<Item = Demo> {
    (0..n).map(move |id| Demo {
        id,
        sleep_ms,
        fail: false,
    })
}

#[test]
fn n_jobs_run_once_each_and_leave_nothing_pending() {
    let redis = redis_or_skip!();
    assert_eq!(push(&redis.url, "jobs", demo(300, 1)), 300);
    let consumer = Consumer::builder(&redis.url, "jobs", "g")
        .capacity(8)
        .build(demo_handler(&redis.url, "jobs"))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "300 acks", || handle.stats().acked == 300);
    handle.shutdown();
    let stats: ConsumerStats = running.join().unwrap();
    assert_eq!((stats.read, stats.acked, stats.in_flight), (300, 300, 0));
    assert_eq!((stats.retried, stats.dead_lettered), (0, 0));
    assert_eq!(stats.pickup_latency.count, 300);
    let mut conn = redis.conn();
    let effects = counts(&mut conn, "jobs:effects");
    assert_eq!(effects.len(), 300);
    assert!(effects.values().all(|&n| n == 1), "{effects:?}");
    assert_eq!(pending(&mut conn, "jobs", "g"), 0);
}

#[test]
fn a_job_failing_twice_is_retried_then_acked() {
    let redis = redis_or_skip!();
    Producer::new(&redis.url, "flaky")
        .unwrap()
        .push(&serde_json::json!({"id": 1}))
        .unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    let consumer = Consumer::builder(&redis.url, "flaky", "g")
        .capacity(2)
        .backoff(Duration::from_millis(20))
        .build(move |job| {
            seen.lock().unwrap().push(job.attempt());
            if job.attempt() <= 2 {
                Err(format!("attempt {} fails", job.attempt()))
            } else {
                Ok(())
            }
        })
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "the ack", || handle.stats().acked == 1);
    handle.shutdown();
    let stats = running.join().unwrap();
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    assert_eq!((stats.retried, stats.acked, stats.dead_lettered), (2, 1, 0));
    assert_eq!(pending(&mut redis.conn(), "flaky", "g"), 0);
}

#[test]
fn a_job_always_failing_is_dead_lettered_with_its_error() {
    let redis = redis_or_skip!();
    let id = Producer::new(&redis.url, "bad")
        .unwrap()
        .push(&Demo {
            id: 9,
            sleep_ms: 0,
            fail: true,
        })
        .unwrap();
    let consumer = Consumer::builder(&redis.url, "bad", "g")
        .capacity(2)
        .max_deliveries(3)
        .backoff(Duration::from_millis(10))
        .build(demo_handler(&redis.url, "bad"))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "the dead letter", || handle.stats().dead_lettered == 1);
    handle.shutdown();
    let stats = running.join().unwrap();
    assert_eq!((stats.retried, stats.acked, stats.dead_lettered), (2, 0, 1));
    let mut conn = redis.conn();
    assert_eq!(counts(&mut conn, "bad:runs")[&9], 3);
    let dead: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("bad:dead")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(dead.len(), 1);
    let fields: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields["id"], id.as_str());
    assert_eq!(fields["error"], "job 9 fails");
    assert_eq!(fields["deliveries"], "3");
    assert!(fields["job"].contains("\"id\":9"), "{}", fields["job"]);
    assert_eq!(pending(&mut conn, "bad", "g"), 0);
}

#[test]
fn a_consumer_never_holds_more_than_capacity_plus_queue() {
    let redis = redis_or_skip!();
    let (capacity, queue) = (4, 2);
    push(&redis.url, "bounded", demo(120, 20));
    let consumer = Consumer::builder(&redis.url, "bounded", "g")
        .capacity(capacity)
        .queue_capacity(queue)
        .build(demo_handler(&redis.url, "bounded"))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    let mut conn = redis.conn();
    let mut most = 0;
    wait_for(60, "120 acks", || {
        let held = pending(&mut conn, "bounded", "g");
        most = most.max(held);
        assert!(held <= (capacity + queue) as u64, "{held} pending");
        assert!(handle.stats().in_flight <= (capacity + queue) as u64);
        handle.stats().acked == 120
    });
    handle.shutdown();
    running.join().unwrap();
    // It did fill its room: the bound was reached, not just respected.
    assert_eq!(most, (capacity + queue) as u64);
}

#[test]
fn shutdown_while_jobs_run_acks_them_and_leaves_nothing_pending() {
    let redis = redis_or_skip!();
    push(&redis.url, "stop", demo(6, 400));
    let consumer = Consumer::builder(&redis.url, "stop", "g")
        .capacity(6)
        .build(demo_handler(&redis.url, "stop"))
        .unwrap();
    let handle = consumer.handle();
    let pool = consumer.pool().clone();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "6 jobs running", || pool.busy() == 6);
    handle.shutdown();
    let stats = running.join().unwrap();
    assert_eq!((stats.read, stats.acked, stats.in_flight), (6, 6, 0));
    let mut conn = redis.conn();
    assert_eq!(pending(&mut conn, "stop", "g"), 0);
    assert_eq!(counts(&mut conn, "stop:effects").len(), 6);
}

#[test]
fn a_restarted_consumer_first_reruns_its_own_pending_entries() {
    let redis = redis_or_skip!();
    push(&redis.url, "again", demo(5, 0));
    let mut conn = redis.conn();
    // A consumer named "c1" read them and died before running any.
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("again")
        .arg("g")
        .arg("0")
        .query::<()>(&mut conn)
        .unwrap();
    redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c1")
        .arg("STREAMS")
        .arg("again")
        .arg(">")
        .query::<redis::Value>(&mut conn)
        .unwrap();
    assert_eq!(pending(&mut conn, "again", "g"), 5);
    // Restarted under the same name, with a visibility timeout far too long
    // for a reclaim to be what runs them.
    let consumer = Consumer::builder(&redis.url, "again", "g")
        .consumer_name("c1")
        .visibility_timeout(Duration::from_secs(3600))
        .build(demo_handler(&redis.url, "again"))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "5 acks", || handle.stats().acked == 5);
    handle.shutdown();
    let stats = running.join().unwrap();
    assert_eq!((stats.read, stats.reclaimed), (5, 0));
    assert_eq!(pending(&mut conn, "again", "g"), 0);
}
