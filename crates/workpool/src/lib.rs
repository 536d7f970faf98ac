//! A pool of reusable worker threads with a hard capacity, backpressure, idle
//! expiry and graceful shutdown: what Go's [ants] gives Go programs, in the
//! shape a Rust program expects.
//!
//! - [`Pool`] runs closures on at most `capacity` worker threads. Tasks that
//!   find every worker busy wait in a bounded queue ([`queue_capacity`],
//!   1,024 by default); when it is full too, [`Pool::submit`] blocks (or,
//!   [`nonblocking`], fails with [`PoolError::Overloaded`]). Nothing piles up
//!   without bound. `queue_capacity(0)` gives ants' pure hand-off.
//! - Workers are reused, LIFO, and end after [`expiry`] idle, except
//!   [`min_workers`] of them.
//! - A panicking task never takes a worker down: the [`panic_handler`] gets
//!   the payload and the worker lives on.
//! - [`Pool::tune`] changes the capacity at run time; [`Pool::release`],
//!   [`Pool::release_timeout`] and [`Pool::reboot`] close, drain and reopen.
//! - [`PoolWithFunc`] binds a pool to one function; [`MultiPool`] spreads tasks
//!   over several pools by [`LoadBalancing`].
//! - A blocking call that could only return once its own task ended (a task
//!   submitting to its own full pool, or calling `release_timeout` on it)
//!   fails with [`PoolError::WouldDeadlock`] instead of hanging.
//!
//! Beyond fire-and-forget:
//! - [`Pool::spawn`] returns a [`TaskHandle`]: `join` it, wait with a
//!   timeout, [`cancel`](TaskHandle::cancel) it, or `.await` it on any
//!   executor. [`Pool::spawn_batch`] gives one [`BatchHandle`] for many
//!   tasks, results in submission order.
//! - [`Pool::task`] gives the closure its [`CancelToken`], with a deadline,
//!   an `on_complete` callback, a parent token and [`Retry`]. A task
//!   cancelled before it starts never runs, and its queue slot is free at
//!   once; [`Pool::release`] cancels every token (layered shutdown).
//! - [`Pool::scope`] runs tasks that borrow from the caller's stack;
//!   [`Pool::parallel_execute`] returns results in order.
//! - [`Pool::stats`] gives counts by outcome, the gauges and latency
//!   percentiles (of every task at a trickle, sampled at high rates), and
//!   [`Stats::since`] those of a window; [`Pool::health`] judges the recent
//!   ones by a [`HealthPolicy`], and [`Pool::monitor`] does so periodically. With the
//!   `metrics` feature, `Pool::export_metrics` feeds the `metrics` facade;
//!   with the `serde` feature, [`Stats`], [`LatencySummary`], [`Health`] and
//!   [`HealthPolicy`] are `Serialize` and `Deserialize` (durations in
//!   seconds, in fields named `*_seconds`).
//! - [`Pool::try_submit`] gives the closure back when refused;
//!   [`Pool::submit_timeout`] and [`Pool::submit_async`] wait for room with a
//!   limit or without blocking a thread; [`Pool::wait_idle`] waits for every
//!   task without closing the pool.
//!
//! # Names from ants
//!
//! Some names come from ants, where other Rust pools say something else:
//!
//! | name | what it means here | rayon / threadpool |
//! |---|---|---|
//! | [`Pool::release`] | close: refuse new tasks, cancel every token, let queued and running tasks finish, end the workers as they finish; returns at once ([`Pool::release_timeout`] waits for the threads) | dropping a rayon `ThreadPool` or calling threadpool's `join` |
//! | [`Pool::reboot`] | reopen a released pool, same options, same handles | none: build a new pool |
//! | [`Pool::free`] | how many more workers could be started: capacity minus live workers, idle ones included (so `Some(0)` while workers sit idle at capacity; [`Pool::idle`] counts those) | threadpool starts all its threads at once: none |
//! | [`Pool::waiting`] | callers blocked in `submit` for room (not queued tasks: [`Pool::queued`]) | threadpool's `queued_count` is the queue, not callers |
//! | [`Pool::tune`] | change the capacity at run time | threadpool's `set_num_threads` |
//! | [`PoolWithFunc`] | a pool bound to one function; [`PoolWithFunc::invoke`] passes it an argument | none: a closure over `Pool::submit` |
//! | [`Pool::submit`] | fire and forget; blocks (or fails) when workers and queue are full | rayon `spawn`, threadpool `execute` (never block: they queue without bound) |
//!
//! # Shutting down
//!
//! Dropping the last handle of a pool releases it: queued and running tasks
//! finish on their workers, but only while the process lives. A `main`
//! that returns while tasks run ends them with the process. So end `main`
//! with [`Pool::wait_idle`] (the pool stays open) or
//! [`Pool::release_timeout`] (closed, every thread ended):
//!
//! ```
//! use std::time::Duration;
//! let pool = workpool::Pool::new(4)?;
//! for n in 0..8 {
//!     pool.submit(move || { let _ = n * n; })?;
//! }
//! pool.release_timeout(Duration::from_secs(30))?; // every task ran
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What each way out loses:
//!
//! | call | new tasks | queued tasks without a token (`submit`, `spawn`) | queued tasks with a token (`task`, `batch`) | running tasks | waits |
//! |---|---|---|---|---|---|
//! | [`Pool::wait_idle`] | accepted | run | run | finish | until idle; the pool stays open |
//! | [`Pool::drain_timeout`] | refused | run | run, token untouched | finish, token untouched | until every thread has exited |
//! | [`Pool::release_timeout`] | refused | run | never run: `Cancelled` | finish, token cancelled | until every thread has exited |
//! | [`Pool::release`] | refused | run | never run: `Cancelled` | finish, token cancelled | no |
//! | dropping the last handle | as `release` | | | | no |
//!
//! A task's own deadline holds in every case: a task still queued past it
//! never runs (`DeadlineExceeded`).
//!
//! # Panics in tasks
//!
//! A panic is caught on the worker, which lives on. A task with a handle
//! reports it through [`TaskError::is_panic`] and
//! [`TaskError::panic_message`]; the payload of a fire-and-forget task goes
//! to the [`panic_handler`], as the `Box<dyn Any + Send>` that `panic!`
//! made. Its message is a `&'static str` (a literal) or a `String` (a
//! formatted message):
//!
//! ```
//! use std::any::Any;
//! use std::sync::mpsc;
//! use std::time::Duration;
//! let (tx, rx) = mpsc::channel();
//! let tx = std::sync::Mutex::new(tx);
//! let pool = workpool::Pool::builder()
//!     .panic_handler(move |payload: Box<dyn Any + Send>| {
//!         let message = payload
//!             .downcast_ref::<&str>()
//!             .map(|s| s.to_string())
//!             .or_else(|| payload.downcast_ref::<String>().cloned())
//!             .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
//!         tx.lock().unwrap().send(message).unwrap();
//!     })
//!     .build()?;
//! # let hook = std::panic::take_hook();
//! # std::panic::set_hook(Box::new(|_| {})); // keep the doc test's output clean
//! pool.submit(|| panic!("disk {} is full", 3))?;
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "disk 3 is full");
//! # std::panic::set_hook(hook);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Deadlocks
//!
//! A call that blocks until a task of the pool ends, made from a task of
//! that same pool, could wait for ever: the worker it waits for may be the
//! one making the call. The pool detects the cases it can see:
//!
//! - [`Pool::submit`] (and `spawn`, `task`, batches) from a task of its own
//!   full pool fails with [`PoolError::WouldDeadlock`] rather than block;
//!   [`Pool::try_submit`] and a nonblocking pool fail as usual.
//! - [`Pool::wait_idle`] and [`Pool::release_timeout`] from a task of the
//!   pool fail with [`PoolError::WouldDeadlock`] (`release_timeout` still
//!   closes the pool).
//! - [`TaskHandle::join`] (and a batch's) from a task of the same pool runs
//!   the awaited task on the calling worker if it has not started, so tasks
//!   that spawn and join their own subtasks finish even at capacity 1.
//! - [`Pool::scope`] from a task of the pool runs the tasks its full pool
//!   refuses on the calling thread.
//!
//! What no pool can see is a task that waits for something only another
//! task will do (a channel, a lock, a result that a queued task will
//! produce) while every worker waits the same way. Give such tasks a pool
//! of their own, a capacity above the number that can wait at once, or
//! waits with a limit ([`TaskHandle::wait_timeout`]).
//!
//! # How it is built
//!
//! `src/pool/` holds the pool, one concern a file (its `mod.rs` lists them),
//! and `src/pool/PROTOCOL.md` describes how a task reaches a worker: the
//! worker states, what admits a task, and each pair of operations that must
//! see each other, which the loom models check.
//!
//! # Examples
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use workpool::{Pool, PoolError};
//!
//! let pool = Pool::builder()
//!     .capacity(4)
//!     .expiry(Duration::from_secs(5))
//!     .build()?;
//!
//! let (tx, rx) = mpsc::channel();
//! for i in 0..16u64 {
//!     let tx = tx.clone();
//!     pool.submit(move || tx.send(i * i).unwrap())?;
//! }
//! drop(tx);
//! assert_eq!(rx.iter().sum::<u64>(), (0..16).map(|i| i * i).sum());
//! assert!(pool.workers() <= 4);
//!
//! // A result, a batch in order, and a task that gives up at its deadline.
//! let answer = pool.spawn(|| 6 * 7)?;
//! let batch = pool.spawn_batch((1..=3u64).map(|n| move || n * 10))?;
//! let patient = pool
//!     .task(|token| token.wait_timeout(Duration::from_secs(60)))
//!     .deadline(Duration::from_millis(10))
//!     .spawn()?;
//! assert_eq!(answer.join()?, 42);
//! let tens: Vec<u64> = batch.join().into_iter().collect::<Result<_, _>>()?;
//! assert_eq!(tens, [10, 20, 30]);
//! // Cancelled while it waited, or, on a busy machine, before it started.
//! assert!(patient.join().unwrap_or_else(|e| e.is_deadline()));
//!
//! pool.release_timeout(Duration::from_secs(10))?;
//! assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [ants]: https://github.com/panjf2000/ants
//! [`nonblocking`]: PoolBuilder::nonblocking
//! [`queue_capacity`]: PoolBuilder::queue_capacity
//! [`expiry`]: PoolBuilder::expiry
//! [`min_workers`]: PoolBuilder::min_workers
//! [`panic_handler`]: PoolBuilder::panic_handler

