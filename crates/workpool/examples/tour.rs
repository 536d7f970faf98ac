//! A tour of workpool: every feature of the pool at work, with figures.
//!
//! Run: `cargo run --release --example tour`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};
use workpool::{LoadBalancing, MultiPool, Pool, PoolError, PoolWithFunc};

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
