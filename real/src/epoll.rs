//! epoll: create an instance, change its interest list, wait for events.
//!
//! Event bits and the user data word are passed through unchanged (`u32` as in
//! `<sys/epoll.h>`, `u64` for `epoll_event.data`), so the caller's own flag type decides what
//! they mean.

use std::cell::RefCell;
use std::time::Duration;

use crate::{Errno, RawFd, Result};

/// An `epoll_ctl` operation.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum CtlOp {
    /// `EPOLL_CTL_ADD`: register a descriptor.
    Add,
    /// `EPOLL_CTL_MOD`: change a registration's interest and data.
    Mod,
    /// `EPOLL_CTL_DEL`: remove a registration (interest and data are ignored).
    Del,
}

/// `epoll_create1(EPOLL_CLOEXEC)`: a new epoll instance.
pub fn epoll_create() -> Result<RawFd> {
    // SAFETY: `epoll_create1` takes only a flag word and touches no memory of ours.
    syscall!(epoll_create1(libc::EPOLL_CLOEXEC))
}

/// `epoll_ctl(epfd, op, fd, {events, data})`.
///
/// The kernel's validity rules apply unchanged (`EEXIST`, `ENOENT`, `EBADF`, `EPERM`,
/// `EINVAL`, `ELOOP`); nothing is checked here first.
pub fn epoll_ctl(epfd: RawFd, op: CtlOp, fd: RawFd, events: u32, data: u64) -> Result<()> {
    let op = match op {
        CtlOp::Add => libc::EPOLL_CTL_ADD,
        CtlOp::Mod => libc::EPOLL_CTL_MOD,
        CtlOp::Del => libc::EPOLL_CTL_DEL,
    };
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: `event` is a valid, initialised `epoll_event` that lives across the call; the
    // kernel only reads it (and ignores it for DEL).
    syscall!(epoll_ctl(epfd, op, fd, &mut event)).map(drop)
}

/// The longest timeout `epoll_wait` takes, in milliseconds (`i32::MAX`, about 24.8 days).
/// Longer timeouts are clamped to it.
pub const TIMEOUT_MS_MAX: i32 = i32::MAX;

/// The `epoll_wait` timeout argument for `timeout`: `-1` for `None` (wait forever),
/// otherwise whole milliseconds rounded **up**, so that a sub-millisecond timeout still
/// waits instead of turning into a busy poll; `Some(Duration::ZERO)` stays `0`.
pub fn timeout_ms(timeout: Option<Duration>) -> i32 {
    let Some(timeout) = timeout else {
        return -1;
    };
    let nanos_per_ms = 1_000_000u128;
    let ms = timeout.as_nanos().div_ceil(nanos_per_ms);
    i32::try_from(ms).unwrap_or(TIMEOUT_MS_MAX)
}

/// The most events one [`epoll_wait`] call asks the kernel for, whatever `max_events` says.
/// Returning fewer events than are ready is always allowed (the rest stay ready), and the
/// bound keeps the per-thread buffer small even when a caller passes a huge `max_events`.
pub const EVENTS_PER_CALL_MAX: usize = 4096;

/// The largest `max_events` Linux accepts (`EP_MAX_EVENTS`: `INT_MAX` divided by the size of
/// one `epoll_event`); larger values fail with `EINVAL`, as they do in the kernel.
pub const MAX_EVENTS_LIMIT: usize = i32::MAX as usize / std::mem::size_of::<libc::epoll_event>();

thread_local! {
    // The kernel fills an array of `epoll_event`s; the caller wants its own event type. One
    // reusable buffer per thread keeps `epoll_wait` free of allocation after the first calls.
    static SCRATCH: RefCell<Vec<libc::epoll_event>> = const { RefCell::new(Vec::new()) };
}

/// `epoll_wait(epfd, events, max_events, timeout)`.
///
/// Clears `out`, then pushes `map(events, data)` for every event the kernel returned, in the
/// kernel's order, and returns how many there were (`0` when the timeout expired). The
/// timeout is converted by [`timeout_ms`]. `max_events` of `0` or above
/// [`MAX_EVENTS_LIMIT`] fails with `EINVAL` as the syscall does; at most
/// [`EVENTS_PER_CALL_MAX`] events are asked for. `EINTR` is returned, not retried.
pub fn epoll_wait<T>(
    epfd: RawFd,
    out: &mut Vec<T>,
    max_events: usize,
    timeout: Option<Duration>,
    mut map: impl FnMut(u32, u64) -> T,
) -> Result<usize> {
    out.clear();
    if max_events > MAX_EVENTS_LIMIT {
        return Err(Errno(libc::EINVAL));
    }
    let max_events = max_events.min(EVENTS_PER_CALL_MAX);
    let timeout = timeout_ms(timeout);
    SCRATCH.with(|scratch| {
        // `map` runs while the buffer is borrowed; should it ever call `epoll_wait` itself,
        // that inner call takes a fresh buffer instead of panicking on the borrow.
        let mut fresh = Vec::new();
        let mut borrowed = scratch.try_borrow_mut();
        let buffer = match borrowed.as_mut() {
            Ok(buffer) => &mut **buffer,
            Err(_) => &mut fresh,
        };
        buffer.clear();
        buffer.reserve(max_events);
        // SAFETY: `buffer` has room for at least `max_events` events (reserved above) and
        // the kernel writes at most `max_events` of them into that spare capacity.
        let count = syscall!(epoll_wait(
            epfd,
            buffer.as_mut_ptr(),
            max_events as libc::c_int,
            timeout
        ))? as usize;
        debug_assert!(count <= max_events);
        // SAFETY: `epoll_wait` initialised exactly the first `count` entries.
        unsafe { buffer.set_len(count) };
        out.extend(buffer.drain(..).map(|event| {
            // Copy the fields out of the packed struct before use.
            let (events, data) = (event.events, event.u64);
            map(events, data)
        }));
        Ok::<usize, Errno>(count)
    })
}
