//! Properties over generated workloads: the correct server passes every workload in the
//! simulator, under both edge models and every trigger mode, and a replay of any run gives
//! the same trace.
//!
//! quickcheck 1.x cannot be seeded, so the generated case carries everything, the simulator
//! seed included, and prints as a scenario file plus that seed: a counterexample replays with
//! `edgesim run FILE --seed N`.

use edgesim::runner::run_sim;
use edgesim::scenario::Verdict;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use std::fmt;

/// Cases per property by default; `EDGESIM_PROP_CASES` raises it.
const CASES_DEFAULT: u64 = 24;

#[derive(Clone)]
struct Workload {
    seed: u64,
    model: &'static str,
    handler: &'static str,
    reactors: u8,
    workers: u8,
    trigger: &'static str,
    edge: &'static str,
    pattern: &'static str,
    clients: u8,
    messages: u8,
    size_max: u32,
    read_buffer_bytes: u32,
    faults: bool,
}

impl Workload {
    fn toml(&self) -> String {
        let faults = if self.faults {
            "faults = { short_read = 0.2, short_write = 0.2, segment = 0.3, eintr = 0.1 }\n"
        } else {
            ""
        };
        format!(
            "name = \"generated\"\n[server]\nmodel = \"{}\"\nhandler = \"{}\"\nreactors = {}\nworkers = {}\n\
             trigger = \"{}\"\nread_buffer_bytes = {}\n[clients]\ncount = {}\nmessages = {}\n\
             size = \"1..{}\"\npattern = \"{}\"\n[sim]\nedge = \"{}\"\nmax_steps = 2000000\n{faults}",
            self.model,
            // The shared-epoll server only echoes.
            if self.model == "shared-epoll" { "echo" } else { self.handler },
            self.reactors,
            // The shared-epoll server has no worker pool.
            if self.model == "shared-epoll" { 0 } else { self.workers },
            self.trigger,
            self.read_buffer_bytes,
            self.clients,
            self.messages,
            self.size_max,
            self.pattern,
            self.edge,
        )
    }
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n# seed = {}\n{}", self.seed, self.toml())
    }
}

fn pick<T: Copy>(g: &mut Gen, items: &[T]) -> T {
    *g.choose(items).expect("not empty")
}

impl Arbitrary for Workload {
    fn arbitrary(g: &mut Gen) -> Workload {
        Workload {
            seed: u64::arbitrary(g),
            model: pick(
                g,
                &[
                    "single-reactor",
                    "multi-reactor",
                    "reuseport",
                    "shared-epoll",
                ],
            ),
            handler: pick(g, &["echo", "echo", "frame"]),
            reactors: 1 + u8::arbitrary(g) % 3,
            workers: pick(g, &[0, 0, 1, 2]),
            trigger: pick(g, &["level", "edge", "edge-oneshot"]),
            edge: pick(g, &["linux", "strict"]),
            pattern: pick(
                g,
                &[
                    "pingpong",
                    "pipeline",
                    "burst",
                    "half-close",
                    "reset",
                    "slow-reader",
                    "churn",
                ],
            ),
            clients: 1 + u8::arbitrary(g) % 4,
            messages: 1 + u8::arbitrary(g) % 5,
            size_max: pick(g, &[1, 64, 4096, 70_000]),
            read_buffer_bytes: pick(g, &[512, 4096, 65536]),
            faults: bool::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Workload>> {
        let mut smaller = Vec::new();
        let mut push = |change: &dyn Fn(&mut Workload)| {
            let mut w = self.clone();
            change(&mut w);
            smaller.push(w);
        };
        if self.clients > 1 {
            push(&|w| w.clients -= 1);
        }
        if self.messages > 1 {
            push(&|w| w.messages -= 1);
        }
        if self.faults {
            push(&|w| w.faults = false);
        }
        if self.workers > 0 {
            push(&|w| w.workers = 0);
        }
        if self.reactors > 1 {
            push(&|w| w.reactors -= 1);
        }
        if self.size_max > 1 {
            push(&|w| w.size_max = (w.size_max / 16).max(1));
        }
        Box::new(smaller.into_iter())
    }
}

fn cases() -> u64 {
    std::env::var("EDGESIM_PROP_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES_DEFAULT)
}

fn correct_server_passes_and_replays(workload: Workload) -> TestResult {
    let scenario = edgesim::scenario::parse("generated.toml", &workload.toml())
        .expect("the generator writes valid scenarios");
    let first = run_sim(&scenario, workload.seed, false);
    if first.verdict != Verdict::Pass {
        let replay = run_sim(&scenario, workload.seed, true);
        return TestResult::error(format!(
            "{}\n{}",
            replay.diagnosis.join("\n"),
            replay.summary()
        ));
    }
    let second = run_sim(&scenario, workload.seed, false);
    TestResult::from_bool(first.trace_hash == second.trace_hash)
}

#[test]
fn the_correct_server_passes_every_generated_workload_and_replays() {
    QuickCheck::new()
        .tests(cases())
        .max_tests(cases() * 4)
        .quickcheck(correct_server_passes_and_replays as fn(Workload) -> TestResult);
}
