//! The mio facade and the harness: the example reactor (examples/echo_reactor/reactor.rs),
//! unchanged, runs on Linux through the mio crate and through `edgesim::mio`, and in the
//! simulator, where its incomplete-drain variant is caught as a stall with its seed.

use edgesim::harness::{ClientSpec, Harness, Pattern, Verdict};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The example reactor against the facade.
mod on_edgesim {
    use edgesim::mio;
    include!("../../examples/echo_reactor/reactor.rs");
}

/// The example reactor against the mio crate.
mod on_mio {
    include!("../../examples/echo_reactor/reactor.rs");
}

/// Seeds the correct reactor must pass by default; `EDGESIM_SEEDS=0..2000` runs the full
/// acceptance range (about N s in a debug build, see the guide).
const PASS_SEEDS: std::ops::Range<u64> = 0..300;

/// Messages big enough that one 4 KiB read cannot take a whole one.
fn workload() -> ClientSpec {
    ClientSpec {
        count: 3,
        messages: 4,
        size_bytes: (1, 20_000),
        pattern: Pattern::Pingpong,
    }
}

fn harness(drain: on_edgesim::Drain) -> Harness {
    Harness::new(move |listener| on_edgesim::serve(listener, drain)).clients(workload())
}

#[test]
fn correct_reactor_passes_every_seed() {
    let explored = harness(on_edgesim::Drain::UntilWouldBlock).check_seeds(PASS_SEEDS);
    assert!(explored.explored >= 1);
}

#[test]
fn one_read_per_event_is_caught_as_a_stall_with_its_seed() {
    let explored = harness(on_edgesim::Drain::OneRead).explore(0..50);
    let failure = explored
        .first_failure
        .expect("some seed of 0..50 catches the incomplete drain");
    assert_eq!(failure.verdict, Verdict::Stall, "{failure:#?}");
    let diagnosis = failure.diagnosis.join("\n");
    assert!(
        diagnosis.contains("unread bytes") && diagnosis.contains("stopped reading before EAGAIN"),
        "the diagnosis names the undrained socket: {diagnosis}"
    );
    // The seed replays exactly.
    let again = harness(on_edgesim::Drain::OneRead).run(failure.seed);
    assert_eq!(
        (again.verdict, again.trace_hash),
        (failure.verdict, failure.trace_hash)
    );
}
