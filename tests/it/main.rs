//! edgesim's integration tests: one binary, one module per feature.
mod catalogue;
mod child;
mod conform;
mod determinism;
mod differential;
mod evaluate;
mod explain;
mod hostile;
mod load;
mod mio_facade;
mod netpoll;
mod properties;
mod real_os;
mod reduction;
mod scenarios;
mod server_real;
mod snap;
