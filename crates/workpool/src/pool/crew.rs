//! The crew: the workers that hold a place under the capacity, the idle ones
//! among them, and the capacity itself, with the gauges that mirror them.
//!
//! Two halves, like a lock and what it guards: [`Roster`] lives in the pool's
//! locked `State` and is changed only through [`Crew`]'s event-named methods
//! (`hired`, `left`, `went_idle`, `take_idle`, `retuned`, `expire`,
//! `dismiss_idle`), which write each count and its gauge in one step; the
//! gauges are read without the lock (`saturated`, `over_capacity`). So a
//! gauge may be a moment stale, never torn, and no other file can change a
//! count without its gauge.
//!
//! The gauges take part in the protocol's pairs (PARK: a submitter reads
//! `idle` and the room below the capacity after queueing; TUNE: a worker
//! reads the capacity after a take), so they come from `crate::sync` and
//! are written and read `SeqCst`.

use super::idle::IdleWorkers;
use super::worker::Parker;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Arc;
use std::time::Instant;

/// The capacity of an unbounded pool.
pub(crate) const UNBOUNDED: usize = usize::MAX;

/// The crew's counts, under the pool's lock. Read here, changed through
/// [`Crew`].
#[derive(Debug)]
pub(super) struct Roster {
    /// Parked workers (or about to park), LIFO, oldest at the front.
    idle: IdleWorkers<Arc<Parker>>,
    /// Workers holding a place under the capacity: busy, spinning and idle.
    /// It rises before a thread is spawned and falls when a worker decides to
    /// exit (or is told to), so capacity is freed at once.
    workers: usize,
    /// `UNBOUNDED` for an unbounded pool.
    capacity: usize,
}

/// The crew's gauges, read without the lock, and the only way to change a
/// [`Roster`].
#[derive(Debug)]
pub(super) struct Crew {
    workers: AtomicUsize,
    /// Workers on the idle list.
    idle: AtomicUsize,
    capacity: AtomicUsize,
}

impl Roster {
    pub(super) fn new(capacity: usize) -> Roster {
        Roster {
            idle: IdleWorkers::new(),
            workers: 0,
            capacity,
        }
    }

    /// Room below the capacity for one more worker.
    pub(super) fn has_room(&self) -> bool {
        self.workers < self.capacity
    }

    /// Above the capacity: a `tune` down not yet settled.
    pub(super) fn is_over(&self) -> bool {
        self.workers > self.capacity
    }

    pub(super) fn is_empty(&self) -> bool {
        self.workers == 0
    }

    pub(super) fn has_idle(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Every worker is parked (none runs, looks or spins).
    pub(super) fn all_idle(&self) -> bool {
        self.idle.len() == self.workers
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Workers `wanted` is short of, within the capacity.
    pub(super) fn missing(&self, wanted: usize) -> usize {
        wanted.min(self.capacity).saturating_sub(self.workers)
    }
}

impl Crew {
    pub(super) fn new(capacity: usize) -> Crew {
        Crew {
            workers: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity),
        }
    }

    // Read without the lock.

    pub(super) fn workers(&self) -> usize {
        self.workers.load(Ordering::Relaxed)
    }

    pub(super) fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }

    /// The capacity, `UNBOUNDED` for an unbounded pool.
    pub(super) fn capacity(&self) -> usize {
        self.capacity.load(Ordering::SeqCst)
    }

    /// Whether a task would wait: no worker idle, and no room to start one.
    /// A hint for the lock-free path; the locked path decides.
    #[inline]
    pub(super) fn saturated(&self) -> bool {
        self.idle.load(Ordering::SeqCst) == 0
            && self.workers.load(Ordering::SeqCst) >= self.capacity.load(Ordering::SeqCst)
    }

    /// Whether the workers are over the capacity in force (a `tune` down
    /// not yet settled); the worker decides under the lock. `SeqCst`, so
    /// that a worker that took a task pushed after a `tune` returned sees
    /// the new capacity (pair TUNE in `PROTOCOL.md`).
    #[inline]
    pub(super) fn over_capacity(&self) -> bool {
        self.workers.load(Ordering::SeqCst) > self.capacity.load(Ordering::SeqCst)
    }

    // Under the lock: each event changes the roster and its gauges together.

    /// `n` workers are about to start.
    pub(super) fn hired(&self, roster: &mut Roster, n: usize) {
        roster.workers += n;
        self.workers.store(roster.workers, Ordering::SeqCst);
    }

    /// `n` workers decided to leave, or never started: their places are
    /// free at once.
    pub(super) fn left(&self, roster: &mut Roster, n: usize) {
        roster.workers -= n;
        self.workers.store(roster.workers, Ordering::SeqCst);
    }

    /// A worker went idle at `now` (read before the lock; the list keeps
    /// its order should a later push overtake it).
    pub(super) fn went_idle(&self, roster: &mut Roster, worker: Arc<Parker>, now: Instant) {
        roster.idle.push(worker, now);
        self.idle.store(roster.idle.len(), Ordering::SeqCst);
    }

