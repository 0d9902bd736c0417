//! Measured facts of epoll-semantics.md, one test each, named by what Linux does and citing
//! the experiment. Transcripts use the `.ops` language; `#` starts a comment.

use super::*;

// ---- 4.1 read side ----

/// E01: ET on TCP: a second arrival without reading gives a new IN; a partial read does not.
#[test]
fn et_tcp_second_arrival_without_reading_gives_a_new_in() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         wait p -> none
         write a 10 -> 10
         wait p -> b:in
         wait p -> none
         write a 10 -> 10
         wait p -> b:in          # the buffer was not empty: Linux still queues
         read b 5 -> 5
         wait p -> none
         write a 10 -> 10
         write a 10 -> 10
         wait p -> b:in          # two arrivals, one event
         drain b -> some
         wait p -> none",
    );
}

/// E02, E04: unix stream and polled pipes behave the same: every write is an edge.
#[test]
fn et_unix_and_pipe_every_write_is_an_edge() {
    check(
        "unix a b -> ok
         pipe r w -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         ctl p add r in,et -> ok
         write a 1 -> 1
         write w 1 -> 1
         wait p -> b:in r:in
         write a 1 -> 1
         write w 1 -> 1
         wait p -> b:in r:in",
    );
}

/// E05-E07: LT reports IN on every wait while any byte remains, after partial reads too.
#[test]
fn lt_reports_while_bytes_remain() {
    check(
        "unix a b -> ok
         epoll p -> ok
         ctl p add b in -> ok
         write a 10 -> 10
         wait p -> b:in
         read b 9 -> 9
         wait p -> b:in
         read b 9 -> 1
         wait p -> none",
    );
}

/// E08: data consumed before the wait gives no event, even though the item was queued.
#[test]
fn data_consumed_before_the_wait_is_filtered() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         write a 10 -> 10
         read b 10 -> 10
         wait p -> none",
    );
}

/// E09: ADD with data pending reports at once (ET once, LT repeatedly); ADD of a writable
/// socket with OUT|ET reports OUT.
#[test]
fn add_polls_at_once() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         write a 10 -> 10
         ctl p add b in,et -> ok
         wait p -> b:in
         wait p -> none
         ctl p add a out,et -> ok
         wait p -> a:out",
    );
}

/// E40: an incomplete drain under ET strands the rest until a new arrival.
#[test]
fn incomplete_drain_strands_bytes_until_the_next_arrival() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         write a 10 -> 10
         wait p -> b:in
         read b 4 -> 4
         wait p -> none
         write a 1 -> 1
         wait p -> b:in
         read b 4 -> 4
         wait p -> none
         read b 10 -> 3",
    );
}

// ---- 4.2 ONESHOT and MOD ----

/// E10: ONESHOT reports once; MOD re-arms and reports pending data at once; ADD on a
/// disarmed item is EEXIST; DEL then ENOENT.
#[test]
fn oneshot_disarms_until_mod() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         ctl p add b in,oneshot -> ok
         write a 10 -> 10
         wait p -> b:in
         write a 10 -> 10
         wait p -> none
         ctl p add b in,oneshot -> EEXIST
         ctl p mod b in,oneshot -> ok
         wait p -> b:in
         ctl p del b -> ok
         ctl p del b -> ENOENT",
    );
}

/// E11: ONESHOT swallows the peer's close (HUP/RDHUP) while disarmed; MOD reports it.
#[test]
fn oneshot_swallows_hup_while_disarmed() {
    check(
        "unix a b -> ok
         epoll p -> ok
         ctl p add b in,rdhup,et,oneshot -> ok
         write a 5 -> 5
         wait p -> b:in
         close a -> ok
         wait p -> none
         ctl p mod b in,rdhup,et,oneshot -> ok
         wait p -> b:in,hup,rdhup",
    );
}

/// E12: MOD with the same mask re-reports a still-ready ET item; adding OUT gives IN|OUT.
#[test]
fn mod_with_the_same_mask_rereads_readiness() {
    check(
        "unix a b -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         write a 10 -> 10
         wait p -> b:in
         ctl p mod b in,et -> ok
         wait p -> b:in
         ctl p mod b in,out,et -> ok
         wait p -> b:in,out
         drain b -> some
         ctl p mod b in,et -> ok
         wait p -> none",
    );
}

// ---- 4.3 EPOLLOUT ----

