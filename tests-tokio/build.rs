//! Finds mio's own `examples/tcp_server.rs` in the crates.io `mio` package, so that the tests
//! compile that file unmodified against this workspace's `mio` (tests/it/mio_example.rs),
//! without a copy of it in this repository.
//!
//! The workspace's `[patch.crates-io]` replaces crates.io's mio in every dependency graph
//! of the workspace, so no dependency can bring the real package. Instead this asks cargo
//! about a scratch manifest that depends on it and is a workspace of its own (outside the
//! patch): `cargo metadata` downloads and unpacks the package if it must and tells where its
//! manifest is. The example's path reaches the tests as `MIO_TCP_SERVER_EXAMPLE`.

use std::path::PathBuf;
use std::process::Command;

/// The mio release whose example is compiled: the one this workspace's `mio` mirrors.
const MIO_VERSION: &str = "1.2.5";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let scratch = out.join("mio-source");
    std::fs::create_dir_all(scratch.join("src")).expect("OUT_DIR is writable");
    std::fs::write(scratch.join("src/lib.rs"), "").expect("OUT_DIR is writable");
    let manifest = format!(
        "[package]\nname = \"mio-source\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nmio = {{ version = \"={MIO_VERSION}\", default-features = false }}\n\n\
         # A workspace of its own, so the patch of the workspace around it does not apply.\n\
         [workspace]\n"
    );
    std::fs::write(scratch.join("Cargo.toml"), manifest).expect("OUT_DIR is writable");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // The local registry cache usually has the package; only ask the network if it has not.
    let metadata = ["--offline", "--quiet"]
        .iter()
        .map(|mode| {
            Command::new(&cargo)
                .args(["metadata", "--format-version", "1", "--filter-platform"])
                .arg(&target)
                .arg("--manifest-path")
                .arg(scratch.join("Cargo.toml"))
                .arg(mode)
                .output()
                .expect("cargo runs")
        })
        .find(|output| output.status.success())
        .unwrap_or_else(|| panic!("cargo metadata could not find crates.io's mio {MIO_VERSION}"));
    let json = String::from_utf8(metadata.stdout).expect("cargo metadata prints UTF-8");
    let key = "\"manifest_path\":\"";
    let tail = format!("/mio-{MIO_VERSION}/Cargo.toml\"");
    let manifest_path = json
        .split(key)
        .skip(1)
        .filter_map(|rest| rest.find('"').map(|end| &rest[..=end]))
        .find(|path| path.ends_with(&tail))
        .map(|path| &path[..path.len() - 1])
        .unwrap_or_else(|| panic!("cargo metadata names no mio-{MIO_VERSION} package"));
    let example = PathBuf::from(manifest_path)
        .parent()
        .expect("a manifest has a directory")
        .join("examples/tcp_server.rs");
    assert!(example.is_file(), "{} is missing", example.display());
    println!(
        "cargo:rustc-env=MIO_TCP_SERVER_EXAMPLE={}",
        example.display()
    );
    println!("cargo:rerun-if-changed=build.rs");
}
