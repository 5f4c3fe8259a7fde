//! READS: per file, syscalls, request sizes, bytes and the context switches
//! inside the reads; the Python code behind them; the findings.

use std::fmt::Write as _;

use crate::report::{
    FileReads, Report,
    format::{bytes, duration, ellipsize, thousands},
};

/// Rows shown in the reads table; the JSON report has them all.
const MAX_FILES: usize = 15;
const MAX_FINDINGS: usize = 10;

pub fn render(out: &mut String, report: &Report) {
    let total_calls: u64 = report.reads.iter().map(|f| f.syscalls).sum();
    let total_bytes: u64 = report.reads.iter().map(|f| f.bytes).sum();
    let _ = writeln!(
        out,
        "READS: {} read syscalls on {} files, {} returned",
        thousands(total_calls),
        report.reads.len(),
        bytes(total_bytes)
    );
    let _ = writeln!(
        out,
        "  (a syscall is a user->kernel mode switch; \"ctx-sw\" are scheduler context switches inside those reads)"
    );
    if report.reads.is_empty() {
        out.push_str("  no reads\n\n");
        return;
    }
    let _ = writeln!(
        out,
        "  {:>7}  {:<36} {:<7} {:>7} {:>9} {:<16} {:>10} {:>10} {:>13}",
        "pid",
        "file",
        "fs",
        "blksize",
        "syscalls",
        "request sizes",
        "bytes",
        "in kernel",
        "ctx-sw vol/inv"
    );
    for f in report.reads.iter().take(MAX_FILES) {
        let _ = writeln!(
            out,
            "  {:>7}  {:<36} {:<7} {:>7} {:>9} {:<16} {:>10} {:>10} {:>13}",
            f.pid,
            ellipsize(&f.shown_path(), 36),
            f.fs,
            f.blksize.map_or("-".into(), |b| b.to_string()),
            thousands(f.syscalls),
            request_summary(f),
            bytes(f.bytes),
            duration(f.kernel_ns),
            format!(
                "{} / {}",
                f.context_switches.voluntary, f.context_switches.involuntary
            )
        );
    }
    if report.reads.iter().any(|f| f.request_sizes.len() > 1) {
        let _ = writeln!(
            out,
            "  request sizes: the size asked for most x how many times; +N: N other sizes \
             (all of them in --format json)"
        );
    }
    if report.reads.len() > MAX_FILES {
        let rest = &report.reads[MAX_FILES..];
        let _ = writeln!(
            out,
            "  ... {} more files with {} read syscalls and {} (see --format json)",
            rest.len(),
            thousands(rest.iter().map(|f| f.syscalls).sum()),
            bytes(rest.iter().map(|f| f.bytes).sum())
        );
    }
    let with_stacks: Vec<&FileReads> = report
        .reads
        .iter()
        .take(MAX_FILES)
        .filter(|f| !f.python_stacks.is_empty())
        .collect();
    if !with_stacks.is_empty() {
        let every = with_stacks[0].python_stacks_every;
        let _ = writeln!(
            out,
            "\n  Python code behind the reads (stacks of 1 in {every} reads, innermost first):"
        );
        for f in with_stacks {
            let _ = writeln!(out, "  {}:", ellipsize(&f.shown_path(), 60));
            for stack in f.python_stacks.iter().take(3) {
                let _ = writeln!(
                    out,
                    "    ~{:>7} reads  {}",
                    thousands(f.estimated_reads(stack)),
                    crate::frame::join(&stack.frames)
                );
            }
        }
    }
    super::findings(out, report, "reads", MAX_FINDINGS);
    out.push('\n');
}

/// "1 KiB x 300" for one size, "1 KiB x 300 +2" when there are others.
fn request_summary(f: &FileReads) -> String {
    match f.dominant_request() {
        Some((size, count)) if f.request_sizes.len() == 1 => {
            format!("{} x {}", bytes(size), thousands(count))
        }
        Some((size, count)) => format!(
            "{} x {} +{}",
            bytes(size),
            thousands(count),
            f.request_sizes.len() - 1
        ),
        None => "-".into(),
    }
}
