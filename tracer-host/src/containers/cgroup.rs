//! Which container a process is in, from the text of its `/proc/PID/cgroup`
//! alone: the runtimes name each container's cgroup after its id
//! (`libpod-<id>`, `docker-<id>.scope`, `/docker/<id>`,
//! `cri-containerd-<id>.scope`, `crio-<id>.scope`, a bare id under a
//! Kubernetes pod's `kubepods` cgroup), and the kubelet names each pod's
//! cgroup after its uid.

/// Who made a container, as its cgroup path says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
    CriO,
    /// A bare id in a Kubernetes pod's cgroup: a CRI runtime's (containerd
    /// unless another runtime's state knows the id).
    Cri,
    /// A bare id outside Kubernetes: a container only if a runtime's state
    /// knows it (an id-like cgroup name proves nothing by itself).
    Unknown,
}

impl Runtime {
    /// The report's `runtime` field.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd | Runtime::Cri => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Unknown => "unknown",
        }
    }
}

/// A container as its cgroup path names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// 64 lowercase hex digits.
    pub id: String,
    pub runtime: Runtime,
    /// The Kubernetes pod's uid, dashed (`kubepods...pod<uid>`).
    pub pod_uid: Option<String>,
}

/// A process's cgroup paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    /// The `0::` line's (cgroup v2).
    pub v2: Option<String>,
    /// The v1 hierarchies' (the `name=systemd` line's, else the first
    /// controller's: a runtime puts a container at the same path in each).
    pub v1: Option<String>,
}

/// The (hierarchy, controllers, path) of each well-formed line of a
/// `/proc/PID/cgroup` (`0::/path` for v2, `4:memory:/path` for v1).
pub fn lines(text: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    text.lines().filter_map(|line| {
        let mut parts = line.splitn(3, ':');
        let hierarchy = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        (hierarchy.parse::<u32>().is_ok() && path.starts_with('/')).then_some((
            hierarchy,
            controllers,
            path,
        ))
    })
}

pub fn paths(text: &str) -> Paths {
    let mut paths = Paths::default();
    let mut first_v1 = None;
    for (hierarchy, controllers, path) in lines(text) {
        if hierarchy == "0" && controllers.is_empty() {
            paths.v2.get_or_insert_with(|| path.to_owned());
        } else if controllers == "name=systemd" {
            paths.v1 = Some(path.to_owned());
        } else if first_v1.is_none() {
            first_v1 = Some(path.to_owned());
        }
    }
    if paths.v1.is_none() {
        paths.v1 = first_v1;
    }
    paths
}

/// The container a process is in, from its `/proc/PID/cgroup` text; `None`
/// on the host, in a runtime's monitor (conmon), or for garbage. The v2
/// line is looked at first, then `name=systemd`, then the controllers'.
pub fn parse(text: &str) -> Option<Identity> {
    let mut ordered: Vec<(u8, &str)> = lines(text)
        .map(|(hierarchy, controllers, path)| {
            let rank = match (hierarchy, controllers) {
                ("0", "") => 0,
                (_, "name=systemd") => 1,
                _ => 2,
            };
            (rank, path)
        })
        .collect();
    ordered.sort_by_key(|&(rank, _)| rank);
    for (_, path) in ordered {
        match in_path(path) {
            Found::Container(identity) => return Some(identity),
            Found::Monitor => return None,
            Found::Nothing => {}
        }
    }
    None
}

enum Found {
    Container(Identity),
    /// conmon: the runtime's monitor of a container, not in it.
    Monitor,
    Nothing,
}

