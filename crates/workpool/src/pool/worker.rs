//! A worker thread's loop: take a task, run it, spin for the next, park or
//! exit. `PROTOCOL.md` beside it tells how this meets the submitters.
//!
//! [`Next`] is the one answer to "what does this worker do now", whoever
//! decides it: the worker itself after a task (`Inner::next_task`), or the
//! submitter, `tune`, purge or `release` that took it off the idle list and
//! sent it an order through its [`Parker`].

use super::state::Inner;
use super::task::Task;
use crate::sync::{self, Arc, Condvar, Mutex};
use std::cell::Cell;

/// What a worker does next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Run this task (handed to a parked worker, or found in the queue).
    Run(Task),
    /// Look at the queue again: woken for a task queued there, or by a
    /// `release` that lets it drain the queue before it exits.
    Look,
    /// Leave: the worker is no longer counted in `workers`.
    Exit,
}

/// Where a parked worker waits for its next order. Only the one that took
/// the worker off the idle list may send it one, so at most one order is
/// pending at a time.
pub(crate) struct Parker {
    slot: Mutex<Slot>,
    wakeup: Condvar,
}

struct Slot {
    order: Option<Next>,
    /// The worker is blocked on `wakeup`; only then does a sender pay for a
    /// notification.
    parked: bool,
}

impl std::fmt::Debug for Parker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("Parker { .. }")
    }
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            slot: Mutex::new(Slot {
                order: None,
                parked: false,
            }),
            wakeup: Condvar::new(),
        }
    }

    /// Hands `order` to the worker. The caller owns the worker: it has just
    /// taken it off the idle list.
    pub(crate) fn send(&self, order: Next) {
        let mut slot = sync::lock(&self.slot);
        debug_assert!(slot.order.is_none(), "a worker got two orders at once");
        slot.order = Some(order);
        let parked = slot.parked;
        drop(slot);
        // Notify after unlocking, so the woken worker does not block on the
        // lock we hold; a worker that took the order meanwhile at worst sees
        // a spurious wake-up, which `park` tolerates.
        if parked {
            self.wakeup.notify_one();
        }
    }

    /// Waits for the next order.
    pub(crate) fn park(&self) -> Next {
        let mut slot = sync::lock(&self.slot);
        loop {
            if let Some(order) = slot.order.take() {
                return order;
            }
            slot.parked = true;
            slot = sync::wait(&self.wakeup, slot);
            slot.parked = false;
        }
    }
}

// The pool whose worker this thread is (its `Inner`'s address), or 0: lets
// a blocking call see that it would wait for its own thread.
#[cfg(not(loom))]
std::thread_local! {
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static CURRENT_POOL: Cell<usize> = Cell::new(0);
}

/// Whether the calling thread is a worker of any pool.
pub(crate) fn is_a_worker() -> bool {
    CURRENT_POOL.with(|current| current.get() != 0)
}

/// Whether the calling thread is a worker of the pool at `inner`.
pub(crate) fn is_worker_of(inner: &Inner) -> bool {
    CURRENT_POOL.with(|current| current.get() == inner as *const Inner as usize)
}

/// What belongs to one worker thread: its parker, and what it has done.
/// Per-worker figures live here, written by the worker alone, so that
/// recording them costs no shared cache line per task.
pub(crate) struct WorkerCtx {
    pub(crate) parker: Arc<Parker>,
    /// Tasks this worker has run.
    pub(crate) ran: u64,
    /// Picks the stripe of the pool's histograms this worker writes.
    pub(crate) number: usize,
    /// This worker's counts, which only it writes.
    pub(crate) counts: Arc<crossbeam_utils::CachePadded<crate::stats::WorkerCounts>>,
    /// Whether the worker still holds its place in `workers`; its drop
    /// gives the place back if the loop ends by a panic of the pool's own
    /// code (user code never unwinds into the loop), so capacity is not lost
    /// for ever.
    counted: bool,
    inner: Arc<Inner>,
}

impl Drop for WorkerCtx {
    fn drop(&mut self) {
        self.inner.stats.worker_exited(&self.counts);
        if self.counted {
            self.inner.worker_lost();
        }
    }
}

/// The body of a worker thread. `first` is the task it was started for; a
/// worker started without one either looks at the queue (started for a
/// queued task) or, as one of `min_workers`, is already on the idle list and
/// parks (`parked`).
pub(crate) fn run(inner: Arc<Inner>, parker: Arc<Parker>, first: Option<Task>, parked: bool) {
    CURRENT_POOL.with(|current| current.set(Arc::as_ptr(&inner) as usize));
    let (number, counts) = inner.stats.worker_started();
    let mut ctx = WorkerCtx {
        number,
        counts,
        parker,
        ran: 0,
        counted: true,
        inner,
    };
    let mut next = match first {
        Some(task) => Next::Run(task),
        None if parked => ctx.parker.park(),
        None => Next::Look,
    };
    loop {
        next = match next {
            Next::Run(task) => {
                let stats = &ctx.inner.stats;
                let submitted = task.stamp;
                // Only stamped tasks are timed: at high rates a clock read
                // is not free.
                let started = if submitted != 0 { stats.stamp() } else { 0 };
                ctx.counts.took();
                if ctx.inner.run_task(task) {
                    ctx.counts.completed();
                }
                if submitted != 0 {
                    stats.timed(ctx.number, submitted, started, stats.stamp());
                }
                ctx.ran += 1;
                ctx.inner.task_done();
                ctx.inner.next_task(&ctx.parker)
            }
            Next::Look => ctx.inner.next_task(&ctx.parker),
            Next::Exit => break,
        };
    }
    ctx.counted = false;
    super::log_quietly(|| tracing::trace!(tasks = ctx.ran, "workpool: a worker exits"));
}
