//! `edgesim load`: a load generator for echo servers on the real kernel. It is written
//! against the [`Os`] seam like everything else (edge-triggered epoll, a few
//! threads each owning a share of the connections), so it measures a server through the
//! same calls the servers themselves make.
//!
//! Each connection keeps `pipeline` messages in flight (1 = pingpong). Every message carries
//! a pattern derived from its connection and sequence number, and every echoed byte is
//! checked, so a fast but wrong server shows up as `errors`, not as a good number. A
//! message still unanswered [`STALL_MIN`] after it was sent when the run ends counts as an
//! error too (a stall, as from a missed edge-triggered wakeup), not just as lower throughput.
//! Latency runs from the write of a message's first byte to the read of its last echoed
//! byte, into a fixed-size histogram (no allocation per message).
//!
//! The last line printed is the contract the benchmark script reads:
//! `msgs_per_sec=<f> mb_per_sec=<f> p50_us=<f> p99_us=<f> errors=<n>`. With a server pid, a
//! line `server_cpu_us_per_msg=<f>` comes before it: on a 2-core machine the client burns a
//! core as fast as the server does, so throughput alone mostly measures the client, while
//! the server's CPU time per message measures the server.

mod client;
mod histogram;
mod pattern;

pub use client::STALL_MIN;
pub use histogram::Histogram;
pub use pattern::Pattern;

use crate::os::{Os, OsJoin, OsMutex, RealOs};
use client::{ThreadPlan, ThreadReport};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Client threads when the caller does not say: one per core of the 2-core machines this
/// project targets, since the server needs the same cores.
pub const CLIENT_THREADS_DEFAULT: usize = 2;
/// Connections per run, a bound that keeps a typo from exhausting descriptors.
pub const CONNS_MAX: usize = 10_000;
/// Message size bound (16 MiB), so that the window buffers stay reasonable.
pub const SIZE_MAX_BYTES: usize = 16 << 20;
/// Messages in flight per connection.
pub const PIPELINE_MAX: usize = 1024;
/// A run lasts at most an hour.
pub const SECS_MAX: f64 = 3600.0;
/// `/proc/PID/stat` counts CPU time in `USER_HZ` ticks, which Linux fixes at 100 per second
/// for user space on every architecture.
const USER_HZ: f64 = 100.0;

/// One load run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo server; loopback only.
    pub addr: SocketAddr,
    /// Connections, spread over the client threads.
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// How long to run, in seconds.
    pub secs: f64,
    /// Messages in flight per connection (1 = pingpong).
    pub pipeline: usize,
    /// Client threads (at most `conns` are used).
    pub client_threads: usize,
    /// The server's process, whose CPU time per message is reported when given.
    pub server_pid: Option<u32>,
}

/// Why a configuration was refused (the CLI's exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl LoadConfig {
    /// Checks the configuration. Non-loopback targets are refused: this tool floods its
    /// target, and the only servers it is meant for run on this machine.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.addr.ip().is_loopback() {
            return Err(ConfigError(format!(
                "refusing to load {}: only loopback targets (127.0.0.0/8, ::1) are allowed",
                self.addr
            )));
        }
        if self.addr.port() == 0 {
            return Err(ConfigError("the target port must not be 0".to_string()));
        }
        let bounded = [
            ("--conns", self.conns, CONNS_MAX),
            ("--size", self.size, SIZE_MAX_BYTES),
            ("--pipeline", self.pipeline, PIPELINE_MAX),
            ("client threads", self.client_threads, CONNS_MAX),
        ];
        for (name, value, max) in bounded {
            if value == 0 || value > max {
                return Err(ConfigError(format!(
                    "{name} must be in 1..={max}, not {value}"
                )));
            }
        }
        if !(self.secs > 0.0 && self.secs <= SECS_MAX) {
            return Err(ConfigError(format!(
                "--secs must be in (0, {SECS_MAX}], not {}",
                self.secs
            )));
        }
        Ok(())
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Messages echoed intact.
    pub messages_ok: u64,
    /// Corrupt messages, failed connections, early closes, unsolicited bytes, and
    /// connections stalled at the end (see [`STALL_MIN`]).
    pub errors: u64,
    /// The first error, for the diagnosis line.
    pub first_error: Option<String>,
    /// Wall time from the first connect to the last thread's end.
    pub elapsed: Duration,
    /// Latencies of the intact messages.
    pub latency: Histogram,
    /// Bytes per message.
    pub size: usize,
    /// The server's user+system CPU time over the run, when its pid was given and readable.
    pub server_cpu: Option<Duration>,
    /// This process's user+system CPU time over the run.
    pub client_cpu: Option<Duration>,
}

