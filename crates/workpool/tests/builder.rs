//! Building pools: option defaults, every `BuildError` and `PoolError` with its
//! exact message, `tune`'s refusals, the builder's `Clone` and `Debug`, and
//! the pools' `Debug`, which names them.

mod common;

use common::{wait_until_within, Gate, PATIENCE};
use std::error::Error;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use workpool::{BuildError, LoadBalancing, MultiPool, Pool, PoolBuilder, PoolError};

fn build_error(builder: PoolBuilder) -> BuildError {
    builder
        .build()
        .expect_err("the builder should refuse these options")
}

/// The message as a caller holding a boxed `dyn Error` sees it.
fn message_of<E: Error + Send + Sync + 'static>(error: E) -> String {
    let boxed: Box<dyn Error + Send + Sync + 'static> = Box::new(error);
    assert!(boxed.source().is_none());
    boxed.to_string()
}

#[test]
fn zero_capacity_is_refused_with_a_message_naming_the_zero() {
    assert_eq!(Pool::new(0).unwrap_err(), BuildError::ZeroCapacity);
    let error = build_error(Pool::builder().capacity(0));
    assert_eq!(error, BuildError::ZeroCapacity);
    assert_eq!(
        message_of(error),
        "capacity must be at least 1, got 0 (use `unbounded()` for a pool without a limit)"
    );
}

#[test]
fn zero_expiry_is_refused_with_a_message_naming_the_zero() {
    let error = build_error(Pool::builder().expiry(Duration::ZERO));
    assert_eq!(error, BuildError::ZeroExpiry);
    assert_eq!(
        message_of(error),
        "expiry must be longer than zero, got 0s (use `disable_purge(true)` to keep idle workers)"
    );
}

#[test]
fn min_workers_above_capacity_is_refused_with_both_values_named() {
    let error = build_error(Pool::builder().capacity(2).min_workers(5));
    assert_eq!(
        error,
        BuildError::MinWorkersAboveCapacity {
            min_workers: 5,
            capacity: 2
        }
    );
    assert_eq!(
        message_of(error),
        "min_workers must not exceed capacity, got min_workers 5 with capacity 2"
    );
}

#[test]
fn min_workers_equal_to_capacity_and_on_an_unbounded_pool_are_accepted() {
    let full = Pool::builder().capacity(2).min_workers(2).build().unwrap();
    assert_eq!(full.workers(), 2);
    let unbounded = Pool::builder().unbounded().min_workers(3).build().unwrap();
    assert_eq!(unbounded.workers(), 3);
    full.release_timeout(PATIENCE).unwrap();
    unbounded.release_timeout(PATIENCE).unwrap();
}

#[test]
fn zero_pools_are_refused_with_a_message_naming_the_zero() {
    let error = MultiPool::new(0, 4, LoadBalancing::RoundRobin).unwrap_err();
    assert_eq!(error, BuildError::ZeroPools);
    assert_eq!(
        message_of(error),
        "a multi-pool needs at least 1 pool, got 0"
    );
    let error = MultiPool::with_builder(0, LoadBalancing::LeastTasks, Pool::builder()).unwrap_err();
    assert_eq!(error, BuildError::ZeroPools);
}

#[test]
fn multi_pool_refuses_the_options_a_single_pool_refuses() {
    let error = MultiPool::new(2, 0, LoadBalancing::RoundRobin).unwrap_err();
    assert_eq!(error, BuildError::ZeroCapacity);
}

