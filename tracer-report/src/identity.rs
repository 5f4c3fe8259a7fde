//! Who a pid and a thread are, worked out one way for every output (the
//! text, the flame graphs' and speedscope's root frames and thread names,
//! pprof's labels, OTLP's resources, Perfetto's tracks, the Prometheus
//! series' labels). The one precedence rule:
//!
//! - a process's name and container: from the last traced process with
//!   that pid that says them (pids are reused: the last one holds it now),
//!   else from the Python processes the sampler looked at (a node-wide
//!   trace samples processes it never saw start); an empty name is no name;
//! - a thread's name: Python's (`threading`), else the kernel's (its comm);
//! - while tracing, the container of a process met (forked, adopted): where
//!   /proc says it is now, else, gone before it was read, its parent's; an
//!   exec moves it to where /proc says then (`podman exec`), if it can be
//!   read ([`container_when_met`], [`container_after_exec`]: the process
//!   tree and `--serve`'s series both record it so).

use std::collections::HashMap;

use super::{Container, Report};

pub struct Identities<'a> {
    comms: HashMap<u32, &'a str>,
    containers: HashMap<u32, &'a Container>,
    thread_names: HashMap<(u32, u32), &'a str>,
    /// The kernel's name of each thread (`sched.threads`).
    thread_comms: HashMap<(u32, u32), &'a str>,
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
        let mut thread_names: HashMap<_, _> = HashMap::new();
        let mut thread_comms = HashMap::new();
        for t in &report.sched.threads {
            if let Some(name) = t.name.as_deref().filter(|n| !n.is_empty()) {
                thread_names.insert((t.pid, t.tid), name);
            }
            if !t.comm.is_empty() {
                thread_comms.insert((t.pid, t.tid), t.comm.as_str());
            }
        }
        for t in &report.python.threads {
            if let Some(name) = t.name.as_deref() {
                thread_names.insert((t.pid, t.tid), name);
            }
        }
        Self {
            comms,
            containers,
            thread_names,
            thread_comms,
        }
    }

    /// The kernel's name of process `pid`, if it was traced.
    pub fn comm(&self, pid: u32) -> Option<&'a str> {
        self.comms.get(&pid).copied()
    }

    pub fn container(&self, pid: u32) -> Option<&'a Container> {
        self.containers.get(&pid).copied()
    }

    /// ` in container tr-probe (podman 88f77ad08040)` after a process's
    /// name, when it is in one; else nothing.
    pub fn in_container(&self, pid: u32) -> String {
        self.container(pid)
            .map(|c| format!(" in container {}", c.describe()))
            .unwrap_or_default()
    }

    /// Python's name of thread `tid` of process `pid`.
    pub fn thread_name(&self, pid: u32, tid: u32) -> Option<&'a str> {
        self.thread_names.get(&(pid, tid)).copied()
    }

    /// Thread `tid` of process `pid` as people know it: Python's name, else
    /// the kernel's.
    pub fn thread_label(&self, pid: u32, tid: u32) -> Option<&'a str> {
        self.thread_name(pid, tid)
            .or_else(|| self.thread_comms.get(&(pid, tid)).copied())
    }
}

/// The container of a process the trace meets (forked, adopted): `now`,
/// where /proc says it is (`None`: gone before it was read), else its
/// parent's (a runtime moves its children into the container's cgroup
/// before they exec, so the child's own reading comes first).
pub fn container_when_met(
    now: Option<Option<Container>>,
    parent: Option<&Container>,
) -> Option<Container> {
    match now {
        Some(now) => now,
        None => parent.cloned(),
    }
}

/// The container of a process after an exec: where /proc says it is now
/// (`podman exec` runs a program that joined one), else the one it had.
pub fn container_after_exec(
    now: Option<Option<Container>>,
    had: Option<Container>,
) -> Option<Container> {
    now.unwrap_or(had)
}

/// What the exports say of a container, in this order, each under its own
/// name (`container_id`, `container.id`...); those not known are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerField {
    Id,
    Name,
    PodUid,
    Pod,
    Namespace,
}

/// The known fields of `container`: its id, then its name, pod uid, pod
/// and namespace when known.
pub fn container_fields(container: &Container) -> impl Iterator<Item = (ContainerField, &str)> {
    let known = [
        (ContainerField::Name, &container.name),
        (ContainerField::PodUid, &container.pod_uid),
        (ContainerField::Pod, &container.pod),
        (ContainerField::Namespace, &container.namespace),
    ];
    std::iter::once((ContainerField::Id, container.id.as_str())).chain(
        known
            .into_iter()
            .filter_map(|(field, value)| Some((field, value.as_deref()?))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProcessInfo, PythonProcess};

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

    /// Python's name from either section, else the kernel's.
    #[test]
    fn a_thread_is_named_as_python_names_it_else_as_the_kernel_does() {
        let mut report = Report::default();
        let thread = |tid, comm: &str, name: Option<&str>| crate::ThreadSched {
            pid: 7,
            tid,
            comm: comm.into(),
            name: name.map(Into::into),
            ..Default::default()
        };
        report.sched.threads = vec![
            thread(7, "python3", None),
            thread(8, "python3", Some("pool-1")),
            thread(9, "", None),
        ];
        report.python.threads = vec![crate::PythonThread {
            pid: 7,
            tid: 7,
            name: Some("MainThread".into()),
            ..Default::default()
        }];
        let who = Identities::of(&report);
        assert_eq!(who.thread_label(7, 7), Some("MainThread"));
        assert_eq!(who.thread_name(7, 8), Some("pool-1"));
        assert_eq!(who.thread_label(7, 9), None);
        assert_eq!(who.thread_label(8, 8), None);
    }

    #[test]
    fn a_container_as_proc_says_else_the_parents() {
        let c = |id: &str| Container {
            id: id.into(),
            ..Default::default()
        };
        let parent = c("p");
        let id = |c: Option<Container>| c.map(|c| c.id);
        assert_eq!(
            id(container_when_met(Some(Some(c("own"))), Some(&parent))),
            Some("own".into())
        );
        assert_eq!(id(container_when_met(Some(None), Some(&parent))), None);
        assert_eq!(
            id(container_when_met(None, Some(&parent))),
            Some("p".into())
        );
        assert_eq!(
            id(container_after_exec(Some(Some(c("joined"))), None)),
            Some("joined".into())
        );
        assert_eq!(
            id(container_after_exec(None, Some(c("had")))),
            Some("had".into())
        );
        let mut k8s = c("id");
        k8s.pod = Some("web-0".into());
        k8s.namespace = Some("shop".into());
        assert_eq!(
            container_fields(&k8s).collect::<Vec<_>>(),
            [
                (ContainerField::Id, "id"),
                (ContainerField::Pod, "web-0"),
                (ContainerField::Namespace, "shop")
            ]
        );
    }
}
