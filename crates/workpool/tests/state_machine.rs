//! A state-machine property test: random sequences of operations applied to
//! a real pool and to a small reference model of it, with the pool checked
//! against the model after every step (`proptest-state-machine`).
//!
//! Each case builds a pool (capacity 1-4, `min_workers` 0 mostly, else up
//! to the capacity, `queue_capacity` 0, 1 or 2, blocking or nonblocking,
//! an expiry of 5 ms or 60 s) and applies 1-39 operations:
//! - submit a task held at a gate of its own until the test lets it finish,
//!   or a quick one, or a quick one that panics, through `submit`,
//!   `try_submit`, `submit_timeout`, `spawn` or `task(..).spawn()`; on a
//!   full pool too, where each way in refuses as documented (`Overloaded`,
//!   `TrySubmitError::Full` with the closure given back, `Timeout`);
//! - `spawn` a quick task and cancel its handle at once;
//! - cancel the handle of a held task (queued: stopped; running: too late);
//! - let the `k` oldest held tasks finish;
//! - `tune` up, down, or to 0 (refused);
//! - `release`, `release_timeout`, `reboot`, `wait_idle`;
//! - wait for the purge to end idle workers (5 ms expiry only), down to
//!   `min_workers`;
//! - a blocking `submit` or `spawn` on a full blocking pool, on a thread of
//!   its own, or two of them one after the other: each must stay blocked
//!   until there is room for it, oldest first, and is then accepted. The
//!   room comes from held tasks let finish, from a `tune` up, or from
//!   cancelling a queued task; or `release` refuses them (`Closed`);
//! - `task(..).parent(&token).spawn()` under one of two parent tokens, and
//!   cancel a parent: its tasks not started never run (cancelled as a
//!   worker takes them), running ones see their token cancelled;
//! - from a held task on its worker (the gate runs errands sent to it),
//!   `join` another task's handle: one not started runs inline on the
//!   joiner (help while waiting), unless its token was cancelled before it
//!   started (by its parent or `release`): then it never runs and the join
//!   says `Cancelled`; or `wait_timeout(SHORT)` on it, which never runs a
//!   task inline (a task queued or running stays so, and it returns false);
//! - let running tasks end and, while their workers still spin for a next
//!   task, `tune` and at once submit held tasks (on a pool with a queue);
//! - `reboot` a closed pool on a thread of its own and `release` it (or
//!   `release_timeout`) as soon as it is open, while the reboot starts its
//!   `min_workers`.
//!
//! The model knows, for every task, whether it is refused, queued (and
//! where), running, finished or cancelled; the capacity in force; whether
//! the pool is closed; and which tasks were running at the last `tune`.
//! After each step, the test checks:
//! - every call returns what the model says, within a bound: each call runs
//!   on a helper thread and is awaited with `recv_timeout`, so a deadlock
//!   fails the case instead of hanging it;
//! - every task is in the state the model gives it (not started, waiting at
//!   its gate, finished), its handle (if any) finished when the task is,
//!   no task ran twice, and a refused task was dropped without running;
//! - the gauges: `is_closed`, `capacity`, `waiting()` (0, or the blocked
//!   submitters), `queued()` (the model's queue length, at most the queue's
//!   capacity), `busy()` equal to the tasks running, `panicked()` and the
//!   panic handler's calls; on a closed pool `workers()` equal to the tasks
//!   running and `idle() == 0`; on an open one `workers()` at least
//!   `min_workers` (as far as a `tune` down left them);
//! - once the tasks running at the last `tune` have finished ("settled"),
//!   `workers() <= capacity` and the most tasks seen running at once since
//!   then (counted by the tasks themselves, but for one run inline by a
//!   join) `<= capacity`: the capacity in force, not the largest ever set;
//! - the token of every running task with one is cancelled exactly when the
//!   model says (`release`, its parent, its handle);
//! - whenever the model has nothing running or queued, `stats()` adds up:
//!   `submitted == completed + panicked + cancelled` (exact once idle).
//!
//! At the end of a case every gate opens, `wait_idle`, `reboot` and
//! `release_timeout` must succeed, and then the stats add up, every
//! accepted task has run exactly once or was cancelled (its handle says
//! so), every refused one never ran, and every closure has been dropped.
//!
//! Values that settle asynchronously (a worker parking or leaving, a
//! count kept by a worker) are polled until they match, failing after
//! [`SETTLE`]; everything else is asserted at once.
//!
//! 256 cases by default (`cargo test`, about 4 s); the standard
//! `PROPTEST_CASES` variable sets another count. The long run, 10,000
//! cases (about 120 s):
//!
//! ```text
//! PROPTEST_CASES=10000 cargo test --release -p workpool --test state_machine
//! ```
//!
//! A failure prints proptest's minimal failing input: the pool's settings
//! and the sequence of operations. `state_machine.proptest-regressions`
//! beside this file keeps the seeds of past failures, replayed first; the
//! tests after the state machine replay shrunk (or hand-shrunk) failures
//! by name, each with the defect it found.

mod common;

use common::{DEADLINE, PATIENCE};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};
use workpool::{CancelToken, Pool, PoolError, TaskError, TaskHandle, TrySubmitError};

/// The wait of a `submit_timeout`, `release_timeout` or `wait_idle` that is
/// expected to run out.
const SHORT: Duration = Duration::from_millis(5);

/// How long the pool may take to reach what the model predicts after a
/// step (threads waking, workers parking or leaving): milliseconds at most
/// on a loaded machine. Shorter than [`DEADLINE`], because a failing case
/// waits it out at every try while it shrinks.
const SETTLE: Duration = Duration::from_secs(3);

/// The payload of the tasks that panic on purpose; the panic hook keeps
/// quiet about them.
const DELIBERATE: &str = "state_machine: a deliberate panic";

/// The parent tokens a case's tasks may be spawned under (`Via::Child`).
const PARENTS: usize = 2;

// ---------------------------------------------------------------------------
// The operations

/// How a task is handed to the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Submit,
    TrySubmit,
    SubmitTimeout,
    Spawn,
    /// `pool.task(..).spawn()`: the task has a `CancelToken`, cancelled by
    /// `release`.
    Task,
    /// `pool.task(..).parent(&token).spawn()` under parent token `n` (of
    /// [`PARENTS`]): its token is cancelled by `release` and by
    /// `Op::CancelParent(n)`.
    Child(usize),
}

impl Via {
    /// Whether the call would block on a full blocking pool.
    fn blocks(self) -> bool {
        matches!(self, Via::Submit | Via::Spawn | Via::Task | Via::Child(_))
    }

    fn has_handle(self) -> bool {
        matches!(self, Via::Spawn | Via::Task | Via::Child(_))
    }

    fn has_token(self) -> bool {
        matches!(self, Via::Task | Via::Child(_))
    }
}

/// What unblocks blocked submits (first; those it leaves blocked are let
/// through as by `Free`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Let the fewest held tasks finish that make room, for each in turn:
    /// it is accepted.
    Free,
    /// `release`: they return `Closed`.
    Release,
    /// `tune` up, with room for them and every queued task.
    Grow,
    /// Cancel the handle of this queued task: its slot is free at once.
    Cancel(usize),
}

#[derive(Clone, Debug)]
enum Op {
    /// A task held at its gate until a `Finish` lets it go.
    Held(Via),
    /// A task that ends at once (or panics at once).
    Quick {
        via: Via,
        panics: bool,
    },
    /// `spawn` a quick task and cancel its handle at once.
    SpawnCancel,
    /// Cancel the handle of this held task.
    Cancel(usize),
    /// Let the `k` oldest held tasks finish (the running ones first, then
    /// the queued ones in queue order).
    Finish(usize),
    Tune(usize),
    Release,
    ReleaseTimeout,
    Reboot,
    WaitIdle,
    /// Wait for the purge to end the idle workers (short expiry only).
    Expire,
    /// A blocking submit (`spawn` if `spawn`) of a held task on a full
    /// blocking pool, on a thread of its own, then, if `pair`, a second one
    /// (the other way) once the first is blocked; then `then`.
    Blocked {
        spawn: bool,
        pair: bool,
        then: Then,
    },
    /// From a running held task, on its worker: `join` the handle of a
    /// task, or, if `bounded`, `wait_timeout(SHORT)` on it. An unbounded
    /// join runs a target that has not started inline (help while
    /// waiting), unless its token was cancelled before it started: then it
    /// never runs and the join says `Cancelled`. A bounded wait never runs
    /// a task inline. By position, so that a case shrinks: `joiner` is the
    /// n-th running task (oldest first), `target` the n-th of
    /// `Model::join_targets` but the joiner.
    Join {
        joiner: usize,
        target: usize,
        bounded: bool,
    },
    /// Cancel parent token `n`: tasks under it that have not started never
    /// run, running ones see their token cancelled. Later `Via::Child(n)`
    /// tasks get a fresh parent.
    CancelParent(usize),
    /// Let the `finish` oldest running tasks end (nothing is queued) and,
    /// while their workers still spin for a next task (200 us), `tune` to
    /// `capacity` and submit `held` held tasks.
    SpinTune {
        finish: usize,
        capacity: usize,
        held: usize,
    },
    /// `reboot` a closed pool on a thread of its own and, as soon as it is
    /// open (while the reboot starts its `min_workers`), `release` it, or
    /// `release_timeout` if `timeout`.
    RebootRelease {
        timeout: bool,
    },
}

