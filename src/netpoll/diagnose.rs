//! The netpoller's stall diagnosis, read back from the simulator's trace: which thread is
//! parked on which descriptor and direction, since which step, and the interleaving that
//! put it there (its `EAGAIN`, the readiness the netpoller took for that descriptor, the
//! token transitions on both sides, the park) in step order.
//!
//! The kernel-side diagnosis (`runner`) says what the kernel holds; this one says why the
//! thread that should read it sleeps. It needs the kept trace (`edgesim run` keeps it).

use super::pd::{CLOSING_BIT, PD_NIL, PD_PARKED, PD_READY, PD_WAIT};
use sim::sched::{Block, Op, Record, Report, ThreadInfo, ThreadState};

/// Trace records shown at most per parked thread, so a long window stays readable.
const INTERLEAVING_LINES_MAX: usize = 60;

/// The atomic operation codes of the simulator's `atomic(op,value)` records (`sim::sync`).
const ATOMIC_OPS: [&str; 6] = ["load", "store", "swap", "cas", "add", "sub"];

/// One paragraph per netpoll thread parked without a deadline.
pub fn stall(report: &Report) -> Vec<String> {
    let records = report.trace.records();
    let netpoller = report
        .threads
        .iter()
        .find(|t| t.name == "netpoller")
        .map(|t| t.tid);
    let mut lines = Vec::new();
    for thread in report.threads.iter().filter(|t| parked_for_good(t)) {
        lines.extend(parked_thread(report, records, netpoller, thread));
    }
    lines
}

fn parked_for_good(thread: &ThreadInfo) -> bool {
    thread.name.starts_with("netpoll-") && thread.state == ThreadState::Blocked(Block::Park, None)
}

/// The syscall that returned `EAGAIN` before a park: its record index, step, descriptor and
/// direction.
struct Eagain {
    idx: usize,
    step: u64,
    fd: i64,
    what: &'static str,
    read: bool,
}

fn parked_thread(
    report: &Report,
    records: &[Record],
    netpoller: Option<u32>,
    thread: &ThreadInfo,
) -> Vec<String> {
    let who = format!("t{} {}", thread.tid, thread.name);
    let park_idx = records
        .iter()
        .rposition(|r| matches!(r, Record::Call { tid, op: Op::Park, .. } if *tid == thread.tid));
    let Some(park_idx) = park_idx else {
        return vec![format!(
            "{who} is parked with no deadline; replay with `edgesim run` for the interleaving"
        )];
    };
    let park_step = step_of(&records[park_idx]);
    let Some(eagain) = last_eagain(&records[..park_idx], thread.tid) else {
        return vec![format!(
            "{who} parked at step {park_step} with no deadline, after no EAGAIN in the trace"
        )];
    };
    let mode = if eagain.read { "read" } else { "write" };
    let info = report.kernel.fd_info(eagain.fd as i32);
    let nothing_to_read = info.as_ref().is_some_and(|info| {
        let ended = info
            .sock
            .is_some_and(|sock| sock.fin_received || sock.reset);
        info.readable_bytes == 0 && !ended
    });
    // A thread another one waits to see end (the server stopping) should have been released
    // by the close, whatever its descriptor holds.
    let awaited_by = report
        .threads
        .iter()
        .find(|t| t.state == ThreadState::Blocked(Block::Join(thread.tid), None))
        .map(|t| t.tid);
    if eagain.read && nothing_to_read && awaited_by.is_none() {
        // An idle reader (an accepting thread with an empty queue, a connection whose
        // client is silent) is where it should be; its story would only hide the culprit.
        return vec![format!(
            "{who} parked on fd {} for read since step {park_step}: nothing is there to read, \
             so waiting is right",
            eagain.fd
        )];
    }
    let mut lines = vec![format!(
        "{who} parked on fd {} for {mode} since step {park_step}, with no deadline; no unpark \
         of t{} follows",
        eagain.fd, thread.tid
    )];
    if let Some(info) = info {
        lines.push(format!(
            "  fd {} now holds {} readable bytes ({} queued out)",
            eagain.fd, info.readable_bytes, info.queued_out_bytes
        ));
    }
    let window = &records[eagain.idx..=park_idx];
    let readiness = first_readiness(window, netpoller, eagain.fd, eagain.read);
    lines.push(match readiness {
        Some(step) => format!(
            "  order: {}({}) = EAGAIN at step {}, then the netpoller took a {mode} readiness \
             for fd {} at step {step}, then t{} parked at step {park_step}",
            eagain.what, eagain.fd, eagain.step, eagain.fd, thread.tid
        ),
        None => format!(
            "  order: {}({}) = EAGAIN at step {}, then t{} parked at step {park_step}; no {mode} \
             readiness for fd {} was reported in between",
            eagain.what, eagain.fd, eagain.step, thread.tid, eagain.fd
        ),
    });
    lines.push(
        "  interleaving (atomic(op,value) = previous; tokens: 0 pdNil, 1 pdReady, 2 pdWait, \
         3 parked):"
            .to_string(),
    );
    let shown = interleaving(window, [Some(thread.tid), awaited_by], netpoller, eagain.fd);
    let skipped = shown.len().saturating_sub(INTERLEAVING_LINES_MAX);
    if skipped > 0 {
        lines.push(format!("    ... {skipped} earlier lines"));
    }
    lines.extend(shown.into_iter().skip(skipped).map(|l| format!("    {l}")));
    lines
}

