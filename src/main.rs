//! The `edgesim` command line.

fn main() {}
