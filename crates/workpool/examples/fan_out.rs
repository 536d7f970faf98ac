//! Fan-out/fan-in with a deadline and a parent token (Go-style context
//! cancellation, `WithTimeout` and fan-out/fan-in, on a pool).
//!
//! One request queries 20 simulated backends at once, each a task. Their
//! latencies vary from 18 ms to 1.5 s, and one backend fails fast. Every
//! task is a child of one parent [`CancelToken`] and has a deadline, and
//! sleeps on its token instead of `thread::sleep`, so that a cancel ends the
//! sleep at once. The caller learns of each result as it happens (through a
//! channel fed by `on_complete`, not by joining in order); at the first
//! error it cancels the parent, which stops every straggler. It then
//! collects the results in backend order (fan-in) and prints which backends
//! answered, which failed and which were cancelled. The whole request takes
//! about as long as the failing backend, far less than the slowest one.
//!
//! Run: `cargo run --release -p workpool --example fan_out`.
//!
//! [`CancelToken`]: workpool::CancelToken

use std::fmt;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use workpool::{CancelToken, Pool};

/// Each backend's latency, in ms.
const LATENCY_MS: [u64; 20] = [
    35, 420, 18, 760, 120, 60, 1500, 240, 28, 980, 310, 150, 1200, 22, 580, 140, 870, 40, 360, 1100,
];
/// This backend fails after its latency (60 ms): after the fastest have
/// answered, long before the rest.
const FAILING: usize = 5;
/// Every query's budget. Longer than all but the slowest backend: it is the
/// safety net, and the parent token, not the deadline, stops the stragglers.
const DEADLINE: Duration = Duration::from_secs(1);

/// A backend's answer.
#[derive(Debug)]
struct Reply {
    backend: usize,
}

/// Why a query that ran gave no answer.
#[derive(Debug)]
enum QueryError {
    /// The backend answered with an error.
    Failed(String),
    /// The query's token was cancelled (the parent, or the deadline) while
    /// it waited for the backend, after `after`.
    Cancelled { after: Duration },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Failed(reason) => write!(f, "failed: {reason}"),
            QueryError::Cancelled { after } => write!(f, "cancelled after {after:.1?}"),
        }
    }
}

/// A simulated backend: answers after its latency, unless the token is
/// cancelled first. Waiting on the token (not `thread::sleep`) is what lets
/// a cancel stop it at once.
fn query(backend: usize, token: &CancelToken) -> Result<Reply, QueryError> {
    let start = Instant::now();
    if token.wait_timeout(Duration::from_millis(LATENCY_MS[backend])) {
        return Err(QueryError::Cancelled {
            after: start.elapsed(),
        });
    }
    if backend == FAILING {
        return Err(QueryError::Failed("503 Service Unavailable".into()));
    }
    Ok(Reply { backend })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One worker per backend: every query starts at once. (With fewer, the
    // queued ones would still be cancelled by the parent, before they start,
    // and their handles would say `TaskError::Cancelled`.)
    let pool = Pool::new(LATENCY_MS.len())?;
    let parent = CancelToken::new();
    let (events, arrivals) = mpsc::channel::<(usize, bool)>();
    let start = Instant::now();

    // Fan out. Each task's token is a child of `parent` and of its own
    // deadline; the callback reports (backend, failed) the moment it ends.
    let mut handles = Vec::with_capacity(LATENCY_MS.len());
    for backend in 0..LATENCY_MS.len() {
        let events = events.clone();
        let handle = pool
            .task(move |token| query(backend, token))
            .parent(&parent)
            .deadline(DEADLINE)
            .on_complete(move |result| {
                let failed = matches!(result, Ok(Err(QueryError::Failed(_))));
                // The caller stops listening after the first error.
                let _ = events.send((backend, failed));
            })
            .spawn()?;
        handles.push(handle);
    }
    // Only the callbacks hold senders now: the loop below ends when every
    // task has reported, if none fails.
    drop(events);

    // Listen in completion order; the first error cancels the rest.
    for (backend, failed) in arrivals {
        if failed {
            println!(
                "backend {backend} failed at {:.1?}: cancelling the parent token",
                start.elapsed()
            );
            parent.cancel();
            break;
        }
    }

    // Fan in, in backend order. The stragglers end within moments of the
    // cancel, so these joins are short.
    let (mut answered, mut failed, mut cancelled) = (Vec::new(), Vec::new(), Vec::new());
    for (backend, handle) in handles.into_iter().enumerate() {
        let outcome = match handle.join() {
            Ok(Ok(reply)) => {
                answered.push(reply.backend);
                "answered".to_string()
            }
            Ok(Err(error @ QueryError::Failed(_))) => {
                failed.push(backend);
                error.to_string()
            }
            Ok(Err(error @ QueryError::Cancelled { .. })) => {
                cancelled.push(backend);
                error.to_string()
            }
            // Never started: cancelled (or out of time) while queued.
            Err(error) if error.is_cancelled() => {
                cancelled.push(backend);
                error.to_string()
            }
            Err(error) => return Err(error.into()),
        };
        println!(
            "  backend {backend:2} ({:>4} ms): {outcome}",
            LATENCY_MS[backend]
        );
    }
    let elapsed = start.elapsed();
    let slowest = Duration::from_millis(*LATENCY_MS.iter().max().unwrap_or(&0));

    println!("answered:  {answered:?}");
    println!("failed:    {failed:?}");
    println!("cancelled: {cancelled:?}");
    println!(
        "the request took {elapsed:.1?}; the slowest backend needs {slowest:?}, the deadline is {DEADLINE:?}"
    );
    assert_eq!(failed, [FAILING]);
    assert_eq!(
        answered.len() + failed.len() + cancelled.len(),
        LATENCY_MS.len()
    );
    // Without the cancel, the stragglers would have run to the deadline.
    assert!(elapsed < DEADLINE / 2, "the stragglers were not stopped");

    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}
