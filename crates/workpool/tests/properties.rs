//! Property tests: random sequences of submits, tunes, releases and reboots
//! from several threads, checked against the pool's promises: every accepted
//! task runs exactly once, no refused task runs, no more tasks run at once
//! than the largest capacity the pool was given, and `release_timeout` at the
//! end leaves no task unrun. Pools with and without a queue are drawn.

use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use workpool::{Pool, PoolError};

#[derive(Debug, Clone)]
enum Op {
    /// Submit this many tasks, each busy for a few microseconds.
    Submit(usize),
    Tune(usize),
    Release,
    Reboot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..40).prop_map(Op::Submit),
        2 => (1usize..6).prop_map(Op::Tune),
        1 => Just(Op::Release),
        1 => Just(Op::Reboot),
    ]
}

/// What the tasks of one case share.
#[derive(Default)]
struct Ledger {
    /// Runs of each task, by id.
    runs: Vec<AtomicUsize>,
    /// Whether `submit` accepted each task.
    accepted: Vec<AtomicBool>,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

impl Ledger {
    fn new(tasks: usize) -> Arc<Self> {
        Arc::new(Ledger {
            runs: (0..tasks).map(|_| AtomicUsize::new(0)).collect(),
            accepted: (0..tasks).map(|_| AtomicBool::new(false)).collect(),
            ..Ledger::default()
        })
    }

    fn task(self: &Arc<Self>, id: usize) -> impl FnOnce() + Send + 'static {
        let ledger = Arc::clone(self);
        move || {
            let now = ledger.running.fetch_add(1, Ordering::SeqCst) + 1;
            ledger.most_running.fetch_max(now, Ordering::SeqCst);
            ledger.runs[id].fetch_add(1, Ordering::SeqCst);
            for _ in 0..(id % 7) * 50 {
                std::hint::spin_loop();
            }
            ledger.running.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn run_case(
    capacity: usize,
    queue: usize,
    nonblocking: bool,
    scripts: Vec<Vec<Op>>,
) -> Result<(), TestCaseError> {
    let pool = Pool::builder()
        .capacity(capacity)
        .queue_capacity(queue)
        .nonblocking(nonblocking)
        .expiry(Duration::from_millis(5))
        .build()
        .unwrap();
    let tasks: usize = scripts
        .iter()
        .flatten()
        .map(|op| if let Op::Submit(n) = op { *n } else { 0 })
        .sum();
    let most_capacity = scripts
        .iter()
        .flatten()
        .filter_map(|op| if let Op::Tune(n) = op { Some(*n) } else { None })
        .fold(capacity, usize::max);
    let ledger = Ledger::new(tasks);
    let start = Arc::new(Barrier::new(scripts.len()));
    let mut next_id = 0;
    let mut threads = Vec::new();
    for script in scripts {
        let first_id = next_id;
        next_id += script
            .iter()
            .map(|op| if let Op::Submit(n) = op { *n } else { 0 })
            .sum::<usize>();
        let (pool, ledger, start) = (pool.clone(), Arc::clone(&ledger), Arc::clone(&start));
        threads.push(thread::spawn(move || {
            start.wait();
            let mut id = first_id;
            for op in script {
                match op {
                    Op::Submit(n) => {
                        for _ in 0..n {
                            match pool.submit(ledger.task(id)) {
                                Ok(()) => ledger.accepted[id].store(true, Ordering::SeqCst),
                                Err(PoolError::Closed | PoolError::Overloaded) => {}
                                Err(e) => panic!("unexpected refusal: {e}"),
                            }
                            assert!(pool.workers() <= most_capacity);
                            id += 1;
                        }
                    }
                    Op::Tune(n) => pool.tune(n).unwrap(),
                    Op::Release => pool.release(),
                    Op::Reboot => pool.reboot().unwrap(),
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("a script thread panicked");
    }
    // Open or closed, a final release waits for every accepted task.
    pool.reboot().unwrap();
    prop_assert_eq!(pool.release_timeout(Duration::from_secs(30)), Ok(()));
    prop_assert_eq!(pool.workers(), 0);
    for id in 0..tasks {
        let runs = ledger.runs[id].load(Ordering::SeqCst);
        let accepted = ledger.accepted[id].load(Ordering::SeqCst);
        prop_assert_eq!(
            runs,
            usize::from(accepted),
            "task {} ran {} times",
            id,
            runs
        );
    }
    prop_assert!(ledger.most_running.load(Ordering::SeqCst) <= most_capacity);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn accepted_tasks_run_once_and_refused_ones_never(
        capacity in 1usize..6,
        queue in prop_oneof![Just(0usize), 1usize..8],
        nonblocking in any::<bool>(),
        scripts in prop::collection::vec(prop::collection::vec(op(), 1..8), 1..4),
    ) {
        run_case(capacity, queue, nonblocking, scripts)?;
    }
}
