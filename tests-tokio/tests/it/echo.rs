//! A `tokio::net::TcpListener` echo server, unmodified tokio code, serving edgesim's
//! standard clients in the simulator (under faults) and on Linux.

use crate::support::{faults, free_linux_addr, sim_addr, workload, PASS_SEEDS};
use edgesim::harness::{Harness, Verdict};
use edgesim_tokio_tests::{echo, on_current_thread};
use std::net::SocketAddr;
use std::time::Duration;

fn harness(addr: SocketAddr) -> Harness {
    Harness::serving_at(addr, |addr| on_current_thread(echo(addr))).clients(workload())
}

#[test]
fn tokio_echo_passes_every_seed_under_faults() {
    let explored = harness(sim_addr()).sim(faults).check_seeds(PASS_SEEDS);
    eprintln!(
        "tokio echo: {} seeds passed in {:.1} s",
        explored.explored, explored.secs
    );
}

#[test]
fn tokio_echo_passes_on_linux() {
    let result = harness(free_linux_addr()).run_linux(Duration::from_secs(10));
    assert_eq!(result.verdict, Verdict::Pass, "{result:#?}");
}