/// The innermost container cgroup of one path (a container may nest
/// cgroups of its own below it: `libpod-<id>.scope/container`).
fn in_path(path: &str) -> Found {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let in_kubepods = components.iter().any(|c| c.starts_with("kubepods"));
    let pod_uid = components.iter().find_map(|c| pod_uid(c));
    for (at, component) in components.iter().enumerate().rev() {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        if name.starts_with("libpod-conmon-") || name.starts_with("crio-conmon-") {
            return Found::Monitor;
        }
        let prefixed = [
            ("libpod-", Runtime::Podman),
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
            ("nerdctl-", Runtime::Containerd),
        ]
        .into_iter()
        .find_map(|(prefix, runtime)| {
            let id = name.strip_prefix(prefix)?;
            is_id(id).then_some((id, runtime))
        });
        let bare = is_id(name).then(|| {
            let parent = at.checked_sub(1).map(|p| components[p]);
            let runtime = if parent == Some("docker") {
                Runtime::Docker
            } else if in_kubepods {
                Runtime::Cri
            } else {
                Runtime::Unknown
            };
            (name, runtime)
        });
        if let Some((id, runtime)) = prefixed.or(bare) {
            return Found::Container(Identity {
                id: id.to_owned(),
                runtime,
                pod_uid: pod_uid.clone(),
            });
        }
    }
    Found::Nothing
}

