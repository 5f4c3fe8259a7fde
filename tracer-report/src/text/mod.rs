//! Human-readable renderer: tables plus the findings that matter, one file
//! per section (the same names as the analysis modules). Renderers compute
//! nothing: every figure and finding comes from the `Report`. Syscalls (mode
//! switches) and scheduler context switches are always in separate columns
//! and sentences.

mod asyncio;
mod io;
mod layout;
mod loops;
mod memory;
mod processes;
mod python;
mod requests;
mod sched;
mod signals;

pub use layout::columns;
pub use processes::MAX_ZOMBIES;

use std::fmt::Write as _;

use super::{
    Report,
    format::{nonzero, printable, thousands},
};

/// The report as text, fitted to `width` terminal columns (`None`: no
/// limit, as for a file or a pipe).
pub fn render(report: &Report, width: Option<usize>) -> String {
    let shown = printable_report(report);
    let report = &shown;
    let mut out = String::new();
    header(&mut out, report);
    io::render(&mut out, report, width);
    sched::render(&mut out, report, width);
    processes::render_processes(&mut out, report, width);
    processes::render_zombies(&mut out, report, width);
    memory::render(&mut out, report, width);
    signals::render(&mut out, report, width);
    python::render(&mut out, report, width);
    loops::render(&mut out, report, width);
    requests::render(&mut out, report, width);
    notes(&mut out, report);
    // A net under the one above: nothing but newlines acts on the terminal.
    // Prose longer than the width is wrapped under its own indent.
    out.split('\n')
        .map(|line| {
            let line = printable(line);
            match width {
                Some(width) => layout::wrap(&line, width),
                None => line.into_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A frame's short form in `room` columns: the function's name kept whole
/// as long as it can be, the file name cut from the left
/// (`quiet_library (...changes.py:19)`).
fn fit_frame(frame: &crate::frame::Frame, room: usize) -> String {
    let short = frame.short();
    if layout::columns(&short) <= room {
        return short;
    }
    let file = frame.file.rsplit('/').next().unwrap_or(&frame.file);
    // A native frame is `name [binary]`: the binary's name is cut, and a
    // C++ or Rust name loses its template arguments first, then its outer
    // scopes (its own name, at the end, stays).
    if frame.native {
        let mut name = frame.qualname.clone();
        if layout::columns(&name) + 3 + 4 > room {
            name = layout::without_template_args(&name);
        }
        let fixed = layout::columns(&name) + 3;
        if fixed + 4 <= room {
            return format!("{name} [{}]", layout::fit(file, room - fixed));
        }
        return layout::fit(&name, room);
    }
    let tail = format!(":{})", frame.line);
    let fixed = layout::columns(&frame.qualname) + 2 + tail.len();
    if fixed + 4 <= room {
        return format!(
            "{} ({}{tail}",
            frame.qualname,
            layout::fit(file, room - fixed)
        );
    }
    layout::fit(&short, room)
}

/// A frame in full, or short (the file without its directories) when the
/// report is fitted to a width.
fn frame_text(frame: &crate::frame::Frame, width: Option<usize>) -> String {
    match width {
        Some(_) => frame.short(),
        None => frame.to_string(),
    }
}

/// A stack, innermost first, in at most `room` columns: the file names
/// without their directories and the frames that fit, then how many more
/// (`None`: every frame, full paths). When they do not all fit, the first
/// Python frame of the program's own code (not the standard library's,
/// nor a native frame) is kept after the innermost: `Popen._execute_child
/// (...) <- ... 1 more <- spawn (app.py:7) <- ... 1 more`.
fn chain(frames: &[crate::frame::Frame], room: Option<usize>) -> String {
    let Some(room) = room else {
        return crate::frame::join(frames);
    };
    let short: Vec<String> = frames.iter().map(|f| f.short()).collect();
    let all = short.join(" <- ");
    if layout::columns(&all) <= room {
        return all;
    }
    if frames.len() < 2 {
        return fit_frame(&frames[0], room);
    }
    let more = |n: usize| format!(" <- ... {n} more");
    let own = frames
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, f)| f.is_resolved() && !f.native && f.stdlib_module().is_none())
        .map(|(i, _)| i);
    if let Some(i) = own {
        let skipped = if i > 1 { more(i - 1) } else { String::new() };
        let rest = frames.len() - i - 1;
        let tail = if rest > 0 { more(rest) } else { String::new() };
        let suffix = format!("{skipped} <- {}{tail}", short[i]);
        // The innermost frame, cut if need be, then the program's own.
        if layout::columns(&suffix) + 16 <= room {
            return fit_frame(&frames[0], room - layout::columns(&suffix)) + &suffix;
        }
    }
    // The innermost frame and how many more; when that leaves no room
    // for its function's name, just "<- ...".
    let tail = more(frames.len() - 1);
    let name_room = layout::columns(&frames[0].qualname) + 12;
    let tail = if room >= name_room + tail.len() {
        tail
    } else {
        " <- ...".to_owned()
    };
    let mut out = fit_frame(&frames[0], room.saturating_sub(tail.len()));
    out.push_str(&tail);
    out
}

/// `--dump`: every Python thread of the process (and its descendants) as
/// it is now, whole stacks, one frame a line.
pub fn render_dump(report: &Report) -> String {
    let shown = printable_report(report);
    let report = &shown;
    let mut out = String::new();
    python::render_dump(&mut out, report);
    out.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The report with every string made printable (`format::printable`): what
/// the traced program names (files, arguments, task names, Python code) can
/// neither act on the terminal nor break a row. Done on the data, so no
/// section can forget a field; the JSON report keeps the exact strings.
fn printable_report(report: &Report) -> Report {
    fn escape(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => {
                if let std::borrow::Cow::Owned(escaped) = printable(text) {
                    *text = escaped;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(escape),
            serde_json::Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    escape(&mut item);
                    map.insert(printable(&key).into_owned(), item);
                }
            }
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(report) else {
        return report.clone();
    };
    escape(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| report.clone())
}

fn header(out: &mut String, report: &Report) {
    let t = &report.target;
    let argv = if t.argv.is_empty() {
        String::new()
    } else {
        format!(": {}", t.argv.join(" "))
    };
    let ns = match t.ns_pid {
        Some(ns_pid) if ns_pid != t.pid => format!(", pid {ns_pid} in its pid namespace"),
        _ => String::new(),
    };
    let container = super::identity::Identities::of(report).in_container(t.pid);
    match t.scope.as_deref() {
        Some("all") => out.push_str("tracer report for every process on this host\n"),
        Some(scope) if t.pid == 0 => {
            let _ = writeln!(out, "tracer report for the processes of {scope}");
        }
        // `--container`: the container's init, with its container.
        _ => {
            let _ = writeln!(
                out,
                "tracer report for {} (pid {}{ns}){container}{argv}",
                t.comm, t.pid
            );
        }
    }
    let ended = match (t.exit_code, &t.exit_signal) {
        (Some(code), _) => format!(", exited with code {code}"),
        (None, Some(signal)) => format!(", killed by {signal}"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "traced for {:.2} s, stopped: {}{ended}; {} events received, {} lost",
        report.duration_s,
        report.stopped,
        thousands(report.events.received),
        thousands(report.events.lost)
    );
    if !report.complete {
        let d = &report.events.dropped;
        // Only what was lost: a list of zeros hides the figure that matters.
        let lost = nonzero(&[(report.events.lost, "events lost")]);
        let dropped = nonzero(&[
            (d.reads, "reads"),
            (d.threads, "thread records"),
            (d.tables, "table entries"),
            (d.lifecycle, "process/signal records"),
        ])
        .map(|list| format!("{list} not recorded"));
        let mut what = match (lost, dropped) {
            (Some(lost), Some(dropped)) => format!(": {lost}, {dropped} (kernel buffers full)"),
            (Some(one), None) | (None, Some(one)) => format!(": {one} (kernel buffers full)"),
            (None, None) => String::new(),
        };
        if d.skipped_runs > 0 {
            what.push_str(if what.is_empty() { ": " } else { "; " });
            what.push_str(&format!(
                "the kernel skipped {} run{} of the tracer's programs, any process's events \
                 (the same program was running on that CPU)",
                thousands(d.skipped_runs),
                if d.skipped_runs == 1 { "" } else { "s" }
            ));
        }
        let _ = writeln!(out, "WARNING: figures are incomplete (lower bounds){what}");
    }
    out.push('\n');
}

/// The "Findings:" block of one section: the report's findings of that
/// concern, at most `limit` of them.
fn findings(out: &mut String, report: &Report, concern: &str, limit: usize) {
    let mut of_concern = report
        .findings
        .iter()
        .filter(|f| f.concern == concern)
        .peekable();
    if of_concern.peek().is_none() {
        return;
    }
    out.push_str("\n  Findings:\n");
    for finding in of_concern.take(limit) {
        let _ = writeln!(out, "  - {}", finding.message);
    }
}

/// The line under a table cut at its first rows.
fn more(out: &mut String, hidden: usize, what: &str) {
    let _ = writeln!(
        out,
        "  ... {} more{what} (see --format json)",
        thousands(hidden as u64)
    );
}

fn notes(out: &mut String, report: &Report) {
    for warning in &report.warnings {
        let _ = writeln!(out, "note: {warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Native frames (a signal delivered in C, `--native`) are cut as
    /// `name [binary]`, and the Python line that called them is kept.
    #[test]
    fn a_chain_with_native_frames_keeps_the_python_line() {
        let frames: Vec<crate::frame::Frame> = [
            "spin.cpython-311-x86_64-linux-gnu.so+0x11e0 [/tmp/x/spin.cpython-311-x86_64-linux-gnu.so]",
            "tracer_test_spin_until_signal [/tmp/x/spin.cpython-311-x86_64-linux-gnu.so]",
            "_PyObject_MakeTpCall [/usr/bin/python3.11]",
            "spin_in_c (/abs/native_events.py:39)",
            "main (/abs/native_events.py:51)",
        ]
        .iter()
        .map(|f| crate::frame::Frame::parse(f).unwrap())
        .collect();
        let text = chain(&frames, Some(120));
        assert!(
            text.starts_with("spin.cpython-311-x86_64-linux-gnu.so+0x11e0 [")
                && text
                    .contains("] <- ... 2 more <- spin_in_c (native_events.py:39) <- ... 1 more"),
            "{text}"
        );
        assert!(layout::columns(&text) <= 120, "{text}");
    }

    #[test]
    fn a_process_in_a_pid_namespace_shows_both_pids() {
        let mut report = Report::default();
        report.target.pid = 4242;
        report.target.ns_pid = Some(1);
        report.target.comm = "python3.13".into();
        report.processes = vec![
            crate::ProcessInfo {
                pid: 4242,
                ns_pid: Some(1),
                ppid: 4241,
                comm: "python3.13".into(),
                container: Some(crate::fixtures::container()),
                ..Default::default()
            },
            crate::ProcessInfo {
                pid: 4250,
                ns_pid: None,
                ppid: 4242,
                comm: "true".into(),
                container: Some(crate::fixtures::container()),
                ..Default::default()
            },
        ];
        let text = render(&report, None);
        assert!(
            text.contains(
                "tracer report for python3.13 (pid 4242, pid 1 in its pid namespace) in \
                 container tr-probe (podman 88f77ad08040)"
            ),
            "{text}"
        );
        // Beside the process; not again for its child in the same container.
        assert_eq!(
            text.matches("\n                   container tr-probe (podman 88f77ad08040)\n")
                .count(),
            1,
            "{text}"
        );
        assert!(text.contains("\n   pid  ns pid  ppid  comm"), "{text}");
        assert!(
            text.contains("\n  4242       1  4241  python3.13"),
            "{text}"
        );
        assert!(text.contains("\n  4250       -  4242  true"), "{text}");
        // Outside a namespace (and a container): one pid, no extra column.
        report.target.ns_pid = Some(4242);
        report.processes[0].ns_pid = Some(4242);
        report.processes[0].container = None;
        let text = render(&report, None);
        assert!(text.contains("(pid 4242)\n"), "{text}");
        assert!(!text.contains("ns pid"), "{text}");
    }

    #[test]
    fn incomplete_reports_say_so() {
        let mut report = Report::default();
        report.events.lost = 3;
        let text = render(&report, None);
        assert!(
            text.contains(
                "\nWARNING: figures are incomplete (lower bounds): 3 events lost (kernel buffers \
                 full)\n"
            ),
            "{text}"
        );
        // Only what is not zero, with thousands separators.
        report.events.lost = 0;
        report.events.dropped.reads = 43_639;
        report.events.dropped.tables = 13_640;
        let text = render(&report, None);
        assert!(
            text.contains(
                "\nWARNING: figures are incomplete (lower bounds): 43,639 reads and 13,640 table \
                 entries not recorded (kernel buffers full)\n"
            ),
            "{text}"
        );
        report.events.lost = 1_234;
        report.events.dropped.lifecycle = 5;
        let text = render(&report, None);
        assert!(
            text.contains(
                "(lower bounds): 1,234 events lost, 43,639 reads, 13,640 table entries and 5 \
                 process/signal records not recorded (kernel buffers full)\n"
            ),
            "{text}"
        );
        // Runs the kernel skipped are said apart: not a full buffer.
        report.events.dropped.skipped_runs = 2_187;
        report.complete = false;
        let text = render(&report, None);
        assert!(
            text.contains(
                "records not recorded (kernel buffers full); the kernel skipped 2,187 runs of the \
                 tracer's programs, any process's events (the same program was running on that \
                 CPU)\n"
            ),
            "{text}"
        );
        report.events = Default::default();
        report.events.dropped.skipped_runs = 1;
        let text = render(&report, None);
        assert!(
            text.contains("(lower bounds): the kernel skipped 1 run of"),
            "{text}"
        );
    }
}
