//! Loom models of the dispatch protocol, one per pair of `PROTOCOL.md` and
//! per defect it once had, and of the results layer (cancel, deadline and
//! release racing a task's start; joins and awaits racing its end; a
//! dropped async submit racing room). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p workpool --release --lib`.
//!
//! Under loom every lock, condvar, thread, protocol atomic, fence and queue
//! of the pool is loom's (`src/sync.rs`), and a spinning worker polls once,
//! so each model explores the interleavings of the real code, the lock-free
//! paths included. The purge thread is disabled (loom ignores timeouts); the
//! model of the purge calls one purge round directly.

use super::Pool;
use crate::error::PoolError;
use crate::PoolBuilder;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::time::{Duration, Instant};

/// Long enough never to pass inside a model; loom ignores it anyway.
const FOREVER: Duration = Duration::from_secs(3600);

/// Explores `f` with at most `LOOM_MAX_PREEMPTIONS` preemptions, 2 unless set.
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(2, f);
}

/// [`model`] with a default bound of its own, for a model whose search grows
/// too fast for 2 within the CI budget.
fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.check(f);
}

fn builder(capacity: usize, queue: usize) -> PoolBuilder {
    Pool::builder()
        .capacity(capacity)
        .queue_capacity(queue)
        .disable_purge(true)
}

/// A pool of `capacity` with the default queue, as a user would build it.
fn default_pool(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .disable_purge(true)
        .build()
        .expect("valid options")
}

fn counting_task(ran: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let ran = Arc::clone(ran);
    move || {
        ran.fetch_add(1, Ordering::SeqCst);
    }
}

fn submit_from_thread(
    pool: &Pool,
    ran: &Arc<AtomicUsize>,
) -> thread::JoinHandle<Result<(), PoolError>> {
    let pool = pool.clone();
    let task = counting_task(ran);
    thread::spawn(move || pool.submit(task))
}

/// Races `release` against a submit of a counting task from another
/// thread, and returns the submit's result. A submit that begins after
/// `release` returned must be refused.
fn release_racing_a_submit(pool: &Pool, ran: &Arc<AtomicUsize>) -> Result<(), PoolError> {
    let released = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (pool, ran, released) = (pool.clone(), Arc::clone(ran), Arc::clone(&released));
        thread::spawn(move || {
            let after_release = released.load(Ordering::SeqCst);
            let submitted = pool.submit(counting_task(&ran));
            if after_release {
                assert_eq!(submitted, Err(PoolError::Closed));
            }
            submitted
        })
    };
    pool.release();
    released.store(true, Ordering::SeqCst);
    submitter.join().unwrap()
}

/// Spins, yielding to loom's scheduler, until `condition` holds.
fn await_until(condition: impl Fn() -> bool) {
    while !condition() {
        thread::yield_now();
    }
}

/// A gate tasks wait at until the model opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Submits a task that holds its worker until the returned gate opens.
fn hold_a_worker(pool: &Pool) -> Arc<Gate> {
    let gate = Arc::new(Gate::default());
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate
}

/// RELEASE, and defect 5: a submit racing `release` on the lock-free path
/// (a worker spinning for a task after its first). Once `release` has
/// returned, a submit is refused; an accepted task runs exactly once.
fn submit_after_release_returned_is_refused(queue: usize) {
    model(move || {
        let pool = builder(1, queue).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        // A first task, so that the worker is spinning or parked when the
        // race starts.
        pool.submit(counting_task(&ran)).unwrap();
        let submitted = release_racing_a_submit(&pool, &ran);
        assert_eq!(pool.inner.wait_for_threads(FOREVER), Ok(()));
        let expected = if submitted.is_ok() { 2 } else { 1 };
        assert_eq!(ran.load(Ordering::SeqCst), expected);
        assert_eq!(pool.workers(), 0);
    });
}

#[test]
fn release_pair_hand_off() {
    submit_after_release_returned_is_refused(0);
}

#[test]
fn release_pair_queue() {
    submit_after_release_returned_is_refused(1);
}

