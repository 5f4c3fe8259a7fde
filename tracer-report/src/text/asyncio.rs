//! asyncio tasks as `asyncio pstree` draws them: each task under the task
//! awaiting it, with its id, state and coroutine stack.

use std::fmt::Write as _;

use super::layout::{Table, left, left_out, right};
use crate::{Asyncio, AsyncioTask, format::thousands};

/// Frames of a coroutine stack shown on a task's line in the trace report.
const TASK_FRAMES: usize = 4;

/// One task's head: `(T) name 0xID state [thread N]`.
fn head(task: &AsyncioTask) -> String {
    let thread = match task.tid {
        Some(tid) => format!("thread {tid}"),
        None => "thread exited".to_owned(),
    };
    format!("(T) {} {} {}, {thread}", task.name, task.id, task.state)
}

fn by_process(tasks: &[AsyncioTask]) -> Vec<(u32, Vec<AsyncioTask>)> {
    let mut out: Vec<(u32, Vec<AsyncioTask>)> = Vec::new();
    for task in tasks {
        match out.iter_mut().find(|(pid, _)| *pid == task.pid) {
            Some((_, list)) => list.push(task.clone()),
            None => out.push((task.pid, vec![task.clone()])),
        }
    }
    out
}

/// `--dump`: every task with its whole coroutine stack, innermost first.
pub fn render_dump(out: &mut String, asyncio: &Asyncio) {
    for (pid, tasks) in by_process(&asyncio.tasks) {
        let _ = writeln!(
            out,
            "\n  asyncio tasks of pid {pid}, innermost frame first:"
        );
        for (depth, task) in Asyncio::tree(&tasks) {
            let indent = "    ".repeat(depth);
            let _ = writeln!(out, "    {indent}└── {}", head(task));
            for frame in &task.coroutine_stack {
                let _ = writeln!(out, "    {indent}      {frame}");
            }
        }
    }
    notes(out, asyncio);
}

/// The trace report: the tasks when tracing started and stopped, one line each.
pub fn render(out: &mut String, asyncio: &Asyncio, width: Option<usize>) {
    for (when, tasks) in [
        ("started", &asyncio.tasks_at_start),
        ("stopped", &asyncio.tasks),
    ] {
        for (pid, tasks) in by_process(tasks) {
            let _ = writeln!(
                out,
                "  asyncio tasks of pid {pid} when tracing {when}, innermost first:"
            );
            for (depth, task) in Asyncio::tree(&tasks) {
                let line = format!("    {}└── {}: ", "  ".repeat(depth), head(task));
                let room = width.map(|w| w.saturating_sub(super::layout::columns(&line)));
                let frames = &task.coroutine_stack;
                let mut shown = if frames.is_empty() {
                    "(no coroutine frame)".to_owned()
                } else {
                    super::chain(&frames[..frames.len().min(TASK_FRAMES)], room)
                };
                if frames.len() > TASK_FRAMES && !shown.ends_with(" more") {
                    let _ = write!(shown, " <- ... {} more", frames.len() - TASK_FRAMES);
                }
                let _ = writeln!(out, "{line}{shown}");
            }
        }
    }
    notes(out, asyncio);
}

/// "by task": the samples each asyncio task ran, with its hottest function.
pub fn render_by_task(out: &mut String, asyncio: &Asyncio, width: Option<usize>) {
    let rows = &asyncio.samples_by_task;
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "  by task:");
    let several = rows.iter().any(|r| r.pid != rows[0].pid);
    let mut columns = vec![right("pid")];
    columns.extend([
        left("task").shrinks_to(10),
        left("id"),
        right("samples"),
        left("hottest").shrinks_keeping_start(16),
    ]);
    if !several {
        columns.remove(0);
    }
    let mut table = Table::new(4, columns);
    for r in rows {
        let top = r
            .hotspots
            .first()
            .map(|h| format!("{} ({:.1}% self)", h.qualname, h.self_share))
            .unwrap_or_default();
        let mut cells = vec![r.task.clone(), r.id.clone(), thousands(r.samples), top];
        if several {
            cells.insert(0, r.pid.to_string());
        }
        table.row(cells);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
}

fn notes(out: &mut String, asyncio: &Asyncio) {
    for note in &asyncio.notes {
        let _ = writeln!(out, "  asyncio: {note}");
    }
}
