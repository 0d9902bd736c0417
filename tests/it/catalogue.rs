//! The pitfall catalogue: every `scenarios/flaw-*.toml` fails within 200 seeds with the
//! verdict it expects, the same scenario without its flaw passes, every flaw of the server has
//! a scenario, the one that only Linux's generous edges hide passes under them, and the one
//! that only they expose passes under textbook edges.
//!
//! The numbers in docs/PITFALLS.md come from `scripts/catalogue-stats.sh`; the long soak of
//! the correct server (`--seeds 0..5000` per scenario) runs here when `EDGESIM_SOAK=1`.

use edgesim::runner::{explore, run_sim};
use edgesim::scenario::{Scenario, Verdict};
use edgesim::server::Flaw;
use std::path::{Path, PathBuf};

/// Seeds within which every flaw must show (the catalogue's promise).
const SEEDS_TO_DETECTION_MAX: u64 = 200;
/// Seeds the correct server runs on each catalogue scenario in an ordinary test run.
const QUICK_PASS_SEEDS: u64 = 8;
/// Seeds the correct server runs on each catalogue scenario in the soak.
const SOAK_SEEDS: u64 = 5000;

/// Every catalogue scenario, in name order, with its parsed contents.
fn catalogue() -> Vec<(PathBuf, Scenario)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("flaw-") && name.ends_with(".toml")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let scenario = edgesim::scenario::load(&path).expect("the scenario parses");
            (path, scenario)
        })
        .collect()
}

/// The first seed in `seeds` whose verdict is not `pass`, with that verdict. This is what
/// `edgesim explore` reports as `first_failure`, stopping there instead of running the range.
fn first_failure(scenario: &Scenario, seeds: std::ops::Range<u64>) -> Option<(u64, Verdict)> {
    seeds
        .map(|seed| (seed, run_sim(scenario, seed, false).verdict))
        .find(|(_, verdict)| *verdict != Verdict::Pass)
}

/// The scenario with its flaw removed: the correct server under the same workload and faults.
fn without_flaw(scenario: &Scenario) -> Scenario {
    let mut fixed = scenario.clone();
    fixed.server.config.flaw = None;
    fixed.expect = Verdict::Pass;
    fixed
}

