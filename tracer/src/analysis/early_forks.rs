//! Forks with no Python line because the sampler did not know the forking
//! thread yet: a process's first milliseconds, before its interpreter was
//! found, or a thread the kernel side could not find the state of. The
//! kernel side says with each fork whether its stack came and, if not,
//! why; such a child is counted here and said in the warnings, not left
//! with an empty `python_stacks` and no word.

use std::collections::{BTreeMap, HashMap};

use crate::{events::ForkStack, report::format::thousands};

/// Forks of processes not known to be Python held until their program is
/// known to be Python or not (the process exits or execs, or the trace
/// ends); past it they are counted as let go.
const MAX_PENDING: usize = 4_096;
/// Children named per process in a warning.
const NAMED: usize = 8;

#[derive(Default)]
pub struct EarlyForks {
    /// tgid -> children forked before the sampler was given its
    /// interpreter, while it was not known to be Python. Held past the
    /// look that finds the interpreter: that look may come after an exec
    /// whose record (and the forks' program) is not handled yet, as a
    /// launcher's helpers forked just before it execs Python.
    pending: HashMap<u32, Vec<u32>>,
    pending_count: usize,
    /// Per Python process: the children it forked before the sampler knew
    /// the forking thread.
    early: BTreeMap<u32, Vec<u32>>,
    /// Pending forks let go (more than [`MAX_PENDING`] at once).
    let_go: u64,
    /// Forks whose stack came and could not be named (the process gone
    /// before its code objects were read, its interpreter not found).
    unnamed: u64,
}

impl EarlyForks {
    /// Process `tgid` forked `child` and no Python line was joined to it:
    /// `stack` is what the kernel side said of its stack. A fork before the
    /// kernel side had the interpreter waits, even where it is found by now:
    /// the look that found it may have seen a program exec'd after the
    /// fork, whose exec record comes after the fork's.
    pub fn on_fork_without_line(&mut self, tgid: u32, child: u32, stack: ForkStack) {
        match stack {
            // It had no Python frame running then (start-up, shut-down, C).
            ForkStack::NoFrame => {}
            ForkStack::Sent => self.unnamed += 1,
            ForkStack::NoThread => self.early.entry(tgid).or_default().push(child),
            ForkStack::NoInterpreter if self.pending_count < MAX_PENDING => {
                self.pending.entry(tgid).or_default().push(child);
                self.pending_count += 1;
            }
            ForkStack::NoInterpreter => self.let_go += 1,
        }
    }

    /// Process `tgid` ended. `python`: its interpreter had been found.
    pub fn on_process_exit(&mut self, tgid: u32, python: bool) {
        if let Some(forks) = self.pending.remove(&tgid) {
            self.settle(tgid, forks, python);
        }
    }

    /// Process `tgid` exec'd. `python`: the program it ran until then was
    /// Python (its interpreter had been found by a look before the exec,
    /// not one after it that saw the new program). Its forks still waiting
    /// were that program's: a launcher (a pyenv shim, a shell script) that
    /// execs Python forks its helpers before, and they are not Python's.
    pub fn on_exec(&mut self, tgid: u32, python: bool) {
        if let Some(forks) = self.pending.remove(&tgid) {
            self.settle(tgid, forks, python);
        }
    }

    /// One warning per Python process with such forks (`python`: whether a
    /// process's interpreter was found; `comm`: its name), and one for any
    /// let go or not named.
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
                     before its interpreter was found, or a thread whose state was not \
                     found): pid{} {}",
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
                 to be known as Python's or not): some may be Python's",
                thousands(self.let_go),
                thousands(MAX_PENDING as u64)
            ));
        }
        if self.unnamed > 0 {
            warnings.push(format!(
                "{} fork{} of Python code came with a stack that could not be named: \
                 no Python line",
                thousands(self.unnamed),
                if self.unnamed == 1 { "" } else { "s" },
            ));
        }
        warnings
    }

    /// A process's pending forks, taken out: counted where it is Python,
    /// let go otherwise (a process found not to be Python).
    fn settle(&mut self, tgid: u32, forks: Vec<u32>, python: bool) {
        self.pending_count -= forks.len();
        if python {
            self.early.entry(tgid).or_default().extend(forks);
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
    fn forks_are_counted_by_what_the_kernel_said() {
        let mut forks = EarlyForks::default();
        // Its interpreter was known, the thread not: early.
        forks.on_fork_without_line(10, 20, ForkStack::NoThread);
        // Known, no Python frame running: not counted.
        forks.on_fork_without_line(10, 21, ForkStack::NoFrame);
        // Before the sampler had the interpreter: it waits for the
        // program's end (its exec, its exit, the trace's), found or not.
        forks.on_fork_without_line(10, 22, ForkStack::NoInterpreter);
        // A stack came and could not be named.
        forks.on_fork_without_line(10, 23, ForkStack::Sent);
        assert_eq!(forks.early[&10], vec![20]);
        assert_eq!(forks.pending[&10], vec![22]);
        let said = warned(forks);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("pid 10 (p10): 2 processes it forked have no Python line"));
        assert!(said[0].ends_with(": pids 20, 22"), "{}", said[0]);
        assert!(
            said[1].starts_with("1 fork of Python code came with a stack"),
            "{}",
            said[1]
        );
    }

    #[test]
    fn a_process_not_known_yet_counts_only_if_python() {
        let mut forks = EarlyForks::default();
        // A Python process's forks before its interpreter was found.
        forks.on_fork_without_line(10, 20, ForkStack::NoInterpreter);
        forks.on_process_exit(10, true);
        // One found to be Python by the end.
        forks.on_fork_without_line(11, 21, ForkStack::NoInterpreter);
        // A shell's forks: never Python.
        forks.on_fork_without_line(50, 51, ForkStack::NoInterpreter);
        forks.on_fork_without_line(50, 52, ForkStack::NoInterpreter);
        forks.on_process_exit(50, false);
        // A live shell and a live Python process at the end.
        forks.on_fork_without_line(60, 62, ForkStack::NoInterpreter);
        forks.on_fork_without_line(50, 53, ForkStack::NoInterpreter);
        assert_eq!(forks.pending_count, 3);
        let said = warned(forks);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].starts_with("pid 10 (p10): 1 process it forked has no Python line"));
        assert!(said[1].starts_with("pid 11 (p11): 1 process"));
        assert!(said[2].starts_with("pid 60 (p60): 1 process"));
    }

    #[test]
    fn forks_before_an_exec_are_the_old_programs() {
        let mut forks = EarlyForks::default();
        // A shell launcher forks helpers, then execs Python, which is
        // found (before or after the exec's record, or even the forks'
        // records): the helpers are not Python's.
        forks.on_fork_without_line(10, 11, ForkStack::NoInterpreter);
        forks.on_exec(10, false);
        // A Python program forks before it was found and execs another.
        forks.on_fork_without_line(20, 21, ForkStack::NoInterpreter);
        forks.on_exec(20, true);
        assert_eq!(forks.pending_count, 0);
        let said = warned(forks);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("pid 20 (p20): 1 process"),
            "{}",
            said[0]
        );
    }

    #[test]
    fn pending_forks_are_bounded_and_those_let_go_are_said() {
        let mut forks = EarlyForks::default();
        for child in 0..MAX_PENDING as u32 + 3 {
            forks.on_fork_without_line(50, 1_000 + child, ForkStack::NoInterpreter);
        }
        assert_eq!((forks.pending_count, forks.let_go), (MAX_PENDING, 3));
        let said = warned(forks);
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("3 forks with no Python line were not told apart"));
    }
}