/// PARK and SPIN: a task queued without the lock while the only worker
/// turns from busy to spinning to parked is never stranded.
#[test]
fn park_and_spin_pairs_strand_no_task() {
    model(|| {
        let pool = builder(1, 1).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        assert_eq!(submitter.join().unwrap(), Ok(()));
        // Every task ran before the pool was released: no release drains
        // a task stranded in the queue.
        await_until(|| ran.load(Ordering::SeqCst) == 2);
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

/// DEPOSIT, and defect 2: two submitters blocked on a full hand-off pool;
/// each unit of room (each task that ends) serves a distinct one, so both
/// return and every task runs once.
#[test]
fn deposit_pair_two_blocked_submitters_both_served() {
    model(|| {
        let pool = builder(1, 0).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Gate::default());
        {
            let (gate, ran) = (Arc::clone(&gate), Arc::clone(&ran));
            pool.submit(move || {
                gate.wait();
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let first = submit_from_thread(&pool, &ran);
        let second = submit_from_thread(&pool, &ran);
        gate.open();
        assert_eq!(first.join().unwrap(), Ok(()));
        assert_eq!(second.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    });
}

/// Defect 3: `reboot` racing a submit, with `min_workers` and a queue: a
/// task accepted beside the rebooted pool's idle worker runs.
#[test]
fn reboot_with_queue_and_min_workers_strands_no_task() {
    model(|| {
        let pool = builder(1, 1).min_workers(1).build().unwrap();
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        assert_eq!(pool.reboot(), Ok(()));
        let submitted = submitter.join().unwrap();
        assert!(pool.workers() <= 1, "min_workers above the capacity");
        if submitted.is_ok() {
            await_until(|| ran.load(Ordering::SeqCst) == 1);
        }
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

/// Defect 1: `tune` down with a queue. Once the excess workers have left,
/// the tasks submitted after run one at a time.
#[test]
fn tune_down_with_a_queue_is_enforced() {
    // Three threads spin-wait here for the settling; 2 preemptions take over
    // six minutes.
    model_bounded(1, || {
        let pool = builder(2, 2).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        pool.submit(counting_task(&ran)).unwrap();
        assert_eq!(pool.tune(1), Ok(()));
        await_until(|| ran.load(Ordering::SeqCst) == 2 && pool.workers() <= 1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            pool.submit(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(most.load(Ordering::SeqCst), 1);
    });
}

/// The purge ending an idle worker while a submitter takes that worker:
/// the worker either runs the task or exits, never both, and the task runs.
#[test]
fn purge_racing_a_submit_that_reuses_the_worker() {
    model(|| {
        let pool = builder(1, 0).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        await_until(|| pool.idle() == 1);
        let submitter = submit_from_thread(&pool, &ran);
        let later = Instant::now() + Duration::from_secs(3);
        pool.inner.expire_idle(pool.inner.lock_state(), later);
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!(pool.workers(), 0);
    });
}

/// MULTI, and defect 9: a submitter blocked on every pool of a `MultiPool`
/// takes whichever pool frees up first; every task runs once.
#[test]
fn multi_pair_a_blocked_submit_takes_the_pool_that_frees_up() {
    model(|| {
        let builder = builder(1, 0);
        let pools =
            crate::MultiPool::with_builder(2, crate::LoadBalancing::RoundRobin, builder).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        pools.submit(counting_task(&ran)).unwrap();
        pools.submit(counting_task(&ran)).unwrap();
        let submitter = {
            let (pools, task) = (pools.clone(), counting_task(&ran));
            thread::spawn(move || pools.submit(task))
        };
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pools.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    });
}

// The models below go through the public API only: the races between
// submit, release, tune and a worker going idle as a user meets them.

/// A submit racing a release: the task either runs exactly once and
/// `release_timeout` has waited for it, or it is refused with `Closed` and
/// never runs. Either way no thread is left.
#[test]
fn submit_racing_release_runs_the_task_once_or_refuses_it() {
    model(|| {
        let pool = default_pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        let released = pool.release_timeout(FOREVER);
        let submitted = submitter.join().unwrap();
        assert_eq!(released, Ok(()));
        match submitted {
            Ok(()) => assert_eq!(ran.load(Ordering::SeqCst), 1),
            Err(e) => {
                assert_eq!(e, PoolError::Closed);
                assert_eq!(ran.load(Ordering::SeqCst), 0);
            }
        }
        assert_eq!(pool.workers(), 0);
    });
}

/// A worker going idle racing a submitter that finds the pool at capacity:
/// the submitter is never left blocked with an idle worker beside it.
#[test]
fn worker_going_idle_wakes_a_blocked_submitter() {
    model(|| {
        let pool = default_pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
}

/// A release racing a submitter blocked at capacity: the submitter returns
/// `Closed` (or got the worker first); the running task still finishes.
#[test]
fn release_wakes_a_blocked_submitter() {
    model(|| {
        let pool = default_pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        // `release_timeout` releases exactly as `release` does, then waits for
        // the worker through the pool's own (modelled) lock.
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        let submitted = submitter.join().unwrap();
        let expected = if submitted.is_ok() { 2 } else { 1 };
        assert_eq!(ran.load(Ordering::SeqCst), expected);
        if let Err(e) = submitted {
            assert_eq!(e, PoolError::Closed);
        }
    });
}

/// The last handle dropped on one thread while another submits through its
/// own clone: every accepted task runs, and every thread ends by itself.
#[test]
fn last_handle_drop_racing_a_submit_loses_nothing() {
    model(|| {
        let pool = default_pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        drop(pool);
        // The clone in the submitter keeps the pool open until it drops.
        assert_eq!(submitter.join().unwrap(), Ok(()));
        // Loom runs every thread to its end before the execution completes,
        // and reports a deadlock if one never ends; the worker must run the
        // task and exit on its own.
    });
}

/// Two submitters racing for the one worker that `min_workers` started idle:
/// both tasks run, one after the other, on a pool that never exceeds its
/// capacity of one.
#[test]
fn submitters_racing_for_a_min_worker_both_get_it_in_turn() {
    model(|| {
        let pool = Pool::builder()
            .capacity(1)
            .min_workers(1)
            .disable_purge(true)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = submit_from_thread(&pool, &ran);
        pool.submit(counting_task(&ran)).unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert!(pool.workers() <= 1);
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
}

/// `tune` growing the pool racing the worker that frees up, while a
/// submitter is blocked with its task deposited: the task runs exactly once,
/// on the worker that freed up (which takes the deposit) or on a new one
/// (the submitter, told to retry, takes its task back first).
#[test]
fn tune_up_racing_a_freed_worker_runs_a_deposited_task_once() {
    model(|| {
        let pool = default_pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        let submitter = submit_from_thread(&pool, &ran);
        pool.tune(2).unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!(pool.workers(), 0);
    });
}

// The results layer (`job.rs`, `handle.rs`, `cancel.rs`): its stage word,
// result slot, condvars and token come through `crate::sync` too.

/// Cancel racing a worker that takes the task, with and without a queue,
/// for a caller's cancel and for a deadline: the task runs at most once,
/// and its handle says which happened; `cancel` returns true exactly when
/// the task never ran.
/// Runs `cancel` on `handle` from a thread of its own (racing whatever the
/// pool does meanwhile), and gives back what it returned and the handle.
fn cancelled_on_another_thread<T: Send + 'static>(
    handle: crate::TaskHandle<T>,
    cancel: impl FnOnce(&crate::TaskHandle<T>) -> bool + Send + 'static,
) -> (bool, crate::TaskHandle<T>) {
    let handle = std::sync::Arc::new(handle);
    let canceller = {
        let handle = std::sync::Arc::clone(&handle);
        thread::spawn(move || cancel(&handle))
    };
    let stopped = canceller.join().unwrap();
    let handle = std::sync::Arc::try_unwrap(handle).unwrap();
    (stopped, handle)
}

fn cancel_racing_start(queue: usize, why: crate::job::Why) {
    model(move || {
        let pool = builder(1, queue).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let handle = pool
            .spawn(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let (stopped, handle) = cancelled_on_another_thread(handle, move |h| h.cancel_for(why));
        let result = handle.join();
        let ran = ran.load(Ordering::SeqCst);
        match result {
            Ok(()) => assert_eq!((ran, stopped), (1, false)),
            Err(error) => {
                assert_eq!((ran, stopped), (0, true));
                assert_eq!(error.is_deadline(), why == crate::job::Why::Deadline);
            }
        }
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

#[test]
fn cancel_racing_start_hand_off() {
    cancel_racing_start(0, crate::job::Why::Cancelled);
}

#[test]
fn cancel_racing_start_queue() {
    cancel_racing_start(1, crate::job::Why::Cancelled);
}

#[test]
fn deadline_racing_start() {
    cancel_racing_start(1, crate::job::Why::Deadline);
}

/// A joiner blocking on the handle, and a future awaiting it, racing the
/// worker that ends the task: no wake-up is lost (loom reports a deadlock
/// if one is).
#[test]
fn join_and_await_racing_completion_are_woken() {
    model(|| {
        let pool = builder(1, 1).build().unwrap();
        let joined = pool.spawn(|| 6).unwrap();
        let awaited = pool.spawn(|| 7).unwrap();
        let awaiter = thread::spawn(move || loom::future::block_on(awaited));
        assert_eq!(joined.join().unwrap(), 6);
        assert_eq!(awaiter.join().unwrap().unwrap(), 7);
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

/// `release` racing a task with a token as it starts: the task either ran
/// (once) or its handle says it was cancelled, and `release_timeout`
/// returns with no thread left.
#[test]
fn release_racing_a_token_task_start() {
    model(|| {
        let pool = builder(1, 1).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let handle = pool
            .task(move |_token: &crate::CancelToken| {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .spawn()
            .unwrap();
        let releaser = {
            let pool = pool.clone();
            thread::spawn(move || pool.release())
        };
        let result = handle.join();
        releaser.join().unwrap();
        match result {
            Ok(()) => assert_eq!(ran.load(Ordering::SeqCst), 1),
            Err(error) => {
                assert!(error.is_cancelled());
                assert_eq!(ran.load(Ordering::SeqCst), 0);
            }
        }
        assert_eq!(pool.inner.wait_for_threads(FOREVER), Ok(()));
        assert_eq!(pool.workers(), 0);
    });
}

/// An async submitter that registered for room and is dropped, racing the
/// room appearing, beside another that waits: the room reaches the one that
/// waits (loom reports a deadlock if the wake-up dies with the dropped one).
#[test]
fn a_dropped_submit_async_passes_the_room_on() {
    model_bounded(1, || {
        let pool = builder(1, 0).build().unwrap();
        let gate = hold_a_worker(&pool);
        let dropped = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut future = Box::pin(pool.submit_async(|| ()));
                let waker = std::task::Waker::noop();
                let mut cx = std::task::Context::from_waker(waker);
                let _ = std::future::Future::poll(future.as_mut(), &mut cx);
                drop(future);
            })
        };
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || loom::future::block_on(pool.submit_async(|| ())))
        };
        gate.open();
        dropped.join().unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

/// Seam defect 2: a join from a worker of the pool that helps (runs the
/// joined task inline) racing the cancel of the task's parent token. A task
/// whose token was cancelled before the join began never runs; whichever
/// way the race goes, the task ran exactly when its handle says so.
#[test]
fn parent_cancel_racing_a_helping_join() {
    model(|| {
        let pool = builder(1, 1).build().unwrap();
        let parent = crate::CancelToken::new();
        let cancelled = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicBool::new(false));
        let canceller = {
            let (parent, cancelled) = (parent.clone(), Arc::clone(&cancelled));
            thread::spawn(move || {
                parent.cancel();
                cancelled.store(true, Ordering::SeqCst);
            })
        };
        let outer = {
            let (own, ran, cancelled) = (pool.clone(), Arc::clone(&ran), Arc::clone(&cancelled));
            pool.spawn(move || {
                let flag = Arc::clone(&ran);
                let child = own
                    .task(move |_: &crate::CancelToken| flag.store(true, Ordering::SeqCst))
                    .parent(&parent)
                    .spawn();
                let Ok(child) = child else {
                    return;
                };
                let cancelled_before = cancelled.load(Ordering::SeqCst);
                let result = child.join();
                if cancelled_before {
                    assert!(result.as_ref().is_err_and(|e| e.is_cancelled()));
                }
                assert_eq!(result.is_ok(), ran.load(Ordering::SeqCst));
            })
            .unwrap()
        };
        canceller.join().unwrap();
        outer.join().unwrap();
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

/// Seam defect 5: `reboot` racing `release` on a pool with `min_workers`:
/// the workers the reboot starts are never left parked on a closed pool,
/// so every thread exits.
#[test]
fn reboot_racing_release_leaves_no_worker_parked() {
    model(|| {
        let pool = builder(2, 1).min_workers(1).build().unwrap();
        pool.release();
        let rebooter = {
            let pool = pool.clone();
            thread::spawn(move || pool.reboot())
        };
        pool.release();
        let _ = rebooter.join().unwrap();
        pool.release();
        assert_eq!(pool.inner.wait_for_threads(FOREVER), Ok(()));
        assert_eq!(pool.workers(), 0);
    });
}

/// Seam defect 7: `tune` down racing a worker that just finished a task
/// and looks (or spins) for the next one, while another worker runs a task
/// submitted before the tune. The task submitted after the tune never runs
/// beside it: the looking worker is above the new capacity, so it leaves,
/// handing back a task it took (before the fix it started it).
#[test]
fn tune_down_racing_a_looking_worker_is_enforced() {
    model(|| {
        let pool = builder(2, 2).build().unwrap();
        let gate = Arc::new(Gate::default());
        let older_runs = Arc::new(AtomicBool::new(false));
        let (held, runs) = (Arc::clone(&gate), Arc::clone(&older_runs));
        pool.submit(move || {
            runs.store(true, Ordering::SeqCst);
            held.wait();
            runs.store(false, Ordering::SeqCst);
        })
        .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        pool.submit(counting_task(&ran)).unwrap();
        await_until(|| ran.load(Ordering::SeqCst) == 1);
        assert_eq!(pool.tune(1), Ok(()));
        let beside = Arc::new(AtomicUsize::new(0));
        let (older, after) = (Arc::clone(&older_runs), Arc::clone(&beside));
        pool.submit(move || {
            if older.load(Ordering::SeqCst) {
                after.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        gate.open();
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(
            beside.load(Ordering::SeqCst),
            0,
            "started beside the older task"
        );
    });
}

/// A waker that calls back into the pool (its lock) when woken.
struct Reentrant {
    pool: Pool,
    woken: Arc<AtomicBool>,
}

impl std::task::Wake for Reentrant {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        assert_eq!(self.pool.tune(1), Ok(()));
        self.woken.store(true, Ordering::SeqCst);
    }
}

/// Seam defect 10: an async submitter's waker that calls back into the
/// pool, woken when a worker frees room: wakers run once the pool's lock is
/// released (loom reports the deadlock if one runs under it).
#[test]
fn a_waker_reentering_the_pool_does_not_deadlock_it() {
    model_bounded(1, || {
        let pool = builder(1, 0).build().unwrap();
        let gate = hold_a_worker(&pool);
        let woken = Arc::new(AtomicBool::new(false));
        let waker = std::task::Waker::from(std::sync::Arc::new(Reentrant {
            pool: pool.clone(),
            woken: Arc::clone(&woken),
        }));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut submit = Box::pin(pool.submit_async(|| ()));
        let first = std::future::Future::poll(submit.as_mut(), &mut cx);
        gate.open();
        if first.is_pending() {
            await_until(|| woken.load(Ordering::SeqCst));
            let again = std::future::Future::poll(submit.as_mut(), &mut cx);
            assert!(matches!(again, std::task::Poll::Ready(Ok(()))));
        }
        drop(submit);
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
    });
}

// Models of one subsystem each, through its own event-named methods: the
// pairs of `PROTOCOL.md` as each type implements them, without the rest of
// the pool (the models above explore them inside the whole pool).

/// RELEASE on [`Admission`](super::admission::Admission) and the queue
/// alone, for both ways in: the ring's closed bit (default pools) and a
/// [`Gate`](super::admission::Gate) (hand-off). A push admitted before the
/// close is seen by the drain; one that was not is refused; after the
/// close every push is refused, and after a reopen accepted again.
#[test]
fn admission_a_push_is_refused_or_waited_for() {
    for queue_capacity in [0, 2] {
        model(move || {
            let admission = Arc::new(super::admission::Admission::new());
            let queue = Arc::new(super::queue::TaskQueue::new(queue_capacity, 2));
            let submitter = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    queue
                        .push_lock_free(super::task::Task::new(|| {}), 2)
                        .is_ok()
                })
            };
            let mut life = super::admission::Life::default();
            assert!(admission.close(&mut life, &queue));
            queue.wait_drained();
            let seen = !queue.is_empty();
            let accepted = submitter.join().unwrap();
            assert_eq!(accepted, seen, "an admitted push is seen by the drain");
            assert!(admission.is_closed() && life.is_closed() && queue.is_closed());
            assert!(queue
                .push_lock_free(super::task::Task::new(|| {}), 2)
                .is_err());
            assert!(!admission.close(&mut life, &queue), "closed once");
            assert_eq!(admission.reopen(&mut life, &queue), Some(1));
            while queue.pop().is_some() {
                queue.task_done();
            }
            assert!(queue
                .push_lock_free(super::task::Task::new(|| {}), 2)
                .is_ok());
        });
    }
}

/// PARK on [`Crew`](super::crew::Crew) and the queue: a submitter queues a
/// task, then reads the gauges; the only worker goes idle, then looks at the
/// queue. One of them sees the other, so no task waits beside an idle
/// worker.
#[test]
fn crew_park_pair_strands_no_task() {
    use super::crew::{Crew, Roster};
    model(|| {
        let crew = Arc::new(Crew::new(1));
        let roster = Arc::new(Mutex::new(Roster::new(1)));
        crew.hired(&mut roster.lock().unwrap(), 1);
        let queue = Arc::new(super::queue::TaskQueue::new(4, 1));
        let submitter = {
            let (crew, queue) = (Arc::clone(&crew), Arc::clone(&queue));
            thread::spawn(move || {
                let pushed = queue.try_push(super::task::Task::new(|| {}), crew.capacity());
                assert!(pushed.is_ok());
                queue.fence_after_op();
                !crew.saturated()
            })
        };
        {
            let mut roster = roster.lock().unwrap();
            let parker = std::sync::Arc::new(super::worker::Parker::new());
            crew.went_idle(&mut roster, parker, Instant::now());
        }
        loom::sync::atomic::fence(Ordering::SeqCst);
        let saw_task = !queue.is_empty();
        let saw_idle = submitter.join().unwrap();
        assert!(
            saw_idle || saw_task,
            "a task stranded beside an idle worker"
        );
    });
}

/// A waker that notes it was woken.
struct Noted(std::sync::atomic::AtomicBool);

impl std::task::Wake for Noted {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// DEPOSIT on [`Waiting`](super::deposit::Waiting): an async submitter
/// registers, then looks for room; room is freed, then the freer asks
/// whether anybody wants it. The submitter either sees the room or is woken.
#[test]
fn waiting_deposit_pair_sees_the_room_or_is_woken() {
    use super::deposit::{Waiters, Waiting};
    model(|| {
        let waiting = Arc::new(Waiting::default());
        let waiters = Arc::new(Mutex::new(Waiters::default()));
        let room = Arc::new(AtomicBool::new(false));
        let noted = std::sync::Arc::new(Noted(std::sync::atomic::AtomicBool::new(false)));
        let submitter = {
            let (waiting, waiters, room) = (
                Arc::clone(&waiting),
                Arc::clone(&waiters),
                Arc::clone(&room),
            );
            let waker = std::task::Waker::from(std::sync::Arc::clone(&noted));
            thread::spawn(move || {
                waiting.async_waits(&mut waiters.lock().unwrap(), 1, waker);
                loom::sync::atomic::fence(Ordering::SeqCst);
                room.load(Ordering::SeqCst)
            })
        };
        room.store(true, Ordering::SeqCst);
        loom::sync::atomic::fence(Ordering::SeqCst);
        let mut wakes = Vec::new();
        if waiting.want_room(|| false) {
            waiting.wake_async(&mut waiters.lock().unwrap(), &mut wakes);
        }
        wakes.into_iter().for_each(std::task::Waker::wake);
        let saw_room = submitter.join().unwrap();
        let woken = noted.0.load(std::sync::atomic::Ordering::SeqCst);
        assert!(saw_room || woken, "an async submitter slept beside room");
    });
}

/// SPIN on [`Spinners`](super::hot::Spinners): two submitters claim while
/// one worker spins and stops. At most one claim succeeds (a claim never
/// counts a worker that does not spin), and once the worker has stopped
/// nobody is left to claim.
#[test]
fn spinners_claims_never_exceed_the_spinners() {
    model(|| {
        let spinners = Arc::new(super::hot::Spinners::new());
        let claims = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..2)
            .map(|_| {
                let (spinners, claims) = (Arc::clone(&spinners), Arc::clone(&claims));
                thread::spawn(move || {
                    if spinners.claim() {
                        claims.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let spun = spinners.start_spinning();
        assert!(spun, "one worker is below the limit");
        spinners.stop_spinning();
        for submitter in submitters {
            submitter.join().unwrap();
        }
        assert!(claims.load(Ordering::SeqCst) <= 1);
        assert!(!spinners.any());
        assert!(!spinners.claim());
    });
}

/// TUNE on [`Crew`](super::crew::Crew) and the queue: `tune` publishes the
/// lower capacity, then a task is pushed; a worker that takes that task
/// sees the pool above its capacity (and hands it back, `next_task`).
#[test]
fn crew_tune_pair_a_task_pushed_after_tune_sees_its_capacity() {
    use super::crew::{Crew, Roster};
    model(|| {
        let crew = Arc::new(Crew::new(2));
        let roster = Arc::new(Mutex::new(Roster::new(2)));
        crew.hired(&mut roster.lock().unwrap(), 2);
        let queue = Arc::new(super::queue::TaskQueue::new(4, 2));
        let tuner = {
            let (crew, roster, queue) =
                (Arc::clone(&crew), Arc::clone(&roster), Arc::clone(&queue));
            thread::spawn(move || {
                let retired = crew.retuned(&mut roster.lock().unwrap(), 1);
                assert!(retired.is_empty(), "both workers are busy");
                let pushed = queue.try_push(super::task::Task::new(|| {}), crew.capacity());
                assert!(pushed.is_ok());
            })
        };
        if queue.pop().is_some() {
            assert!(crew.over_capacity(), "took a task pushed after the tune");
        }
        tuner.join().unwrap();
        assert!(crew.over_capacity() && roster.lock().unwrap().is_over());
    });
}

/// RELEASE x cancellation: cancelled tasks still in the ring (ghosts) lend
/// their slots, and a push into lent room goes to the overflow deque beside
/// the ring; once that deque holds a task, every push goes straight to it,
/// so the closed bit read under its lock is all that refuses a push after
/// `release` (once an open gap: no model had ghosts). `release` racing such
/// a push either refuses the task or drains it, and a push that begins
/// after `release` returned is refused.
#[test]
fn release_racing_a_push_into_room_lent_by_ghosts() {
    // Small enough to explore with three preemptions.
    model_bounded(3, || {
        let pool = builder(1, 2).build().unwrap();
        // Starts the only worker, which holds it until the gate opens.
        let gate = hold_a_worker(&pool);
        // Every worker busy: these two fill the ring...
        let ghosts = [pool.spawn(|| ()).unwrap(), pool.spawn(|| ()).unwrap()];
        // ... and lend both slots once cancelled, still in it.
        assert!(ghosts.iter().all(|ghost| ghost.cancel()));
        let ran = Arc::new(AtomicUsize::new(0));
        // Into the overflow deque: the ring is full of ghosts.
        pool.submit(counting_task(&ran)).unwrap();
        let submitted = release_racing_a_submit(&pool, &ran);
        gate.open();
        assert_eq!(pool.inner.wait_for_threads(FOREVER), Ok(()));
        match submitted {
            Ok(()) => assert_eq!(ran.load(Ordering::SeqCst), 2),
            Err(e) => {
                assert_eq!(e, PoolError::Closed);
                assert_eq!(ran.load(Ordering::SeqCst), 1);
            }
        }
        for ghost in ghosts {
            assert!(ghost.join().unwrap_err().is_cancelled());
        }
        assert_eq!(pool.workers(), 0);
    });
}

/// A keyed task that records, in `log`, its number at its start and its
/// end: a start between another task's start and end is an overlap.
fn logging_task(log: &Arc<Mutex<Vec<(u8, bool)>>>, n: u8) -> impl FnOnce() + Send + 'static {
    let log = Arc::clone(log);
    move || {
        log.lock().unwrap().push((n, true));
        log.lock().unwrap().push((n, false));
    }
}

/// KEYS: a task of key k ending on a worker (its lane handing over or going
/// away) while another task of key k is submitted (parked behind it, or
/// the head of a new lane). Both run, the first first, never together; the
/// lanes are empty after.
#[test]
fn a_keyed_task_ending_while_another_of_its_key_is_submitted() {
    model(|| {
        let pool = builder(2, 1).build().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        pool.submit_keyed(7u8, logging_task(&log, 1)).unwrap();
        let submitter = {
            let (pool, log) = (pool.clone(), Arc::clone(&log));
            thread::spawn(move || pool.submit_keyed(7u8, logging_task(&log, 2)))
        };
        assert_eq!(submitter.join().unwrap(), Ok(()));
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(
            *log.lock().unwrap(),
            [(1, true), (1, false), (2, true), (2, false)],
            "in order, one at a time"
        );
        assert_eq!(pool.inner.keys.lanes(), 0, "an idle key keeps its lane");
    });
}

/// RETRY: a retried task failing on its worker and leaving it to wait
/// (`RUNNING -> WAITING`, filed in the delays, a waker on its token)
/// racing a cancel of its handle (the token's waiters woken, maybe before
/// that waker is there). The task is stopped before it starts, or its one
/// attempt ran and the wait ends with its last error, on whichever side
/// takes it from the delays; its handle hears once, and the figures add
/// up. (The wait is far: no second attempt comes due in the model.)
#[test]
fn a_retry_leaving_its_worker_racing_a_cancel() {
    model(|| {
        let pool = builder(1, 1).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let handle = pool
            .task(move |_token: &crate::CancelToken| {
                Err::<(), usize>(counted.fetch_add(1, Ordering::SeqCst) + 1)
            })
            .retry(
                crate::Retry::exponential(FOREVER)
                    .max_attempts(2)
                    .without_jitter(),
            )
            .spawn()
            .unwrap();
        let (stopped, handle) = cancelled_on_another_thread(handle, |h| h.cancel());
        let result = handle.join();
        let ran = ran.load(Ordering::SeqCst);
        match result {
            Ok(last) => assert_eq!((last, ran, stopped), (Err(1), 1, false)),
            Err(error) => {
                assert!(error.is_cancelled());
                assert_eq!((ran, stopped), (0, true));
            }
        }
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        let stats = pool.stats();
        assert_eq!(stats.submitted, 1, "{stats:?}");
        assert_eq!(stats.completed + stats.cancelled, 1, "{stats:?}");
    });
}

/// KEYS: a head whose task, on its worker, submits the next task of its
/// key before the head's submitter has recorded the head as accepted. The
/// next task waits in the lane (it was refused with `WouldDeadlock`, the
/// head looking undecided from a worker), and both run, in order.
#[test]
fn a_keyed_head_submitting_its_key_s_next_task_before_it_is_decided() {
    model(|| {
        let pool = builder(1, 1).build().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(Mutex::new(None));
        let (inner_pool, inner_log, sent) = (pool.clone(), Arc::clone(&log), Arc::clone(&next));
        pool.submit_keyed(7u8, move || {
            inner_log.lock().unwrap().push((1, true));
            let submitted = inner_pool.submit_keyed(7u8, logging_task(&inner_log, 2));
            *sent.lock().unwrap() = Some(submitted);
            inner_log.lock().unwrap().push((1, false));
        })
        .unwrap();
        await_until(|| next.lock().unwrap().is_some());
        assert_eq!(pool.release_timeout(FOREVER), Ok(()));
        assert_eq!(
            *next.lock().unwrap(),
            Some(Ok(())),
            "the next task was refused"
        );
        assert_eq!(
            *log.lock().unwrap(),
            [(1, true), (1, false), (2, true), (2, false)],
            "in order, one at a time"
        );
    });
}