// ---------------------------------------------------------------------------
// The model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Settings {
    capacity: usize,
    min_workers: usize,
    queue: usize,
    nonblocking: bool,
    short_expiry: bool,
}

/// Where a new task goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    /// Straight to a worker (idle or new).
    Start,
    /// Into the queue.
    Queue,
    /// No room.
    Full,
    Closed,
}

/// What became of a task, as far as the model can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Refused,
    Queued,
    /// Held at its gate, on a worker.
    Running,
    Ran,
    Cancelled,
    /// Cancelled at once after a `spawn` that handed it straight to a
    /// worker: `cancel` says which.
    RanOrCancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TaskInfo {
    held: bool,
    panics: bool,
    handle: bool,
    /// For a task with a token, the life of the pool (count of reboots) its
    /// token belongs to: `release` ends that life and cancels the token.
    token_life: Option<u32>,
    /// For a `Via::Child` task, its parent: the slot and the generation of
    /// the token in it (`Op::CancelParent` cancels one and moves the slot
    /// to the next).
    parent: Option<(usize, u32)>,
    /// A task with a token: its handle cancelled it while it ran, and its
    /// token says so.
    cancelled_running: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Model {
    settings: Settings,
    capacity: usize,
    closed: bool,
    life: u32,
    tasks: Vec<TaskInfo>,
    fates: Vec<Fate>,
    /// Held tasks waiting at their gate, on a worker each.
    running: BTreeSet<usize>,
    /// Queued tasks, oldest first (hand-off pools never hold one here once
    /// quiet).
    queue: VecDeque<usize>,
    /// The tasks running at the last `tune` that have not finished yet:
    /// until they have, the capacity in force may be exceeded.
    legacy: BTreeSet<usize>,
    /// The fewest workers an open pool keeps: `min_workers` (within the
    /// capacity) started by `build` and `reboot`, and kept past the expiry;
    /// fewer after a `tune` down (idle workers above it end).
    floor: usize,
    panics: usize,
    handler_panics: usize,
    /// The generation of each parent token slot.
    parents: [u32; PARENTS],
}

/// What the pool should answer to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Submit {
        id: usize,
        admit: Admit,
    },
    SpawnCancel {
        id: usize,
        admit: Admit,
        /// `None`: either answer (the task went straight to a worker).
        stopped: Option<bool>,
    },
    Cancel {
        stopped: bool,
    },
    /// Open the gates of these tasks.
    Finish {
        gates: Vec<usize>,
    },
    Tune(Result<(), PoolError>),
    Release,
    ReleaseTimeout(Result<(), PoolError>),
    Reboot,
    WaitIdle(Result<(), PoolError>),
    /// At most this many workers are left once the purge has run.
    Expire(usize),
    /// The blocked submitters, oldest first: each is accepted once the
    /// gates of its own and those before it are open (or refused by the
    /// release).
    Blocked {
        /// The capacity `Then::Grow` tunes to.
        grow: Option<usize>,
        waits: Vec<Blocked>,
    },
    Join {
        joiner: usize,
        target: usize,
        /// The target runs inline on the joiner.
        inline: bool,
        /// The target's fate once the join returns (for a bounded wait:
        /// whether it returns true).
        fate: Fate,
    },
    CancelParent,
    SpinTune {
        /// The gates to open.
        gates: Vec<usize>,
        /// The tasks still running at the tune.
        legacy: Vec<usize>,
        capacity: usize,
        /// The tasks submitted after the tune, each with how and where.
        submits: Vec<(usize, Via, Admit)>,
    },
    /// What the `release_timeout` says; `None`: a plain `release`.
    RebootRelease(Option<Result<(), PoolError>>),
}

/// One blocked submitter of an `Op::Blocked`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Blocked {
    id: usize,
    via: Via,
    /// The gates to open, after those of the submitters before it, for its
    /// room; none if it gets room with the one before it.
    gates: Vec<usize>,
    admit: Admit,
}

impl Model {
    fn new(settings: Settings) -> Model {
        Model {
            settings,
            capacity: settings.capacity,
            closed: false,
            life: 0,
            tasks: Vec::new(),
            fates: Vec::new(),
            running: BTreeSet::new(),
            queue: VecDeque::new(),
            legacy: BTreeSet::new(),
            floor: settings.min_workers.min(settings.capacity),
            panics: 0,
            handler_panics: 0,
            parents: [0; PARENTS],
        }
    }

    /// Whether the task's token is cancelled: its life has been released,
    /// or its parent cancelled (or, running, its handle). A queued task so
    /// doomed is cancelled when a worker (or a join) takes it; a running one
    /// sees its token cancelled.
    fn doomed(&self, id: usize) -> bool {
        let task = &self.tasks[id];
        task.cancelled_running
            || task
                .token_life
                .is_some_and(|life| life < self.life || (life == self.life && self.closed))
            || task
                .parent
                .is_some_and(|(slot, generation)| generation < self.parents[slot])
    }

    fn admit(&self) -> Admit {
        if self.closed {
            return Admit::Closed;
        }
        if self.running.len() < self.capacity {
            // Room below the capacity: once quiet, an open pool never holds
            // a queued task beside it.
            assert!(self.queue.is_empty(), "model: queued tasks beside room");
            return Admit::Start;
        }
        if self.queue.len() < self.settings.queue {
            return Admit::Queue;
        }
        Admit::Full
    }

    /// Whether a call that blocks would block now.
    fn would_block(&self) -> bool {
        !self.closed && !self.settings.nonblocking && self.admit() == Admit::Full
    }

    /// Held tasks that a `Finish` can let go: running, or queued and not
    /// doomed.
    fn finishable(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = self.running.iter().copied().collect();
        ids.extend(
            self.queue
                .iter()
                .copied()
                .filter(|&id| self.tasks[id].held && !self.doomed(id)),
        );
        ids
    }

