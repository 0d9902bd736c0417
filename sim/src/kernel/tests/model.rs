//! The model beyond the conformance scripts: the strict edge model, latency and segments,
//! faults, determinism, orphans, backlog, SO_REUSEPORT and introspection.

use rand_core::Rng;

use super::*;
use crate::kernel::FdKind;

fn tcp_pair(k: &mut Kernel) -> (i32, i32) {
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    let c = k.connect(addr).unwrap();
    let (s, _) = k.accept(l).unwrap();
    k.close(l).unwrap();
    (c, s)
}

/// A kernel that injects `faults`.
fn faulty_kernel(faults: Faults) -> Kernel {
    Kernel::new(Config {
        faults,
        ..Config::default()
    })
}

/// Reads everything readable now (up to `bytes_max`), in 1 KiB reads.
fn read_all(k: &mut Kernel, fd: i32, bytes_max: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < bytes_max {
        match k.read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

// ---- the strict model ----

/// Strict model: no edge on an arrival to a non-empty buffer (P1 becomes a permanent stall).
#[test]
fn strict_no_edge_on_arrival_to_a_non_empty_buffer() {
    check_with(
        &mut Ops::strict(),
        "tcp a b -> ok
         unix c d -> ok
         pipe r w -> ok
         eventfd e -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         ctl p add d in,et -> ok
         ctl p add r in,et -> ok
         ctl p add e in,et -> ok
         write a 10 -> 10
         write c 10 -> 10
         write w 10 -> 10
         efd_write e 1 -> ok
         wait p -> b:in d:in r:in e:in
         write a 10 -> 10
         write c 10 -> 10
         write w 10 -> 10
         efd_write e 1 -> ok
         wait p -> none          # Linux would report all four again
         drain b -> some
         read d 5 -> 5           # partially drained: still non-empty
         write a 1 -> 1
         write c 1 -> 1
         wait p -> b:in",
    );
}

/// Strict model: the same script under Linux reports every arrival.
#[test]
fn linux_model_reports_the_same_arrivals() {
    check(
        "tcp a b -> ok
         eventfd e -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         ctl p add e in,et -> ok
         write a 10 -> 10
         efd_write e 1 -> ok
         wait p -> b:in e:in
         write a 10 -> 10
         efd_write e 1 -> ok
         wait p -> b:in e:in",
    );
}

/// Strict model: a new bit (RDHUP after IN) is a transition of `mask & requested`; HUP from
/// a peer close too.
#[test]
fn strict_new_condition_bits_are_edges() {
    check_with(
        &mut Ops::strict(),
        "unix a b -> ok
         epoll p -> ok
         ctl p add b in,rdhup,et -> ok
         write a 10 -> 10
         wait p -> b:in
         shutdown a wr -> ok
         wait p -> b:in,rdhup
         close a -> ok
         wait p -> b:in,hup,rdhup",
    );
}

/// Strict model: OUT edges only on the not-writable -> writable transition, so eventfd reads
/// and unix consumption of a non-full buffer give none.
#[test]
fn strict_out_only_on_transition() {
    check_with(
        &mut Ops::strict(),
        "unix a b -> ok
         eventfd e -> ok
         epoll p -> ok
         ctl p add a out,et -> ok
         ctl p add e in,out,et -> ok
         wait p -> a:out e:out
         write a 100 -> 100
         drain b -> some
         efd_write e 1 -> ok
         wait p -> e:in,out
         efd_read e -> 1
         wait p -> none
         fill a -> some
         drain b -> some
         wait p -> a:out",
    );
}

// ---- latency and segments ----

fn latency_config(seed: u64, faults: Faults) -> Config {
    Config {
        latency_ns_max: 1_000,
        seed,
        faults,
        ..Config::default()
    }
}

/// With latency, a write is in flight until `advance` reaches its delivery time; the
/// arrival then queues the ET item.
#[test]
fn latency_delays_delivery_until_advance() {
    let mut k = Kernel::new(latency_config(7, Faults::default()));
    let (a, b) = tcp_pair(&mut k);
    let p = k.epoll_create().unwrap();
    k.epoll_ctl(
        p,
        libc::EPOLL_CTL_ADD,
        b,
        (libc::EPOLLIN | libc::EPOLLET) as u32,
        1,
    )
    .unwrap();
    assert_eq!(k.writev(a, &[b"hello"]), Ok(5));
    assert_eq!(k.outq(a), Ok(5), "unacknowledged while in flight");
    let mut buf = [0u8; 16];
    assert_eq!(k.read(b, &mut buf), Err(libc::EAGAIN));
    let due = k.next_timer_ns().expect("a segment in flight");
    assert!(due <= 1_000);
    k.advance(due);
    assert_eq!(k.next_timer_ns(), None);
    let mut out = Vec::new();
    assert_eq!(k.epoll_poll(p, 8, &mut out), Ok(1));
    assert_eq!(k.read(b, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(k.outq(a), Ok(0));
}

/// A segment's latency counts from the clock of the call that sent it, not from the last
/// delivery pass: a write made at 5 ms, long after the last `advance`, is due no earlier
/// than 5 ms. (Regression: the kernel counted from the last `advance`, so in a world that
/// ran many steps between deliveries every latency shrank toward zero.)
#[test]
fn latency_counts_from_the_sending_calls_clock() {
    const SENT_AT_NS: u64 = 5_000_000;
    for seed in 0..20 {
        let mut k = Kernel::new(latency_config(seed, Faults::default()));
        let (a, b) = tcp_pair(&mut k);
        k.advance(1_000);
        k.set_clock(SENT_AT_NS);
        assert_eq!(k.writev(a, &[b"hello"]), Ok(5));
        let due = k.next_timer_ns().expect("a segment in flight");
        assert!(
            (SENT_AT_NS..=SENT_AT_NS + 1_000).contains(&due),
            "seed {seed}: due at {due}"
        );
        k.advance(due);
        let mut buf = [0u8; 16];
        assert_eq!(k.read(b, &mut buf), Ok(5));
    }
}

/// Segments of one direction never overtake each other, whatever the latency draws; the
/// FIN comes after the data and the orphan's queued bytes are all delivered.
#[test]
fn segments_keep_order_and_fin_comes_last() {
    let faults = Faults {
        segment: 0.5,
        ..Faults::default()
    };
    let mut k = Kernel::new(latency_config(3, faults));
    let (a, b) = tcp_pair(&mut k);
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut now = 0;
    // Bounded: each round advances time by at least one step.
    for _ in 0..100_000 {
        if sent < message.len() {
            if let Ok(n) = k.writev(a, &[&message[sent..]]) {
                sent += n;
                if sent == message.len() {
                    k.close(a).unwrap();
                }
            }
        }
        got.extend(read_all(&mut k, b, usize::MAX));
        if sent == message.len() && k.next_timer_ns().is_none() {
            break;
        }
        now = k.next_timer_ns().unwrap_or(now + 100).max(now + 1);
        k.advance(now);
    }
    got.extend(read_all(&mut k, b, usize::MAX));
    assert_eq!(got.len(), message.len());
    assert!(got == message, "bytes reordered or corrupted");
    let mut buf = [0u8; 8];
    assert_eq!(k.read(b, &mut buf), Ok(0), "EOF after the data");
}

/// Same seed, same faults: the same sequence of deliveries.
#[test]
fn same_seed_same_schedule() {
    let trace = |seed: u64| {
        let faults = Faults {
            segment: 0.3,
            short_read: 0.3,
            short_write: 0.3,
            ..Faults::default()
        };
        let mut k = Kernel::new(latency_config(seed, faults));
        let (a, b) = tcp_pair(&mut k);
        let mut log = Vec::new();
        let data = [7u8; 3000];
        for step in 0..200u64 {
            log.push(format!("w{:?}", k.writev(a, &[&data])));
            k.advance(step * 37);
            let mut buf = [0u8; 2048];
            log.push(format!("r{:?}", k.read(b, &mut buf)));
        }
        log
    };
    assert_eq!(trace(11), trace(11));
    assert_ne!(
        trace(11),
        trace(12),
        "the seed must matter when faults are on"
    );
}

// ---- faults ----

/// With every probability zero the kernel draws nothing: conformance runs do not depend on
/// the stream.
#[test]
fn zero_faults_draw_nothing() {
    let mut k = Kernel::default();
    let before = k.rng.clone().next_u64();
    check_with(
        &mut Ops {
            kernel: k,
            ..Ops::linux()
        },
        "tcp a b -> ok
         write a 100 -> 100
         read b 100 -> 100
         listen l -> ok
         connect c l -> ok
         accept s l -> ok",
    );
    k = Kernel::default();
    assert_eq!(k.rng.next_u64(), before);
    let mut ops = Ops::linux();
    ops.step("tcp a b");
    ops.step("write a 100");
    ops.step("read b 100");
    assert_eq!(ops.kernel.rng.next_u64(), before);
}

/// Short reads return at least one byte and fewer than queued; short writes accept fewer
/// than would fit but never less than Linux's smallest send buffer takes, so a small write
/// to an empty socket is never cut.
#[test]
fn short_reads_and_writes() {
    let mut k = faulty_kernel(Faults {
        short_read: 1.0,
        short_write: 1.0,
        ..Faults::default()
    });
    let (a, b) = tcp_pair(&mut k);
    assert_eq!(
        k.writev(a, &[&[1u8; 100]]),
        Ok(100),
        "a small write goes whole"
    );
    assert_eq!(read_all(&mut k, b, 100).len(), 100);
    let written = k.writev(a, &[&[1u8; 20_000]]).unwrap();
    assert!((4608..20_000).contains(&written), "wrote {written}");
    let mut buf = [0u8; 100];
    let read = k.read(b, &mut buf).unwrap();
    assert!(
        (1..written).contains(&read) || written == 1,
        "read {read} of {written}"
    );
}

/// A short read leaves bytes behind, and like the arrival of a late piece it queues an
/// edge-triggered registration again, under both edge models: a reader that stops at a
/// short read (as tokio does) is told about the rest, as on Linux.
#[test]
fn a_short_read_wakes_the_file_for_the_rest() {
    for edge in [EdgeModel::Linux, EdgeModel::Strict] {
        let mut k = Kernel::new(Config {
            edge,
            faults: Faults {
                short_read: 1.0,
                ..Faults::default()
            },
            ..Config::default()
        });
        let (a, b) = tcp_pair(&mut k);
        assert_eq!(k.writev(a, &[&[5u8; 100]]), Ok(100));
        let ep = k.epoll_create().unwrap();
        let in_et = (libc::EPOLLIN | libc::EPOLLET) as u32;
        k.epoll_ctl(ep, libc::EPOLL_CTL_ADD, b, in_et, 1).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            k.epoll_poll(ep, 4, &mut out),
            Ok(1),
            "{edge:?}: the arrival"
        );
        let mut buf = [0u8; 100];
        let read = k.read(b, &mut buf).unwrap();
        assert!(read < 100, "{edge:?}: the fault cut the read to {read}");
        out.clear();
        assert_eq!(
            k.epoll_poll(ep, 4, &mut out),
            Ok(1),
            "{edge:?}: the rest raises an edge"
        );
    }
}

/// The reset fault kills the connection: both ends see ECONNRESET.
#[test]
fn network_reset_fault() {
    let mut k = faulty_kernel(Faults {
        reset: 1.0,
        ..Faults::default()
    });
    let (a, b) = tcp_pair(&mut k);
    assert_eq!(k.writev(a, &[b"x"]), Err(libc::ECONNRESET));
    let mut buf = [0u8; 4];
    assert_eq!(k.read(b, &mut buf), Err(libc::ECONNRESET));
    assert_eq!(k.read(b, &mut buf), Ok(0));
}

/// accept ECONNABORTED drops the connection (its client is reset); accept EMFILE leaves it
/// queued.
#[test]
fn accept_faults() {
    let mut k = faulty_kernel(Faults {
        accept_abort: 1.0,
        ..Faults::default()
    });
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 4, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    let c = k.connect(addr).unwrap();
    assert_eq!(k.accept(l).map(|_| ()), Err(libc::ECONNABORTED));
    assert_eq!(k.accept(l).map(|_| ()), Err(libc::EAGAIN));
    let mut buf = [0u8; 4];
    assert_eq!(k.read(c, &mut buf), Err(libc::ECONNRESET));

    let mut k = faulty_kernel(Faults {
        accept_emfile: 1.0,
        ..Faults::default()
    });
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 4, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    k.connect(addr).unwrap();
    assert_eq!(k.accept(l).map(|_| ()), Err(libc::EMFILE));
    k.heal();
    assert!(k.accept(l).is_ok(), "the connection stayed queued");
}

/// With an EMFILE window, one `accept_emfile` fault holds the table full: every accept
/// fails with EMFILE until the window's end (a kernel timer), whatever the fault draws
/// meanwhile, and the connection stays queued; healing frees the table at once.
#[test]
fn an_emfile_window_fails_every_accept_until_it_ends() {
    const WINDOW_NS: u64 = 5_000_000;
    let mut k = Kernel::new(Config {
        accept_emfile_window_ns: WINDOW_NS,
        faults: Faults {
            accept_emfile: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    });
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 4, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    k.connect(addr).unwrap();
    k.set_clock(1_000);
    assert_eq!(k.next_timer_ns(), None);
    assert_eq!(k.accept(l).map(|_| ()), Err(libc::EMFILE));
    assert_eq!(k.next_timer_ns(), Some(1_000 + WINDOW_NS));
    // The fault no longer fires; the window alone fails the calls.
    k.cfg.faults.accept_emfile = 0.0;
    k.set_clock(WINDOW_NS);
    k.advance(WINDOW_NS);
    assert_eq!(k.accept(l).map(|_| ()), Err(libc::EMFILE));
    k.advance(1_000 + WINDOW_NS);
    assert_eq!(k.next_timer_ns(), None);
    assert!(k.accept(l).is_ok(), "the connection stayed queued");

    k.cfg.faults.accept_emfile = 1.0;
    k.connect(addr).unwrap();
    assert_eq!(k.accept(l).map(|_| ()), Err(libc::EMFILE));
    k.heal();
    assert_eq!(k.next_timer_ns(), None, "healing ends the window");
    assert!(k.accept(l).is_ok());
}

/// accept of a connection its peer reset while queued: the accept succeeds, the accepted
/// socket reports ERR|HUP and its first read fails with ECONNRESET, and the client was
/// reset too.
#[test]
fn accept_reset_fault() {
    let mut k = faulty_kernel(Faults {
        accept_reset: 1.0,
        ..Faults::default()
    });
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 4, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    let c = k.connect(addr).unwrap();
    let (s, _) = k.accept(l).expect("the accept itself succeeds");
    let ep = k.epoll_create().unwrap();
    k.epoll_ctl(ep, libc::EPOLL_CTL_ADD, s, libc::EPOLLIN as u32, 7)
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(k.epoll_poll(ep, 8, &mut out), Ok(1));
    let (events, token) = out[0];
    assert_eq!(token, 7);
    let err_hup = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
    assert_eq!(events & err_hup, err_hup, "events {events:#x}");
    let mut buf = [0u8; 4];
    assert_eq!(k.read(s, &mut buf), Err(libc::ECONNRESET));
    assert_eq!(k.read(c, &mut buf), Err(libc::ECONNRESET));
}

/// The spurious-readiness fault reports an armed registration with the directions it asked
/// for although its file has nothing; a ONESHOT one is disarmed by the report, and a
/// disarmed one is never reported.
#[test]
fn spurious_ready_fault() {
    let mut k = faulty_kernel(Faults {
        spurious_ready: 1.0,
        ..Faults::default()
    });
    let (a, _b) = tcp_pair(&mut k);
    let ep = k.epoll_create().unwrap();
    let in_oneshot = (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLONESHOT) as u32;
    k.epoll_ctl(ep, libc::EPOLL_CTL_ADD, a, in_oneshot, 3)
        .unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(k.read(a, &mut buf), Err(libc::EAGAIN), "nothing to read");
    let mut out = Vec::new();
    assert_eq!(k.epoll_poll(ep, 8, &mut out), Ok(1));
    assert_eq!(out, vec![(libc::EPOLLIN as u32, 3)]);
    out.clear();
    assert_eq!(
        k.epoll_poll(ep, 8, &mut out),
        Ok(0),
        "disarmed by the report"
    );
    k.epoll_ctl(ep, libc::EPOLL_CTL_MOD, a, in_oneshot, 3)
        .unwrap();
    assert_eq!(k.epoll_poll(ep, 8, &mut out), Ok(1), "re-armed");
}

// ---- connections ----

/// A full accept queue (backlog + 1 connections) keeps the next client in SYN_SENT (mask
/// 0, writes EAGAIN) until an accept makes room; then it connects and wakes.
#[test]
fn full_backlog_holds_the_syn_until_accept() {
    let mut k = Kernel::default();
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 1, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    k.connect(addr).unwrap();
    k.connect(addr).unwrap();
    let late = k.connect(addr).unwrap();
    assert_eq!(k.poll_events(late), Ok(0));
    assert_eq!(k.writev(late, &[b"x"]), Err(libc::EAGAIN));
    let p = k.epoll_create().unwrap();
    k.epoll_ctl(
        p,
        libc::EPOLL_CTL_ADD,
        late,
        (libc::EPOLLOUT | libc::EPOLLET) as u32,
        5,
    )
    .unwrap();
    k.accept(l).unwrap();
    let mut out = Vec::new();
    assert_eq!(k.epoll_poll(p, 8, &mut out), Ok(1));
    assert_eq!(out, vec![(libc::EPOLLOUT as u32, 5)]);
    assert_eq!(k.writev(late, &[b"x"]), Ok(1));
    k.accept(l).unwrap();
    let (s, _) = k.accept(l).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(k.read(s, &mut buf), Ok(1));
}

/// SO_REUSEPORT: several listeners share a port and each gets connections; without it the
/// port is in use.
#[test]
fn reuse_port_spreads_connections() {
    let mut k = Kernel::default();
    let l1 = k.listen("127.0.0.1:0".parse().unwrap(), 64, true).unwrap();
    let addr = k.local_addr(l1).unwrap();
    let l2 = k.listen(addr, 64, true).unwrap();
    assert_eq!(k.listen(addr, 64, false), Err(libc::EADDRINUSE));
    for _ in 0..20 {
        k.connect(addr).unwrap();
    }
    let queued = |k: &Kernel, l| k.fd_info(l).unwrap().readable_bytes;
    assert_eq!(queued(&k, l1) + queued(&k, l2), 20);
    assert!(queued(&k, l1) > 0 && queued(&k, l2) > 0);
}

/// A TCP sender that closes with bytes still queued (the receiver's buffer was full) becomes
/// an orphan: everything is delivered as the receiver reads, then EOF.
#[test]
fn orphan_flushes_queued_bytes_then_fin() {
    let mut k = Kernel::default();
    let (a, b) = tcp_pair(&mut k);
    let chunk = [3u8; 4096];
    let mut sent = 0;
    while let Ok(n) = k.writev(a, &[&chunk]) {
        sent += n;
    }
    assert!(k.outq(a).unwrap() > 0);
    k.close(a).unwrap();
    let got = read_all(&mut k, b, usize::MAX);
    assert_eq!(got.len(), sent);
    let mut buf = [0u8; 4];
    assert_eq!(k.read(b, &mut buf), Ok(0));
    assert_eq!(
        k.writev(b, &[b"late"]),
        Ok(4),
        "the RST comes after the write"
    );
    assert_eq!(k.take_error(b), Ok(Some(libc::EPIPE)));
}

/// Wrong-type calls give Linux's errno.
#[test]
fn wrong_type_calls() {
    let mut k = Kernel::default();
    let (r, w) = k.pipe().unwrap();
    let e = k.eventfd().unwrap();
    let p = k.epoll_create().unwrap();
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 4, false).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(k.read(w, &mut buf), Err(libc::EBADF));
    assert_eq!(k.writev(r, &[b"x"]), Err(libc::EBADF));
    assert_eq!(k.read(p, &mut buf), Err(libc::EINVAL));
    assert_eq!(k.read(l, &mut buf), Err(libc::ENOTCONN));
    assert_eq!(k.writev(l, &[b"x"]), Err(libc::EPIPE));
    assert_eq!(k.accept(e).map(|_| ()), Err(libc::ENOTSOCK));
    assert_eq!(k.shutdown(r, libc::SHUT_WR), Err(libc::ENOTSOCK));
    assert_eq!(k.take_error(e), Err(libc::ENOTSOCK));
    assert_eq!(k.outq(e), Err(libc::ENOTTY));
    assert_eq!(k.inq(l), Err(libc::EINVAL));
    assert_eq!(k.read(99, &mut buf), Err(libc::EBADF));
    assert_eq!(k.close(99), Err(libc::EBADF));
    let (a, _b) = k.socketpair().unwrap();
    assert_eq!(k.accept(a).map(|_| ()), Err(libc::EINVAL));
}

// ---- introspection ----

/// The checkers see kinds, shared descriptions, buffered bytes and epoll item states.
#[test]
fn introspection_reports_descriptors_and_items() {
    let mut k = Kernel::default();
    let (a, b) = tcp_pair(&mut k);
    let bd = k.dup(b).unwrap();
    k.writev(a, &[b"12345"]).unwrap();
    let p = k.epoll_create().unwrap();
    k.epoll_ctl(
        p,
        libc::EPOLL_CTL_ADD,
        b,
        (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
        42,
    )
    .unwrap();
    let fds = k.open_fds();
    assert_eq!(fds.len(), 4);
    let info_b = k.fd_info(b).unwrap();
    assert_eq!(info_b.kind, FdKind::Tcp);
    assert_eq!(info_b.readable_bytes, 5);
    assert_eq!(info_b.description, k.fd_info(bd).unwrap().description);
    assert_ne!(info_b.description, k.fd_info(a).unwrap().description);
    let items = k.epoll_items(p).unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].armed && items[0].queued);
    let mut out = Vec::new();
    k.epoll_poll(p, 8, &mut out).unwrap();
    let items = k.epoll_items(p).unwrap();
    assert!(!items[0].armed && !items[0].queued);
    k.close(a).unwrap();
    assert!(k.fd_info(b).unwrap().sock.unwrap().fin_received);
}

// ---- random operation sequences ----

/// Random operations on a handful of objects, with latency and every fault switched on:
/// nothing panics and the internal invariants hold after every step.
#[test]
fn random_operations_keep_the_invariants() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    let (mut events_total, mut bytes_total) = (0usize, 0usize);
    for seed in 0..40u64 {
        let faults = Faults {
            short_read: 0.2,
            short_write: 0.2,
            segment: 0.3,
            reset: 0.02,
            accept_abort: 0.1,
            accept_emfile: 0.1,
            accept_reset: 0.1,
            spurious_ready: 0.1,
        };
        let config = Config {
            latency_ns_max: 5_000,
            seed,
            faults,
            fd_limit: 40,
            tcp_sndbuf_bytes: 4096,
            tcp_rcvbuf_bytes: 8192,
            ..Config::default()
        };
        let mut k = Kernel::new(config);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fds: Vec<i32> = Vec::new();
        let mut epolls: Vec<i32> = Vec::new();
        let mut listeners: Vec<std::net::SocketAddr> = Vec::new();
        let mut now = 0u64;
        let mut buf = vec![0u8; 10_000];
        let data = vec![5u8; 10_000];
        let mut out = Vec::new();
        for _ in 0..400 {
            let pick = |rng: &mut ChaCha8Rng, fds: &Vec<i32>| -> i32 {
                if fds.is_empty() {
                    99
                } else {
                    fds[(rng.next_u64() % fds.len() as u64) as usize]
                }
            };
            let len = (rng.next_u64() % 6000) as usize + 1;
            match rng.next_u64() % 20 {
                0 => {
                    if let Ok((a, b)) = k.socketpair() {
                        fds.extend([a, b]);
                    }
                }
                1 => {
                    if let Ok((a, b)) = k.pipe() {
                        fds.extend([a, b]);
                    }
                }
                2 => {
                    if let Ok(l) = k.listen("127.0.0.1:0".parse().unwrap(), 2, false) {
                        listeners.push(k.local_addr(l).unwrap());
                        fds.push(l);
                    }
                }
                3 if !listeners.is_empty() => {
                    let addr = listeners[(rng.next_u64() % listeners.len() as u64) as usize];
                    if let Ok(c) = k.connect(addr) {
                        fds.push(c);
                    }
                }
                4 => {
                    if let Ok((s, _)) = k.accept(pick(&mut rng, &fds)) {
                        fds.push(s);
                    }
                }
                5 | 6 => {
                    let _ = k.writev(pick(&mut rng, &fds), &[&data[..len]]);
                }
                7 | 8 => {
                    bytes_total += k.read(pick(&mut rng, &fds), &mut buf[..len]).unwrap_or(0);
                }
                9 => {
                    let fd = pick(&mut rng, &fds);
                    let _ = k.shutdown(fd, (rng.next_u64() % 3) as i32);
                }
                10 => {
                    let fd = pick(&mut rng, &fds);
                    let _ = if rng.next_u64() % 3 == 0 {
                        k.reset(fd)
                    } else {
                        k.close(fd)
                    };
                    fds.retain(|&f| f != fd);
                    epolls.retain(|&f| f != fd);
                }
                11 => {
                    if let Ok(fd) = k.dup(pick(&mut rng, &fds)) {
                        fds.push(fd);
                    }
                }
                12 => {
                    if let Ok(p) = k.epoll_create() {
                        fds.push(p);
                        epolls.push(p);
                    }
                }
                13 | 17 | 18 => {
                    let (p, fd) = (pick(&mut rng, &epolls), pick(&mut rng, &fds));
                    let op = [
                        libc::EPOLL_CTL_ADD,
                        libc::EPOLL_CTL_MOD,
                        libc::EPOLL_CTL_DEL,
                    ][(rng.next_u64() % 3) as usize];
                    let modes = [
                        0,
                        libc::EPOLLET,
                        libc::EPOLLONESHOT,
                        libc::EPOLLET | libc::EPOLLONESHOT,
                    ][(rng.next_u64() % 4) as usize];
                    let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | modes) as u32;
                    let _ = k.epoll_ctl(p, op, fd, events, fd as u64);
                }
                14..=16 => {
                    out.clear();
                    events_total += k
                        .epoll_poll(pick(&mut rng, &epolls), 4, &mut out)
                        .unwrap_or(0);
                }
                _ => {
                    now += rng.next_u64() % 3_000;
                    k.advance(now);
                    if let Ok(e) = k.eventfd() {
                        let _ = k.eventfd_write(e, 1);
                        fds.push(e);
                    }
                }
            }
            k.assert_invariants();
        }
        // Everything in flight lands and every descriptor closes cleanly.
        while let Some(due) = k.next_timer_ns() {
            k.advance(due);
        }
        for fd in fds {
            let _ = k.close(fd);
        }
        k.assert_invariants();
        assert_eq!(k.open_fd_count(), 0, "seed {seed}");
    }
    // The runs must have exercised the model, not only its error paths.
    assert!(events_total > 100, "only {events_total} events reported");
    assert!(bytes_total > 100_000, "only {bytes_total} bytes read");
}

