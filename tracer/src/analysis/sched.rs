//! Scheduling figures per thread and in total: the rows a one-off trace's
//! threads sent as they ended, and the kernel's `THREADS` map (the live
//! threads; `--serve`: every thread until its fold).

use std::collections::{HashMap, HashSet};

use tracer_common::{MAX_THREAD_ROWS, ThreadStats};

use crate::{
    events::{MapSnapshot, c_string},
    report::{Sched, ThreadSched},
};

/// Where the count of rows sent as threads ended is said, at debug level:
/// for a check that those rows come that way on every kernel.
pub const ROWS_SAID: &str = "tracer::thread_rows";

/// One-off traces: the rows of the threads that ended, each sent by the
/// kernel at the thread's last switch-out (and removed from its table).
#[derive(Default)]
pub struct EndedThreads {
    rows: Vec<(u32, ThreadStats)>,
    /// After the snapshot: the indices in `rows` of the records drained
    /// since, whose threads the snapshot may also hold.
    late_from: Option<usize>,
}

impl EndedThreads {
    pub fn on_ended(&mut self, tid: u32, stats: ThreadStats) {
        self.rows.push((tid, stats));
    }

    /// The maps were read: records from now on may be in the snapshot too.
    pub fn after_snapshot(&mut self) {
        self.late_from.get_or_insert(self.rows.len());
    }

    /// The ended threads' rows. The snapshot's row of a thread whose record
    /// came after it is dropped from `maps.threads`: the record is the
    /// whole (the same process, no figure smaller: the row it grew into,
    /// not a new thread that reused the number).
    pub fn merge_into(self, maps: &mut MapSnapshot) -> Vec<(u32, ThreadStats)> {
        log::debug!(
            target: ROWS_SAID,
            "{} threads' rows came as the threads ended; the table held {} at the end",
            self.rows.len(),
            maps.threads.len()
        );
        let late = &self.rows[self.late_from.unwrap_or(self.rows.len())..];
        maps.threads.retain(|(tid, live)| {
            !late.iter().any(|(ended, t)| {
                ended == tid
                    && t.tgid == live.tgid
                    && t.voluntary >= live.voluntary
                    && t.involuntary >= live.involuntary
                    && t.on_cpu_ns >= live.on_cpu_ns
            })
        });
        self.rows
    }
}

/// What the report says when the kernel's thread table was full: the
/// threads it could not hold had their switches counted in `dropped`.
pub fn full_warning(maps: &MapSnapshot, dropped: u64) -> Option<String> {
    (dropped > 0 || maps.threads.len() >= MAX_THREAD_ROWS as usize).then(|| {
        format!(
            "the kernel's table of threads ({MAX_THREAD_ROWS} live threads) was full: \
             {dropped} context switches of threads it could not hold are not counted \
             (dropped.threads)"
        )
    })
}

/// `names` overrides the kernel-recorded name (which may predate `exec`).
/// A thread that went off CPU and had not come back when tracing stopped
/// (`end_ns`), and has not `exited`, is asleep: that sleep counts up to the
/// end. `ended`: the rows sent at the threads' ends (none is asleep).
pub fn summarize(
    threads: &[(u32, ThreadStats)],
    ended: &[(u32, ThreadStats)],
    names: &HashMap<u32, String>,
    exited: &HashSet<u32>,
    end_ns: u64,
) -> Sched {
    let mut sched = Sched::default();
    let live = threads.iter().map(|row| (row, false));
    for ((tid, t), gone) in live.chain(ended.iter().map(|row| (row, true))) {
        let comm = names.get(tid).cloned().unwrap_or_else(|| c_string(&t.comm));
        let asleep = if t.last_off_ns > t.last_on_ns && !gone && !exited.contains(tid) {
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
pub fn running_names(
    threads: &[(u32, ThreadStats)],
    system: &dyn super::system::System,
) -> HashMap<u32, String> {
    threads
        .iter()
        .filter_map(|(tid, t)| Some((*tid, system.thread_comm(t.tgid, *tid)?)))
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
        let s = summarize(&threads, &[], &names, &HashSet::new(), 0);
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
        let s = summarize(&threads, &[], &HashMap::new(), &exited, 9_000);
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

    #[test]
    fn ended_threads_count_once() {
        let mut ended = EndedThreads::default();
        let early = thread(10, 4, 1, b"w-0");
        ended.on_ended(11, early);
        ended.after_snapshot();
        // Ended while the maps were read: the snapshot's row is a prefix.
        let late = thread(10, 7, 2, b"w-1");
        ended.on_ended(12, late);
        let mut maps = MapSnapshot {
            threads: vec![
                (12, thread(10, 6, 2, b"w-1")),
                (13, thread(10, 1, 0, b"w-2")),
                // Another process's thread took number 11 again: kept.
                (11, thread(20, 1, 0, b"other")),
            ],
            ..MapSnapshot::default()
        };
        let rows = ended.merge_into(&mut maps);
        assert_eq!(rows, vec![(11, early), (12, late)]);
        let live: Vec<u32> = maps.threads.iter().map(|(tid, _)| *tid).collect();
        assert_eq!(live, [13, 11]);
        let mut asleep = thread(10, 1, 0, b"w-3");
        (asleep.last_on_ns, asleep.last_off_ns) = (1_000, 5_000);
        let s = summarize(
            &[],
            &[(14, asleep)],
            &HashMap::new(),
            &HashSet::new(),
            9_000,
        );
        // Its last switch-out was its end, not a sleep.
        assert_eq!(s.threads[0].asleep_at_end_ns, 0);
        assert_eq!(full_warning(&maps, 0), None);
        assert!(
            full_warning(&maps, 3)
                .unwrap()
                .contains("3 context switches")
        );
    }
}