    /// Held tasks with a handle, queued or running.
    fn cancellable(&self) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|&id| {
                self.tasks[id].held
                    && self.tasks[id].handle
                    && matches!(self.fates[id], Fate::Queued | Fate::Running)
            })
            .collect()
    }

    /// Queued held tasks with a handle.
    fn queued_cancellable(&self) -> Vec<usize> {
        self.cancellable()
            .into_iter()
            .filter(|&id| self.fates[id] == Fate::Queued)
            .collect()
    }

    /// Targets of an `Op::Join` (`bounded` or not): accepted tasks whose
    /// handle the test holds. Not for an unbounded join: a running task (it
    /// would wait for its gate) or a queued held one that is not doomed (it
    /// would run it inline, to wait at its gate). Not for a bounded wait: a
    /// doomed queued task (whether the wait cancels it is not the model's to
    /// say).
    fn join_targets(&self, bounded: bool) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|&id| {
                self.tasks[id].handle
                    && match self.fates[id] {
                        Fate::Refused => false,
                        Fate::Ran | Fate::Cancelled | Fate::RanOrCancelled => true,
                        Fate::Running => bounded,
                        Fate::Queued if bounded => !self.doomed(id),
                        Fate::Queued => !self.tasks[id].held || self.doomed(id),
                    }
            })
            .collect()
    }

    /// Whether an `Op::SpinTune` can be applied (given tasks to finish).
    /// Nothing queued: a worker freed would take a queued task before or
    /// after the tune, as the race goes. A queue: in hand-off mode tasks in
    /// flight are held within the capacity in force anyway, and a worker
    /// gives back its place a moment after its task ends (a submit right
    /// after may be refused).
    fn spin_tunes(&self) -> bool {
        !self.closed && self.queue.is_empty() && !self.running.is_empty() && self.settings.queue > 0
    }

    /// The tasks an `Op::Join` names by position: the `joiner`-th running
    /// task and the `target`-th of the others that it may join.
    fn join_pair(&self, joiner: usize, target: usize, bounded: bool) -> Option<(usize, usize)> {
        let joiner = self.running.iter().copied().nth(joiner)?;
        let target = self
            .join_targets(bounded)
            .into_iter()
            .filter(|&id| id != joiner)
            .nth(target)?;
        Some((joiner, target))
    }

    fn new_task(&mut self, held: bool, panics: bool, via: Via) -> usize {
        let id = self.tasks.len();
        self.tasks.push(TaskInfo {
            held,
            panics,
            handle: via.has_handle(),
            token_life: via.has_token().then_some(self.life),
            parent: match via {
                Via::Child(slot) => Some((slot, self.parents[slot])),
                _ => None,
            },
            cancelled_running: false,
        });
        self.fates.push(Fate::Refused);
        id
    }

    /// A quick task runs (now, or as a worker takes it from the queue).
    fn quick_ran(&mut self, id: usize) {
        self.fates[id] = Fate::Ran;
        if self.tasks[id].panics {
            self.panics += 1;
            if !self.tasks[id].handle {
                self.handler_panics += 1;
            }
        }
    }

    /// Places an accepted task as `admit` says.
    fn place(&mut self, id: usize, admit: Admit) {
        match admit {
            Admit::Start if self.tasks[id].held => {
                self.running.insert(id);
                self.fates[id] = Fate::Running;
            }
            Admit::Start => self.quick_ran(id),
            Admit::Queue => {
                self.queue.push_back(id);
                self.fates[id] = Fate::Queued;
            }
            Admit::Full | Admit::Closed => {}
        }
    }

    /// A worker takes tasks from the queue until it finds a held one that is
    /// not in `passing`; the others end at once (quick ones run, doomed ones
    /// are cancelled, held ones in `passing` go through their open gate).
    /// Returns whether it took a held task (and is busy with it).
    fn take_from_queue(&mut self, passing: &BTreeSet<usize>) -> bool {
        while let Some(id) = self.queue.pop_front() {
            if self.doomed(id) {
                self.fates[id] = Fate::Cancelled;
            } else if !self.tasks[id].held || passing.contains(&id) {
                self.quick_ran(id);
            } else {
                self.running.insert(id);
                self.fates[id] = Fate::Running;
                return true;
            }
        }
        false
    }

    /// The held tasks in `gates` finish: each frees its worker, which leaves
    /// if the pool is above its capacity (a `tune` down settling), else
    /// takes the next queued task.
    fn finish(&mut self, gates: &[usize]) {
        let passing: BTreeSet<usize> = gates.iter().copied().collect();
        let first: Vec<usize> = gates
            .iter()
            .copied()
            .filter(|id| self.running.contains(id))
            .collect();
        for id in first {
            // Workers busy before this one ends: the others, and itself.
            let busy = self.running.len();
            self.running.remove(&id);
            self.legacy.remove(&id);
            self.fates[id] = Fate::Ran;
            if busy <= self.capacity {
                self.take_from_queue(&passing);
            }
        }
        assert!(
            gates.iter().all(|&id| self.fates[id] == Fate::Ran),
            "model: a task let finish did not finish"
        );
    }

    /// An open pool starts workers for its queued tasks up to its capacity
    /// (after a `tune` up, or a `reboot`).
    fn dispatch(&mut self) {
        if self.closed {
            return;
        }
        while self.running.len() < self.capacity && !self.queue.is_empty() {
            self.take_from_queue(&BTreeSet::new());
        }
    }

    /// The `k` held tasks a `Finish(k)` lets go.
    fn gates_for(&self, k: usize) -> Vec<usize> {
        self.finishable().into_iter().take(k).collect()
    }

    fn step(&mut self, op: &Op) -> Expect {
        match *op {
            Op::Held(via) => {
                let admit = self.admit();
                let id = self.new_task(true, false, via);
                self.place(id, admit);
                Expect::Submit { id, admit }
            }
            Op::Quick { via, panics } => {
                let admit = self.admit();
                let id = self.new_task(false, panics, via);
                self.place(id, admit);
                Expect::Submit { id, admit }
            }
            Op::SpawnCancel => {
                let admit = self.admit();
                let id = self.new_task(false, false, Via::Spawn);
                let stopped = match admit {
                    Admit::Start => {
                        self.fates[id] = Fate::RanOrCancelled;
                        None
                    }
                    // Its slot is free at once: it leaves no trace.
                    Admit::Queue => {
                        self.fates[id] = Fate::Cancelled;
                        Some(true)
                    }
                    Admit::Full | Admit::Closed => None,
                };
                Expect::SpawnCancel { id, admit, stopped }
            }
            Op::Cancel(id) => {
                let stopped = self.fates[id] == Fate::Queued;
                if stopped {
                    self.queue.retain(|&queued| queued != id);
                    self.fates[id] = Fate::Cancelled;
                } else if self.tasks[id].token_life.is_some() {
                    // Too late to stop it: its token is cancelled.
                    self.tasks[id].cancelled_running = true;
                }
                Expect::Cancel { stopped }
            }
            Op::Finish(k) => {
                let gates = self.gates_for(k);
                self.finish(&gates);
                Expect::Finish { gates }
            }
            Op::Tune(capacity) => {
                if capacity == 0 {
                    return Expect::Tune(Err(PoolError::InvalidCapacity));
                }
                let grew = capacity > self.capacity;
                self.capacity = capacity;
                self.floor = self.floor.min(capacity);
                self.legacy = self.running.clone();
                if grew {
                    self.dispatch();
                }
                Expect::Tune(Ok(()))
            }
            Op::Release => {
                self.closed = true;
                Expect::Release
            }
            Op::ReleaseTimeout => {
                if self.closed {
                    return Expect::ReleaseTimeout(Err(PoolError::Closed));
                }
                self.closed = true;
                Expect::ReleaseTimeout(if self.running.is_empty() {
                    assert!(self.queue.is_empty(), "model: queued tasks, none running");
                    Ok(())
                } else {
                    Err(PoolError::Timeout)
                })
            }
            Op::Reboot => {
                if self.closed {
                    self.closed = false;
                    self.life += 1;
                    self.floor = self.settings.min_workers.min(self.capacity);
                    self.dispatch();
                }
                Expect::Reboot
            }
            Op::WaitIdle => Expect::WaitIdle(if self.running.is_empty() && self.queue.is_empty() {
                Ok(())
            } else {
                Err(PoolError::Timeout)
            }),
            Op::Expire => {
                // Idle workers expire, but `min_workers` (within the
                // capacity) are kept, idle or not.
                let keep = self.settings.min_workers.min(self.capacity);
                Expect::Expire(self.running.len().max(keep))
            }
            Op::Blocked { spawn, pair, then } => {
                assert!(self.would_block(), "model: a blocked submit with room");
                let first = if spawn { Via::Spawn } else { Via::Submit };
                let second = if spawn { Via::Submit } else { Via::Spawn };
                let vias = if pair {
                    vec![first, second]
                } else {
                    vec![first]
                };
                let mut waits = Vec::new();
                for via in vias {
                    let id = self.new_task(true, false, via);
                    waits.push(Blocked {
                        id,
                        via,
                        gates: Vec::new(),
                        admit: Admit::Closed,
                    });
                }
                let mut grow = None;
                match then {
                    Then::Release => {
                        self.closed = true;
                        return Expect::Blocked { grow, waits };
                    }
                    Then::Free => {}
                    Then::Grow => {
                        // Room for every blocked and every queued task, in
                        // whichever order the pool serves them.
                        let capacity = self.running.len() + waits.len() + self.queue.len();
                        grow = Some(capacity);
                        self.capacity = capacity;
                        self.legacy = self.running.clone();
                        self.dispatch();
                    }
                    Then::Cancel(id) => {
                        self.queue.retain(|&queued| queued != id);
                        self.fates[id] = Fate::Cancelled;
                    }
                }
                for wait in &mut waits {
                    if self.admit() == Admit::Full {
                        // The fewest held tasks whose end makes room.
                        let most = self.finishable().len();
                        let k = (1..=most)
                            .find(|&k| {
                                let mut after = self.clone();
                                after.finish(&self.gates_for(k));
                                after.admit() != Admit::Full
                            })
                            .expect("model: letting every held task finish makes room");
                        wait.gates = self.gates_for(k);
                        self.finish(&wait.gates);
                    }
                    wait.admit = self.admit();
                    self.place(wait.id, wait.admit);
                }
                Expect::Blocked { grow, waits }
            }
            Op::Join {
                joiner,
                target,
                bounded,
            } => {
                let (joiner, target) = self
                    .join_pair(joiner, target, bounded)
                    .expect("model: a join without its tasks");
                let fate = self.fates[target];
                if bounded {
                    return Expect::Join {
                        joiner,
                        target,
                        inline: false,
                        fate,
                    };
                }
                let inline = fate == Fate::Queued && !self.doomed(target);
                if fate == Fate::Queued {
                    // Taken out of turn: its slot is free at once.
                    self.queue.retain(|&queued| queued != target);
                    if inline {
                        assert!(!self.tasks[target].held, "model: a held task run inline");
                        self.quick_ran(target);
                    } else {
                        self.fates[target] = Fate::Cancelled;
                    }
                }
                // The join took the handle.
                self.tasks[target].handle = false;
                Expect::Join {
                    joiner,
                    target,
                    inline,
                    fate: self.fates[target],
                }
            }
            Op::CancelParent(slot) => {
                self.parents[slot] += 1;
                Expect::CancelParent
            }
            Op::SpinTune {
                finish,
                capacity,
                held,
            } => {
                // Nothing is queued: the workers freed find nothing to take
                // and spin.
                let gates = self.gates_for(finish);
                self.finish(&gates);
                let legacy = self.running.iter().copied().collect();
                self.step(&Op::Tune(capacity));
                let submits = (0..held)
                    .map(|_| {
                        let via = if self.would_block() {
                            Via::TrySubmit
                        } else {
                            Via::Spawn
                        };
                        match self.step(&Op::Held(via)) {
                            Expect::Submit { id, admit } => (id, via, admit),
                            other => unreachable!("a submit gave {other:?}"),
                        }
                    })
                    .collect();
                Expect::SpinTune {
                    gates,
                    legacy,
                    capacity,
                    submits,
                }
            }
            Op::RebootRelease { timeout } => {
                // The release comes once the reboot has reopened the pool.
                self.step(&Op::Reboot);
                if timeout {
                    match self.step(&Op::ReleaseTimeout) {
                        Expect::ReleaseTimeout(result) => Expect::RebootRelease(Some(result)),
                        other => unreachable!("release_timeout gave {other:?}"),
                    }
                } else {
                    self.step(&Op::Release);
                    Expect::RebootRelease(None)
                }
            }
        }
    }

    /// Whether `op` can be applied now (checked again while shrinking).
    fn allows(&self, op: &Op) -> bool {
        match *op {
            Op::Held(via) | Op::Quick { via, .. } => !(via.blocks() && self.would_block()),
            Op::SpawnCancel => !self.would_block(),
            Op::Cancel(id) => self.cancellable().contains(&id),
            Op::Finish(k) => k >= 1 && k <= self.finishable().len(),
            Op::Blocked { then, .. } => {
                self.would_block()
                    && match then {
                        Then::Cancel(id) => self.queued_cancellable().contains(&id),
                        Then::Free | Then::Release | Then::Grow => true,
                    }
            }
            Op::Expire => self.settings.short_expiry && !self.closed,
            Op::Join {
                joiner,
                target,
                bounded,
            } => self.join_pair(joiner, target, bounded).is_some(),
            Op::CancelParent(slot) => slot < PARENTS,
            Op::SpinTune {
                finish,
                capacity,
                held,
            } => {
                self.spin_tunes()
                    && (1..=self.running.len()).contains(&finish)
                    && capacity >= 1
                    && held >= 1
            }
            // Nothing queued: the reboot would start workers for it, racing
            // the release.
            Op::RebootRelease { .. } => self.closed && self.queue.is_empty(),
            Op::Tune(_) | Op::Release | Op::ReleaseTimeout | Op::Reboot | Op::WaitIdle => true,
        }
    }

    /// The fates once every gate is open and the pool has drained: running
    /// and queued tasks run, except doomed ones.
    fn drained(&self) -> Model {
        let mut end = self.clone();
        let gates = end.finishable();
        let everything: BTreeSet<usize> = gates.iter().copied().collect();
        for id in end.running.clone() {
            end.running.remove(&id);
            end.fates[id] = Fate::Ran;
        }
        end.take_from_queue(&everything);
        end.legacy.clear();
        end
    }
}

