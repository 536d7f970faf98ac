//! A redis-server killed and restarted under a running consumer, with its
//! data kept (an append-only file synced on every write): the consumer
//! reconnects, loses no acked job and acks no unfinished one. And a
//! shutdown while Redis is gone returns after its timeout, leaving what it
//! could not ack pending for a reclaim; and one while Redis hangs (its
//! sockets open, nothing answered) returns too.
//!
//! The handlers here record their runs in the test's memory, not in Redis,
//! so that what they did is known whatever happens to the server.

mod common;

use common::{pending, push, redis_or_skip, wait_for, Demo, RedisServer};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use workpool_redis::{Consumer, Job, Producer};

/// A directory of the test's own for the server's append-only file,
/// removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "workpool-redis-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let path = PathBuf::from(path.to_string_lossy().replace([' ', '{', '}', ':'], ""));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the handlers did, by stream entry ID.
#[derive(Default)]
struct Record {
    /// Runs whose handler returned `Ok`.
    ok: HashMap<String, u32>,
    /// Entries found already acked while their handler was still running.
    acked_early: Vec<String>,
}

/// Sleeps `sleep_ms`, then checks, where Redis answers, that the entry is
/// still pending (not acked before its handler returned), then records the
/// `Ok` it returns.
fn handler(
    url: &str,
    stream: &str,
    record: &Arc<Mutex<Record>>,
) -> impl Fn(Job) -> Result<(), String> + Send + Sync + 'static {
    let client = redis::Client::open(url).unwrap();
    let stream = stream.to_owned();
    let record = Arc::clone(record);
    move |job| {
        let demo: Demo = job.decode().map_err(|e| e.to_string())?;
        thread::sleep(Duration::from_millis(demo.sleep_ms));
        let still_pending = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|mut conn| {
                redis::cmd("XPENDING")
                    .arg(&stream)
                    .arg("g")
                    .arg(job.id().as_str())
                    .arg(job.id().as_str())
                    .arg(1)
                    .query::<Vec<redis::Value>>(&mut conn)
            })
            .map(|rows| !rows.is_empty());
        let mut record = record.lock().unwrap();
        if still_pending == Ok(false) {
            record.acked_early.push(job.id().as_str().to_owned());
        }
        *record.ok.entry(job.id().as_str().to_owned()).or_default() += 1;
        Ok(())
    }
}

fn entry_ids(conn: &mut redis::Connection, stream: &str) -> Vec<String> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    entries.into_iter().map(|(id, _)| id).collect()
}

fn pending_ids(conn: &mut redis::Connection, stream: &str) -> HashSet<String> {
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(1_000_000)
        .query(conn)
        .unwrap();
    rows.into_iter().map(|(id, ..)| id).collect()
}

#[test]
fn a_restarted_redis_server_is_reconnected_to_and_no_ack_is_lost_or_early() {
    let dir = TempDir::new("restart");
    let mut redis = redis_or_skip!(RedisServer::start_persistent(&dir.0));
    const N: usize = 400;
    push(&redis.url, "jobs", N as u64, 10);
    let record = Arc::new(Mutex::new(Record::default()));
    let consumer = Consumer::builder(&redis.url, "jobs", "g")
        .capacity(8)
        // A read whose reply the kill cut off leaves entries pending that
        // the consumer never saw: it reclaims them after this long.
        .visibility_timeout(Duration::from_secs(2))
        .build(handler(&redis.url, "jobs", &record))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());

    wait_for(30, "100 jobs done", || {
        record.lock().unwrap().ok.len() >= 100
    });
    // The entries acked before the kill (done here, no longer pending).
    let acked_before: Vec<String> = {
        let pending = pending_ids(&mut redis.conn(), "jobs");
        let record = record.lock().unwrap();
        record
            .ok
            .keys()
            .filter(|id| !pending.contains(*id))
            .cloned()
            .collect()
    };
    assert!(!acked_before.is_empty());
    redis.kill();
    // Jobs finish while it is down; their acks wait.
    let done_at_kill = record.lock().unwrap().ok.len();
    thread::sleep(Duration::from_millis(500));
    let done_while_down = record.lock().unwrap().ok.len() - done_at_kill;
    redis.restart();
    assert!(
        done_at_kill + done_while_down < N,
        "the run ended before the restart"
    );

    let mut conn = redis.conn();
    wait_for(60, "every job done and acked", || {
        record.lock().unwrap().ok.len() == N && pending(&mut conn, "jobs", "g") == 0
    });
    handle.shutdown();
    let stats = running.join().unwrap();
    let record = record.lock().unwrap();
    eprintln!(
        "restart: {done_at_kill} done at the kill, {done_while_down} while down; {} runs of {N} jobs; {stats:?}",
        record.ok.values().sum::<u32>()
    );

    let ids = entry_ids(&mut conn, "jobs");
    assert_eq!(ids.len(), N, "the stream survived the restart");
    // Every job's effect happened at least once.
    for id in &ids {
        assert!(record.ok.contains_key(id), "{id} never ran");
    }
    // Every acked job's effect happened: all are acked now, and each ran.
    assert!(pending_ids(&mut conn, "jobs").is_empty());
    // No job was acked before its handler returned Ok.
    assert!(
        record.acked_early.is_empty(),
        "acked while running: {:?}",
        record.acked_early
    );
    // The acks Redis had before the kill were kept: those jobs did not run
    // again after the restart.
    for id in &acked_before {
        assert_eq!(record.ok[id], 1, "{id}, acked before the kill, ran again");
    }
    assert_eq!(stats.in_flight, 0);
    assert!(stats.acked >= N as u64, "{stats:?}");
}

