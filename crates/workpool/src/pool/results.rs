//! Tasks with results, and the ways of submitting beyond `submit`: handles,
//! batches, `try_submit`, `submit_timeout`, async submits and `wait_idle`.

use super::dispatch::Wait;
use super::state::{Inner, State};
use super::task::Task;
use super::worker;
use super::Pool;
use crate::cancel::CancelToken;
use crate::error::{PoolError, TaskError, TrySubmitError};
use crate::handle::{BatchHandle, TaskHandle};
use crate::job::{self, Cell, Group, Job, OnComplete, OnEachComplete, Outcome, Spec};
use crate::spawn::{BatchBuilder, TaskBuilder};
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

impl Inner {
    /// A tracked task, ready to submit, with its handle.
    pub(crate) fn make_job<F, T>(
        self: &Arc<Self>,
        f: F,
        spec: Spec<T>,
    ) -> (Arc<dyn Job>, TaskHandle<T>)
    where
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let cell = Cell::new(f, spec);
        let job: Arc<dyn Job> = cell.clone();
        let outcome: Arc<dyn Outcome<T>> = cell;
        (job, TaskHandle::new(outcome, Arc::clone(self)))
    }

    /// The usual options of a tracked task of this pool.
    pub(crate) fn spec<T>(&self, deadline: Option<Duration>) -> Spec<T> {
        Spec {
            deadline: deadline.or(self.config.task_deadline),
            ..Spec::default()
        }
    }

    /// Submits a tracked task; once accepted, its deadline is armed.
    pub(crate) fn submit_job(
        self: &Arc<Self>,
        job: Arc<dyn Job>,
        deadline: Option<Duration>,
        wait: Wait,
    ) -> Result<(), PoolError> {
        let armed = deadline.map(|_| Arc::clone(&job));
        self.submit(Task::tracked(job), wait)
            .map_err(|(error, _)| error)?;
        if let (Some(deadline), Some(job)) = (deadline, armed) {
            self.arm_deadline(deadline, &job);
        }
        Ok(())
    }

    /// A task was accepted: its deadline counts from now (time spent
    /// blocked for room does not count).
    pub(crate) fn arm_deadline(self: &Arc<Self>, deadline: Duration, job: &Arc<dyn Job>) {
        if let Some(at) = Instant::now().checked_add(deadline) {
            self.add_deadline(at, job);
        }
    }

    /// Wakes every async submitter waiting for room; each tries again.
    pub(super) fn wake_async_waiters(&self, state: &mut State) {
        if state.async_waiters.is_empty() {
            return;
        }
        // Woken once the lock is released (`StateGuard`).
        let waiters = std::mem::take(&mut state.async_waiters);
        state
            .wakes
            .extend(waiters.into_iter().map(|(_, waker)| waker));
        self.sync_waiting_gauge(state);
    }

    /// Under the lock: `wait_idle` callers learn that the pool is idle (no
    /// task running or queued), which releases each of them, even if a task
    /// comes before it wakes (see `wait_idle`).
    pub(super) fn maybe_idle(&self, state: &mut State) {
        if self.idle_waiters.load(std::sync::atomic::Ordering::SeqCst) != 0
            && state.idle.len() == state.workers
            && self.queue.is_empty()
        {
            state.idle_moments += 1;
            self.became_idle.notify_all();
        }
    }

    fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        if worker::is_worker_of(self) {
            return Err(PoolError::WouldDeadlock);
        }
        let until = Instant::now().checked_add(timeout);
        let mut state = self.lock_state();
        // Counted under the lock, where workers read it (`maybe_idle`): an
        // idle moment after this point is seen, either here or by a worker
        // that counts it.
        let since = state.idle_moments;
        self.idle_waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let result = loop {
            // Idle now, or idle at some moment since the call (join
            // generations, as threadpool's `join`): a task submitted after
            // that moment, by this caller or another, is not waited for, so
            // steady work cannot starve a waiter.
            if state.idle_moments != since
                || (state.idle.len() == state.workers && self.queue.is_empty())
            {
                break Ok(());
            }
            let now = Instant::now();
            // Workers report when they park; a short nap bounds what a task
            // still on its way between queue and worker could hide.
            let mut nap = Duration::from_millis(5);
            if let Some(until) = until {
                if now >= until {
                    break Err(PoolError::Timeout);
                }
                nap = nap.min(until - now);
            }
            state = state.wait_timeout(&self.became_idle, nap);
        };
        self.idle_waiters
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        drop(state);
        result
    }
}

