//! A bounded multi-producer multi-consumer ring (Dmitry Vyukov's array
//! queue, the design of crossbeam's `ArrayQueue` and of crossbeam-channel's
//! array flavor), whose tail word also carries a **closed bit**.
//!
//! Why not crossbeam's `ArrayQueue`: a pool must refuse every task once
//! `release` has returned, and see every task it admitted before. With
//! `ArrayQueue` that took a second word (a count of pushes in flight with
//! the closed bit on top): two more read-modify-writes per submit on a
//! line every submitter writes, which profiles showed as most of `submit`'s
//! own time. Here the bit sits in the tail: a push's one compare-and-swap
//! of the tail either claims a slot of an open ring or fails on a closed
//! one, and once [`Ring::close`] has set the bit no push can claim a slot.
//! A push that claimed its slot before is still counted by the tail, so the
//! ring is not empty to anyone who looks, and [`Ring::pop`] waits the few
//! instructions its write takes. (crossbeam-channel marks a disconnected
//! channel the same way; its array flavor cannot be used without its
//! channel, whose blocking machinery the pool has its own of.)
//!
//! Each slot has a stamp: `lap | index` while it waits for the push of that
//! lap, `lap | index + 1` once written; a pop sets it to the next lap. A
//! push or pop compares the stamp with the tail or head it read to know
//! whether the slot is ready for it, and publishes the value (or the room)
//! with the stamp's release store.

use super::UnsafeCell;
use crate::sync::atomic::{fence, AtomicUsize, Ordering};
use crossbeam_utils::{Backoff, CachePadded};
use std::fmt;
use std::mem::MaybeUninit;

/// Why a push was refused; the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused<T> {
    /// Every slot holds a value.
    Full(T),
    /// [`Ring::close`] was called (and no [`Ring::reopen`] since).
    Closed(T),
}

impl<T> Refused<T> {
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn into_inner(self) -> T {
        match self {
            Refused::Full(value) | Refused::Closed(value) => value,
        }
    }
}

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// See the module docs.
pub(crate) struct Ring<T> {
    /// The next slot to pop: `lap | index`. Its own cache line: workers
    /// write it, submitters write the tail.
    head: CachePadded<AtomicUsize>,
    /// The next slot to push: `lap | closed | index`.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    /// The closed bit of the tail: above every index.
    mark_bit: usize,
    /// What a lap adds to a stamp: above the closed bit.
    one_lap: usize,
}

