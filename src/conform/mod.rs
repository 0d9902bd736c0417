//! The conformance runner: executes `.ops` scripts against a backend and prints one
//! transcript line per operation, so that the simulator can be compared with Linux.
