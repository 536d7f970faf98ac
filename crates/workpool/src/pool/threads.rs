//! The pool's OS threads: starting them, counting them, and joining them,
//! so that `release_timeout` can promise none is left.
//!
//! [`Threads`] owns the handles and the condvar `release_timeout` waits on;
//! the count under the pool's lock ([`ThreadCount`]) rises with the
//! decision to start a thread (`Threads::counted`) and falls in the thread's
//! exit guard (`Threads::gone`), however the thread ends.

use super::state::Inner;
use super::task::Task;
use super::worker::{self, Next, Parker};
use crate::error::PoolError;
use crate::sync::{self, thread, Arc};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Threads in `Registry::finished` beyond which spawning a worker joins them,
/// so a pool without purge that churns threads keeps a bounded list.
const REAP_THRESHOLD: usize = 64;

/// Threads of all the pools of the process, from just before each spawn
/// until the thread is joined (or its handle dropped), when its stack is
/// unmapped: kept at most `PoolBuilder::thread_limit`, so that no spawn
/// comes near the point where `std` aborts the process (see there).
/// Not modelled under loom: no model comes near the limit.
#[cfg(not(loom))]
static PROCESS_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One place under the process's thread limit, given back on drop.
struct ThreadPlace(());

impl ThreadPlace {
    fn take() -> std::io::Result<ThreadPlace> {
        #[cfg(not(loom))]
        {
            let limit = crate::PoolBuilder::thread_limit();
            let taken = PROCESS_THREADS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            });
            if taken.is_err() {
                return Err(std::io::Error::other(format!(
                    "the pools of this process have {limit} threads, \
                     as many as they may keep alive (see `PoolBuilder::thread_limit`)"
                )));
            }
        }
        Ok(ThreadPlace(()))
    }
}

