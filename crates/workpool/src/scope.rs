//! `Pool::scope`: tasks that borrow from the caller's stack, like
//! `std::thread::scope` and rayon's `scope`, run on the pool's workers.

#![allow(unsafe_code)]

use crate::cancel::CancelToken;
use crate::handle::TaskHandle;
use crate::job::{self, Spec};
use crate::pool::{Pool, Wait};
use crate::task::Task;
use crate::worker;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

/// Tasks that may borrow anything that outlives the scope: see
/// [`Pool::scope`].
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope Pool,
    tasks: Mutex<Vec<TaskHandle<()>>>,
    /// Invariant over `'scope` and `'env`, as `std::thread::Scope` is.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl Pool {
    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's
    /// stack; returns once every task spawned in it has finished.
    ///
    /// While it waits, the caller runs the scope's tasks that no worker has
    /// started yet, instead of sleeping, so a scope opened inside a task of
    /// a full pool still completes. A task the pool refuses (full and
    /// called from one of its tasks, or released) runs on the caller at
    /// once. If a task panics, the panic is raised again here once every
    /// task has finished (the first one, if several did); a panic of `f`
    /// itself likewise waits for the tasks first.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workpool::Pool::new(4)?;
    /// let words = vec!["alpha", "beta", "gamma"];
    /// let mut lengths = vec![0; words.len()];
    /// pool.scope(|s| {
    ///     for (word, length) in words.iter().zip(lengths.iter_mut()) {
    ///         s.spawn(move || *length = word.len());
    ///     }
    /// });
    /// assert_eq!(lengths, [5, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let scope = Scope {
            pool: self,
            tasks: Mutex::new(Vec::new()),
            scope: PhantomData,
            env: PhantomData,
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
        let panicked = scope.finish_all();
        match result {
            Err(payload) => panic::resume_unwind(payload),
            Ok(value) => {
                if let Some(payload) = panicked {
                    panic::resume_unwind(payload);
                }
                value
            }
        }
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Runs `f` on a worker of the pool (or, if the pool refuses it, on the
    /// caller at once). It may borrow anything that outlives the scope.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = workpool::Pool::new(2)?;
    /// let count = AtomicUsize::new(0);
    /// pool.scope(|s| {
    ///     for _ in 0..10 {
    ///         s.spawn(|| { count.fetch_add(1, Ordering::Relaxed); });
    ///     }
    /// });
    /// assert_eq!(count.into_inner(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F>(&'scope self, f: F)
    where
        F: FnOnce() + Send + 'scope,
    {
        let inner = &self.pool.inner;
        let boxed: Box<dyn FnOnce() + Send + 'scope> = Box::new(f);
        // SAFETY: the closure borrows only what outlives `'scope`, and
        // `Pool::scope` returns (or unwinds) only after `finish_all` has seen
        // every task of the scope finished. A task is finished once its
        // closure has been taken out of its cell and run to the end, its
        // panic caught (`job::Cell::run_claimed`); a scope task has no
        // token, deadline or release check, so it is never dropped unrun.
        // What outlives the scope (the cell, in a queue or a worker's hands)
        // holds no closure any more, only the `()` result and its flags.
        let boxed: Box<dyn FnOnce() + Send + 'static> = unsafe {
            std::mem::transmute::<
                Box<dyn FnOnce() + Send + 'scope>,
                Box<dyn FnOnce() + Send + 'static>,
            >(boxed)
        };
        let (job, handle) = inner.make_job(move |_: &CancelToken| boxed(), Spec::default());
        // A task of this pool must not block on its own full pool. Its
        // refusal is no caller's error (the task runs here): a probe.
        let wait = if worker::is_worker_of(inner) {
            Wait::Probe
        } else {
            Wait::Block
        };
        let refused = inner.submit(Task::tracked(job), wait).is_err();
        if refused {
            handle.run_refused();
        }
        job::lock(&self.tasks).push(handle);
    }

    /// Runs the scope's tasks that have not started, waits for the rest,
    /// and returns the first panic.
    ///
    /// Tasks may spawn more tasks into the scope while it waits, so it goes
    /// round until a round finds no task left: only then has every task
    /// that could touch the borrowed data finished.
    fn finish_all(&self) -> Option<job::Payload> {
        let mut first = None;
        loop {
            let mut next = 0;
            loop {
                let found = job::lock(&self.tasks).get(next).map(TaskHandle::stealer);
                let Some(stealer) = found else {
                    break;
                };
                stealer.run_here();
                next += 1;
            }
            let tasks = std::mem::take(&mut *job::lock(&self.tasks));
            if tasks.is_empty() {
                return first;
            }
            for handle in tasks {
                let finished = handle.wait_timeout(Duration::MAX);
                debug_assert!(finished);
                if let Err(error) = handle.join() {
                    if first.is_none() {
                        first = error.try_into_panic().ok();
                    }
                }
            }
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("tasks", &job::lock(&self.tasks).len())
            .finish()
    }
}