// ---------------------------------------------------------------------------
// The reference state machine

struct PoolMachine;

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![
        3 => Just(Via::Submit),
        1 => Just(Via::TrySubmit),
        1 => Just(Via::SubmitTimeout),
        2 => Just(Via::Spawn),
        1 => Just(Via::Task),
        1 => (0..PARENTS).prop_map(Via::Child),
    ]
}

fn non_blocking_via() -> impl Strategy<Value = Via> {
    prop_oneof![Just(Via::TrySubmit), Just(Via::SubmitTimeout)]
}

impl ReferenceStateMachine for PoolMachine {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        (1usize..=4)
            .prop_flat_map(|capacity| {
                (
                    Just(capacity),
                    prop_oneof![3 => Just(0), 1 => 1..=capacity],
                    prop_oneof![Just(0usize), Just(1), Just(2)],
                    any::<bool>(),
                    any::<bool>(),
                )
            })
            .prop_map(
                |(capacity, min_workers, queue, nonblocking, short_expiry)| {
                    Model::new(Settings {
                        capacity,
                        min_workers,
                        queue,
                        nonblocking,
                        short_expiry,
                    })
                },
            )
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let blocks = state.would_block();
        let via = if blocks {
            non_blocking_via().boxed()
        } else {
            via().boxed()
        };
        // Weighted so that pools often fill up (held tasks, few releases)
        // and a closed pool soon reopens.
        let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
            (8, via.clone().prop_map(Op::Held).boxed()),
            (
                3,
                (via, prop::bool::weighted(0.25))
                    .prop_map(|(via, panics)| Op::Quick { via, panics })
                    .boxed(),
            ),
            (2, (0usize..=5).prop_map(Op::Tune).boxed()),
            (1, Just(Op::Release).boxed()),
            (1, Just(Op::ReleaseTimeout).boxed()),
            (if state.closed { 6 } else { 1 }, Just(Op::Reboot).boxed()),
            (1, Just(Op::WaitIdle).boxed()),
        ];
        if !blocks {
            ops.push((2, Just(Op::SpawnCancel).boxed()));
        }
        if state.settings.short_expiry && !state.closed {
            ops.push((1, Just(Op::Expire).boxed()));
        }
        let finishable = state.finishable().len();
        if finishable > 0 {
            ops.push((4, (1..=finishable).prop_map(Op::Finish).boxed()));
        }
        let cancellable = state.cancellable();
        if !cancellable.is_empty() {
            ops.push((
                3,
                prop::sample::select(cancellable)
                    .prop_map(Op::Cancel)
                    .boxed(),
            ));
        }
        if blocks {
            let mut thens: Vec<(u32, BoxedStrategy<Then>)> = vec![
                (3, Just(Then::Free).boxed()),
                (1, Just(Then::Release).boxed()),
                (1, Just(Then::Grow).boxed()),
            ];
            let queued = state.queued_cancellable();
            if !queued.is_empty() {
                thens.push((
                    2,
                    prop::sample::select(queued).prop_map(Then::Cancel).boxed(),
                ));
            }
            ops.push((
                5,
                (
                    any::<bool>(),
                    any::<bool>(),
                    prop::strategy::Union::new_weighted(thens),
                )
                    .prop_map(|(spawn, pair, then)| Op::Blocked { spawn, pair, then })
                    .boxed(),
            ));
        }
        // Joins from a running task: those on a queued target (run inline,
        // cancelled, or waited for in vain) weigh more; a bounded wait on a
        // queued held task, which a wrong pool runs inline and leaves at
        // its gate (a failure found only after SETTLE), less.
        let mut joins = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for bounded in [false, true] {
            let targets = state.join_targets(bounded);
            for (joiner, &joiner_id) in state.running.iter().enumerate() {
                let others = targets.iter().copied().filter(|&id| id != joiner_id);
                for (target, id) in others.enumerate() {
                    let class = match (state.fates[id], bounded) {
                        (Fate::Queued, false) => 0,
                        (Fate::Queued, true) if !state.tasks[id].held => 1,
                        (Fate::Queued, true) => 2,
                        _ => 3,
                    };
                    joins[class].push(Op::Join {
                        joiner,
                        target,
                        bounded,
                    });
                }
            }
        }
        for (weight, pairs) in [6, 3, 1, 1].into_iter().zip(joins) {
            if !pairs.is_empty() {
                ops.push((weight, prop::sample::select(pairs).boxed()));
            }
        }
        let live_parents: BTreeSet<usize> = (0..state.tasks.len())
            .filter(|&id| matches!(state.fates[id], Fate::Queued | Fate::Running))
            .filter_map(|id| state.tasks[id].parent.map(|(slot, _)| slot))
            .collect();
        // Mostly a parent with tasks not ended under it.
        let (weight, slots): (u32, Vec<usize>) = if live_parents.is_empty() {
            (1, (0..PARENTS).collect())
        } else {
            (2, live_parents.into_iter().collect())
        };
        ops.push((
            weight,
            prop::sample::select(slots)
                .prop_map(Op::CancelParent)
                .boxed(),
        ));
        if state.spin_tunes() {
            ops.push((
                3,
                (1..=state.running.len(), 1usize..=4, 1usize..=3)
                    .prop_map(|(finish, capacity, held)| Op::SpinTune {
                        finish,
                        capacity,
                        held,
                    })
                    .boxed(),
            ));
        }
        if state.closed && state.queue.is_empty() {
            let weight = if state.settings.min_workers > 0 { 4 } else { 1 };
            ops.push((
                weight,
                any::<bool>()
                    .prop_map(|timeout| Op::RebootRelease { timeout })
                    .boxed(),
            ));
        }
        prop::strategy::Union::new_weighted(ops).boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.step(op);
        state
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        state.allows(op)
    }
}

// ---------------------------------------------------------------------------
// The tasks

const NEW: u8 = 0;
const AT_GATE: u8 = 1;
const DONE: u8 = 2;

/// One task's own record, written by the task.
#[derive(Default)]
struct Record {
    state: AtomicU8,
    runs: AtomicUsize,
    /// Running at the last `tune`.
    legacy: AtomicBool,
    /// Run inline by a join, on the joiner's worker: not one more task
    /// running at once.
    inline: AtomicBool,
    /// The task's `CancelToken` (tasks with one), kept as it starts.
    token: Mutex<Option<CancelToken>>,
}

/// What the tasks of a case share.
#[derive(Default)]
struct Shared {
    /// Tasks running now.
    running: AtomicUsize,
    /// Legacy tasks not finished yet.
    legacy_left: AtomicUsize,
    /// The most tasks running at once, seen by tasks that started once no
    /// legacy task was left.
    most_settled: AtomicUsize,
    gates: Mutex<Gates>,
    opened: Condvar,
    handler_panics: AtomicUsize,
}

#[derive(Default)]
struct Gates {
    all: bool,
    open: BTreeSet<usize>,
    /// Calls a held task makes on its worker while it waits at its gate
    /// (`Op::Join`), by task.
    errands: BTreeMap<usize, Job>,
}

