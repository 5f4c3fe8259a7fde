//! SIGNALS: who sent which signal to whom, the kernel's result, the
//! disposition at delivery, latency, the Python line each was delivered
//! on; the findings and the first and last events.

use std::fmt::Write as _;

use super::layout::{Table, left, left_out, right};
use crate::{
    Report, SignalLogEntry,
    format::{count, duration, peer, sender_text, target_text, thousands},
};

const MAX_SIGNALS: usize = 25;
/// Log lines shown (the first half and the last half).
const LOG_LINES: usize = 10;
/// Python stacks shown under a signal row, and frames of each.
const SIGNAL_STACKS: usize = 2;
const SIGNAL_STACK_FRAMES: usize = 2;

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let rows = &report.signals;
    let generated: u64 = rows.iter().map(|g| g.generated).sum();
    let delivered: u64 = rows.iter().map(|g| g.delivered).sum();
    let ignored: u64 = rows.iter().map(|g| g.ignored).sum();
    let pending: u64 = rows.iter().map(|g| g.pending_at_end).sum();
    let merged: u64 = rows.iter().map(|g| g.merged()).sum();
    let merged = if merged > 0 {
        format!(", {} merged into one already pending", thousands(merged))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "SIGNALS: {} generated: {} delivered, {} ignored{merged}, {} never delivered",
        thousands(generated),
        thousands(delivered),
        thousands(ignored),
        thousands(pending)
    );
    if rows.is_empty() {
        changes(out, report, width);
        out.push('\n');
        return;
    }
    let mut table = Table::new(
        2,
        vec![
            left("signal"),
            left("sender").shrinks_to(10).prefers(22),
            left("target").shrinks_to(12).prefers(22),
            left("si_code").optional(3),
            right("gen"),
            right("deliv"),
            right("ignor"),
            right("pend").optional(1),
            left("action"),
            right("latency p50/p99/max").optional(4),
        ],
    );
    for g in rows.iter().take(MAX_SIGNALS) {
        let latency = g.latency_ns.as_ref().map_or("-".into(), |l| {
            format!(
                "{}/{}/{}",
                duration(l.p50),
                duration(l.p99),
                duration(l.max)
            )
        });
        table.row(vec![
            g.signal.clone(),
            sender_text(g),
            target_text(g.target.pid, g.target.tid, &g.target.comm),
            g.code.clone(),
            thousands(g.generated),
            thousands(g.delivered),
            thousands(g.ignored),
            thousands(g.pending_at_end),
            g.disposition.clone().unwrap_or_else(|| "-".into()),
            latency,
        ]);
        for stack in g.python_stacks.iter().take(SIGNAL_STACKS) {
            // Native frames (`--native`: the C code the signal interrupted)
            // come on top of the Python frames shown.
            let python_at = stack.frames.iter().position(|f| !f.native).unwrap_or(0);
            let shown = python_at + SIGNAL_STACK_FRAMES;
            let frames = &stack.frames[..stack.frames.len().min(shown)];
            let head = format!(
                "             delivered in Python: {}x ",
                thousands(stack.samples)
            );
            let room = width.map(|w| w.saturating_sub(head.len()));
            table.detail(format!("{head}{}", super::chain(frames, room)));
        }
        if let Some(h) = &g.python_handler {
            let mut line = format!(
                "             {}: ran {}",
                handler_text(h, width),
                count(g.python_handler_runs, "time", "times")
            );
            if let Some(l) = &g.python_handler_latency_ns {
                let _ = write!(
                    line,
                    ", {} after delivery (p50 {})",
                    duration(l.max),
                    duration(l.p50)
                );
            }
            if g.python_handler_pending_at_end > 0 {
                let _ = write!(
                    line,
                    "; never ran for {} (the main thread did not check for \
                     signals before the end)",
                    count(g.python_handler_pending_at_end, "delivery", "deliveries")
                );
            }
            if g.python_handler_unseen > 0 {
                let _ = write!(line, "; {}", unseen(g.python_handler_unseen));
            }
            table.detail(line);
        }
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if rows.len() > MAX_SIGNALS {
        super::more(out, rows.len() - MAX_SIGNALS, "");
    }
    changes(out, report, width);
    stories(out, report, width);
    super::findings(out, report, "signals", usize::MAX);
    let log = &report.signal_log;
    if !log.entries.is_empty() {
        let entries = &log.entries;
        let (head, tail) = if entries.len() <= LOG_LINES {
            (&entries[..], &entries[..0])
        } else {
            let half = LOG_LINES / 2;
            (&entries[..half], &entries[entries.len() - half..])
        };
        let _ = writeln!(
            out,
            "\n  Log ({} of {} signal events, first and last):",
            thousands((head.len() + tail.len()) as u64),
            thousands(log.total)
        );
        for entry in head {
            let _ = writeln!(out, "  {}", log_line(entry));
        }
        if !tail.is_empty() {
            out.push_str("  ...\n");
        }
        for entry in tail {
            let _ = writeln!(out, "  {}", log_line(entry));
        }
    }
    out.push('\n');
}

