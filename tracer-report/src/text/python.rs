//! PYTHON: the interpreter found, hot functions and lines, and the Python
//! code behind off-CPU time, forks and eval-loop entries.

use std::fmt::Write as _;

use super::layout::{Table, left, left_out, right};
use crate::{
    Report, ThreadNow,
    format::{count, duration, nonzero, plural, thousands},
    identity::Identities,
};

/// The GIL: where threads waited for it and where it was held, or that
/// the build has none.
fn gil(out: &mut String, p: &crate::Python, width: Option<usize>) {
    if p.gil.as_deref() == Some("none") {
        let _ = writeln!(out, "  GIL: none (free-threaded build)");
        return;
    }
    if !p.gil_waits.is_empty() {
        let _ = writeln!(
            out,
            "  waiting for the GIL by Python code, innermost first:"
        );
        for stack in p.gil_waits.iter().take(5) {
            let head = format!(
                "  {:>10} {:>6}x  ",
                duration(stack.off_cpu_ns),
                thousands(stack.samples)
            );
            let room = width.map(|w| w.saturating_sub(head.len()));
            let _ = writeln!(out, "{head}{}", super::chain(&stack.frames, room));
        }
    }
    if !p.gil_holder_lines.is_empty() {
        let _ = writeln!(out, "  GIL held at (% of the samples that held it):");
        let mut table = Table::new(
            2,
            vec![
                right("%"),
                left("function").shrinks_to(16),
                left("location").shrinks_to(16),
            ],
        );
        for l in p.gil_holder_lines.iter().take(5) {
            table.row(vec![
                format!("{:.1}", l.self_share),
                l.function.clone(),
                format!("{}:{}", l.file, l.line),
            ]);
        }
        table.render(out, width);
    }
}

/// "CPython 3.13.5, /usr/bin/python3.13 (static, release build) in root
/// /srv/c, pid 4242": the interpreter found, as the process sees it.
fn interpreter_line(report: &Report) -> Option<String> {
    let p = &report.python;
    let version = p.version.as_deref()?;
    let mut build = vec![
        match p.linkage.as_deref() {
            Some("shared") => "shared libpython".to_owned(),
            Some(other) => other.to_owned(),
            None => "linkage unknown".to_owned(),
        },
        if p.debug_build {
            "debug build"
        } else {
            "release build"
        }
        .to_owned(),
    ];
    if p.free_threaded {
        build.push("free-threaded".into());
    }
    let mut line = format!(
        "CPython {version}, {} ({})",
        p.binary.as_deref().unwrap_or("?"),
        build.join(", ")
    );
    if let Some(root) = &p.root {
        let _ = write!(line, " in root {root}");
    }
    match p.pid {
        Some(pid) if report.target.pid == 0 => {
            let _ = write!(line, ", in pid {pid}");
        }
        Some(pid) if pid != report.target.pid => {
            let _ = write!(line, ", in child pid {pid}");
        }
        _ => {}
    }
    if let Some(c) = Identities::of(report).container(p.pid.unwrap_or(report.target.pid)) {
        let _ = write!(line, ", in container {}", c.describe());
    }
    Some(line)
}

/// Processes listed under the totals, busiest first.
const SHOWN_PROCESSES: usize = 8;

