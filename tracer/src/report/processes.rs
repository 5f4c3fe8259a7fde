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
    /// `null` when not known. [`spawned_line`] picks the caller's line out
    /// of it (past the frames inside `subprocess`, `threading`...).
    #[serde(with = "crate::frame::as_text::option")]
    pub spawned_from: Option<Vec<Frame>>,
}

/// Standard-library modules whose frames stand between user code and a
/// fork (`subprocess.Popen`, `Thread.start`, `os.popen`, `pty.spawn`,
/// `multiprocessing`, `asyncio.create_subprocess_exec`, executors).
const SPAWNING_MODULES: [&str; 7] = [
    "subprocess",
    "threading",
    "os",
    "pty",
    "multiprocessing",
    "asyncio",
    "concurrent",
];

/// The line that spawned a child, out of the frames of its fork (innermost
/// first): the innermost frame not inside the standard library's spawning
/// modules (`subprocess`, `threading`, `os`...) nor their native code
/// ([`native_machinery`]) and resolved, else the innermost one. With
/// native frames, a C extension that called `fork()` is that line.
pub fn spawned_line(frames: &[Frame]) -> Option<&Frame> {
    frames
        .iter()
        .find(|f| {
            f.is_resolved()
                && !native_machinery(f)
                && !f
                    .stdlib_module()
                    .is_some_and(|m| SPAWNING_MODULES.contains(&m))
        })
        .or(frames.first())
}

/// A native frame between a spawning line and the kernel that is no
/// program's own: the C library's (`fork`, `_Fork`, `posix_spawn`), the
/// interpreter's (`os.fork`, a built-in `_posixsubprocess`), the standard
/// library's extension modules (`lib-dynload`), and code in no file.
fn native_machinery(frame: &Frame) -> bool {
    if !frame.native {
        return false;
    }
    let file = frame.file.rsplit('/').next().unwrap_or(&frame.file);
    crate::native::is_system(&frame.file)
        || ["python", "libpython", "["]
            .iter()
            .any(|p| file.starts_with(p))
        || frame.file.contains("/lib-dynload/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(list: &[&str]) -> Vec<Frame> {
        list.iter().map(|f| Frame::parse(f).unwrap()).collect()
    }

    fn line(frames: &[Frame]) -> Option<String> {
        spawned_line(frames).map(Frame::to_string)
    }

    #[test]
    fn spawned_line_skips_the_spawning_machinery() {
        let popen = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "spawn (/abs/wl.py:7)",
            "<module> (/abs/wl.py:12)",
        ]);
        assert_eq!(line(&popen), Some("spawn (/abs/wl.py:7)".into()));
        // os.popen -> subprocess.Popen: the caller of os.popen.
        let os_popen = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "popen (<frozen os>:1016)",
            "list_files (/abs/app.py:30)",
        ]);
        assert_eq!(line(&os_popen), Some("list_files (/abs/app.py:30)".into()));
        let thread = frames(&[
            "Thread.start (/usr/lib/python3.11/threading.py:957)",
            "start_workers (/abs/app.py:40)",
        ]);
        assert_eq!(line(&thread), Some("start_workers (/abs/app.py:40)".into()));
        // An unreadable frame is not a line.
        let unresolved = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "<code 0x55aa> (?:0)",
            "main (/abs/app.py:3)",
        ]);
        assert_eq!(line(&unresolved), Some("main (/abs/app.py:3)".into()));
        // Only machinery (the user frames were deeper than the 4 kept):
        // the innermost frame.
        let deep = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "run (/usr/lib/python3.11/subprocess.py:548)",
            "check_output (/usr/lib/python3.11/subprocess.py:466)",
        ]);
        assert_eq!(
            line(&deep),
            Some("Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)".into())
        );
        // Direct os.fork() from user code.
        assert_eq!(
            line(&frames(&["main (/abs/app.py:9)"])),
            Some("main (/abs/app.py:9)".into())
        );
        assert_eq!(spawned_line(&[]), None);
    }

    #[test]
    fn a_c_extension_that_forks_is_the_spawned_line() {
        let c = frames(&[
            "_Fork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "__fork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "tracer_test_fork_child [/tmp/spin.cpython-311-x86_64-linux-gnu.so]",
            "PyObject_Vectorcall [/usr/bin/python3.11]",
            "fork_in_c (/abs/app.py:25)",
        ]);
        assert_eq!(
            line(&c),
            Some("tracer_test_fork_child [/tmp/spin.cpython-311-x86_64-linux-gnu.so]".into())
        );
        // os.fork() and subprocess: the interpreter's and the standard
        // library's C code is machinery, the Python line spawned it.
        let os_fork = frames(&[
            "_Fork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "python3.11+0x673f20 [/usr/bin/python3.11]",
            "spawn (/abs/app.py:30)",
        ]);
        assert_eq!(line(&os_fork), Some("spawn (/abs/app.py:30)".into()));
        let popen = frames(&[
            "vfork [/usr/lib/x86_64-linux-gnu/libc.so.6]",
            "do_fork_exec [/usr/lib/python3.12/lib-dynload/_posixsubprocess.cpython-312-x86_64-linux-gnu.so]",
            "PyObject_Vectorcall [/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0]",
            "Popen._execute_child (/usr/lib/python3.12/subprocess.py:1883)",
            "spawn (/abs/app.py:7)",
        ]);
        assert_eq!(line(&popen), Some("spawn (/abs/app.py:7)".into()));
    }
}
