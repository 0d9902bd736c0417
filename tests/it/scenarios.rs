//! Every scenario in `scenarios/` at its pinned seed: the verdict it expects, and a snapshot of
//! its summary, diagnosis and the end of its trace, for review with `cargo insta review`.

use crate::snap;
use edgesim::runner::run_sim;
use std::path::{Path, PathBuf};

/// Trace lines a snapshot keeps: the end of the run, where a failure shows.
const SNAPSHOT_TRACE_LINES: usize = 30;

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// Runs one scenario at its pinned seed and checks its snapshot; returns why its verdict is
/// not the expected one, if it is not.
fn check(path: &Path) -> Option<String> {
    let scenario = edgesim::scenario::load(path).expect("the scenario parses");
    let result = run_sim(&scenario, scenario.seed, true);
    let relative = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .expect("under the workspace");
    if result.verdict != scenario.expect {
        return Some(format!(
            "{}: expected {} at seed {}, got {} (pin a seed that shows the verdict with \
             `[expect] seed = N`); replay: edgesim run {} --seed {} --trace",
            scenario.name,
            scenario.expect.name(),
            scenario.seed,
            result.verdict.name(),
            relative.display(),
            scenario.seed
        ));
    }
    let mut text = format!(
        "scenario {} ({}): expects {} at seed {}\n{}\n",
        scenario.name,
        relative.display(),
        scenario.expect.name(),
        scenario.seed,
        result.summary()
    );
    // The environment swarm mode drew for the seed is part of what a reviewer must see.
    if let Some(environment) = &result.environment {
        text.push_str(&format!("{environment}\n"));
    }
    for line in &result.diagnosis {
        text.push_str(&format!("diagnosis: {line}\n"));
    }
    let tail = result.trace.len().saturating_sub(SNAPSHOT_TRACE_LINES);
    for line in &result.trace[tail..] {
        text.push_str(&format!("trace: {line}\n"));
    }
    snap::check("scenarios", &scenario.name, Some(relative), &text);
    None
}

#[test]
fn every_scenario_gives_its_expected_verdict_and_snapshot() {
    let files = scenario_files();
    assert!(files.len() >= 2, "scenarios/ holds the scenarios");
    let failures: Vec<String> = files.iter().filter_map(|path| check(path)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same scenario files on Linux over loopback, through the binary (a process of its own,
/// so that the spin check's CPU accounting sees only the server): the correct server passes,
/// and a flawed one is reported as a stall within the stated bound instead of hanging.
#[test]
fn real_backend_passes_correct_servers_and_reports_the_read_once_stall_in_bounds() {
    use std::process::Command;
    use std::time::{Duration, Instant};
    let run = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name);
        let output = Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["run", path.to_str().expect("utf-8"), "--backend", "real"])
            .args(["--stall-after-ms", "500"])
            .output()
            .expect("edgesim runs");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let last = stdout.lines().last().unwrap_or_default().to_string();
        (output.status.code(), last, stdout)
    };
    for passing in ["bench-echo.toml", "shared-epoll.toml", "frame.toml"] {
        let (code, last, stdout) = run(passing);
        assert!(last.starts_with("verdict=pass "), "{passing}: {stdout}");
        assert_eq!(code, Some(0), "{passing}");
    }

    let start = Instant::now();
    let (code, last, stdout) = run("read-once.toml");
    assert!(last.starts_with("verdict=stall "), "{stdout}");
    assert_eq!(code, Some(1));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the stall was declared after {:?}",
        start.elapsed()
    );
}
