//! A fixed sample of the generated-workload evaluation (`edgesim evaluate`, the table in
//! docs/PITFALLS.md): three flaws, three drawn workloads each. Every pair is reachable and
//! caught within its seed budget, the correct server passes each workload, and the table
//! adds the pairs up. The whole table (40 workloads per flaw, 300 seeds for the correct
//! server) takes minutes: `edgesim evaluate --jobs 2`.

use edgesim::evaluate::{evaluate, table, Options};
use edgesim::scenario::Verdict;

#[test]
fn a_sample_of_generated_workloads_catches_its_flaws_and_passes_the_correct_servers() {
    for flaw in ["accept-once", "shared-no-oneshot", "emfile-spin"] {
        let options = Options {
            workloads: 3,
            correct_seeds: 20,
            jobs: 2,
            only: Some(flaw.to_string()),
            ..Options::default()
        };
        let pairs = evaluate(&options, &|_| {});
        assert_eq!(pairs.len(), 3, "{flaw}");
        for pair in &pairs {
            let line = edgesim::evaluate::pair_line(pair);
            assert!(pair.unreachable.is_none(), "{line}");
            assert!(pair.caught.is_some(), "{line}");
            assert!(pair.correct_failure.is_none(), "{line}");
        }
        let totals = table(&pairs, options.correct_seeds);
        let last = totals.last().expect("a totals line");
        assert!(
            last.starts_with("reachable_pairs=3 caught=3 caught_percent=100.0"),
            "{last}"
        );
    }
}

