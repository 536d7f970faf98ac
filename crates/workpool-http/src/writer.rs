//! `ConcurrentWriter` and `ConcurrentResponse`: one response that many
//! tasks write into at once (FastGo's `ConcurrentWrite` and
//! `WithConcurrentResponse`).
//!
//! Go's `http.ResponseWriter` is not safe to share between goroutines, so
//! FastGo wraps it in a mutex. An axum handler owns no writer at all: it
//! returns its response. So the shared writer here is a buffer behind a
//! mutex that becomes the body when the handler answers, or a channel that
//! feeds a streaming body chunk by chunk.
//!
//! Dependencies go one way: this module uses `batch.rs` (for
//! `ConcurrentResponse::run`) and is used by `parallel.rs`
//! (`stream_execute` writes into a streaming writer); it never imports
//! `parallel`.

use crate::batch::{Batch, HandlerError};
use crate::deadline::Deadline;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;
use workpool::{CancelToken, Pool};

/// The content type of the text answers of this crate.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// A response body that any number of threads (pool tasks, async tasks)
/// write into at once. Each [`write`](Self::write) lands whole: chunks of
/// two writers never interleave, though their order is the order the writes
/// happened in.
///
/// Two kinds:
/// - [`new`](Self::new) buffers; [`finish`](Self::finish) takes what was
///   written, for the handler to answer with;
/// - [`streaming`](Self::streaming) sends each write to the client as a
///   chunk as soon as it is made (chunked transfer encoding).
///
/// A writer is a cheap `Clone`; clones write into the same body. Writes are
/// never blocked (FastGo's "non-blocking write"): a streaming writer
/// queues chunks that the client has not read yet.
///
/// # Examples
///
/// Five tasks of a pool write lines into one answer:
///
/// ```
/// use axum::response::IntoResponse;
/// use workpool_http::ConcurrentWriter;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = workpool::Pool::new(4)?;
/// let writer = ConcurrentWriter::new();
/// let mut handles = Vec::new();
/// for id in 0..5 {
///     let writer = writer.clone();
///     // `spawn_async` waits for room without blocking the runtime.
///     handles.push(pool.spawn_async(move || writer.write(format!("task {id}\n"))).await?);
/// }
/// for handle in handles {
///     handle.await??; // a TaskHandle is a Future
/// }
/// let body = writer.finish();
/// assert_eq!(body.len(), 5 * "task 0\n".len());
/// let response = (axum::http::StatusCode::OK, body).into_response();
/// # drop(response);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ConcurrentWriter {
    sink: Arc<Mutex<Sink>>,
}

enum Sink {
    Buffer(Vec<u8>),
    Stream(mpsc::UnboundedSender<Bytes>),
    Closed,
}

/// Why a write did not reach the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The writer was finished (the answer has gone, or the deadline
    /// passed), or the client of a streaming writer went away. A task that
    /// gets this may stop: nobody will read what it writes.
    Closed,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Closed => {
                f.write_str("the response is finished: nothing more can be written")
            }
        }
    }
}

impl std::error::Error for WriteError {}

impl ConcurrentWriter {
    /// A writer that buffers until [`finish`](Self::finish).
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::ConcurrentWriter;
    ///
    /// let writer = ConcurrentWriter::new();
    /// let clone = writer.clone();
    /// std::thread::spawn(move || clone.write("from a thread\n")).join().expect("no panic")?;
    /// writer.write("from here\n")?;
    /// assert_eq!(writer.finish(), "from a thread\nfrom here\n");
    /// # Ok::<(), workpool_http::WriteError>(())
    /// ```
    pub fn new() -> ConcurrentWriter {
        ConcurrentWriter {
            sink: Arc::new(Mutex::new(Sink::Buffer(Vec::new()))),
        }
    }

