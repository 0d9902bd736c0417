//! Workload clients, written against the seam so that one scenario drives the simulator and
//! Linux alike. Every byte that comes back is checked against the byte that was sent at the
//! same stream offset, so loss, duplication and reordering are caught where they happen.

mod client;
mod plan;

pub use client::{run_client, ClientError, ClientReport, Progress, LINGER};
pub use plan::{
    expected_byte, ClientPlan, FRAME_PREFIX_BYTES, FRAME_REPLY_BYTES, PIPELINE_DEPTH,
    SLOW_READ_BYTES,
};
