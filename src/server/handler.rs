//! The user-facing handler API and the two stock handlers (echo, and length-prefixed
//! request/response framing).
//!
//! # Writing a handler
//!
//! A [`Handler`] is shared by every loop (and worker), so it takes `&self`; per-connection
//! state lives in its associated [`Handler::State`], created by [`Handler::on_open`] and
//! handed back by [`Handler::on_close`]. The server calls, for one connection, strictly in
//! order and never concurrently:
//!
//! 1. `on_open` once, after the connection is registered with its loop;
//! 2. `on_traffic` whenever new input arrived (or a [`ServerHandle::wake`] asked for it).
//!    The handler sees every unconsumed byte in [`Ctx::input`], consumes what it used with
//!    [`Ctx::consume`] (unconsumed bytes are shown again next time, up to the inbound limit)
//!    and answers with [`Ctx::write`]. It may ask for the connection to be closed after its
//!    output is flushed with [`Ctx::close`];
//! 3. `on_close` once, after the connection has left its loop's table and before its
//!    descriptor is closed, so the handle can never reach a descriptor reused by a newer
//!    connection.
//!
//! With a worker pool, `on_traffic` runs on a worker thread with a copy of the input; the
//! output comes back to the connection's loop as a task, and the next `on_traffic` for that
//! connection starts only after the previous one returned. Other threads talk to a
//! connection only through a [`ServerHandle`] (`write`, `wake`, `close`), whose calls are
//! tasks re-validated by the loop: a handle whose connection is gone is ignored.
//!
//! [`ServerHandle`]: super::ServerHandle
//! [`ServerHandle::wake`]: super::ServerHandle::wake

use crate::os::Token;
use std::net::SocketAddr;

/// Names one connection for its whole life: the loop that owns it and its slot and
/// generation there. A handle outlives its connection harmlessly: tasks for it are dropped.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ConnHandle {
    /// The serving loop's index.
    pub reactor: u32,
    /// Slot index and generation within that loop.
    pub token: Token,
}

/// What a handler may know about a connection.
#[derive(Copy, Clone, Debug)]
pub struct ConnInfo {
    /// The connection's handle.
    pub handle: ConnHandle,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// A handler's window on one connection during a callback.
pub struct Ctx<'a> {
    info: ConnInfo,
    input: &'a [u8],
    consumed: usize,
    output: &'a mut Vec<u8>,
    close: bool,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(info: ConnInfo, input: &'a [u8], output: &'a mut Vec<u8>) -> Ctx<'a> {
        Ctx {
            info,
            input,
            consumed: 0,
            output,
            close: false,
        }
    }

    /// The connection.
    pub fn info(&self) -> ConnInfo {
        self.info
    }

    /// Input not consumed yet, oldest first.
    pub fn input(&self) -> &[u8] {
        &self.input[self.consumed..]
    }

    /// Marks the first `n` bytes of [`Ctx::input`] as used.
    pub fn consume(&mut self, n: usize) {
        self.consumed = (self.consumed + n).min(self.input.len());
    }

    /// Queues `data` for the peer, after everything written before.
    pub fn write(&mut self, data: &[u8]) {
        self.output.extend_from_slice(data);
    }

    /// Asks for the connection to be closed once its output is flushed.
    pub fn close(&mut self) {
        self.close = true;
    }

    pub(crate) fn consumed(&self) -> usize {
        self.consumed
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.close
    }
}

