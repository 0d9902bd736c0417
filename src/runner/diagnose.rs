//! Diagnoses from the kernel's point of view: for each client that still waits when the
//! world stalled, the server-side socket that owes it bytes, what is buffered where, how the
//! socket is registered, which thread sleeps on that epoll instance, and the hazard (the
//! step an edge was taken and not drained) that explains why no wakeup will come.

use crate::os::Events;
use sim::kernel::{EpollItemInfo, FdInfo, FdKind, Kernel};
use sim::sched::{Block, Hazard, Op, Record, Report, ThreadInfo, ThreadState};
use std::collections::BTreeMap;

/// One line per waiting client, plus the hazards the run recorded.
pub fn stall(report: &mut Report) -> Vec<String> {
    let threads = report.threads.clone();
    let mut lines = client_lines(report, &threads);
    if lines.is_empty() {
        let blocked: Vec<String> = threads
            .iter()
            .filter(|t| matches!(t.state, ThreadState::Blocked(..)))
            .map(|t| format!("t{} {} {}", t.tid, t.name, state_words(t.state)))
            .collect();
        lines.push(format!("no thread can run: {}", blocked.join(", ")));
        lines.extend(unfinished_joins(&report.kernel, &threads));
    }
    lines.extend(hazards_and_other_threads(report, &threads));
    lines
}

/// One line per thread that waits for another to end while that one sleeps for good: with
/// no client left waiting, a stall is a server that does not stop, and the thread it waits
/// for is the one whose wakeup was lost (a loop asleep with its eventfd at 0 never sees a
/// stop request queued without an eventfd write).
fn unfinished_joins(kernel: &Kernel, threads: &[ThreadInfo]) -> Vec<String> {
    let mut lines = Vec::new();
    for waiter in threads {
        let ThreadState::Blocked(Block::Join(tid), _) = waiter.state else {
            continue;
        };
        let Some(joined) = threads.iter().find(|t| t.tid == tid) else {
            continue;
        };
        let why = match joined.state {
            ThreadState::Blocked(Block::Epoll(epfd), None) => {
                match eventfd_sleeper(kernel, threads, epfd) {
                    Some((_, eventfd)) => format!(
                        "sleeps in epoll_wait on fd {epfd} with its eventfd (fd {eventfd}) at 0, \
                         so a stop request queued for it without an eventfd write is never seen"
                    ),
                    None => format!("sleeps in epoll_wait on fd {epfd} with no timeout"),
                }
            }
            ThreadState::Blocked(Block::Park, None) => {
                "is parked with no deadline, and nothing will unpark it".to_string()
            }
            _ => continue,
        };
        lines.push(format!(
            "t{} {} waits for t{} {} to end, but t{} {why}",
            waiter.tid, waiter.name, joined.tid, joined.name, joined.tid
        ));
    }
    lines
}

/// The hazards the run recorded, then every thread that is not a client and its state.
fn hazards_and_other_threads(report: &Report, threads: &[ThreadInfo]) -> Vec<String> {
    let mut lines: Vec<String> = report
        .hazards
        .iter()
        .map(|hazard| hazard_line(hazard, threads))
        .collect();
    let others: Vec<String> = threads
        .iter()
        .filter(|t| !t.name.starts_with("client"))
        .map(|t| format!("t{} {} {}", t.tid, t.name, state_words(t.state)))
        .collect();
    lines.push(format!("other threads: {}", others.join("; ")));
    lines
}

/// One line per client that waits in `epoll_wait` for the server.
fn client_lines(report: &mut Report, threads: &[ThreadInfo]) -> Vec<String> {
    let mut lines = Vec::new();
    for thread in threads.iter().filter(|t| t.name.starts_with("client")) {
        let ThreadState::Blocked(Block::Epoll(epfd), _) = thread.state else {
            continue;
        };
        let (line, server_fd) =
            client_line(&mut report.kernel, threads, &report.hazards, thread, epfd);
        lines.push(line);
        if let Some(fd) = server_fd {
            lines.extend(last_calls_on(report.trace.records(), fd));
        }
    }
    lines
}

/// Calls on a descriptor a stall diagnosis shows: the last few, where the story ends.
const LAST_CALLS_SHOWN: usize = 4;

