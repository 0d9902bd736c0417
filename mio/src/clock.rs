//! `virtual_clock!`: tokio's timers on the simulator's clock.
//!
//! tokio reads time through `std::time::Instant::now()`, which calls the C library's
//! `clock_gettime(CLOCK_MONOTONIC)`. A program that defines its own `clock_gettime`
//! symbol replaces the C library's for every caller in the process (an executable's symbols
//! come first in the dynamic linker's search). The macro defines one that answers
//! `CLOCK_MONOTONIC` with the virtual time of the simulated world running on the calling OS
//! thread, and passes every other reading (other clocks, other threads, no world) to the
//! kernel. So tokio parks for a duration D, mio's `poll` waits D of virtual time in the
//! simulated `epoll_wait`, and tokio's timers fire when the simulator's clock says so.
//!
//! It changes only the executable that invokes the macro (a symbol in a library would not
//! reliably reach the link), so it must be invoked once, at the top level of the test
//! binary's crate (for an integration test, in `tests/it/main.rs`).
//!
//! An `Instant` taken inside a world is virtual time, counted from 0 when the world
//! started; one taken outside is Linux's. Never compare one with the other.

/// Defines `clock_gettime` for this executable so that `CLOCK_MONOTONIC` (and so
/// `std::time::Instant` and tokio's clock) follows the simulated world's virtual time on
/// the OS thread that runs one. Invoke it once, in the test binary's crate root.
#[macro_export]
macro_rules! virtual_clock {
    () => {
        /// `clock_gettime`, answering `CLOCK_MONOTONIC` from the simulated world running on
        /// the calling OS thread (see `mio::virtual_clock!`).
        ///
        /// # Safety
        ///
        /// The C function's contract: `tp` is valid for writing one `timespec`.
        #[no_mangle]
        pub unsafe extern "C" fn clock_gettime(
            clock: $crate::__private::clockid_t,
            tp: *mut $crate::__private::timespec,
        ) -> $crate::__private::c_int {
            let virtual_ns = $crate::__private::virtual_now_ns(clock);
            // SAFETY: the caller's `clock_gettime` contract covers `tp`, passed on as is.
            unsafe { $crate::__private::clock_gettime(clock, tp, virtual_ns) }
        }
    };
}

/// What the macro's expansion names; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::sys::virtual_now_ns;
    pub use libc::{c_int, clockid_t, timespec};
    pub use real::clock::clock_gettime;
}