/// Lines of each list of changes shown; the JSON report has them all.
const CHANGE_LINES: usize = 10;
/// Columns a spawn site needs beside its children's resets (else it goes
/// under them, at this indent).
const SPAWN_SITE_ROOM: usize = 50;
const SPAWN_SITE_INDENT: &str = "                 ";

/// Who changed a disposition or a mask, and on which line: the changes
/// analysis marked `notable` (made by Python code, or of signals sent).
fn changes(out: &mut String, report: &Report, width: Option<usize>) {
    let by = |set_by: &str, stack: &[crate::frame::Frame], head: &str| -> String {
        // From the program's line: past `signal.signal`'s own frame.
        let from = stack
            .iter()
            .position(|f| f.stdlib_module() != Some("signal"))
            .unwrap_or(0);
        let stack = &stack[from..];
        if stack.is_empty() {
            return set_by.to_owned();
        }
        let room = width.map(|w| w.saturating_sub(super::layout::columns(head) + 3));
        format!("by {}", super::chain(stack, room))
    };
    // One line per change, and one per spawn site for the changes
    // children made before their exec, in time order.
    enum Line<'a> {
        Change(&'a crate::SignalAction),
        Children(&'a crate::ResetsBeforeExec),
    }
    let mut lines: Vec<(f64, Line)> = report
        .signal_actions
        .iter()
        .filter(|a| a.notable)
        .map(|a| (a.t_s, Line::Change(a)))
        .collect();
    lines.extend(
        report
            .signal_resets_before_exec
            .iter()
            .filter(|r| r.notable)
            .map(|r| (r.t_s, Line::Children(r))),
    );
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !lines.is_empty() {
        let _ = writeln!(
            out,
            "\n  Disposition changes (sigaction, signal.signal) by Python code or of signals sent:"
        );
        for (_, line) in lines.iter().take(CHANGE_LINES) {
            match line {
                Line::Change(a) => {
                    let head = format!(
                        "    {:>9.3} s  {}  {} -> {}  ",
                        a.t_s,
                        thread(a.pid, a.tid),
                        a.signal,
                        a.action
                    );
                    let who = match a.set_by.as_str() {
                        "interpreter start-up" => startup_default(&a.signal).to_owned(),
                        "python" => by(&a.set_by, &a.python_stack, &head),
                        other => other.to_owned(),
                    };
                    let _ = writeln!(out, "{head}{who}");
                }
                Line::Children(r) => {
                    let action = match r.action.as_str() {
                        "default" => "to default",
                        "ignore" => "to ignored",
                        _ => "to a handler",
                    };
                    let head = format!(
                        "    {:>9.3} s  {} reset {} {action} before exec:",
                        r.t_s,
                        count(r.pids.len() as u64, "child", "children"),
                        r.signals.join(", "),
                    );
                    // The spawn site beside it, or under it when that
                    // leaves it too little room.
                    let beside = width.map(|w| w.saturating_sub(super::layout::columns(&head) + 1));
                    let (gap, room) = match (beside, width) {
                        (Some(beside), Some(w)) if beside < SPAWN_SITE_ROOM => (
                            format!("\n{SPAWN_SITE_INDENT}"),
                            Some(w.saturating_sub(SPAWN_SITE_INDENT.len())),
                        ),
                        _ => (" ".to_owned(), beside),
                    };
                    let site = if r.python_stack.is_empty() {
                        "native code".to_owned()
                    } else {
                        super::chain(&r.python_stack, room)
                    };
                    let _ = writeln!(out, "{head}{gap}{site}");
                }
            }
        }
        if lines.len() > CHANGE_LINES {
            super::more(out, lines.len() - CHANGE_LINES, " changes");
        }
    }
    let masks: Vec<_> = report.signal_masks.iter().filter(|m| m.notable).collect();
    if !masks.is_empty() {
        let _ = writeln!(
            out,
            "\n  Mask changes (pthread_sigmask) by Python code or of signals sent (not \
             the blanket ones around thread starts and forks):"
        );
        for m in masks.iter().take(CHANGE_LINES) {
            let head = format!(
                "    {:>9.3} s  {}  {} {}ed  ",
                m.t_s,
                thread(m.pid, m.tid),
                m.signal,
                m.change
            );
            let _ = writeln!(out, "{head}{}", by("native code", &m.python_stack, &head));
        }
        if masks.len() > CHANGE_LINES {
            super::more(out, masks.len() - CHANGE_LINES, " changes");
        }
    }
}

/// Stories shown; the JSON report has every row they are made of.
const STORIES: usize = 8;
/// Indents of a story's lines and of the Python stacks under them.
const STORY: &str = "      ";
const STORY_STACK: &str = "          ";

/// What became of each signal that matters: sent, disposition and who set
/// it, the block that held it, delivery, the Python handler, what next.
fn stories(out: &mut String, report: &Report, width: Option<usize>) {
    let stories: Vec<_> = report
        .signals
        .iter()
        .filter_map(|g| Some((g, g.story.as_ref()?)))
        .collect();
    if stories.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n  What became of each signal that matters:");
    let who = crate::identity::Identities::of(report);
    for &(g, story) in stories.iter().take(STORIES) {
        let target = story.target.and_then(|i| report.processes.get(i));
        let _ = writeln!(
            out,
            "    {} from {} to {}: {} at {:.3} s",
            g.signal,
            sender_text(g),
            target_text(g.target.pid, g.target.tid, &g.target.comm),
            count(g.generated, "sent", "sent"),
            g.first_s
        );
        disposition(out, report, g, story, width);
        if let Some(m) = story.blocked_by.and_then(|i| report.signal_masks.get(i)) {
            blocked(out, m, width);
        }
        delivery(out, g, &who, width);
        if g.ignored > 0 {
            let _ = writeln!(
                out,
                "{STORY}ignored: {} of {} discarded by the kernel (SIG_IGN)",
                thousands(g.ignored),
                thousands(g.generated)
            );
        }
        if g.pending_at_end > 0 {
            let _ = writeln!(
                out,
                "{STORY}never delivered: {} still pending when the process or the trace ended",
                thousands(g.pending_at_end)
            );
        }
        python_handler(out, g, width);
        let next = match target.filter(|_| story.exited_after) {
            Some(p) => format!(
                "then the process exited at {:.3} s ({})",
                p.exit_s.unwrap_or_default(),
                exit_how(p)
            ),
            None if target.is_some_and(|p| p.exit_s.is_none()) => {
                "then the process kept running (still running when tracing stopped)".to_owned()
            }
            None => "then the process kept running".to_owned(),
        };
        let _ = writeln!(out, "{STORY}{next}");
    }
    if stories.len() > STORIES {
        super::more(out, stories.len() - STORIES, " signals");
    }
}

/// A stack on a line of its own, under the sentence it belongs to.
fn stack(out: &mut String, width: Option<usize>, words: &str, frames: &[crate::frame::Frame]) {
    let head = format!("{STORY_STACK}{words} ");
    let room = width.map(|w| w.saturating_sub(super::layout::columns(&head)));
    let _ = writeln!(out, "{head}{}", super::chain(frames, room));
}

/// A story's disposition, and who set it (the action that set it, its
/// Python line).
fn disposition(
    out: &mut String,
    report: &Report,
    g: &crate::SignalGroup,
    story: &crate::SignalStory,
    width: Option<usize>,
) {
    let set_by = story.set_by.and_then(|i| report.signal_actions.get(i));
    let handler = |h: &crate::PythonHandler| handler_text(h, width);
    match set_by {
        None => {
            let what = g
                .python_handler
                .as_ref()
                .map(handler)
                .or_else(|| g.disposition.clone())
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{STORY}disposition: {what} (set before tracing started)"
            );
        }
        Some(a) => {
            let what = match a.action.as_str() {
                "ignore" => "ignored".to_owned(),
                "default" => "default action".to_owned(),
                "handler" => a
                    .python_handler
                    .as_ref()
                    .or(g.python_handler.as_ref())
                    .map(handler)
                    .unwrap_or_else(|| "a C handler".into()),
                other => other.to_owned(),
            };
            let _ = writeln!(out, "{STORY}disposition: {what}, set at {:.3} s", a.t_s);
            match a.set_by.as_str() {
                "interpreter start-up" => {
                    let _ = writeln!(out, "{STORY_STACK}by {}", startup_default(&a.signal));
                }
                "python" => {
                    // From the program's line: past `signal.signal`'s own frame.
                    let from = a
                        .python_stack
                        .iter()
                        .position(|f| f.stdlib_module() != Some("signal"))
                        .unwrap_or(0);
                    stack(out, width, "by", &a.python_stack[from..]);
                }
                other => {
                    let _ = writeln!(out, "{STORY_STACK}by {other}");
                }
            }
        }
    }
}