/// E13: the mask is a level snapshot: with IN|OUT|ET each arrival reports IN|OUT; incoming
/// data on an OUT-only registration reports nothing; our own write reports nothing.
#[test]
fn out_is_a_level_snapshot_carried_by_in_wakeups() {
    check(
        "unix a b -> ok
         epoll p -> ok
         ctl p add b out,et -> ok
         wait p -> b:out
         write a 10 -> 10
         wait p -> none          # IN wakeup filtered by the key
         write b 10 -> 10
         wait p -> none
         ctl p mod b in,out,et -> ok
         wait p -> b:in,out
         write a 10 -> 10
         wait p -> b:in,out",
    );
}

/// E14: the peer consuming a buffer that was never full: TCP and pipe give no OUT edge,
/// unix gives one per consumption.
#[test]
fn consumption_of_a_non_full_buffer_wakes_out_only_on_unix() {
    check(
        "tcp ta tb -> ok
         unix ua ub -> ok
         pipe pr pw -> ok
         epoll p -> ok
         ctl p add ta out,et -> ok
         ctl p add ua out,et -> ok
         ctl p add pw out,et -> ok
         wait p -> ta:out ua:out pw:out
         write ta 100 -> 100
         write ua 100 -> 100
         write pw 100 -> 100
         drain tb -> some
         drain ub -> some
         drain pr -> some
         wait p -> ua:out",
    );
}

/// E15: after a TCP fill, the peer's reads make room and the writer gets OUT.
#[test]
fn tcp_fill_then_drain_gives_out() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         ctl p add a out,et -> ok
         wait p -> a:out
         fill a -> some
         wait p -> none
         drain b -> some
         wait p -> a:out
         write a 10 -> 10",
    );
}

/// E17: unix fill: one 4 KiB read leaves too much charged; OUT once at most a quarter is.
#[test]
fn unix_fill_out_needs_a_quarter_free() {
    check(
        "unix a b -> ok
         epoll p -> ok
         ctl p add a out,et -> ok
         wait p -> a:out
         fill a -> some
         write a 1 -> EAGAIN
         read b 4096 -> 4096
         wait p -> none
         drain b -> some
         wait p -> a:out",
    );
}

/// E18: a full pipe wakes its writer only when a whole page is read out of it.
#[test]
fn pipe_fill_out_after_one_page() {
    check(
        "pipe r w -> ok
         epoll p -> ok
         ctl p add w out,et -> ok
         wait p -> w:out
         fill w -> some
         read r 1024 -> 1024
         read r 1024 -> 1024
         read r 1024 -> 1024
         wait p -> none
         read r 1024 -> 1024
         wait p -> w:out
         write w 4096 -> 4096
         write w 1 -> EAGAIN",
    );
}

/// E19: unix stream capacity depends on the write size (per-skb overhead): 278 one-byte
/// writes, 44 writes of 4 KiB, or 233 152 bytes of 64 KiB writes fill 212 992 bytes.
#[test]
fn unix_capacity_depends_on_write_size() {
    for (size, bytes_max) in [(1usize, 278usize), (4096, 180_224), (65_536, 233_152)] {
        let mut k = Kernel::new(Config {
            unix_sndbuf_bytes: 212_992,
            ..Config::default()
        });
        let (a, _b) = k.socketpair().unwrap();
        let chunk = vec![0u8; size];
        let mut total = 0;
        for _ in 0..100_000 {
            match k.writev(a, &[&chunk]) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(e, libc::EAGAIN);
                    break;
                }
            }
        }
        assert_eq!(total, bytes_max, "writes of {size} bytes");
    }
}

// ---- 4.4 close, shutdown, errors ----

/// E20: TCP peer SHUT_WR with unread bytes: IN|RDHUP (IN without RDHUP requested, nothing
/// for mask 0); data before EOF; LT after EOF: IN|OUT|RDHUP; the half-closed side can send.
#[test]
fn tcp_shutdown_wr_gives_rdhup_not_hup() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         epoll q -> ok
         epoll z -> ok
         ctl p add b in,out,rdhup -> ok
         ctl q add b in,et -> ok
         ctl z add b -> ok
         write a 10 -> 10
         shutdown a wr -> ok
         wait q -> b:in
         wait z -> none
         read b 100 -> 10
         read b 100 -> 0
         wait p -> b:in,out,rdhup
         write b 10 -> 10
         read a 100 -> 10",
    );
}

