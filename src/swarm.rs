//! Swarm mode: every seed first draws its own simulated environment, then runs in it.
//!
//! Why: a scenario that carries the setting exposing its bug (tiny buffers, a fault at 50%,
//! strict edges) only finds bugs its author already suspected. The environment is the
//! simulator's to vary, not the user's: which fault kinds are on and how often they fire,
//! the TCP buffer sizes, the delivery latency, the descriptor limit, the scheduling strategy
//! and its switch bias. Each kind is left out of about half the seeds, as in swarm testing
//! (Groce et al., ISSTA 2012): a run without short writes reaches states a run drowning in
//! them never does, and the other way round. FoundationDB's BUGGIFY does the same for its
//! simulated cluster.
//!
//! The draw comes from its own stream of the seed (stream 10), so the seed alone replays
//! the environment, and the run's other streams (schedule, kernel, faults, workload) are the
//! ones the same seed gives without swarm. Knobs the scenario sets itself are pinned and
//! never drawn; `[sim] swarm = false` draws nothing.

use crate::scenario::{Knob, Pattern, Scenario, SimSpec, KNOBS};
use crate::server::Model;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sim::sched::{derive_seed, Strategy};

/// The seed stream the environment is drawn from.
const SWARM_STREAM: u64 = 10;

/// The largest TCP send buffer drawn: what Linux autotunes a loopback socket to (measured:
/// 3,939,840 bytes, `tcp_wmem` max 4 MiB).
const SNDBUF_BYTES_MAX: usize = 3_939_840;
/// The largest TCP receive buffer drawn: what Linux's receive autotuning may grow a socket
/// to (`tcp_rmem` max, 6 MiB). A fresh socket starts at 128 KiB; a reader that keeps up
/// lets it grow, and a buffer larger than the server's read size is what makes a read that
/// stops early leave bytes behind with no arrival to come.
const RCVBUF_BYTES_MAX: usize = 6 * 1024 * 1024;
/// The smallest TCP buffer drawn (the scenario files' lower bound).
const BUF_BYTES_MIN: usize = 1024;
/// The longest delivery latency drawn (`latency_us_max`), in microseconds.
const LATENCY_US_MAX: usize = 1000;

/// What the workload lets the network do to it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// The clients reconnect and resend when the network resets a connection, so resets and
    /// aborted accepts may be drawn.
    pub resets: bool,
}

impl Tolerance {
    /// What edgesim's own clients tolerate for `scenario`: resets, except where the pattern
    /// expects the server to end the connection (an end of file the retry would mistake for
    /// a reset).
    pub fn of_standard_clients(scenario: &Scenario) -> Tolerance {
        Tolerance {
            resets: scenario.clients.pattern != Pattern::Idle,
        }
    }
}

/// `scenario` with its environment for `seed`: the unpinned knobs drawn when swarm mode is
/// on, the scenario as it is otherwise.
pub fn resolve(scenario: &Scenario, seed: u64, tolerance: Tolerance) -> Scenario {
    let mut resolved = scenario.clone();
    if scenario.sim.swarm {
        let drawn = draw(scenario, seed, tolerance);
        for knob in KNOBS {
            if !scenario.sim.pinned.contains(knob) {
                resolved.sim.copy_knob(knob, &drawn);
            }
        }
    }
    resolved
}

/// `scenario` with its environment for `seed` written into it and swarm mode off: every
/// knob pinned to what the seed drew, so the scenario replays that environment at any seed
/// (what the shrinker works on, and what its output file says).
pub fn pin_environment(scenario: &Scenario, seed: u64, tolerance: Tolerance) -> Scenario {
    let mut pinned = resolve(scenario, seed, tolerance);
    pinned.sim.swarm = false;
    pinned.sim.pinned = crate::scenario::Pinned::ALL;
    pinned
}

