//! Read-only views of the kernel for the checkers and for diagnoses: every open descriptor
//! with its kind, description, buffered bytes and connection state, and every registration
//! of an epoll instance. Nothing here changes state (no poll side effects).

use super::fdtable::Obj;
use super::stream::{Proto, State, RCV_SHUTDOWN, SEND_SHUTDOWN};
use super::{Errno, KResult, Kernel};

/// What a descriptor refers to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FdKind {
    Tcp,
    Unix,
    Listener,
    PipeRead,
    PipeWrite,
    EventFd,
    Epoll,
}

/// The connection state of a stream socket, as far as a diagnosis needs it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SockFlags {
    /// The peer's FIN (TCP) or shutdown/close (unix) arrived: reads end in EOF.
    pub fin_received: bool,
    /// Our writing half is shut (shutdown WR, or close).
    pub write_shut: bool,
    /// Our reading half is shut.
    pub read_shut: bool,
    /// An RST arrived (or the connect was refused).
    pub reset: bool,
    /// The pending `SO_ERROR`.
    pub error: Option<Errno>,
    /// TCP: still waiting for room in a full accept queue.
    pub connecting: bool,
}

/// One open descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdInfo {
    pub fd: i32,
    pub kind: FdKind,
    /// The open file description's serial number: equal for `dup`s.
    pub description: u64,
    /// Bytes a read would find (sockets and pipes), the counter (eventfd), queued
    /// connections (listener), queued items (epoll).
    pub readable_bytes: usize,
    /// Bytes written and not yet in the peer's receive buffer (TCP), truesize still charged
    /// (unix); 0 otherwise.
    pub queued_out_bytes: usize,
    /// Stream sockets only.
    pub sock: Option<SockFlags>,
    /// epoll registrations on this description (from any instance).
    pub watchers: usize,
}

/// One epoll registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpollItemInfo {
    /// The descriptor number it was added under (possibly closed since, see E31).
    pub fd: i32,
    /// The description it watches.
    pub description: u64,
    /// Requested conditions and modes as stored (ERR|HUP included; only mode bits remain
    /// once a ONESHOT item has fired).
    pub events: u32,
    pub data: u64,
    /// False for a ONESHOT item that fired and was not re-armed.
    pub armed: bool,
    /// On the ready list.
    pub queued: bool,
}

impl Kernel {
    /// Every open descriptor, in number order.
    pub fn open_fds(&self) -> Vec<FdInfo> {
        (0..self.fds.len() as i32)
            .filter_map(|fd| self.fd_info(fd))
            .collect()
    }

    /// How many descriptors are open.
    pub fn open_fd_count(&self) -> usize {
        self.fds.iter().filter(|f| f.is_some()).count()
    }

    /// One descriptor, if open.
    pub fn fd_info(&self, fd: i32) -> Option<FdInfo> {
        let file_id = self.fd_file(fd).ok()?;
        let file = self.file(file_id);
        let (kind, readable_bytes, queued_out_bytes, sock) = match file.obj {
            Obj::Sock(s) => {
                let sock = self.sock(s);
                let kind = if sock.proto == Proto::Tcp {
                    FdKind::Tcp
                } else {
                    FdKind::Unix
                };
                let flags = SockFlags {
                    fin_received: sock.done
                        || (sock.proto == Proto::Unix && sock.shutdown & RCV_SHUTDOWN != 0),
                    write_shut: sock.shutdown & SEND_SHUTDOWN != 0,
                    read_shut: sock.shutdown & RCV_SHUTDOWN != 0,
                    reset: sock.reset_seen,
                    error: (sock.err != 0).then_some(sock.err),
                    connecting: sock.state == State::SynSent,
                };
                (kind, sock.rcv.len(), self.sock_outq(s), Some(flags))
            }
            Obj::Listener(l) => (
                FdKind::Listener,
                self.listener(l).accept_queue.len(),
                0,
                None,
            ),
            Obj::PipeRead(p) => (FdKind::PipeRead, self.pipe_ref(p).bytes(), 0, None),
            Obj::PipeWrite(p) => (FdKind::PipeWrite, self.pipe_ref(p).bytes(), 0, None),
            Obj::EventFd(count) => (
                FdKind::EventFd,
                count.min(usize::MAX as u64) as usize,
                0,
                None,
            ),
            Obj::Epoll(ep) => (FdKind::Epoll, self.ep(ep).ready.len(), 0, None),
        };
        Some(FdInfo {
            fd,
            kind,
            description: file.serial,
            readable_bytes,
            queued_out_bytes,
            sock,
            watchers: file.watchers.len(),
        })
    }

