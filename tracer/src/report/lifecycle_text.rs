//! Text sections PROCESSES, ZOMBIES and SIGNALS, with the findings that
//! answer "who keeps sending SIGUSR1?", "why are there 300 defunct processes
//! under my worker?" and "did my service ignore SIGTERM?".

use std::{collections::BTreeMap, fmt::Write as _};

use super::{
    Report, SignalGroup, SignalLogEntry, Zombie, spawned_line,
    text::{duration, thousands},
};

const MAX_PROCESSES: usize = 25;
const MAX_ZOMBIES: usize = 25;
const MAX_SIGNALS: usize = 25;
/// A child that stays a zombie this long (or to the end) gets a finding.
pub const LONG_ZOMBIE_NS: u64 = 1_000_000_000;
/// Log lines shown (the first half and the last half).
const LOG_LINES: usize = 10;
/// Python stacks shown under a signal row, and frames of each.
const SIGNAL_STACKS: usize = 2;
const SIGNAL_STACK_FRAMES: usize = 2;
/// Indent of the detail line under a process or zombie row (the comm column).
const DETAIL_INDENT: &str = "                   ";

pub fn render(out: &mut String, report: &Report) {
    processes(out, report);
    zombies(out, report);
    signals(out, report);
}

fn comm_of(report: &Report, pid: u32) -> String {
    report
        .processes
        .iter()
        .rev()
        .find(|p| p.pid == pid)
        .map(|p| p.comm.clone())
        .unwrap_or_else(|| "?".into())
}

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

fn processes(out: &mut String, report: &Report) {
    let procs = &report.processes;
    let exited = procs.iter().filter(|p| p.exit_s.is_some()).count();
    let killed = procs.iter().filter(|p| p.exit_signal.is_some()).count();
    let _ = writeln!(
        out,
        "PROCESSES: {} traced ({} exited, {} killed by a signal)",
        procs.len(),
        exited,
        killed
    );
    if procs.is_empty() {
        out.push('\n');
        return;
    }
    // Processes in a pid namespace (containers): their pid there too.
    let namespaced = procs.iter().any(|p| p.ns_pid.is_some_and(|n| n != p.pid));
    let ns_column = |text: String| {
        if namespaced {
            format!(" {text:>7}")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        out,
        "  {:>7}{} {:>7}  {:<16} {:>9} {:>9} {:<14} argv",
        "pid",
        ns_column("ns pid".into()),
        "ppid",
        "comm",
        "start s",
        "exit s",
        "exit"
    );
    for p in procs.iter().take(MAX_PROCESSES) {
        let _ = writeln!(
            out,
            "  {:>7}{} {:>7}  {:<16} {:>9} {:>9} {:<14} {}",
            p.pid,
            ns_column(p.ns_pid.map_or("-".into(), |n| n.to_string())),
            p.ppid,
            p.comm,
            seconds(p.start_s),
            seconds(p.exit_s),
            exit_text(p.exit_code, p.exit_signal.as_deref(), p.core_dumped),
            p.argv.join(" ")
        );
        if let Some(line) = p
            .python_stacks
            .first()
            .and_then(|s| spawned_line(&s.frames))
        {
            let _ = writeln!(out, "{DETAIL_INDENT}spawned from {line}");
        }
    }
    if procs.len() > MAX_PROCESSES {
        let _ = writeln!(
            out,
            "  ... {} more processes (see --format json)",
            procs.len() - MAX_PROCESSES
        );
    }
    out.push('\n');
}

fn zombies(out: &mut String, report: &Report) {
    let zs = &report.zombies;
    let still = zs.iter().filter(|z| z.reaped_how == "still_zombie").count();
    let longest = zs.iter().map(|z| z.zombie_ns).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "ZOMBIES: {} children exited, {} still zombies at the end, longest zombie {}",
        zs.len(),
        still,
        duration(longest)
    );
    if zs.is_empty() {
        out.push('\n');
        return;
    }
    let _ = writeln!(
        out,
        "  {:>7} {:>7}  {:<16} {:<14} {:>10} {:<13} reaped by",
        "pid", "ppid", "comm", "exit", "zombie", "how"
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
        let _ = writeln!(
            out,
            "  {:>7} {:>7}  {:<16} {:<14} {:>10} {:<13} {by}",
            z.pid,
            z.ppid,
            z.comm,
            exit_text(z.exit_code, z.exit_signal.as_deref(), z.core_dumped),
            zombie,
            z.reaped_how,
        );
        if let Some(line) = z.spawned_from.as_deref().and_then(spawned_line) {
            let _ = writeln!(out, "{DETAIL_INDENT}spawned from {line}");
        }
    }
    if zs.len() > MAX_ZOMBIES {
        let _ = writeln!(
            out,
            "  ... {} more (see --format json)",
            zs.len() - MAX_ZOMBIES
        );
    }
    let findings = zombie_findings(report);
    if !findings.is_empty() {
        out.push_str("\n  Findings:\n");
        for finding in findings {
            let _ = writeln!(out, "  - {finding}");
        }
    }
    out.push('\n');
}

