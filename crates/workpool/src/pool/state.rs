//! `Inner`: what the workers, the maintenance thread and every handle
//! share. It is made of subsystems, each owning its state behind private
//! fields and changed through methods named after events; where a
//! subsystem keeps state under the pool's lock, that part is a field of
//! [`State`], and the subsystem's methods take it:
//!
//! | subsystem | lock-free half (in `Inner`) | locked half (in `State`) | file |
//! |---|---|---|---|
//! | the way in, the pool's life | `admission` | `life` | `admission.rs` |
//! | workers, idle list, capacity | `crew` (gauges) | `crew` (`Roster`) | `crew.rs` |
//! | blocked and async submitters | `waiting` (gauges) | `waiters` | `deposit.rs` |
//! | the queue | `queue` | | `queue.rs` |
//! | spinning workers | `spinners` | | `hot.rs` |
//! | OS threads | `threads` | `threads` (the count) | `threads.rs` |
//! | timers, maintenance thread | `maintenance` | `maintenance` (runs?) | `maintenance.rs` |
//! | `wait_idle` | `idle_watch` | `idle_moments` | `lifecycle.rs` |
//! | keyed tasks' lanes | `keys` (its own locks) | | `keys.rs` |

use super::admission::{Admission, Life};
use super::crew::{Crew, Roster, UNBOUNDED};
use super::deposit::{Waiters, Waiting};
use super::hot::Spinners;
use super::lifecycle::{IdleMoments, IdleWatch};
use super::maintenance::{Maintenance, MaintenanceState};
use super::queue::TaskQueue;
use super::threads::{ThreadCount, Threads};
use crate::builder::{PanicHandler, PoolBuilder};
use crate::cancel::CancelToken;
use crate::sync::atomic::AtomicUsize;
use crate::sync::{self, Condvar, Mutex, MutexGuard};
use std::sync::atomic::AtomicUsize as ReportUsize;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Inner {
    /// Locked through [`Inner::lock_state`] only.
    state: Mutex<State>,
    /// The pool itself, for what a task reports through `&Inner` (the
    /// `Host` events) but needs the pool's `Arc` for: a retried task
    /// leaving its worker may have to start the maintenance thread.
    pub(super) me: std::sync::Weak<Inner>,
    pub(super) admission: Admission,
    pub(super) crew: Crew,
    pub(super) waiting: Waiting,
    pub(super) queue: TaskQueue,
    pub(super) spinners: Spinners,
    pub(super) threads: Threads,
    pub(super) maintenance: Maintenance,
    pub(super) idle_watch: IdleWatch,
    /// Lanes of keyed tasks (`keys.rs`).
    pub(crate) keys: super::keys::Keys,
    /// Live `Pool` handles; the last one to drop releases the pool.
    pub(super) handles: AtomicUsize,
    pub(super) config: Config,
    /// Shared with the other pools of a `MultiPool`: told whenever this pool
    /// may have room, so a submitter blocked on all of them takes the first.
    pub(super) room: Option<Arc<crate::multi::RoomSignal>>,
    /// Tasks that panicked since the pool was built; reporting only.
    pub(super) panicked: ReportUsize,
    /// The token every task token of this life derives from: `release`
    /// cancels it, `reboot` puts a fresh one.
    pub(super) root: std::sync::Mutex<CancelToken>,
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

/// What the pool's lock guards: the locked halves of the subsystems (see
/// the module docs), and the wakers to wake once it is released.
pub(crate) struct State {
    pub(super) life: Life,
    pub(super) crew: Roster,
    pub(super) waiters: Waiters,
    pub(super) threads: ThreadCount,
    pub(super) maintenance: MaintenanceState,
    pub(super) idle_moments: IdleMoments,
    /// Wakers to wake once the lock is released ([`StateGuard`]).
    pub(super) wakes: Vec<std::task::Waker>,
}

/// The pool's state, locked. Wakers queued while it is held (async
/// submitters told to try again) are woken once it is unlocked, never under
/// it: a waker is user code, and one that calls back into the pool would
/// deadlock it, one that panics would unwind through the pool's
/// bookkeeping (a worker listed idle and never told so). A panicking waker
/// is caught. Blocked submitters whose deposits were decided under it are
/// woken after it too (`deposit::Rousing`), so that they do not wake only
/// to block on it.
pub(crate) struct StateGuard<'a> {
    guard: Option<MutexGuard<'a, State>>,
    mutex: &'a Mutex<State>,
}

