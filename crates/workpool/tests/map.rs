//! `Pool::map` and `MultiPool::map`: results in input order (or each
//! exactly once, unordered), inputs pulled lazily within the window, a
//! panic in `f` kept to its input, `stop_on_error` stopping within a
//! window, a dropped map freeing the pool at once, pipelines of maps, the
//! async stream never blocking its executor, and maps meeting the pool's
//! other features (release, a closed pool, nonblocking, a map from a task
//! of the same pool).

mod common;

use common::{hold_a_worker, Gate, DEADLINE, INTENTIONAL};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::{LoadBalancing, MultiPool, Pool, TaskError};

/// An iterator over `0..n` that counts what was pulled from it.
fn counted(n: u64, pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = u64> {
    let pulled = Arc::clone(pulled);
    (0..n).inspect(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn a_million_inputs_come_back_in_order_never_more_than_the_window_ahead() {
    let pool = Pool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let window = 512;
    let mut expected = 0u64;
    let mut most_ahead = 0;
    for result in pool
        .map(counted(1_000_000, &pulled), |n| {
            n.wrapping_mul(2654435761) ^ n
        })
        .window(window)
    {
        assert_eq!(
            result.unwrap(),
            expected.wrapping_mul(2654435761) ^ expected
        );
        expected += 1;
        // Inputs pulled and not yet yielded: what the map holds.
        let ahead = pulled.load(Ordering::SeqCst) - expected as usize;
        most_ahead = most_ahead.max(ahead);
        assert!(
            ahead < window,
            "{ahead} inputs held with a window of {window}"
        );
    }
    assert_eq!(expected, 1_000_000);
    assert!(most_ahead > 0, "the map never ran ahead of its caller");
}

#[test]
fn the_default_window_holds_about_two_mib_of_inputs_and_results() {
    // Inputs of 4 KiB: the default window is what fits in 2 MiB.
    type Input = [u64; 512];
    let window =
        (2 << 20) / (std::mem::size_of::<Input>() + std::mem::size_of::<Result<u64, TaskError>>());
    let pool = Pool::new(3).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let inputs = (0..100_000u64).map(move |n| {
        counter.fetch_add(1, Ordering::SeqCst);
        [n; 512]
    });
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let mut map = pool.map(inputs, move |input: Input| {
        if input[0] == 0 {
            held.wait();
        }
        input[0]
    });
    let first = std::thread::scope(|s| {
        let reader = s.spawn(|| map.next());
        gate.await_arrivals(1);
        // The first input blocks its result, so the map fills its window.
        common::wait_until("the window fills", || {
            pulled.load(Ordering::SeqCst) >= window - 1
        });
        std::thread::sleep(Duration::from_millis(50));
        let held = pulled.load(Ordering::SeqCst);
        assert!(
            held <= window,
            "{held} inputs pulled with a window of {window}"
        );
        gate.open();
        reader.join().unwrap()
    });
    assert_eq!(first.unwrap().unwrap(), 0);
}

#[test]
fn unordered_yields_each_input_exactly_once() {
    let pool = Pool::new(2).unwrap();
    let n = 200_000;
    let mut seen = vec![false; n];
    let mut count = 0;
    for result in pool.map(0..n, |i| i).unordered() {
        let i = result.unwrap();
        assert!(!seen[i], "{i} yielded twice");
        seen[i] = true;
        count += 1;
    }
    assert_eq!(count, n);
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn unordered_yields_a_fast_input_before_a_slow_earlier_one() {
    let pool = Pool::new(2).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let mut map = pool
        .map(0..2u32, move |n| {
            if n == 0 {
                held.wait();
            }
            n
        })
        .unordered();
    gate.await_arrivals(0);
    // Input 1 finishes while input 0 waits at the gate: it comes first.
    assert_eq!(map.next().unwrap().unwrap(), 1);
    gate.open();
    assert_eq!(map.next().unwrap().unwrap(), 0);
    assert!(map.next().is_none());
}

#[test]
fn a_panic_in_f_is_that_input_s_error_and_the_rest_go_on() {
    let pool = Pool::new(2).unwrap();
    let panicked_before = pool.panicked();
    let results: Vec<_> = pool
        .map(0..1_000u32, |n| {
            if n % 100 == 7 {
                panic!("{INTENTIONAL}: input {n}");
            }
            n
        })
        .collect();
    assert_eq!(results.len(), 1_000);
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(value) => assert_eq!(*value as usize, n),
            Err(error) => {
                assert_eq!(n % 100, 7, "input {n} failed: {error}");
                assert!(error.is_panic());
                assert!(error.to_string().contains(&format!("input {n}")));
            }
        }
    }
    assert_eq!(
        pool.panicked() - panicked_before,
        10,
        "each panic counted once"
    );
}

#[test]
fn a_panic_in_the_input_iterator_reaches_the_caller_and_leaves_the_pool_clean() {
    let pool = Pool::new(2).unwrap();
    let inputs = (0..1_000u32).inspect(|&n| {
        if n == 500 {
            panic!("{INTENTIONAL}: bad input");
        }
    });
    let caught = catch_unwind(AssertUnwindSafe(|| pool.map(inputs, |n| n).count()));
    assert!(
        caught.is_err(),
        "the input iterator's panic did not reach the caller"
    );
    pool.wait_idle(DEADLINE).unwrap();
    assert_eq!(pool.spawn(|| 7).unwrap().join().unwrap(), 7);
}

#[test]
fn stop_on_error_stops_within_a_window_and_unstarted_inputs_never_run() {
    let pool = Pool::new(2).unwrap();
    let window = 64;
    let ran = Arc::new(
        (0..100_000)
            .map(|_| AtomicBool::new(false))
            .collect::<Vec<_>>(),
    );
    let pulled = Arc::new(AtomicUsize::new(0));
    let flags = Arc::clone(&ran);
    let failing = 1_000;
    let results: Vec<_> = pool
        .map(counted(100_000, &pulled), move |n| {
            flags[n as usize].store(true, Ordering::SeqCst);
            if n == failing {
                panic!("{INTENTIONAL}: input {n}");
            }
            n
        })
        .window(window)
        .stop_on_error()
        .collect();
    // Every input before the failing one, in order, then its error, then
    // the end.
    assert_eq!(results.len(), failing as usize + 1);
    for (n, result) in results[..failing as usize].iter().enumerate() {
        assert_eq!(*result.as_ref().unwrap() as usize, n);
    }
    assert!(results[failing as usize].as_ref().unwrap_err().is_panic());
    pool.wait_idle(DEADLINE).unwrap();
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        pulled <= failing as usize + 1 + window,
        "{pulled} inputs pulled: more than a window past the error"
    );
    // The flag proves it: no input beyond the window ever ran.
    let late = (pulled..100_000)
        .filter(|&n| ran[n].load(Ordering::SeqCst))
        .count();
    assert_eq!(late, 0);
}

#[test]
fn stop_on_error_unordered_ends_at_the_first_error_seen() {
    let pool = Pool::new(2).unwrap();
    let results: Vec<_> = pool
        .map(0..100_000u32, |n| {
            if n == 5_000 {
                panic!("{INTENTIONAL}");
            }
            n
        })
        .unordered()
        .stop_on_error()
        .collect();
    assert!(results
        .last()
        .unwrap()
        .as_ref()
        .is_err_and(TaskError::is_panic));
    assert!(results[..results.len() - 1].iter().all(Result::is_ok));
    assert!(results.len() < 100_000);
}

#[test]
fn dropping_a_half_read_map_frees_the_pool_at_once() {
    let pool = Pool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let counted_runs = Arc::clone(&ran);
    let mut map = pool.map(counted(1_000_000, &pulled), move |n| {
        counted_runs.fetch_add(1, Ordering::SeqCst);
        // A slow input: 1,000,000 of them would take 1,000 s on 2 workers.
        std::thread::sleep(Duration::from_millis(2));
        n
    });
    for expected in 0..10 {
        assert_eq!(map.next().unwrap().unwrap(), expected);
    }
    drop(map);
    let started = Instant::now();
    pool.wait_idle(DEADLINE).unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the pool stayed busy {took:?} after the drop"
    );
    let runs = ran.load(Ordering::SeqCst);
    assert!(
        runs < 1_000,
        "{runs} inputs ran: the drop did not stop them"
    );
    assert_eq!(pool.queued(), 0);
    assert_eq!(pool.busy(), 0);
}

