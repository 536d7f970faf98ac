//! A worker thread's loop and the mailbox through which it is handed work.
//!
//! A worker runs its first task, then offers itself to the pool
//! ([`Inner::worker_idle`](crate::pool::Inner)); if the pool takes it back it
//! waits in its [`Mailbox`] for the next order. The submitter that pops the
//! worker from the idle list is the only one that may send it a task, and the
//! purge or `release` that removes it from the list is the only one that may
//! send it `Exit`: both happen under the pool's lock, so a worker never gets a
//! task and an exit order at once, and a task handed over is always run.

use crate::pool::{Handed, Inner};
use crate::sync::{self, Arc, Condvar, Mutex};

/// A task as the pool stores it: the only allocation per task is this box.
pub(crate) type Task = Box<dyn FnOnce() + Send + 'static>;

/// What a worker that finished its task does next
/// ([`Inner::worker_idle`](crate::pool::Inner)).
pub(crate) enum Idle {
    /// Run a task that was queued.
    Run(Task),
    /// Wait in the mailbox: the worker is on the idle list.
    Wait,
    /// Leave: the pool is closed or above its capacity.
    Exit,
}

/// What a worker is told to do next.
pub(crate) enum Order {
    Run(Task),
    Exit,
}

/// One worker's inbox: at most one order at a time.
pub(crate) struct Mailbox {
    slot: Mutex<Slot>,
    wakeup: Condvar,
}

struct Slot {
    order: Option<Order>,
    /// The worker is blocked on `wakeup`; only then does a sender pay for a
    /// notification.
    parked: bool,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("Mailbox { .. }")
    }
}

impl Mailbox {
    pub(crate) fn new() -> Self {
        Mailbox {
            slot: Mutex::new(Slot {
                order: None,
                parked: false,
            }),
            wakeup: Condvar::new(),
        }
    }

    /// Hands `order` to the worker. The caller must own the worker, i.e. have
    /// just removed it from the idle list.
    pub(crate) fn send(&self, order: Order) {
        let mut slot = sync::lock(&self.slot);
        debug_assert!(slot.order.is_none(), "a worker got two orders at once");
        slot.order = Some(order);
        let parked = slot.parked;
        drop(slot);
        // Notify after unlocking so the woken worker does not block on the lock
        // we still hold. A worker that took the order meanwhile at worst sees a
        // spurious wake-up later, which `recv` tolerates.
        if parked {
            self.wakeup.notify_one();
        }
    }

    /// Waits for the next order, parked: a worker gets here only after it
    /// has spun for a next task already (`Inner::next_handed`,
    /// `Inner::next_queued`), or as one of `min_workers`.
    pub(crate) fn recv(&self) -> Order {
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

/// The body of a worker thread. `first` is the task it was started for; a
/// worker started without one (`min_workers`) is already on the idle list and
/// waits for its first order.
pub(crate) fn run(inner: Arc<Inner>, mailbox: Arc<Mailbox>, first: Option<Task>) {
    let mut next = first;
    loop {
        if let Some(task) = next.take() {
            inner.run_task(task);
            next = match inner.next_queued() {
                Some(task) => Some(task),
                None => match inner.next_handed() {
                    Handed::Task(task) => Some(task),
                    Handed::Retire => return,
                    Handed::Nothing => None,
                },
            };
            if next.is_some() {
                continue;
            }
            match inner.worker_idle(&mailbox) {
                Idle::Run(task) => {
                    next = Some(task);
                    continue;
                }
                Idle::Wait => {}
                Idle::Exit => return,
            }
        }
        match mailbox.recv() {
            Order::Run(task) => next = Some(task),
            Order::Exit => return,
        }
    }
}