impl<'a> StateGuard<'a> {
    /// Waits on `cv`, releasing the lock meanwhile; as a condvar's wait, it
    /// may return early (the callers loop). With wake-ups queued (wakers,
    /// decided deposits) it gives them (outside the lock) and returns at
    /// once instead.
    pub(super) fn wait(self, cv: &Condvar) -> StateGuard<'a> {
        self.wait_for(cv, None)
    }

    /// [`wait`](Self::wait) for at most `timeout`.
    pub(super) fn wait_timeout(self, cv: &Condvar, timeout: Duration) -> StateGuard<'a> {
        self.wait_for(cv, Some(timeout))
    }

    fn wait_for(mut self, cv: &Condvar, timeout: Option<Duration>) -> StateGuard<'a> {
        let mutex = self.mutex;
        let guard = self.guard.take().expect("a state guard holds its lock");
        if guard.has_wake_ups() {
            unlock_then_wake(guard);
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
        if let Some(guard) = self.guard.take() {
            if guard.has_wake_ups() {
                unlock_then_wake(guard);
            }
        }
    }
}

impl State {
    /// Whether anyone is to be woken once the lock is released.
    fn has_wake_ups(&self) -> bool {
        !self.wakes.is_empty() || !self.waiters.rousing.is_empty()
    }
}

/// Releases the lock, then wakes the blocked submitters whose deposits were
/// decided under it and the async submitters told to try again.
fn unlock_then_wake(mut guard: MutexGuard<'_, State>) {
    let wakes = std::mem::take(&mut guard.wakes);
    let woken = guard.waiters.rousing.take();
    drop(guard);
    super::deposit::rouse(woken);
    wake_all(wakes);
}

/// Wakes each waker, catching (and quietly dropping) a waker's panic.
fn wake_all(wakes: Vec<std::task::Waker>) {
    for waker in wakes {
        super::log_quietly(|| waker.wake());
    }
}

impl Inner {
    /// Whether a full pool refuses instead of blocking.
    pub(crate) fn is_nonblocking(&self) -> bool {
        self.config.nonblocking
    }

    pub(super) fn new(builder: PoolBuilder, me: std::sync::Weak<Inner>) -> Inner {
        // An autoscaled pool starts at its capacity, brought within its
        // bounds (a bounded pool: checked at build).
        let capacity = match (builder.capacity, builder.autoscale) {
            (Some(capacity), Some(scale)) => {
                let (min, max) = scale.bounds_of();
                capacity.clamp(min, max)
            }
            (capacity, _) => capacity.unwrap_or(UNBOUNDED),
        };
        let scaler = builder
            .autoscale
            .map(|scale| super::scale::Scaler::new(scale, capacity));
        Inner {
            me,
            state: Mutex::new(State {
                life: Life::default(),
                crew: Roster::new(capacity),
                waiters: Waiters::default(),
                threads: ThreadCount::default(),
                maintenance: MaintenanceState::default(),
                idle_moments: IdleMoments::default(),
                wakes: Vec::new(),
            }),
            admission: Admission::new(),
            crew: Crew::new(capacity),
            waiting: Waiting::default(),
            queue: TaskQueue::new(builder.queue_capacity, capacity),
            spinners: Spinners::new(),
            threads: Threads::new(),
            maintenance: Maintenance::new(scaler),
            idle_watch: IdleWatch::new(),
            keys: super::keys::Keys::new(builder.queue_capacity),
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
            room: builder.room,
            panicked: ReportUsize::new(0),
            root: std::sync::Mutex::new(CancelToken::new()),
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

    /// Whether the pool is closed (a gauge; the lock decides).
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.admission.is_closed()
    }
}
