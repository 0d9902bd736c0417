//! The descriptor table and open file descriptions: descriptor numbers (lowest free first,
//! from 3 like a process with stdio open), refcounted descriptions shared by `dup`, and the
//! per-type dispatch of the generic calls (`read`, `write`, `close`, poll, ioctl).
//!
//! epoll registrations hang off the description, not the number (`fs/eventpoll.c` keys an
//! item by `(struct file *, fd)`), so a description keeps its watchers until its last
//! descriptor closes (`eventpoll_release_file`).

use super::coverage::{hit, Case};
use super::epoll::Watcher;
use super::{KResult, Kernel, FD_FIRST};

/// What an open file description refers to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Obj {
    /// A stream socket (TCP or unix), by socket id.
    Sock(u32),
    /// A listening TCP socket, by listener id.
    Listener(u32),
    /// The read end of a pipe, by pipe id.
    PipeRead(u32),
    /// The write end of a pipe, by pipe id.
    PipeWrite(u32),
    /// An eventfd; the counter lives in the description itself.
    EventFd(u64),
    /// An epoll instance, by instance id.
    Epoll(u32),
}

/// An open file description.
#[derive(Debug)]
pub(super) struct File {
    /// Descriptors referring to it.
    pub(super) refs: u32,
    /// The object behind it.
    pub(super) obj: Obj,
    /// The epoll items hooked on its wait queue, in wake order: non-exclusive entries first
    /// (newest first, as `add_wait_queue` inserts at the head), then exclusive ones in
    /// registration order (`add_wait_queue_exclusive` appends at the tail).
    pub(super) watchers: Vec<Watcher>,
    /// The poll mask as of the last strict-model refresh (`EdgeModel::Strict` only).
    pub(super) strict_mask: u32,
    /// A serial number, unique over the kernel's life, for the checkers.
    pub(super) serial: u64,
}

impl Kernel {
    /// Creates an open file description for `obj` (with no descriptor yet).
    pub(super) fn file_new(&mut self, obj: Obj) -> u32 {
        let file = File {
            refs: 0,
            obj,
            watchers: Vec::new(),
            strict_mask: 0,
            serial: self.file_serial_next,
        };
        self.structure_changed();
        self.file_serial_next += 1;
        let id = match self.free_files.pop() {
            Some(id) => {
                self.files[id as usize] = Some(file);
                id
            }
            None => {
                self.files.push(Some(file));
                (self.files.len() - 1) as u32
            }
        };
        let mask = self.mask_of(id);
        self.file_mut(id).strict_mask = mask;
        id
    }

    pub(super) fn file(&self, id: u32) -> &File {
        self.files[id as usize].as_ref().expect("live file")
    }

    pub(super) fn file_mut(&mut self, id: u32) -> &mut File {
        self.files[id as usize].as_mut().expect("live file")
    }

    /// The lowest free descriptor number, if it is below the descriptor limit.
    fn fd_peek(&self) -> KResult<i32> {
        let fd = match self.free_fds.first() {
            Some(&fd) => fd,
            None => self.fds.len() as i32,
        };
        if fd as usize >= self.cfg.fd_limit {
            return Err(libc::EMFILE);
        }
        Ok(fd)
    }

    /// Whether `count` more descriptors can be allocated.
    pub(super) fn fd_room(&self, count: usize) -> KResult<()> {
        let mut numbers = self.free_fds.iter().copied().chain(self.fds.len() as i32..);
        for _ in 0..count {
            let fd = numbers.next().expect("unbounded");
            if fd as usize >= self.cfg.fd_limit {
                return Err(libc::EMFILE);
            }
        }
        Ok(())
    }

    /// Installs `file` at the lowest free descriptor number.
    pub(super) fn fd_install(&mut self, file: u32) -> KResult<i32> {
        let fd = self.fd_peek()?;
        if !self.free_fds.remove(&fd) {
            debug_assert_eq!(fd as usize, self.fds.len());
            self.fds.push(None);
        }
        debug_assert!(self.fds[fd as usize].is_none());
        if fd < self.fd_high_water {
            hit(Case::FdNumberReuse);
        }
        self.fd_high_water = self.fd_high_water.max(fd + 1);
        self.fds[fd as usize] = Some(file);
        self.file_mut(file).refs += 1;
        Ok(fd)
    }

    /// The description behind `fd`, or EBADF.
    pub(super) fn fd_file(&self, fd: i32) -> KResult<u32> {
        if fd < 0 {
            return Err(libc::EBADF);
        }
        match self.fds.get(fd as usize) {
            Some(Some(file)) => Ok(*file),
            _ => Err(libc::EBADF),
        }
    }

    /// The object behind `fd`, or EBADF.
    pub(super) fn fd_obj(&self, fd: i32) -> KResult<Obj> {
        Ok(self.file(self.fd_file(fd)?).obj)
    }

    pub(super) fn fd_dup(&mut self, fd: i32) -> KResult<i32> {
        let file = self.fd_file(fd)?;
        self.fd_install(file)
    }

    pub(super) fn fd_close(&mut self, fd: i32) -> KResult<()> {
        let file = self.fd_file(fd)?;
        self.structure_changed();
        self.fds[fd as usize] = None;
        if fd as usize + 1 == self.fds.len() {
            // Keep the table short: trailing closed numbers are not remembered as free.
            self.fds.pop();
            while self.fds.len() > FD_FIRST as usize && self.fds.last() == Some(&None) {
                let last = (self.fds.len() - 1) as i32;
                self.free_fds.remove(&last);
                self.fds.pop();
            }
        } else {
            self.free_fds.insert(fd);
        }
        let refs = {
            let f = self.file_mut(file);
            f.refs -= 1;
            f.refs
        };
        if refs == 0 {
            self.file_release(file);
        }
        Ok(())
    }

