//! Process-wide helpers: the descriptor limit, the list of open descriptors (for leak
//! checks), and the `SIGPIPE` disposition.
//!
//! All of these act on or observe the whole process, so tests that change or count them
//! should run alone (for example in a child process).

use std::sync::Once;

use crate::{RawFd, Result};

/// The `RLIMIT_NOFILE` limits: `(soft, hard)`. The soft limit is one more than the highest
/// descriptor number `open`, `accept` and friends may return.
pub fn nofile_limit() -> Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a writable `rlimit` for the kernel to fill.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut limit))?;
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Sets the soft `RLIMIT_NOFILE` to `soft`, keeping the hard limit (`EINVAL` above it).
/// Once the soft limit is at or below the number of the highest wanted descriptor, calls
/// that make a descriptor fail with `EMFILE`.
pub fn set_nofile_soft_limit(soft: u64) -> Result<()> {
    let (_, hard) = nofile_limit()?;
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is an initialised `rlimit` that the kernel only reads.
    syscall!(setrlimit(libc::RLIMIT_NOFILE, &limit)).map(drop)
}

/// The descriptors open in this process, ascending, from `/proc/self/fd`.
///
/// Listing the directory needs a descriptor of its own; it is closed again before this
/// returns, and the list keeps only the numbers still open afterwards, so it never appears.
/// Other threads opening or closing descriptors at the same time make the answer a blur.
pub fn open_fds() -> Result<Vec<RawFd>> {
    let entries = std::fs::read_dir("/proc/self/fd")
        .map_err(|error| crate::Errno(error.raw_os_error().unwrap_or(libc::EIO)))?;
    let mut listed: Vec<RawFd> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The `ReadDir` is gone here, so its own descriptor is closed and fails the check below.
    listed.retain(|&fd| is_open(fd));
    listed.sort_unstable();
    Ok(listed)
}

/// How many descriptors this process has open (see [`open_fds`]).
pub fn open_fd_count() -> Result<usize> {
    open_fds().map(|fds| fds.len())
}

/// Whether `fd` is an open descriptor of this process (`fcntl(F_GETFD)` succeeds).
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: `fcntl` with `F_GETFD` takes only integers and changes nothing.
    syscall!(fcntl(fd, libc::F_GETFD)).is_ok()
}

/// Makes sure `SIGPIPE` is ignored process-wide, so a write to a pipe whose reader is gone
/// fails with `EPIPE` instead of killing the process. Runs once; a handler the host installed
/// (anything other than the default action) is left alone.
pub fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: reading the current disposition (null new action) and installing
        // `SIG_IGN` (no handler code of ours runs in signal context) are both sound;
        // `action` is a zeroed, valid `sigaction` written by the kernel.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut action) == 0
                && action.sa_sigaction == libc::SIG_DFL
            {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
        }
    });
}

/// Puts `SIGPIPE` back to its default action (terminate the process), undoing the Rust
/// runtime's `SIG_IGN`. Only for tests that prove the write wrappers never raise it; run them
/// in a child process, since the disposition is process-wide.
pub fn restore_default_sigpipe() {
    // SAFETY: installing `SIG_DFL` runs no code of ours in signal context.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Whether `SIGPIPE` is currently ignored (`SIG_IGN`).
pub fn sigpipe_ignored() -> bool {
    // SAFETY: a null new action only reads the disposition into the zeroed, valid `action`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut action) == 0
            && action.sa_sigaction == libc::SIG_IGN
    }
}

extern "C" fn ignore_signal(_signal: libc::c_int) {}

/// Installs a handler that does nothing for `signal`, without `SA_RESTART`, so that the
/// signal interrupts blocking calls (`EINTR`) instead of being ignored or killing the
/// process. Only for tests of `EINTR` paths; the disposition is process-wide.
pub fn install_interrupting_handler(signal: libc::c_int) -> Result<()> {
    // SAFETY: `action` is a zeroed, valid `sigaction` whose handler is a plain `extern "C"`
    // function that touches nothing, so it is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        syscall!(sigaction(signal, &action, std::ptr::null_mut())).map(drop)
    }
}

/// `pthread_kill(thread, signal)`: sends `signal` to one thread of this process, for
/// example the `pthread_t` of a `std` thread
/// (`std::os::unix::thread::JoinHandleExt::as_pthread_t`). The thread must not have been
/// joined yet. Fails with the error number `pthread_kill` returns.
pub fn signal_thread(thread: libc::pthread_t, signal: libc::c_int) -> Result<()> {
    // SAFETY: the caller passes a thread of this process that has not been joined, so the
    // handle is valid; `pthread_kill` touches no memory of ours.
    match unsafe { libc::pthread_kill(thread, signal) } {
        0 => Ok(()),
        error => Err(crate::Errno(error)),
    }
}
