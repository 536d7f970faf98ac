//! workpool and its peers behind one `submit` (and, for `join`, one
//! `spawn_join`), each called through its own generic API so that no
//! implementation pays for an extra box.
//!
//! Every peer is configured as its own documentation recommends, given the
//! most threads (`cap`) the workload allows: the README lists how, one line
//! per peer, and each arm of [`Runner::start`] says why.

use super::plan::Impl;
use crate::probe;
use crossbeam_channel::Sender;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A task of the crossbeam floor, boxed because a channel carries one type.
type Job = Box<dyn FnOnce() + Send>;

/// Slots of the crossbeam floor's channel: enough that the submitter rarely
/// waits, few enough to bound memory like a pool does.
const FLOOR_SLOTS: usize = 1024;

/// How long rusty_pool keeps a non-core thread that has nothing to do: the
/// value its docs use and its `ThreadPool::default()` picks.
const RUSTY_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// How long a shutdown may wait for threads; a run that takes longer has a
/// bug the parent's timeout will report.
const SHUTDOWN: Duration = Duration::from_secs(60);

/// The result of task `i` of `join`: never 0, so that a result lost or left
/// at its default shows in the sum.
#[inline]
pub(crate) fn join_value(i: usize) -> u64 {
    (i as u64 + 1) * 3
}

/// The sum of the results `join` should find, wrapping as the runner's does.
pub(crate) fn join_sum(tasks: usize) -> u64 {
    (0..tasks).fold(0, |sum, i| sum.wrapping_add(join_value(i)))
}

