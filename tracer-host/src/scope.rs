//! Node-wide traces: what `--all`, `--cgroup PATH` and `--container
//! ID|NAME` take in. The processes in the scope now are found in /proc;
//! those that exec in it later are taken in by the kernel
//! ([`ScopeConfig`]: every exec, or an exec below a cgroup v2 id), and the
//! children of traced processes are followed there as always.

use std::{fs, os::unix::fs::MetadataExt as _, path::Path};

use tracer_common::ScopeConfig;

use crate::{
    containers::{self, ContainerError, Running},
    procfs,
};

#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("--container: {0}")]
    Container(#[from] ContainerError),
    #[error("--container {query}: container {id} exited while it was looked at")]
    ContainerExited { query: String, id: String },
    #[error("--container {query}: its processes are in no cgroup this host shows")]
    ContainerWithoutCgroup { query: String },
    #[error(
        "--cgroup {given}: no such cgroup (no process is in it or below it{v2}); \
         `cat /proc/PID/cgroup` shows a process's"
    )]
    NoSuchCgroup { given: String, v2: String },
}

/// A cgroup and everything below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// As /proc/PID/cgroup writes it: `/system.slice/app.service`.
    pub path: String,
    /// Its cgroup v2 id (the directory's inode) and level (the root is 0),
    /// when the v2 hierarchy has it: the kernel then takes in what execs
    /// there. On a cgroup v1 only host it takes in only the children of
    /// processes in it.
    pub v2: Option<(u64, u32)>,
}

impl Cgroup {
    /// `given`: a path as /proc/PID/cgroup writes it, or under the cgroup
    /// v2 mount (`/sys/fs/cgroup/...`). Refused when neither the v2
    /// hierarchy nor any process has it.
    pub fn resolve(given: &str) -> Result<Self, ScopeError> {
        let mount = procfs::cgroup2_mount();
        let path = normalise(given, mount.as_deref());
        let v2 = mount.as_deref().and_then(|mount| {
            let dir = mount.join(path.trim_start_matches('/'));
            let meta = fs::symlink_metadata(dir).ok()?;
            meta.is_dir().then(|| (meta.ino(), level(&path)))
        });
        let cgroup = Self { path, v2 };
        if cgroup.v2.is_none() && cgroup.processes().is_empty() {
            let v2 = match mount {
                Some(mount) => format!(", and {} has no such directory", mount.display()),
                None => ", and this host mounts no cgroup v2 hierarchy".into(),
            };
            return Err(ScopeError::NoSuchCgroup {
                given: given.to_owned(),
                v2,
            });
        }
        Ok(cgroup)
    }

    /// Whether a process whose /proc/PID/cgroup reads `text` is in this
    /// cgroup or below it: by its v2 path when the v2 hierarchy has this
    /// cgroup (as the kernel's filter), else by any hierarchy's path.
    pub fn contains(&self, text: &str) -> bool {
        crate::containers::cgroup::lines(text).any(|(hierarchy, _, path)| {
            (self.v2.is_none() || hierarchy == "0") && is_under(path, &self.path)
        })
    }

    /// The user processes in this cgroup or below it now.
    pub fn processes(&self) -> Vec<u32> {
        user_processes()
            .into_iter()
            .filter(|&pid| procfs::cgroup(pid).is_some_and(|text| self.contains(&text)))
            .collect()
    }
}

/// What a node-wide trace takes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `--all`: every process on the host.
    All,
    /// `--cgroup PATH`.
    Cgroup(Cgroup),
    /// `--container ID|NAME`: its cgroup (the one named after it).
    Container {
        running: Box<Running>,
        cgroup: Cgroup,
    },
}

impl Scope {
    /// The scope asked for: every process (`all`), a container's (by name
    /// or id) or a cgroup's (by path); `None`: none of them (`--pid` or a
    /// command).
    pub fn of(
        all: bool,
        container: Option<&str>,
        cgroup: Option<&str>,
    ) -> Result<Option<Self>, ScopeError> {
        if all {
            return Ok(Some(Self::All));
        }
        if let Some(query) = container {
            return Self::container(query).map(Some);
        }
        match cgroup {
            Some(path) => Ok(Some(Self::Cgroup(Cgroup::resolve(path)?))),
            None => Ok(None),
        }
    }

    fn container(query: &str) -> Result<Self, ScopeError> {
        let running = containers::lookup(query)?;
        let path = running
            .cgroup_v2
            .clone()
            .or_else(|| running.cgroup_v1.clone())
            .ok_or_else(|| ScopeError::ContainerWithoutCgroup {
                query: query.to_owned(),
            })?;
        // Its processes may all have exited since they were listed.
        let cgroup = Cgroup::resolve(&path).map_err(|_| ScopeError::ContainerExited {
            query: query.to_owned(),
            id: running.container.short_id().to_owned(),
        })?;
        Ok(Self::Container {
            running: Box::new(running),
            cgroup,
        })
    }

    /// The process whose exit ends the trace: a container's init (pid 1
    /// of its pid namespace, else its oldest process).
    pub fn init(&self) -> Option<u32> {
        let Self::Container { running, .. } = self else {
            return None;
        };
        let pids = &running.pids;
        pids.iter()
            .copied()
            .find(|&pid| procfs::ns_pid(pid) == Some(1))
            .or_else(|| pids.iter().copied().min())
    }

