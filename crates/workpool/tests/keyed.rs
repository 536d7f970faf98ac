//! Keyed tasks: per-key order and exclusion under concurrent submitters, a
//! waiting keyed task holding no worker, a panic not stalling its key,
//! follow-up work of a key from its own task without `WouldDeadlock`,
//! backpressure on waiting keyed tasks, cancellation of a waiting one, and
//! `release` with keyed tasks waiting.

mod common;

use common::{hold_a_key, holds_throughout, wait_until, Pending, DEADLINE, INTENTIONAL};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use workpool::{Pool, PoolError, TaskError};

/// Per key: whether a task of it runs now, and the last sequence number run.
struct Ledger {
    running: Vec<AtomicBool>,
    last: Vec<AtomicU64>,
    overlaps: AtomicUsize,
    out_of_order: AtomicUsize,
}

impl Ledger {
    fn new(keys: usize) -> Arc<Ledger> {
        Arc::new(Ledger {
            running: (0..keys).map(|_| AtomicBool::new(false)).collect(),
            // Sequence numbers start at 1: 0 is "none yet".
            last: (0..keys).map(|_| AtomicU64::new(0)).collect(),
            overlaps: AtomicUsize::new(0),
            out_of_order: AtomicUsize::new(0),
        })
    }

    fn run(&self, key: usize, seq: u64) {
        if self.running[key].swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        if self.last[key].swap(seq, Ordering::SeqCst) + 1 != seq {
            self.out_of_order.fetch_add(1, Ordering::SeqCst);
        }
        std::hint::black_box((0..50).sum::<u64>());
        self.running[key].store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_thousand_keys_times_a_thousand_tasks_from_four_submitters_keep_order_and_exclusion() {
    let pool = Arc::new(Pool::new(4).unwrap());
    let (keys, per_key, submitters) = (1_000usize, 1_000u64, 4usize);
    let ledger = Ledger::new(keys);
    std::thread::scope(|s| {
        for submitter in 0..submitters {
            let (pool, ledger) = (Arc::clone(&pool), Arc::clone(&ledger));
            s.spawn(move || {
                // Each submitter owns the keys equal to it modulo 4, and
                // goes round them: one key's tasks interleave with others'.
                for seq in 1..=per_key {
                    for key in (submitter..keys).step_by(submitters) {
                        let ledger = Arc::clone(&ledger);
                        pool.submit_keyed(key, move || ledger.run(key, seq))
                            .unwrap();
                    }
                }
            });
        }
    });
    pool.wait_idle(Duration::from_secs(120)).unwrap();
    assert_eq!(
        ledger.overlaps.load(Ordering::SeqCst),
        0,
        "two tasks of one key ran at once"
    );
    assert_eq!(
        ledger.out_of_order.load(Ordering::SeqCst),
        0,
        "a key's tasks ran out of order"
    );
    for (key, last) in ledger.last.iter().enumerate() {
        assert_eq!(
            last.load(Ordering::SeqCst),
            per_key,
            "key {key} did not run all its tasks"
        );
    }
}

#[test]
fn one_key_runs_every_task_in_order_never_two_at_once_on_many_workers() {
    let pool = Pool::new(8).unwrap();
    let ledger = Ledger::new(1);
    let handles: Vec<_> = (1..=20_000u64)
        .map(|seq| {
            let ledger = Arc::clone(&ledger);
            pool.spawn_keyed("one", move || ledger.run(0, seq)).unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(ledger.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.out_of_order.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.last[0].load(Ordering::SeqCst), 20_000);
}

#[test]
fn a_task_waiting_for_its_key_holds_no_worker() {
    let pool = Pool::new(2).unwrap();
    let gate = hold_a_key(&pool, "a");
    // Ten more of key "a" wait behind it: in its lane, not on a worker.
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let ran = Arc::clone(&ran);
        pool.submit_keyed("a", move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(pool.busy(), 1, "a waiting keyed task took a worker");
    // The second worker is free for another key.
    let other = pool.spawn_keyed("b", || "b ran").unwrap();
    assert!(other.wait_timeout(DEADLINE));
    assert_eq!(other.join().unwrap(), "b ran");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a task of a busy key ran");
    gate.open();
    wait_until("the waiting tasks of key a ran", || {
        ran.load(Ordering::SeqCst) == 10
    });
}

#[test]
fn a_panicking_keyed_task_does_not_stall_its_key() {
    let pool = Pool::new(2).unwrap();
    let panicked_before = pool.panicked();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for n in 0..10 {
        let order = Arc::clone(&order);
        handles.push(
            pool.spawn_keyed(1u8, move || {
                order.lock().unwrap().push(n);
                if n % 3 == 0 {
                    panic!("{INTENTIONAL}: message {n}");
                }
                n
            })
            .unwrap(),
        );
    }
    // And one plain keyed task that panics, with no handle to catch it.
    pool.submit_keyed(1u8, || panic!("{INTENTIONAL}: plain"))
        .unwrap();
    let last = pool.spawn_keyed(1u8, || "after the panics").unwrap();
    for (n, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(value) => assert_eq!(value, n),
            Err(error) => assert!(n % 3 == 0 && error.is_panic(), "{n}: {error}"),
        }
    }
    assert!(last.wait_timeout(DEADLINE), "the key stalled after a panic");
    assert_eq!(last.join().unwrap(), "after the panics");
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        pool.panicked() - panicked_before,
        5,
        "4 joined panics and 1 plain"
    );
}

#[test]
fn a_task_hands_the_next_message_of_its_key_to_its_own_full_pool() {
    // The trial that lost 309 of 500 to `WouldDeadlock`: each message
    // sends the next, from its own task, on a full pool of one worker.
    let pool = Arc::new(
        Pool::builder()
            .capacity(1)
            .queue_capacity(4)
            .build()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    fn deliver(pool: Arc<Pool>, n: u32, tx: mpsc::Sender<Result<u32, PoolError>>) {
        tx.send(Ok(n)).unwrap();
        if n < 500 {
            let next_pool = Arc::clone(&pool);
            let next_tx = tx.clone();
            if let Err(error) =
                pool.submit_keyed("recipient", move || deliver(next_pool, n + 1, next_tx))
            {
                tx.send(Err(error)).unwrap();
            }
        }
    }
    let first = Arc::clone(&pool);
    let first_tx = tx.clone();
    pool.submit_keyed("recipient", move || deliver(first, 1, first_tx))
        .unwrap();
    drop(tx);
    let delivered: Vec<u32> = (0..500)
        .map(|_| rx.recv_timeout(DEADLINE).unwrap().unwrap())
        .collect();
    assert_eq!(delivered, (1..=500).collect::<Vec<_>>());
}

#[test]
fn waiting_keyed_tasks_count_against_the_queue_capacity() {
    // Nonblocking: past the bound, a keyed submit is refused.
    let pool = Pool::builder()
        .capacity(1)
        .queue_capacity(2)
        .nonblocking(true)
        .build()
        .unwrap();
    let gate = hold_a_key(&pool, 0);
    pool.submit_keyed(0, || ()).unwrap();
    pool.submit_keyed(0, || ()).unwrap();
    assert_eq!(pool.submit_keyed(0, || ()), Err(PoolError::Overloaded));
    gate.open();
    pool.wait_idle(DEADLINE).unwrap();

    // Blocking: past the bound, a keyed submit waits for the lanes to drain.
    let pool = Arc::new(
        Pool::builder()
            .capacity(1)
            .queue_capacity(2)
            .build()
            .unwrap(),
    );
    let gate = hold_a_key(&pool, 0);
    pool.submit_keyed(0, || ()).unwrap();
    pool.submit_keyed(0, || ()).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let (blocked_pool, flag) = (Arc::clone(&pool), Arc::clone(&ran));
    let pending = Pending::start(move || {
        blocked_pool.submit_keyed(0, move || flag.store(true, Ordering::SeqCst))
    });
    holds_throughout(
        Duration::from_millis(100),
        "the keyed submit stays blocked",
        || {
            pending.assert_blocked();
            true
        },
    );
    gate.open();
    assert_eq!(pending.outcome(), Ok(()));
    wait_until("the blocked keyed task ran", || ran.load(Ordering::SeqCst));
}

#[test]
fn a_keyed_submit_from_a_task_of_a_full_pool_is_refused_not_deadlocked() {
    // A hand-off pool: no room for waiting keyed tasks, so a task of the
    // pool that submits behind its own busy key could only wait for itself.
    let pool = Arc::new(
        Pool::builder()
            .capacity(1)
            .queue_capacity(0)
            .build()
            .unwrap(),
    );
    let inner = Arc::clone(&pool);
    let handle = pool
        .spawn_keyed("k", move || inner.submit_keyed("k", || ()))
        .unwrap();
    assert!(
        handle.wait_timeout(DEADLINE),
        "the nested keyed submit hung"
    );
    assert_eq!(handle.join().unwrap(), Err(PoolError::WouldDeadlock));
}

#[test]
fn a_cancelled_waiting_keyed_task_never_runs_and_the_next_one_does() {
    let pool = Pool::new(2).unwrap();
    let gate = hold_a_key(&pool, "k");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let cancelled = pool
        .task(move |_token| flag.store(true, Ordering::SeqCst))
        .key("k")
        .spawn()
        .unwrap();
    let next = pool.task(|_token| "next").key("k").spawn().unwrap();
    assert!(cancelled.cancel(), "a waiting task is not started");
    gate.open();
    assert!(matches!(cancelled.join(), Err(TaskError::Cancelled)));
    assert_eq!(next.join().unwrap(), "next");
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn release_runs_waiting_keyed_tasks_in_order_as_queued_tasks_are() {
    let pool = Pool::new(1).unwrap();
    let gate = hold_a_key(&pool, "k");
    let order = Arc::new(Mutex::new(Vec::new()));
    for n in 0..20 {
        let order = Arc::clone(&order);
        pool.submit_keyed("k", move || order.lock().unwrap().push(n))
            .unwrap();
    }
    // A task with a token, waiting: release cancels it, as a queued one.
    let tokened = pool.task(|_token| "ran").key("k").spawn().unwrap();
    pool.release();
    assert_eq!(pool.submit_keyed("k", || ()), Err(PoolError::Closed));
    gate.open();
    assert!(matches!(tokened.join(), Err(TaskError::Cancelled)));
    // It was the last of the key: the others ran before it was reached.
    assert_eq!(
        *order.lock().unwrap(),
        (0..20).collect::<Vec<_>>(),
        "accepted keyed tasks ran"
    );
    wait_until("the workers exit", || pool.workers() == 0);
}

#[test]
fn keys_of_any_hashable_type_and_different_keys_run_in_parallel() {
    let pool = Pool::new(2).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    // Two keys, each task waits for the other: only parallel keys finish.
    let (a, b) = (Arc::clone(&barrier), Arc::clone(&barrier));
    let first = pool.spawn_keyed(("tenant", 1), move || a.wait()).unwrap();
    let second = pool.spawn_keyed(("tenant", 2), move || b.wait()).unwrap();
    assert!(first.wait_timeout(DEADLINE) && second.wait_timeout(DEADLINE));
}

#[test]
fn a_multi_pool_sends_each_key_to_one_pool_and_keeps_its_order() {
    use workpool::{LoadBalancing, MultiPool};
    let pools = MultiPool::new(4, 2, LoadBalancing::ByKey).unwrap();
    let (keys, per_key) = (100usize, 200u64);
    let ledger = Ledger::new(keys);
    // The pool of each task, by its threads' names (`workpool-<pool>-..`).
    let homes: Arc<Vec<Mutex<std::collections::HashSet<String>>>> =
        Arc::new((0..keys).map(|_| Mutex::default()).collect());
    for seq in 1..=per_key {
        for key in 0..keys {
            let (ledger, homes) = (Arc::clone(&ledger), Arc::clone(&homes));
            pools
                .submit_keyed(key, move || {
                    let name = std::thread::current().name().unwrap_or_default().to_owned();
                    let pool = name
                        .rsplit_once('-')
                        .map_or(name.clone(), |(pool, _)| pool.to_owned());
                    homes[key].lock().unwrap().insert(pool);
                    ledger.run(key, seq);
                })
                .unwrap();
        }
    }
    pools.wait_idle(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.out_of_order.load(Ordering::SeqCst), 0);
    assert!(ledger
        .last
        .iter()
        .all(|last| last.load(Ordering::SeqCst) == per_key));
    for (key, home) in homes.iter().enumerate() {
        assert_eq!(
            home.lock().unwrap().len(),
            1,
            "key {key} ran on pools {:?}",
            home.lock().unwrap()
        );
    }
    let used: std::collections::HashSet<String> = homes
        .iter()
        .flat_map(|home| home.lock().unwrap().clone())
        .collect();
    assert!(used.len() >= 3, "100 keys went to {used:?} only");
    // Unkeyed tasks still run, round robin.
    assert_eq!(pools.spawn(|| 5).unwrap().join().unwrap(), 5);
}

#[test]
fn keyed_tasks_count_one_each_in_the_pool_s_figures() {
    // submitted == completed + panicked + cancelled once idle, whether a
    // keyed task ran from the queue or from its lane, panicked or was
    // cancelled while it waited.
    let pool = Pool::new(2).unwrap();
    let gate = hold_a_key(&pool, "k");
    let cancelled = pool.task(|_token| ()).key("k").spawn().unwrap();
    assert!(cancelled.cancel());
    pool.submit_keyed("k", || panic!("{INTENTIONAL}")).unwrap();
    for n in 0..200u32 {
        pool.submit_keyed(n % 7, move || {
            std::hint::black_box(n);
        })
        .unwrap();
    }
    gate.open();
    pool.wait_idle(DEADLINE).unwrap();
    let stats = pool.stats();
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.panicked,
            stats.cancelled
        ),
        (203, 201, 1, 1),
        "{stats:?}"
    );
}

#[test]
fn a_join_from_a_task_never_runs_a_keyed_task_beside_its_key_s_running_one() {
    // A join from a worker runs a task not yet started (a helping join);
    // a keyed task waits for its key's turn all the same.
    let pool = Arc::new(Pool::new(3).unwrap());
    let gate = hold_a_key(&pool, "k");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let waiting = pool
        .spawn_keyed("k", move || flag.store(true, Ordering::SeqCst))
        .unwrap();
    let joiner = pool.spawn(move || waiting.join()).unwrap();
    // The joiner waits: the keyed task does not run while its key's first
    // task holds the gate.
    holds_throughout(
        Duration::from_millis(100),
        "the keyed task waits for its turn",
        || !ran.load(Ordering::SeqCst),
    );
    gate.open();
    assert!(joiner.wait_timeout(DEADLINE));
    joiner.join().unwrap().unwrap();
    assert!(ran.load(Ordering::SeqCst));
}

// ---- keyed tasks where they meet other features ----

#[test]
fn a_keyed_task_whose_deadline_passes_while_it_waits_for_its_key_never_runs() {
    // Its deadline (a duration, and an instant) passes while its key is
    // busy: it never runs, its handle says so, and the key goes on.
    let pool = Pool::new(2).unwrap();
    let gate = hold_a_key(&pool, "k");
    let ran = Arc::new(AtomicUsize::new(0));
    let (a, b) = (Arc::clone(&ran), Arc::clone(&ran));
    let after = pool
        .task(move |_token| a.fetch_add(1, Ordering::SeqCst))
        .key("k")
        .deadline(Duration::from_millis(20))
        .spawn()
        .unwrap();
    let at = pool
        .task(move |_token| b.fetch_add(1, Ordering::SeqCst))
        .key("k")
        .deadline_at(std::time::Instant::now())
        .spawn()
        .unwrap();
    let next = pool.task(|_token| "next").key("k").spawn().unwrap();
    wait_until("the deadline passes", || after.is_finished());
    gate.open();
    assert!(after.join().unwrap_err().is_deadline());
    assert!(at.join().unwrap_err().is_deadline());
    assert_eq!(next.join().unwrap(), "next");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    pool.wait_idle(DEADLINE).unwrap();
    let stats = pool.stats();
    assert_eq!(stats.submitted, stats.finished(), "{stats:?}");
    assert_eq!(stats.timed_out, 2, "{stats:?}");
}

#[test]
fn keyed_order_holds_across_tune_down_and_up_and_a_reboot() {
    let pool = Pool::new(4).unwrap();
    let ledger = Ledger::new(8);
    let mut seqs = [0u64; 8];
    let mut submit_round = |pool: &Pool| {
        for n in 0..400 {
            let key = n % 8;
            seqs[key] += 1;
            let (ledger, seq) = (Arc::clone(&ledger), seqs[key]);
            pool.submit_keyed(key, move || ledger.run(key, seq))
                .unwrap();
        }
    };
    submit_round(&pool);
    pool.tune(1).unwrap();
    submit_round(&pool);
    pool.tune(3).unwrap();
    submit_round(&pool);
    pool.wait_idle(DEADLINE).unwrap();
    pool.release_timeout(DEADLINE).unwrap();
    pool.reboot().unwrap();
    submit_round(&pool);
    pool.wait_idle(DEADLINE).unwrap();
    assert_eq!(ledger.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.out_of_order.load(Ordering::SeqCst), 0);
    for key in 0..8 {
        assert_eq!(ledger.last[key].load(Ordering::SeqCst), 200, "key {key}");
    }
}

#[test]
fn a_scoped_task_submits_keyed_work_and_joins_it() {
    // A task of the pool's scope hands a key's messages to the pool and
    // joins the last one: the key's order holds, and the join, which
    // cannot take a keyed task out of turn, waits for the other worker.
    let pool = Pool::new(2).unwrap();
    let log = Mutex::new(Vec::new());
    pool.scope(|scope| {
        scope.spawn(|| {
            let shared = Arc::new(Mutex::new(Vec::new()));
            let mut last = None;
            for n in 0..50 {
                let shared = Arc::clone(&shared);
                last = Some(
                    pool.spawn_keyed("k", move || shared.lock().unwrap().push(n))
                        .unwrap(),
                );
            }
            last.unwrap().join().unwrap();
            log.lock().unwrap().extend(shared.lock().unwrap().drain(..));
        });
    });
    assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
}
