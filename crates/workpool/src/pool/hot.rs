//! Hot workers: a worker that finds the queue empty stays awake for a
//! moment before it parks, so a steady stream of tasks finds it awake.
//!
//! A spinning worker counts itself in [`Spinners`]; a submitter that queued a
//! task claims one by taking one off the count, and then wakes nobody else.
//! The claim is a hint, not a promise: a claimed worker may still leave (its
//! time runs out, the pool closes), but it then goes through the parking
//! path, which looks at the queue once more after it is published as idle
//! (pair PARK), so a task is never stranded; at worst a worker is woken that
//! finds nothing. At most a core's worth of workers spin at once.

use super::state::Inner;
use super::task::Task;
use crate::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::sync::{self};
use crossbeam_utils::{Backoff, CachePadded};
use std::time::{Duration, Instant};

/// How long a worker keeps yielding for a next task, past its spin, before
/// it parks. Long enough to bridge the gap between tasks submitted at a
/// steady pace (a parked worker takes 10-50 us to wake on a small VM, which
/// shows as submit-to-start latency); short enough that an idle pool burns
/// nothing measurable.
const HOT_FOR: Duration = Duration::from_micros(200);

#[derive(Debug)]
pub(crate) struct Spinners {
    /// Spinning workers not yet claimed. Never more than the workers that
    /// really spin: a worker adds itself before it polls, and takes itself
    /// off when it stops only if the count is above zero (a claim may have
    /// taken its unit already). On a line of its own: submitters read it on
    /// every task.
    unclaimed: CachePadded<AtomicUsize>,
    /// The most workers that spin at once: the CPUs.
    limit: usize,
}

impl Spinners {
    pub(crate) fn new() -> Spinners {
        Spinners {
            unclaimed: CachePadded::new(AtomicUsize::new(0)),
            limit: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Claims a spinning worker for a task just queued; false if none spins.
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        take_one(&self.unclaimed)
    }

    /// Whether a worker spins unclaimed (a hint: it may leave meanwhile).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.unclaimed.load(Ordering::Relaxed) != 0
    }

    /// A worker starts to spin: false if a core's worth spin already.
    /// [SPIN, worker half] it is claimable from here on; the caller looks at
    /// the queue next, so a submitter that queued before it could see it
    /// finds no one to claim and wakes an idle worker or relies on it
    /// looking.
    pub(super) fn start_spinning(&self) -> bool {
        if self.unclaimed.load(Ordering::Relaxed) >= self.limit {
            return false;
        }
        self.unclaimed.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        true
    }

    /// The worker stops spinning: it takes itself off the count unless a
    /// claim took its unit already.
    pub(super) fn stop_spinning(&self) {
        take_one(&self.unclaimed);
    }
}

/// Takes one off `count` if it is above zero; returns whether it did.
fn take_one(count: &AtomicUsize) -> bool {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// How a thread stays awake for something before it blocks: it spins with a
/// [`Backoff`], then yields until [`HOT_FOR`] has passed. Yielding takes no
/// core from anyone who needs it. Under loom it polls once.
pub(crate) struct Awake {
    backoff: Backoff,
    yielding_since: Option<Instant>,
}

impl Awake {
    pub(crate) fn new() -> Self {
        Awake {
            backoff: Backoff::new(),
            yielding_since: None,
        }
    }

    /// Waits a moment; false once the time to stay awake is up, or at once
    /// when `give_up`.
    pub(crate) fn wait(&mut self, give_up: bool) -> bool {
        if give_up || !sync::SPIN {
            sync::yield_now();
            return false;
        }
        if !self.backoff.is_completed() {
            self.backoff.snooze();
            return true;
        }
        let since = *self.yielding_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= HOT_FOR {
            return false;
        }
        std::thread::yield_now();
        true
    }
}

impl Inner {
    /// A worker found the queue empty: spins for a task for [`HOT_FOR`] at
    /// most. `None` when it should go the parking way.
    pub(crate) fn spin_for_task(&self) -> Option<(Task, bool)> {
        let spinners = &self.spinners;
        if !spinners.start_spinning() {
            return None;
        }
        let mut awake = Awake::new();
        let found = loop {
            // The capacity before every take: a `tune` down stops a spinner
            // before it takes a task submitted after the tune. (A spinner
            // that read the capacity just before the tune, and takes such a
            // task, hands it back: `Inner::next_task`.)
            if self.crew.over_capacity() {
                break None;
            }
            if let Some(found) = self.queue.pop() {
                break Some(found);
            }
            if !awake.wait(self.is_closed()) {
                break None;
            }
        };
        spinners.stop_spinning();
        found
    }
}
