//! The operations where two features of the library meet, each a defect
//! once: scopes whose tasks panic with a payload whose `Drop` panics (the
//! scope unwound before its other tasks had ended), `parallel_execute` with
//! a panicking closure, tasks of a multi-pool that spawn on it and join (the
//! subtask often queued on the other pool: two such tasks deadlocked) or
//! submit to it, blocking (a full multi-pool waited for ever), and tasks
//! whose 4 KiB result sits inline in the cell that the deadline heap of a
//! `task_deadline` pool kept until the deadline was due.
//!
//! Every task is tracked in the ledger as the others are. The nested ones
//! are tracked from inside their parent: their ids are the parent's with a
//! `sub` number.

use super::{lock, spin, Out, Pending, Submitter};
use crate::soak::ledger::{Id, Rec, Tracked, C};
use crate::soak::{PanicsOnDrop, CROSS_NAME, DELIBERATE, DROP_PANIC};
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Duration;
use workpool::{CancelToken, PoolError};

/// Steps in 100 that are one of these operations: about as many tasks as a
/// tenth of the mix, so the soak's rate stays what it was.
pub(super) const PERCENT: u64 = 8;

/// Bytes of a large result.
const BLOCK: usize = 4096;

/// What the large-result tasks return, inline in their cell: before the
/// fix each finished task of a pool with `task_deadline` left its cell, so
/// 4 KiB, behind in the deadline heap, which the RSS bound catches within
/// seconds.
pub(crate) type Block = [u8; BLOCK];

/// The most tasks of a panicking scope (its buffer's length).
const SCOPE_TASKS: usize = 8;

/// The most closures of a `parallel_execute`.
const PARALLEL: usize = 8;

/// What a task of a panicking scope does.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Panics with [`DELIBERATE`].
    Panics,
    /// Panics with a [`PanicsOnDrop`] payload.
    PayloadPanicsOnDrop,
    /// Works, then ends.
    Works(super::Work),
}

/// Sets its flag when dropped: at the very end of a task, unwinding
/// included.
struct Ended<'a>(&'a AtomicBool);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A task's block fill byte: never 0, so that a zeroed block never passes.
fn fill_of(id: Id) -> u8 {
    (id.seq.wrapping_mul(31) as u8 ^ id.sub as u8) | 1
}

/// Checks a joined block; true if every byte is `fill`.
pub(super) fn check_block(rec: &Rec, block: &Block, fill: u8) -> bool {
    let whole = block.iter().all(|&b| b == fill);
    if whole {
        rec.count(C::LargeResults);
    } else {
        rec.mismatch(format_args!(
            "its handle gave a 4 KiB block that is not the one it returned (fill {fill:#x})"
        ));
    }
    whole
}

