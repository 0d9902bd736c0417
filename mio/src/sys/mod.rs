//! The two backends behind every object, and the only module that names them: the
//! simulated kernel (`sim::sys`) when a simulated world runs on the calling OS thread, Linux
//! (the `real` crate and `std`'s sockets) otherwise.
//!
//! Each object picks its backend when it is created and keeps it: a [`Sock`] is a simulated
//! descriptor, a Linux one, or a Linux one that arrived inside a simulated world (through
//! `from_std`, `FromRawFd` or `From<OwnedFd>`), which is kept only to be closed because a
//! real socket cannot take part in a simulated run. A run-time choice rather than a type
//! parameter is what lets mio's own signatures, and so unmodified mio and tokio code, work on
//! both.

// Without both `net` and `os-ext` some socket and pipe helpers have no user.
#![cfg_attr(
    not(all(feature = "net", feature = "os-ext")),
    allow(dead_code, unused_imports)
)]

mod clock;
#[cfg(feature = "os-ext")]
pub(crate) mod pipe;
mod selector;
#[cfg(feature = "net")]
pub(crate) mod tcp;
#[cfg(feature = "net")]
pub(crate) mod udp;
#[cfg(feature = "net")]
pub(crate) mod uds;
mod waker;

pub use clock::virtual_now_ns;
pub(crate) use selector::{Ctl, Selector};
pub(crate) use waker::Waker;

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::ManuallyDrop;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// Where simulated descriptors start when they are shown as raw descriptors (`AsRawFd`,
/// `IntoRawFd`): simulated descriptor `n` is `SIM_FD_BASE + n`. Linux never hands out a
/// descriptor this high (`fs.nr_open` cannot exceed 2^30 - 8 on 64-bit kernels), so a
/// simulated number passed to a real syscall by mistake fails with `EBADF` instead of
/// acting on an unrelated real descriptor that happens to have the same number.
pub const SIM_FD_BASE: RawFd = 1 << 30;

/// The highest `fs.nr_open` Linux accepts on 64-bit (`sysctl_nr_open_max`), so one above
/// the highest descriptor number it can ever hand out.
const LINUX_NR_OPEN_MAX: RawFd = 1_073_741_816;
const _: () = assert!(SIM_FD_BASE > LINUX_NR_OPEN_MAX);

/// Whether objects created now belong to a simulated world.
pub(crate) fn in_world() -> bool {
    sim::sched::in_world()
}

/// The error of a call the simulator does not model.
pub(crate) fn unsupported(call: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("{call}: {why}"))
}

/// The error of every call on a Linux descriptor that arrived inside a simulated world.
fn foreign(made_by: &str) -> io::Error {
    unsupported(
        made_by,
        "inside a simulated world this object holds a Linux descriptor, which cannot take \
         part in the simulated run; create sockets with this crate's constructors instead",
    )
}

/// The simulated kernel's errno as the `io::Error` std and mio return (`EAGAIN` is
/// `WouldBlock`, `EINTR` is `Interrupted`).
fn sim_io<T>(result: sim::kernel::KResult<T>) -> io::Result<T> {
    result.map_err(io::Error::from_raw_os_error)
}

/// Linux's errno, likewise.
fn real_io<T>(result: real::Result<T>) -> io::Result<T> {
    result.map_err(io::Error::from)
}

/// `libc::SHUT_*` for a std `Shutdown`.
fn shut_how(how: Shutdown) -> (libc::c_int, real::io::Shutdown) {
    match how {
        Shutdown::Read => (libc::SHUT_RD, real::io::Shutdown::Read),
        Shutdown::Write => (libc::SHUT_WR, real::io::Shutdown::Write),
        Shutdown::Both => (libc::SHUT_RDWR, real::io::Shutdown::Both),
    }
}

/// A descriptor of the world running on this OS thread, closed on drop.
pub(crate) struct SimFd(pub(crate) i32);

