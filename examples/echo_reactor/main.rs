//! A standalone mio echo reactor (`reactor.rs`), built twice from the same source: once
//! against the mio crate, once against `edgesim::mio`. The program serves on Linux with the
//! real mio; edgesim's tests (tests/it/mio_facade.rs) run the very same file in the
//! simulator. Compiling this example is the check that the file needs no change for either.
//!
//! Run it: `cargo run --example echo_reactor -- 127.0.0.1:7000 [--one-read]`, then
//! `nc 127.0.0.1 7000`.

/// The reactor against the mio crate (the `mio` in scope is the crate itself).
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
