//! Tasks with handles: making a tracked task (`make_job`, shared with
//! `MultiPool` and `scope`), submitting it with its deadline armed, and the
//! machinery of `Pool::spawn`, `Pool::task` and the batches
//! (`spawn_with_token`, `submit_batch`, `new_task_token`).

use super::dispatch::Wait;
use super::state::Inner;
use super::task::Task;
use crate::cancel::CancelToken;
use crate::error::{PoolError, TaskError};
use crate::handle::{BatchHandle, TaskHandle};
use crate::job::{self, Deadline, Group, Job, OnComplete, OnEachComplete, Spec, Work};
use crate::sync::Arc;
use std::time::Duration;

impl Inner {
    /// A tracked task, ready to submit, with its handle.
    pub(crate) fn make_job<F, T>(
        self: &Arc<Self>,
        f: F,
        spec: Spec<T>,
    ) -> (Arc<dyn Job>, TaskHandle<T>)
    where
        F: Work<T>,
        T: Send + 'static,
    {
        let (job, outcome) = job::tracked(f, spec);
        (
            job,
            TaskHandle::new(outcome, Arc::clone(self) as job::SharedHost),
        )
    }

    /// The usual options of a tracked task of this pool.
    pub(crate) fn spec<T>(&self, deadline: Option<Deadline>) -> Spec<T> {
        Spec {
            deadline: deadline.or(self.config.task_deadline.map(Deadline::After)),
            ..Spec::default()
        }
    }

    /// A tracked task of `f`, which wants no token, with the pool's
    /// deadline (`spawn`, `spawn_async`), and that deadline to arm.
    pub(super) fn plain_job<F, T>(
        self: &Arc<Self>,
        f: F,
    ) -> (Arc<dyn Job>, TaskHandle<T>, Option<Deadline>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spec = self.spec(None);
        let deadline = spec.deadline;
        let (job, handle) = self.make_job(move |_: &CancelToken| f(), spec);
        (job, handle, deadline)
    }

    /// Submits a tracked task; once accepted, its deadline is armed.
    pub(crate) fn submit_job(
        self: &Arc<Self>,
        job: Arc<dyn Job>,
        deadline: Option<Deadline>,
        wait: Wait,
    ) -> Result<(), PoolError> {
        self.submit_job_keyed(job, deadline, None, wait)
    }

    /// [`submit_job`](Self::submit_job), in the lane of the key hashed to
    /// `key` if there is one.
    pub(crate) fn submit_job_keyed(
        self: &Arc<Self>,
        job: Arc<dyn Job>,
        deadline: Option<Deadline>,
        key: Option<u64>,
        wait: Wait,
    ) -> Result<(), PoolError> {
        let armed = deadline.map(|_| Arc::clone(&job));
        match key {
            None => self
                .submit(Task::tracked(job), wait)
                .map_err(|(error, _)| error)?,
            Some(hash) => {
                // Run only by its lane, in its key's turn.
                job::hold(job.stage());
                self.submit_keyed(hash, Task::tracked(job), wait)?;
            }
        }
        if let (Some(deadline), Some(job)) = (deadline, armed) {
            self.arm_deadline(deadline, &job);
        }
        Ok(())
    }

    /// A task was accepted: a deadline `After` counts from now (time
    /// spent blocked for room does not count).
    pub(crate) fn arm_deadline(self: &Arc<Self>, deadline: Deadline, job: &Arc<dyn Job>) {
        if let Some(at) = deadline.instant() {
            self.add_deadline(at, job);
        }
    }