/// The application: callbacks for one connection's life. See the [server module docs](crate::server).
pub trait Handler: Send + Sync + 'static {
    /// Per-connection state.
    type State: Send + 'static;

    /// A connection was accepted and registered; `ctx.input()` is empty.
    fn on_open(&self, ctx: &mut Ctx<'_>) -> Self::State;

    /// New input is available (or the connection was woken).
    fn on_traffic(&self, state: &mut Self::State, ctx: &mut Ctx<'_>);

    /// The connection is gone. `state` is `None` if a worker still held it when the
    /// connection closed (the worker's result is then dropped).
    fn on_close(&self, state: Option<Self::State>, info: ConnInfo) {
        let _ = (state, info);
    }
}

/// Writes back every byte it receives.
#[derive(Copy, Clone, Default, Debug)]
pub struct EchoHandler;

impl Handler for EchoHandler {
    type State = ();

    fn on_open(&self, _ctx: &mut Ctx<'_>) {}

    fn on_traffic(&self, _state: &mut (), ctx: &mut Ctx<'_>) {
        let n = ctx.input().len();
        ctx.output.extend_from_slice(&ctx.input[ctx.consumed..]);
        ctx.consume(n);
    }
}

/// Length-prefixed request/response framing that streams: requests may be far larger than
/// any buffer because the body is hashed as it arrives and never held.
///
/// A request is a 4-byte big-endian length `n` followed by `n` bytes. Its response is a
/// frame of length 12: the request's length (4 bytes, big-endian) and the 64-bit FNV-1a hash
/// of its body (8 bytes, big-endian). Responses come in request order.
#[derive(Copy, Clone, Default, Debug)]
pub struct FrameHandler;

/// Where a [`FrameHandler`] connection is within its current request.
#[derive(Clone, Debug)]
pub enum FrameState {
    /// Collecting the 4-byte length prefix; `have` bytes of it are in `prefix`.
    Prefix {
        /// The prefix bytes seen so far.
        prefix: [u8; 4],
        /// How many of them.
        have: usize,
    },
    /// Hashing the body.
    Body {
        /// The request's declared length.
        length: u32,
        /// Body bytes still to come.
        remaining: u32,
        /// FNV-1a state over the body so far.
        hash: u64,
    },
}

/// The FNV-1a 64-bit offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues an FNV-1a 64-bit hash over `data`.
pub fn fnv1a(mut hash: u64, data: &[u8]) -> u64 {
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl FrameHandler {
    fn respond(ctx: &mut Ctx<'_>, length: u32, hash: u64) {
        let mut frame = [0u8; 16];
        frame[..4].copy_from_slice(&12u32.to_be_bytes());
        frame[4..8].copy_from_slice(&length.to_be_bytes());
        frame[8..].copy_from_slice(&hash.to_be_bytes());
        ctx.write(&frame);
    }
}

impl Handler for FrameHandler {
    type State = FrameState;

    fn on_open(&self, _ctx: &mut Ctx<'_>) -> FrameState {
        FrameState::Prefix {
            prefix: [0; 4],
            have: 0,
        }
    }

    fn on_traffic(&self, state: &mut FrameState, ctx: &mut Ctx<'_>) {
        // Every byte offered is consumed: the prefix is copied into the state and the body
        // only hashed, so the inbound buffer never holds more than one read.
        while !ctx.input().is_empty() {
            match state {
                FrameState::Prefix { prefix, have } => {
                    let take = (4 - *have).min(ctx.input().len());
                    prefix[*have..*have + take].copy_from_slice(&ctx.input()[..take]);
                    *have += take;
                    ctx.consume(take);
                    if *have == 4 {
                        let length = u32::from_be_bytes(*prefix);
                        *state = FrameState::Body {
                            length,
                            remaining: length,
                            hash: FNV_OFFSET,
                        };
                    }
                }
                FrameState::Body {
                    remaining, hash, ..
                } => {
                    let take = (*remaining as usize).min(ctx.input().len());
                    *hash = fnv1a(*hash, &ctx.input()[..take]);
                    *remaining -= take as u32;
                    ctx.consume(take);
                }
            }
            if let FrameState::Body {
                length,
                remaining: 0,
                hash,
            } = *state
            {
                FrameHandler::respond(ctx, length, hash);
                *state = FrameState::Prefix {
                    prefix: [0; 4],
                    have: 0,
                };
            }
        }
    }
}
