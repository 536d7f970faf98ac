//! `Inner`: what the workers, the purge thread and every handle share, and
//! the one place where the counts under the lock and their gauges change
//! together.

use super::hot::Spinners;
use super::idle::IdleWorkers;
use super::queue::TaskQueue;
use super::threads::Registry;
use super::timer::Timers;
use super::worker::Parker;
use crate::builder::{PanicHandler, PoolBuilder};
use crate::cancel::CancelToken;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{self, Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize as ReportUsize;
use std::sync::Arc;
use std::time::Duration;

/// `State::capacity` of an unbounded pool.
pub(crate) const UNBOUNDED: usize = usize::MAX;

pub(crate) struct Inner {
    pub(super) state: Mutex<State>,
    /// The purge thread sleeps here between rounds; `release` wakes it.
    pub(super) purge_wakeup: Condvar,
    pub(super) threads: Mutex<Registry>,
    /// `release_timeout` waits here for `State::threads` to reach zero.
    pub(super) all_exited: Condvar,
    /// Live `Pool` handles; the last one to drop releases the pool.
    pub(super) handles: AtomicUsize,
    pub(super) config: Config,
    pub(super) gauges: Gauges,
    pub(super) queue: TaskQueue,
    pub(super) spinners: Spinners,
    /// The lock-free way in and its closed bit (`admission.rs`).
    pub(super) admission: super::admission::Admission,
    /// Shared with the other pools of a `MultiPool`: told whenever this pool
    /// may have room, so a submitter blocked on all of them takes the first.
    pub(super) room: Option<Arc<crate::multi::RoomSignal>>,
    /// Tasks that panicked since the pool was built; reporting only.
    pub(super) panicked: ReportUsize,
    /// Numbers worker threads in their names; reporting only.
    pub(super) next_worker_no: ReportUsize,
    /// The token every task token of this life derives from: `release`
    /// cancels it, `reboot` puts a fresh one.
    pub(super) root: std::sync::Mutex<CancelToken>,
    /// Deadlines of tracked tasks, for the maintenance thread (`timer.rs`).
    pub(super) timers: std::sync::Mutex<Timers>,
    /// Callers of `wait_idle`, and the condvar they wait on under the state
    /// lock; a worker that parks or leaves looks at it only if one waits.
    pub(super) idle_waiters: std::sync::atomic::AtomicUsize,
    pub(super) became_idle: Condvar,
    /// Async submitters waiting (a hint, mirrored under the lock): room
    /// freed wakes them at every slot, not at half a queue.
    pub(super) async_waiting: std::sync::atomic::AtomicUsize,
    /// Counts and latencies (`stats.rs`).
    pub(crate) stats: crate::stats::Recorder,
    /// The pool's name, for metrics and logs.
    pub(crate) name: String,
    /// Monitors to stop at `release`.
    pub(super) monitors: std::sync::Mutex<Vec<std::sync::Weak<super::observe::MonitorShared>>>,
}

pub(crate) struct Config {
    pub(super) expiry: Duration,
    pub(super) min_workers: usize,
    pub(super) nonblocking: bool,
    pub(super) max_blocking_tasks: usize,
    pub(super) panic_handler: Option<PanicHandler>,
    pub(super) disable_purge: bool,
    /// The deadline of every tracked task that sets none of its own.
    pub(super) task_deadline: Option<Duration>,
    pub(super) thread_name: String,
    pub(super) stack_size: Option<usize>,
}

/// Mirrors of `State` that submitters and workers read without the lock.
/// Written only under the state lock, in the same step as the field they
/// mirror (`Inner::set_*`), so a gauge may be a moment stale, never torn.
/// They take part in the protocol's pairs, so they come from `crate::sync`
/// and are written and read `SeqCst`.
#[derive(Debug)]
pub(crate) struct Gauges {
    pub(super) workers: AtomicUsize,
    /// Workers on the idle list (parked, or about to park).
    pub(super) idle: AtomicUsize,
    pub(super) waiting: AtomicUsize,
    pub(super) capacity: AtomicUsize,
    pub(super) closed: AtomicBool,
}

pub(crate) struct State {
    pub(super) idle: IdleWorkers<Arc<Parker>>,
    /// Workers holding a place under the capacity: busy, spinning and idle.
    /// It rises before a thread is spawned and falls when a worker decides to
    /// exit (or is told to), so capacity is freed at once.
    pub(super) workers: usize,
    /// Submitters blocked with their task deposited, oldest first: each unit
    /// of room that appears takes the oldest deposit (`deposit.rs`).
    pub(super) deposits: VecDeque<super::deposit::Deposit>,
    /// `UNBOUNDED` for an unbounded pool.
    pub(super) capacity: usize,
    pub(super) closed: bool,
    /// Raised by every `reboot`; a purge thread of an older life exits.
    pub(super) epoch: u64,
    /// OS threads of the pool (workers and the purge thread) counted as
    /// started and not yet finished; `release_timeout` waits for zero. Rises
    /// under this lock in the same step as the decision to start a thread,
    /// and falls in the thread's exit guard, whatever way it ends.
    pub(super) threads: usize,
    /// The maintenance thread (purge and deadlines) of this life runs.
    pub(super) maintenance: bool,
    /// Async submitters waiting for room (`submit_async`), oldest first.
    pub(super) async_waiters: VecDeque<(u64, std::task::Waker)>,
    /// Moments the pool was seen idle while a `wait_idle` caller waited:
    /// each one releases every caller waiting then (`wait_idle`).
    pub(super) idle_moments: u64,
    /// Wakers to wake once the lock is released ([`StateGuard`]).
    pub(super) wakes: Vec<std::task::Waker>,
}

/// The pool's state, locked. Wakers queued while it is held (async
/// submitters told to try again) are woken once it is unlocked, never under
/// it: a waker is user code, and one that calls back into the pool would
/// deadlock it, one that panics would unwind through the pool's
/// bookkeeping (a worker listed idle and never told so). A panicking waker
/// is caught.
pub(crate) struct StateGuard<'a> {
    guard: Option<MutexGuard<'a, State>>,
    mutex: &'a Mutex<State>,
}

