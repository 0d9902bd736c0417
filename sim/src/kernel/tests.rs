//! Unit tests of the kernel model: each measured fact of epoll-semantics.md (experiment ids
//! E01..E42) as a short script in the `.ops` language of DESIGN.md, run by a tiny
//! interpreter and compared with the transcript Linux 6.18 gives (or the notes state).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Config, EdgeModel, Faults, Kernel};

mod dependence;
mod facts;
mod model;

/// A tiny `.ops` interpreter over the kernel, mirroring the conformance runner's meaning of
/// each operation (`tcp A B` = listen, connect, accept, close the listener; `fill` writes
/// 4 KiB chunks until EAGAIN; `drain` reads 64 KiB chunks until EAGAIN or EOF; `connect`
/// reads SO_ERROR).
pub(super) struct Ops {
    pub(super) kernel: Kernel,
    names: BTreeMap<String, i32>,
    tokens: Vec<String>,
    listen_addrs: BTreeMap<String, SocketAddr>,
}

const FILL_CHUNK_BYTES: usize = 4096;
const FILL_WRITES_MAX: usize = 16 * 1024;
const DRAIN_CHUNK_BYTES: usize = 64 * 1024;
const DRAIN_READS_MAX: usize = 4096;

fn errno_name(errno: i32) -> String {
    let names = [
        (libc::EAGAIN, "EAGAIN"),
        (libc::EBADF, "EBADF"),
        (libc::ECONNABORTED, "ECONNABORTED"),
        (libc::ECONNREFUSED, "ECONNREFUSED"),
        (libc::ECONNRESET, "ECONNRESET"),
        (libc::EEXIST, "EEXIST"),
        (libc::EINVAL, "EINVAL"),
        (libc::EMFILE, "EMFILE"),
        (libc::ENOENT, "ENOENT"),
        (libc::ENOTCONN, "ENOTCONN"),
        (libc::EPERM, "EPERM"),
        (libc::EPIPE, "EPIPE"),
        (libc::ELOOP, "ELOOP"),
        (libc::ENOTSOCK, "ENOTSOCK"),
        (libc::ENOTTY, "ENOTTY"),
        (libc::EADDRINUSE, "EADDRINUSE"),
    ];
    match names.iter().find(|(n, _)| *n == errno) {
        Some((_, name)) => name.to_string(),
        None => format!("E{errno}"),
    }
}

fn flags_of(list: &str) -> u32 {
    let mut events = 0;
    for flag in list.split(',').filter(|f| !f.is_empty()) {
        events |= match flag {
            "in" => libc::EPOLLIN,
            "pri" => libc::EPOLLPRI,
            "out" => libc::EPOLLOUT,
            "rdhup" => libc::EPOLLRDHUP,
            "et" => libc::EPOLLET,
            "oneshot" => libc::EPOLLONESHOT,
            "exclusive" => libc::EPOLLEXCLUSIVE,
            other => panic!("unknown flag {other}"),
        } as u32;
    }
    events
}

fn unit<T>(result: Result<T, i32>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(e) => errno_name(e),
    }
}

impl Ops {
    pub(super) fn new(config: Config) -> Ops {
        Ops {
            kernel: Kernel::new(config),
            names: BTreeMap::new(),
            tokens: Vec::new(),
            listen_addrs: BTreeMap::new(),
        }
    }

    pub(super) fn linux() -> Ops {
        Ops::new(Config::default())
    }

    pub(super) fn strict() -> Ops {
        Ops::new(Config {
            edge: EdgeModel::Strict,
            ..Config::default()
        })
    }

    /// The descriptor of `name` (-1 when never defined, so calls fail with EBADF).
    pub(super) fn fd(&self, name: &str) -> i32 {
        self.names.get(name).copied().unwrap_or(-1)
    }

    fn token(&mut self, name: &str) -> u64 {
        match self.tokens.iter().position(|t| t == name) {
            Some(i) => i as u64,
            None => {
                self.tokens.push(name.to_string());
                (self.tokens.len() - 1) as u64
            }
        }
    }

    fn define(&mut self, name: &str, fd: i32) {
        self.names.insert(name.to_string(), fd);
    }

