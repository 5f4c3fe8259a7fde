//! The processes and zombies sections: every traced process, every child
//! that exited, and the Python line that spawned it.

use serde::{Deserialize, Serialize};

use super::EventStack;
use crate::frame::Frame;

/// One traced process (see docs/report-schema-signals.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessInfo {
    /// Host pid.
    pub pid: u32,
    /// Its pid in its own pid namespace (equal to `pid` outside
    /// containers); `null` when unknown (it exited and was released before
    /// it could be read, on a kernel without the needed BTF).
    #[serde(default)]
    pub ns_pid: Option<u32>,
    pub ppid: u32,
    /// The name at exit (or now), after any `exec`.
    pub comm: String,
    /// The arguments of its last `exec` (a forked child without exec: its parent's).
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    /// The signal that killed it ("SIGKILL"), if one did.
    pub exit_signal: Option<String>,
    pub exit_signo: Option<i32>,
    /// `"oom_killer"`: the OOM killer's SIGKILL killed it (its kill is in
    /// `memory.oom_kills`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_by: Option<String>,
    pub core_dumped: bool,
    /// Seconds since tracing started (`null`: before it started / not yet).
    pub start_s: Option<f64>,
    pub exec_s: Option<f64>,
    pub exit_s: Option<f64>,
    /// Threads it had during the trace, the main one included.
    pub threads: u32,
    /// The launched command or the `--pid` target (not a followed child).
    pub traced_from_start: bool,
    /// The Python stack of the parent's thread when it forked this process
    /// (the `subprocess.Popen(...)` line and its callers), one entry with
    /// `samples` 1; empty when the parent was not the sampled Python process
    /// or its thread was not known yet.
    #[serde(default)]
    pub python_stacks: Vec<EventStack>,
    /// The container it runs in, from its cgroup path and the runtime's
    /// state; `null` on the host.
    #[serde(default)]
    pub container: Option<Container>,
    /// The line that spawned it, as an index into `python_stacks[0].frames`:
    /// the caller past the standard library's spawning machinery (set by
    /// analysis); `null` when there is no stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawned_line: Option<usize>,
}

/// A container, as its cgroup path and its runtime's own state name it.
/// Every field but `id` and `runtime` is `null` where neither says it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Container {
    /// The runtime's full id (64 hex digits for podman, docker, containerd, CRI-O).
    pub id: String,
    /// "podman", "docker", "containerd", "cri-o", or what the cgroup path says.
    pub runtime: String,
    /// The container's name (`podman run --name`, the Kubernetes container name).
    pub name: Option<String>,
    /// The Kubernetes pod's uid (from the `kubepods` cgroup path).
    pub pod_uid: Option<String>,
    /// The Kubernetes pod's name and namespace (from the runtime's state).
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

impl ProcessInfo {
    /// The line that spawned it (`spawned_line`'s frame).
    pub fn spawning_frame(&self) -> Option<&Frame> {
        self.python_stacks.first()?.frames.get(self.spawned_line?)
    }
}

impl Container {
    /// The id as `podman ps` and `docker ps` show it: its first 12 digits.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// `tr-probe (podman 88f77ad08040)`, `app in pod shop/web-0
    /// (containerd 88f77ad08040)`, `88f77ad08040 (docker)` when unnamed.
    pub fn describe(&self) -> String {
        let pod = match (&self.pod, &self.namespace, &self.pod_uid) {
            (Some(pod), Some(ns), _) => format!(" in pod {ns}/{pod}"),
            (Some(pod), None, _) => format!(" in pod {pod}"),
            (None, _, Some(uid)) => format!(" in pod {uid}"),
            (None, _, None) => String::new(),
        };
        match &self.name {
            Some(name) => format!("{name}{pod} ({} {})", self.runtime, self.short_id()),
            None => format!("{}{pod} ({})", self.short_id(), self.runtime),
        }
    }
}

/// A traced child that exited: how long it was a zombie, who reaped it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Zombie {
    pub pid: u32,
    /// Its pid in its own pid namespace (as `processes[].ns_pid`).
    #[serde(default)]
    pub ns_pid: Option<u32>,
    pub ppid: u32,
    pub comm: String,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    pub core_dumped: bool,
    /// When it exited, seconds since tracing started (`null`: before).
    pub exit_s: Option<f64>,
    /// Exit to reap (or to the end of the trace when still a zombie).
    pub zombie_ns: u64,
    pub reaped_by: Option<u32>,
    pub reaped_by_comm: Option<String>,
    /// "wait4" | "waitid" (by its parent) | "autoreap" | "init" | "still_zombie".
    pub reaped_how: String,
    /// The kernel's result for the SIGCHLD its exit sent the parent
    /// ("ignored", "delivered"...); `null`: no SIGCHLD seen.
    pub sigchld: Option<String>,
    /// The parent got SIGCHLD and made no wait call after it while this
    /// child stayed a zombie.
    pub sigchld_unanswered: bool,
    /// wait4/waitid calls the parent made during the whole trace.
    pub parent_wait_calls: u64,
    /// Already a zombie when tracing started (found in /proc).
    pub pre_existing: bool,
    /// Pre-existing zombies: time since the process started (an upper bound).
    pub age_ns: Option<u64>,
    /// The Python stack that forked it, innermost first, as `"func
    /// (file:line)"` (the same frames as its `processes[].python_stacks`);
    /// `null` when not known.
    #[serde(with = "crate::frame::as_text::option")]
    pub spawned_from: Option<Vec<Frame>>,
    /// The line that spawned it, as an index into `spawned_from` (as
    /// `processes[].spawned_line`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawned_line: Option<usize>,
}

impl Zombie {
    /// The line that spawned it (`spawned_line`'s frame).
    pub fn spawning_frame(&self) -> Option<&Frame> {
        self.spawned_from.as_ref()?.get(self.spawned_line?)
    }
}
