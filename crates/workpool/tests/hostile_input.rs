//! Every option and every call that takes a number or a duration, at 0, at
//! its maximum and out of range, as a new user might try them: each gets a
//! typed error naming the option and the value, or has a documented meaning
//! (see the README's "Guarantees" and `PoolBuilder`'s docs). Nothing panics,
//! aborts or prints a backtrace; the cases that once did are run again in a
//! child process (this test binary, run again) whose stderr must stay empty
//! of panics.

mod common;

use common::{wait_until, Gate, Pending, PATIENCE};
use std::error::Error;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use workpool::{
    BuildError, LoadBalancing, MultiPool, Pool, PoolBuilder, PoolError, Retry, TaskError,
};

/// The message as a caller holding a boxed `dyn Error` sees it.
fn message_of<E: Error + Send + Sync + 'static>(error: E) -> String {
    let boxed: Box<dyn Error + Send + Sync + 'static> = Box::new(error);
    boxed.to_string()
}

#[track_caller]
fn refused(builder: PoolBuilder) -> BuildError {
    builder
        .build()
        .map(|_| ())
        .expect_err("the builder should refuse these options")
}

/// Holds the one worker of `pool` until the gate opens.
fn hold_the_worker(pool: &Pool) -> Arc<Gate> {
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    gate.await_arrivals(1);
    gate
}

/// A pool of one worker and no queue, its worker held: full.
fn full_pool() -> (Pool, Arc<Gate>) {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .build()
        .unwrap();
    let gate = hold_the_worker(&pool);
    (pool, gate)
}

#[track_caller]
fn assert_prompt(started: Instant, what: &str) {
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{what} took {:?}",
        started.elapsed()
    );
}

// ---- capacity and unbounded ----

#[test]
fn capacity_zero_is_refused() {
    let error = refused(Pool::builder().capacity(0));
    assert_eq!(error, BuildError::ZeroCapacity);
    assert_eq!(
        message_of(error),
        "capacity must be at least 1, got 0 (use `unbounded()` for a pool without a limit)"
    );
}

/// Before: `usize::MAX`, the unbounded sentinel inside, silently made an
/// unbounded pool.
#[test]
fn capacity_usize_max_is_refused_not_read_as_unbounded() {
    let error = refused(Pool::builder().capacity(usize::MAX));
    assert_eq!(
        error,
        BuildError::CapacityTooLarge {
            capacity: usize::MAX,
            max: PoolBuilder::MAX_CAPACITY
        }
    );
    assert_eq!(
        message_of(error),
        format!(
            "capacity must be at most {}, got {} (use `unbounded()` for a pool without a limit)",
            PoolBuilder::MAX_CAPACITY,
            usize::MAX
        )
    );
    assert_eq!(
        Pool::new(usize::MAX).unwrap_err(),
        BuildError::CapacityTooLarge {
            capacity: usize::MAX,
            max: PoolBuilder::MAX_CAPACITY
        }
    );
}

#[test]
fn capacity_just_above_the_maximum_is_refused() {
    let error = refused(Pool::builder().capacity(PoolBuilder::MAX_CAPACITY + 1));
    assert_eq!(
        error,
        BuildError::CapacityTooLarge {
            capacity: PoolBuilder::MAX_CAPACITY + 1,
            max: PoolBuilder::MAX_CAPACITY
        }
    );
}

