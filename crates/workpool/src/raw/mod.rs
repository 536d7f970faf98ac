//! The crate's lock-free storage, and the only module of the pool with
//! `unsafe` code (the other is `scope.rs`'s one lifetime extension):
//!
//! - [`ring`]: the bounded queue every task of a default pool passes
//!   through, whose tail word carries the pool's closed bit, so that one
//!   compare-and-swap admits a task or refuses it (`PROTOCOL.md`, pair
//!   RELEASE);
//! - [`small`]: a task's closure stored in the task itself when it is a few
//!   words, so a stream of small tasks allocates nothing.
//!
//! Both exist because a benchmark showed the need (issue 19's profiles:
//! crossbeam's `ArrayQueue` beside a separate admission word cost two extra
//! read-modify-writes per submit, and the `Box` of every task a `malloc` on
//! the submitter and a cross-thread `free` on the worker). Each `unsafe`
//! block says why it holds in a `// SAFETY:` line; loom models of the ring
//! (push, pop and close racing, a full ring, a slot reused across laps) are
//! in `ring.rs`, and the tests of both run under AddressSanitizer in
//! `.ci/run`.

#![allow(unsafe_code)]

pub(crate) mod ring;
pub(crate) mod small;

/// The interior-mutable cell of a ring slot: loom's under `--cfg loom` (it
/// checks that no read of a slot races its write), else std's behind the
/// same `with_mut` call.
#[cfg(loom)]
use loom::cell::UnsafeCell;

#[cfg(not(loom))]
#[derive(Debug)]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
