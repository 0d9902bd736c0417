//! The conformance runner: executes `.ops` scripts against a backend and prints one
//! transcript line per operation, so that the simulator can be compared with Linux.
//!
//! A script is parsed and checked completely before anything runs ([`parse`]), then
//! interpreted over the [`Os`](crate::os::Os) seam ([`run`]), so the same interpreter
//! drives both kernels and only the kernel differs between two transcripts.
//!
//! The results follow the table in DESIGN.md. Where the table leaves a case open, the
//! transcript says what happened rather than hiding it: a `drain` or `fill` that moved
//! bytes and then failed prints `some,ERRNO` (a reset peer's data comes before its
//! `ECONNRESET`), a `connect` still in progress after settling prints `EINPROGRESS`, and a
//! `drain` or `fill` that hit the runner's own bound prints `some,unfinished`. An operation
//! on a name whose defining operation failed uses descriptor `-1`, so it fails with `EBADF`.

mod parse;
mod run;

#[cfg(test)]
mod tests;

pub use parse::{parse, Line, Name, Op, ParseError, Script};
pub use run::run;

use std::path::Path;
use std::process::ExitCode;

/// `edgesim conform SCRIPT --backend sim|real`: prints the transcript; exit 2 on a malformed
/// script, with `FILE:LINE: message` on stderr.
pub fn cli(script: &Path, real: bool) -> ExitCode {
    let source = match std::fs::read_to_string(script) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("{}: cannot read the script: {error}", script.display());
            return ExitCode::from(2);
        }
    };
    let parsed = match parse(&source) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("{}:{}: {}", script.display(), error.line, error.message);
            return ExitCode::from(2);
        }
    };
    let transcript = if real {
        run_real(&parsed)
    } else {
        run_sim(&parsed)
    };
    match transcript {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{}: {message}", script.display());
            ExitCode::from(2)
        }
    }
}

/// Runs the script on Linux.
fn run_real(script: &Script) -> Result<Vec<String>, String> {
    Ok(run(&crate::os::RealOs::new(), script))
}

/// Runs the script on one simulated thread of a fresh world in conformance mode (immediate
/// delivery, no faults).
fn run_sim(script: &Script) -> Result<Vec<String>, String> {
    let script = script.clone();
    Ok(crate::os::SimOs::conformance(move |os| run(&os, &script)))
}