/// The environment line of a run: `swarm: short_read=0.31 segment=0.12 rcvbuf_bytes=6144
/// strategy=pct(2) ...`: every drawn knob that differs from the scenario files' default, then
/// the pinned ones; `None` when swarm mode is off.
pub fn describe(scenario: &Scenario, resolved: &SimSpec) -> Option<String> {
    if !scenario.sim.swarm {
        return None;
    }
    let text = |knobs: Vec<Knob>| -> String {
        let pairs: Vec<String> = knobs
            .iter()
            .map(|&k| format!("{}={}", k.name(), resolved.knob_text(k)))
            .collect();
        pairs.join(" ")
    };
    let drawn = drawn_knobs(scenario, resolved);
    let mut line = if drawn.is_empty() {
        "swarm: (every drawn knob at its default)".to_string()
    } else {
        format!("swarm: {}", text(drawn))
    };
    let pinned: Vec<Knob> = KNOBS
        .into_iter()
        .filter(|&k| scenario.sim.pinned.contains(k))
        .collect();
    if !pinned.is_empty() {
        line.push_str(&format!(" (pinned: {})", text(pinned)));
    }
    Some(line)
}

/// The knobs that were drawn, not pinned, and differ from the scenario files' defaults:
/// what `run` tries turning off to say which of them mattered, and what `shrink` tries
/// removing.
pub fn drawn_knobs(scenario: &Scenario, resolved: &SimSpec) -> Vec<Knob> {
    if !scenario.sim.swarm {
        return Vec::new();
    }
    let neutral = SimSpec::default();
    KNOBS
        .into_iter()
        .filter(|&k| !scenario.sim.pinned.contains(k))
        .filter(|&k| resolved.knob_differs(&neutral, k))
        .collect()
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A draw uniform in `[low, high)`.
fn uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    low + unit(rng) * (high - low)
}

/// A draw whose logarithm is uniform in `[ln low, ln high]`: sizes across scales.
fn log_uniform(rng: &mut ChaCha8Rng, low: usize, high: usize) -> usize {
    let (a, b) = ((low as f64).ln(), (high as f64).ln());
    (uniform(rng, a, b).exp().round() as usize).clamp(low, high)
}

/// Each fault kind: the chance it is on in a seed, and the range of its probability per
/// opportunity when it is. Kinds that cost the correct server time (each EMFILE backs its
/// listener off for 100 ms) or a connection (resets) are on less often and fire rarely.
const FAULT_DRAWS: [(Knob, f64, f64, f64); 10] = [
    (Knob::ShortRead, 0.5, 0.05, 0.5),
    (Knob::ShortWrite, 0.5, 0.05, 0.5),
    (Knob::Segment, 0.5, 0.05, 0.5),
    (Knob::Eintr, 0.3, 0.01, 0.2),
    (Knob::SpuriousReady, 0.3, 0.01, 0.2),
    (Knob::SpuriousWakeup, 0.3, 0.01, 0.2),
    (Knob::AcceptEmfile, 0.2, 0.01, 0.2),
    // Resets per batch of a client's messages (scaled to a probability per write below):
    // a batch must nearly always get through within the clients' 32 attempts, also when
    // short writes split its messages into many more writes than the estimate counts.
    (Knob::Reset, 0.15, 0.01, 0.2),
    (Knob::AcceptAbort, 0.15, 0.01, 0.1),
    (Knob::AcceptReset, 0.15, 0.01, 0.1),
];

/// Whether a fault kind's injections kill connections.
fn kills_connections(knob: Knob) -> bool {
    matches!(knob, Knob::Reset | Knob::AcceptAbort | Knob::AcceptReset)
}

