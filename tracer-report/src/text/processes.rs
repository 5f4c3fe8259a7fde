//! PROCESSES and ZOMBIES: the traced process tree, the children that
//! exited, how long each stayed a zombie, who reaped it, and the Python line
//! that spawned it.

use std::fmt::Write as _;

use super::layout::{Column, Table, left, left_out, right};
use crate::{
    Report, Zombie,
    format::{count, duration, thousands},
};

const MAX_PROCESSES: usize = 25;
/// The zombie rows shown (the longest-lived); the rest are counted.
pub const MAX_ZOMBIES: usize = 25;
/// Indent of the detail line under a process or zombie row (the comm column).
const DETAIL_INDENT: &str = "                   ";

fn seconds(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{s:.3}"))
}

fn exit_text(code: Option<i32>, signal: Option<&str>, core: bool) -> String {
    match (code, signal) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(sig)) if core => format!("{sig} (core)"),
        (None, Some(sig)) => sig.to_owned(),
        _ => "-".into(),
    }
}

pub fn render_processes(out: &mut String, report: &Report, width: Option<usize>) {
    let procs = &report.processes;
    let exited = procs.iter().filter(|p| p.exit_s.is_some()).count();
    let killed = procs.iter().filter(|p| p.exit_signal.is_some()).count();
    let _ = writeln!(
        out,
        "PROCESSES: {} traced ({} exited, {} killed by a signal)",
        thousands(procs.len() as u64),
        thousands(exited as u64),
        thousands(killed as u64)
    );
    if procs.is_empty() {
        out.push('\n');
        return;
    }
    // Processes in a pid namespace (containers): their pid there too.
    let namespaced = procs.iter().any(|p| p.ns_pid.is_some_and(|n| n != p.pid));
    let mut columns: Vec<Column> = vec![right("pid")];
    if namespaced {
        columns.push(right("ns pid"));
    }
    columns.extend([
        right("ppid").optional(3),
        left("comm").shrinks_to(8).prefers(16),
        right("start s").optional(2),
        right("exit s").optional(1),
        left("exit"),
        left("argv").shrinks_keeping_start(12).prefers(40),
    ]);
    let mut table = Table::new(2, columns);
    for p in procs.iter().take(MAX_PROCESSES) {
        let mut cells = vec![p.pid.to_string()];
        if namespaced {
            cells.push(p.ns_pid.map_or("-".into(), |n| n.to_string()));
        }
        cells.extend([
            p.ppid.to_string(),
            p.comm.clone(),
            seconds(p.start_s),
            seconds(p.exit_s),
            if p.killed_by.is_some() {
                "OOM kill".into()
            } else {
                exit_text(p.exit_code, p.exit_signal.as_deref(), p.core_dumped)
            },
            p.argv.join(" "),
        ]);
        table.row(cells);
        // Said where it changes: a child in its parent's container is not.
        let parent = procs.iter().rev().find(|q| q.pid == p.ppid);
        if let Some(c) = &p.container
            && parent.is_none_or(|q| q.container.as_ref() != Some(c))
        {
            table.detail(format!("{DETAIL_INDENT}container {}", c.describe()));
        }
        if let Some(line) = p.spawning_frame() {
            table.detail(format!(
                "{DETAIL_INDENT}spawned from {}",
                super::frame_text(line, width)
            ));
        }
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if procs.len() > MAX_PROCESSES {
        super::more(out, procs.len() - MAX_PROCESSES, " processes");
    }
    out.push('\n');
}

pub fn render_zombies(out: &mut String, report: &Report, width: Option<usize>) {
    let zs = &report.zombies;
    let still = zs.iter().filter(|z| z.reaped_how == "still_zombie").count();
    let longest = zs.iter().map(|z| z.zombie_ns).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "ZOMBIES: {} exited, {} at the end, longest zombie {}",
        count(zs.len() as u64, "child", "children"),
        count(still as u64, "still a zombie", "still zombies"),
        duration(longest)
    );
    if zs.is_empty() {
        out.push('\n');
        return;
    }
    let mut table = Table::new(
        2,
        vec![
            right("pid"),
            right("ppid").optional(2),
            left("comm").shrinks_to(8),
            left("exit").optional(1),
            right("zombie"),
            left("how").optional(3),
            left("reaped by").shrinks_to(12),
        ],
    );
    let mut rows: Vec<&Zombie> = zs.iter().collect();
    rows.sort_by_key(|z| std::cmp::Reverse(z.zombie_ns));
    for z in rows.iter().take(MAX_ZOMBIES) {
        let by = match (z.reaped_by, &z.reaped_by_comm) {
            (Some(pid), Some(comm)) => format!("{comm} (pid {pid})"),
            (Some(pid), None) => format!("pid {pid}"),
            _ => "-".into(),
        };
        let mut zombie = duration(z.zombie_ns);
        if z.pre_existing {
            zombie = format!(">{zombie}");
        }
        table.row(vec![
            z.pid.to_string(),
            z.ppid.to_string(),
            z.comm.clone(),
            exit_text(z.exit_code, z.exit_signal.as_deref(), z.core_dumped),
            zombie,
            z.reaped_how.clone(),
            by,
        ]);
        if let Some(line) = z.spawning_frame() {
            table.detail(format!(
                "{DETAIL_INDENT}spawned from {}",
                super::frame_text(line, width)
            ));
        }
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if zs.len() > MAX_ZOMBIES {
        super::more(out, zs.len() - MAX_ZOMBIES, "");
    }
    super::findings(out, report, "processes", usize::MAX);
    out.push('\n');
}
