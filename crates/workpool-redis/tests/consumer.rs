//! One consumer in this process against a redis-server of the test's own.

mod common;

use common::{consumer_names, counts, demo_handler, pending, redis_or_skip, wait_for, Demo};
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

/// An entry's field-value pairs, as bytes.
type Fields<'a> = Vec<(&'a [u8], &'a [u8])>;

/// `XADD stream id field value ..` by a raw client, as any client may.
fn raw_xadd(
    conn: &mut redis::Connection,
    stream: &str,
    id: &str,
    fields: &[(&[u8], &[u8])],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg(id);
    for (field, value) in fields {
        cmd.arg(*field).arg(*value);
    }
    cmd.query(conn).unwrap()
}

/// Runs a consumer of `stream` that records each job until `until` holds
/// of its figures, then shuts it down and returns them.
fn run_until(
    url: &str,
    stream: &str,
    handler: impl Fn(workpool_redis::Job) -> Result<(), String> + Send + Sync + 'static,
    until: impl Fn(&ConsumerStats) -> bool,
) -> ConsumerStats {
    let consumer = Consumer::builder(url, stream, "g")
        .capacity(2)
        .build(handler)
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "the consumer's figures", || until(&handle.stats()));
    handle.shutdown();
    running.join().unwrap()
}

