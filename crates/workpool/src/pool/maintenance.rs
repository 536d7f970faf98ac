//! The maintenance thread: every `expiry` it ends the workers idle for at
//! least `expiry`, oldest first, keeping `min_workers` (ants'
//! `purgeStaleWorkers`), and in between it fires the deadlines of tracked
//! tasks. One thread a pool, not one per deadline; with `disable_purge` it
//! starts with the first deadline.
//!
//! [`Maintenance`] owns the timers and the condvar the thread sleeps on;
//! whether this life's thread runs is kept under the pool's lock
//! ([`MaintenanceState`]), beside the life it serves. The purge round
//! itself is in `purge.rs`.

use super::dispatch::Wait;
use super::state::{Inner, StateGuard};
use crate::cancel::CancelToken;
use crate::error::PoolError;
use crate::job::{Deadline, Job, TimerKey, Why};
use crate::sync::{Arc, Condvar};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Weak;
use std::time::{Duration, Instant};

/// The maintenance thread's timers and wake-up.
pub(super) struct Maintenance {
    /// Deadlines of tracked tasks.
    timers: std::sync::Mutex<Timers>,
    /// Tasks held until they are due (`spawn_after`, `TaskBuilder::delay`).
    delays: std::sync::Mutex<Delays>,
    /// Delayed tasks accepted and not submitted to the queue: held, or
    /// cancelled while held. Part of `Stats::submitted`, as the queue's
    /// tasks are.
    held: std::sync::atomic::AtomicU64,
    /// The thread sleeps here, under the pool's lock, between rounds; a
    /// release and an earlier deadline wake it.
    wakeup: Condvar,
    /// The autoscaler, if the pool has one (`scale.rs`).
    pub(super) scaler: std::sync::Mutex<Option<super::scale::Scaler>>,
}

/// Whether the maintenance thread of this life runs; under the pool's lock.
#[derive(Debug, Default)]
pub(super) struct MaintenanceState {
    running: bool,
}

impl Maintenance {
    pub(super) fn new(scaler: Option<super::scale::Scaler>) -> Maintenance {
        Maintenance {
            timers: std::sync::Mutex::new(Timers::default()),
            delays: std::sync::Mutex::new(Delays::default()),
            held: std::sync::atomic::AtomicU64::new(0),
            wakeup: Condvar::new(),
            scaler: std::sync::Mutex::new(scaler),
        }
    }

    /// Files `job`'s timer for the deadline word `deadline`; returns its key's
    /// sequence number and whether it is now the earliest.
    fn file(&self, deadline: u64, job: Weak<dyn Job>) -> (u64, bool) {
        let mut timers = crate::job::lock(&self.timers);
        let earliest = timers.next().is_none_or(|next| deadline < next);
        timers.seq += 1;
        let seq = timers.seq;
        timers.entries.insert((deadline, seq), job);
        (seq, earliest)
    }

