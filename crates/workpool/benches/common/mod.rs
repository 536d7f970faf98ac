//! What the benches share: a count of finished tasks that the submitter
//! waits on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Counts finished tasks; the submitter waits for a target on a condvar.
#[derive(Default)]
pub(crate) struct Done {
    count: AtomicUsize,
    target: AtomicUsize,
    reached: Mutex<bool>,
    wakeup: Condvar,
}

impl Done {
    pub(crate) fn tick(&self) {
        let n = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.target.load(Ordering::Acquire) {
            *self.reached.lock().unwrap() = true;
            self.wakeup.notify_all();
        }
    }

    pub(crate) fn expect(&self, target: usize) {
        *self.reached.lock().unwrap() = false;
        self.count.store(0, Ordering::Release);
        self.target.store(target, Ordering::Release);
    }

    pub(crate) fn wait(&self) {
        let mut reached = self.reached.lock().unwrap();
        while !*reached {
            reached = self.wakeup.wait(reached).unwrap();
        }
    }
}
