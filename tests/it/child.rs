//! One test alone in a child process: this test binary runs itself, asked for the exact
//! test. Tests that change process-wide state (the descriptor limit, signal dispositions)
//! or count the process's descriptors need a process no other test shares.

use std::process::Command;

/// Set in the child to the name of the test it runs.
const CHILD_ENV: &str = "EDGESIM_TEST_CHILD";

/// In the child, `None`: the caller runs the test's body. In the parent, waits for the
/// child, fails with its output if it failed or ran no test, and returns its stderr.
/// `module` is the caller's `module_path!()`.
#[track_caller]
pub fn run_alone(module: &str, test: &str) -> Option<String> {
    // `module_path!` starts with the crate name, which libtest leaves out of test names.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let name = format!("{module}::{test}");
    if std::env::var(CHILD_ENV).as_deref() == Ok(name.as_str()) {
        return None;
    }
    // `/proc/self/exe` still runs this binary if a concurrent build replaced the file.
    let output = Command::new("/proc/self/exe")
        .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, &name)
        .output()
        .expect("the test binary can run itself");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "child {name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // A name that matched no test would pass with nothing run.
    assert!(
        stdout.contains("1 passed"),
        "child {name} did not run exactly one test:\n{stdout}"
    );
    Some(stderr)
}