/// E21: TCP peer close: IN|OUT|RDHUP; our write succeeds, the RST answers it: ERR|HUP
/// (mask 0 too), SO_ERROR EPIPE (CLOSE_WAIT), then EPIPE, read 0.
#[test]
fn tcp_write_after_peer_close_is_answered_by_rst() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         epoll z -> ok
         ctl p add b in,out,rdhup,et -> ok
         ctl z add b -> ok
         close a -> ok
         wait p -> b:in,out,rdhup
         wait z -> none
         read b 100 -> 0
         write b 10 -> 10
         wait p -> b:in,out,err,hup,rdhup
         wait z -> b:err,hup
         write b 10 -> EPIPE
         read b 100 -> 0",
    );
    let mut ops = Ops::linux();
    check_with(&mut ops, "tcp a b -> ok\nclose a -> ok\nwrite b 10 -> 10");
    let b = ops.fd("b");
    assert_eq!(ops.kernel.take_error(b), Ok(Some(libc::EPIPE)));
    assert_eq!(ops.kernel.take_error(b), Ok(None));
}

/// E22: RST (SO_LINGER 0): unread data first, then ECONNRESET, then 0; a plain close with
/// unread data in the closer's queue also resets.
#[test]
fn tcp_rst_returns_pending_data_before_econnreset() {
    check(
        "tcp a b -> ok
         epoll p -> ok
         ctl p add b in,out,rdhup,et -> ok
         write a 10 -> 10
         wait p -> b:in,out
         rst a -> ok
         wait p -> b:in,out,err,hup,rdhup
         read b 100 -> 10
         read b 100 -> ECONNRESET
         read b 100 -> 0
         write b 10 -> EPIPE
         tcp c d -> ok
         ctl p add c in,out,rdhup,et -> ok
         wait p -> c:out
         write c 10 -> 10
         close d -> ok           # d had 10 unread bytes
         wait p -> c:in,out,err,hup,rdhup
         read c 100 -> ECONNRESET
         read c 100 -> 0",
    );
}

/// E23: unix peer SHUT_WR: IN|OUT|RDHUP; peer close: IN|OUT|HUP|RDHUP (mask 0: HUP);
/// write EPIPE, read 0.
#[test]
fn unix_peer_close_gives_hup() {
    check(
        "unix a b -> ok
         epoll p -> ok
         epoll z -> ok
         ctl p add b in,out,rdhup,et -> ok
         ctl z add b -> ok
         wait p -> b:out
         shutdown a wr -> ok
         wait p -> b:in,out,rdhup
         wait z -> none
         close a -> ok
         wait p -> b:in,out,hup,rdhup
         wait z -> b:hup
         write b 10 -> EPIPE
         read b 100 -> 0",
    );
}

/// E24: pipe writer closed: IN|HUP, then HUP only (LT, forever, without IN); reader
/// closed: OUT|ERR and EPIPE.
#[test]
fn pipe_close_gives_hup_or_err() {
    check(
        "pipe r w -> ok
         epoll p -> ok
         ctl p add r in -> ok
         write w 10 -> 10
         close w -> ok
         wait p -> r:in,hup
         read r 100 -> 10
         wait p -> r:hup
         read r 100 -> 0
         pipe r2 w2 -> ok
         ctl p del r -> ok
         ctl p add w2 out -> ok
         close r2 -> ok
         wait p -> w2:out,err
         write w2 10 -> EPIPE",
    );
}

/// E25: a refused connect reports ECONNREFUSED (read here by `connect`), then LT
/// IN|OUT|HUP|RDHUP; a listener registered IN|OUT never reports OUT.
#[test]
fn refused_connect_and_listener_never_out() {
    check(
        "epoll p -> ok
         listen l -> ok
         ctl p add l in,out -> ok
         wait p -> none
         close l -> ok
         connect r l -> ECONNREFUSED
         ctl p add r in,out,rdhup -> ok
         wait p -> r:in,out,hup,rdhup
         read r 10 -> 0
         write r 10 -> EPIPE",
    );
}

/// E25: before SO_ERROR is read the refused socket also reports ERR.
#[test]
fn refused_connect_reports_err_until_so_error_is_read() {
    let mut k = Kernel::default();
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 4, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    k.close(l).unwrap();
    let c = k.connect(addr).unwrap();
    let all = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP)
        as u32;
    assert_eq!(k.poll_events(c), Ok(all));
    assert_eq!(k.peer_addr(c), Err(libc::ENOTCONN));
    assert_eq!(k.take_error(c), Ok(Some(libc::ECONNREFUSED)));
    assert_eq!(k.poll_events(c), Ok(all & !(libc::EPOLLERR as u32)));
}

