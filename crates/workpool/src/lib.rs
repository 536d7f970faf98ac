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
mod sync;
mod task;
mod worker;

pub use builder::PoolBuilder;
pub use cancel::{CancelToken, Cancelled};
pub use error::{BuildError, PoolError, TaskError, TrySubmitError};
pub use func::PoolWithFunc;
pub use handle::{BatchHandle, TaskHandle};
pub use multi::{LoadBalancing, MultiPool};
pub use pool::{Pool, SpawnAsync, SubmitAsync};
pub use scope::Scope;
pub use spawn::{Retry, TaskBuilder};

// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