/// Why an implementation could not be built, take a task, give a result
/// or stop; each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    /// workpool's builder refused the options.
    #[error("{0}")]
    Build(#[source] workpool::BuildError),
    /// rayon's pool could not be built.
    #[error("{0}")]
    Rayon(#[source] rayon::ThreadPoolBuildError),
    /// tokio's runtime could not be built.
    #[error("{0}")]
    Runtime(#[source] std::io::Error),
    /// A thread (a task's own, or one of the crossbeam floor's) could not be
    /// started.
    #[error("{0}")]
    Spawn(#[source] std::io::Error),
    /// `Runner::start(Impl::Apalis, ..)`: apalis runs only from `bench`.
    #[error("apalis runs the redis workload only, from `bench` itself")]
    ApalisHere,
    /// workpool refused a task or did not release in time.
    #[error("{0}")]
    Pool(#[source] workpool::PoolError),
    /// A workpool task gave no result.
    #[error("{0}")]
    Task(#[source] workpool::TaskError),
    /// A tokio task gave no result.
    #[error("{0}")]
    Tokio(#[source] tokio::task::JoinError),
    /// A task of a thread, rusty_pool or the crossbeam floor panicked.
    #[error("a task panicked")]
    TaskPanicked,
    /// The crossbeam floor's channel closed under a submit.
    #[error("the channel closed")]
    ChannelClosed,
    /// `join` on a runner whose tasks give no results (its `Debug`).
    #[error("{0} gives no task results to join")]
    NoResults(String),
    /// A `map` or `keyed` result was wrong (input, value).
    #[error("wrong result: {0}")]
    WrongResult(String),
    /// `map` or `keyed` on a runner that does not run it (its `Debug`).
    #[error("{0} does not run this workload")]
    NotThisWorkload(String),
    /// threadfin's `join_timeout` ran out.
    #[error("threadfin's threads did not exit in time")]
    ThreadfinStuck,
}

/// Joins `handles` in order with `join` and sums their results.
fn sum_in_order<H>(
    handles: impl IntoIterator<Item = H>,
    mut join: impl FnMut(H) -> Result<u64, PeerError>,
) -> Result<u64, PeerError> {
    handles
        .into_iter()
        .try_fold(0u64, |sum, h| Ok(sum.wrapping_add(join(h)?)))
}

/// A started implementation, ready to take tasks from one submitter.
pub(crate) enum Runner {
    Workpool(workpool::Pool),
    /// Handles of the live threads, oldest first; at most `cap` of them.
    Thread {
        cap: usize,
        live: VecDeque<JoinHandle<()>>,
    },
    Threadpool(threadpool::ThreadPool),
    Rayon(rayon::ThreadPool),
    /// The runtime only hosts the blocking pool; tasks come in through the
    /// handle from a thread outside it.
    Tokio {
        runtime: tokio::runtime::Runtime,
        handle: tokio::runtime::Handle,
    },
    RustyPool(rusty_pool::ThreadPool),
    Threadfin(threadfin::ThreadPool),
    Crossbeam {
        jobs: Sender<Job>,
        threads: Vec<JoinHandle<()>>,
    },
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Runner::Workpool(_) => "Workpool",
            Runner::Thread { .. } => "Thread",
            Runner::Threadpool(_) => "Threadpool",
            Runner::Rayon(_) => "Rayon",
            Runner::Tokio { .. } => "Tokio",
            Runner::RustyPool(_) => "RustyPool",
            Runner::Threadfin(_) => "Threadfin",
            Runner::Crossbeam { .. } => "Crossbeam",
        };
        write!(f, "Runner::{name} {{ .. }}")
    }
}

impl Runner {
    /// Builds `imp` with at most `cap` threads running tasks.
    pub(crate) fn start(imp: Impl, cap: usize) -> Result<Runner, PeerError> {
        Ok(match imp {
            // The library's defaults: workers started on demand, a bounded
            // queue of `PoolBuilder::DEFAULT_QUEUE_CAPACITY` tasks.
            Impl::Workpool => Runner::Workpool(
                workpool::Pool::builder()
                    .capacity(cap)
                    .build()
                    .map_err(PeerError::Build)?,
            ),
            // No queue: every task is handed to a worker (ants' semantics).
            Impl::WorkpoolHandoff => Runner::Workpool(
                workpool::Pool::builder()
                    .capacity(cap)
                    .queue_capacity(0)
                    .build()
                    .map_err(PeerError::Build)?,
            ),
            Impl::Thread => Runner::Thread {
                cap,
                live: VecDeque::with_capacity(cap),
            },
            // threadpool has one size, fixed: `new(n)` "capable of executing
            // n jobs concurrently", all n started at once.
            Impl::Threadpool => Runner::Threadpool(threadpool::ThreadPool::new(cap)),
            // rayon's own pool of `num_threads`, all started at build (its
            // default is one per logical CPU, what every workload but `sleep`
            // and its sweep asks for anyway); `spawn` is its fire-and-forget.
            Impl::Rayon => Runner::Rayon(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cap)
                    .build()
                    .map_err(PeerError::Rayon)?,
            ),
            // `spawn_blocking` threads are started on demand up to
            // `max_blocking_threads`, then tasks queue; tokio's docs say a
            // current-thread runtime still spawns them, so no async workers
            // sit beside them. Default keep-alive (10 s).
            Impl::Tokio => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .max_blocking_threads(cap)
                    .build()
                    .map_err(PeerError::Runtime)?;
                let handle = runtime.handle().clone();
                Runner::Tokio { runtime, handle }
            }
            // As its docs (and `ThreadPool::default()`) set it up: a core of
            // one thread per CPU, growing on demand to the max size with a
            // 60 s keep-alive for the extra threads. Threads start lazily.
            Impl::RustyPool => Runner::RustyPool(rusty_pool::ThreadPool::new(
                probe::cores().min(cap),
                cap,
                RUSTY_KEEP_ALIVE,
            )),
            // Its documented lazy form: no idle threads, up to `cap` spawned
            // when there is work, the default 60 s keep-alive and unbounded
            // queue.
            Impl::Threadfin => Runner::Threadfin(threadfin::builder().size(0..cap).build()),
            Impl::Crossbeam => {
                let (jobs, rx) = crossbeam_channel::bounded::<Job>(FLOOR_SLOTS);
                let threads = (0..cap)
                    .map(|n| {
                        let rx = rx.clone();
                        thread::Builder::new()
                            .name(format!("crossbeam-{n}"))
                            .spawn(move || {
                                for job in rx {
                                    job();
                                }
                            })
                            .map_err(PeerError::Spawn)
                    })
                    .collect::<Result<_, _>>()?;
                Runner::Crossbeam { jobs, threads }
            }
            Impl::Apalis => return Err(PeerError::ApalisHere),
        })
    }

    /// Hands `task` over, blocking where the implementation applies
    /// backpressure.
    #[inline]
    pub(crate) fn submit<F>(&mut self, task: F) -> Result<(), PeerError>
    where
        F: FnOnce() + Send + 'static,
    {
        match self {
            Runner::Workpool(pool) => pool.submit(task).map_err(PeerError::Pool),
            Runner::Thread { cap, live } => {
                if live.len() == *cap {
                    if let Some(oldest) = live.pop_front() {
                        oldest.join().map_err(|_| PeerError::TaskPanicked)?;
                    }
                }
                live.push_back(
                    thread::Builder::new()
                        .spawn(task)
                        .map_err(PeerError::Spawn)?,
                );
                Ok(())
            }
            Runner::Threadpool(pool) => {
                pool.execute(task);
                Ok(())
            }
            Runner::Rayon(pool) => {
                pool.spawn(task);
                Ok(())
            }
            Runner::Tokio { handle, .. } => {
                // Dropping the JoinHandle detaches the task; it still runs.
                drop(handle.spawn_blocking(task));
                Ok(())
            }
            Runner::RustyPool(pool) => {
                pool.execute(task);
                Ok(())
            }
            Runner::Threadfin(pool) => {
                // Dropping the task handle detaches it; it still runs.
                drop(pool.execute(task));
                Ok(())
            }
            Runner::Crossbeam { jobs, .. } => jobs
                .send(Box::new(task))
                .map_err(|_| PeerError::ChannelClosed),
        }
    }

    /// `join`: spawns `tasks` tasks, the i-th returning [`join_value`]`(i)`,
    /// then joins them in submission order and returns the sum of their
    /// results, each implementation through its own API for a task's result:
    ///
    /// - workpool: `spawn`, then `TaskHandle::join`;
    /// - a thread per task: `JoinHandle::join`; at most `cap` threads alive,
    ///   so the oldest is joined before a new one starts;
    /// - rayon: `in_place_scope`, one `spawn` per task writing its own slot,
    ///   read in order once the scope has returned. `in_place_scope` keeps
    ///   the submitter on this thread, as every other implementation does
    ///   (`scope` would run it on one of the `cap` workers);
    /// - tokio: `spawn_blocking`, then `block_on` of each `JoinHandle`;
    /// - rusty_pool: `evaluate`, then `try_await_complete` (`await_complete`
    ///   without the panic) of each `JoinHandle`;
    /// - threadfin: `execute`, then `Task::join`.
    ///
    /// threadpool and the crossbeam floor give no results: an error.
    pub(crate) fn spawn_join(&mut self, tasks: usize) -> Result<u64, PeerError> {
        match self {
            Runner::Workpool(pool) => {
                let handles = (0..tasks)
                    .map(|i| pool.spawn(move || join_value(i)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(PeerError::Pool)?;
                sum_in_order(handles, |h| h.join().map_err(PeerError::Task))
            }
            Runner::Thread { cap, .. } => {
                let join = |h: JoinHandle<u64>| h.join().map_err(|_| PeerError::TaskPanicked);
                let mut sum = 0u64;
                let mut live = VecDeque::with_capacity(*cap);
                for i in 0..tasks {
                    if live.len() == *cap {
                        if let Some(oldest) = live.pop_front() {
                            sum = sum.wrapping_add(join(oldest)?);
                        }
                    }
                    live.push_back(
                        thread::Builder::new()
                            .spawn(move || join_value(i))
                            .map_err(PeerError::Spawn)?,
                    );
                }
                Ok(sum.wrapping_add(sum_in_order(live, join)?))
            }
            Runner::Rayon(pool) => {
                let slots: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
                pool.in_place_scope(|s| {
                    for (i, slot) in slots.iter().enumerate() {
                        s.spawn(move |_| slot.store(join_value(i), Ordering::Relaxed));
                    }
                });
                sum_in_order(&slots, |slot| Ok(slot.load(Ordering::Relaxed)))
            }
            Runner::Tokio { runtime, handle } => {
                let handles: Vec<_> = (0..tasks)
                    .map(|i| handle.spawn_blocking(move || join_value(i)))
                    .collect();
                sum_in_order(handles, |h| runtime.block_on(h).map_err(PeerError::Tokio))
            }
            Runner::RustyPool(pool) => {
                let handles: Vec<_> = (0..tasks)
                    .map(|i| pool.evaluate(move || join_value(i)))
                    .collect();
                sum_in_order(handles, |h| {
                    h.try_await_complete().map_err(|_| PeerError::TaskPanicked)
                })
            }
            Runner::Threadfin(pool) => {
                let handles: Vec<_> = (0..tasks)
                    .map(|i| pool.execute(move || join_value(i)))
                    .collect();
                sum_in_order(handles, |h| Ok(h.join()))
            }
            Runner::Threadpool(_) | Runner::Crossbeam { .. } => {
                Err(PeerError::NoResults(format!("{self:?}")))
            }
        }
    }

    /// Stops the implementation and, where it can, waits for its threads.
    pub(crate) fn shutdown(self) -> Result<(), PeerError> {
        match self {
            Runner::Workpool(pool) => pool.release_timeout(SHUTDOWN).map_err(PeerError::Pool),
            Runner::Thread { live, .. } => {
                for handle in live {
                    handle.join().map_err(|_| PeerError::TaskPanicked)?;
                }
                Ok(())
            }
            Runner::Threadpool(pool) => {
                pool.join();
                Ok(())
            }
            // rayon has no join: dropping the pool lets its threads exit on
            // their own.
            Runner::Rayon(pool) => {
                drop(pool);
                Ok(())
            }
            Runner::Tokio { runtime, handle } => {
                drop(handle);
                runtime.shutdown_timeout(SHUTDOWN);
                Ok(())
            }
            Runner::RustyPool(pool) => {
                pool.shutdown_join_timeout(SHUTDOWN);
                Ok(())
            }
            Runner::Threadfin(pool) => {
                if pool.join_timeout(SHUTDOWN) {
                    Ok(())
                } else {
                    Err(PeerError::ThreadfinStuck)
                }
            }
            Runner::Crossbeam { jobs, threads } => {
                drop(jobs);
                for handle in threads {
                    handle.join().map_err(|_| PeerError::TaskPanicked)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Workload;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn every_implementation_runs_every_task() {
        assert!(Runner::start(Impl::Apalis, 3).is_err());
        for imp in Impl::ALL.into_iter().filter(|i| i.runs(Workload::Empty)) {
            let mut runner = Runner::start(imp, 3).unwrap();
            let count = Arc::new(AtomicUsize::new(0));
            for _ in 0..200 {
                let count = Arc::clone(&count);
                runner
                    .submit(move || {
                        count.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while count.load(Ordering::Relaxed) < 200 {
                assert!(std::time::Instant::now() < deadline, "{}", imp.name());
                thread::sleep(Duration::from_millis(1));
            }
            runner.shutdown().unwrap();
        }
    }

    #[test]
    fn every_implementation_with_results_sums_them_in_order() {
        assert_eq!(join_sum(4), 3 + 6 + 9 + 12);
        for imp in Impl::ALL.into_iter().filter(|i| i.runs(Workload::Join)) {
            let mut runner = Runner::start(imp, 3).unwrap();
            let joined = runner.spawn_join(500);
            if imp.gives_results() {
                let joined = joined.map_err(|e| e.to_string());
                assert_eq!(joined, Ok(join_sum(500)), "{}", imp.name());
            } else {
                assert!(joined.is_err(), "{}", imp.name());
            }
            runner.shutdown().unwrap();
        }
    }
}