#[test]
fn a_pipeline_of_two_maps_on_two_pools_runs_both_stages_at_once_in_order() {
    let parse = Pool::new(2).unwrap();
    let square = Pool::new(2).unwrap();
    let parsing = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    let (busy, seen) = (Arc::clone(&parsing), Arc::clone(&parsing));
    let saw = Arc::clone(&overlapped);
    let lines = (0..20_000u64).map(|n| n.to_string());
    let parsed = parse.map(lines, move |line: String| {
        busy.fetch_add(1, Ordering::SeqCst);
        let n: u64 = line.parse().unwrap();
        std::hint::black_box((0..200).fold(n, |a, b| a ^ b));
        busy.fetch_sub(1, Ordering::SeqCst);
        n
    });
    let squares = square.map(parsed.map(Result::unwrap), move |n| {
        if seen.load(Ordering::SeqCst) > 0 {
            saw.store(true, Ordering::SeqCst);
        }
        n * n
    });
    for (n, result) in squares.enumerate() {
        assert_eq!(result.unwrap(), (n as u64) * (n as u64));
    }
    assert!(
        overlapped.load(Ordering::SeqCst),
        "the second stage never ran while the first was running"
    );
}

#[test]
fn multi_pool_map_keeps_the_input_order_across_pools() {
    // One worker a pool: the threads that ran inputs are the pools used.
    let pools = MultiPool::new(3, 1, LoadBalancing::RoundRobin).unwrap();
    let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let seen = Arc::clone(&threads);
    let results: Vec<u64> = pools
        .map(0..50_000u64, move |n| {
            seen.lock().unwrap().insert(std::thread::current().id());
            n + 1
        })
        .window(256)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(results, (1..=50_000u64).collect::<Vec<_>>());
    let used = threads.lock().unwrap().len();
    assert!(used >= 2, "the chunks all went to {used} pool");
}

