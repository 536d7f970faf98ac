//! The soak's ledger: one record per task, and counters of fates.
//!
//! Every task carries a [`Tracked`] guard with its record. The record is one
//! atomic word of flags and a run count; each event (the call accepted or
//! refused the task, its body started, its closure was dropped unrun, its
//! handle or callback reported how it ended) sets its bit with one atomic
//! read-modify-write and looks at the bits set before it. Of two events
//! that contradict each other, whichever comes second sees the first, so a
//! contradiction is caught once, whatever the order, at the moment it
//! happens:
//!
//! - a body that starts a second time: **duplicated**;
//! - a body that starts after its call refused the task: **refused ran**;
//! - a body that starts after its handle said it was cancelled, or a handle
//!   that says "cancelled" for a body that ran: **cancelled ran**;
//! - a task that must run (no token, no deadline, never cancelled) whose
//!   closure the pool dropped unrun after accepting it, or whose handle says
//!   it was cancelled: **lost**. What is still unresolved after the final
//!   drain is lost too ([`Rec::is_resolved`]).
//!
//! Counters are sharded, one cache line per submitter thread, and summed by
//! the reporter.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use workpool::TaskError;

/// Flags of a record; the run count sits above them.
const ACCEPTED: u32 = 1;
const REFUSED: u32 = 1 << 1;
const CANCELLED: u32 = 1 << 2;
const DROPPED: u32 = 1 << 3;
const MUST_RUN: u32 = 1 << 4;
/// Part of a batch whose submission failed partway: the library cancels the
/// tasks it had accepted (those already started finish), so each must end
/// either run once or dropped unrun.
const EITHER: u32 = 1 << 5;
const LOST: u32 = 1 << 6;
const RUN: u32 = 1 << 16;

fn runs(state: u32) -> u32 {
    state >> 16
}

/// What the ledger counts; each is one slot of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum C {
    /// The call returned Ok: submit, spawn, a batch, a scope task.
    Accepted,
    /// The call returned an error (or a batch failed partway and this task
    /// never started): it must never run.
    Refused,
    /// Bodies that started, each counted once (a retried task once).
    Ran,
    /// Reported cancelled (or past its deadline) by its handle or callback.
    Cancelled,
    Lost,
    Duplicated,
    RefusedRan,
    CancelledRan,
    /// A handle or callback that contradicts the body (says it ran when it
    /// did not, a wrong retry count, a cancel that was not).
    Mismatched,
    /// Attempts of retried tasks beyond the first.
    Retries,
    PanicsThrown,
    /// Deliberate panics seen by a handle or by the pool's panic handler.
    PanicsReported,
    /// Refusals with `Closed`.
    Closed,
    /// `try_submit` said `Full`.
    Full,
    /// A closure `try_submit` gave back, submitted again.
    Resubmitted,
    /// `submit_timeout` said `Timeout`.
    TimedOut,
    /// A `submit_async` future dropped while it waited for room.
    Abandoned,
    /// Tasks cancelled through their handle by the soak.
    CancelCalls,
    Tunes,
    Releases,
    /// Scopes some of whose tasks panicked, one with a payload whose `Drop`
    /// panics.
    PanickingScopes,
    /// Panic payloads whose `Drop` panics, made.
    PayloadsMade,
    /// Such payloads dropped (each `Drop` panics, unless already unwinding).
    PayloadsDropped,
    /// `parallel_execute` calls, each with one panicking closure.
    ParallelExecutes,
    /// Subtasks that a task of the cross multi-pool spawned on it and
    /// joined.
    CrossJoins,
    /// Of those, the ones the join ran on the joining thread.
    JoinsInline,
    /// Of those, the ones a worker of the other pool ran.
    JoinsAcross,
    /// Blocking submits of a task of the cross multi-pool on it.
    SelfSubmits,
    /// Of those, the ones accepted.
    SelfSubmitsAccepted,
    /// A task's call on its own multi-pool refused with `WouldDeadlock`.
    WouldDeadlock,
    /// A task's call on its own multi-pool refused with `Overloaded`.
    Overloaded,
    /// Tasks whose 4 KiB result was joined and checked.
    LargeResults,
    /// Tasks spawned with a deadline of 1 to 5 ms.
    ShortDeadlines,
    /// Of those, the ones whose handle said `DeadlineExceeded`.
    DeadlineExceeded,
}

const N: usize = C::DeadlineExceeded as usize + 1;

#[repr(align(128))]
struct Shard([AtomicU64; N]);

/// The summed counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals([u64; N]);

impl Totals {
    pub(crate) fn get(&self, c: C) -> u64 {
        self.0[c as usize]
    }
}

