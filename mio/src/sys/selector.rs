//! The epoll instance behind a `Poll` and its `Registry`s.
//!
//! On Linux a registration's `epoll_event.data` is the caller's token, as in mio. In the
//! simulator it is a small registration number that the selector maps back to the token:
//! tokio's tokens are heap addresses, which differ from one process to the next, and the
//! simulated kernel writes `data` into the trace, whose hash must not depend on where the
//! allocator put things. Registration numbers count from 0 per epoll instance, so a program
//! that registers tokens 0, 1, 2, ... in order sees its own tokens in the trace.

use super::{in_world, real_io, sim_io, RegFd, SimFd};
use crate::event::Event;
use crate::{Interest, Token};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// An `epoll_ctl` operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ctl {
    Add,
    Mod,
    Del,
}

/// An epoll instance on one backend.
#[derive(Debug)]
pub(crate) enum Selector {
    Sim {
        epfd: SimFd,
        /// Shared by every `try_clone` of the registry, which names the same instance.
        registrations: Arc<Mutex<Registrations>>,
    },
    Real(OwnedFd),
}

/// The simulated kernel's `data` numbers and the tokens they stand for.
///
/// The lock is a std one although simulated threads share it: it is held only while the
/// maps change, never across a simulated call (a preemption point), so no simulated thread
/// can be switched out holding it.
#[derive(Debug, Default)]
pub(crate) struct Registrations {
    next_id: u64,
    token_of: BTreeMap<u64, Token>,
    /// The current registration number of each descriptor. A descriptor closed without
    /// `deregister` leaves its entries behind; a later registration of its number replaces
    /// them here, while the old number keeps mapping to its token for as long as the kernel
    /// might still report it (a `dup` keeps the registration alive).
    id_of: BTreeMap<i32, u64>,
}

impl Registrations {
    fn lock(registrations: &Mutex<Registrations>) -> std::sync::MutexGuard<'_, Registrations> {
        // A panic while the maps changed leaves them consistent (each change is one insert
        // or remove), so poisoning carries no information here.
        registrations.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number the kernel will carry for `fd` after `op`.
    fn id_for(&mut self, op: Ctl, fd: i32) -> u64 {
        match (op, self.id_of.get(&fd)) {
            (Ctl::Mod | Ctl::Del, Some(&id)) => id,
            _ => {
                let id = self.next_id;
                self.next_id += 1;
                id
            }
        }
    }

    /// Records what a successful `op` did.
    fn commit(&mut self, op: Ctl, fd: i32, id: u64, token: Token) {
        match op {
            Ctl::Add | Ctl::Mod => {
                self.id_of.insert(fd, id);
                self.token_of.insert(id, token);
            }
            Ctl::Del => {
                self.id_of.remove(&fd);
                self.token_of.remove(&id);
            }
        }
    }
}

