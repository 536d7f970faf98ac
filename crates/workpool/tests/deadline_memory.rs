//! Deadlines cost a finished task nothing: the maintenance thread forgets
//! a task's deadline once the task has ended, instead of holding its
//! memory (closure and result inline) until the deadline is due.
//!
//! Its own test binary: a counting allocator measures the live bytes of
//! the whole process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;
use workpool::Pool;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter is only added to.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// 16 KiB returned inline from each task, as the cell holds it.
type Block = [u8; 16 * 1024];

#[test]
fn d06_joined_tasks_with_a_far_deadline_leave_no_memory_behind() {
    let pool = Pool::builder()
        .capacity(2)
        .task_deadline(Duration::from_secs(3600))
        .build()
        .unwrap();
    // Warm up: the workers, the maintenance thread, the queue.
    for _ in 0..100 {
        let block: Block = pool.spawn(|| [1u8; 16 * 1024]).unwrap().join().unwrap();
        assert_eq!(block[0], 1);
    }
    let before = LIVE.load(Ordering::Relaxed);
    let tasks = 5_000;
    for _ in 0..tasks {
        let block: Block = pool.spawn(|| [1u8; 16 * 1024]).unwrap().join().unwrap();
        assert_eq!(block[16 * 1024 - 1], 1);
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    println!("{tasks} joined tasks with a 1 h deadline left {grown} bytes live");
    // Before the fix: 5,000 x 16 KiB, about 80 MiB.
    assert!(
        grown < 4 * 1024 * 1024,
        "{tasks} joined tasks left {} KiB live",
        grown / 1024
    );
    pool.release_timeout(Duration::from_secs(10)).unwrap();
}