    /// Delayed tasks accepted and not (yet) submitted to the queue.
    pub(super) fn held(&self) -> u64 {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A task with a deadline ended: its timer goes.
    pub(super) fn forget(&self, key: TimerKey) {
        crate::job::lock(&self.timers).entries.remove(&key);
    }

    /// `release`: every pending timer goes, since the thread stops.
    pub(super) fn clear(&self) {
        crate::job::lock(&self.timers).entries.clear();
    }

    /// When the thread is to wake for the earliest deadline: a tick after
    /// it, so that deadlines a few microseconds apart (tasks spawned
    /// together) fire in one round, their not-started tasks stopped before
    /// any token is cancelled; a deadline fires late by a tick at most,
    /// never early.
    fn next_wake(&self) -> Option<Instant> {
        let deadline = crate::job::lock(&self.timers)
            .next()
            .map(|word| crate::job::deadline_instant(word) + DEADLINE_TICK);
        let delay = crate::job::lock(&self.delays).next_wake();
        match (deadline, delay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the timers due at `now` (a deadline word), earliest first.
    fn take_due(&self, now: u64) -> Vec<Weak<dyn Job>> {
        let mut timers = crate::job::lock(&self.timers);
        let mut due = Vec::new();
        while let Some(entry) = timers.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// Wakes the thread (under the pool's lock, so that it cannot miss it
    /// while it computes its sleep).
    pub(super) fn wake(&self) {
        self.wakeup.notify_all();
    }

    /// Sleeps until `until` (for ever with `None`), or until woken.
    fn sleep<'a>(&self, state: StateGuard<'a>, until: Option<Instant>) -> StateGuard<'a> {
        let now = Instant::now();
        match until {
            None => state.wait(&self.wakeup),
            Some(until) if until > now => state.wait_timeout(&self.wakeup, until - now),
            Some(_) => state,
        }
    }
}

impl MaintenanceState {
    /// The thread is to start: false if it runs already.
    fn claim(&mut self) -> bool {
        !std::mem::replace(&mut self.running, true)
    }

    /// The thread ended, or never started.
    fn ended(&mut self) {
        self.running = false;
    }

    /// `reboot`: the thread of the last life may not have seen the release
    /// yet and still be marked as running; it leaves on its own once it
    /// wakes (its epoch is past) and leaves this flag alone, so the new
    /// life starts its own.
    pub(super) fn new_life(&mut self) {
        self.running = false;
    }

    fn is_running(&self) -> bool {
        self.running
    }
}

/// Tasks held until they are due, earliest first, and those due that the
/// pool had no room for yet (tried again every [`DUE_RETRY`]).
#[derive(Default)]
struct Delays {
    entries: BTreeMap<(Instant, u64), Delayed>,
    seq: u64,
    due: VecDeque<Delayed>,
}

/// A task held until it is due.
pub(super) struct Delayed {
    job: Arc<dyn Job>,
    /// Armed once the pool takes the task: it counts from when it is due.
    deadline: Option<Deadline>,
    /// The hash of its key, if keyed.
    key: Option<u64>,
    /// Its number in the list, which keeps it apart from others due at the
    /// same instant.
    seq: u64,
    /// A retried task waiting between attempts: the id of the waker on
    /// its token that ends its wait once the token is cancelled.
    waker: Option<u64>,
}

impl Delayed {
    pub(super) fn new(job: Arc<dyn Job>, deadline: Option<Deadline>, key: Option<u64>) -> Self {
        Delayed {
            job,
            deadline,
            key,
            seq: 0,
            waker: None,
        }
    }

    /// It left the list: its waker, if any, is not needed any more.
    fn forget_waker(&self) {
        if let (Some(id), Some(token)) = (self.waker, self.job.token()) {
            token.forget_waker(id);
        }
    }
}

/// Ends a retried task's wait when its token is cancelled: registered on
/// the token (and its parents) while the task is held, so that a cancel
/// (the handle's, a deadline's, `release`'s) reaches the task at once
/// rather than when its wait would have been over.
struct RetryHook {
    pool: Weak<Inner>,
    /// Where the task is filed: `(due, seq)`.
    at: (Instant, u64),
}

impl std::task::Wake for RetryHook {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(pool) = self.pool.upgrade() {
            pool.retry_cancelled(self.at);
        }
    }
}

impl Delays {
    /// The task filed at `at`, waiting or due.
    fn find(&mut self, at: (Instant, u64)) -> Option<&mut Delayed> {
        if self.entries.contains_key(&at) {
            return self.entries.get_mut(&at);
        }
        self.due.iter_mut().find(|delayed| delayed.seq == at.1)
    }

    /// Takes the task filed at `at` out of the list, waiting or due.
    fn take(&mut self, at: (Instant, u64)) -> Option<Delayed> {
        if let Some(delayed) = self.entries.remove(&at) {
            return Some(delayed);
        }
        let index = self.due.iter().position(|delayed| delayed.seq == at.1)?;
        self.due.remove(index)
    }