/// Every counter, and the first and the last failures in words.
pub(crate) struct Ledger {
    shards: Box<[Shard]>,
    failures: AtomicU64,
    notes: Mutex<Notes>,
}

/// How many of the first failures are kept in words.
const FIRST_NOTES: usize = 30;

/// How many of the last failures are kept in words: a defect that fails
/// every few ms would otherwise hide one found later, in the final drain.
const LAST_NOTES: usize = 10;

/// The failures kept in words; those between are only counted.
#[derive(Default)]
struct Notes {
    first: Vec<String>,
    last: VecDeque<String>,
    between: u64,
}

impl Ledger {
    /// One per soak, leaked, so that every task can hold a plain reference.
    pub(crate) fn leak(shards: usize) -> &'static Ledger {
        Box::leak(Box::new(Ledger {
            shards: (0..shards.max(1))
                .map(|_| Shard(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            failures: AtomicU64::new(0),
            notes: Mutex::new(Notes::default()),
        }))
    }

    pub(crate) fn add(&self, shard: usize, c: C, n: u64) {
        self.shards[shard % self.shards.len()].0[c as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut sum = [0u64; N];
        for shard in self.shards.iter() {
            for (total, count) in sum.iter_mut().zip(&shard.0) {
                *total += count.load(Ordering::Relaxed);
            }
        }
        Totals(sum)
    }

    /// Records a failure of an invariant.
    pub(crate) fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.first.len() < FIRST_NOTES {
            notes.first.push(what);
            return;
        }
        if notes.last.len() == LAST_NOTES {
            notes.last.pop_front();
            notes.between += 1;
        }
        notes.last.push_back(what);
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The failures kept in words, oldest first, with a line for those
    /// between the first and the last that were only counted.
    pub(crate) fn notes(&self) -> Vec<String> {
        let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = notes.first.clone();
        if notes.between > 0 {
            all.push(format!(
                "({} more failures, not kept in words)",
                notes.between
            ));
        }
        all.extend(notes.last.iter().cloned());
        all
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("failures", &self.failures())
            .finish()
    }
}

/// A task's id: the submitter thread, its sequence number there, and, for a
/// task started from inside another task, its place under that one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Id {
    pub(crate) thread: u16,
    pub(crate) seq: u64,
    pub(crate) sub: u16,
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.thread, self.seq)?;
        if self.sub != 0 {
            write!(f, ".{}", self.sub)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One task's record.
pub(crate) struct Rec {
    ledger: &'static Ledger,
    id: Id,
    kind: &'static str,
    state: AtomicU32,
}

impl fmt::Debug for Rec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rec")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("state", &self.state.load(Ordering::SeqCst))
            .finish()
    }
}

impl Rec {
    fn shard(&self) -> usize {
        usize::from(self.id.thread)
    }

    fn add(&self, c: C) {
        self.ledger.add(self.shard(), c, 1);
    }

    /// Counts `c` and records the failure, naming the task.
    fn fail(&self, c: C, what: fmt::Arguments<'_>) {
        self.add(c);
        self.ledger
            .fail(format!("task {} ({}): {what}", self.id, self.kind));
    }

    /// Counts the task lost, once.
    pub(crate) fn lose(&self, what: fmt::Arguments<'_>) {
        if self.state.fetch_or(LOST, Ordering::SeqCst) & LOST == 0 {
            self.fail(C::Lost, what);
        }
    }

    /// A handle or callback contradicts what the body did.
    pub(crate) fn mismatch(&self, what: fmt::Arguments<'_>) {
        self.fail(C::Mismatched, what);
    }

    /// The body started.
    fn ran(&self) {
        let before = self.state.fetch_add(RUN, Ordering::SeqCst);
        if runs(before) == 0 {
            self.add(C::Ran);
            if before & EITHER != 0 {
                // Its batch was refused partway, after this one was accepted.
                self.add(C::Accepted);
            }
        } else {
            self.fail(
                C::Duplicated,
                format_args!("its body ran {} times", runs(before) + 1),
            );
        }
        if before & REFUSED != 0 {
            self.fail(
                C::RefusedRan,
                format_args!("its body ran, but its call refused it"),
            );
        }
        if before & CANCELLED != 0 {
            self.fail(
                C::CancelledRan,
                format_args!("its body ran after its handle said it was cancelled"),
            );
        }
    }

    /// The submitting call returned Ok.
    pub(crate) fn accepted(&self) {
        let before = self.state.fetch_or(ACCEPTED, Ordering::SeqCst);
        self.add(C::Accepted);
        if before & DROPPED != 0 && before & MUST_RUN != 0 && runs(before) == 0 {
            self.lose(format_args!(
                "accepted, but its closure was dropped without running"
            ));
        }
    }