impl Shared {
    /// Waits until the gate of task `id` opens, running the errands sent to
    /// it meanwhile.
    fn wait_at_gate(&self, id: usize) {
        let mut gates = self.gates.lock().unwrap();
        while !gates.all && !gates.open.contains(&id) {
            if let Some(errand) = gates.errands.remove(&id) {
                drop(gates);
                errand();
                gates = self.gates.lock().unwrap();
            } else {
                gates = self.opened.wait(gates).unwrap();
            }
        }
    }

    /// Has held task `id` run `errand` on its worker.
    fn send_errand(&self, id: usize, errand: Job) {
        self.gates.lock().unwrap().errands.insert(id, errand);
        self.opened.notify_all();
    }

    fn open(&self, ids: &[usize]) {
        self.gates.lock().unwrap().open.extend(ids);
        self.opened.notify_all();
    }

    fn open_all(&self) {
        self.gates.lock().unwrap().all = true;
        self.opened.notify_all();
    }
}

/// The closure of task `id`: counts itself running, waits at its gate if
/// `held`, then ends (panicking if `panics`).
fn body(
    shared: &Arc<Shared>,
    record: &Arc<Record>,
    id: usize,
    held: bool,
    panics: bool,
) -> impl FnOnce() + Send + 'static {
    let shared = Arc::clone(shared);
    let record = Arc::clone(record);
    move || {
        record.runs.fetch_add(1, Ordering::SeqCst);
        let counted = !record.inline.load(Ordering::SeqCst);
        if counted {
            let now = shared.running.fetch_add(1, Ordering::SeqCst) + 1;
            if shared.legacy_left.load(Ordering::SeqCst) == 0 {
                shared.most_settled.fetch_max(now, Ordering::SeqCst);
            }
        }
        record.state.store(AT_GATE, Ordering::SeqCst);
        if held {
            shared.wait_at_gate(id);
        }
        if counted {
            shared.running.fetch_sub(1, Ordering::SeqCst);
        }
        if record.legacy.load(Ordering::SeqCst) {
            shared.legacy_left.fetch_sub(1, Ordering::SeqCst);
        }
        record.state.store(DONE, Ordering::SeqCst);
        if panics {
            std::panic::panic_any(DELIBERATE);
        }
    }
}

/// Keeps the deliberate panics out of the test's output.
fn quiet_deliberate_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let print = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE) {
                print(info);
            }
        }));
    });
}

/// Before a `tune`: `running`, the tasks running at the call, may exceed
/// the new capacity until they end; from then on it holds.
fn mark_legacy(shared: &Shared, running: &[Arc<Record>]) {
    for record in running {
        record.legacy.store(true, Ordering::SeqCst);
    }
    shared.legacy_left.store(running.len(), Ordering::SeqCst);
    shared.most_settled.store(0, Ordering::SeqCst);
}

// ---------------------------------------------------------------------------
// Calls with a bound

type Job = Box<dyn FnOnce() + Send>;

/// A thread that makes the pool's calls, so that the test waits for each
/// with a bound: a call that hangs fails the case instead of the test run.
struct Caller {
    jobs: mpsc::Sender<Job>,
}

impl Caller {
    fn new() -> Caller {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("state-machine-caller".to_owned())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("the caller thread starts");
        Caller { jobs }
    }

    #[track_caller]
    fn call<T: Send + 'static>(&self, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("the caller thread is alive");
        match rx.recv_timeout(DEADLINE) {
            Ok(value) => value,
            Err(RecvTimeoutError::Timeout) => {
                panic!("`{what}` did not return within {DEADLINE:?} (a deadlock?)")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("`{what}` panicked"),
        }
    }
}

/// What a call that submits answered, in a form to compare.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Accepted,
    Refused(PoolError),
    TryFull,
    TryClosed,
    /// Any other refusal of `try_submit`.
    TryOther,
}

fn expected_reply(via: Via, admit: Admit, nonblocking: bool) -> Reply {
    match admit {
        Admit::Start | Admit::Queue => Reply::Accepted,
        Admit::Closed if via == Via::TrySubmit => Reply::TryClosed,
        Admit::Closed => Reply::Refused(PoolError::Closed),
        Admit::Full => match via {
            Via::TrySubmit => Reply::TryFull,
            Via::SubmitTimeout if !nonblocking => Reply::Refused(PoolError::Timeout),
            _ => Reply::Refused(PoolError::Overloaded),
        },
    }
}

/// Hands `task` to `pool` by `via`; a task with a token keeps it in
/// `record` as it starts. `parent`: the token of a `Via::Child` task.
fn submit_via(
    pool: &Pool,
    via: Via,
    task: impl FnOnce() + Send + 'static,
    record: &Arc<Record>,
    parent: Option<&CancelToken>,
) -> (Reply, Option<TaskHandle<()>>) {
    fn reply(result: Result<(), PoolError>) -> Reply {
        result.map_or_else(Reply::Refused, |()| Reply::Accepted)
    }
    match via {
        Via::Submit => (reply(pool.submit(task)), None),
        Via::TrySubmit => match pool.try_submit(task) {
            Ok(()) => (Reply::Accepted, None),
            Err(TrySubmitError::Full(f)) => {
                drop(f);
                (Reply::TryFull, None)
            }
            Err(TrySubmitError::Closed(f)) => {
                drop(f);
                (Reply::TryClosed, None)
            }
            // `SpawnFailed`, or a kind added later: none the model expects.
            Err(_) => (Reply::TryOther, None),
        },
        Via::SubmitTimeout => (reply(pool.submit_timeout(task, SHORT)), None),
        Via::Spawn => match pool.spawn(task) {
            Ok(handle) => (Reply::Accepted, Some(handle)),
            Err(e) => (Reply::Refused(e), None),
        },
        Via::Task | Via::Child(_) => {
            let mut task = Some(task);
            let record = Arc::clone(record);
            let builder = pool.task(move |token: &CancelToken| {
                *record.token.lock().unwrap() = Some(token.clone());
                if let Some(task) = task.take() {
                    task();
                }
            });
            let spawned = match parent {
                Some(parent) => builder.parent(parent).spawn(),
                None => builder.spawn(),
            };
            match spawned {
                Ok(handle) => (Reply::Accepted, Some(handle)),
                Err(e) => (Reply::Refused(e), None),
            }
        }
    }
}

/// How the figures of an idle pool break `submitted == completed +
/// panicked + cancelled` (exact once idle: `Stats`), if they do.
fn stats_mismatch(pool: &Pool) -> Option<String> {
    let stats = pool.stats();
    (stats.submitted != stats.finished()).then(|| {
        format!(
            "submitted {} != completed {} + panicked {} + cancelled {}",
            stats.submitted, stats.completed, stats.panicked, stats.cancelled
        )
    })
}

/// Polls `mismatch` until it gives `None`; fails with its last answer after
/// [`SETTLE`].
#[track_caller]
fn settle(what: &str, mismatch: impl Fn() -> Option<String>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let Some(why) = mismatch() else {
            return;
        };
        assert!(
            Instant::now() < deadline,
            "{what}: still not so after {SETTLE:?}: {why}"
        );
        thread::sleep(Duration::from_micros(200));
    }
}

// ---------------------------------------------------------------------------
// The system under test

struct PoolUnderTest {
    pool: Pool,
    /// The model as of the last step (the reference's state before the
    /// step being applied).
    model: Model,
    shared: Arc<Shared>,
    records: Vec<Arc<Record>>,
    handles: Vec<Option<TaskHandle<()>>>,
    /// What `cancel` answered, for tasks cancelled at once after `spawn`.
    stopped: Vec<Option<bool>>,
    /// The parent tokens of `Via::Child` tasks, by slot; a cancelled one is
    /// replaced by a fresh one (the model's next generation).
    parents: Vec<CancelToken>,
    caller: Caller,
    done: bool,
}