impl LoadReport {
    /// Intact messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages_ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Payload megabytes (10^6) echoed intact per second, counted once (not once per
    /// direction).
    pub fn mb_per_sec(&self) -> f64 {
        self.msgs_per_sec() * self.size as f64 / 1e6
    }

    /// A latency quantile in microseconds (0 when nothing completed).
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.latency.quantile_ns(q).unwrap_or(0) as f64 / 1e3
    }

    /// CPU microseconds per intact message, when measured and any message completed.
    fn cpu_us_per_msg(&self, cpu: Option<Duration>) -> Option<f64> {
        let cpu = cpu?;
        (self.messages_ok > 0).then(|| cpu.as_secs_f64() * 1e6 / self.messages_ok as f64)
    }

    /// The server's CPU microseconds per intact message.
    pub fn server_cpu_us_per_msg(&self) -> Option<f64> {
        self.cpu_us_per_msg(self.server_cpu)
    }

    /// The load generator's own CPU microseconds per intact message.
    pub fn client_cpu_us_per_msg(&self) -> Option<f64> {
        self.cpu_us_per_msg(self.client_cpu)
    }

    /// The last line of the CLI's output.
    pub fn summary_line(&self) -> String {
        format!(
            "msgs_per_sec={:.0} mb_per_sec={:.2} p50_us={:.1} p99_us={:.1} errors={}",
            self.msgs_per_sec(),
            self.mb_per_sec(),
            self.quantile_us(0.5),
            self.quantile_us(0.99),
            self.errors
        )
    }
}

/// Runs the load described by `config` against a real server through `os`.
///
/// The configuration must be valid ([`LoadConfig::validate`]); an invalid one is a
/// caller's bug and is refused with the same error.
pub fn run<O: Os>(os: &O, config: &LoadConfig) -> Result<LoadReport, ConfigError> {
    config.validate()?;
    let pattern = Arc::new(Pattern::new(config.size));
    let n_threads = config.client_threads.min(config.conns);
    let reports = Arc::new(os.mutex(Vec::<ThreadReport>::with_capacity(n_threads)));
    let server_cpu_before = config.server_pid.and_then(process_cpu);
    let client_cpu_before = process_cpu_self();
    let start = os.now();
    let deadline = start + Duration::from_secs_f64(config.secs);

    let mut handles = Vec::with_capacity(n_threads);
    for thread_idx in 0..n_threads {
        // Connections are split as evenly as possible: the first `conns % n_threads`
        // threads take one more.
        let share = |idx: usize| (idx * config.conns / n_threads) as u64;
        let plan = ThreadPlan {
            addr: config.addr,
            conn_ids: share(thread_idx)..share(thread_idx + 1),
            pipeline: config.pipeline,
            deadline,
        };
        let thread_os = os.clone();
        let thread_pattern = Arc::clone(&pattern);
        let thread_reports = Arc::clone(&reports);
        handles.push(os.spawn(&format!("load-{thread_idx}"), move || {
            let report = client::run_thread(&thread_os, &thread_pattern, &plan);
            thread_reports.lock(|all| all.push(report));
        }));
    }
    let mut panics = Vec::new();
    for handle in handles {
        if let Err(message) = handle.join() {
            panics.push(message);
        }
    }
    let elapsed = os.now() - start;
    let server_cpu = match (server_cpu_before, config.server_pid.and_then(process_cpu)) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let client_cpu = match (client_cpu_before, process_cpu_self()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };

    let mut report = LoadReport {
        messages_ok: 0,
        errors: 0,
        first_error: None,
        elapsed,
        latency: Histogram::new(),
        size: config.size,
        server_cpu,
        client_cpu,
    };
    reports.lock(|all| {
        for thread in all.iter() {
            report.messages_ok += thread.messages_ok;
            report.errors += thread.errors;
            report.latency.merge(&thread.latency);
            if report.first_error.is_none() {
                report.first_error.clone_from(&thread.first_error);
            }
        }
    });
    for message in panics {
        report.errors += 1;
        report
            .first_error
            .get_or_insert(format!("a load thread panicked: {message}"));
    }
    Ok(report)
}

