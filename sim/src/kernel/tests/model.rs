//! The model beyond the conformance scripts: strict edges, latency, faults, introspection.

use super::*;
