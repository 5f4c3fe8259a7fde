//! Human-readable renderer: tables plus the findings that matter.
//! Syscalls (mode switches) and scheduler context switches are always in
//! separate columns and sentences.

use std::fmt::Write as _;

use super::{FileReads, Report};

/// Rows shown in the reads table; the JSON report has them all.
const MAX_FILES: usize = 15;
const MAX_THREADS: usize = 25;
/// A file read in requests smaller than this, this often, gets a finding.
const SMALL_REQUEST: u64 = 4096;
const MANY_SYSCALLS: u64 = 100;
/// Reads that blocked this often get a finding (one page-cache miss does not).
const MANY_BLOCKED: u64 = 3;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    reads(&mut out, report);
    sched(&mut out, report);
    super::lifecycle_text::render(&mut out, report);
    python(&mut out, report);
    notes(&mut out, report);
    out
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
    let _ = writeln!(
        out,
        "tracer report for {} (pid {}{ns}){argv}",
        t.comm, t.pid
    );
    let ended = match (t.exit_code, t.exit_signal) {
        (Some(code), _) => format!(", exited with code {code}"),
        (None, Some(sig)) => format!(", killed by signal {sig}"),
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
        let _ = writeln!(
            out,
            "WARNING: figures are incomplete (lower bounds): {} events lost, {} reads, {} thread \
             records, {} table entries and {} process/signal records not recorded (kernel \
             buffers full)",
            report.events.lost, d.reads, d.threads, d.tables, d.lifecycle
        );
    }
    out.push('\n');
}

fn reads(out: &mut String, report: &Report) {
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
            ellipsize(&f.path, 36),
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
            let _ = writeln!(out, "  {}:", ellipsize(&f.path, 60));
            for stack in f.python_stacks.iter().take(3) {
                let _ = writeln!(
                    out,
                    "    ~{:>7} reads  {}",
                    thousands(stack.samples * f.python_stacks_every.max(1)),
                    crate::frame::join(&stack.frames)
                );
            }
        }
    }
    let findings: Vec<String> = report.reads.iter().filter_map(read_finding).collect();
    if !findings.is_empty() {
        out.push_str("\n  Findings:\n");
        for finding in findings.iter().take(10) {
            let _ = writeln!(out, "  - {finding}");
        }
    }
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

/// The sentence a file deserves, if any: small buffered requests, or reads
/// that kept blocking.
pub fn read_finding(f: &FileReads) -> Option<String> {
    let (size, count) = f.dominant_request()?;
    if size < SMALL_REQUEST && count >= MANY_SYSCALLS {
        let why = match (f.fs.as_str(), f.blksize) {
            (fs @ ("proc" | "sysfs"), Some(blk)) if blk == size => format!(
                "{fs} reports st_blksize {blk}, so Python's buffered reader asks for {} at a time",
                bytes(blk)
            ),
            (_, Some(blk)) if blk == size => format!(
                "st_blksize is {blk}, so a buffered reader sized from it asks for {} at a time",
                bytes(blk)
            ),
            _ => format!("the program asks for {} at a time", bytes(size)),
        };
        let larger = SMALL_REQUEST.max(size);
        let needed = syscalls_with_buffer(f, size, larger);
        return Some(format!(
            "{}: {} read syscalls of {} for {}; {why}. A {} buffer (e.g. open(path, \"rb\", \
             buffering={larger}) or os.read(fd, {larger})) would need about {} syscalls",
            f.path,
            thousands(count),
            bytes(size),
            bytes(f.bytes),
            bytes(larger),
            thousands(needed)
        ));
    }
    let cs = &f.context_switches;
    if cs.voluntary >= MANY_BLOCKED && cs.voluntary * 2 >= f.syscalls {
        return Some(format!(
            "{}: {} of {} reads blocked (voluntary context switches inside the read), {} waiting in \
             the kernel in all: the process was waiting for data, not working",
            f.path,
            thousands(cs.voluntary),
            thousands(f.syscalls),
            duration(f.kernel_ns)
        ));
    }
    None
}

