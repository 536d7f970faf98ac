//! A pool of reusable worker threads with a hard capacity, backpressure, idle
//! expiry and graceful shutdown: what Go's [ants] gives Go programs, in the
//! shape a Rust program expects.
//!
//! - [`Pool`] runs closures on at most `capacity` worker threads. When every
//!   worker is busy, [`Pool::submit`] blocks (or, [`nonblocking`], fails with
//!   [`PoolError::Overloaded`]); nothing piles up in a hidden queue.
//! - Workers are reused, LIFO, and end after [`expiry`] idle, except
//!   [`min_workers`] of them.
//! - A panicking task never takes a worker down: the [`panic_handler`] gets
//!   the payload and the worker lives on.
//! - [`Pool::tune`] changes the capacity at run time; [`Pool::release`],
//!   [`Pool::release_timeout`] and [`Pool::reboot`] close, drain and reopen.
//! - [`PoolWithFunc`] binds a pool to one function; [`MultiPool`] spreads tasks
//!   over several pools by [`LoadBalancing`].
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
//! [`expiry`]: PoolBuilder::expiry
//! [`min_workers`]: PoolBuilder::min_workers
//! [`panic_handler`]: PoolBuilder::panic_handler

mod builder;
#[cfg(doctest)]
mod compile_fail;
mod error;
mod func;
mod idle;
mod multi;
mod pool;
mod sync;
mod task;
mod worker;

pub use builder::PoolBuilder;
pub use error::{BuildError, PoolError};
pub use func::PoolWithFunc;
pub use multi::{LoadBalancing, MultiPool};
pub use pool::Pool;

// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