/// One sentence per parent that left children unreaped for long.
pub fn zombie_findings(report: &Report) -> Vec<String> {
    let mut by_parent: BTreeMap<u32, Vec<&Zombie>> = BTreeMap::new();
    for z in &report.zombies {
        if z.reaped_how == "still_zombie" || z.zombie_ns >= LONG_ZOMBIE_NS {
            by_parent.entry(z.ppid).or_default().push(z);
        }
    }
    let mut findings = Vec::new();
    for (ppid, zs) in by_parent {
        let longest = zs.iter().map(|z| z.zombie_ns).max().unwrap_or(0);
        let still = zs.iter().filter(|z| z.reaped_how == "still_zombie").count();
        let got_sigchld = zs.iter().any(|z| z.sigchld.is_some());
        let waits = zs.first().map_or(0, |z| z.parent_wait_calls);
        let children = if zs.len() == 1 { "child" } else { "children" };
        let mut sentence = format!(
            "{} (pid {ppid}) left {} {children} unreaped for up to {}",
            comm_of(report, ppid),
            zs.len(),
            duration(longest)
        );
        if waits == 0 && got_sigchld {
            sentence.push_str("; it receives SIGCHLD but never calls wait4/waitid");
        } else if waits == 0 {
            sentence.push_str("; it never calls wait4/waitid");
        } else if zs.iter().any(|z| z.sigchld_unanswered) {
            sentence.push_str("; it got SIGCHLD and did not wait for them");
        } else if still == 0 {
            sentence.push_str("; it reaped them only later");
        }
        if still > 0 {
            let _ = write!(sentence, " ({still} still zombies when tracing stopped)");
        }
        if let Some(lines) = spawned_lines(&zs) {
            let _ = write!(sentence, "; spawned from {lines}");
        }
        findings.push(sentence);
    }
    findings
}

/// "LINE" when every child with a known stack came from one line, else
/// "LINE (N), LINE (M)" for the two most frequent and "..." for the rest.
fn spawned_lines(zs: &[&Zombie]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for z in zs {
        if let Some(line) = z.spawned_from.as_deref().and_then(spawned_line) {
            *counts.entry(line.to_string()).or_default() += 1;
        }
    }
    let mut lines: Vec<(String, usize)> = counts.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    match lines.as_slice() {
        [] => None,
        [(line, _)] => Some(line.clone()),
        more => {
            let mut text: Vec<String> = more
                .iter()
                .take(2)
                .map(|(line, n)| format!("{line} ({n})"))
                .collect();
            if more.len() > 2 {
                text.push("...".into());
            }
            Some(text.join(", "))
        }
    }
}

fn peer(pid: u32, comm: &str) -> String {
    format!("{comm} (pid {pid})")
}