/// The kernel counts the ET corner cases it passes through (for `explore --coverage`).
#[test]
fn coverage_counters_see_the_corner_cases() {
    use crate::kernel::coverage::{take, Case};
    take();
    check(
        "tcp a b -> ok
         eventfd e -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         ctl p add e in,et,oneshot -> ok
         write a 10 -> 10
         write a 10 -> 10          # arrival on a non-empty buffer, item already queued
         read b 4 -> 4             # partial read
         efd_write e 1 -> ok
         efd_write e 1 -> ok       # eventfd coalescing
         wait p max 1 -> b:in      # carry-over of e
         read b 100 -> 16
         wait p -> e:in
         ctl p mod e in,et,oneshot -> ok
         close a -> ok
         tcp c d -> ok             # descriptor numbers reused",
    );
    let counts = take();
    for case in [
        Case::ArrivalOnNonEmpty,
        Case::ArrivalWhileQueued,
        Case::PartialReadBeforeWait,
        Case::EventfdCoalescing,
        Case::MaxeventsCarryOver,
        Case::OneshotRearmWithData,
        Case::ModRearmUnderEt,
        Case::FdNumberReuse,
    ] {
        assert!(counts[case as usize] > 0, "{case:?} not counted");
    }
    assert_eq!(counts[Case::EmfileOnAccept as usize], 0);
}

/// Strict model: OUT rising on a TCP socket whose writes never hit the limit is still an
/// edge (Linux gives none: SOCK_NOSPACE was never set).
#[test]
fn strict_tcp_out_rises_without_nospace() {
    for (mut ops, expected) in [(Ops::strict(), "a:out"), (Ops::linux(), "none")] {
        ops.kernel = Kernel::new(Config {
            edge: ops.kernel.config().edge,
            ..Config::small_buffers()
        });
        check_with(
            &mut ops,
            "tcp a b -> ok
             epoll p -> ok
             ctl p add a out,et -> ok
             wait p -> a:out
             write a 65536 -> 65536    # the peer's receive buffer is full now
             write a 12000 -> 12000    # more than two thirds of the send buffer queued
             wait p -> none",
        );
        check_with(&mut ops, &format!("drain b -> some\nwait p -> {expected}"));
    }
}
