//! Consumer *processes* sharing a stream: this test binary re-runs itself,
//! with `WORKPOOL_REDIS_CHILD` set, as the consumer processes
//! (`child_consumer` below); the parent pushes, watches and kills.

mod common;

use common::{consumer_names, counts, demo_handler, pending, push, redis_or_skip, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use workpool_redis::Consumer;

const CHILD: &str = "WORKPOOL_REDIS_CHILD";

/// In a child process: runs a consumer (`url stream name`) until the
/// stop file exists, then shuts it down and exits. In the ordinary test
/// run: nothing.
#[test]
fn child_consumer() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let (url, stream, name, stop) = (parts[0], parts[1], parts[2], PathBuf::from(parts[3]));
    let consumer = Consumer::builder(url, stream, "g")
        .consumer_name(name)
        .capacity(8)
        .visibility_timeout(Duration::from_secs(1))
        .build(demo_handler(url, stream))
        .unwrap();
    let handle = consumer.handle();
    std::thread::spawn(move || {
        while !stop.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        handle.shutdown();
    });
    let stats = consumer.run().unwrap();
    println!("{name}: {stats:?}");
}

fn spawn_child(url: &str, stream: &str, name: &str, stop: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_consumer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, format!("{url} {stream} {name} {}", stop.display()))
        .stdout(Stdio::null())
        .spawn()
        .expect("the test binary re-runs")
}

/// The consumer processes, killed if the test fails before it stops them
/// (they would outlive it, holding its output open).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn stop_file(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("workpool-redis-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn three_consumer_processes_share_a_stream() {
    let redis = redis_or_skip!();
    push(&redis.url, "shared", 300, 10);
    let stop = stop_file("share");
    let mut children = Children(
        (0..3)
            .map(|i| spawn_child(&redis.url, "shared", &format!("c{i}"), &stop))
            .collect(),
    );
    let mut conn = redis.conn();
    wait_for(60, "300 effects", || {
        counts(&mut conn, "shared:effects").len() == 300
    });
    std::fs::write(&stop, b"").unwrap();
    for child in &mut children.0 {
        assert!(child.wait().unwrap().success());
    }
    let _ = std::fs::remove_file(&stop);
    let effects = counts(&mut conn, "shared:effects");
    assert!(effects.values().all(|&n| n == 1), "{effects:?}");
    // Every job ran; a run twice is allowed (at least once: a consumer
    // starved past its visibility timeout on a loaded machine), its effect
    // twice is not (checked above).
    assert_eq!(counts(&mut conn, "shared:runs").len(), 300);
    assert_eq!(pending(&mut conn, "shared", "g"), 0);
    // Each process took a share.
    assert_eq!(consumer_names(&mut conn, "shared"), ["c0", "c1", "c2"]);
}

#[test]
fn kill_9_of_one_consumer_loses_no_job() {
    let redis = redis_or_skip!();
    push(&redis.url, "crash", 300, 30);
    let stop = stop_file("crash");
    let mut children = Children(
        (0..3)
            .map(|i| spawn_child(&redis.url, "crash", &format!("c{i}"), &stop))
            .collect(),
    );
    let mut conn = redis.conn();
    // Mid-run, with jobs pending under c0: kill -9.
    wait_for(60, "c0 holding jobs after 60 done", || {
        counts(&mut conn, "crash:effects").len() >= 60 && pending_of(&mut conn, "crash", "c0") > 0
    });
    children.0[0].kill().unwrap(); // SIGKILL
    children.0[0].wait().unwrap();
    let orphaned = pending_of(&mut conn, "crash", "c0");
    assert!(orphaned > 0);
    wait_for(60, "every job's effect", || {
        counts(&mut conn, "crash:effects").len() == 300
    });
    // Its entries reclaimed, the dead c0 leaves the group; the live stay.
    wait_for(30, "c0 removed from the group", || {
        consumer_names(&mut conn, "crash") == ["c1", "c2"]
    });
    std::fs::write(&stop, b"").unwrap();
    for child in &mut children.0[1..] {
        assert!(child.wait().unwrap().success());
    }
    let _ = std::fs::remove_file(&stop);
    let effects = counts(&mut conn, "crash:effects");
    assert_eq!(effects.len(), 300, "jobs lost");
    assert!(effects.values().all(|&n| n == 1), "{effects:?}");
    // The orphans were reclaimed and run again by the others.
    assert_eq!(pending_of(&mut conn, "crash", "c0"), 0);
    assert_eq!(pending(&mut conn, "crash", "g"), 0);
    let runs = counts(&mut conn, "crash:runs");
    assert_eq!(runs.len(), 300);
}

/// Entries pending under one consumer.
fn pending_of(conn: &mut redis::Connection, stream: &str, consumer: &str) -> u64 {
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(1000)
        .arg(consumer)
        .query(conn)
        .unwrap();
    rows.len() as u64
}
