//! Idle expiry, one round of it; the maintenance thread (`maintenance.rs`) runs it
//! every `expiry`, ending the workers idle for at least `expiry`, oldest
//! first, keeping `min_workers` (ants' `purgeStaleWorkers`).

use super::state::{Inner, StateGuard};
use super::worker::Next;
use crate::sync::Arc;
use std::time::Instant;

impl Inner {
    /// One round of the purge at `now`. Also starts a worker for queued
    /// tasks that have none (a thread that could not start earlier).
    pub(super) fn expire_idle(self: &Arc<Self>, mut state: StateGuard<'_>, now: Instant) {
        let expired = match now.checked_sub(self.config.expiry) {
            Some(cutoff) => self
                .crew
                .expire(&mut state.crew, cutoff, self.config.min_workers),
            None => Vec::new(),
        };
        if !expired.is_empty() {
            self.stats
                .workers_expired
                .fetch_add(expired.len() as u64, std::sync::atomic::Ordering::Relaxed);
            // Their places are room for blocked submitters.
            self.serve_deposits(&mut state);
        }
        let orphaned = state.crew.is_empty();
        if orphaned {
            self.dispatch_queued(state, 1);
        } else {
            drop(state);
        }
        let count = expired.len();
        for worker in expired {
            worker.send(Next::Exit);
        }
        // Only once the expired workers have their orders: a panicking
        // subscriber must not leave them parked for ever.
        if count > 0 {
            super::lifecycle::log_quietly(|| {
                tracing::debug!(pool = %self.name, expired = count, "workpool: idle workers expired");
            });
        }
    }
}