/// Read syscalls the same reads would take with `larger` requests instead of
/// `size`: per opening, the data reads shrink and the end-of-file read stays.
pub fn syscalls_with_buffer(f: &FileReads, size: u64, larger: u64) -> u64 {
    if f.opens == 0 {
        return f.bytes.div_ceil(larger).max(1).min(f.syscalls);
    }
    let per_open_bytes = f.bytes.div_ceil(f.opens);
    let data_reads_now = per_open_bytes.div_ceil(size);
    let reads_per_open = f.syscalls.div_ceil(f.opens);
    let eof_reads = reads_per_open.saturating_sub(data_reads_now);
    let needed = f.opens * (per_open_bytes.div_ceil(larger) + eof_reads);
    needed.min(f.syscalls)
}

fn sched(out: &mut String, report: &Report) {
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
    let in_reads = super::super::analysis::reads::total_switches(&report.reads);
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
    let _ = writeln!(
        out,
        "  {:>7} {:>7}  {:<16} {:>10} {:>11} {:>10} {:>10}",
        "pid", "tid", "comm", "voluntary", "involuntary", "on-CPU", "off-CPU"
    );
    let mut threads: Vec<_> = s.threads.iter().collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.voluntary + t.involuntary));
    for t in threads.iter().take(MAX_THREADS) {
        let _ = writeln!(
            out,
            "  {:>7} {:>7}  {:<16} {:>10} {:>11} {:>10} {:>10}",
            t.pid,
            t.tid,
            ellipsize(&t.comm, 16),
            thousands(t.voluntary),
            thousands(t.involuntary),
            duration(t.on_cpu_ns),
            duration(t.off_cpu_ns)
        );
    }
    if threads.len() > MAX_THREADS {
        let _ = writeln!(out, "  ... {} more threads", threads.len() - MAX_THREADS);
    }
    out.push('\n');
}

/// "CPython 3.13.5, /usr/bin/python3.13 (static, release build) in root
/// /srv/c, pid 4242": the interpreter found, as the process sees it.
pub fn interpreter_line(report: &Report) -> Option<String> {
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
    if let Some(pid) = p.pid
        && pid != report.target.pid
    {
        let _ = write!(line, ", in child pid {pid}");
    }
    Some(line)
}

fn python(out: &mut String, report: &Report) {
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
        return;
    }
    let _ = writeln!(
        out,
        "PYTHON: {}",
        interpreter_line(report).unwrap_or_else(|| "CPython ?".into())
    );
    let _ = writeln!(
        out,
        "  {} stacks sampled at {} Hz; structure offsets: {}",
        thousands(p.samples),
        p.rate_hz,
        p.layout.as_deref().unwrap_or("?")
    );
    let missed = p.ticks_without_thread_state + p.ticks_outside_python + p.samples_lost;
    if missed > 0 || p.truncated > 0 || p.unresolved_frames > 0 {
        let _ = writeln!(
            out,
            "  not in the figures: {} ticks before the thread was known, {} outside Python code, \
             {} lost (buffer full); {} stacks truncated, {} frames unresolved",
            p.ticks_without_thread_state,
            p.ticks_outside_python,
            p.samples_lost,
            p.truncated,
            p.unresolved_frames
        );
    }
    // The kernel-event stacks below are there even without CPU samples
    // (a short or mostly sleeping process).
    if !p.hotspots.is_empty() {
        let _ = writeln!(
            out,
            "  {:>6} {:>6}  {:<32} location",
            "self%", "total%", "function"
        );
        for h in p.hotspots.iter().take(15) {
            let _ = writeln!(
                out,
                "  {:>6.1} {:>6.1}  {:<32} {}:{}",
                h.self_share,
                h.total_share,
                ellipsize(&h.qualname, 32),
                h.file,
                h.line
            );
        }
        let _ = writeln!(out, "  hottest lines:");
        for l in p.lines.iter().take(8) {
            let _ = writeln!(
                out,
                "  {:>6.1}         {:<32} {}:{}",
                l.self_share,
                ellipsize(&l.function, 32),
                l.file,
                l.line
            );
        }
    }
    if !p.off_cpu.is_empty() {
        let _ = writeln!(
            out,
            "  off-CPU (voluntary switches) by Python code, innermost first:"
        );
        for stack in p.off_cpu.iter().take(5) {
            let _ = writeln!(
                out,
                "  {:>10} {:>6}x  {}",
                duration(stack.off_cpu_ns),
                stack.samples,
                crate::frame::join(&stack.frames)
            );
        }
    }
    if !p.forks.is_empty() {
        let _ = writeln!(out, "  fork/clone (processes and threads) by Python code:");
        for stack in p.forks.iter().take(5) {
            let _ = writeln!(
                out,
                "  {:>6}x  {}",
                stack.samples,
                crate::frame::join(&stack.frames)
            );
        }
    }
    if let Some(err) = &p.entries_error {
        let _ = writeln!(out, "  entry counting (--count-entries) did not run: {err}");
    }
    if !p.entries_from_c.is_empty() {
        let _ = writeln!(
            out,
            "  entries into _PyEval_EvalFrameDefault (uprobe; from 3.11 on only entries from C):"
        );
        for e in p.entries_from_c.iter().take(10) {
            let _ = writeln!(
                out,
                "  {:>10}  {:<32} {}:{}",
                thousands(e.entries),
                ellipsize(&e.qualname, 32),
                e.file,
                e.line
            );
        }
    }
    if p.threads.len() > 1 {
        let _ = writeln!(out, "  per thread:");
        for t in &p.threads {
            let top = t
                .hotspots
                .first()
                .map(|h| format!("{} ({:.1}% self)", h.qualname, h.self_share))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    tid {:>7}: {:>6} samples, hottest {top}",
                t.tid, t.samples
            );
        }
    }
    out.push('\n');
}

