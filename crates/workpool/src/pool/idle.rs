//! Idle workers, ordered by the moment each went idle.
//!
//! Workers are pushed at the back when they finish a task and popped from the
//! back when a task arrives (LIFO: the warmest thread, whose stack and caches
//! are still hot, is reused first). The front therefore holds the workers idle
//! the longest, and the list stays sorted by `since` without any sorting: the
//! purge finds the workers idle past the expiry with one binary search, as
//! ants' `workerStack.refresh` does, and drains them from the front.

use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct IdleWorkers<W> {
    /// Invariant: `since` never decreases from front to back.
    entries: VecDeque<IdleEntry<W>>,
}

#[derive(Debug)]
struct IdleEntry<W> {
    worker: W,
    since: Instant,
}

impl<W> IdleWorkers<W> {
    pub(crate) fn new() -> Self {
        IdleWorkers {
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a worker that went idle at `now`.
    ///
    /// `now` must not be earlier than the time of any worker already on the
    /// list; callers take it under the pool's lock, which orders the pushes.
    /// A clock read earlier but pushed later is clamped, so the order (and the
    /// binary search that relies on it) survives.
    pub(crate) fn push(&mut self, worker: W, now: Instant) {
        let since = match self.entries.back() {
            Some(last) if last.since > now => last.since,
            _ => now,
        };
        self.entries.push_back(IdleEntry { worker, since });
    }

    /// Takes the worker that went idle last.
    pub(crate) fn pop(&mut self) -> Option<W> {
        self.entries.pop_back().map(|e| e.worker)
    }

    /// Removes and returns the workers idle since `cutoff` or earlier, oldest
    /// first, but at most `limit` of them (the purge keeps `min_workers`).
    pub(crate) fn expire_older_than(&mut self, cutoff: Instant, limit: usize) -> Vec<W> {
        let expired = self.entries.partition_point(|e| e.since <= cutoff);
        self.entries
            .drain(..expired.min(limit))
            .map(|e| e.worker)
            .collect()
    }

    /// Removes and returns the `n` workers idle the longest (fewer if there
    /// are fewer).
    pub(crate) fn take_oldest(&mut self, n: usize) -> Vec<W> {
        let n = n.min(self.entries.len());
        self.entries.drain(..n).map(|e| e.worker).collect()
    }

    /// Removes and returns every idle worker.
    pub(crate) fn drain_all(&mut self) -> Vec<W> {
        self.entries.drain(..).map(|e| e.worker).collect()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn pop_is_lifo() {
        let base = Instant::now();
        let mut idle = IdleWorkers::new();
        for i in 0..3 {
            idle.push(i, at(base, i));
        }
        assert_eq!(idle.pop(), Some(2));
        assert_eq!(idle.expire_older_than(at(base, 0), usize::MAX), vec![0]);
        assert_eq!(idle.pop(), Some(1));
        assert_eq!(idle.len(), 0);
        assert!(idle.is_empty());
    }

    #[test]
    fn expiry_cuts_at_the_binary_search_point() {
        let base = Instant::now();
        let mut idle = IdleWorkers::new();
        for i in 0..10 {
            idle.push(i, at(base, i * 10));
        }
        // Idle at 0, 10, 20, 30 ms or earlier than a cutoff of 30 ms.
        assert_eq!(
            idle.expire_older_than(at(base, 30), usize::MAX),
            vec![0, 1, 2, 3]
        );
        assert_eq!(idle.len(), 6);
        // Nothing older than the oldest remaining.
        assert!(idle.expire_older_than(at(base, 39), usize::MAX).is_empty());
        // The limit keeps the rest, and it takes the oldest first.
        assert_eq!(idle.expire_older_than(at(base, 1000), 2), vec![4, 5]);
        assert_eq!(idle.take_oldest(1), vec![6]);
        assert_eq!(idle.drain_all(), vec![7, 8, 9]);
        assert!(idle.take_oldest(5).is_empty());
        assert_eq!(idle.len(), 0);
    }

    #[test]
    fn a_late_push_with_an_earlier_clock_keeps_the_order() {
        let base = Instant::now();
        let mut idle = IdleWorkers::new();
        idle.push('a', at(base, 50));
        idle.push('b', at(base, 40));
        // 'b' counts as idle from 50 ms, so a cutoff of 45 ms expires neither.
        assert!(idle.expire_older_than(at(base, 45), usize::MAX).is_empty());
        assert_eq!(
            idle.expire_older_than(at(base, 50), usize::MAX),
            vec!['a', 'b']
        );
    }
}
