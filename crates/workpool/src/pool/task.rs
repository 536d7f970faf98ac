//! What travels from a submitter to a worker.

use crate::job::{self, Host, Job};
use crate::raw::small::SmallFn;
use std::fmt;
use std::sync::Arc;

/// A task as the pool stores it: a plain closure of a few words in place
/// (no allocation, `raw/small.rs`), else one allocation.
///
/// Everything the pool does with a task goes through this type (queue it,
/// hand it over, run it, give it back when refused).
pub(crate) struct Task {
    kind: Kind,
    /// When it was submitted, if it is one of the tasks that are timed
    /// (`Recorder::sample` in `stats.rs`), else 0.
    pub(crate) stamp: u64,
}

enum Kind {
    /// A closure from `submit`: nobody waits for it. Kept as what it was,
    /// so that a refused task returns to its caller (`try_submit`).
    Plain(SmallFn),
    /// A task with a handle (`spawn`, `task`, batches, scopes): its result,
    /// cancellation and waiters live in a [`job::Cell`].
    Tracked(Arc<dyn Job>),
}

impl Task {
    pub(crate) fn new<F>(f: F) -> Task
    where
        F: FnOnce() + Send + 'static,
    {
        Task {
            kind: Kind::Plain(SmallFn::new(f)),
            stamp: 0,
        }
    }

    /// A task with a handle.
    pub(crate) fn tracked(job: Arc<dyn Job>) -> Task {
        Task {
            kind: Kind::Tracked(job),
            stamp: 0,
        }
    }

    /// The closure a plain task was made from, given back.
    pub(crate) fn into_closure<F: 'static>(self) -> Option<F> {
        match self.kind {
            Kind::Plain(f) => f.downcast::<F>().ok(),
            Kind::Tracked(_) => None,
        }
    }

    /// Runs a plain task on the calling thread; a panic propagates (the
    /// worker catches it: `Inner::run_task`). A tracked task catches its
    /// own and tells its handle. Returns whether the task ran to its end
    /// (false for a tracked task that panicked or was cancelled). `host`
    /// hears what the task reports ([`Host`]); a plain task reports nothing.
    pub(crate) fn run(self, host: &dyn Host) -> bool {
        match self.kind {
            Kind::Plain(f) => {
                f.call();
                true
            }
            Kind::Tracked(job) => job.run(host),
        }
    }

    /// Marks a tracked task as in the queue. False if it was cancelled
    /// already: it needs no place.
    pub(crate) fn enter_queue(&self) -> bool {
        match &self.kind {
            Kind::Plain(_) => true,
            Kind::Tracked(job) => job::enter_queue(job.stage()),
        }
    }

    /// The task left the queue (popped, or a push that failed). False if it
    /// became a ghost meanwhile: cancelled, it must not run.
    pub(crate) fn leave_queue(&self) -> bool {
        match &self.kind {
            Kind::Plain(_) => true,
            Kind::Tracked(job) => job::leave_queue(job.stage()),
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Plain(_) => f.pad("Task::Plain { .. }"),
            Kind::Tracked(_) => f.pad("Task::Tracked { .. }"),
        }
    }
}