// SAFETY: the ring hands each value from the thread that pushed it to the
// one thread that pops it (the stamps' release and acquire order the write
// before the read), so it is `Send` and `Sync` whenever the values may move
// between threads.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; no `&T` is ever shared through the ring.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `cap` slots.
    ///
    /// # Panics
    /// If `cap` is 0 or so large that the laps would not fit a word.
    pub(crate) fn new(cap: usize) -> Ring<T> {
        assert!(cap > 0, "a ring needs a slot");
        let mark_bit = (cap + 1)
            .checked_next_power_of_two()
            .expect("ring capacity too large");
        let one_lap = mark_bit.checked_mul(2).expect("ring capacity too large");
        let slots = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            cap,
            mark_bit,
            one_lap,
        }
    }

    /// Pushes `value` at the tail, or gives it back: the ring is full, or
    /// closed. The claim of the slot is a `SeqCst` compare-and-swap of the
    /// tail, in the one total order of `SeqCst` operations (the pool's
    /// pairs rely on it: `PROTOCOL.md`).
    pub(crate) fn push(&self, value: T) -> Result<(), Refused<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return Err(Refused::Closed(value));
            }
            let slot = &self.slots[tail & (self.mark_bit - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                // The slot is free for this lap: claim it.
                let next = self.after(tail);
                match self
                    .tail
                    .compare_exchange(tail, next, Ordering::SeqCst, Ordering::Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the compare-and-swap made this thread the
                        // one owner of the slot until the stamp below: no
                        // other push claims it (the tail moved on), and no
                        // pop reads it before the stamp says it is written.
                        slot.value.with_mut(|cell| unsafe {
                            cell.write(MaybeUninit::new(value));
                        });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => {
                        tail = now;
                        spin(&backoff);
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's value: full, unless a pop
                // took it meanwhile.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(Refused::Full(value));
                }
                spin(&backoff);
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // A pop is taking the slot's last value: wait for its stamp.
                snooze(&backoff);
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Pops the value at the head; `None` when the ring is empty. A value
    /// whose push has claimed its slot but not finished writing it is
    /// waited for (a few instructions, unless its thread was preempted:
    /// then this yields).
    pub(crate) fn pop(&self) -> Option<T> {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[head & (self.mark_bit - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                // Written for this lap: take it.
                let next = self.after(head);
                match self
                    .head
                    .compare_exchange(head, next, Ordering::SeqCst, Ordering::Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the stamp's acquire load saw the push's
                        // release store, so the value is written; the
                        // compare-and-swap made this thread its one reader,
                        // and no push writes the slot again before the stamp
                        // below moves it to the next lap.
                        let value = slot
                            .value
                            .with_mut(|cell| unsafe { cell.read().assume_init() });
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Some(value);
                    }
                    Err(now) => {
                        head = now;
                        spin(&backoff);
                    }
                }
            } else if stamp == head {
                // Not written for this lap: empty, unless a push claimed it.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !self.mark_bit == head {
                    return None;
                }
                snooze(&backoff);
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another pop took this lap's value: catch up.
                snooze(&backoff);
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// The position after `pos` (a head, or a tail without the closed
    /// bit): the next slot of its lap, or the first slot of the next lap.
    #[inline]
    fn after(&self, pos: usize) -> usize {
        if (pos & (self.mark_bit - 1)) + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Closes the ring: from now on every push is refused. Returns false if
    /// it was closed already. Values pushed before stay to be popped.
    pub(crate) fn close(&self) -> bool {
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst) & self.mark_bit == 0
    }

    /// Opens a closed ring again. Returns false if it was open.
    pub(crate) fn reopen(&self) -> bool {
        self.tail.fetch_and(!self.mark_bit, Ordering::SeqCst) & self.mark_bit != 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// Whether no value is in the ring, or being pushed (a push that
    /// claimed its slot counts).
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        tail & !self.mark_bit == head
    }

    /// Values in the ring (pushes that claimed a slot count).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            // A consistent pair: the tail did not move while we read the head.
            if self.tail.load(Ordering::SeqCst) == tail {
                let tail = tail & !self.mark_bit;
                let hix = head & (self.mark_bit - 1);
                let tix = tail & (self.mark_bit - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    self.cap - hix + tix
                } else if tail == head {
                    0
                } else {
                    self.cap
                };
            }
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // `&mut self`: no push or pop is in progress, every claimed slot is
        // written.
        let hix = self.head.load(Ordering::Relaxed) & (self.mark_bit - 1);
        for i in 0..self.len() {
            let index = if hix + i < self.cap {
                hix + i
            } else {
                hix + i - self.cap
            };
            // SAFETY: slots from the head on, `len` of them, hold values
            // written and never read; each is dropped once, here.
            self.slots[index]
                .value
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
        }
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len())
            .field("cap", &self.cap)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A lost compare-and-swap: retry at once, a little later each time. Under
/// loom a scheduling point, so the model explores the other thread's move.
#[inline]
fn spin(backoff: &Backoff) {
    if cfg!(loom) {
        crate::sync::yield_now();
    } else {
        backoff.spin();
    }
}

/// Another thread must move first (write its value, or finish its pop):
/// spin, then yield the core to it (it may have been preempted mid-way).
#[inline]
fn snooze(backoff: &Backoff) {
    if cfg!(loom) {
        crate::sync::yield_now();
    } else {
        backoff.snooze();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Refused, Ring};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::thread;

    #[test]
    fn first_in_first_out_across_laps() {
        let ring = Ring::new(3);
        for lap in 0..5 {
            for i in 0..3 {
                ring.push(lap * 10 + i).unwrap();
            }
            assert_eq!(ring.len(), 3);
            assert_eq!(ring.push(99), Err(Refused::Full(99)));
            for i in 0..3 {
                assert_eq!(ring.pop(), Some(lap * 10 + i));
            }
            assert!(ring.is_empty());
            assert_eq!(ring.pop(), None);
        }
    }

    #[test]
    fn len_counts_across_the_wrap() {
        let ring = Ring::new(4);
        for i in 0..3 {
            ring.push(i).unwrap();
        }
        ring.pop();
        ring.pop();
        ring.push(3).unwrap();
        ring.push(4).unwrap();
        // Head at index 2, tail wrapped to index 1.
        assert_eq!(ring.len(), 3);
        ring.push(5).unwrap();
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.push(6), Err(Refused::Full(6)));
        assert_eq!(
            (0..4).map(|_| ring.pop().unwrap()).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
    }

    #[test]
    fn a_closed_ring_refuses_pushes_and_keeps_what_it_holds() {
        let ring = Ring::new(4);
        ring.push(1).unwrap();
        assert!(ring.close());
        assert!(!ring.close(), "closed once");
        assert!(ring.is_closed());
        assert_eq!(ring.push(2), Err(Refused::Closed(2)));
        assert_eq!(ring.len(), 1);
        assert!(!ring.is_empty());
        assert_eq!(ring.pop(), Some(1));
        assert!(ring.is_empty());
        assert!(ring.reopen());
        assert!(!ring.reopen(), "opened once");
        ring.push(3).unwrap();
        assert_eq!(ring.pop(), Some(3));
    }

    #[test]
    fn a_full_closed_ring_says_closed() {
        let ring = Ring::new(1);
        ring.push(1).unwrap();
        ring.close();
        assert_eq!(ring.push(2), Err(Refused::Closed(2)));
    }

    /// Counts its drops.
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_the_ring_drops_what_it_holds_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let ring = Ring::new(3);
        for _ in 0..3 {
            ring.push(Counted(Arc::clone(&drops))).unwrap();
        }
        drop(ring.pop());
        ring.push(Counted(Arc::clone(&drops))).unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(ring);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn every_value_is_popped_once_under_contention() {
        const PRODUCERS: usize = 3;
        const EACH: usize = 20_000;
        let ring = Arc::new(Ring::new(8));
        let seen: Arc<Vec<AtomicUsize>> =
            Arc::new((0..PRODUCERS * EACH).map(|_| AtomicUsize::new(0)).collect());
        let start = Arc::new(Barrier::new(PRODUCERS + 2));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (ring, start) = (Arc::clone(&ring), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for i in 0..EACH {
                        let mut value = p * EACH + i;
                        while let Err(refused) = ring.push(value) {
                            value = refused.into_inner();
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let popped = Arc::new(AtomicUsize::new(0));
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let (ring, start, seen, popped) = (
                    Arc::clone(&ring),
                    Arc::clone(&start),
                    Arc::clone(&seen),
                    Arc::clone(&popped),
                );
                thread::spawn(move || {
                    start.wait();
                    // Each producer's values come out in its order.
                    let mut last = [None::<usize>; PRODUCERS];
                    while popped.load(Ordering::SeqCst) < PRODUCERS * EACH {
                        match ring.pop() {
                            Some(v) => {
                                seen[v].fetch_add(1, Ordering::SeqCst);
                                let p = v / EACH;
                                assert!(last[p].is_none_or(|l| l < v), "out of order");
                                last[p] = Some(v);
                                popped.fetch_add(1, Ordering::SeqCst);
                            }
                            None => thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        for t in producers.into_iter().chain(consumers) {
            t.join().unwrap();
        }
        assert!(seen.iter().all(|n| n.load(Ordering::SeqCst) == 1));
        assert!(ring.is_empty());
    }

    #[test]
    fn close_racing_pushes_loses_nothing_admitted() {
        for _ in 0..200 {
            let ring = Arc::new(Ring::new(64));
            let start = Arc::new(Barrier::new(3));
            let pushers: Vec<_> = (0..2)
                .map(|_| {
                    let (ring, start) = (Arc::clone(&ring), Arc::clone(&start));
                    thread::spawn(move || {
                        start.wait();
                        let mut admitted = 0;
                        for i in 0..32 {
                            match ring.push(i) {
                                Ok(()) => admitted += 1,
                                Err(Refused::Closed(_)) => break,
                                Err(Refused::Full(_)) => unreachable!("64 slots"),
                            }
                        }
                        admitted
                    })
                })
                .collect();
            start.wait();
            ring.close();
            // What the tail admitted before the bit is all there will be.
            let mut drained = 0;
            while ring.pop().is_some() {
                drained += 1;
            }
            let admitted: usize = pushers.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(drained, admitted);
            assert_eq!(ring.push(0), Err(Refused::Closed(0)));
        }
    }
}

#[cfg(all(test, loom))]
mod models {
    //! The ring itself under loom: every interleaving of pushes, pops and a
    //! close on a ring of one or two slots, laps reused included. loom's
    //! `UnsafeCell` fails a model whose read of a slot races its write.

    use super::{Refused, Ring};
    use loom::sync::Arc;
    use loom::thread;

    /// Explores `f` with at most `LOOM_MAX_PREEMPTIONS` preemptions, 3
    /// unless set: the ring's loops are short, so a deeper search than the
    /// pool's models stays quick.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }

    /// Two pushers and a popper on two slots: each value popped once, each
    /// pusher's values in its order.
    #[test]
    fn push_pop_race() {
        model(|| {
            let ring = Arc::new(Ring::new(2));
            let pushers: Vec<_> = [0, 10]
                .into_iter()
                .map(|base| {
                    let ring = Arc::clone(&ring);
                    thread::spawn(move || {
                        ring.push(base).unwrap();
                    })
                })
                .collect();
            let popper = {
                let ring = Arc::clone(&ring);
                thread::spawn(move || ring.pop())
            };
            for t in pushers {
                t.join().unwrap();
            }
            let mut got: Vec<i32> = popper.join().unwrap().into_iter().collect();
            while let Some(v) = ring.pop() {
                got.push(v);
            }
            got.sort_unstable();
            assert_eq!(got, [0, 10]);
        });
    }

    /// A close racing two pushes: every push admitted before the bit is
    /// popped by the drain that follows the close, every later one refused
    /// as closed.
    #[test]
    fn close_race() {
        model(|| {
            let ring = Arc::new(Ring::new(2));
            let pusher = {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    let first = ring.push(1);
                    let second = ring.push(2);
                    [first.is_ok(), second.is_ok()]
                })
            };
            assert!(ring.close());
            let mut drained = Vec::new();
            while let Some(v) = ring.pop() {
                drained.push(v);
            }
            let admitted = pusher.join().unwrap();
            // Pushes after the drain are refused, so the drain saw them all.
            let expected: Vec<i32> = [1, 2]
                .into_iter()
                .zip(admitted)
                .filter_map(|(v, ok)| ok.then_some(v))
                .collect();
            assert_eq!(drained, expected);
            assert_eq!(ring.push(3), Err(Refused::Closed(3)));
        });
    }

    /// One slot, reused lap after lap by a producer and a consumer: values
    /// arrive in order and intact; a push into the full slot is refused
    /// only while it is full.
    #[test]
    fn full_ring_and_slot_reuse_across_laps() {
        model(|| {
            let ring = Arc::new(Ring::new(1));
            let producer = {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    for v in 1..=3 {
                        let mut value = v;
                        loop {
                            match ring.push(value) {
                                Ok(()) => break,
                                Err(Refused::Full(back)) => {
                                    value = back;
                                    thread::yield_now();
                                }
                                Err(Refused::Closed(_)) => unreachable!("never closed"),
                            }
                        }
                    }
                })
            };
            let mut got = Vec::new();
            while got.len() < 3 {
                match ring.pop() {
                    Some(v) => got.push(v),
                    None => thread::yield_now(),
                }
            }
            producer.join().unwrap();
            assert_eq!(got, [1, 2, 3]);
            assert!(ring.is_empty());
        });
    }

    /// Two poppers race for one value: one gets it, the other sees empty.
    #[test]
    fn pops_race_for_one_value() {
        model(|| {
            let ring = Arc::new(Ring::new(1));
            ring.push(7).unwrap();
            let other = {
                let ring = Arc::clone(&ring);
                thread::spawn(move || ring.pop())
            };
            let mine = ring.pop();
            let theirs = other.join().unwrap();
            assert_eq!(mine.into_iter().chain(theirs).collect::<Vec<_>>(), [7]);
            // The slot is free for the next lap.
            ring.push(8).unwrap();
            assert_eq!(ring.pop(), Some(8));
        });
    }
}
