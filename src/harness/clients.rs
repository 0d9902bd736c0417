//! A run's clients, on either backend: the standard ones (if on), then the user's, each on a
//! thread of its own, and what they saw once every one has ended.

use super::{Client, Harness};
use crate::os::{Os, OsJoin, OsMutex};
use crate::server::HandlerKind;
use crate::workload::{run_client, ClientError, ClientPlan, ClientReport, Progress};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the clients saw.
pub(super) struct Done {
    /// The standard clients' results, by client id.
    pub(super) standard: Vec<(u32, Result<ClientReport, ClientError>)>,
    /// The user clients' errors, as `clientN: error`, in name order.
    pub(super) user_failures: Vec<String>,
    /// The last panic of a client, if one panicked.
    pub(super) panic: Option<String>,
}

impl Harness {
    /// Runs the clients against `addr` on `os`'s threads and waits for all of them. The
    /// standard clients' plans and the user clients' own seeds derive from `seed`;
    /// `stall_after` bounds a standard client's wait with no progress (Linux only: the
    /// simulator sees stalls itself).
    pub(super) fn run_clients<O: Os>(
        &self,
        os: &O,
        addr: SocketAddr,
        seed: u64,
        progress: &Arc<Progress>,
        stall_after: Option<Duration>,
    ) -> Done {
        let standard = Arc::new(os.mutex(Vec::new()));
        let user = Arc::new(os.mutex(Vec::new()));
        let mut handles = Vec::new();
        let n_standard = if self.standard_clients {
            self.scenario.clients.count as u32
        } else {
            0
        };
        for id in 0..n_standard {
            let mut plan = ClientPlan::new(&self.scenario.clients, id, addr, seed);
            plan.retry_on_reset = self.scenario.injects_resets();
            plan.frames = self.scenario.server.handler == HandlerKind::Frame;
            let (os2, results, progress) =
                (os.clone(), Arc::clone(&standard), Arc::clone(progress));
            handles.push(os.spawn(&format!("client{id}"), move || {
                let result = run_client(&os2, &plan, &progress, stall_after);
                results.lock(|r: &mut Vec<_>| r.push((id, result)));
            }));
        }
        let mut thread_id = n_standard;
        for (count, body) in &self.user_clients {
            for index in 0..*count {
                let client_seed = sim::sched::derive_seed(seed, 200 + u64::from(thread_id));
                let client = Client::new(index, addr, client_seed, Arc::clone(progress));
                let (body, results) = (Arc::clone(body), Arc::clone(&user));
                let name = format!("client{thread_id}");
                let label = name.clone();
                handles.push(os.spawn(&name, move || {
                    let result = body(&client);
                    results.lock(|r: &mut Vec<_>| r.push((label, result)));
                }));
                thread_id += 1;
            }
        }
        let mut panic = None;
        for handle in handles {
            if let Err(message) = handle.join() {
                panic = Some(format!("a client panicked: {message}"));
            }
        }
        let mut standard = standard.lock(std::mem::take);
        standard.sort_by_key(|(id, _)| *id);
        let mut user = user.lock(std::mem::take);
        user.sort();
        let user_failures = user
            .into_iter()
            .filter_map(|(name, result)| result.err().map(|e| format!("{name}: {e}")))
            .collect();
        Done {
            standard,
            user_failures,
            panic,
        }
    }
}