impl PoolUnderTest {
    fn new(model: &Model) -> PoolUnderTest {
        quiet_deliberate_panics();
        let shared = Arc::new(Shared::default());
        let counter = Arc::clone(&shared);
        let s = model.settings;
        let pool = Pool::builder()
            .capacity(s.capacity)
            .min_workers(s.min_workers)
            .queue_capacity(s.queue)
            .nonblocking(s.nonblocking)
            .expiry(if s.short_expiry {
                Duration::from_millis(5)
            } else {
                Duration::from_secs(60)
            })
            .thread_name("state-machine")
            .panic_handler(move |_| {
                counter.handler_panics.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .expect("the pool builds");
        PoolUnderTest {
            pool,
            model: model.clone(),
            shared,
            records: Vec::new(),
            handles: Vec::new(),
            stopped: Vec::new(),
            parents: (0..PARENTS).map(|_| CancelToken::new()).collect(),
            caller: Caller::new(),
            done: false,
        }
    }

    /// The record and closure of the next task, `id`.
    fn new_task(&mut self, id: usize) -> impl FnOnce() + Send + 'static {
        assert_eq!(id, self.records.len(), "task ids out of step");
        let info = self.model.tasks[id];
        let record = Arc::new(Record::default());
        let task = body(&self.shared, &record, id, info.held, info.panics);
        self.records.push(record);
        self.handles.push(None);
        self.stopped.push(None);
        task
    }

    /// The parent token of a task submitted by `via`.
    fn parent(&self, via: Via) -> Option<CancelToken> {
        match via {
            Via::Child(slot) => Some(self.parents[slot].clone()),
            _ => None,
        }
    }

    fn submit(&mut self, id: usize, via: Via, admit: Admit) {
        let task = self.new_task(id);
        let (pool, record, parent) = (
            self.pool.clone(),
            Arc::clone(&self.records[id]),
            self.parent(via),
        );
        let (reply, handle) = self.caller.call(&format!("{via:?} of task {id}"), move || {
            submit_via(&pool, via, task, &record, parent.as_ref())
        });
        let expected = expected_reply(via, admit, self.model.settings.nonblocking);
        assert_eq!(
            reply, expected,
            "{via:?} of task {id} (the model: {admit:?})"
        );
        self.handles[id] = handle;
    }

    fn apply(&mut self, op: &Op) {
        let before = self.model.clone();
        let expect = self.model.step(op);
        match (op, expect) {
            (&Op::Held(via) | &Op::Quick { via, .. }, Expect::Submit { id, admit }) => {
                self.submit(id, via, admit);
            }
            (Op::SpawnCancel, Expect::SpawnCancel { id, admit, stopped }) => {
                let task = self.new_task(id);
                let (pool, record) = (self.pool.clone(), Arc::clone(&self.records[id]));
                let (reply, stopped_now) = self.caller.call("spawn then cancel", move || {
                    let (reply, handle) = submit_via(&pool, Via::Spawn, task, &record, None);
                    let stopped = handle.as_ref().map(TaskHandle::cancel);
                    (reply, (stopped, handle))
                });
                let (said, handle) = stopped_now;
                let nonblocking = self.model.settings.nonblocking;
                assert_eq!(
                    reply,
                    expected_reply(Via::Spawn, admit, nonblocking),
                    "spawn of task {id} (the model: {admit:?})"
                );
                if let Some(expected) = stopped {
                    assert_eq!(said, Some(expected), "cancel of queued task {id}");
                }
                self.stopped[id] = said;
                self.handles[id] = handle;
            }
            (&Op::Cancel(id), Expect::Cancel { stopped }) => {
                let said = self.cancel(id);
                assert_eq!(
                    said, stopped,
                    "cancel of task {id}, {:?} in the model",
                    before.fates[id]
                );
            }
            (Op::Finish(_), Expect::Finish { gates }) => self.shared.open(&gates),
            (&Op::Tune(capacity), Expect::Tune(expected)) => {
                if expected.is_ok() {
                    self.mark_legacy(&before);
                }
                let pool = self.pool.clone();
                let got = self.caller.call("tune", move || pool.tune(capacity));
                assert_eq!(got, expected, "tune({capacity})");
            }
            (Op::Release, Expect::Release) => {
                let pool = self.pool.clone();
                self.caller.call("release", move || pool.release());
            }
            (Op::ReleaseTimeout, Expect::ReleaseTimeout(expected)) => {
                let pool = self.pool.clone();
                let timeout = if expected.is_ok() { PATIENCE } else { SHORT };
                let got = self
                    .caller
                    .call("release_timeout", move || pool.release_timeout(timeout));
                assert_eq!(got, expected, "release_timeout");
                if got.is_ok() {
                    assert_eq!(self.pool.workers(), 0, "workers after release_timeout");
                    assert_eq!(self.pool.idle(), 0, "idle workers after release_timeout");
                }
            }
            (Op::Reboot, Expect::Reboot) => {
                let pool = self.pool.clone();
                let got = self.caller.call("reboot", move || pool.reboot());
                assert_eq!(got, Ok(()), "reboot");
            }
            (Op::WaitIdle, Expect::WaitIdle(expected)) => {
                let pool = self.pool.clone();
                let timeout = if expected.is_ok() { PATIENCE } else { SHORT };
                let got = self
                    .caller
                    .call("wait_idle", move || pool.wait_idle(timeout));
                assert_eq!(got, expected, "wait_idle");
            }
            (Op::Expire, Expect::Expire(most)) => {
                let pool = &self.pool;
                settle("idle workers expire", || {
                    let workers = pool.workers();
                    (workers > most).then(|| format!("workers() is {workers}, {most} expected"))
                });
            }
            (&Op::Blocked { then, .. }, Expect::Blocked { grow, waits }) => {
                self.blocked(&before, then, grow, &waits);
            }
            (
                &Op::Join { bounded, .. },
                Expect::Join {
                    joiner,
                    target,
                    inline,
                    fate,
                },
            ) => self.join(joiner, target, bounded, inline, fate),
            (&Op::CancelParent(slot), Expect::CancelParent) => {
                let parent = std::mem::replace(&mut self.parents[slot], CancelToken::new());
                parent.cancel();
            }
            (
                Op::SpinTune { .. },
                Expect::SpinTune {
                    gates,
                    legacy,
                    capacity,
                    submits,
                },
            ) => self.spin_tune(gates, &legacy, capacity, &submits),
            (Op::RebootRelease { .. }, Expect::RebootRelease(expected)) => {
                self.reboot_release(expected);
            }
            (op, expect) => unreachable!("{op:?} gave {expect:?}"),
        }
    }

    /// Task `joiner`, held at its gate on a worker, joins `target` there
    /// (or waits for it with a bound); `fate` is the target's once it
    /// returns.
    fn join(&mut self, joiner: usize, target: usize, bounded: bool, inline: bool, fate: Fate) {
        let handle = self.handles[target]
            .take()
            .expect("a join target's handle is the test's");
        let what = if bounded { "wait_timeout" } else { "join" };
        let what = format!("a {what} from task {joiner} on task {target} ({fate:?})");
        if bounded {
            let (tx, rx) = mpsc::channel();
            self.shared.send_errand(
                joiner,
                Box::new(move || {
                    let finished = handle.wait_timeout(SHORT);
                    let _ = tx.send((finished, handle));
                }),
            );
            let (finished, handle) = rx
                .recv_timeout(SETTLE)
                .unwrap_or_else(|e| panic!("{what} did not return: {e}"));
            let ended = matches!(fate, Fate::Ran | Fate::Cancelled | Fate::RanOrCancelled);
            assert_eq!(finished, ended, "{what}: what it returned");
            self.handles[target] = Some(handle);
        } else {
            // Run on the joiner's worker: not one more task at once.
            self.records[target].inline.store(inline, Ordering::SeqCst);
            let (tx, rx) = mpsc::channel();
            self.shared.send_errand(
                joiner,
                Box::new(move || {
                    let _ = tx.send(handle.join());
                }),
            );
            let result = rx
                .recv_timeout(SETTLE)
                .unwrap_or_else(|e| panic!("{what} did not return: {e}"));
            assert!(
                self.result_is(&self.model, target, &result),
                "{what}: it returned {result:?}"
            );
        }
    }

    /// Lets the tasks of `gates` end and, as soon as they have (their
    /// workers spinning for a next task), tunes to `capacity` and submits
    /// the held tasks of `submits`.
    fn spin_tune(
        &mut self,
        gates: Vec<usize>,
        legacy: &[usize],
        capacity: usize,
        submits: &[(usize, Via, Admit)],
    ) {
        let tasks: Vec<_> = submits
            .iter()
            .map(|&(id, via, admit)| {
                let task = self.new_task(id);
                (via, admit, task, Arc::clone(&self.records[id]))
            })
            .collect();
        let (pool, shared) = (self.pool.clone(), Arc::clone(&self.shared));
        let (ending, legacy) = (self.records_of(&gates), self.records_of(legacy));
        // Waits (briefly) until `record`'s task is in `state` or past it.
        let reach = |record: &Record, state: u8| {
            let deadline = Instant::now() + SETTLE;
            while record.state.load(Ordering::SeqCst) < state {
                if Instant::now() > deadline {
                    return false;
                }
                thread::yield_now();
            }
            true
        };
        let outcome = self.caller.call("finish, tune, submit", move || {
            shared.open(&gates);
            if !ending.iter().all(|record| reach(record, DONE)) {
                return Err("the tasks let finish did not end");
            }
            mark_legacy(&shared, &legacy);
            let tuned = pool.tune(capacity);
            let mut replies = Vec::new();
            for (via, admit, task, record) in tasks {
                replies.push(submit_via(&pool, via, task, &record, None));
                // A spinning worker gets a task through the queue: one the
                // model starts holds a slot until the worker takes it.
                if admit == Admit::Start && !reach(&record, AT_GATE) {
                    return Err("a task the model starts did not start");
                }
            }
            Ok((tuned, replies))
        });
        let (tuned, replies) =
            outcome.unwrap_or_else(|why| panic!("finish, tune, submit: {why} within {SETTLE:?}"));
        assert_eq!(tuned, Ok(()), "tune({capacity}) while workers spin");
        let nonblocking = self.model.settings.nonblocking;
        for (&(id, via, admit), (reply, handle)) in submits.iter().zip(replies) {
            assert_eq!(
                reply,
                expected_reply(via, admit, nonblocking),
                "{via:?} of task {id} after tune({capacity}) (the model: {admit:?})"
            );
            self.handles[id] = handle;
        }
    }

    /// `reboot` on a thread of its own, and `release` (or
    /// `release_timeout`: `expected` says what it returns) as soon as the
    /// pool is open.
    fn reboot_release(&mut self, expected: Option<Result<(), PoolError>>) {
        let pool = self.pool.clone();
        let timeout = if expected == Some(Ok(())) {
            SETTLE
        } else {
            SHORT
        };
        let timed = expected.is_some();
        let (rebooted, released) = self.caller.call("reboot racing release", move || {
            let rebooter = pool.clone();
            let reboot = thread::spawn(move || rebooter.reboot());
            let deadline = Instant::now() + SETTLE;
            while pool.is_closed() && Instant::now() < deadline {
                thread::yield_now();
            }
            let released = if timed {
                Some(pool.release_timeout(timeout))
            } else {
                pool.release();
                None
            };
            (reboot.join().expect("reboot panicked"), released)
        });
        assert_eq!(rebooted, Ok(()), "reboot racing release");
        assert_eq!(released, expected, "release_timeout racing reboot");
        if released == Some(Ok(())) {
            assert_eq!(self.pool.workers(), 0, "workers after release_timeout");
            assert_eq!(self.pool.idle(), 0, "idle workers after release_timeout");
        }
    }

    /// Whether `result`, from the handle of task `id`, is what `model`
    /// says became of it.
    fn result_is(&self, model: &Model, id: usize, result: &Result<(), TaskError>) -> bool {
        let cancelled = result.as_ref().is_err_and(TaskError::is_cancelled);
        match model.fates[id] {
            Fate::Ran if model.tasks[id].panics => result.as_ref().is_err_and(TaskError::is_panic),
            Fate::Ran => result.is_ok(),
            Fate::Cancelled => cancelled,
            Fate::RanOrCancelled if self.stopped[id] == Some(true) => cancelled,
            Fate::RanOrCancelled => result.is_ok(),
            Fate::Refused | Fate::Queued | Fate::Running => false,
        }
    }

    /// Before a `tune`: the tasks running at the call may exceed the new
    /// capacity until they end; from then on it holds.
    fn mark_legacy(&self, before: &Model) {
        mark_legacy(&self.shared, &self.records_of(&before.running));
    }

    fn records_of<'a>(&self, ids: impl IntoIterator<Item = &'a usize>) -> Vec<Arc<Record>> {
        ids.into_iter()
            .map(|&id| Arc::clone(&self.records[id]))
            .collect()
    }

