//! A standalone mio echo reactor (`reactor.rs`), written against plain `mio`. In this
//! workspace `mio` is edgesim's crate (the workspace's `[patch.crates-io]`), so the program
//! serves on Linux here, and edgesim's tests (tests/it/mio_facade.rs) run the very same file
//! in the simulator through `edgesim::mio`. Compiling this example is the check that the
//! file needs no change for either name.
//!
//! Run it: `cargo run --example echo_reactor -- 127.0.0.1:7000 [--one-read]`, then
//! `nc 127.0.0.1 7000`.

/// The reactor against `mio` (this workspace's, through the patch). `main` uses only part
/// of it; the tests use the rest.
#[allow(dead_code)]
mod with_mio {
    include!("reactor.rs");
}

/// The same reactor against edgesim's facade.
#[allow(dead_code)]
mod with_edgesim {
    use edgesim::mio;
    include!("reactor.rs");
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:7000".to_string())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let drain = if args.any(|a| a == "--one-read") {
        with_mio::Drain::OneRead
    } else {
        with_mio::Drain::UntilWouldBlock
    };
    let listener = mio::net::TcpListener::bind(addr)?;
    eprintln!(
        "echo_reactor: serving on {} ({drain:?})",
        listener.local_addr()?
    );
    with_mio::serve(listener, drain)
}
