//! EVENT LOOPS: the threads whose selector-wait loop stalled, and the
//! Python code that ran in the stalls.

use std::fmt::Write as _;

use super::layout::{Table, left, left_out, right};
use crate::{
    Report,
    format::{duration, thousands},
};

const MAX_LOOPS: usize = 10;
const MAX_FUNCTIONS: usize = 3;

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let loops = &report.event_loops;
    if loops.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "EVENT LOOPS: {} thread{} whose loop (selector wait to selector wait) stalled for {} or more",
        thousands(loops.len() as u64),
        if loops.len() == 1 { "" } else { "s" },
        duration(loops[0].threshold_ns)
    );
    let mut table = Table::new(
        2,
        vec![
            right("pid"),
            right("tid"),
            left("name").shrinks_to(10),
            left("loop"),
            right("iterations"),
            right("stalls"),
            right("longest"),
            right("stalled"),
        ],
    );
    for l in loops.iter().take(MAX_LOOPS) {
        table.row(vec![
            l.pid.to_string(),
            l.tid.to_string(),
            l.name.clone().unwrap_or_else(|| l.comm.clone()),
            l.kind.clone(),
            thousands(l.iterations),
            thousands(l.stalls),
            duration(l.stall_max_ns),
            duration(l.stall_total_ns),
        ]);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if loops.len() > MAX_LOOPS {
        super::more(out, loops.len() - MAX_LOOPS, " loops");
    }
    for l in loops.iter().take(MAX_LOOPS) {
        if l.hotspots.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  in the stalls of tid {} ({} CPU samples):",
            l.tid,
            thousands(l.samples_in_stalls)
        );
        for h in l.hotspots.iter().take(MAX_FUNCTIONS) {
            let _ = writeln!(
                out,
                "    {:>5.1}%  {} ({}:{})",
                h.total_share, h.qualname, h.file, h.line
            );
        }
        if let Some(line) = l.lines.first() {
            let _ = writeln!(
                out,
                "    busiest line: {}:{} in {} ({:.1}%)",
                line.file, line.line, line.function, line.self_share
            );
        }
    }
    super::findings(out, report, "event_loops", 10);
    out.push('\n');
}
