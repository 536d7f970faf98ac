//! `CancelToken`: cooperative cancellation, with child tokens for fan-out
//! (like Go's `context.WithCancel`).

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{Arc, Mutex};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A flag that says "stop": set once by [`cancel`](Self::cancel), seen by
/// every clone and by every [child](Self::child).
///
/// A task built with [`Pool::task`](crate::Pool::task) gets one: it is
/// cancelled by the task's handle, by its deadline, and by
/// [`release`](crate::Pool::release). Cancellation is cooperative: a task
/// that has started stops only if it looks, with
/// [`is_cancelled`](Self::is_cancelled), or waits on the token instead of
/// sleeping ([`wait_timeout`](Self::wait_timeout),
/// [`cancelled`](Self::cancelled)). A task that has not started when its
/// token is cancelled never runs.
///
/// Cloning is cheap; clones are the same token.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workpool::CancelToken;
///
/// let parent = CancelToken::new();
/// let child = parent.child();
/// assert!(!child.is_cancelled());
/// parent.cancel();
/// assert!(child.is_cancelled());
/// // Returns at once: the token is cancelled.
/// assert!(child.wait_timeout(Duration::from_secs(10)));
/// ```
#[derive(Clone)]
pub struct CancelToken {
    node: Arc<Node>,
}

pub(crate) struct Node {
    cancelled: AtomicBool,
    /// A token is cancelled when it, or any of its parents, is.
    parents: Vec<Arc<Node>>,
    /// Who waits for this token or for a descendant of it: cancelling this
    /// node wakes them all.
    waiters: Mutex<Vec<(u64, Waiter)>>,
}

enum Waiter {
    Thread(Thread),
    Task(Waker),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Task(waker) => waker.wake(),
        }
    }
}

/// Numbers waiters, so that each can remove itself (an id, not part of any
/// protocol: std's atomic even under loom).
static NEXT_WAITER: AtomicU64 = AtomicU64::new(0);

impl CancelToken {
    /// A new token, not cancelled, with no parent.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = workpool::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn new() -> CancelToken {
        CancelToken::with_parents(Vec::new())
    }

    pub(crate) fn with_parents(parents: Vec<&CancelToken>) -> CancelToken {
        CancelToken {
            node: Arc::new(Node {
                cancelled: AtomicBool::new(false),
                parents: parents.into_iter().map(|p| Arc::clone(&p.node)).collect(),
                waiters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A new token that is cancelled when this one is (and may also be
    /// cancelled on its own, without touching this one).
    ///
    /// # Examples
    ///
    /// ```
    /// let parent = workpool::CancelToken::new();
    /// let child = parent.child();
    /// child.cancel();
    /// assert!(!parent.is_cancelled());
    /// ```
    pub fn child(&self) -> CancelToken {
        CancelToken::with_parents(vec![self])
    }

    /// Cancels this token and every token derived from it, and wakes whoever
    /// waits on them. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let token = workpool::CancelToken::new();
    /// let child = token.child();
    /// let waiter = std::thread::spawn(move || child.wait_timeout(Duration::from_secs(60)));
    /// token.cancel();
    /// token.cancel(); // idempotent
    /// assert!(token.is_cancelled());
    /// assert!(waiter.join().unwrap(), "woken by the cancel, long before 60 s");
    /// ```
    pub fn cancel(&self) {
        if self.node.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let waiters = std::mem::take(&mut *lock(&self.node.waiters));
        for (_, waiter) in waiters {
            waiter.wake();
        }
    }

    /// Cancels this token at `at` (at once if `at` is past), unless it is
    /// cancelled before: a deadline for whatever waits on the token, with
    /// no thread of the caller's (tokio-util's `CancellationToken` with a
    /// `sleep_until`, Go's `context.WithDeadline`). One thread of the
    /// process serves every token's timer; it holds a timer's token only
    /// weakly, so dropping the token drops it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let token = workpool::CancelToken::new();
    /// token.cancel_at(Instant::now() + Duration::from_millis(10));
    /// assert!(token.wait_timeout(Duration::from_secs(60)), "cancelled at its instant");
    /// ```
    pub fn cancel_at(&self, at: Instant) {
        if self.is_cancelled() {
            return;
        }
        if at <= Instant::now() {
            self.cancel();
            return;
        }
        crate::timer::cancel_at(self, at);
    }

    /// Cancels this token once `after` has passed: see
    /// [`cancel_at`](Self::cancel_at).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let token = workpool::CancelToken::new();
    /// token.cancel_after(Duration::from_millis(10));
    /// assert!(!token.is_cancelled());
    /// assert!(token.wait_timeout(Duration::from_secs(60)), "cancelled after 10 ms");
    /// ```
    pub fn cancel_after(&self, after: Duration) {
        // An instant past what `Instant` holds is never.
        if let Some(at) = Instant::now().checked_add(after) {
            self.cancel_at(at);
        }
    }

    /// A weak reference, for the timer thread.
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Node> {
        Arc::downgrade(&self.node)
    }

    /// How many hold this token's node (its clones, its children, timers).
    #[cfg(test)]
    pub(crate) fn strong_count(&self) -> usize {
        Arc::strong_count(&self.node)
    }

    /// The token of a node the timer thread kept.
    pub(crate) fn from_node(node: Arc<Node>) -> CancelToken {
        CancelToken { node }
    }

    /// Whether this token, or one it derives from, is cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = workpool::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// Blocks until the token is cancelled or `timeout` passes; returns
    /// whether it is cancelled. A task sleeps this way instead of with
    /// `thread::sleep`, so that a cancel ends the sleep at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let token = workpool::CancelToken::new();
    /// assert!(!token.wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.is_cancelled() {
            return true;
        }
        let until = Instant::now().checked_add(timeout);
        let id = self.register(Waiter::Thread(thread::current()));
        let cancelled = loop {
            if self.is_cancelled() {
                break true;
            }
            match until {
                None => thread::park(),
                Some(until) => {
                    let now = Instant::now();
                    if now >= until {
                        break false;
                    }
                    park_timeout(until - now);
                }
            }
        };
        self.deregister(id);
        cancelled
    }

    /// A future that is ready once the token is cancelled. It stores its
    /// waker in the token, which wakes it: no polling, any executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = workpool::CancelToken::new();
    /// token.cancel();
    /// futures_executor::block_on(token.cancelled());
    /// ```
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            token: self,
            id: None,
        }
    }

    /// Wakes `waker` once this token is cancelled, by itself or through a
    /// parent (a cancel before this call wakes nobody: check
    /// [`is_cancelled`](Self::is_cancelled) after it). Returns the id to
    /// [`forget_waker`](Self::forget_waker) it by once it is not needed:
    /// until then the token and each of its parents hold it.
    pub(crate) fn on_cancel(&self, waker: Waker) -> u64 {
        self.register(Waiter::Task(waker))
    }

    /// Forgets the waker registered as `id` by [`on_cancel`](Self::on_cancel).
    pub(crate) fn forget_waker(&self, id: u64) {
        self.deregister(id);
    }

    /// Registers `waiter` on this token and every token it derives from.
    fn register(&self, waiter: Waiter) -> u64 {
        let id = NEXT_WAITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.node.each(&mut |node| {
            let waiter = match &waiter {
                Waiter::Thread(thread) => Waiter::Thread(thread.clone()),
                Waiter::Task(waker) => Waiter::Task(waker.clone()),
            };
            lock(&node.waiters).push((id, waiter));
        });
        id
    }

    fn deregister(&self, id: u64) {
        self.node.each(&mut |node| {
            lock(&node.waiters).retain(|(other, _)| *other != id);
        });
    }
}

