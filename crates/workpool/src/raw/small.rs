//! A `FnOnce()` stored in place when it is a few words, boxed otherwise:
//! the storage of a plain task (`pool/task.rs`).
//!
//! Why: a `Box<dyn FnOnce()>` per task is a `malloc` on the submitter and a
//! `free` on the worker, into the worker's thread cache, so the submitter's
//! next `malloc` takes glibc's slow path: a third of a submitter's time in
//! profiles of a stream of empty tasks. Most closures given to a pool
//! capture a handle or two (an `Arc`, a sender, an index), which fit in
//! [`WORDS`] words: those travel by value, in the queue's slot, and a
//! steady stream of them allocates nothing (`tests/allocations.rs` counts).
//! Larger closures, or ones aligned above a word, are boxed and the box
//! travels the same way.

use std::any::TypeId;
use std::fmt;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

/// Words of a closure stored in place. Three: an `Arc` and two integers, or
/// a boxed `dyn FnOnce` (two) and one more. Each word more makes every
/// queue slot a word bigger.
pub(crate) const WORDS: usize = 3;

/// What a [`SmallFn`] knows of the closure it holds.
struct VTable {
    /// Takes the closure out of the storage and calls it.
    call: unsafe fn(*mut u8),
    /// Drops the closure in the storage.
    drop: unsafe fn(*mut u8),
    /// The closure's type (boxed or not), to give it back as what it was.
    type_id: fn() -> TypeId,
    /// Whether the storage holds a `Box` of the closure.
    boxed: bool,
}

/// See the module docs.
pub(crate) struct SmallFn {
    /// The closure (or its box), written at the start. Words, so that it is
    /// aligned as a word.
    data: MaybeUninit<[usize; WORDS]>,
    vtable: &'static VTable,
}

// SAFETY: `SmallFn::new` takes only `Send` closures.
unsafe impl Send for SmallFn {}

/// Whether `F` fits in place.
const fn fits<F>() -> bool {
    mem::size_of::<F>() <= mem::size_of::<[usize; WORDS]>()
        && mem::align_of::<F>() <= mem::align_of::<[usize; WORDS]>()
}

/// The vtables of a closure type `F`: stored in place, or boxed.
struct For<F>(std::marker::PhantomData<F>);

impl<F: FnOnce() + Send + 'static> For<F> {
    const IN_PLACE: VTable = VTable {
        call: call_as::<F>,
        drop: drop_as::<F>,
        type_id: TypeId::of::<F>,
        boxed: false,
    };
    const BOXED: VTable = VTable {
        call: call_as::<Box<F>>,
        drop: drop_as::<Box<F>>,
        type_id: TypeId::of::<F>,
        boxed: true,
    };
}

/// # Safety
/// `data` holds a `G`, which is not used again.
unsafe fn call_as<G: FnOnce()>(data: *mut u8) {
    // SAFETY: the caller's promise; the read moves it out, so a panic of
    // the call drops nothing twice.
    let f = unsafe { ptr::read(data.cast::<G>()) };
    f();
}

/// # Safety
/// `data` holds a `G`, which is not used again.
unsafe fn drop_as<G>(data: *mut u8) {
    // SAFETY: the caller's promise.
    unsafe { ptr::drop_in_place(data.cast::<G>()) }
}

impl SmallFn {
    /// Stores `f`, in place if it fits, else boxed.
    #[inline]
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> SmallFn {
        if fits::<F>() {
            SmallFn::store(f, &For::<F>::IN_PLACE)
        } else {
            SmallFn::store(Box::new(f), &For::<F>::BOXED)
        }
    }

    #[inline]
    fn store<G>(g: G, vtable: &'static VTable) -> SmallFn {
        assert!(fits::<G>());
        let mut data = MaybeUninit::<[usize; WORDS]>::uninit();
        // SAFETY: `G` fits the storage in size and alignment (asserted, and
        // decided at compile time), and the storage is ours.
        unsafe { data.as_mut_ptr().cast::<G>().write(g) };
        SmallFn { data, vtable }
    }

    /// Whether the closure is boxed (too large to store in place).
    #[cfg(test)]
    pub(crate) fn is_boxed(&self) -> bool {
        self.vtable.boxed
    }

    /// Calls the closure. A panic of the closure propagates; the closure
    /// is gone either way.
    #[inline]
    pub(crate) fn call(self) {
        let mut this = ManuallyDrop::new(self);
        let call = this.vtable.call;
        // SAFETY: the storage holds the type `call` was made for (`new`),
        // and `this` is never dropped, so it is taken out once.
        unsafe { call(this.data.as_mut_ptr().cast()) }
    }