// docs.rs (`--cfg docsrs`, see Cargo.toml) marks each feature-gated item
// with the feature it needs; `doc_cfg` does so for every `#[cfg]`d item.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod autoscale;
mod builder;
mod cancel;
#[cfg(doctest)]
mod compile_fail;
mod error;
mod func;
mod handle;
#[cfg(all(feature = "internals", not(loom)))]
#[doc(hidden)]
pub mod internals;
mod job;
mod map;
mod multi;
mod pool;
// The one module with `unsafe` code beside `scope.rs`: the ring and a
// task's in-place storage (see its docs).
mod raw;
mod scope;
mod spawn;
mod stats;
mod sync;
mod timer;

pub use autoscale::Autoscale;
pub use builder::PoolBuilder;
pub use cancel::{CancelToken, Cancelled};
pub use error::{BuildError, PanicPayload, PoolError, TaskError, TrySubmitError};
pub use func::PoolWithFunc;
pub use handle::{BatchHandle, TaskHandle};
pub use map::{Map, MapStream};
pub use multi::{LoadBalancing, MultiPool};
pub use pool::{Monitor, Pool, SpawnAsync, SubmitAsync};
pub use scope::Scope;
pub use spawn::{BatchBuilder, Retry, TaskBuilder};
pub use stats::{Health, HealthPolicy, LatencySummary, Stats};

// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

// So does this crate's own README, its page on crates.io.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