/// `edgesim load --addr ADDR --conns C --size BYTES --secs D [--pipeline K]`.
pub fn load_cli(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
    pipeline: usize,
) -> ExitCode {
    load_cli_with_server_pid(addr, conns, size, secs, pipeline, None)
}

/// `load_cli` plus `--server-pid PID`: also prints `server_cpu_us_per_msg=<f>`.
///
/// Exit status: 0 when messages were echoed and none was wrong, 1 when there were errors or
/// nothing came back, 2 when the arguments were refused (non-loopback target, zero or
/// out-of-bounds counts, a server pid with no readable `/proc/PID/stat`).
pub fn load_cli_with_server_pid(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
    pipeline: usize,
    server_pid: Option<u32>,
) -> ExitCode {
    let config = LoadConfig {
        addr,
        conns,
        size,
        secs,
        pipeline,
        client_threads: CLIENT_THREADS_DEFAULT,
        server_pid,
    };
    if let Err(error) = config.validate() {
        eprintln!("edgesim load: {error}");
        return ExitCode::from(2);
    }
    if let Some(pid) = server_pid {
        if process_cpu(pid).is_none() {
            eprintln!("edgesim load: cannot read the CPU time of pid {pid} in /proc/{pid}/stat");
            return ExitCode::from(2);
        }
    }
    let report = match run(&RealOs::new(), &config) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("edgesim load: {error}");
            return ExitCode::from(2);
        }
    };
    println!(
        "load: target={} conns={} size={} pipeline={} secs={:.2} client_threads={} msgs={}",
        addr,
        conns,
        size,
        pipeline,
        report.elapsed.as_secs_f64(),
        config.client_threads.min(conns),
        report.messages_ok
    );
    if let Some(description) = &report.first_error {
        println!("first_error: {description}");
    }
    if let Some(client_us) = report.client_cpu_us_per_msg() {
        println!("client_cpu_us_per_msg={client_us:.3}");
    }
    if server_pid.is_some() {
        match report.server_cpu_us_per_msg() {
            Some(server_us) => println!("server_cpu_us_per_msg={server_us:.3}"),
            None => println!("server_cpu_us_per_msg=nan"),
        }
    }
    println!("{}", report.summary_line());
    if report.errors == 0 && report.messages_ok > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// User plus system CPU time of process `pid` so far, from `/proc/PID/stat` (fields 14 and
/// 15, in `USER_HZ` ticks, so 10 ms resolution). `None` when unreadable.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    parse_stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn process_cpu_self() -> Option<Duration> {
    parse_stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Parses utime + stime out of a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name come field 3 (state) onwards; utime is field 14, stime field 15.
    let utime_ticks: u64 = fields.nth(11)?.parse().ok()?;
    let stime_ticks: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime_ticks + stime_ticks) as f64 / USER_HZ,
    ))
}

#[cfg(test)]
mod tests;
