//! `Consumer`: a stream's jobs run on a `workpool::Pool`.
//!
//! One reader loop (the thread that calls [`Consumer::run`]) reads entries
//! with `XREADGROUP ... COUNT k` where k is the room left: the pool's
//! capacity plus its queue capacity, minus the entries this consumer holds
//! (`state.rs`: `Held::ids`). Each entry becomes a pool task whose
//! `on_complete` hands the outcome to the settler thread (`settle.rs`),
//! which acks, dead-letters or schedules a retry, and only then releases
//! the entry. Beside reading, the loop:
//! - at start, re-reads the entries still pending under its own name
//!   (`XREADGROUP ... STREAMS s 0`), left by an earlier run of the same
//!   consumer;
//! - every half visibility timeout, reclaims with `XAUTOCLAIM` the entries
//!   idle longer than the visibility timeout (their consumer died), as
//!   room allows;
//! - every third of the visibility timeout, renews the lease of the entries
//!   it holds (`XCLAIM ... JUSTID`), so a job that runs longer than the
//!   timeout is not reclaimed from a live consumer;
//! - runs failed entries again once their backoff has passed
//!   (`XCLAIM`, which counts a delivery).
//!
//! Redis errors (a lost connection, a restarted server) are logged and
//! retried after 200 ms on a fresh connection; nothing held is released
//! until Redis has acked it. Only a shutdown bounds the retries: past its
//! `shutdown_timeout`, `run` returns and what is not acked stays pending in
//! Redis, for a reclaim (`tests/restart.rs` tests both).
//!
//! The files, from the user's side down:
//! - `handle.rs`: [`Consumer`] and [`ConsumerHandle`], the types users
//!   hold; every public method is declared there and delegates;
//! - `builder.rs`: [`ConsumerBuilder`], the options and their defaults;
//! - `reader.rs`: the reader loop and the shutdown wait (`Consumer::run`);
//! - `settle.rs`: the settler thread (acks, retries, dead letters);
//! - `state.rs`: what the reader, the settler and the workers share.
//!
//! Every Redis command they send is built in the crate's `wire.rs`.

mod builder;
mod handle;
mod reader;
mod settle;
mod state;

pub use builder::ConsumerBuilder;
pub use handle::{Consumer, ConsumerHandle};

use crate::job::Job;

/// The user's handler, its error turned into text (the dead letter's
/// `error` field): wrapped by `builder.rs`, held by the `Consumer`, called
/// in each pool task that `reader.rs` spawns.
type Handler = dyn Fn(Job) -> Result<(), String> + Send + Sync;