impl Drop for ThreadPlace {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        PROCESS_THREADS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A pool thread's handle, holding its place under the thread limit until
/// it is joined or dropped.
struct Handle {
    thread: thread::JoinHandle<()>,
    _place: ThreadPlace,
}

/// The pool's threads, and how they are told apart and waited for.
pub(super) struct Threads {
    registry: sync::Mutex<Registry>,
    /// `release_timeout` waits here, under the pool's lock, for the count to
    /// reach zero.
    all_exited: sync::Condvar,
    /// Numbers worker threads in their names; reporting only.
    next_worker_no: std::sync::atomic::AtomicUsize,
}

/// The pool's OS threads (workers, the maintenance thread, monitors)
/// counted as started and not yet finished, under the pool's lock.
#[derive(Debug, Default)]
pub(super) struct ThreadCount(usize);

impl Threads {
    pub(super) fn new() -> Threads {
        Threads {
            registry: sync::Mutex::new(Registry::default()),
            all_exited: sync::Condvar::new(),
            next_worker_no: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Under the lock: `n` threads are about to start.
    pub(super) fn counted(&self, count: &mut ThreadCount, n: usize) {
        count.0 += n;
    }

    /// Under the lock: a counted thread finished, or never started.
    pub(super) fn gone(&self, count: &mut ThreadCount) {
        count.0 -= 1;
        if count.0 == 0 {
            self.all_exited.notify_all();
        }
    }
}

#[derive(Default)]
struct Registry {
    live: HashMap<usize, Handle>,
    /// Threads that have run their last line and only need joining.
    finished: Vec<Handle>,
    next_id: usize,
}

/// Runs when a pool thread ends, however it ends (a panic of the pool's own
/// code included): files its handle for joining, then stops counting it.
struct ThreadExit {
    inner: Arc<Inner>,
    id: usize,
}

impl Drop for ThreadExit {
    fn drop(&mut self) {
        {
            let mut threads = sync::lock(&self.inner.threads.registry);
            if let Some(handle) = threads.live.remove(&self.id) {
                threads.finished.push(handle);
            }
        }
        self.inner.thread_gone(&mut self.inner.lock_state());
    }
}

impl Inner {
    /// Starts a worker for `task`, which the caller has counted in `workers`
    /// and `threads` (and, in hand-off mode, in flight). If the OS refuses
    /// the thread, the counts are given back with the task.
    pub(super) fn start_worker(self: &Arc<Self>, task: Task) -> Result<(), (PoolError, Task)> {
        self.start_worker_with(Some(task)).map_err(|(error, task)| {
            self.queue.unreserve();
            (error, task.expect("a refused thread gives its task back"))
        })
    }

    /// Starts a worker, counted like [`start_worker`](Self::start_worker), to
    /// take a queued task.
    pub(super) fn start_worker_for_queue(self: &Arc<Self>) -> Result<(), PoolError> {
        self.start_worker_with(None).map_err(|(error, _)| error)
    }

    fn start_worker_with(
        self: &Arc<Self>,
        task: Option<Task>,
    ) -> Result<(), (PoolError, Option<Task>)> {
        // The task travels in a shared cell so that it comes back if the OS
        // refuses the thread (`Builder::spawn` would drop it with the closure).
        let cell = std::sync::Arc::new(std::sync::Mutex::new(task));
        let first = std::sync::Arc::clone(&cell);
        let take = |cell: &std::sync::Mutex<Option<Task>>| {
            cell.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        let inner = Arc::clone(self);
        let parker = Arc::new(Parker::new());
        let spawned = self.spawn_thread(self.worker_name(), move || {
            worker::run(inner, parker, take(&first), false);
        });
        let Err(e) = spawned else {
            return Ok(());
        };
        let mut state = self.lock_state();
        self.crew.left(&mut state.crew, 1);
        self.thread_gone(&mut state);
        self.serve_deposits(&mut state);
        drop(state);
        let error = PoolError::SpawnFailed(std::sync::Arc::new(e));
        Err((error, take(&cell)))
    }

    /// Starts the workers that `min_workers` (never above the capacity) is
    /// short of, and puts them on the idle list before returning, so the
    /// pool's next tasks find them there.
    ///
    /// For the life `epoch` only: a `release` (or a later `reboot`) that
    /// comes while they start finds them nowhere yet, so they check it
    /// themselves once they are started.
    pub(super) fn start_idle_workers(self: &Arc<Self>, epoch: u64) -> std::io::Result<()> {
        let missing = {
            let mut state = self.lock_state();
            if state.life.is_over(epoch) {
                return Ok(());
            }
            let missing = state.crew.missing(self.config.min_workers);
            self.count_new_workers(&mut state, missing);
            missing
        };
        // Until they are on the idle list these workers are ours alone: no
        // submitter can reach them, so on failure we may send them `Exit`.
        let mut started = Vec::with_capacity(missing);
        for _ in 0..missing {
            let parker = Arc::new(Parker::new());
            let theirs = Arc::clone(&parker);
            let inner = Arc::clone(self);
            match self.spawn_thread(self.worker_name(), move || {
                worker::run(inner, theirs, None, true)
            }) {
                Ok(()) => started.push(parker),
                Err(e) => {
                    let mut state = self.lock_state();
                    self.crew.left(&mut state.crew, missing);
                    for _ in started.len()..missing {
                        self.thread_gone(&mut state);
                    }
                    self.serve_deposits(&mut state);
                    drop(state);
                    for worker in started {
                        worker.send(Next::Exit);
                    }
                    return Err(e);
                }
            }
        }
        let mut state = self.lock_state();
        if state.life.is_closed() {
            // Released while they started: the release's drain could not
            // reach them. They look at the queue, drain it with the others,
            // and leave, as the release's own idle workers do.
            drop(state);
            for worker in started {
                worker.send(Next::Look);
            }
            return Ok(());
        }
        self.crew.all_went_idle(&mut state.crew, started);
        self.serve_deposits(&mut state);
        // A task queued by a submitter that saw none of them must not wait.
        self.look_after_going_idle(state, true);
        Ok(())
    }

    /// Spawns a thread of the pool that is not a worker (a monitor),
    /// counted so that `release_timeout` waits for it.
    pub(crate) fn spawn_counted<F>(self: &Arc<Self>, name: String, body: F) -> std::io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.threads.counted(&mut self.lock_state().threads, 1);
        self.spawn_thread(name, body)
            .inspect_err(|_| self.thread_gone(&mut self.lock_state()))
    }

    fn worker_name(&self) -> String {
        let no = self.threads.next_worker_no.fetch_add(1, Ordering::Relaxed);
        format!("{}-{no}", self.config.thread_name)
    }

    /// Spawns a thread of the pool, already counted in `ThreadCount`, and
    /// files its handle, so that `release_timeout` can join it. If the OS
    /// refuses, the caller gives the count back.
    pub(super) fn spawn_thread<F>(self: &Arc<Self>, name: String, body: F) -> std::io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        #[cfg(all(test, not(loom)))]
        if sync::faults::spawn_refused(&name) {
            return Err(std::io::Error::other(
                "refused by the test's fault injection",
            ));
        }
        let place = match ThreadPlace::take() {
            Ok(place) => place,
            Err(_) => {
                // This pool's ended threads hold places until joined: join
                // them (as below, never under the state lock) and try again.
                self.join_finished();
                ThreadPlace::take()?
            }
        };
        let mut builder = thread::Builder::new().name(name);
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let inner = Arc::clone(self);
        // The registry stays locked until the handle is in it, so the thread
        // cannot file itself as finished before it is registered.
        let mut threads = sync::lock(&self.threads.registry);
        let id = threads.next_id;
        threads.next_id += 1;
        let thread = builder.spawn(move || {
            let _exit = ThreadExit { inner, id };
            body();
        })?;
        threads.live.insert(
            id,
            Handle {
                thread,
                _place: place,
            },
        );
        let reap = if threads.finished.len() >= REAP_THRESHOLD {
            std::mem::take(&mut threads.finished)
        } else {
            Vec::new()
        };
        drop(threads);
        join_all(reap);
        Ok(())
    }

    /// A thread counted in `ThreadCount` finished or never started.
    pub(super) fn thread_gone(&self, state: &mut super::state::State) {
        self.threads.gone(&mut state.threads);
    }

    /// Waits until every thread of the pool has exited, then joins them.
    pub(crate) fn wait_for_threads(&self, timeout: Duration) -> Result<(), PoolError> {
        if worker::is_worker_of(self) {
            return Err(PoolError::WouldDeadlock);
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock_state();
        while state.threads.0 > 0 {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Err(PoolError::Timeout);
            }
            state = state.wait_timeout(&self.threads.all_exited, left);
        }
        drop(state);
        self.join_finished();
        Ok(())
    }

    /// Joins the threads that have finished.
    pub(super) fn join_finished(&self) {
        let finished = std::mem::take(&mut sync::lock(&self.threads.registry).finished);
        join_all(finished);
    }
}

fn join_all(handles: Vec<Handle>) {
    for Handle { thread, _place } in handles {
        // A pool thread catches every panic of user code, so `join` only
        // fails if the pool itself is broken; nothing is left to do then.
        let _ = thread.join();
        // `_place` is given back now that the thread's stack is gone.
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::sync::faults::{allow_spawns, refuse_spawns};
    use crate::{BuildError, Pool, PoolError, TrySubmitError};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Barrier};
    use std::thread::{self, ThreadId};
    use std::time::{Duration, Instant};

    const PATIENCE: Duration = Duration::from_secs(30);

    /// The message of a refused spawn, as `SpawnFailed` quotes it.
    const REFUSED: &str = "refused by the test's fault injection";

    /// The `io::Error` of a refused spawn, as `SpawnFailed` holds it.
    fn refusal() -> Arc<std::io::Error> {
        Arc::new(std::io::Error::other(REFUSED))
    }

    #[track_caller]
    fn wait_until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Threads of this process whose name starts with `prefix` (Linux shows
    /// the first 15 bytes of a name).
    #[cfg(target_os = "linux")]
    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end().starts_with(prefix))
            .count()
    }

