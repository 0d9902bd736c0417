//! Pipes as `fs/pipe.c` has them on 6.x: a ring of page-sized slots (16 by default), writes
//! that merge their sub-page remainder into the last slot, and the wakeup rules that made
//! the "edge-triggered misunderstanding" (epoll-semantics.md section 3):
//!
//! * `pipe_write` wakes the readers if the pipe was empty **or `poll_usage` is set**, and
//!   any `pipe_poll` (so any epoll ADD) sets it: on 6.18 every write to a polled pipe is an
//!   edge, even one that fails with EAGAIN (E04).
//! * `pipe_read` wakes the writers only when it frees a slot of a full pipe, so the writer's
//!   OUT edge comes once a whole page has been read (E18), never from reads of a pipe that
//!   was not full (E14).

use std::collections::VecDeque;

use super::coverage::{hit, Case};
use super::epoll::{ERR, HUP, IN, KEY_ALL, OUT};
use super::fdtable::Obj;
use super::net::take_front;
use super::{KResult, Kernel};

/// The size of a pipe slot (`PAGE_SIZE`).
const PAGE_BYTES: usize = 4096;
/// `PIPE_BUF`: writes up to this size are atomic, so the short-write fault spares them.
const PIPE_BUF_BYTES: usize = 4096;

/// One `pipe_buffer`: a page holding `len` unread bytes starting at `offset`.
#[derive(Copy, Clone, Debug)]
struct Slot {
    offset: usize,
    len: usize,
}

/// A pipe shared by its two ends.
#[derive(Debug)]
pub(super) struct Pipe {
    /// The unread bytes, in order, across all slots.
    data: VecDeque<u8>,
    slots: VecDeque<Slot>,
    /// `max_usage`: capacity in slots.
    slots_max: usize,
    reader_open: bool,
    writer_open: bool,
    read_file: u32,
    write_file: u32,
    /// Set by any poll of either end: from then on every write wakes the readers.
    pub(super) poll_usage: bool,
}

impl Pipe {
    pub(super) fn bytes(&self) -> usize {
        self.data.len()
    }

    fn full(&self) -> bool {
        self.slots.len() >= self.slots_max
    }
}

impl Kernel {
    pub(super) fn pipe_ref(&self, p: u32) -> &Pipe {
        self.pipes[p as usize].as_ref().expect("live pipe")
    }

    /// The open file descriptions of the pipe's ends that are still open.
    pub(super) fn pipe_files(&self, p: u32) -> (Option<u32>, Option<u32>) {
        let pipe = self.pipe_ref(p);
        (
            pipe.reader_open.then_some(pipe.read_file),
            pipe.writer_open.then_some(pipe.write_file),
        )
    }

    pub(super) fn pipe_mut(&mut self, p: u32) -> &mut Pipe {
        self.pipes[p as usize].as_mut().expect("live pipe")
    }

    pub(super) fn pipe_create(&mut self) -> KResult<(i32, i32)> {
        self.fd_room(2)?;
        let slots_max = (self.cfg.pipe_capacity_bytes / PAGE_BYTES).max(1);
        let pipe = Pipe {
            data: VecDeque::new(),
            slots: VecDeque::new(),
            slots_max,
            reader_open: true,
            writer_open: true,
            read_file: u32::MAX,
            write_file: u32::MAX,
            poll_usage: false,
        };
        let p = match self.free_pipes.pop() {
            Some(p) => {
                self.pipes[p as usize] = Some(pipe);
                p
            }
            None => {
                self.pipes.push(Some(pipe));
                (self.pipes.len() - 1) as u32
            }
        };
        let read_file = self.file_new(Obj::PipeRead(p));
        let write_file = self.file_new(Obj::PipeWrite(p));
        let pipe = self.pipe_mut(p);
        pipe.read_file = read_file;
        pipe.write_file = write_file;
        let r = self.fd_install(read_file)?;
        let w = self.fd_install(write_file)?;
        Ok((r, w))
    }