    /// A writer whose writes go to the client as they are made, and the
    /// body to answer with. The body ends when the writer is
    /// [finished](Self::finish) or its last clone dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::response::{IntoResponse, Response};
    /// use workpool_http::ConcurrentWriter;
    ///
    /// async fn handler() -> Response {
    ///     let (writer, body) = ConcurrentWriter::streaming();
    ///     tokio::spawn(async move {
    ///         for n in 0..3 {
    ///             if writer.write(format!("chunk {n}\n")).is_err() {
    ///                 break; // the client went away
    ///             }
    ///         }
    ///     });
    ///     body.into_response()
    /// }
    /// ```
    pub fn streaming() -> (ConcurrentWriter, Body) {
        let (tx, rx) = mpsc::unbounded_channel();
        let body = Body::from_stream(UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>));
        let writer = ConcurrentWriter {
            sink: Arc::new(Mutex::new(Sink::Stream(tx))),
        };
        (writer, body)
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        // A writer that panicked mid-write left whole chunks only: the data
        // is consistent, so poisoning is ignored.
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `chunk` to the body, whole.
    ///
    /// # Errors
    ///
    /// [`WriteError::Closed`] once the writer is finished, or when the
    /// client of a streaming writer has gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::ConcurrentWriter;
    ///
    /// let writer = ConcurrentWriter::new();
    /// writer.write("one\n")?;
    /// writer.write(String::from("two\n"))?;
    /// writer.write(&b"three\n"[..])?;
    /// assert_eq!(writer.finish(), "one\ntwo\nthree\n");
    /// # Ok::<(), workpool_http::WriteError>(())
    /// ```
    pub fn write(&self, chunk: impl Into<Bytes>) -> Result<(), WriteError> {
        let mut sink = self.lock();
        match &mut *sink {
            Sink::Buffer(buffer) => {
                buffer.extend_from_slice(&chunk.into());
                Ok(())
            }
            Sink::Stream(tx) => {
                if tx.send(chunk.into()).is_err() {
                    *sink = Sink::Closed;
                    return Err(WriteError::Closed);
                }
                Ok(())
            }
            Sink::Closed => Err(WriteError::Closed),
        }
    }

    /// Closes the writer for every clone and returns what was buffered
    /// (nothing, for a streaming writer, whose body then ends). Later
    /// writes fail with [`WriteError::Closed`], so a straggler never
    /// writes into an answer that has gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::{ConcurrentWriter, WriteError};
    ///
    /// let writer = ConcurrentWriter::new();
    /// let straggler = writer.clone();
    /// writer.write("on time\n")?;
    /// assert_eq!(writer.finish(), "on time\n");
    /// assert_eq!(straggler.write("late\n"), Err(WriteError::Closed));
    /// # Ok::<(), WriteError>(())
    /// ```
    pub fn finish(&self) -> Bytes {
        match std::mem::replace(&mut *self.lock(), Sink::Closed) {
            Sink::Buffer(buffer) => Bytes::from(buffer),
            Sink::Stream(_) | Sink::Closed => Bytes::new(),
        }
    }

    /// Whether writes are refused: finished, or the client went away.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::ConcurrentWriter;
    ///
    /// let (writer, body) = ConcurrentWriter::streaming();
    /// assert!(!writer.is_closed());
    /// drop(body); // the client went away
    /// assert!(writer.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        match &*self.lock() {
            Sink::Closed => true,
            Sink::Stream(tx) => tx.is_closed(),
            Sink::Buffer(_) => false,
        }
    }
}

impl Default for ConcurrentWriter {
    fn default() -> Self {
        ConcurrentWriter::new()
    }
}

impl fmt::Debug for ConcurrentWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.lock() {
            Sink::Buffer(buffer) => format!("buffered, {} bytes", buffer.len()),
            Sink::Stream(_) => "streaming".to_owned(),
            Sink::Closed => "closed".to_owned(),
        };
        f.debug_struct("ConcurrentWriter")
            .field("sink", &kind)
            .finish()
    }
}

/// A task of a [`ConcurrentResponse`]: it writes into the response, and
/// may stop when its token is cancelled (the deadline passed).
pub type ResponseTask = Box<dyn FnOnce(&ConcurrentResponse, &CancelToken) + Send + 'static>;

