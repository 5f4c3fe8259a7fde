//! MEMORY: the OOM killer's kills; MEMORY GROWTH: where Python processes
//! faulted memory in.

use std::fmt::Write;

use crate::{
    Report,
    format::{bytes, peer, thousands},
};

/// Processes, and stacks of each, shown.
const GROWTH_PROCESSES: usize = 5;
const GROWTH_STACKS: usize = 5;
/// Frames of each stack shown (the JSON report has them all).
const GROWTH_FRAMES: usize = 6;

pub fn render(out: &mut String, report: &Report, width: Option<usize>) {
    render_kills(out, report);
    render_growth(out, report, width);
}

/// Each process's peak, what it faulted in, and its top stacks by bytes.
fn render_growth(out: &mut String, report: &Report, width: Option<usize>) {
    let memory = &report.memory;
    if let Some(err) = &memory.growth_error {
        let _ = writeln!(out, "MEMORY GROWTH: not sampled ({err})\n");
        return;
    }
    if memory.processes.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "MEMORY GROWTH: each rise of a process's resident memory, charged to the Python \
         stack sampled at its end (a sample per {} a thread faults in; what is freed is \
         not taken off)",
        bytes(memory.growth_sample_bytes)
    );
    if memory.fault_samples_without_interpreter > 0 {
        let _ = writeln!(
            out,
            "  {} samples (about {}) in processes with no interpreter known then (not \
             Python, or before it was found): no line's",
            thousands(memory.fault_samples_without_interpreter),
            bytes(memory.fault_samples_without_interpreter * memory.growth_sample_bytes)
        );
    }
    let who = crate::identity::Identities::of(report);
    for p in memory.processes.iter().take(GROWTH_PROCESSES) {
        let peak = p
            .peak_rss_bytes
            .map(|b| format!("peak resident {}, ", bytes(b)))
            .unwrap_or_default();
        let collapsed = match p.collapsed_bytes {
            0 => String::new(),
            b => format!("; {} more by khugepaged's huge pages, no line's", bytes(b)),
        };
        let _ = writeln!(
            out,
            "  {}{}: {peak}grew {} ({} samples){collapsed}",
            peer(p.pid, &p.comm),
            who.in_container(p.pid),
            bytes(p.grown_bytes),
            thousands(p.samples)
        );
        for g in p.growth.iter().take(GROWTH_STACKS) {
            let head = format!("    {:>10}  ", bytes(g.bytes));
            let stack = if g.frames.is_empty() {
                "(no Python frame)".to_owned()
            } else {
                let shown = &g.frames[..g.frames.len().min(GROWTH_FRAMES)];
                let more = g.frames.len() - shown.len();
                let room = width.map(|w| w.saturating_sub(head.len()).max(40));
                let mut stack = super::chain(shown, room);
                if more > 0 && room.is_none() {
                    stack.push_str(&format!(" <- ... {more} more"));
                }
                stack
            };
            let _ = writeln!(out, "{head}{stack}");
        }
    }
    if memory.processes.len() > GROWTH_PROCESSES {
        let _ = writeln!(
            out,
            "  ... {} more processes (JSON report: memory.processes)",
            memory.processes.len() - GROWTH_PROCESSES
        );
    }
    out.push('\n');
}