#[test]
fn a_shutdown_with_redis_gone_returns_after_its_timeout_leaving_jobs_pending() {
    let dir = TempDir::new("gone");
    let mut redis = redis_or_skip!(RedisServer::start_persistent(&dir.0));
    push(&redis.url, "gone", 4, 500);
    let record = Arc::new(Mutex::new(Record::default()));
    let consumer = Consumer::builder(&redis.url, "gone", "g")
        .consumer_name("first")
        .capacity(4)
        .shutdown_timeout(Duration::from_secs(1))
        .build(handler(&redis.url, "gone", &record))
        .unwrap();
    let handle = consumer.handle();
    let pool = consumer.pool().clone();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "4 jobs running", || pool.busy() == 4);
    redis.kill();
    handle.shutdown();
    let asked = Instant::now();
    let stats = running.join().unwrap();
    let took = asked.elapsed();
    // The jobs finished (Ok) but could not be acked: run gave up on them
    // after the shutdown timeout instead of retrying for ever.
    assert_eq!(record.lock().unwrap().ok.len(), 4);
    assert!(took < Duration::from_secs(8), "run took {took:?} to return");
    assert!(
        took >= Duration::from_secs(1),
        "run returned after {took:?}"
    );
    assert_eq!((stats.acked, stats.in_flight), (0, 4), "{stats:?}");

    // Back up: the four are still pending, under the first consumer.
    redis.restart();
    let mut conn = redis.conn();
    assert_eq!(pending(&mut conn, "gone", "g"), 4);
    // Another consumer reclaims and runs them (again: at least once).
    let consumer = Consumer::builder(&redis.url, "gone", "g")
        .consumer_name("second")
        .visibility_timeout(Duration::from_millis(300))
        .build(handler(&redis.url, "gone", &record))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "4 acks", || handle.stats().acked == 4);
    handle.shutdown();
    let stats = running.join().unwrap();
    assert_eq!(stats.reclaimed, 4, "{stats:?}");
    assert_eq!(pending(&mut conn, "gone", "g"), 0);
    let record = record.lock().unwrap();
    assert!(record.ok.values().all(|&n| n == 2), "{:?}", record.ok);
    assert!(record.acked_early.is_empty());
}

/// A server that stops answering but keeps its sockets open (SIGSTOP) must
/// not hold the reader in a read for ever: its read times out (`BLOCK` plus
/// 5 s), so a shutdown still returns.
#[test]
fn a_shutdown_while_redis_hangs_returns() {
    let redis = redis_or_skip!();
    let consumer = Consumer::builder(&redis.url, "hung", "g")
        .capacity(2)
        .shutdown_timeout(Duration::from_secs(1))
        .build(|_: Job| Ok::<(), String>(()))
        .unwrap();
    let handle = consumer.handle();
    let (done, returned) = std::sync::mpsc::channel();
    let running = thread::spawn(move || {
        let stats = consumer.run();
        let _ = done.send(());
        stats
    });
    // Joined (its XREADGROUP blocks on the empty stream), then hung.
    let mut conn = redis.conn();
    wait_for(30, "the consumer to join", || {
        redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg("hung")
            .arg("g")
            .query::<Vec<redis::Value>>(&mut conn)
            .is_ok_and(|c| c.len() == 1)
    });
    redis.pause();
    handle.shutdown();
    let asked = Instant::now();
    let outcome = returned.recv_timeout(Duration::from_secs(30));
    redis.resume();
    assert!(outcome.is_ok(), "run was still stuck 30 s after shutdown");
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "run took {took:?} to return"
    );
    let stats = running.join().unwrap().unwrap();
    assert_eq!((stats.read, stats.in_flight), (0, 0), "{stats:?}");
}

/// A producer whose server restarted fails the call that finds the
/// connection lost, then connects again on the next.
#[test]
fn a_producer_reconnects_after_a_server_restart() {
    let mut redis = redis_or_skip!();
    let producer = Producer::new(&redis.url, "again").unwrap();
    producer.push(&1u32).unwrap();
    redis.restart();
    // The first push after the restart may fail (the old socket is dead);
    // the second must not.
    let first = producer.push(&2u32);
    producer
        .push(&3u32)
        .expect("the push after a failed one reconnects");
    let mut conn = redis.conn();
    let len: u64 = redis::cmd("XLEN").arg("again").query(&mut conn).unwrap();
    // The server kept nothing on disk: only what was pushed after it came back.
    assert_eq!(len, if first.is_ok() { 2 } else { 1 });
}