// ---- 4.5 listeners ----

/// E26: ET listener: two connections, one event; accepting one gives nothing more; each new
/// connection is a new event although the queue was not empty.
#[test]
fn et_listener_every_connection_is_an_event() {
    check(
        "epoll p -> ok
         listen l -> ok
         ctl p add l in,et -> ok
         connect c1 l -> ok
         connect c2 l -> ok
         wait p -> l:in
         accept s1 l -> ok
         wait p -> none
         connect c3 l -> ok
         wait p -> l:in
         accept s2 l -> ok
         accept s3 l -> ok
         accept s4 l -> EAGAIN",
    );
}

/// E28: EMFILE with a connection queued: LT keeps reporting IN (busy loop), ET stays quiet;
/// closing a spare descriptor lets the accept through.
#[test]
fn emfile_accept_keeps_the_connection_queued() {
    let mut k = Kernel::new(Config {
        fd_limit: 8,
        ..Config::default()
    });
    let l = k.listen("127.0.0.1:0".parse().unwrap(), 8, false).unwrap();
    let addr = k.local_addr(l).unwrap();
    let lt = k.epoll_create().unwrap();
    let et = k.epoll_create().unwrap();
    k.epoll_ctl(lt, libc::EPOLL_CTL_ADD, l, libc::EPOLLIN as u32, 1)
        .unwrap();
    k.epoll_ctl(
        et,
        libc::EPOLL_CTL_ADD,
        l,
        (libc::EPOLLIN | libc::EPOLLET) as u32,
        2,
    )
    .unwrap();
    let spare = k.eventfd().unwrap();
    let _client = k.connect(addr).unwrap();
    assert_eq!(
        k.eventfd(),
        Err(libc::EMFILE),
        "descriptors 3..8 are all used"
    );
    let mut out = Vec::new();
    assert_eq!(k.epoll_poll(et, 8, &mut out), Ok(1));
    for _ in 0..3 {
        assert_eq!(k.accept(l).map(|_| ()), Err(libc::EMFILE));
        out.clear();
        assert_eq!(k.epoll_poll(lt, 8, &mut out), Ok(1), "LT spins");
        out.clear();
        assert_eq!(k.epoll_poll(et, 8, &mut out), Ok(0), "ET stalls");
    }
    k.close(spare).unwrap();
    let (s, _) = k.accept(l).unwrap();
    k.close(s).unwrap();
    out.clear();
    assert_eq!(k.epoll_poll(lt, 8, &mut out), Ok(0));
}

// ---- 4.6 eventfd ----

/// E29: eventfd: every write wakes IN, every read wakes OUT.
#[test]
fn eventfd_every_write_and_read_is_an_edge() {
    check(
        "eventfd e -> ok
         epoll p -> ok
         ctl p add e in,et -> ok
         efd_write e 1 -> ok
         wait p -> e:in
         efd_write e 1 -> ok
         wait p -> e:in
         efd_read e -> 2
         efd_read e -> EAGAIN
         eventfd f -> ok
         ctl p add f in,out,et -> ok
         wait p -> f:out
         efd_write f 5 -> ok
         wait p -> f:in,out
         efd_read f -> 5
         wait p -> f:out",
    );
}

/// The counter's limits: EINVAL for u64::MAX, EAGAIN past u64::MAX - 1; reads need 8 bytes.
#[test]
fn eventfd_counter_limits() {
    let mut k = Kernel::default();
    let e = k.eventfd().unwrap();
    assert_eq!(k.eventfd_write(e, u64::MAX), Err(libc::EINVAL));
    assert_eq!(k.eventfd_write(e, u64::MAX - 1), Ok(()));
    assert_eq!(k.eventfd_write(e, 1), Err(libc::EAGAIN));
    let mut small = [0u8; 4];
    assert_eq!(k.read(e, &mut small), Err(libc::EINVAL));
    assert_eq!(k.eventfd_read(e), Ok(u64::MAX - 1));
}

// ---- 4.7 epoll_ctl errors ----

