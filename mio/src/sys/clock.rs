//! Which clock readings the `virtual_clock!` macro serves from the simulated world.

/// The virtual time to report for `clock`: only `CLOCK_MONOTONIC` (what `std::time::Instant`
/// and so tokio read), and only while a simulated world runs on the calling OS thread.
pub fn virtual_now_ns(clock: libc::clockid_t) -> Option<u64> {
    if clock == libc::CLOCK_MONOTONIC {
        sim::sched::virtual_now_ns()
    } else {
        None
    }
}
