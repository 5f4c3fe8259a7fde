//! Container identity: which container and Kubernetes pod a process is in,
//! from its cgroup path (the id, the runtime, the pod uid; see [`cgroup`])
//! and the runtime's own state files (the name, pod and namespace; see
//! [`state`]). Never an error that stops a trace: a process or container
//! that is gone while looked at gives what could be read.
//!
//! [`Containers`] keeps what each container's state said, read once per
//! container; [`running`] lists the containers running now from one scan
//! of /proc, and [`lookup`] finds one by id, id prefix or name (`--container`).

pub mod cgroup;
pub mod state;

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use tracer_report::Container;

use crate::procfs;
use cgroup::{Identity, Runtime};

/// An id prefix shorter than this is refused (`--container 8` would pick
/// a container by luck).
pub const MIN_PREFIX: usize = 4;
/// Containers whose state is kept; the least recently used goes first
/// (an agent running for days sees containers come and go).
const MAX_CACHED: usize = 1024;
/// A container whose name was not found is looked at again while it is
/// this young (its runtime may write its state just after starting it),
/// at most once per [`REREAD_EVERY`].
const REREAD_WHILE: Duration = Duration::from_secs(10);
const REREAD_EVERY: Duration = Duration::from_secs(1);
/// Containers listed in an error message.
const LISTED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no container is named \"{query}\" and none has that id: {running}")]
    NoMatch { query: String, running: String },
    #[error(
        "\"{query}\" is too short for an id prefix (at least {MIN_PREFIX} hex digits) and names \
         no container: {running}"
    )]
    TooShort { query: String, running: String },
    #[error(
        "\"{query}\" matches several containers: {candidates}; give more of the id, or the name"
    )]
    Ambiguous { query: String, candidates: String },
}

/// A container running now and its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub container: Container,
    /// Its processes (host pids), ascending.
    pub pids: Vec<u32>,
    /// Its cgroup (the one named after it, without the sub-cgroups a
    /// container may make below) in the v2 hierarchy: the `0::` path.
    pub cgroup_v2: Option<String>,
    /// The same in the v1 hierarchies (`name=systemd`'s, else the first
    /// controller's).
    pub cgroup_v1: Option<String>,
}

struct Entry {
    container: Option<Container>,
    first_seen: Instant,
    read_at: Instant,
    used: u64,
}

/// Whether a container whose state gave no name is worth another look.
fn worth_rereading(named: bool, since_first: Duration, since_read: Duration) -> bool {
    !named && since_first < REREAD_WHILE && since_read >= REREAD_EVERY
}

/// Each container's identity, its runtime's state read once per container.
pub struct Containers {
    roots: state::Roots,
    /// `/proc/PID/cgroup` (tests give made-up processes).
    cgroup_of: fn(u32) -> Option<String>,
    cache: HashMap<String, Entry>,
    uses: u64,
}

impl Default for Containers {
    fn default() -> Self {
        Self::new(state::Roots::default(), procfs::cgroup)
    }
}

impl Containers {
    pub fn new(roots: state::Roots, cgroup_of: fn(u32) -> Option<String>) -> Self {
        Self {
            roots,
            cgroup_of,
            cache: HashMap::new(),
            uses: 0,
        }
    }

    /// The container process `pid` is in now; `None` on the host or when
    /// the process is gone.
    pub fn of_pid(&mut self, pid: u32) -> Option<Container> {
        self.read(pid).flatten()
    }

    /// [`Containers::of_pid`], `None` when the process is gone (its cgroup
    /// could not be read): `Some(None)` on the host.
    pub fn read(&mut self, pid: u32) -> Option<Option<Container>> {
        let text = (self.cgroup_of)(pid)?;
        Some(self.of_cgroup(&text))
    }

    /// The container of a `/proc/PID/cgroup` text.
    pub fn of_cgroup(&mut self, text: &str) -> Option<Container> {
        self.resolve(cgroup::parse(text)?)
    }