    /// Runs one operation and returns its result as a transcript shows it.
    pub(super) fn step(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let k = &mut self.kernel;
        match words.as_slice() {
            ["tcp", a, b] => {
                let listener = k.listen("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
                let addr = k.local_addr(listener).unwrap();
                let client = k.connect(addr).unwrap();
                assert_eq!(k.take_error(client), Ok(None));
                let (server, _) = k.accept(listener).unwrap();
                k.close(listener).unwrap();
                self.define(a, client);
                self.define(b, server);
                "ok".into()
            }
            ["unix", a, b] => match k.socketpair() {
                Ok((x, y)) => {
                    self.define(a, x);
                    self.define(b, y);
                    "ok".into()
                }
                Err(e) => errno_name(e),
            },
            ["pipe", r, w] => match k.pipe() {
                Ok((x, y)) => {
                    self.define(r, x);
                    self.define(w, y);
                    "ok".into()
                }
                Err(e) => errno_name(e),
            },
            ["eventfd", e] => match k.eventfd() {
                Ok(fd) => {
                    self.define(e, fd);
                    "ok".into()
                }
                Err(err) => errno_name(err),
            },
            ["epoll", p] => match k.epoll_create() {
                Ok(fd) => {
                    self.define(p, fd);
                    "ok".into()
                }
                Err(err) => errno_name(err),
            },
            ["listen", l] => match k.listen("127.0.0.1:0".parse().unwrap(), 16, false) {
                Ok(fd) => {
                    let addr = k.local_addr(fd).unwrap();
                    self.listen_addrs.insert(l.to_string(), addr);
                    self.define(l, fd);
                    "ok".into()
                }
                Err(err) => errno_name(err),
            },
            ["connect", c, l] => {
                let addr = self.listen_addrs[*l];
                match self.kernel.connect(addr) {
                    Ok(fd) => {
                        self.define(c, fd);
                        match self.kernel.take_error(fd) {
                            Ok(None) => "ok".into(),
                            Ok(Some(e)) | Err(e) => errno_name(e),
                        }
                    }
                    Err(err) => errno_name(err),
                }
            }
            ["accept", s, l] => {
                let fd = self.fd(l);
                match self.kernel.accept(fd) {
                    Ok((fd, _)) => {
                        self.define(s, fd);
                        "ok".into()
                    }
                    Err(err) => errno_name(err),
                }
            }
            ["ctl", p, op, x, rest @ ..] => {
                let op = match *op {
                    "add" => libc::EPOLL_CTL_ADD,
                    "mod" => libc::EPOLL_CTL_MOD,
                    "del" => libc::EPOLL_CTL_DEL,
                    other => panic!("unknown ctl op {other}"),
                };
                let events = rest.first().map_or(0, |f| flags_of(f));
                let (epfd, fd, token) = (self.fd(p), self.fd(x), self.token(x));
                unit(self.kernel.epoll_ctl(epfd, op, fd, events, token))
            }
            ["wait", p, rest @ ..] => {
                let max = match rest {
                    ["max", n] => n.parse().unwrap(),
                    _ => 64,
                };
                let mut out = Vec::new();
                match k.epoll_poll(self.names.get(*p).copied().unwrap_or(-1), max, &mut out) {
                    Ok(0) => "none".into(),
                    Ok(_) => {
                        let events: Vec<String> = out
                            .iter()
                            .map(|&(events, data)| {
                                format!(
                                    "{}:{}",
                                    self.tokens[data as usize],
                                    crate::sched::events_name(events)
                                )
                            })
                            .collect();
                        events.join(" ")
                    }
                    Err(e) => errno_name(e),
                }
            }
            ["write", x, n] => {
                let buf = vec![b'x'; n.parse().unwrap()];
                let fd = self.fd(x);
                match self.kernel.writev(fd, &[&buf]) {
                    Ok(n) => n.to_string(),
                    Err(e) => errno_name(e),
                }
            }
            ["read", x, n] => {
                let mut buf = vec![0; n.parse().unwrap()];
                let fd = self.fd(x);
                match self.kernel.read(fd, &mut buf) {
                    Ok(n) => n.to_string(),
                    Err(e) => errno_name(e),
                }
            }
            ["fill", x] => {
                let fd = self.fd(x);
                let chunk = vec![b'f'; FILL_CHUNK_BYTES];
                let mut any = false;
                for _ in 0..FILL_WRITES_MAX {
                    match self.kernel.writev(fd, &[&chunk]) {
                        Ok(_) => any = true,
                        Err(libc::EAGAIN) if any => return "some".into(),
                        Err(e) if any => return format!("some,{}", errno_name(e)),
                        Err(e) => return errno_name(e),
                    }
                }
                "some,unfinished".into()
            }
            ["drain", x] => {
                let fd = self.fd(x);
                let mut buf = vec![0; DRAIN_CHUNK_BYTES];
                let mut any = false;
                for _ in 0..DRAIN_READS_MAX {
                    match self.kernel.read(fd, &mut buf) {
                        Ok(0) if any => return "some,eof".into(),
                        Ok(0) => return "eof".into(),
                        Ok(_) => any = true,
                        Err(libc::EAGAIN) if any => return "some".into(),
                        Err(libc::EAGAIN) => return "none".into(),
                        Err(e) if any => return format!("some,{}", errno_name(e)),
                        Err(e) => return errno_name(e),
                    }
                }
                "some,unfinished".into()
            }
            ["shutdown", x, how] => {
                let how = match *how {
                    "rd" => libc::SHUT_RD,
                    "wr" => libc::SHUT_WR,
                    "rdwr" => libc::SHUT_RDWR,
                    other => panic!("unknown shutdown {other}"),
                };
                let fd = self.fd(x);
                unit(self.kernel.shutdown(fd, how))
            }
            ["close", x] => {
                let fd = self.fd(x);
                unit(self.kernel.close(fd))
            }
            ["rst", x] => {
                let fd = self.fd(x);
                unit(self.kernel.reset(fd))
            }
            ["dup", x, y] => {
                let fd = self.fd(x);
                match self.kernel.dup(fd) {
                    Ok(new) => {
                        self.define(y, new);
                        "ok".into()
                    }
                    Err(e) => errno_name(e),
                }
            }
            ["efd_write", e, n] => {
                let fd = self.fd(e);
                unit(self.kernel.eventfd_write(fd, n.parse().unwrap()))
            }
            ["efd_read", e] => {
                let fd = self.fd(e);
                match self.kernel.eventfd_read(fd) {
                    Ok(v) => v.to_string(),
                    Err(err) => errno_name(err),
                }
            }
            _ => panic!("unknown operation: {line}"),
        }
    }
}

/// Runs a transcript: each line is `op -> expected`; comments (`#`) and blank lines are
/// skipped. Panics with the whole transcript, marked at the first divergence.
#[track_caller]
pub(super) fn check_with(ops: &mut Ops, transcript: &str) {
    let mut report = String::new();
    let mut failed = false;
    for line in transcript.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let (op, expected) = line.split_once(" -> ").unwrap_or((line, ""));
        let got = ops.step(op.trim());
        let mark = if got == expected.trim() { "  " } else { "!!" };
        if mark == "!!" && !failed {
            failed = true;
        }
        report.push_str(&format!("{mark} {op} -> {got}   (expected {expected})\n"));
    }
    assert!(!failed, "transcript diverged:\n{report}");
}

/// [`check_with`] on a default (Linux model) kernel.
#[track_caller]
pub(super) fn check(transcript: &str) {
    check_with(&mut Ops::linux(), transcript);
}

/// The real-Linux transcripts reviewed under `snapshots/conform/` must come out of the model
/// unchanged (the same comparison the differential test makes through the Os seam).
#[test]
fn real_linux_snapshots_replay_identically() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots/conform");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let body = text.splitn(3, "---").nth(2).unwrap_or("");
        let result = std::panic::catch_unwind(|| check(body));
        if result.is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(paths.len() >= 30, "only {} snapshots found", paths.len());
    assert!(
        failures.is_empty(),
        "{} of {} snapshots diverge: {failures:?}",
        failures.len(),
        paths.len()
    );
}

/// The checker itself must notice a divergence, or every test above proves nothing.
#[test]
fn check_reports_a_divergence() {
    let result = std::panic::catch_unwind(|| check("epoll p -> EBADF"));
    let message = result.expect_err("a wrong expectation must fail");
    let text = message.downcast_ref::<String>().map_or("", |s| s.as_str());
    assert!(text.contains("transcript diverged"), "{text}");
    assert!(text.contains("!! epoll p -> ok"), "{text}");
}
