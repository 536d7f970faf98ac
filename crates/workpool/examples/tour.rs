//! A tour of workpool: every feature of the pool at work, with figures.
//!
//! Run: `cargo run --release --example tour`.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use workpool::{
    CancelToken, LoadBalancing, MultiPool, Pool, PoolError, PoolWithFunc, Retry, TaskError,
};

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("workpool tour on {cores} cores\n");
    sums()?;
    backpressure()?;
    panics()?;
    tune()?;
    expiry()?;
    func_and_multi()?;
    throughput(cores)?;
    would_deadlock()?;
    handles(cores)?;
    batches()?;
    cancellation()?;
    retries()?;
    scopes(cores)?;
    async_submits(cores)?;
    room()?;
    Ok(())
}

fn sums() -> Res {
    let pool = Pool::new(4)?;
    let sum = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for i in 1..=1_000 {
        let sum = Arc::clone(&sum);
        pool.submit(move || {
            sum.fetch_add(i, Ordering::Relaxed);
        })?;
    }
    let workers = pool.workers();
    pool.release_timeout(Duration::from_secs(10))?;
    println!(
        "1. 1,000 tasks on capacity 4: sum {} (expected 500500), {} workers, {:?}",
        sum.load(Ordering::Relaxed),
        workers,
        start.elapsed()
    );
    Ok(())
}

fn backpressure() -> Res {
    for queue in [0, 3] {
        let pool = Pool::builder()
            .capacity(2)
            .queue_capacity(queue)
            .nonblocking(true)
            .build()?;
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..10 {
            let gate = Arc::clone(&gate);
            match pool.submit(move || {
                let _ = gate.lock().unwrap().recv();
            }) {
                Ok(()) => accepted += 1,
                Err(PoolError::Overloaded) => refused += 1,
                Err(e) => return Err(e.into()),
            }
        }
        println!(
            "2. nonblocking pool of 2, queue_capacity {queue}, 10 blocking tasks: {accepted} accepted, {refused} refused with Overloaded, busy {}, queued {}",
            pool.busy(),
            pool.queued()
        );
        drop(release);
        pool.release_timeout(Duration::from_secs(10))?;
    }
    Ok(())
}

fn panics() -> Res {
    let caught = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&caught);
    let pool = Pool::builder()
        .capacity(2)
        .panic_handler(move |_payload| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()?;
    // Silence std's own report of each panic for the tour.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let ok = Arc::clone(&ok);
        pool.submit(move || {
            if i % 10 == 0 {
                panic!("task {i} failed");
            }
            ok.fetch_add(1, Ordering::Relaxed);
        })?;
    }
    pool.release_timeout(Duration::from_secs(10))?;
    std::panic::set_hook(hook);
    println!(
        "3. 100 tasks, 10 of them panic: {} ran to the end, handler saw {} panics, pool counted {}",
        ok.load(Ordering::Relaxed),
        caught.load(Ordering::Relaxed),
        pool.panicked()
    );
    Ok(())
}

