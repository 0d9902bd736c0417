//! Unit tests of the facade's pure parts: interest masks and event classification, which
//! must follow mio's documented epoll mapping.

use super::event_impl::Event;
use super::{Interest, Token};
use crate::os::{EpollEvent, Events as Bits, Token as SeamToken};

fn event(bits: Bits) -> Event {
    let mut events = super::Events::with_capacity(1);
    events.fill(&[EpollEvent {
        events: bits,
        token: SeamToken(7),
    }]);
    *events.iter().next().expect("one event")
}

#[test]
fn interests_are_edge_triggered_and_readable_asks_for_rdhup() {
    assert_eq!(
        Interest::READABLE.epoll_bits(),
        Bits::IN | Bits::RDHUP | Bits::ET
    );
    assert_eq!(Interest::WRITABLE.epoll_bits(), Bits::OUT | Bits::ET);
    let both = Interest::READABLE | Interest::WRITABLE;
    assert!(both.is_readable() && both.is_writable() && !both.is_priority());
    assert_eq!(both.remove(Interest::READABLE), Some(Interest::WRITABLE));
    assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
    assert_eq!(format!("{both:?}"), "READABLE | WRITABLE");
}

#[test]
fn events_classify_as_mio_documents_for_epoll() {
    let e = event(Bits::IN | Bits::RDHUP);
    assert!(e.is_readable() && e.is_read_closed() && !e.is_write_closed());
    assert_eq!(e.token(), Token(7));
    let rdhup_alone = event(Bits::RDHUP);
    assert!(!rdhup_alone.is_read_closed(), "RDHUP counts only with IN");
    let hup = event(Bits::HUP);
    assert!(hup.is_read_closed() && hup.is_write_closed() && !hup.is_readable());
    let err = event(Bits::ERR);
    assert!(err.is_error() && err.is_write_closed());
    let out_err = event(Bits::OUT | Bits::ERR);
    assert!(out_err.is_writable() && out_err.is_write_closed());
    let in_err = event(Bits::IN | Bits::ERR);
    assert!(in_err.is_error() && !in_err.is_write_closed());
}