/// E30: epoll_ctl's error codes in the kernel's check order.
#[test]
fn ctl_errors() {
    check(
        "epoll p -> ok
         epoll q -> ok
         pipe r w -> ok
         eventfd e -> ok
         ctl p add r in -> ok
         ctl p add r in -> EEXIST
         ctl p mod w in -> ENOENT
         ctl p del w -> ENOENT
         ctl p add p in -> EINVAL
         ctl r add w out -> EINVAL
         wait r -> EINVAL
         wait p max 0 -> EINVAL
         ctl p add e in,exclusive,oneshot -> EINVAL
         ctl p add e in,rdhup,exclusive -> EINVAL
         ctl p add q in,exclusive -> EINVAL
         ctl p add e in,et,exclusive -> ok
         ctl p mod e in,et,exclusive -> EINVAL
         ctl p mod e in -> EINVAL
         ctl p add q in -> ok
         ctl q add p in -> ELOOP
         close w -> ok
         ctl p add w out -> EBADF
         close q -> ok
         ctl q add r in -> EBADF
         wait q -> EBADF",
    );
}

// ---- 4.8 descriptor vs description ----

/// E31: a registration outlives close(fd) while a dup is open, tagged with the old data;
/// DEL of the closed number is EBADF, of the dup ENOENT; closing the last fd removes it.
#[test]
fn registration_belongs_to_the_description() {
    check(
        "unix a b -> ok
         epoll p -> ok
         ctl p add b in,et -> ok
         dup b bd -> ok
         close b -> ok
         write a 1 -> 1
         wait p -> b:in
         ctl p del b -> EBADF
         ctl p del bd -> ENOENT
         ctl p add bd in,et -> ok
         write a 1 -> 1
         wait p -> bd:in b:in
         close bd -> ok
         write a 1 -> EPIPE
         wait p -> none",
    );
}

/// E31: the lowest free descriptor number is reused, and a new file under an old number is
/// a different key.
#[test]
fn reused_number_is_a_new_key() {
    let mut k = Kernel::default();
    let p = k.epoll_create().unwrap();
    let (a, b) = k.socketpair().unwrap();
    assert_eq!((p, a, b), (3, 4, 5));
    k.epoll_ctl(p, libc::EPOLL_CTL_ADD, b, libc::EPOLLIN as u32, 9)
        .unwrap();
    k.close(b).unwrap();
    let e = k.eventfd().unwrap();
    assert_eq!(e, 5);
    assert_eq!(
        k.epoll_ctl(p, libc::EPOLL_CTL_DEL, e, 0, 0),
        Err(libc::ENOENT)
    );
    assert_eq!(
        k.epoll_ctl(p, libc::EPOLL_CTL_ADD, e, libc::EPOLLIN as u32, 0),
        Ok(())
    );
}

// ---- 4.9 instances and waiters ----

/// E32: two instances watching one fd both get every event; EXCLUSIVE with nobody blocked
/// changes nothing.
#[test]
fn two_instances_both_get_every_event() {
    check(
        "epoll p -> ok
         epoll q -> ok
         unix a b -> ok
         ctl p add b in,et,exclusive -> ok
         ctl q add b in,et,exclusive -> ok
         write a 1 -> 1
         wait p -> b:in
         wait q -> b:in",
    );
}

/// E33: EXCLUSIVE with blocked waiters: the first-registered instance with a waiter wakes
/// and the other does not even queue the item (blind in LT); the next write goes to it.
#[test]
fn exclusive_wakes_one_instance_and_the_other_is_blind() {
    let mut k = Kernel::default();
    let (a, b) = k.socketpair().unwrap();
    let pa = k.epoll_create().unwrap();
    let pb = k.epoll_create().unwrap();
    let excl = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;
    k.epoll_ctl(pa, libc::EPOLL_CTL_ADD, b, excl, 1).unwrap();
    k.epoll_ctl(pb, libc::EPOLL_CTL_ADD, b, excl, 2).unwrap();
    k.epoll_add_waiter(pa, 10);
    k.epoll_add_waiter(pb, 20);
    k.writev(a, &[b"x"]).unwrap();
    let mut woken = Vec::new();
    k.take_woken(&mut woken);
    assert_eq!(woken, vec![10]);
    let mut out = Vec::new();
    assert_eq!(
        k.epoll_poll(pb, 8, &mut out),
        Ok(0),
        "B's ready list is empty although b is readable"
    );
    k.writev(a, &[b"x"]).unwrap();
    k.take_woken(&mut woken);
    assert_eq!(woken, vec![10, 20]);
}

