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
//! - [`Pool::stats`] gives counts by outcome, the gauges and sampled
//!   latency percentiles; [`Pool::health`] judges them by a
//!   [`HealthPolicy`], and [`Pool::monitor`] does so periodically. With the
//!   `metrics` feature, `Pool::export_metrics` feeds the `metrics` facade.
//! - [`Pool::try_submit`] gives the closure back when refused;
//!   [`Pool::submit_timeout`] and [`Pool::submit_async`] wait for room with a
//!   limit or without blocking a thread; [`Pool::wait_idle`] waits for every
//!   task without closing the pool.
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

mod builder;
mod cancel;
#[cfg(doctest)]
mod compile_fail;
mod error;
mod func;
mod handle;
mod idle;
mod job;
mod multi;
mod pool;
mod scope;
mod spawn;
mod stats;
mod sync;
mod task;
mod worker;

pub use builder::PoolBuilder;
pub use cancel::{CancelToken, Cancelled};
pub use error::{BuildError, PanicPayload, PoolError, TaskError, TrySubmitError};
pub use func::PoolWithFunc;
pub use handle::{BatchHandle, TaskHandle};
pub use multi::{LoadBalancing, MultiPool};
pub use pool::{Monitor, Pool, SpawnAsync, SubmitAsync};
pub use scope::Scope;
pub use spawn::{BatchBuilder, Retry, TaskBuilder};
pub use stats::{Health, HealthPolicy, LatencySummary, Stats};

// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