    /// `pipe_poll` for one end (without the `poll_usage` side effect).
    pub(super) fn pipe_mask(&self, p: u32, read_end: bool) -> u32 {
        let pipe = self.pipe_ref(p);
        let mut mask = 0;
        if read_end {
            if !pipe.data.is_empty() {
                mask |= IN;
            }
            if !pipe.writer_open {
                mask |= HUP;
            }
        } else {
            if !pipe.full() {
                mask |= OUT;
            }
            if !pipe.reader_open {
                mask |= ERR;
            }
        }
        mask
    }

    pub(super) fn pipe_read(&mut self, p: u32, buf: &mut [u8]) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = self.pipe_ref(p).data.len();
        if available == 0 {
            return if self.pipe_ref(p).writer_open {
                Err(libc::EAGAIN)
            } else {
                Ok(0)
            };
        }
        let want = available.min(buf.len());
        let count = self.short_read(want);
        let pipe = self.pipe_mut(p);
        take_front(&mut pipe.data, &mut buf[..count]);
        let mut left = count;
        let mut wake_writer = false;
        while left > 0 {
            let full = pipe.full();
            let slot = pipe.slots.front_mut().expect("bytes live in slots");
            let take = slot.len.min(left);
            slot.len -= take;
            slot.offset += take;
            left -= take;
            if slot.len == 0 {
                pipe.slots.pop_front();
                wake_writer |= full;
            }
        }
        if !pipe.data.is_empty() {
            hit(Case::PartialReadBeforeWait);
        }
        if wake_writer {
            hit(Case::EpolloutAfterFull);
            let write_file = pipe.write_file;
            if pipe.writer_open {
                self.wake(write_file, OUT);
            }
        }
        Ok(count)
    }

    pub(super) fn pipe_write(&mut self, p: u32, bufs: &[&[u8]]) -> KResult<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        if !self.pipe_ref(p).reader_open {
            return Err(libc::EPIPE);
        }
        // Writes of at most PIPE_BUF bytes are atomic (pipe(7)), so a cut leaves at least
        // that much.
        let limit = self.short_write(total, PIPE_BUF_BYTES);
        let pipe = self.pipe_mut(p);
        let was_empty = pipe.data.is_empty();
        if !was_empty {
            hit(Case::ArrivalOnNonEmpty);
        }
        let mut written = 0;
        // The sub-page remainder merges into the last slot when it fits there.
        let chars = limit % PAGE_BYTES;
        if chars != 0 && !was_empty {
            let last = pipe.slots.back_mut().expect("non-empty pipe has a slot");
            if last.offset + last.len + chars <= PAGE_BYTES {
                last.len += chars;
                written = chars;
            }
        }
        while written < limit && !pipe.full() {
            let take = (limit - written).min(PAGE_BYTES);
            pipe.slots.push_back(Slot {
                offset: 0,
                len: take,
            });
            written += take;
        }
        let mut skip = 0;
        let mut left = written;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let take = buf.len().min(left);
            pipe.data.extend(&buf[..take]);
            left -= take;
            skip += take;
        }
        debug_assert_eq!(skip, written);
        let (read_file, wake) = (pipe.read_file, was_empty || pipe.poll_usage);
        if wake {
            self.wake(read_file, IN);
        }
        if written == 0 {
            return Err(libc::EAGAIN);
        }
        Ok(written)
    }

    /// One end's last descriptor closed. When one side is left alone, both ends' wait
    /// queues are woken with no key.
    pub(super) fn pipe_release(&mut self, p: u32, read_end: bool) {
        let pipe = self.pipe_mut(p);
        if read_end {
            pipe.reader_open = false;
        } else {
            pipe.writer_open = false;
        }
        let (reader_open, writer_open) = (pipe.reader_open, pipe.writer_open);
        let (read_file, write_file) = (pipe.read_file, pipe.write_file);
        if !reader_open && !writer_open {
            self.pipes[p as usize] = None;
            self.free_pipes.push(p);
            return;
        }
        if reader_open {
            self.wake(read_file, KEY_ALL);
        }
        if writer_open {
            self.wake(write_file, KEY_ALL);
        }
    }
}
