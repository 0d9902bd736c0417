//! `explore --exhaustive`: every schedule within a preemption bound, or with none, modulo
//! independence. On a one-client single-reactor echo (`scenarios/exhaustive/`) the correct
//! server passes every schedule, the read-once flaw stalls in every one, and the reduction
//! runs far fewer schedules than the plain search.

use edgesim::runner::{exhaustive, Completion, Limits};
use edgesim::scenario::{self, Scenario};

fn limits(preemptions: u32, reduce: bool) -> Limits {
    Limits {
        preemptions: Some(preemptions),
        ..unbounded(reduce)
    }
}

/// No preemption bound: the search ends when every order has run (or a budget runs out).
fn unbounded(reduce: bool) -> Limits {
    Limits {
        preemptions: None,
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
fn without_a_bound_the_search_completes_and_every_schedule_of_read_once_stalls() {
    let found = exhaustive(&load("tiny-read-once"), 0, &unbounded(true));
    // Measured: 2,312 schedules, every one a stall, in 3 s (release).
    assert_eq!(
        found.completion,
        Completion::Complete,
        "{}",
        found.summary()
    );
    assert!(found.schedules > 0, "{}", found.summary());
    assert_eq!(found.failures, found.schedules, "{}", found.summary());
    let (result, ..) = found.first_failure.expect("a failing schedule");
    assert_eq!(result.verdict, edgesim::scenario::Verdict::Stall);
}

/// The correct server in every order, with no bound: "no schedule stalls", not "none
/// found" (measured: 154,350 schedules and 221,137 pruned runs; 30 s in a release build,
/// 45 s in the tests' build).
#[test]
fn without_a_bound_the_correct_server_passes_every_schedule() {
    let found = exhaustive(&load("tiny-echo"), 0, &unbounded(true));
    assert_eq!(
        found.completion,
        Completion::Complete,
        "{}",
        found.summary()
    );
    assert_eq!(found.failures, 0, "{}", found.summary());
    eprintln!("{}", found.summary());
}

#[test]
fn the_correct_server_passes_every_schedule_and_the_reduction_runs_far_fewer() {
    let echo = load("tiny-echo");
    let reduced = exhaustive(&echo, 0, &limits(4, true));
    let plain = exhaustive(&echo, 0, &limits(4, false));
    for found in [&reduced, &plain] {
        assert_eq!(found.failures, 0, "{}", found.summary());
        // The bound, not a budget, ended both searches.
        assert_eq!(
            found.completion,
            Completion::Bound(4),
            "{}",
            found.summary()
        );
    }
    // Measured: 10,154 schedules with reduction, 244,597 without (24 times fewer; at 3
    // preemptions 2,860 against 23,965, 8.4 times).
    eprintln!("with reduction: {}", reduced.summary());
    eprintln!("without: {}", plain.summary());
    assert!(
        reduced.schedules * 10 <= plain.schedules,
        "{} with reduction, {} without",
        reduced.summary(),
        plain.summary()
    );
}
