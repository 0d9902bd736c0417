//! The SVG timeline of a run: one lane per simulated thread with its calls as marks, one lane
//! per open connection with the bytes sent into it and read out of it, and the two markers
//! that explain a stall: the hazard (an edge taken and not drained) and the step after which
//! the stall was certain.
//!
//! The picture is self-contained (no scripts, no fonts or images fetched): every mark carries
//! a `<title>` with its trace line, which browsers show as a tooltip. The x axis is the step
//! number, not virtual time, so that a burst of calls in one microsecond stays readable.

use super::{escape_xml, Call, Timeline};
use crate::scenario::Verdict;
use sim::sched::Op;
use std::fmt::Write as _;

/// Steps shown at most; longer runs are windowed around the failure.
pub const WINDOW_STEPS_MAX: u64 = 400;

const LABEL_W: f64 = 190.0;
/// The plot's width for a short window; longer windows get `PX_PER_STEP_MIN` per step.
const PLOT_W_MIN: f64 = 1300.0;
const PX_PER_STEP_MIN: f64 = 2.2;
const HEADER_H: f64 = 96.0;
const LANE_H: f64 = 38.0;
const CONN_H: f64 = 48.0;
const FOOTER_LINE_H: f64 = 16.0;
const DIAGNOSIS_LINES_MAX: usize = 6;
const DIAGNOSIS_CHARS_MAX: usize = 200;

const COLOR_WAIT: &str = "#c9d3ea";
const COLOR_EVENT: &str = "#1f5fbf";
const COLOR_READ: &str = "#2e8b3e";
const COLOR_WRITE: &str = "#8a3fb8";
const COLOR_ACCEPT: &str = "#0f8f8f";
const COLOR_EVENTFD: &str = "#c99a06";
const COLOR_OTHER: &str = "#9a9a9a";
const COLOR_FAULT: &str = "#e0201b";
const COLOR_HAZARD: &str = "#f07800";
const COLOR_STALL: &str = "#d0021b";

/// Maps steps to x coordinates for one window.
struct Scale {
    start: u64,
    end: u64,
    plot_w: f64,
}

impl Scale {
    fn x(&self, step: u64) -> f64 {
        let clamped = step.clamp(self.start, self.end);
        let span = (self.end - self.start).max(1) as f64;
        LABEL_W + (clamped - self.start) as f64 * self.plot_w / span
    }

    fn contains(&self, step: u64) -> bool {
        (self.start..=self.end).contains(&step)
    }
}

/// Renders `timeline` as a standalone SVG document.
pub fn render(timeline: &Timeline) -> String {
    let (start, end) = timeline.window(WINDOW_STEPS_MAX);
    let plot_w = PLOT_W_MIN.max((end - start) as f64 * PX_PER_STEP_MIN);
    let scale = Scale { start, end, plot_w };
    let lanes_h = timeline.threads.len() as f64 * LANE_H;
    let conns_h = timeline.connections.len() as f64 * CONN_H;
    let diagnosis: Vec<&String> = timeline
        .diagnosis
        .iter()
        .take(DIAGNOSIS_LINES_MAX)
        .collect();
    let footer_h = 40.0 + (diagnosis.len() as f64 + 1.0) * FOOTER_LINE_H;
    let width = LABEL_W + plot_w + 40.0;
    let height = HEADER_H + lanes_h + conns_h + footer_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">"#
    );
    svg.push('\n');
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>"#
    );
    header(&mut svg, timeline, &scale);
    let mut y = HEADER_H;
    for thread in &timeline.threads {
        thread_lane(&mut svg, timeline, &scale, thread.tid, y);
        y += LANE_H;
    }
    for (idx, connection) in timeline.connections.iter().enumerate() {
        connection_lane(&mut svg, timeline, &scale, idx, connection, y);
        y += CONN_H;
    }
    axis(&mut svg, &scale, y);
    markers(&mut svg, timeline, &scale, HEADER_H, y);
    footer(&mut svg, &diagnosis, y + 30.0);
    svg.push_str("</svg>\n");
    svg
}

