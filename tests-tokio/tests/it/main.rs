//! edgesim's tests of unmodified code on the simulator, one binary: tokio servers
//! (`tokio::net`, a current-thread runtime) and mio's own `tcp_server` example, built
//! against the workspace's `mio` through its `[patch.crates-io]`, run under edgesim's
//! harness in seeded simulated worlds and on Linux.

// tokio's clock is `Instant::now()`; this makes it the simulated world's virtual clock on
// the OS thread that runs a world (docs/UNMODIFIED.md, "Time").
mio::virtual_clock!();

mod clock;
mod determinism;
mod echo;
mod faults;
mod framing;
mod mio_example;
mod support;
