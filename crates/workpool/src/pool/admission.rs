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
//!
//! The pool's life under the lock ([`Life`]: closed or open, and which
//! reboot it is in) changes only through [`Admission::close`] and
//! [`Admission::reopen`], which set the word's bit and the `closed` gauge in
//! the same step.

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// The closed bit again, for readers that poll it (a spinning worker,
    /// a submitter spinning on a full queue): kept off the word's line,
    /// which every lock-free push writes.
    closed: AtomicBool,
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
            word: CachePadded::new(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
        }
    }

    /// Whether the pool is closed (the gauge; the lock decides).
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
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

    /// Under the lock: closes the pool (its life, the gauge and the way
    /// in). False if it was closed already.
    pub(super) fn close(&self, life: &mut Life) -> bool {
        if life.closed {
            return false;
        }
        life.closed = true;
        self.closed.store(true, Ordering::SeqCst);
        self.word.fetch_or(CLOSED, Ordering::SeqCst);
        true
    }

    /// Under the lock: opens a closed pool for a new life (`reboot`);
    /// returns its epoch, or `None` if the pool is open.
    pub(super) fn reopen(&self, life: &mut Life) -> Option<u64> {
        if !life.closed {
            return None;
        }
        life.closed = false;
        life.epoch += 1;
        self.closed.store(false, Ordering::SeqCst);
        self.word.fetch_and(!CLOSED, Ordering::SeqCst);
        Some(life.epoch)
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
