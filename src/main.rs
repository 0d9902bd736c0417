//! The `edgesim` command line: one verb per workflow (conformance, runs, exploration, the
//! real server and its load generator).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic simulation and test harness for epoll-based network servers.
#[derive(Parser)]
#[command(name = "edgesim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which kernel runs the operations.
#[derive(Copy, Clone, ValueEnum, Debug, PartialEq, Eq)]
enum Backend {
    /// The seeded simulated kernel.
    Sim,
    /// Linux, on loopback.
    Real,
}

#[derive(Subcommand)]
enum Command {
    /// Run a conformance script (`*.ops`) and print one transcript line per operation.
    Conform {
        /// The script.
        script: PathBuf,
        /// The kernel to run it on.
        #[arg(long, value_enum, default_value = "sim")]
        backend: Backend,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conform { script, backend } => {
            edgesim::conform::cli(&script, backend == Backend::Real)
        }
    }
}