/// The last calls made on descriptor `fd` (from the kept trace; nothing without `--trace`).
fn last_calls_on(records: &[Record], fd: i32) -> Option<String> {
    let on_fd = |op: Op, args: [i64; 2]| match op {
        Op::Read | Op::Write | Op::Shutdown | Op::Close | Op::Dup | Op::Reset => {
            args[0] == i64::from(fd)
        }
        // epoll_ctl packs the epoll descriptor in the high half of its first argument.
        Op::EpollCtl => args[0] as i32 == fd,
        _ => false,
    };
    let mut calls: Vec<String> = records
        .iter()
        .rev()
        .filter(|r| matches!(r, Record::Call { op, args, .. } if on_fd(*op, *args)))
        .take(LAST_CALLS_SHOWN)
        .map(|r| r.to_string().trim().to_string())
        .collect();
    if calls.is_empty() {
        return None;
    }
    calls.reverse();
    Some(format!(
        "  last calls on server fd {fd}: {}",
        calls.join("; ")
    ))
}

/// Calls looked at to find who spins: the end of the run.
const SPIN_WINDOW_CALLS: usize = 2000;

/// A busy loop explained: the thread that made most of the last calls, what it kept
/// calling, the event it kept getting back and the descriptor behind that event; then the
/// clients still waiting and the other threads. Needs the trace (`--trace`); without it only
/// the clients and threads are described.
pub fn spin(report: &mut Report) -> Vec<String> {
    let threads = report.threads.clone();
    let mut lines = busiest_thread(report, &threads);
    lines.extend(client_lines(report, &threads));
    lines.extend(hazards_and_other_threads(report, &threads));
    lines
}