/// The busiest processes of a tree, each with its top functions, and the
/// ones that ran unsampled, with why.
fn processes(out: &mut String, report: &Report, width: Option<usize>) {
    let p = &report.python;
    let who = Identities::of(report);
    let unsampled = p
        .processes
        .iter()
        .filter(|row| row.status != "sampled" && !row.not_python);
    let python = p.processes.iter().filter(|row| !row.not_python).count();
    if python < 2 && unsampled.clone().all(|row| row.ticks == 0) {
        return;
    }
    let mut sampled: Vec<_> = p
        .processes
        .iter()
        .filter(|r| r.status == "sampled")
        .collect();
    sampled.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.pid.cmp(&b.pid)));
    let _ = writeln!(
        out,
        "  {} Python process{} sampled, busiest first:",
        thousands(sampled.len() as u64),
        if sampled.len() == 1 { "" } else { "es" }
    );
    let mut table = Table::new(
        4,
        vec![
            left("process").shrinks_to(14),
            right("samples"),
            left("hottest").shrinks_keeping_start(20),
        ],
    );
    // Said per process where they are not all in one container.
    let mixed = sampled.iter().any(|r| r.container != sampled[0].container);
    for row in sampled.iter().take(SHOWN_PROCESSES) {
        let top: Vec<String> = row
            .hotspots
            .iter()
            .take(3)
            .map(|h| format!("{} {:.1}%", h.qualname, h.self_share))
            .collect();
        table.row(vec![row.label(), thousands(row.samples), top.join(", ")]);
        if mixed && let Some(c) = &row.container {
            table.detail(format!("      in container {}", c.describe()));
        }
    }
    table.render(out, width);
    if sampled.len() > SHOWN_PROCESSES {
        let _ = writeln!(
            out,
            "    ... and {} more (JSON: python.processes)",
            thousands((sampled.len() - SHOWN_PROCESSES) as u64)
        );
    }
    for row in p.processes.iter().filter(|row| row.status == "sampled") {
        if let Some(why) = &row.no_thread_reason {
            let _ = writeln!(
                out,
                "    pid {} ({}) has an interpreter but no thread sampled ({}): {why}",
                row.pid,
                who.comm(row.pid).unwrap_or("?"),
                count(row.ticks, "tick", "ticks"),
            );
        }
    }
    // Processes that are not Python are only counted (see above).
    for row in unsampled.filter(|row| row.ticks > 0 || row.version.is_some()) {
        let _ = writeln!(
            out,
            "    pid {} ({}) not sampled ({}): {}",
            row.pid,
            who.comm(row.pid).unwrap_or("?"),
            count(row.ticks, "tick", "ticks"),
            row.reason.as_deref().unwrap_or("unknown reason")
        );
    }
}

/// ` "name"` of a named Python thread, else nothing.
fn quoted_name(name: Option<&str>) -> String {
    name.map(|n| format!(" \"{n}\"")).unwrap_or_default()
}

/// Frames shown of a thread's stack at one moment.
const NOW_FRAMES: usize = 4;

/// Where each Python thread was at one moment, and what it was doing.
fn threads_now(out: &mut String, when: &str, threads: &[ThreadNow], width: Option<usize>) {
    if threads.is_empty() {
        return;
    }
    let _ = writeln!(out, "  each Python thread {when}, innermost first:");
    for t in threads {
        let mut doing = t.state.clone();
        if let Some(syscall) = &t.syscall {
            let _ = write!(doing, " in {syscall}");
        }
        if t.asleep_ns > 0 {
            let _ = write!(doing, " for {}", duration(t.asleep_ns));
        }
        let head = format!(
            "    pid {} tid {}{} {doing}: ",
            t.pid,
            t.tid,
            quoted_name(t.name.as_deref())
        );
        let stack = if t.frames.is_empty() {
            "(no Python frame)".to_owned()
        } else {
            let room = width.map(|w| w.saturating_sub(super::layout::columns(&head)));
            let mut shown = super::chain(&t.frames[..t.frames.len().min(NOW_FRAMES)], room);
            if t.frames.len() > NOW_FRAMES && !shown.ends_with(" more") {
                let _ = write!(shown, " <- ... {} more", t.frames.len() - NOW_FRAMES);
            }
            shown
        };
        let _ = writeln!(out, "{head}{stack}");
    }
}