/// The mask that held a story's signal, and where it was set.
fn blocked(out: &mut String, m: &crate::SignalMaskChange, width: Option<usize>) {
    let _ = writeln!(
        out,
        "{STORY}blocked at {:.3} s in {}",
        m.t_s,
        thread(m.pid, m.tid)
    );
    if m.python_stack.is_empty() {
        let _ = writeln!(out, "{STORY_STACK}by native code");
    } else {
        stack(out, width, "by", &m.python_stack);
    }
}

/// What the kernel did with a story's signal: the deliveries, and the
/// threads of a process it killed as they died.
fn delivery(
    out: &mut String,
    g: &crate::SignalGroup,
    who: &crate::identity::Identities<'_>,
    width: Option<usize>,
) {
    if g.delivered > 0 {
        let threads: Vec<String> = g
            .delivered_to
            .keys()
            .map(|tid| {
                if *tid == g.target.pid.to_string() {
                    format!("{tid} (main thread)")
                } else {
                    tid.clone()
                }
            })
            .collect();
        let mut line = format!(
            "{STORY}delivered {} to tid {}",
            count(g.delivered, "time", "times"),
            threads.join(", ")
        );
        if let Some(l) = &g.latency_ns {
            let _ = write!(line, ", {} after it was sent", duration(l.max));
        }
        if g.killed > 0 {
            line.push_str(": it killed the process (default action)");
        }
        let _ = writeln!(out, "{line}");
        if let Some(s) = g.python_stacks.first()
            && g.killed == 0
        {
            stack(out, width, "while in", &s.frames);
        }
        // The post-mortem: what each thread was doing as it died.
        if !g.threads_at_death.is_empty() {
            let _ = writeln!(out, "{STORY}its threads when it died:");
            for t in &g.threads_at_death {
                let label = match who.thread_label(t.pid, t.tid) {
                    Some(name) => format!("tid {} ({name})", t.tid),
                    None => format!("tid {}", t.tid),
                };
                stack(out, width, &format!("{label} in"), &t.python_stack);
            }
            if g.threads_at_death_left_out > 0 {
                let n = g.threads_at_death_left_out;
                let threads = if n == 1 { "thread" } else { "threads" };
                let _ = writeln!(out, "{STORY_STACK}and {} more {threads}", thousands(n));
            }
        }
    }
}

