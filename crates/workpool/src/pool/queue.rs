//! Where accepted tasks wait for a worker, and what counts as room.
//!
//! Every task that is not started on a new thread, or handed to an idle one,
//! goes through one queue, and workers take tasks from it. Two things vary.
//!
//! What admits a task:
//! - **Bounded** (`queue_capacity(n)`, n > 0; the default): n slots. Running
//!   tasks are bounded by the workers (at most `capacity`), waiting ones by
//!   the slots; a full queue is backpressure. A slot frees when a worker
//!   takes a task.
//! - **Hand-off** (`queue_capacity(0)`, ants' semantics): a task is admitted
//!   only while fewer than `capacity` tasks are accepted and unfinished
//!   (`in_flight`), so each one has a worker free for it and none waits for
//!   a busy one; the queue only carries it to that worker. Room frees when a
//!   task finishes.
//!
//! How the tasks are stored, chosen at build from the capacity:
//! - Up to [`LOCK_FREE_WORKERS`] per CPU, lock-free queues: the fastest for
//!   the short tasks such pools run. Bounded, our own ring
//!   (`raw/ring.rs`), whose tail word carries the closed bit, so one
//!   compare-and-swap admits a task or refuses it; for hand-off,
//!   crossbeam's `SegQueue` behind a [`Gate`].
//! - Above it, a `VecDeque` behind a lock (and a [`Gate`]). Lock-free queues make a taker
//!   spin, without yielding, while a push it sees has not finished writing;
//!   with thousands of workers waking at once (ants' 10 ms sleep benchmark
//!   at capacity 10,000), a submitter preempted in the middle of a push then
//!   waited seconds for a core behind them all (measured: 20,000 tasks of
//!   10 ms at capacity 2,000 took 2.1-6.2 s instead of 0.16 s). A lock parks
//!   its waiters instead, and such pools' tasks are long enough that its
//!   cost does not show.

use super::admission::Gate;
use super::task::Task;
use crate::raw::ring::Refused;
use crate::sync::atomic::{fence, AtomicIsize, AtomicUsize, Ordering};
use crate::sync::{self, Mutex, Ring, SegQueue};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;

/// Workers per CPU up to which a pool's queue is lock-free.
pub(crate) const LOCK_FREE_WORKERS: usize = 4;

#[derive(Debug)]
pub(crate) struct TaskQueue {
    tasks: Tasks,
    /// The way in of a queue without a closed bit of its own (all but the
    /// ring): `None` for the ring.
    gate: Option<Gate>,
    /// Hand-off mode: tasks accepted and not finished, running or on their
    /// way to the worker found for them; never above the capacity in force
    /// when each was admitted. On a line of its own: every task touches it
    /// twice, from the submitter and from the worker. `None` when bounded.
    in_flight: Option<CachePadded<AtomicUsize>>,
    /// Tasks cancelled while queued and not yet popped (`job.rs`): their
    /// slots count as free at once. May dip below zero for a moment (a
    /// ghost popped before its canceller counted it).
    ghosts: AtomicIsize,
    /// Bounded lock-free queue only: tasks admitted into the slots that
    /// ghosts still occupy in the ring. Taken after the ring, so the order
    /// holds: while it is not empty, every push comes here.
    overflow: Mutex<VecDeque<Task>>,
    overflow_len: AtomicUsize,
    /// Tasks handed back by a worker that took one and then found the pool
    /// above its capacity (a `tune` down it had not seen before it took):
    /// taken before anything else, so the oldest task stays first. Rare;
    /// empty but for such moments.
    returned: Mutex<VecDeque<Task>>,
    returned_len: AtomicUsize,
    /// Accepted tasks that left without a worker taking them: cancelled
    /// before they got a place, or dropped as ghosts. Reporting only.
    set_aside: std::sync::atomic::AtomicU64,
}