fn tune() -> Res {
    let pool = Pool::new(2)?;
    let barrier = Arc::new(Barrier::new(5));
    for _ in 0..2 {
        let barrier = Arc::clone(&barrier);
        pool.submit(move || {
            barrier.wait();
        })?;
    }
    let before = (pool.workers(), pool.free());
    pool.tune(4)?;
    for _ in 0..2 {
        let barrier = Arc::clone(&barrier);
        pool.submit(move || {
            barrier.wait();
        })?;
    }
    let after = (pool.workers(), pool.free());
    barrier.wait();
    println!(
        "4. tune 2 -> 4 while full: workers/free {:?} -> {:?}",
        before, after
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn expiry() -> Res {
    let expiry = Duration::from_millis(100);
    let pool = Pool::builder()
        .capacity(8)
        .min_workers(2)
        .expiry(expiry)
        .build()?;
    let barrier = Arc::new(Barrier::new(9));
    for _ in 0..8 {
        let barrier = Arc::clone(&barrier);
        pool.submit(move || {
            barrier.wait();
        })?;
    }
    barrier.wait();
    let peak = pool.workers();
    let start = Instant::now();
    while pool.workers() > 2 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "5. expiry 100 ms, min_workers 2: {peak} workers after a burst, {} after {:?} idle",
        pool.workers(),
        start.elapsed()
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn func_and_multi() -> Res {
    let total = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&total);
    let pool = PoolWithFunc::new(4, move |n: usize| {
        sink.fetch_add(n, Ordering::Relaxed);
    })?;
    for n in 1..=100 {
        pool.invoke(n)?;
    }
    pool.release_timeout(Duration::from_secs(10))?;

    let pools = MultiPool::new(4, 2, LoadBalancing::RoundRobin)?;
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..1_000 {
        let count = Arc::clone(&count);
        pools.submit(move || {
            count.fetch_add(1, Ordering::Relaxed);
        })?;
    }
    pools.release_timeout(Duration::from_secs(10))?;
    println!(
        "6. PoolWithFunc summed 1..=100 to {}; MultiPool of 4 x 2 ran {} of 1,000 tasks",
        total.load(Ordering::Relaxed),
        count.load(Ordering::Relaxed)
    );
    Ok(())
}

fn throughput(cores: usize) -> Res {
    let run = |pool: &Pool, tasks: usize, work: fn()| -> Result<Duration, PoolError> {
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        for _ in 0..tasks {
            let done = Arc::clone(&done);
            let tx = tx.clone();
            pool.submit(move || {
                work();
                if done.fetch_add(1, Ordering::AcqRel) + 1 == tasks {
                    let _ = tx.send(());
                }
            })?;
        }
        let _ = rx.recv();
        Ok(start.elapsed())
    };

    for queue in [0, 1024] {
        let pool = Pool::builder()
            .capacity(cores)
            .queue_capacity(queue)
            .build()?;
        let tasks = 200_000;
        let took = run(&pool, tasks, || {})?;
        println!(
            "7. {tasks} empty tasks on {cores} workers, queue_capacity {queue}{}: {:?}, {:.2} M tasks/s, {:.0} ns/task",
            if queue == 0 { " (ants' hand-off)" } else { " (the default)" },
            took,
            tasks as f64 / took.as_secs_f64() / 1e6,
            took.as_nanos() as f64 / tasks as f64
        );
        pool.release_timeout(Duration::from_secs(10))?;
    }

    let pool = Pool::new(1_000)?;
    let tasks = 10_000;
    let took = run(&pool, tasks, || {
        std::thread::sleep(Duration::from_millis(10))
    })?;
    let threads = pool.workers();
    pool.release_timeout(Duration::from_secs(30))?;
    println!(
        "8. {tasks} tasks of 10 ms sleep on capacity 1,000: {:?} (ideal 100 ms), {threads} workers; released and joined",
        took
    );
    Ok(())
}

fn would_deadlock() -> Res {
    let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    let (tx, rx) = mpsc::channel();
    let own = pool.clone();
    pool.submit(move || {
        // The only worker is this task's: a blocking submit could never return.
        tx.send(own.submit(|| ())).unwrap();
    })?;
    let answer = rx.recv_timeout(Duration::from_secs(10))?;
    println!(
        "9. a task submitting to its own full pool gets {answer:?} at once, instead of hanging"
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

/// Polls `done` every millisecond for at most 10 s; returns whether it
/// became true. The tour waits this way where the pool has no call that
/// waits for the state it wants to show.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn handles(cores: usize) -> Res {
    let pool = Pool::new(cores)?;
    let tasks = 10_000u64;
    let start = Instant::now();
    // Every handle first, then every join: the tasks run while the caller
    // spawns, and `spawn` blocks for room in the queue as `submit` does.
    let handles = (0..tasks)
        .map(|n| pool.spawn(move || n * n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sum = 0;
    for handle in handles {
        sum += handle.join()?;
    }
    let took = start.elapsed();
    let expected: u64 = (0..tasks).map(|n| n * n).sum();
    assert_eq!(sum, expected);
    println!(
        "10. {tasks} spawned tasks returning n * n on {cores} workers, joined in order: sum {sum} (expected {expected}), {took:?}, {:.0} ns/task (spawn + join)",
        took.as_nanos() as f64 / tasks as f64
    );

    // While its handle lives, a task's panic is the handle's: `join` returns
    // it, and the panic handler is not called. Silence std's report of it.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let doomed = pool.spawn(|| -> u64 { panic!("no square for you") })?;
    let error = doomed.join().unwrap_err();
    std::panic::set_hook(hook);
    // The worker caught the panic and lives on.
    let after = pool.spawn(|| 7 * 7)?.join()?;
    println!(
        "10. a panicking task's handle: join gives Err, Display \"{error}\", is_panic {}; pool counted {} panic, and the next task still answers {after}",
        error.is_panic(),
        pool.panicked()
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn batches() -> Res {
    let pool = Pool::new(10)?;
    // Tasks 6 to 9 wait for the gate, so the batch stops at 6 of 10 until
    // the caller opens it: `progress` is read at a known point.
    let (open, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let start = Instant::now();
    let batch = pool.spawn_batch((0..10u64).map(|n| {
        let gate = Arc::clone(&gate);
        move || {
            if n >= 6 {
                let _ = gate.lock().unwrap().recv();
            }
            n * 10
        }
    }))?;
    let reached = wait_until(|| batch.progress().0 == 6);
    let (partial, finished) = (batch.progress(), batch.is_finished());
    drop(open);
    let all = batch.wait_timeout(Duration::from_secs(10));
    let (last, took) = (batch.progress(), start.elapsed());
    let tens = batch.join().into_iter().collect::<Result<Vec<_>, _>>()?;
    assert!(reached && all && !finished);
    println!(
        "11. spawn_batch of 10, 4 held at a gate: progress {partial:?} (finished {finished}), gate opened: {last:?} in {took:?}; join, in submission order: {tens:?}"
    );

    // One callback for the whole batch, run on the worker as each task ends,
    // with the task's index: the caller learns of each result as it comes,
    // while `join` still gives them in order. Later tasks sleep less, so the
    // callbacks see them first.
    let ended = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ended);
    let failed = Arc::new(AtomicUsize::new(0));
    let errors = Arc::clone(&failed);
    let batch = pool
        .batch((0..8u64).map(|n| {
            move |token: &CancelToken| {
                token.wait_timeout(Duration::from_millis((8 - n) * 3));
                if n % 3 == 2 {
                    Err(n)
                } else {
                    Ok(n)
                }
            }
        }))
        .on_complete(move |index, result| {
            seen.lock().unwrap().push(index);
            if !matches!(result, Ok(Ok(_))) {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        })
        .spawn()?;
    let results = batch.join().into_iter().collect::<Result<Vec<_>, _>>()?;
    // Every callback has run once `join` returns: each runs before its
    // task counts as ended.
    let ended = ended.lock().unwrap().clone();
    assert_eq!(ended.len(), 8);
    println!(
        "11. Pool::batch of 8 with on_complete(|index, result|): callbacks saw indices {ended:?} (later tasks sleep less), {} of them Err; join gives {results:?}",
        failed.load(Ordering::Relaxed)
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn cancellation() -> Res {
    // One worker, held by a task that waits for the gate: what comes next
    // waits in the queue.
    let pool = Pool::new(1)?;
    let (open, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let busy = pool.spawn(move || {
        started_tx.send(()).unwrap();
        gate.recv()
    })?;
    started.recv_timeout(Duration::from_secs(10))?;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let queued = pool.spawn(move || flag.store(true, Ordering::SeqCst))?;
    let before = pool.queued();
    let stopped = queued.cancel();
    // Its slot is free at once, though the worker has not come round to it.
    let after = pool.queued();
    // A queued task whose deadline passes never runs either; the
    // maintenance thread cancels it while the worker is still busy.
    let late = pool
        .task(|_token: &CancelToken| ())
        .deadline(Duration::from_millis(10))
        .spawn()?;
    let expired = late.wait_timeout(Duration::from_secs(10));
    open.send(())?;
    busy.join()??;
    pool.wait_idle(Duration::from_secs(10))?;
    let cancelled = queued.join().unwrap_err();
    let deadline = late.join().unwrap_err();
    assert!(stopped && expired && !ran.load(Ordering::SeqCst));
    println!(
        "12. cancel a queued task: queued {before} -> {after}, cancel() = {stopped}, join says \"{cancelled}\", it ran: {}; a queued task past its deadline: \"{deadline}\"",
        ran.load(Ordering::SeqCst)
    );
    pool.release_timeout(Duration::from_secs(10))?;

    // A running task sees its deadline through its token. It sleeps on the
    // token, not with `thread::sleep`, so the cancel ends the sleep at once.
    let pool = Pool::new(2)?;
    let deadline = Duration::from_millis(20);
    let start = Instant::now();
    let patient = pool
        .task(move |token: &CancelToken| {
            let cancelled = token.wait_timeout(Duration::from_secs(10));
            (cancelled, start.elapsed())
        })
        .deadline(deadline)
        .spawn()?;
    match patient.join() {
        Ok((cancelled, seen)) => {
            assert!(cancelled, "the 20 ms deadline did not end a 10 s wait");
            println!(
                "12. deadline 20 ms on a task waiting 10 s on its token: token cancelled, seen after {seen:?}, {:?} after the deadline",
                seen.saturating_sub(deadline)
            );
        }
        // On a very busy machine the deadline may pass before it starts.
        Err(error) => println!("12. deadline 20 ms: the task never started: \"{error}\""),
    }

    // Fan-out: every child has the parent token as a parent too, and one
    // cancel stops them all, wherever they are.
    let children = 8;
    let parent = CancelToken::new();
    let waiting = Arc::new(AtomicUsize::new(0));
    let handles = (0..children)
        .map(|_| {
            let waiting = Arc::clone(&waiting);
            pool.task(move |token: &CancelToken| {
                waiting.fetch_add(1, Ordering::SeqCst);
                let cancelled = token.wait_timeout(Duration::from_secs(10));
                (cancelled, Instant::now())
            })
            .parent(&parent)
            .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The pool has 2 workers: 2 children wait on their tokens, 6 are queued.
    let running = wait_until(|| waiting.load(Ordering::SeqCst) == 2);
    let (queued, cancel_at) = (pool.queued(), Instant::now());
    parent.cancel();
    let (mut seen, mut never_started, mut last) = (0, 0, cancel_at);
    for handle in handles {
        match handle.join() {
            Ok((cancelled, at)) => {
                assert!(cancelled);
                seen += 1;
                last = last.max(at);
            }
            Err(TaskError::Cancelled) => never_started += 1,
            Err(error) => return Err(error.into()),
        }
    }
    let joined = cancel_at.elapsed();
    assert!(running && seen + never_started == children);
    println!(
        "12. one parent token, {children} children on 2 workers ({queued} queued): parent.cancel() -> {seen} running saw their token within {:?}, {never_started} queued never started; all joined in {joined:?}",
        last - cancel_at
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn retries() -> Res {
    let pool = Pool::new(2)?;
    // Fails 3 times, then succeeds: waits of 5, 10 and 20 ms, each plus a
    // random jitter of up to itself, so 35 to 70 ms in all.
    let start = Instant::now();
    // Each attempt runs a fresh copy of the closure: the count lives
    // behind an `Arc`.
    let counted = Arc::new(AtomicUsize::new(0));
    let flaky = pool
        .task(move |_token: &CancelToken| {
            let attempts = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if attempts < 4 {
                Err(attempts)
            } else {
                Ok(attempts)
            }
        })
        .retry(Retry::exponential(Duration::from_millis(5)).max_attempts(5))
        .spawn()?;
    let result = flaky.join()?;
    let took = start.elapsed();
    assert_eq!(result, Ok(4));
    println!(
        "13. retry exponential 5 ms, max 5 attempts, a task failing 3 times: {result:?} after 4 attempts in {took:?} (waits 5 + 10 + 20 ms plus jitter: 35 to 70 ms)"
    );

    // Always failing: the last error is the result once attempts run out.
    let start = Instant::now();
    let counted = Arc::new(AtomicUsize::new(0));
    let hopeless = pool
        .task(move |_token: &CancelToken| -> Result<(), String> {
            let attempts = counted.fetch_add(1, Ordering::SeqCst) + 1;
            Err(format!("attempt {attempts} failed"))
        })
        .retry(Retry::exponential(Duration::from_millis(5)).max_attempts(3))
        .spawn()?;
    let result = hopeless.join()?;
    let took = start.elapsed();
    assert!(result.is_err());
    // A cancel (here the deadline) ends a wait between attempts at once,
    // instead of after its 200 ms.
    let start = Instant::now();
    let counted = Arc::new(AtomicUsize::new(0));
    let stopped = pool
        .task(move |_token: &CancelToken| -> Result<(), usize> {
            Err(counted.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .retry(Retry::exponential(Duration::from_millis(200)).max_attempts(10))
        .deadline(Duration::from_millis(30))
        .spawn()?;
    let cut = stopped.join();
    let cut_took = start.elapsed();
    println!(
        "13. max 3 attempts, always failing: {result:?} in {took:?}; waits of 200 ms cut by a 30 ms deadline: {cut:?} in {cut_took:?}"
    );
    pool.release_timeout(Duration::from_secs(10))?;

    // A wait holds no worker: the task leaves it, and comes back when its
    // wait is over. On one worker, 100 tasks run while a retry waits.
    let one = Pool::new(1)?;
    let start = Instant::now();
    let waiting = one
        .task(|_token: &CancelToken| Err::<(), _>("down"))
        .retry(
            Retry::exponential(Duration::from_millis(200))
                .max_attempts(2)
                .without_jitter(),
        )
        .spawn()?;
    let others = (0..100u64)
        .map(|n| one.spawn(move || n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sum = 0;
    for handle in others {
        sum += handle.join()?;
    }
    let others_took = start.elapsed();
    let last = waiting.join()?;
    assert_eq!((sum, last), (4950, Err("down")));
    println!(
        "13. one worker, a retry waiting 200 ms between its 2 attempts: 100 other tasks ran meanwhile, all done in {others_took:?}; the retry ended {last:?} after {:?}",
        start.elapsed()
    );
    one.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn scopes(cores: usize) -> Res {
    let pool = Pool::new(cores)?;
    // Scoped tasks borrow the caller's data: slices of a local Vec in, a
    // `&mut` slot each of a local array out. No Arc, no copy, no 'static.
    let data: Vec<u64> = (1..=1_000_000).collect();
    let mut sums = [0u64; 8];
    let chunk = data.len().div_ceil(sums.len());
    let start = Instant::now();
    pool.scope(|s| {
        for (part, sum) in data.chunks(chunk).zip(sums.iter_mut()) {
            s.spawn(move || *sum = part.iter().sum());
        }
    });
    let took = start.elapsed();
    let total: u64 = sums.iter().sum();
    assert_eq!(total, 500_000_500_000);
    println!(
        "14. scope: 8 tasks summed slices of a borrowed Vec of 1,000,000 into a borrowed [u64; 8]: total {total} (expected 500000500000) in {took:?}"
    );

    // parallel_execute: results in the order given, whatever order the
    // tasks end in. Each sleeps less than the one before, and the caller
    // runs those no worker has started yet, so they end out of order.
    let text = String::from("results come back in the order given");
    let words: Vec<&str> = text.split(' ').collect();
    let count = words.len();
    let ended = Mutex::new(Vec::new());
    let ended_ref = &ended;
    let start = Instant::now();
    let results = pool.parallel_execute(words.iter().enumerate().map(|(i, word)| {
        move || {
            std::thread::sleep(Duration::from_millis(2 * (count - i) as u64));
            ended_ref.lock().unwrap().push(i);
            word.to_uppercase()
        }
    }));
    let took = start.elapsed();
    let upper = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    println!(
        "14. parallel_execute of {count} closures borrowing a local String: ended in order {:?}, results {upper:?} in {took:?}",
        ended.into_inner().unwrap()
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn async_submits(cores: usize) -> Res {
    // One worker, no queue, held for 30 ms: `submit_async` has to wait for
    // room. It waits as a stored waker that the worker wakes, not by
    // polling: count how often the executor polls it.
    let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    let (started_tx, started) = mpsc::channel();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    })?;
    started.recv_timeout(Duration::from_secs(10))?;
    let start = Instant::now();
    let (waited, polls, seven) = futures_executor::block_on(async {
        let mut submit = pin!(pool.submit_async(|| ()));
        let mut polls = 0;
        poll_fn(|cx| {
            polls += 1;
            submit.as_mut().poll(cx)
        })
        .await?;
        let waited = start.elapsed();
        let seven = pool.spawn_async(|| 7).await?.await?;
        Ok::<_, Box<dyn std::error::Error>>((waited, polls, seven))
    })?;
    println!(
        "15. submit_async on a full pool (its worker busy for 30 ms): room after {waited:?}, polled {polls} times; spawn_async(|| 7).await?.await? = {seven}"
    );
    pool.release_timeout(Duration::from_secs(10))?;

    // Section 10 again, awaited: handles are futures on any executor.
    let pool = Pool::new(cores)?;
    let tasks = 10_000u64;
    let start = Instant::now();
    let sum = futures_executor::block_on(async {
        let mut handles = Vec::with_capacity(tasks as usize);
        for n in 0..tasks {
            handles.push(pool.spawn_async(move || n * n).await?);
        }
        let mut sum = 0;
        for handle in handles {
            sum += handle.await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(sum)
    })?;
    let took = start.elapsed();
    assert_eq!(sum, (0..tasks).map(|n| n * n).sum::<u64>());
    println!(
        "15. {tasks} spawn_async + .await on block_on: sum {sum}, {took:?}, {:.0} ns/task",
        took.as_nanos() as f64 / tasks as f64
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}

fn room() -> Res {
    // One worker, no queue, held until the gate opens: the pool is full.
    let pool = Pool::builder().capacity(1).queue_capacity(0).build()?;
    let (open, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = gate.recv();
    })?;
    started.recv_timeout(Duration::from_secs(10))?;

    // `try_submit` gives the closure back: what it captured (8 MiB here)
    // comes back with it, not a copy, ready to submit again.
    let big = vec![7u8; 8 << 20];
    let address = big.as_ptr() as usize;
    let (tx, rx) = mpsc::channel();
    let task = move || tx.send((big.as_ptr() as usize, big.len())).unwrap();
    let refused = match pool.try_submit(task) {
        Ok(()) => return Err("a full pool took a task from try_submit".into()),
        Err(refused) => refused,
    };
    let shown = refused.to_string();
    let task = refused.into_inner();

    // `submit_timeout` waits for room, but only so long.
    let start = Instant::now();
    let timed_out = pool.submit_timeout(|| (), Duration::from_millis(20));
    let waited = start.elapsed();
    assert_eq!(timed_out, Err(PoolError::Timeout));

    open.send(())?;
    pool.submit(task)?;
    let (ran_at, len) = rx.recv_timeout(Duration::from_secs(10))?;
    println!(
        "16. try_submit on a full pool: Err(\"{shown}\"), the closure given back and submitted later ran with the same 8 MiB buffer: {}; submit_timeout 20 ms: {timed_out:?} after {waited:?}",
        ran_at == address && len == 8 << 20
    );
    pool.release_timeout(Duration::from_secs(10))?;

    // `wait_idle` waits for every task without closing the pool, unlike
    // `release_timeout`: the pool takes tasks again at once.
    let pool = Pool::new(4)?;
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..100 {
        let done = Arc::clone(&done);
        pool.submit(move || {
            std::thread::sleep(Duration::from_millis(1));
            done.fetch_add(1, Ordering::SeqCst);
        })?;
    }
    pool.wait_idle(Duration::from_secs(10))?;
    let took = start.elapsed();
    let finished = done.load(Ordering::SeqCst);
    let workers = pool.workers();
    let again = pool.spawn(|| "still open")?.join()?;
    assert_eq!(finished, 100);
    println!(
        "16. wait_idle after 100 tasks of 1 ms on 4 workers: {finished} of 100 done in {took:?} (ideal 25 ms), {workers} workers kept, is_closed {}, next task: {again:?}",
        pool.is_closed()
    );
    pool.release_timeout(Duration::from_secs(10))?;
    Ok(())
}