    /// The current poll mask of `fd` (what `epoll_wait` would re-poll), without side effects.
    pub fn poll_events(&self, fd: i32) -> KResult<u32> {
        Ok(self.mask_of(self.fd_file(fd)?))
    }

    /// The registrations of the epoll instance `epfd`, in slot order.
    pub fn epoll_items(&self, epfd: i32) -> KResult<Vec<EpollItemInfo>> {
        let ep = self.ep_of(epfd)?;
        Ok(self
            .ep(ep)
            .items
            .iter()
            .filter(|i| i.live)
            .map(|i| EpollItemInfo {
                fd: i.fd,
                description: self.file(i.file).serial,
                events: i.events,
                data: i.data,
                armed: !i.disarmed(),
                queued: i.on_list,
            })
            .collect())
    }

    /// The `data` of the items on `epfd`'s ready list, in order.
    pub fn epoll_ready(&self, epfd: i32) -> KResult<Vec<u64>> {
        let ep = self.ep_of(epfd)?;
        let e = self.ep(ep);
        Ok(e.ready.iter().map(|&i| e.items[i as usize].data).collect())
    }

    /// Threads blocked on `epfd`, most recent last.
    pub fn epoll_waiters(&self, epfd: i32) -> KResult<Vec<u32>> {
        let ep = self.ep_of(epfd)?;
        Ok(self.ep(ep).waiters.clone())
    }

    /// Segments (data, FIN, RST) still on the wire.
    pub fn segments_in_flight(&self) -> usize {
        self.net.len()
    }
}

impl Kernel {
    /// Checks the kernel's internal invariants (tests only): every watcher names a live
    /// item that points back at its file, ready lists hold exactly the linked live items,
    /// socket peers and descriptors agree.
    #[cfg(test)]
    pub(super) fn assert_invariants(&self) {
        for (file_id, file) in self.files.iter().enumerate() {
            let Some(file) = file else { continue };
            assert!(file.refs > 0, "file {file_id} without descriptors");
            for w in &file.watchers {
                let item = &self.ep(w.ep).items[w.item as usize];
                assert!(item.live, "watcher of a dead item");
                assert_eq!(item.file as usize, file_id, "item points elsewhere");
            }
        }
        for (ep_id, ep) in self.eps.iter().enumerate() {
            let Some(ep) = ep else { continue };
            let linked = ep.items.iter().filter(|i| i.live && i.on_list).count();
            assert_eq!(
                linked,
                ep.ready.len(),
                "epoll {ep_id}: ready list and flags differ"
            );
            for &item in &ep.ready {
                assert!(ep.items[item as usize].live && ep.items[item as usize].on_list);
            }
            for (item_id, item) in ep.items.iter().enumerate().filter(|(_, i)| i.live) {
                let hooked = self
                    .file(item.file)
                    .watchers
                    .iter()
                    .any(|w| w.ep == ep_id as u32 && w.item == item_id as u32);
                assert!(hooked, "item not on its file's wait queue");
            }
        }
        let mut refs = vec![0u32; self.files.len()];
        for file in self.fds.iter().flatten() {
            refs[*file as usize] += 1;
        }
        for (file_id, file) in self.files.iter().enumerate() {
            if let Some(file) = file {
                assert_eq!(file.refs, refs[file_id], "refcount of file {file_id}");
            }
        }
        for (id, sock) in self.socks.iter().enumerate().filter(|(_, s)| s.live) {
            if let Some(file) = sock.file {
                assert_eq!(
                    self.file(file).obj,
                    Obj::Sock(id as u32),
                    "socket {id} and its file disagree"
                );
            }
            assert!(
                sock.file.is_some()
                    || sock.dead
                    || sock.listener.is_some()
                    || sock.state == State::Closed
                    || sock.proto == Proto::Tcp,
                "unix socket {id} leaked"
            );
        }
    }
}