impl Pool {
    /// Runs `f` on a worker and returns a handle to its result.
    ///
    /// Blocks, fails or starts a worker exactly as [`submit`](Self::submit)
    /// does. The task is cancelled if the handle's
    /// [`cancel`](TaskHandle::cancel) or its deadline (see
    /// [`task_deadline`](crate::PoolBuilder::task_deadline)) comes before it
    /// starts. It has no [`CancelToken`], so, like a submitted task, it runs
    /// even if it is still queued when the pool is released; for a closure
    /// that wants its token (and is cancelled by `release`), use
    /// [`task`](Self::task).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit):
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let handles: Vec<_> = (0..8u64)
    ///     .map(|n| pool.spawn(move || n * 2))
    ///     .collect::<Result<_, _>>()?;
    /// let doubled: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(doubled, [0, 2, 4, 6, 8, 10, 12, 14]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spec = self.inner.spec(None);
        let deadline = spec.deadline;
        let (job, handle) = self.inner.make_job(move |_: &CancelToken| f(), spec);
        self.inner.submit_job(job, deadline, Wait::Block)?;
        Ok(handle)
    }

    /// A task whose closure gets its [`CancelToken`], with a deadline, a
    /// completion callback or retries: see [`TaskBuilder`].
    ///
    /// The closure is `FnMut`, so that [`retry`](TaskBuilder::retry) can run
    /// it again (Rust fixes a closure's kind where it is written). A closure
    /// that must move out of what it captures either goes to
    /// [`spawn`](Self::spawn), or keeps the value in an `Option` and
    /// `take`s it.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(2)?;
    /// let handle = pool.task(|token| !token.is_cancelled()).spawn()?;
    /// assert!(handle.join()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task<F, T>(&self, f: F) -> TaskBuilder<'_, F, T>
    where
        F: FnMut(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        TaskBuilder::new(self, f)
    }

    pub(crate) fn spawn_with_token<F, T>(
        &self,
        f: F,
        deadline: Option<Duration>,
        on_complete: Option<OnComplete<T>>,
        parents: &[CancelToken],
    ) -> Result<TaskHandle<T>, PoolError>
    where
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let spec = Spec {
            token: Some(self.new_task_token(parents)),
            on_complete,
            ..self.inner.spec(deadline)
        };
        let at = spec.deadline;
        let (job, handle) = self.inner.make_job(f, spec);
        self.inner.submit_job(job, at, Wait::Block)?;
        Ok(handle)
    }

    /// Submits every task of `tasks`, in order, and returns one handle to
    /// all their results. Each submit blocks for room as
    /// [`submit`](Self::submit) does; no thread coordinates the batch.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), for the first task refused:
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed). The tasks submitted before it are cancelled (those already
    /// running finish).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let words = ["a", "bb", "ccc"];
    /// let batch = pool.spawn_batch(words.map(|w| move || w.len()))?;
    /// let lengths: Vec<usize> = batch.join().into_iter().map(Result::unwrap).collect();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_batch<I, F, T>(&self, tasks: I) -> Result<BatchHandle<T>, PoolError>
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

    /// A batch whose closures get a [`CancelToken`] (one for the batch),
    /// with a callback per task and a deadline: see [`BatchBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = workpool::Pool::new(4)?;
    /// let failed = Arc::new(AtomicUsize::new(0));
    /// let seen = Arc::clone(&failed);
    /// let batch = pool
    ///     .batch((0..10u32).map(|n| move |_token: &workpool::CancelToken| {
    ///         if n % 5 == 4 { Err(n) } else { Ok(n) }
    ///     }))
    ///     .on_complete(move |_index, result| {
    ///         if !matches!(result, Ok(Ok(_))) {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .spawn()?;
    /// assert_eq!(batch.join().len(), 10);
    /// assert_eq!(failed.load(Ordering::Relaxed), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<I, F, T>(&self, tasks: I) -> BatchBuilder<'_, F, T>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce(&CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        BatchBuilder::new(self, tasks.into_iter().collect())
    }

    /// Submits a batch: one group, and, if `token`, a child of it for each
    /// task (cancelled with the batch and by `release`).
    pub(crate) fn submit_batch<I, F, T>(
        &self,
        tasks: I,
        token: Option<CancelToken>,
        deadline: Option<Duration>,
        on_complete: Option<OnEachComplete<T>>,
    ) -> Result<BatchHandle<T>, PoolError>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce(&CancelToken) -> T + Send + 'static,
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
                ..self.inner.spec(deadline)
            };
            let at = spec.deadline;
            let (job, handle) = self.inner.make_job(f, spec);
            if let Err(error) = self.inner.submit_job(job, at, Wait::Block) {
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
        let root = job::lock(&self.inner.root).clone();
        let mut all = vec![&root];
        all.extend(parents);
        CancelToken::with_parents(all)
    }

    /// Runs `task` if there is room now, never blocking; otherwise gives the
    /// closure back inside the error, to be tried again without cloning
    /// what it captured.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] when every worker is busy and the queue is
    /// full; [`TrySubmitError::Closed`] on a released pool;
    /// [`TrySubmitError::SpawnFailed`] if no thread could start for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use workpool::{Pool, TrySubmitError};
    ///
    /// let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?;
    /// let refused = pool.try_submit(|| println!("later")).unwrap_err();
    /// assert!(matches!(refused, TrySubmitError::Full(_)));
    /// tx.send(()).unwrap();
    /// let task = refused.into_inner();
    /// pool.submit(move || { task(); })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit<F>(&self, task: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner
            .submit(Task::new(task), Wait::No)
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

    /// [`submit`](Self::submit) that blocks for room for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if there was no room in time, and the errors
    /// of [`submit`](Self::submit):
    /// [`Closed`](PoolError::Closed), [`Overloaded`](PoolError::Overloaded),
    /// [`WouldDeadlock`](PoolError::WouldDeadlock) or
    /// [`SpawnFailed`](PoolError::SpawnFailed). A refused task is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use workpool::{Pool, PoolError};
    ///
    /// let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    /// let (tx, rx) = mpsc::channel::<()>();
    /// pool.submit(move || { rx.recv().ok(); })?;
    /// let late = pool.submit_timeout(|| (), Duration::from_millis(10));
    /// assert_eq!(late, Err(PoolError::Timeout));
    /// tx.send(()).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout<F>(&self, task: F, timeout: Duration) -> Result<(), PoolError>
    where
        F: FnOnce() + Send + 'static,
    {
        let wait = match Instant::now().checked_add(timeout) {
            Some(until) => Wait::Until(until),
            None => Wait::Block,
        };
        self.inner
            .submit(Task::new(task), wait)
            .map_err(|(error, _)| error)
    }

    /// Waits until the pool is idle (no task running, none queued), without
    /// closing it; on a released pool too. Every task accepted before the
    /// call has then finished.
    ///
    /// Each caller returns once the pool has been idle at least once since
    /// its call began, even if tasks were submitted after that moment (by
    /// it or by others) and run now: those are not waited for, so a caller
    /// cannot be starved by steady work, and every caller waiting when the
    /// pool goes idle is released together (threadpool's and rusty_pool's
    /// "join generations"). Tasks submitted while the pool has not yet been
    /// idle are waited for.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`] if tasks were still running or queued when
    /// `timeout` passed; [`PoolError::WouldDeadlock`] from a task of this
    /// pool (it would wait for itself). Never `Closed`: a released pool is
    /// waited for as an open one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let pool = workpool::Pool::new(2)?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let done = Arc::clone(&done);
    ///     pool.submit(move || { done.fetch_add(1, Ordering::SeqCst); })?;
    /// }
    /// pool.wait_idle(Duration::from_secs(10))?;
    /// assert_eq!(done.load(Ordering::SeqCst), 10);
    /// assert!(!pool.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self, timeout: Duration) -> Result<(), PoolError> {
        self.inner.wait_idle(timeout)
    }

    /// [`submit`](Self::submit) for async code: waits for room without
    /// blocking the executor's thread (the waiter is a `Waker`, removed if
    /// the future is dropped). Works on any executor.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] if the pool is released (also while the
    /// future waits); [`PoolError::Overloaded`] at once on a nonblocking
    /// pool (a blocking one waits for room however many callers wait);
    /// [`PoolError::SpawnFailed`] if a new worker thread could not be
    /// started. Never `WouldDeadlock`: the future waits without blocking a
    /// thread.
    ///
    /// # Examples
    ///
    /// ```
    /// # use futures_executor::block_on;
    /// let pool = workpool::Pool::new(2)?;
    /// block_on(async {
    ///     pool.submit_async(|| println!("hello")).await?;
    ///     let answer = pool.spawn_async(|| 42).await?.await?;
    ///     assert_eq!(answer, 42);
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async<F>(&self, task: F) -> SubmitAsync<'_>
    where
        F: FnOnce() + Send + 'static,
    {
        SubmitAsync::new(&self.inner, Task::new(task), None)
    }

    /// [`spawn`](Self::spawn) for async code: waits for room as
    /// [`submit_async`](Self::submit_async) does, then gives the task's
    /// handle.
    ///
    /// # Errors
    ///
    /// As [`submit_async`](Self::submit_async): [`PoolError::Closed`],
    /// [`PoolError::Overloaded`] or [`PoolError::SpawnFailed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_executor::block_on;
    /// let pool = workpool::Pool::new(2)?;
    /// let handle = block_on(pool.spawn_async(|| 6 * 7))?;
    /// assert_eq!(block_on(handle)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_async<F, T>(&self, task: F) -> SpawnAsync<'_, T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let spec = self.inner.spec(None);
        let deadline = spec.deadline;
        let (job, handle) = self.inner.make_job(move |_: &CancelToken| task(), spec);
        SpawnAsync {
            submit: SubmitAsync::new(
                &self.inner,
                Task::tracked(Arc::clone(&job)),
                deadline.map(|d| (d, job)),
            ),
            handle: Some(handle),
        }
    }

    /// Runs every closure of `fns` on the pool and returns their results in
    /// the order given, a panic as [`TaskError::Panicked`] (FastGo's
    /// `ParallelExecute`). The closures may borrow from the
    /// caller: it returns once all have run (see [`scope`](Self::scope)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let text = String::from("borrowed, not moved");
    /// let results = pool.parallel_execute(vec![
    ///     Box::new(|| text.len()) as Box<dyn FnOnce() -> usize + Send>,
    ///     Box::new(|| text.split(' ').count()),
    /// ]);
    /// assert_eq!(results[0].as_ref().unwrap(), &19);
    /// assert_eq!(results[1].as_ref().unwrap(), &3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parallel_execute<I, F, T>(&self, fns: I) -> Vec<Result<T, TaskError>>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let fns: Vec<F> = fns.into_iter().collect();
        let slots: Vec<std::sync::Mutex<Option<T>>> =
            fns.iter().map(|_| std::sync::Mutex::new(None)).collect();
        // A panic is not caught in the task: it ends the task as panicked,
        // which the pool counts as such (not as completed), and the scope
        // hands it back by spawn index, which is the closure's.
        let (_, panics) = self.scope_all(|s| {
            for (f, slot) in fns.into_iter().zip(&slots) {
                s.spawn(move || *job::lock(slot) = Some(f()));
            }
        });
        let mut panics = panics.into_iter().peekable();
        slots
            .into_iter()
            .enumerate()
            .map(
                |(index, slot)| match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                    Some(value) => Ok(value),
                    None => {
                        let (at, payload) = panics
                            .next_if(|(at, _)| *at == index)
                            .expect("a task of a scope that left no value panicked");
                        debug_assert_eq!(at, index);
                        Err(TaskError::panicked(payload))
                    }
                },
            )
            .collect()
    }
}

