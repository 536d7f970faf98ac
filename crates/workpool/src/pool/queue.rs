//! Where accepted tasks wait for a worker, and what counts as room.
//!
//! Every task that is not started on a new thread goes through one lock-free
//! queue, and workers take tasks from it. What differs between the two modes
//! is only what admits a task:
//! - **Bounded** (`queue_capacity(n)`, n > 0; the default): crossbeam's
//!   `ArrayQueue` of n slots. Running tasks are bounded by the workers (at
//!   most `capacity`), waiting ones by the slots; a full ring is
//!   backpressure. A slot frees when a worker takes a task.
//! - **Hand-off** (`queue_capacity(0)`, ants' semantics): a task is admitted
//!   only while fewer than `capacity` tasks are accepted and unfinished
//!   (`in_flight`), so each one has a worker free for it and none waits for
//!   a busy one. The `SegQueue` only carries it to that worker. Room frees
//!   when a task finishes.

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{ArrayQueue, SegQueue};
use crate::task::Task;
use crossbeam_utils::CachePadded;

#[derive(Debug)]
pub(crate) enum TaskQueue {
    Bounded(ArrayQueue<Task>),
    Handoff {
        tasks: SegQueue<Task>,
        /// Tasks accepted and not finished: running, or on their way to the
        /// worker found for them. Never above the capacity in force when
        /// each was admitted. On a line of its own: every task touches it
        /// twice, from the submitter and from the worker.
        in_flight: CachePadded<AtomicUsize>,
    },
}

impl TaskQueue {
    pub(crate) fn new(queue_capacity: usize) -> TaskQueue {
        if queue_capacity == 0 {
            TaskQueue::Handoff {
                tasks: SegQueue::new(),
                in_flight: CachePadded::new(AtomicUsize::new(0)),
            }
        } else {
            TaskQueue::Bounded(ArrayQueue::new(queue_capacity))
        }
    }

    /// Admits `task` and queues it, or gives it back when there is no room.
    pub(crate) fn try_push(&self, task: Task, capacity: usize) -> Result<(), Task> {
        match self {
            TaskQueue::Bounded(queue) => queue.push(task),
            TaskQueue::Handoff { tasks, .. } => {
                if !self.reserve(capacity) {
                    return Err(task);
                }
                tasks.push(task);
                Ok(())
            }
        }
    }

    /// Admits a task that starts on a new worker without going through the
    /// queue: no slot is needed, but in hand-off mode it counts in flight.
    pub(crate) fn reserve(&self, capacity: usize) -> bool {
        match self {
            TaskQueue::Bounded(_) => true,
            TaskQueue::Handoff { in_flight, .. } => in_flight
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < capacity).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    /// Undoes a [`reserve`](Self::reserve) whose task was not accepted after
    /// all (its thread could not start).
    pub(crate) fn unreserve(&self) {
        if let TaskQueue::Handoff { in_flight, .. } = self {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Takes the oldest queued task. Returns whether that freed room, with it.
    pub(crate) fn pop(&self) -> Option<(Task, bool)> {
        match self {
            TaskQueue::Bounded(queue) => queue.pop().map(|task| (task, true)),
            TaskQueue::Handoff { tasks, .. } => tasks.pop().map(|task| (task, false)),
        }
    }

    /// A task that was admitted finished. Returns whether that freed room.
    pub(crate) fn task_done(&self) -> bool {
        match self {
            TaskQueue::Bounded(_) => false,
            TaskQueue::Handoff { in_flight, .. } => {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                true
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            TaskQueue::Bounded(queue) => queue.is_empty(),
            TaskQueue::Handoff { tasks, .. } => tasks.is_empty(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            TaskQueue::Bounded(queue) => queue.len(),
            TaskQueue::Handoff { tasks, .. } => tasks.len(),
        }
    }
}