/// E41: two threads on one instance: ET wakes only the most recent waiter; LT cascades the
/// wakeup to the other after the first one's scan.
#[test]
fn same_instance_waiters_are_lifo_and_lt_cascades() {
    for (mode, expected_after_scan) in [(libc::EPOLLET as u32, vec![2]), (0, vec![2, 1])] {
        let mut k = Kernel::default();
        let (a, b) = k.socketpair().unwrap();
        let p = k.epoll_create().unwrap();
        k.epoll_ctl(p, libc::EPOLL_CTL_ADD, b, libc::EPOLLIN as u32 | mode, 7)
            .unwrap();
        k.epoll_add_waiter(p, 1);
        k.epoll_add_waiter(p, 2);
        k.writev(a, &[b"x"]).unwrap();
        let mut woken = Vec::new();
        k.take_woken(&mut woken);
        assert_eq!(woken, vec![2], "the newest waiter wakes first");
        let mut out = Vec::new();
        assert_eq!(k.epoll_poll(p, 8, &mut out), Ok(1));
        k.take_woken(&mut woken);
        assert_eq!(woken, expected_after_scan, "mode {mode:#x}");
    }
}

/// E37: the ready list is in order of readiness, not descriptor order.
#[test]
fn ready_list_is_fifo_by_first_wakeup() {
    check(
        "epoll p -> ok
         eventfd e0 -> ok
         eventfd e1 -> ok
         eventfd e2 -> ok
         ctl p add e0 in,et -> ok
         ctl p add e1 in,et -> ok
         ctl p add e2 in,et -> ok
         efd_write e2 1 -> ok
         efd_write e0 1 -> ok
         efd_write e1 1 -> ok
         efd_write e2 1 -> ok     # already queued: keeps its place
         wait p -> e2:in e0:in e1:in",
    );
}

/// E35: maxevents carry-over keeps LT round-robin.
#[test]
fn maxevents_carry_over_keeps_lt_round_robin() {
    check(
        "epoll p -> ok
         eventfd e0 -> ok
         eventfd e1 -> ok
         eventfd e2 -> ok
         ctl p add e0 in -> ok
         ctl p add e1 in -> ok
         ctl p add e2 in -> ok
         efd_write e0 1 -> ok
         efd_write e1 1 -> ok
         efd_write e2 1 -> ok
         wait p max 2 -> e0:in e1:in
         wait p max 2 -> e2:in e0:in
         wait p max 2 -> e1:in e2:in
         wait p max 16 -> e0:in e1:in e2:in",
    );
}

/// E36: ET with maxevents: leftovers are carried over, never lost.
#[test]
fn maxevents_et_leftovers_are_carried_over() {
    check(
        "epoll p -> ok
         eventfd e0 -> ok
         eventfd e1 -> ok
         eventfd e2 -> ok
         ctl p add e0 in,et -> ok
         ctl p add e1 in,et -> ok
         ctl p add e2 in,et -> ok
         efd_write e0 1 -> ok
         efd_write e1 1 -> ok
         efd_write e2 1 -> ok
         wait p max 2 -> e0:in e1:in
         wait p max 2 -> e2:in
         wait p max 2 -> none",
    );
}

/// E38: nested epoll: the outer instance sees the inner one readable (LT repeatedly, ET
/// once) and nothing once the inner item went stale.
#[test]
fn nested_epoll_reports_inner_readiness() {
    check(
        "epoll outer -> ok
         epoll outer_et -> ok
         epoll inner -> ok
         unix a b -> ok
         ctl inner add b in -> ok
         ctl outer add inner in -> ok
         ctl outer_et add inner in,et -> ok
         wait outer -> none
         write a 10 -> 10
         wait outer -> inner:in
         wait outer -> inner:in
         wait outer_et -> inner:in
         wait outer_et -> none
         drain b -> some
         wait outer -> none
         wait inner -> none",
    );
}

/// P9 (source): DEL of a queued item unlinks it from the ready list.
#[test]
fn del_of_a_queued_item_unlinks_it() {
    check(
        "epoll p -> ok
         eventfd e -> ok
         eventfd f -> ok
         ctl p add e in -> ok
         ctl p add f in -> ok
         efd_write e 1 -> ok
         efd_write f 1 -> ok
         ctl p del e -> ok
         wait p -> f:in",
    );
}

// ---- found by differential runs against Linux 6.18 (random .ops scripts) ----

