//! Who a pid and a thread are, worked out one way for every output (the
//! text, pprof's labels, OTLP's resources): a process's name and container
//! from the last traced process with that pid that says them (pids are
//! reused: the last one holds it now), else from the Python processes the
//! sampler looked at (a node-wide trace samples processes it never saw
//! start); a thread's name as Python's `threading` knows it.

use std::collections::HashMap;

use super::{Container, Report};

pub struct Identities<'a> {
    comms: HashMap<u32, &'a str>,
    containers: HashMap<u32, &'a Container>,
    thread_names: HashMap<(u32, u32), &'a str>,
}

impl<'a> Identities<'a> {
    pub fn of(report: &'a Report) -> Self {
        let mut containers = HashMap::new();
        for process in &report.python.processes {
            if let Some(container) = &process.container {
                containers.insert(process.pid, container);
            }
        }
        let mut comms = HashMap::new();
        for process in &report.processes {
            if !process.comm.is_empty() {
                comms.insert(process.pid, process.comm.as_str());
            }
            if let Some(container) = &process.container {
                containers.insert(process.pid, container);
            }
        }
        let thread_names = report
            .python
            .threads
            .iter()
            .filter_map(|t| Some(((t.pid, t.tid), t.name.as_deref()?)))
            .collect();
        Self {
            comms,
            containers,
            thread_names,
        }
    }

    /// The kernel's name of process `pid`, if it was traced.
    pub fn comm(&self, pid: u32) -> Option<&'a str> {
        self.comms.get(&pid).copied()
    }

    pub fn container(&self, pid: u32) -> Option<&'a Container> {
        self.containers.get(&pid).copied()
    }

    /// Python's name of thread `tid` of process `pid`.
    pub fn thread_name(&self, pid: u32, tid: u32) -> Option<&'a str> {
        self.thread_names.get(&(pid, tid)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ProcessInfo, PythonProcess};

    /// A reused pid is the last process's; a container known only to the
    /// sampler is still said; a traced process's own record comes first.
    #[test]
    fn the_last_traced_process_with_a_pid_then_the_samplers() {
        let mut report = Report::default();
        let process = |pid, comm: &str, container: Option<&str>| ProcessInfo {
            pid,
            comm: comm.into(),
            container: container.map(|id| Container {
                id: id.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        report.processes = vec![
            process(7, "sh", None),
            process(7, "python3", Some("c1")),
            process(8, "", None),
        ];
        report.python.processes = vec![
            PythonProcess {
                pid: 7,
                container: Some(Container {
                    id: "c0".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            PythonProcess {
                pid: 9,
                container: Some(Container {
                    id: "c9".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        let who = Identities::of(&report);
        assert_eq!(who.comm(7), Some("python3"));
        assert_eq!(who.comm(8), None);
        assert_eq!(who.container(7).map(|c| c.id.as_str()), Some("c1"));
        assert_eq!(who.container(9).map(|c| c.id.as_str()), Some("c9"));
        assert_eq!(who.container(8), None);
    }
}
