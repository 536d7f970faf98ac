//! The process-wide timer behind [`CancelToken::cancel_at`]: one thread for
//! every token of the process, started by the first timer and gone once it
//! has had none for [`LINGER`] (no thread for a program that never asks).
//!
//! It keeps a `Weak` to each token's node: a token dropped before its
//! instant costs a map entry until then, not the token (a request's token
//! with a timer of an hour, dropped after a millisecond, frees its
//! waiters and parents at once). The thread, not a pool, holds these
//! timers, since a token belongs to no pool; it synchronises nothing of
//! a pool's protocol, so it is std's primitives even under loom.

use crate::cancel::CancelToken;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the thread waits, with no timer left, before it ends.
const LINGER: Duration = Duration::from_secs(1);

struct Timers {
    state: Mutex<State>,
    /// The thread sleeps here until its earliest timer; an earlier one
    /// wakes it.
    wakeup: Condvar,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<(Instant, u64), std::sync::Weak<crate::cancel::Node>>,
    seq: u64,
    /// Whether the thread runs (or is being started).
    running: bool,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<Timers> = OnceLock::new();
    TIMERS.get_or_init(|| Timers {
        state: Mutex::new(State::default()),
        wakeup: Condvar::new(),
    })
}

/// Cancels `token` at `at`, unless it is dropped first.
pub(crate) fn cancel_at(token: &CancelToken, at: Instant) {
    let timers = timers();
    let mut state = crate::job::lock(&timers.state);
    let earliest = state
        .entries
        .first_key_value()
        .is_none_or(|(&(first, _), _)| at < first);
    state.seq += 1;
    let seq = state.seq;
    state.entries.insert((at, seq), token.downgrade());
    if state.running {
        if earliest {
            timers.wakeup.notify_one();
        }
        return;
    }
    state.running = true;
    drop(state);
    let started = std::thread::Builder::new()
        .name("workpool-timer".into())
        .spawn(move || run(timers));
    if let Err(error) = started {
        // The timer stays filed: the next `cancel_at` tries again. Nothing
        // else can be done here without a thread, and a panic would be
        // worse than a token cancelled late.
        tracing::error!(%error, "workpool: could not start the token timer thread");
        crate::job::lock(&timers.state).running = false;
    }
}

fn run(timers: &'static Timers) {
    let mut state = crate::job::lock(&timers.state);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(entry) = state.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            drop(state);
            // Cancelled without the timers' lock: a cancel wakes waiters,
            // and a waker may file a timer of its own.
            for node in due.iter().filter_map(std::sync::Weak::upgrade) {
                CancelToken::from_node(node).cancel();
            }
            state = crate::job::lock(&timers.state);
            continue;
        }
        match state.entries.first_key_value() {
            Some((&(at, _), _)) => {
                state = timers
                    .wakeup
                    .wait_timeout(state, at.saturating_duration_since(now))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            None => {
                let (next, waited) = timers
                    .wakeup
                    .wait_timeout(state, LINGER)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state = next;
                if waited.timed_out() && state.entries.is_empty() {
                    state.running = false;
                    return;
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::CancelToken;
    use std::time::Duration;

    #[test]
    fn a_pending_timer_holds_its_token_only_weakly() {
        let parent = CancelToken::new();
        let child = parent.child();
        child.cancel_after(Duration::from_secs(3600));
        // Only `child` holds its node: dropping it frees the node (and
        // what it holds of its parent) long before the hour.
        assert_eq!(child.strong_count(), 1);
        assert_eq!(
            parent.strong_count(),
            2,
            "the parent, and the child's link to it"
        );
        drop(child);
        assert_eq!(parent.strong_count(), 1);
    }
}