fn notes(out: &mut String, report: &Report) {
    for warning in &report.warnings {
        let _ = writeln!(out, "note: {warning}");
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn ellipsize(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let tail: String = text
        .chars()
        .rev()
        .take(width - 3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ContextSwitches, Sched, Target, ThreadSched};

    fn proc_status(syscalls: u64) -> FileReads {
        let mut f = FileReads {
            pid: 5,
            path: "/proc/self/status".into(),
            fs: "proc".into(),
            blksize: Some(1024),
            syscalls,
            bytes: 200 * 1400,
            opens: 200,
            kernel_ns: 2_000_000,
            ..Default::default()
        };
        f.request_sizes.insert("1024".into(), syscalls);
        f.by_syscall.insert("read".into(), syscalls);
        f
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(500), "500 B");
        assert_eq!(bytes(280 * 1024 * 1024), "280 MiB");
        assert_eq!(duration(1_500_000), "1.5 ms");
        assert_eq!(duration(2_000_000_000), "2.00 s");
        assert_eq!(ellipsize("/a/very/long/path/name.txt", 12), ".../name.txt");
    }

    #[test]
    fn procfs_finding_explains_blksize() {
        // 200 opens x (2 data reads + 1 EOF read) of a 1.4 KB file.
        let finding = read_finding(&proc_status(600)).unwrap();
        assert!(
            finding.starts_with("/proc/self/status: 600 read syscalls of 1 KiB"),
            "{finding}"
        );
        assert!(
            finding.contains("proc reports st_blksize 1024"),
            "{finding}"
        );
        // Per open: 1,400 bytes in one 4 KiB read plus the EOF read.
        assert!(
            finding.contains("would need about 400 syscalls"),
            "{finding}"
        );
    }

    #[test]
    fn blocking_reads_get_their_own_finding_and_quiet_files_none() {
        let mut pipe = FileReads {
            path: "pipe:[7]".into(),
            fs: "pipe".into(),
            syscalls: 10,
            bytes: 10,
            kernel_ns: 500_000_000,
            context_switches: ContextSwitches {
                voluntary: 10,
                involuntary: 0,
            },
            ..Default::default()
        };
        pipe.request_sizes.insert("100".into(), 10);
        let finding = read_finding(&pipe).unwrap();
        assert!(finding.contains("10 of 10 reads blocked"), "{finding}");
        assert!(read_finding(&proc_status(10)).is_none());
    }

    #[test]
    fn renders_every_section() {
        let report = Report {
            target: Target {
                pid: 5,
                ns_pid: Some(5),
                comm: "python3".into(),
                argv: vec!["python3".into(), "app.py".into()],
                exit_code: Some(0),
                exit_signal: None,
            },
            duration_s: 1.25,
            stopped: "target exited".into(),
            complete: true,
            reads: vec![proc_status(600)],
            sched: Sched {
                voluntary: 3,
                involuntary: 1,
                on_cpu_ns: 1_000_000,
                off_cpu_ns: 2_000_000,
                threads: vec![ThreadSched {
                    tid: 5,
                    pid: 5,
                    comm: "python3".into(),
                    voluntary: 3,
                    involuntary: 1,
                    on_cpu_ns: 1_000_000,
                    off_cpu_ns: 2_000_000,
                }],
            },
            ..Default::default()
        };
        let text = render(&report);
        assert!(
            text.contains("tracer report for python3 (pid 5): python3 app.py"),
            "{text}"
        );
        assert!(text.contains("exited with code 0"), "{text}");
        assert!(
            text.contains("READS: 600 read syscalls on 1 files"),
            "{text}"
        );
        assert!(text.contains("1 KiB x 600"), "{text}");
        assert!(
            text.contains("SCHEDULING: 4 context switches (3 voluntary"),
            "{text}"
        );
        assert!(!text.contains("WARNING"), "{text}");
    }

    #[test]
    fn a_process_in_a_pid_namespace_shows_both_pids() {
        let mut report = Report::default();
        report.target.pid = 4242;
        report.target.ns_pid = Some(1);
        report.target.comm = "python3.13".into();
        report.processes = vec![
            crate::report::ProcessInfo {
                pid: 4242,
                ns_pid: Some(1),
                ppid: 4241,
                comm: "python3.13".into(),
                ..Default::default()
            },
            crate::report::ProcessInfo {
                pid: 4250,
                ns_pid: None,
                ppid: 4242,
                comm: "true".into(),
                ..Default::default()
            },
        ];
        let text = render(&report);
        assert!(
            text.contains("tracer report for python3.13 (pid 4242, pid 1 in its pid namespace)"),
            "{text}"
        );
        assert!(text.contains("      pid  ns pid    ppid"), "{text}");
        assert!(
            text.contains("     4242       1    4241  python3.13"),
            "{text}"
        );
        assert!(text.contains("     4250       -    4242  true"), "{text}");
        // Outside a namespace: one pid, no extra column.
        report.target.ns_pid = Some(4242);
        report.processes[0].ns_pid = Some(4242);
        let text = render(&report);
        assert!(text.contains("(pid 4242)\n"), "{text}");
        assert!(!text.contains("ns pid"), "{text}");
    }

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
        let text = render(&report);
        assert!(
            text.contains(
                "PYTHON: CPython 3.13.5, /usr/bin/python3.13 (static, release build) in root \
                 /srv/trixie, in child pid 11\n  0 stacks sampled at 99 Hz; structure offsets: \
                 _Py_DebugOffsets in _PyRuntime\n"
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
        let text = render(&report);
        assert!(
            text.contains(
                "PYTHON: CPython 3.14.0, /usr/lib/libpython3.14td.so.1.0 (shared libpython, \
                 debug build, free-threaded)\n  not sampled: free-threaded CPython is not supported"
            ),
            "{text}"
        );
        // Nothing found: only the reason.
        report.python = crate::report::Python {
            status: "unavailable".into(),
            reason: Some("no libpython".into()),
            ..Default::default()
        };
        assert!(render(&report).contains("PYTHON: not sampled: no libpython"));
    }

    #[test]
    fn incomplete_reports_say_so() {
        let mut report = Report::default();
        report.events.lost = 3;
        let text = render(&report);
        assert!(text.contains("WARNING: figures are incomplete"), "{text}");
    }
}
