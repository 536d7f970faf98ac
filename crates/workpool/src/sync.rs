//! The one place the pool takes its synchronisation primitives from.
//!
//! Under `--cfg loom` every primitive that takes part in the pool's protocol is
//! loom's model of it, so the loom tests explore the interleavings of the real
//! code (tokio does the same in `src/loom`). Gauges that are only read for
//! reporting stay on std atomics: they carry no ordering the protocol relies on,
//! and modelling them would only blow up loom's search.

// `Arc` is std's even under loom: the pool's methods take `self: &Arc<Self>`,
// which loom's `Arc` cannot be, and std's reference count needs no model.
pub(crate) use std::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;
pub(crate) mod atomic {
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};

    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
}

use std::time::Duration;

/// How many rounds of [`crossbeam_utils::Backoff`] a thread spends before it
/// blocks. Under loom spinning only multiplies the interleavings to explore and
/// proves nothing, so it is switched off there.
pub(crate) const SPIN: bool = cfg!(not(loom));

/// Locks `mutex`, ignoring poisoning.
///
/// No code of the pool panics while it holds one of its locks (user code never
/// runs under a lock), so a poisoned lock still guards consistent state.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` for at most `timeout`, ignoring poisoning (see [`lock`]).
/// Loom ignores the duration: it explores the wake-ups, not the clock.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    match cv.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(e) => e.into_inner().0,
    }
}
