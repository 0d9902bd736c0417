//! Unit tests of the poll descriptor's transitions and of the blocking-looking operations,
//! each in a small simulated world.

use super::pd::{Mode, PollDesc, PollErr};
use super::{EchoServer, Flaw, NetError, NetFd, Netpoll, NetpollConfig};
use crate::os::{EpollEvent, Events, Fd, Os, OsJoin, SimOs, Token};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_readiness_with_nobody_parked_is_kept_and_consumed_without_sleeping() {
    SimOs::conformance(|os| {
        let pd = PollDesc::new(&os, Fd(3), 1);
        assert!(pd.unblock(Mode::Read, true, None).is_none());
        // The token is now ready: a wait returns at once instead of parking (a park here
        // would deadlock this one-thread world).
        assert_eq!(pd.wait(&os, Mode::Read, None), Ok(()));
        // The write direction is independent.
        pd.set_deadline(Mode::Write, Some(Duration::ZERO));
        assert_eq!(pd.wait(&os, Mode::Write, None), Err(PollErr::Timeout));
    });
}

#[test]
fn without_the_ready_token_a_readiness_with_nobody_parked_is_dropped() {
    SimOs::conformance(|os| {
        let pd = PollDesc::new(&os, Fd(3), 1);
        assert!(pd
            .unblock(Mode::Read, true, Some(Flaw::NoReadyToken))
            .is_none());
        // Nothing pending: with a deadline already passed, the wait reports the timeout
        // rather than a readiness.
        pd.set_deadline(Mode::Read, Some(Duration::ZERO));
        assert_eq!(
            pd.wait(&os, Mode::Read, Some(Flaw::NoReadyToken)),
            Err(PollErr::Timeout)
        );
    });
}

#[test]
fn reset_clears_a_pending_readiness_and_reports_closing() {
    SimOs::conformance(|os| {
        let pd = PollDesc::new(&os, Fd(3), 1);
        assert!(pd.unblock(Mode::Read, true, None).is_none());
        assert_eq!(pd.reset(&os, Mode::Read), Ok(()));
        pd.set_deadline(Mode::Read, Some(Duration::ZERO));
        // Had the readiness survived the reset, this wait would return Ok.
        assert_eq!(pd.wait(&os, Mode::Read, None), Err(PollErr::Timeout));
        pd.evict();
        assert_eq!(pd.reset(&os, Mode::Write), Err(PollErr::Closing));
    });
}

/// A socket pair whose first end is registered with a running netpoller.
fn with_pair<R: 'static>(f: impl FnOnce(SimOs, &NetFd<SimOs>, Fd) -> R + 'static) -> R {
    SimOs::conformance(move |os| {
        let poller = Arc::new(Netpoll::new(os, None).expect("netpoll"));
        let netpoller = {
            let poller = Arc::clone(&poller);
            os.spawn("netpoller", move || poller.run())
        };
        let (a, b) = os.socketpair().expect("socketpair");
        let conn = NetFd::open(&poller, a).expect("register");
        let result = f(os, &conn, b);
        drop(conn);
        os.close(b).expect("close");
        poller.stop();
        netpoller.join().expect("netpoller");
        poller.release();
        result
    })
}

#[test]
fn a_parked_reader_is_woken_by_data_from_another_thread() {
    let got = with_pair(|os, conn, peer| {
        let writer = os.spawn("writer", move || {
            os.sleep(Duration::from_millis(1));
            assert_eq!(os.write(peer, b"hello"), Ok(5));
        });
        let mut buf = [0u8; 16];
        let n = conn.read(&mut buf).expect("read");
        writer.join().expect("writer");
        buf[..n].to_vec()
    });
    assert_eq!(got, b"hello");
}

#[test]
fn a_read_deadline_wakes_the_parked_reader_with_a_timeout() {
    let (result, waited) = with_pair(|os, conn, _peer| {
        let start = os.now();
        conn.set_read_deadline(Some(start + Duration::from_millis(3)));
        let mut buf = [0u8; 16];
        let result = conn.read(&mut buf);
        (result, os.now() - start)
    });
    assert_eq!(result, Err(NetError::Timeout));
    assert!(waited >= Duration::from_millis(3), "waited {waited:?}");
}

#[test]
fn evicting_wakes_the_parked_reader_with_closed() {
    let result = with_pair(|os, conn, _peer| {
        let handle = conn.handle();
        let closer = os.spawn("closer", move || {
            os.sleep(Duration::from_millis(1));
            handle.evict();
        });
        let mut buf = [0u8; 16];
        let result = conn.read(&mut buf);
        closer.join().expect("closer");
        result
    });
    assert_eq!(result, Err(NetError::Closed));
}

#[test]
fn the_echo_server_stops_with_every_descriptor_closed() {
    let (first_free, free_after) = SimOs::conformance(|os| {
        let probe = os.eventfd().expect("eventfd");
        os.close(probe).expect("close");
        let server = EchoServer::start(
            os,
            NetpollConfig::default(),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .expect("start");
        let client = os.connect(server.local_addr()).expect("connect");
        os.sleep(Duration::from_millis(1));
        assert_eq!(os.write(client, b"ping"), Ok(4));
        let mut buf = [0u8; 4];
        let mut got = 0;
        for _ in 0..1000 {
            match os.read(client, &mut buf[got..]) {
                Ok(n) => got += n,
                Err(_) => os.sleep(Duration::from_micros(100)),
            }
            if got == 4 {
                break;
            }
        }
        assert_eq!(&buf, b"ping");
        os.close(client).expect("close");
        server.stop().expect("stop");
        // Every descriptor the test and the server opened is closed again.
        let after = os.eventfd().expect("eventfd");
        os.close(after).expect("close");
        (probe, after)
    });
    assert_eq!(first_free, free_after);
}

#[test]
fn a_second_waiter_on_one_direction_is_a_double_wait() {
    let result = std::panic::catch_unwind(|| {
        SimOs::conformance(|os| {
            let pd = Arc::new(PollDesc::new(&os, Fd(3), 1));
            let other = {
                let pd = Arc::clone(&pd);
                os.spawn("first", move || {
                    let _ = pd.wait(&os, Mode::Read, None);
                })
            };
            os.sleep(Duration::from_millis(1));
            let _ = pd.wait(&os, Mode::Read, None);
            let _ = other.join();
        })
    });
    let message = match result {
        Err(payload) => panic_text(&payload),
        Ok(()) => String::from("no panic"),
    };
    assert!(message.contains("double wait"), "{message}");
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn an_event_for_an_earlier_registration_of_the_number_is_dropped() {
    SimOs::conformance(|os| {
        let poller = Arc::new(Netpoll::new(os, None).expect("netpoll"));
        let (a, b) = os.socketpair().expect("socketpair");
        let conn = NetFd::open(&poller, a).expect("register");
        let pd = conn.poll_desc();
        let event = |seq| EpollEvent {
            events: Events::IN,
            token: Token::new(a.0 as u32, seq),
        };
        // No netpoller thread runs: the test hands events to `ready` itself.
        poller.ready(event(pd.seq() + 1));
        pd.set_deadline(Mode::Read, Some(Duration::ZERO));
        assert_eq!(pd.wait(&os, Mode::Read, None), Err(PollErr::Timeout));
        poller.ready(event(pd.seq()));
        pd.set_deadline(Mode::Read, None);
        assert_eq!(pd.wait(&os, Mode::Read, None), Ok(()));
        drop(conn);
        os.close(b).expect("close");
        poller.release();
    });
}