fn sender_text(g: &SignalGroup) -> String {
    if g.sender.kernel {
        "kernel".into()
    } else {
        peer(g.sender.pid, &g.sender.comm)
    }
}

fn target_text(pid: u32, tid: Option<u32>, comm: &str) -> String {
    match tid {
        Some(tid) if tid != pid => format!("{comm} (pid {pid} tid {tid})"),
        _ => peer(pid, comm),
    }
}

fn signals(out: &mut String, report: &Report) {
    let rows = &report.signals;
    let generated: u64 = rows.iter().map(|g| g.generated).sum();
    let delivered: u64 = rows.iter().map(|g| g.delivered).sum();
    let ignored: u64 = rows.iter().map(|g| g.ignored).sum();
    let pending: u64 = rows.iter().map(|g| g.pending_at_end).sum();
    let _ = writeln!(
        out,
        "SIGNALS: {} generated, {} delivered, {} ignored, {} never delivered",
        thousands(generated),
        thousands(delivered),
        thousands(ignored),
        thousands(pending)
    );
    if rows.is_empty() {
        out.push('\n');
        return;
    }
    let _ = writeln!(
        out,
        "  {:<10} {:<24} {:<24} {:<11} {:>6} {:>6} {:>6} {:>6} {:<9} {:>23}",
        "signal",
        "sender",
        "target",
        "si_code",
        "gen",
        "deliv",
        "ignor",
        "pend",
        "action",
        "latency p50/p99/max"
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
        let _ = writeln!(
            out,
            "  {:<10} {:<24} {:<24} {:<11} {:>6} {:>6} {:>6} {:>6} {:<9} {:>23}",
            g.signal,
            sender_text(g),
            target_text(g.target.pid, g.target.tid, &g.target.comm),
            g.code,
            thousands(g.generated),
            thousands(g.delivered),
            thousands(g.ignored),
            thousands(g.pending_at_end),
            g.disposition.as_deref().unwrap_or("-"),
            latency
        );
        for stack in g.python_stacks.iter().take(SIGNAL_STACKS) {
            let frames = &stack.frames[..stack.frames.len().min(SIGNAL_STACK_FRAMES)];
            let _ = writeln!(
                out,
                "             delivered in Python: {}x {}",
                thousands(stack.samples),
                crate::frame::join(frames)
            );
        }
    }
    if rows.len() > MAX_SIGNALS {
        let _ = writeln!(
            out,
            "  ... {} more (see --format json)",
            rows.len() - MAX_SIGNALS
        );
    }
    let findings = signal_findings(report);
    if !findings.is_empty() {
        out.push_str("\n  Findings:\n");
        for finding in findings {
            let _ = writeln!(out, "  - {finding}");
        }
    }
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
            head.len() + tail.len(),
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

pub fn log_line(e: &SignalLogEntry) -> String {
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

/// Signals never delivered, and processes a signal killed.
pub fn signal_findings(report: &Report) -> Vec<String> {
    let mut findings = Vec::new();
    for g in &report.signals {
        let who = format!(
            "{} from {} to {}",
            g.signal,
            sender_text(g),
            target_text(g.target.pid, g.target.tid, &g.target.comm)
        );
        if g.killed > 0 {
            findings.push(format!("{who} killed it (default action)"));
        }
        if g.pending_at_end > 0 {
            findings.push(format!(
                "{who}: {} of {} never delivered (blocked, or still pending when the \
                 process or the trace ended)",
                thousands(g.pending_at_end),
                thousands(g.generated)
            ));
        }
        if g.generated >= 2 && g.ignored == g.generated && !g.sender.kernel {
            findings.push(format!(
                "{who}: all {} were ignored by the target (SIG_IGN)",
                thousands(g.generated)
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Frame, Latency, ProcessInfo, SignalLog, SignalPeer, SignalTarget};

    fn zombie(pid: u32, ppid: u32, ns: u64, how: &str) -> Zombie {
        Zombie {
            pid,
            ppid,
            comm: "true".into(),
            exit_code: Some(0),
            zombie_ns: ns,
            reaped_how: how.into(),
            reaped_by: (how == "wait4").then_some(ppid),
            reaped_by_comm: (how == "wait4").then(|| "python3".into()),
            sigchld: Some("ignored".into()),
            ..Default::default()
        }
    }

    fn report() -> Report {
        let mut r = Report::default();
        r.processes.push(ProcessInfo {
            pid: 812,
            comm: "python3".into(),
            argv: vec!["python3".into(), "worker.py".into()],
            ..Default::default()
        });
        r.processes.push(ProcessInfo {
            pid: 900,
            ppid: 812,
            comm: "sleep".into(),
            exit_signal: Some("SIGKILL".into()),
            exit_signo: Some(9),
            exit_s: Some(1.5),
            ..Default::default()
        });
        for i in 0..37 {
            r.zombies.push(zombie(
                1000 + i,
                812,
                12_400_000_000 - i as u64,
                "still_zombie",
            ));
        }
        r.zombies.push(zombie(2000, 812, 5_000, "wait4"));
        r
    }

    #[test]
    fn calls_out_the_parent_that_never_waits() {
        let r = report();
        assert_eq!(
            zombie_findings(&r),
            [
                "python3 (pid 812) left 37 children unreaped for up to 12.40 s; it receives \
              SIGCHLD but never calls wait4/waitid (37 still zombies when tracing stopped)"
            ]
        );
        let mut text = String::new();
        render(&mut text, &r);
        assert!(
            text.contains("PROCESSES: 2 traced (1 exited, 1 killed by a signal)"),
            "{text}"
        );
        assert!(text.contains("SIGKILL"), "{text}");
        assert!(
            text.contains(
                "ZOMBIES: 38 children exited, 37 still zombies at the end, longest zombie 12.40 s"
            ),
            "{text}"
        );
        assert!(text.contains("python3 (pid 812)"), "{text}");
    }

    #[test]
    fn zombies_and_children_show_the_line_that_spawned_them() {
        let popen = |line: u32| {
            [
                "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)".to_owned(),
                "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)".to_owned(),
                format!("spawn (/abs/wl.py:{line})"),
                "<module> (/abs/wl.py:20)".to_owned(),
            ]
            .iter()
            .map(|f| Frame::from(f.as_str()))
            .collect::<Vec<_>>()
        };
        let mut r = report();
        r.processes[1].python_stacks = vec![crate::report::EventStack {
            frames: popen(7),
            samples: 1,
            off_cpu_ns: 0,
        }];
        for (i, z) in r.zombies.iter_mut().enumerate() {
            z.spawned_from = Some(popen(if i < 30 { 7 } else { 8 }));
        }
        let mut text = String::new();
        render(&mut text, &r);
        let lines: Vec<&str> = text.lines().collect();
        let spawned = "                   spawned from spawn (/abs/wl.py:7)";
        // Under the child's process row...
        let child = lines
            .iter()
            .position(|l| l.starts_with("      900 "))
            .unwrap();
        assert_eq!(lines[child + 1], spawned, "{text}");
        // ...and under each zombie row shown (the 25 longest: all from line 7).
        assert_eq!(
            lines.iter().filter(|l| **l == spawned).count(),
            1 + MAX_ZOMBIES,
            "{text}"
        );
        assert_eq!(
            zombie_findings(&r),
            [
                "python3 (pid 812) left 37 children unreaped for up to 12.40 s; it receives \
              SIGCHLD but never calls wait4/waitid (37 still zombies when tracing stopped); \
              spawned from spawn (/abs/wl.py:7) (30), spawn (/abs/wl.py:8) (7)"
            ]
        );
        for z in &mut r.zombies {
            z.spawned_from = Some(popen(7));
        }
        assert!(zombie_findings(&r)[0].ends_with("; spawned from spawn (/abs/wl.py:7)"));
    }

    #[test]
    fn parent_that_waits_late_is_described_as_such() {
        let mut r = report();
        r.zombies = vec![zombie(1, 812, 3_000_000_000, "wait4")];
        r.zombies[0].parent_wait_calls = 1;
        assert_eq!(
            zombie_findings(&r),
            ["python3 (pid 812) left 1 child unreaped for up to 3.00 s; it reaped them only later"]
        );
        r.zombies[0].zombie_ns = 1_000;
        assert!(zombie_findings(&r).is_empty());
    }

    fn group() -> SignalGroup {
        SignalGroup {
            signal: "SIGUSR1".into(),
            signo: 10,
            sender: SignalPeer {
                pid: 812,
                tid: 812,
                comm: "python3".into(),
                kernel: false,
            },
            target: SignalTarget {
                pid: 812,
                tid: None,
                comm: "python3".into(),
            },
            target_traced: true,
            code: "SI_USER".into(),
            generated: 5,
            delivered: 5,
            disposition: Some("handler".into()),
            latency_ns: Some(Latency {
                p50: 1_000,
                p99: 2_000,
                max: 3_000,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn signals_table_findings_and_log() {
        let mut r = Report::default();
        r.signals.push(group());
        let mut term = group();
        term.signal = "SIGTERM".into();
        term.signo = 15;
        term.sender.pid = 1;
        term.sender.comm = "systemd".into();
        term.generated = 1;
        term.delivered = 0;
        term.pending_at_end = 1;
        term.disposition = None;
        term.latency_ns = None;
        r.signals.push(term);
        let mut pipe = group();
        pipe.signal = "SIGPIPE".into();
        pipe.sender = SignalPeer {
            comm: "kernel".into(),
            kernel: true,
            ..Default::default()
        };
        pipe.generated = 1;
        pipe.delivered = 0;
        pipe.ignored = 1;
        pipe.disposition = Some("ignored".into());
        pipe.latency_ns = None;
        r.signals.push(pipe);
        r.signal_log = SignalLog {
            total: 1,
            entries: vec![SignalLogEntry {
                t_s: 0.5,
                event: "generate".into(),
                signal: "SIGPIPE".into(),
                signo: 13,
                sender: Some(SignalPeer {
                    comm: "kernel".into(),
                    kernel: true,
                    ..Default::default()
                }),
                context_pid: 812,
                target: SignalTarget {
                    pid: 812,
                    tid: None,
                    comm: "python3".into(),
                },
                code: "SI_USER".into(),
                result: Some("ignored".into()),
                ..Default::default()
            }],
        };
        let findings = signal_findings(&r);
        assert_eq!(
            findings,
            [
                "SIGTERM from systemd (pid 1) to python3 (pid 812): 1 of 1 never delivered \
              (blocked, or still pending when the process or the trace ended)"
            ]
        );
        let mut text = String::new();
        render(&mut text, &r);
        assert!(
            text.contains("SIGNALS: 7 generated, 5 delivered, 1 ignored, 1 never delivered"),
            "{text}"
        );
        assert!(text.contains("1.0 us/2.0 us/3.0 us"), "{text}");
        assert!(
            text.contains("kernel (in pid 812) -> python3 (pid 812) SI_USER ignored"),
            "{text}"
        );
        assert!(!text.contains("delivered in Python"), "{text}");
    }

    #[test]
    fn signal_rows_show_the_python_line_they_were_delivered_on() {
        let mut r = Report::default();
        let mut g = group();
        g.python_stacks = vec![
            crate::report::EventStack {
                frames: vec![
                    "wait_here (/abs/s.py:9)".into(),
                    "main (/abs/s.py:20)".into(),
                    "<module> (/abs/s.py:30)".into(),
                ],
                samples: 4,
                off_cpu_ns: 0,
            },
            crate::report::EventStack {
                frames: vec!["main (/abs/s.py:21)".into()],
                samples: 1,
                off_cpu_ns: 0,
            },
        ];
        r.signals.push(g);
        let mut text = String::new();
        render(&mut text, &r);
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
