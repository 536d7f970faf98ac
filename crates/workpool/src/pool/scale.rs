//! Autoscale's side in the pool: every interval the maintenance thread
//! takes the pool's figures, hands the window's to the policy
//! (`crate::autoscale`) and applies the capacity it answers through the
//! same code as `tune` (`Inner::set_capacity`). A manual `tune` pauses it
//! until `resume_autoscale`.
//!
//! Lock order: the scaler's lock, then the pool's (`set_capacity`). The
//! pool's lock is never held while the scaler's is taken: the maintenance
//! loop reads the next look's time before it locks the pool.

use super::state::Inner;
use crate::autoscale::{Autoscale, Controller, Sample};
use crate::stats::Stats;
use crate::sync::Arc;
use std::time::Instant;

/// An autoscaled pool's policy and what it saw last.
pub(super) struct Scaler {
    autoscale: Autoscale,
    controller: Controller,
    /// Paused by a manual `tune`, until `resume_autoscale`.
    paused: bool,
    /// When the next look is due.
    next_at: Instant,
    /// The figures at the start of the current window, and when.
    last: Option<(Instant, Stats)>,
}

impl Scaler {
    pub(super) fn new(autoscale: Autoscale, capacity: usize) -> Scaler {
        Scaler {
            autoscale,
            controller: autoscale.controller(capacity),
            paused: false,
            next_at: Instant::now() + autoscale.interval_of(),
            last: None,
        }
    }
}

impl Inner {
    /// When the maintenance thread is next to look, if the pool autoscales.
    pub(super) fn autoscale_due(&self) -> Option<Instant> {
        let scaler = crate::job::lock(&self.maintenance.scaler);
        scaler.as_ref().map(|scaler| scaler.next_at)
    }

    /// A look, if one is due at `now`: the window's figures to the policy,
    /// its capacity applied. The scaler stays locked while the capacity is
    /// applied, so that a manual `tune`, which pauses the scaler first,
    /// always has the last word.
    pub(super) fn autoscale_round(self: &Arc<Self>, now: Instant) {
        let mut guard = crate::job::lock(&self.maintenance.scaler);
        let Some(scaler) = guard.as_mut() else {
            return;
        };
        if now < scaler.next_at {
            return;
        }
        scaler.next_at = now + scaler.autoscale.interval_of();
        // Paused, it takes no figures: `resume_autoscale` starts a fresh
        // window.
        if scaler.paused {
            return;
        }
        let stats = self.snapshot();
        let Some((then, earlier)) = scaler.last.replace((now, stats.clone())) else {
            return;
        };
        let Some(capacity) = stats.capacity else {
            return;
        };
        let window = stats.since(&earlier);
        let sample = Sample {
            completed: window.completed,
            elapsed: now.saturating_duration_since(then),
            run_time: (window.run_time.count > 0).then_some(window.run_time.mean),
            saturated: stats.queued > 0 || stats.waiting > 0,
            busy: stats.busy,
        };
        let decision = scaler.controller.next(capacity, &sample);
        if decision.capacity == capacity {
            return;
        }
        // In bounds (the policy clamps), on a bounded pool (checked at build):
        // `set_capacity` cannot refuse it.
        if self.set_capacity(decision.capacity).is_ok() {
            super::lifecycle::log_quietly(|| {
                tracing::info!(
                    pool = %self.name,
                    policy = scaler.autoscale.name(),
                    from = capacity,
                    to = decision.capacity,
                    why = decision.why,
                    completed_per_s = sample.completed as f64 / sample.elapsed.as_secs_f64().max(1e-9),
                    run_time_us = sample.run_time.map(|t| t.as_micros() as u64),
                    saturated = sample.saturated,
                    busy = sample.busy,
                    "workpool: autoscale changed the capacity"
                )
            });
        }
    }

    /// `Pool::tune`: the user's capacity holds until `resume_autoscale`.
    pub(super) fn pause_autoscale(&self) {
        if let Some(scaler) = crate::job::lock(&self.maintenance.scaler).as_mut() {
            scaler.paused = true;
        }
    }

    /// `Pool::resume_autoscale`: the policy takes over again from the
    /// capacity in force, with a fresh window. False if the pool does not
    /// autoscale.
    pub(super) fn resume_autoscale(&self) -> bool {
        let mut guard = crate::job::lock(&self.maintenance.scaler);
        let Some(scaler) = guard.as_mut() else {
            return false;
        };
        let capacity = self.crew.capacity();
        scaler.paused = false;
        scaler.controller = scaler.autoscale.controller(capacity);
        scaler.last = None;
        true
    }

    /// Whether the pool autoscales now (set, and not paused).
    pub(super) fn is_autoscaling(&self) -> bool {
        crate::job::lock(&self.maintenance.scaler)
            .as_ref()
            .is_some_and(|scaler| !scaler.paused)
    }
}
