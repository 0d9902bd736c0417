//! Unit tests of the kernel model.
