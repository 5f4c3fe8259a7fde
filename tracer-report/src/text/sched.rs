//! SCHEDULING: voluntary and involuntary context switches, on/off-CPU time,
//! per thread.

use std::fmt::Write as _;

use super::layout::{Table, left, left_out, right};
use crate::{
    Report,
    format::{duration, thousands},
};

const MAX_THREADS: usize = 25;

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let s = &report.sched;
    let _ = writeln!(
        out,
        "SCHEDULING: {} context switches ({} voluntary: the thread slept; {} involuntary: it was \
         preempted), on-CPU {}, off-CPU {}",
        thousands(s.voluntary + s.involuntary),
        thousands(s.voluntary),
        thousands(s.involuntary),
        duration(s.on_cpu_ns),
        duration(s.off_cpu_ns)
    );
    let in_reads = &s.inside_reads;
    let _ = writeln!(
        out,
        "  inside read syscalls: {} voluntary, {} involuntary",
        thousands(in_reads.voluntary),
        thousands(in_reads.involuntary)
    );
    if s.threads.is_empty() {
        out.push('\n');
        return;
    }
    let mut table = Table::new(
        2,
        vec![
            right("pid"),
            right("tid"),
            left("name").shrinks_to(10),
            right("voluntary"),
            right("involuntary"),
            right("on-CPU"),
            right("off-CPU"),
        ],
    );
    let mut threads: Vec<_> = s.threads.iter().collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.voluntary + t.involuntary));
    for t in threads.iter().take(MAX_THREADS) {
        table.row(vec![
            t.pid.to_string(),
            t.tid.to_string(),
            t.label().to_owned(),
            thousands(t.voluntary),
            thousands(t.involuntary),
            duration(t.on_cpu_ns),
            duration(t.off_cpu_ns),
        ]);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if threads.len() > MAX_THREADS {
        let _ = writeln!(
            out,
            "  ... {} more threads",
            thousands((threads.len() - MAX_THREADS) as u64)
        );
    }
    let mut asleep: Vec<_> = s
        .threads
        .iter()
        .filter(|t| t.asleep_at_end_ns > 0)
        .collect();
    asleep.sort_by_key(|t| std::cmp::Reverse(t.asleep_at_end_ns));
    if !asleep.is_empty() {
        let shown: Vec<String> = asleep
            .iter()
            .take(5)
            .map(|t| {
                format!(
                    "tid {} ({}) for {}",
                    t.tid,
                    t.label(),
                    duration(t.asleep_at_end_ns)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  asleep when tracing stopped (counted in off-CPU up to the stop): {}",
            shown.join(", ")
        );
    }
    out.push('\n');
}
