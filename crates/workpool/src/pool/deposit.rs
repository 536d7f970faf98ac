//! Blocked submitters: each waits with its task deposited, oldest first, and
//! each unit of room that appears takes the oldest deposit that is still
//! waiting (pair DEPOSIT in `PROTOCOL.md`).
//!
//! Room is placed by whoever makes it, under the lock ([`Inner::serve_deposits`]):
//! the worker that takes a queued task (bounded mode) or finishes one
//! (hand-off mode), `tune` growing the pool, a worker leaving, the purge, or
//! idle workers appearing. The deposit's task goes straight to the place
//! (an idle worker, the queue, or a new worker that its submitter starts), so
//! the submitter never has to race for the room it was woken for, and two
//! units of room always serve two submitters.

use super::dispatch::Placed;
use super::state::{Inner, State, StateGuard};
use super::task::Task;
use super::worker::Next;
use crate::error::PoolError;
use crate::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::sync::{Arc, Condvar};
use std::collections::VecDeque;
use std::task::Waker;
use std::time::{Duration, Instant};

/// How long a blocked submitter sleeps before it looks for room itself. Room
/// is normally handed to it (see the module docs), but with a queue only
/// once half of the queue is free; should the workers all be in long tasks
/// meanwhile, this bounds how long it sleeps beside a free slot.
const DEPOSIT_PATIENCE: Duration = Duration::from_millis(1);

/// Who waits for room, under the pool's lock: blocked submitters with their
/// deposits, and async submitters as wakers, each oldest first. Changed only
/// through [`Waiting`], which keeps its gauges with it.
#[derive(Default)]
pub(super) struct Waiters {
    deposits: VecDeque<Deposit>,
    /// Async submitters waiting for room (`submit_async`), by id.
    asynchronous: VecDeque<(u64, Waker)>,
    /// Blocked submitters whose deposits were decided, to wake once the
    /// lock is released.
    pub(super) rousing: Rousing,
}

/// How many decided submitters are woken after the lock, at most; more are
/// woken under it. One is the common case: a single submitter refilling
/// the queue.
const ROUSE_AFTER_UNLOCK: usize = 4;

/// Blocked submitters to wake once the pool's lock is released
/// ([`StateGuard`](super::state::StateGuard) does it). Woken under the lock,
/// a submitter runs only to block again on the lock its waker still holds:
/// two sleeps and two wake-ups where one does, on every refill of a full
/// queue.
#[derive(Default)]
pub(super) struct Rousing {
    woken: [Option<Arc<Condvar>>; ROUSE_AFTER_UNLOCK],
}

impl Rousing {
    /// `wake` is to be notified once the lock is released (at once, if
    /// `ROUSE_AFTER_UNLOCK` are waiting already).
    fn add(&mut self, wake: &Arc<Condvar>) {
        match self.woken.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(Arc::clone(wake)),
            None => wake.notify_one(),
        }
    }

    /// Slots fill from the first and are emptied all at once (`take`), so
    /// the first says whether any is full.
    pub(super) fn is_empty(&self) -> bool {
        self.woken[0].is_none()
    }

    /// Takes the submitters to wake, to [`rouse`] once unlocked.
    pub(super) fn take(&mut self) -> [Option<Arc<Condvar>>; ROUSE_AFTER_UNLOCK] {
        std::mem::take(&mut self.woken)
    }
}

/// Wakes the submitters [`Rousing::take`] gave, outside the lock. A wake-up
/// that comes late is harmless: a submitter checks its deposit under the
/// lock before and after every wait, and its condvar, kept by its thread,
/// at worst wakes a later wait of it early, which loops.
pub(super) fn rouse(woken: [Option<Arc<Condvar>>; ROUSE_AFTER_UNLOCK]) {
    for wake in woken.into_iter().flatten() {
        wake.notify_one();
    }
}

/// The gauges of [`Waiters`], read without the lock, and the only way to
/// change them.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// Blocked and async submitters: the `waiting` gauge, and the worker's
    /// half of pair DEPOSIT reads it after freeing room.
    all: AtomicUsize,
    /// Async submitters (a hint): room freed wakes them at every slot, not
    /// at half a queue.
    asynchronous: std::sync::atomic::AtomicUsize,
}

impl Waiters {
    /// Blocked submitters, for `max_blocking_tasks`.
    pub(super) fn blocked(&self) -> usize {
        self.deposits.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.deposits.is_empty() && self.asynchronous.is_empty()
    }
}

impl Waiting {
    /// Blocked and async submitters waiting for room (the gauge).
    pub(super) fn count(&self) -> usize {
        self.all.load(Ordering::Relaxed)
    }

