//! One seed, one run: the same seed gives the same trace in two processes, tokio included.
//!
//! tokio's own randomness stays out of these servers (no `select!`), its tokens are heap
//! addresses that the `mio` crate keeps out of the trace, and its clock is the world's.

use crate::support::{faults, in_child, run_in_child, sim_addr, workload};
use edgesim::harness::Harness;
use edgesim_tokio_tests::{echo, frames, on_current_thread, Framing};

/// The test's name as libtest knows it.
const NAME: &str = "determinism::same_seeds_same_traces_in_two_processes";

/// One line per seed: the seed, the verdict and the trace hash of the echo server and of
/// the buggy frame server, under faults.
fn trace_hashes() -> String {
    let echo = Harness::serving_at(sim_addr(), |addr| on_current_thread(echo(addr)))
        .clients(workload())
        .sim(faults);
    let buggy = Harness::serving_at(sim_addr(), |addr| {
        on_current_thread(frames(addr, Framing::OneReadPerRequest))
    })
    .clients(workload())
    .frame_clients()
    .sim(faults);
    let mut lines = String::new();
    for seed in 0..100 {
        for (name, harness) in [("echo", &echo), ("frames", &buggy)] {
            let result = harness.run(seed);
            lines += &format!(
                "hash {name} {seed} {} {:016x}\n",
                result.verdict.name(),
                result.trace_hash
            );
        }
    }
    lines
}

/// The `hash` lines of a child's output (the first shares its line with libtest's name
/// of the test).
fn hash_lines(stdout: &str) -> String {
    stdout
        .lines()
        .filter_map(|line| line.find("hash ").map(|at| format!("{}\n", &line[at..])))
        .collect()
}

#[test]
fn same_seeds_same_traces_in_two_processes() {
    if in_child(NAME) {
        print!("{}", trace_hashes());
        return;
    }
    let first = hash_lines(&run_in_child(NAME));
    let second = hash_lines(&run_in_child(NAME));
    assert_eq!(first.lines().count(), 200);
    assert_eq!(first, second, "two processes disagree");
    assert_eq!(
        first,
        trace_hashes(),
        "this process disagrees with the children"
    );
}