    /// A task that holds its worker until the returned sender is dropped,
    /// and tells on `started` when it runs.
    fn held(started: &mpsc::Sender<String>) -> (impl FnOnce() + Send + 'static, mpsc::Sender<()>) {
        let (release, hold) = mpsc::channel::<()>();
        let started = started.clone();
        let task = move || {
            let name = thread::current().name().unwrap_or_default().to_owned();
            started.send(name).unwrap();
            let _ = hold.recv();
        };
        (task, release)
    }

    /// `try_submit` gives the closure back, captures and all, when its
    /// thread cannot be made; nothing is counted for it.
    #[test]
    fn a_refused_thread_gives_the_closure_back_to_try_submit() {
        let pool = Pool::builder()
            .capacity(2)
            .thread_name("fault-try")
            .disable_purge(true)
            .build()
            .unwrap();
        refuse_spawns("fault-try", 1);
        let captured = String::from("still mine");
        let refused = pool.try_submit(move || drop(captured)).unwrap_err();
        assert!(
            matches!(refused, TrySubmitError::SpawnFailed(_)),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "the pool could not start a worker thread for the task"
        );
        let stats = pool.stats();
        assert_eq!((pool.workers(), pool.queued(), stats.submitted), (0, 0, 0));
        assert_eq!((stats.rejected, stats.workers_started), (1, 1));
        // The closure is whole: calling it drops what it captured, here.
        (refused.into_inner())();
        assert_eq!(pool.try_submit(|| ()).map_err(|e| e.to_string()), Ok(()));
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }

