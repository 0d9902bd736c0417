//! The server's knobs: topology, balancing, trigger mode, budgets, buffer limits and the
//! deliberate flaw, in one plain struct that scenario files and the CLI fill in.
//!
//! Every knob has a default that gives the correct, reasonably fast server; a scenario only
//! names what it changes. Names and spellings (`"multi-reactor"`, `"edge-oneshot"`,
//! `"read-once"`) are a contract with the scenario files, so each enum has a `name()` and a
//! `FromStr` that agree, and a parse error lists the names the build knows.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How loops and listeners are arranged.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Model {
    /// One loop accepts and serves every connection.
    SingleReactor,
    /// A main loop accepts and hands each connection to one of `reactors` sub-loops.
    MultiReactor,
    /// `reactors` symmetric loops, each with its own `SO_REUSEPORT` listener on the same
    /// address; the kernel spreads connections.
    ReusePort,
    /// `reactors` threads wait on one epoll instance holding the listener and every
    /// connection (an echo server of its own, [`SharedServer`](super::SharedServer)).
    SharedEpoll,
}

/// How the main loop picks a sub-loop for a new connection.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Balance {
    /// Each sub-loop in turn.
    RoundRobin,
    /// The sub-loop with the fewest open connections (counts read from shared counters).
    LeastConn,
    /// A hash of the peer's IP address, so one client host always lands on one loop.
    SourceHash,
}

/// The epoll trigger mode of connection registrations.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Trigger {
    /// Level-triggered: interest follows need (`EPOLLOUT` only while output is pending).
    Level,
    /// Edge-triggered: registered once for `IN|OUT|RDHUP`, reads and writes run to `EAGAIN`
    /// or to a budget that re-queues the connection.
    Edge,
    /// Edge-triggered one-shot: every event disarms the registration until it is re-armed
    /// with the union of what the connection still needs.
    EdgeOneshot,
}

/// The stock request handlers.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum HandlerKind {
    /// Every byte back as it came.
    Echo,
    /// Length-prefixed requests answered by a length-prefixed digest (see
    /// [`FrameHandler`](super::FrameHandler)).
    Frame,
}

/// A deliberately wrong variant of the server, switched on at one named point of the code.
///
/// The default (`None` in [`ServerConfig::flaw`]) is always the correct server. Each variant
/// is a classic readiness bug; the comment at its switch says what the correct code does
/// instead.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Flaw {
    /// ET read handler reads one buffer per wakeup and waits for another edge.
    ReadOnce,
    /// ET listener accepts one connection per wakeup.
    AcceptOnce,
    /// A partial write keeps the rest but never asks for `EPOLLOUT`.
    NoEpollout,
    /// On `EPOLLOUT` (edge) one write is made, then the loop waits for another edge.
    OutOnce,
    /// ONESHOT registrations are never re-armed after their first event.
    OneshotNoRearm,
    /// ONESHOT re-arms only the direction that fired, stranding the other one.
    OneshotOneDirection,
    /// A read or write that stops at its budget does not re-queue the connection.
    BudgetNoRequeue,
    /// The loop checks its task queues before resetting the wake flag, so a task pushed in
    /// between sees the flag still set, skips the eventfd write, and waits.
    WakeFlagRace,
    /// The level-triggered eventfd is never read, so it stays readable forever.
    EventfdUnreadLt,
    /// Level mode keeps `EPOLLOUT` interest even with nothing to write.
    LtOutAlways,
    /// `read() == 0` is treated as "nothing now" instead of end of file.
    EofIgnored,
    /// `EMFILE`/`ENFILE` from accept is retried at once, forever.
    EmfileSpin,
    /// Events and tasks are matched by slot index only, not generation.
    StaleToken,
    /// Each connection keeps a `dup` of its socket and is closed without `EPOLL_CTL_DEL`, so
    /// its registration outlives the close.
    CloseWithDup,
    /// `EPOLLRDHUP` closes at once, dropping bytes still in the receive queue.
    RdhupDropsTail,
    /// An event carrying only `ERR`/`HUP` is ignored instead of closing the connection.
    ErrorOnlyIgnored,
    /// `shared-epoll` only: registrations are plain ET instead of ET one-shot, and a read
    /// that finds nothing after an event is taken for a dead peer.
    SharedNoOneshot,
}