/// One answer that parallel tasks write into, with the errors they report
/// (FastGo's `WithConcurrentResponse`): [`run`](Self::run) runs the tasks
/// on a pool, catches their panics, and answers with everything written,
/// then the errors.
///
/// The status: 200 when no task reported an error or panicked, 500 when
/// one did, 504 when the deadline passed first (with what was written by
/// then), 503 when the pool refused a task.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use axum::{extract::State, response::Response, routing::get, Router};
/// use workpool::Pool;
/// use workpool_http::{ConcurrentResponse, Deadline, ResponseTask};
///
/// async fn overview(State(pool): State<Pool>, deadline: Deadline) -> Response {
///     let tasks: Vec<ResponseTask> = vec![
///         Box::new(|cr, token| {
///             // A slow query; waiting on the token ends early at the deadline.
///             if !token.wait_timeout(Duration::from_millis(50)) {
///                 let _ = cr.write("Database result loaded\n");
///             }
///         }),
///         Box::new(|cr, _| cr.fail("the cache is down")),
///     ];
///     ConcurrentResponse::run(&pool, deadline, tasks).await
/// }
///
/// # fn main() -> Result<(), workpool::BuildError> {
/// let app: Router = Router::new()
///     .route("/overview", get(overview))
///     .with_state(Pool::new(8)?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ConcurrentResponse {
    writer: ConcurrentWriter,
    errors: Arc<Mutex<Vec<String>>>,
}

impl ConcurrentResponse {
    /// An empty response, buffered.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::ConcurrentResponse;
    ///
    /// let response = ConcurrentResponse::new();
    /// response.write("Cache checked\n")?;
    /// assert!(response.errors().is_empty());
    /// # Ok::<(), workpool_http::WriteError>(())
    /// ```
    pub fn new() -> ConcurrentResponse {
        ConcurrentResponse {
            writer: ConcurrentWriter::new(),
            errors: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Appends `chunk` to the body, whole (see [`ConcurrentWriter::write`]).
    ///
    /// # Errors
    ///
    /// [`WriteError::Closed`] once the response has been answered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::body::to_bytes;
    /// use workpool_http::{ConcurrentResponse, Deadline, ResponseTask};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let tasks: Vec<ResponseTask> = vec![
    ///     Box::new(|cr, _| drop(cr.write("Cache checked\n"))),
    ///     Box::new(|cr, _| drop(cr.write("Database result loaded\n"))),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let response = ConcurrentResponse::run(&pool, deadline, tasks).await;
    /// let body = to_bytes(response.into_body(), usize::MAX).await?;
    /// assert_eq!(body.len(), "Cache checked\nDatabase result loaded\n".len()); // in either order
    /// # Ok(())
    /// # }
    /// ```
    pub fn write(&self, chunk: impl Into<Bytes>) -> Result<(), WriteError> {
        self.writer.write(chunk)
    }

    /// Reports an error: the answer becomes a 500 listing it after the
    /// body. Several tasks may fail; every error is listed.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::ConcurrentResponse;
    ///
    /// let response = ConcurrentResponse::new();
    /// response.fail(format_args!("database: {}", "timed out"));
    /// response.fail("the cache is down");
    /// assert_eq!(response.errors(), ["database: timed out", "the cache is down"]);
    /// ```
    pub fn fail(&self, error: impl fmt::Display) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(error.to_string());
    }

    /// The errors reported so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use workpool_http::ConcurrentResponse;
    ///
    /// let response = ConcurrentResponse::new();
    /// assert!(response.errors().is_empty());
    /// let task = response.clone();
    /// std::thread::spawn(move || task.fail("the API timed out")).join().expect("no panic");
    /// assert_eq!(response.errors(), ["the API timed out"]);
    /// ```
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs every task on `pool` at once, each given this response, waits
    /// for them until `deadline`, and answers. A panicking task is
    /// reported as an error; tasks still running at the deadline have
    /// their token cancelled and are named in the answer, and what they
    /// write later is dropped.
    ///
    /// Submitting waits for room in the pool without blocking the async
    /// runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::{body::to_bytes, http::StatusCode};
    /// use workpool_http::{ConcurrentResponse, Deadline, ResponseTask};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = workpool::Pool::new(2)?;
    /// let tasks: Vec<ResponseTask> = vec![
    ///     Box::new(|cr, _| drop(cr.write("Cache checked\n"))),
    ///     Box::new(|cr, _| cr.fail("the database is down")),
    /// ];
    /// let deadline = Deadline::after(Duration::from_secs(5));
    /// let response = ConcurrentResponse::run(&pool, deadline, tasks).await;
    /// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    /// let body = to_bytes(response.into_body(), usize::MAX).await?;
    /// assert_eq!(body, "Cache checked\n1 error:\n- the database is down\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<I, F>(pool: &Pool, deadline: Deadline, tasks: I) -> Response
    where
        I: IntoIterator<Item = F>,
        F: FnOnce(&ConcurrentResponse, &CancelToken) + Send + 'static,
    {
        let response = ConcurrentResponse::new();
        // Collected before the first await: an iterator adapter held across
        // it would make the future's type higher-ranked over the tasks'
        // lifetimes, which axum's `Handler` bound cannot name.
        let handlers: Vec<_> = tasks
            .into_iter()
            .map(|task| {
                let response = response.clone();
                move |token: &CancelToken| {
                    task(&response, token);
                    Ok::<(), Infallible>(())
                }
            })
            .collect();
        let mut batch = Batch::submit(pool, deadline, handlers).await;
        let mut status = StatusCode::OK;
        let mut late = Vec::new();
        while let Some(done) = batch.next().await {
            match done.result {
                Ok(()) => {}
                Err(HandlerError::DeadlineExceeded) => late.push(done.index),
                Err(HandlerError::Refused(error)) => {
                    status = StatusCode::SERVICE_UNAVAILABLE;
                    response.fail(format!("task {} was refused: {error}", done.index));
                }
                Err(error) => response.fail(format!("task {}: {error}", done.index)),
            }
        }
        let errors = response.errors();
        if !late.is_empty() {
            status = StatusCode::GATEWAY_TIMEOUT;
        } else if status == StatusCode::OK && !errors.is_empty() {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        let mut body = response.writer.finish().to_vec();
        if !late.is_empty() {
            body.extend_from_slice(
                format!(
                    "deadline of {} ms passed: tasks {late:?} had not finished\n",
                    deadline.budget().as_millis()
                )
                .as_bytes(),
            );
        }
        if !errors.is_empty() {
            let noun = if errors.len() == 1 { "error" } else { "errors" };
            body.extend_from_slice(format!("{} {noun}:\n", errors.len()).as_bytes());
            for error in &errors {
                body.extend_from_slice(format!("- {error}\n").as_bytes());
            }
        }
        text_response(status, body)
    }
}

impl Default for ConcurrentResponse {
    fn default() -> Self {
        ConcurrentResponse::new()
    }
}

impl fmt::Debug for ConcurrentResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentResponse")
            .field("writer", &self.writer)
            .field("errors", &self.errors().len())
            .finish()
    }
}

