//! One loop's connections: the per-connection record (socket, buffers, interest bookkeeping,
//! handler state) and the slot table that hands out generation-tagged tokens.
//!
//! A token is `(slot index, generation)`. The generation grows every time a slot is reused,
//! so an event or task that names a connection closed earlier in the same `epoll_wait`
//! batch, or a handle kept by another thread, can never reach the connection that reused the
//! slot or its descriptor number (redis R18, Go #59545).

use super::buffer::{Inbound, Outbound};
use crate::os::{Events, Fd, Token};
use std::net::SocketAddr;
use std::time::Duration;

/// One connection's state on its loop.
pub(crate) struct Conn<S> {
    pub(crate) fd: Fd,
    pub(crate) token: Token,
    pub(crate) peer: SocketAddr,
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound,
    /// The handler's state; `None` while a worker holds it.
    pub(crate) state: Option<S>,
    /// The interest last given to `epoll_ctl` (conditions only, without ET/ONESHOT).
    pub(crate) interest: Events,
    /// ONESHOT: whether the registration is armed (an event disarms it).
    pub(crate) armed: bool,
    /// ONESHOT: the conditions of the event that disarmed it.
    pub(crate) fired: Events,
    /// Reading stopped for a reason other than `EAGAIN` (backpressure, full inbound, a job
    /// in flight); in edge mode no edge will come for the bytes already queued, so the loop
    /// must re-queue the read itself when the reason goes away.
    pub(crate) read_blocked: bool,
    /// The peer sent FIN and every byte before it was read.
    pub(crate) eof: bool,
    /// The handler or another thread asked for a close once output is flushed.
    pub(crate) closing: bool,
    /// A worker is running `on_traffic` for this connection.
    pub(crate) in_flight: bool,
    /// Input arrived (or a wake came) while a worker held the state.
    pub(crate) dirty: bool,
    /// A synthetic re-read or re-write is already queued on the loop.
    pub(crate) reread_queued: bool,
    pub(crate) rewrite_queued: bool,
    /// When the connection last paused for backpressure or made write progress while paused.
    pub(crate) paused_since: Option<Duration>,
    /// The connection is in the loop's list of paused connections (at most once).
    pub(crate) in_paused_list: bool,
    /// Backpressure was overridden after the grace period: read up to the hard limit.
    pub(crate) overdrive: bool,
    /// The spare input buffer a worker job returned, reused by the next job.
    pub(crate) job_buffer: Vec<u8>,
    /// Flaw `close-with-dup` only: a second descriptor for the same socket.
    pub(crate) dup: Option<Fd>,
}

impl<S> Conn<S> {
    pub(crate) fn new(fd: Fd, token: Token, peer: SocketAddr) -> Conn<S> {
        Conn {
            fd,
            token,
            peer,
            inbound: Inbound::default(),
            outbound: Outbound::default(),
            state: None,
            interest: Events::NONE,
            armed: false,
            fired: Events::NONE,
            read_blocked: false,
            eof: false,
            closing: false,
            in_flight: false,
            dirty: false,
            reread_queued: false,
            rewrite_queued: false,
            paused_since: None,
            in_paused_list: false,
            overdrive: false,
            job_buffer: Vec::new(),
            dup: None,
        }
    }
}

struct Slot<S> {
    generation: u32,
    conn: Option<Conn<S>>,
}

/// The slot table of one loop.
pub(crate) struct Slab<S> {
    slots: Vec<Slot<S>>,
    /// Free slot indices, most recently freed last (reused first).
    free: Vec<u32>,
}

impl<S> Slab<S> {
    pub(crate) fn new() -> Slab<S> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Takes a slot for a connection on `fd`; the returned token names it.
    pub(crate) fn insert(&mut self, fd: Fd, peer: SocketAddr) -> Token {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        // Generation 0 is never handed out, so it cannot collide with reserved tokens.
        slot.generation = slot.generation.wrapping_add(1).max(1);
        let token = Token::new(index, slot.generation);
        slot.conn = Some(Conn::new(fd, token, peer));
        token
    }

    /// The connection `token` names, if it is still open. With `index_only` (flaw
    /// `stale-token`) the generation is not compared, so a stale token reaches whatever
    /// connection reused the slot.
    pub(crate) fn get(&mut self, token: Token, index_only: bool) -> Option<&mut Conn<S>> {
        let slot = self.slots.get_mut(token.index() as usize)?;
        if !index_only && slot.generation != token.generation() {
            return None;
        }
        slot.conn.as_mut()
    }

    /// Removes the connection in `token`'s slot (its generation is assumed checked).
    pub(crate) fn remove(&mut self, token: Token) -> Option<Conn<S>> {
        let slot = self.slots.get_mut(token.index() as usize)?;
        let conn = slot.conn.take()?;
        self.free.push(token.index());
        Some(conn)
    }

    /// Tokens of every open connection, in slot order (deterministic).
    pub(crate) fn tokens(&self) -> Vec<Token> {
        self.slots
            .iter()
            .filter_map(|slot| slot.conn.as_ref().map(|conn| conn.token))
            .collect()
    }
}