    /// `spawn` returns the error at the call: no handle is made for a task
    /// that was not accepted, and the task never runs.
    #[test]
    fn spawn_returns_spawn_failed_at_the_call() {
        let pool = Pool::builder()
            .capacity(2)
            .thread_name("fault-spawn")
            .disable_purge(true)
            .build()
            .unwrap();
        refuse_spawns("fault-spawn", 1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let refused = pool.spawn(move || counted.fetch_add(1, Ordering::SeqCst));
        let error = refused.map(|_| ()).unwrap_err();
        assert_eq!(error, PoolError::SpawnFailed(refusal()));
        assert_eq!(
            error.to_string(),
            format!("the pool could not start a thread: {REFUSED}")
        );
        let counted = Arc::clone(&ran);
        let handle = pool
            .spawn(move || counted.fetch_add(1, Ordering::SeqCst))
            .unwrap();
        assert_eq!(handle.join().unwrap(), 0, "only the accepted task ran");
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(pool.stats().rejected, 1);
    }

    /// While no thread can be made, the pool runs every task it can on the
    /// worker it has, refuses (at the call) only those that need another
    /// one, and starts workers again once threads can be made.
    #[test]
    fn without_new_threads_the_pool_serves_tasks_with_the_workers_it_has() {
        let pool = Pool::builder()
            .capacity(4)
            .min_workers(1)
            .thread_name("fault-keep")
            .disable_purge(true)
            .build()
            .unwrap();
        wait_until("the min worker is idle", || pool.idle() == 1);
        refuse_spawns("fault-keep", usize::MAX);
        let (tx, rx) = mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            pool.submit(move || {
                tx.send((i, thread::current().name().unwrap().to_owned()))
                    .unwrap();
            })
            .unwrap();
            assert_eq!(
                rx.recv_timeout(PATIENCE).unwrap(),
                (i, "fault-keep-0".into())
            );
            wait_until("the worker is idle again", || pool.idle() == 1);
        }
        // Busy, it leaves no worker for the next task: that one is refused.
        let (started_tx, started) = mpsc::channel();
        let (task, release) = held(&started_tx);
        pool.submit(task).unwrap();
        assert_eq!(started.recv_timeout(PATIENCE).unwrap(), "fault-keep-0");
        let refused = pool.submit(|| unreachable!("a refused task never runs"));
        assert!(
            matches!(refused, Err(PoolError::SpawnFailed(_))),
            "{refused:?}"
        );
        assert_eq!((pool.workers(), pool.queued(), pool.waiting()), (1, 0, 0));
        // Threads can be made again: the next task gets a worker of its own
        // while the first is still held.
        allow_spawns("fault-keep");
        let (second, release_second) = held(&started_tx);
        pool.submit(second).unwrap();
        // (The refused thread used up the name `fault-keep-1`.)
        assert_eq!(started.recv_timeout(PATIENCE).unwrap(), "fault-keep-2");
        assert_eq!(pool.workers(), 2);
        drop((release, release_second));
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        let stats = pool.stats();
        assert_eq!(
            (stats.submitted, stats.completed, stats.rejected),
            (22, 22, 1)
        );
    }

