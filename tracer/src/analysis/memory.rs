//! Memory: the OOM killer's kills, as the kernel side read them, into the
//! report's rows and findings.

use crate::{
    analysis::signals::SIGKILL,
    events::OomKill,
    report::{
        Finding, OomKill as OomKillRow, Report,
        format::{bytes, peer},
    },
};

#[derive(Default)]
pub struct OomKills {
    rows: Vec<OomKillRow>,
}

impl OomKills {
    /// A kill; `page`: the kernel's page size (its figures count pages).
    pub fn on_oom_kill(&mut self, k: &OomKill, base_ns: u64, page: u64) {
        let [file, anon, swap, shmem] = k.rss_pages.map(|p| p.saturating_mul(page));
        let (scope, limit_bytes, cgroup, usage) = match &k.cgroup {
            Some(c) => (
                "cgroup",
                c.max_pages.saturating_mul(page),
                Some(c.path.clone()),
                Some(c.usage_pages.saturating_mul(page)),
            ),
            None => ("node", k.totalpages.saturating_mul(page), None, None),
        };
        self.rows.push(OomKillRow {
            pid: k.victim_tgid,
            tid: k.victim_tid,
            comm: k.victim_comm.clone(),
            t_s: (k.ts_ns as f64 - base_ns as f64) / 1e9,
            trigger_pid: k.trigger_tgid,
            trigger_tid: k.trigger_tid,
            trigger_comm: k.trigger_comm.clone(),
            scope: scope.into(),
            limit_bytes,
            cgroup,
            cgroup_usage_bytes: usage,
            // Once the report is whole: `mark_oom_kills`.
            container: None,
            rss_bytes: file + anon + shmem,
            anon_rss_bytes: anon,
            file_rss_bytes: file,
            shmem_rss_bytes: shmem,
            swap_bytes: swap,
            total_vm_bytes: k.total_vm_pages.saturating_mul(page),
            points: k.points,
        });
    }

    pub fn finish(self) -> Vec<OomKillRow> {
        self.rows
    }
}

/// The kernel's SIGKILL to each process the OOM killer chose is the OOM
/// killer's (sent just before `mark_victim`, just after `oom_kill_process`
/// began: marked once the report is whole); the victim's container is its
/// process row's.
pub fn mark_oom_kills(report: &mut Report) {
    for kill in &mut report.memory.oom_kills {
        if let Some(process) = report.processes.iter().rev().find(|p| p.pid == kill.pid) {
            kill.container = process.container.clone();
        }
    }
    for kill in &report.memory.oom_kills {
        for g in &mut report.signals {
            if g.signo == SIGKILL && g.sender.kernel && g.target.pid == kill.pid {
                g.sender.oom_killer = true;
                g.sender.comm = "OOM killer".into();
            }
        }
    }
}