    /// What the kernel takes in as it execs.
    pub fn config(&self) -> ScopeConfig {
        let mut config = ScopeConfig {
            per_cpu_sampling: 1,
            ..ScopeConfig::default()
        };
        match self {
            Self::All => config.all = 1,
            Self::Cgroup(cgroup) | Self::Container { cgroup, .. } => {
                if let Some((id, level)) = cgroup.v2 {
                    config.cgroup_id = id;
                    config.cgroup_level = level;
                }
            }
        }
        config
    }

    /// The user processes in the scope now (never the tracer itself).
    pub fn processes(&self) -> Vec<u32> {
        match self {
            Self::All => user_processes(),
            Self::Cgroup(cgroup) | Self::Container { cgroup, .. } => cgroup.processes(),
        }
    }

    /// For the report: `all`, `cgroup /system.slice`.
    pub fn describe(&self) -> String {
        match self {
            Self::All => "all".into(),
            Self::Cgroup(cgroup) => format!("cgroup {}", cgroup.path),
            Self::Container { running, .. } => {
                let container = &running.container;
                let name = container.name.clone();
                format!(
                    "container {}",
                    name.unwrap_or_else(|| container.short_id().to_owned())
                )
            }
        }
    }
}

/// Every process but kernel threads and the tracer itself (whose reads
/// of /proc would fill the report with its own work).
fn user_processes() -> Vec<u32> {
    let own = std::process::id();
    procfs::pids()
        .into_iter()
        .filter(|&pid| {
            pid != own && procfs::stat(pid).is_some_and(|s| !s.is_kernel_thread() && s.state != 'Z')
        })
        .collect()
}

/// `given` as /proc/PID/cgroup writes paths: rooted, no trailing slash,
/// the cgroup v2 mount point taken off.
fn normalise(given: &str, mount: Option<&Path>) -> String {
    let under_mount = mount
        .and_then(|mount| Path::new(given).strip_prefix(mount).ok())
        .map(|rest| rest.to_string_lossy().into_owned());
    let path = under_mount.as_deref().unwrap_or(given);
    let path = path.trim_matches('/');
    format!("/{path}")
}

/// The level of a cgroup path: `/` is 0, `/a` 1, `/a/b` 2.
fn level(path: &str) -> u32 {
    path.split('/').filter(|part| !part.is_empty()).count() as u32
}

fn is_under(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_taken_as_proc_writes_them() {
        let mount = Some(Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(normalise("/a/b/", mount), "/a/b");
        assert_eq!(normalise("a/b", mount), "/a/b");
        assert_eq!(normalise("/sys/fs/cgroup/unified/a/b", mount), "/a/b");
        assert_eq!(normalise("/sys/fs/cgroup/unified", mount), "/");
        assert_eq!(normalise("/", None), "/");
        assert_eq!(level("/"), 0);
        assert_eq!(level("/libpod_parent/libpod-88f7"), 2);
    }

    #[test]
    fn a_cgroup_holds_what_is_below_it_and_nothing_beside_it() {
        let app = Cgroup {
            path: "/system.slice/app.service".into(),
            v2: Some((1234, 2)),
        };
        assert!(app.contains("0::/system.slice/app.service\n"));
        assert!(app.contains("0::/system.slice/app.service/worker\n"));
        assert!(!app.contains("0::/system.slice/app.service2\n"));
        assert!(!app.contains("0::/system.slice\n"));
        // With a v2 id, the v2 path decides (as the kernel's filter does).
        assert!(!app.contains("1:name=systemd:/system.slice/app.service\n0::/\n"));
        let v1 = Cgroup { v2: None, ..app };
        assert!(v1.contains("1:name=systemd:/system.slice/app.service\n0::/\n"));
        let root = Cgroup {
            path: "/".into(),
            v2: Some((1, 0)),
        };
        assert!(root.contains("0::/anything\n"));
        assert!(!root.contains("garbage"));
    }

    #[test]
    fn the_scopes_tell_the_kernel_what_to_take_in() {
        let all = Scope::All.config();
        assert_eq!((all.all, all.cgroup_id, all.per_cpu_sampling), (1, 0, 1));
        let cgroup = Scope::Cgroup(Cgroup {
            path: "/a/b".into(),
            v2: Some((77, 2)),
        })
        .config();
        assert_eq!(
            (cgroup.all, cgroup.cgroup_id, cgroup.cgroup_level),
            (0, 77, 2)
        );
        let v1 = Scope::Cgroup(Cgroup {
            path: "/a".into(),
            v2: None,
        })
        .config();
        assert_eq!((v1.all, v1.cgroup_id), (0, 0));
    }

    #[test]
    fn a_missing_cgroup_is_refused() {
        let err = Cgroup::resolve("/no/such/cgroup/anywhere").unwrap_err();
        assert!(err.to_string().contains("no such cgroup"), "{err}");
        // The tracer's own cgroup exists.
        let own = procfs::cgroup(std::process::id()).unwrap();
        let path = own.lines().last().unwrap().splitn(3, ':').nth(2).unwrap();
        assert!(Cgroup::resolve(path).is_ok(), "{path}");
    }

    #[test]
    fn all_is_every_user_process_but_the_tracer() {
        let pids = Scope::All.processes();
        assert!(pids.contains(&1));
        assert!(!pids.contains(&std::process::id()));
        assert!(!pids.contains(&2), "kthreadd is a kernel thread");
    }
}
