//! A counting global allocator: live heap bytes per OS thread and their peak, so that a
//! simulated run (one world on one OS thread at a time) can report how much heap it needed.
//!
//! A binary opts in with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`;
//! without it every figure here reads zero and [`installed`] is `false`. Counting costs two
//! thread-local additions per allocation. Memory freed on another thread than the one that
//! allocated it lowers that other thread's count, so per-thread figures are exact only for
//! work that stays on one thread, as a simulated world does. Stacks that are not heap
//! allocations (for example mmap-ed coroutine stacks) are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The system allocator, counting bytes per thread.
pub struct CountingAlloc;

thread_local! {
    // Const-initialised and without destructors, so they stay usable while a thread
    // exits and the allocator is still called.
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<i64> = const { Cell::new(0) };
}

/// Set by the first counted allocation.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The largest per-run peak recorded with [`record_run_peak`] in this process.
static RUN_PEAK_BYTES_MAX: AtomicU64 = AtomicU64::new(0);

fn count(delta: i64) {
    let _ = LIVE_BYTES.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK_BYTES.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

fn mark_installed() {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract (layout, pointer provenance, alignment) is `System`'s; the
// counting around it only touches thread-local integers and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        mark_installed();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        mark_installed();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        new_ptr
    }
}

/// Whether the counting allocator is this process's global allocator (and has been used).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Starts a measurement on this thread: resets the thread's peak to its current live
/// bytes and returns them, for [`thread_peak_since`].
pub fn thread_mark() -> i64 {
    let live = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|peak| peak.set(live));
    live
}

/// The most heap bytes this thread held above `mark` since [`thread_mark`] returned it.
pub fn thread_peak_since(mark: i64) -> u64 {
    PEAK_BYTES.with(Cell::get).saturating_sub(mark).max(0) as u64
}

/// Records one run's peak; [`run_peak_bytes_max`] returns the largest recorded.
pub fn record_run_peak(bytes: u64) {
    RUN_PEAK_BYTES_MAX.fetch_max(bytes, Ordering::Relaxed);
}

/// The largest per-run peak recorded in this process, or `None` when the counting
/// allocator is not installed (then nothing was measured).
pub fn run_peak_bytes_max() -> Option<u64> {
    installed().then(|| RUN_PEAK_BYTES_MAX.load(Ordering::Relaxed))
}