fn header(svg: &mut String, timeline: &Timeline, scale: &Scale) {
    let window = if scale.start == 0 && scale.end == timeline.end_step {
        format!("all {} steps", timeline.end_step)
    } else {
        format!(
            "steps {}..{} of {}",
            scale.start, scale.end, timeline.end_step
        )
    };
    let title = format!(
        "{} — seed {} — verdict {} — {window}",
        timeline.name,
        timeline.seed,
        timeline.verdict.name()
    );
    let _ = writeln!(
        svg,
        r#"<text x="12" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape_xml(&title)
    );
    // The legend: one sample of each mark, in the order of the lanes' vocabulary.
    let items: [(&str, &str); 9] = [
        (COLOR_WAIT, "blocked in epoll_wait"),
        (COLOR_EVENT, "epoll_wait returned events"),
        (COLOR_READ, "read (hollow: EAGAIN)"),
        (COLOR_WRITE, "write"),
        (COLOR_ACCEPT, "accept"),
        (COLOR_EVENTFD, "eventfd"),
        (COLOR_OTHER, "other call"),
        (COLOR_FAULT, "injected fault"),
        (COLOR_HAZARD, "edge taken .. left undrained"),
    ];
    let mut x = 12.0;
    for (color, label) in items {
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="34" width="10" height="10" fill="{color}"/><text x="{}" y="43">{label}</text>"#,
            x + 14.0
        );
        x += 22.0 + label.len() as f64 * 6.1;
    }
    let _ = writeln!(
        svg,
        r##"<text x="12" y="62" fill="#444">x axis: simulation step (one per system call); hover a mark for its trace line</text>"##
    );
}

