//! The conformance scripts on real Linux: each script's transcript is a reviewed snapshot,
//! the transcripts are stable from run to run, and malformed scripts are rejected before
//! anything runs.
//!
//! Every script runs in its own `edgesim conform` process. The scripts rely on descriptor
//! numbers (a closed name keeps its number, a new descriptor takes the lowest free one), and
//! the test harness runs tests on parallel threads of one process that share one fd table;
//! a separate process gives each script a table of its own.

use crate::snap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How often the stability test runs each sampled script.
const STABILITY_RUNS: usize = 10;

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/conform")
}

fn edgesim_conform(script: &Path, backend: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(["conform", script.to_str().unwrap(), "--backend", backend])
        .output()
        .expect("the edgesim binary runs")
}

/// The real transcript of `scenarios/conform/<name>.ops`.
#[track_caller]
fn real_transcript(name: &str) -> String {
    let output = edgesim_conform(&scripts_dir().join(format!("{name}.ops")), "real");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name}: {:?}\n{stderr}",
        output.status
    );
    assert!(stderr.is_empty(), "{name} wrote to stderr:\n{stderr}");
    String::from_utf8(output.stdout).expect("the transcript is UTF-8")
}

#[track_caller]
fn check(name: &str) {
    let input = Path::new("scenarios/conform").join(format!("{name}.ops"));
    snap::check("conform", name, Some(&input), &real_transcript(name));
}

/// One test per script, and the list the completeness test compares with the folder.
///
/// Each script also gets a test in [`sim`] that runs it on the simulator and compares the
/// transcript with the reviewed real snapshot.
macro_rules! scripts {
    ($($test:ident => $name:literal,)*) => {
        const SCRIPTS: &[&str] = &[$($name),*];
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*

        /// The simulator against the reviewed Linux transcripts, one test per script.
        mod sim {
            $(
                #[test]
                fn $test() {
                    super::check_sim($name);
                }
            )*
        }
    };
}

scripts! {
    add_with_pending => "add-with-pending",
    close_pipe => "close-pipe",
    close_tcp => "close-tcp",
    close_unix => "close-unix",
    connect_refused => "connect-refused",
    diff_shut_rd_close => "diff-shut-rd-close",
    diff_shut_rd_stale_window => "diff-shut-rd-stale-window",
    diff_shut_rd_window => "diff-shut-rd-window",
    diff_unix_truesize => "diff-unix-truesize",
    consumed_before_wait => "consumed-before-wait",
    ctl_errors => "ctl-errors",
    dup_close => "dup-close",
    et_pipe => "et-pipe",
    et_tcp => "et-tcp",
    et_unix => "et-unix",
    eventfd_et => "eventfd-et",
    eventfd_lt => "eventfd-lt",
    listener_et => "listener-et",
    listener_lt => "listener-lt",
    lt_pipe => "lt-pipe",
    lt_tcp => "lt-tcp",
    lt_unix => "lt-unix",
    maxevents_et => "maxevents-et",
    maxevents_lt => "maxevents-lt",
    mod_rearm_et => "mod-rearm-et",
    nested_epoll => "nested-epoll",
    oneshot => "oneshot",
    oneshot_rdhup => "oneshot-rdhup",
    out_consume_edges => "out-consume-edges",
    out_et => "out-et",
    out_fill_pipe => "out-fill-pipe",
    out_fill_tcp => "out-fill-tcp",
    out_fill_unix => "out-fill-unix",
    partial_read_et => "partial-read-et",
    ready_order => "ready-order",
    rst_tcp => "rst-tcp",
    shutdown_wr_tcp => "shutdown-wr-tcp",
    two_instances => "two-instances",
}