fn render_kills(out: &mut String, report: &Report) {
    let kills = &report.memory.oom_kills;
    if kills.is_empty() {
        return;
    }
    let who = crate::identity::Identities::of(report);
    let what = if kills.len() == 1 {
        "process"
    } else {
        "processes"
    };
    let _ = writeln!(
        out,
        "MEMORY: {} {what} killed by the OOM killer",
        kills.len()
    );
    for k in kills {
        let limit = match &k.cgroup {
            Some(path) => format!(
                "cgroup {path} at its limit of {}{}",
                bytes(k.limit_bytes),
                k.cgroup_usage_bytes
                    .map(|u| format!(" (usage {})", bytes(u)))
                    .unwrap_or_default()
            ),
            None => format!("the node out of memory ({} in all)", bytes(k.limit_bytes)),
        };
        let _ = writeln!(
            out,
            "  {}{} at {:.3} s: {limit}",
            peer(k.pid, &k.comm),
            who.in_container(k.pid),
            k.t_s
        );
        let _ = writeln!(
            out,
            "    resident {} (anonymous {}, file {}, shared {}), swap {}",
            bytes(k.rss_bytes),
            bytes(k.anon_rss_bytes),
            bytes(k.file_rss_bytes),
            bytes(k.shmem_rss_bytes),
            bytes(k.swap_bytes)
        );
        if k.trigger_pid != k.pid {
            let _ = writeln!(
                out,
                "    the allocation that ran out: {} tid {}",
                peer(k.trigger_pid, &k.trigger_comm),
                k.trigger_tid
            );
        }
    }
    super::findings(out, report, "memory", usize::MAX);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use crate::{Growth, MemoryProcess, OomKill, Report, text::render};

    #[test]
    fn growth_says_each_processes_peak_and_top_stacks() {
        let mut r = Report::default();
        r.memory.growth_sample_bytes = 256 << 10;
        let frame = |function, line| crate::fixtures::python_frame(function, "/srv/app.py", line);
        r.memory.processes.push(MemoryProcess {
            pid: 7,
            comm: "python3".into(),
            peak_rss_bytes: Some(80 << 20),
            samples: 257,
            grown_bytes: 257 * (256 << 10),
            growth: vec![
                Growth {
                    bytes: 48 << 20,
                    samples: 192,
                    truncated: false,
                    frames: vec![frame("grow_a", 8), frame("main", 17)],
                },
                Growth {
                    bytes: 256 << 10,
                    samples: 1,
                    truncated: false,
                    frames: Vec::new(),
                },
            ],
            ..Default::default()
        });
        let text = render(&r, None);
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("MEMORY GROWTH"))
            .take(4)
            .collect();
        assert_eq!(
            lines,
            [
                "MEMORY GROWTH: each rise of a process's resident memory, charged to the Python \
                 stack sampled at its end (a sample per 256 KiB a thread faults in; what is \
                 freed is not taken off)",
                "  python3 (pid 7): peak resident 80 MiB, grew 64.2 MiB (257 samples)",
                "        48 MiB  grow_a (/srv/app.py:8) <- main (/srv/app.py:17)",
                "       256 KiB  (no Python frame)",
            ],
            "{text}"
        );
        r.memory.processes[0].collapsed_bytes = 2 << 20;
        assert!(render(&r, None).contains(
            "grew 64.2 MiB (257 samples); 2 MiB more by khugepaged's huge pages, no line's\n"
        ));
        r.memory.fault_samples_without_interpreter = 3;
        assert!(render(&r, None).contains(
            "freed is not taken off)\n  3 samples (about 768 KiB) in processes with no \
             interpreter known then (not Python, or before it was found): no line's\n"
        ));
    }

    #[test]
    fn an_oom_kill_says_the_limit_the_memory_and_who_ran_out() {
        let mut r = Report::default();
        r.memory.oom_kills.push(OomKill {
            pid: 60,
            tid: 60,
            comm: "python3".into(),
            t_s: 2.5,
            trigger_pid: 50,
            trigger_tid: 51,
            trigger_comm: "loader".into(),
            scope: "cgroup".into(),
            limit_bytes: 200 << 20,
            cgroup: Some("/app".into()),
            cgroup_usage_bytes: Some(200 << 20),
            rss_bytes: 150 << 20,
            anon_rss_bytes: 140 << 20,
            file_rss_bytes: 10 << 20,
            ..Default::default()
        });
        r.processes.push(crate::ProcessInfo {
            pid: 60,
            comm: "python3".into(),
            container: Some(crate::Container {
                id: "88f77ad08040aa".into(),
                runtime: "podman".into(),
                name: Some("worker".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let text = render(&r, None);
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("MEMORY"))
            .take(4)
            .collect();
        assert_eq!(
            lines,
            [
                "MEMORY: 1 process killed by the OOM killer",
                "  python3 (pid 60) in container worker (podman 88f77ad08040) at 2.500 s: cgroup /app \
                 at its limit of 200 MiB (usage 200 MiB)",
                "    resident 150 MiB (anonymous 140 MiB, file 10 MiB, shared 0 B), swap 0 B",
                "    the allocation that ran out: loader (pid 50) tid 51",
            ],
            "{text}"
        );
    }
}