    fn next_wake(&self) -> Option<Instant> {
        if !self.due.is_empty() {
            return Some(Instant::now() + DUE_RETRY);
        }
        self.entries.first_key_value().map(|(&(at, _), _)| at)
    }
}

/// How often a due task that found the pool full is tried again: a full
/// pool keeps no list of waiters the maintenance thread could join without
/// blocking, so it polls, and only while such tasks wait.
const DUE_RETRY: Duration = Duration::from_millis(1);

/// How late a deadline may fire, so that deadlines close together fire
/// together (see `maintenance_loop`).
const DEADLINE_TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// Deadlines not yet fired, earliest first. A task's entry leaves when the
/// deadline fires or when the task ends (`Maintenance::forget`), whichever
/// comes first: an entry outlives its task by nothing, so a far deadline
/// on many short tasks holds no memory (its `Weak` would keep each task's
/// allocation, closure and result inline, until the deadline was due).
#[derive(Default)]
pub(crate) struct Timers {
    entries: BTreeMap<TimerKey, Weak<dyn Job>>,
    seq: u64,
}

impl Timers {
    /// The earliest deadline, as a deadline word.
    fn next(&self) -> Option<u64> {
        self.entries.first_key_value().map(|(&(at, _), _)| at)
    }
}

impl Inner {
    /// Holds `delayed` until `at`, then submits it: the maintenance thread
    /// keeps it meanwhile (no worker, no thread of its own). Returns where
    /// it is filed.
    pub(super) fn add_delayed(
        &self,
        at: Instant,
        mut delayed: Delayed,
    ) -> Result<(Instant, u64), PoolError> {
        let (earliest, seq) = {
            let mut delays = crate::job::lock(&self.maintenance.delays);
            // Under the delays' lock, which `release` takes after closing
            // the pool to cancel them all: either this sees the pool closed,
            // or `release` sees this task.
            if self.is_closed() {
                return Err(PoolError::Closed);
            }
            let earliest = delays
                .entries
                .first_key_value()
                .is_none_or(|(&(first, _), _)| at < first);
            delays.seq += 1;
            delayed.seq = delays.seq;
            delays.entries.insert((at, delayed.seq), delayed);
            self.maintenance
                .held
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (earliest, delays.seq)
        };
        if earliest {
            if let Some(me) = self.me.upgrade() {
                me.maintenance_needed();
            }
        }
        Ok((at, seq))
    }

    /// A retried task's attempt failed on a worker: it waits `delay`, held
    /// like a delayed task, for its next attempt. Its token's cancel ends
    /// the wait at once (`RetryHook`); a closed pool ends it now.
    pub(super) fn hold_retry(&self, job: Arc<dyn Job>, delay: Duration) {
        // The worker counted it as taken; it counts it again when it runs
        // the next attempt.
        self.stats.left_to_retry();
        let at = crate::job::due_at(delay);
        let token = job.token().cloned();
        let Ok(at) = self.add_delayed(at, Delayed::new(Arc::clone(&job), None, None)) else {
            // Closed: no next attempt; the last result stands.
            let _ = self.end_retry(&*job);
            return;
        };
        let Some(token) = token else {
            return;
        };
        let hook = RetryHook {
            pool: self.me.clone(),
            at,
        };
        let id = token.on_cancel(std::task::Waker::from(Arc::new(hook)));
        // Kept with the task, for whoever takes it from the list; if it has
        // left already, that one did not see the waker: forgotten here.
        let kept = {
            let mut delays = crate::job::lock(&self.maintenance.delays);
            match delays.find(at) {
                Some(delayed) => {
                    delayed.waker = Some(id);
                    true
                }
                None => false,
            }
        };
        if !kept {
            token.forget_waker(id);
        }
        // A cancel before the waker was there woke nobody.
        if token.is_cancelled() {
            self.retry_cancelled(at);
        }
    }

    /// The token of the retried task filed at `at` was cancelled: if the
    /// task still waits in the list, its wait ends here, with its last
    /// result. (If it has left, it is on its way to a worker, which sees
    /// the token and ends it there.)
    fn retry_cancelled(&self, at: (Instant, u64)) {
        let taken = crate::job::lock(&self.maintenance.delays).take(at);
        if let Some(delayed) = taken {
            self.end_held_retry(delayed);
        }
    }

