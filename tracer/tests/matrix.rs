//! The interpreter matrix: the same calibrated workloads, with the same
//! exact figures, on every CPython this machine can run end to end:
//!
//! | interpreter              | build                 | where                                  |
//! |--------------------------|-----------------------|----------------------------------------|
//! | Debian bullseye 3.9.2    | static `python3.9`    | debootstrap root (`TRACER_PY39_ROOT`)  |
//! | Debian bookworm 3.11.2   | static `python3.11`   | the host's `/usr/bin/python3.11`       |
//! | pyenv 3.11.7             | shared `libpython`    | the host's `/root/.pyenv`              |
//! | Debian trixie 3.13.5     | static `python3.13`   | debootstrap root (`TRACER_PY313_ROOT`) |
//! | the same, debug build    | static `python3.13d`  | the trixie root (package python3.13-dbg) |
//! | Debian sid 3.14.x        | static `python3.14`   | debootstrap root (`TRACER_PY314_ROOT`) |
//!
//! `cargo xtask test` makes the roots once (cached in /var/cache/tracer-tests)
//! and passes their directories in the variables above; a root it could not
//! make is passed as `<VAR>_ERROR` and the tests that need it fail with that
//! reason. Nothing is skipped.
//!
//! Workloads, one test each per interpreter (`<interpreter>::<workload>`):
//! - `calibrated_hotspots`: 70/30 CPU shares within 5 points, `main;outer;inner`
//!   in folded output (rooted interpreters under plain `chroot`);
//! - `proc_reads`: 37 `os.read` of /proc/self/stat, 40 buffered openings of
//!   /proc/self/status in the request size that version really uses (1 KiB,
//!   or 128 KiB from 3.14 on: gh-117151), exact syscall counts;
//! - `proc_reads_agree_with_strace`: the same run seen by strace and by the
//!   tracer (which follows strace's child: the Python process);
//! - `signals`: 25 `kill` + 3 `pthread_kill` SIGUSR1 to a Python handler;
//! - `zombies`: Popen children never waited for, and the `Popen` line;
//! - `container_attach` / `container_launch`: the interpreter as pid 1 of
//!   its own pid namespace and root (`unshare --pid --fork --mount
//!   --mount-proc --root=ROOT`), traced by host pid and by launching
//!   `unshare` (the tracer follows its child);
//! - `text_names_the_interpreter`: the text report's PYTHON line and pids.
//!
//! The rooted interpreters run with `unshare --mount --mount-proc
//! --root=ROOT` (their own root and a /proc; the host's pid namespace) unless
//! said otherwise: a plain `chroot` has no /proc inside.
//!
//! Run: sudo -E cargo test --release -p tracer --test matrix -- --test-threads=1

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::{
    Proc, Scratch, assert_complete, assert_exit, attach_tracer, calibrated, entry, load_json,
    parse_strace, pid_of, read_syscalls_of, require_root, signal_groups, trace_command, tracer,
    u64_of, zombie,
};
use serde_json::{Value, json};

/// One interpreter of the matrix.
struct Interpreter {
    /// The test module's name, for messages.
    name: &'static str,
    /// Debian root: (variable `cargo xtask test` sets, its default directory).
    root: Option<(&'static str, &'static str)>,
    /// The interpreter as the process sees it (inside its root).
    python: &'static str,
    /// The version it must report: a prefix ("3.9.") or exact ("3.11.7").
    version: &'static str,
    /// The ELF holding the interpreter, as the process sees it.
    binary: &'static str,
    /// "static" or "shared".
    linkage: &'static str,
    /// A debug build (`--with-pydebug`).
    debug: bool,
    /// A free-threaded build (`--disable-gil`).
    free_threaded: bool,
    /// The request size of a buffered binary read of a procfs file, as
    /// strace shows this version making it.
    proc_buffer: u64,
}

