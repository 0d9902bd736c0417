//! Writing a scenario back as a file: what `edgesim evaluate --write` saves for a pair, so
//! that a failing generated workload is a scenario anyone can run, replay and keep as a
//! regression. Parsing the text gives the scenario back (tested on generated workloads).

use super::{Knob, Scenario, KNOBS};
use crate::server::{Model, ServerConfig};
use sim::kernel::EdgeModel;
use sim::sched::Strategy;
use std::fmt::Write as _;

/// The scenario as TOML. Server keys that differ from the defaults are written, every
/// client key, and of the simulator's knobs the pinned ones (all of them when swarm mode
/// is off, since then each knob's value is the run's).
pub fn to_toml(scenario: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name = {:?}", scenario.name);
    if !scenario.description.is_empty() {
        let _ = writeln!(out, "description = {:?}", scenario.description);
    }
    out.push_str("\n[server]\n");
    server(&mut out, scenario);
    let c = &scenario.clients;
    let (min, max) = c.size_bytes;
    out.push_str("\n[clients]\n");
    let _ = writeln!(out, "count = {}", c.count);
    let _ = writeln!(out, "messages = {}", c.messages);
    if min == max {
        let _ = writeln!(out, "size = {min}");
    } else {
        let _ = writeln!(out, "size = \"{min}..{max}\"");
    }
    let _ = writeln!(out, "pattern = \"{}\"", c.pattern.name());
    out.push_str("\n[sim]\n");
    sim(&mut out, scenario);
    out.push_str("\n[expect]\n");
    let _ = writeln!(out, "verdict = \"{}\"", scenario.expect.name());
    let _ = writeln!(out, "seed = {}", scenario.seed);
    out
}

fn server(out: &mut String, scenario: &Scenario) {
    let spec = &scenario.server;
    if spec.netpoll {
        out.push_str("model = \"netpoll\"\n");
        if let Some(flaw) = spec.netpoll_flaw {
            let _ = writeln!(out, "flaw = \"{}\"", flaw.name());
        }
        if let Some(timeout) = spec.idle_timeout {
            let _ = writeln!(out, "idle_timeout_ms = {}", timeout.as_millis());
        }
        return;
    }
    let c = &spec.config;
    let defaults = ServerConfig::default();
    let _ = writeln!(out, "model = \"{}\"", c.model.name());
    let _ = writeln!(out, "reactors = {}", c.reactors);
    if c.model != Model::SharedEpoll {
        let _ = writeln!(out, "workers = {}", c.workers);
        if !c.job_duration.is_zero() {
            let _ = writeln!(out, "job_ms = {}", c.job_duration.as_millis());
        }
        let _ = writeln!(out, "balance = \"{}\"", c.balance.name());
        let _ = writeln!(out, "trigger = \"{}\"", c.trigger.name());
        let _ = writeln!(out, "handler = \"{}\"", spec.handler.name());
    }
    if let Some(flaw) = c.flaw {
        let _ = writeln!(out, "flaw = \"{}\"", flaw.name());
    }
    let sizes = [
        (
            "read_buffer_bytes",
            c.read_buffer_bytes,
            defaults.read_buffer_bytes,
        ),
        (
            "read_budget_bytes",
            c.read_budget_bytes,
            defaults.read_budget_bytes,
        ),
        (
            "write_budget_bytes",
            c.write_budget_bytes,
            defaults.write_budget_bytes,
        ),
        (
            "inbound_bytes_max",
            c.inbound_bytes_max,
            defaults.inbound_bytes_max,
        ),
        (
            "outbound_bytes_max",
            c.outbound_bytes_max,
            defaults.outbound_bytes_max,
        ),
        ("events_max", c.events_max, defaults.events_max),
    ];
    for (key, value, default) in sizes {
        if value != default {
            let _ = writeln!(out, "{key} = {value}");
        }
    }
}

fn sim(out: &mut String, scenario: &Scenario) {
    let s = &scenario.sim;
    let edge = match s.edge {
        EdgeModel::Linux => "linux",
        EdgeModel::Strict => "strict",
    };
    let _ = writeln!(out, "edge = \"{edge}\"");
    if let Some(max_steps) = s.max_steps {
        let _ = writeln!(out, "max_steps = {max_steps}");
    }
    if !s.swarm {
        out.push_str("swarm = false\n");
    }
    let written = |knob: Knob| !s.swarm || s.pinned.contains(knob);
    for knob in KNOBS.into_iter().filter(|&k| written(k)) {
        match knob {
            Knob::Latency => {
                let _ = writeln!(out, "latency_us_max = {}", s.latency_us_max);
            }
            Knob::EmfileWindow => {
                let _ = writeln!(out, "emfile_window_ms = {}", s.emfile_window_ms);
            }
            Knob::Sndbuf => {
                let _ = writeln!(out, "sndbuf_bytes = {}", s.sndbuf_bytes);
            }
            Knob::Rcvbuf => {
                let _ = writeln!(out, "rcvbuf_bytes = {}", s.rcvbuf_bytes);
            }
            Knob::FdLimit => {
                let _ = writeln!(out, "fd_limit = {}", s.fd_limit);
            }
            Knob::Strategy => match s.strategy {
                Strategy::RandomWalk => out.push_str("strategy = \"random\"\n"),
                Strategy::EveryCall => out.push_str("strategy = \"every-call\"\n"),
                Strategy::Pct { depth, .. } => {
                    let _ = writeln!(out, "strategy = \"pct\"\npct_depth = {depth}");
                }
            },
            Knob::SwitchBias if !matches!(s.strategy, Strategy::Pct { .. }) => {
                let _ = writeln!(out, "switch_bias = {:?}", s.switch_bias);
            }
            _ => {}
        }
    }
    let faults: Vec<String> = KNOBS
        .into_iter()
        .filter(|&k| written(k))
        .filter_map(|k| Some(format!("{} = {:?}", k.name(), k.probability_of(&s.faults)?)))
        .collect();
    if !faults.is_empty() {
        let _ = writeln!(out, "faults = {{ {} }}", faults.join(", "));
    }
}