fn step_of(record: &Record) -> u64 {
    match *record {
        Record::Call { step, .. }
        | Record::Fault { step, .. }
        | Record::Switch { step, .. }
        | Record::Blocked { step, .. } => step,
        Record::Event { .. } => 0,
    }
}

fn last_eagain(records: &[Record], thread: u32) -> Option<Eagain> {
    records
        .iter()
        .enumerate()
        .rev()
        .find_map(|(idx, r)| match *r {
            Record::Call {
                step,
                tid,
                op,
                args,
                ret,
            } if tid == thread && ret == -i64::from(libc::EAGAIN) => {
                let (what, read) = match op {
                    Op::Read => ("read", true),
                    Op::Accept => ("accept", true),
                    Op::Write => ("write", false),
                    _ => return None,
                };
                Some(Eagain {
                    idx,
                    step,
                    fd: args[0],
                    what,
                    read,
                })
            }
            _ => None,
        })
}

/// Whether an event's bits wake the direction (Go's mapping: errors wake both).
fn wakes(events: u32, read: bool) -> bool {
    let both = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
    let own = if read {
        (libc::EPOLLIN | libc::EPOLLRDHUP) as u32
    } else {
        libc::EPOLLOUT as u32
    };
    events & (both | own) != 0
}

fn names_fd(token: u64, fd: i64) -> bool {
    token != u64::MAX && i64::from(token as u32) == fd
}

/// The step of the first `epoll_wait` in `window` that handed the netpoller a readiness of
/// the direction for `fd`.
fn first_readiness(window: &[Record], netpoller: Option<u32>, fd: i64, read: bool) -> Option<u64> {
    let mut last_wait_step = None;
    for record in window {
        match *record {
            Record::Call {
                step,
                tid,
                op: Op::EpollWait,
                ..
            } if Some(tid) == netpoller => last_wait_step = Some(step),
            Record::Call { tid, .. } if Some(tid) == netpoller => last_wait_step = None,
            Record::Event { events, token } if names_fd(token, fd) && wakes(events, read) => {
                if let Some(step) = last_wait_step {
                    return Some(step);
                }
            }
            _ => {}
        }
    }
    None
}

/// The records of the window that matter: everything the parked thread did, and the
/// netpoller's turns that reported `fd` (its `epoll_wait`, the event, and what it did next).
/// The calls of `threads` (the parked thread, and the one waiting for it to end, whose
/// close should have released it) in `window`, and the netpoller's turns that reported
/// `fd`.
fn interleaving(
    window: &[Record],
    threads: [Option<u32>; 2],
    netpoller: Option<u32>,
    fd: i64,
) -> Vec<String> {
    let mut shown = Vec::new();
    let mut in_turn = false;
    for (idx, record) in window.iter().enumerate() {
        match *record {
            Record::Call { tid, op, .. } if Some(tid) == netpoller => {
                if op == Op::EpollWait {
                    in_turn = window[idx + 1..]
                        .iter()
                        .take_while(|r| matches!(r, Record::Event { .. }))
                        .any(|r| matches!(r, Record::Event { token, .. } if names_fd(*token, fd)));
                }
                if in_turn {
                    shown.push(with_gloss(record));
                }
            }
            Record::Call { tid, .. } if threads.contains(&Some(tid)) => {
                shown.push(with_gloss(record))
            }
            Record::Event { token, .. } if in_turn && names_fd(token, fd) => {
                shown.push(format!("{record}  (fd {fd}, registration {})", token >> 32));
            }
            _ => {}
        }
    }
    shown
}

fn token_name(value: i64) -> Option<&'static str> {
    match u64::try_from(value).ok()? {
        PD_NIL => Some("pdNil"),
        PD_READY => Some("pdReady"),
        PD_WAIT => Some("pdWait"),
        PD_PARKED => Some("parked"),
        _ => None,
    }
}

/// A trace line, with the token states spelled out for stores, swaps and CASes (the only
/// writes of small values in the netpoller are token transitions).
fn with_gloss(record: &Record) -> String {
    let Record::Call {
        op: Op::Atomic,
        args,
        ret,
        ..
    } = *record
    else {
        return record.to_string();
    };
    let kind = ATOMIC_OPS.get(args[0] as usize).copied().unwrap_or("?");
    let closing = |word: i64| word as u64 & CLOSING_BIT != 0;
    if kind == "cas" && closing(args[1]) && !closing(ret) {
        return format!("{record}  (deadline word marked closing)");
    }
    let gloss = match (kind, token_name(args[1]), token_name(ret)) {
        ("store", Some(new), _) => format!("token := {new}"),
        ("swap", Some(new), Some(old)) => format!("token := {new}, was {old}"),
        ("cas", Some(new), Some(old)) => format!("cas to {new}, found {old}"),
        _ => return record.to_string(),
    };
    format!("{record}  ({gloss})")
}