/// When the Python handler ran, or what held it up.
fn python_handler(out: &mut String, g: &crate::SignalGroup, width: Option<usize>) {
    if g.python_handler.is_some() {
        if g.python_handler_runs > 0 {
            let mut line = format!(
                "{STORY}Python handler started {} in the main thread",
                count(g.python_handler_runs, "time", "times")
            );
            if let Some(l) = &g.python_handler_latency_ns {
                let _ = write!(line, ", {} after delivery", duration(l.max));
                if g.python_handler_runs > 1 {
                    let _ = write!(line, " at most (p50 {})", duration(l.p50));
                }
            }
            let _ = writeln!(out, "{line}");
        }
        if g.python_handler_unseen > 0 {
            let _ = writeln!(out, "{STORY}{}", unseen(g.python_handler_unseen));
        }
        if g.python_handler_pending_at_end > 0 {
            let never = format!(
                "{STORY}Python handler never ran for {}",
                count(g.python_handler_pending_at_end, "delivery", "deliveries")
            );
            match &g.python_handler_main_thread {
                Some(main) => {
                    let seen = match main.seen.as_str() {
                        "stop" => "when tracing stopped",
                        "sample" => "at its last sample",
                        _ => "at the delivery",
                    };
                    let _ = writeln!(
                        out,
                        "{never}: the main thread, as seen {seen} ({:.3} s), was",
                        main.t_s
                    );
                    stack(out, width, "in", &main.python_stack);
                }
                None => {
                    let _ = writeln!(out, "{never}");
                }
            }
        }
    }
}

