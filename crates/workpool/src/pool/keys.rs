//! Keyed tasks: tasks with equal keys run one at a time, in the order they
//! were accepted; tasks with different keys run in parallel (a striped
//! executor, Kafka's partitions, without a thread or a lock per key).
//!
//! A key is busy while it has a *lane*: one entry of a sharded map, made
//! by the first task of the key (the head), which goes to the pool like
//! any task, and removed when the key's last task ends. A task whose key is
//! busy waits in its lane (it holds no worker and no thread); the worker
//! that ends a task of the key runs the next one itself for up to
//! [`KEY_TURN`] (a trip through the queue costs more than a small task),
//! then hands it over: it submits it to the pool without waiting (behind
//! whatever is queued, so a busy key does not keep a worker from the
//! others), or, if the pool has no room (or is closed, and drains), runs it
//! itself. An idle key costs nothing: no lane.
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
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

/// How long a worker runs one key's tasks back to back before it hands the
/// next one to the queue, behind the others' tasks.
const KEY_TURN: std::time::Duration = std::time::Duration::from_micros(100);

/// Shards of the lane map: enough that submitters and workers on
/// different keys seldom meet on one lock.
const SHARDS: usize = 64;

pub(crate) struct Keys {
    shards: Box<[Mutex<Lanes>]>,
    hasher: RandomState,
    /// Tasks waiting in lanes, and their bound.
    parked: AtomicUsize,
    limit: usize,
    /// Keyed submitters that wait (for room in the lanes, or for the fate
    /// of a head, or, with no room at all, for their key to be idle) sleep
    /// on `changed` until `generation` moves; it is bumped under `waits`.
    waits: Mutex<()>,
    generation: AtomicUsize,
    changed: Condvar,
    blocked: AtomicUsize,
    /// Numbers lanes.
    lanes_made: std::sync::atomic::AtomicU64,
}

/// The lanes of one shard, by their key's hash. The hash is SipHash's with
/// the pool's random keys already, so the map uses it as it is instead of
/// hashing it again.
type Lanes = HashMap<u64, Lane, BuildHasherDefault<Prehashed>>;

/// A `Hasher` for keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here (`write_u64`); anything else folds in.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

struct Lane {
    /// Which lane of its key this is: a head decided after its lane ended
    /// (it ran that fast) must not touch the next lane of the key.
    id: u64,
    /// The head is being submitted: its fate is not known yet.
    deciding: bool,
    /// The key's task the pool runs next (the head, or the task handed
    /// over): apart from the others, so that a lane of one task allocates
    /// nothing.
    first: Option<Task>,
    /// The key's tasks that wait, in order.
    waiting: VecDeque<Task>,
}

/// Where a keyed task went.
enum Placed {
    /// It is the head of a new lane (this one): the caller submits it.
    Head(u64),
    /// It waits in its lane.
    Parked,
    /// Not now: given back, to wait and try again.
    Wait(Task),
}

impl Keys {
    pub(super) fn new(queue_capacity: usize) -> Keys {
        Keys {
            shards: (0..SHARDS).map(|_| Mutex::new(Lanes::default())).collect(),
            hasher: RandomState::new(),
            parked: AtomicUsize::new(0),
            limit: queue_capacity,
            waits: Mutex::new(()),
            generation: AtomicUsize::new(0),
            changed: Condvar::new(),
            blocked: AtomicUsize::new(0),
            lanes_made: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn hash<K: Hash>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &Mutex<Lanes> {
        // The high bits pick the shard: the map's buckets use the low ones.
        &self.shards[(hash >> 58) as usize % SHARDS]
    }

    /// Puts `task` in its lane, or makes it the head of a new one (first in
    /// the lane: the task the caller submits runs it); gives it back in
    /// `Placed::Wait` if it must wait.
    fn place(&self, hash: u64, task: Task) -> Placed {
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
                        first: Some(task),
                        waiting: VecDeque::new(),
                    },
                );
                Placed::Head(id)
            }
            Some(lane) if !lane.deciding && self.parked.load(Ordering::SeqCst) < self.limit => {
                self.parked.fetch_add(1, Ordering::SeqCst);
                lane.waiting.push_back(task);
                Placed::Parked
            }
            Some(_) => Placed::Wait(task),
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

    /// The key's task to run now (the first of its lane). A head being
    /// run was accepted, whether or not its submitter has said so yet
    /// (`decided`): from now on its key's next tasks wait in the lane. (A
    /// task of the key submitted by the head itself, on its worker, would
    /// otherwise find the head undecided and, from a worker, be refused
    /// with `WouldDeadlock`.)
    fn take(&self, hash: u64) -> Task {
        let mut lanes = sync::lock(self.shard(hash));
        let lane = lanes
            .get_mut(&hash)
            .expect("a lane is run only while it exists");
        lane.deciding = false;
        lane.first
            .take()
            .expect("a lane is run only while it has a task to run")
    }