/// Every knob drawn for `scenario` at `seed` (pinned ones included: the caller keeps the
/// scenario's value for those). The draws happen in a fixed order whatever is pinned, so
/// pinning one knob does not change the others.
fn draw(scenario: &Scenario, seed: u64, tolerance: Tolerance) -> SimSpec {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, SWARM_STREAM));
    let mut spec = SimSpec::default();
    for (knob, on, low, high) in FAULT_DRAWS {
        let is_on = unit(&mut rng) < on;
        let p = uniform(&mut rng, low, high);
        if is_on && (tolerance.resets || !kills_connections(knob)) {
            let p = if knob == Knob::Reset {
                p / writes_per_batch(scenario)
            } else {
                p
            };
            *knob
                .probability_mut(&mut spec.faults)
                .expect("a fault knob") = p;
        }
    }
    let (latency_drawn, latency) = (
        unit(&mut rng) < 0.5,
        log_uniform(&mut rng, 1, LATENCY_US_MAX),
    );
    if latency_drawn {
        spec.latency_us_max = latency as u64;
    }
    let (sndbuf_drawn, sndbuf) = (
        unit(&mut rng) < 0.5,
        log_uniform(&mut rng, BUF_BYTES_MIN, SNDBUF_BYTES_MAX),
    );
    if sndbuf_drawn {
        spec.sndbuf_bytes = sndbuf;
    }
    let (rcvbuf_drawn, rcvbuf) = (
        unit(&mut rng) < 0.5,
        log_uniform(&mut rng, BUF_BYTES_MIN, RCVBUF_BYTES_MAX),
    );
    if rcvbuf_drawn {
        spec.rcvbuf_bytes = rcvbuf;
    }
    let (tight, room) = (unit(&mut rng) < 0.25, unit(&mut rng));
    if tight {
        spec.fd_limit = tight_fd_limit(scenario, room).min(spec.fd_limit);
    }
    let (pct, depth, bias_on, bias) = (
        unit(&mut rng) < 0.5,
        1 + (rng.next_u64() % 3) as u32,
        unit(&mut rng) < 0.5,
        uniform(&mut rng, 0.5, 0.95),
    );
    if pct {
        spec.strategy = Strategy::Pct {
            depth,
            steps_hint: 0,
        };
    } else if bias_on {
        spec.switch_bias = bias;
    }
    // Drawn last, so that every draw above stays what the seed gave before this one existed.
    let (small, scale, send_factor, receive_factor) = (
        unit(&mut rng) < SMALL_BUFFERS_ON,
        log_uniform(&mut rng, BUF_BYTES_MIN, SMALL_BUFFERS_SCALE_MAX),
        uniform(&mut rng, -1.0, 1.0),
        uniform(&mut rng, -1.0, 1.0),
    );
    if small {
        spec.sndbuf_bytes = small_buffer(scale, send_factor);
        spec.rcvbuf_bytes = small_buffer(scale, receive_factor);
    }
    // Drawn after the small buffers, for the same reason.
    let (hold_on, hold) = (
        unit(&mut rng) < HOLD_ON,
        uniform(&mut rng, HOLD_P_MIN.ln(), HOLD_P_MAX.ln()).exp(),
    );
    if hold_on {
        spec.faults.sched.hold = hold;
    }
    // Drawn after the holds, for the same reason; it changes a run only where `accept_emfile`
    // fires, so it is drawn only where that fault is on.
    let (window_on, window_ms) = (
        unit(&mut rng) < EMFILE_WINDOW_ON,
        log_uniform(&mut rng, EMFILE_WINDOW_MS_MIN, EMFILE_WINDOW_MS_MAX),
    );
    let emfile = if scenario.sim.pinned.contains(Knob::AcceptEmfile) {
        scenario.sim.faults.kernel.accept_emfile
    } else {
        spec.faults.kernel.accept_emfile
    };
    if window_on && emfile > 0.0 {
        spec.emfile_window_ms = window_ms as u64;
    }
    spec
}

/// The share of the seeds with `accept_emfile` on in which an EMFILE lasts (the descriptor
/// table stays full for a while, as when the rest of the process holds it): a one-call
/// EMFILE never repeats long enough for a loop that retries at once to show as a spin, and
/// with one client the drawn descriptor limit always leaves room for its connection.
const EMFILE_WINDOW_ON: f64 = 0.5;
/// The shortest window drawn: a spinning accept makes a call per microsecond of virtual
/// time, and a spin is 10,000 identical failing calls in a row.
const EMFILE_WINDOW_MS_MIN: usize = 5;
/// The longest window drawn: two of the correct listener's 100 ms backoffs.
const EMFILE_WINDOW_MS_MAX: usize = 200;