    /// The closure given back as the `F` it was made from, or `self` if it
    /// is of another type.
    pub(crate) fn downcast<F: 'static>(self) -> Result<F, SmallFn> {
        if (self.vtable.type_id)() != TypeId::of::<F>() {
            return Err(self);
        }
        let mut this = ManuallyDrop::new(self);
        let data = this.data.as_mut_ptr().cast::<u8>();
        // SAFETY: the type ids match, so the storage holds an `F` (in place)
        // or a `Box<F>` (`boxed`), made by `new`; `this` is never dropped,
        // so it is moved out once.
        unsafe {
            if this.vtable.boxed {
                Ok(*ptr::read(data.cast::<Box<F>>()))
            } else {
                Ok(ptr::read(data.cast::<F>()))
            }
        }
    }
}

impl Drop for SmallFn {
    fn drop(&mut self) {
        // SAFETY: a `SmallFn` still owned holds the closure `drop` was made
        // for; `call` and `downcast` never let it drop.
        unsafe { (self.vtable.drop)(self.data.as_mut_ptr().cast()) }
    }
}

impl fmt::Debug for SmallFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmallFn")
            .field("boxed", &self.vtable.boxed)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{SmallFn, WORDS};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_closure_of_a_few_words_is_stored_in_place_and_called_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, n) = (Arc::clone(&calls), 5usize);
        let f = SmallFn::new(move || {
            c.fetch_add(n, Ordering::SeqCst);
        });
        assert!(!f.is_boxed());
        f.call();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        // The closure and its `Arc` are gone.
        assert_eq!(Arc::strong_count(&calls), 1);
    }

    #[test]
    fn a_large_or_overaligned_closure_is_boxed_and_still_works() {
        let big = [7u64; WORDS + 1];
        let out = Arc::new(AtomicUsize::new(0));
        let o = Arc::clone(&out);
        let f = SmallFn::new(move || {
            o.store(big.iter().sum::<u64>() as usize, Ordering::SeqCst);
        });
        assert!(f.is_boxed());
        f.call();
        assert_eq!(out.load(Ordering::SeqCst), 7 * (WORDS + 1));

        #[repr(align(32))]
        struct Aligned(u8);
        let aligned = Aligned(3);
        let o = Arc::clone(&out);
        // The whole value, not just its field (closures capture by place).
        let f = SmallFn::new(move || {
            let whole = aligned;
            o.store(usize::from(whole.0), Ordering::SeqCst);
        });
        assert!(f.is_boxed());
        f.call();
        assert_eq!(out.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn dropped_uncalled_drops_what_it_captured() {
        for words in [1, WORDS + 2] {
            let captured = Arc::new(());
            let c = Arc::clone(&captured);
            let pad = vec![0u8; words];
            let f = SmallFn::new(move || drop((c, pad)));
            assert_eq!(Arc::strong_count(&captured), 2);
            drop(f);
            assert_eq!(Arc::strong_count(&captured), 1);
        }
    }

    /// Stores `f` and asks for it back as its own type.
    fn round_trip<F: FnOnce() + Send + 'static>(f: F) -> (bool, F) {
        let stored = SmallFn::new(f);
        let boxed = stored.is_boxed();
        (boxed, stored.downcast::<F>().expect("its own type"))
    }

    #[test]
    fn a_closure_comes_back_as_its_own_type_only() {
        let n = 41u64;
        let other = SmallFn::new(move || assert_eq!(n, 41));
        assert!(other.downcast::<fn()>().is_err(), "another type");

        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let (boxed, back) = round_trip(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!boxed);
        back();
        let big = [1usize; WORDS + 3];
        let c = Arc::clone(&calls);
        let (boxed, back) = round_trip(move || {
            c.fetch_add(big.iter().sum::<usize>(), Ordering::SeqCst);
        });
        assert!(boxed);
        back();
        assert_eq!(calls.load(Ordering::SeqCst), 1 + WORDS + 3);
        assert_eq!(Arc::strong_count(&calls), 1);
    }

    #[test]
    fn a_panicking_closure_drops_its_captures_once() {
        let captured = Arc::new(());
        let c = Arc::clone(&captured);
        let f = SmallFn::new(move || {
            let _c = c;
            panic!("boom");
        });
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call())).is_err());
        assert_eq!(Arc::strong_count(&captured), 1);
    }
}