/// `--dump`: the interpreter, then each thread, its state and its whole
/// stack, innermost first.
pub fn render_dump(out: &mut String, report: &Report) {
    let t = &report.target;
    let _ = writeln!(out, "Python threads of {} (pid {}) now", t.comm, t.pid);
    let p = &report.python;
    if let Some(found) = interpreter_line(report) {
        let _ = writeln!(out, "{found}");
    }
    if p.threads_at_start.is_empty() {
        let _ = writeln!(
            out,
            "no Python thread: {}",
            p.reason.as_deref().unwrap_or("no thread state found")
        );
        return;
    }
    for thread in &p.threads_at_start {
        let mut doing = thread.state.clone();
        if let Some(syscall) = &thread.syscall {
            let _ = write!(doing, " in {syscall}");
        }
        let _ = writeln!(
            out,
            "\n  pid {} tid {}{} ({doing}):",
            thread.pid,
            thread.tid,
            quoted_name(thread.name.as_deref())
        );
        if thread.frames.is_empty() {
            let _ = writeln!(out, "    (no Python frame)");
        }
        for frame in &thread.frames {
            let _ = writeln!(out, "    {frame}");
        }
    }
    super::asyncio::render_dump(out, &p.asyncio);
}

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let p = &report.python;
    if !summary(out, report) {
        return;
    }
    if let Some(native) = &p.native {
        native_line(out, native, p.samples);
    }
    processes(out, report, width);
    // The kernel-event stacks below are there even without CPU samples
    // (a short or mostly sleeping process).
    hot_tables(out, p, width);
    stack_lists(out, p, width);
    entries(out, p, width);
    threads_now(out, "when tracing started", &p.threads_at_start, width);
    threads_now(out, "when tracing stopped", &p.threads_at_end, width);
    super::asyncio::render(out, &p.asyncio, width);
    per_thread(out, p, width);
    super::asyncio::render_by_task(out, &p.asyncio, width);
    super::findings(out, report, "python", 10);
    out.push('\n');
}

/// The section's first lines: the interpreter, the rate and the layout's
/// source, what is not in the figures; `false` (after saying why) when
/// nothing was sampled.
fn summary(out: &mut String, report: &Report) -> bool {
    let p = &report.python;
    if p.status != "sampled" {
        match interpreter_line(report) {
            Some(found) => {
                let _ = writeln!(out, "PYTHON: {found}");
                let _ = writeln!(
                    out,
                    "  not sampled: {}\n",
                    p.reason.as_deref().unwrap_or("unknown reason")
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "PYTHON: not sampled: {}\n",
                    p.reason.as_deref().unwrap_or("unknown reason")
                );
            }
        }
        return false;
    }
    let _ = writeln!(
        out,
        "PYTHON: {}",
        interpreter_line(report).unwrap_or_else(|| "CPython ?".into())
    );
    // Where the interpreter's structure layout came from, in words.
    let layout = match p.layout.as_deref() {
        Some(l) if l.starts_with("built-in table") => "this tracer's table for this version",
        Some(l) if l.contains("newer than this tracer") => {
            "the interpreter's own _Py_DebugOffsets (a version newer than this tracer, checked on its live frames)"
        }
        Some(l) if l.starts_with("_Py_DebugOffsets") => "the interpreter's own _Py_DebugOffsets",
        Some(other) => other,
        None => "?",
    };
    let _ = writeln!(
        out,
        "  {} stacks sampled at {} Hz; how to read its frames: from {layout}",
        thousands(p.samples),
        p.rate_hz,
    );
    // Only what is not zero.
    let ticks = |n: u64, rest: &str| (n, format!("{} {rest}", plural(n, "tick", "ticks")));
    let stacks = |n: u64, rest: &str| (n, format!("{} {rest}", plural(n, "stack", "stacks")));
    let missed = [
        ticks(p.ticks_not_python, "in processes that are not Python"),
        ticks(p.ticks_not_sampled(), "in processes not sampled"),
        ticks(
            p.ticks_without_thread_state,
            "in threads with no Python thread state",
        ),
        ticks(p.ticks_outside_python, "outside Python code"),
        stacks(p.samples_lost, "lost (buffer full)"),
        stacks(p.truncated, "deeper than 128 frames (cut)"),
        stacks(
            p.samples_torn,
            "read while the interpreter was changing them (left out)",
        ),
        (
            p.unresolved_frames,
            format!(
                "{} unresolved (code objects freed before they could be read)",
                plural(p.unresolved_frames, "frame", "frames")
            ),
        ),
        (
            p.frames_without_line,
            format!(
                "{} without a line (code objects freed before they could be \
                 read, named from the sampler's copy)",
                plural(p.frames_without_line, "frame", "frames")
            ),
        ),
    ];
    let missed: Vec<(u64, &str)> = missed.iter().map(|(n, w)| (*n, w.as_str())).collect();
    if let Some(missed) = nonzero(&missed) {
        let _ = writeln!(out, "  not in the figures: {missed}");
    }
    true
}