    /// The last descriptor of `file` closed: its epoll items go (`eventpoll_release_file`),
    /// then the object sees its `release`.
    fn file_release(&mut self, file: u32) {
        let watchers = std::mem::take(&mut self.file_mut(file).watchers);
        for w in &watchers {
            self.ep_item_drop(w.ep, w.item);
        }
        match self.file(file).obj {
            Obj::Sock(s) => self.sock_release(s),
            Obj::Listener(l) => self.listener_release(l),
            Obj::PipeRead(p) => self.pipe_release(p, true),
            Obj::PipeWrite(p) => self.pipe_release(p, false),
            Obj::EventFd(_) => {}
            Obj::Epoll(ep) => self.ep_release(ep),
        }
        self.files[file as usize] = None;
        self.free_files.push(file);
    }

    /// The poll mask of `file` without side effects (what `vfs_poll` would return).
    pub(super) fn mask_of(&self, file: u32) -> u32 {
        match self.file(file).obj {
            Obj::Sock(s) => self.sock_mask(s),
            Obj::Listener(l) => self.listener_mask(l),
            Obj::PipeRead(p) => self.pipe_mask(p, true),
            Obj::PipeWrite(p) => self.pipe_mask(p, false),
            Obj::EventFd(count) => super::eventfd::mask(count),
            Obj::Epoll(ep) => self.ep_mask(ep),
        }
    }

    /// `vfs_poll`: the mask, plus the side effects polling has in Linux (`tcp_poll` sets
    /// SOCK_NOSPACE on a socket it finds unwritable; `pipe_poll` sets `poll_usage`; polling
    /// an epoll file drops stale items from its ready list).
    pub(super) fn poll_file(&mut self, file: u32) -> u32 {
        match self.file(file).obj {
            Obj::Sock(s) => self.sock_poll(s),
            Obj::PipeRead(p) | Obj::PipeWrite(p) => {
                self.pipe_mut(p).poll_usage = true;
                self.mask_of(file)
            }
            Obj::Epoll(ep) => self.ep_poll_self(ep),
            _ => self.mask_of(file),
        }
    }

    pub(super) fn file_read(&mut self, fd: i32, buf: &mut [u8]) -> KResult<usize> {
        let file = self.fd_file(fd)?;
        let result = match self.file(file).obj {
            Obj::Sock(s) => self.sock_read(s, buf),
            // `tcp_recvmsg` on a listening socket.
            Obj::Listener(l) => self.listener_read(l),
            Obj::PipeRead(p) => self.pipe_read(p, buf),
            // The write end is not open for reading (`vfs_read`: no FMODE_READ).
            Obj::PipeWrite(_) => Err(libc::EBADF),
            Obj::EventFd(_) => self.efd_read_buf(file, buf),
            // epoll files are opened O_RDWR but have no `read` (`vfs_read`: FMODE_CAN_READ).
            Obj::Epoll(_) => Err(libc::EINVAL),
        };
        self.touch(file);
        if std::mem::take(&mut self.short_read_fired) {
            self.rest_arrives(file);
        }
        result
    }

    pub(super) fn file_writev(&mut self, fd: i32, bufs: &[&[u8]]) -> KResult<usize> {
        let file = self.fd_file(fd)?;
        let result = match self.file(file).obj {
            Obj::Sock(s) => self.sock_write(s, bufs),
            // `tcp_sendmsg` on a listener: `sk_stream_wait_connect` says EPIPE.
            Obj::Listener(_) => Err(libc::EPIPE),
            Obj::PipeRead(_) => Err(libc::EBADF),
            Obj::PipeWrite(p) => self.pipe_write(p, bufs),
            Obj::EventFd(_) => self.efd_write_buf(file, bufs),
            Obj::Epoll(_) => Err(libc::EINVAL),
        };
        self.touch(file);
        result
    }

    pub(super) fn file_inq(&mut self, fd: i32) -> KResult<usize> {
        match self.fd_obj(fd)? {
            Obj::Sock(s) => Ok(self.sock(s).rcv.len()),
            // `tcp_ioctl`: SIOCINQ on a listener is EINVAL.
            Obj::Listener(_) => Err(libc::EINVAL),
            // FIONREAD works on both ends of a pipe.
            Obj::PipeRead(p) | Obj::PipeWrite(p) => Ok(self.pipe_ref(p).bytes()),
            // No `ioctl` at all: the VFS says ENOTTY.
            Obj::EventFd(_) | Obj::Epoll(_) => Err(libc::ENOTTY),
        }
    }

    pub(super) fn file_outq(&mut self, fd: i32) -> KResult<usize> {
        match self.fd_obj(fd)? {
            Obj::Sock(s) => Ok(self.sock_outq(s)),
            Obj::Listener(_) => Err(libc::EINVAL),
            // `pipe_ioctl` knows only FIONREAD.
            Obj::PipeRead(_) | Obj::PipeWrite(_) | Obj::EventFd(_) | Obj::Epoll(_) => {
                Err(libc::ENOTTY)
            }
        }
    }
}
