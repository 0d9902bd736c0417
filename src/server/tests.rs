//! Unit tests of the server's pure parts: the names scenario files rely on, configuration
//! checks, and the balancer's choices.

use super::balance::Balancer;
use super::config::{Balance, Flaw, Model, ServerConfig, Trigger};
use super::handler::{ConnHandle, ConnInfo, Ctx, FrameHandler, Handler};
use crate::os::{OsAtomic, Token};
use std::net::SocketAddr;

/// A counter for balancer tests (the balancer only reads).
struct Count(u64);

impl OsAtomic for Count {
    fn load(&self) -> u64 {
        self.0
    }
    fn store(&self, _value: u64) {}
    fn swap(&self, _value: u64) -> u64 {
        self.0
    }
    fn compare_exchange(&self, _current: u64, _new: u64) -> Result<u64, u64> {
        Err(self.0)
    }
    fn fetch_add(&self, _delta: u64) -> u64 {
        self.0
    }
    fn fetch_sub(&self, _delta: u64) -> u64 {
        self.0
    }
}

#[test]
fn every_flaw_name_round_trips_and_unknown_names_list_the_known_ones() {
    assert_eq!(Flaw::ALL.len(), 17);
    for flaw in Flaw::ALL {
        assert_eq!(flaw.name().parse::<Flaw>(), Ok(*flaw));
    }
    let error = "read-twice".parse::<Flaw>().unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("unknown flaw \"read-twice\"; known: read-once, accept-once"));
    assert!(message.ends_with("error-only-ignored, shared-no-oneshot"));
    assert_eq!("edge-oneshot".parse::<Trigger>(), Ok(Trigger::EdgeOneshot));
    assert_eq!("least-conn".parse::<Balance>(), Ok(Balance::LeastConn));
    assert_eq!("single-reactor".parse::<Model>(), Ok(Model::SingleReactor));
    assert_eq!("shared-epoll".parse::<Model>(), Ok(Model::SharedEpoll));
}

#[test]
fn validate_names_the_field_that_cannot_work() {
    assert_eq!(ServerConfig::default().validate(), Ok(()));
    let no_loops = ServerConfig {
        reactors: 0,
        ..ServerConfig::default()
    };
    assert_eq!(
        no_loops.validate(),
        Err("reactors must be at least 1".to_string())
    );
    let limits_inverted = ServerConfig {
        outbound_hard_bytes_max: 10,
        outbound_bytes_max: 10,
        ..ServerConfig::default()
    };
    assert!(limits_inverted
        .validate()
        .unwrap_err()
        .contains("outbound_hard_bytes_max"));
}

fn peer(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn balancer_policies_pick_as_documented() {
    let counts = [Count(5), Count(2), Count(2)];
    let refs: Vec<&Count> = counts.iter().collect();
    let any = peer("127.0.0.1:1000");

    let mut round_robin = Balancer::new(Balance::RoundRobin);
    let picks: Vec<usize> = (0..5).map(|_| round_robin.pick(any, &refs)).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1]);

    // The first of the least loaded wins the tie.
    let mut least = Balancer::new(Balance::LeastConn);
    assert_eq!(least.pick(any, &refs), 1);

    // One host sticks to one loop whatever its port.
    let mut hash = Balancer::new(Balance::SourceHash);
    let first = hash.pick(peer("10.1.2.3:1"), &refs);
    assert_eq!(hash.pick(peer("10.1.2.3:65000"), &refs), first);
}

fn frame_responses(chunks: &[&[u8]]) -> Vec<u8> {
    let handler = FrameHandler;
    let info = ConnInfo {
        handle: ConnHandle {
            reactor: 0,
            token: Token::new(0, 1),
        },
        peer: peer("127.0.0.1:1"),
    };
    let mut output = Vec::new();
    let mut state = handler.on_open(&mut Ctx::new(info, &[], &mut output));
    for chunk in chunks {
        let mut ctx = Ctx::new(info, chunk, &mut output);
        handler.on_traffic(&mut state, &mut ctx);
        assert_eq!(
            ctx.consumed(),
            chunk.len(),
            "the frame handler consumes everything"
        );
    }
    output
}

#[test]
fn frame_handler_answers_the_same_however_the_bytes_are_split() {
    let mut stream = Vec::new();
    for body in [&b""[..], b"a", b"hello world"] {
        stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
        stream.extend_from_slice(body);
    }
    let whole = frame_responses(&[&stream]);
    assert_eq!(whole.len(), 3 * 16);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(frame_responses(&bytewise), whole);
    // The empty request's digest is the FNV-1a offset basis.
    assert_eq!(&whole[..4], &12u32.to_be_bytes());
    assert_eq!(&whole[4..8], &0u32.to_be_bytes());
    assert_eq!(&whole[8..16], &super::FNV_OFFSET.to_be_bytes());
}

#[test]
fn a_reused_slot_does_not_answer_to_its_old_token() {
    use super::conn::Slab;
    use crate::os::Fd;
    let mut slab: Slab<()> = Slab::new();
    let old = slab.insert(Fd(10), peer("127.0.0.1:1"));
    assert!(slab.remove(old).is_some());
    let new = slab.insert(Fd(10), peer("127.0.0.1:2"));
    assert_eq!(new.index(), old.index(), "the freed slot is reused first");
    assert_ne!(new.generation(), old.generation());
    assert!(
        slab.get(old, false).is_none(),
        "a stale token reaches nothing"
    );
    // Flaw `stale-token` compares the index only, so the stale token reaches the newcomer.
    assert_eq!(slab.get(old, true).map(|conn| conn.token), Some(new));
    assert_eq!(slab.tokens(), vec![new]);
}

#[test]
fn a_burst_of_tasks_costs_one_eventfd_write_until_the_loop_resets_the_flag() {
    use super::mailbox::{Mailbox, Task};
    use crate::os::{Os, RealOs};
    use std::collections::VecDeque;
    let os = RealOs::new();
    let mailbox: Mailbox<RealOs, ()> = Mailbox::new(&os).unwrap();
    let eventfd = mailbox.waker().fd();
    // The loop is about to sleep: flag reset, queue checked and empty.
    mailbox.waker().reset();
    assert!(!mailbox.has_tasks());
    for _ in 0..100 {
        assert!(mailbox.push(Task::Stop, true).is_ok());
    }
    assert_eq!(
        os.eventfd_read(eventfd),
        Ok(1),
        "one write for the whole burst"
    );
    let mut taken = VecDeque::new();
    assert!(!mailbox.take(&mut taken, 10));
    assert_eq!(taken.len(), 100, "urgent tasks are taken whole");
    assert!(!mailbox.has_tasks());
    // Once shut, pushes are refused and the eventfd is closed.
    assert!(mailbox.shut().is_empty());
    assert!(mailbox.push(Task::Stop, false).is_err());
}