    fn sync(&self, waiters: &Waiters) {
        self.all.store(
            waiters.deposits.len() + waiters.asynchronous.len(),
            Ordering::SeqCst,
        );
        self.asynchronous.store(
            waiters.asynchronous.len(),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Room was freed: whether anybody may want it. Blocked submitters want
    /// it once half of the queue is free (`half_free`), async ones at once.
    #[inline]
    pub(super) fn want_room(&self, half_free: impl FnOnce() -> bool) -> bool {
        self.all.load(Ordering::SeqCst) != 0
            && (half_free() || self.asynchronous.load(std::sync::atomic::Ordering::SeqCst) != 0)
    }

    /// An async submitter waits for room as `waker` (or replaces its waker).
    pub(super) fn async_waits(&self, waiters: &mut Waiters, id: u64, waker: Waker) {
        match waiters.asynchronous.iter_mut().find(|(at, _)| *at == id) {
            Some(entry) => entry.1 = waker,
            None => waiters.asynchronous.push_back((id, waker)),
        }
        self.sync(waiters);
    }

    /// An async submitter stops waiting; false if it was woken meanwhile
    /// (its entry gone).
    pub(super) fn async_leaves(&self, waiters: &mut Waiters, id: u64) -> bool {
        let before = waiters.asynchronous.len();
        waiters.asynchronous.retain(|(at, _)| *at != id);
        let found = waiters.asynchronous.len() != before;
        self.sync(waiters);
        found
    }

    /// Every async submitter is to try again: their wakers move to `wakes`
    /// (woken once the lock is released, `StateGuard`).
    pub(super) fn wake_async(&self, waiters: &mut Waiters, wakes: &mut Vec<Waker>) {
        if waiters.asynchronous.is_empty() {
            return;
        }
        wakes.extend(waiters.asynchronous.drain(..).map(|(_, waker)| waker));
        self.sync(waiters);
    }
}

/// A submitter blocked in `submit`, with its task.
struct Deposit {
    task: Option<Task>,
    /// Set once the deposit is decided; the submitter then takes it off the
    /// list and returns.
    outcome: Option<Outcome>,
    /// The submitter waits here, under the pool's lock; it is also how the
    /// submitter finds its own deposit.
    wake: Arc<Condvar>,
}

enum Outcome {
    /// The task was placed on a worker or in the queue.
    Accepted,
    /// Room for a new worker was reserved for the task: the submitter
    /// starts it (outside the lock) and reports a failure itself.
    Start,
    /// The pool closed while the submitter waited.
    Refused(PoolError),
}

impl Deposit {
    fn new(task: Task, wake: Arc<Condvar>) -> Deposit {
        Deposit {
            task: Some(task),
            outcome: None,
            wake,
        }
    }

    /// The task of a deposit that is still undecided.
    fn take_task(&mut self) -> Task {
        self.task.take().expect("an undecided deposit has its task")
    }

    fn is_theirs(&self, wake: &Arc<Condvar>) -> bool {
        Arc::ptr_eq(&self.wake, wake)
    }

    /// Decides the deposit; its submitter is woken once the lock is
    /// released.
    fn decide(&mut self, outcome: Outcome, rousing: &mut Rousing) {
        self.outcome = Some(outcome);
        rousing.add(&self.wake);
    }

    /// The submitter's side, outside the lock, once its deposit is decided.
    fn finish(mut self, outcome: Outcome, inner: &Arc<Inner>) -> Result<(), (PoolError, Task)> {
        match outcome {
            Outcome::Accepted => Ok(()),
            Outcome::Start => {
                inner.start_worker(self.task.take().expect("a deposit to start keeps its task"))
            }
            Outcome::Refused(error) => Err((
                error,
                self.task.take().expect("a refused deposit keeps its task"),
            )),
        }
    }
}

/// The condvar a blocked submitter sleeps on, and by which its deposit is
/// known: one per thread, made at its first block and kept, so a stream of
/// tasks that blocks now and then allocates nothing for it. A thread blocks
/// on one pool at a time, so no two deposits share one.
#[cfg(not(loom))]
fn this_threads_wake() -> Arc<Condvar> {
    std::thread_local! {
        static WAKE: Arc<Condvar> = Arc::new(Condvar::new());
    }
    WAKE.with(Arc::clone)
}

/// Under loom a condvar cannot outlive its model: one per block.
#[cfg(loom)]
fn this_threads_wake() -> Arc<Condvar> {
    Arc::new(Condvar::new())
}

impl Inner {
    /// Blocks the caller with its task deposited until a unit of room takes
    /// it, or the pool closes, or `until` passes (`Timeout`, the task given
    /// back).
    pub(super) fn block_with_deposit(
        self: &Arc<Self>,
        mut state: StateGuard<'_>,
        task: Task,
        until: Option<Instant>,
    ) -> Result<(), (PoolError, Task)> {
        let wake = this_threads_wake();
        state
            .waiters
            .deposits
            .push_back(Deposit::new(task, Arc::clone(&wake)));
        self.waiting.sync(&state.waiters);
        // [DEPOSIT, submitter half] we are published in `waiting`; now look for
        // room freed before a worker could see us.
        fence(Ordering::SeqCst);
        loop {
            let at = state
                .waiters
                .deposits
                .iter()
                .position(|d| d.is_theirs(&wake))
                .expect("only its submitter takes a deposit off the list");
            if state.waiters.deposits[at].outcome.is_none() {
                // First, and after every wait: room may be there that no one
                // handed over (see `DEPOSIT_PATIENCE`).
                self.serve_deposits(&mut state);
            }
            if let Some(outcome) = state.waiters.deposits[at].outcome.take() {
                let deposit = state.waiters.deposits.remove(at).expect("found above");
                self.waiting.sync(&state.waiters);
                drop(state);
                return deposit.finish(outcome, self);
            }
            let mut patience = DEPOSIT_PATIENCE;
            if let Some(until) = until {
                let now = Instant::now();
                if now >= until {
                    // Out of time, and still undecided: take the task back.
                    let mut deposit = state.waiters.deposits.remove(at).expect("found above");
                    self.waiting.sync(&state.waiters);
                    let task = deposit.take_task();
                    return Err((PoolError::Timeout, task));
                }
                patience = patience.min(until - now);
            }
            state = state.wait_timeout(&wake, patience);
        }
    }

    /// Room may have freed: a queued task was taken (bounded mode) or an
    /// admitted task finished (hand-off mode).
    ///
    /// With a queue, blocked submitters are served once half of the queue is
    /// free, not at every slot: a submitter woken for one slot would fill it
    /// and block again, a sleep and a wake-up per task, while one woken at
    /// half refills the queue in one go. A submitter that waits longer than
    /// `DEPOSIT_PATIENCE` serves itself (`block_with_deposit`), so none
    /// sleeps beside free room for long.
    #[inline]
    pub(crate) fn room_freed(&self) {
        // [DEPOSIT, worker half] the room is published (the queue's pop, or
        // `in_flight`, both `SeqCst` read-modify-writes); now look for a
        // submitter that deposited its task before it could see the room.
        self.queue.fence_after_op();
        if self.waiting.want_room(|| self.queue.half_free()) {
            // Tells a `MultiPool` too.
            self.serve_deposits(&mut self.lock_state());
        } else if let Some(room) = &self.room {
            room.notify();
        }
    }

    /// Under the lock: places the waiting deposits, oldest first, while there
    /// is room, and wakes the async submitters to try again; on a closed pool
    /// refuses the deposits (and the async submitters see it closed).
    pub(super) fn serve_deposits(&self, state: &mut State) {
        let closed = state.life.is_closed();
        // Out of the state while tasks are placed, which changes the rest
        // of it; nothing on that path looks at the deposits.
        let mut deposits = std::mem::take(&mut state.waiters.deposits);
        for deposit in deposits.iter_mut() {
            if deposit.outcome.is_some() {
                continue;
            }
            if closed {
                deposit.decide(
                    Outcome::Refused(PoolError::Closed),
                    &mut state.waiters.rousing,
                );
                continue;
            }
            let task = deposit.take_task();
            match self.place_locked(state, task) {
                Ok(Placed::Worker(worker, task)) => {
                    worker.send(Next::Run(task));
                    deposit.decide(Outcome::Accepted, &mut state.waiters.rousing);
                }
                Ok(Placed::Queued) => deposit.decide(Outcome::Accepted, &mut state.waiters.rousing),
                Ok(Placed::Start(task)) => {
                    deposit.task = Some(task);
                    deposit.decide(Outcome::Start, &mut state.waiters.rousing);
                }
                Err(task) => {
                    deposit.task = Some(task);
                    break;
                }
            }
        }
        state.waiters.deposits = deposits;
        // Async submitters try again (on a closed pool, to see it closed).
        self.wake_async_waiters(state);
        if let Some(room) = &self.room {
            room.notify();
        }
    }

    /// Wakes every async submitter waiting for room; each tries again.
    pub(super) fn wake_async_waiters(&self, state: &mut State) {
        let State { waiters, wakes, .. } = state;
        self.waiting.wake_async(waiters, wakes);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn async_waiters_keep_the_gauges_and_are_woken_once_each() {
        let waiting = Waiting::default();
        let mut waiters = Waiters::default();
        let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = || Waker::from(std::sync::Arc::clone(&count));
        assert!(!waiting.want_room(|| true), "nobody waits");
        waiting.async_waits(&mut waiters, 1, waker());
        waiting.async_waits(&mut waiters, 2, waker());
        // Polled again: its waker is replaced, not added.
        waiting.async_waits(&mut waiters, 1, waker());
        assert_eq!(waiting.count(), 2);
        assert!(!waiters.is_empty() && waiters.blocked() == 0);
        // Async submitters want room at once, whatever the queue.
        assert!(waiting.want_room(|| false));
        assert!(waiting.async_leaves(&mut waiters, 2));
        assert!(!waiting.async_leaves(&mut waiters, 2), "gone already");
        assert_eq!(waiting.count(), 1);
        let mut wakes = Vec::new();
        waiting.wake_async(&mut waiters, &mut wakes);
        assert_eq!((wakes.len(), waiting.count()), (1, 0));
        assert!(waiters.is_empty() && !waiting.want_room(|| true));
        wakes.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A woken submitter that leaves finds its entry gone: it passes
        // the wake-up on (`SubmitAsync`'s drop).
        assert!(!waiting.async_leaves(&mut waiters, 1));
    }
}