/// The `epoll_wait` timeout mio passes for `timeout`: whole milliseconds, rounded up.
/// Applied on both backends, so a sub-millisecond timeout waits a millisecond in both.
fn whole_ms(timeout: Option<Duration>) -> Option<Duration> {
    let ms = real::epoll::timeout_ms(timeout);
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

impl Selector {
    /// A new instance, on the simulator inside a simulated world, on Linux otherwise.
    pub(crate) fn new() -> io::Result<Selector> {
        if in_world() {
            Ok(Selector::Sim {
                epfd: SimFd(sim_io(sim::sys::epoll_create())?),
                registrations: Arc::default(),
            })
        } else {
            real_io(real::owned::epoll_create()).map(Selector::Real)
        }
    }

    pub(crate) fn is_sim(&self) -> bool {
        matches!(self, Selector::Sim { .. })
    }

    /// A second descriptor for the same instance (`dup`).
    pub(crate) fn try_clone(&self) -> io::Result<Selector> {
        match self {
            Selector::Sim {
                epfd,
                registrations,
            } => Ok(Selector::Sim {
                epfd: SimFd(sim_io(sim::sys::dup(epfd.0))?),
                registrations: Arc::clone(registrations),
            }),
            Selector::Real(fd) => fd.try_clone().map(Selector::Real),
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            Selector::Sim { epfd, .. } => super::SIM_FD_BASE + epfd.0,
            Selector::Real(fd) => fd.as_raw_fd(),
        }
    }

    pub(crate) fn as_fd(&self, call: &str) -> BorrowedFd<'_> {
        match self {
            Selector::Sim { epfd, .. } => super::no_linux_fd(call, epfd.0),
            Selector::Real(fd) => fd.as_fd(),
        }
    }

    /// `epoll_ctl`. `interests` is `None` for `Del`.
    pub(crate) fn ctl(
        &self,
        op: Ctl,
        fd: RegFd,
        token: Token,
        interests: Option<Interest>,
    ) -> io::Result<()> {
        let bits = interests.map_or(0, Interest::epoll_bits);
        match (self, fd) {
            (Selector::Real(epfd), RegFd::Real(fd)) => {
                let op = match op {
                    Ctl::Add => real::epoll::CtlOp::Add,
                    Ctl::Mod => real::epoll::CtlOp::Mod,
                    Ctl::Del => real::epoll::CtlOp::Del,
                };
                let data = token.0 as u64;
                real_io(real::epoll::epoll_ctl(epfd.as_raw_fd(), op, fd, bits, data))
            }
            (
                Selector::Sim {
                    epfd,
                    registrations,
                },
                RegFd::Sim(fd),
            ) => {
                let id = Registrations::lock(registrations).id_for(op, fd);
                let sim_op = match op {
                    Ctl::Add => libc::EPOLL_CTL_ADD,
                    Ctl::Mod => libc::EPOLL_CTL_MOD,
                    Ctl::Del => libc::EPOLL_CTL_DEL,
                };
                sim_io(sim::sys::epoll_ctl(epfd.0, sim_op, fd, bits, id))?;
                // No preemption point lies between the kernel's change and this one, so
                // no other simulated thread sees the maps disagree with the kernel.
                Registrations::lock(registrations).commit(op, fd, id, token);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a source made in a simulated world cannot be registered with a Linux Poll, \
                 nor a Linux one with a simulated Poll",
            )),
        }
    }

    /// `epoll_wait` for at most `capacity` events into `out` (cleared first).
    pub(crate) fn select(
        &self,
        out: &mut Vec<Event>,
        capacity: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        out.clear();
        match self {
            Selector::Real(epfd) => {
                real_io(real::epoll::epoll_wait(
                    epfd.as_raw_fd(),
                    out,
                    capacity,
                    timeout,
                    |bits, data| Event::new(bits, Token(data as usize)),
                ))?;
            }
            Selector::Sim {
                epfd,
                registrations,
            } => {
                // The kernel fills plain pairs; one buffer per OS thread keeps the hot path
                // free of allocation.
                thread_local! {
                    static PAIRS: RefCell<Vec<(u32, u64)>> = const { RefCell::new(Vec::new()) };
                }
                let mut pairs = PAIRS.with(|pairs| std::mem::take(&mut *pairs.borrow_mut()));
                let timeout_ns = whole_ms(timeout).map(|t| t.as_nanos() as u64);
                let result = sim::sys::epoll_wait(epfd.0, &mut pairs, capacity, timeout_ns);
                let registrations = Registrations::lock(registrations);
                // The kernel reports only live registrations, and the maps drop one only
                // with its `Del`, so every number has its token.
                out.extend(pairs.iter().filter_map(|&(bits, id)| {
                    let token = registrations.token_of.get(&id);
                    debug_assert!(token.is_some(), "registration {id} has a token");
                    token.map(|&token| Event::new(bits, token))
                }));
                drop(registrations);
                PAIRS.with(|slot| *slot.borrow_mut() = pairs);
                sim_io(result)?;
            }
        }
        Ok(())
    }
}