/// The hottest functions (Python, then native) and lines.
fn hot_tables(out: &mut String, p: &crate::Python, width: Option<usize>) {
    if !p.hotspots.is_empty() {
        let mut table = Table::new(
            2,
            vec![
                right("self%"),
                right("total%"),
                left("function").shrinks_to(16),
                left("location").shrinks_to(16),
            ],
        );
        for h in p.hotspots.iter().take(15) {
            table.row(vec![
                format!("{:.1}", h.self_share),
                format!("{:.1}", h.total_share),
                h.qualname.clone(),
                if h.native {
                    format!("[{}]", h.file)
                } else {
                    format!("{}:{}", h.file, h.line)
                },
            ]);
        }
        table.render(out, width);
    }
    if !p.native_functions.is_empty() {
        let _ = writeln!(out, "  native functions (under the Python ones above):");
        let mut table = Table::new(
            2,
            vec![
                right("self%"),
                right("total%"),
                left("function").shrinks_to(16),
                left("binary").shrinks_to(16),
            ],
        );
        for h in p.native_functions.iter().take(10) {
            table.row(vec![
                format!("{:.1}", h.self_share),
                format!("{:.1}", h.total_share),
                h.qualname.clone(),
                h.file.clone(),
            ]);
        }
        table.render(out, width);
    }
    if !p.lines.is_empty() {
        let _ = writeln!(out, "  hottest lines:");
        let mut table = Table::new(
            2,
            vec![
                right("self%"),
                left("function").shrinks_to(16),
                left("line").shrinks_to(16),
            ],
        );
        for l in p.lines.iter().take(8) {
            table.row(vec![
                format!("{:.1}", l.self_share),
                l.function.clone(),
                format!("{}:{}", l.file, l.line),
            ]);
        }
        table.render(out, width);
    }
}

/// Off-CPU time, the GIL and forks, each by Python stack.
fn stack_lists(out: &mut String, p: &crate::Python, width: Option<usize>) {
    if !p.off_cpu.is_empty() {
        let _ = writeln!(
            out,
            "  off-CPU (voluntary switches) by Python code, innermost first:"
        );
        for stack in p.off_cpu.iter().take(5) {
            let head = format!(
                "  {:>10} {:>6}x  ",
                duration(stack.off_cpu_ns),
                thousands(stack.samples)
            );
            let room = width.map(|w| w.saturating_sub(head.len()));
            let _ = writeln!(out, "{head}{}", super::chain(&stack.frames, room));
        }
    }
    gil(out, p, width);
    if !p.forks.is_empty() {
        let _ = writeln!(out, "  fork/clone (processes and threads) by Python code:");
        for stack in p.forks.iter().take(5) {
            let head = format!("  {:>6}x  ", thousands(stack.samples));
            let room = width.map(|w| w.saturating_sub(head.len()));
            let _ = writeln!(out, "{head}{}", super::chain(&stack.frames, room));
        }
    }
}

/// `--count-entries`: entries into the eval loop, or why it did not run.
fn entries(out: &mut String, p: &crate::Python, width: Option<usize>) {
    if let Some(err) = &p.entries_error {
        let _ = writeln!(out, "  entry counting (--count-entries) did not run: {err}");
    }
    if !p.entries_from_c.is_empty() {
        let _ = writeln!(
            out,
            "  entries into _PyEval_EvalFrameDefault (uprobe; from 3.11 on only entries from C):"
        );
        let mut table = Table::new(
            2,
            vec![
                right("entries"),
                left("function").shrinks_to(16),
                left("location").shrinks_to(16),
            ],
        );
        for e in p.entries_from_c.iter().take(10) {
            table.row(vec![
                thousands(e.entries),
                e.qualname.clone(),
                format!("{}:{}", e.file, e.line),
            ]);
        }
        table.render(out, width);
    }
}

