//! How a submitted task finds a worker (ants' `retrieveWorker`).
//!
//! Without the lock ([`Inner::try_lock_free`]), when a spinning worker can be
//! claimed or the gauges say every worker is busy: the task is admitted into
//! the queue (`queue.rs`), then a worker is found for it
//! ([`Inner::find_worker`]).
//!
//! Otherwise, under the pool's lock ([`Inner::place_locked`]), in this order:
//! an idle worker (LIFO) is handed the task; below capacity a new worker
//! starts with it; the task is admitted into the queue. When none is
//! possible the caller fails with `Overloaded` (nonblocking, too many blocked
//! callers), with `WouldDeadlock` (it is a worker of this pool), or blocks
//! with its task deposited (`deposit.rs`).

use super::state::StateGuard;
use super::state::{Inner, State};
use super::task::Task;
use super::worker::{self, Next, Parker};
use crate::error::PoolError;
use crate::sync::{self, Arc};
use crossbeam_utils::Backoff;
use std::time::Instant;

/// How many rounds of `Backoff::spin` (127 spin-loop hints in all) a
/// submitter spends on a full pool (a full queue, or in hand-off mode every
/// worker busy) before it blocks.
const FULL_QUEUE_SPINS: usize = 7;

/// Whether a call may block for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Block (backpressure), unless the pool is nonblocking.
    Block,
    /// Never block: `Overloaded` at once (`try_submit`).
    No,
    /// As `No`, for a caller that will try again or elsewhere (a `MultiPool`
    /// trying its pools, an async submit): a refusal is not counted.
    Probe,
    /// Block until this instant at most, then fail with `Timeout`.
    Until(Instant),
}

/// Where the locked path put a task.
pub(super) enum Placed {
    /// An idle worker, taken off the list: send it the task.
    Worker(Arc<Parker>, Task),
    /// Room for a new worker is reserved (counted in `workers`, `threads`
    /// and, in hand-off mode, in flight): start it with the task.
    Start(Task),
    /// In the queue.
    Queued,
}