/// Every generated workload, written as a scenario file, reads back as the same scenario:
/// what `edgesim evaluate --write` saves replays the pair.
#[test]
fn every_generated_workload_round_trips_through_its_scenario_file() {
    let pairs = edgesim::evaluate::draw_pairs(&Options {
        workloads: 10,
        ..Options::default()
    });
    assert!(pairs.len() >= 200);
    for pair in &pairs {
        let text = edgesim::scenario::to_toml(&pair.scenario);
        let back =
            edgesim::scenario::parse("pair.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, pair.scenario, "{text}");
    }
}

/// Regression: `lt-out-always` was marked unreachable for every workload without lingering
/// clients, yet caught at seed 0 on one with 50 ms worker jobs: a connection that waits for
/// a slow job is open without traffic too, and the loop spins for the whole job.
#[test]
fn a_level_triggered_out_spin_during_slow_jobs_is_reachable() {
    let pairs = edgesim::evaluate::draw_pairs(&Options {
        only: Some("lt-out-always".to_string()),
        ..Options::default()
    });
    let slow = pairs
        .iter()
        .find(|p| {
            p.scenario.clients.pattern != edgesim::scenario::Pattern::Linger
                && p.scenario.server.config.job_duration.as_millis() >= 50
        })
        .expect("the draw has a workload with 50 ms jobs and no lingering clients");
    assert_eq!(
        edgesim::evaluate::unreachable_reason(slow.flaw, &slow.scenario),
        None,
        "{}",
        edgesim::evaluate::describe(&slow.scenario)
    );
    let verdicts: Vec<_> = (0..5)
        .map(|seed| edgesim::runner::run_sim(&slow.scenario, seed, false).verdict)
        .collect();
    assert!(
        verdicts.contains(&edgesim::scenario::Verdict::Spin),
        "{verdicts:?}"
    );
}

/// Checks that a rule no longer marks workload `index` of `flaw` (described as `workload`),
/// that the flawed server shows `verdict` there at `seed`, and that the correct server
/// passes the same seed.
#[track_caller]
fn check_caught(
    flaw: &str,
    index: usize,
    workload: &str,
    seed: u64,
    verdict: Verdict,
) -> edgesim::runner::RunResult {
    let pairs = edgesim::evaluate::draw_pairs(&Options {
        only: Some(flaw.to_string()),
        ..Options::default()
    });
    let pair = pairs
        .iter()
        .find(|p| p.index == index)
        .expect("the workload");
    let described = edgesim::evaluate::describe(&pair.scenario);
    assert!(described.contains(workload), "{described}");
    assert_eq!(
        edgesim::evaluate::unreachable_reason(pair.flaw, &pair.scenario),
        None,
        "{described}"
    );
    let flawed = edgesim::runner::run_sim(&pair.scenario, seed, false);
    assert_eq!(flawed.verdict, verdict, "{flawed:#?}");
    let passed = edgesim::runner::run_sim(&edgesim::evaluate::correct(pair), seed, false);
    assert_eq!(passed.verdict, Verdict::Pass, "{passed:#?}");
    flawed
}

/// Regression: a rule marked `lt-out-always` unreachable on workload #10 (two clients
/// bursting 50 frames of up to 16 KiB), yet seed 249 spins: 1 KiB buffers and 790 us of
/// latency make the transfer crawl while the loop spins between segments. Since a finished
/// run whose loop took nearly all its steps is a spin too, the flaw has no rule left.
#[test]
fn a_level_triggered_out_spin_during_a_crawling_transfer_is_reachable() {
    check_caught(
        "lt-out-always",
        10,
        "2x50 burst 1024..16384 B",
        249,
        Verdict::Spin,
    );
}

/// Regression: the `error-only-ignored` rule marked workload #3 (12 half-close clients,
/// two workers with 10 ms jobs) unreachable, but a half-closed connection asks for no
/// direction while its job runs, so a reset there gives an ERR|HUP-only event the flawed
/// loop ignores: at seed 5 it spins through 99% of a run that still finishes (the correct
/// server takes 933 steps).
#[test]
fn an_error_only_event_after_a_half_close_spins_the_flawed_loop() {
    check_caught("error-only-ignored", 3, "12x2 half-close", 5, Verdict::Spin);
}

/// Clients that reset within their first few bytes never wait for the server and never read
/// from it, so a flaw that only a client can see cannot show: the rule marks such workloads
/// for those flaws, and leaves reset workloads that wait before their reset.
#[test]
fn reset_clients_that_never_wait_hide_what_only_clients_see() {
    use edgesim::evaluate::{unreachable_reason, FlawOf};
    let flaw = FlawOf::Reactor(edgesim::server::Flaw::OneshotNoRearm);
    let workload = |clients: &str| {
        let text = format!(
            "name = \"w\"\n[server]\nmodel = \"single-reactor\"\ntrigger = \"edge-oneshot\"\n\
             flaw = \"oneshot-no-rearm\"\n[clients]\n{clients}pattern = \"reset\"\n"
        );
        edgesim::scenario::parse("w.toml", &text).expect("a valid scenario")
    };
    let never_waits = workload("count = 2\nmessages = 3\nsize = 1\n");
    assert!(unreachable_reason(flaw, &never_waits).is_some());
    let verdicts: Vec<_> = (0..100)
        .map(|seed| edgesim::runner::run_sim(&never_waits, seed, false).verdict)
        .collect();
    assert!(verdicts.iter().all(|&v| v == Verdict::Pass), "{verdicts:?}");
    // Twenty messages of at most 64 bytes: the reset comes after ten echoes.
    let waits = workload("count = 4\nmessages = 20\nsize = \"1..64\"\n");
    assert_eq!(unreachable_reason(flaw, &waits), None);
    // One message too large to be sure to fit: the client may wait for room.
    let may_wait_for_room = workload("count = 2\nmessages = 1\nsize = 28795\n");
    assert_eq!(unreachable_reason(flaw, &may_wait_for_room), None);
}

/// Regression: the reset rule marked `wake-flag-race` workload #32 (12 clients that reset
/// within one tiny message, a worker) unreachable, since no client waits; but at seed 2246
/// (2 of 5,000 seeds) the `Stop` lands in a loop's turn that a worker's late result woke, is
/// lost like any task, and the loop sleeps while the server waits for it to stop.
#[test]
fn a_lost_stop_hangs_a_wake_flag_race_server_whose_clients_reset() {
    let stalled = check_caught(
        "wake-flag-race",
        32,
        "12x1 reset 1..64 B",
        2246,
        Verdict::Stall,
    );
    let said = stalled.diagnosis.join("\n");
    assert!(
        said.contains("t0 main waits for t3 loop-1 to end") && said.contains("eventfd (fd 4) at 0"),
        "{said}"
    );
}

/// Regression: the same rule marked `netpoll/no-pdwait` workload #25 unreachable; at seed
/// 22260 (3 of 50,000 seeds) the close that stops the server marks the listener closing and
/// finds no thread parked, between the accept thread's check of its token and its plain
/// store of "parked": nobody unparks it, and the server waits for it forever.
#[test]
fn a_lost_close_hangs_a_no_pdwait_netpoller_whose_clients_reset() {
    let stalled = check_caught(
        "netpoll/no-pdwait",
        25,
        "2x3 reset 1 B",
        22260,
        Verdict::Stall,
    );
    let said = stalled.diagnosis.join("\n");
    assert!(
        said.contains("waits for t2 netpoll-accept to end, but t2 is parked with no deadline"),
        "{said}"
    );
}
