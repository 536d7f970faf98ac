//! Changing the pool as a whole: `tune`, `release`, `release_timeout`,
//! `drain_timeout` and `reboot`; and waiting for it as a whole, open:
//! `wait_idle`, with `maybe_idle`, where workers tell its callers.

use super::crew::UNBOUNDED;
use super::state::{Inner, State};
use super::worker::{self, Next};
use crate::error::PoolError;
use crate::sync::{Arc, Condvar};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `wait_idle`'s callers, and where they wait for an idle moment.
pub(super) struct IdleWatch {
    /// Callers waiting; a worker that parks or leaves looks for an idle
    /// moment only if one waits.
    callers: AtomicUsize,
    /// They wait here, under the pool's lock.
    became_idle: Condvar,
}

/// Moments the pool was seen idle while a `wait_idle` caller waited, under
/// the pool's lock: each one releases every caller waiting then.
#[derive(Debug, Default)]
pub(super) struct IdleMoments(u64);

impl IdleWatch {
    pub(super) fn new() -> IdleWatch {
        IdleWatch {
            callers: AtomicUsize::new(0),
            became_idle: Condvar::new(),
        }
    }

    fn watched(&self) -> bool {
        self.callers.load(Ordering::SeqCst) != 0
    }

    /// Under the lock: the pool is idle; every caller waiting is released.
    fn seen_idle(&self, moments: &mut IdleMoments) {
        moments.0 += 1;
        self.became_idle.notify_all();
    }
}

/// Writes a log line, catching a panic of the subscriber. The line is
/// written once the pool is consistent again (no worker left without its
/// order), and a panic is not let out: `release` runs in `Pool::drop`,
/// where a second panic while unwinding would abort the process.
pub(crate) fn log_quietly(line: impl FnOnce()) {
    crate::job::quietly(line);
}

impl Inner {
    pub(super) fn tune(self: &Arc<Self>, capacity: usize) -> Result<(), PoolError> {
        if capacity == 0 {
            return Err(PoolError::InvalidCapacity);
        }
        if capacity > crate::PoolBuilder::MAX_CAPACITY {
            // `usize::MAX` would read as unbounded inside.
            return Err(PoolError::CapacityTooLarge {
                capacity,
                max: crate::PoolBuilder::MAX_CAPACITY,
            });
        }
        // The user's capacity holds until `resume_autoscale`. (An unbounded
        // pool, which `set_capacity` refuses, has no autoscaler to pause.)
        self.pause_autoscale();
        self.set_capacity(capacity)
    }

    /// Changes the capacity (checked already): `tune`, and the autoscaler.
    pub(super) fn set_capacity(self: &Arc<Self>, capacity: usize) -> Result<(), PoolError> {
        let mut state = self.lock_state();
        if state.crew.capacity() == UNBOUNDED {
            return Err(PoolError::Unbounded);
        }
        let grew = capacity > state.crew.capacity();
        // Idle workers above the new capacity end now, oldest first, so the
        // capacity holds for the next tasks too. Busy and spinning ones end as
        // soon as they look for a next task (`Inner::next_task`), so once the
        // tasks running now have ended, at most `capacity` run at once.
        let retired = self.crew.retuned(&mut state.crew, capacity);
        // New room goes to blocked submitters first, oldest first, then to
        // queued tasks, at once.
        if grew {
            self.serve_deposits(&mut state);
        }
        for worker in retired {
            worker.send(Next::Exit);
        }
        if grew {
            let queued = self.queue.len();
            self.dispatch_queued(state, queued);
        } else {
            drop(state);
        }
        log_quietly(|| tracing::debug!(pool = %self.name, capacity, "workpool: tuned"));
        Ok(())
    }

    /// Closes the pool, cancelling every task token of this life; returns
    /// false if it was closed already.
    pub(super) fn release(self: &Arc<Self>) -> bool {
        self.close(true)
    }

    /// Closes the pool: new tasks are refused, accepted ones drain, the
    /// workers then exit. With `cancel`, every task token of this life is
    /// cancelled too (`release`); without, they are left alone and every
    /// accepted task runs as it would have (`drain_timeout`). Returns false
    /// if the pool was closed already.
    fn close(self: &Arc<Self>, cancel: bool) -> bool {
        let mut state = self.lock_state();
        if !self.admission.close(&mut state.life, &self.queue) {
            return false;
        }
        // Layered shutdown: every task token of this life is cancelled:
        // running tasks see it, and those not yet started never will. The
        // token of this life is taken under the lock (a `reboot` puts a new
        // one) and cancelled once it is released: cancelling wakes the
        // token's waiters, user code that must not run under the lock.
        let root = cancel.then(|| crate::job::lock(&self.root).clone());
        if cancel {
            self.maintenance.clear();
        }
        // Blocked submitters get their task back with `Closed`; async ones
        // are woken to see it (once the lock is released: `StateGuard`).
        self.serve_deposits(&mut state);
        self.wake_async_waiters(&mut state);
        self.maintenance.wake();
        drop(state);
        if let Some(root) = root {
            root.cancel();
        }
        self.stop_monitors();
        // After the pool is closed: a delayed task filed from now on is
        // refused (`add_delayed`).
        self.cancel_delayed();
        // [RELEASE, release half] `closed` is published in `admission`; wait
        // out the lock-free pushes that saw the pool open. Their tasks were
        // accepted, so the drain below must see them.
        self.queue.wait_drained();
        let mut state = self.lock_state();
        if !state.life.is_closed() {
            // Rebooted meanwhile: the idle workers serve the new life.
            return true;
        }
        // Idle workers drain what is queued, then exit; with nothing queued
        // they exit now. Busy and spinning ones do the same when they look
        // for a next task. No task is queued from here on, so the queue only
        // shrinks.
        let drain = !self.queue.is_empty();
        let idle = self.crew.dismiss_idle(&mut state.crew, !drain);
        let order = || if drain { Next::Look } else { Next::Exit };
        // With no worker left to drain the queue, one is started.
        self.dispatch_queued(state, 1);
        for worker in idle {
            worker.send(order());
        }
        log_quietly(|| tracing::debug!(pool = %self.name, "workpool: released"));
        true
    }

