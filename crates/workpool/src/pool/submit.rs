//! Submitting beyond `submit`: `try_submit` (never blocks, gives the
//! closure back), `submit_timeout`, and the async submits with their
//! futures, [`SubmitAsync`] and [`SpawnAsync`], which wait for room as
//! `Waker`s on the pool's list of async waiters.

use super::dispatch::Wait;
use super::state::Inner;
use super::task::Task;
use crate::error::{PoolError, TrySubmitError};
use crate::handle::TaskHandle;
use crate::job::Job;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

impl Inner {
    /// `Pool::try_submit`: a probe that never blocks; a refused closure
    /// comes back inside the error.
    pub(super) fn try_submit<F>(self: &Arc<Self>, task: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit(Task::new(task), Wait::No)
            .map_err(|(error, task)| {
                let f = task
                    .into_closure::<F>()
                    .expect("a refused plain task gives back its own closure");
                match error {
                    PoolError::Closed => TrySubmitError::Closed(f),
                    PoolError::SpawnFailed(_) => TrySubmitError::SpawnFailed(f),
                    _ => TrySubmitError::Full(f),
                }
            })
    }

    /// `Pool::submit_timeout`: blocks for room until `timeout` has passed
    /// (forever, should the instant overflow).
    pub(super) fn submit_timeout<F>(
        self: &Arc<Self>,
        task: F,
        timeout: Duration,
    ) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        let wait = match Instant::now().checked_add(timeout) {
            Some(until) => Wait::Until(until),
            None => Wait::Block,
        };
        self.submit(Task::new(task), wait)
            .map_err(|(error, _)| error)
    }

    /// `Pool::spawn_async`: the tracked task is made now, and submitted
    /// (its deadline armed) when the future finds room.
    pub(super) fn spawn_async<F, T>(self: &Arc<Self>, task: F) -> SpawnAsync<'_, T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle, deadline) = self.plain_job(task);
        SpawnAsync::new(self, job, handle, deadline)
    }
}

/// Numbers async waiters, so that each finds its own entry.
static NEXT_ASYNC: AtomicU64 = AtomicU64::new(0);

/// The future of [`Pool::submit_async`](crate::Pool::submit_async).
#[must_use = "futures do nothing unless polled"]
pub struct SubmitAsync<'a> {
    inner: &'a Arc<Inner>,
    task: Option<Task>,
    deadline: Option<(crate::job::Deadline, Arc<dyn Job>)>,
    id: u64,
    registered: bool,
}

impl<'a> SubmitAsync<'a> {
    pub(crate) fn new(
        inner: &'a Arc<Inner>,
        task: Task,
        deadline: Option<(crate::job::Deadline, Arc<dyn Job>)>,
    ) -> Self {
        SubmitAsync {
            inner,
            task: Some(task),
            deadline,
            id: NEXT_ASYNC.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            registered: false,
        }
    }

    fn try_once(&mut self) -> Option<Result<(), PoolError>> {
        let task = self
            .task
            .take()
            .expect("a SubmitAsync polled after it completed");
        match self.inner.submit(task, Wait::Probe) {
            Ok(()) => {
                if let Some((deadline, job)) = self.deadline.take() {
                    self.inner.arm_deadline(deadline, &job);
                }
                Some(Ok(()))
            }
            Err((PoolError::Overloaded, task)) if !self.inner.config.nonblocking => {
                self.task = Some(task);
                None
            }
            Err((error, _)) => Some(Err(error)),
        }
    }

    fn deregister(&mut self) -> bool {
        if !self.registered {
            return true;
        }
        self.registered = false;
        let mut state = self.inner.lock_state();
        self.inner.waiting.async_leaves(&mut state.waiters, self.id)
    }
}

impl Future for SubmitAsync<'_> {
    type Output = Result<(), PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(done) = this.try_once() {
            this.deregister();
            return Poll::Ready(done);
        }
        {
            let mut state = this.inner.lock_state();
            if state.life.is_closed() {
                drop(state);
                this.deregister();
                return Poll::Ready(Err(PoolError::Closed));
            }
            let waker: Waker = cx.waker().clone();
            this.inner
                .waiting
                .async_waits(&mut state.waiters, this.id, waker);
            this.registered = true;
        }
        // [DEPOSIT, submitter half] we are counted in `waiting`; room freed
        // before a worker could see us is found by this second try.
        crate::sync::atomic::fence(Ordering::SeqCst);
        if let Some(done) = this.try_once() {
            this.deregister();
            return Poll::Ready(done);
        }
        Poll::Pending
    }
}

impl Drop for SubmitAsync<'_> {
    fn drop(&mut self) {
        if self.task.is_some() && self.registered && !self.deregister() {
            // Woken for room we will not use: pass the wake-up on.
            let mut state = self.inner.lock_state();
            self.inner.wake_async_waiters(&mut state);
        }
    }
}

impl fmt::Debug for SubmitAsync<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitAsync")
            .field("submitted", &self.task.is_none())
            .finish()
    }
}

impl<'a, T: Send + 'static> SpawnAsync<'a, T> {
    /// The future that submits `job` (whose handle is `handle`) once there
    /// is room, and then arms its deadline.
    pub(super) fn new(
        inner: &'a Arc<Inner>,
        job: Arc<dyn Job>,
        handle: TaskHandle<T>,
        deadline: Option<crate::job::Deadline>,
    ) -> Self {
        SpawnAsync {
            submit: SubmitAsync::new(
                inner,
                Task::tracked(Arc::clone(&job)),
                deadline.map(|d| (d, job)),
            ),
            handle: Some(handle),
        }
    }
}

/// The future of [`Pool::spawn_async`](crate::Pool::spawn_async).
#[must_use = "futures do nothing unless polled"]
pub struct SpawnAsync<'a, T: 'static> {
    submit: SubmitAsync<'a>,
    handle: Option<TaskHandle<T>>,
}

impl<T: Send + 'static> Future for SpawnAsync<'_, T> {
    type Output = Result<TaskHandle<T>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.submit).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(this
                .handle
                .take()
                .expect("a SpawnAsync polled after it completed"))),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }
}

impl<T: 'static> fmt::Debug for SpawnAsync<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnAsync")
            .field("submit", &self.submit)
            .finish()
    }
}