fn lane_background(
    svg: &mut String,
    scale: &Scale,
    y: f64,
    h: f64,
    shaded: bool,
    label: &str,
    sublabel: &str,
) {
    if shaded {
        let _ = writeln!(
            svg,
            r##"<rect x="0" y="{y}" width="{}" height="{h}" fill="#f4f5f8"/>"##,
            LABEL_W + scale.plot_w + 40.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="10" y="{}" font-weight="bold">{}</text><text x="10" y="{}" fill="#555" font-size="10">{}</text>"##,
        y + h / 2.0 - 2.0,
        escape_xml(label),
        y + h / 2.0 + 11.0,
        escape_xml(sublabel)
    );
}

fn thread_lane(svg: &mut String, timeline: &Timeline, scale: &Scale, tid: u32, y: f64) {
    let name = timeline.thread_name(tid);
    lane_background(
        svg,
        scale,
        y,
        LANE_H,
        tid % 2 == 0,
        &format!("t{tid} {name}"),
        "",
    );
    let mid = y + LANE_H / 2.0;
    let _ = writeln!(
        svg,
        r##"<line x1="{LABEL_W}" y1="{mid}" x2="{}" y2="{mid}" stroke="#d8d8d8"/>"##,
        LABEL_W + scale.plot_w
    );
    let _ = writeln!(svg, r#"<g class="lane thread" data-tid="{tid}">"#);
    // A wait that never returned: the thread sleeps to the end of the run.
    for &(_, step) in timeline.blocked_at_end.iter().filter(|(t, _)| *t == tid) {
        if step <= scale.end {
            let x0 = scale.x(step);
            let x1 = scale.x(scale.end);
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="8" fill="{COLOR_WAIT}" stroke="{COLOR_EVENT}" stroke-width="0.6" stroke-dasharray="3,2"><title>blocked at step {step} and never woken</title></rect>"#,
                mid - 4.0,
                (x1 - x0).max(1.0)
            );
        }
    }
    for call in timeline.calls.iter().filter(|c| c.tid == tid) {
        let blocks = matches!(call.op, Op::EpollWait | Op::Park | Op::Sleep | Op::Join);
        let visible = scale.contains(call.step) || (blocks && scale.contains(call.since_step));
        if visible || (blocks && call.since_step < scale.start && call.step > scale.end) {
            call_mark(svg, timeline, scale, call, mid);
        }
    }
    svg.push_str("</g>\n");
}

/// The trace line of a call, for its tooltip.
fn call_title(timeline: &Timeline, call: &Call) -> String {
    let mut title = timeline.call_text(call);
    for (events, token) in &call.events {
        let _ = write!(
            title,
            "\nevent token {token:#x}: {}",
            super::events_name(*events)
        );
    }
    if let Some(fault) = call.fault {
        let _ = write!(title, "\nfault injected: {fault}");
    }
    escape_xml(&title)
}

fn call_mark(svg: &mut String, timeline: &Timeline, scale: &Scale, call: &Call, mid: f64) {
    let x = scale.x(call.step);
    let title = call_title(timeline, call);
    match call.op {
        Op::EpollWait | Op::Park | Op::Sleep | Op::Join => {
            let x0 = scale.x(call.since_step + 1).min(x);
            if x - x0 >= 1.0 {
                let _ = writeln!(
                    svg,
                    r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="8" fill="{COLOR_WAIT}"><title>{title}</title></rect>"#,
                    mid - 4.0,
                    x - x0
                );
            }
            if !scale.contains(call.step) {
                return;
            }
            if call.events.is_empty() {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{mid}" r="2.5" fill="{COLOR_OTHER}"><title>{title}</title></circle>"#
                );
            } else {
                let _ = writeln!(
                    svg,
                    r#"<path d="M{x:.1},{:.1} l5,6 l-5,6 l-5,-6 z" fill="{COLOR_EVENT}"><title>{title}</title></path>"#,
                    mid - 6.0
                );
                let label: Vec<String> = call
                    .events
                    .iter()
                    .take(2)
                    .map(|(events, _)| short_events(*events))
                    .collect();
                let more = if call.events.len() > 2 { "…" } else { "" };
                let _ = writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" font-size="8" fill="{COLOR_EVENT}" text-anchor="middle">{}{more}</text>"#,
                    mid - 8.0,
                    escape_xml(&label.join(" "))
                );
            }
        }
        Op::Read => {
            if call.ret == -i64::from(libc::EAGAIN) {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{mid}" r="3.5" fill="white" stroke="{COLOR_READ}" stroke-width="1.5"><title>{title}</title></circle>"#
                );
            } else {
                let h = if call.ret > 0 { 16.0 } else { 8.0 };
                let _ = writeln!(
                    svg,
                    r#"<rect x="{:.1}" y="{:.1}" width="3" height="{h}" fill="{COLOR_READ}"><title>{title}</title></rect>"#,
                    x - 1.5,
                    mid - h / 2.0
                );
            }
        }
        _ => {
            let (color, h) = match call.op {
                Op::Write => (COLOR_WRITE, 16.0),
                Op::Accept => (COLOR_ACCEPT, 16.0),
                Op::EventfdRead | Op::EventfdWrite | Op::Eventfd => (COLOR_EVENTFD, 12.0),
                _ => (COLOR_OTHER, 6.0),
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="2" height="{h}" fill="{color}"><title>{title}</title></rect>"#,
                x - 1.0,
                mid - h / 2.0
            );
        }
    }
    if let Some(fault) = call.fault {
        let _ = writeln!(
            svg,
            r#"<path class="fault" d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="{COLOR_FAULT}" stroke-width="2.2"><title>fault {fault} at step {}</title></path>"#,
            x - 4.0,
            mid + 6.0,
            call.step
        );
    }
}

/// `in,out` as `IN|OUT`, short enough to sit above a mark.
fn short_events(events: u32) -> String {
    super::events_name(events).to_uppercase().replace(',', "|")
}

