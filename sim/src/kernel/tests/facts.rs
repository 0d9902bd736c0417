//! Measured facts of epoll-semantics.md, one test each.

use super::*;
