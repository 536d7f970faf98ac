//! Rules the compiler enforces, proved by doc tests that must not compile.
//!
//! A task must be `Send`, since it runs on another thread:
//!
//! ```compile_fail
//! let pool = workpool::Pool::new(1).unwrap();
//! let shared = std::rc::Rc::new(1);
//! pool.submit(move || drop(shared)).unwrap();
//! ```
//!
//! A task must be `'static`: it may outlive the caller's stack frame.
//!
//! ```compile_fail
//! let pool = workpool::Pool::new(1).unwrap();
//! let local = vec![1, 2, 3];
//! pool.submit(|| println!("{}", local.len())).unwrap();
//! ```
//!
//! The argument of a `PoolWithFunc` must be `Send`.
//!
//! ```compile_fail
//! let pool = workpool::PoolWithFunc::new(1, |n: std::rc::Rc<u8>| drop(n)).unwrap();
//! ```
//!
//! Refusals must be looked at: `submit`'s `Result` is `#[must_use]`.
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let pool = workpool::Pool::new(1).unwrap();
//! pool.submit(|| ());
//! ```
//!
//! A scope task cannot outlive what it borrows: `local` dies inside the
//! scope's closure, before the scope has waited for the task.
//!
//! ```compile_fail
//! let pool = workpool::Pool::new(1).unwrap();
//! pool.scope(|s| {
//!     let local = vec![1, 2, 3];
//!     s.spawn(|| println!("{}", local.len()));
//! });
//! ```
//!
//! A task's result crosses threads, so it must be `Send`: a task cannot
//! return an `Rc`.
//!
//! ```compile_fail
//! let pool = workpool::Pool::new(1).unwrap();
//! let handle = pool.spawn(|| std::rc::Rc::new(1)).unwrap();
//! ```
//!
//! A handle is `#[must_use]`: dropping it unseen detaches the task.
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! let pool = workpool::Pool::new(1).unwrap();
//! pool.spawn(|| 1).unwrap();
//! ```
//!
//! `pool.task(f)` takes an `FnOnce`, but a retry runs the closure again,
//! a fresh copy each attempt, so [`retry`](crate::TaskBuilder::retry) asks
//! for a `Clone` closure: one that holds what cannot be cloned (here a
//! receiver) cannot be retried.
//!
//! ```compile_fail
//! use std::time::Duration;
//! let pool = workpool::Pool::new(1).unwrap();
//! let (_tx, rx) = std::sync::mpsc::channel::<u8>();
//! let handle = pool
//!     .task(move |_token| rx.recv().map_err(|_| ()))
//!     .retry(workpool::Retry::exponential(Duration::from_millis(1)))
//!     .spawn();
//! ```
