//! The one place the pool takes its synchronisation primitives from.
//!
//! Under `--cfg loom` every primitive that takes part in the pool's protocol
//! (see `src/pool/PROTOCOL.md`) is loom's model of it, so the loom models
//! explore the interleavings of the real code (tokio does the same in
//! `src/loom`): the locks, condvars and threads, every atomic whose value or
//! ordering a decision depends on (the gauges `workers`, `idle`, `waiting`,
//! `capacity` and `closed` among them, since submitters and workers decide by
//! them without the lock), the fences of the protocol's pairs, and the two
//! queues, for which loom gets a locked `VecDeque` stand-in. Only counters
//! read for reporting (`panicked`) and the numbering of thread names stay on
//! std atomics: nothing is decided by them.

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
    pub(crate) use std::sync::atomic::{
        fence, AtomicBool, AtomicIsize, AtomicU8, AtomicUsize, Ordering,
    };

    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicIsize, AtomicU8, AtomicUsize, Ordering,
    };
}

#[cfg(loom)]
pub(crate) use self::mocked::{Ring, SegQueue};
#[cfg(not(loom))]
pub(crate) use crate::raw::ring::Ring;
#[cfg(not(loom))]
pub(crate) use crossbeam_queue::SegQueue;

use std::time::Duration;

/// Whether threads spin (crossbeam's `Backoff`, then yielding) before they
/// block. Under loom a spinning path polls exactly once instead, so that it is
/// explored without multiplying the interleavings.
pub(crate) const SPIN: bool = cfg!(not(loom));

/// Gives the core away for a moment: loom's scheduler point under loom.
pub(crate) fn yield_now() {
    thread::yield_now();
}

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

/// Loom's stand-ins for the queues of the pool's models: a `VecDeque`
/// behind loom's lock, with the ring's closed bit under the same lock. The
/// protocol relies on a push being visible to a later pop or `is_empty`, on
/// a push and a close being ordered one way or the other, and on the fences
/// around them, not on how the ring orders its own internals; a lock gives
/// the first two, and the protocol's fences (which loom models) the rest.
/// The ring itself has models of its own (`raw/ring.rs`).
#[cfg(loom)]
mod mocked {
    use crate::raw::ring::Refused;
    use loom::sync::Mutex;
    use std::collections::VecDeque;

    #[derive(Debug)]
    pub(crate) struct Ring<T> {
        items: Mutex<(VecDeque<T>, bool)>,
        cap: usize,
    }

    impl<T> Ring<T> {
        pub(crate) fn new(cap: usize) -> Self {
            Ring {
                items: Mutex::new((VecDeque::new(), false)),
                cap,
            }
        }

        pub(crate) fn push(&self, value: T) -> Result<(), Refused<T>> {
            let mut items = self.items.lock().unwrap();
            if items.1 {
                return Err(Refused::Closed(value));
            }
            if items.0.len() >= self.cap {
                return Err(Refused::Full(value));
            }
            items.0.push_back(value);
            Ok(())
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().0.pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().0.len()
        }

        pub(crate) fn capacity(&self) -> usize {
            self.cap
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.len() == 0
        }

        pub(crate) fn close(&self) -> bool {
            !std::mem::replace(&mut self.items.lock().unwrap().1, true)
        }

        pub(crate) fn reopen(&self) -> bool {
            std::mem::replace(&mut self.items.lock().unwrap().1, false)
        }

        pub(crate) fn is_closed(&self) -> bool {
            self.items.lock().unwrap().1
        }
    }

    /// An unbounded queue, as crossbeam's `SegQueue`.
    #[derive(Debug)]
    pub(crate) struct SegQueue<T> {
        items: Mutex<VecDeque<T>>,
    }

    impl<T> SegQueue<T> {
        pub(crate) fn new() -> Self {
            SegQueue {
                items: Mutex::new(VecDeque::new()),
            }
        }

        pub(crate) fn push(&self, value: T) {
            self.items.lock().unwrap().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }
}

/// Test-only fault injection: threads that the OS "refuses" to start.
#[cfg(all(test, not(loom)))]
pub(crate) mod faults {
    use std::sync::Mutex;

    /// Thread-name prefixes, each with how many more spawns to refuse.
    static REFUSE: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

    /// Refuses the next `n` spawns of threads whose name starts with
    /// `prefix` (tests give each pool a name of its own, so tests running in
    /// parallel do not see each other's faults).
    pub(crate) fn refuse_spawns(prefix: &str, n: usize) {
        REFUSE.lock().unwrap().push((prefix.to_owned(), n));
    }

    /// Stops refusing spawns for `prefix` (after `refuse_spawns(prefix,
    /// usize::MAX)`, say): the OS "can make threads again".
    pub(crate) fn allow_spawns(prefix: &str) {
        REFUSE.lock().unwrap().retain(|(p, _)| p != prefix);
    }

    /// Whether the spawn of a thread named `name` is to be refused.
    pub(crate) fn spawn_refused(name: &str) -> bool {
        let mut refuse = REFUSE.lock().unwrap();
        let Some(at) = refuse
            .iter()
            .position(|(p, n)| *n > 0 && name.starts_with(p.as_str()))
        else {
            return false;
        };
        refuse[at].1 -= 1;
        true
    }
}
