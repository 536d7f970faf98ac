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
