//! The seam over the simulated kernel of the `sim` crate.

/// The simulated kernel of the world running on the calling OS thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimOs;