/// Implements `name()`, `FromStr`, `Display` and the list of names for a plain enum.
macro_rules! named_enum {
    ($ty:ident, $what:literal, [$(($variant:ident, $name:literal)),* $(,)?]) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The kebab-case name used in scenario files and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<$ty, UnknownName> {
                match text {
                    $($name => Ok($ty::$variant),)*
                    _ => Err(UnknownName {
                        what: $what,
                        given: text.to_string(),
                        known: $ty::ALL.iter().map(|v| v.name()).collect(),
                    }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum!(
    Model,
    "model",
    [
        (SingleReactor, "single-reactor"),
        (MultiReactor, "multi-reactor"),
        (ReusePort, "reuseport"),
        (SharedEpoll, "shared-epoll"),
    ]
);

named_enum!(
    Balance,
    "balance",
    [
        (RoundRobin, "round-robin"),
        (LeastConn, "least-conn"),
        (SourceHash, "source-hash"),
    ]
);

named_enum!(
    Trigger,
    "trigger",
    [
        (Level, "level"),
        (Edge, "edge"),
        (EdgeOneshot, "edge-oneshot"),
    ]
);

named_enum!(HandlerKind, "handler", [(Echo, "echo"), (Frame, "frame")]);

named_enum!(
    Flaw,
    "flaw",
    [
        (ReadOnce, "read-once"),
        (AcceptOnce, "accept-once"),
        (NoEpollout, "no-epollout"),
        (OutOnce, "out-once"),
        (OneshotNoRearm, "oneshot-no-rearm"),
        (OneshotOneDirection, "oneshot-one-direction"),
        (BudgetNoRequeue, "budget-no-requeue"),
        (WakeFlagRace, "wake-flag-race"),
        (EventfdUnreadLt, "eventfd-unread-lt"),
        (LtOutAlways, "lt-out-always"),
        (EofIgnored, "eof-ignored"),
        (EmfileSpin, "emfile-spin"),
        (StaleToken, "stale-token"),
        (CloseWithDup, "close-with-dup"),
        (RdhupDropsTail, "rdhup-drops-tail"),
        (ErrorOnlyIgnored, "error-only-ignored"),
        (SharedNoOneshot, "shared-no-oneshot"),
    ]
);

/// A name that none of an enum's variants carries; the message lists the known ones.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnknownName {
    /// What was being parsed (`"flaw"`, `"trigger"`, ...).
    pub what: &'static str,
    /// The text given.
    pub given: String,
    /// Every name the build knows, in declaration order.
    pub known: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; known: {}",
            self.what,
            self.given,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// Everything that shapes a server run. Build it with `ServerConfig::default()` and change
/// fields; [`ServerConfig::validate`] rejects combinations that cannot work.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Loop and listener arrangement.
    pub model: Model,
    /// Sub-loops (multi-reactor) or symmetric loops (reuseport); ignored for single-reactor.
    pub reactors: usize,
    /// Worker threads that run `on_traffic`; 0 runs handlers on their loop.
    pub workers: usize,
    /// How the main loop picks a sub-loop.
    pub balance: Balance,
    /// Trigger mode of connection registrations (listeners are always edge-triggered).
    pub trigger: Trigger,
    /// Size of each loop's shared read buffer: the most one `read` call asks for.
    pub read_buffer_bytes: usize,
    /// Edge modes: bytes read from one connection per turn before it is re-queued.
    pub read_budget_bytes: usize,
    /// Edge modes: `read` calls on one connection per turn before it is re-queued. Bytes
    /// alone are not enough: with small messages and a fast peer every read returns a few
    /// bytes and one connection could keep its loop for thousands of round trips.
    pub reads_per_turn_max: usize,
    /// Edge modes: bytes written to one connection per turn before it is re-queued.
    pub write_budget_bytes: usize,
    /// Unconsumed input kept per connection; reading pauses while it is full.
    pub inbound_bytes_max: usize,
    /// Pending output per connection above which reading pauses (backpressure).
    pub outbound_bytes_max: usize,
    /// Pending output per connection at which reading stops even after the grace period:
    /// the bound on a connection's memory. A peer that writes more than this (plus what the
    /// socket buffers hold) before it reads anything cannot be served by a bounded server.
    pub outbound_hard_bytes_max: usize,
    /// How long a connection paused by backpressure may make no write progress before it is
    /// allowed to read again (up to the hard limit), so a peer that writes a whole request
    /// before reading is not deadlocked (gnet bug R10). Slow readers that do make progress
    /// stay at the soft limit.
    pub backpressure_grace: Duration,
    /// `max_events` of each `epoll_wait`.
    pub events_max: usize,
    /// Normal-priority tasks run per loop turn; the rest wait for the next turn.
    pub task_batch_max: usize,
    /// Connections accepted per listener wakeup before the accept is re-queued.
    pub accept_batch_max: usize,
    /// How long the listener stays paused after `EMFILE`/`ENFILE`.
    pub accept_backoff: Duration,
    /// Listen backlog.
    pub backlog: u32,
    /// Bytes the close protocol tries to flush before it closes anyway.
    pub close_flush_bytes_max: usize,
    /// How long each worker job waits before its handler runs: a handler that waits on
    /// something slow (a database, a disk), which is what a worker pool is for. Zero by
    /// default; only meaningful with `workers > 0`.
    pub job_duration: Duration,
    /// The deliberate bug, or `None` for the correct server.
    pub flaw: Option<Flaw>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            model: Model::MultiReactor,
            reactors: 2,
            workers: 0,
            balance: Balance::RoundRobin,
            trigger: Trigger::Edge,
            read_buffer_bytes: 64 * 1024,
            read_budget_bytes: 256 * 1024,
            reads_per_turn_max: 16,
            write_budget_bytes: 256 * 1024,
            inbound_bytes_max: 256 * 1024,
            outbound_bytes_max: 64 * 1024,
            outbound_hard_bytes_max: 8 * 1024 * 1024,
            backpressure_grace: Duration::from_secs(1),
            events_max: 256,
            task_batch_max: 256,
            accept_batch_max: 256,
            accept_backoff: Duration::from_millis(100),
            backlog: 1024,
            close_flush_bytes_max: 64 * 1024,
            job_duration: Duration::ZERO,
            flaw: None,
        }
    }
}

impl ServerConfig {
    /// Whether `flaw` is the configured one.
    pub fn has(&self, flaw: Flaw) -> bool {
        self.flaw == Some(flaw)
    }

    /// Whether connection registrations are edge-triggered (with or without ONESHOT).
    pub fn edge(&self) -> bool {
        self.trigger != Trigger::Level
    }

    /// The number of loops that serve connections.
    pub fn serving_loops(&self) -> usize {
        match self.model {
            Model::SingleReactor => 1,
            Model::MultiReactor | Model::ReusePort | Model::SharedEpoll => self.reactors,
        }
    }

    /// Rejects a configuration that cannot run, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 9] = [
            (self.serving_loops() >= 1, "reactors must be at least 1"),
            (
                self.model != Model::SharedEpoll,
                "model shared-epoll is its own server: start it with SharedServer::start",
            ),
            (
                self.read_buffer_bytes >= 1,
                "read_buffer_bytes must be at least 1",
            ),
            (
                self.read_budget_bytes >= 1,
                "read_budget_bytes must be at least 1",
            ),
            (
                self.write_budget_bytes >= 1,
                "write_budget_bytes must be at least 1",
            ),
            (
                self.inbound_bytes_max >= 1,
                "inbound_bytes_max must be at least 1",
            ),
            (
                self.outbound_hard_bytes_max > self.outbound_bytes_max,
                "outbound_hard_bytes_max must exceed outbound_bytes_max",
            ),
            (self.events_max >= 1, "events_max must be at least 1"),
            (
                self.task_batch_max >= 1 && self.accept_batch_max >= 1,
                "task_batch_max and accept_batch_max must be at least 1",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }
}
