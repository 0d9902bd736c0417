//! Unit tests of the crate's pure parts: interest masks and event classification, which must
//! follow mio's documented epoll mapping, and the numbering of simulated descriptors.

use crate::event::Event;
use crate::{Interest, Token};

fn event(bits: libc::c_int) -> Event {
    Event::new(bits as u32, Token(7))
}

#[test]
fn interests_are_edge_triggered_and_readable_asks_for_rdhup() {
    let et = libc::EPOLLET as u32;
    assert_eq!(
        Interest::READABLE.epoll_bits(),
        (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 | et
    );
    assert_eq!(Interest::WRITABLE.epoll_bits(), libc::EPOLLOUT as u32 | et);
    assert_eq!(Interest::PRIORITY.epoll_bits(), libc::EPOLLPRI as u32 | et);
    let both = Interest::READABLE | Interest::WRITABLE;
    assert!(both.is_readable() && both.is_writable() && !both.is_priority());
    assert!(!both.is_aio() && !both.is_lio());
    assert_eq!(both.remove(Interest::READABLE), Some(Interest::WRITABLE));
    assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
    assert_eq!(format!("{both:?}"), "READABLE | WRITABLE");
    let mut grown = Interest::READABLE;
    grown |= Interest::PRIORITY;
    assert_eq!(grown, Interest::READABLE.add(Interest::PRIORITY));
}

#[test]
fn events_classify_as_mio_documents_for_epoll() {
    let e = event(libc::EPOLLIN | libc::EPOLLRDHUP);
    assert!(e.is_readable() && e.is_read_closed() && !e.is_write_closed());
    assert_eq!(e.token(), Token(7));
    let rdhup_alone = event(libc::EPOLLRDHUP);
    assert!(!rdhup_alone.is_read_closed(), "RDHUP counts only with IN");
    let hup = event(libc::EPOLLHUP);
    assert!(hup.is_read_closed() && hup.is_write_closed() && !hup.is_readable());
    let err = event(libc::EPOLLERR);
    assert!(err.is_error() && err.is_write_closed());
    let out_err = event(libc::EPOLLOUT | libc::EPOLLERR);
    assert!(out_err.is_writable() && out_err.is_write_closed());
    let in_err = event(libc::EPOLLIN | libc::EPOLLERR);
    assert!(in_err.is_error() && !in_err.is_write_closed());
    let pri = event(libc::EPOLLPRI);
    assert!(pri.is_priority() && pri.is_readable() && !pri.is_aio() && !pri.is_lio());
}

#[test]
fn raw_numbers_name_their_kernel() {
    use crate::sys::RegFd;
    assert!(matches!(RegFd::from_raw(5), RegFd::Real(5)));
    assert!(matches!(
        RegFd::from_raw(crate::SIM_FD_BASE + 5),
        RegFd::Sim(5)
    ));
}
