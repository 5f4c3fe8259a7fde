//! What each runtime's own state files say of a container: its name and,
//! for Kubernetes, its pod and namespace. Every file is read bounded in
//! size, only when it is a regular file, and anything missing or
//! malformed gives nothing: a container may exit while it is looked at.
//!
//! - podman and CRI-O (containers/storage): `<root>/<driver>-containers/
//!   containers.json` (`names`) and `.../<id>/userdata/config.json` (the
//!   OCI spec's annotations: `io.kubernetes.container.name`,
//!   `io.kubernetes.pod.name`, `io.kubernetes.pod.namespace`);
//! - docker: `<root>/containers/<id>/config.v2.json` (`Name`, with a
//!   leading `/`; dockershim's Kubernetes labels in `Config.Labels`);
//! - containerd: `<task root>/<namespace>/<id>/config.json` annotations
//!   (`io.kubernetes.cri.container-name`, `...sandbox-name`,
//!   `...sandbox-namespace`; nerdctl's `nerdctl/name`).

use std::{
    fs,
    io::Read as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use serde_json::Value;

/// No state file worth reading is bigger (a host's containers.json with
/// thousands of containers is a few MiB).
const MAX_STATE_BYTES: u64 = 8 << 20;

/// Where each runtime keeps its state (tests point them at temp dirs).
#[derive(Debug, Clone)]
pub struct Roots {
    /// containers/storage roots (podman, CRI-O): the graph root, where
    /// containers.json is, and the run root, where CRI-O writes config.json.
    pub storage: Vec<PathBuf>,
    /// Docker's data root.
    pub docker: PathBuf,
    /// containerd's runtime v2 task directory (one directory per namespace).
    pub containerd: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            storage: vec![
                "/var/lib/containers/storage".into(),
                "/run/containers/storage".into(),
            ],
            docker: "/var/lib/docker".into(),
            containerd: "/run/containerd/io.containerd.runtime.v2.task".into(),
        }
    }
}

/// What a runtime's state names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub name: Option<String>,
    pub pod_uid: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