/// A plain text answer.
pub(crate) fn text_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_from_many_threads_land_whole() {
        let writer = ConcurrentWriter::new();
        std::thread::scope(|s| {
            for t in 0..8 {
                let writer = writer.clone();
                s.spawn(move || {
                    for n in 0..100 {
                        writer
                            .write(format!("thread {t} line {n:03}\n"))
                            .expect("open");
                    }
                });
            }
        });
        let body = writer.finish();
        let text = std::str::from_utf8(&body).expect("text");
        assert_eq!(text.lines().count(), 800);
        assert!(text
            .lines()
            .all(|line| line.len() == "thread 0 line 000".len() && line.starts_with("thread ")));
    }

    #[test]
    fn a_finished_writer_refuses_late_writes() {
        let writer = ConcurrentWriter::new();
        let straggler = writer.clone();
        writer.write("on time\n").expect("open");
        assert_eq!(writer.finish(), Bytes::from("on time\n"));
        assert!(straggler.is_closed());
        assert_eq!(straggler.write("late\n"), Err(WriteError::Closed));
        assert_eq!(writer.finish(), Bytes::new());
    }

    #[tokio::test]
    async fn a_streaming_body_ends_with_its_last_writer() {
        let (writer, body) = ConcurrentWriter::streaming();
        let other = writer.clone();
        writer.write("one\n").expect("open");
        other.write("two\n").expect("open");
        drop(writer);
        drop(other);
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("a body");
        assert_eq!(bytes, Bytes::from("one\ntwo\n"));
    }

    #[test]
    fn a_streaming_writer_learns_that_its_client_went_away() {
        let (writer, body) = ConcurrentWriter::streaming();
        assert!(!writer.is_closed());
        drop(body);
        assert!(writer.is_closed());
        assert_eq!(writer.write("anyone?"), Err(WriteError::Closed));
    }
}