/// The share of seeds in which threads are held off the processor (the `hold` fault): a
/// host with more runnable threads than cores. It opens windows that are one step wide in
/// an unloaded run: a loop's check of its queues before it stores its wake flag, with a
/// worker's result arriving inside it (measured with the rest of the environment drawn:
/// `wake-flag-race` on workload 34 of `edgesim evaluate --only wake-flag-race`, 3 loops, a
/// worker with 1 ms jobs and 8 ping-pong clients, failed in none of 500 seeds at `hold = 0`,
/// 3 at 0.002, 14 at 0.02 and 9 at 0.05).
const HOLD_ON: f64 = 0.3;
/// The range of the hold probability per preemption point, drawn log-uniformly: from a
/// hold every few hundred calls to one every twenty.
const HOLD_P_MIN: f64 = 0.002;
/// See [`HOLD_P_MIN`].
const HOLD_P_MAX: f64 = 0.05;

/// The share of seeds whose send and receive buffers are both small, drawn around one
/// scale: a host short of socket memory, or one whose `tcp_wmem` and `tcp_rmem` were set
/// low, shrinks both ends together. Drawn one by one, two buffers near 1 KiB at once come up
/// in about 3 seeds of 1,000, and that pair is what makes a reply of a few KiB wait for
/// `EPOLLOUT` (measured: `oneshot-one-direction` on a two-client churn of 3 KiB replies
/// failed only in such seeds, 4 of 1,000).
const SMALL_BUFFERS_ON: f64 = 0.25;
/// The largest scale of the small-buffer draw: each buffer is the scale times a factor
/// between a half and two.
const SMALL_BUFFERS_SCALE_MAX: usize = 32 * 1024;

/// One buffer of the small-buffer draw: `scale` times two to the power `factor` (in
/// `[-1, 1)`), never below the smallest buffer drawn.
fn small_buffer(scale: usize, factor: f64) -> usize {
    ((scale as f64 * factor.exp2()).round() as usize).max(BUF_BYTES_MIN)
}

/// A descriptor limit that leaves the server room for only some of the clients'
/// connections at once (`room` in `[0, 1)` says how many): every client's own socket and
/// epoll instance fit, the server's fixed descriptors fit, and between 1 and all of the
/// connections' server ends fit. The rest wait in the accept queue until one closes, so the
/// listener meets a full table (EMFILE) in the middle of ordinary traffic.
fn tight_fd_limit(scenario: &Scenario, room: f64) -> usize {
    const STDIO_FDS: usize = 3;
    /// A client holds its socket and its epoll instance.
    const CLIENT_FDS: usize = 2;
    let clients = scenario.clients.count;
    let server_ends = 1 + (room * clients as f64) as usize;
    STDIO_FDS + server_fds(scenario) + CLIENT_FDS * clients + server_ends.min(clients)
}

/// Descriptors the server holds besides its connections, at most (measured from the
/// traces: a multi-reactor server has a listener and an epoll instance and an eventfd per
/// loop; reuseport a listener, an epoll instance and an eventfd per loop; the others three).
fn server_fds(scenario: &Scenario) -> usize {
    let config = &scenario.server.config;
    if scenario.server.netpoll {
        return 3;
    }
    match config.model {
        Model::SingleReactor | Model::SharedEpoll => 3,
        Model::MultiReactor => 1 + 2 * (config.reactors + 1),
        Model::ReusePort => 3 * config.reactors,
    }
}

/// About how many writes both ends of one client's connection make for one batch of its
/// messages, at worst (1 KiB at a time): the `reset` fault fires per write.
fn writes_per_batch(scenario: &Scenario) -> f64 {
    let clients = &scenario.clients;
    let messages = if clients.pattern == Pattern::Churn {
        1
    } else {
        clients.messages
    };
    (2 * messages * (1 + clients.size_bytes.1 / 1024)) as f64
}

