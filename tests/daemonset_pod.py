"""Makes a Pod from the pod template of deploy/kubernetes/daemonset.yaml,
for tracer/tests/deploy.rs to `podman kube play` (podman 4.3 plays Pods
and Deployments, not DaemonSets):

    daemonset_pod.py DAEMONSET NAME IMAGE PORT WEB_DIR

prints the Pod (YAML) named NAME: the template's metadata and spec as
they are, but for what this machine needs, each said below. Needs PyYAML
(Debian's python3-yaml).
"""
import os
import sys

import yaml

daemonset_path, name, image, port, web_dir = sys.argv[1:6]
documents = list(yaml.safe_load_all(open(daemonset_path)))
daemonset = next(d for d in documents if d and d["kind"] == "DaemonSet")
template = daemonset["spec"]["template"]
spec = template["spec"]
(container,) = spec["containers"]

# The image built for the test, not a registry's.
container["image"] = image
container["imagePullPolicy"] = "Never"
# A free port of this host (hostNetwork) instead of 9464.
container["args"] = [a.replace(":9464", f":{port}") for a in container["args"]]
assert container["ports"][0]["containerPort"] == 9464
# podman 4.3 refuses port mappings beside the host's network (Kubernetes
# takes them as what the pod serves): the pod serves on the host anyway.
assert spec["hostNetwork"]
del container["ports"]
for probe in ("readinessProbe", "livenessProbe"):
    container[probe]["tcpSocket"]["port"] = int(port)
# The Secret with the web config, certificate and key: the test's own, from
# a directory (podman 4.3 plays no Secret of its own making).
(web,) = [v for v in spec["volumes"] if v["name"] == "web"]
assert web["secret"]["secretName"] == "tracer-web"
del web["secret"]
web["hostPath"] = {"path": web_dir}
# The runtimes' state directories that this host lacks are left out (not
# made, as DirectoryOrCreate would): this host runs podman, whose graph
# root (container names) is added.
absent = {
    v["name"]
    for v in spec.get("volumes", [])
    if "hostPath" in v and not os.path.isdir(v["hostPath"]["path"])
}
spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in absent]
container["volumeMounts"] = [
    m for m in container.get("volumeMounts", []) if m["name"] not in absent
]
container["volumeMounts"].append(
    {"name": "podman-storage", "mountPath": "/var/lib/containers/storage", "readOnly": True}
)
spec["volumes"].append(
    {"name": "podman-storage", "hostPath": {"path": "/var/lib/containers/storage"}}
)
# podman 4.3 ignores hostPID (the pod gets a pid namespace of its own): the
# host's /proc mounted over the pod's gives the tracer the host's pids.
# A hostPath volume (node_exporter's /host/proc convention, but where the
# tracer looks).
mounts = container.setdefault("volumeMounts", [])
volumes = spec.setdefault("volumes", [])
mounts.append({"name": "host-proc", "mountPath": "/proc"})
volumes.append({"name": "host-proc", "hostPath": {"path": "/proc"}})
# The test's binary is the release build (dynamically linked), not the
# static one `cargo xtask dist` puts in the image: the host's libraries,
# read only.
for path in ("/lib", "/lib64", "/usr"):
    volume = "host" + path.replace("/", "-")
    mounts.append({"name": volume, "mountPath": path, "readOnly": True})
    volumes.append({"name": volume, "hostPath": {"path": path}})
# podman 4.3 reads the seccomp profile from the annotation of the time.
annotations = dict(template["metadata"].get("annotations", {}))
profile = container["securityContext"]["seccompProfile"]["type"]
if profile == "Unconfined":
    annotations["seccomp.security.alpha.kubernetes.io/pod"] = "unconfined"

pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": name,
        "labels": template["metadata"]["labels"],
        "annotations": annotations,
    },
    "spec": spec,
}
yaml.safe_dump(pod, sys.stdout, sort_keys=False)