impl Node {
    /// Whether this node or an ancestor is cancelled. Iterative: a chain of
    /// a million children must not overflow the stack. Most tokens have one
    /// parent, followed in a loop; the other parents of a token with
    /// several wait on a stack (allocated only then).
    fn is_cancelled(&self) -> bool {
        let mut found = false;
        self.walk(&mut |node| {
            found = node.cancelled.load(Ordering::SeqCst);
            !found
        });
        found
    }

    /// Calls `f` on this node and every ancestor (an ancestor reached by
    /// two ways, twice).
    fn each(&self, f: &mut dyn FnMut(&Node)) {
        self.walk(&mut |node| {
            f(node);
            true
        });
    }

    /// Visits this node and its ancestors until `visit` returns false.
    fn walk(&self, visit: &mut dyn FnMut(&Node) -> bool) {
        let mut others: Vec<&Node> = Vec::new();
        let mut node = self;
        loop {
            if !visit(node) {
                return;
            }
            match node.parents.split_first() {
                Some((first, rest)) => {
                    others.extend(rest.iter().map(|parent| &**parent));
                    node = first;
                }
                None => match others.pop() {
                    Some(next) => node = next,
                    None => return,
                },
            }
        }
    }
}

impl Drop for Node {
    /// Drops the chain of ancestors this node alone holds one after the
    /// other, instead of each inside its child's drop (which, for a chain
    /// of a million, overflowed the stack).
    fn drop(&mut self) {
        let mut held = std::mem::take(&mut self.parents);
        while let Some(parent) = held.pop() {
            if let Ok(mut node) = Arc::try_unwrap(parent) {
                held.append(&mut node.parents);
            }
        }
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future of [`CancelToken::cancelled`]: ready once the token is
/// cancelled. Dropping it removes its waker from the token.
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled<'a> {
    token: &'a CancelToken,
    id: Option<u64>,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.token.is_cancelled() {
            return Poll::Ready(());
        }
        // Re-register with the latest waker; then look again, so that a
        // cancel between the look above and the registration is not missed.
        if let Some(id) = self.id.take() {
            self.token.deregister(id);
        }
        self.id = Some(self.token.register(Waiter::Task(cx.waker().clone())));
        if self.token.is_cancelled() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.token.deregister(id);
        }
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("token", self.token)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    crate::sync::lock(mutex)
}

/// Parks for at most `timeout`; under loom, which has no clock, until
/// unparked.
fn park_timeout(timeout: Duration) {
    #[cfg(not(loom))]
    thread::park_timeout(timeout);
    #[cfg(loom)]
    {
        let _ = timeout;
        thread::park();
    }
}