/// An eventfd takes writes of exactly 8 bytes; reads need at least 8.
#[test]
fn eventfd_write_must_be_eight_bytes() {
    let mut k = Kernel::default();
    let e = k.eventfd().unwrap();
    assert_eq!(k.writev(e, &[&[1u8; 10]]), Err(libc::EINVAL));
    assert_eq!(k.writev(e, &[&[1u8; 4], &[0u8; 4]]), Ok(8));
    let mut big = [0u8; 100];
    assert_eq!(k.read(e, &mut big), Ok(8));
}

/// RFC 1122 as Linux does it: data reaching a socket that shut both directions (FIN_WAIT
/// with RCV_SHUTDOWN) resets it (ECONNRESET) and the sender (EPIPE in CLOSE_WAIT); after
/// that, shutdown says ENOTCONN.
#[test]
fn data_to_a_fully_shut_socket_resets_both_ends() {
    check(
        "tcp a b -> ok
         shutdown b rdwr -> ok
         write a 5000 -> 5000
         read a 100 -> 0
         shutdown a rdwr -> ENOTCONN
         write a 10 -> EPIPE
         read b 4 -> ECONNRESET
         drain b -> eof",
    );
}

/// `rst` on a descriptor that is not a socket: the adapter's setsockopt fails with
/// ENOTSOCK and the descriptor is closed all the same.
#[test]
fn rst_of_a_non_socket_closes_it() {
    check(
        "pipe r w -> ok
         rst w -> ENOTSOCK
         write w 1 -> EBADF
         read r 1 -> 0",
    );
}

/// A listener stopped by SHUT_RD is a closed TCP socket: a further shutdown sets its bits
/// and fails with ENOTCONN, after which it reads EOF and polls IN|HUP.
#[test]
fn stopped_listener_is_a_closed_socket() {
    check(
        "epoll p -> ok
         listen l -> ok
         connect c l -> ok
         shutdown l rd -> ok
         read c 1 -> ECONNRESET
         read l 1 -> ENOTCONN
         shutdown l rdwr -> ENOTCONN
         ctl p add l in,et -> ok
         wait p -> l:in,hup
         read l 1 -> 0
         connect d l -> ECONNREFUSED",
    );
}

/// An ET instance watching an LT instance is not re-queued by the inner instance's own
/// scan re-queueing its LT items (6.x `ep_done_scan` wakes waiters, not watchers).
#[test]
fn inner_lt_scan_does_not_requeue_an_outer_et_item() {
    check(
        "epoll inner -> ok
         epoll outer -> ok
         eventfd e -> ok
         ctl inner add e in -> ok
         ctl outer add inner in,et -> ok
         efd_write e 1 -> ok
         wait outer -> inner:in
         wait inner -> e:in
         wait outer -> none",
    );
}

/// A reader that shut its receiving half sends no window update: after a fill it reads
/// what it holds, then end of file; the sender's queued bytes never come (no reset).
#[test]
fn shut_rd_reader_sends_no_window_update() {
    check(
        "tcp a b -> ok
         fill b -> some
         shutdown a rdwr -> ok
         drain a -> some,eof
         read a 4 -> 0",
    );
}

/// The peer acknowledges our FIN a little later (delayed ACK on loopback, about 1.5 ms):
/// SIOCOUTQ counts the FIN until then, and the ACK's state change (FIN_WAIT1 -> FIN_WAIT2)
/// wakes us again, so an ET registration sees a second event after `shutdown`.
#[test]
fn fin_ack_wakes_the_sender_once_more() {
    let mut ops = Ops::linux();
    check_with(
        &mut ops,
        "tcp a b -> ok
         epoll p -> ok
         ctl p add a in,out,et -> ok
         wait p -> a:out
         shutdown a wr -> ok
         wait p -> a:out
         wait p -> none",
    );
    let a = ops.fd("a");
    assert_eq!(ops.kernel.outq(a), Ok(1), "the FIN is not acknowledged yet");
    let due = ops.kernel.next_timer_ns().expect("the delayed ACK");
    ops.kernel.advance(due);
    assert_eq!(ops.kernel.outq(a), Ok(0));
    check_with(&mut ops, "wait p -> a:out");
    // Data from the peer carries the ACK at once: no timer is left behind to fire.
    check_with(
        &mut ops,
        "tcp c d -> ok\nshutdown c wr -> ok\nwrite d 5 -> 5",
    );
    let c = ops.fd("c");
    assert_eq!(ops.kernel.outq(c), Ok(0));
}