#[test]
fn release_during_a_map_cancels_what_has_not_started_and_ends_it() {
    let pool = Pool::new(1).unwrap();
    let gate = Gate::new();
    let held = Arc::clone(&gate);
    let map = pool
        .map(0..1_000u32, move |n| {
            if n == 0 {
                held.wait();
            }
            n
        })
        .window(100);
    let results = std::thread::scope(|s| {
        let reader = s.spawn(move || map.collect::<Vec<_>>());
        gate.await_arrivals(1);
        // Not `release_timeout`: the gate holds the worker until opened.
        pool.release();
        gate.open();
        reader.join().unwrap()
    });
    assert_eq!(results.len(), 1_000, "every input comes back, run or not");
    assert_eq!(
        *results[0].as_ref().unwrap(),
        0,
        "the input running at the release finished"
    );
    let cancelled = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(TaskError::is_cancelled))
        .count();
    assert!(
        cancelled >= 900,
        "only {cancelled} inputs cancelled by the release"
    );
}

#[test]
fn a_map_on_a_closed_pool_gives_every_input_back_as_cancelled() {
    let pool = Pool::new(2).unwrap();
    pool.release();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let results: Vec<_> = pool
        .map(0..100u32, move |n| {
            flag.store(true, Ordering::SeqCst);
            n
        })
        .collect();
    assert_eq!(results.len(), 100);
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(TaskError::Cancelled))));
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn a_nonblocking_pool_with_no_queue_still_maps_every_input() {
    let pool = Pool::builder()
        .capacity(2)
        .nonblocking(true)
        .queue_capacity(0)
        .build()
        .unwrap();
    let results: Vec<u32> = pool
        .map(0..10_000u32, |n| n * 3)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(results, (0..10_000u32).map(|n| n * 3).collect::<Vec<_>>());
}

#[test]
fn a_map_from_a_task_of_the_same_full_pool_finishes() {
    // The caller is the pool's only worker: waiting for the chunks, queued
    // behind it, would wait for ever; it runs them itself instead.
    let pool = Arc::new(Pool::new(1).unwrap());
    let inner = Arc::clone(&pool);
    let handle = pool
        .spawn(move || {
            inner
                .map(0..1_000u64, |n| n * 2)
                .map(Result::unwrap)
                .sum::<u64>()
        })
        .unwrap();
    assert!(handle.wait_timeout(DEADLINE), "the nested map hung");
    assert_eq!(handle.join().unwrap(), (0..1_000u64).map(|n| n * 2).sum());
}

#[test]
fn a_deadline_of_the_pool_applies_to_the_inputs_of_a_map() {
    let pool = Pool::builder()
        .capacity(1)
        .task_deadline(Duration::from_millis(20))
        .build()
        .unwrap();
    let gate = hold_a_worker(&pool);
    let map = pool.map(0..4u32, |n| n).window(4);
    let results = std::thread::scope(|s| {
        let reader = s.spawn(move || map.collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(200));
        gate.open();
        reader.join().unwrap()
    });
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(TaskError::DeadlineExceeded))),
        "{results:?}"
    );
}

#[test]
fn the_stream_on_a_current_thread_runtime_keeps_a_ticker_ticking() {
    use futures_core::Stream;
    use std::future::poll_fn;
    use std::pin::pin;

    let pool = Pool::new(2).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (ticks, sum) = runtime.block_on(async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(2));
            loop {
                interval.tick().await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        // 100 inputs of 4 ms each on 2 workers: about 200 ms.
        let mut stream = pin!(pool
            .map(0..100u64, |n| {
                std::thread::sleep(Duration::from_millis(4));
                n
            })
            .into_stream());
        let mut sum = 0;
        let mut expected = 0;
        while let Some(result) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            let n = result.unwrap();
            assert_eq!(n, expected, "out of order");
            expected += 1;
            sum += n;
        }
        ticker.abort();
        (ticks.load(Ordering::SeqCst), sum)
    });
    assert_eq!(sum, (0..100).sum::<u64>());
    // A poll that blocked the thread would starve the ticker: ~100 ticks
    // in 200 ms; a blocked executor gives a handful.
    assert!(
        ticks >= 20,
        "the ticker ticked {ticks} times while the stream ran"
    );
}

