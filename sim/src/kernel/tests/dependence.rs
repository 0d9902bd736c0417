//! The dependence relation, pair kind by pair kind: which two calls of two threads may give
//! different states in the two orders (`kernel::dependence`). Each row names the pair and
//! what the relation must say; the relation must also be symmetric.

use super::*;
use crate::kernel::{Footprint, KernelCall};

/// Two threads' calls, and whether they are dependent.
type Row = (&'static str, KernelCall, KernelCall, bool);

/// The threads the rows' two calls belong to.
const A: u32 = 1;
const B: u32 = 2;

/// Checks every row against the kernel `ops` holds; lists every wrong row at once.
#[track_caller]
fn check(ops: &Ops, rows: &[Row]) {
    let mut wrong = Vec::new();
    for &(name, a, b, expected) in rows {
        let (fa, fb) = (ops.kernel.footprint(a), ops.kernel.footprint(b));
        let ab = fa.depends(A, &fb, B);
        let ba = fb.depends(B, &fa, A);
        if ab != ba {
            wrong.push(format!(
                "{name}: not symmetric ({ab} one way, {ba} the other)"
            ));
        } else if ab != expected {
            wrong.push(format!("{name}: dependent={ab}, expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Two TCP connections (`a1`-`b1`, `a2`-`b2`), an instance `p` watching `b1` and the
/// eventfd `e`, an instance `q` watching `a2`, a pipe, a listener, all on `config`'s wire.
fn world(config: Config) -> Ops {
    let mut ops = Ops::new(config);
    for line in [
        "tcp a1 b1",
        "tcp a2 b2",
        "epoll p",
        "ctl p add b1 in,et",
        "epoll q",
        "ctl q add a2 in",
        "eventfd e",
        "ctl p add e in",
        "pipe r w",
        "listen l",
    ] {
        let result = ops.step(line);
        assert!(!result.starts_with('E'), "{line} -> {result}");
    }
    ops
}

fn latency() -> Config {
    Config {
        latency_ns_max: 50_000,
        ..Config::default()
    }
}

#[test]
fn calls_on_one_connection_are_dependent_and_on_two_unrelated_ones_are_not() {
    for ops in [world(Config::default()), world(latency())] {
        let fd = |n| ops.fd(n);
        check(
            &ops,
            &[
                (
                    "read and write, one connection",
                    KernelCall::Read(fd("b1")),
                    KernelCall::Write(fd("a1")),
                    true,
                ),
                (
                    "two writes, one connection",
                    KernelCall::Write(fd("b1")),
                    KernelCall::Write(fd("a1")),
                    true,
                ),
                (
                    "read and inq, one socket",
                    KernelCall::Read(fd("b2")),
                    KernelCall::Fd(fd("b2")),
                    true,
                ),
                (
                    "writes on two connections",
                    KernelCall::Write(fd("a1")),
                    KernelCall::Write(fd("b2")),
                    false,
                ),
                (
                    "read and shutdown, two connections",
                    KernelCall::Read(fd("b1")),
                    KernelCall::Fd(fd("a2")),
                    false,
                ),
                (
                    "close and a call on another connection",
                    KernelCall::Close(fd("b2")),
                    KernelCall::Read(fd("a1")),
                    false,
                ),
            ],
        );
    }
}

#[test]
fn a_call_on_a_watched_file_is_dependent_with_the_instances_watching_it() {
    for ops in [world(Config::default()), world(latency())] {
        let fd = |n| ops.fd(n);
        check(
            &ops,
            &[
                (
                    "read of a watched socket, its instance's wait",
                    KernelCall::Read(fd("b1")),
                    KernelCall::EpollWait(fd("p")),
                    true,
                ),
                (
                    "eventfd write, its instance's wait",
                    KernelCall::Fd(fd("e")),
                    KernelCall::EpollWait(fd("p")),
                    true,
                ),
                // Both queue items on one ready list, whose order epoll_wait reports.
                (
                    "two files watched by one instance",
                    KernelCall::Fd(fd("e")),
                    KernelCall::Read(fd("b1")),
                    true,
                ),
                (
                    "an unwatched socket, a wait",
                    KernelCall::Write(fd("b2")),
                    KernelCall::EpollWait(fd("p")),
                    false,
                ),
                (
                    "eventfd write, another instance's wait",
                    KernelCall::Fd(fd("e")),
                    KernelCall::EpollWait(fd("q")),
                    false,
                ),
                (
                    "waits on two instances",
                    KernelCall::EpollWait(fd("p")),
                    KernelCall::EpollWait(fd("q")),
                    false,
                ),
                (
                    "ctl on an instance, its wait",
                    KernelCall::EpollCtl {
                        epfd: fd("q"),
                        fd: fd("b2"),
                    },
                    KernelCall::EpollWait(fd("q")),
                    true,
                ),
                (
                    "ctl of a socket, a call on it",
                    KernelCall::EpollCtl {
                        epfd: fd("p"),
                        fd: fd("b2"),
                    },
                    KernelCall::Write(fd("a2")),
                    true,
                ),
                (
                    "ctl on an instance, another's wait",
                    KernelCall::EpollCtl {
                        epfd: fd("q"),
                        fd: fd("b2"),
                    },
                    KernelCall::EpollWait(fd("p")),
                    false,
                ),
                (
                    "two waits on one instance",
                    KernelCall::EpollWait(fd("p")),
                    KernelCall::EpollWait(fd("p")),
                    true,
                ),
                (
                    "pipe ends",
                    KernelCall::Write(fd("w")),
                    KernelCall::Read(fd("r")),
                    true,
                ),
                (
                    "a pipe and a socket",
                    KernelCall::Write(fd("w")),
                    KernelCall::Read(fd("b1")),
                    false,
                ),
            ],
        );
    }
}

/// A call on one end reaches the instances watching the other end when it wakes them
/// itself: on a synchronous wire a write delivers at once; with latency the delivery, an
/// event of the network, does.
#[test]
fn a_call_reaches_the_peers_instances_only_when_it_wakes_them_itself() {
    let sync = world(Config::default());
    let fd = |n| sync.fd(n);
    check(
        &sync,
        &[
            (
                "write, synchronous wire, the peer's instance",
                KernelCall::Write(fd("b2")),
                KernelCall::EpollWait(fd("q")),
                true,
            ),
            // Nothing is queued on either end, so the window the read opens sends nothing.
            (
                "read, nothing to send, the peer's instance",
                KernelCall::Read(fd("b2")),
                KernelCall::EpollWait(fd("q")),
                false,
            ),
        ],
    );
    let delayed = world(latency());
    let fd = |n| delayed.fd(n);
    check(
        &delayed,
        &[
            (
                "write, latency, the peer's instance",
                KernelCall::Write(fd("b2")),
                KernelCall::EpollWait(fd("q")),
                false,
            ),
            (
                "write, latency, the peer's read",
                KernelCall::Write(fd("b2")),
                KernelCall::Read(fd("a2")),
                true,
            ),
        ],
    );
    // A read that lets the peer send its queued bytes reaches the peer's instance.
    let mut full = world(Config {
        tcp_sndbuf_bytes: 4096,
        tcp_rcvbuf_bytes: 4096,
        ..Config::default()
    });
    assert_eq!(full.step("fill a2"), "some");
    let fd = |n| full.fd(n);
    check(
        &full,
        &[(
            "read, the peer has bytes queued, its instance",
            KernelCall::Read(fd("b2")),
            KernelCall::EpollWait(fd("q")),
            true,
        )],
    );
}

#[test]
fn the_descriptor_table_orders_allocations_closes_and_calls_on_numbers_not_open() {
    let mut ops = world(Config::default());
    let listener = ops.fd("l");
    let port = ops.kernel.local_addr(listener).expect("a listener").port();
    let fd = |n| ops.fd(n);
    let closed = 900;
    check(
        &ops,
        &[
            (
                "two allocations",
                KernelCall::Alloc,
                KernelCall::Alloc,
                true,
            ),
            (
                "an allocation and a close",
                KernelCall::Alloc,
                KernelCall::Close(fd("b2")),
                true,
            ),
            (
                "an allocation and a call on a closed number",
                KernelCall::Alloc,
                KernelCall::Read(closed),
                true,
            ),
            (
                "an allocation and a call on an open one",
                KernelCall::Alloc,
                KernelCall::Read(fd("b1")),
                false,
            ),
            (
                "dup and an allocation",
                KernelCall::Dup(fd("e")),
                KernelCall::Alloc,
                true,
            ),
            (
                "accept and connect to its port",
                KernelCall::Accept(fd("l")),
                KernelCall::Connect(port),
                true,
            ),
            (
                "listen and connect",
                KernelCall::Listen,
                KernelCall::Connect(port + 1),
                true,
            ),
            (
                "accept and an unrelated read",
                KernelCall::Accept(fd("l")),
                KernelCall::Read(fd("b1")),
                false,
            ),
            (
                "close of a listener and connect to it",
                KernelCall::Close(fd("l")),
                KernelCall::Connect(port),
                true,
            ),
        ],
    );
}

/// The scheduler's own objects, and the calls whose reach is not known.
#[test]
fn locks_atomics_threads_and_unknown_calls() {
    let rows: [(&str, Footprint, u32, Footprint, u32, bool); 10] = [
        (
            "one lock",
            Footprint::lock(1),
            A,
            Footprint::lock(1),
            B,
            true,
        ),
        (
            "two locks",
            Footprint::lock(1),
            A,
            Footprint::lock(2),
            B,
            false,
        ),
        (
            "two loads of one atomic",
            Footprint::atomic(7, true),
            A,
            Footprint::atomic(7, true),
            B,
            false,
        ),
        (
            "a load and a store",
            Footprint::atomic(7, true),
            A,
            Footprint::atomic(7, false),
            B,
            true,
        ),
        (
            "stores to two atomics",
            Footprint::atomic(7, false),
            A,
            Footprint::atomic(8, false),
            B,
            false,
        ),
        (
            "a lock and an atomic",
            Footprint::lock(7),
            A,
            Footprint::atomic(7, false),
            B,
            false,
        ),
        (
            "two spawns",
            Footprint::spawn(),
            A,
            Footprint::spawn(),
            B,
            true,
        ),
        (
            "unpark of a thread, its call",
            Footprint::thread(B),
            A,
            Footprint::atomic(3, true),
            B,
            true,
        ),
        (
            "unpark of a thread, another's call",
            Footprint::thread(3),
            A,
            Footprint::atomic(3, true),
            B,
            false,
        ),
        (
            "an unknown call, anything",
            Footprint::any(),
            A,
            Footprint::default(),
            B,
            true,
        ),
    ];
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(_, a, ta, b, tb, expected)| {
            a.depends(*ta, b, *tb) != *expected || b.depends(*tb, a, *ta) != *expected
        })
        .map(|(name, ..)| name.to_string())
        .collect();
    assert!(wrong.is_empty(), "wrong rows: {wrong:?}");
}
