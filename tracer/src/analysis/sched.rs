//! Scheduling figures per thread and in total, from the kernel's `THREADS` map.

use std::collections::{HashMap, HashSet};

use tracer_common::ThreadStats;

use crate::{
    events::c_string,
    report::{Sched, ThreadSched},
};

/// `names` overrides the kernel-recorded name (which may predate `exec`).
/// A thread that went off CPU and had not come back when tracing stopped
/// (`end_ns`), and has not `exited`, is asleep: that sleep counts up to the end.
pub fn summarize(
    threads: &[(u32, ThreadStats)],
    names: &HashMap<u32, String>,
    exited: &HashSet<u32>,
    end_ns: u64,
) -> Sched {
    let mut sched = Sched::default();
    for (tid, t) in threads {
        let comm = names.get(tid).cloned().unwrap_or_else(|| c_string(&t.comm));
        let asleep = if t.last_off_ns > t.last_on_ns && !exited.contains(tid) {
            end_ns.saturating_sub(t.last_off_ns)
        } else {
            0
        };
        let off_cpu_ns = t.off_cpu_ns + asleep;
        sched.voluntary += t.voluntary;
        sched.involuntary += t.involuntary;
        sched.on_cpu_ns += t.on_cpu_ns;
        sched.off_cpu_ns += off_cpu_ns;
        sched.threads.push(ThreadSched {
            tid: *tid,
            pid: t.tgid,
            comm,
            name: None,
            voluntary: t.voluntary,
            involuntary: t.involuntary,
            on_cpu_ns: t.on_cpu_ns,
            off_cpu_ns,
            asleep_at_end_ns: asleep,
        });
    }
    sched.threads.sort_by_key(|t| (t.pid, t.tid));
    sched
}

/// Current names of the threads still alive.
pub fn live_names(threads: &[(u32, ThreadStats)]) -> HashMap<u32, String> {
    threads
        .iter()
        .filter_map(|(tid, t)| Some((*tid, crate::procfs::thread_comm(t.tgid, *tid)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(tgid: u32, voluntary: u64, involuntary: u64, comm: &[u8]) -> ThreadStats {
        let mut t = ThreadStats {
            tgid,
            voluntary,
            involuntary,
            on_cpu_ns: 10,
            off_cpu_ns: 20,
            ..Default::default()
        };
        t.comm[..comm.len()].copy_from_slice(comm);
        t
    }

    #[test]
    fn totals_and_names() {
        let threads = vec![
            (12, thread(10, 1, 2, b"worker")),
            (10, thread(10, 5, 0, b"tracer")),
        ];
        let names = HashMap::from([(10, "python3".to_owned())]);
        let s = summarize(&threads, &names, &HashSet::new(), 0);
        assert_eq!((s.voluntary, s.involuntary), (6, 2));
        assert_eq!((s.on_cpu_ns, s.off_cpu_ns), (20, 40));
        assert_eq!(s.threads[0].tid, 10);
        assert_eq!(s.threads[0].comm, "python3");
        assert_eq!(s.threads[1].comm, "worker");
    }

    #[test]
    fn a_sleep_in_progress_counts_up_to_the_end() {
        let mut asleep = thread(10, 1, 0, b"main");
        (asleep.last_on_ns, asleep.last_off_ns) = (1_000, 5_000);
        let mut gone = asleep;
        gone.tgid = 11;
        let mut running = asleep;
        (running.last_on_ns, running.last_off_ns) = (6_000, 5_000);
        let threads = vec![(10, asleep), (11, gone), (12, running)];
        let exited = HashSet::from([11]);
        let s = summarize(&threads, &HashMap::new(), &exited, 9_000);
        let by_tid = |tid| s.threads.iter().find(|t| t.tid == tid).unwrap();
        assert_eq!(by_tid(10).asleep_at_end_ns, 4_000);
        assert_eq!(by_tid(10).off_cpu_ns, 20 + 4_000);
        // Exited: its last switch-out was its end, not a sleep.
        assert_eq!(
            (by_tid(11).asleep_at_end_ns, by_tid(11).off_cpu_ns),
            (0, 20)
        );
        assert_eq!(by_tid(12).asleep_at_end_ns, 0);
        assert_eq!(s.off_cpu_ns, 20 + 4_000 + 20 + 20);
    }
}