    /// A submitter blocked for room, whose room turns out to need a new
    /// thread, gets `SpawnFailed` and its task back; the blocked count
    /// goes back to zero.
    #[test]
    fn a_blocked_submitter_whose_room_needs_a_refused_thread_gets_spawn_failed() {
        let pool = Pool::builder()
            .capacity(1)
            .queue_capacity(0)
            .thread_name("fault-blocked")
            .disable_purge(true)
            .build()
            .unwrap();
        let (started_tx, started) = mpsc::channel();
        let (task, release) = held(&started_tx);
        pool.submit(task).unwrap();
        started.recv_timeout(PATIENCE).unwrap();
        let blocked = {
            let pool = pool.clone();
            thread::spawn(move || pool.submit(|| unreachable!("a refused task never runs")))
        };
        wait_until("the submitter blocks", || pool.waiting() == 1);
        refuse_spawns("fault-blocked", 1);
        pool.tune(2).unwrap();
        let result = blocked.join().unwrap();
        assert_eq!(result, Err(PoolError::SpawnFailed(refusal())));
        assert_eq!((pool.workers(), pool.waiting()), (1, 0));
        drop(release);
        let (tx, rx) = mpsc::channel();
        pool.submit(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }

    /// `build` with a `min_workers` thread refused fails with `SpawnFailed`
    /// and leaves no thread of the pool behind.
    #[test]
    fn build_fails_with_spawn_failed_and_leaves_no_thread_behind() {
        // Workers are `fault-minw-0`, `-1`, `-2`; the purge thread `-purge`.
        refuse_spawns("fault-minw-1", 1);
        let error = Pool::builder()
            .capacity(4)
            .min_workers(3)
            .thread_name("fault-minw")
            .build()
            .unwrap_err();
        assert_eq!(error, BuildError::SpawnFailed(refusal()));
        assert_eq!(
            error.to_string(),
            format!("the pool could not start a thread: {REFUSED}")
        );
        #[cfg(target_os = "linux")]
        wait_until("every thread of the pool has ended", || {
            threads_named("fault-minw") == 0
        });
    }

    /// A `MultiPool` reports a refused thread at the call too, and takes
    /// the next task.
    #[test]
    fn a_multi_pool_reports_a_refused_thread_and_recovers() {
        let builder = Pool::builder()
            .capacity(1)
            .thread_name("fault-multi")
            .disable_purge(true);
        let pools =
            crate::MultiPool::with_builder(2, crate::LoadBalancing::RoundRobin, builder).unwrap();
        refuse_spawns("fault-multi", 1);
        let refused = pools.submit(|| unreachable!("a refused task never runs"));
        assert!(
            matches!(refused, Err(PoolError::SpawnFailed(_))),
            "{refused:?}"
        );
        let (tx, rx) = mpsc::channel();
        pools.submit(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
    }

    /// Regression (a failed spawn ran a queued user task inline on the caller
    /// of `tune`, `release` or `drop`, all documented as not waiting): the
    /// task stays queued for the workers there are, and the call returns.
    #[test]
    fn a_failed_spawn_never_runs_a_task_on_the_caller() {
        let pool = Pool::builder()
            .capacity(1)
            .queue_capacity(4)
            .thread_name("fault-tune")
            .disable_purge(true)
            .build()
            .unwrap();
        let hold = Arc::new(Barrier::new(2));
        let held = Arc::clone(&hold);
        pool.submit(move || {
            held.wait();
        })
        .unwrap();
        let (tx, rx) = mpsc::channel::<ThreadId>();
        for _ in 0..2 {
            let tx = tx.clone();
            pool.submit(move || tx.send(thread::current().id()).unwrap())
                .unwrap();
        }
        assert_eq!(pool.queued(), 2);
        refuse_spawns("fault-tune", 2);
        let started = Instant::now();
        pool.tune(3).unwrap();
        assert!(started.elapsed() < PATIENCE);
        assert!(rx.try_recv().is_err(), "a queued task ran on tune's caller");
        assert_eq!(pool.workers(), 1, "the refused workers are not counted");
        hold.wait();
        let me = thread::current().id();
        for _ in 0..2 {
            assert_ne!(rx.recv_timeout(PATIENCE).unwrap(), me);
        }
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }

    /// A failed spawn for a task gives the task back with `SpawnFailed`; the
    /// pool serves the next tasks once threads can start again.
    #[test]
    fn a_refused_thread_refuses_its_task_and_the_pool_recovers() {
        let pool = Pool::builder()
            .capacity(2)
            .thread_name("fault-submit")
            .disable_purge(true)
            .build()
            .unwrap();
        refuse_spawns("fault-submit", 1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let refused = pool.submit(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        assert!(
            matches!(refused, Err(PoolError::SpawnFailed(_))),
            "{refused:?}"
        );
        assert_eq!((pool.workers(), pool.queued()), (0, 0));
        let counted = Arc::clone(&ran);
        pool.submit(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    /// Regression (a failed spawn in `reboot` was only logged, leaving an
    /// open pool without its purge thread): `reboot` returns the error and
    /// the pool stays closed until a later `reboot` succeeds.
    #[test]
    fn reboot_returns_a_failed_spawn_and_leaves_the_pool_closed() {
        let pool = Pool::builder()
            .capacity(2)
            .min_workers(1)
            .thread_name("fault-reboot")
            .build()
            .unwrap();
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        refuse_spawns("fault-reboot", 1);
        let error = pool.reboot().unwrap_err();
        assert!(matches!(error, PoolError::SpawnFailed(_)), "{error:?}");
        assert!(pool.is_closed());
        assert_eq!(pool.submit(|| ()), Err(PoolError::Closed));
        assert_eq!(pool.reboot(), Ok(()));
        assert_eq!((pool.is_closed(), pool.workers()), (false, 1));
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }
}