/// The maximum is a bound, not a number of threads: accepted, and the pool
/// starts threads as tasks need them.
#[test]
fn capacity_at_the_maximum_is_accepted_and_bounded() {
    let pool = Pool::builder()
        .capacity(PoolBuilder::MAX_CAPACITY)
        .build()
        .unwrap();
    assert_eq!(pool.capacity(), Some(PoolBuilder::MAX_CAPACITY));
    assert_eq!(pool.free(), Some(PoolBuilder::MAX_CAPACITY));
    assert_eq!(pool.spawn(|| 6 * 7).unwrap().join().unwrap(), 42);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn unbounded_has_no_capacity_and_refuses_tune() {
    let pool = Pool::builder().unbounded().build().unwrap();
    assert_eq!((pool.capacity(), pool.free()), (None, None));
    assert_eq!(pool.tune(4), Err(PoolError::Unbounded));
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- expiry ----

#[test]
fn expiry_zero_is_refused() {
    let error = refused(Pool::builder().expiry(Duration::ZERO));
    assert_eq!(error, BuildError::ZeroExpiry);
    assert_eq!(
        message_of(error),
        "expiry must be longer than zero, got 0s (use `disable_purge(true)` to keep idle workers)"
    );
}

/// Before: accepted, and the purge thread panicked adding it to the clock.
#[test]
fn expiry_duration_max_is_refused() {
    let error = refused(Pool::builder().expiry(Duration::MAX));
    assert_eq!(
        error,
        BuildError::ExpiryTooLong {
            expiry: Duration::MAX,
            max: PoolBuilder::MAX_EXPIRY
        }
    );
    assert_eq!(
        message_of(error),
        "expiry must be at most 31536000s, got 18446744073709551615.999999999s \
         (use `disable_purge(true)` to keep idle workers)"
    );
}

#[test]
fn expiry_at_the_maximum_is_accepted_and_release_does_not_wait_for_it() {
    let pool = Pool::builder()
        .expiry(PoolBuilder::MAX_EXPIRY)
        .build()
        .unwrap();
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    let started = Instant::now();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    assert_prompt(started, "release_timeout");
}

// ---- min_workers ----

#[test]
fn min_workers_zero_starts_no_worker() {
    let pool = Pool::builder().capacity(4).min_workers(0).build().unwrap();
    assert_eq!((pool.workers(), pool.idle()), (0, 0));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn min_workers_above_capacity_is_refused() {
    let error = refused(Pool::builder().capacity(3).min_workers(4));
    assert_eq!(
        error,
        BuildError::MinWorkersAboveCapacity {
            min_workers: 4,
            capacity: 3
        }
    );
    assert_eq!(
        message_of(error),
        "min_workers must not exceed capacity, got min_workers 4 with capacity 3"
    );
}

/// Before: it started threads until the OS refused one, and near
/// `vm.max_map_count` std aborted the process from inside a new thread
/// ("failed to allocate an alternative stack"). Now it is refused before
/// any thread starts.
#[test]
fn min_workers_far_above_the_thread_limit_is_refused_before_any_thread_starts() {
    let limit = PoolBuilder::thread_limit();
    let asked = 20_000.max(limit + 1);
    let error = refused(Pool::builder().capacity(1_000_000).min_workers(asked));
    assert_eq!(
        error,
        BuildError::TooManyMinWorkers {
            min_workers: asked,
            max: limit
        }
    );
    assert_eq!(
        message_of(error),
        format!(
            "min_workers must be at most {limit}, the threads the pools of this process \
             may keep alive, got {asked}"
        )
    );
}

/// Before: `Vec::with_capacity(usize::MAX)` panicked ("capacity overflow").
#[test]
fn min_workers_usize_max_on_an_unbounded_pool_is_refused() {
    let error = refused(Pool::builder().unbounded().min_workers(usize::MAX));
    assert_eq!(
        error,
        BuildError::TooManyMinWorkers {
            min_workers: usize::MAX,
            max: PoolBuilder::thread_limit()
        }
    );
}

#[test]
fn the_thread_limit_follows_vm_max_map_count() {
    let limit = PoolBuilder::thread_limit();
    match std::fs::read_to_string("/proc/sys/vm/max_map_count") {
        Ok(maps) if cfg!(target_os = "linux") => {
            let maps: usize = maps.trim().parse().unwrap();
            assert_eq!(limit, maps / 4 * 3 / 4);
        }
        _ => assert_eq!(limit, 1 << 16),
    }
}

// ---- nonblocking ----

#[test]
fn nonblocking_false_blocks_and_true_refuses_at_once() {
    let (pool, gate) = full_pool();
    // Blocking: waits for room, here until the timeout.
    let started = Instant::now();
    assert_eq!(
        pool.submit_timeout(|| (), Duration::from_millis(50)),
        Err(PoolError::Timeout)
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));

    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .nonblocking(true)
        .build()
        .unwrap();
    let gate = hold_the_worker(&pool);
    let started = Instant::now();
    assert_eq!(pool.submit(|| ()), Err(PoolError::Overloaded));
    assert_prompt(started, "a nonblocking submit");
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- max_blocking_tasks ----

fn blocked_submitters_are_not_limited(max_blocking_tasks: usize) {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .max_blocking_tasks(max_blocking_tasks)
        .build()
        .unwrap();
    let gate = hold_the_worker(&pool);
    let blocked: Vec<Pending> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            Pending::start(move || pool.submit(|| ()))
        })
        .collect();
    wait_until("three submitters block", || pool.waiting() == 3);
    for pending in &blocked {
        pending.assert_blocked();
    }
    gate.open();
    for pending in blocked {
        assert_eq!(pending.outcome(), Ok(()));
    }
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn max_blocking_tasks_zero_means_no_limit() {
    blocked_submitters_are_not_limited(0);
}

#[test]
fn max_blocking_tasks_usize_max_is_no_limit_either() {
    blocked_submitters_are_not_limited(usize::MAX);
}

// ---- queue_capacity ----

#[test]
fn queue_capacity_zero_is_a_pure_hand_off() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .build()
        .unwrap();
    let gate = hold_the_worker(&pool);
    // No slot: a task is accepted only with a worker free for it.
    assert!(pool.try_submit(|| ()).unwrap_err().is_full());
    assert_eq!(pool.queued(), 0);
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// The maximum is accepted. (A pool this large keeps its queue behind a
/// lock, which allocates as tasks come; a small pool's lock-free queue
/// allocates its 1.5 GiB of slots at `build`, as documented.)
#[test]
fn queue_capacity_at_the_maximum_is_accepted() {
    let pool = Pool::builder()
        .capacity(1 << 20)
        .queue_capacity(PoolBuilder::MAX_QUEUE_CAPACITY)
        .build()
        .unwrap();
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn queue_capacity_above_the_maximum_is_refused() {
    for asked in [PoolBuilder::MAX_QUEUE_CAPACITY + 1, usize::MAX] {
        let error = refused(Pool::builder().queue_capacity(asked));
        assert_eq!(
            error,
            BuildError::QueueTooLarge {
                queue_capacity: asked,
                max: PoolBuilder::MAX_QUEUE_CAPACITY
            }
        );
        assert_eq!(
            message_of(error),
            format!(
                "queue_capacity must be at most {}, got {asked} (its slots are allocated up front)",
                PoolBuilder::MAX_QUEUE_CAPACITY
            )
        );
    }
}

// ---- panic_handler and disable_purge ----

/// The handler itself panics: caught, the worker lives on (tests/faults.rs
/// checks the counts).
#[test]
fn a_panic_handler_that_panics_is_caught() {
    let pool = Pool::builder()
        .capacity(1)
        .thread_name("hostile-handler")
        .panic_handler(|_| std::panic::resume_unwind(Box::new("quiet")))
        .build()
        .unwrap();
    pool.submit(|| std::panic::resume_unwind(Box::new("quiet")))
        .unwrap();
    assert_eq!(
        common::name_of_thread_running_next_task(&pool),
        "hostile-handler-0"
    );
    assert_eq!(pool.panicked(), 1);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn disable_purge_keeps_idle_workers_past_the_expiry() {
    let pool = Pool::builder()
        .capacity(2)
        .expiry(Duration::from_millis(20))
        .disable_purge(true)
        .build()
        .unwrap();
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(pool.workers(), 1, "the idle worker was kept");
    assert_eq!(pool.stats().workers_expired, 0);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- thread_name ----

#[test]
fn thread_name_empty_names_threads_by_number() {
    let pool = Pool::builder().capacity(1).thread_name("").build().unwrap();
    assert_eq!(common::name_of_thread_running_next_task(&pool), "-0");
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// Before: std's thread builder panicked inside `build`.
#[test]
fn thread_name_with_a_nul_byte_is_refused() {
    let error = refused(Pool::builder().thread_name("a\0b"));
    assert_eq!(
        error,
        BuildError::ThreadNameHasNul {
            thread_name: "a\0b".to_owned()
        }
    );
    assert_eq!(
        message_of(error),
        r#"thread_name must not contain a NUL byte, got "a\0b""#
    );
}

#[test]
fn thread_name_very_long_is_kept_whole() {
    let prefix = "x".repeat(100_000);
    let pool = Pool::builder()
        .capacity(1)
        .thread_name(prefix.clone())
        .build()
        .unwrap();
    assert_eq!(
        common::name_of_thread_running_next_task(&pool),
        format!("{prefix}-0")
    );
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- stack_size ----

fn stack_size_error(stack_size: usize) -> BuildError {
    BuildError::StackSizeOutOfRange {
        stack_size,
        min: PoolBuilder::MIN_STACK_SIZE,
        max: PoolBuilder::MAX_STACK_SIZE,
    }
}

/// Before: 0 and tiny sizes were raised to the OS minimum (16 KiB), on
/// which a panicking task printing a backtrace overflowed the stack and
/// aborted the process.
#[test]
fn stack_size_zero_and_tiny_are_refused() {
    for asked in [0, 1, 16 * 1024, PoolBuilder::MIN_STACK_SIZE - 1] {
        let error = refused(Pool::builder().stack_size(asked));
        assert_eq!(error, stack_size_error(asked));
        assert_eq!(
            message_of(error),
            format!("stack_size must be from 65536 to 1073741824 bytes, got {asked}")
        );
    }
}

/// Before: `SpawnFailed` with the OS's "Invalid argument", naming no option.
#[test]
fn stack_size_huge_is_refused() {
    for asked in [PoolBuilder::MAX_STACK_SIZE + 1, usize::MAX] {
        assert_eq!(
            refused(Pool::builder().stack_size(asked)),
            stack_size_error(asked)
        );
    }
}

#[test]
fn stack_size_at_both_ends_is_accepted() {
    for size in [PoolBuilder::MIN_STACK_SIZE, PoolBuilder::MAX_STACK_SIZE] {
        let pool = Pool::builder()
            .capacity(1)
            .min_workers(1)
            .stack_size(size)
            .build()
            .unwrap();
        assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }
}

// ---- task_deadline, TaskBuilder::deadline ----

/// A zero deadline has passed at acceptance: a task that waits in the queue
/// never runs.
#[test]
fn task_deadline_zero_stops_a_task_that_does_not_start_at_once() {
    let pool = Pool::builder()
        .capacity(1)
        .task_deadline(Duration::ZERO)
        .build()
        .unwrap();
    let gate = hold_the_worker(&pool);
    let handle = pool.spawn(|| unreachable!("past its deadline")).unwrap();
    assert!(handle.wait_timeout(PATIENCE));
    assert!(matches!(handle.join(), Err(TaskError::DeadlineExceeded)));
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// `Duration::MAX` is too far for the clock: it never fires.
#[test]
fn task_deadline_duration_max_never_fires() {
    let pool = Pool::builder()
        .capacity(1)
        .task_deadline(Duration::MAX)
        .build()
        .unwrap();
    let gate = hold_the_worker(&pool);
    let handle = pool.spawn(|| 7).unwrap();
    thread::sleep(Duration::from_millis(100));
    gate.open();
    assert_eq!(handle.join().unwrap(), 7);
    assert_eq!(pool.stats().timed_out, 0);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn task_builder_deadline_zero_and_duration_max() {
    let pool = Pool::new(1).unwrap();
    let gate = hold_the_worker(&pool);
    let late = pool
        .task(|_| unreachable!("past its deadline"))
        .deadline(Duration::ZERO)
        .spawn()
        .unwrap();
    let patient = pool
        .task(|token| token.is_cancelled())
        .deadline(Duration::MAX)
        .spawn()
        .unwrap();
    assert!(late.wait_timeout(PATIENCE));
    gate.open();
    assert!(matches!(late.join(), Err(TaskError::DeadlineExceeded)));
    assert!(!patient.join().unwrap(), "never cancelled");
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- name ----

#[test]
fn name_is_kept_as_given() {
    let long = "n".repeat(100_000);
    for name in ["", "a\0b", long.as_str()] {
        let pool = Pool::builder().name(name).build().unwrap();
        assert_eq!(pool.name(), name);
        assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
        assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    }
}

// ---- tune ----

#[test]
fn tune_zero_is_refused() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.tune(0), Err(PoolError::InvalidCapacity));
    assert_eq!(pool.capacity(), Some(2));
}

/// Before: `tune(usize::MAX)` silently made the pool unbounded.
#[test]
fn tune_usize_max_is_refused_and_changes_nothing() {
    let pool = Pool::new(2).unwrap();
    let error = pool.tune(usize::MAX).unwrap_err();
    assert_eq!(
        error,
        PoolError::CapacityTooLarge {
            capacity: usize::MAX,
            max: PoolBuilder::MAX_CAPACITY
        }
    );
    assert_eq!(
        message_of(error),
        format!(
            "capacity must be at most {}, got {}",
            PoolBuilder::MAX_CAPACITY,
            usize::MAX
        )
    );
    assert_eq!(pool.capacity(), Some(2));
    assert_eq!(
        pool.tune(PoolBuilder::MAX_CAPACITY + 1),
        Err(PoolError::CapacityTooLarge {
            capacity: PoolBuilder::MAX_CAPACITY + 1,
            max: PoolBuilder::MAX_CAPACITY
        })
    );
}

#[test]
fn tune_huge_is_a_bound_not_threads() {
    let pool = Pool::new(2).unwrap();
    pool.tune(PoolBuilder::MAX_CAPACITY).unwrap();
    assert_eq!(pool.capacity(), Some(PoolBuilder::MAX_CAPACITY));
    assert_eq!(pool.workers(), 0, "tune starts no thread by itself");
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    pool.tune(1).unwrap();
    assert_eq!(pool.capacity(), Some(1));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- MultiPool ----

#[test]
fn multi_pool_of_zero_pools_is_refused() {
    let error = MultiPool::new(0, 1, LoadBalancing::RoundRobin).unwrap_err();
    assert_eq!(error, BuildError::ZeroPools);
    assert_eq!(
        message_of(error),
        "a multi-pool needs at least 1 pool, got 0"
    );
}

/// Before: pools were built (and threads started) one by one until a
/// thread was refused; with purge off, until memory ran out.
#[test]
fn multi_pool_of_a_huge_number_of_pools_is_refused_before_any_is_built() {
    for pools in [MultiPool::MAX_POOLS + 1, 1_000_000, usize::MAX] {
        let error = MultiPool::with_builder(
            pools,
            LoadBalancing::LeastTasks,
            Pool::builder().disable_purge(true),
        )
        .unwrap_err();
        assert_eq!(
            error,
            BuildError::TooManyPools {
                pools,
                max: MultiPool::MAX_POOLS
            }
        );
        assert_eq!(
            message_of(error),
            format!("a multi-pool may have at most 4096 pools, got {pools}")
        );
    }
}

#[test]
fn multi_pool_capacity_per_pool_zero_and_above_the_maximum_are_refused() {
    assert_eq!(
        MultiPool::new(2, 0, LoadBalancing::RoundRobin).unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(
        MultiPool::new(2, usize::MAX, LoadBalancing::RoundRobin).unwrap_err(),
        BuildError::CapacityTooLarge {
            capacity: usize::MAX,
            max: PoolBuilder::MAX_CAPACITY
        }
    );
}

/// The capacities of the pools add up without overflow.
#[test]
fn multi_pool_capacity_per_pool_at_the_maximum_adds_up() {
    let pools = MultiPool::new(3, PoolBuilder::MAX_CAPACITY, LoadBalancing::RoundRobin).unwrap();
    assert_eq!(pools.capacity(), Some(3 * PoolBuilder::MAX_CAPACITY));
    assert_eq!(pools.stats().capacity, Some(3 * PoolBuilder::MAX_CAPACITY));
    assert_eq!(
        pools.tune(usize::MAX),
        Err(PoolError::CapacityTooLarge {
            capacity: usize::MAX,
            max: PoolBuilder::MAX_CAPACITY
        })
    );
    assert_eq!(pools.spawn(|| 1).unwrap().join().unwrap(), 1);
    assert_eq!(pools.release_timeout(PATIENCE), Ok(()));
}

// ---- calls with a timeout ----

#[test]
fn submit_timeout_zero_takes_room_there_is_and_never_waits() {
    let pool = Pool::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    assert_eq!(
        pool.submit_timeout(move || tx.send(()).unwrap(), Duration::ZERO),
        Ok(())
    );
    rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));

    let (pool, gate) = full_pool();
    let started = Instant::now();
    assert_eq!(
        pool.submit_timeout(|| (), Duration::ZERO),
        Err(PoolError::Timeout)
    );
    assert_prompt(started, "submit_timeout(ZERO)");
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// `Duration::MAX` is too far for the clock: it waits as `submit` does.
#[test]
fn submit_timeout_duration_max_waits_without_a_limit() {
    let (pool, gate) = full_pool();
    let waiting = {
        let pool = pool.clone();
        Pending::start(move || pool.submit_timeout(|| (), Duration::MAX))
    };
    wait_until("the submitter blocks", || pool.waiting() == 1);
    thread::sleep(Duration::from_millis(50));
    waiting.assert_blocked();
    gate.open();
    assert_eq!(waiting.outcome(), Ok(()));
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn wait_idle_zero_answers_at_once() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.wait_idle(Duration::ZERO), Ok(()), "idle already");
    let gate = hold_the_worker(&pool);
    let started = Instant::now();
    assert_eq!(pool.wait_idle(Duration::ZERO), Err(PoolError::Timeout));
    assert_prompt(started, "wait_idle(ZERO)");
    gate.open();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

#[test]
fn wait_idle_duration_max_waits_until_idle() {
    let pool = Pool::new(1).unwrap();
    let gate = hold_the_worker(&pool);
    let opener = {
        let gate = Arc::clone(&gate);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            gate.open();
        })
    };
    assert_eq!(pool.wait_idle(Duration::MAX), Ok(()));
    assert_eq!(gate.passed(), 1);
    opener.join().unwrap();
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

/// `Duration::ZERO` does not wait: `Ok` only if no thread of the pool is
/// left; otherwise `Timeout` at once, and the threads exit on their own.
#[test]
fn release_timeout_zero_does_not_wait() {
    let idle = Pool::builder().disable_purge(true).build().unwrap();
    assert_eq!(idle.release_timeout(Duration::ZERO), Ok(()), "no thread");

    let pool = Pool::new(1).unwrap();
    let gate = hold_the_worker(&pool);
    let started = Instant::now();
    assert_eq!(
        pool.release_timeout(Duration::ZERO),
        Err(PoolError::Timeout)
    );
    assert_prompt(started, "release_timeout(ZERO)");
    gate.open();
    wait_until("the worker exits", || pool.workers() == 0);
}

#[test]
fn release_timeout_duration_max_waits_for_every_thread() {
    let pool = Pool::new(1).unwrap();
    let gate = hold_the_worker(&pool);
    let opener = {
        let gate = Arc::clone(&gate);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            gate.open();
        })
    };
    assert_eq!(pool.release_timeout(Duration::MAX), Ok(()));
    assert_eq!((gate.passed(), pool.workers()), (1, 0));
    opener.join().unwrap();
}

// ---- Retry ----

/// The first wait is `first_delay` itself: with `Duration::MAX` the task
/// waits for its token, and a cancel ends the wait at once with the last
/// error.
#[test]
fn retry_exponential_duration_max_waits_until_cancelled() {
    let pool = Pool::new(1).unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let handle = pool
        .task(move |_| Err::<(), usize>(counted.fetch_add(1, Ordering::SeqCst) + 1))
        .retry(Retry::exponential(Duration::MAX))
        .spawn()
        .unwrap();
    wait_until("the first attempt", || attempts.load(Ordering::SeqCst) == 1);
    assert!(!handle.wait_timeout(Duration::from_millis(100)));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "still waiting to retry");
    let started = Instant::now();
    handle.cancel();
    assert_eq!(handle.join().unwrap(), Err(1));
    assert_prompt(started, "a cancelled retry wait");
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
}

// ---- the cases that once panicked or aborted, in a child process ----

const CHILD: &str = "WORKPOOL_HOSTILE_CHILD";

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs `test` of this binary alone in a child process, with backtraces
/// on, and gives its stdout and stderr once it has succeeded.
fn run_in_child(test: &str) -> (String, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "full")
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the child failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(stdout.contains("CHILD DONE"), "{stdout}");
    (stdout, stderr)
}

#[test]
fn the_inputs_that_once_panicked_or_aborted_print_no_backtrace() {
    if !in_child() {
        let (stdout, stderr) =
            run_in_child("the_inputs_that_once_panicked_or_aborted_print_no_backtrace");
        for sign in [
            "panicked",
            "stack backtrace",
            "fatal runtime error",
            "abort",
        ] {
            assert!(
                !stderr.contains(sign),
                "{sign:?} on the child's stderr:\n{stderr}\n--- stdout\n{stdout}"
            );
        }
        return;
    }
    assert!(Pool::builder().thread_name("a\0b").build().is_err());
    assert!(Pool::builder()
        .thread_name("a\0b")
        .min_workers(1)
        .build()
        .is_err());
    assert!(Pool::builder().expiry(Duration::MAX).build().is_err());
    assert!(Pool::builder().capacity(usize::MAX).build().is_err());
    assert!(Pool::builder().stack_size(0).build().is_err());
    assert!(Pool::builder().stack_size(usize::MAX).build().is_err());
    assert!(Pool::builder()
        .unbounded()
        .min_workers(usize::MAX)
        .build()
        .is_err());
    for asked in [20_000, 100_000, usize::MAX / 2] {
        assert!(Pool::builder()
            .capacity(1_000_000)
            .min_workers(asked.max(PoolBuilder::thread_limit() + 1))
            .build()
            .is_err());
    }
    assert!(MultiPool::new(usize::MAX, 1, LoadBalancing::RoundRobin).is_err());
    assert!(Pool::new(2).unwrap().tune(usize::MAX).is_err());
    // Up to the thread limit, then past it: every thread that would come
    // near `vm.max_map_count` is refused with `SpawnFailed` instead of
    // aborting the process. (Skipped where the limit is far above what the
    // test should start.)
    let limit = PoolBuilder::thread_limit();
    if limit <= 20_000 {
        let started = Instant::now();
        let full = Pool::builder()
            .capacity(1_000_000)
            .min_workers(limit)
            .disable_purge(true)
            .build();
        // Other OS limits may refuse threads first: that is `SpawnFailed`.
        match &full {
            Ok(pool) => assert_eq!(pool.workers(), limit),
            Err(error) => assert!(matches!(error, BuildError::SpawnFailed(_))),
        }
        let other = Pool::builder()
            .capacity(8)
            .disable_purge(true)
            .build()
            .unwrap();
        if full.is_ok() {
            let refused = other.submit(|| ());
            assert!(
                matches!(&refused, Err(PoolError::SpawnFailed(refusal))
                    if refusal.to_string().contains("see `PoolBuilder::thread_limit`")),
                "{refused:?}"
            );
            assert!(matches!(
                Pool::new(1).unwrap_err(),
                BuildError::SpawnFailed(_)
            ));
        }
        if let Ok(pool) = full {
            assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
        }
        // Its threads joined, the places are free again.
        assert_eq!(other.spawn(|| 1).unwrap().join().unwrap(), 1);
        assert_eq!(other.release_timeout(PATIENCE), Ok(()));
        println!(
            "{limit} threads started and joined in {:?}",
            started.elapsed()
        );
    }
    println!("CHILD DONE");
}

/// The smallest stack accepted holds a panicking task whose panic prints a
/// full backtrace (16 KiB, the OS minimum that 0 used to mean, did not: the
/// process aborted with a stack overflow).
#[test]
fn a_panicking_task_on_the_smallest_stack_does_not_abort() {
    if !in_child() {
        let (_, stderr) = run_in_child("a_panicking_task_on_the_smallest_stack_does_not_abort");
        assert!(stderr.contains("stack backtrace"), "{stderr}");
        for sign in ["overflowed its stack", "fatal runtime error"] {
            assert!(
                !stderr.contains(sign),
                "{sign:?} on the child's stderr:\n{stderr}"
            );
        }
        return;
    }
    let pool = Pool::builder()
        .capacity(1)
        .stack_size(PoolBuilder::MIN_STACK_SIZE)
        .build()
        .unwrap();
    pool.submit(|| panic!("a task on the smallest stack"))
        .unwrap();
    let handle = pool.spawn(|| -> u32 { panic!("a spawned task on the smallest stack") });
    assert!(handle.unwrap().join().unwrap_err().is_panic());
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    assert_eq!(pool.panicked(), 2);
    assert_eq!(pool.release_timeout(PATIENCE), Ok(()));
    println!("CHILD DONE");
}
