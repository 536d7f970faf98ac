//! Pools on many hosts draining one Redis stream: what asynq, Celery or
//! apalis give a program that outgrows one machine, built on Redis Streams
//! and consumer groups, with a [`workpool::Pool`] in each process.
//!
//! - [`Producer`] pushes jobs (`XADD`), each serialized as JSON with its
//!   name, attempt count and enqueue time; [`Producer::push_batch`] sends
//!   many in one round trip, [`ProducerBuilder::maxlen`] caps the stream.
//! - [`Consumer`] runs the jobs of a stream and consumer group on a pool of
//!   its own, calling a handler `Fn(Job) -> Result<(), E>`:
//!   - **backpressure**: it reads with `XREADGROUP ... COUNT k` where k is
//!     the pool's free room (capacity plus queue capacity minus the entries
//!     it holds), so a process never holds more jobs than it can run, and
//!     what it cannot run stays in the stream for the other consumers;
//!   - **ack after success**: an entry is acked (`XACK`) only after its
//!     handler returned `Ok`;
//!   - **retries**: a failed job runs again after a backoff (doubling),
//!     until it has been delivered [`max_deliveries`] times; then it moves
//!     to the dead-letter stream `{stream}:dead` with its error;
//!   - **nothing lost when a process dies**: entries pending longer than
//!     the [`visibility_timeout`] (their consumer died mid-job) are
//!     reclaimed by the others with `XAUTOCLAIM`, and a dead consumer left
//!     holding nothing is removed from the group (`XGROUP DELCONSUMER`); a
//!     consumer restarted under the same [name](ConsumerBuilder::consumer_name)
//!     first re-reads its own pending entries;
//!   - **hostile entries**: any client can `XADD` anything; an entry that
//!     is not a job (no `job` field, not JSON, not UTF-8, wrong types) is
//!     moved to the dead-letter stream with the reason, never run;
//!   - **graceful shutdown**: [`ConsumerHandle::shutdown`] stops reading,
//!     lets the running jobs finish and ack, and [`Consumer::run`] returns
//!     its [`ConsumerStats`] (read, acked, retried, dead-lettered,
//!     reclaimed, in flight, pickup latency by the Redis server's clock,
//!     and the pool's own stats);
//!     the wait is bounded by the [`shutdown_timeout`] (default: the
//!     visibility timeout), past which (Redis gone, a handler stuck) the
//!     jobs not acked are left pending, for another consumer to reclaim;
//!   - **Redis restarts**: a lost connection is reopened and the command
//!     retried; an ack waits (its entry still held) until Redis has it.
//!     A server restarted *without* its data (no AOF or RDB) has lost the
//!     stream and its jobs: persistence is the server's to configure.
//!
//! # Delivery is at least once
//!
//! A job can run more than once: when its consumer dies after the handler's
//! effect but before the ack, when the ack is lost with the connection, or
//! when a job outlives its visibility timeout on a consumer that is stuck
//! (a live consumer renews its leases). Make the effect idempotent, keyed
//! by the [job's ID](Job::id), which is the same on every delivery. Where
//! the effect is a Redis write, mark the job done and apply the effect in
//! one atomic step: `SET {stream}:done:{id} 1 NX` and the write, in one
//! script, so that a second run finds the mark and changes nothing:
//!
//! ```no_run
//! use workpool_redis::{Consumer, Job};
//!
//! // Marks the job done and applies its effect, atomically, only once.
//! const ONCE: &str = r#"
//!     if redis.call('SET', KEYS[1], 1, 'NX', 'EX', 604800) then
//!         redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
//!         return 1
//!     end
//!     return 0"#;
//!
//! let client = redis::Client::open("redis://127.0.0.1:6379")?;
//! let consumer = Consumer::builder("redis://127.0.0.1:6379", "orders", "billing")
//!     .capacity(16)
//!     .build(move |job: Job| -> Result<(), redis::RedisError> {
//!         let order: serde_json::Value = job.payload().clone();
//!         let mut conn = client.get_connection()?;
//!         let _first_time: i64 = redis::cmd("EVAL")
//!             .arg(ONCE)
//!             .arg(2)
//!             .arg(format!("orders:done:{}", job.id()))
//!             .arg("totals")
//!             .arg(order["customer"].to_string())
//!             .arg(order["cents"].as_i64().unwrap_or(0))
//!             .query(&mut conn)?;
//!         Ok(())
//!     })?;
//! let handle = consumer.handle();
//! // From a signal handler or another thread: handle.shutdown();
//! # drop(handle);
//! let stats = consumer.run()?;
//! println!("acked {}, dead-lettered {}", stats.acked, stats.dead_lettered);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where the effect is elsewhere (a database, an API), store the job ID
//! with the effect in the same transaction, or pass it as the idempotency
//! key the API accepts.
//!
//! Trimming the stream ([`ProducerBuilder::maxlen`]) deletes the oldest
//! entries whether read or not: a job trimmed before it ran is lost.
//!
//! [`max_deliveries`]: ConsumerBuilder::max_deliveries
//! [`visibility_timeout`]: ConsumerBuilder::visibility_timeout
//! [`shutdown_timeout`]: ConsumerBuilder::shutdown_timeout

// docs.rs (`--cfg docsrs`, see Cargo.toml) marks each feature-gated item
// with the feature it needs; `doc_cfg` does so for every `#[cfg]`d item.
#![cfg_attr(docsrs, feature(doc_cfg))]

// Unit tests share `tests/common` (its helpers name this crate).
#[cfg(test)]
extern crate self as workpool_redis;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod common;

mod consumer;
mod error;
mod job;
mod producer;
mod stats;
mod wire;

pub use consumer::{Consumer, ConsumerBuilder, ConsumerHandle};
pub use error::Error;
#[doc(hidden)]
pub use job::decode_entries;
pub use job::{Job, JobId};
pub use producer::{Producer, ProducerBuilder};
pub use stats::ConsumerStats;

// The README, this crate's page on crates.io: its example compiles as a
// doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