    /// `Pool::spawn`: a tracked task without a token, blocking for room.
    pub(super) fn spawn<F, T>(self: &Arc<Self>, f: F) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle, deadline) = self.plain_job(f);
        self.submit_job(job, deadline, Wait::Block)?;
        Ok(handle)
    }

    /// `Pool::spawn_batch`: a batch without a token, callbacks or deadline.
    pub(super) fn spawn_batch<I, F, T>(
        self: &Arc<Self>,
        tasks: I,
    ) -> Result<BatchHandle<T>, PoolError>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_batch(
            tasks.into_iter().map(|f| move |_: &CancelToken| f()),
            None,
            None,
            None,
        )
    }

    /// `Pool::spawn_keyed`: `spawn` in the lane of the key hashed to `hash`.
    pub(super) fn spawn_keyed<F, T>(
        self: &Arc<Self>,
        hash: u64,
        f: F,
    ) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle, deadline) = self.plain_job(f);
        self.submit_job_keyed(job, deadline, Some(hash), Wait::Block)?;
        Ok(handle)
    }

    /// `Pool::spawn_after`: `spawn`, held by the maintenance thread until
    /// `delay` has passed.
    pub(super) fn spawn_after<F, T>(
        self: &Arc<Self>,
        delay: Duration,
        f: F,
    ) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle, deadline) = self.plain_job(f);
        self.hold_job(job, deadline, None, delay)?;
        Ok(handle)
    }

    /// Files a tracked task to be submitted once `delay` has passed (an
    /// instant too far to write down is a century: the task waits for a
    /// cancel or `release`).
    fn hold_job(
        self: &Arc<Self>,
        job: Arc<dyn Job>,
        deadline: Option<Deadline>,
        key: Option<u64>,
        delay: Duration,
    ) -> Result<(), PoolError> {
        // Not started by a helping join before it is due.
        job::hold(job.stage());
        let at = job::due_at(delay);
        self.add_delayed(at, super::maintenance::Delayed::new(job, deadline, key))
            .map(|_| ())
    }

    /// `TaskBuilder::spawn`: a tracked task with a token of its own (a
    /// child of the pool's root and of `parents`), in the lane of `key`'s
    /// hash if there is one.
    pub(crate) fn spawn_with_token<F, T>(
        self: &Arc<Self>,
        f: F,
        deadline: Option<Deadline>,
        on_complete: Option<OnComplete<T>>,
        parents: &[CancelToken],
        key: Option<u64>,
        delay: Option<Duration>,
    ) -> Result<TaskHandle<T>, PoolError>
    where
        F: Work<T>,
        T: Send + 'static,
    {
        let spec = Spec {
            token: Some(self.new_task_token(parents)),
            on_complete,
            ..self.spec(deadline)
        };
        let at = spec.deadline;
        let (job, handle) = self.make_job(f, spec);
        match delay {
            Some(delay) => self.hold_job(job, at, key, delay)?,
            None => self.submit_job_keyed(job, at, key, Wait::Block)?,
        }
        Ok(handle)
    }

    /// Submits a batch: one group, and, if `token`, a child of it for each
    /// task (cancelled with the batch and by `release`).
    pub(crate) fn submit_batch<I, F, T>(
        self: &Arc<Self>,
        tasks: I,
        token: Option<CancelToken>,
        deadline: Option<Deadline>,
        on_complete: Option<OnEachComplete<T>>,
    ) -> Result<BatchHandle<T>, PoolError>
    where
        I: IntoIterator<Item = F>,
        F: Work<T>,
        T: Send + 'static,
    {
        let tasks: Vec<F> = tasks.into_iter().collect();
        let group = Arc::new(Group::new(tasks.len()));
        let mut handles = Vec::with_capacity(tasks.len());
        for (index, f) in tasks.into_iter().enumerate() {
            let on_complete = on_complete.as_ref().map(|callback| {
                let callback = Arc::clone(callback);
                Box::new(move |result: &Result<T, TaskError>| callback(index, result))
                    as OnComplete<T>
            });
            let spec = Spec {
                group: Some(Arc::clone(&group)),
                // A child each, so that one task's deadline stops that task
                // alone; cancelling the batch's token stops them all.
                token: token.as_ref().map(CancelToken::child),
                on_complete,
                ..self.spec(deadline)
            };
            let at = spec.deadline;
            let (job, handle) = self.make_job(f, spec);
            if let Err(error) = self.submit_job(job, at, Wait::Block) {
                if let Some(token) = &token {
                    token.cancel();
                }
                for handle in &handles {
                    let _ = TaskHandle::cancel(handle);
                }
                return Err(error);
            }
            handles.push(handle);
        }
        Ok(BatchHandle::new(handles, group, token))
    }

    /// A fresh token for tasks of this pool: a child of the pool's root
    /// (cancelled by `release`) and of `parents`.
    pub(crate) fn new_task_token(&self, parents: &[CancelToken]) -> CancelToken {
        let root = job::lock(&self.root).clone();
        let mut all = vec![&root];
        all.extend(parents);
        CancelToken::with_parents(all)
    }
}
