//! With the `metrics` feature: a consumer's figures and its pool's reach the
//! `metrics` facade, every series labelled by its stream.
#![cfg(feature = "metrics")]

mod common;

use common::{demo_handler, redis_or_skip, wait_for, Demo};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::thread;
use workpool_redis::{Consumer, Producer};

#[test]
fn the_consumer_and_its_pool_export_their_figures_labelled_by_stream() {
    let redis = redis_or_skip!();
    let jobs: Vec<Demo> = (0..5)
        .map(|id| Demo {
            id,
            sleep_ms: 1,
            fail: false,
        })
        .collect();
    Producer::new(&redis.url, "orders")
        .unwrap()
        .push_batch(&jobs)
        .unwrap();
    let consumer = Consumer::builder(&redis.url, "orders", "g")
        .capacity(2)
        .build(demo_handler(&redis.url, "orders"))
        .unwrap();
    let handle = consumer.handle();
    let running = thread::spawn(move || consumer.run().unwrap());
    wait_for(30, "5 acks", || handle.stats().acked == 5);

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || handle.export_metrics());
    handle.shutdown();
    running.join().unwrap();

    let mut acked = None;
    let mut completed = None;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
        };
        assert_eq!(label("stream").as_deref(), Some("orders"), "{key:?}");
        let outcome = label("outcome");
        match (key.name(), outcome.as_deref(), value) {
            ("workpool_redis_jobs_total", Some("acked"), DebugValue::Counter(n)) => acked = Some(n),
            ("workpool_tasks_total", Some("completed"), DebugValue::Counter(n)) => {
                assert!(label("pool").is_some(), "{key:?}");
                completed = Some(n);
            }
            _ => {}
        }
    }
    assert_eq!(acked, Some(5));
    assert_eq!(completed, Some(5));
}
