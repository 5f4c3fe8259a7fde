//! Processes that exited and were not reaped yet, and which of them a
//! wait reaped: one table for the report's reaper rows (`processes`) and
//! the continuous mode's zombie figures (`metrics`), so that a wait is
//! matched to its child, namespace pid included, in one place.

use std::collections::{BTreeMap, HashMap};

/// What is kept of a process between its exit and its reaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited {
    /// When it exited; `None` for a zombie already when tracing started.
    pub exit_ns: Option<u64>,
    /// The parent whose wait reaps it (as known at its exit).
    pub parent: u32,
    /// Its pid in its own namespace, when known.
    pub ns_pid: Option<u32>,
}

#[derive(Default)]
pub struct Zombies {
    exited: HashMap<u32, Exited>,
}

impl Zombies {
    /// Process `pid` exited (or was found a zombie at the start).
    pub fn on_exit(&mut self, pid: u32, exited: Exited) {
        self.exited.insert(pid, exited);
    }

    /// Its pid in its own namespace, learned after its exit record.
    pub fn set_ns_pid(&mut self, pid: u32, ns_pid: u32) {
        if let Some(z) = self.exited.get_mut(&pid) {
            z.ns_pid = Some(ns_pid);
        }
    }

    /// The host pid of the child that a wait call in process `waiter`
    /// reported as `pid`: inside a pid namespace wait4 and waitid return
    /// the child's pid there, not the host pid the tables are keyed by.
    /// Its own child first, by host pid then by namespace pid; else a
    /// zombie of that host pid whatever its recorded parent (adopted by a
    /// subreaper since). `None`: no zombie is that child.
    pub fn reported_child(&self, waiter: u32, pid: u32) -> Option<u32> {
        let mut by_ns = None;
        for (&host, z) in self.exited.iter().filter(|(_, z)| z.parent == waiter) {
            if host == pid {
                return Some(pid);
            }
            if z.ns_pid == Some(pid) && by_ns.is_none_or(|found| host < found) {
                by_ns = Some(host);
            }
        }
        by_ns.or_else(|| self.exited.contains_key(&pid).then_some(pid))
    }

    /// Zombie `pid` was reaped (by a wait, or released without one): what
    /// was kept of it, taken out.
    pub fn reap(&mut self, pid: u32) -> Option<Exited> {
        self.exited.remove(&pid)
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.exited.contains_key(&pid)
    }

    pub fn len(&self) -> usize {
        self.exited.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exited.is_empty()
    }

    /// The parents that have zombies now.
    pub fn parents(&self) -> impl Iterator<Item = u32> + '_ {
        self.exited.values().map(|z| z.parent)
    }

    /// How many zombies each parent has now.
    pub fn per_parent(&self) -> BTreeMap<u32, u64> {
        let mut counts = BTreeMap::new();
        for parent in self.parents() {
            *counts.entry(parent).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(parent: u32, ns_pid: Option<u32>) -> Exited {
        Exited {
            exit_ns: Some(5),
            parent,
            ns_pid,
        }
    }

    #[test]
    fn a_wait_is_matched_by_host_pid_then_namespace_pid() {
        let mut zombies = Zombies::default();
        // In a container: host 5001 is pid 7 there, host 5002 pid 8.
        zombies.on_exit(5001, exited(100, Some(7)));
        zombies.on_exit(5002, exited(100, None));
        zombies.set_ns_pid(5002, 8);
        // Another parent's child numbered 7 in its own namespace.
        zombies.on_exit(6001, exited(200, Some(7)));
        assert_eq!(zombies.reported_child(100, 7), Some(5001));
        assert_eq!(zombies.reported_child(100, 8), Some(5002));
        assert_eq!(zombies.reported_child(200, 7), Some(6001));
        assert_eq!(zombies.reported_child(100, 5002), Some(5002));
        // Reparented to a subreaper: matched by its host pid.
        assert_eq!(zombies.reported_child(1, 6001), Some(6001));
        // Nobody's.
        assert_eq!(zombies.reported_child(100, 9), None);
        assert_eq!(zombies.per_parent(), BTreeMap::from([(100, 2), (200, 1)]));
        assert_eq!(zombies.reap(5001), Some(exited(100, Some(7))));
        assert_eq!(zombies.reported_child(100, 7), None);
        assert_eq!(zombies.len(), 2);
    }

    #[test]
    fn a_namespace_pid_names_the_lowest_host_pid_when_two_match() {
        // Two namespaces' children of one waiter with the same pid there
        // (a setns'd parent): the same child every time, whatever the
        // map's order.
        let mut zombies = Zombies::default();
        zombies.on_exit(9002, exited(100, Some(3)));
        zombies.on_exit(9001, exited(100, Some(3)));
        assert_eq!(zombies.reported_child(100, 3), Some(9001));
    }
}
