//! Diagnoses from the kernel's point of view: for each client that still waits when the
//! world stalled, the server-side socket that owes it bytes, what is buffered where, how the
//! socket is registered, which thread sleeps on that epoll instance, and the hazard (the
//! step an edge was taken and not drained) that explains why no wakeup will come.

use crate::os::Events;
use sim::kernel::{FdKind, Kernel};
use sim::sched::{Block, Hazard, Report, ThreadInfo, ThreadState};

/// One line per waiting client, plus the hazards the run recorded.
pub fn stall(report: &mut Report) -> Vec<String> {
    let mut lines = Vec::new();
    let threads = report.threads.clone();
    for thread in threads.iter().filter(|t| t.name.starts_with("client")) {
        let ThreadState::Blocked(Block::Epoll(epfd), _) = thread.state else {
            continue;
        };
        lines.push(client_line(
            &mut report.kernel,
            &threads,
            &report.hazards,
            thread,
            epfd,
        ));
    }
    if lines.is_empty() {
        let blocked: Vec<String> = threads
            .iter()
            .filter(|t| matches!(t.state, ThreadState::Blocked(..)))
            .map(|t| format!("t{} {} ({:?})", t.tid, t.name, t.state))
            .collect();
        lines.push(format!("no thread can run: {}", blocked.join(", ")));
    }
    for hazard in &report.hazards {
        lines.push(hazard_line(hazard, &threads));
    }
    let others: Vec<String> = threads
        .iter()
        .filter(|t| !t.name.starts_with("client"))
        .map(|t| format!("t{} {} {}", t.tid, t.name, state_words(t.state)))
        .collect();
    lines.push(format!("other threads: {}", others.join("; ")));
    lines
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

fn client_line(
    kernel: &mut Kernel,
    threads: &[ThreadInfo],
    hazards: &[Hazard],
    client: &ThreadInfo,
    client_epfd: i32,
) -> String {
    let who = format!("{} (t{})", client.name, client.tid);
    let Some(client_fd) = kernel
        .epoll_items(client_epfd)
        .ok()
        .and_then(|items| items.first().map(|i| i.fd))
    else {
        return format!("{who} waits on epoll fd {client_epfd}, which watches nothing");
    };
    let client_info = kernel.fd_info(client_fd);
    let client_readable = client_info.as_ref().map_or(0, |i| i.readable_bytes);
    let Ok(client_addr) = kernel.local_addr(client_fd) else {
        return format!("{who} waits on fd {client_fd}, which is not a connected socket");
    };
    // The server's end of this connection is the socket whose peer is the client.
    let server_fd = kernel
        .open_fds()
        .into_iter()
        .filter(|i| i.kind == FdKind::Tcp && i.fd != client_fd)
        .map(|i| i.fd)
        .find(|&fd| kernel.peer_addr(fd) == Ok(client_addr));
    let Some(server_fd) = server_fd else {
        return format!(
            "{who} waits on fd {client_fd} ({client_readable} bytes readable); the server never \
             accepted it: {}",
            listeners(kernel, threads)
        );
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
    if let Some(h) = hazards.iter().rev().find(|h| h.fd == server_fd) {
        line.push_str(&format!(
            "; no wakeup is queued since t{} stopped reading before EAGAIN at step {} \
             (edge taken at step {})",
            h.tid, h.step, h.consumed_step
        ));
    } else if info.readable_bytes == 0 {
        line.push_str("; the kernel owes nothing: the bytes are in the server's user space");
    }
    line
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
