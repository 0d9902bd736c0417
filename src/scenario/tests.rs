//! Scenario parsing: a good file round-trips, and each kind of mistake gets the exact error.

use super::parse::parse;
use super::{Pattern, Verdict};
use crate::server::{Flaw, HandlerKind, Model, Trigger};

/// Parses `text` as `bad.toml` and checks the whole error line.
#[track_caller]
fn check_error(text: &str, expected: &str) {
    let error = parse("bad.toml", text).expect_err("the scenario is rejected");
    assert_eq!(error.to_string(), expected);
}

#[test]
fn the_design_example_parses() {
    let text = r#"
name = "read-once"
description = "ET reactor reads one buffer per wakeup"
[server]
model = "multi-reactor"
reactors = 2
workers = 0
balance = "round-robin"
trigger = "edge"
flaw = "read-once"
[clients]
count = 4
messages = 10
size = "1..65536"
pattern = "pingpong"
[sim]
edge = "linux"
faults = { short_write = 0.1, reset = 0.0 }
max_steps = 200000
[expect]
verdict = "stall"
"#;
    let scenario = parse("ok.toml", text).expect("valid");
    assert_eq!(scenario.server.config.model, Model::MultiReactor);
    assert_eq!(scenario.server.config.trigger, Trigger::Edge);
    assert_eq!(scenario.server.config.flaw, Some(Flaw::ReadOnce));
    assert!(!scenario.server.netpoll);
    assert_eq!(scenario.clients.size_bytes, (1, 65536));
    assert_eq!(scenario.clients.pattern, Pattern::Pingpong);
    assert_eq!(scenario.sim.faults.kernel.short_write, 0.1);
    assert_eq!(scenario.expect, Verdict::Stall);
}

#[test]
fn unknown_key_names_line_and_key() {
    check_error(
        "name = \"x\"\n[server]\nreactorz = 2\n",
        "bad.toml:3: key `reactorz`: unknown field `reactorz`, expected one of `model`, `reactors`, `workers`, `balance`, `trigger`, `flaw`, `handler`, `read_buffer_bytes`, `read_budget_bytes`, `write_budget_bytes`, `inbound_bytes_max`, `outbound_bytes_max`, `events_max`, `idle_timeout_ms`, `job_ms`",
    );
}

#[test]
fn unknown_section() {
    check_error(
        "name = \"x\"\n[servr]\nreactors = 2\n",
        "bad.toml:2: key `servr`: unknown field `servr`, expected one of `name`, `description`, `server`, `clients`, `sim`, `expect`",
    );
}

#[test]
fn wrong_type() {
    check_error(
        "name = \"x\"\n[server]\nreactors = \"two\"\n",
        "bad.toml:3: invalid type: string \"two\", expected i64",
    );
}

#[test]
fn out_of_range_integer() {
    check_error(
        "name = \"x\"\n[server]\nreactors = 0\n",
        "bad.toml:3: key `server.reactors`: 0 is out of range (expected 1..=64)",
    );
}

#[test]
fn unknown_flaw_lists_the_known_ones() {
    let error = parse(
        "bad.toml",
        "name = \"x\"\n[server]\nflaw = \"read-twice\"\n",
    )
    .unwrap_err();
    assert_eq!(error.line, 3);
    assert_eq!(error.key, "server.flaw");
    assert!(error
        .message
        .starts_with("unknown value \"read-twice\" (expected one of: read-once, accept-once,"));
}

#[test]
fn unknown_pattern_lists_the_known_ones() {
    check_error(
        "name = \"x\"\n[clients]\n\npattern = \"ping\"\n",
        "bad.toml:4: key `clients.pattern`: unknown value \"ping\" (expected one of: pingpong, pipeline, burst, half-close, reset, slow-reader, churn, idle, linger)",
    );
}

#[test]
fn bad_size_range() {
    check_error(
        "name = \"x\"\n[clients]\nsize = \"10..5\"\n",
        "bad.toml:3: key `clients.size`: 10..5 is out of range (expected 1 <= MIN <= MAX <= 16777216)",
    );
    check_error(
        "name = \"x\"\n[clients]\nsize = \"big\"\n",
        "bad.toml:3: key `clients.size`: \"big\" is not a size (expected a number or \"MIN..MAX\")",
    );
}

