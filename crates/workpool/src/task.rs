//! What travels from a submitter to a worker.

use std::fmt;

/// A task as the pool stores it: one allocation, the boxed closure.
///
/// Everything the pool does with a task goes through this type (queue it,
/// hand it over, run it, give it back when refused), so what a task carries
/// beside its closure (a result slot, a waker, a cancel token, the moment it
/// was submitted) is added here without touching the dispatch path.
pub(crate) struct Task {
    job: Box<dyn FnOnce() + Send + 'static>,
}

impl Task {
    pub(crate) fn new<F>(f: F) -> Task
    where
        F: FnOnce() + Send + 'static,
    {
        Task { job: Box::new(f) }
    }

    /// Runs the task on the calling thread. A panic propagates: the worker
    /// catches it (`Inner::run_task`).
    pub(crate) fn run(self) {
        (self.job)();
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Task { .. }")
    }
}
