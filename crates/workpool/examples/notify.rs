//! NotifyHub on a pool: 1,000 messages sent asynchronously to a slow sink,
//! each with a completion callback (NotifyHub's `SendAsync` and
//! `SendAsyncBatch`).
//!
//! - Half of the messages go one by one, each as a task with its own handle
//!   (`SendAsync`): `pool.task(..).on_complete(..).spawn()`.
//! - The other half go as one batch with a single [`BatchHandle`]
//!   (`SendAsyncBatch`), whose progress is printed while it is waited for.
//!
//! The sink sleeps 1-3 ms a message and refuses every 50th (2%). Every
//! message's callback counts it as delivered or failed; at the end the
//! callbacks' counts must agree with the handles' results and add up to
//! 1,000. Unlike NotifyHub, which starts a goroutine per message (and one
//! more per batch to coordinate it), at most `CAPACITY` threads ever run,
//! and nothing coordinates a batch: its last task wakes the waiter.
//!
//! Then 2,000 more go to 20 recipients, in parallel across recipients and
//! in order for each (`pool.task(..).key(recipient)`): each recipient's
//! inbox must read 0, 1, 2, .. (without keys, about 8% of deliveries
//! arrived out of order in a user's trial), and a recipient's message
//! waiting for the one before holds no worker.
//!
//! Run: `cargo run --release -p workpool --example notify`.
//!
//! [`BatchHandle`]: workpool::BatchHandle

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use workpool::Pool;

const MESSAGES: usize = 1_000;
/// The sink is slow, not busy: the threads mostly sleep, so many more of
/// them than cores keep it fed.
const CAPACITY: usize = 32;

type Res = Result<(), Box<dyn std::error::Error>>;

/// A notification to send.
#[derive(Debug)]
struct Message {
    id: usize,
    body: String,
}

impl Message {
    fn new(id: usize) -> Message {
        Message {
            id,
            body: format!("build #{id} passed"),
        }
    }
}

/// What the sink answers for a message it accepted.
#[derive(Debug)]
struct Receipt {
    id: usize,
    bytes: usize,
}

/// What the sink answers for a message it refused.
#[derive(Debug)]
struct SendError {
    id: usize,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the sink refused message {}", self.id)
    }
}

impl std::error::Error for SendError {}

/// A simulated remote endpoint (a webhook, a chat API): 1-3 ms a call, and
/// every 50th message refused. Chosen by id, so every run is the same.
fn send(message: &Message) -> Result<Receipt, SendError> {
    thread::sleep(Duration::from_millis(1 + message.id as u64 % 3));
    if message.id % 50 == 49 {
        return Err(SendError { id: message.id });
    }
    Ok(Receipt {
        id: message.id,
        bytes: message.body.len(),
    })
}

/// What the callbacks count. They run on the workers, so the counts are
/// atomics shared through an `Arc`.
#[derive(Debug, Default)]
struct Tally {
    delivered: AtomicUsize,
    failed: AtomicUsize,
}

