//! MEMORY: the OOM killer's kills.

use std::fmt::Write;

use crate::report::{
    Report,
    format::{bytes, peer},
};

pub fn render(out: &mut String, report: &Report) {
    let kills = &report.memory.oom_kills;
    if kills.is_empty() {
        return;
    }
    let who = crate::report::identity::Identities::of(report);
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
    use crate::report::{OomKill, Report, text::render};

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
        r.processes.push(crate::report::ProcessInfo {
            pid: 60,
            comm: "python3".into(),
            container: Some(crate::report::Container {
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
