//! The `map` and `keyed` workloads, which compose work rather than submit
//! it: each peer runs them with the tool its users would reach for.
//!
//! - `map`: `tasks` small inputs through a function, results in input
//!   order (`map`) or as they finish (`map-unordered`). workpool:
//!   `Pool::map` (`.unordered()`); rayon: `into_par_iter().map().collect()`
//!   (everything in memory: not a stream) and `par_bridge()` (unordered);
//!   tokio: `stream::iter(..).map(spawn_blocking).buffered(n)`
//!   (`buffer_unordered`), `n` the window workpool uses by default.
//! - `keyed`: `tasks` tasks over [`KEYS`] keys, one key's tasks one at a
//!   time. workpool: `submit_keyed`; rusty_pool and rayon: a `Mutex` per
//!   key taken inside the task (which holds a worker while it waits and
//!   keeps no order); `thread`: one thread per key, fed by a channel.

use super::peers::{PeerError, Runner};
use futures_util::StreamExt;
use rayon::iter::{IntoParallelIterator, ParallelBridge, ParallelIterator};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Keys of `keyed`.
pub(crate) const KEYS: usize = 1_000;

/// The work of one input or keyed task: a few nanoseconds of arithmetic
/// that the optimiser cannot drop.
#[inline]
fn work(i: u64) -> u64 {
    std::hint::black_box(i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ i)
}

/// The window of the tokio peer: workpool's default (64 per worker).
fn window(cap: usize) -> usize {
    (cap * 64).clamp(64, 16_384)
}

/// Runs `map` (or, unless `ordered`, `map-unordered`) over `tasks` inputs;
/// checks every result (in order where ordered, by their sum otherwise).
pub(crate) fn map(
    runner: &Runner,
    tasks: usize,
    ordered: bool,
    cap: usize,
) -> Result<(), PeerError> {
    let n = tasks as u64;
    let expected = (0..n).fold(0u64, |sum, i| sum.wrapping_add(work(i)));
    let in_order = |results: &mut dyn Iterator<Item = u64>| -> Result<(), PeerError> {
        for (i, got) in (0..n).zip(results) {
            if got != work(i) {
                return Err(PeerError::WrongResult(format!("input {i} gave {got}")));
            }
        }
        Ok(())
    };
    let sum = match runner {
        Runner::Workpool(pool) if ordered => {
            let mut results = pool.map(0..n, work).map_while(Result::ok);
            in_order(&mut results)?;
            expected
        }
        Runner::Workpool(pool) => pool
            .map(0..n, work)
            .unordered()
            .try_fold(0u64, |sum, r| r.map(|v| sum.wrapping_add(v)))
            .map_err(PeerError::Task)?,
        Runner::Rayon(pool) if ordered => {
            let all: Vec<u64> = pool.install(|| (0..n).into_par_iter().map(work).collect());
            in_order(&mut all.into_iter())?;
            expected
        }
        Runner::Rayon(pool) => pool.install(|| {
            (0..n)
                .par_bridge()
                .map(work)
                .reduce(|| 0, u64::wrapping_add)
        }),
        Runner::Tokio { runtime, .. } => runtime.block_on(async {
            let spawned = futures_util::stream::iter(0..n)
                .map(|i| tokio::task::spawn_blocking(move || work(i)));
            let mut sum = 0u64;
            let mut i = 0;
            if ordered {
                let mut results = spawned.buffered(window(cap));
                while let Some(result) = results.next().await {
                    let got = result.map_err(PeerError::Tokio)?;
                    if got != work(i) {
                        return Err(PeerError::WrongResult(format!("input {i} gave {got}")));
                    }
                    i += 1;
                    sum = sum.wrapping_add(got);
                }
            } else {
                let mut results = spawned.buffer_unordered(window(cap));
                while let Some(result) = results.next().await {
                    sum = sum.wrapping_add(result.map_err(PeerError::Tokio)?);
                }
            }
            Ok(sum)
        })?,
        other => return Err(PeerError::NotThisWorkload(format!("{other:?}"))),
    };
    if sum != expected {
        return Err(PeerError::WrongResult(format!(
            "sum {sum}, expected {expected}"
        )));
    }
    Ok(())
}

/// Runs `keyed`: task `i` has key `i % KEYS` and is that key's number
/// `i / KEYS`; `tick` is called by each task once it has run. Returns how
/// many tasks ran out of their key's order (0 for workpool and one thread
/// per key; the lock per key keeps none).
pub(crate) fn keyed(
    runner: &Runner,
    tasks: usize,
    tick: &'static (dyn Fn() + Sync),
) -> Result<&'static AtomicU64, PeerError> {
    // Per key: the number of the next task due, shared by the tasks; in one
    // leaked context, so that a task's closure is two words (`&Keyed`, `i`)
    // and no pool boxes it.
    struct Keyed {
        next: Vec<AtomicU64>,
        out_of_order: AtomicU64,
        tick: &'static (dyn Fn() + Sync),
    }
    impl Keyed {
        fn run(&self, i: usize) {
            let (key, seq) = (i % KEYS, (i / KEYS) as u64);
            if self.next[key].swap(seq + 1, Ordering::Relaxed) != seq {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            work(i as u64);
            (self.tick)();
        }
    }
    let ctx: &'static Keyed = Box::leak(Box::new(Keyed {
        next: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        out_of_order: AtomicU64::new(0),
        tick,
    }));
    let out_of_order = &ctx.out_of_order;
    let run = move |i: usize| ctx.run(i);
    match runner {
        Runner::Workpool(pool) => {
            for i in 0..tasks {
                pool.submit_keyed(i % KEYS, move || run(i))
                    .map_err(PeerError::Pool)?;
            }
        }
        Runner::RustyPool(_) | Runner::Rayon(_) => {
            let locks: &'static [Mutex<()>] =
                Box::leak((0..KEYS).map(|_| Mutex::new(())).collect());
            for i in 0..tasks {
                let task = move || {
                    let _key = locks[i % KEYS].lock().unwrap_or_else(|e| e.into_inner());
                    run(i);
                };
                match runner {
                    Runner::RustyPool(pool) => pool.execute(task),
                    Runner::Rayon(pool) => pool.spawn(task),
                    _ => unreachable!("matched above"),
                }
            }
        }
        Runner::Thread { .. } => {
            let mut senders = Vec::with_capacity(KEYS);
            let mut threads = Vec::with_capacity(KEYS);
            for _ in 0..KEYS {
                let (tx, rx) = crossbeam_channel::bounded::<usize>(64);
                senders.push(tx);
                threads.push(
                    std::thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            for i in rx {
                                run(i);
                            }
                        })
                        .map_err(PeerError::Spawn)?,
                );
            }
            for i in 0..tasks {
                senders[i % KEYS]
                    .send(i)
                    .map_err(|_| PeerError::ChannelClosed)?;
            }
            drop(senders);
            for thread in threads {
                thread.join().map_err(|_| PeerError::TaskPanicked)?;
            }
        }
        other => return Err(PeerError::NotThisWorkload(format!("{other:?}"))),
    }
    Ok(out_of_order)
}