/// One line per thread (with several): samples, the GIL, its hottest function.
fn per_thread(out: &mut String, p: &crate::Python, width: Option<usize>) {
    if p.threads.len() <= 1 {
        return;
    }
    let _ = writeln!(out, "  per thread:");
    let several = p.processes.len() > 1;
    let mut columns = vec![right("pid")];
    columns.extend([
        right("tid"),
        left("name").shrinks_to(10),
        right("samples"),
        right("GIL held"),
        right("GIL wait"),
        left("hottest").shrinks_keeping_start(16),
    ]);
    let with_gil = p.threads.iter().any(|t| t.gil.is_some());
    if !with_gil {
        columns.drain(4..6);
    }
    if !several {
        columns.remove(0);
    }
    let mut table = Table::new(4, columns);
    for t in &p.threads {
        let top = t
            .hotspots
            .first()
            .map(|h| format!("{} ({:.1}% self)", h.qualname, h.self_share))
            .unwrap_or_default();
        let mut cells = vec![
            t.tid.to_string(),
            t.name.clone().unwrap_or_else(|| "-".into()),
            thousands(t.samples),
        ];
        if with_gil {
            cells.extend(match &t.gil {
                Some(g) => [
                    thousands(g.held_samples),
                    format!("{} ({:.0}%)", duration(g.wait_ns), g.wait_share),
                ],
                None => ["-".into(), "-".into()],
            });
        }
        cells.push(top);
        if several {
            cells.insert(0, t.pid.to_string());
        }
        table.row(cells);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
}

/// `--native`: how many samples came with a native stack, and where the
/// unwinds that did not reach the outermost frame stopped.
fn native_line(out: &mut String, n: &crate::NativeFigures, samples: u64) {
    let _ = write!(
        out,
        "  native frames: {} of {} stacks unwound ({} to the outermost frame); tables of {} \
         binaries, {} rows",
        thousands(n.samples),
        thousands(samples),
        thousands(n.complete),
        n.binaries,
        thousands(n.table_rows),
    );
    let stopped = [
        (
            n.stopped_outside_mappings,
            "in code loaded since the mappings were read",
        ),
        (n.stopped_without_table, "in code with no unwind table"),
        (n.stopped_at_unknown_rule, "at a rule not followed"),
        (n.stopped_unreadable, "at unreadable stack"),
        (n.truncated, "deeper than 128 frames"),
    ];
    if let Some(stopped) = nonzero(&stopped) {
        let _ = write!(out, "; stopped {stopped}");
    }
    if n.binaries_without_table > 0 {
        let _ = write!(
            out,
            "; {} without a table",
            plural(n.binaries_without_table, "binary", "binaries")
        );
    }
    if n.unreadable_debugdata > 0 {
        let _ = write!(
            out,
            "; {} with unreadable MiniDebugInfo",
            plural(n.unreadable_debugdata, "binary", "binaries")
        );
    }
    if !n.interpreter_frames {
        let _ = write!(
            out,
            "; the interpreter's own frames left out (--native=all shows them)"
        );
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_found_is_named() {
        let mut report = Report::default();
        report.target.pid = 10;
        let p = &mut report.python;
        p.status = "sampled".into();
        p.pid = Some(11);
        p.version = Some("3.13.5".into());
        p.binary = Some("/usr/bin/python3.13".into());
        p.root = Some("/srv/trixie".into());
        p.linkage = Some("static".into());
        p.layout = Some("_Py_DebugOffsets in _PyRuntime".into());
        p.rate_hz = 99;
        let text = super::super::render(&report, None);
        assert!(
            text.contains(
                "PYTHON: CPython 3.13.5, /usr/bin/python3.13 (static, release build) in root \
                 /srv/trixie, in child pid 11\n  0 stacks sampled at 99 Hz; how to read its \
                 frames: from the interpreter's own _Py_DebugOffsets\n"
            ),
            "{text}"
        );
        // Found but not supported: what it is, and why it is not sampled.
        let p = &mut report.python;
        p.status = "unavailable".into();
        p.pid = Some(10);
        p.version = Some("3.14.0".into());
        p.binary = Some("/usr/lib/libpython3.14td.so.1.0".into());
        p.root = None;
        p.linkage = Some("shared".into());
        p.debug_build = true;
        p.free_threaded = true;
        p.reason = Some("free-threaded CPython is not supported".into());
        let text = super::super::render(&report, None);
        assert!(
            text.contains(
                "PYTHON: CPython 3.14.0, /usr/lib/libpython3.14td.so.1.0 (shared libpython, \
                 debug build, free-threaded)\n  not sampled: free-threaded CPython is not supported"
            ),
            "{text}"
        );
        // Nothing found: only the reason.
        report.python = crate::Python {
            status: "unavailable".into(),
            reason: Some("no libpython".into()),
            ..Default::default()
        };
        assert!(super::super::render(&report, None).contains("PYTHON: not sampled: no libpython"));
    }

    #[test]
    fn processes_say_their_container_where_they_are_not_all_in_one() {
        let mut report = Report::default();
        let row = |pid, container| crate::PythonProcess {
            pid,
            status: "sampled".into(),
            version: Some("3.14.1".into()),
            samples: 5,
            container,
            ..Default::default()
        };
        let podman = crate::fixtures::container();
        report.python.processes = vec![row(7, Some(podman.clone())), row(8, Some(podman))];
        let mut out = String::new();
        processes(&mut out, &report, None);
        assert!(!out.contains("in container"), "{out}");
        report.python.processes[1].container = None;
        let mut out = String::new();
        processes(&mut out, &report, None);
        assert_eq!(
            out.matches("\n      in container tr-probe (podman 88f77ad08040)\n")
                .count(),
            1,
            "{out}"
        );
    }

    #[test]
    fn a_child_that_is_not_python_is_only_counted() {
        let mut report = Report::default();
        report.target.pid = 7;
        let p = &mut report.python;
        p.status = "sampled".into();
        p.pid = Some(7);
        p.samples = 40;
        p.ticks_without_interpreter = 3;
        p.ticks_not_python = 1;
        let row = |pid, status: &str, ticks| crate::PythonProcess {
            pid,
            status: status.into(),
            ticks,
            ticks_without_interpreter: ticks,
            ..Default::default()
        };
        let mut python = row(7, "sampled", 40);
        python.samples = 40;
        python.ticks_without_interpreter = 0;
        let mut uname = row(8, "unavailable", 1);
        uname.not_python = true;
        uname.reason =
            Some("process 8 exec'd /usr/bin/uname, which holds no Python interpreter".into());
        let mut starting = row(9, "unavailable", 2);
        starting.reason = Some("process 9 exec'd a program that has not been looked at yet".into());
        p.processes = vec![python, uname, starting];
        let text = super::super::render(&report, None);
        assert!(
            text.contains(
                "  not in the figures: 1 tick in processes that are not Python and 2 ticks in \
                 processes not sampled\n"
            ),
            "{text}"
        );
        assert!(!text.contains("pid 8"), "{text}");
        assert!(
            text.contains("    pid 9 (?) not sampled (2 ticks): process 9 exec'd a program"),
            "{text}"
        );
        // With only the not-Python child beside it, no list of processes.
        report.python.processes.pop();
        report.python.ticks_without_interpreter = 1;
        let text = super::super::render(&report, None);
        assert!(!text.contains("Python process"), "{text}");
        assert!(
            text.contains("  not in the figures: 1 tick in processes that are not Python\n"),
            "{text}"
        );
    }
}