    /// Ends the wait of a retried task taken from the list, unless a
    /// helping join has taken the task meanwhile (then it stays counted
    /// as held, as a task that left the list ended).
    fn end_held_retry(&self, delayed: Delayed) {
        delayed.forget_waker();
        if self.end_retry(&*delayed.job) {
            self.maintenance
                .held
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Ends a retried task's wait, off a worker, with its last result;
    /// false if it was not waiting any more.
    fn end_retry(&self, job: &dyn Job) -> bool {
        let ended = job.give_up_waiting(self);
        if ended {
            self.stats.ran_aside(true);
        }
        ended
    }

    /// An earlier timer was filed: the maintenance thread starts (with
    /// `disable_purge`, it may not run yet) or recomputes its sleep.
    fn maintenance_needed(self: &Arc<Self>) {
        let state = self.lock_state();
        if !state.maintenance.is_running() && !state.life.is_closed() {
            let epoch = state.life.epoch();
            drop(state);
            let _ = self.start_maintenance(epoch);
        } else {
            // Under the lock, so that the thread, which computes its sleep
            // under it, cannot miss this earlier timer.
            self.maintenance.wake();
        }
    }

    /// Submits the delayed tasks due at `now`, in order, as far as the pool
    /// has room; the rest wait for the next round.
    fn release_delayed(self: &Arc<Self>, now: Instant) {
        let mut delays = crate::job::lock(&self.maintenance.delays);
        while let Some(entry) = delays.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let delayed = entry.remove();
            delays.due.push_back(delayed);
        }
        let due = std::mem::take(&mut delays.due);
        drop(delays);
        let mut due = due.into_iter();
        while let Some(delayed) = due.next() {
            // Cancelled while it waited: its handle knows already.
            if delayed.job.has_ended() {
                delayed.forget_waker();
                continue;
            }
            // A retried task cancelled while it waited for room: its wait
            // ends here.
            if delayed.waker.is_some() && delayed.job.token().is_some_and(CancelToken::is_cancelled)
            {
                self.end_held_retry(delayed);
                continue;
            }
            // Due: from the queue on, a task like any (a keyed one stays
            // held by its lane: `submit_job_keyed` holds it again).
            crate::job::unhold(delayed.job.stage());
            // Its deadline, if any, armed once taken: it counts from now.
            let submitted = self.submit_job_keyed(
                Arc::clone(&delayed.job),
                delayed.deadline,
                delayed.key,
                Wait::Probe,
            );
            match submitted {
                Ok(()) => {
                    // The queue (or the key's lane) counts it from now on.
                    self.maintenance
                        .held
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    delayed.forget_waker();
                }
                Err(PoolError::Overloaded) => {
                    // Kept in order, before any that came due since.
                    let mut delays = crate::job::lock(&self.maintenance.delays);
                    let later = std::mem::take(&mut delays.due);
                    delays.due.push_back(delayed);
                    delays.due.extend(due);
                    delays.due.extend(later);
                    return;
                }
                // Refused for good (the pool closed meanwhile): a delayed
                // task never runs; a retried one ends with its last result.
                Err(_) => self.drop_held(delayed),
            }
        }
    }

    /// A held task that will not be submitted: a delayed task is cancelled
    /// (it stays counted as held, and as cancelled); a retried task waiting
    /// for its next attempt has started, and its last result stands.
    fn drop_held(&self, delayed: Delayed) {
        if crate::job::is_waiting(delayed.job.stage()) {
            self.end_held_retry(delayed);
        } else {
            crate::job::stop_before_start(&*delayed.job, Why::Cancelled, self);
        }
    }

    /// `release` and `drain_timeout`: the delayed tasks never run; their
    /// handles say `Cancelled`. Retried tasks waiting for their next
    /// attempt end with their last result.
    pub(super) fn cancel_delayed(&self) {
        let cancelled: Vec<Delayed> = {
            let mut delays = crate::job::lock(&self.maintenance.delays);
            let mut all: Vec<Delayed> = std::mem::take(&mut delays.entries).into_values().collect();
            all.extend(std::mem::take(&mut delays.due));
            all
        };
        for delayed in cancelled {
            self.drop_held(delayed);
        }
    }

    /// Fires `job`'s deadline at `at`, unless the task ends first.
    pub(crate) fn add_deadline(self: &Arc<Self>, at: Instant, job: &Arc<dyn Job>) {
        let mut earliest = false;
        let weak = Arc::downgrade(job);
        // Under the task's lock, so that its end, which takes the key back
        // under the same lock, cannot come between filing and keeping it.
        job.arm_deadline(at, &mut |deadline| {
            let (seq, first) = self.maintenance.file(deadline, weak.clone());
            earliest = first;
            seq
        });
        if earliest {
            self.maintenance_needed();
        }
    }

    pub(super) fn maintenance_loop(self: &Arc<Self>, epoch: u64) {
        let expiry = self.config.expiry;
        let purge = !self.config.disable_purge;
        let mut next_purge = Instant::now() + expiry;
        // Read with the pool's lock not held: the autoscaler applies its
        // capacity holding the scaler's lock and then taking the pool's,
        // and a maintenance thread of a past life may still be doing so.
        let mut next_scale = self.autoscale_due();
        let mut state = self.lock_state();
        loop {
            // Checked under the lock before every wait: a release that came
            // while we worked must not be slept through.
            if state.life.is_over(epoch) {
                break;
            }
            let deadline = match (self.maintenance.next_wake(), next_scale) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let until = match (purge, deadline) {
                (true, Some(d)) => Some(d.min(next_purge)),
                (true, None) => Some(next_purge),
                (false, d) => d,
            };
            state = self.maintenance.sleep(state, until);
            if state.life.is_over(epoch) {
                break;
            }
            drop(state);
            let now = Instant::now();
            self.fire_deadlines(now);
            self.release_delayed(now);
            self.autoscale_round(now);
            next_scale = self.autoscale_due();
            if purge && now >= next_purge {
                // Delayed tasks cancelled while they wait leave now, not
                // when they would have been due: a far delay on many
                // cancelled tasks holds no memory for long.
                crate::job::lock(&self.maintenance.delays)
                    .entries
                    .retain(|_, delayed| !delayed.job.has_ended());
                self.expire_idle(self.lock_state(), now);
                self.join_finished();
                next_purge = now + expiry;
            }
            state = self.lock_state();
        }
        if state.life.epoch() == epoch {
            state.maintenance.ended();
        }
    }

    /// Starts the maintenance thread of `epoch`, counted as a thread of the
    /// pool.
    pub(super) fn start_maintenance(self: &Arc<Self>, epoch: u64) -> std::io::Result<()> {
        {
            let mut state = self.lock_state();
            if state.life.is_over(epoch) || !state.maintenance.claim() {
                return Ok(());
            }
            self.threads.counted(&mut state.threads, 1);
        }
        let inner = Arc::clone(self);
        let name = format!("{}-purge", self.config.thread_name);
        if let Err(e) = self.spawn_thread(name, move || inner.maintenance_loop(epoch)) {
            let mut state = self.lock_state();
            state.maintenance.ended();
            self.thread_gone(&mut state);
            return Err(e);
        }
        Ok(())
    }

    /// Cancels the tasks whose deadline is past `now`.
    fn fire_deadlines(self: &Arc<Self>, now: Instant) {
        let now = crate::job::deadline_nanos(now);
        let due: Vec<Arc<dyn Job>> = self
            .maintenance
            .take_due(now)
            .iter()
            .filter_map(Weak::upgrade)
            // A task that has ended (its handle keeps it alive) is left
            // alone: its token may be shared with tasks whose deadline is
            // later.
            .filter(|job| !job.has_ended())
            .collect();
        // Every task not started is stopped before any token is cancelled:
        // a running task that sees its token would end, and its worker
        // would start a queued task whose deadline is this same instant.
        // A stopped task counts as timed out where it is stopped
        // (`job::Cell::cancelled`); a running one here.
        let running: Vec<&Arc<dyn Job>> = due
            .iter()
            .filter(|job| !crate::job::stop_before_start(&***job, Why::Deadline, &**self))
            .collect();
        for job in running {
            if job.has_ended() {
                continue;
            }
            self.stats
                .timed_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(token) = job.token() {
                token.cancel();
            }
        }
    }
}