/// Which drawn knobs the failure at `seed` needed, found by running the seed again with
/// each drawn knob back at its default in turn (`verdict_of` runs a scenario at `seed`):
/// the line a failing `run` prints under its diagnosis, or `None` when swarm mode is off or
/// nothing was drawn. A knob "mattered" when the seed passes without it; the same seed with
/// a knob taken away also draws its other random choices differently (a fault that cannot
/// fire draws nothing), so this is evidence, not proof, and `shrink` goes further.
pub fn knobs_that_mattered(
    scenario: &Scenario,
    seed: u64,
    verdict_of: impl Fn(&Scenario) -> crate::scenario::Verdict,
) -> Option<String> {
    let tolerance = Tolerance::of_standard_clients(scenario);
    let pinned = pin_environment(scenario, seed, tolerance);
    let drawn = drawn_knobs(scenario, &pinned.sim);
    if drawn.is_empty() {
        return None;
    }
    let neutral = SimSpec::default();
    let (needed, not_needed): (Vec<Knob>, Vec<Knob>) = drawn.into_iter().partition(|&knob| {
        let mut without = pinned.clone();
        without.sim.copy_knob(knob, &neutral);
        verdict_of(&without) == crate::scenario::Verdict::Pass
    });
    let names = |knobs: &[Knob], values: bool| -> String {
        let list: Vec<String> = knobs
            .iter()
            .map(|&k| match values {
                true => format!("{}={}", k.name(), pinned.sim.knob_text(k)),
                false => k.name().to_string(),
            })
            .collect();
        list.join(" ")
    };
    Some(if needed.is_empty() {
        format!(
            "environment: the seed still fails with each drawn knob at its default in turn ({}), so no single one of them exposed it",
            names(&not_needed, false)
        )
    } else {
        let mut line = format!(
            "environment that mattered: {} (the seed passes with it at its default)",
            names(&needed, true)
        );
        if !not_needed.is_empty() {
            line.push_str(&format!(
                "; not needed on its own: {}",
                names(&not_needed, false)
            ));
        }
        line
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, Pattern};

    fn scenario(text: &str) -> Scenario {
        parse("t.toml", &format!("name = \"t\"\n{text}")).expect("valid")
    }

    #[test]
    fn the_seed_alone_gives_the_environment_and_seeds_differ() {
        let s = scenario("");
        let at = |seed| resolve(&s, seed, Tolerance::of_standard_clients(&s)).sim;
        assert_eq!(at(7), at(7));
        let distinct: std::collections::BTreeSet<String> = (0..50)
            .map(|seed| describe(&s, &at(seed)).expect("on"))
            .collect();
        assert!(
            distinct.len() > 40,
            "{} distinct environments",
            distinct.len()
        );
    }

    #[test]
    fn pinned_knobs_are_kept_and_swarm_off_draws_nothing() {
        let s = scenario("[sim]\nsndbuf_bytes = 4096\nfaults = { short_read = 0.0 }\n");
        for seed in 0..100 {
            let drawn = resolve(&s, seed, Tolerance::of_standard_clients(&s)).sim;
            assert_eq!(drawn.sndbuf_bytes, 4096);
            assert_eq!(drawn.faults.kernel.short_read, 0.0);
        }
        let off = scenario("[sim]\nswarm = false\n");
        for seed in 0..100 {
            assert_eq!(resolve(&off, seed, Tolerance { resets: true }).sim, off.sim);
        }
        assert_eq!(describe(&off, &off.sim), None);
    }

    #[test]
    fn resets_are_drawn_only_where_the_workload_tolerates_them() {
        let idle = scenario(
            "[server]\nmodel = \"netpoll\"\nidle_timeout_ms = 20\n[clients]\npattern = \"idle\"\n",
        );
        assert!(!Tolerance::of_standard_clients(&idle).resets);
        let pingpong = scenario("");
        assert_eq!(pingpong.clients.pattern, Pattern::Pingpong);
        let resets = |s: &Scenario, tolerance| {
            (0..200)
                .filter(|&seed| resolve(s, seed, tolerance).injects_resets())
                .count()
        };
        assert_eq!(resets(&idle, Tolerance::of_standard_clients(&idle)), 0);
        assert!(resets(&pingpong, Tolerance::of_standard_clients(&pingpong)) > 20);
    }

    #[test]
    fn a_tight_descriptor_limit_leaves_room_for_every_client_and_one_connection() {
        let s = scenario("[clients]\ncount = 6\n");
        let least = tight_fd_limit(&s, 0.0);
        // stdio, the multi-reactor server's 7, two per client, one server end.
        assert_eq!(least, 3 + 7 + 2 * 6 + 1);
        assert_eq!(tight_fd_limit(&s, 0.999), 3 + 7 + 2 * 6 + 6);
    }
}