/// A script added to the folder without a test here would never be checked.
#[test]
fn every_script_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(scripts_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ops"))
        .map(|path| path.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    on_disk.sort();
    let mut listed: Vec<&str> = SCRIPTS.to_vec();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert!(listed.len() >= 25, "only {} scripts", listed.len());
}

/// The real transcripts must not depend on timing: the TCP scripts (where loopback
/// delivery, FIN, RST and window updates go through softirq processing that settling waits
/// for) plus a few others run repeatedly and must give the same text every time.
#[test]
fn real_transcripts_are_stable() {
    let sample = [
        "out-fill-tcp",
        "rst-tcp",
        "close-tcp",
        "listener-et",
        "connect-refused",
        "et-tcp",
        "maxevents-lt",
        "out-fill-unix",
    ];
    for name in sample {
        let first = real_transcript(name);
        for run_idx in 1..STABILITY_RUNS {
            let again = real_transcript(name);
            assert_eq!(first, again, "{name}: run {run_idx} differs from run 0");
        }
    }
}

/// Runs a malformed script through the binary and checks the rejection.
#[track_caller]
fn check_rejected(source: &str, line: usize, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.ops");
    std::fs::write(&script, source).unwrap();
    let output = edgesim_conform(&script, "real");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    // Nothing ran: not even the well-formed lines before the bad one.
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let expected = format!("{}:{line}: {message}", script.display());
    assert!(
        stderr.starts_with(&expected),
        "stderr {stderr:?} does not start with {expected:?}"
    );
}

#[test]
fn unknown_op_is_rejected() {
    check_rejected(
        "epoll p\nfrobnicate p\n",
        2,
        "unknown op 'frobnicate' (expected one of: tcp, unix, pipe, eventfd, listen, connect, \
         epoll, accept, ctl, wait, write, fill, read, drain, shutdown, close, dup, rst, \
         efd_write, efd_read)",
    );
}

#[test]
fn missing_argument_is_rejected() {
    check_rejected(
        "# a comment line counts\nepoll p\nctl p add\n",
        3,
        "missing argument X (usage: ctl P add|mod|del X [FLAGS])",
    );
}

#[test]
fn undefined_name_is_rejected() {
    check_rejected(
        "epoll p\nwait q\n",
        2,
        "undefined name 'q' for P (usage: wait P [max N]; a name must be defined by an \
         earlier line)",
    );
}

#[test]
fn bad_flag_is_rejected() {
    check_rejected(
        "epoll p\neventfd e\nctl p add e in,level\n",
        3,
        "bad flag 'level' (expected a comma list of: in, out, rdhup, pri, et, oneshot, \
         exclusive)",
    );
}

#[test]
fn extra_argument_and_bad_number_are_rejected() {
    check_rejected(
        "pipe r w\nclose r w\n",
        2,
        "unexpected extra argument 'w' (usage: close X)",
    );
    check_rejected("pipe r w\nwrite w ten\n", 2, "bad number 'ten' for N");
}

/// The body of `snapshots/conform/<name>.snap`: the reviewed real transcript.
fn real_snapshot(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots/conform")
        .join(format!("{name}.snap"));
    let text = std::fs::read_to_string(&path).unwrap();
    // The header is a YAML block between two `---` lines; the transcript follows it.
    let body_idx = text
        .match_indices("---\n")
        .nth(1)
        .map(|(idx, marker)| idx + marker.len())
        .expect("a snapshot has a header");
    text[body_idx..].trim_end().to_string()
}

/// The simulator must give the reviewed Linux transcript of `name`: the shared helper of
/// the tests in [`sim`].
///
/// The comparison is with the snapshot, not with a fresh real run, so that a sim test does
/// not depend on the machine's timing and runs where Linux is not the kernel of the day.
#[track_caller]
fn check_sim(name: &str) {
    let output = edgesim_conform(&scripts_dir().join(format!("{name}.ops")), "sim");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} on the simulator: {:?}\n{stderr}",
        output.status
    );
    let sim = String::from_utf8(output.stdout).expect("the transcript is UTF-8");
    let sim = sim.trim_end();
    let real = real_snapshot(name);
    if sim != real {
        let (line, real_line, sim_line) = crate::differential::first_difference(&real, sim);
        panic!(
            "{name}: the simulator differs from Linux at op {line}:\n  real `{real_line}`\n  \
             sim  `{sim_line}`\n\nreal transcript:\n{real}\n\nsim transcript:\n{sim}"
        );
    }
}