    /// Cancels task `id` through its handle; what `cancel` said.
    fn cancel(&mut self, id: usize) -> bool {
        let handle = self.handles[id]
            .take()
            .expect("a cancellable task has a handle");
        let (said, handle) = self
            .caller
            .call("cancel", move || (handle.cancel(), handle));
        self.handles[id] = Some(handle);
        said
    }

    /// Blocking submits on a full pool, each on a thread of its own,
    /// blocked until the release, or until the gates that make room for
    /// each are open, oldest first.
    fn blocked(&mut self, before: &Model, then: Then, grow: Option<usize>, waits: &[Blocked]) {
        let mut pending = Vec::new();
        for (n, wait) in waits.iter().enumerate() {
            let task = self.new_task(wait.id);
            let (pool, via, record) = (
                self.pool.clone(),
                wait.via,
                Arc::clone(&self.records[wait.id]),
            );
            let (tx, rx) = mpsc::channel();
            let submitter = thread::spawn(move || {
                let _ = tx.send(submit_via(&pool, via, task, &record, None));
            });
            pending.push((rx, submitter));
            self.still_blocked(&pending, n + 1, "a submit on a full pool");
        }
        match then {
            Then::Free => {}
            Then::Release => {
                let pool = self.pool.clone();
                self.caller.call("release", move || pool.release());
            }
            Then::Grow => {
                let capacity = grow.expect("the model gives the capacity to grow to");
                self.mark_legacy(before);
                let pool = self.pool.clone();
                let got = self.caller.call("tune", move || pool.tune(capacity));
                assert_eq!(got, Ok(()), "tune({capacity}) with blocked submitters");
            }
            Then::Cancel(id) => {
                let said = self.cancel(id);
                assert!(said, "cancel of queued task {id} with blocked submitters");
            }
        }
        for (n, wait) in waits.iter().enumerate() {
            if !wait.gates.is_empty() {
                // Those from here on wait, oldest first, for room.
                self.still_blocked(&pending[n..], waits.len() - n, "a submit without room");
                self.shared.open(&wait.gates);
            }
            let (id, via) = (wait.id, wait.via);
            let (reply, handle) = pending[n]
                .0
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|e| panic!("the blocked {via:?} of task {id} did not return: {e}"));
            let expected = match wait.admit {
                Admit::Closed => Reply::Refused(PoolError::Closed),
                _ => Reply::Accepted,
            };
            assert_eq!(
                reply, expected,
                "the blocked {via:?} of task {id} (the model: {:?})",
                wait.admit
            );
            self.handles[id] = handle;
        }
        for (_, submitter) in pending {
            submitter.join().expect("a submitting thread panicked");
        }
    }

    /// Waits until `waiting() == count`; fails if one of the submits of
    /// `pending` returns meanwhile.
    #[track_caller]
    fn still_blocked<T: std::fmt::Debug>(
        &self,
        pending: &[(mpsc::Receiver<T>, thread::JoinHandle<()>)],
        count: usize,
        what: &str,
    ) {
        let deadline = Instant::now() + SETTLE;
        loop {
            for (n, (rx, _)) in pending.iter().enumerate() {
                match rx.try_recv() {
                    Err(TryRecvError::Empty) => {}
                    Ok(reply) => panic!("{what}: blocked submit {n} returned {reply:?}"),
                    Err(TryRecvError::Disconnected) => {
                        panic!("{what}: blocked submit {n} panicked")
                    }
                }
            }
            let waiting = self.pool.waiting();
            if waiting == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: waiting() is {waiting}, not {count}, after {SETTLE:?}"
            );
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// How the tasks differ from `model`, if they do.
    fn task_mismatch(&self, model: &Model) -> Option<String> {
        for (id, record) in self.records.iter().enumerate() {
            let runs = record.runs.load(Ordering::SeqCst);
            if runs > 1 {
                return Some(format!("task {id} ran {runs} times"));
            }
            let fate = model.fates[id];
            let want = match fate {
                Fate::Running => AT_GATE,
                Fate::Ran => DONE,
                Fate::Queued | Fate::Cancelled | Fate::Refused => NEW,
                Fate::RanOrCancelled if self.stopped[id] == Some(true) => NEW,
                Fate::RanOrCancelled => DONE,
            };
            let state = record.state.load(Ordering::SeqCst);
            if state != want {
                let name = |s| ["not started", "at its gate", "done"][usize::from(s)];
                return Some(format!(
                    "task {id} ({:?}) is {}, the model says {fate:?}",
                    model.tasks[id],
                    name(state),
                ));
            }
            let ended = matches!(fate, Fate::Ran | Fate::Cancelled | Fate::RanOrCancelled);
            if let Some(handle) = &self.handles[id] {
                if handle.is_finished() != ended {
                    return Some(format!(
                        "task {id}'s handle says finished: {}, the model says {fate:?}",
                        handle.is_finished()
                    ));
                }
            }
            if fate == Fate::Refused && Arc::strong_count(record) != 1 {
                return Some(format!("refused task {id} was not dropped"));
            }
        }
        None
    }

    fn check(&self, model: &Model) {
        assert_eq!(
            &self.model, model,
            "the test's model and the reference differ"
        );
        let pool = &self.pool;
        settle("every task is where the model puts it", || {
            self.task_mismatch(model)
        });
        let running = model.running.len();
        settle("busy() is the tasks running", || {
            let busy = pool.busy();
            (busy != running).then(|| format!("busy() is {busy}, {running} running"))
        });
        let queued = model.queue.len();
        settle("queued() is the model's queue", || {
            let now = pool.queued();
            (now != queued).then(|| format!("queued() is {now}, the model has {queued}"))
        });
        assert!(
            pool.queued() <= model.settings.queue,
            "queued() {} above the queue's capacity {}",
            pool.queued(),
            model.settings.queue
        );
        assert_eq!(pool.is_closed(), model.closed, "is_closed()");
        assert_eq!(pool.capacity(), Some(model.capacity), "capacity()");
        assert_eq!(pool.waiting(), 0, "waiting()");
        settle("panicked() counts the panics", || {
            let (now, handled) = (
                pool.panicked(),
                self.shared.handler_panics.load(Ordering::SeqCst),
            );
            (now != model.panics || handled != model.handler_panics).then(|| {
                format!(
                    "panicked() is {now} and the handler ran {handled} times; \
                     the model says {} and {}",
                    model.panics, model.handler_panics
                )
            })
        });
        let legacy_left = self.shared.legacy_left.load(Ordering::SeqCst);
        assert_eq!(
            legacy_left,
            model.legacy.len(),
            "tasks running at the last tune still running"
        );
        if model.legacy.is_empty() {
            let capacity = model.capacity;
            let most = self.shared.most_settled.load(Ordering::SeqCst);
            assert!(
                most <= capacity,
                "{most} tasks ran at once, above the capacity in force {capacity}, \
                 once the tasks running at the last tune had ended"
            );
            settle("workers() is within the capacity in force", || {
                let workers = pool.workers();
                (workers > capacity).then(|| format!("workers() is {workers}, capacity {capacity}"))
            });
        }
        if !model.closed {
            let floor = model.floor;
            settle("min_workers are kept", || {
                let workers = pool.workers();
                (workers < floor).then(|| format!("workers() is {workers}, min_workers {floor}"))
            });
        }
        for &id in &model.running {
            if model.tasks[id].token_life.is_none() {
                continue;
            }
            // At its gate (checked above): it kept its token as it started.
            let token = self.records[id].token.lock().unwrap().clone();
            let cancelled = token.as_ref().map(CancelToken::is_cancelled);
            assert_eq!(
                cancelled,
                Some(model.doomed(id)),
                "running task {id} ({:?}): is its token cancelled",
                model.tasks[id]
            );
        }
        if model.running.is_empty() && model.queue.is_empty() {
            settle("once idle, the stats add up", || stats_mismatch(pool));
        }
        if model.closed {
            settle("a closed pool keeps only the busy workers", || {
                let (workers, idle) = (pool.workers(), pool.idle());
                (workers != running || idle != 0)
                    .then(|| format!("workers() {workers}, idle() {idle}, {running} tasks running"))
            });
        }
    }

    /// The end of a case: every gate opens, the pool drains and is released,
    /// and every task has run exactly once or been cancelled.
    fn finish_case(&mut self) {
        self.done = true;
        let end = self.model.drained();
        self.shared.open_all();
        let pool = self.pool.clone();
        let idle = self
            .caller
            .call("wait_idle", move || pool.wait_idle(PATIENCE));
        assert_eq!(idle, Ok(()), "wait_idle once every gate is open");
        settle("every task ends as the model says", || {
            self.task_mismatch(&end)
        });
        let pool = self.pool.clone();
        let released = self.caller.call("reboot, release_timeout", move || {
            pool.reboot()?;
            pool.release_timeout(PATIENCE)
        });
        assert_eq!(released, Ok(()), "reboot then release_timeout at the end");
        assert_eq!(self.pool.workers(), 0, "workers() after release_timeout");
        assert_eq!(self.pool.queued(), 0, "queued() after release_timeout");
        assert_eq!(self.pool.panicked(), end.panics, "panicked() at the end");
        assert_eq!(stats_mismatch(&self.pool), None, "the stats at the end");
        let handles = std::mem::take(&mut self.handles);
        for (id, handle) in handles.into_iter().enumerate() {
            let Some(handle) = handle else {
                continue;
            };
            assert!(
                handle.wait_timeout(DEADLINE),
                "task {id}'s handle never finished"
            );
            let result = handle.join();
            let fate = end.fates[id];
            assert!(
                self.result_is(&end, id, &result),
                "task {id} ({fate:?}): its handle says {result:?}"
            );
        }
        for (id, record) in self.records.iter().enumerate() {
            let runs = record.runs.load(Ordering::SeqCst);
            let want = match end.fates[id] {
                Fate::Ran => 1,
                Fate::RanOrCancelled => usize::from(self.stopped[id] != Some(true)),
                _ => 0,
            };
            assert_eq!(runs, want, "runs of task {id} ({:?})", end.fates[id]);
            assert_eq!(
                Arc::strong_count(record),
                1,
                "task {id}'s closure is still alive after release_timeout"
            );
        }
    }
}

