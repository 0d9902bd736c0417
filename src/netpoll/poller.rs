//! The netpoller: the one thread that sits in `epoll_wait` and turns events into token
//! transitions (Go's `netpoll` and `netpollready`), and the registration table that maps an
//! event's token back to its poll descriptor.
//!
//! Every descriptor is registered once, for `IN|OUT|RDHUP|ET`, and its interest never
//! changes: which direction a thread waits for lives in the tokens, not in epoll. The epoll
//! token carries the descriptor number and the registration's sequence number, so an event
//! for a descriptor that was closed (and whose number may already be reused) is dropped, as
//! Go does since issue 59545.

use super::pd::{Mode, PollDesc};
use super::Flaw;
use crate::os::{CtlOp, EpollEvent, Errno, Events, Fd, Os, OsAtomic, OsMutex, OsThread, Token};
use std::sync::Arc;

/// Events taken per `epoll_wait` (Go's netpoll uses 128).
const EVENTS_MAX: usize = 128;

/// The token of the shutdown eventfd: no descriptor has this index.
const WAKE_TOKEN: Token = Token(u64::MAX);

/// What every descriptor is registered for, once.
const INTEREST: Events = Events(Events::IN.0 | Events::OUT.0 | Events::RDHUP.0 | Events::ET.0);

/// The registrations, by descriptor number.
struct Table<O: Os> {
    slots: Vec<Option<Arc<PollDesc<O>>>>,
    /// The sequence number the next registration gets (Go's `fdseq`), from 1.
    next_seq: u32,
}

/// The shared netpoller state: epoll instance, table, shutdown signal.
pub struct Netpoll<O: Os> {
    os: O,
    epfd: Fd,
    /// Written once to wake the netpoller for shutdown (Go's `netpollBreak`).
    wake_fd: Fd,
    flaw: Option<Flaw>,
    table: O::Mutex<Table<O>>,
    stopping: O::Atomic,
}

impl<O: Os> Netpoll<O> {
    /// Creates the epoll instance and the shutdown eventfd (Go's `netpollinit`). The
    /// netpoller thread is [`Netpoll::run`], which the caller spawns.
    pub fn new(os: O, flaw: Option<Flaw>) -> Result<Netpoll<O>, (&'static str, Errno)> {
        let epfd = os.epoll_create().map_err(|e| ("epoll_create", e))?;
        let wake_fd = match os.eventfd() {
            Ok(fd) => fd,
            Err(e) => {
                let _ = os.close(epfd);
                return Err(("eventfd", e));
            }
        };
        if let Err(e) = os.epoll_ctl(epfd, CtlOp::Add, wake_fd, Events::IN, WAKE_TOKEN) {
            let _ = os.close(wake_fd);
            let _ = os.close(epfd);
            return Err(("epoll_ctl(eventfd)", e));
        }
        Ok(Netpoll {
            table: os.mutex(Table {
                slots: Vec::new(),
                next_seq: 1,
            }),
            stopping: os.atomic(0),
            os,
            epfd,
            wake_fd,
            flaw,
        })
    }

    /// The seam this netpoller runs on.
    pub fn os(&self) -> &O {
        &self.os
    }

    /// The flaw it was built with.
    pub fn flaw(&self) -> Option<Flaw> {
        self.flaw
    }

    /// Go's `netpollopen`: a new poll descriptor for `fd`, entered in the table before the
    /// registration, so that the event the registration itself may raise finds it.
    pub(crate) fn open(&self, fd: Fd) -> Result<Arc<PollDesc<O>>, Errno> {
        let index = usize::try_from(fd.0).map_err(|_| Errno::EBADF)?;
        let pd = self.table.lock(|table| {
            let seq = table.next_seq;
            table.next_seq = table.next_seq.wrapping_add(1).max(1);
            let pd = Arc::new(PollDesc::new(&self.os, fd, seq));
            if table.slots.len() <= index {
                table.slots.resize_with(index + 1, || None);
            }
            table.slots[index] = Some(Arc::clone(&pd));
            pd
        });
        let token = Token::new(index as u32, pd.seq());
        if let Err(errno) = self
            .os
            .epoll_ctl(self.epfd, CtlOp::Add, fd, INTEREST, token)
        {
            self.forget(&pd);
            return Err(errno);
        }
        Ok(pd)
    }

    /// Go's `netpollclose`: removes the registration and the table entry; the caller closes
    /// the descriptor afterwards.
    pub(crate) fn close(&self, pd: &PollDesc<O>) {
        // The descriptor is still open here, so the only failure would be a bug.
        let _ = self
            .os
            .epoll_ctl(self.epfd, CtlOp::Del, pd.fd(), Events::NONE, Token(0));
        self.forget(pd);
    }

    fn forget(&self, pd: &PollDesc<O>) {
        let index = pd.fd().0 as usize;
        self.table.lock(|table| {
            let same = table
                .slots
                .get(index)
                .and_then(|slot| slot.as_ref())
                .map(|p| p.seq());
            if same == Some(pd.seq()) {
                table.slots[index] = None;
            }
        });
    }

    /// The netpoller thread's body (Go's `netpoll` in a loop): wait, turn every event into
    /// `netpollready`, until [`Netpoll::stop`] wakes it through the eventfd.
    pub fn run(&self) {
        let mut events: Vec<EpollEvent> = Vec::with_capacity(EVENTS_MAX);
        loop {
            match self.os.epoll_wait(self.epfd, &mut events, EVENTS_MAX, None) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => panic!("netpoller: epoll_wait failed with {errno}"),
            }
            for event in &events {
                if event.token == WAKE_TOKEN {
                    // Drained so that a level of 1 does not linger; EAGAIN means another
                    // turn already took it.
                    let _ = self.os.eventfd_read(self.wake_fd);
                    if self.stopping.load() != 0 {
                        return;
                    }
                    continue;
                }
                self.ready(*event);
            }
        }
    }

    /// One event: find its descriptor, drop it if stale, and ready the directions it names.
    pub(super) fn ready(&self, event: EpollEvent) {
        let index = event.token.index() as usize;
        let pd = self.table.lock(|table| {
            table
                .slots
                .get(index)
                .and_then(|slot| slot.clone())
                .filter(|pd| pd.seq() == event.token.generation())
        });
        let Some(pd) = pd else {
            // Closed since the kernel queued the event, perhaps reused: not ours any more.
            return;
        };
        // Errors and hang-ups wake both directions, so a writer learns of a dead peer too.
        let bits = event.events;
        let read = bits.intersects(Events::IN | Events::RDHUP | Events::HUP | Events::ERR);
        let write = bits.intersects(Events::OUT | Events::HUP | Events::ERR);
        for (mode, named) in [(Mode::Read, read), (Mode::Write, write)] {
            if named {
                if let Some(thread) = pd.unblock(mode, true, self.flaw) {
                    thread.unpark();
                }
            }
        }
    }

    /// Asks the netpoller thread to return, and wakes it.
    pub fn stop(&self) {
        self.stopping.store(1);
        // EAGAIN would mean the counter is full, which one write per stop cannot reach.
        let _ = self.os.eventfd_write(self.wake_fd, 1);
    }

    /// Closes the epoll instance and the eventfd; call after the netpoller thread ended and
    /// every descriptor was closed.
    pub fn release(&self) {
        let _ = self.os.close(self.wake_fd);
        let _ = self.os.close(self.epfd);
    }
}