impl Tally {
    fn record(&self, delivered: bool) {
        let counter = if delivered {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> (usize, usize) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn main() -> Res {
    let pool = Pool::builder().capacity(CAPACITY).build()?;
    let tally = Arc::new(Tally::default());
    let start = Instant::now();

    // 1. One by one, each with its own handle (SendAsync). The callback
    // runs on the worker right after the send, before the handle sees the
    // result; a task that panicked or never ran counts as failed too.
    let mut handles = Vec::with_capacity(MESSAGES / 2);
    for id in 0..MESSAGES / 2 {
        let message = Message::new(id);
        let tally = Arc::clone(&tally);
        let handle = pool
            .task(move |_token| send(&message))
            .on_complete(move |result| {
                tally.record(matches!(result, Ok(Ok(_))));
            })
            .spawn()?;
        handles.push(handle);
    }

    // 2. The rest as one batch (SendAsyncBatch): one callback for the batch,
    // called on the worker once per message with its index and result.
    let batch_tally = Arc::clone(&tally);
    let batch = pool
        .batch((MESSAGES / 2..MESSAGES).map(|id| {
            let message = Message::new(id);
            move |_token: &workpool::CancelToken| send(&message)
        }))
        .on_complete(move |_index, result| {
            batch_tally.record(matches!(result, Ok(Ok(_))));
        })
        .spawn()?;
    println!(
        "submitted {MESSAGES} messages in {:.1?}: {} with handles, {} as one batch",
        start.elapsed(),
        handles.len(),
        batch.len()
    );

    // One handle waits for the whole batch; no thread polls it. Waiting in
    // slices lets us report progress meanwhile. The batch went in last, so
    // it starts once the single messages have made room.
    while !batch.wait_timeout(Duration::from_millis(15)) {
        let (done, total) = batch.progress();
        let singles = handles.iter().filter(|h| h.is_finished()).count();
        println!(
            "  progress: singles {singles}/{}, batch {done}/{total}",
            handles.len()
        );
    }
    let batch_results = batch.join();
    let handle_results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    let elapsed = start.elapsed();

    // The handles' results must tell the same story as the callbacks; a
    // batch gives its results in submission order, as the handles do.
    let (mut from_results, mut bytes) = ((0, 0), 0);
    for (id, result) in handle_results.iter().chain(&batch_results).enumerate() {
        match result {
            Ok(Ok(receipt)) => {
                assert_eq!(receipt.id, id, "results come in submission order");
                from_results.0 += 1;
                bytes += receipt.bytes;
            }
            Ok(Err(_)) | Err(_) => from_results.1 += 1,
        }
    }
    let (delivered, failed) = tally.get();
    let first_failure = batch_results
        .iter()
        .find_map(|r| r.as_ref().ok()?.as_ref().err());

    println!(
        "{MESSAGES} messages in {elapsed:.1?}: {:.0} messages/s on at most {CAPACITY} workers ({} now)",
        MESSAGES as f64 / elapsed.as_secs_f64(),
        pool.workers()
    );
    println!(
        "callbacks counted {delivered} delivered and {failed} failed; the handles' results: {} delivered ({bytes} bytes), {} failed",
        from_results.0, from_results.1
    );
    if let Some(error) = first_failure {
        println!("first failure in the batch: {error}");
    }
    assert_eq!(delivered + failed, MESSAGES);
    assert_eq!((delivered, failed), from_results);
    assert_eq!(failed, MESSAGES / 50);

    per_recipient_order(&pool)?;
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

/// Part 3, per-recipient order: tasks keyed by recipient run one at a
/// time per recipient, in the order sent, and in parallel across them.
fn per_recipient_order(pool: &Pool) -> Res {
    const RECIPIENTS: usize = 20;
    const KEYED: usize = 2_000;
    let inboxes: Arc<Vec<std::sync::Mutex<Vec<usize>>>> =
        Arc::new((0..RECIPIENTS).map(|_| Default::default()).collect());
    let delivered = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(KEYED);
    for n in 0..KEYED {
        let (recipient, seq) = (n % RECIPIENTS, n / RECIPIENTS);
        let message = Message::new(n);
        let inboxes = Arc::clone(&inboxes);
        let counted = Arc::clone(&delivered);
        let handle = pool
            .task(move |_token| {
                // The sink is slow and its delay varies by message: without
                // the key, a later message could overtake an earlier one.
                thread::sleep(Duration::from_micros(
                    200 + (message.id as u64 * 7919) % 800,
                ));
                inboxes[recipient].lock().unwrap().push(seq);
            })
            .key(recipient)
            .on_complete(move |result| {
                if result.is_ok() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .spawn()?;
        handles.push(handle);
    }
    for handle in handles {
        handle.join()?;
    }
    let elapsed = start.elapsed();
    let mut out_of_order = 0;
    for inbox in inboxes.iter() {
        let inbox = inbox.lock().unwrap();
        out_of_order += inbox.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert_eq!(inbox.len(), KEYED / RECIPIENTS);
    }
    println!(
        "{KEYED} messages to {RECIPIENTS} recipients, keyed by recipient: {} delivered in {elapsed:.1?}, {out_of_order} out of order",
        delivered.load(Ordering::Relaxed)
    );
    assert_eq!(out_of_order, 0, "a recipient got its messages out of order");
    assert_eq!(delivered.load(Ordering::Relaxed), KEYED);
    Ok(())
}
