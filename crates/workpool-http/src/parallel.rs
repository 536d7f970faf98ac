//! `parallel_execute` and `stream_execute`: handlers run on a pool, their
//! results answered in order or streamed as they end (FastGo's
//! `ParallelExecute` and streaming responses).
//!
//! Both rest on `Batch` (`batch.rs`), which submits the handlers and
//! awaits them as they end; `stream_execute` writes into a streaming
//! `ConcurrentWriter` (`writer.rs`). Dependencies go one way:
//! `parallel` -> `writer` -> `batch`, and `parallel` -> `batch`; neither
//! lower module imports this one.

use crate::batch::{Batch, Done, HandlerError};
use crate::deadline::Deadline;
use crate::writer::{text_response, ConcurrentWriter, TEXT};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::time::Duration;
use workpool::{CancelToken, Pool};

/// A boxed handler, for a list of different closures: it gets a token that
/// is cancelled when the request's deadline passes, and returns its part of
/// the answer or its error.
pub type Handler<T, E> = Box<dyn FnOnce(&CancelToken) -> Result<T, E> + Send + 'static>;

/// Boxes a closure as a [`Handler`], so that a `vec![]` of different
/// closures needs no casts.
///
/// # Examples
///
/// ```
/// use axum::body::Bytes;
/// use workpool_http::{handler, Handler};
///
/// let handlers: Vec<Handler<Bytes, String>> = vec![
///     handler(|_| Ok(Bytes::from("one"))),
///     handler(|_| Err("two failed".to_owned())),
/// ];
/// assert_eq!(handlers.len(), 2);
/// ```
pub fn handler<T, E, F>(f: F) -> Handler<T, E>
where
    F: FnOnce(&CancelToken) -> Result<T, E> + Send + 'static,
{
    Box::new(f)
}

/// Every handler's result, in the order the handlers were given, from
/// [`parallel_execute`]. As a response it is plain text, one line per
/// handler and a summary:
///
/// ```text
/// [0] ok (101 ms): Task 1 completed
/// [1] error (12 ms): database unavailable
/// [2] panicked (3 ms): handler 2 panicked on purpose
/// [3] deadline (250 ms): not finished by the deadline
/// 1 of 4 handlers succeeded in 250 ms; the deadline of 250 ms passed
/// ```
///
/// Its status ([`status`](Self::status)): 504 if the deadline passed
/// (with the results that had arrived), else 503 if the pool refused a
/// handler, else 500 if one failed or panicked, else 200.
#[derive(Debug)]
pub struct ParallelResults<T, E> {
    results: Vec<Result<T, HandlerError<E>>>,
    elapsed: Vec<Duration>,
    total: Duration,
    deadline: Deadline,
}

impl<T, E> ParallelResults<T, E> {
    /// The results, in the order the handlers were given.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler, HandlerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|_| Ok("from the cache")),
    ///     handler(|_| Err("the database is down".to_owned())),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// assert!(matches!(results.results()[0], Ok("from the cache")));
    /// assert!(matches!(results.results()[1], Err(HandlerError::Failed(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn results(&self) -> &[Result<T, HandlerError<E>>] {
        &self.results
    }

    /// The results, in the order the handlers were given.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<String, String>> = vec![
    ///     handler(|_| Ok("from the cache".to_owned())),
    ///     handler(|_| Err("the database is down".to_owned())),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// let (ok, failed): (Vec<_>, Vec<_>) =
    ///     results.into_results().into_iter().partition(Result::is_ok);
    /// assert_eq!((ok.len(), failed.len()), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_results(self) -> Vec<Result<T, HandlerError<E>>> {
        self.results
    }

    /// For each handler, in order, the time from the request's start to
    /// its end (or to the deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|token| {
    ///         token.wait_timeout(Duration::from_millis(30)); // a slow call
    ///         Ok("slow")
    ///     }),
    ///     handler(|_| Ok("fast")),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// assert!(results.elapsed()[0] >= Duration::from_millis(30));
    /// # Ok(())
    /// # }
    /// ```
    pub fn elapsed(&self) -> &[Duration] {
        &self.elapsed
    }

    /// How many handlers succeeded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|_| Ok("one")),
    ///     handler(|_| Err("two failed".to_owned())),
    ///     handler(|_| Ok("three")),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// assert_eq!(results.succeeded(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn succeeded(&self) -> usize {
        self.results.iter().filter(|r| r.is_ok()).count()
    }

    /// Whether every handler succeeded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|_| Ok("one")),
    ///     handler(|_| panic!("two panicked")),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// assert!(!results.all_ok()); // a panic is reported, not propagated
    /// # Ok(())
    /// # }
    /// ```
    pub fn all_ok(&self) -> bool {
        self.succeeded() == self.results.len()
    }

    /// Whether the deadline passed before some handler ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler, HandlerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|_| Ok("fast")),
    ///     handler(|token| {
    ///         token.wait_timeout(Duration::from_secs(10)); // cut short at the deadline
    ///         Ok("slow")
    ///     }),
    /// ];
    /// let deadline = Deadline::after(Duration::from_millis(50));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// assert!(results.deadline_passed());
    /// assert!(matches!(results.results()[1], Err(HandlerError::DeadlineExceeded)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn deadline_passed(&self) -> bool {
        self.results
            .iter()
            .any(|r| matches!(r, Err(HandlerError::DeadlineExceeded)))
    }

    /// The status of the answer (see the type's docs).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::http::StatusCode;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|_| Ok("from the cache")),
    ///     handler(|_| Err("the database is down".to_owned())),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// assert_eq!(results.status(), StatusCode::INTERNAL_SERVER_ERROR);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> StatusCode {
        let any = |f: fn(&HandlerError<E>) -> bool| {
            self.results.iter().any(|r| r.as_ref().err().is_some_and(f))
        };
        if self.deadline_passed() {
            StatusCode::GATEWAY_TIMEOUT
        } else if any(|e| matches!(e, HandlerError::Refused(_))) {
            StatusCode::SERVICE_UNAVAILABLE
        } else if any(|_| true) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }

    /// The closing line of the text answer.
    fn summary(&self) -> String {
        let mut line = format!(
            "{} of {} handlers succeeded in {} ms",
            self.succeeded(),
            self.results.len(),
            self.total.as_millis()
        );
        if self.deadline_passed() {
            line.push_str(&format!(
                "; the deadline of {} ms passed",
                self.deadline.budget().as_millis()
            ));
        }
        line.push('\n');
        line
    }
}

