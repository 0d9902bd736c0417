//! `explore --exhaustive`: every schedule within a preemption bound, modulo independence.
//! On a one-client single-reactor echo (`scenarios/exhaustive/`) the correct server passes
//! every schedule, the read-once flaw stalls, and the reduction runs far fewer schedules
//! than the plain search.

use edgesim::runner::{exhaustive, Completion, Limits};
use edgesim::scenario::{self, Scenario};

fn limits(preemptions: u32, reduce: bool) -> Limits {
    Limits {
        preemptions: Some(preemptions),
        reduce,
        runs_max: 1_000_000,
        secs_max: 600.0,
    }
}

/// A scenario of `scenarios/exhaustive/`.
fn load(name: &str) -> Scenario {
    let path = format!(
        "{}/scenarios/exhaustive/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    scenario::load(path.as_ref()).expect("the scenario parses")
}

#[test]
fn the_read_once_flaw_stalls_in_the_search() {
    let found = exhaustive(&load("tiny-read-once"), 0, &limits(1, true));
    assert!(found.failures > 0, "{}", found.summary());
    let (result, ..) = found.first_failure.expect("a failing schedule");
    assert_eq!(result.verdict, edgesim::scenario::Verdict::Stall);
}

#[test]
fn the_correct_server_passes_every_schedule_and_the_reduction_runs_far_fewer() {
    let echo = load("tiny-echo");
    let reduced = exhaustive(&echo, 0, &limits(3, true));
    let plain = exhaustive(&echo, 0, &limits(3, false));
    for found in [&reduced, &plain] {
        assert_eq!(found.failures, 0, "{}", found.summary());
        // The bound, not a budget, ended both searches.
        assert_eq!(
            found.completion,
            Completion::Bound(3),
            "{}",
            found.summary()
        );
    }
    // Measured: 2,860 schedules with reduction, 23,965 without (at 4 preemptions 10,154
    // against 244,597).
    assert!(
        reduced.schedules * 8 <= plain.schedules,
        "{} with reduction, {} without",
        reduced.summary(),
        plain.summary()
    );
}