    /// The submitting call refused the task: it must never run.
    pub(crate) fn refused(&self) {
        let before = self.state.fetch_or(REFUSED, Ordering::SeqCst);
        self.add(C::Refused);
        if runs(before) != 0 {
            self.fail(
                C::RefusedRan,
                format_args!("its call refused it, but its body had run"),
            );
        }
    }

    /// Its batch was refused partway: it ends run once or dropped unrun, and
    /// counts as accepted in the first case, refused in the second.
    pub(crate) fn either(&self) {
        let before = self.state.fetch_or(EITHER, Ordering::SeqCst);
        if runs(before) != 0 || before & CANCELLED != 0 {
            // Accepted, then run or cancelled (Ran or Cancelled counted).
            self.add(C::Accepted);
        } else if before & DROPPED != 0 {
            self.add(C::Refused);
        }
        // Otherwise the run or the drop, still to come, counts it.
    }

    /// A handle (or a batch's callback) says how the task ended.
    pub(crate) fn report<T: fmt::Debug>(&self, result: &Result<T, TaskError>) {
        match result {
            Ok(_) => {
                if runs(self.state.load(Ordering::SeqCst)) == 0 {
                    self.mismatch(format_args!(
                        "its handle says {result:?}, but its body never ran"
                    ));
                }
            }
            Err(e) if e.is_panic() => {
                if e.panic_message() == Some(super::DELIBERATE) {
                    self.add(C::PanicsReported);
                } else {
                    self.mismatch(format_args!("unexpected panic: {e}"));
                }
                if runs(self.state.load(Ordering::SeqCst)) == 0 {
                    self.mismatch(format_args!(
                        "its handle says it panicked, but it never ran"
                    ));
                }
            }
            Err(e) => {
                let before = self.state.fetch_or(CANCELLED, Ordering::SeqCst);
                if runs(before) != 0 {
                    self.fail(
                        C::CancelledRan,
                        format_args!("its handle says {e:?}, but its body ran"),
                    );
                }
                if before & MUST_RUN != 0 {
                    self.lose(format_args!(
                        "its handle says {e:?}, but nothing could cancel it"
                    ));
                } else {
                    self.add(C::Cancelled);
                }
            }
        }
    }

    /// Whether its fate is known: it ran, was reported cancelled, was
    /// counted lost, or (a task of a refused batch) was dropped unrun.
    pub(crate) fn is_resolved(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        runs(state) != 0
            || state & (CANCELLED | LOST) != 0
            || (state & EITHER != 0 && state & DROPPED != 0)
    }

    /// Times the body started.
    pub(crate) fn runs(&self) -> u32 {
        runs(self.state.load(Ordering::SeqCst))
    }

    pub(crate) fn id(&self) -> Id {
        self.id
    }

    /// Counts `c` on the shard of the task's submitter.
    pub(crate) fn count(&self, c: C) {
        self.add(c);
    }
}

/// The guard a task's closure carries: its body calls [`ran`](Self::ran)
/// first thing; if the closure is dropped before that, the drop says so.
pub(crate) struct Tracked(Arc<Rec>);

impl Tracked {
    /// A new task's guard and record. `must_run`: nothing may cancel it (no
    /// token, no deadline, no cancel call), so once accepted it must run.
    pub(crate) fn new(
        ledger: &'static Ledger,
        id: Id,
        kind: &'static str,
        must_run: bool,
    ) -> (Tracked, Arc<Rec>) {
        let rec = Arc::new(Rec {
            ledger,
            id,
            kind,
            state: AtomicU32::new(if must_run { MUST_RUN } else { 0 }),
        });
        (Tracked(Arc::clone(&rec)), rec)
    }

    /// The body starts.
    pub(crate) fn ran(&self) {
        self.0.ran();
    }

    /// A retried task's later attempt.
    pub(crate) fn retried(&self) {
        self.0.add(C::Retries);
    }

    /// What the task saw while it ran contradicts a promise.
    pub(crate) fn mismatch(&self, what: fmt::Arguments<'_>) {
        self.0.mismatch(what);
    }

    /// A deliberate panic is about to be thrown.
    pub(crate) fn panics(&self) {
        self.0.add(C::PanicsThrown);
    }

