//! edgesim's integration tests: one binary, one module per feature.
mod load;
mod real_os;
mod conform;
mod snap;
mod server_real;
mod determinism;
mod scenarios;
mod netpoll;
mod mio_facade;
mod hostile;
mod explain;
mod differential;
mod properties;
mod catalogue;
