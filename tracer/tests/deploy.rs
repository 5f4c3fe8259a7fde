//! deploy/: the image built offline from deploy/Containerfile, and the
//! pod template of deploy/kubernetes/daemonset.yaml played by `podman kube
//! play` as a Pod (podman 4.3 plays no DaemonSet; tests/daemonset_pod.py
//! makes the Pod and says what it changes for this machine): not
//! privileged, its capabilities only, a read-only root, its memory limit;
//! its /metrics, behind TLS and basic auth from the web config the
//! template mounts from a Secret, has a podman container's Python samples
//! with that container's id, and nothing without the credentials.

mod common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    http::*,
    podman::{Container, podman, unique_name},
    tls::{Pki, curl},
    *,
};

const USER: &str = "prometheus";
const PASSWORD: &str = "scrape me, and only me";

/// What the Secret `tracer-web` holds, as `kubectl create secret` would
/// lay it out: `web.yml`, `tls.crt` and `tls.key` (the test PKI's server
/// certificate for 127.0.0.1), in a directory of its own.
fn web_secret(scratch: &Scratch, pki: &Pki) -> String {
    let dir = scratch.subdir("web-secret");
    std::fs::copy(pki.path("server.pem"), format!("{dir}/tls.crt")).unwrap();
    std::fs::copy(pki.path("server.key"), format!("{dir}/tls.key")).unwrap();
    // The shipped example, its placeholder hash replaced.
    let example = std::fs::read_to_string(repo("deploy/kubernetes/web.yml")).unwrap();
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let web = example.replace("REPLACE-WITH-A-BCRYPT-HASH", &format!("'{hash}'"));
    assert_ne!(web, example, "no placeholder in deploy/kubernetes/web.yml");
    std::fs::write(format!("{dir}/web.yml"), web).unwrap();
    dir
}

/// The pod and the image, removed when the test ends (panics included).
struct Played {
    pod: String,
    image: String,
}

impl Drop for Played {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["pod", "rm", "-f", "-t", "0", &self.pod])
            .output();
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_daemonsets_pod_serves_a_containers_python_samples_with_its_id() {
    require_root();
    let scratch = Scratch::new("deploy_kube_play");
    let name = unique_name("deploy");
    let image = format!("localhost/{name}:test");
    let played = Played {
        pod: name.clone(),
        image: image.clone(),
    };
    // The image, from deploy/Containerfile and the tracer alone; no base
    // image to pull (FROM scratch), none pulled.
    let context = scratch.subdir("image");
    std::fs::copy(TRACER, format!("{context}/tracer")).unwrap();
    std::fs::copy(
        repo("deploy/Containerfile"),
        format!("{context}/Containerfile"),
    )
    .unwrap();
    podman(&["build", "--pull=never", "--quiet", "-t", &image, &context]);
    // A service that burns until it is stopped, in a container.
    let container = Container::run(
        &unique_name("deploy_service"),
        &common::podman::sid_root(),
        &[],
        &[
            "python3.14",
            "-c",
            "def container_burn():\n    while True:\n        sum(range(1000))\ncontainer_burn()",
        ],
    );
    // The Pod, played with runc and explicit ulimits (this VM's hybrid
    // cgroups; containers.conf is how kube play takes them).
    let port = free_port();
    let pki = Pki::new(&scratch);
    let web = web_secret(&scratch, &pki);
    let pod = Command::new("/usr/bin/python3")
        .arg(repo("tests/daemonset_pod.py"))
        .args([&repo("deploy/kubernetes/daemonset.yaml"), &name, &image])
        .arg(port.to_string())
        .arg(&web)
        .output()
        .unwrap();
    assert!(pod.status.success(), "daemonset_pod.py: {pod:?}");
    let pod_yaml = scratch.path("pod.yaml");
    std::fs::write(&pod_yaml, &pod.stdout).unwrap();
    let conf = scratch.path("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
         [engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    // From a directory with nothing named like the image (kube play would
    // take it for a build context).
    let play = Command::new("podman")
        .args(["kube", "play", &pod_yaml])
        .env("CONTAINERS_CONF", &conf)
        .current_dir(&scratch.dir)
        .output()
        .unwrap();
    assert!(play.status.success(), "podman kube play: {play:?}");
    let tracer = format!("{name}-tracer");
    let inspect = |format: &str| podman(&["inspect", "-f", format, &tracer]);
    // As the template says: not privileged, three capabilities, a
    // read-only root, 320 MiB at most.
    assert_eq!(inspect("{{.HostConfig.Privileged}}"), "false");
    assert_eq!(
        inspect("{{.HostConfig.CapAdd}}"),
        "[CAP_BPF CAP_PERFMON CAP_SYS_PTRACE]"
    );
    assert_eq!(inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(
        inspect("{{.HostConfig.Memory}}"),
        (320u64 << 20).to_string()
    );
    let pid = inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l == "CapEff:\t000000c000080000"),
        "{status}"
    );
    // Its /metrics: the container's samples, labelled with its id and name.
    let series = format!(
        "tracer_python_samples_total{{pid=\"{}\",container_id=\"{}\",container_name=\"{}\",function=\"container_burn\"}} ",
        container.pid, container.id, container.name
    );
    let credentials = format!("{USER}:{PASSWORD}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let samples = loop {
        let found = curl(&pki, port, "/metrics", &["-u", &credentials])
            .ok()
            .filter(|answer| answer.status == 200)
            .and_then(|answer| {
                answer
                    .text()
                    .lines()
                    .find_map(|l| l.strip_prefix(&series))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
        match found {
            Some(samples) if samples > 0 => break samples,
            _ if Instant::now() > deadline => {
                let logs = Command::new("podman").args(["logs", &tracer]).output();
                panic!("no {series}in /metrics; the tracer's log: {logs:?}");
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert!(samples > 0);
    // Without credentials, or in plain HTTP: none of it.
    let refused = curl(&pki, port, "/metrics", &[]).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(!refused.text().contains("tracer_python_samples_total"));
    let plain = http_get(port, "/metrics");
    assert!(
        plain
            .as_ref()
            .is_none_or(|(_, body)| !body.contains("tracer_python_samples_total")),
        "{plain:?}"
    );
    drop(container);
    drop(played);
}
