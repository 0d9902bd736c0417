//! Thin safe wrappers over the Linux syscalls a reactor uses.
