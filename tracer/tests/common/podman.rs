//! Real podman containers for the end-to-end tests: no image, no registry;
//! `--rootfs` takes one of the Debian roots `cargo xtask test` makes. This
//! VM's cgroups are hybrid, which crun refuses: runc, with explicit ulimits.
//! A [`Container`] is removed (`podman rm -f`) when dropped, panics included.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    time::Duration,
};

use super::{Scratch, workload};

/// How long the container may take to say ready (a failure's limit, not a
/// timing assertion: it takes about a second).
const READY_LIMIT: Duration = Duration::from_secs(60);

/// The Debian sid root (CPython 3.14): `$TRACER_PY314_ROOT`, else the cache.
pub fn sid_root() -> PathBuf {
    if let Ok(why) = std::env::var("TRACER_PY314_ROOT_ERROR") {
        panic!("`cargo xtask test` could not make the Debian sid root: {why}");
    }
    let root = std::env::var_os("TRACER_PY314_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/tracer-tests/sid-python3.14".into());
    assert!(
        root.join("usr/bin/python3.14").exists(),
        "no usr/bin/python3.14 in {}: `cargo xtask test` (or `cargo xtask chroots`) makes it",
        root.display()
    );
    root
}

/// A container name no other test (or run of this one) uses at the same time.
pub fn unique_name(test: &str) -> String {
    format!("tracer-{test}-{}", std::process::id())
}

/// `podman ARGS...`, which must succeed; its standard output, trimmed.
pub fn podman(args: &[&str]) -> String {
    let output = Command::new("podman")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run podman (apt-get install podman runc): {e}"));
    assert!(
        output.status.success(),
        "podman {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A running container.
pub struct Container {
    pub name: String,
    /// The full id (64 hex digits).
    pub id: String,
    /// Its init process (the command), as the host numbers it.
    pub pid: u32,
}

impl Container {
    /// `podman --runtime runc run -d --name NAME --ulimit ... EXTRA...
    /// --rootfs ROOT COMMAND...`; `extra`: more podman options (`-v
    /// HOST:CONTAINER`, `--pid=host`...). Returns once podman says it runs.
    pub fn run(name: &str, root: &Path, extra: &[&str], command: &[&str]) -> Self {
        // A leftover of a killed run of the same test process id.
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", name])
            .output();
        let root = root.to_string_lossy();
        let mut args = vec![
            "--runtime",
            "runc",
            "run",
            "-d",
            "--name",
            name,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ];
        args.extend(extra);
        args.extend(["--rootfs", &root]);
        args.extend(command);
        // Removed on drop from here on, whatever goes wrong next (podman
        // may have created it before failing to start it).
        let mut container = Self {
            name: name.to_owned(),
            id: String::new(),
            pid: 0,
        };
        container.id = podman(&args);
        assert!(
            container.id.len() == 64 && container.id.bytes().all(|b| b.is_ascii_hexdigit()),
            "podman run printed {:?}, not an id",
            container.id
        );
        let pid = container.inspect("{{.State.Pid}}");
        container.pid = pid
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .unwrap_or_else(|| panic!("{name}: no host pid ({pid:?}): {}", container.logs()));
        container
    }

    /// tests/workloads/container_probe.py in a fresh container (sid's
    /// CPython 3.14, the scratch directory mounted at /t), ready: its
    /// FIFOs made, its "ready" read. [`Container::say_go`] starts its work.
    pub fn start_probe(scratch: &Scratch, test: &str) -> Self {
        for fifo in ["ready", "go"] {
            let made = Command::new("mkfifo").arg(scratch.path(fifo)).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo {fifo}");
        }
        std::fs::copy(workload("container_probe.py"), scratch.path("wl.py")).unwrap();
        let mount = format!("{}:/t", scratch.dir.display());
        let container = Self::run(
            &unique_name(test),
            &sid_root(),
            &["-v", &mount],
            &["python3.14", "-B", "/t/wl.py", "/t"],
        );
        // Opening a FIFO blocks until the other end opens it: in a thread, so
        // a container that never starts fails the test instead of hanging it.
        let (tx, rx) = mpsc::channel();
        let ready = scratch.path("ready");
        std::thread::spawn(move || {
            let mut line = String::new();
            let file = std::fs::File::open(ready).unwrap();
            let _ = BufReader::new(file).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(READY_LIMIT)
            .unwrap_or_else(|_| panic!("the container never said ready:\n{}", container.logs()));
        // Its own pid namespace: it is pid 1 there.
        assert_eq!(line.trim(), "ready 1", "{}", container.logs());
        container
    }

    /// Tells a [`Container::start_probe`] workload to go.
    pub fn say_go(scratch: &Scratch) {
        let mut go = std::fs::OpenOptions::new()
            .write(true)
            .open(scratch.path("go"))
            .unwrap();
        go.write_all(b"go\n").unwrap();
    }

    /// `podman inspect -f FORMAT NAME`.
    pub fn inspect(&self, format: &str) -> String {
        podman(&["inspect", "-f", format, &self.name])
    }

    /// The first 12 digits of its id, as `podman ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// What its processes wrote to their standard output and error.
    pub fn logs(&self) -> String {
        Command::new("podman")
            .args(["logs", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default()
    }

    /// Waits for it to stop; its exit code.
    pub fn wait(&self) -> i32 {
        let code = podman(&["wait", &self.name]);
        code.parse()
            .unwrap_or_else(|_| panic!("podman wait said {code:?}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}