impl<T: AsRef<[u8]>, E: fmt::Display> ParallelResults<T, E> {
    /// The text answer's body (see the type's docs).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workpool_http::{handler, parallel_execute, Deadline, Handler};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let handlers: Vec<Handler<&str, String>> = vec![
    ///     handler(|_| Ok("Task 1 completed\n")),
    ///     handler(|_| Err("database unavailable".to_owned())),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let results = parallel_execute(&pool, deadline, handlers).await;
    /// let text = String::from_utf8(results.to_text())?;
    /// let lines: Vec<&str> = text.lines().collect();
    /// assert!(lines[0].starts_with("[0] ok ("));
    /// assert!(lines[0].ends_with("ms): Task 1 completed")); // one newline, not two
    /// assert!(lines[1].starts_with("[1] error ("));
    /// assert!(lines[1].ends_with("ms): database unavailable"));
    /// assert!(lines[2].starts_with("1 of 2 handlers succeeded in "));
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_text(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (index, (result, elapsed)) in self.results.iter().zip(&self.elapsed).enumerate() {
            body.extend_from_slice(&line(index, result, *elapsed));
        }
        body.extend_from_slice(self.summary().as_bytes());
        body
    }
}

impl<T: AsRef<[u8]>, E: fmt::Display> IntoResponse for ParallelResults<T, E> {
    fn into_response(self) -> Response {
        text_response(self.status(), self.to_text())
    }
}

/// One handler's line of a text answer.
fn line<T: AsRef<[u8]>, E: fmt::Display>(
    index: usize,
    result: &Result<T, HandlerError<E>>,
    elapsed: Duration,
) -> Vec<u8> {
    let ms = elapsed.as_millis();
    let mut line = match result {
        Ok(value) => {
            let mut line = format!("[{index}] ok ({ms} ms): ").into_bytes();
            let value = value.as_ref();
            line.extend_from_slice(value.strip_suffix(b"\n").unwrap_or(value));
            line
        }
        Err(HandlerError::Failed(error)) => {
            format!("[{index}] error ({ms} ms): {error}").into_bytes()
        }
        Err(HandlerError::Panicked(message)) => {
            format!("[{index}] panicked ({ms} ms): {message}").into_bytes()
        }
        Err(error) => format!("[{index}] {} ({ms} ms): {error}", error.word()).into_bytes(),
    };
    line.push(b'\n');
    line
}

