//! The maintenance thread: every `expiry` it ends the workers idle for at
//! least `expiry`, oldest first, keeping `min_workers` (ants'
//! `purgeStaleWorkers`), and in between it fires the deadlines of tracked
//! tasks. One thread a pool, not one per deadline; with `disable_purge` it
//! starts with the first deadline.

use super::state::Inner;
use crate::job::{Cancel, Job, TimerKey, Why};
use crate::sync::Arc;
use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Instant;

/// How late a deadline may fire, so that deadlines close together fire
/// together (see `maintenance_loop`).
const DEADLINE_TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// Deadlines not yet fired, earliest first. A task's entry leaves when the
/// deadline fires or when the task ends (`forget_deadline`), whichever
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
    /// Fires `job`'s deadline at `at`, unless the task ends first.
    pub(crate) fn add_deadline(self: &Arc<Self>, at: Instant, job: &Arc<dyn Job>) {
        let mut earliest = false;
        let weak = Arc::downgrade(job);
        // Under the task's lock, so that its end, which takes the key back
        // under the same lock, cannot come between filing and keeping it.
        job.arm_deadline(at, &mut |deadline| {
            let mut timers = crate::job::lock(&self.timers);
            earliest = timers.next().map_or(true, |next| deadline < next);
            timers.seq += 1;
            let seq = timers.seq;
            timers.entries.insert((deadline, seq), weak.clone());
            seq
        });
        if earliest {
            let state = self.lock_state();
            if !state.maintenance && !state.closed {
                let epoch = state.epoch;
                drop(state);
                // Only with `disable_purge`: otherwise it runs already.
                let _ = self.start_maintenance(epoch);
            } else {
                // Under the lock, so that the thread, which computes its sleep
                // under it, cannot miss this earlier deadline.
                self.purge_wakeup.notify_all();
            }
        }
    }

    /// A task with a deadline ended: its timer goes.
    pub(crate) fn forget_deadline(&self, key: TimerKey) {
        crate::job::lock(&self.timers).entries.remove(&key);
    }

    pub(super) fn maintenance_loop(self: &Arc<Self>, epoch: u64) {
        let expiry = self.config.expiry;
        let purge = !self.config.disable_purge;
        let mut next_purge = Instant::now() + expiry;
        let mut state = self.lock_state();
        loop {
            // Checked under the lock before every wait: a release that came
            // while we worked must not be slept through.
            if state.closed || state.epoch != epoch {
                break;
            }
            // Woken a tick after the earliest deadline, so that deadlines a
            // few microseconds apart (tasks spawned together) fire in one
            // round, their not-started tasks stopped before any token is
            // cancelled; a deadline fires late by a tick at most, never early.
            let deadline = crate::job::lock(&self.timers)
                .next()
                .map(|word| crate::job::deadline_instant(word) + DEADLINE_TICK);
            let until = match (purge, deadline) {
                (true, Some(d)) => Some(d.min(next_purge)),
                (true, None) => Some(next_purge),
                (false, d) => d,
            };
            let now = Instant::now();
            match until {
                None => state = state.wait(&self.purge_wakeup),
                Some(until) if until > now => {
                    state = state.wait_timeout(&self.purge_wakeup, until - now);
                }
                Some(_) => {}
            }
            if state.closed || state.epoch != epoch {
                break;
            }
            drop(state);
            let now = Instant::now();
            self.fire_deadlines(now);
            if purge && now >= next_purge {
                self.expire_idle(self.lock_state(), now);
                self.join_finished();
                next_purge = now + expiry;
            }
            state = self.lock_state();
        }
        if state.epoch == epoch {
            state.maintenance = false;
        }
    }

    /// Starts the maintenance thread of `epoch`, counted as a thread of the
    /// pool.
    pub(super) fn start_maintenance(self: &Arc<Self>, epoch: u64) -> std::io::Result<()> {
        {
            let mut state = self.lock_state();
            if state.maintenance || state.epoch != epoch || state.closed {
                return Ok(());
            }
            state.maintenance = true;
            state.threads += 1;
        }
        let inner = Arc::clone(self);
        let name = format!("{}-purge", self.config.thread_name);
        if let Err(e) = self.spawn_thread(name, move || inner.maintenance_loop(epoch)) {
            let mut state = self.lock_state();
            state.maintenance = false;
            self.thread_gone(&mut state);
            return Err(e);
        }
        Ok(())
    }

    /// Cancels the tasks whose deadline is past `now`.
    fn fire_deadlines(self: &Arc<Self>, now: Instant) {
        let now = crate::job::deadline_nanos(now);
        let due: Vec<Weak<dyn Job>> = {
            let mut timers = crate::job::lock(&self.timers);
            let mut due = Vec::new();
            while let Some(entry) = timers.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            due
        };
        let due: Vec<Arc<dyn Job>> = due
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
            .filter(|job| !self.stop_before_start(&***job, Why::Deadline))
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

    /// Cancels a tracked task: its token (a running task sees it), and the
    /// task itself if it has not started (it never runs). A task cancelled
    /// in the queue frees its slot at once.
    /// Returns whether the task was stopped before it started.
    pub(crate) fn cancel_job(self: &Arc<Self>, job: &dyn Job, why: Why) -> bool {
        // Not started: stopped here, before its token says so (a worker
        // that saw the token first would stop it too, but this call could
        // not tell).
        let stopped = self.stop_before_start(job, why);
        if let Some(token) = job.token() {
            token.cancel();
        }
        stopped
    }

    /// Cancels a tracked task that has not started, leaving its token
    /// alone; returns whether it had not started.
    pub(crate) fn stop_before_start(self: &Arc<Self>, job: &dyn Job, why: Why) -> bool {
        match job.cancel_before_start(why, &**self) {
            Cancel::Ghost => {
                self.room_freed();
                true
            }
            Cancel::Cancelled => true,
            Cancel::TooLate => false,
        }
    }

    /// `release`: drops every pending timer, since the maintenance thread
    /// stops. A task the release lets run still keeps its deadline: it is
    /// checked where the task starts (`job::Cell::run`), and a task with a
    /// token is cancelled by the release itself.
    pub(super) fn clear_deadlines(&self) {
        crate::job::lock(&self.timers).entries.clear();
    }
}
