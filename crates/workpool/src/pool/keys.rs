//! Keyed tasks: tasks with equal keys run one at a time, in the order they
//! were accepted; tasks with different keys run in parallel (a striped
//! executor, Kafka's partitions, without a thread or a lock per key).
//!
//! A key is busy while it has a *lane*: one entry of a sharded map, made
//! by the first task of the key (the head), which goes to the pool like
//! any task, and removed when the key's last task ends. A task whose key is
//! busy waits in its lane (it holds no worker and no thread); the worker
//! that ends a task of the key hands the next one over: it submits it to
//! the pool without waiting (behind whatever is queued, so a busy key does
//! not keep a worker from the others), or, if the pool has no room (or is
//! closed, and drains), runs it itself. An idle key costs nothing: no lane.
//!
//! Backpressure: the head is submitted as any task is (blocking, refused,
//! or `WouldDeadlock`, as the pool says). Tasks waiting in lanes count
//! against a bound of their own, the pool's queue capacity: past it a keyed
//! submit blocks (nonblocking: `Overloaded`) until the lanes drain a
//! quarter. While the head of a new lane is being submitted (it may block
//! for room), later tasks of its key wait for that to be decided: if the
//! head is refused, none of them may already be accepted behind it.
//!
//! Keys are hashed once, with the pool's `RandomState`: keys whose 64-bit
//! hashes are equal share a lane (they keep their order, and lose only
//! parallelism between them, for one pair in 2^64).

use super::dispatch::Wait;
use super::state::Inner;
use super::task::Task;
use crate::error::PoolError;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{self, Arc, Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};

/// Shards of the lane map: enough that submitters and workers on
/// different keys seldom meet on one lock.
const SHARDS: usize = 64;

pub(crate) struct Keys {
    shards: Box<[Mutex<HashMap<u64, Lane>>]>,
    hasher: RandomState,
    /// Tasks waiting in lanes, and their bound.
    parked: AtomicUsize,
    limit: usize,
    /// Keyed submitters that wait: for room in the lanes, or for the fate
    /// of a head (or, with no room at all, for their key to be idle).
    waits: Mutex<Generation>,
    changed: Condvar,
    blocked: AtomicUsize,
    /// Numbers lanes.
    lanes_made: std::sync::atomic::AtomicU64,
}

/// Bumped by every event a blocked keyed submitter waits for.
#[derive(Default)]
struct Generation(u64);

struct Lane {
    /// Which lane of its key this is: a head decided after its lane ended
    /// (it ran that fast) must not touch the next lane of the key.
    id: u64,
    /// The head is being submitted: its fate is not known yet.
    deciding: bool,
    waiting: VecDeque<Task>,
}

/// Where a keyed task went.
enum Placed {
    /// It is the head of a new lane (this one): the caller submits it.
    Head(u64),
    /// It waits in its lane.
    Parked,
    /// Not now: wait and try again.
    Wait,
}

impl Keys {
    pub(super) fn new(queue_capacity: usize) -> Keys {
        Keys {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            parked: AtomicUsize::new(0),
            limit: queue_capacity,
            waits: Mutex::new(Generation::default()),
            changed: Condvar::new(),
            blocked: AtomicUsize::new(0),
            lanes_made: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn hash<K: Hash>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &Mutex<HashMap<u64, Lane>> {
        // The low bits pick the shard; the map hashes the whole word again.
        &self.shards[(hash % SHARDS as u64) as usize]
    }

    /// Puts `task` in its lane, or makes it the head of a new one; gives
    /// it back with `Placed::Wait` if it must wait.
    fn place(&self, hash: u64, task: Task) -> (Placed, Option<Task>) {
        let mut lanes = sync::lock(self.shard(hash));
        match lanes.get_mut(&hash) {
            None => {
                let id = self
                    .lanes_made
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                lanes.insert(
                    hash,
                    Lane {
                        id,
                        deciding: true,
                        waiting: VecDeque::new(),
                    },
                );
                (Placed::Head(id), Some(task))
            }
            Some(lane) if !lane.deciding && self.parked.load(Ordering::SeqCst) < self.limit => {
                self.parked.fetch_add(1, Ordering::SeqCst);
                lane.waiting.push_back(task);
                (Placed::Parked, None)
            }
            Some(_) => (Placed::Wait, Some(task)),
        }
    }

    /// The head of `hash`'s lane was accepted (`true`) or refused: a
    /// refused head takes its lane with it (nothing waits behind a head
    /// being decided).
    fn decided(&self, hash: u64, id: u64, accepted: bool) {
        {
            let mut lanes = sync::lock(self.shard(hash));
            // Gone already if the head ran to its end meanwhile.
            if lanes.get(&hash).is_some_and(|lane| lane.id == id) {
                if accepted {
                    lanes.get_mut(&hash).expect("looked up above").deciding = false;
                } else {
                    lanes.remove(&hash);
                }
            }
        }
        self.notify();
    }

    /// A task of `hash` ended: the next one of its lane, or `None` (the
    /// lane is gone: the key is idle).
    fn next(&self, hash: u64) -> Option<Task> {
        let next = {
            let mut lanes = sync::lock(self.shard(hash));
            let lane = lanes
                .get_mut(&hash)
                .expect("a keyed task runs while its lane exists");
            let next = lane.waiting.pop_front();
            if next.is_none() {
                lanes.remove(&hash);
            }
            next
        };
        match next {
            Some(task) => {
                let before = self.parked.fetch_sub(1, Ordering::SeqCst);
                // Blocked submitters are woken when the lanes have drained a
                // quarter, not for each slot: one wake-up lets several in.
                if before == self.limit - self.limit / 4 || self.limit <= 4 {
                    self.notify();
                }
                Some(task)
            }
            None => {
                // Without room in lanes, a task waits for its key to be idle.
                if self.limit == 0 {
                    self.notify();
                }
                None
            }
        }
    }

    fn notify(&self) {
        if self.blocked.load(Ordering::SeqCst) == 0 {
            return;
        }
        sync::lock(&self.waits).0 += 1;
        self.changed.notify_all();
    }

    /// Waits for the next event after `seen`.
    fn wait(&self, seen: u64) {
        let mut generation = sync::lock(&self.waits);
        while generation.0 == seen {
            generation = sync::wait(&self.changed, generation);
        }
    }

    fn generation(&self) -> u64 {
        sync::lock(&self.waits).0
    }

    /// Lanes, that is busy keys.
    #[cfg(test)]
    pub(super) fn lanes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| sync::lock(shard).len())
            .sum()
    }

