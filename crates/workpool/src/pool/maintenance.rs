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

use super::state::{Inner, StateGuard};
use crate::job::{Job, TimerKey, Why};
use crate::sync::{Arc, Condvar};
use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Instant;

/// The maintenance thread's timers and wake-up.
pub(super) struct Maintenance {
    /// Deadlines of tracked tasks.
    timers: std::sync::Mutex<Timers>,
    /// The thread sleeps here, under the pool's lock, between rounds; a
    /// release and an earlier deadline wake it.
    wakeup: Condvar,
}

/// Whether the maintenance thread of this life runs; under the pool's lock.
#[derive(Debug, Default)]
pub(super) struct MaintenanceState {
    running: bool,
}

impl Maintenance {
    pub(super) fn new() -> Maintenance {
        Maintenance {
            timers: std::sync::Mutex::new(Timers::default()),
            wakeup: Condvar::new(),
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
        crate::job::lock(&self.timers)
            .next()
            .map(|word| crate::job::deadline_instant(word) + DEADLINE_TICK)
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
            let state = self.lock_state();
            if !state.maintenance.is_running() && !state.life.is_closed() {
                let epoch = state.life.epoch();
                drop(state);
                // Only with `disable_purge`: otherwise it runs already.
                let _ = self.start_maintenance(epoch);
            } else {
                // Under the lock, so that the thread, which computes its sleep
                // under it, cannot miss this earlier deadline.
                self.maintenance.wake();
            }
        }
    }

    pub(super) fn maintenance_loop(self: &Arc<Self>, epoch: u64) {
        let expiry = self.config.expiry;
        let purge = !self.config.disable_purge;
        let mut next_purge = Instant::now() + expiry;
        let mut state = self.lock_state();
        loop {
            // Checked under the lock before every wait: a release that came
            // while we worked must not be slept through.
            if state.life.is_over(epoch) {
                break;
            }
            let deadline = self.maintenance.next_wake();
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
            if purge && now >= next_purge {
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