    /// Workers just started for `min_workers` went idle together.
    pub(super) fn all_went_idle(&self, roster: &mut Roster, workers: Vec<Arc<Parker>>) {
        let now = Instant::now();
        for worker in workers {
            roster.idle.push(worker, now);
        }
        self.idle.store(roster.idle.len(), Ordering::SeqCst);
    }

    /// Takes the warmest idle worker off the list, to send it an order.
    pub(super) fn take_idle(&self, roster: &mut Roster) -> Option<Arc<Parker>> {
        let worker = roster.idle.pop()?;
        self.idle.store(roster.idle.len(), Ordering::SeqCst);
        Some(worker)
    }

    /// `tune`: the capacity is now `capacity`. Returns the idle workers above
    /// it, oldest first, no longer counted: the caller sends them `Exit`.
    /// Busy and spinning ones leave as they look for a next task.
    pub(super) fn retuned(&self, roster: &mut Roster, capacity: usize) -> Vec<Arc<Parker>> {
        // [TUNE, tune half] the capacity is published before `tune`
        // returns: a task pushed after that is taken after its push, and
        // the taker reads this (`Inner::next_task`).
        roster.capacity = capacity;
        self.capacity.store(capacity, Ordering::SeqCst);
        let excess = roster.workers.saturating_sub(capacity);
        let retired = roster.idle.take_oldest(excess);
        self.left(roster, retired.len());
        self.idle.store(roster.idle.len(), Ordering::SeqCst);
        retired
    }

    /// The purge: takes the workers idle since `cutoff` or earlier, oldest
    /// first, keeping `keep` workers (never above the capacity), no longer
    /// counted: the caller sends them `Exit`.
    pub(super) fn expire(
        &self,
        roster: &mut Roster,
        cutoff: Instant,
        keep: usize,
    ) -> Vec<Arc<Parker>> {
        let keep = keep.min(roster.capacity);
        let limit = roster.workers.saturating_sub(keep);
        let expired = roster.idle.expire_older_than(cutoff, limit);
        if !expired.is_empty() {
            self.left(roster, expired.len());
            self.idle.store(roster.idle.len(), Ordering::SeqCst);
        }
        expired
    }

    /// `release`: takes every idle worker off the list, to send each an
    /// order; with `leaving`, they are no longer counted (sent `Exit`).
    pub(super) fn dismiss_idle(&self, roster: &mut Roster, leaving: bool) -> Vec<Arc<Parker>> {
        let idle = roster.idle.drain_all();
        self.idle.store(0, Ordering::SeqCst);
        if leaving {
            self.left(roster, idle.len());
        }
        idle
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parkers(n: usize) -> Vec<Arc<Parker>> {
        (0..n).map(|_| Arc::new(Parker::new())).collect()
    }

    #[test]
    fn every_event_keeps_the_gauges_equal_to_the_roster() {
        let crew = Crew::new(4);
        let mut roster = Roster::new(4);
        let agree = |crew: &Crew, roster: &Roster| {
            assert_eq!(crew.workers(), roster.workers);
            assert_eq!(crew.idle(), roster.idle.len());
            assert_eq!(crew.capacity(), roster.capacity);
        };
        crew.hired(&mut roster, 3);
        agree(&crew, &roster);
        assert!(!crew.saturated() && roster.has_room());
        crew.all_went_idle(&mut roster, parkers(2));
        agree(&crew, &roster);
        assert!(!roster.all_idle());
        assert!(crew.take_idle(&mut roster).is_some());
        agree(&crew, &roster);
        crew.hired(&mut roster, 1);
        agree(&crew, &roster);
        // Four workers, one idle: not saturated until it is taken.
        assert!(!crew.saturated());
        let last = crew.take_idle(&mut roster).expect("one is idle");
        assert!(crew.saturated());
        crew.went_idle(&mut roster, last, Instant::now());
        // Down to two: the idle one leaves now, the busy ones later.
        let retired = crew.retuned(&mut roster, 2);
        assert_eq!(retired.len(), 1);
        agree(&crew, &roster);
        assert!(crew.over_capacity() && roster.is_over());
        crew.left(&mut roster, 1);
        agree(&crew, &roster);
        assert!(!crew.over_capacity() && !roster.is_over());
        crew.all_went_idle(&mut roster, parkers(2));
        assert!(roster.all_idle());
        assert_eq!(crew.dismiss_idle(&mut roster, true).len(), 2);
        agree(&crew, &roster);
        assert!(roster.is_empty());
    }

    #[test]
    fn expiry_keeps_min_workers_within_the_capacity() {
        let crew = Crew::new(3);
        let mut roster = Roster::new(3);
        crew.hired(&mut roster, 3);
        crew.all_went_idle(&mut roster, parkers(3));
        let later = Instant::now() + Duration::from_secs(1);
        // Keep 5 (above the capacity of 3): all three stay.
        assert!(crew.expire(&mut roster, later, 5).is_empty());
        // Keep 1: two go, oldest first.
        assert_eq!(crew.expire(&mut roster, later, 1).len(), 2);
        assert_eq!((crew.workers(), crew.idle()), (1, 1));
        assert_eq!(roster.missing(2), 1);
        assert_eq!(roster.missing(9), 2);
    }
}
