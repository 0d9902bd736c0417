//! Determinism: one seed gives one trace, in this process and in another one, and `explore`
//! finds the same failing seeds whatever the number of jobs.

use edgesim::runner::{explore, run_sim};
use edgesim::scenario::Scenario;
use std::process::Command;

/// Seeds the cross-process check covers.
const SEEDS: u64 = 200;
/// Set in the child process that prints trace hashes.
const CHILD_ENV: &str = "EDGESIM_DETERMINISM_CHILD";

fn bench_echo() -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench-echo.toml");
    edgesim::scenario::load(path.as_ref()).expect("the benchmark scenario parses")
}

/// One line per seed of the first [`SEEDS`]: `hash`, the seed, the verdict and the hash of
/// every trace record.
fn trace_hashes() -> String {
    trace_hashes_over(0..SEEDS)
}

/// Runs this test alone in a fresh process and returns what it printed.
fn child_hashes() -> String {
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "determinism::same_seeds_same_traces_in_two_processes",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the child runs");
    assert!(output.status.success(), "the child failed: {output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    stdout
        .lines()
        .filter_map(|line| line.find("hash ").map(|at| format!("{}\n", &line[at..])))
        .collect()
}

#[test]
fn same_seeds_same_traces_in_two_processes() {
    if std::env::var_os(CHILD_ENV).is_some() {
        print!("{}", trace_hashes());
        return;
    }
    let first = child_hashes();
    let second = child_hashes();
    assert_eq!(first.lines().count() as u64, SEEDS);
    assert_eq!(first, second, "two processes disagree");
    assert_eq!(
        first,
        trace_hashes(),
        "this process disagrees with the children"
    );
}

#[test]
fn a_kept_trace_is_identical_text_on_replay() {
    let scenario = bench_echo();
    let first = run_sim(&scenario, 7, true);
    let second = run_sim(&scenario, 7, true);
    assert!(!first.trace.is_empty());
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.summary(), second.summary());
    let unobserved = run_sim(&scenario, 7, false);
    assert_eq!(
        first.trace_hash, unobserved.trace_hash,
        "keeping the trace and watching for hazards do not change the run"
    );
}

#[test]
fn explore_finds_the_same_failures_with_one_or_two_jobs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/read-once.toml");
    let scenario = edgesim::scenario::load(path.as_ref()).expect("parses");
    let seeds: Vec<u64> = (0..60).collect();
    let one = explore(&scenario, &seeds, 1, &|| {});
    let two = explore(&scenario, &seeds, 2, &|| {});
    assert_eq!(one.failures, two.failures);
    assert_eq!(one.explored, 60);
}

/// Seeds of the slow cross-process check (`EDGESIM_SLOW=1`).
const SEEDS_SLOW: u64 = 1_000;

/// One line per seed over `seeds`, as [`trace_hashes`] prints them.
fn trace_hashes_over(seeds: std::ops::Range<u64>) -> String {
    let scenario = bench_echo();
    seeds
        .map(|seed| {
            let result = run_sim(&scenario, seed, false);
            format!(
                "hash {seed} {} {:016x}\n",
                result.verdict.name(),
                result.trace_hash
            )
        })
        .collect()
}

/// Runs the test `name` alone in a fresh process with [`CHILD_ENV`] set and returns the
/// `hash` lines it printed.
fn child_hashes_of(name: &str) -> String {
    // `/proc/self/exe` still runs this binary if a concurrent build replaced the file.
    let output = Command::new("/proc/self/exe")
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the child runs");
    assert!(output.status.success(), "the child failed: {output:?}");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|line| line.find("hash ").map(|at| format!("{}\n", &line[at..])))
        .collect()
}

/// The deep version of the cross-process check: 1,000 seeds, two child processes, every
/// trace hash compared. It takes minutes in a debug build, so it runs only with
/// `EDGESIM_SLOW=1`.
#[test]
fn thousand_seeds_same_traces_in_two_processes() {
    if std::env::var_os(CHILD_ENV).is_some() {
        print!("{}", trace_hashes_over(0..SEEDS_SLOW));
        return;
    }
    if std::env::var_os("EDGESIM_SLOW").is_none_or(|v| v != "1") {
        eprintln!("skipped: set EDGESIM_SLOW=1 to compare 1,000 seeds across processes");
        return;
    }
    let name = "determinism::thousand_seeds_same_traces_in_two_processes";
    let first = child_hashes_of(name);
    let second = child_hashes_of(name);
    assert_eq!(first.lines().count() as u64, SEEDS_SLOW);
    assert_eq!(first, second, "two processes disagree");
}
