//! `Pool::scope`: tasks that borrow from the caller's stack, like
//! `std::thread::scope` and rayon's `scope`, run on the pool's workers;
//! and `Pool::parallel_execute`, built on a scope.

#![allow(unsafe_code)]

use crate::cancel::CancelToken;
use crate::error::TaskError;
use crate::handle::TaskHandle;
use crate::job::{self, Spec};
use crate::pool::task::Task;
use crate::pool::worker;
use crate::pool::{Pool, Wait};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Tasks that may borrow anything that outlives the scope: see
/// [`Pool::scope`].
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope Pool,
    tasks: Tasks,
    /// Invariant over `'scope` and `'env`, as `std::thread::Scope` is.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// `Pool::scope`: runs `f` with a scope, waits for its tasks, then raises
/// the first panic (of `f`, else of a task in spawn order).
pub(crate) fn scope<'env, F, R>(pool: &Pool, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let (result, mut panics) = scope_all(pool, f);
    let first = (!panics.is_empty()).then(|| panics.remove(0).1);
    for (_, payload) in panics {
        job::drop_quietly(payload);
    }
    match result {
        Err(payload) => {
            if let Some(first) = first {
                job::drop_quietly(first);
            }
            panic::resume_unwind(payload)
        }
        Ok(value) => {
            if let Some(payload) = first {
                panic::resume_unwind(payload);
            }
            value
        }
    }
}

/// [`scope`], giving back `f`'s outcome and every task's panic (by spawn
/// index) instead of raising them.
#[allow(clippy::type_complexity)]
fn scope_all<'env, F, R>(pool: &Pool, f: F) -> (Result<R, job::Payload>, Vec<(usize, job::Payload)>)
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        pool,
        tasks: Tasks {
            list: Mutex::new(Vec::new()),
            finished: AtomicBool::new(false),
        },
        scope: PhantomData,
        env: PhantomData,
    };
    // `finish_all` does not unwind; were it to, this guard waits.
    let _guard = WaitForAll(&scope.tasks);
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    let panics = scope.tasks.finish_all();
    (result, panics)
}

/// `Pool::parallel_execute`: each closure a task of one scope, its value
/// or its panic in the closure's slot.
pub(crate) fn parallel_execute<I, F, T>(pool: &Pool, fns: I) -> Vec<Result<T, TaskError>>
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
    let (_, panics) = scope_all(pool, |s| {
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
        // every task of the scope finished, on every path:
        // - the task is registered below before it is submitted, so an
        //   unwind out of `submit` cannot lose it, and a task never handed
        //   to the pool is found not started and run by `finish_all`;
        // - `finish_all` never unwinds: the user code it may reach (a task
        //   run here, whose panic its cell catches; a waker woken for room
        //   it frees; a panic payload's `Drop`) runs under `catch_unwind`,
        //   and a payload whose `Drop` panics is forgotten, not dropped;
        // - should it unwind all the same, the scope's own `Drop` waits.
        // A task is finished once its closure has been taken out of its
        // cell and run to the end, its panic caught (`job::Cell::run_claimed`);
        // a scope task has no token, deadline or release check, so it is
        // never dropped unrun. What outlives the scope (the cell, in a
        // queue or a worker's hands) holds no closure any more, only the
        // `()` result and its flags.
        let boxed: Box<dyn FnOnce() + Send + 'static> = unsafe {
            std::mem::transmute::<
                Box<dyn FnOnce() + Send + 'scope>,
                Box<dyn FnOnce() + Send + 'static>,
            >(boxed)
        };
        let (job, handle) = inner.make_job(move |_: &CancelToken| boxed(), Spec::default());
        let stealer = handle.stealer();
        job::lock(&self.tasks.list).push(Some(handle));
        // A task of this pool must not block on its own full pool. Its
        // refusal is no caller's error (the task runs here): a probe.
        let wait = if worker::is_worker_of(inner) {
            Wait::Probe
        } else {
            Wait::Block
        };
        if inner.submit(Task::tracked(job), wait).is_err() {
            stealer.run_refused();
        }
    }
}

/// The tasks of a scope, apart from its lifetimes, so that a guard can wait
/// for them.
struct Tasks {
    /// Every task spawned in the scope, in spawn order, registered before
    /// it is submitted; `None` once waited for.
    list: Mutex<Vec<Option<TaskHandle<()>>>>,
    /// Every task has been waited for (`finish_all` ran to its end).
    finished: AtomicBool,
}

impl Tasks {
    /// Runs the scope's tasks that have not started, waits for the rest,
    /// and returns every task's panic with its spawn index. Never unwinds.
    ///
    /// Tasks may spawn more tasks into the scope while it waits, so it goes
    /// round until a round finds no task left: only then has every task
    /// that could touch the borrowed data finished.
    fn finish_all(&self) -> Vec<(usize, job::Payload)> {
        let mut panics = Vec::new();
        let mut waited = 0;
        loop {
            let mut next = waited;
            loop {
                let found = job::lock(&self.list)
                    .get(next)
                    .and_then(|task| task.as_ref().map(TaskHandle::stealer));
                if let Some(stealer) = found {
                    job::quietly(|| stealer.run_here());
                } else if next >= job::lock(&self.list).len() {
                    break;
                }
                next += 1;
            }
            let spawned = job::lock(&self.list).len();
            if waited == spawned {
                self.finished.store(true, Ordering::SeqCst);
                return panics;
            }
            while waited < spawned {
                let handle = job::lock(&self.list)[waited].take();
                if let Some(handle) = handle {
                    // Waits for the task; the join itself runs no user code.
                    match panic::catch_unwind(AssertUnwindSafe(|| handle.join())) {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => match error.try_into_panic() {
                            Ok(payload) => panics.push((waited, payload)),
                            Err(other) => job::drop_quietly(Box::new(other)),
                        },
                        Err(payload) => job::drop_quietly(payload),
                    }
                }
                waited += 1;
            }
        }
    }
}

/// Waits for every task of a scope when dropped, unless that was done.
struct WaitForAll<'a>(&'a Tasks);

impl Drop for WaitForAll<'_> {
    fn drop(&mut self) {
        if !self.0.finished.load(Ordering::SeqCst) {
            for (_, payload) in self.0.finish_all() {
                job::drop_quietly(payload);
            }
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("tasks", &job::lock(&self.tasks.list).len())
            .finish()
    }
}
