//! `Batch`: handlers submitted to a pool and awaited as they end, given up
//! on at the deadline; and `HandlerError`, why one has no value. The ground
//! both `parallel.rs` (`parallel_execute`, `stream_execute`) and
//! `writer.rs` (`ConcurrentResponse::run`) stand on.
//!
//! Dependencies go one way: `parallel` -> `writer` -> `batch`, and
//! `parallel` -> `batch`; this module imports neither of the others.
//!
//! `Batch` submits each handler with [`Pool::spawn_async`] (which waits
//! for room without blocking the async runtime), then awaits the
//! [`TaskHandle`]s, which are futures woken by the worker that ends the
//! task: no thread waits for a result. At the deadline it cancels what has
//! not started, cancels the token that running handlers were given, and
//! reports them as late.

use crate::deadline::Deadline;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use workpool::{CancelToken, Pool, PoolError, TaskError, TaskHandle};

/// Why a handler has no value.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError<E> {
    /// The handler returned this error.
    Failed(E),
    /// The handler panicked, with this message. The pool counted the panic
    /// and its worker lives on.
    Panicked(String),
    /// The deadline passed before the handler ended: its token was
    /// cancelled, and if it had not started it never runs.
    DeadlineExceeded,
    /// The handler was cancelled before it started, by the pool (its
    /// `task_deadline`, or a release).
    Cancelled,
    /// The pool refused the handler (closed, or overloaded when
    /// nonblocking).
    Refused(PoolError),
}

impl<E: fmt::Display> fmt::Display for HandlerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Failed(error) => write!(f, "{error}"),
            HandlerError::Panicked(message) => write!(f, "panicked: {message}"),
            HandlerError::DeadlineExceeded => f.write_str("not finished by the deadline"),
            HandlerError::Cancelled => f.write_str("cancelled by the pool before it started"),
            HandlerError::Refused(error) => write!(f, "refused by the pool: {error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for HandlerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandlerError::Failed(error) => Some(error),
            HandlerError::Refused(error) => Some(error),
            _ => None,
        }
    }
}

impl<E> HandlerError<E> {
    pub(crate) fn from_task(error: TaskError) -> HandlerError<E> {
        if error.is_panic() {
            let message = error
                .panic_message()
                .unwrap_or("a panic whose payload is not a string");
            HandlerError::Panicked(message.to_owned())
        } else if error.is_deadline() {
            HandlerError::DeadlineExceeded
        } else {
            HandlerError::Cancelled
        }
    }

    /// The word that opens its line in a text answer.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            HandlerError::Failed(_) => "error",
            HandlerError::Panicked(_) => "panicked",
            HandlerError::DeadlineExceeded => "deadline",
            HandlerError::Cancelled => "cancelled",
            HandlerError::Refused(_) => "refused",
        }
    }
}

/// One handler that has ended, or given up on.
pub(crate) struct Done<T, E> {
    pub(crate) index: usize,
    pub(crate) result: Result<T, HandlerError<E>>,
    /// From the request's start to when its end was seen.
    pub(crate) elapsed: Duration,
}

/// Handlers submitted to a pool, yielded as they end (see the module docs).
pub(crate) struct Batch<T: Send + 'static, E: Send + 'static> {
    deadline: Deadline,
    /// Given to every handler; cancelled at the deadline and on drop.
    token: CancelToken,
    /// By index; `None` once yielded or given up on.
    pending: Vec<Option<TaskHandle<Result<T, E>>>>,
    /// Ends known without waiting: refused, or never submitted in time.
    ready: VecDeque<Done<T, E>>,
    expired: bool,
}

impl<T: Send + 'static, E: Send + 'static> Batch<T, E> {
    /// Submits every handler, in order, waiting for room in the pool until
    /// the deadline at most.
    pub(crate) async fn submit<I, F>(pool: &Pool, deadline: Deadline, handlers: I) -> Batch<T, E>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce(&CancelToken) -> Result<T, E> + Send + 'static,
    {
        let mut batch = Batch {
            deadline,
            token: CancelToken::new(),
            pending: Vec::new(),
            ready: VecDeque::new(),
            expired: false,
        };
        for (index, f) in handlers.into_iter().enumerate() {
            batch.pending.push(None);
            let result = if batch.expired {
                Err(HandlerError::DeadlineExceeded)
            } else {
                let token = batch.token.clone();
                let submit = pool.spawn_async(move || f(&token));
                match tokio::time::timeout_at(deadline.tokio_at(), submit).await {
                    Ok(Ok(handle)) => {
                        batch.pending[index] = Some(handle);
                        continue;
                    }
                    Ok(Err(error)) => Err(HandlerError::Refused(error)),
                    Err(_elapsed) => {
                        batch.expired = true;
                        Err(HandlerError::DeadlineExceeded)
                    }
                }
            };
            batch.ready.push_back(Done {
                index,
                result,
                elapsed: deadline.elapsed(),
            });
        }
        batch
    }

    /// How many handlers were given to [`submit`](Self::submit).
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The next handler to end, or to be given up on at the deadline;
    /// `None` once every one has been yielded.
    pub(crate) async fn next(&mut self) -> Option<Done<T, E>> {
        loop {
            if let Some(done) = self.ready.pop_front() {
                return Some(done);
            }
            if self.pending.iter().all(Option::is_none) {
                return None;
            }
            if self.expired {
                // Only handlers that had ended by the deadline are left
                // (`expire` gave up on the others): each is ready now.
                return Some(poll_fn(|cx| self.poll_any(cx)).await);
            }
            let at = self.deadline.tokio_at();
            match tokio::time::timeout_at(at, poll_fn(|cx| self.poll_any(cx))).await {
                Ok(done) => return Some(done),
                Err(_elapsed) => self.expire(),
            }
        }
    }

    /// The first pending handler that has ended, if any.
    fn poll_any(&mut self, cx: &mut Context<'_>) -> Poll<Done<T, E>> {
        for index in 0..self.pending.len() {
            let Some(handle) = self.pending[index].as_mut() else {
                continue;
            };
            if let Poll::Ready(result) = Pin::new(handle).poll(cx) {
                self.pending[index] = None;
                let result = match result {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(error)) => Err(HandlerError::Failed(error)),
                    Err(error) => Err(HandlerError::from_task(error)),
                };
                return Poll::Ready(Done {
                    index,
                    result,
                    elapsed: self.deadline.elapsed(),
                });
            }
        }
        Poll::Pending
    }

    /// The deadline passed: tells running handlers to stop, stops those not
    /// started, and gives up on both.
    fn expire(&mut self) {
        self.expired = true;
        // Which handlers are late is settled before the token is cancelled:
        // a handler that sees the cancel and returns at once is late all
        // the same, not failed.
        let late: Vec<usize> = (0..self.pending.len())
            .filter(|&i| {
                self.pending[i]
                    .as_ref()
                    .is_some_and(|handle| !handle.is_finished())
            })
            .collect();
        self.token.cancel();
        let elapsed = self.deadline.elapsed();
        for index in late {
            if let Some(handle) = self.pending[index].take() {
                // Not started: it never runs. Running: it goes on,
                // detached, until it sees its token.
                handle.cancel();
            }
            self.ready.push_back(Done {
                index,
                result: Err(HandlerError::DeadlineExceeded),
                elapsed,
            });
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> Drop for Batch<T, E> {
    /// A request dropped early (its client went away, or shutdown ran out
    /// of patience): nobody wants its handlers' results any more.
    fn drop(&mut self) {
        self.token.cancel();
        for handle in self.pending.iter().flatten() {
            handle.cancel();
        }
    }
}