#[test]
fn the_stream_waits_for_room_in_a_full_pool_without_blocking() {
    use futures_core::Stream;
    use std::future::poll_fn;
    use std::pin::pin;

    // A pool with no queue whose one worker is busy: the stream's first
    // chunk must wait for room as a future.
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(0)
        .build()
        .unwrap();
    let gate = hold_a_worker(&pool);
    let results = futures_executor::block_on(async {
        let mut stream = pin!(pool.map(0..50u32, |n| n + 1).into_stream());
        let mut polls = 0;
        let first = poll_fn(|cx| {
            polls += 1;
            let poll = stream.as_mut().poll_next(cx);
            if polls == 1 {
                assert!(poll.is_pending(), "a full pool answered at once");
                gate.open();
            }
            poll
        })
        .await;
        let mut results = vec![first.unwrap().unwrap()];
        while let Some(result) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            results.push(result.unwrap());
        }
        results
    });
    assert_eq!(results, (1..=50u32).collect::<Vec<_>>());
}

#[test]
fn f_runs_on_the_pool_s_workers_never_on_the_caller() {
    // A closure that waits for the caller (here: for its next read) would
    // deadlock a map whose caller ran inputs itself while it waited.
    let pool = Pool::builder()
        .capacity(2)
        .thread_name("mapper")
        .build()
        .unwrap();
    let caller = std::thread::current().id();
    let on_caller = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&on_caller);
    let count = pool
        .map(0..100_000u32, move |n| {
            if std::thread::current().id() == caller {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            assert!(std::thread::current()
                .name()
                .unwrap_or_default()
                .starts_with("mapper"));
            n
        })
        .filter(Result::is_ok)
        .count();
    assert_eq!(count, 100_000);
    assert_eq!(on_caller.load(Ordering::SeqCst), 0);
}

#[test]
fn a_multi_pool_map_streams_in_order_on_a_current_thread_runtime() {
    use futures_core::Stream;
    use std::future::poll_fn;
    use std::pin::pin;

    let pools = MultiPool::new(2, 1, LoadBalancing::RoundRobin).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let results = runtime.block_on(async {
        let mut stream = pin!(pools.map(0..20_000u64, |n| n * 2).window(64).into_stream());
        let mut results = Vec::new();
        while let Some(result) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            results.push(result.unwrap());
        }
        results
    });
    assert_eq!(results, (0..20_000u64).map(|n| n * 2).collect::<Vec<_>>());
}

#[test]
fn panics_next_to_each_other_and_at_the_ends_stay_with_their_inputs_in_both_orders() {
    // A chunk runs its inputs under one `catch_unwind` and resumes after a
    // panic: panics side by side, first and last, keep every other value.
    let panics = |n: u32| n == 0 || n == 999 || (500..504).contains(&n) || n % 97 == 3;
    let pool = Pool::new(2).unwrap();
    for ordered in [true, false] {
        let map = pool.map(0..1_000u32, move |n| {
            if panics(n) {
                panic!("{INTENTIONAL}: input {n}");
            }
            n * 2
        });
        let results: Vec<_> = if ordered {
            map.collect()
        } else {
            map.unordered().collect()
        };
        assert_eq!(results.len(), 1_000);
        let mut values: Vec<u32> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        let failed = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(TaskError::is_panic))
            .count();
        assert_eq!(failed, (0..1_000).filter(|&n| panics(n)).count());
        if ordered {
            for (n, result) in results.iter().enumerate() {
                assert_eq!(result.is_err(), panics(n as u32), "input {n}: {result:?}");
            }
        }
        values.sort_unstable();
        let expected: Vec<u32> = (0..1_000).filter(|&n| !panics(n)).map(|n| n * 2).collect();
        assert_eq!(values, expected, "ordered: {ordered}");
    }
}

#[test]
fn a_map_from_a_scoped_task_of_the_same_one_worker_pool_finishes_and_borrows() {
    // The scoped task holds the only worker: its map helps by running its
    // own chunks, and the result goes to the scope's borrowed slot.
    let pool = Pool::new(1).unwrap();
    let mut sum = 0u64;
    pool.scope(|scope| {
        scope.spawn(|| {
            sum = pool.map(0..10_000u64, |n| n * 3).map(Result::unwrap).sum();
        });
    });
    assert_eq!(sum, 3 * (0..10_000u64).sum::<u64>());
}
