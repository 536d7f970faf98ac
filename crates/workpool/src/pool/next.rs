//! The worker's side of dispatch: after a task, what it does next. It takes
//! a queued task, else spins for one (`hot.rs`), else parks on the idle list,
//! and it leaves when the pool is above its capacity or closed and drained.

use super::state::{Inner, State, StateGuard};
use super::task::Task;
use super::worker::{Next, Parker};
use crate::sync::atomic::{fence, Ordering};
use crate::sync::Arc;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

impl Inner {
    /// Runs a task, catching its panic and any panic of the panic handler
    /// (or of the log line that replaces it): nothing unwinds into the
    /// worker's loop.
    /// Returns whether the task ran to its end (not panicked, not
    /// cancelled).
    pub(crate) fn run_task(&self, task: Task) -> bool {
        match panic::catch_unwind(AssertUnwindSafe(|| task.run(self))) {
            Ok(completed) => completed,
            Err(payload) => {
                self.task_panicked(payload);
                false
            }
        }
    }

    /// A panic nobody can join: counted, and handed to the panic handler
    /// (a panic of the handler is caught too).
    #[cold]
    pub(crate) fn task_panicked(&self, payload: Box<dyn Any + Send>) {
        self.count_panic();
        let _ = panic::catch_unwind(AssertUnwindSafe(|| self.handle_panic(payload)));
    }

    /// A panic whose payload goes to the task's handle: counted only.
    pub(crate) fn count_panic(&self) {
        self.panicked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[cold]
    fn handle_panic(&self, payload: Box<dyn Any + Send>) {
        let Some(handler) = &self.config.panic_handler else {
            tracing::error!(
                pool = %self.name,
                panic = %panic_message(&*payload),
                "a task of the workpool panicked; the worker lives on"
            );
            crate::job::drop_quietly(payload);
            return;
        };
        if let Err(second) = panic::catch_unwind(AssertUnwindSafe(|| handler(payload))) {
            tracing::error!(
                pool = %self.name,
                panic = %panic_message(&*second),
                "the workpool's panic handler panicked; the worker lives on"
            );
            crate::job::drop_quietly(second);
        }
    }

    /// A task this worker ran has ended.
    #[inline]
    pub(crate) fn task_done(self: &Arc<Self>) {
        if self.queue.task_done() {
            self.room_freed();
        }
    }

    /// What a worker that has no task does next.
    pub(crate) fn next_task(self: &Arc<Self>, parker: &Arc<Parker>) -> Next {
        loop {
            if self.crew.over_capacity() && self.leave_if_over_capacity() {
                return Next::Exit;
            }
            if let Some(found) = self.queue.pop().or_else(|| self.spin_for_task()) {
                // [TUNE, worker half] the task is taken; now the capacity:
                // a task pushed after a `tune` down returned is seen with the
                // tune's capacity, and a worker above it hands the task back.
                if self.crew.over_capacity() {
                    return self.leave_handing_back(found.0);
                }
                return self.took(found);
            }
            match self.park(parker) {
                Next::Look => continue,
                order => return order,
            }
        }
    }

    #[inline]
    fn took(self: &Arc<Self>, (task, freed): (Task, bool)) -> Next {
        if freed {
            self.room_freed();
        }
        Next::Run(task)
    }

    /// A worker took `task` and then saw the pool above its capacity: under
    /// the lock, if it still is, the worker puts the task back at the front
    /// of the queue and leaves; a worker within the capacity (an idle one
    /// woken here, a new one, or one that finishes its task) takes it.
    /// Otherwise the worker keeps the task.
    #[cold]
    fn leave_handing_back(self: &Arc<Self>, task: Task) -> Next {
        let mut state = self.lock_state();
        if !state.crew.is_over() {
            drop(state);
            // Its slot was freed by the pop, and the pop's room is ours to tell.
            return self.took((task, self.queue.is_bounded()));
        }
        if !self.queue.put_back(task) {
            // Cancelled meanwhile: it needs no place after all (in hand-off
            // mode its place in flight is free now too).
            self.queue.task_done();
            self.worker_leaves(&mut state);
            drop(state);
            self.room_freed();
            return Next::Exit;
        }
        self.worker_leaves(&mut state);
        self.dispatch_queued(state, 1);
        Next::Exit
    }

    /// Under the lock: leaves if the pool is above its capacity (a `tune`
    /// down settling). Returns whether the worker leaves.
    fn leave_if_over_capacity(self: &Arc<Self>) -> bool {
        let mut state = self.lock_state();
        if !state.crew.is_over() {
            return false;
        }
        self.worker_leaves(&mut state);
        true
    }

    /// Parks the worker on the idle list until it is sent an order, or
    /// leaves: above the capacity, or on a closed pool with nothing queued
    /// (on a closed pool it takes a queued task instead of parking).
    fn park(self: &Arc<Self>, parker: &Arc<Parker>) -> Next {
        // Read the clock before locking, to keep the critical section short;
        // `IdleWorkers::push` keeps the order if another push overtakes us.
        let now = Instant::now();
        let mut state = self.lock_state();
        if state.crew.is_over() {
            self.worker_leaves(&mut state);
            return Next::Exit;
        }
        if state.life.is_closed() {
            // Draining a closed pool: take what is queued, else leave, but
            // never park: `release` has sent its orders already. (A loom model
            // found a worker parked for ever when it saw a task queued, and
            // another worker took it as this one parked.) A push still in
            // flight is `release`'s to see (pair RELEASE).
            return match self.queue.pop() {
                Some(found) => {
                    drop(state);
                    self.took(found)
                }
                None => {
                    self.worker_leaves(&mut state);
                    Next::Exit
                }
            };
        }
        self.crew
            .went_idle(&mut state.crew, Arc::clone(parker), now);
        // Idle workers are room for blocked submitters.
        if !state.waiters.is_empty() {
            self.serve_deposits(&mut state);
        }
        self.maybe_idle(&mut state);
        self.look_after_going_idle(state, false);
        parker.park()
    }

    /// [PARK, worker half] workers are published as idle (one parking, or
    /// `min_workers` just started); now look at the queue for a task pushed
    /// by a submitter that saw them busy. Whoever is taken off the idle list
    /// for it (maybe the caller) looks again. With `every`, a worker is
    /// found for every queued task, else for one.
    pub(super) fn look_after_going_idle(self: &Arc<Self>, state: StateGuard<'_>, every: bool) {
        drop(state);
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() {
            let max = if every { self.queue.len() } else { 1 };
            self.dispatch_queued(self.lock_state(), max);
        }
    }

    /// Under the lock: a worker decided to leave. Its place under the
    /// capacity is free at once.
    fn worker_leaves(self: &Arc<Self>, state: &mut State) {
        self.crew.left(&mut state.crew, 1);
        self.serve_deposits(state);
        self.maybe_idle(state);
    }

    /// A worker's loop ended by a panic of the pool's own code: its place
    /// is given back. (User code never unwinds into the loop.)
    #[cold]
    pub(crate) fn worker_lost(self: &Arc<Self>) {
        let mut state = self.lock_state();
        self.worker_leaves(&mut state);
        super::log_quietly(|| {
            tracing::error!("workpool: a worker's loop panicked; its place is freed");
        });
    }
}

/// The message of a panic payload, as `std` prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}