/// Numbers async waiters, so that each finds its own entry.
static NEXT_ASYNC: AtomicU64 = AtomicU64::new(0);

/// The future of [`Pool::submit_async`].
#[must_use = "futures do nothing unless polled"]
pub struct SubmitAsync<'a> {
    inner: &'a Arc<Inner>,
    task: Option<Task>,
    deadline: Option<(Duration, Arc<dyn Job>)>,
    id: u64,
    registered: bool,
}

impl<'a> SubmitAsync<'a> {
    fn new(inner: &'a Arc<Inner>, task: Task, deadline: Option<(Duration, Arc<dyn Job>)>) -> Self {
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
        let before = state.async_waiters.len();
        state.async_waiters.retain(|(id, _)| *id != self.id);
        let found = state.async_waiters.len() != before;
        self.inner.sync_waiting_gauge(&state);
        found
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
            if state.closed {
                drop(state);
                this.deregister();
                return Poll::Ready(Err(PoolError::Closed));
            }
            let waker: Waker = cx.waker().clone();
            match state
                .async_waiters
                .iter_mut()
                .find(|(id, _)| *id == this.id)
            {
                Some(entry) => entry.1 = waker,
                None => state.async_waiters.push_back((this.id, waker)),
            }
            this.registered = true;
            this.inner.sync_waiting_gauge(&state);
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

/// The future of [`Pool::spawn_async`].
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