    pub(crate) fn ledger(&self) -> &'static Ledger {
        self.0.ledger
    }

    pub(crate) fn id(&self) -> Id {
        self.0.id
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let rec = &self.0;
        // A closure being dropped is not running: the count is settled.
        if runs(rec.state.load(Ordering::SeqCst)) != 0 {
            return;
        }
        let before = rec.state.fetch_or(DROPPED, Ordering::SeqCst);
        if before & EITHER != 0 {
            rec.add(C::Refused);
        }
        if before & ACCEPTED != 0 && before & MUST_RUN != 0 {
            rec.lose(format_args!(
                "accepted, but its closure was dropped without running"
            ));
        }
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tracked").field(&self.0.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> Id {
        Id {
            thread: 0,
            seq,
            sub: 0,
        }
    }

    #[test]
    fn a_task_that_runs_once_balances() {
        let ledger = Ledger::leak(1);
        let (t, rec) = Tracked::new(ledger, id(1), "test", true);
        t.ran();
        rec.accepted();
        drop(t);
        assert!(rec.is_resolved());
        let totals = ledger.totals();
        assert_eq!((totals.get(C::Accepted), totals.get(C::Ran)), (1, 1));
        assert_eq!(ledger.failures(), 0);
    }

    #[test]
    fn a_second_run_is_a_duplicate() {
        let ledger = Ledger::leak(1);
        let (t, rec) = Tracked::new(ledger, id(2), "test", true);
        rec.accepted();
        t.ran();
        t.ran();
        assert_eq!(ledger.totals().get(C::Duplicated), 1);
        assert!(ledger.notes()[0].contains("task 0-2 (test): its body ran 2 times"));
    }

    #[test]
    fn an_accepted_must_run_task_dropped_unrun_is_lost_in_either_order() {
        let ledger = Ledger::leak(1);
        let (t, rec) = Tracked::new(ledger, id(3), "test", true);
        rec.accepted();
        drop(t);
        let (t, rec2) = Tracked::new(ledger, id(4), "test", true);
        drop(t);
        rec2.accepted();
        assert_eq!(ledger.totals().get(C::Lost), 2);
        assert!(rec.is_resolved() && rec2.is_resolved());
    }

    #[test]
    fn refused_and_cancelled_tasks_must_not_run() {
        let ledger = Ledger::leak(1);
        let (t, rec) = Tracked::new(ledger, id(5), "test", true);
        rec.refused();
        t.ran();
        let (t, rec) = Tracked::new(ledger, id(6), "test", false);
        rec.accepted();
        drop(t);
        rec.report::<()>(&Err(TaskError::Cancelled));
        let (t, rec) = Tracked::new(ledger, id(7), "test", false);
        rec.accepted();
        t.ran();
        rec.report::<()>(&Err(TaskError::DeadlineExceeded));
        let totals = ledger.totals();
        assert_eq!(totals.get(C::RefusedRan), 1);
        assert_eq!(totals.get(C::CancelledRan), 1);
        assert_eq!(totals.get(C::Cancelled), 2);
        assert_eq!(totals.get(C::Lost), 0);
    }

    #[test]
    fn a_must_run_task_reported_cancelled_is_lost_once() {
        let ledger = Ledger::leak(1);
        let (t, rec) = Tracked::new(ledger, id(8), "test", true);
        rec.accepted();
        drop(t);
        rec.report::<()>(&Err(TaskError::Cancelled));
        assert_eq!(ledger.totals().get(C::Lost), 1);
        assert_eq!(ledger.failures(), 1);
    }

    #[test]
    fn the_first_and_the_last_failures_are_kept() {
        let ledger = Ledger::leak(1);
        for n in 0..100 {
            ledger.fail(format!("failure {n}"));
        }
        let notes = ledger.notes();
        assert_eq!(notes.len(), FIRST_NOTES + 1 + LAST_NOTES);
        assert_eq!(notes[FIRST_NOTES - 1], "failure 29");
        assert_eq!(notes[FIRST_NOTES], "(60 more failures, not kept in words)");
        assert_eq!(notes[FIRST_NOTES + 1], "failure 90");
        assert_eq!(notes.last().map(String::as_str), Some("failure 99"));
        assert_eq!(ledger.failures(), 100);
    }

    #[test]
    fn a_refused_batch_counts_each_task_once() {
        let ledger = Ledger::leak(1);
        // Ran before the batch failed; dropped before; still to come.
        let (t1, r1) = Tracked::new(ledger, id(9), "batch", true);
        let (t2, r2) = Tracked::new(ledger, id(10), "batch", true);
        let (t3, r3) = Tracked::new(ledger, id(11), "batch", true);
        let (t4, r4) = Tracked::new(ledger, id(12), "batch", true);
        t1.ran();
        drop(t2);
        for r in [&r1, &r2, &r3, &r4] {
            r.either();
        }
        t3.ran();
        drop((t1, t3));
        assert!(!r4.is_resolved());
        drop(t4);
        assert!([&r1, &r2, &r3, &r4].iter().all(|r| r.is_resolved()));
        let totals = ledger.totals();
        assert_eq!(totals.get(C::Accepted), 2);
        assert_eq!(totals.get(C::Ran), 2);
        assert_eq!(totals.get(C::Refused), 2);
        assert_eq!(ledger.failures(), 0);
    }
}
