//! The maintenance thread: every `expiry` it ends the workers idle for at
//! least `expiry`, oldest first, keeping `min_workers` (ants'
//! `purgeStaleWorkers`), and in between it fires the deadlines of tracked
//! tasks. One thread a pool, not one per deadline; with `disable_purge` it
//! starts with the first deadline.

use super::state::Inner;
use crate::job::{Cancel, Job, Why};
use crate::sync::{self, Arc};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Weak;
use std::time::Instant;

/// Deadlines not yet fired, earliest first.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

struct Entry {
    at: Instant,
    /// Keeps entries with the same instant apart, first come first.
    seq: u64,
    job: Weak<dyn Job>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Timers {
    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.at)
    }
}

impl Inner {
    /// Fires `job`'s deadline at `at`. The maintenance thread holds it
    /// weakly: a task that ended leaves nothing behind but its entry.
    pub(crate) fn add_deadline(self: &Arc<Self>, at: Instant, job: &Arc<dyn Job>) {
        let earliest = {
            let mut timers = crate::job::lock(&self.timers);
            let earliest = timers.next().map_or(true, |next| at < next);
            timers.seq += 1;
            let seq = timers.seq;
            timers.heap.push(Reverse(Entry {
                at,
                seq,
                job: Arc::downgrade(job),
            }));
            earliest
        };
        if earliest {
            let state = sync::lock(&self.state);
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

    pub(super) fn maintenance_loop(self: &Arc<Self>, epoch: u64) {
        let expiry = self.config.expiry;
        let purge = !self.config.disable_purge;
        let mut next_purge = Instant::now() + expiry;
        let mut state = sync::lock(&self.state);
        loop {
            // Checked under the lock before every wait: a release that came
            // while we worked must not be slept through.
            if state.closed || state.epoch != epoch {
                break;
            }
            let deadline = crate::job::lock(&self.timers).next();
            let until = match (purge, deadline) {
                (true, Some(d)) => Some(d.min(next_purge)),
                (true, None) => Some(next_purge),
                (false, d) => d,
            };
            let now = Instant::now();
            match until {
                None => state = sync::wait(&self.purge_wakeup, state),
                Some(until) if until > now => {
                    state = sync::wait_timeout(&self.purge_wakeup, state, until - now);
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
                self.expire_idle(sync::lock(&self.state), now);
                self.join_finished();
                next_purge = now + expiry;
            }
            state = sync::lock(&self.state);
        }
        if state.epoch == epoch {
            state.maintenance = false;
        }
    }

    /// Starts the maintenance thread of `epoch`, counted as a thread of the
    /// pool.
    pub(super) fn start_maintenance(self: &Arc<Self>, epoch: u64) -> std::io::Result<()> {
        {
            let mut state = sync::lock(&self.state);
            if state.maintenance || state.epoch != epoch || state.closed {
                return Ok(());
            }
            state.maintenance = true;
            state.threads += 1;
        }
        let inner = Arc::clone(self);
        let name = format!("{}-purge", self.config.thread_name);
        if let Err(e) = self.spawn_thread(name, move || inner.maintenance_loop(epoch)) {
            let mut state = sync::lock(&self.state);
            state.maintenance = false;
            self.thread_gone(&mut state);
            return Err(e);
        }
        Ok(())
    }

    /// Cancels the tasks whose deadline is past `now`.
    fn fire_deadlines(self: &Arc<Self>, now: Instant) {
        let due: Vec<Weak<dyn Job>> = {
            let mut timers = crate::job::lock(&self.timers);
            let mut due = Vec::new();
            while timers.next().is_some_and(|at| at <= now) {
                let Reverse(entry) = timers.heap.pop().expect("peeked");
                due.push(entry.job);
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
        for job in &due {
            self.stats
                .timed_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = self.stop_before_start(&**job, Why::Deadline);
        }
        for job in &due {
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
        match job.cancel_before_start(why, self) {
            Cancel::Ghost => {
                self.room_freed();
                true
            }
            Cancel::Cancelled => true,
            Cancel::TooLate => false,
        }
    }

    /// A queued task was taken out of turn (cancelled, or run by a caller):
    /// its slot is free from now on, though it stays in the queue until
    /// popped. The caller then tells waiters (`room_freed`).
    pub(crate) fn count_ghost(&self) {
        self.queue.ghost_made();
    }

    /// `release`: drops every pending deadline; the tasks they belong to
    /// are cancelled by the release itself.
    pub(super) fn clear_deadlines(&self) {
        crate::job::lock(&self.timers).heap.clear();
    }
}