/// A job another client wrote with `enqueued_at_ms: 1` (the epoch, 1970):
/// its pickup is timed from the entry's ID, the server's clock at the
/// XADD, so it reads as the seconds it waited, not as decades; and the
/// handler still sees the writer's time as the job's own data.
#[test]
fn pickup_is_timed_by_the_server_clock_not_the_writers_enqueued_at_ms() {
    let redis = redis_or_skip!();
    let mut conn = redis.conn();
    let job = br#"{"name":"old","attempt":0,"enqueued_at_ms":1,"payload":{"id":1}}"#;
    raw_xadd(&mut conn, "epoch", "*", &[(b"job", job)]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let stats = run_until(
        &redis.url,
        "epoch",
        move |job| {
            record.lock().unwrap().push(job.enqueued_at());
            Ok(())
        },
        |s| s.acked == 1,
    );
    let pickup = stats.pickup_latency;
    assert_eq!(pickup.count, 1);
    assert!(
        pickup.max < Duration::from_secs(60),
        "pickup {:?}",
        pickup.max
    );
    let enqueued = std::time::UNIX_EPOCH + Duration::from_millis(1);
    assert_eq!(*seen.lock().unwrap(), [enqueued]);
}

/// An ID a client named (`XADD s 99999999999999-0 ..`, year 5138) is no
/// server time: the job runs, its pickup is not recorded.
#[test]
fn an_entry_whose_id_is_after_the_server_clock_runs_without_a_pickup() {
    let redis = redis_or_skip!();
    let mut conn = redis.conn();
    let job = br#"{"name":"future","attempt":0,"enqueued_at_ms":1,"payload":null}"#;
    raw_xadd(&mut conn, "future", "99999999999999-0", &[(b"job", job)]);
    let stats = run_until(&redis.url, "future", |_job| Ok(()), |s| s.acked == 1);
    assert_eq!((stats.acked, stats.pickup_latency.count), (1, 0));
}

/// Whatever a client XADDs that is no job is dead-lettered at its first
/// delivery (no retry: it would fail alike) with why, byte for byte, and
/// never reaches the handler; a job beside them runs.
#[test]
fn hostile_entries_are_dead_lettered_with_their_reason_and_never_run() {
    let redis = redis_or_skip!();
    let mut conn = redis.conn();
    let huge = vec![b'x'; 5 << 20];
    let hostile: Vec<(&str, Fields)> = vec![
        ("no job field", vec![(b"other", b"{}")]),
        ("not JSON", vec![(b"job", b"hello")]),
        (
            "a field missing",
            vec![(b"job", br#"{"name":"x","attempt":0,"payload":1}"#)],
        ),
        (
            "a wrong type",
            vec![(
                b"job",
                br#"{"name":"x","attempt":"0","enqueued_at_ms":1,"payload":1}"#,
            )],
        ),
        (
            "invalid UTF-8",
            vec![(
                b"job",
                b"{\"name\":\"\xff\",\"attempt\":0,\"enqueued_at_ms\":1,\"payload\":1}",
            )],
        ),
        ("5 MB, not JSON", vec![(b"job", &huge)]),
    ];
    let mut ids = std::collections::HashMap::new();
    for (what, fields) in &hostile {
        ids.insert(
            raw_xadd(&mut conn, "hostile", "*", fields),
            (*what, fields.clone()),
        );
    }
    let good = br#"{"name":"fine","attempt":0,"enqueued_at_ms":1,"payload":7}"#;
    raw_xadd(&mut conn, "hostile", "*", &[(b"job", good)]);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&ran);
    let stats = run_until(
        &redis.url,
        "hostile",
        move |job| {
            record.lock().unwrap().push(job.name().to_owned());
            Ok(())
        },
        |s| s.acked == 1 && s.dead_lettered == 6,
    );
    assert_eq!(*ran.lock().unwrap(), ["fine"]);
    assert_eq!(
        (
            stats.acked,
            stats.dead_lettered,
            stats.in_flight,
            stats.retried
        ),
        (1, 6, 0, 0)
    );
    assert_eq!(pending(&mut conn, "hostile", "g"), 0);
    // (id, [(field, value)]) of each dead letter.
    type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
    let dead: Entries = redis::cmd("XRANGE")
        .arg("hostile:dead")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(dead.len(), 6);
    for (_, fields) in dead {
        let field = |name: &str| fields.iter().find(|(f, _)| f == name).unwrap().1.clone();
        let id = String::from_utf8(field("id")).unwrap();
        let (what, sent) = &ids[&id];
        let error = String::from_utf8(field("error")).unwrap();
        assert!(error.starts_with("not a job: "), "{what}: {error}");
        assert_eq!(field("deliveries"), b"1", "{what}");
        let job_sent = sent
            .iter()
            .find(|(f, _)| *f == b"job")
            .map_or(&b""[..], |(_, v)| v);
        assert!(
            field("job") == job_sent,
            "{what}: the copy differs from what was sent"
        );
    }
}

/// A consumer that died holding entries (one that read them and never
/// acked) has them reclaimed, then leaves the group; the live consumers,
/// idle and holding nothing once the jobs are done, stay through later
/// sweeps, which remove a consumer created idle (a canary) meanwhile.
#[test]
fn a_dead_consumer_leaves_the_group_once_reclaimed_and_live_idle_ones_stay() {
    let redis = redis_or_skip!();
    let mut conn = redis.conn();
    push(&redis.url, "dead", demo(3, 0));
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("dead")
        .arg("g")
        .arg("0")
        .query::<()>(&mut conn)
        .unwrap();
    redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("died")
        .arg("STREAMS")
        .arg("dead")
        .arg(">")
        .query::<redis::Value>(&mut conn)
        .unwrap();
    assert_eq!(consumer_names(&mut conn, "dead"), ["died"]);
    let visibility = Duration::from_millis(500);
    let (handles, running): (Vec<_>, Vec<_>) = ["a", "b"]
        .into_iter()
        .map(|name| {
            let consumer = Consumer::builder(&redis.url, "dead", "g")
                .consumer_name(name)
                .visibility_timeout(visibility)
                .build(demo_handler(&redis.url, "dead"))
                .unwrap();
            (
                consumer.handle(),
                thread::spawn(move || consumer.run().unwrap()),
            )
        })
        .unzip();
    wait_for(30, "the 3 jobs run and `died` removed", || {
        counts(&mut conn, "dead:effects").len() == 3
            && !consumer_names(&mut conn, "dead").contains(&"died".to_owned())
    });
    assert_eq!(consumer_names(&mut conn, "dead"), ["a", "b"]);
    redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg("dead")
        .arg("g")
        .arg("canary")
        .query::<i64>(&mut conn)
        .unwrap();
    wait_for(30, "a sweep after the canary's visibility timeout", || {
        !consumer_names(&mut conn, "dead").contains(&"canary".to_owned())
    });
    assert_eq!(
        consumer_names(&mut conn, "dead"),
        ["a", "b"],
        "a live consumer was removed"
    );
    for handle in &handles {
        handle.shutdown();
    }
    let reclaimed: u64 = running
        .into_iter()
        .map(|r| r.join().unwrap().reclaimed)
        .sum();
    assert_eq!(reclaimed, 3);
    assert_eq!(pending(&mut conn, "dead", "g"), 0);
}