impl Inner {
    /// Runs `task` on a worker, or gives it back with the reason it was
    /// refused.
    pub(crate) fn submit(
        self: &Arc<Self>,
        task: Task,
        wait: Wait,
    ) -> Result<(), (PoolError, Task)> {
        let placed = self.place(task, wait);
        match &placed {
            Ok(()) => {}
            // A probe (a `MultiPool` trying its pools, an async submit trying
            // again) is not a refusal of the caller's.
            Err(_) if wait == Wait::Probe => {}
            Err(_) => {
                self.stats
                    .rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        placed
    }

    fn place(self: &Arc<Self>, task: Task, wait: Wait) -> Result<(), (PoolError, Task)> {
        let mut task = task;
        // A thread that submits fast has one task in `SAMPLE_EVERY` timed
        // on the lock-free way, a slow one every task; the locked way costs
        // far more than a clock read, so there every task is (see
        // `stats.rs`).
        task.stamp = self.stats.sample();
        let backoff = Backoff::new();
        let mut spins = 0;
        // A full pool of short tasks frees room within microseconds: wait
        // for it here a moment, without the lock, then block. Spin only,
        // never yield, in both modes: a yield hands the core to whatever
        // else is runnable for its slice (beside busy threads, a whole
        // slice to one of them), while a blocked submitter is woken when
        // room frees (`Inner::room_freed`), with a queue once half of it is
        // free, so that it refills it in one go. (Hand-off yielded for a
        // while first: beside two busy threads that ran `empty` at half the
        // rate, and `cold`'s rounds 13x slower at the median.)
        loop {
            task = match self.try_lock_free(task) {
                Ok(()) => return Ok(()),
                Err(task) => task,
            };
            if !sync::SPIN
                || self.config.nonblocking
                || !self.crew.saturated()
                || self.is_closed()
                || spins == FULL_QUEUE_SPINS
            {
                break;
            }
            spins += 1;
            backoff.spin();
        }
        self.submit_locked(task, wait)
    }

    /// The lock-free way in. Gives the task back when a worker could be woken
    /// or started for it (the locked path does that), when there is no room,
    /// or when the pool is closed.
    #[inline]
    pub(super) fn try_lock_free(self: &Arc<Self>, task: Task) -> Result<(), Task> {
        if !self.spinners.any() && !self.crew.saturated() {
            return Err(task);
        }
        // [RELEASE, submitter half] either the pool is found closed, or
        // `release` sees this push (`admission.rs`).
        self.queue.push_lock_free(task, self.crew.capacity())?;
        self.find_worker();
        Ok(())
    }

    /// A task was queued without the lock: makes sure a worker comes for it.
    fn find_worker(self: &Arc<Self>) {
        // [SPIN, submitter half] the task is queued; a spinning worker counted
        // in `unclaimed` polls the queue and takes it.
        if self.spinners.claim() {
            return;
        }
        // [PARK, submitter half] the task is published; now look for a worker
        // that went idle before it could see it, or room to start one.
        self.queue.fence_after_op();
        if self.crew.saturated() {
            // Every worker is busy: the first to finish takes the task.
            return;
        }
        self.dispatch_queued(self.lock_state(), 1);
    }

    /// Under the lock: wakes idle workers, or starts new ones, for up to
    /// `max` queued tasks. On a closed pool a worker starts only if none is
    /// left to drain the queue.
    pub(super) fn dispatch_queued<'a>(self: &'a Arc<Self>, mut state: StateGuard<'a>, max: usize) {
        for _ in 0..max {
            if self.queue.is_empty() {
                return;
            }
            if let Some(worker) = self.crew.take_idle(&mut state.crew) {
                drop(state);
                worker.send(Next::Look);
            } else {
                let room = if state.life.is_closed() {
                    state.crew.is_empty()
                } else {
                    state.crew.has_room()
                };
                if !room {
                    return;
                }
                self.count_new_workers(&mut state, 1);
                drop(state);
                if let Err(error) = self.start_worker_for_queue() {
                    // The task stays queued for the workers there are; with
                    // none, the purge thread tries again (`purge.rs`).
                    super::log_quietly(|| {
                        tracing::warn!(%error, "workpool: no worker could start for a queued task");
                    });
                    return;
                }
            }
            state = self.lock_state();
        }
    }

    /// Under the lock: counts `n` workers about to start, in `workers` and
    /// in `threads`.
    pub(super) fn count_new_workers(&self, state: &mut State, n: usize) {
        self.crew.hired(&mut state.crew, n);
        self.threads.counted(&mut state.threads, n);
        self.stats
            .workers_started
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Under the lock: places `task` on an idle worker, a new worker or the
    /// queue, or gives it back when every worker is busy and there is no
    /// room (the pool may be closed: the caller checks first).
    pub(super) fn place_locked(&self, state: &mut State, task: Task) -> Result<Placed, Task> {
        let capacity = state.crew.capacity();
        if state.crew.has_idle() && self.queue.reserve(capacity) {
            let worker = self.crew.take_idle(&mut state.crew).expect("checked above");
            return Ok(Placed::Worker(worker, task));
        }
        if state.crew.has_room() && self.queue.reserve(capacity) {
            self.count_new_workers(state, 1);
            return Ok(Placed::Start(task));
        }
        self.queue.try_push(task, capacity).map(|()| Placed::Queued)
    }

    fn submit_locked(self: &Arc<Self>, task: Task, wait: Wait) -> Result<(), (PoolError, Task)> {
        let mut task = task;
        if task.stamp == 0 {
            task.stamp = self.stats.stamp_unless_off();
        }
        let mut state = self.lock_state();
        if state.life.is_closed() {
            return Err((PoolError::Closed, task));
        }
        let task = match self.place_locked(&mut state, task) {
            Ok(placed) => {
                drop(state);
                return self.carry_out(placed);
            }
            Err(task) => task,
        };
        if self.config.nonblocking || matches!(wait, Wait::No | Wait::Probe) {
            return Err((PoolError::Overloaded, task));
        }
        if worker::is_worker_of(self) {
            // Blocking here could only end once a task of this pool ends,
            // maybe the caller's own: refuse instead.
            return Err((PoolError::WouldDeadlock, task));
        }
        let limit = self.config.max_blocking_tasks;
        if limit != 0 && state.waiters.blocked() >= limit {
            return Err((PoolError::Overloaded, task));
        }
        let until = match wait {
            Wait::Until(until) => Some(until),
            _ => None,
        };
        self.block_with_deposit(state, task, until)
    }

    /// Hands a placed task to its worker, outside the lock.
    pub(super) fn carry_out(self: &Arc<Self>, placed: Placed) -> Result<(), (PoolError, Task)> {
        match placed {
            Placed::Worker(worker, task) => {
                worker.send(Next::Run(task));
                Ok(())
            }
            Placed::Start(task) => self.start_worker(task),
            Placed::Queued => Ok(()),
        }
    }
}
