//! READS and WRITES: per file and socket, syscalls, request sizes, bytes
//! and the context switches inside them (a write row's syncs beside); the
//! Python code behind them; the findings.

use std::fmt::Write as _;

use super::layout::{Table, fit, left, left_out, right};
use crate::{
    FileIo, Report,
    format::{bytes, duration, thousands},
};

/// Rows shown in each table; the JSON report has them all.
const MAX_FILES: usize = 15;
const MAX_FINDINGS: usize = 10;

/// What tells the two sections apart.
struct Section<'a> {
    title: &'static str,
    /// "read" / "write": a syscall of the section.
    verb: &'static str,
    /// "returned" / "written".
    moved: &'static str,
    /// The findings' concern.
    concern: &'static str,
    rows: &'a [FileIo],
}

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    let reads = Section {
        title: "READS",
        verb: "read",
        moved: "returned",
        concern: "reads",
        rows: &report.reads,
    };
    section(out, report, width, &reads);
    let writes = Section {
        title: "WRITES",
        verb: "write",
        moved: "written",
        concern: "writes",
        rows: &report.writes,
    };
    section(out, report, width, &writes);
}

fn section(out: &mut String, report: &Report, width: Option<usize>, s: &Section) {
    let rows = s.rows;
    let total_calls: u64 = rows.iter().map(|f| f.syscalls).sum();
    let total_bytes: u64 = rows.iter().map(|f| f.bytes).sum();
    let total_syncs: u64 = rows.iter().map(|f| f.syncs).sum();
    let sockets = rows.iter().filter(|f| f.kind == "socket").count();
    let on = match sockets {
        0 => format!("{} files", thousands(rows.len() as u64)),
        _ => format!(
            "{} files and {} sockets",
            thousands((rows.len() - sockets) as u64),
            thousands(sockets as u64)
        ),
    };
    let syncs = match total_syncs {
        0 => String::new(),
        n => format!(" and {} syncs", thousands(n)),
    };
    let _ = writeln!(
        out,
        "{}: {} {} syscalls{syncs} on {on}, {} {}",
        s.title,
        thousands(total_calls),
        s.verb,
        bytes(total_bytes),
        s.moved
    );
    let _ = writeln!(
        out,
        "  (a syscall is a user->kernel mode switch; \"ctx-sw\" are the scheduler context \
         switches inside those {}s, voluntary / involuntary)",
        s.verb
    );
    if rows.is_empty() {
        let _ = writeln!(out, "  no {}s\n", s.verb);
        return;
    }
    let mut columns = vec![
        right("pid"),
        left("file").shrinks_to(20).prefers(32),
        left("fs").optional(3),
        right("blksize").optional(4),
        right("syscalls"),
        left("request sizes").optional(1),
        right("bytes"),
        right("in kernel").optional(5),
        right("ctx-sw").optional(2),
    ];
    if total_syncs > 0 {
        columns.push(right("syncs").optional(2));
    }
    let mut table = Table::new(2, columns);
    for f in rows.iter().take(MAX_FILES) {
        let mut cells = vec![
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
        ];
        if total_syncs > 0 {
            cells.push(match f.syncs {
                0 => "-".into(),
                n => format!("{} in {}", thousands(n), duration(f.sync_ns)),
            });
        }
        table.row(cells);
    }
    let dropped = table.render(out, width);
    left_out(out, &dropped);
    if rows.iter().any(|f| f.request_sizes.len() > 1) {
        let _ = writeln!(
            out,
            "  request sizes: the size asked for most x how many times; +N: N other sizes \
             (all of them in --format json)"
        );
    }
    // A write that wrote less than asked (a full non-blocking pipe or
    // socket, a signal, a full disk) is no write of its request.
    if s.verb == "write" {
        for f in rows.iter().take(MAX_FILES).filter(|f| f.short_bytes() > 0) {
            let _ = writeln!(
                out,
                "  {}: {} of the {} asked for not written (partial writes or errors: {})",
                f.shown_path(),
                bytes(f.short_bytes()),
                bytes(f.requested_bytes),
                thousands(f.errors)
            );
        }
    }
    folds(out, rows);
    if rows.len() > MAX_FILES {
        let rest = &rows[MAX_FILES..];
        let _ = writeln!(
            out,
            "  ... {} more files with {} {} syscalls and {} (see --format json)",
            thousands(rest.len() as u64),
            thousands(rest.iter().map(|f| f.syscalls).sum()),
            s.verb,
            bytes(rest.iter().map(|f| f.bytes).sum())
        );
    }
    let with_stacks: Vec<&FileIo> = rows
        .iter()
        .take(MAX_FILES)
        .filter(|f| !f.python_stacks.is_empty())
        .collect();
    if !with_stacks.is_empty() {
        let every = with_stacks[0].python_stacks_every;
        let _ = writeln!(
            out,
            "\n  Python code behind the {verb}s (stacks of 1 in {every} {verb}s, innermost first):",
            verb = s.verb
        );
        for f in with_stacks {
            let path = f.shown_path();
            let _ = writeln!(
                out,
                "  {}:",
                width.map_or(path.clone(), |w| fit(&path, w.saturating_sub(3)))
            );
            for stack in f.python_stacks.iter().take(3) {
                let count = format!(
                    "    ~{:>7} {}s  ",
                    thousands(f.estimated_calls(stack)),
                    s.verb
                );
                let room = width.map(|w| w.saturating_sub(count.len()));
                let _ = writeln!(out, "{count}{}", super::chain(&stack.frames, room));
            }
        }
    }
    super::findings(out, report, s.concern, MAX_FINDINGS);
    out.push('\n');
}

/// The rows that are many connections folded into one, said once.
fn folds(out: &mut String, rows: &[FileIo]) {
    let folded: Vec<&FileIo> = rows.iter().filter(|f| f.socket.folded).collect();
    if folded.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  connections folded: more than {n} from one peer host to one local address make one \
         row (the ephemeral port shown as *), and so do clients from more than {n} hosts (<- *):",
        n = crate::FOLD_ABOVE
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
    use crate::{FileIo, Report};

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
        let file = crate::fixtures::proc_status(600);
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