#[test]
fn probability_out_of_range() {
    check_error(
        "name = \"x\"\n[sim]\nfaults = { short_write = 1.5 }\n",
        "bad.toml:3: key `sim.faults.short_write`: 1.5 is not a probability (expected 0.0..=1.0)",
    );
}

#[test]
fn unknown_fault_name() {
    check_error(
        "name = \"x\"\n[sim]\nfaults = { shortwrite = 0.5 }\n",
        "bad.toml:3: key `shortwrite`: unknown field `shortwrite`, expected one of `short_read`, `short_write`, `segment`, `reset`, `accept_abort`, `accept_emfile`, `accept_reset`, `eintr`, `eintr_io`, `spurious_wakeup`, `spurious_ready`, `hold`",
    );
}

#[test]
fn unknown_verdict() {
    check_error(
        "name = \"x\"\n[expect]\nverdict = \"hang\"\n",
        "bad.toml:3: key `expect.verdict`: unknown value \"hang\" (expected one of: pass, stall, spin, corrupt, leak, crash, inconclusive)",
    );
}

#[test]
fn missing_name() {
    check_error(
        "[server]\nreactors = 2\n",
        "bad.toml:1: missing field `name`",
    );
}

#[test]
fn not_toml_at_all() {
    check_error(
        "name = \"x\"\n[server\n",
        "bad.toml:2: unclosed table, expected `]`",
    );
}

#[test]
fn unknown_edge_model() {
    check_error(
        "name = \"x\"\n[sim]\nedge = \"textbook\"\n",
        "bad.toml:3: key `sim.edge`: unknown value \"textbook\" (expected one of: linux, strict)",
    );
}

#[test]
fn netpoll_flaws_are_netpoll_names() {
    use crate::netpoll::Flaw as NetpollFlaw;
    let text =
        "name = \"x\"\n[server]\nmodel = \"netpoll\"\nflaw = \"no-pdwait\"\nidle_timeout_ms = 20\n";
    let scenario = parse("ok.toml", text).expect("valid");
    assert!(scenario.server.netpoll);
    assert_eq!(scenario.server.netpoll_flaw, Some(NetpollFlaw::NoPdwait));
    assert_eq!(scenario.server.config.flaw, None);
    assert_eq!(
        scenario.server.idle_timeout,
        Some(std::time::Duration::from_millis(20))
    );
    // A reactor flaw means nothing to the netpoller, and the list says what does.
    check_error(
        "name = \"x\"\n[server]\nmodel = \"netpoll\"\nflaw = \"read-once\"\n",
        "bad.toml:4: key `server.flaw`: unknown value \"read-once\" (expected one of: no-ready-token, clear-after-eagain, no-pdwait)",
    );
    check_error(
        "name = \"x\"\n[server]\nidle_timeout_ms = 20\n",
        "bad.toml:3: key `server.idle_timeout_ms`: applies only to model = \"netpoll\"",
    );
}

#[test]
fn job_ms_needs_a_worker_pool() {
    let text = "name = \"x\"\n[server]\nworkers = 1\njob_ms = 50\n";
    let scenario = parse("ok.toml", text).expect("valid");
    assert_eq!(
        scenario.server.config.job_duration,
        std::time::Duration::from_millis(50)
    );
    check_error(
        "name = \"x\"\n[server]\njob_ms = 50\n",
        "bad.toml:3: key `server.job_ms`: applies only with workers > 0 (it is how long a worker job takes)",
    );
    check_error(
        "name = \"x\"\n[server]\nworkers = 1\njob_ms = 60001\n",
        "bad.toml:4: key `server.job_ms`: 60001 is out of range (expected 0..=60000)",
    );
}

#[test]
fn shared_epoll_has_one_flaw_and_no_workers() {
    let text = "name = \"x\"\n[server]\nmodel = \"shared-epoll\"\nflaw = \"shared-no-oneshot\"\n";
    let scenario = parse("ok.toml", text).expect("valid");
    assert_eq!(scenario.server.config.model, Model::SharedEpoll);
    check_error(
        "name = \"x\"\n[server]\nmodel = \"shared-epoll\"\nflaw = \"read-once\"\n",
        "bad.toml:4: key `server.flaw`: the only flaw of model = \"shared-epoll\" is \"shared-no-oneshot\"",
    );
    check_error(
        "name = \"x\"\n[server]\nflaw = \"shared-no-oneshot\"\n",
        "bad.toml:3: key `server.flaw`: applies only to model = \"shared-epoll\"",
    );
    check_error(
        "name = \"x\"\n[server]\nmodel = \"shared-epoll\"\nworkers = 2\n",
        "bad.toml:4: key `server.workers`: model = \"shared-epoll\" has no worker pool",
    );
}

