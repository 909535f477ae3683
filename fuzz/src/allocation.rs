//! A global allocator wrapper that counts the bytes each thread allocates, to check the codec's
//! allocation bound. Binaries opt in with `#[global_allocator]`; without it the counter stays
//! at zero and the bound check is vacuous, so every binary that runs the targets installs it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting allocated bytes per thread.
#[derive(Debug, Default)]
pub struct CountingAllocator;

fn count(bytes: usize) {
    // `try_with` fails only while the thread is being torn down; nothing is measured then.
    let _ = ALLOCATED_BYTES.try_with(|total| total.set(total.get().saturating_add(bytes)));
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// thread-local integer and never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `work` and returns its result with the bytes this thread allocated meanwhile (a bound
/// on its peak memory).
pub fn allocated_during<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED_BYTES.with(Cell::get);
    let result = work();
    let after = ALLOCATED_BYTES.with(Cell::get);
    (result, after - before)
}

/// Whether this binary installed the counting allocator (anything allocated is counted).
pub(crate) fn counting_is_active() -> bool {
    let (_, bytes) = allocated_during(|| std::hint::black_box(Vec::<u8>::with_capacity(1)));
    bytes > 0
}
