//! The pool's lock-free pieces, for `benches/mechanisms.rs` to measure one
//! at a time. Not an API: hidden from the docs, behind the `internals`
//! feature, and free to change in any release.
//!
//! Thin wrappers, each method `#[inline]` and forwarding to the crate's
//! own type, so a bench measures exactly what the pool runs.

use crate::raw::ring;
use crate::raw::small::SmallFn;

/// The bounded ring every task of a default pool passes through; its tail
/// word carries the closed bit.
#[derive(Debug)]
pub struct Ring<T>(ring::Ring<T>);

impl<T> Ring<T> {
    /// A ring of `cap` slots.
    ///
    /// # Panics
    /// If `cap` is 0.
    pub fn new(cap: usize) -> Ring<T> {
        Ring(ring::Ring::new(cap))
    }

    /// Pushes `value`, or gives it back when the ring is full or closed.
    #[inline]
    pub fn push(&self, value: T) -> Result<(), T> {
        self.0.push(value).map_err(ring::Refused::into_inner)
    }

    /// Takes the value at the head, if any.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        self.0.pop()
    }

    /// Sets the closed bit: every later push is refused.
    pub fn close(&self) -> bool {
        self.0.close()
    }

    /// Values in the ring.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the ring holds no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A task's closure, stored in place when it is a few words, else boxed.
#[derive(Debug)]
pub struct SmallTask(SmallFn);

impl SmallTask {
    /// Stores `f`.
    #[inline]
    pub fn new<F: FnOnce() + Send + 'static>(f: F) -> SmallTask {
        SmallTask(SmallFn::new(f))
    }

    /// Calls the closure.
    #[inline]
    pub fn run(self) {
        self.0.call()
    }
}
