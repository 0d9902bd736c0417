//! The classic framing bug in a tokio server (one `read` taken for one whole
//! length-prefixed request) caught as `corrupt` with its seed, and the fixed server (read
//! until the frame is complete) passing, under the same faults as the echo server.

use crate::support::{faults, free_linux_addr, sim_addr, workload, PASS_SEEDS};
use edgesim::harness::{Harness, Verdict};
use edgesim_tokio_tests::{frames, on_current_thread, Framing};
use std::net::SocketAddr;
use std::time::Duration;

/// The seeds within which the bug must show.
const CATCH_SEEDS: std::ops::Range<u64> = 0..200;

fn harness(addr: SocketAddr, framing: Framing) -> Harness {
    Harness::serving_at(addr, move |addr| on_current_thread(frames(addr, framing)))
        .clients(workload())
        .frame_clients()
}

#[test]
fn one_read_per_request_is_caught_as_corrupt_with_its_seed() {
    let explored = harness(sim_addr(), Framing::OneReadPerRequest)
        .sim(faults)
        .explore(CATCH_SEEDS);
    let failure = explored
        .first_failure
        .expect("some seed of 0..200 catches the framing bug");
    eprintln!("framing bug: {}", failure.summary());
    for line in &failure.diagnosis {
        eprintln!("  {line}");
    }
    assert_eq!(failure.verdict, Verdict::Corrupt, "{failure:#?}");
    assert!(failure.seed < CATCH_SEEDS.end);
    assert!(
        failure.diagnosis[0].contains("of the frame replies is"),
        "the client names the first wrong reply byte: {:?}",
        failure.diagnosis
    );
    // The seed replays exactly.
    let again = harness(sim_addr(), Framing::OneReadPerRequest)
        .sim(faults)
        .run(failure.seed);
    assert_eq!(
        (again.verdict, again.trace_hash),
        (failure.verdict, failure.trace_hash)
    );
}

#[test]
fn reading_until_the_frame_is_complete_passes_every_seed() {
    let explored = harness(sim_addr(), Framing::UntilComplete)
        .sim(faults)
        .check_seeds(PASS_SEEDS);
    eprintln!(
        "fixed framing: {} seeds passed in {:.1} s",
        explored.explored, explored.secs
    );
}

#[test]
fn the_fixed_frame_server_passes_on_linux() {
    let result =
        harness(free_linux_addr(), Framing::UntilComplete).run_linux(Duration::from_secs(10));
    assert_eq!(result.verdict, Verdict::Pass, "{result:#?}");
}
