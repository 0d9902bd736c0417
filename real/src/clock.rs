//! The clock as the kernel keeps it, for a program that replaces the C library's
//! `clock_gettime` with its own (edgesim's `mio` crate offers one that serves a simulated
//! world's virtual time; see its `virtual_clock!` macro).
//!
//! Such a replacement cannot call the C library's function, which it hides, so it asks the
//! kernel directly with the raw `clock_gettime` syscall. That skips the vDSO fast path
//! (tens of nanoseconds more per reading), which only the programs that opt in pay.

/// `clock_gettime(clock, tp)`: writes `virtual_ns` into `*tp` when it is `Some`, otherwise
/// the kernel's reading of `clock` (raw syscall). Returns `0`, or `-1` with `errno` set, as
/// the C function does.
///
/// # Safety
///
/// `tp` must be valid for writing one `timespec`, as the C function requires.
pub unsafe fn clock_gettime(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
    virtual_ns: Option<u64>,
) -> libc::c_int {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    match virtual_ns {
        Some(ns) => {
            let value = libc::timespec {
                tv_sec: (ns / NANOS_PER_SEC) as libc::time_t,
                tv_nsec: (ns % NANOS_PER_SEC) as libc::c_long,
            };
            // SAFETY: the caller promises `tp` is valid for writing one `timespec`.
            unsafe { tp.write(value) };
            0
        }
        // SAFETY: the syscall writes one `timespec` through `tp`, which the caller promises
        // is valid for that; it fails with `EFAULT` rather than writing elsewhere otherwise.
        None => unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as libc::c_int },
    }
}
