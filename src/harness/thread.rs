//! Threads and sleeps for code that runs on both backends: a simulated thread inside a
//! simulated world, an OS thread outside. A server that calls `std::thread::spawn` in the
//! simulator would start a real thread, outside the world, whose facade objects would talk
//! to Linux; and `std::thread::sleep` would stop the whole world, which runs on one OS
//! thread. These two functions are the replacements.

use crate::os::{Os, OsJoin, SimOs};
use std::time::Duration;

/// A thread started by [`spawn`].
#[derive(Debug)]
pub struct JoinHandle(Inner);

#[derive(Debug)]
enum Inner {
    Sim(<SimOs as Os>::JoinHandle),
    Real(std::thread::JoinHandle<()>),
}

impl JoinHandle {
    /// Waits for the thread to end; `Err` carries its panic message.
    pub fn join(self) -> Result<(), String> {
        match self.0 {
            Inner::Sim(handle) => handle.join(),
            Inner::Real(handle) => handle.join().map_err(|payload| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".to_string())
            }),
        }
    }
}

/// Starts `body` on a new thread named `name`: simulated inside a world, an OS thread
/// otherwise.
pub fn spawn<F>(name: &str, body: F) -> JoinHandle
where
    F: FnOnce() + Send + 'static,
{
    if sim::sched::in_world() {
        JoinHandle(Inner::Sim(SimOs.spawn(name, body)))
    } else {
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(body)
            .expect("the OS starts a thread");
        JoinHandle(Inner::Real(handle))
    }
}

/// Sleeps for `duration`: virtual time inside a world, wall time outside.
pub fn sleep(duration: Duration) {
    if sim::sched::in_world() {
        SimOs.sleep(duration);
    } else {
        std::thread::sleep(duration);
    }
}