const BULLSEYE_3_9: Interpreter = Interpreter {
    name: "Debian bullseye CPython 3.9",
    root: Some((
        "TRACER_PY39_ROOT",
        "/var/cache/tracer-tests/bullseye-python3.9",
    )),
    python: "/usr/bin/python3.9",
    version: "3.9.",
    binary: "/usr/bin/python3.9",
    linkage: "static",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

const HOST_STATIC_3_11: Interpreter = Interpreter {
    name: "Debian /usr/bin/python3.11 (static)",
    root: None,
    python: "/usr/bin/python3.11",
    version: "3.11.",
    binary: "/usr/bin/python3.11",
    linkage: "static",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

const PYENV_SHARED_3_11: Interpreter = Interpreter {
    name: "pyenv CPython 3.11.7 (shared libpython)",
    root: None,
    python: "/root/.pyenv/versions/3.11.7/bin/python3.11",
    version: "3.11.7",
    binary: "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
    linkage: "shared",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

const TRIXIE_3_13: Interpreter = Interpreter {
    name: "Debian trixie CPython 3.13",
    root: Some((
        "TRACER_PY313_ROOT",
        "/var/cache/tracer-tests/trixie-python3.13",
    )),
    python: "/usr/bin/python3.13",
    version: "3.13.",
    binary: "/usr/bin/python3.13",
    linkage: "static",
    debug: false,
    free_threaded: false,
    proc_buffer: 1024,
};

/// Debian's debug build of 3.13 (package python3.13-dbg, in the trixie root).
const TRIXIE_3_13_DEBUG: Interpreter = Interpreter {
    name: "Debian trixie CPython 3.13 debug build",
    python: "/usr/bin/python3.13d",
    binary: "/usr/bin/python3.13d",
    debug: true,
    ..TRIXIE_3_13
};

const SID_3_14: Interpreter = Interpreter {
    name: "Debian sid CPython 3.14",
    root: Some((
        "TRACER_PY314_ROOT",
        "/var/cache/tracer-tests/sid-python3.14",
    )),
    python: "/usr/bin/python3.14",
    version: "3.14.",
    binary: "/usr/bin/python3.14",
    linkage: "static",
    debug: false,
    free_threaded: false,
    // gh-117151: max(min(st_blksize, 8 MiB), 128 KiB).
    proc_buffer: 131072,
};

/// CPython 3.15 (Debian sid's python3.15, in the same root as 3.14).
const SID_3_15: Interpreter = Interpreter {
    name: "Debian sid CPython 3.15",
    python: "/usr/bin/python3.15",
    version: "3.15.",
    binary: "/usr/bin/python3.15",
    ..SID_3_14
};

/// Free-threaded CPython 3.13.5 (`--disable-gil`), built from Debian
/// trixie's source by `cargo xtask test` into the cache (static).
const FREE_THREADED_3_13: Interpreter = Interpreter {
    name: "free-threaded CPython 3.13",
    root: None,
    python: "/var/cache/tracer-tests/python3.13t/bin/python3.13t",
    version: "3.13.5",
    binary: "/var/cache/tracer-tests/python3.13t/bin/python3.13t",
    linkage: "static",
    debug: false,
    free_threaded: true,
    proc_buffer: 1024,
};

/// How the interpreter is started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// `chroot ROOT python` (no /proc inside: CPU-only workloads).
    Chroot,
    /// `unshare --mount --mount-proc --root=ROOT python`: its own root and
    /// /proc, the host's pid namespace. Host interpreters: `python` itself.
    MountNs,
    /// A container: `unshare --pid --fork --mount --mount-proc [--root=ROOT]
    /// python`, the interpreter is pid 1 of its own namespace, a child of
    /// `unshare`.
    PidNs,
}

impl Interpreter {
    /// Its Debian root, which must be there: `cargo xtask test` makes it.
    fn root_dir(&self) -> Option<PathBuf> {
        let (env, default) = self.root?;
        if let Ok(why) = std::env::var(format!("{env}_ERROR")) {
            panic!(
                "{}: `cargo xtask test` could not make its Debian root: {why}",
                self.name
            );
        }
        let dir = std::env::var_os(env)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        let python = dir.join(self.python.trim_start_matches('/'));
        assert!(
            python.exists(),
            "{}: no {} in {}: `cargo xtask test` (or `cargo xtask chroots`) makes this root \
             with debootstrap, or set {env} to one",
            self.name,
            self.python,
            dir.display()
        );
        Some(dir)
    }

    /// `python -B ARGS...` started as `launch` says.
    fn command(&self, launch: Launch, args: &[&str]) -> Vec<String> {
        if self.root.is_none() {
            assert!(
                Path::new(self.python).exists(),
                "{}: {} is missing",
                self.name,
                self.python
            );
        }
        let mut command: Vec<String> = match (self.root_dir(), launch) {
            (None, Launch::Chroot | Launch::MountNs) => vec![],
            (None, Launch::PidNs) => strings(&["unshare", "--pid", "--fork", "--mount-proc"]),
            (Some(root), Launch::Chroot) => vec!["chroot".into(), root.display().to_string()],
            (Some(root), Launch::MountNs) => {
                let mut c = strings(&["unshare", "--mount", "--mount-proc"]);
                c.push(format!("--root={}", root.display()));
                c
            }
            (Some(root), Launch::PidNs) => {
                let mut c = strings(&["unshare", "--pid", "--fork", "--mount", "--mount-proc"]);
                c.push(format!("--root={}", root.display()));
                c
            }
        };
        command.push(self.python.into());
        command.push("-B".into());
        command.extend(args.iter().map(|a| a.to_string()));
        command
    }
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// One test's workload files where the interpreter can reach them: under
/// ROOT/tmp/tracer-tests/TEST for a rooted interpreter, in the test's
/// scratch directory otherwise. Paths are given as the process sees them.
struct Files {
    /// ROOT, or "" for host interpreters.
    root: String,
    /// The directory as the process sees it.
    inside: String,
}

impl Files {
    fn new(interpreter: &Interpreter, test: &str, scratch: &Scratch) -> Self {
        let (root, inside) = match interpreter.root_dir() {
            Some(root) => (
                root.display().to_string(),
                format!("/tmp/tracer-tests/{test}"),
            ),
            None => (String::new(), scratch.subdir("files")),
        };
        let files = Self { root, inside };
        let host = files.host(&files.inside);
        if files.root.is_empty() {
            std::fs::create_dir_all(&host).unwrap();
        } else {
            let _ = std::fs::remove_dir_all(&host);
            std::fs::create_dir_all(&host)
                .unwrap_or_else(|e| panic!("creating {}: {e}", host.display()));
        }
        files
    }

    /// Copies the workload into place; returns its path as the process sees it.
    fn script(&self, name: &str) -> String {
        let inside = format!("{}/{name}", self.inside);
        std::fs::copy(common::workload(name), self.host(&inside))
            .unwrap_or_else(|e| panic!("copying {name} into {}: {e}", self.inside));
        inside
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.inside)
    }

    /// A path as the process sees it -> as the test sees it.
    fn host(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("{}{inside}", self.root))
    }

    fn load(&self, inside: &str) -> Value {
        load_json(&self.host(inside).display().to_string())
    }
}

/// The interpreter the report names: version, binary as the process sees it,
/// static or shared, release build, its root.
fn check_interpreter(report: &Value, interpreter: &Interpreter, files: &Files) {
    let py = &report["python"];
    assert_eq!(py["status"], "sampled", "{}: {py:#}", interpreter.name);
    let version = py["version"].as_str().unwrap();
    assert!(
        version.starts_with(interpreter.version) && version.matches('.').count() == 2,
        "{}: version {version}, expected {}* with its patch level",
        interpreter.name,
        interpreter.version
    );
    assert_eq!(py["binary"], interpreter.binary, "{}", interpreter.name);
    assert_eq!(py["linkage"], interpreter.linkage, "{}", interpreter.name);
    assert_eq!(py["debug_build"], interpreter.debug, "{}", interpreter.name);
    assert_eq!(
        py["free_threaded"], interpreter.free_threaded,
        "{}",
        interpreter.name
    );
    let root = if files.root.is_empty() {
        Value::Null
    } else {
        Value::from(files.root.clone())
    };
    assert_eq!(py["root"], root, "{}", interpreter.name);
}

/// The process of the report whose pid is `pid` (host pid).
fn process(report: &Value, pid: u64) -> &Value {
    common::process(report, pid)
}

/// 1-based line of the first line of `script` (host path) containing `needle`.
fn line_of(script: &Path, needle: &str) -> u64 {
    let text = std::fs::read_to_string(script).unwrap();
    let index = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in {}", script.display()));
    index as u64 + 1
}

// ---------------------------------------------------------------------------
// Workloads: one function each, taking the interpreter.

/// 70/30 CPU shares within 5 points and the folded chain `main;outer;inner`.
fn calibrated_hotspots(interpreter: &Interpreter) {
    require_root();
    let test = format!("calibrated-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_calibrated.py");
    let out = files.path("workload.json");
    let folded = scratch.path("stacks.folded");
    let report = trace_command(
        &scratch,
        &["--rate", calibrated::RATE, "--folded", &folded],
        &interpreter.command(Launch::Chroot, &[&script, &out, calibrated::SECONDS]),
    );
    check_interpreter(&report, interpreter, &files);
    let run = calibrated::Run {
        folded: std::fs::read_to_string(&folded).unwrap(),
        workload: files.load(&out),
        dir: scratch.dir.clone(),
        report,
    };
    calibrated::check_calibrated(&run, interpreter.version, &script);
}

/// What the report must say about matrix_proc.py's reads: exact syscall
/// counts, the request sizes this version uses, bytes.
fn check_proc_reads(report: &Value, facts: &Value, interpreter: &Interpreter) {
    let pid = u64_of(&facts["pid"]);
    assert_eq!(facts["version"], report["python"]["version"]);
    // 37 x os.read(fd, 4096): the same on every version.
    let stat = entry(report, pid, "/proc/self/stat");
    assert_eq!(stat["syscalls"], 37, "{stat:#}");
    assert_eq!(stat["request_sizes"], json!({"4096": 37}), "{stat:#}");
    assert_eq!(stat["by_syscall"], json!({"read": 37}));
    assert_eq!(stat["opens"], 1);
    assert_eq!(stat["bytes"], facts["stat_bytes"]);
    assert_eq!(
        (&stat["fs"], &stat["blksize"]),
        (&json!("proc"), &json!(1024))
    );
    // 40 buffered openings: each takes ceil(bytes / buffer) reads that
    // return data plus the one that sees end of file, all of one size.
    let status = entry(report, pid, "/proc/self/status");
    let buffer = interpreter.proc_buffer;
    let sizes: Vec<u64> = facts["status_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(u64_of)
        .collect();
    assert_eq!(sizes.len(), 40);
    let syscalls: u64 = sizes.iter().map(|n| n.div_ceil(buffer) + 1).sum();
    assert_eq!(status["opens"], 40, "{status:#}");
    assert_eq!(
        status["request_sizes"],
        json!({ buffer.to_string(): syscalls }),
        "{}: buffered reads of /proc/self/status (st_blksize {})",
        interpreter.name,
        facts["status_blksize"]
    );
    assert_eq!(status["syscalls"], syscalls);
    assert_eq!(status["bytes"], sizes.iter().sum::<u64>());
    assert_eq!(status["blksize"], facts["status_blksize"]);
}

/// Exact /proc read counts in the request sizes the version really uses.
fn proc_reads(interpreter: &Interpreter) {
    require_root();
    let test = format!("proc-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_proc.py");
    let out = files.path("facts.json");
    let report = trace_command(
        &scratch,
        &[],
        &interpreter.command(Launch::MountNs, &[&script, &out]),
    );
    assert_complete(&report);
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    // No pid namespace: the pid it sees is the host pid, and it is the target.
    assert_eq!(report["target"]["pid"], facts["pid"]);
    assert_eq!(report["target"]["ns_pid"], facts["pid"]);
    check_proc_reads(&report, &facts, interpreter);
}

/// The same run seen by strace and by the tracer (which traces strace and
/// follows it to the Python process): every read of the workload's /proc
/// files, with the same sizes and bytes. This is where `proc_buffer` comes
/// from: what the version really asks for, not what the docs say.
fn proc_reads_agree_with_strace(interpreter: &Interpreter) {
    require_root();
    assert!(
        Path::new("/usr/bin/strace").exists(),
        "strace is missing (cargo xtask setup installs it)"
    );
    let test = format!("strace-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_proc.py");
    let out = files.path("facts.json");
    let log = scratch.path("strace.log");
    let mut command = strings(&[
        "/usr/bin/strace",
        "-f",
        "-y",
        "-s",
        "8",
        "-e",
        "trace=read,pread64,readv,preadv,preadv2",
        "-o",
        &log,
    ]);
    command.extend(interpreter.command(Launch::MountNs, &[&script, &out]));
    let report = trace_command(&scratch, &[], &command);
    assert_complete(&report);
    let facts = files.load(&out);
    let pid = u64_of(&facts["pid"]);
    assert_ne!(report["target"]["pid"], pid, "the target is strace");
    // The Python process was found below the target.
    assert_eq!(report["python"]["pid"], pid, "{:#}", report["python"]);
    check_interpreter(&report, interpreter, &files);
    check_proc_reads(&report, &facts, interpreter);

    let log = std::fs::read_to_string(&log).unwrap();
    let reads: Vec<_> = parse_strace(&log)
        .into_iter()
        .filter(|r| r.pid == pid)
        .collect();
    let tracer_total = read_syscalls_of(&report, pid);
    assert_eq!(
        tracer_total,
        reads.len() as u64,
        "{}: strace saw {} read syscalls in pid {pid}, the tracer {tracer_total}",
        interpreter.name,
        reads.len()
    );
    // strace -y shows the tracer's view: ROOT/proc/PID/status.
    for file in ["stat", "status"] {
        let suffix = format!("/proc/{pid}/{file}");
        let mine: Vec<_> = reads.iter().filter(|r| r.path.ends_with(&suffix)).collect();
        assert!(!mine.is_empty(), "strace saw no reads of {suffix}:\n{log}");
        let mut sizes = std::collections::BTreeMap::<String, u64>::new();
        for r in &mine {
            *sizes.entry(r.request.to_string()).or_default() += 1;
        }
        let bytes: i64 = mine.iter().map(|r| r.ret.max(0)).sum();
        let got = entry(&report, pid, &format!("/proc/self/{file}"));
        assert_eq!(got["syscalls"], mine.len(), "{file}: strace vs tracer");
        assert_eq!(
            got["request_sizes"],
            json!(sizes),
            "{file}: strace vs tracer"
        );
        assert_eq!(got["bytes"], bytes, "{file}: strace vs tracer");
    }
}

/// 25 SIGUSR1 by kill() and 3 by pthread_kill() to a Python handler.
fn signals(interpreter: &Interpreter) {
    require_root();
    let test = format!("signals-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("signals_self.py");
    let out = files.path("facts.json");
    let report = trace_command(
        &scratch,
        &[],
        &interpreter.command(Launch::MountNs, &[&script, &out]),
    );
    assert_complete(&report);
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    let pid = pid_of(&facts["pid"]);
    let (n, t) = (u64_of(&facts["sent"]), u64_of(&facts["sent_to_thread"]));
    assert_eq!((n, t), (25, 3));
    assert_eq!(u64_of(&facts["handled"]), n + t);
    let groups = signal_groups(&report, "SIGUSR1", pid);
    assert_eq!(groups.len(), 2, "{groups:#?}");
    for (code, syscall, count) in [("SI_USER", "kill", n), ("SI_TKILL", "tgkill", t)] {
        let g = groups
            .iter()
            .find(|g| g["code"] == code)
            .unwrap_or_else(|| panic!("no {code} group: {groups:#?}"));
        assert_eq!(g["syscall"], syscall);
        assert_eq!(g["sender"]["pid"], pid);
        assert_eq!(u64_of(&g["generated"]), count, "{code}: {g:#}");
        assert_eq!(u64_of(&g["delivered"]), count, "{code}: {g:#}");
        assert_eq!(u64_of(&g["ignored"]), 0);
        assert_eq!(u64_of(&g["pending_at_end"]), 0);
        assert_eq!(g["disposition"], "handler");
        assert_eq!(u64_of(&g["dispositions"]["handler"]), count);
    }
    assert_eq!(u64_of(&report["signal_log"]["total"]), 2 * (n + t));
}

/// Popen children never waited for: K zombies until the parent leaves, each
/// spawned from the Popen line in spawn().
fn zombies(interpreter: &Interpreter) {
    require_root();
    let test = format!("zombies-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_zombies.py");
    let out = files.path("facts.json");
    let report = trace_command(
        &scratch,
        &[],
        &interpreter.command(Launch::MountNs, &[&script, &out]),
    );
    assert_complete(&report);
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    let parent = pid_of(&facts["parent"]);
    let sleep_ns = u64_of(&facts["sleep_ns"]);
    let children: Vec<u64> = facts["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(pid_of)
        .collect();
    assert_eq!(children.len(), 3);
    assert_eq!(
        report["processes"].as_array().unwrap().len(),
        1 + children.len(),
        "{:#}",
        report["processes"]
    );
    assert_eq!(
        report["zombies"].as_array().unwrap().len(),
        children.len(),
        "{:#}",
        report["zombies"]
    );
    // The Popen line, as the process sees its file.
    let line = line_of(&files.host(&script), "subprocess.Popen(");
    let popen = format!("spawn ({script}:{line})");
    for &child in &children {
        let p = process(&report, child);
        assert_eq!((&p["ppid"], &p["comm"]), (&json!(parent), &json!("true")));
        assert_eq!(p["exit_code"], 0);
        assert_eq!(p["ns_pid"], child, "no pid namespace here");
        let z = zombie(&report, child);
        assert_eq!(z["ppid"], parent);
        assert_eq!(z["exit_code"], 0);
        assert!(u64_of(&z["zombie_ns"]) >= sleep_ns, "{z:#}");
        assert_eq!(u64_of(&z["parent_wait_calls"]), 0, "{z:#}");
        assert!(z["sigchld"].is_string(), "{z:#}");
        assert_eq!(z["sigchld_unanswered"], true, "{z:#}");
        let how = z["reaped_how"].as_str().unwrap();
        assert!(how == "still_zombie" || how == "init", "{how}");
        // Each zombie carries the stack of its own fork: Popen's frames
        // (innermost first), then the line in spawn().
        let frames = z["spawned_from"]
            .as_array()
            .unwrap_or_else(|| panic!("zombie {child} has no spawned_from: {z:#}"));
        assert!(frames.contains(&json!(popen)), "{popen} not in {z:#}");
        assert!(
            frames[0].as_str().unwrap().contains("subprocess.py:"),
            "{frames:#?}"
        );
        assert_eq!(p["python_stacks"][0]["frames"], z["spawned_from"]);
    }
    // ... and python.forks counts all K on that line.
    let forks = report["python"]["forks"].as_array().unwrap();
    let from_line: u64 = forks
        .iter()
        .filter(|s| s["frames"].as_array().unwrap().contains(&json!(popen)))
        .map(|s| u64_of(&s["samples"]))
        .sum();
    assert_eq!(
        from_line,
        3,
        "{} forks from {popen}: {forks:#?}",
        children.len()
    );
}

/// The container workload's figures in a report: 37 reads of
/// /proc/self/stat by the Python process (host pid `pid`), its hotspot
/// `burn` with the file and line the process sees, and its child, reaped by
/// a wait4 that returned the child's pid in the namespace.
fn check_container(report: &Value, facts: &Value, pid: u64, files: &Files, script: &str) {
    let child_ns = u64_of(&facts["child"]);
    assert!(child_ns > 1, "{facts}");
    let children: Vec<&Value> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ppid"] == pid)
        .collect();
    assert_eq!(children.len(), 1, "{children:#?}");
    let child = children[0];
    assert_eq!(child["ns_pid"], child_ns, "{child:#}");
    assert_ne!(child["pid"], child_ns);
    let z = zombie(report, u64_of(&child["pid"]));
    assert_eq!(z["reaped_how"], "wait4", "{z:#}");
    assert_eq!(z["reaped_by"], pid, "{z:#}");
    assert_eq!(z["exit_code"], 0);
    let stat = entry(report, pid, "/proc/self/stat");
    assert_eq!(stat["syscalls"], 37, "{stat:#}");
    assert_eq!(stat["request_sizes"], json!({"4096": 37}));
    assert_eq!(stat["opens"], 1);
    let py = &report["python"];
    assert_eq!(py["pid"], pid, "{py:#}");
    let burn = calibrated::hotspot(py, "burn");
    assert_eq!(burn["file"], script);
    assert_eq!(burn["line"], line_of(&files.host(script), "def burn("));
    assert_eq!(
        py["hotspots"][0]["qualname"], "burn",
        "burn is the hot function: {:#}",
        py["hotspots"]
    );
    assert!(burn["self_share"].as_f64().unwrap() >= 50.0, "{burn:#}");
}

/// `tracer --pid HOST_PID` on the interpreter running as pid 1 of its own
/// pid namespace (and root): the report has both pids.
fn container_attach(interpreter: &Interpreter) {
    require_root();
    let test = format!("attach-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_container.py");
    let out = files.path("facts.json");
    let command = interpreter.command(Launch::PidNs, &[&script, &out, "--wait"]);
    let mut container = Proc::spawn(
        Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "unshare",
    );
    let mut stdout = container.stdout_lines();
    stdout.wait_for("ready");
    // The interpreter is unshare's only child; /proc says which pid it has
    // in its namespace.
    let unshare = container.pid();
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .unwrap_or_else(|e| panic!("children of unshare {unshare}: {e}"));
    let children: Vec<u64> = children
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 1, "unshare's children: {children:?}");
    let host_pid = children[0];
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(
        nspid.split_whitespace().collect::<Vec<_>>(),
        ["NSpid:", &host_pid.to_string(), "1"],
        "the interpreter is pid 1 inside"
    );

    let report_path = scratch.path("report.json");
    let (mut tracer, mut stderr) =
        attach_tracer(host_pid as u32, &["--format", "json", "-o", &report_path]);
    let stdin = container.child.stdin.as_mut().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
    assert!(container.wait().success(), "the container workload failed");
    let status = tracer.wait();
    assert!(status.success(), "tracer: {status}\n{}", stderr.rest());
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "target exited");
    assert_complete(&report);
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    assert_eq!(facts["pid"], 1, "the workload sees itself as pid 1");
    assert_eq!(report["target"]["pid"], host_pid);
    assert_eq!(report["target"]["ns_pid"], 1);
    let root = process(&report, host_pid);
    assert_eq!(
        (&root["ns_pid"], &root["traced_from_start"]),
        (&json!(1), &json!(true))
    );
    check_container(&report, &facts, host_pid, &files, &script);
}

/// `tracer -- unshare --pid --fork ... python3.X ...`: the target is
/// unshare; the tracer follows its child, pid 1 in the new namespace, and
/// samples it.
fn container_launch(interpreter: &Interpreter) {
    require_root();
    let test = format!("launch-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_container.py");
    let out = files.path("facts.json");
    let report = trace_command(
        &scratch,
        &[],
        &interpreter.command(Launch::PidNs, &[&script, &out]),
    );
    assert_complete(&report);
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    assert_eq!(facts["pid"], 1, "the workload sees itself as pid 1");
    let unshare = u64_of(&report["target"]["pid"]);
    assert_eq!(report["target"]["comm"], "unshare");
    assert_eq!(
        report["target"]["ns_pid"], unshare,
        "unshare is on the host"
    );
    let processes = report["processes"].as_array().unwrap();
    assert_eq!(
        processes.len(),
        3,
        "unshare, python, its child: {processes:#?}"
    );
    let python = processes.iter().find(|p| p["ppid"] == unshare).unwrap();
    assert_eq!(python["ppid"], unshare);
    assert_eq!(python["ns_pid"], 1, "{python:#}");
    assert_eq!(python["exit_code"], 0);
    let host_pid = u64_of(&python["pid"]);
    assert_ne!(host_pid, 1);
    check_container(&report, &facts, host_pid, &files, &script);
}

/// The text report names the interpreter (version, binary as the process
/// sees it, static or shared, release build, its root, the child it runs
/// in) and shows the pid namespace's pids.
fn text_names_the_interpreter(interpreter: &Interpreter) {
    require_root();
    let test = format!("text-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_proc.py");
    let out = files.path("facts.json");
    let report_path = scratch.path("report.txt");
    let mut args = vec![
        "--quiet".to_owned(),
        "-o".into(),
        report_path.clone(),
        "--".into(),
    ];
    args.extend(interpreter.command(Launch::PidNs, &[&script, &out]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = tracer(&args);
    assert_exit(&output, 0);
    let report = std::fs::read_to_string(&report_path).unwrap();
    let facts = files.load(&out);
    let version = facts["version"].as_str().unwrap();
    let build = match interpreter.linkage {
        "shared" => "shared libpython",
        other => other,
    };
    let debug = if interpreter.debug {
        "debug build"
    } else {
        "release build"
    };
    let threading = if interpreter.free_threaded {
        ", free-threaded"
    } else {
        ""
    };
    let mut expected = format!(
        "PYTHON: CPython {version}, {} ({build}, {debug}{threading})",
        interpreter.binary
    );
    if !files.root.is_empty() {
        expected.push_str(&format!(" in root {}", files.root));
    }
    expected.push_str(", in child pid ");
    assert!(report.contains(&expected), "no `{expected}` in:\n{report}");
    // The PROCESSES table has an `ns pid` column: python is 1 there.
    let header = report
        .lines()
        .find(|l| l.trim_start().starts_with("pid") && l.contains("ns pid"))
        .unwrap_or_else(|| panic!("no `ns pid` column:\n{report}"));
    assert!(header.contains("ppid"), "{header}");
    let python_row = report
        .lines()
        .find(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 3 && words[1] == "1" && words[3].starts_with("python3")
        })
        .unwrap_or_else(|| panic!("no PROCESSES row with ns pid 1:\n{report}"));
    let host_pid = python_row.split_whitespace().next().unwrap();
    assert!(
        report.contains(&format!(", in child pid {host_pid}\n")),
        "{report}"
    );
}

/// Python thread names in every per-thread view (see
/// [`common::check_thread_names`]).
fn thread_names(interpreter: &Interpreter) {
    require_root();
    let test = format!("thread-names-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_thread_names.py");
    let out = files.path("workload.json");
    let command = interpreter.command(Launch::Chroot, &[&script, &out]);
    let report = common::trace_until_done(&scratch, &command);
    check_interpreter(&report, interpreter, &files);
    common::check_thread_names(&report, &files.load(&out), interpreter.name);
}

/// Who held a signal back, named by its line of Python: SIGTERM set to
/// SIG_IGN by a library function, then one ignored; SIGINT blocked by
/// `pthread_sigmask` while one arrives, delivered at the unblock. CPython's
/// own start-up settings are named as such.
fn signal_changes(interpreter: &Interpreter) {
    require_root();
    let test = format!("signal-changes-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_signal_changes.py");
    let out = files.path("workload.json");
    let report = common::launch_until_done(
        &scratch,
        &interpreter.command(Launch::Chroot, &[&script, &out]),
    );
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    assert_eq!(facts["keyboard_interrupts"], 1, "{facts:#}");
    let pid = u64_of(&facts["pid"]);
    let host_script = files.host(&script);
    let line = |needle: &str| line_of(&host_script, needle);
    let name = interpreter.name;
    // SIGTERM: set to be ignored by quiet_library, then one ignored.
    let actions = report["signal_actions"].as_array().unwrap();
    let term = actions
        .iter()
        .find(|a| a["pid"] == pid && a["signal"] == "SIGTERM")
        .unwrap_or_else(|| panic!("{name}: no SIGTERM action: {actions:#?}"));
    assert_eq!(term["action"], "ignore");
    assert_eq!(
        term["set_by"],
        "python",
        "{name}: {term:#}\nthe tracer's log after go:\n{}",
        std::fs::read_to_string(scratch.path("tracer.log")).unwrap_or_default()
    );
    // signal.signal's own frame (signal.py), then the line that called it.
    assert!(
        term["python_stack"][0]
            .as_str()
            .unwrap()
            .starts_with("signal ("),
        "{name}: {term:#}"
    );
    assert_eq!(
        term["python_stack"][1],
        format!("quiet_library ({script}:{})", line("ignores SIGTERM")),
        "{name}: {term:#}"
    );
    // CPython's own: SIGPIPE ignored at start-up, no Python frame.
    assert!(
        actions.iter().any(|a| a["pid"] == pid
            && a["signal"] == "SIGPIPE"
            && a["action"] == "ignore"
            && a["set_by"] == "interpreter start-up"),
        "{name}: {actions:#?}"
    );
    let group = |signal: &str| {
        report["signals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["signal"] == signal && g["target"]["pid"] == pid)
            .unwrap_or_else(|| panic!("{name}: no {signal} row: {:#}", report["signals"]))
            .clone()
    };
    assert_eq!(group("SIGTERM")["ignored"], 1);
    // SIGINT: blocked and unblocked by critical_section, delivered once.
    let masks = report["signal_masks"].as_array().unwrap();
    let change = |change: &str, needle: &str| {
        let frame = format!("critical_section ({script}:{})", line(needle));
        masks
            .iter()
            .find(|m| {
                m["pid"] == pid
                    && m["signal"] == "SIGINT"
                    && m["change"] == change
                    && m["python_stack"]
                        .as_array()
                        .unwrap()
                        .contains(&frame.clone().into())
            })
            .unwrap_or_else(|| panic!("{name}: no SIGINT {change} by {frame}: {masks:#?}"))
    };
    let (block, unblock) = (
        change("block", "blocks SIGINT"),
        change("unblock", "unblocks SIGINT"),
    );
    assert!(unblock["t_s"].as_f64() >= block["t_s"].as_f64());
    assert_eq!(group("SIGINT")["delivered"], 1);
    // The findings name the lines.
    let findings = report["findings"].to_string();
    assert!(
        findings.contains("signal_ignored_by_python")
            && findings.contains(&format!(
                "quiet_library ({script}:{})",
                line("ignores SIGTERM")
            )),
        "{name}: {findings}"
    );
    assert!(
        findings.contains("signal_blocked_by_python")
            && findings.contains(&format!(
                "critical_section ({script}:{})",
                line("blocks SIGINT")
            )),
        "{name}: {findings}"
    );
}

/// When the Python handler really ran: after a long C call (latency as the
/// workload measured it), in the main thread for a signal delivered to a
/// worker, and never for a signal that arrived during a C call that outlasts
/// the trace.
fn signal_handler_runs(interpreter: &Interpreter) {
    require_root();
    let test = format!("signal-handler-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_signal_handler.py");
    let out = files.path("workload.json");
    // Once the tracer knows where CPython keeps its handlers (a handler set
    // and fired before that is named from the table as it is later) and its
    // signal-check uprobe is attached (on a thread of its own, tens of ms
    // later under load: a handler run before it is not seen run).
    let report = common::launch_until(
        &scratch,
        &interpreter.command(Launch::Chroot, &[&script, &out]),
        common::Until::Exit,
        &[
            "pid {pid}: Python signal handlers known",
            "signal checks of",
        ],
    );
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    let name = interpreter.name;
    let pid = u64_of(&facts["pid"]);
    let host_script = files.host(&script);
    let def_line = |f: &str| line_of(&host_script, &format!("def {f}("));
    let groups: Vec<&Value> = report["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["target"]["pid"] == pid)
        .collect();
    let group = |signal: &str, code: &str| {
        *groups
            .iter()
            .find(|g| g["signal"] == signal && g["code"] == code)
            .unwrap_or_else(|| panic!("{name}: no {signal} {code}: {groups:#?}"))
    };
    let handler = |f: &str| json!({"function": f, "file": script, "line": def_line(f)});
    let secs = |v: &Value| v.as_f64().unwrap();
    // 0. A handler freed at once is still named (from what the kernel read
    // at delivery).
    assert_eq!(facts["ran"]["passing"].as_array().unwrap().len(), 1);
    let passing = group("SIGHUP", "SI_USER");
    // Qualified names are in code objects from 3.11 on.
    let qualname = if ["3.9.", "3.10."]
        .iter()
        .any(|v| interpreter.version.starts_with(v))
    {
        "passing"
    } else {
        "with_a_passing_handler.<locals>.passing"
    };
    assert_eq!(
        passing["python_handler"],
        json!({
            "function": qualname,
            "file": script,
            "line": def_line("passing"),
        }),
        "{name}: {passing:#}"
    );
    assert_eq!(passing["python_handler_runs"], 1, "{name}: {passing:#}");
    // 1. After the C call: ran once, as late as the workload saw.
    let late = group("SIGUSR1", "SI_USER");
    assert_eq!(
        late["python_handler"],
        handler("on_usr1"),
        "{name}: {late:#}"
    );
    assert_eq!(late["python_handler_runs"], 1, "{name}: {late:#}");
    let seen_ns = (secs(&facts["ran"]["usr1"][0]) - secs(&facts["sent"]["usr1"])) * 1e9;
    let waited_ns = (secs(&facts["c_call_returned"]) - secs(&facts["sent"]["usr1"])) * 1e9;
    let reported = late["python_handler_latency_ns"]["max"].as_f64().unwrap();
    assert!(
        (reported - seen_ns).abs() < 10e6 && reported >= waited_ns * 0.9,
        "{name}: reported {reported} ns, the workload saw {seen_ns} ns (C call {waited_ns} ns)"
    );
    // 2. Delivered to the worker, run by the main thread.
    let to_worker = group("SIGUSR1", "SI_TKILL");
    assert_eq!(to_worker["python_handler_runs"], 1, "{name}: {to_worker:#}");
    assert_eq!(
        to_worker["delivered_to"][facts["worker_tid"].to_string()],
        1,
        "{name}: {to_worker:#}"
    );
    // The disposition changes name the functions they installed.
    for (signal, function) in [("SIGUSR1", "on_usr1"), ("SIGUSR2", "on_usr2")] {
        let action = report["signal_actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["pid"] == pid && a["signal"] == signal && a["action"] == "handler")
            .unwrap_or_else(|| {
                panic!("{name}: no {signal} action: {:#}", report["signal_actions"])
            });
        assert_eq!(
            action["python_handler"],
            handler(function),
            "{name}: {action:#}"
        );
    }
    // 3. Never ran: the process exited while the main thread was in C.
    assert_eq!(
        report["target"]["exit_code"], 0,
        "{name}: {:#}",
        report["target"]
    );
    let never = group("SIGUSR2", "SI_USER");
    let c_call = format!(
        "in_c_for ({script}:{})",
        line_of(&host_script, "# the C call")
    );
    let waiting = &never["python_handler_main_thread"];
    // Its innermost Python frame: native frames (`name [binary]`, the C
    // library's under the call) come first.
    let innermost_python = waiting["python_stack"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| !f.as_str().unwrap().ends_with(']'));
    assert_eq!(
        innermost_python,
        Some(&json!(c_call)),
        "{name}: the handler waited on the C call: {never:#}"
    );
    assert_eq!(
        never["python_handler"],
        handler("on_usr2"),
        "{name}: {never:#}"
    );
    assert_eq!(never["python_handler_runs"], 0);
    assert_eq!(
        never["python_handler_pending_at_end"], 1,
        "{name}: {never:#}"
    );
    assert_eq!(never["python_handler_latency_ns"], Value::Null);
}

/// A file-name-safe short name of the interpreter.
fn slug(interpreter: &Interpreter) -> String {
    interpreter
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

// ---------------------------------------------------------------------------
// One #[test] per (interpreter, workload): a failure names the version.

macro_rules! interpreter_tests {
    ($module:ident, $interpreter:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn calibrated_hotspots() {
                super::calibrated_hotspots(&$interpreter);
            }

            #[test]
            fn proc_reads() {
                super::proc_reads(&$interpreter);
            }

            #[test]
            fn proc_reads_agree_with_strace() {
                super::proc_reads_agree_with_strace(&$interpreter);
            }

            #[test]
            fn signals() {
                super::signals(&$interpreter);
            }

            #[test]
            fn zombies() {
                super::zombies(&$interpreter);
            }

            #[test]
            fn container_attach() {
                super::container_attach(&$interpreter);
            }

            #[test]
            fn container_launch() {
                super::container_launch(&$interpreter);
            }

            #[test]
            fn text_names_the_interpreter() {
                super::text_names_the_interpreter(&$interpreter);
            }

            #[test]
            fn thread_names() {
                super::thread_names(&$interpreter);
            }

            #[test]
            fn signal_changes() {
                super::signal_changes(&$interpreter);
            }

            #[test]
            fn signal_handler_runs() {
                super::signal_handler_runs(&$interpreter);
            }
        }
    };
}

interpreter_tests!(debian_bullseye_3_9, BULLSEYE_3_9);
interpreter_tests!(debian_static_3_11, HOST_STATIC_3_11);
interpreter_tests!(pyenv_shared_3_11, PYENV_SHARED_3_11);
interpreter_tests!(debian_trixie_3_13, TRIXIE_3_13);
interpreter_tests!(debian_sid_3_14, SID_3_14);
interpreter_tests!(debian_sid_3_15, SID_3_15);
interpreter_tests!(free_threaded_3_13, FREE_THREADED_3_13);

/// The debug build: named as one, and sampled like the release build
/// (`_Py_DebugOffsets` describe its layout too).
mod debian_trixie_3_13_debug_build {
    use super::*;

    #[test]
    fn calibrated_hotspots() {
        super::calibrated_hotspots(&TRIXIE_3_13_DEBUG);
    }

    #[test]
    fn text_names_the_interpreter() {
        super::text_names_the_interpreter(&TRIXIE_3_13_DEBUG);
    }
}