#[test]
fn every_flaw_scenario_shows_its_verdict_within_200_seeds() {
    let mut problems = Vec::new();
    for (path, scenario) in catalogue() {
        if scenario.expect == Verdict::Pass {
            continue;
        }
        match first_failure(&scenario, 0..SEEDS_TO_DETECTION_MAX) {
            Some((_, verdict)) if verdict == scenario.expect => {}
            Some((seed, verdict)) => problems.push(format!(
                "{}: first failure at seed {seed} is {}, expected {}",
                path.display(),
                verdict.name(),
                scenario.expect.name()
            )),
            None => problems.push(format!(
                "{}: no failure in seeds 0..{SEEDS_TO_DETECTION_MAX}",
                path.display()
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_flaw_of_the_server_has_a_failing_catalogue_scenario() {
    let scenarios = catalogue();
    let missing: Vec<&str> = Flaw::ALL
        .iter()
        .filter(|flaw| {
            !scenarios.iter().any(|(path, s)| {
                let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                s.server.config.flaw == Some(**flaw)
                    && s.expect != Verdict::Pass
                    && file.starts_with(&format!("flaw-{}", flaw.name()))
            })
        })
        .map(|flaw| flaw.name())
        .collect();
    assert!(missing.is_empty(), "flaws without a scenario: {missing:?}");
}

#[test]
fn without_its_flaw_every_catalogue_scenario_passes() {
    let mut problems = Vec::new();
    for (path, scenario) in catalogue() {
        let fixed = without_flaw(&scenario);
        if let Some((seed, verdict)) = first_failure(&fixed, 0..QUICK_PASS_SEEDS) {
            problems.push(format!(
                "{} without its flaw: {} at seed {seed}",
                path.display(),
                verdict.name()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The catalogue scenarios `linux_name` and `strict_name`, checked to be the same run apart
/// from the edge model (and the name and the verdict).
fn edge_model_pair(linux_name: &str, strict_name: &str) -> (Scenario, Scenario) {
    let scenarios = catalogue();
    let find = |name: &str| {
        scenarios
            .iter()
            .find(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("scenario {name} exists"))
    };
    let linux = find(linux_name);
    let strict = find(strict_name);
    assert_eq!(linux.sim.edge, sim::kernel::EdgeModel::Linux);
    assert_eq!(strict.sim.edge, sim::kernel::EdgeModel::Strict);
    let mut same = strict.clone();
    same.sim.edge = linux.sim.edge;
    assert_eq!(same.server, linux.server);
    assert_eq!(same.clients, linux.clients);
    assert_eq!(same.sim, linux.sim);
    (linux, strict)
}

/// The flaw that only the strict edge model shows: one write per EPOLLOUT event gets away
/// with it on Linux, where every ACK queues another event, and stalls under textbook edges.
#[test]
fn out_once_passes_under_linux_edges_and_stalls_under_strict_ones() {
    let (linux, strict) = edge_model_pair("flaw-out-once-linux", "flaw-out-once");
    assert_eq!(first_failure(&linux, 0..40), None);
    assert_eq!(
        first_failure(&strict, 0..SEEDS_TO_DETECTION_MAX).map(|(_, v)| v),
        Some(Verdict::Stall)
    );
}

/// The flaw that only Linux's edges show: threads sharing one epoll instance without
/// ONESHOT are woken twice for one socket when a chunk arrives while the first thread still
/// handles the last; under textbook edges the second wakeup never comes.
///
/// The strict file pins what would expose the flaw under any edge model (small buffers,
/// spurious events), so its Linux twin is that same file with Linux's edges; the catalogue's
/// own `flaw-shared-no-oneshot.toml` keeps no such knob and is caught by swarm mode.
#[test]
fn shared_no_oneshot_is_corrupt_under_linux_edges_and_passes_under_strict_ones() {
    let strict = catalogue()
        .into_iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "flaw-shared-no-oneshot-strict")
        .expect("the strict scenario exists");
    assert_eq!(strict.sim.edge, sim::kernel::EdgeModel::Strict);
    let mut linux = strict.clone();
    linux.sim.edge = sim::kernel::EdgeModel::Linux;
    assert_eq!(first_failure(&strict, 0..SEEDS_TO_DETECTION_MAX), None);
    assert_eq!(
        first_failure(&linux, 0..SEEDS_TO_DETECTION_MAX).map(|(_, v)| v),
        Some(Verdict::Corrupt)
    );
    // The diagnosis names the cause, not only the client's symptom.
    let (seed, _) = first_failure(&linux, 0..SEEDS_TO_DETECTION_MAX).expect("found above");
    let failing = run_sim(&linux, seed, true);
    assert!(
        failing
            .diagnosis
            .iter()
            .any(|line| line.starts_with("two threads woke for one socket")),
        "{:?}",
        failing.diagnosis
    );
}

/// The soak: the correct server on every catalogue scenario, `--seeds 0..5000` each.
/// Runs only with `EDGESIM_SOAK=1` (minutes in release); `scripts/catalogue-soak.sh` runs it.
#[test]
fn soak_without_flaws() {
    if std::env::var("EDGESIM_SOAK").as_deref() != Ok("1") {
        eprintln!("soak skipped: set EDGESIM_SOAK=1 to run it");
        return;
    }
    let seeds: Vec<u64> = (0..SOAK_SEEDS).collect();
    let mut problems = Vec::new();
    for (path, scenario) in catalogue() {
        // A scenario that expects its flaw to pass (under the other edge model) soaks as
        // it is, too.
        let with_flaw = (scenario.expect == Verdict::Pass).then(|| scenario.clone());
        let runs = [
            ("without its flaw", Some(without_flaw(&scenario))),
            ("as it is", with_flaw),
        ];
        for (what, run) in runs {
            let Some(run) = run else { continue };
            let explored = explore(&run, &seeds, 2, &|| {});
            eprintln!("soak {} {what}: {}", path.display(), explored.summary());
            if let Some((seed, verdict)) = explored.failures.first() {
                problems.push(format!(
                    "{} {what}: {} failures, first {} at seed {seed}",
                    path.display(),
                    explored.failures.len(),
                    verdict.name()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The correct servers of every model, in every trigger mode they have, on two ordinary
/// workloads, under swarm mode: seeds `0..5000` each with `EDGESIM_SOAK=1`, 20 in an
/// ordinary test run. A single failure is a bug in the server or the simulator.
#[test]
fn every_model_and_trigger_passes_under_swarm() {
    let seeds_max = if std::env::var("EDGESIM_SOAK").as_deref() == Ok("1") {
        SOAK_SEEDS
    } else {
        20
    };
    let servers = [
        "model = \"single-reactor\"\ntrigger = \"level\"",
        "model = \"single-reactor\"\ntrigger = \"edge\"",
        "model = \"single-reactor\"\ntrigger = \"edge-oneshot\"",
        "model = \"multi-reactor\"\nreactors = 2\ntrigger = \"level\"",
        "model = \"multi-reactor\"\nreactors = 2\ntrigger = \"edge\"",
        "model = \"multi-reactor\"\nreactors = 2\ntrigger = \"edge-oneshot\"",
        "model = \"multi-reactor\"\nreactors = 2\nworkers = 2\njob_ms = 1\ntrigger = \"edge\"",
        "model = \"reuseport\"\nreactors = 2\ntrigger = \"level\"",
        "model = \"reuseport\"\nreactors = 2\ntrigger = \"edge\"",
        "model = \"reuseport\"\nreactors = 2\ntrigger = \"edge-oneshot\"",
        "model = \"shared-epoll\"\nreactors = 3",
        "model = \"netpoll\"",
    ];
    let workloads = [
        "count = 4\nmessages = 10\nsize = \"1..4096\"\npattern = \"pingpong\"",
        "count = 3\nmessages = 8\nsize = \"1..32768\"\npattern = \"pipeline\"",
    ];
    let seeds: Vec<u64> = (0..seeds_max).collect();
    let mut problems = Vec::new();
    for server in servers {
        for clients in workloads {
            let text = format!("name = \"soak\"\n[server]\n{server}\n[clients]\n{clients}\n");
            let scenario = edgesim::scenario::parse("soak.toml", &text).expect("valid");
            let explored = explore(&scenario, &seeds, 2, &|| {});
            let (server, clients) = (server.replace('\n', " "), clients.replace('\n', " "));
            eprintln!("soak [{server}] [{clients}]: {}", explored.summary());
            if let Some((seed, verdict)) = explored.failures.first() {
                problems.push(format!(
                    "[{server}] [{clients}]: {} failures, first {} at seed {seed}",
                    explored.failures.len(),
                    verdict.name()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The knobs the catalogue added: `[sim] fd_limit` reaches the kernel's limit and is
/// range-checked, and `linger` is a pattern a scenario can name.
#[test]
fn fd_limit_and_linger_are_scenario_keys() {
    let text = "name = \"x\"\n[clients]\npattern = \"linger\"\n[sim]\nfd_limit = 17\n";
    let scenario = edgesim::scenario::parse("ok.toml", text).expect("valid");
    assert_eq!(scenario.sim.fd_limit, 17);
    assert_eq!(scenario.clients.pattern, edgesim::scenario::Pattern::Linger);
    let config = edgesim::runner::world_config(&scenario, 0, false);
    assert_eq!(config.kernel.fd_limit, 17);
    let error = edgesim::scenario::parse("bad.toml", "name = \"x\"\n[sim]\nfd_limit = 3\n")
        .expect_err("too small a limit");
    assert_eq!((error.line, error.key.as_str()), (3, "sim.fd_limit"));
}
