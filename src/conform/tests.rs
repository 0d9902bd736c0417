//! Parser checks: every kind of malformed line is rejected with its line number and a
//! message naming what was expected, and a well-formed line keeps its text as written.

use super::parse::{parse, Name, Op, WAIT_EVENTS_DEFAULT};
use crate::os::{CtlOp, Events};

#[track_caller]
fn check_error(source: &str, line: usize, needle: &str) {
    let error = parse(source).expect_err("the script should be rejected");
    assert_eq!(error.line, line, "wrong line for: {}", error.message);
    assert!(
        error.message.contains(needle),
        "message {:?} does not contain {:?}",
        error.message,
        needle
    );
}

#[test]
fn text_is_trimmed_and_comments_stripped() {
    let script = parse("# header\n\n  epoll p   # the instance\nwait p max 2\n").unwrap();
    let texts: Vec<&str> = script.lines.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(texts, ["epoll p", "wait p max 2"]);
    assert_eq!(script.lines[0].number, 3);
    assert_eq!(
        script.lines[1].op,
        Op::Wait {
            epoll: Name(0),
            max_events: 2
        }
    );
}

#[test]
fn ctl_flags_and_default_wait() {
    let script =
        parse("epoll p\npipe r w\nctl p add r in,et,oneshot\nctl p del r\nwait p\n").unwrap();
    assert_eq!(script.names, ["p", "r", "w"]);
    assert_eq!(
        script.lines[2].op,
        Op::Ctl {
            epoll: Name(0),
            op: CtlOp::Add,
            target: Name(1),
            interest: Events::IN | Events::ET | Events::ONESHOT,
        }
    );
    assert_eq!(
        script.lines[3].op,
        Op::Ctl {
            epoll: Name(0),
            op: CtlOp::Del,
            target: Name(1),
            interest: Events::NONE,
        }
    );
    assert_eq!(
        script.lines[4].op,
        Op::Wait {
            epoll: Name(0),
            max_events: WAIT_EVENTS_DEFAULT
        }
    );
}

#[test]
fn unknown_op_lists_the_known_ones() {
    check_error(
        "epoll p\nfrobnicate p\n",
        2,
        "unknown op 'frobnicate' (expected one of: tcp, unix",
    );
}

#[test]
fn missing_and_extra_arguments_show_usage() {
    check_error(
        "epoll p\nctl p add\n",
        2,
        "missing argument X (usage: ctl P add|mod|del X",
    );
    check_error("tcp a\n", 1, "missing argument B (usage: tcp A B)");
    check_error(
        "eventfd e\nclose e e\n",
        2,
        "unexpected extra argument 'e' (usage: close X)",
    );
}

#[test]
fn names_must_be_defined_once_and_before_use() {
    check_error("close a\n", 1, "undefined name 'a'");
    check_error(
        "pipe r w\n# later\nunix r x\n",
        3,
        "name 'r' is already defined on line 1",
    );
    check_error("eventfd E\n", 1, "bad name 'E'");
}

#[test]
fn bad_flags_numbers_and_keywords() {
    check_error(
        "epoll p\nctl p add p in,edge\n",
        2,
        "bad flag 'edge' (expected a comma list of: in, out",
    );
    check_error("epoll p\nctl p put p\n", 2, "bad ctl operation 'put'");
    check_error("pipe r w\nwrite w -3\n", 2, "bad number '-3' for N");
    check_error("pipe r w\nread r 99999999\n", 2, "bad number '99999999'");
    check_error("epoll p\nwait p most 3\n", 2, "expected 'max'");
    check_error(
        "unix a b\nshutdown a both\n",
        2,
        "expected one of: rd, wr, rdwr",
    );
}
