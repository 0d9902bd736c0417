//! The seam over real Linux, through the `real` crate.

/// The real Linux kernel.
#[derive(Clone, Debug)]
pub struct RealOs;
