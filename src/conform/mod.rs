//! The conformance runner: executes `.ops` scripts against a backend and prints one
//! transcript line per operation, so that the simulator can be compared with Linux.

use std::path::Path;
use std::process::ExitCode;

/// `edgesim conform SCRIPT --backend sim|real`: prints the transcript; exit 2 on a malformed
/// script.
pub fn cli(_script: &Path, _real: bool) -> ExitCode {
    ExitCode::from(2)
}
