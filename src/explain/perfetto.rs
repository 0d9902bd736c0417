//! The Chrome trace-event JSON of a run, for the Perfetto UI (ui.perfetto.dev) and
//! chrome://tracing: one track per simulated thread, each call a slice on virtual time, the
//! events an `epoll_wait` returned as instants, and two kinds of flows: wakeups (the call of
//! another thread that made a sleeping `epoll_wait` return) and events (from the
//! `epoll_wait` that reported readiness to the call that acted on it).
//!
//! Virtual time: every step costs the simulator's call cost of 1 µs, so a call at step `s`
//! ends at `ts = s` µs (idle jumps of the clock are not shown; they would only stretch the
//! picture where nothing happens). A blocking call spans from its thread's previous call to
//! its return. The JSON is written by hand; every string goes through [`json_string`].

use super::{Call, Timeline};
use sim::sched::Op;
use std::fmt::Write as _;

/// The process id every track lives under (the simulated machine).
const PID: u32 = 1;
/// The width of a call that does not block, in µs.
const CALL_US: f64 = 0.9;

/// A JSON string literal for `text`.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Track ids start at 1: Perfetto shows tid 0 as the process itself.
fn track(tid: u32) -> u32 {
    tid + 1
}

fn blocks(call: &Call) -> bool {
    matches!(
        call.op,
        Op::EpollWait | Op::Park | Op::Sleep | Op::Join | Op::Lock
    ) && call.step > call.since_step + 1
}

/// The slice of a call: `(ts, dur)` in µs.
fn slice(call: &Call) -> (f64, f64) {
    if blocks(call) {
        let ts = call.since_step as f64;
        (ts, call.step as f64 - ts)
    } else {
        (call.step as f64 - CALL_US, CALL_US)
    }
}

/// Calls that wake a thread sleeping in `epoll_wait` (by making a watched file ready).
fn wakes(op: Op) -> bool {
    matches!(
        op,
        Op::Write
            | Op::EventfdWrite
            | Op::Connect
            | Op::Close
            | Op::Shutdown
            | Op::Reset
            | Op::Unpark
    )
}

/// Calls that act on a reported readiness.
fn handles(op: Op) -> bool {
    matches!(op, Op::Read | Op::Accept | Op::EventfdRead | Op::Write)
}

