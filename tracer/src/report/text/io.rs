//! READS: per file and socket, syscalls, request sizes, bytes and the
//! context switches inside the reads; the Python code behind them; the
//! findings.

use std::fmt::Write as _;

use super::layout::{Table, fit, left, left_out, right};
use crate::report::{
    FileIo, Report,
    format::{bytes, duration, thousands},
};

/// Rows shown in the reads table; the JSON report has them all.
const MAX_FILES: usize = 15;
const MAX_FINDINGS: usize = 10;

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let total_calls: u64 = report.reads.iter().map(|f| f.syscalls).sum();
    let total_bytes: u64 = report.reads.iter().map(|f| f.bytes).sum();
    let sockets = report.reads.iter().filter(|f| f.kind == "socket").count();
    let on = match sockets {
        0 => format!("{} files", thousands(report.reads.len() as u64)),
        _ => format!(
            "{} files and {} sockets",
            thousands((report.reads.len() - sockets) as u64),
            thousands(sockets as u64)
        ),
    };
    let _ = writeln!(
        out,
        "READS: {} read syscalls on {on}, {} returned",
        thousands(total_calls),
        bytes(total_bytes)
    );
    let _ = writeln!(
        out,
        "  (a syscall is a user->kernel mode switch; \"ctx-sw\" are the scheduler context \
         switches inside those reads, voluntary / involuntary)"
    );
    if report.reads.is_empty() {
        out.push_str("  no reads\n\n");
        return;
    }
    let mut table = Table::new(
        2,
        vec![
            right("pid"),
            left("file").shrinks_to(20).prefers(32),
            left("fs").optional(3),
            right("blksize").optional(4),
            right("syscalls"),
            left("request sizes").optional(1),
            right("bytes"),
            right("in kernel").optional(5),
            right("ctx-sw").optional(2),
        ],
    );
    for f in report.reads.iter().take(MAX_FILES) {
        table.row(vec![
            f.pid.to_string(),
            f.shown_path(),
            f.fs.to_string(),
            f.blksize.map_or("-".into(), |b| b.to_string()),
            thousands(f.syscalls),
            request_summary(f),
            bytes(f.bytes),
            duration(f.kernel_ns),
            format!(
                "{} / {}",
                thousands(f.context_switches.voluntary),
                thousands(f.context_switches.involuntary)
            ),
        ]);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if report.reads.iter().any(|f| f.request_sizes.len() > 1) {
        let _ = writeln!(
            out,
            "  request sizes: the size asked for most x how many times; +N: N other sizes \
             (all of them in --format json)"
        );
    }
    folds(out, report);
    if report.reads.len() > MAX_FILES {
        let rest = &report.reads[MAX_FILES..];
        let _ = writeln!(
            out,
            "  ... {} more files with {} read syscalls and {} (see --format json)",
            thousands(rest.len() as u64),
            thousands(rest.iter().map(|f| f.syscalls).sum()),
            bytes(rest.iter().map(|f| f.bytes).sum())
        );
    }
    let with_stacks: Vec<&FileIo> = report
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
            let path = f.shown_path();
            let _ = writeln!(
                out,
                "  {}:",
                width.map_or(path.clone(), |w| fit(&path, w.saturating_sub(3)))
            );
            for stack in f.python_stacks.iter().take(3) {
                let count = format!("    ~{:>7} reads  ", thousands(f.estimated_reads(stack)));
                let room = width.map(|w| w.saturating_sub(count.len()));
                let _ = writeln!(out, "{count}{}", super::chain(&stack.frames, room));
            }
        }
    }
    super::findings(out, report, "reads", MAX_FINDINGS);
    out.push('\n');
}

/// The rows that are many connections folded into one, said once.
fn folds(out: &mut String, report: &Report) {
    let folded: Vec<&FileIo> = report.reads.iter().filter(|f| f.socket.folded).collect();
    if folded.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  connections folded: more than {n} from one peer host to one local address make one \
         row (the ephemeral port shown as *), and so do clients from more than {n} hosts (<- *):",
        n = crate::report::FOLD_ABOVE
    );
    for f in folded.iter().take(3) {
        let _ = writeln!(
            out,
            "    pid {}: {} connections in `{}`",
            f.pid,
            thousands(f.socket.connections),
            f.path
        );
    }
    if folded.len() > 3 {
        let _ = writeln!(
            out,
            "    ... {} more (see --format json)",
            thousands(folded.len() as u64 - 3)
        );
    }
}

/// "1 KiB x 300" for one size, "1 KiB x 300 +2" when there are others.
fn request_summary(f: &FileIo) -> String {
    match f.dominant_request() {
        Some((size, count)) if f.request_sizes.len() == 1 => {
            format!("{} x {}", bytes(size), thousands(count))
        }
        Some((size, count)) => format!(
            "{} x {} +{}",
            bytes(size),
            thousands(count),
            thousands(f.request_sizes.len() as u64 - 1)
        ),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::report::{FileIo, Report};

    #[test]
    fn a_folded_row_says_how_many_connections_and_the_report_says_it_folded() {
        let mut socket = FileIo {
            pid: 7,
            kind: "socket".into(),
            path: "TCP 127.0.0.1:8000 <- 127.0.0.1:*".into(),
            fs: "socket".into(),
            syscalls: 400,
            ..Default::default()
        };
        (socket.socket.connections, socket.socket.folded) = (312, true);
        socket.request_sizes.insert("65536".into(), 400);
        let file = crate::report::fixtures::proc_status(600);
        let report = Report {
            reads: vec![file, socket],
            ..Report::default()
        };
        let mut out = String::new();
        super::render(&mut out, &report, None);
        assert!(out.contains("on 1 files and 1 sockets"), "{out}");
        assert!(
            out.contains("TCP 127.0.0.1:8000 <- 127.0.0.1:* (312 connections)"),
            "{out}"
        );
        assert!(out.contains("connections folded: more than 16"), "{out}");
        assert!(
            out.contains("pid 7: 312 connections in `TCP 127.0.0.1:8000 <- 127.0.0.1:*`"),
            "{out}"
        );
    }
}
