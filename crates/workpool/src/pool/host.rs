//! What the task layer reports to the pool: [`Host`] for [`Inner`]. Each
//! event goes to the part of `Inner` whose state it changes, in one line,
//! so `job.rs` never sees the pool, and a handle (`handle.rs`) holds its
//! pool only as a host (`job::SharedHost`).

use super::state::Inner;
use crate::job::{Host, Job, Payload, TimerKey, Why};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Host for Inner {
    fn panicked_unjoined(&self, payload: Payload) {
        self.task_panicked(payload);
    }

    fn panic_counted(&self) {
        self.count_panic();
    }

    fn ghost_made(&self) {
        // The slot is free from now on, though the ghost stays in the queue
        // until popped; the caller then tells waiters (`Host::room_freed`).
        self.queue.ghost_made();
    }

    fn cancelled(&self, why: Why) {
        self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        if why == Why::Deadline {
            self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn completed_aside(&self) {
        self.stats.completed_aside();
    }

    fn timer_done(&self, key: TimerKey) {
        self.maintenance.forget(key);
    }

    fn room_freed(&self) {
        Inner::room_freed(self);
    }

    fn retry_after(&self, job: Arc<dyn Job>, delay: Duration) {
        self.hold_retry(job, delay);
    }
}
