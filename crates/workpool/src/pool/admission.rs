//! The way in and the closed bit that shuts it (pair RELEASE in
//! `PROTOCOL.md`), and the pool's life under the lock.
//!
//! A lock-free push must either be refused, or be seen by the drain of
//! `release`; once `release` returns, every push is refused. Where the bit
//! lives depends on the queue (`queue.rs`):
//!
//! - the ring of a default pool (`raw/ring.rs`) carries it in its tail
//!   word: a push's one compare-and-swap claims a slot of an open ring or
//!   fails on a closed one, and a push that claimed its slot before the bit
//!   is counted by the tail, so the drain sees it;
//! - the other queues (hand-off's `SegQueue`, the locked queue of large
//!   pools) are guarded by a [`Gate`]: one word counting the pushes in
//!   flight with the bit on top. A push enters before it touches the queue
//!   and leaves when done; `release` closes the word and waits until no
//!   push is in flight. Read-modify-writes of one word are totally ordered,
//!   so either a push sees the bit, or `release` sees the push and waits.
//!
//! The pool's life under the lock ([`Life`]: closed or open, and which
//! reboot it is in) changes only through [`Admission::close`] and
//! [`Admission::reopen`], which close or open the queue and set the
//! `closed` gauge in the same step.

use super::queue::TaskQueue;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{self};
use crossbeam_utils::{Backoff, CachePadded};

/// The bit of the word that closes the lock-free way in.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The pool's closed gauge, and the one way to close or open the pool.
#[derive(Debug)]
pub(super) struct Admission {
    /// Whether the pool is closed, for readers that poll it (a spinning
    /// worker, a submitter spinning on a full queue): kept off the lines
    /// that every lock-free push writes.
    closed: AtomicBool,
}

/// The way in of a queue without a closed bit of its own (see the module
/// docs). On a cache line of its own: every lock-free push writes it twice,
/// and workers read the gauges that would sit beside it on every task
/// (sharing a line cost a third of the throughput).
#[derive(Debug)]
pub(super) struct Gate {
    word: CachePadded<AtomicUsize>,
}

/// The pool's life, under the pool's lock: read here, changed through
/// [`Admission`].
#[derive(Debug, Default)]
pub(super) struct Life {
    closed: bool,
    /// Raised by every `reboot`: threads of an older life (the maintenance
    /// thread, `min_workers` starting) see it and stand down.
    epoch: u64,
}

impl Life {
    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the life `epoch` is over: the pool closed, or rebooted since.
    pub(super) fn is_over(&self, epoch: u64) -> bool {
        self.closed || self.epoch != epoch
    }
}

/// A lock-free push in flight; leaves the word when dropped.
pub(super) struct Entered<'a> {
    word: &'a AtomicUsize,
}

impl Admission {
    pub(super) fn new() -> Admission {
        Admission {
            closed: AtomicBool::new(false),
        }
    }

    /// Whether the pool is closed (the gauge; the lock decides).
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Under the lock: closes the pool (its life, the gauge and the
    /// queue's way in). False if it was closed already. Pushes that got in
    /// before are the caller's to wait out (`TaskQueue::wait_drained`).
    pub(super) fn close(&self, life: &mut Life, queue: &TaskQueue) -> bool {
        if life.closed {
            return false;
        }
        life.closed = true;
        self.closed.store(true, Ordering::SeqCst);
        queue.close();
        true
    }

    /// Under the lock: opens a closed pool for a new life (`reboot`);
    /// returns its epoch, or `None` if the pool is open.
    pub(super) fn reopen(&self, life: &mut Life, queue: &TaskQueue) -> Option<u64> {
        if !life.closed {
            return None;
        }
        life.closed = false;
        life.epoch += 1;
        self.closed.store(false, Ordering::SeqCst);
        queue.reopen();
        Some(life.epoch)
    }
}

impl Gate {
    pub(super) fn new() -> Gate {
        Gate {
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

    /// [RELEASE, release half] closes the way in: every later push is
    /// refused.
    pub(super) fn close(&self) {
        self.word.fetch_or(CLOSED, Ordering::SeqCst);
    }

    /// Opens the way in again (`reboot`).
    pub(super) fn reopen(&self) {
        self.word.fetch_and(!CLOSED, Ordering::SeqCst);
    }

    /// Whether the way in is closed.
    #[cfg(loom)]
    pub(super) fn is_closed(&self) -> bool {
        self.word.load(Ordering::SeqCst) & CLOSED != 0
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