    pub(super) fn release_timeout(self: &Arc<Self>, timeout: Duration) -> Result<(), PoolError> {
        if worker::is_worker_of(self) {
            // Waiting for every thread would wait for this one too.
            self.release();
            return Err(PoolError::WouldDeadlock);
        }
        if !self.release() {
            return Err(PoolError::Closed);
        }
        self.wait_for_threads(timeout)
    }

    pub(super) fn drain_timeout(self: &Arc<Self>, timeout: Duration) -> Result<(), PoolError> {
        if worker::is_worker_of(self) {
            // Waiting for every thread would wait for this one too.
            self.close(false);
            return Err(PoolError::WouldDeadlock);
        }
        if !self.close(false) {
            return Err(PoolError::Closed);
        }
        // The workers drain the queue and exit; once every thread is gone,
        // every accepted task has run.
        self.wait_for_threads(timeout)?;
        // Nothing of this life is left to see its token; cancelled all the
        // same, as `release` does (a token a caller kept says so).
        let root = crate::job::lock(&self.root).clone();
        root.cancel();
        Ok(())
    }

    pub(super) fn reboot(self: &Arc<Self>) -> Result<(), PoolError> {
        let epoch = {
            let mut state = self.lock_state();
            let Some(epoch) = self.admission.reopen(&mut state.life, &self.queue) else {
                return Ok(());
            };
            *crate::job::lock(&self.root) = crate::cancel::CancelToken::new();
            *crate::job::lock(&self.stats.since) = std::time::Instant::now();
            state.maintenance.new_life();
            epoch
        };
        self.start_background(epoch).map_err(|e| {
            // Closed again, so that the pool is never open without its purge
            // thread and its `min_workers`; a later `reboot` may try again.
            self.release();
            PoolError::SpawnFailed(std::sync::Arc::new(e))
        })?;
        log_quietly(|| tracing::debug!(pool = %self.name, epoch, "workpool: rebooted"));
        Ok(())
    }

    /// Starts the maintenance thread of `epoch` (unless purge is off and no
    /// deadline is pending) and the missing `min_workers`.
    pub(super) fn start_background(self: &Arc<Self>, epoch: u64) -> std::io::Result<()> {
        if !self.config.disable_purge || self.autoscale_due().is_some() {
            self.start_maintenance(epoch)?;
        }
        self.start_idle_workers(epoch)
    }

    /// Under the lock: `wait_idle` callers learn that the pool is idle (no
    /// task running or queued), which releases each of them, even if a task
    /// comes before it wakes (see `wait_idle`).
    pub(super) fn maybe_idle(&self, state: &mut State) {
        if self.idle_watch.watched() && state.crew.all_idle() && self.queue.is_empty() {
            self.idle_watch.seen_idle(&mut state.idle_moments);
        }
    }

    /// `Pool::wait_idle`: waits for an idle moment since the call.
    pub(super) fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        if worker::is_worker_of(self) {
            return Err(PoolError::WouldDeadlock);
        }
        let until = Instant::now().checked_add(timeout);
        let mut state = self.lock_state();
        // Counted under the lock, where workers read it (`maybe_idle`): an
        // idle moment after this point is seen, either here or by a worker
        // that counts it.
        let since = state.idle_moments.0;
        self.idle_watch.callers.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            // Idle now, or idle at some moment since the call (join
            // generations, as threadpool's `join`): a task submitted after
            // that moment, by this caller or another, is not waited for, so
            // steady work cannot starve a waiter.
            if state.idle_moments.0 != since || (state.crew.all_idle() && self.queue.is_empty()) {
                break Ok(());
            }
            let now = Instant::now();
            // Workers report when they park; a short nap bounds what a task
            // still on its way between queue and worker could hide.
            let mut nap = Duration::from_millis(5);
            if let Some(until) = until {
                if now >= until {
                    break Err(PoolError::Timeout);
                }
                nap = nap.min(until - now);
            }
            state = state.wait_timeout(&self.idle_watch.became_idle, nap);
        };
        self.idle_watch.callers.fetch_sub(1, Ordering::SeqCst);
        drop(state);
        result
    }
}