    /// A task of `hash` ended: whether the key has a next one (then first
    /// in its lane, no longer counted as waiting); if not, the lane is gone
    /// and the key idle.
    fn next(&self, hash: u64) -> bool {
        let more = {
            let mut lanes = sync::lock(self.shard(hash));
            let lane = lanes
                .get_mut(&hash)
                .expect("a keyed task runs while its lane exists");
            lane.first = lane.waiting.pop_front();
            let more = lane.first.is_some();
            if !more {
                lanes.remove(&hash);
            }
            more
        };
        if more {
            let before = self.parked.fetch_sub(1, Ordering::SeqCst);
            // Blocked submitters are woken when the lanes have drained a
            // quarter, not for each slot: one wake-up lets several in.
            if before == self.limit - self.limit / 4 || self.limit <= 4 {
                self.notify();
            }
        } else if self.limit == 0 {
            // Without room in lanes, a task waits for its key to be idle.
            self.notify();
        }
        more
    }

    fn notify(&self) {
        if self.blocked.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _waits = sync::lock(&self.waits);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Waits for the next event after `seen`.
    fn wait(&self, seen: usize) {
        let mut waits = sync::lock(&self.waits);
        while self.generation() == seen {
            waits = sync::wait(&self.changed, waits);
        }
    }

    fn generation(&self) -> usize {
        self.generation.load(Ordering::SeqCst)
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
        // Once the task has had to wait: the event count it last saw. The
        // caller counts itself in `blocked`, then looks at the lanes again
        // before it sleeps, so that an event between the two looks is not
        // missed (`notify` reads `blocked` after changing the lanes).
        let mut seen: Option<usize> = None;
        let unblock = |seen: Option<usize>| {
            if seen.is_some() {
                self.keys.blocked.fetch_sub(1, Ordering::SeqCst);
            }
        };
        loop {
            if self.is_closed() {
                unblock(seen);
                return Err(PoolError::Closed);
            }
            match self.keys.place(hash, task) {
                Placed::Parked => {
                    unblock(seen);
                    return Ok(());
                }
                Placed::Head(id) => {
                    unblock(seen);
                    let submitted = self.submit(self.lane_runner(hash), wait);
                    self.keys.decided(hash, id, submitted.is_ok());
                    return submitted.map_err(|(error, _)| error);
                }
                Placed::Wait(back) => {
                    task = back;
                    // A probe (the maintenance thread's, for a delayed task
                    // come due) never waits; a nonblocking pool waits only
                    // for a head's fate, a matter of microseconds.
                    let probe = matches!(wait, Wait::No | Wait::Probe);
                    let full = self.keys.parked() >= self.keys.limit;
                    if probe || (self.config.nonblocking && full) {
                        unblock(seen);
                        return Err(PoolError::Overloaded);
                    }
                    if super::worker::is_worker_of(self) && !self.config.nonblocking {
                        // The wait could only end once a task of this pool
                        // ends, maybe the caller's own.
                        unblock(seen);
                        return Err(PoolError::WouldDeadlock);
                    }
                    match seen {
                        None => {
                            self.keys.blocked.fetch_add(1, Ordering::SeqCst);
                            seen = Some(self.keys.generation());
                        }
                        Some(last) => {
                            self.keys.wait(last);
                            seen = Some(self.keys.generation());
                        }
                    }
                }
            }
        }
    }

    /// The task that runs the lane of `hash`: two words, in place, no
    /// allocation (`raw/small.rs`).
    fn lane_runner(self: &Arc<Self>, hash: u64) -> Task {
        let inner = Arc::clone(self);
        Task::new(move || inner.run_lane(hash))
    }

    /// Runs the key `hash`'s task, first in its lane, then its next ones:
    /// here while the turn is short, then each handed to the pool (behind
    /// what is queued), or, if the pool has no room or is closed, run here.
    /// A panic is caught by `run_task`, so that it cannot stall the key.
    fn run_lane(self: &Arc<Self>, hash: u64) {
        // This runner is the pool's, not a task of the user's: each task it
        // runs counts as taken (and, if it ends well, completed) instead.
        self.stats.own_task_ran();
        // The turn's clock starts with the key's second task: most lanes
        // have one task, and a clock read is a tenth of a small one's cost.
        let mut started = None;
        loop {
            let completed = self.run_task(self.keys.take(hash));
            self.stats.ran_aside(completed);
            if !self.keys.next(hash) {
                return;
            }
            let started = *started.get_or_insert_with(std::time::Instant::now);
            // A trip through the queue per task costs more than a small
            // task: the worker stays with the key for `KEY_TURN`.
            if started.elapsed() >= KEY_TURN
                && self.submit(self.lane_runner(hash), Wait::Probe).is_ok()
            {
                return;
            }
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