/// See [`TaskQueue::way_in`].
enum WayIn<'a> {
    Ring(&'a Ring<Task>),
    Gate(&'a Gate),
}

#[derive(Debug)]
enum Tasks {
    Ring(Ring<Task>),
    Seg(SegQueue<Task>),
    Locked(LockedQueue),
}

impl TaskQueue {
    /// `capacity` is the pool's (`UNBOUNDED` for none).
    pub(crate) fn new(queue_capacity: usize, capacity: usize) -> TaskQueue {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let lock_free = capacity <= cpus.saturating_mul(LOCK_FREE_WORKERS);
        let tasks = match (queue_capacity, lock_free) {
            (0, true) => Tasks::Seg(SegQueue::new()),
            (0, false) => Tasks::Locked(LockedQueue::new(usize::MAX)),
            (n, true) => Tasks::Ring(Ring::new(n)),
            (n, false) => Tasks::Locked(LockedQueue::new(n)),
        };
        TaskQueue {
            gate: (!matches!(tasks, Tasks::Ring(_))).then(Gate::new),
            tasks,
            in_flight: (queue_capacity == 0).then(|| CachePadded::new(AtomicUsize::new(0))),
            ghosts: AtomicIsize::new(0),
            overflow: Mutex::new(VecDeque::new()),
            overflow_len: AtomicUsize::new(0),
            returned: Mutex::new(VecDeque::new()),
            returned_len: AtomicUsize::new(0),
            set_aside: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The lock-free way in: as [`try_push`](Self::try_push), and the task
    /// is given back too when the queue is closed (the locked way then
    /// refuses it). [RELEASE, submitter half] either the push is refused,
    /// or `release` sees it: the ring's tail counts it from the
    /// compare-and-swap that admits it, a [`Gate`] while it is in flight.
    #[inline]
    pub(crate) fn push_lock_free(&self, task: Task, capacity: usize) -> Result<(), Task> {
        match &self.gate {
            None => self.try_push(task, capacity),
            Some(gate) => {
                let Some(entered) = gate.try_enter() else {
                    return Err(task);
                };
                let pushed = self.try_push(task, capacity);
                drop(entered);
                pushed
            }
        }
    }

    /// Where the closed bit of the way in lives: the ring's tail, or the
    /// [`Gate`] of any other queue.
    fn way_in(&self) -> WayIn<'_> {
        match (&self.gate, &self.tasks) {
            (Some(gate), _) => WayIn::Gate(gate),
            (None, Tasks::Ring(ring)) => WayIn::Ring(ring),
            (None, _) => unreachable!("only the ring has no gate"),
        }
    }

    /// Under the pool's lock: closes the way in (`Admission::close`).
    /// [RELEASE, release half] a ring push racing this either claimed its
    /// slot before the bit (and is counted by the tail) or is refused; one
    /// that found the ring full and goes to the overflow reads the bit
    /// under the overflow's lock, which this takes after setting it.
    pub(crate) fn close(&self) {
        match self.way_in() {
            WayIn::Gate(gate) => gate.close(),
            WayIn::Ring(ring) => {
                ring.close();
                drop(sync::lock(&self.overflow));
            }
        }
    }

    /// Under the pool's lock: opens the way in again (`reboot`).
    pub(crate) fn reopen(&self) {
        match self.way_in() {
            WayIn::Gate(gate) => gate.reopen(),
            WayIn::Ring(ring) => {
                ring.reopen();
            }
        }
    }

    /// Whether the way in is closed.
    #[cfg(loom)]
    pub(crate) fn is_closed(&self) -> bool {
        match self.way_in() {
            WayIn::Gate(gate) => gate.is_closed(),
            WayIn::Ring(ring) => ring.is_closed(),
        }
    }

    /// [RELEASE, release half] once closed, waits out the pushes that got
    /// in: a [`Gate`]'s pushes in flight. The ring's need no wait: the
    /// tail counts them, so the queue is not empty, and a pop waits the few
    /// instructions their writes take.
    pub(crate) fn wait_drained(&self) {
        if let Some(gate) = &self.gate {
            gate.wait_drained();
        }
    }

    /// Admits `task` and queues it, or gives it back when there is no room.
    /// A tracked task cancelled before it got a place is accepted: its
    /// handle already says so, and it needs no place.
    pub(crate) fn try_push(&self, task: Task, capacity: usize) -> Result<(), Task> {
        if !self.reserve(capacity) {
            return Err(task);
        }
        if !task.enter_queue() {
            self.unreserve();
            self.count_set_aside();
            return Ok(());
        }
        let pushed = match &self.tasks {
            Tasks::Ring(queue) => self.push_ring(queue, task),
            Tasks::Seg(queue) => {
                queue.push(task);
                Ok(())
            }
            Tasks::Locked(queue) => queue.push(task, self.ghosts()),
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(task) if task.leave_queue() => {
                self.unreserve();
                Err(task)
            }
            // Cancelled as we pushed: its canceller counted a ghost that is
            // not in the queue after all.
            Err(_) => {
                self.ghost_popped();
                self.count_set_aside();
                Ok(())
            }
        }
    }

    fn count_set_aside(&self) {
        self.set_aside
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// See `set_aside`.
    pub(crate) fn set_aside(&self) -> u64 {
        self.set_aside.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn ghosts(&self) -> usize {
        usize::try_from(self.ghosts.load(Ordering::SeqCst)).unwrap_or(0)
    }

    /// A queued task was cancelled: its slot (or, in hand-off mode, its
    /// place in flight) is free from now on.
    pub(crate) fn ghost_made(&self) {
        self.ghosts.fetch_add(1, Ordering::SeqCst);
        if let Some(in_flight) = &self.in_flight {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A ghost left the queue.
    fn ghost_popped(&self) {
        self.ghosts.fetch_sub(1, Ordering::SeqCst);
    }

    fn push_ring(&self, queue: &Ring<Task>, task: Task) -> Result<(), Task> {
        let mut task = task;
        if self.overflow_len.load(Ordering::SeqCst) == 0 {
            task = match queue.push(task) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed(task)) => return Err(task),
                Err(Refused::Full(task)) => task,
            };
            if self.ghosts.load(Ordering::SeqCst) <= 0 {
                return Err(task);
            }
        }
        // Ghosts hold slots of the ring that count as free.
        let mut overflow = sync::lock(&self.overflow);
        // [RELEASE, submitter half] the bit, read under the overflow's lock
        // (see `close`).
        if queue.is_closed() {
            return Err(task);
        }
        let held = (queue.len() + overflow.len()).saturating_sub(self.ghosts());
        if held >= queue.capacity() {
            return Err(task);
        }
        if overflow.is_empty() {
            task = match queue.push(task) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed(task)) => return Err(task),
                Err(Refused::Full(task)) => task,
            };
        }
        overflow.push_back(task);
        self.overflow_len.store(overflow.len(), Ordering::SeqCst);
        Ok(())
    }

    /// Takes the first task of a locked deque (the locked queue, the ring's
    /// overflow, tasks put back) that is not a ghost; `len` mirrors the
    /// deque's length, read without the lock. The ghosts met on the way are
    /// dropped and counted gone (`ghosts` down) under the deque's lock: a
    /// push that counts the room under that same lock never sees a ghost
    /// gone from the deque and still counted in `ghosts` (which would let
    /// it count one slot free twice).
    fn take_live(&self, deque: &Mutex<VecDeque<Task>>, len: &AtomicUsize) -> Option<Task> {
        if len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut deque = sync::lock(deque);
        let mut live = None;
        while let Some(task) = deque.pop_front() {
            if task.leave_queue() {
                live = Some(task);
                break;
            }
            self.ghost_popped();
            self.count_set_aside();
        }
        len.store(deque.len(), Ordering::SeqCst);
        live
    }

    /// Admits a task that starts on a worker without going through the
    /// queue: no slot is needed, but in hand-off mode it counts in flight.
    pub(crate) fn reserve(&self, capacity: usize) -> bool {
        match &self.in_flight {
            None => true,
            Some(in_flight) => in_flight
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < capacity).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    /// Undoes a [`reserve`](Self::reserve) whose task was not accepted after
    /// all (its thread could not start).
    pub(crate) fn unreserve(&self) {
        if let Some(in_flight) = &self.in_flight {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Puts back at the front a task just popped that its worker may not
    /// run (the pool is above its capacity): the next pop takes it. Its
    /// slot stays taken, as if it had never left; in hand-off mode it stays
    /// in flight. A tracked task cancelled meanwhile is not put back: its
    /// handle knows, and it leaves as a task cancelled on its way would.
    /// Returns whether it is queued again.
    pub(crate) fn put_back(&self, task: Task) -> bool {
        if !task.enter_queue() {
            self.count_set_aside();
            return false;
        }
        let mut returned = sync::lock(&self.returned);
        returned.push_front(task);
        self.returned_len.store(returned.len(), Ordering::SeqCst);
        true
    }

    /// Takes the oldest queued task. Returns whether that freed room, with it.
    /// Ghosts met on the way are dropped: their handles know already.
    pub(crate) fn pop(&self) -> Option<(Task, bool)> {
        let freed = self.in_flight.is_none();
        // Taken from a deque under its lock: ghosts already dropped there.
        if let Some(task) = self.take_live(&self.returned, &self.returned_len) {
            return Some((task, freed));
        }
        loop {
            let task = match &self.tasks {
                Tasks::Ring(queue) => match queue.pop() {
                    Some(task) => task,
                    None => {
                        let task = self.take_live(&self.overflow, &self.overflow_len);
                        return task.map(|task| (task, freed));
                    }
                },
                Tasks::Seg(queue) => queue.pop()?,
                Tasks::Locked(queue) => {
                    let task = self.take_live(&queue.items, &queue.len);
                    return task.map(|task| (task, freed));
                }
            };
            if task.leave_queue() {
                return Some((task, freed));
            }
            // A ghost taken from the lock-free ring: counted gone only now.
            // Meanwhile a push on the ring's slow path may count its slot
            // free twice (once in `ghosts`, once as room in the ring) and
            // admit one task more than the slots, for a moment. (The ring
            // is ours now, so its pop could mark the slot before the ghost
            // count moves; not done yet: the excess is one task, briefly.)
            self.ghost_popped();
            self.count_set_aside();
        }
    }

    /// A task that was admitted finished. Returns whether that freed room.
    pub(crate) fn task_done(&self) -> bool {
        match &self.in_flight {
            None => false,
            Some(in_flight) => {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                true
            }
        }
    }

    /// The fence of a pair (PARK, DEPOSIT) whose half is a push or a pop
    /// followed by a `SeqCst` load. The ring's `push` and `pop`, and
    /// crossbeam-queue's `SegQueue` (0.3), change the queue by a `SeqCst`
    /// compare-and-swap of its tail or head, and `is_empty` reads both
    /// `SeqCst`: all fall in the one
    /// total order of `SeqCst` operations, consistent with each thread's
    /// program order (C++20 [atomics.order]), so the load that follows needs
    /// no fence, and the other half's fence orders its own side. A locked
    /// queue's lock is in no such order, nor are loom's stand-ins, so there
    /// the fence is spelled out (and loom checks the pair with it).
    #[inline]
    pub(crate) fn fence_after_op(&self) {
        if cfg!(loom) || matches!(self.tasks, Tasks::Locked(_)) {
            fence(Ordering::SeqCst);
        }
    }

    /// The slots of a bounded queue; 0 in hand-off mode.
    pub(crate) fn slots(&self) -> usize {
        match &self.tasks {
            Tasks::Ring(queue) => queue.capacity(),
            Tasks::Locked(queue) if self.is_bounded() => queue.cap,
            Tasks::Seg(_) | Tasks::Locked(_) => 0,
        }
    }

    pub(crate) fn is_bounded(&self) -> bool {
        self.in_flight.is_none()
    }

    /// Whether at least half of the queue is free (always, in hand-off mode).
    pub(crate) fn half_free(&self) -> bool {
        match &self.tasks {
            Tasks::Ring(queue) => self.len() * 2 <= queue.capacity(),
            Tasks::Locked(queue) if self.is_bounded() => self.len() * 2 <= queue.cap,
            Tasks::Seg(_) | Tasks::Locked(_) => true,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        if self.returned_len.load(Ordering::SeqCst) != 0 {
            return false;
        }
        match &self.tasks {
            Tasks::Ring(queue) => queue.is_empty() && self.overflow_len.load(Ordering::SeqCst) == 0,
            Tasks::Seg(queue) => queue.is_empty(),
            Tasks::Locked(queue) => queue.len() == 0,
        }
    }

    /// Queued tasks, ghosts not counted.
    pub(crate) fn len(&self) -> usize {
        let held = match &self.tasks {
            Tasks::Ring(queue) => queue.len() + self.overflow_len.load(Ordering::SeqCst),
            Tasks::Seg(queue) => queue.len(),
            Tasks::Locked(queue) => queue.len(),
        } + self.returned_len.load(Ordering::SeqCst);
        held.saturating_sub(self.ghosts())
    }
}

/// A bounded FIFO behind a lock, whose length can be read without it.
#[derive(Debug)]
struct LockedQueue {
    items: Mutex<VecDeque<Task>>,
    /// Mirrors `items.len()`, written under the lock.
    len: AtomicUsize,
    cap: usize,
}

impl LockedQueue {
    fn new(cap: usize) -> LockedQueue {
        LockedQueue {
            items: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            cap,
        }
    }

    /// `ghosts` of the items are cancelled: their slots count as free.
    fn push(&self, task: Task, ghosts: usize) -> Result<(), Task> {
        let mut items = sync::lock(&self.items);
        if items.len().saturating_sub(ghosts) >= self.cap {
            return Err(task);
        }
        items.push_back(task);
        self.len.store(items.len(), Ordering::SeqCst);
        Ok(())
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }
}
