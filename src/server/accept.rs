//! Accepting connections: the edge-triggered listener drained until `EAGAIN`, the accept
//! error policy, and the hand-off of accepted sockets to sub-loops.
//!
//! Errors, and why each is handled as it is (reactor-notes R13, R14):
//! - `EAGAIN`: the backlog is empty; the next connection raises a new edge.
//! - `EINTR`, `ECONNABORTED`, `ECONNRESET`: one attempt failed or one queued connection
//!   died; the rest of the backlog is still there, so try again at once.
//! - `EMFILE`, `ENFILE` (and anything unexpected): the connection stays in the backlog and
//!   retrying at once would spin. The listener is paused (its interest set to nothing) and
//!   re-armed after `accept_backoff`, which the loop turns into its `epoll_wait` timeout;
//!   re-arming with `EPOLL_CTL_MOD` re-checks readiness, so a waiting backlog raises an
//!   event at once. The server never exits over an accept error.

use super::balance::Balancer;
use super::config::Flaw;
use super::handler::Handler;
use super::mailbox::{Mailbox, Task};
use super::reactor::{Local, Reactor, LISTENER_TOKEN};
use crate::os::{CtlOp, Errno, Events, Fd, Os, OsAtomic};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A loop's listening socket.
pub(crate) struct Listener {
    pub(crate) fd: Fd,
    /// Set while paused after `EMFILE`/`ENFILE`: when to re-arm.
    pub(crate) paused_until: Option<Duration>,
}

/// The main loop's link to its sub-loops.
pub(crate) struct Handoff<O: Os, S: Send + 'static> {
    pub(crate) balancer: Balancer,
    pub(crate) targets: Vec<Arc<Mailbox<O, S>>>,
}

impl<O: Os, H: Handler> Reactor<O, H> {
    /// Accepts until `EAGAIN`, an error that pauses the listener, or the batch limit.
    pub(super) fn accept_ready(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        if listener.paused_until.is_some() {
            return;
        }
        let listener_fd = listener.fd;
        let mut n_accepted = 0usize;
        loop {
            match self.os.accept(listener_fd) {
                Ok((fd, peer)) => {
                    self.adopt(fd, peer);
                    n_accepted += 1;
                    // Flaw `accept-once`: the rest of the backlog raises no new edge and
                    // waits for the next connection to arrive.
                    if self.flaw(Flaw::AcceptOnce) {
                        return;
                    }
                    if n_accepted >= self.cfg.accept_batch_max {
                        // Other work gets a turn; the synthetic accept continues the drain.
                        self.local.push_back(Local::Accept);
                        return;
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR | Errno::ECONNABORTED | Errno::ECONNRESET) => continue,
                // Flaw `emfile-spin`: the connection stays queued, so every retry fails
                // again at once.
                Err(Errno::EMFILE | Errno::ENFILE) if self.flaw(Flaw::EmfileSpin) => continue,
                Err(_) => {
                    self.pause_listener();
                    return;
                }
            }
        }
    }

    /// Gives an accepted socket to its loop: this one, or a sub-loop picked by the balancer.
    fn adopt(&mut self, fd: Fd, peer: SocketAddr) {
        let Some(handoff) = &mut self.handoff else {
            self.mailbox.conns().fetch_add(1);
            self.register(fd, peer);
            return;
        };
        let counts: Vec<&O::Atomic> = handoff.targets.iter().map(|m| m.conns()).collect();
        let target = &handoff.targets[handoff.balancer.pick(peer, &counts)];
        // Counted before the hand-off so that least-connections sees it at once.
        target.conns().fetch_add(1);
        if let Err(Task::Register { fd, .. }) = target.push(Task::Register { fd, peer }, false) {
            target.conns().fetch_sub(1);
            let _ = self.os.close(fd);
        }
    }

    /// Stops listening for `accept_backoff`; see the module docs.
    fn pause_listener(&mut self) {
        let until = self.os.now() + self.cfg.accept_backoff;
        let Some(listener) = &mut self.listener else {
            return;
        };
        listener.paused_until = Some(until);
        let _ = self.os.epoll_ctl(
            self.epfd,
            CtlOp::Mod,
            listener.fd,
            Events::NONE,
            LISTENER_TOKEN,
        );
    }

    /// Re-arms a paused listener whose backoff is over, and tries to accept at once.
    pub(super) fn resume_listener_if_due(&mut self) {
        let Some(listener) = &mut self.listener else {
            return;
        };
        let Some(until) = listener.paused_until else {
            return;
        };
        if self.os.now() < until {
            return;
        }
        listener.paused_until = None;
        let _ = self.os.epoll_ctl(
            self.epfd,
            CtlOp::Mod,
            listener.fd,
            Events::IN | Events::ET,
            LISTENER_TOKEN,
        );
        self.local.push_back(Local::Accept);
    }
}
