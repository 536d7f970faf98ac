//! The lock-free way in, and the closed bit that shuts it (pair RELEASE in
//! `PROTOCOL.md`): one word holding the count of lock-free pushes in
//! flight, with the pool's closed bit on top.
//!
//! A push enters ([`Admission::try_enter`]) before it touches the queue and
//! leaves when done; `release` closes the word ([`Admission::close`]) and
//! waits until no push is in flight ([`Admission::wait_drained`]) before
//! it looks at the queue. Read-modify-writes of one word are totally
//! ordered, so either a push sees the bit and is refused, or `release` sees
//! the push and waits for it: a task admitted without the lock is always
//! seen by the drain, and once `release` returns every push is refused.

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{self};
use crossbeam_utils::{Backoff, CachePadded};

/// The bit of the word that closes the lock-free way in.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// See the module docs. On a cache line of its own: every lock-free submit
/// writes it twice, and workers read the gauges that would sit beside it
/// on every task (sharing a line cost a third of the throughput).
#[derive(Debug)]
pub(super) struct Admission {
    word: CachePadded<AtomicUsize>,
}

/// A lock-free push in flight; leaves the word when dropped.
pub(super) struct Entered<'a> {
    word: &'a AtomicUsize,
}

impl Admission {
    pub(super) fn new() -> Admission {
        Admission {
            word: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// [RELEASE, submitter half] counts a push in: `None` if the pool is
    /// closed (the push goes the locked way, which refuses it).
    #[inline]
    pub(super) fn try_enter(&self) -> Option<Entered<'_>> {
        if self.word.fetch_add(1, Ordering::SeqCst) & CLOSED != 0 {
            self.word.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Entered { word: &self.word })
    }

    /// Closes the way in (under the pool's lock, with `State::closed`).
    pub(super) fn close(&self) {
        self.word.fetch_or(CLOSED, Ordering::SeqCst);
    }

    /// Opens it again (`reboot`).
    pub(super) fn open(&self) {
        self.word.fetch_and(!CLOSED, Ordering::SeqCst);
    }

    /// [RELEASE, release half] once closed, waits out the pushes that saw
    /// the way open. Pushes never block, so this is short.
    pub(super) fn wait_drained(&self) {
        let backoff = Backoff::new();
        while self.word.load(Ordering::SeqCst) & !CLOSED != 0 {
            backoff.snooze();
            if !sync::SPIN {
                sync::yield_now();
            }
        }
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        self.word.fetch_sub(1, Ordering::SeqCst);
    }
}