/// A runtime's full container id: 64 lowercase hex digits.
pub fn is_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The pod uid of a pod's cgroup: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-<qos>]-pod<uid with _ for ->.slice` (systemd driver), dashed.
fn pod_uid(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let uid = if let Some(uid) = name.strip_prefix("pod") {
        uid
    } else if name.starts_with("kubepods") {
        &name[name.rfind("-pod")? + 4..]
    } else {
        return None;
    };
    let uid = uid.replace('_', "-");
    // A uuid, or a static pod's 32-digit hash.
    let hex = uid.bytes().filter(u8::is_ascii_hexdigit).count();
    let dashes = uid.bytes().filter(|&b| b == b'-').count();
    (hex == 32 && hex + dashes == uid.len() && dashes <= 4).then(|| uid.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "88f77ad080408287b4160044c306776b1ce4465b454c4b9e9a7b434e156f911a";
    const UID: &str = "0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d";
    const UID_SYSTEMD: &str = "0d5c6e6f_83a5_4f2b_9c1d_2e3f4a5b6c7d";

    fn identity(runtime: Runtime, pod_uid: Option<&str>) -> Option<Identity> {
        Some(Identity {
            id: ID.into(),
            runtime,
            pod_uid: pod_uid.map(str::to_owned),
        })
    }

    /// Every v1 controller line of a hybrid machine, and the v2 line, at `path`.
    fn hybrid(path: &str) -> String {
        let v1 = [
            "name=systemd",
            "pids",
            "blkio",
            "freezer",
            "devices",
            "memory",
            "cpuset",
            "cpuacct",
            "cpu",
        ];
        let mut text: String = v1
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}:{c}:{path}\n", 9 - i))
            .collect();
        text.push_str(&format!("0::{path}\n"));
        text
    }

    #[test]
    fn podman() {
        // This VM (hybrid, cgroupfs manager, runc), as /proc showed it.
        let cgroupfs = hybrid(&format!("/libpod_parent/libpod-{ID}"));
        assert_eq!(parse(&cgroupfs), identity(Runtime::Podman, None));
        let p = paths(&cgroupfs);
        assert_eq!(
            p.v2.as_deref(),
            Some(&*format!("/libpod_parent/libpod-{ID}"))
        );
        assert_eq!(p.v1, p.v2);
        // systemd manager, unified v2, with the container's own sub-cgroup.
        for text in [
            format!("0::/machine.slice/libpod-{ID}.scope\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!(
                "0::/machine.slice/machine-libpod_pod_{}.slice/libpod-{ID}.scope\n",
                &ID[..64]
            ),
            format!(
                "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n"
            ),
        ] {
            assert_eq!(parse(&text), identity(Runtime::Podman, None), "{text}");
        }
        // conmon watches the container from outside it.
        assert_eq!(
            parse(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n")),
            None
        );
        assert_eq!(
            parse(&hybrid(&format!("/libpod_parent/libpod-conmon-{ID}"))),
            None
        );
        assert_eq!(parse(&hybrid("/libpod_parent/conmon")), None);
    }

    #[test]
    fn docker() {
        assert_eq!(
            parse(&format!("0::/system.slice/docker-{ID}.scope\n")),
            identity(Runtime::Docker, None)
        );
        // cgroup v1, cgroupfs driver (and a comma-joined controller list).
        let v1 = format!(
            "12:cpu,cpuacct:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"
        );
        assert_eq!(parse(&v1), identity(Runtime::Docker, None));
        assert_eq!(paths(&v1).v1, Some(format!("/docker/{ID}")));
        assert_eq!(paths(&v1).v2, None);
    }

    #[test]
    fn containerd_and_kubernetes() {
        // systemd driver: the pod uid with `_` for `-`.
        let burstable = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse(&burstable), identity(Runtime::Containerd, Some(UID)));
        let guaranteed = format!(
            "0::/kubepods.slice/kubepods-pod{UID_SYSTEMD}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse(&guaranteed), identity(Runtime::Containerd, Some(UID)));
        // cgroupfs driver, v1: a bare id under the pod.
        let cgroupfs = format!(
            "11:cpu,cpuacct:/kubepods/besteffort/pod{UID}/{ID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{ID}\n"
        );
        assert_eq!(parse(&cgroupfs), identity(Runtime::Cri, Some(UID)));
        // A static pod's uid is a 32-digit hash.
        let hash = "3a1f0c5e9b7d4e2f8a6c1b0d9e8f7a6b";
        assert_eq!(
            parse(&format!("0::/kubepods/burstable/pod{hash}/{ID}\n")).and_then(|i| i.pod_uid),
            Some(hash.to_owned())
        );
        // nerdctl.
        assert_eq!(
            parse(&format!("0::/system.slice/nerdctl-{ID}.scope\n")),
            identity(Runtime::Containerd, None)
        );
        // A bare id elsewhere: only the runtimes' state can tell.
        assert_eq!(
            parse(&format!("0::/default/{ID}\n")),
            identity(Runtime::Unknown, None)
        );
        // A pod's own cgroup is no container.
        assert_eq!(parse(&format!("0::/kubepods/besteffort/pod{UID}\n")), None);
    }

    #[test]
    fn cri_o() {
        let systemd = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice/crio-{ID}.scope\n"
        );
        assert_eq!(parse(&systemd), identity(Runtime::CriO, Some(UID)));
        assert_eq!(
            parse(&format!("0::/kubepods/besteffort/pod{UID}/crio-{ID}\n")),
            identity(Runtime::CriO, Some(UID))
        );
        let conmon = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice/crio-conmon-{ID}.scope\n"
        );
        assert_eq!(parse(&conmon), None);
    }

    #[test]
    fn host_processes_and_garbage() {
        // This VM's host processes (a 32-digit name is no container id).
        let host = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/b97456f2c5e6512b081d293ecd9343a0\n0::/\n";
        assert_eq!(parse(host), None);
        assert_eq!(paths(host).v2.as_deref(), Some("/"));
        assert_eq!(paths(host).v1.as_deref(), Some("/"));
        for text in [
            "0::/init.scope\n",
            "0::/user.slice/user-0.slice/session-1.scope\n",
            "0::/system.slice/docker.service\n",
            "",
            "garbage\n:::\nx:y:z\n",
            &format!("0::/system.slice/docker-{}.scope\n", &ID[..63]),
            &format!("0::/system.slice/docker-{}.scope\n", ID.to_uppercase()),
            &format!("0::relative/docker-{ID}.scope\n"),
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
        // v2 first: a v1 line naming something else does not win.
        let mixed = format!("4:memory:/docker/{ID}\n0::/machine.slice/libpod-{ID}.scope\n");
        assert_eq!(parse(&mixed).map(|i| i.runtime), Some(Runtime::Podman));
    }
}