    fn resolve(&mut self, identity: Identity) -> Option<Container> {
        self.uses += 1;
        let now = Instant::now();
        if let Some(entry) = self.cache.get_mut(&identity.id) {
            entry.used = self.uses;
            let named = entry.container.as_ref().is_some_and(|c| c.name.is_some());
            if !worth_rereading(named, now - entry.first_seen, now - entry.read_at) {
                return entry.container.clone();
            }
        }
        let container = self.read_state(&identity);
        if !self.cache.contains_key(&identity.id) && self.cache.len() >= MAX_CACHED {
            let oldest = self
                .cache
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.cache.remove(&oldest);
            }
        }
        let entry = self.cache.entry(identity.id).or_insert(Entry {
            container: None,
            first_seen: now,
            read_at: now,
            used: self.uses,
        });
        entry.read_at = now;
        // A second look that finds less (the container went) keeps the first.
        if container.is_some() || entry.container.is_none() {
            entry.container = container;
        }
        entry.container.clone()
    }

    /// The container an identity names, with what its runtime's state says.
    fn read_state(&self, identity: &Identity) -> Option<Container> {
        let roots = &self.roots;
        let id = identity.id.as_str();
        let (runtime, names) = match identity.runtime {
            Runtime::Podman => (Runtime::Podman, state::storage(roots, id, false)),
            Runtime::CriO => (Runtime::CriO, state::storage(roots, id, true)),
            Runtime::Docker => (Runtime::Docker, state::docker(roots, id)),
            Runtime::Containerd => (Runtime::Containerd, state::containerd(roots, id)),
            Runtime::Cri | Runtime::Unknown => {
                let found = if let Some(names) = state::containerd(roots, id) {
                    Some((Runtime::Containerd, names))
                } else if let Some(names) = state::docker(roots, id) {
                    Some((Runtime::Docker, names))
                } else {
                    state::storage(roots, id, true).map(|names| {
                        let kubernetes = identity.runtime == Runtime::Cri || names.pod.is_some();
                        let runtime = if kubernetes {
                            Runtime::CriO
                        } else {
                            Runtime::Podman
                        };
                        (runtime, names)
                    })
                };
                match found {
                    Some((runtime, names)) => (runtime, Some(names)),
                    // In a pod's cgroup: a container whatever its state.
                    None if identity.runtime == Runtime::Cri => (Runtime::Cri, None),
                    None => return None,
                }
            }
        };
        let names = names.unwrap_or_default();
        Some(Container {
            id: identity.id.clone(),
            runtime: runtime.name().to_owned(),
            name: names.name,
            pod_uid: identity.pod_uid.clone().or(names.pod_uid),
            pod: names.pod,
            namespace: names.namespace,
        })
    }

    /// The containers of these processes (pid, `/proc/PID/cgroup` text),
    /// by name then id.
    pub fn gather(&mut self, processes: impl IntoIterator<Item = (u32, String)>) -> Vec<Running> {
        let mut by_id: BTreeMap<String, Running> = BTreeMap::new();
        for (pid, text) in processes {
            let Some(container) = self.of_cgroup(&text) else {
                continue;
            };
            let paths = cgroup::paths(&text);
            let own = |path: Option<String>| path.map(|p| container_cgroup(&p, &container.id));
            let (v2, v1) = (own(paths.v2), own(paths.v1));
            let running = by_id.entry(container.id.clone()).or_insert(Running {
                container,
                pids: Vec::new(),
                cgroup_v2: None,
                cgroup_v1: None,
            });
            running.pids.push(pid);
            // Its processes' shortest: the container's own, not a sub-cgroup.
            for (kept, path) in [(&mut running.cgroup_v2, v2), (&mut running.cgroup_v1, v1)] {
                if let Some(path) = path
                    && kept.as_ref().is_none_or(|k| path.len() < k.len())
                {
                    *kept = Some(path);
                }
            }
        }
        let mut all: Vec<Running> = by_id.into_values().collect();
        for running in &mut all {
            running.pids.sort_unstable();
        }
        all.sort_by(|a, b| {
            (&a.container.name, &a.container.id).cmp(&(&b.container.name, &b.container.id))
        });
        all
    }

    /// Every container with a process running now, from one scan of /proc.
    pub fn running(&mut self) -> Vec<Running> {
        let cgroup_of = self.cgroup_of;
        let processes = procfs::pids()
            .into_iter()
            .filter_map(|pid| Some((pid, cgroup_of(pid)?)));
        self.gather(processes.collect::<Vec<_>>())
    }
}

/// `path` cut after the component that names container `id`.
fn container_cgroup(path: &str, id: &str) -> String {
    match path.find(id) {
        Some(at) => match path[at..].find('/') {
            Some(end) => path[..at + end].to_owned(),
            None => path.to_owned(),
        },
        None => path.to_owned(),
    }
}

/// Every container with a process running now.
pub fn running() -> Vec<Running> {
    Containers::default().running()
}

/// The running container `query` names: its full id, its exact name
/// (`POD/NAME` and `NAMESPACE/POD/NAME` for Kubernetes), or a prefix of
/// its id of at least [`MIN_PREFIX`] hex digits that no other has.
pub fn lookup(query: &str) -> Result<Running, ContainerError> {
    find(running(), query)
}

/// [`lookup`] among `running`.
pub fn find(running: Vec<Running>, query: &str) -> Result<Running, ContainerError> {
    let query = query.trim();
    let name = query.trim_start_matches('/');
    let named = |r: &&Running| {
        let c = &r.container;
        let Some(own) = c.name.as_deref() else {
            return false;
        };
        let pod = c.pod.as_deref().unwrap_or_default();
        let ns = c.namespace.as_deref().unwrap_or_default();
        own == name || name == format!("{pod}/{own}") || name == format!("{ns}/{pod}/{own}")
    };
    let by_id: Vec<&Running> = running.iter().filter(|r| r.container.id == query).collect();
    let by_name: Vec<&Running> = running.iter().filter(named).collect();
    let hex = !query.is_empty() && query.bytes().all(|b| b.is_ascii_hexdigit());
    let prefix = query.to_ascii_lowercase();
    let by_prefix: Vec<&Running> = if hex && query.len() >= MIN_PREFIX {
        running
            .iter()
            .filter(|r| r.container.id.starts_with(&prefix))
            .collect()
    } else {
        Vec::new()
    };
    let matches = [by_id, by_name, by_prefix]
        .into_iter()
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] if hex && query.len() < MIN_PREFIX => Err(ContainerError::TooShort {
            query: query.to_owned(),
            running: listing(&running),
        }),
        [] => Err(ContainerError::NoMatch {
            query: query.to_owned(),
            running: listing(&running),
        }),
        several => Err(ContainerError::Ambiguous {
            query: query.to_owned(),
            candidates: names(several.iter().copied()),
        }),
    }
}

/// What is running, for an error message.
fn listing(running: &[Running]) -> String {
    if running.is_empty() {
        return "no container is running (no process's cgroup names one)".into();
    }
    format!("running: {}", names(running.iter()))
}

/// `tr-probe (podman 88f77ad08040), ...`, at most [`LISTED`].
fn names<'a>(running: impl ExactSizeIterator<Item = &'a Running>) -> String {
    let total = running.len();
    let mut text: Vec<String> = running
        .take(LISTED)
        .map(|r| r.container.describe())
        .collect();
    if total > LISTED {
        text.push(format!("and {} more", total - LISTED));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests;