#[test]
fn the_frame_handler_is_for_the_reactor_server_only() {
    let text = "name = \"x\"\n[server]\nhandler = \"frame\"\n";
    assert_eq!(
        parse("ok.toml", text).expect("valid").server.handler,
        HandlerKind::Frame
    );
    check_error(
        "name = \"x\"\n[server]\nmodel = \"netpoll\"\nhandler = \"frame\"\n",
        "bad.toml:4: key `server.handler`: the netpoll and shared-epoll servers only echo",
    );
    check_error(
        "name = \"x\"\n[server]\nmodel = \"shared-epoll\"\nhandler = \"frame\"\n",
        "bad.toml:4: key `server.handler`: the netpoll and shared-epoll servers only echo",
    );
}

#[test]
fn every_key_a_file_sets_is_pinned_and_swarm_can_be_turned_off() {
    use super::{Knob, KNOBS};
    let text = "name = \"x\"\n[sim]\nsndbuf_bytes = 4096\nswitch_bias = 0.5\n\
                emfile_window_ms = 20\n\
                faults = { accept_reset = 0.1, spurious_ready = 0.2, eintr_io = 0.3, hold = 0.01 }\n";
    let scenario = parse("ok.toml", text).expect("valid");
    assert!(scenario.sim.swarm, "swarm mode is on unless turned off");
    let pinned: Vec<Knob> = KNOBS
        .into_iter()
        .filter(|&k| scenario.sim.pinned.contains(k))
        .collect();
    assert_eq!(
        pinned,
        [
            Knob::AcceptReset,
            Knob::EintrIo,
            Knob::SpuriousReady,
            Knob::Hold,
            Knob::EmfileWindow,
            Knob::Sndbuf,
            Knob::SwitchBias
        ]
    );
    assert_eq!(scenario.sim.faults.kernel.spurious_ready, 0.2);
    assert_eq!(scenario.sim.faults.sched.hold, 0.01);
    assert_eq!(scenario.sim.emfile_window_ms, 20);
    assert_eq!(scenario.sim.faults.sched.eintr_io, 0.3);
    let off = parse("ok.toml", "name = \"x\"\n[sim]\nswarm = false\n").expect("valid");
    assert!(!off.sim.swarm);
}

#[test]
fn a_pct_depth_pins_pct_and_contradictions_are_refused() {
    let depth = parse("ok.toml", "name = \"x\"\n[sim]\npct_depth = 2\n").expect("valid");
    assert!(matches!(
        depth.sim.strategy,
        sim::sched::Strategy::Pct { depth: 2, .. }
    ));
    check_error(
        "name = \"x\"\n[sim]\nstrategy = \"random\"\npct_depth = 2\n",
        "bad.toml:4: key `sim.pct_depth`: applies only to strategy = \"pct\"",
    );
    check_error(
        "name = \"x\"\n[sim]\nstrategy = \"pct\"\nswitch_bias = 0.5\n",
        "bad.toml:4: key `sim.switch_bias`: applies only to strategy = \"random\" or \"every-call\" (PCT picks by priority)",
    );
    check_error(
        "name = \"x\"\n[sim]\nstrategy = \"every-call\"\npct_depth = 2\n",
        "bad.toml:4: key `sim.pct_depth`: applies only to strategy = \"pct\"",
    );
    let every = parse(
        "ok.toml",
        "name = \"x\"\n[sim]\nstrategy = \"every-call\"\n",
    )
    .expect("valid");
    assert_eq!(every.sim.strategy, sim::sched::Strategy::EveryCall);
    let random = parse("ok.toml", "name = \"x\"\n[sim]\nstrategy = \"random\"\n").expect("valid");
    assert_eq!(random.sim.strategy, sim::sched::Strategy::RandomWalk);
}