fn connection_lane(
    svg: &mut String,
    timeline: &Timeline,
    scale: &Scale,
    idx: usize,
    connection: &super::Connection,
    y: f64,
) {
    let client = timeline.thread_name(connection.client_tid);
    lane_background(
        svg,
        scale,
        y,
        CONN_H,
        idx % 2 == 0,
        &format!("conn {client}"),
        &format!(
            "client fd {} ⇄ server fd {}",
            connection.client_fd, connection.server_fd
        ),
    );
    let _ = writeln!(
        svg,
        r#"<g class="lane connection" data-server-fd="{}">"#,
        connection.server_fd
    );
    // Bytes the client sent and the server has not read yet (arrival latency ignored): the
    // grey area is what sits in the server's receive queue.
    let (client_fd, server_fd) = (
        i64::from(connection.client_fd),
        i64::from(connection.server_fd),
    );
    let mut unread: i64 = 0;
    let mut points: Vec<(u64, i64)> = vec![(0, 0)];
    let mut marks = String::new();
    let top = y + 6.0;
    let bottom = y + CONN_H - 6.0;
    for call in &timeline.calls {
        let sent = call.tid == connection.client_tid
            && call.op == Op::Write
            && call.args[0] == client_fd
            && call.ret > 0;
        let read = call.tid != connection.client_tid
            && call.op == Op::Read
            && call.args[0] == server_fd
            && call.ret > 0;
        if !(sent || read) {
            continue;
        }
        unread = if sent {
            unread + call.ret
        } else {
            (unread - call.ret).max(0)
        };
        points.push((call.step, unread));
        if scale.contains(call.step) {
            let x = scale.x(call.step);
            let (shape, color, what) = if sent {
                (
                    format!("M{x:.1},{:.1} l4,7 l-8,0 z", top),
                    COLOR_EVENT,
                    "sent by the client",
                )
            } else {
                (
                    format!("M{x:.1},{:.1} l4,-7 l-8,0 z", bottom),
                    COLOR_READ,
                    "read by the server",
                )
            };
            let _ = writeln!(
                marks,
                r#"<path d="{shape}" fill="{color}"><title>step {}: {} bytes {what} ({unread} unread after)</title></path>"#,
                call.step, call.ret
            );
        }
    }
    let peak = points.iter().map(|&(_, b)| b).max().unwrap_or(0).max(1) as f64;
    // A square-root scale keeps a few unread bytes visible next to a large message.
    let level = |bytes: i64| bottom - (bottom - top - 8.0) * (bytes as f64 / peak).sqrt() - 4.0;
    let mut path = format!("M{:.1},{:.1}", scale.x(scale.start), level(0));
    let mut current = 0;
    for &(step, bytes) in &points {
        if step > scale.end {
            break;
        }
        let x = scale.x(step);
        let _ = write!(
            path,
            " L{x:.1},{:.1} L{x:.1},{:.1}",
            level(current),
            level(bytes)
        );
        current = bytes;
    }
    let _ = write!(
        path,
        " L{:.1},{:.1} L{:.1},{:.1} Z",
        scale.x(scale.end),
        level(current),
        scale.x(scale.end),
        level(0)
    );
    let _ = writeln!(
        svg,
        r##"<path d="{path}" fill="#d9d9d9" stroke="#8c8c8c" stroke-width="0.8"><title>bytes sent by the client and not yet read by the server (peak {peak} bytes)</title></path>"##
    );
    svg.push_str(&marks);
    if current > 0 {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#333" text-anchor="end">{current} bytes unread</text>"##,
            scale.x(scale.end) - 4.0,
            level(current) - 3.0
        );
    }
    svg.push_str("</g>\n");
}

fn axis(svg: &mut String, scale: &Scale, y: f64) {
    let _ = writeln!(
        svg,
        r##"<line x1="{LABEL_W}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/>"##,
        LABEL_W + scale.plot_w
    );
    let span = scale.end - scale.start;
    let tick = [
        1u64, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000,
    ]
    .into_iter()
    .find(|t| span / t <= 12)
    .unwrap_or(span / 10 + 1);
    let mut step = scale.start.div_ceil(tick) * tick;
    while step <= scale.end {
        let x = scale.x(step);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#333">{step}</text>"##,
            y + 5.0,
            y + 17.0
        );
        step += tick;
    }
}

