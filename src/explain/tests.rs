//! Unit tests of the explain module's pure parts: regrouping trace records into calls,
//! choosing the picture's window, naming a failure's cause, and JSON strings.

use super::{calls, perfetto::json_string, shrink::cause, Timeline};
use crate::runner::RunResult;
use crate::scenario::Verdict;
use sim::sched::{Hazard, Op, Record};

fn call(step: u64, tid: u32, op: Op, ret: i64) -> Record {
    Record::Call {
        step,
        tid,
        op,
        args: [5, 16],
        ret,
    }
}

#[test]
fn events_and_faults_attach_to_their_calls_and_spans_start_at_the_previous_call() {
    let records = [
        call(1, 1, Op::Read, 3),
        Record::Fault {
            step: 2,
            tid: 1,
            what: "eintr",
        },
        call(2, 1, Op::EpollWait, -4),
        call(3, 2, Op::Write, 3),
        call(7, 1, Op::EpollWait, 1),
        Record::Event {
            events: libc::EPOLLIN as u32,
            token: 9,
        },
    ];
    let calls = calls(&records);
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[1].fault, Some("eintr"));
    assert_eq!(calls[0].fault, None);
    assert_eq!(calls[3].events, vec![(libc::EPOLLIN as u32, 9)]);
    assert_eq!(
        calls[3].since_step, 2,
        "the wait began after thread 1's previous call"
    );
    assert_eq!(calls[2].since_step, 0, "thread 2's first call");
}

fn timeline(end_step: u64, hazards: Vec<Hazard>, certain: Option<u64>) -> Timeline {
    Timeline {
        name: "t".into(),
        seed: 0,
        verdict: Verdict::Stall,
        threads: Vec::new(),
        calls: Vec::new(),
        blamed_hazard: (!hazards.is_empty()).then_some(0),
        hazards,
        connections: Vec::new(),
        end_step,
        stall_certain_step: certain,
        stall_certain_why: String::new(),
        diagnosis: Vec::new(),
        blocked_at_end: Vec::new(),
    }
}

fn hazard(consumed_step: u64, step: u64) -> Hazard {
    Hazard {
        step,
        tid: 1,
        epfd: 3,
        fd: 7,
        token: 0,
        bytes: 10,
        consumed_step,
    }
}

#[test]
fn short_runs_are_shown_whole_and_long_ones_around_the_failure() {
    assert_eq!(timeline(300, Vec::new(), Some(250)).window(400), (0, 300));
    let (start, end) = timeline(10_000, vec![hazard(5_000, 5_100)], Some(5_100)).window(400);
    assert!(start <= 5_000 && end > 5_100, "{start}..{end}");
    assert!(end - start <= 800);
    // An edge taken long before the stall point: the stall point stays in view.
    let (start, end) = timeline(10_000, vec![hazard(100, 9_000)], Some(9_000)).window(400);
    assert!(start <= 9_000 && 9_000 <= end, "{start}..{end}");
    // A failure at the very end still gets a full window.
    let (start, end) = timeline(10_000, Vec::new(), Some(10_000)).window(400);
    assert_eq!((start, end), (9_600, 10_000));
}

fn result(verdict: Verdict, diagnosis: &[&str]) -> RunResult {
    RunResult {
        verdict,
        seed: 0,
        steps: 0,
        switches: 0,
        decisions: 0,
        elapsed_ms: 0.0,
        heal_step: 0,
        trace_hash: 0,
        diagnosis: diagnosis.iter().map(|s| s.to_string()).collect(),
        hazards: Vec::new(),
        trace: Vec::new(),
        environment: None,
    }
}

#[test]
fn a_cause_ignores_numbers_and_names_the_kind_of_stall() {
    let undrained = result(
        Verdict::Stall,
        &["client0 (t4) waits on fd 10: ...; no wakeup is queued since t1 stopped reading before EAGAIN at step 5"],
    );
    assert_eq!(cause(&undrained), "undrained edge");
    let first = result(
        Verdict::Corrupt,
        &["client3: byte 812 differs at offset 0x40"],
    );
    let second = result(Verdict::Corrupt, &["client1: byte 7 differs at offset 0x8"]);
    assert_eq!(cause(&first), cause(&second));
    assert_ne!(cause(&first), cause(&undrained));
}

#[test]
fn json_strings_escape_quotes_backslashes_and_controls() {
    assert_eq!(json_string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
}