impl Drop for SimFd {
    fn drop(&mut self) {
        // Dropped after its world ended, a descriptor has no kernel left to be closed in:
        // the world and its fd table are gone.
        if in_world() {
            let _ = sim::sys::close(self.0);
        }
    }
}

impl fmt::Debug for SimFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulated fd {}", self.0)
    }
}

/// A descriptor as a registration names it: which kernel, which number.
#[derive(Copy, Clone, Debug)]
pub(crate) enum RegFd {
    Sim(i32),
    Real(RawFd),
}

impl RegFd {
    /// The kernel a raw descriptor number belongs to, by the [`SIM_FD_BASE`] convention.
    pub(crate) fn from_raw(fd: RawFd) -> RegFd {
        if fd >= SIM_FD_BASE {
            RegFd::Sim(fd - SIM_FD_BASE)
        } else {
            RegFd::Real(fd)
        }
    }
}

/// A [`Sock`] as one backend sees it.
pub(crate) enum Side<'a, R> {
    Sim(i32),
    Real(&'a R),
}

/// One object's descriptor on its backend. `R` is the std type that holds it on Linux
/// (`std::net::TcpStream`, `OwnedFd` for pipes, ...).
pub(crate) enum Sock<R> {
    Sim(SimFd),
    Real(R),
    /// A Linux descriptor that arrived inside a simulated world, and the call it came
    /// through.
    Foreign(OwnedFd, &'static str),
}

impl<R> Sock<R>
where
    R: AsFd + AsRawFd + IntoRawFd + FromRawFd + Into<OwnedFd> + From<OwnedFd>,
{
    /// A std object adopted by `call` (`from_std`, `From<OwnedFd>`, ...).
    pub(crate) fn adopt(std: R, call: &'static str) -> Sock<R> {
        if in_world() {
            Sock::Foreign(std.into(), call)
        } else {
            Sock::Real(std)
        }
    }

    /// `FromRawFd`: inside a world, a number at or above [`SIM_FD_BASE`] is a simulated
    /// descriptor (as `IntoRawFd` gave it out); anything else is a Linux descriptor.
    ///
    /// # Safety
    ///
    /// `FromRawFd`'s contract: `fd` is an open descriptor the caller owns and gives away.
    pub(crate) unsafe fn from_raw_fd(fd: RawFd, call: &'static str) -> Sock<R> {
        if in_world() && fd >= SIM_FD_BASE {
            return Sock::Sim(SimFd(fd - SIM_FD_BASE));
        }
        // SAFETY: the caller's `FromRawFd` contract, passed on unchanged.
        let std = unsafe { R::from_raw_fd(fd) };
        Sock::adopt(std, call)
    }

    /// `AsRawFd`: a simulated descriptor is shown above [`SIM_FD_BASE`].
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            Sock::Sim(fd) => SIM_FD_BASE + fd.0,
            Sock::Real(std) => std.as_raw_fd(),
            Sock::Foreign(owned, _) => owned.as_raw_fd(),
        }
    }

    /// `IntoRawFd`: the caller owns the descriptor from now on (a simulated one stays open
    /// in its world).
    pub(crate) fn into_raw_fd(self) -> RawFd {
        match self {
            Sock::Sim(fd) => SIM_FD_BASE + ManuallyDrop::new(fd).0,
            Sock::Real(std) => std.into_raw_fd(),
            Sock::Foreign(owned, _) => owned.into_raw_fd(),
        }
    }

    /// `AsFd`. Panics for a simulated descriptor: there is no Linux descriptor to borrow,
    /// and a `BorrowedFd` must name an open one.
    pub(crate) fn as_fd(&self, call: &str) -> BorrowedFd<'_> {
        match self {
            Sock::Sim(fd) => no_linux_fd(call, fd.0),
            Sock::Real(std) => std.as_fd(),
            Sock::Foreign(owned, _) => owned.as_fd(),
        }
    }

    /// `From<Self> for OwnedFd` and the std conversions. Panics for a simulated descriptor,
    /// as [`Sock::as_fd`] does (dropping the std object would close a real descriptor).
    pub(crate) fn into_std(self, call: &str) -> R {
        match self {
            Sock::Sim(fd) => no_linux_fd(call, fd.0),
            Sock::Real(std) => std,
            Sock::Foreign(owned, _) => R::from(owned),
        }
    }

    /// The backend's view of the descriptor; a foreign one fails as every call on it does.
    pub(crate) fn side(&self) -> io::Result<Side<'_, R>> {
        match self {
            Sock::Sim(fd) => Ok(Side::Sim(fd.0)),
            Sock::Real(std) => Ok(Side::Real(std)),
            Sock::Foreign(_, made_by) => Err(foreign(made_by)),
        }
    }

    /// The descriptor a registration names.
    pub(crate) fn reg_fd(&self) -> io::Result<RegFd> {
        Ok(match self.side()? {
            Side::Sim(fd) => RegFd::Sim(fd),
            Side::Real(std) => RegFd::Real(std.as_raw_fd()),
        })
    }

    /// Runs `f` on the std object of a Linux descriptor; a simulated one fails with
    /// `Unsupported` naming `call` and saying `sim_why`.
    pub(crate) fn linux_only<T>(
        &self,
        call: &str,
        sim_why: &str,
        f: impl FnOnce(&R) -> io::Result<T>,
    ) -> io::Result<T> {
        match self.side()? {
            Side::Sim(_) => Err(unsupported(call, sim_why)),
            Side::Real(std) => f(std),
        }
    }

    fn fd(&self) -> io::Result<RegFd> {
        self.reg_fd()
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.fd()? {
            RegFd::Sim(fd) => sim_io(sim::sys::read(fd, buf)),
            RegFd::Real(fd) => real_io(real::io::read(fd, buf)),
        }
    }

    /// A vectored read fills the first non-empty buffer, as std's default does (neither
    /// backend has `readv`; a short read is always allowed).
    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match bufs.iter_mut().find(|buf| !buf.is_empty()) {
            Some(buf) => self.read(buf),
            None => self.read(&mut []),
        }
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self.fd()? {
            RegFd::Sim(fd) => sim_io(sim::sys::writev(fd, &[buf])),
            RegFd::Real(fd) => real_io(real::io::write(fd, buf)),
        }
    }

    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let slices: Vec<&[u8]> = bufs.iter().map(|buf| &**buf).collect();
        match self.fd()? {
            RegFd::Sim(fd) => sim_io(sim::sys::writev(fd, &slices)),
            RegFd::Real(fd) => real_io(real::io::writev(fd, &slices)),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let (sim_how, real_how) = shut_how(how);
        match self.fd()? {
            RegFd::Sim(fd) => sim_io(sim::sys::shutdown(fd, sim_how)),
            RegFd::Real(fd) => real_io(real::io::shutdown(fd, real_how)),
        }
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        let pending = match self.fd()? {
            RegFd::Sim(fd) => sim_io(sim::sys::take_error(fd))?,
            RegFd::Real(fd) => real_io(real::net::take_error(fd))?.map(|errno| errno.0),
        };
        Ok(pending.map(io::Error::from_raw_os_error))
    }
}

/// The panic of a conversion that needs a Linux descriptor from a simulated one.
fn no_linux_fd(call: &str, fd: i32) -> ! {
    panic!(
        "{call}: simulated descriptor {fd} has no Linux descriptor behind it (a std socket or \
         OwnedFd made from it would act on, and close, a real descriptor)"
    )
}

impl<R: AsRawFd> fmt::Debug for Sock<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sock::Sim(fd) => fd.fmt(f),
            Sock::Real(std) => write!(f, "linux fd {}", std.as_raw_fd()),
            Sock::Foreign(owned, made_by) => {
                write!(f, "linux fd {} from {made_by}", owned.as_raw_fd())
            }
        }
    }
}