/// Renders `timeline` as trace-event JSON.
pub fn render(timeline: &Timeline) -> String {
    let mut events: Vec<String> = Vec::new();
    events.push(format!(
        r#"{{"name":"process_name","ph":"M","ts":0,"pid":{PID},"tid":0,"args":{{"name":{}}}}}"#,
        json_string(&format!(
            "edgesim {} seed {} ({})",
            timeline.name,
            timeline.seed,
            timeline.verdict.name()
        ))
    ));
    for thread in &timeline.threads {
        events.push(format!(
            r#"{{"name":"thread_name","ph":"M","ts":0,"pid":{PID},"tid":{},"args":{{"name":{}}}}}"#,
            track(thread.tid),
            json_string(&format!("t{} {}", thread.tid, thread.name))
        ));
        events.push(format!(
            r#"{{"name":"thread_sort_index","ph":"M","ts":0,"pid":{PID},"tid":{},"args":{{"sort_index":{}}}}}"#,
            track(thread.tid),
            thread.tid
        ));
    }
    let mut flow_id: u64 = 0;
    for (idx, call) in timeline.calls.iter().enumerate() {
        let (ts, dur) = slice(call);
        let tid = track(call.tid);
        events.push(format!(
            r#"{{"name":{},"cat":"call","ph":"X","ts":{ts:.3},"dur":{dur:.3},"pid":{PID},"tid":{tid},"args":{{"step":{},"ret":{},"trace":{}}}}}"#,
            json_string(call.op.name()),
            call.step,
            call.ret,
            json_string(&timeline.call_text(call))
        ));
        if let Some(fault) = call.fault {
            events.push(format!(
                r#"{{"name":{},"cat":"fault","ph":"i","s":"t","ts":{ts:.3},"pid":{PID},"tid":{tid}}}"#,
                json_string(&format!("fault {fault}"))
            ));
        }
        if call.op != Op::EpollWait || call.events.is_empty() {
            continue;
        }
        let at = call.step as f64 - 0.05;
        for (bits, token) in &call.events {
            events.push(format!(
                r#"{{"name":{},"cat":"event","ph":"i","s":"t","ts":{at:.3},"pid":{PID},"tid":{tid},"args":{{"token":{},"events":{}}}}}"#,
                json_string(&format!("event {}", super::events_name(*bits))),
                json_string(&format!("{token:#x}")),
                json_string(&super::events_name(*bits))
            ));
        }
        // Wakeup: the latest call of another thread, while this one slept, that could have
        // made a watched file ready.
        if blocks(call) {
            let cause = timeline.calls[..idx].iter().rev().find(|c| {
                c.tid != call.tid && c.step > call.since_step && wakes(c.op) && c.ret >= 0
            });
            if let Some(cause) = cause {
                flow_id += 1;
                let (cause_ts, cause_dur) = slice(cause);
                events.push(flow(
                    "wakeup",
                    "s",
                    flow_id,
                    cause_ts + cause_dur / 2.0,
                    track(cause.tid),
                ));
                events.push(flow("wakeup", "f", flow_id, at, tid));
            }
        }
        // Event: from the report to the first call of this thread that acts on it.
        let handler = timeline.calls[idx + 1..]
            .iter()
            .filter(|c| c.tid == call.tid)
            .take_while(|c| c.op != Op::EpollWait)
            .find(|c| handles(c.op));
        if let Some(handler) = handler {
            flow_id += 1;
            let (handler_ts, handler_dur) = slice(handler);
            events.push(flow("event", "s", flow_id, at, tid));
            events.push(flow(
                "event",
                "f",
                flow_id,
                handler_ts + handler_dur / 2.0,
                track(handler.tid),
            ));
        }
    }
    for &(tid, step) in &timeline.blocked_at_end {
        events.push(format!(
            r#"{{"name":"blocked (never woken)","cat":"call","ph":"X","ts":{:.3},"dur":{:.3},"pid":{PID},"tid":{}}}"#,
            step as f64 - CALL_US,
            (timeline.end_step.saturating_sub(step)) as f64 + CALL_US,
            track(tid)
        ));
    }
    for hazard in &timeline.hazards {
        events.push(format!(
            r#"{{"name":"hazard","cat":"hazard","ph":"i","s":"g","ts":{:.3},"pid":{PID},"tid":{},"args":{{"fd":{},"bytes_unread":{},"edge_taken_step":{}}}}}"#,
            hazard.step as f64,
            track(hazard.tid),
            hazard.fd,
            hazard.bytes,
            hazard.consumed_step
        ));
    }
    if let Some(step) = timeline.stall_certain_step {
        events.push(format!(
            r#"{{"name":"stall certain","cat":"stall","ph":"i","s":"g","ts":{:.3},"pid":{PID},"tid":0}}"#,
            step as f64
        ));
    }
    let mut out = String::from("{\"traceEvents\":[\n");
    out.push_str(&events.join(",\n"));
    let _ = write!(
        out,
        "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"scenario\":{},\"seed\":{},\"verdict\":{},\"steps\":{}}}}}\n",
        json_string(&timeline.name),
        timeline.seed,
        json_string(timeline.verdict.name()),
        timeline.end_step
    );
    out
}

/// One end of a flow: `ph` is `s` (start) or `f` (finish, bound to the enclosing slice).
fn flow(name: &str, ph: &str, id: u64, ts: f64, tid: u32) -> String {
    let binding = if ph == "f" { r#","bp":"e""# } else { "" };
    format!(
        r#"{{"name":"{name}","cat":"{name}","ph":"{ph}","id":{id},"ts":{ts:.3},"pid":{PID},"tid":{tid}{binding}}}"#
    )
}
