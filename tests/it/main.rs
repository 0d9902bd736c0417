//! edgesim's integration tests: one binary, one module per feature.
mod load;
mod conform;
mod snap;