/// How a process exited: "exit code 0", "killed by SIGTERM".
fn exit_how(p: &crate::ProcessInfo) -> String {
    match (&p.exit_signal, p.exit_code) {
        (Some(signal), _) if p.killed_by.is_some() => format!("killed by the OOM killer, {signal}"),
        (Some(signal), _) => format!("killed by {signal}"),
        (None, Some(code)) => format!("exit code {code}"),
        (None, None) => "exit status unknown".to_owned(),
    }
}

/// "Python handler on_term (app.py:7)", or "(built-in)" for CPython's own;
/// fitted to a width, the file without its directories.
fn handler_text(h: &crate::PythonHandler, width: Option<usize>) -> String {
    if h.file == "<built-in>" {
        return format!("Python handler {} (built-in)", h.function);
    }
    let file = match width {
        Some(_) => h.file.rsplit('/').next().unwrap_or(&h.file),
        None => &h.file,
    };
    format!("Python handler {} ({file}:{})", h.function, h.line)
}

/// "pid P" for a process's main thread, else "pid P tid T".
fn thread(pid: u32, tid: u32) -> String {
    if pid == tid {
        format!("pid {pid}")
    } else {
        format!("pid {pid} tid {tid}")
    }
}

/// What CPython's own start-up setting of a signal is for.
fn startup_default(signal: &str) -> &'static str {
    match signal {
        "SIGINT" => "CPython start-up (default_int_handler: raises KeyboardInterrupt)",
        "SIGPIPE" => "CPython start-up (ignored: a write to a closed pipe raises BrokenPipeError)",
        "SIGXFSZ" => "CPython start-up (ignored: a write past the file size limit raises OSError)",
        _ => "CPython start-up",
    }
}

fn log_line(e: &SignalLogEntry) -> String {
    let target = target_text(e.target.pid, e.target.tid, &e.target.comm);
    match e.event.as_str() {
        "generate" => {
            let from = match &e.sender {
                Some(s) if s.kernel => format!("kernel (in pid {})", e.context_pid),
                Some(s) => peer(s.pid, &s.comm),
                None => "?".into(),
            };
            format!(
                "{:>10.6} s  {:<10} {from} -> {target} {} {}",
                e.t_s,
                e.signal,
                e.code,
                e.result.as_deref().unwrap_or("")
            )
        }
        _ => format!(
            "{:>10.6} s  {:<10} delivered to {target}: {}{}",
            e.t_s,
            e.signal,
            e.disposition.as_deref().unwrap_or("?"),
            e.latency_ns
                .map_or(String::new(), |ns| format!(" after {}", duration(ns)))
        ),
    }
}

/// Deliveries to a Python handler before the signal-check probe was
/// attached in that process.
fn unseen(n: u64) -> String {
    format!(
        "{} before the tracer's probe of the signal checks was attached (whether \
         the handler ran for {} is not known)",
        count(n, "delivery", "deliveries"),
        if n == 1 { "it" } else { "them" }
    )
}

#[cfg(test)]
mod tests {
    use crate::{Report, fixtures, text::render};

    #[test]
    fn signal_rows_show_the_python_line_they_were_delivered_on() {
        let mut r = Report::default();
        let mut g = fixtures::signal_group();
        g.python_stacks = vec![
            crate::EventStack {
                frames: vec![
                    "wait_here (/abs/s.py:9)".into(),
                    "main (/abs/s.py:20)".into(),
                    "<module> (/abs/s.py:30)".into(),
                ],
                samples: 4,
                off_cpu_ns: 0,
            },
            crate::EventStack {
                frames: vec!["main (/abs/s.py:21)".into()],
                samples: 1,
                off_cpu_ns: 0,
            },
        ];
        r.signals.push(g);
        let text = render(&r, None);
        let row = text
            .lines()
            .position(|l| l.starts_with("  SIGUSR1"))
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[row + 1].trim(),
            "delivered in Python: 4x wait_here (/abs/s.py:9) <- main (/abs/s.py:20)",
            "{text}"
        );
        assert_eq!(
            lines[row + 2].trim(),
            "delivered in Python: 1x main (/abs/s.py:21)",
            "{text}"
        );
    }
}