impl<'a> StateGuard<'a> {
    /// Waits on `cv`, releasing the lock meanwhile; as a condvar's wait, it
    /// may return early (the callers loop). With wakers queued it wakes them
    /// (outside the lock) and returns at once instead.
    pub(super) fn wait(self, cv: &Condvar) -> StateGuard<'a> {
        self.wait_for(cv, None)
    }

    /// [`wait`](Self::wait) for at most `timeout`.
    pub(super) fn wait_timeout(self, cv: &Condvar, timeout: Duration) -> StateGuard<'a> {
        self.wait_for(cv, Some(timeout))
    }

    fn wait_for(mut self, cv: &Condvar, timeout: Option<Duration>) -> StateGuard<'a> {
        let mutex = self.mutex;
        let mut guard = self.guard.take().expect("a state guard holds its lock");
        if !guard.wakes.is_empty() {
            let wakes = std::mem::take(&mut guard.wakes);
            drop(guard);
            wake_all(wakes);
            return StateGuard {
                guard: Some(sync::lock(mutex)),
                mutex,
            };
        }
        let guard = match timeout {
            None => sync::wait(cv, guard),
            Some(timeout) => sync::wait_timeout(cv, guard, timeout),
        };
        StateGuard {
            guard: Some(guard),
            mutex,
        }
    }
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        self.guard.as_ref().expect("a state guard holds its lock")
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("a state guard holds its lock")
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            if guard.wakes.is_empty() {
                return;
            }
            let wakes = std::mem::take(&mut guard.wakes);
            drop(guard);
            wake_all(wakes);
        }
    }
}

/// Wakes each waker, catching (and quietly dropping) a waker's panic.
fn wake_all(wakes: Vec<std::task::Waker>) {
    for waker in wakes {
        super::log_quietly(|| waker.wake());
    }
}

