//! edgesim's simulated Linux: a kernel model (descriptors, stream sockets, pipes, eventfd and
//! epoll as `fs/eventpoll.c` implements it) and a deterministic scheduler that runs simulated
//! threads one at a time, every choice drawn from one seeded ChaCha stream.
//!
//! This crate knows nothing of the servers that run on it. It speaks Linux's numbers: errno
//! values and epoll bits are `libc`'s constants.

pub mod kernel;
pub mod sched;
pub mod sync;
pub mod sys;