/// `SpawnFailed` quotes the `io::Error` and gives it back as its source.
#[test]
fn spawn_failed_build_error_quotes_and_keeps_the_io_error() {
    let refusal = std::io::Error::new(
        std::io::ErrorKind::WouldBlock,
        "Resource temporarily unavailable",
    );
    let error = BuildError::SpawnFailed(Arc::new(refusal));
    assert_eq!(
        error.to_string(),
        "the pool could not start a thread: Resource temporarily unavailable"
    );
    let boxed: Box<dyn Error + Send + Sync + 'static> = Box::new(error.clone());
    let source = boxed.source().expect("the io::Error is the source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::WouldBlock);
    // Equal by kind and message; a clone shares the same `io::Error`.
    assert_eq!(error, error.clone());
    let same = std::io::Error::new(
        std::io::ErrorKind::WouldBlock,
        "Resource temporarily unavailable",
    );
    assert_eq!(error, BuildError::SpawnFailed(Arc::new(same)));
    let other_kind = std::io::Error::other("Resource temporarily unavailable");
    assert_ne!(error, BuildError::SpawnFailed(Arc::new(other_kind)));
    assert_ne!(error, BuildError::ZeroCapacity);
}

#[test]
fn tune_to_zero_is_invalid_capacity_and_leaves_the_capacity_alone() {
    let pool = Pool::new(3).unwrap();
    let error = pool.tune(0).unwrap_err();
    assert_eq!(error, PoolError::InvalidCapacity);
    assert_eq!(message_of(error), "capacity must be at least 1, got 0");
    assert_eq!(pool.capacity(), Some(3));
    pool.tune(5).unwrap();
    assert_eq!(pool.capacity(), Some(5));
    assert_eq!(pool.free(), Some(5));
}

#[test]
fn tune_on_an_unbounded_pool_is_refused() {
    let pool = Pool::builder().unbounded().build().unwrap();
    let error = pool.tune(4).unwrap_err();
    assert_eq!(error, PoolError::Unbounded);
    assert_eq!(
        message_of(error),
        "the pool is unbounded, so its capacity cannot be tuned"
    );
    assert_eq!(pool.capacity(), None);
}

#[test]
fn submit_to_a_released_pool_is_closed() {
    let pool = Pool::new(2).unwrap();
    pool.release();
    let error = pool.submit(|| ()).unwrap_err();
    assert_eq!(error, PoolError::Closed);
    assert_eq!(
        message_of(error),
        "the pool is closed and takes no new tasks"
    );
    assert_eq!(pool.release_timeout(PATIENCE), Err(PoolError::Closed));
}

#[test]
fn nonblocking_pool_at_capacity_is_overloaded() {
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .nonblocking(true)
        .build()
        .unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    let error = pool.submit(|| ()).unwrap_err();
    assert_eq!(error, PoolError::Overloaded);
    assert_eq!(
        message_of(error),
        "the pool is overloaded: every worker is busy and no caller may wait for one"
    );
    gate.open();
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn release_timeout_with_a_task_still_running_times_out() {
    let pool = Pool::new(1).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    pool.submit(move || held.wait()).unwrap();
    let error = pool.release_timeout(Duration::from_millis(20)).unwrap_err();
    assert_eq!(error, PoolError::Timeout);
    assert_eq!(
        message_of(error),
        "the timeout passed before the pool was done (threads still running, tasks unfinished, or no room)"
    );
    gate.open();
}

#[test]
fn invalid_index_names_the_index_and_the_number_of_pools() {
    let pools = MultiPool::new(3, 1, LoadBalancing::RoundRobin).unwrap();
    let expected = PoolError::InvalidIndex { index: 7, len: 3 };
    assert_eq!(pools.workers_by_index(7), Err(expected.clone()));
    assert_eq!(
        pools.free_by_index(3),
        Err(PoolError::InvalidIndex { index: 3, len: 3 })
    );
    assert_eq!(pools.waiting_by_index(7), Err(expected.clone()));
    assert_eq!(
        message_of(expected),
        "pool index 7 is out of range for a multi-pool of 3 pools"
    );
    assert_eq!(pools.workers_by_index(2), Ok(0));
    pools.release_timeout(PATIENCE).unwrap();
}

/// `SpawnFailed` quotes the `io::Error` and gives it back as its source.
#[test]
fn spawn_failed_pool_error_quotes_and_keeps_the_io_error() {
    let error = PoolError::SpawnFailed(Arc::new(std::io::Error::other("out of threads")));
    assert_eq!(
        error.to_string(),
        "the pool could not start a thread: out of threads"
    );
    let source = error.source().expect("the io::Error is the source");
    assert_eq!(source.to_string(), "out of threads");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
    assert_eq!(
        error,
        PoolError::SpawnFailed(Arc::new(std::io::Error::other("out of threads")))
    );
    assert_ne!(
        error,
        PoolError::SpawnFailed(Arc::new(std::io::Error::other("out of memory")))
    );
    assert_ne!(error, PoolError::Closed);
}

#[test]
fn new_pool_has_the_capacity_asked_for_and_no_workers_yet() {
    let pool = Pool::new(7).unwrap();
    assert_eq!(pool.capacity(), Some(7));
    assert_eq!(pool.free(), Some(7));
    assert_eq!(pool.workers(), 0);
    assert_eq!(pool.idle(), 0);
    assert_eq!(pool.busy(), 0);
    assert_eq!(pool.waiting(), 0);
    assert_eq!(pool.panicked(), 0);
    assert!(!pool.is_closed());
}

#[test]
fn default_capacity_is_the_number_of_cpus() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(Pool::builder().build().unwrap().capacity(), Some(cpus));
    assert_eq!(
        PoolBuilder::default().build().unwrap().capacity(),
        Some(cpus)
    );
}

#[test]
fn unbounded_pool_has_no_capacity_and_no_free_count() {
    let pool = Pool::builder().unbounded().build().unwrap();
    assert_eq!(pool.capacity(), None);
    assert_eq!(pool.free(), None);
}

#[test]
fn the_later_of_capacity_and_unbounded_wins() {
    let bounded = Pool::builder().unbounded().capacity(3).build().unwrap();
    assert_eq!(bounded.capacity(), Some(3));
    let unbounded = Pool::builder().capacity(3).unbounded().build().unwrap();
    assert_eq!(unbounded.capacity(), None);
}

#[test]
fn a_cloned_builder_builds_pools_with_the_same_options() {
    let builder = Pool::builder()
        .capacity(3)
        .min_workers(1)
        .thread_name("twin");
    let first = builder.clone().build().unwrap();
    let second = builder.build().unwrap();
    for pool in [&first, &second] {
        assert_eq!(pool.capacity(), Some(3));
        assert_eq!(pool.workers(), 1);
    }
    first.release_timeout(PATIENCE).unwrap();
    second.release_timeout(PATIENCE).unwrap();
}

#[test]
fn builder_debug_shows_the_options() {
    let builder = Pool::builder()
        .capacity(3)
        .min_workers(2)
        .nonblocking(true)
        .max_blocking_tasks(9)
        .disable_purge(true)
        .thread_name("dbg")
        .stack_size(1 << 20)
        .panic_handler(|_| ());
    let text = format!("{builder:?}");
    for part in [
        "PoolBuilder",
        "capacity: Some(3)",
        "min_workers: 2",
        "nonblocking: true",
        "max_blocking_tasks: 9",
        "disable_purge: true",
        "thread_name: \"dbg\"",
        "stack_size: Some(1048576)",
        "panic_handler: Some(",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    let plain = format!("{:?}", Pool::builder());
    assert!(plain.contains("panic_handler: None"), "{plain}");
    assert!(plain.contains("expiry: 1s"), "{plain}");
}

#[test]
fn debug_of_a_named_pool_says_its_name_first() {
    let pool = Pool::builder().name("ingest").capacity(2).build().unwrap();
    let text = format!("{pool:?}");
    assert!(text.starts_with("Pool { name: \"ingest\", "), "{text}");

    let with_func = Pool::builder()
        .name("resize")
        .capacity(2)
        .build_with_func(|_: u32| ())
        .unwrap();
    let text = format!("{with_func:?}");
    assert!(
        text.starts_with("PoolWithFunc { name: \"resize\", "),
        "{text}"
    );

    let pools = MultiPool::with_builder(
        3,
        LoadBalancing::RoundRobin,
        Pool::builder().name("fetch").capacity(2),
    )
    .unwrap();
    let text = format!("{pools:?}");
    assert!(text.starts_with("MultiPool { name: \"fetch\", "), "{text}");

    // An unnamed pool shows the builder's default name.
    let plain = Pool::new(1).unwrap();
    let text = format!("{plain:?}");
    assert!(text.contains("name: \"workpool\""), "{text}");

    pool.release_timeout(PATIENCE).unwrap();
    with_func.release_timeout(PATIENCE).unwrap();
    pools.release_timeout(PATIENCE).unwrap();
    plain.release_timeout(PATIENCE).unwrap();
}

#[test]
fn min_workers_are_started_at_build_and_go_idle() {
    let pool = Pool::builder().capacity(4).min_workers(3).build().unwrap();
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.free(), Some(1));
    wait_until_within(PATIENCE, "the 3 min_workers are idle", || pool.idle() == 3);
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.busy(), 0);
    pool.release_timeout(PATIENCE).unwrap();
    assert_eq!(pool.workers(), 0);
}

#[test]
fn min_workers_count_as_idle_not_busy_right_after_build() {
    let pool = Pool::builder().capacity(4).min_workers(2).build().unwrap();
    // No task was submitted, so no worker may count as busy.
    assert_eq!((pool.workers(), pool.idle(), pool.busy()), (2, 2, 0));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn nonblocking_pool_full_of_min_workers_accepts_its_first_task() {
    let pool = Pool::builder()
        .capacity(2)
        .min_workers(2)
        .nonblocking(true)
        .build()
        .unwrap();
    // Both workers are free, so the first task must find one.
    assert_eq!(pool.submit(|| ()), Ok(()));
    pool.release_timeout(PATIENCE).unwrap();
}

#[test]
fn a_freshly_built_pool_releases_without_waiting_for_the_expiry() {
    // The purge thread sleeps for one expiry between rounds; `release` must
    // wake it even if it has not reached its first sleep yet.
    let pool = Pool::builder()
        .capacity(2)
        .expiry(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert_eq!(pool.release_timeout(Duration::from_secs(5)), Ok(()));
}
