//! Forks with no Python line because the sampler did not know the forking
//! thread yet: a process's first milliseconds, before its interpreter was
//! found, or a new thread's, before the thread list was read again. The
//! kernel side takes the stack of a thread it has been given only; such a
//! child is counted here and said in the warnings, not left with an empty
//! `python_stacks` and no word.

use std::collections::{BTreeMap, HashMap};

use crate::report::format::thousands;

/// Stackless forks held until their thread is known or their process
/// ends, at most; past it they are counted as let go.
const MAX_PENDING: usize = 4_096;
/// Children named per process in a warning.
const NAMED: usize = 8;

#[derive(Default)]
pub struct EarlyForks {
    /// (tgid, tid) -> CLOCK_MONOTONIC ns when the sampler was given it.
    known_since: HashMap<(u32, u32), u64>,
    /// tgid -> (tid, child, fork ns): forked with no stack by a thread the
    /// sampler did not know (yet).
    pending: HashMap<u32, Vec<(u32, u32, u64)>>,
    pending_count: usize,
    /// Per Python process: the children it forked before the sampler knew
    /// the forking thread.
    early: BTreeMap<u32, Vec<u32>>,
    /// Pending forks let go (more than [`MAX_PENDING`] at once).
    let_go: u64,
}

impl EarlyForks {
    /// Thread `tid` of `tgid` (a process that may run Python) forked the
    /// process `child` at `ts_ns`, and no Python stack came with it.
    pub fn on_stackless_fork(&mut self, tgid: u32, tid: u32, child: u32, ts_ns: u64) {
        match self.known_since.get(&(tgid, tid)) {
            Some(&since) if since > ts_ns => self.early.entry(tgid).or_default().push(child),
            // Known: it had no Python frame then (start-up, shut-down, C).
            Some(_) => {}
            None if self.pending_count < MAX_PENDING => {
                self.pending
                    .entry(tgid)
                    .or_default()
                    .push((tid, child, ts_ns));
                self.pending_count += 1;
            }
            None => self.let_go += 1,
        }
    }

    /// The sampler was given threads `tids` of `tgid` at `at_ns`.
    pub fn on_threads_known(&mut self, tgid: u32, tids: &[u32], at_ns: u64) {
        for &tid in tids {
            self.known_since.entry((tgid, tid)).or_insert(at_ns);
        }
        let Some(forks) = self.pending.get_mut(&tgid) else {
            return;
        };
        let (early, count) = (&mut self.early, &mut self.pending_count);
        forks.retain(|&(tid, child, ts_ns)| {
            if !tids.contains(&tid) {
                return true;
            }
            *count -= 1;
            if ts_ns < at_ns {
                early.entry(tgid).or_default().push(child);
            }
            false
        });
    }

    /// A thread exited (its tid may name another thread later).
    pub fn on_thread_exit(&mut self, tgid: u32, tid: u32) {
        self.known_since.remove(&(tgid, tid));
    }

    /// Process `tgid` ended. `python`: its interpreter had been found, so
    /// the forks of threads the sampler never knew were Python's too (a
    /// thread that forked and ended between two reads of the thread list).
    pub fn on_process_exit(&mut self, tgid: u32, python: bool) {
        if let Some(forks) = self.pending.remove(&tgid) {
            self.settle(tgid, forks, python);
        }
    }

    /// One warning per Python process with such forks (`python`: whether a
    /// process's interpreter was found; `comm`: its name), and one for any
    /// let go.
    pub fn finish(
        mut self,
        python: impl Fn(u32) -> bool,
        comm: impl Fn(u32) -> String,
    ) -> Vec<String> {
        for (tgid, forks) in std::mem::take(&mut self.pending) {
            self.settle(tgid, forks, python(tgid));
        }
        let mut warnings: Vec<String> = self
            .early
            .iter()
            .map(|(&pid, children)| {
                let mut children = children.clone();
                children.sort_unstable();
                let mut named: Vec<String> =
                    children.iter().take(NAMED).map(u32::to_string).collect();
                if children.len() > NAMED {
                    named.push("...".into());
                }
                format!(
                    "pid {pid} ({}): {} process{} it forked {} no Python line: the sampler \
                     did not know the forking thread yet (the process's first milliseconds, \
                     before its interpreter was found, or a new thread's, before the thread \
                     list was read again): pid{} {}",
                    comm(pid),
                    children.len(),
                    if children.len() == 1 { "" } else { "es" },
                    if children.len() == 1 { "has" } else { "have" },
                    if children.len() == 1 { "" } else { "s" },
                    named.join(", ")
                )
            })
            .collect();
        if self.let_go > 0 {
            warnings.push(format!(
                "{} forks with no Python line were not told apart (more than {} waited at once \
                 for their thread to be known): some may be Python's",
                thousands(self.let_go),
                thousands(MAX_PENDING as u64)
            ));
        }
        warnings
    }

    /// A process's pending forks, taken out: counted where it is Python,
    /// let go otherwise (a process found not to be Python).
    fn settle(&mut self, tgid: u32, forks: Vec<(u32, u32, u64)>, python: bool) {
        self.pending_count -= forks.len();
        if python {
            let early = self.early.entry(tgid).or_default();
            early.extend(forks.into_iter().map(|(_, child, _)| child));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warned(forks: EarlyForks) -> Vec<String> {
        forks.finish(|pid| pid != 50, |pid| format!("p{pid}"))
    }

    #[test]
    fn a_fork_before_its_thread_was_known_is_counted_and_named() {
        let mut forks = EarlyForks::default();
        // Forked at 100, its thread given to the sampler at 150.
        forks.on_stackless_fork(10, 10, 20, 100);
        forks.on_threads_known(10, &[10, 11], 150);
        // Known by then: no Python frame at the time, not counted.
        forks.on_stackless_fork(10, 10, 21, 200);
        // Its record read after the thread was known, but made before.
        forks.on_threads_known(10, &[12], 300);
        forks.on_stackless_fork(10, 12, 22, 250);
        assert_eq!(forks.early[&10], vec![20, 22]);
        let said = warned(forks);
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("pid 10 (p10): 2 processes it forked have no Python line"));
        assert!(said[0].ends_with(": pids 20, 22"), "{}", said[0]);
    }

    #[test]
    fn a_thread_never_known_counts_only_in_a_python_process() {
        let mut forks = EarlyForks::default();
        // A Python process's thread forks and ends before it is known.
        forks.on_stackless_fork(10, 13, 20, 100);
        forks.on_thread_exit(10, 13);
        forks.on_process_exit(10, true);
        // A shell's forks: never Python.
        forks.on_stackless_fork(50, 50, 51, 100);
        forks.on_stackless_fork(50, 50, 52, 110);
        forks.on_process_exit(50, false);
        // A live shell and a live Python process at the end.
        forks.on_stackless_fork(60, 61, 62, 100);
        forks.on_stackless_fork(50, 50, 53, 120);
        assert_eq!(forks.pending_count, 2);
        let said = warned(forks);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("pid 10 (p10): 1 process it forked has no Python line"));
        assert!(said[1].starts_with("pid 60 (p60): 1 process"));
    }

    #[test]
    fn pending_forks_are_bounded_and_those_let_go_are_said() {
        let mut forks = EarlyForks::default();
        for child in 0..MAX_PENDING as u32 + 3 {
            forks.on_stackless_fork(50, 50, 1_000 + child, 100);
        }
        assert_eq!((forks.pending_count, forks.let_go), (MAX_PENDING, 3));
        let said = warned(forks);
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("3 forks with no Python line were not told apart"));
    }
}