    /// Tasks waiting in lanes.
    pub(super) fn parked(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }
}

impl Inner {
    /// Submits a keyed task (a plain or tracked `task`, its key hashed):
    /// the head of its key goes to the pool as `wait` says; a later one
    /// waits in its key's lane.
    pub(crate) fn submit_keyed(
        self: &Arc<Self>,
        hash: u64,
        task: Task,
        wait: Wait,
    ) -> Result<(), PoolError> {
        let mut task = task;
        loop {
            if self.is_closed() {
                return Err(PoolError::Closed);
            }
            // Counted before the lane is looked at, so that an event
            // between the look and the wait is not missed (`notify` reads
            // `blocked` after changing the lanes).
            self.keys.blocked.fetch_add(1, Ordering::SeqCst);
            let seen = self.keys.generation();
            let (placed, back) = self.keys.place(hash, task);
            match placed {
                Placed::Parked => {
                    self.keys.blocked.fetch_sub(1, Ordering::SeqCst);
                    return Ok(());
                }
                Placed::Head(id) => {
                    self.keys.blocked.fetch_sub(1, Ordering::SeqCst);
                    let head = back.expect("a head comes back to be submitted");
                    let inner = Arc::clone(self);
                    let run = Task::new(move || inner.run_keyed(hash, head));
                    let submitted = self.submit(run, wait);
                    self.keys.decided(hash, id, submitted.is_ok());
                    return submitted.map_err(|(error, _)| error);
                }
                Placed::Wait => {
                    task = back.expect("a task that must wait comes back");
                    // A probe (the maintenance thread's, for a delayed task
                    // come due) never waits; a nonblocking pool waits only
                    // for a head's fate, a matter of microseconds.
                    let probe = matches!(wait, Wait::No | Wait::Probe);
                    let full = self.keys.parked() >= self.keys.limit;
                    if probe || (self.config.nonblocking && full) {
                        self.keys.blocked.fetch_sub(1, Ordering::SeqCst);
                        return Err(PoolError::Overloaded);
                    }
                    if super::worker::is_worker_of(self) && !self.config.nonblocking {
                        // The wait could only end once a task of this pool
                        // ends, maybe the caller's own.
                        self.keys.blocked.fetch_sub(1, Ordering::SeqCst);
                        return Err(PoolError::WouldDeadlock);
                    }
                    self.keys.wait(seen);
                    self.keys.blocked.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// Runs `task` of the key `hash`, then the key's next ones: each is
    /// handed to the pool (behind what is queued), or, if the pool has no
    /// room or is closed, run here. A panic is caught by `run_task`, so
    /// that it cannot stall the key.
    fn run_keyed(self: &Arc<Self>, hash: u64, task: Task) {
        let mut task = task;
        loop {
            self.run_task(task);
            let Some(next) = self.keys.next(hash) else {
                return;
            };
            // Given to the pool through a slot, so that it can be taken
            // back when the pool has no room for it.
            let slot = Arc::new(std::sync::Mutex::new(Some(next)));
            let handed = Arc::clone(&slot);
            let inner = Arc::clone(self);
            let run = Task::new(move || {
                if let Some(next) = crate::job::lock(&handed).take() {
                    inner.run_keyed(hash, next);
                }
            });
            if self.submit(run, Wait::Probe).is_ok() {
                return;
            }
            task = crate::job::lock(&slot)
                .take()
                .expect("a refused hand-over still holds its task");
            self.stats.completed_aside();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::Pool;
    use std::time::Duration;

    #[test]
    fn an_idle_key_keeps_no_lane_and_nothing_stays_parked() {
        let pool = Pool::new(2).unwrap();
        for n in 0..1_000u32 {
            pool.submit_keyed(n % 10, move || {
                std::hint::black_box(n);
            })
            .unwrap();
        }
        pool.wait_idle(Duration::from_secs(30)).unwrap();
        assert_eq!(pool.inner.keys.lanes(), 0);
        assert_eq!(pool.inner.keys.parked(), 0);
    }
}
