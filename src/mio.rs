//! `edgesim::mio`: the [`mio`] crate of this workspace (`mio/`), re-exported.
//!
//! It is one implementation, reachable two ways: through a `[patch.crates-io]` entry that
//! makes it every crate's `mio` (tokio's included; see `docs/UNMODIFIED.md`), or by name,
//! with one line in code that should not depend on the patch:
//!
//! ```text
//! #[cfg(test)]
//! use edgesim::mio; // instead of the mio crate
//! ```
//!
//! Each object runs on the simulator inside a simulated world (see [`crate::harness`]) and
//! on Linux outside one. The crate's documentation says what is covered and how.

pub use ::mio::*;