/// The JSON of a regular file no bigger than [`MAX_STATE_BYTES`]. Opened
/// non-blocking: a FIFO planted at the path must not hang the tracer.
fn read_json(path: &Path) -> Option<Value> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_STATE_BYTES {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A non-empty string at `key` of a JSON object.
fn text(object: &Value, key: &str) -> Option<String> {
    object
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Names from a map of annotations or labels, by their keys.
fn from_map(map: &Value, keys: [&str; 4]) -> Names {
    let [name, pod_uid, pod, namespace] = keys;
    Names {
        name: text(map, name),
        pod_uid: text(map, pod_uid),
        pod: text(map, pod),
        namespace: text(map, namespace),
    }
}

/// The kubelet's labels, as CRI-O and dockershim pass them on.
const KUBELET: [&str; 4] = [
    "io.kubernetes.container.name",
    "io.kubernetes.pod.uid",
    "io.kubernetes.pod.name",
    "io.kubernetes.pod.namespace",
];

/// containerd's CRI plugin annotations.
const CONTAINERD_CRI: [&str; 4] = [
    "io.kubernetes.cri.container-name",
    "io.kubernetes.cri.sandbox-uid",
    "io.kubernetes.cri.sandbox-name",
    "io.kubernetes.cri.sandbox-namespace",
];

/// The `<driver>-containers` directories of a containers/storage root.
fn storage_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("-containers"))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// A podman or CRI-O container in containers/storage: `Some` when the
/// storage knows the id. `prefer_kubelet`: CRI-O, whose containers.json
/// names are `k8s_<container>_<pod>_...`, named by the kubelet's labels.
pub fn storage(roots: &Roots, id: &str, prefer_kubelet: bool) -> Option<Names> {
    let mut found = false;
    let mut listed = None;
    let mut kubelet = Names::default();
    for dir in roots.storage.iter().flat_map(|root| storage_dirs(root)) {
        if listed.is_none()
            && let Some(Value::Array(all)) = read_json(&dir.join("containers.json"))
            && let Some(entry) = all
                .iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
        {
            found = true;
            listed = entry
                .get("names")
                .and_then(|n| n.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if kubelet == Names::default()
            && let Some(config) = read_json(&dir.join(id).join("userdata/config.json"))
        {
            found = true;
            if let Some(annotations) = config.get("annotations") {
                kubelet = from_map(annotations, KUBELET);
            }
        }
    }
    if !found {
        return None;
    }
    let name = if prefer_kubelet {
        kubelet.name.clone().or(listed)
    } else {
        listed.or(kubelet.name.clone())
    };
    Some(Names { name, ..kubelet })
}

pub fn docker(roots: &Roots, id: &str) -> Option<Names> {
    let config = read_json(
        &roots
            .docker
            .join("containers")
            .join(id)
            .join("config.v2.json"),
    )?;
    let labels = config
        .pointer("/Config/Labels")
        .cloned()
        .unwrap_or_default();
    let mut names = from_map(&labels, KUBELET);
    // dockershim's own name is k8s_...: the kubelet's label is the one asked for.
    if names.name.is_none() {
        names.name = text(&config, "Name").map(|n| n.trim_start_matches('/').to_owned());
    }
    Some(names)
}

pub fn containerd(roots: &Roots, id: &str) -> Option<Names> {
    let namespaces = fs::read_dir(&roots.containerd).ok()?;
    let config = namespaces
        .filter_map(Result::ok)
        .find_map(|ns| read_json(&ns.path().join(id).join("config.json")))?;
    let annotations = config.get("annotations").cloned().unwrap_or_default();
    let mut names = from_map(&annotations, CONTAINERD_CRI);
    if names.name.is_none() {
        names.name = text(&annotations, "nerdctl/name");
    }
    Some(names)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A temp dir laid out as the runtimes lay out theirs, removed on drop.
    pub struct FakeRoots {
        pub dir: PathBuf,
        pub roots: Roots,
    }

    impl FakeRoots {
        pub fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("tracer-containers-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let roots = Roots {
                storage: vec![dir.join("storage"), dir.join("run-storage")],
                docker: dir.join("docker"),
                containerd: dir.join("containerd"),
            };
            Self { dir, roots }
        }

        pub fn write(&self, path: &str, text: &str) {
            let path = self.dir.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    impl Drop for FakeRoots {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    pub const ID: &str = "88f77ad080408287b4160044c306776b1ce4465b454c4b9e9a7b434e156f911a";

    /// podman 4.3's containers.json and config.json, as written on this VM.
    pub fn podman_state(fake: &FakeRoots, id: &str, name: &str) {
        fake.write(
            "storage/overlay-containers/containers.json",
            &format!(
                r#"[{{"id":"{id}","names":["{name}"],"image":"","layer":"9d22","metadata":"{{\"name\":\"{name}\"}}","created":"2026-11-23T16:35:40.657628703Z","flags":{{"MountLabel":"","ProcessLabel":""}}}}]"#
            ),
        );
        fake.write(
            &format!("storage/overlay-containers/{id}/userdata/config.json"),
            r#"{"ociVersion":"1.0.2-dev","annotations":{"io.container.manager":"libpod","io.kubernetes.cri-o.TTY":"false","org.opencontainers.image.stopSignal":"15"},"hostname":"88f77ad08040"}"#,
        );
    }

    #[test]
    fn podman_names_from_containers_json() {
        let fake = FakeRoots::new("podman");
        assert_eq!(storage(&fake.roots, ID, false), None);
        podman_state(&fake, ID, "tr-probe");
        let names = storage(&fake.roots, ID, false).unwrap();
        assert_eq!(names.name.as_deref(), Some("tr-probe"));
        assert_eq!((names.pod, names.namespace), (None, None));
        // Another id: not this storage's.
        assert_eq!(storage(&fake.roots, &ID.replace('8', "9"), false), None);
    }

    #[test]
    fn cri_o_names_from_the_kubelets_annotations() {
        let fake = FakeRoots::new("crio");
        fake.write(
            "storage/overlay-containers/containers.json",
            &format!(r#"[{{"id":"{ID}","names":["k8s_app_web-0_default_0d5c_0"]}}]"#),
        );
        // CRI-O writes the spec in the run root.
        fake.write(
            &format!("run-storage/overlay-containers/{ID}/userdata/config.json"),
            r#"{"annotations":{"io.container.manager":"cri-o","io.kubernetes.container.name":"app","io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"default","io.kubernetes.pod.uid":"0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d","io.kubernetes.cri-o.Name":"k8s_app_web-0_default_0d5c_0"}}"#,
        );
        let names = storage(&fake.roots, ID, true).unwrap();
        assert_eq!(
            names,
            Names {
                name: Some("app".into()),
                pod_uid: Some("0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d".into()),
                pod: Some("web-0".into()),
                namespace: Some("default".into()),
            }
        );
        assert_eq!(
            storage(&fake.roots, ID, false).unwrap().name.as_deref(),
            Some("k8s_app_web-0_default_0d5c_0")
        );
    }

    #[test]
    fn docker_name_without_its_slash() {
        let fake = FakeRoots::new("docker");
        fake.write(
            &format!("docker/containers/{ID}/config.v2.json"),
            &format!(
                r#"{{"ID":"{ID}","Name":"/web","Config":{{"Hostname":"88f77ad08040","Labels":{{}}}},"State":{{"Running":true,"Pid":4242}}}}"#
            ),
        );
        assert_eq!(
            docker(&fake.roots, ID).unwrap().name.as_deref(),
            Some("web")
        );
        // dockershim: the kubelet's labels.
        fake.write(
            &format!("docker/containers/{ID}/config.v2.json"),
            r#"{"Name":"/k8s_app_web-0_default_0d5c_0","Config":{"Labels":{"io.kubernetes.container.name":"app","io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"default"}}}"#,
        );
        let names = docker(&fake.roots, ID).unwrap();
        assert_eq!(
            (names.name.as_deref(), names.pod.as_deref()),
            (Some("app"), Some("web-0"))
        );
    }

    #[test]
    fn containerd_names_from_cri_annotations_in_any_namespace() {
        let fake = FakeRoots::new("containerd");
        fake.write("containerd/moby/.keep", "");
        fake.write(
            &format!("containerd/k8s.io/{ID}/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"0d5c6e6f-83a5-4f2b-9c1d-2e3f4a5b6c7d"}}"#,
        );
        let names = containerd(&fake.roots, ID).unwrap();
        assert_eq!(
            (
                names.name.as_deref(),
                names.pod.as_deref(),
                names.namespace.as_deref()
            ),
            (Some("app"), Some("web-0"), Some("shop"))
        );
        // nerdctl.
        fake.write(
            &format!("containerd/default/{}/config.json", ID.replace('8', "7")),
            r#"{"annotations":{"nerdctl/name":"cache"}}"#,
        );
        assert_eq!(
            containerd(&fake.roots, &ID.replace('8', "7"))
                .unwrap()
                .name
                .as_deref(),
            Some("cache")
        );
    }

    #[test]
    fn garbage_missing_fifos_and_huge_files_give_nothing() {
        let fake = FakeRoots::new("garbage");
        for text in [
            "",
            "{",
            "[1, 2",
            "null",
            r#"{"annotations": 7}"#,
            "\u{0}\u{1}",
        ] {
            fake.write(&format!("containerd/k8s.io/{ID}/config.json"), text);
            let names = containerd(&fake.roots, ID);
            assert!(names.is_none_or(|n| n == Names::default()), "{text}");
            fake.write(&format!("docker/containers/{ID}/config.v2.json"), text);
            assert!(docker(&fake.roots, ID).is_none_or(|n| n == Names::default()));
            fake.write("storage/overlay-containers/containers.json", text);
            assert_eq!(storage(&fake.roots, ID, false), None, "{text}");
        }
        // A directory where a file should be, and a FIFO: not read.
        fs::create_dir_all(fake.dir.join(format!("docker/containers/{ID}/x"))).unwrap();
        let fifo = fake.dir.join("storage/overlay-containers/containers.json");
        fs::remove_file(&fifo).unwrap();
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(storage(&fake.roots, ID, false), None);
        // Bigger than the bound: not read at all.
        let big = fake
            .dir
            .join(format!("docker/containers/{ID}/config.v2.json"));
        let file = fs::File::create(&big).unwrap();
        file.set_len(MAX_STATE_BYTES + 1).unwrap();
        assert_eq!(docker(&fake.roots, ID), None);
    }
}