/// Runs every handler on `pool` at once and returns their results in the
/// order given (FastGo's `ParallelExecute`). Each handler gets a token that
/// is cancelled when `deadline` passes; handlers not ended by then are
/// reported as [`HandlerError::DeadlineExceeded`], and the answer goes out
/// with the rest. A panicking handler is reported, not propagated.
///
/// The async runtime never blocks: submitting waits for room with
/// [`Pool::spawn_async`], and the results are awaited as futures. If the
/// returned future is dropped (the client went away), handlers not
/// started never run and running ones see their token cancelled.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use axum::{body::Bytes, extract::State, response::IntoResponse, routing::get, Router};
/// use workpool::Pool;
/// use workpool_http::{handler, parallel_execute, Deadline, Handler};
///
/// async fn both(State(pool): State<Pool>, deadline: Deadline) -> impl IntoResponse {
///     let handlers: Vec<Handler<Bytes, String>> = vec![
///         handler(|token| {
///             token.wait_timeout(Duration::from_millis(20)); // a slow call
///             Ok(Bytes::from("Task 1 completed\n"))
///         }),
///         handler(|_| Ok(Bytes::from("Task 2 completed\n"))),
///     ];
///     parallel_execute(&pool, deadline, handlers).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::new(4)?;
/// let app: Router = Router::new().route("/both", get(both)).with_state(pool.clone());
///
/// // The same call outside a handler:
/// let results = parallel_execute(
///     &pool,
///     Deadline::after(Duration::from_secs(5)),
///     (1..=3u32).map(|n| move |_: &workpool::CancelToken| Ok::<_, String>(n * 10)),
/// )
/// .await;
/// let tens: Vec<u32> = results.into_results().into_iter().map(Result::unwrap).collect();
/// assert_eq!(tens, [10, 20, 30]);
/// # drop(app);
/// # Ok(())
/// # }
/// ```
pub async fn parallel_execute<I, F, T, E>(
    pool: &Pool,
    deadline: Deadline,
    handlers: I,
) -> ParallelResults<T, E>
where
    I: IntoIterator<Item = F>,
    F: FnOnce(&CancelToken) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut batch = Batch::submit(pool, deadline, handlers).await;
    let mut slots: Vec<Option<Done<T, E>>> = (0..batch.len()).map(|_| None).collect();
    while let Some(done) = batch.next().await {
        let index = done.index;
        slots[index] = Some(done);
    }
    let total = deadline.elapsed();
    let (results, elapsed) = slots
        .into_iter()
        .map(|slot| match slot {
            Some(done) => (done.result, done.elapsed),
            // Every index is yielded once by `next`; this is never seen.
            None => (Err(HandlerError::DeadlineExceeded), total),
        })
        .unzip();
    ParallelResults {
        results,
        elapsed,
        total,
        deadline,
    }
}

/// Runs every handler on `pool` at once and streams each result to the
/// client as its handler ends, one line each (the lines of
/// [`ParallelResults`], in the order the handlers end), then a summary
/// line. The status is 200, sent before any result is known; when the
/// deadline passes, the late handlers get a `deadline` line each and the
/// stream ends. If the client goes away, the handlers are cancelled as
/// with [`parallel_execute`].
///
/// # Panics
///
/// Outside a Tokio runtime: a task of the runtime drives the handlers
/// once the response has been returned.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use axum::{body::Bytes, extract::State, response::Response, routing::get, Router};
/// use workpool::{CancelToken, Pool};
/// use workpool_http::{stream_execute, Deadline};
///
/// async fn countdown(State(pool): State<Pool>, deadline: Deadline) -> Response {
///     let handlers = [30u64, 10, 20].map(|ms| {
///         move |token: &CancelToken| {
///             token.wait_timeout(Duration::from_millis(ms));
///             Ok::<_, String>(Bytes::from(format!("waited {ms} ms")))
///         }
///     });
///     stream_execute(pool, deadline, handlers)
/// }
///
/// # fn main() -> Result<(), workpool::BuildError> {
/// let app: Router = Router::new()
///     .route("/countdown", get(countdown))
///     .with_state(Pool::new(4)?);
/// # Ok(())
/// # }
/// ```
pub fn stream_execute<I, F, T, E>(pool: Pool, deadline: Deadline, handlers: I) -> Response
where
    I: IntoIterator<Item = F>,
    F: FnOnce(&CancelToken) -> Result<T, E> + Send + 'static,
    T: AsRef<[u8]> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let handlers: Vec<F> = handlers.into_iter().collect();
    let (writer, body) = ConcurrentWriter::streaming();
    tokio::spawn(stream_results(pool, deadline, handlers, writer));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Browsers hold back text they may sniff; this lets each line show.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn stream_results<F, T, E>(
    pool: Pool,
    deadline: Deadline,
    handlers: Vec<F>,
    writer: ConcurrentWriter,
) where
    F: FnOnce(&CancelToken) -> Result<T, E> + Send + 'static,
    T: AsRef<[u8]> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let total = handlers.len();
    let mut batch = Batch::submit(&pool, deadline, handlers).await;
    let (mut succeeded, mut late) = (0, 0);
    while let Some(done) = batch.next().await {
        match &done.result {
            Ok(_) => succeeded += 1,
            Err(HandlerError::DeadlineExceeded) => late += 1,
            Err(_) => {}
        }
        if writer
            .write(line(done.index, &done.result, done.elapsed))
            .is_err()
        {
            // The client went away: dropping the batch cancels the rest.
            return;
        }
    }
    let mut summary = format!(
        "{succeeded} of {total} handlers succeeded in {} ms",
        deadline.elapsed().as_millis()
    );
    if late > 0 {
        summary.push_str(&format!(
            "; the deadline of {} ms passed",
            deadline.budget().as_millis()
        ));
    }
    summary.push('\n');
    let _ = writer.write(summary);
    writer.finish();
}