fn markers(svg: &mut String, timeline: &Timeline, scale: &Scale, top: f64, bottom: f64) {
    let lane_mid = |tid: u32| top + tid as f64 * LANE_H + LANE_H / 2.0;
    // Every hazard: a bracket on its thread's lane from the edge it took to the wait it went
    // back to with bytes unread.
    for (idx, hazard) in timeline.hazards.iter().enumerate() {
        if !scale.contains(hazard.step) {
            continue;
        }
        let blamed = timeline.blamed_hazard == Some(idx);
        let (x0, x1) = (scale.x(hazard.consumed_step), scale.x(hazard.step));
        let y = lane_mid(hazard.tid) + 12.0;
        let _ = writeln!(
            svg,
            r#"<path class="hazard-span" d="M{x0:.1},{:.1} L{x0:.1},{y:.1} L{x1:.1},{y:.1} L{x1:.1},{:.1}" fill="none" stroke="{COLOR_HAZARD}" stroke-width="{}"><title>{}</title></path>"#,
            y - 5.0,
            y - 5.0,
            if blamed { 2.5 } else { 1.2 },
            escape_xml(&format!(
                "edge on fd {} taken at step {}, thread went back to epoll_wait at step {} with {} bytes unread",
                hazard.fd, hazard.consumed_step, hazard.step, hazard.bytes
            ))
        );
    }
    let blamed = timeline
        .blamed_hazard
        .filter(|&idx| scale.contains(timeline.hazards[idx].step));
    if let Some(idx) = blamed {
        let hazard = &timeline.hazards[idx];
        let label = format!(
            "hazard: t{} took the edge on fd {} at step {}, back in epoll_wait at step {} with {} bytes unread",
            hazard.tid, hazard.fd, hazard.consumed_step, hazard.step, hazard.bytes
        );
        vertical_marker(
            svg,
            scale.plot_w,
            "hazard",
            "hazard-marker",
            scale.x(hazard.step),
            top - 18.0,
            bottom,
            COLOR_HAZARD,
            "6,3",
            &label,
        );
    }
    if let Some(step) = timeline.stall_certain_step.filter(|&s| scale.contains(s)) {
        let label = format!(
            "stall certain at step {step}: {}",
            timeline.stall_certain_why
        );
        vertical_marker(
            svg,
            scale.plot_w,
            "stall-certain",
            "stall-marker",
            scale.x(step),
            top - 4.0,
            bottom,
            COLOR_STALL,
            "",
            &label,
        );
    }
    if timeline.verdict == Verdict::Stall && scale.contains(timeline.end_step) {
        let x = scale.x(timeline.end_step);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#222" stroke-width="2"/><text x="{:.1}" y="{}" font-size="10" text-anchor="end">end: every thread blocked</text>"##,
            x - 3.0,
            bottom + 28.0
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn vertical_marker(
    svg: &mut String,
    plot_w: f64,
    class: &str,
    id: &str,
    x: f64,
    label_y: f64,
    bottom: f64,
    color: &str,
    dash: &str,
    label: &str,
) {
    // Labels grow leftwards when the marker sits in the right half, so they stay in view.
    let anchor = if x > LABEL_W + plot_w / 2.0 {
        "end"
    } else {
        "start"
    };
    let text_x = if anchor == "end" { x - 4.0 } else { x + 4.0 };
    let _ = writeln!(
        svg,
        r#"<g class="marker {class}" id="{id}"><line x1="{x:.1}" y1="{label_y}" x2="{x:.1}" y2="{bottom}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{text_x:.1}" y="{}" fill="{color}" font-weight="bold" text-anchor="{anchor}">{}</text><title>{}</title></g>"#,
        label_y + 10.0,
        escape_xml(label),
        escape_xml(label)
    );
}

fn footer(svg: &mut String, diagnosis: &[&String], y: f64) {
    let _ = writeln!(
        svg,
        r#"<text x="12" y="{y}" font-weight="bold">diagnosis</text>"#
    );
    for (idx, line) in diagnosis.iter().enumerate() {
        let mut text: String = line.chars().take(DIAGNOSIS_CHARS_MAX).collect();
        if line.chars().count() > DIAGNOSIS_CHARS_MAX {
            text.push('…');
        }
        let _ = writeln!(
            svg,
            r##"<text x="12" y="{}" font-size="10" fill="#333">{}</text>"##,
            y + (idx as f64 + 1.0) * FOOTER_LINE_H,
            escape_xml(&text)
        );
    }
}
