//! Scheduling figures per thread and in total, from the kernel's `THREADS` map.

use std::collections::HashMap;

use tracer_common::ThreadStats;

use crate::{
    events::c_string,
    report::{Sched, ThreadSched},
};

/// `names` overrides the kernel-recorded name (which may predate `exec`).
pub fn summarize(threads: &[(u32, ThreadStats)], names: &HashMap<u32, String>) -> Sched {
    let mut sched = Sched::default();
    for (tid, t) in threads {
        let comm = names.get(tid).cloned().unwrap_or_else(|| c_string(&t.comm));
        sched.voluntary += t.voluntary;
        sched.involuntary += t.involuntary;
        sched.on_cpu_ns += t.on_cpu_ns;
        sched.off_cpu_ns += t.off_cpu_ns;
        sched.threads.push(ThreadSched {
            tid: *tid,
            pid: t.tgid,
            comm,
            voluntary: t.voluntary,
            involuntary: t.involuntary,
            on_cpu_ns: t.on_cpu_ns,
            off_cpu_ns: t.off_cpu_ns,
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
        let s = summarize(&threads, &names);
        assert_eq!((s.voluntary, s.involuntary), (6, 2));
        assert_eq!((s.on_cpu_ns, s.off_cpu_ns), (20, 40));
        assert_eq!(s.threads[0].tid, 10);
        assert_eq!(s.threads[0].comm, "python3");
        assert_eq!(s.threads[1].comm, "worker");
    }
}