/// The index of the cross multi-pool's pool whose worker this thread is
/// (its threads are named `{CROSS_NAME}-{pool}-{n}`).
fn cross_pool() -> Option<u8> {
    thread::current()
        .name()?
        .strip_prefix(CROSS_NAME)?
        .strip_prefix('-')?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// A call of a task on its own multi-pool was refused: the task must never
/// run; `WouldDeadlock`, `Overloaded` and `Closed` are the refusals the
/// call may make from a worker.
fn nested_refusal(rec: &Rec, error: &PoolError) {
    rec.refused();
    match error {
        PoolError::WouldDeadlock => rec.count(C::WouldDeadlock),
        PoolError::Overloaded => rec.count(C::Overloaded),
        PoolError::Closed => rec.count(C::Closed),
        other => rec.mismatch(format_args!(
            "refused with an unexpected error: {other:?} ({other})"
        )),
    }
}

/// A panic payload in words.
fn describe(payload: &(dyn Any + Send)) -> String {
    if payload.is::<PanicsOnDrop>() {
        return "a PanicsOnDrop payload".to_owned();
    }
    payload
        .downcast_ref::<&str>()
        .map(|s| format!("{s:?}"))
        .or_else(|| payload.downcast_ref::<String>().map(|s| format!("{s:?}")))
        .unwrap_or_else(|| "a payload that is not a string".to_owned())
}

impl Submitter {
    /// One of the operations of this file.
    pub(super) fn seam_step(&mut self) {
        match self.rng.below(100) {
            0..=9 => self.panicking_scope(),
            10..=19 => self.parallel_execute(),
            20..=44 => self.cross_join(),
            45..=59 => self.self_submit(),
            60..=84 => self.large_result(),
            _ => self.short_deadline(),
        }
    }

    /// `pool.scope` over a buffer on this stack: one task panics with
    /// [`DELIBERATE`], one with a [`PanicsOnDrop`] payload, and the others,
    /// spawned after them so that the scope meets both payloads while these
    /// may still run on workers, sleep or spin. Each writes its slot of the
    /// buffer, and sets its `ended` flag last of all. Once the scope has
    /// unwound, every flag must be set and every slot hold what its task
    /// wrote.
    fn panicking_scope(&mut self) {
        let size = self.rng.range(3, SCOPE_TASKS as u64) as usize;
        // Mostly the message first, then the payload: the scope keeps the
        // first panic and drops the second payload while it waits (the
        // defect); otherwise the payload comes back to the soak, which drops
        // it.
        let payload_first = self.rng.chance(25);
        let mut recs = Vec::with_capacity(size);
        let mut tasks = Vec::with_capacity(size);
        for i in 0..size {
            let role = match (i, payload_first) {
                (0, false) | (1, true) => Role::Panics,
                (0, true) | (1, false) => Role::PayloadPanicsOnDrop,
                _ => Role::Works(self.work(60)),
            };
            let kind = match role {
                Role::Panics => "panicking scope task, panics",
                Role::PayloadPanicsOnDrop => "panicking scope task, payload panics on drop",
                Role::Works(_) => "panicking scope task",
            };
            let (t, rec) = self.track(kind, true);
            let stamp = (rec.id().seq << 8) | i as u64;
            tasks.push((t, role, stamp));
            recs.push(rec);
        }
        let stamps: Vec<u64> = tasks.iter().map(|&(_, _, stamp)| stamp).collect();
        let (ledger, shard) = (self.ledger, usize::from(self.thread));
        let mut buffer = [0u64; SCOPE_TASKS];
        let ended: [AtomicBool; SCOPE_TASKS] = std::array::from_fn(|_| AtomicBool::new(false));
        let pool = &self.pool;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for ((slot, ended), (t, role, stamp)) in buffer.iter_mut().zip(&ended).zip(tasks) {
                    s.spawn(move || {
                        let _ended = Ended(ended);
                        t.ran();
                        if let Role::Works(work) = role {
                            work.run();
                        }
                        *slot = stamp;
                        match role {
                            Role::Panics => panic::panic_any(DELIBERATE),
                            Role::PayloadPanicsOnDrop => {
                                panic::panic_any(PanicsOnDrop::new(ledger, shard))
                            }
                            Role::Works(_) => {}
                        }
                    });
                }
            });
        }));
        let running: Vec<usize> = (0..size)
            .filter(|&i| !ended[i].load(Ordering::SeqCst))
            .collect();
        if !running.is_empty() {
            let first = recs[0].id();
            ledger.fail(format!(
                "the scope of tasks {first}..+{size} {} while its tasks {running:?} (counted \
                 from {first}) still ran, borrowing the scope's caller's stack",
                if outcome.is_ok() {
                    "returned"
                } else {
                    "unwound"
                },
            ));
            // They write to this frame: it must outlive them, so wait here.
            while (0..size).any(|i| !ended[i].load(Ordering::SeqCst)) {
                thread::sleep(Duration::from_millis(1));
            }
        }
        for (i, rec) in recs.iter().enumerate() {
            rec.accepted();
            if rec.runs() == 0 {
                rec.lose(format_args!("its scope ended, but it never ran"));
            } else if buffer[i] != stamps[i] {
                rec.mismatch(format_args!(
                    "its slot of the scope's stack buffer holds {:#x}, not the {:#x} it wrote",
                    buffer[i], stamps[i]
                ));
            }
        }
        match outcome {
            Ok(()) => ledger.fail(format!(
                "the scope of tasks {}..+{size} returned, though two of its tasks panicked",
                recs[0].id()
            )),
            Err(payload) => {
                let of_a_task = payload.is::<PanicsOnDrop>()
                    || payload.downcast_ref::<&str>() == Some(&DELIBERATE);
                if !of_a_task {
                    let drop_panic = payload.downcast_ref::<&str>() == Some(&DROP_PANIC);
                    ledger.fail(format!(
                        "the scope of tasks {}..+{size} unwound with {}{}, not with the panic of \
                         one of its tasks",
                        recs[0].id(),
                        describe(&*payload),
                        if drop_panic {
                            " (the panic of a payload's Drop, let out of the scope)"
                        } else {
                            ""
                        }
                    ));
                }
                // A PanicsOnDrop payload panics here: expected, and counted.
                let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            }
        }
        ledger.add(shard, C::PanickingScopes, 1);
    }

    /// `pool.parallel_execute` of closures that read a buffer on this
    /// stack, one of which panics: the results come back in order, the
    /// panic as `TaskError::Panicked`.
    fn parallel_execute(&mut self) {
        let size = self.rng.range(2, PARALLEL as u64) as usize;
        let panicking = self.rng.below(size as u64) as usize;
        let mut input = [0u64; PARALLEL];
        for value in &mut input {
            *value = self.rng.next();
        }
        let mut recs = Vec::with_capacity(size);
        let mut fns: Vec<Box<dyn FnOnce() -> u64 + Send + '_>> = Vec::with_capacity(size);
        for (i, &value) in input.iter().enumerate().take(size) {
            let (t, rec) = self.track("parallel_execute closure", true);
            let work = self.work(10);
            let input = &input;
            fns.push(Box::new(move || {
                t.ran();
                work.run();
                if i == panicking {
                    t.panics();
                    panic::panic_any(DELIBERATE);
                }
                debug_assert_eq!(input[i], value);
                input[i].rotate_left(7)
            }));
            recs.push(rec);
        }
        let results = self.pool.parallel_execute(fns);
        if results.len() != size {
            recs[0].mismatch(format_args!(
                "parallel_execute of {size} closures gave {} results",
                results.len()
            ));
        }
        for (i, (rec, result)) in recs.iter().zip(&results).enumerate() {
            rec.accepted();
            rec.report(result);
            let fine = match result {
                Ok(value) => i != panicking && *value == input[i].rotate_left(7),
                Err(e) => i == panicking && e.is_panic(),
            };
            if !fine {
                rec.mismatch(format_args!(
                    "parallel_execute gave {result:?} in place {i} of {size}, where closure \
                     {panicking} panicked"
                ));
            }
        }
        self.ledger
            .add(usize::from(self.thread), C::ParallelExecutes, 1);
    }

    /// A task of the cross multi-pool spawns 1 to 3 subtasks on it (each
    /// placed by the balancing, often on the other pool) and joins them.
    /// With both pools full of such tasks, a join whose subtask was queued
    /// on the other pool waited for ever; now it runs the subtask itself.
    fn cross_join(&mut self) {
        let (t, rec) = self.track("cross-pool join", true);
        let subs = self.rng.range(1, 3) as u16;
        let cross = self.cross.clone();
        let task = move || -> Out {
            t.ran();
            let mut spawned = Vec::with_capacity(usize::from(subs));
            for sub in 1..=subs {
                let id = Id { sub, ..t.id() };
                let (guard, rec) = Tracked::new(t.ledger(), id, "cross-pool subtask", true);
                let fill = fill_of(id);
                let placed = cross.spawn(move || -> (ThreadId, Option<u8>, Block) {
                    guard.ran();
                    spin(300);
                    (thread::current().id(), cross_pool(), [fill; BLOCK])
                });
                match placed {
                    Ok(handle) => {
                        rec.accepted();
                        spawned.push((rec, handle, fill));
                    }
                    Err(e) => nested_refusal(&rec, &e),
                }
            }
            let (me, home) = (thread::current().id(), cross_pool());
            let mut joined = 0;
            for (rec, handle, fill) in spawned {
                let result = handle.join().map(|(thread, pool, block)| {
                    if thread == me {
                        rec.count(C::JoinsInline);
                    } else if pool.is_some() && pool != home {
                        rec.count(C::JoinsAcross);
                    }
                    check_block(&rec, &block, fill)
                });
                rec.report(&result);
                rec.count(C::CrossJoins);
                joined += 1;
            }
            Ok(joined)
        };
        self.hold_spawned(rec, self.cross.spawn(task));
    }

    /// A task of the cross multi-pool submits to it, blocking: with every
    /// pool full of such tasks this waited for ever; now the call runs the
    /// subtask or refuses it (`WouldDeadlock`, `Overloaded`, `Closed`), and
    /// a refused subtask must never run.
    fn self_submit(&mut self) {
        let (t, rec) = self.track("task submitting to its own multi-pool", true);
        let cross = self.cross.clone();
        let adopted = Arc::clone(&self.adopted);
        let work = self.work(20);
        let task = move || -> Out {
            t.ran();
            let id = Id { sub: 1, ..t.id() };
            let (guard, rec) = Tracked::new(
                t.ledger(),
                id,
                "submitted by a task of its multi-pool",
                true,
            );
            rec.count(C::SelfSubmits);
            let result = cross.submit(move || {
                guard.ran();
                work.run();
            });
            match result {
                Ok(()) => {
                    rec.accepted();
                    rec.count(C::SelfSubmitsAccepted);
                    lock(&adopted).push(rec);
                }
                Err(e) => nested_refusal(&rec, &e),
            }
            Ok(0)
        };
        self.hold_spawned(rec, self.cross.spawn(task));
    }

    /// A task that returns a 4 KiB block, on the pool or (mostly) the
    /// cross multi-pool, both with a far `task_deadline`.
    fn large_result(&mut self) {
        let on_cross = self.rng.chance(70);
        let kind = if on_cross {
            "cross-pool spawn, 4 KiB result"
        } else {
            "spawn, 4 KiB result"
        };
        let (t, rec) = self.track(kind, true);
        let fill = fill_of(rec.id());
        let work = self.work(5);
        let task = move || -> Block {
            t.ran();
            work.run();
            [fill; BLOCK]
        };
        let result = if on_cross {
            self.cross.spawn(task)
        } else {
            self.pool.spawn(task)
        };
        match result {
            Ok(handle) => {
                rec.accepted();
                self.hold(Pending::Block { rec, handle, fill });
            }
            Err(e) => self.refused(&rec, &e),
        }
    }

    /// 1 to 4 tasks with a deadline of 1 to 5 ms and a 4 KiB result on the
    /// busy pool: each ran, or its handle says `DeadlineExceeded` (or
    /// `Cancelled`, by a release) and it never ran.
    fn short_deadline(&mut self) {
        for _ in 0..self.rng.range(1, 4) {
            let (t, rec) = self.track("task with a 1-5 ms deadline", false);
            let fill = fill_of(rec.id());
            let work = self.work(50);
            let deadline = Duration::from_micros(self.rng.range(1000, 5000));
            let task = move |_: &CancelToken| -> Block {
                t.ran();
                work.run();
                [fill; BLOCK]
            };
            match self.pool.task(task).deadline(deadline).spawn() {
                Ok(handle) => {
                    rec.accepted();
                    rec.count(C::ShortDeadlines);
                    self.hold(Pending::Block { rec, handle, fill });
                }
                Err(e) => self.refused(&rec, &e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::ledger::Ledger;

    #[test]
    fn a_block_that_is_not_the_one_returned_is_a_mismatch() {
        let ledger = Ledger::leak(1);
        let id = Id {
            thread: 0,
            seq: 7,
            sub: 2,
        };
        let (t, rec) = Tracked::new(ledger, id, "test", true);
        t.ran();
        let fill = fill_of(id);
        assert_ne!(fill, 0);
        assert!(check_block(&rec, &[fill; BLOCK], fill));
        let mut block = [fill; BLOCK];
        block[BLOCK - 1] ^= 1;
        assert!(!check_block(&rec, &block, fill));
        let totals = ledger.totals();
        assert_eq!(totals.get(C::LargeResults), 1);
        assert_eq!(totals.get(C::Mismatched), 1);
    }

    #[test]
    fn a_refusal_from_a_worker_counts_its_reason_and_forbids_the_run() {
        let ledger = Ledger::leak(1);
        let id = |seq| Id {
            thread: 0,
            seq,
            sub: 1,
        };
        for (seq, error) in [
            (1, PoolError::WouldDeadlock),
            (2, PoolError::Overloaded),
            (3, PoolError::Closed),
        ] {
            let (t, rec) = Tracked::new(ledger, id(seq), "test", true);
            nested_refusal(&rec, &error);
            drop(t);
        }
        let (t, rec) = Tracked::new(ledger, id(4), "test", true);
        nested_refusal(&rec, &PoolError::WouldDeadlock);
        t.ran();
        let totals = ledger.totals();
        assert_eq!(totals.get(C::WouldDeadlock), 2);
        assert_eq!((totals.get(C::Overloaded), totals.get(C::Closed)), (1, 1));
        assert_eq!(totals.get(C::Refused), 4);
        assert_eq!(totals.get(C::RefusedRan), 1);
        assert_eq!(ledger.failures(), 1);
    }

    #[test]
    fn a_payload_that_panics_on_drop_is_counted_once_and_quiet_while_unwinding() {
        let ledger = Ledger::leak(1);
        let payload = PanicsOnDrop::new(ledger, 0);
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        let message = dropped.expect_err("its drop panics");
        assert_eq!(message.downcast_ref::<&str>(), Some(&DROP_PANIC));
        // Dropped while unwinding: no second panic (which would abort).
        let unwound = panic::catch_unwind(AssertUnwindSafe(|| {
            let _payload = PanicsOnDrop::new(ledger, 0);
            panic::panic_any(DELIBERATE);
        }));
        assert!(unwound.is_err());
        let totals = ledger.totals();
        assert_eq!(totals.get(C::PayloadsMade), 2);
        assert_eq!(totals.get(C::PayloadsDropped), 2);
    }
}