impl Drop for PoolUnderTest {
    fn drop(&mut self) {
        if !self.done || thread::panicking() {
            // A failed case: let its tasks go and close the pool without
            // waiting, so that its threads do not pile up.
            self.shared.open_all();
            self.pool.release();
        }
    }
}

impl StateMachineTest for PoolMachine {
    type SystemUnderTest = PoolUnderTest;
    type Reference = PoolMachine;

    fn init_test(model: &Model) -> PoolUnderTest {
        PoolUnderTest::new(model)
    }

    fn apply(mut sut: PoolUnderTest, _model: &Model, op: Op) -> PoolUnderTest {
        sut.apply(&op);
        sut
    }

    fn check_invariants(sut: &PoolUnderTest, model: &Model) {
        sut.check(model);
    }

    fn teardown(mut sut: PoolUnderTest) {
        sut.finish_case();
    }
}

/// 256 cases, or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // A failing case may wait out SETTLE per try: bound the shrink.
        max_shrink_time: 600_000,
        ..ProptestConfig::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn the_pool_follows_its_model(sequential 1..40 => PoolMachine);
}

// ---------------------------------------------------------------------------
// Regressions found by the state machine

/// The shrunk failure, replayed through the same checks: a `reboot` right
/// after a `release` (before the old maintenance thread has seen the
/// release) leaves the pool without a maintenance thread, so idle workers
/// never expire. The pair is repeated because it is a race; once lost, it
/// is lost for the rest of the pool's life.
#[test]
fn reboot_right_after_release_keeps_idle_expiry() {
    let model = Model::new(Settings {
        capacity: 2,
        min_workers: 0,
        queue: 2,
        nonblocking: false,
        short_expiry: true,
    });
    let mut ops = Vec::new();
    for _ in 0..20 {
        ops.extend([Op::Release, Op::Reboot]);
    }
    ops.extend([
        Op::Quick {
            via: Via::Submit,
            panics: false,
        },
        Op::Expire,
    ]);
    PoolMachine::test_sequential(ProptestConfig::default(), model, ops, None);
}

/// The same defect seen through deadlines, which the maintenance thread
/// fires too: after a `release` and a quick `reboot`, a queued task whose
/// deadline has passed is never cancelled.
#[test]
fn reboot_right_after_release_keeps_task_deadlines() {
    let pool = Pool::builder()
        .capacity(1)
        .build()
        .expect("the pool builds");
    for _ in 0..20 {
        pool.release();
        pool.reboot().expect("reboot");
    }
    let (hold, held) = mpsc::channel::<()>();
    pool.submit(move || {
        let _ = held.recv();
    })
    .expect("submit");
    let late = pool
        .task(|_: &CancelToken| ())
        .deadline(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    let fired = late.wait_timeout(Duration::from_secs(3));
    hold.send(()).expect("the held task waits");
    assert!(
        fired,
        "the queued task's 20 ms deadline did not fire within 3 s"
    );
    assert!(late.join().is_err_and(|e| e.is_deadline()));
    pool.release_timeout(PATIENCE).expect("release_timeout");
}

/// The settings of the hand-written cases below: `capacity` workers, a
/// queue of 2, blocking, long expiry.
fn small_pool(capacity: usize, min_workers: usize) -> Model {
    Model::new(Settings {
        capacity,
        min_workers,
        queue: 2,
        nonblocking: false,
        short_expiry: false,
    })
}

/// Defect 2, through the model: a join from a task on a queued task whose
/// parent token was cancelled ran it (the join must say `Cancelled`).
#[test]
fn a_join_never_runs_a_task_whose_parent_was_cancelled() {
    let ops = vec![
        Op::Held(Via::Submit),
        Op::Quick {
            via: Via::Child(0),
            panics: false,
        },
        Op::CancelParent(0),
        Op::Join {
            joiner: 0,
            target: 0,
            bounded: false,
        },
    ];
    PoolMachine::test_sequential(ProptestConfig::default(), small_pool(1, 0), ops, None);
}

/// Defect 2 again: the same after `release`, which cancels every task
/// token of the pool's life.
#[test]
fn a_join_never_runs_a_task_cancelled_by_release() {
    let ops = vec![
        Op::Held(Via::Submit),
        Op::Quick {
            via: Via::Task,
            panics: false,
        },
        Op::Release,
        Op::Join {
            joiner: 0,
            target: 0,
            bounded: false,
        },
    ];
    PoolMachine::test_sequential(ProptestConfig::default(), small_pool(1, 0), ops, None);
}

/// Defect 3, through the model: `wait_timeout` from a task ran the queued
/// task inline (and returned true).
#[test]
fn a_bounded_wait_from_a_task_runs_nothing_inline() {
    let ops = vec![
        Op::Held(Via::Submit),
        Op::Quick {
            via: Via::Spawn,
            panics: false,
        },
        Op::Join {
            joiner: 0,
            target: 0,
            bounded: true,
        },
    ];
    PoolMachine::test_sequential(ProptestConfig::default(), small_pool(1, 0), ops, None);
}

/// Defect 7, through the model: after `tune` down, a worker still spinning
/// for a next task took a task the capacity in force leaves queued (one
/// task still runs, at the capacity of 1). A race (the worker takes it only
/// if it looks before it sees the tune), so repeated.
#[test]
fn tune_down_holds_for_workers_still_spinning() {
    let mut ops = Vec::new();
    for _ in 0..100 {
        ops.extend([
            Op::Tune(2),
            Op::Held(Via::Submit),
            Op::Held(Via::Submit),
            Op::SpinTune {
                finish: 1,
                capacity: 1,
                held: 1,
            },
            Op::Finish(2),
        ]);
    }
    PoolMachine::test_sequential(ProptestConfig::default(), small_pool(2, 0), ops, None);
}

/// Defect 5, through the model: a `release` while `reboot` started its
/// `min_workers` left them parked on the closed pool, so `release_timeout`
/// timed out. A race, so repeated.
#[test]
fn a_release_racing_reboot_leaves_no_worker_parked() {
    let mut ops = vec![Op::Release];
    for timeout in [true, false].repeat(10) {
        ops.push(Op::RebootRelease { timeout });
    }
    PoolMachine::test_sequential(ProptestConfig::default(), small_pool(2, 2), ops, None);
}