/// The busiest thread of the last [`SPIN_WINDOW_CALLS`] calls, its commonest calls, and the
/// event its `epoll_wait` kept returning, with the registration and descriptor behind it.
pub(crate) fn busiest_thread(report: &Report, threads: &[ThreadInfo]) -> Vec<String> {
    let records = report.trace.records();
    let calls: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Call { .. }))
        .map(|(i, _)| i)
        .collect();
    let Some(&first) = calls.get(calls.len().saturating_sub(SPIN_WINDOW_CALLS)) else {
        return Vec::new();
    };
    // Per thread: calls made; per (thread, call text): count; per (thread, epfd, token,
    // events): events returned. BTreeMaps keep the output deterministic.
    let mut per_thread: BTreeMap<u32, usize> = BTreeMap::new();
    let mut per_call: BTreeMap<(u32, String), usize> = BTreeMap::new();
    let mut per_event: BTreeMap<(u32, i64, u64, u32), usize> = BTreeMap::new();
    let mut waiting: Option<(u32, i64)> = None;
    let mut n_calls = 0usize;
    for record in &records[first..] {
        match *record {
            Record::Call { tid, op, args, .. } => {
                n_calls += 1;
                *per_thread.entry(tid).or_default() += 1;
                let text = record.to_string();
                let call = text
                    .split_once(&format!(" t{tid} "))
                    .map_or(text.clone(), |(_, call)| call.to_string());
                *per_call.entry((tid, call)).or_default() += 1;
                waiting = (op == Op::EpollWait).then_some((tid, args[0]));
            }
            Record::Event { events, token } => {
                if let Some((tid, epfd)) = waiting {
                    *per_event.entry((tid, epfd, token, events)).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let Some((&tid, &n_busy)) = per_thread
        .iter()
        .max_by_key(|(tid, n)| (**n, u32::MAX - **tid))
    else {
        return Vec::new();
    };
    let mut top_calls: Vec<(&String, &usize)> = per_call
        .iter()
        .filter(|((t, _), _)| *t == tid)
        .map(|((_, call), n)| (call, n))
        .collect();
    top_calls.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = top_calls
        .iter()
        .take(3)
        .map(|(call, n)| format!("`{call}` x{n}"))
        .collect();
    let mut lines = vec![format!(
        "{} made {n_busy} of the last {n_calls} calls; most often {}",
        thread_name(threads, tid),
        shown.join(", ")
    )];
    let top_event = per_event
        .iter()
        .filter(|((t, ..), _)| *t == tid)
        .max_by_key(|((_, epfd, token, events), n)| (**n, -*epfd, u64::MAX - *token, *events));
    if let Some((&(_, epfd, token, events), &n)) = top_event {
        lines.push(format!(
            "its epoll_wait on fd {epfd} returned token {token:#x} with {} {n} times: {}",
            Events(events),
            event_source(&report.kernel, epfd as i32, token)
        ));
    }
    let kernel = &report.kernel;
    let n_open = kernel.open_fd_count();
    let fd_limit = kernel.config().fd_limit;
    if n_open >= fd_limit.saturating_sub(1) {
        lines.push(format!(
            "the descriptor table is full: {n_open} descriptors open, fd_limit {fd_limit}"
        ));
    }
    lines
}

/// What stands behind a token on an epoll instance: the registration, the descriptor it was
/// added under (and whether that descriptor is still open), and the state of the file.
fn event_source(kernel: &Kernel, epfd: i32, token: u64) -> String {
    let Some(item) = kernel
        .epoll_items(epfd)
        .ok()
        .and_then(|items| items.into_iter().find(|i| i.data == token))
    else {
        return "no registration carries that token any more".to_string();
    };
    // The kernel adds ERR and HUP to every registration; one that asked for no direction
    // hears nothing else, which is worth saying in words.
    let directions = Events::IN | Events::OUT | Events::RDHUP | Events::PRI;
    let asked_for_nothing = item.events & directions.0 == 0;
    let mut text = format!(
        "registered as fd {} for {}{}{}",
        item.fd,
        Events(item.events),
        if asked_for_nothing {
            " (asked for no direction: ERR and HUP are always reported)"
        } else {
            ""
        },
        if item.events & Events::ET.0 == 0 {
            " (level-triggered)"
        } else {
            ""
        }
    );
    let open_fds = kernel.open_fds();
    let same = |i: &&FdInfo| i.description == item.description;
    let info = match open_fds.iter().find(|i| i.fd == item.fd && same(i)) {
        Some(info) => info,
        None => match open_fds.iter().find(same) {
            Some(dup) => {
                text.push_str(&format!(
                    "; fd {} is closed, but its file lives on through fd {} (a dup), so the \
                     registration still reports it",
                    item.fd, dup.fd
                ));
                dup
            }
            None => return text,
        },
    };
    if info.kind == FdKind::EventFd {
        text.push_str(&format!(
            "; an eventfd with counter {}",
            info.readable_bytes
        ));
        if info.readable_bytes > 0 {
            text.push_str(" that nobody reads");
        }
        return text;
    }
    text.push_str(&format!(
        "; {:?} with {} bytes to read and {} queued out",
        info.kind, info.readable_bytes, info.queued_out_bytes
    ));
    let level = item.events & Events::ET.0 == 0;
    if level && item.events & Events::OUT.0 != 0 && info.queued_out_bytes == 0 {
        text.push_str(
            ", writable with nothing queued: level-triggered OUT interest fires on every wait",
        );
    }
    if let Some(sock) = info.sock {
        if sock.fin_received {
            text.push_str(", the peer's FIN received (a read returns 0)");
        }
        if sock.reset {
            text.push_str(", reset by the peer");
        }
    }
    text
}

/// A thread's state in words.
fn state_words(state: ThreadState) -> String {
    match state {
        ThreadState::Runnable => "runnable".to_string(),
        ThreadState::Done => "finished".to_string(),
        ThreadState::Blocked(block, deadline) => {
            let what = match block {
                Block::Epoll(epfd) => format!("in epoll_wait on fd {epfd}"),
                Block::Sleep => "sleeping".to_string(),
                Block::Park => "parked".to_string(),
                Block::Mutex(id) => format!("waiting for lock #{id}"),
                Block::Join(tid) => format!("joining t{tid}"),
                Block::Held => "held off the processor".to_string(),
            };
            match deadline {
                Some(ns) => format!("{what} until {:.3} ms", ns as f64 / 1e6),
                None => what,
            }
        }
    }
}

fn thread_name(threads: &[ThreadInfo], tid: u32) -> String {
    threads
        .get(tid as usize)
        .map_or_else(|| format!("t{tid}"), |t| format!("t{tid} {}", t.name))
}

/// The hazard, in words.
pub fn hazard_line(hazard: &Hazard, threads: &[ThreadInfo]) -> String {
    format!(
        "hazard at step {}: {} went back to epoll_wait on fd {} with {} bytes of fd {} \
         (token {:#x}) unread; it took that edge at step {} and stopped reading before EAGAIN",
        hazard.step,
        thread_name(threads, hazard.tid),
        hazard.epfd,
        hazard.bytes,
        hazard.fd,
        hazard.token,
        hazard.consumed_step,
    )
}

/// Readiness that two threads were handed at once, in words (the first few).
pub(crate) fn shared_wakeups(report: &Report) -> Vec<String> {
    const LINES_MAX: usize = 3;
    let threads = &report.threads;
    report
        .shared_wakeups
        .iter()
        .take(LINES_MAX)
        .map(|wakeup| {
            format!(
                "two threads woke for one socket at step {}: {} took an edge for fd {} \
                 (token {:#x}) from epoll fd {} while {} still held the one it took at \
                 step {} and had not read to the end",
                wakeup.step,
                thread_name(threads, wakeup.tid),
                wakeup.fd,
                wakeup.token,
                wakeup.epfd,
                thread_name(threads, wakeup.other_tid),
                wakeup.other_step,
            )
        })
        .collect()
}

fn client_line(
    kernel: &mut Kernel,
    threads: &[ThreadInfo],
    hazards: &[Hazard],
    client: &ThreadInfo,
    client_epfd: i32,
) -> (String, Option<i32>) {
    let who = format!("{} (t{})", client.name, client.tid);
    let Some(client_fd) = kernel
        .epoll_items(client_epfd)
        .ok()
        .and_then(|items| items.first().map(|i| i.fd))
    else {
        let line = format!("{who} waits on epoll fd {client_epfd}, which watches nothing");
        return (line, None);
    };
    let client_info = kernel.fd_info(client_fd);
    let client_readable = client_info.as_ref().map_or(0, |i| i.readable_bytes);
    let Ok(client_addr) = kernel.local_addr(client_fd) else {
        let line = format!("{who} waits on fd {client_fd}, which is not a connected socket");
        return (line, None);
    };
    // The server's end of this connection is the socket whose peer is the client.
    let server_fd = kernel
        .open_fds()
        .into_iter()
        .filter(|i| i.kind == FdKind::Tcp && i.fd != client_fd)
        .map(|i| i.fd)
        .find(|&fd| kernel.peer_addr(fd) == Ok(client_addr));
    let Some(server_fd) = server_fd else {
        let line = format!(
            "{who} waits on fd {client_fd} ({client_readable} bytes readable); the server never \
             accepted it: {}",
            listeners(kernel, threads)
        );
        return (line, None);
    };
    let info = kernel.fd_info(server_fd).expect("an open descriptor");
    let mut line = format!(
        "{who} waits on fd {client_fd}: server fd {server_fd} holds {} unread bytes \
         ({} queued out, {client_readable} readable at the client)",
        info.readable_bytes, info.queued_out_bytes
    );
    if let Some(sock) = info.sock {
        if sock.fin_received {
            line.push_str(", FIN received");
        }
        if sock.reset {
            line.push_str(", reset");
        }
    }
    line.push_str(&format!(
        ", {}",
        registration(kernel, threads, info.description)
    ));
    let hazard = hazards.iter().rev().find(|h| h.fd == server_fd);
    match hazard {
        // A hazard explains the stall only while the bytes it left are still unread.
        Some(h) if info.readable_bytes > 0 => line.push_str(&format!(
            "; no wakeup is queued since t{} stopped reading before EAGAIN at step {} \
             (edge taken at step {})",
            h.tid, h.step, h.consumed_step
        )),
        _ if info.readable_bytes > 0 => {
            match registration_item(kernel, info.description) {
                Some((_, item)) if !item.armed => line.push_str(
                    "; the ONESHOT registration is disarmed, so the unread bytes raise no \
                     event until it is re-armed",
                ),
                Some(_) => {}
                None => {
                    // Accepted, never registered: a handoff to a loop that did not take it.
                    line.push_str("; no loop has taken the connection, so its bytes wake no one");
                    let sleepers: Vec<String> = kernel
                        .open_fds()
                        .into_iter()
                        .filter(|i| i.kind == FdKind::Epoll)
                        .filter_map(|ep| eventfd_sleeper(kernel, threads, ep.fd))
                        .map(|(thread, eventfd)| {
                            format!("t{} {} (eventfd fd {eventfd})", thread.tid, thread.name)
                        })
                        .collect();
                    if !sleepers.is_empty() {
                        line.push_str(&format!(
                            "; asleep with their eventfd at 0, so a task queued without an \
                             eventfd write is never seen: {}",
                            sleepers.join(", ")
                        ));
                    }
                }
            }
        }
        _ => {
            line.push_str("; the kernel owes nothing: the bytes are in the server's user space");
            line.push_str(&owed_from_user_space(kernel, threads, &info));
        }
    }
    (line, Some(server_fd))
}

/// Why nothing will move bytes the server holds in user space: what its registration can
/// still report, and whether its loop's eventfd would wake it for a queued task.
fn owed_from_user_space(kernel: &Kernel, threads: &[ThreadInfo], info: &FdInfo) -> String {
    let Some((epfd, item)) = registration_item(kernel, info.description) else {
        return String::new();
    };
    let mut text = String::new();
    if !item.armed {
        text.push_str(
            "; the ONESHOT registration is disarmed, so nothing is reported until it is re-armed",
        );
    } else if item.events & Events::OUT.0 == 0 {
        text.push_str(
            "; the registration does not ask for EPOLLOUT, so no event will say the socket has room",
        );
    } else if item.events & Events::ET.0 != 0 {
        text.push_str(&format!(
            "; the socket has room ({} bytes queued out) and is registered for OUT|ET: \
             the next EPOLLOUT edge needs a write that hits EAGAIN first",
            info.queued_out_bytes
        ));
    }
    let out_et = item.events & (Events::OUT.0 | Events::ET.0) == Events::OUT.0 | Events::ET.0;
    if let Some((thread, eventfd)) =
        eventfd_sleeper(kernel, threads, epfd).filter(|_| item.armed && out_et)
    {
        text.push_str(&format!(
            "; t{} {} sleeps with its eventfd (fd {eventfd}) at 0, so a task queued for it \
             without an eventfd write is never seen",
            thread.tid, thread.name
        ));
    }
    text
}

/// The thread asleep on `epfd` with its eventfd's counter at 0, and that eventfd, if one
/// is: a loop woken only by its eventfd never sees a task queued for it without an eventfd
/// write (a lost wakeup).
fn eventfd_sleeper<'a>(
    kernel: &Kernel,
    threads: &'a [ThreadInfo],
    epfd: i32,
) -> Option<(&'a ThreadInfo, i32)> {
    let thread = threads
        .iter()
        .find(|t| matches!(t.state, ThreadState::Blocked(Block::Epoll(e), _) if e == epfd))?;
    let eventfd = kernel.epoll_items(epfd).ok()?.into_iter().find_map(|i| {
        kernel
            .fd_info(i.fd)
            .filter(|f| f.kind == FdKind::EventFd && f.description == i.description)
    })?;
    (eventfd.readable_bytes == 0).then_some((thread, eventfd.fd))
}

/// The epoll instance and registration that watch a description.
fn registration_item(kernel: &Kernel, description: u64) -> Option<(i32, EpollItemInfo)> {
    kernel
        .open_fds()
        .into_iter()
        .filter(|i| i.kind == FdKind::Epoll)
        .find_map(|ep| {
            let items = kernel.epoll_items(ep.fd).ok()?;
            let item = items.into_iter().find(|i| i.description == description)?;
            Some((ep.fd, item))
        })
}

/// How a description is registered, and who sleeps on the epoll instance.
fn registration(kernel: &Kernel, threads: &[ThreadInfo], description: u64) -> String {
    let epolls: Vec<i32> = kernel
        .open_fds()
        .into_iter()
        .filter(|i| i.kind == FdKind::Epoll)
        .map(|i| i.fd)
        .collect();
    for epfd in epolls {
        let Ok(items) = kernel.epoll_items(epfd) else {
            continue;
        };
        if let Some(item) = items.iter().find(|i| i.description == description) {
            let sleeper = threads
                .iter()
                .find(|t| matches!(t.state, ThreadState::Blocked(Block::Epoll(e), _) if e == epfd))
                .map_or_else(
                    || "no thread waits on it".to_string(),
                    |t| format!("t{} {} sleeps on it", t.tid, t.name),
                );
            return format!(
                "registered {} (token {:#x}, {}, {}) on epoll fd {epfd}, {sleeper}",
                Events(item.events),
                item.data,
                if item.armed { "armed" } else { "disarmed" },
                if item.queued { "queued" } else { "not queued" },
            );
        }
    }
    "registered on no epoll instance".to_string()
}

/// The listeners and their queues, for clients the server never accepted.
fn listeners(kernel: &Kernel, threads: &[ThreadInfo]) -> String {
    let described: Vec<String> = kernel
        .open_fds()
        .into_iter()
        .filter(|i| i.kind == FdKind::Listener)
        .map(|i| {
            format!(
                "listener fd {} has {} connections queued, {}",
                i.fd,
                i.readable_bytes,
                registration(kernel, threads, i.description)
            )
        })
        .collect();
    if described.is_empty() {
        "no listener is open".to_string()
    } else {
        described.join("; ")
    }
}

/// Descriptors still open at the end, one line each.
pub fn leaks(kernel: &Kernel) -> Vec<String> {
    kernel
        .open_fds()
        .into_iter()
        .map(|i| {
            format!(
                "fd {} ({:?}) is still open at the end, {} epoll registrations on it",
                i.fd, i.kind, i.watchers
            )
        })
        .collect()
}