/// One finding per kill: who, the limit that was hit, the memory it had.
pub fn findings(kills: &[OomKillRow]) -> Vec<Finding> {
    kills
        .iter()
        .map(|k| {
            let victim = peer(k.pid, &k.comm);
            let limit = match &k.cgroup {
                Some(path) => format!(
                    "its cgroup {path} hit its limit of {}",
                    bytes(k.limit_bytes)
                ),
                None => format!(
                    "the node ran out of memory ({} in all)",
                    bytes(k.limit_bytes)
                ),
            };
            let mut message = format!(
                "{victim} was killed by the OOM killer: {limit}; it had {} resident ({} anonymous)",
                bytes(k.rss_bytes),
                bytes(k.anon_rss_bytes)
            );
            if k.trigger_pid != k.pid {
                message.push_str(&format!(
                    "; the allocation that ran out was {}'s",
                    peer(k.trigger_pid, &k.trigger_comm)
                ));
            }
            Finding::new("oom_kill", "memory", victim, message)
                .with("pid", u64::from(k.pid))
                .with("trigger_pid", u64::from(k.trigger_pid))
                .with("limit_bytes", k.limit_bytes)
                .with("rss_bytes", k.rss_bytes)
                .with("anon_rss_bytes", k.anon_rss_bytes)
                .with("file_rss_bytes", k.file_rss_bytes)
                .with("shmem_rss_bytes", k.shmem_rss_bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::OomCgroup;

    fn kill(cgroup: Option<OomCgroup>) -> OomKill {
        OomKill {
            ts_ns: 3_000_000_000,
            trigger_tgid: 50,
            trigger_tid: 51,
            trigger_comm: "loader".into(),
            victim_tgid: 60,
            victim_tid: 60,
            victim_comm: "python3".into(),
            totalpages: 1_000,
            points: 900,
            cgroup,
            rss_pages: [256, 51_200, 0, 0],
            total_vm_pages: 60_000,
        }
    }

    const PAGE: u64 = 4096;

    #[test]
    fn a_kill_in_a_cgroup_is_a_row_a_finding_and_the_killers_sigkill() {
        let mut kills = OomKills::default();
        kills.on_oom_kill(
            &kill(Some(OomCgroup {
                path: "/app".into(),
                id: 7,
                max_pages: 51_200,
                usage_pages: 51_199,
            })),
            1_000_000_000,
            PAGE,
        );
        let mut report = Report::default();
        report.memory.oom_kills = kills.finish();
        let page = PAGE;
        let row = &report.memory.oom_kills[0];
        assert_eq!((row.pid, row.trigger_pid, row.t_s), (60, 50, 2.0));
        assert_eq!(row.scope, "cgroup");
        assert_eq!(row.limit_bytes, 51_200 * page);
        assert_eq!(row.rss_bytes, (256 + 51_200) * page);
        assert_eq!(row.anon_rss_bytes, 51_200 * page);
        let mut sigkill = crate::report::fixtures::signal_group();
        sigkill.signal = "SIGKILL".into();
        sigkill.signo = 9;
        sigkill.sender = crate::report::SignalPeer {
            comm: "kernel".into(),
            kernel: true,
            ..Default::default()
        };
        sigkill.target.pid = 60;
        report.signals.push(sigkill);
        crate::analysis::derive(&mut report);
        assert!(report.signals[0].sender.oom_killer);
        assert_eq!(report.signals[0].sender.comm, "OOM killer");
        let found: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.kind == "oom_kill")
            .collect();
        assert_eq!(found.len(), 1, "{:?}", report.findings);
        assert_eq!(
            found[0].message,
            format!(
                "python3 (pid 60) was killed by the OOM killer: its cgroup /app hit its limit of \
                 {}; it had {} resident ({} anonymous); the allocation that ran out was \
                 loader (pid 50)'s",
                bytes(51_200 * page),
                bytes(51_456 * page),
                bytes(51_200 * page)
            )
        );
        assert_eq!(found[0].figures["limit_bytes"], 51_200 * page);
        assert_eq!(report.memory.oom_kills[0].container, None);
        // The killer's SIGKILL is not also a plain `killed_by_signal`.
        assert!(report.findings.iter().all(|f| f.kind != "killed_by_signal"));
    }

    #[test]
    fn a_kill_names_the_victims_container() {
        let mut kills = OomKills::default();
        kills.on_oom_kill(&kill(None), 0, PAGE);
        let mut report = Report::default();
        report.memory.oom_kills = kills.finish();
        let container = crate::report::Container {
            id: "88f77ad08040".into(),
            runtime: "podman".into(),
            name: Some("worker".into()),
            ..Default::default()
        };
        report.processes.push(crate::report::ProcessInfo {
            pid: 60,
            container: Some(container.clone()),
            ..Default::default()
        });
        crate::analysis::derive(&mut report);
        assert_eq!(report.memory.oom_kills[0].container, Some(container));
    }

    #[test]
    fn a_kill_for_the_node_measures_against_its_memory() {
        let mut kills = OomKills::default();
        kills.on_oom_kill(&kill(None), 0, PAGE);
        let row = &kills.finish()[0];
        assert_eq!(row.scope, "node");
        assert_eq!(row.cgroup, None);
        assert_eq!(row.limit_bytes, 1_000 * PAGE);
    }
}
