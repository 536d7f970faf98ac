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
use super::state::{Inner, State};
use super::task::Task;
use super::worker::Next;
use crate::error::PoolError;
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, Condvar};

/// A submitter blocked in `submit`, with its task.
pub(crate) struct Deposit {
    task: Option<Task>,
    /// Set once the deposit is decided; the submitter then takes it off the
    /// list and returns.
    pub(super) outcome: Option<Outcome>,
    /// The submitter waits here, under the pool's lock; it is also how the
    /// submitter finds its own deposit.
    wake: Arc<Condvar>,
}

pub(crate) enum Outcome {
    /// The task was placed on a worker or in the queue.
    Accepted,
    /// Room for a new worker was reserved for the task: the submitter
    /// starts it (outside the lock) and reports a failure itself.
    Start,
    /// The pool closed while the submitter waited.
    Refused(PoolError),
}

impl Deposit {
    pub(super) fn new(task: Task, wake: Arc<Condvar>) -> Deposit {
        Deposit {
            task: Some(task),
            outcome: None,
            wake,
        }
    }

    /// The task of a deposit that is still undecided.
    pub(super) fn take_task(&mut self) -> Task {
        self.task.take().expect("an undecided deposit has its task")
    }

    pub(super) fn is_theirs(&self, wake: &Arc<Condvar>) -> bool {
        Arc::ptr_eq(&self.wake, wake)
    }

    fn decide(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.wake.notify_one();
    }

    /// The submitter's side, outside the lock, once its deposit is decided.
    pub(super) fn finish(
        mut self,
        outcome: Outcome,
        inner: &Arc<Inner>,
    ) -> Result<(), (PoolError, Task)> {
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

impl Inner {
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
    pub(crate) fn room_freed(self: &Arc<Self>) {
        // [DEPOSIT, worker half] the room is published (the queue's pop, or
        // `in_flight`, both `SeqCst` read-modify-writes); now look for a
        // submitter that deposited its task before it could see the room.
        self.queue.fence_after_op();
        if self.gauges.waiting.load(Ordering::SeqCst) != 0
            && (self.queue.half_free()
                || self.async_waiting.load(std::sync::atomic::Ordering::SeqCst) != 0)
        {
            // Tells a `MultiPool` too.
            self.serve_deposits(&mut self.lock_state());
        } else if let Some(room) = &self.room {
            room.notify();
        }
    }

    /// Under the lock: places the waiting deposits, oldest first, while there
    /// is room; on a closed pool refuses them all.
    pub(super) fn serve_deposits(&self, state: &mut State) {
        let closed = state.closed;
        for at in 0..state.deposits.len() {
            if state.deposits[at].outcome.is_some() {
                continue;
            }
            if closed {
                state.deposits[at].decide(Outcome::Refused(PoolError::Closed));
                continue;
            }
            let task = state.deposits[at]
                .task
                .take()
                .expect("an undecided deposit has its task");
            match self.place_locked(state, task) {
                Ok(Placed::Worker(worker, task)) => {
                    worker.send(Next::Run(task));
                    state.deposits[at].decide(Outcome::Accepted);
                }
                Ok(Placed::Queued) => state.deposits[at].decide(Outcome::Accepted),
                Ok(Placed::Start(task)) => {
                    state.deposits[at].task = Some(task);
                    state.deposits[at].decide(Outcome::Start);
                }
                Err(task) => {
                    state.deposits[at].task = Some(task);
                    break;
                }
            }
        }
        // Async submitters try again (on a closed pool, to see it closed).
        self.wake_async_waiters(state);
        if let Some(room) = &self.room {
            room.notify();
        }
    }
}