impl Inner {
    pub(super) fn new(builder: PoolBuilder) -> Inner {
        let capacity = builder.capacity.unwrap_or(UNBOUNDED);
        Inner {
            state: Mutex::new(State {
                idle: IdleWorkers::new(),
                workers: 0,
                deposits: VecDeque::new(),
                capacity,
                closed: false,
                epoch: 0,
                threads: 0,
                maintenance: false,
                async_waiters: VecDeque::new(),
                idle_moments: 0,
                wakes: Vec::new(),
            }),
            purge_wakeup: Condvar::new(),
            threads: Mutex::new(Registry::default()),
            all_exited: Condvar::new(),
            handles: AtomicUsize::new(1),
            config: Config {
                expiry: builder.expiry,
                min_workers: builder.min_workers,
                nonblocking: builder.nonblocking,
                max_blocking_tasks: builder.max_blocking_tasks,
                panic_handler: builder.panic_handler,
                disable_purge: builder.disable_purge,
                task_deadline: builder.task_deadline,
                thread_name: builder.thread_name,
                stack_size: builder.stack_size,
            },
            gauges: Gauges {
                workers: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                capacity: AtomicUsize::new(capacity),
                closed: AtomicBool::new(false),
            },
            queue: TaskQueue::new(builder.queue_capacity, capacity),
            spinners: Spinners::new(),
            admission: super::admission::Admission::new(),
            room: builder.room,
            panicked: ReportUsize::new(0),
            next_worker_no: ReportUsize::new(0),
            root: std::sync::Mutex::new(CancelToken::new()),
            timers: std::sync::Mutex::new(Timers::default()),
            idle_waiters: std::sync::atomic::AtomicUsize::new(0),
            became_idle: Condvar::new(),
            async_waiting: std::sync::atomic::AtomicUsize::new(0),
            stats: crate::stats::Recorder::new(),
            name: builder.name,
            monitors: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Locks the pool's state; see [`StateGuard`].
    pub(crate) fn lock_state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: Some(sync::lock(&self.state)),
            mutex: &self.state,
        }
    }

    /// Counts `n` more workers: `State::workers` and its gauge together.
    pub(super) fn add_workers(&self, state: &mut State, n: usize) {
        state.workers += n;
        self.gauges.workers.store(state.workers, Ordering::SeqCst);
    }

    /// Counts `n` workers fewer: `State::workers` and its gauge together.
    pub(super) fn remove_workers(&self, state: &mut State, n: usize) {
        state.workers -= n;
        self.gauges.workers.store(state.workers, Ordering::SeqCst);
    }

    pub(super) fn sync_idle_gauge(&self, state: &State) {
        self.gauges.idle.store(state.idle.len(), Ordering::SeqCst);
    }

    /// Blocked submitters and async ones waiting for room.
    pub(super) fn sync_waiting_gauge(&self, state: &State) {
        self.gauges.waiting.store(
            state.deposits.len() + state.async_waiters.len(),
            Ordering::SeqCst,
        );
        self.async_waiting.store(
            state.async_waiters.len(),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    pub(super) fn set_capacity(&self, state: &mut State, capacity: usize) {
        state.capacity = capacity;
        self.gauges.capacity.store(capacity, Ordering::SeqCst);
    }

    /// Opens or closes the pool: `State::closed`, its gauge, and the bit that
    /// closes the lock-free way in, together.
    pub(super) fn set_closed(&self, state: &mut State, closed: bool) {
        state.closed = closed;
        self.gauges.closed.store(closed, Ordering::SeqCst);
        if closed {
            self.admission.close();
        } else {
            self.admission.open();
        }
    }

    pub(super) fn capacity_now(&self) -> usize {
        self.gauges.capacity.load(Ordering::SeqCst)
    }

    pub(super) fn is_closed(&self) -> bool {
        self.gauges.closed.load(Ordering::SeqCst)
    }

    /// Whether the gauges say a task would wait: no worker spinning or
    /// idle, and no room to start one. A hint for the lock-free path; the
    /// locked path decides.
    pub(super) fn saturated(&self) -> bool {
        let gauges = &self.gauges;
        gauges.idle.load(Ordering::SeqCst) == 0
            && gauges.workers.load(Ordering::SeqCst) >= gauges.capacity.load(Ordering::SeqCst)
    }

    /// Whether the workers are over the capacity in force (a `tune` down not
    /// yet settled); the worker decides under the lock. `SeqCst`, so that a
    /// worker that took a task pushed after a `tune` returned sees the new
    /// capacity (pair TUNE in `PROTOCOL.md`).
    pub(super) fn over_capacity(&self) -> bool {
        self.gauges.workers.load(Ordering::SeqCst) > self.gauges.capacity.load(Ordering::SeqCst)
    }
}
