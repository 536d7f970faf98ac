//! A pool finding its own capacity in front of a downstream with a knee.
//!
//! The downstream (a saturated database, simulated with sleeps): up to
//! `knee` calls at once take 10 ms each; past it calls queue (run time
//! grows as `calls / knee`) and each extra call adds 0.2 ms to every call.
//! A feeder keeps the pool saturated. The example runs fixed capacities
//! (the sweep finds the best one: the oracle), then each autoscale policy
//! from capacity 2, then each policy while the knee moves 32 -> 8 -> 64.
//! It prints throughput, run-time p99 and capacities; it takes about
//! 80 seconds.
//!
//! `cargo run --release -p workpool --example autoscale`

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workpool::{Autoscale, Pool};

struct Downstream {
    knee: AtomicUsize,
    calls: AtomicUsize,
}

impl Downstream {
    fn call(&self) {
        let now = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let knee = self.knee.load(Ordering::SeqCst);
        let queueing = (now as f64 / knee as f64).max(1.0);
        let contention = Duration::from_micros(200) * now.saturating_sub(knee) as u32;
        std::thread::sleep(Duration::from_millis(10).mul_f64(queueing) + contention);
        self.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One run's figures, per `slice` of time.
struct Run {
    /// (completions per second, capacity at its end) per slice.
    slices: Vec<(f64, usize)>,
    run_time_p99: Duration,
}

/// Feeds `pool` calls to `downstream` for `period`, moving the knee at the
/// times in `moves`.
fn feed(
    pool: &Pool,
    downstream: &Arc<Downstream>,
    period: Duration,
    moves: &[(Duration, usize)],
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (pool, downstream, stop) = (pool.clone(), Arc::clone(downstream), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let downstream = Arc::clone(&downstream);
                if pool.submit(move || downstream.call()).is_err() {
                    break;
                }
            }
        })
    };
    let slice = Duration::from_millis(500);
    let started = Instant::now();
    let first = pool.stats();
    let mut last = first.clone();
    let mut slices = Vec::new();
    let mut pending = moves.to_vec();
    while started.elapsed() < period {
        std::thread::sleep(slice);
        if let Some(&(at, knee)) = pending.first() {
            if started.elapsed() >= at {
                downstream.knee.store(knee, Ordering::SeqCst);
                pending.remove(0);
            }
        }
        let now = pool.stats();
        let done = now.completed.saturating_sub(last.completed) as f64;
        slices.push((done / slice.as_secs_f64(), pool.capacity().unwrap_or(0)));
        last = now;
    }
    stop.store(true, Ordering::SeqCst);
    feeder.join().expect("the feeder ends");
    let run_time_p99 = pool.stats().since(&first).run_time.p99;
    Run {
        slices,
        run_time_p99,
    }
}

fn downstream(knee: usize) -> Arc<Downstream> {
    Arc::new(Downstream {
        knee: AtomicUsize::new(knee),
        calls: AtomicUsize::new(0),
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("fixed capacities, knee 32 (2 s each):");
    let mut oracle = (0, 0.0, Duration::ZERO);
    for capacity in [2, 4, 8, 16, 32, 64, 128, 256, 512] {
        let pool = Pool::builder()
            .capacity(capacity)
            .queue_capacity(16)
            .build()?;
        let run = feed(&pool, &downstream(32), Duration::from_secs(2), &[]);
        let rate = mean(run.slices.iter().skip(1).map(|s| s.0));
        println!(
            "  capacity {capacity:>3}: {rate:>7.0} tasks/s, run-time p99 {:>6.1} ms",
            run.run_time_p99.as_secs_f64() * 1e3
        );
        if rate > oracle.1 {
            oracle = (capacity, rate, run.run_time_p99);
        }
        pool.release_timeout(Duration::from_secs(10))?;
    }
    println!(
        "  oracle: capacity {} at {:.0} tasks/s, p99 {:.1} ms",
        oracle.0,
        oracle.1,
        oracle.2.as_secs_f64() * 1e3
    );

    for (name, scale) in [
        ("throughput", Autoscale::throughput()),
        ("latency", Autoscale::latency()),
    ] {
        let pool = Pool::builder()
            .capacity(2)
            .queue_capacity(16)
            .autoscale(scale.bounds(1, 512))
            .build()?;
        let run = feed(&pool, &downstream(32), Duration::from_secs(8), &[]);
        let reached = run.slices.iter().position(|s| s.0 >= 0.9 * oracle.1);
        let settled = mean(run.slices.iter().skip(6).map(|s| s.0));
        let threads = mean(run.slices.iter().skip(6).map(|s| s.1 as f64));
        println!(
            "autoscale {name} from 2, knee 32: 0.9x the oracle after {}, then {:.2}x it with {:.0} threads on average ({:.2}x its), run-time p99 {:.1} ms ({:.2}x); capacities {:?}",
            reached.map_or("never".to_owned(), |n| format!("{:.1} s", (n + 1) as f64 * 0.5)),
            settled / oracle.1,
            threads,
            threads / oracle.0 as f64,
            run.run_time_p99.as_secs_f64() * 1e3,
            run.run_time_p99.as_secs_f64() / oracle.2.as_secs_f64().max(1e-9),
            run.slices.iter().map(|s| s.1).collect::<Vec<_>>()
        );
        pool.release_timeout(Duration::from_secs(10))?;
    }

    for (name, scale) in [
        ("throughput", Autoscale::throughput()),
        ("latency", Autoscale::latency()),
    ] {
        let pool = Pool::builder()
            .capacity(32)
            .queue_capacity(16)
            .autoscale(scale.bounds(1, 512))
            .build()?;
        let moves = [(Duration::from_secs(6), 8), (Duration::from_secs(12), 64)];
        let run = feed(&pool, &downstream(32), Duration::from_secs(18), &moves);
        println!(
            "autoscale {name}, knee 32 -> 8 at 6 s -> 64 at 12 s: per 0.5 s (tasks/s, capacity): {:?}",
            run.slices
                .iter()
                .map(|&(rate, capacity)| (rate.round() as u64, capacity))
                .collect::<Vec<_>>()
        );
        pool.release_timeout(Duration::from_secs(10))?;
    }
    Ok(())
}
