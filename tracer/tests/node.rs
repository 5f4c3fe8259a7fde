//! Node-wide traces (`--all`, `--cgroup`): every Python process of the
//! host (or of a cgroup) in its own row, found by content whether it ran
//! before the trace or started after, whatever build and root; what execs
//! into a cgroup taken in by the kernel, what runs beside it left out; a
//! program that only looks like Python refused with its reason.

mod common;

use std::process::{ChildStderr, Command, Stdio};

use common::*;
use serde_json::Value;

/// `tracer ARGS...` (a node-wide scope), returned once it says it is
/// tracing, with `-v`: the tests wait for its "is sampled from now on".
fn node_tracer(args: &[&str]) -> (Proc, Lines<ChildStderr>) {
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(args)
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    stderr.wait_for("tracer: tracing ");
    (tracer, stderr)
}

/// Waits until the tracer has told the sampler of `pid`'s main thread.
fn wait_sampled(stderr: &mut Lines<ChildStderr>, pid: u32) {
    let needle = format!("pid {pid}: Python thread {pid} is sampled from now on");
    if !stderr.has_seen(&needle) {
        stderr.wait_for(&needle);
    }
}

/// The report's `python.processes[]` row of `pid`.
fn python_row(report: &Value, pid: u32) -> &Value {
    report["python"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["pid"] == pid)
        .unwrap_or_else(|| panic!("no python.processes[] row for pid {pid}: {report:#}"))
}

fn assert_burned(report: &Value, pid: u32, version: &str) {
    let row = python_row(report, pid);
    assert_eq!(row["status"], "sampled", "pid {pid}: {row:#}");
    assert!(
        row["version"].as_str().unwrap().starts_with(version),
        "pid {pid}: {row:#}"
    );
    assert!(
        row["hotspots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["function"] == "burn" && u64_of(&h["self_samples"]) > 0),
        "pid {pid} was not sampled in burn: {row:#}"
    );
    let _ = process(report, u64::from(pid));
}

/// sid's CPython 3.14 root (`cargo xtask test` makes it).
fn sid_root() -> String {
    let root = std::env::var("TRACER_PY314_ROOT")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/sid-python3.14".into());
    assert!(
        std::path::Path::new(&root)
            .join("usr/bin/python3.14")
            .exists(),
        "no python3.14 in {root}: `cargo xtask test` makes this root"
    );
    root
}

#[test]
fn all_samples_every_python_process_in_its_own_row() {
    require_root();
    let scratch = Scratch::new("node_all");
    let report_path = scratch.path("report.json");
    let burn = |python: &str| python_command(python, "node_burn.py", &["0.3"]);
    // A service that ran before the trace: Debian's static 3.11.
    let (mut before, mut before_out, before_pid) =
        spawn_until_ready_with_stdout(&burn(python(STATIC_PYTHON)));
    let (mut tracer, mut stderr) = node_tracer(&["--all", "--format", "json", "-o", &report_path]);
    // Two started after it began: pyenv's shared-library 3.11, and sid's
    // 3.14 in a root and mount namespace of its own.
    let (mut shared, mut shared_out, shared_pid) =
        spawn_until_ready_with_stdout(&burn(python(SHARED_PYTHON)));
    let root = sid_root();
    let inside = "/tmp/tracer-tests/node_all";
    std::fs::create_dir_all(format!("{root}{inside}")).unwrap();
    std::fs::copy(
        workload("node_burn.py"),
        format!("{root}{inside}/node_burn.py"),
    )
    .unwrap();
    let (mut rooted, mut rooted_out, rooted_pid) = spawn_until_ready_with_stdout(&[
        "unshare".into(),
        "--mount".into(),
        "--mount-proc".into(),
        format!("--root={root}"),
        "/usr/bin/python3.14".into(),
        "-B".into(),
        format!("{inside}/node_burn.py"),
        "0.3".into(),
    ]);
    for (workload, stdout, pid) in [
        (&mut before, &mut before_out, before_pid),
        (&mut shared, &mut shared_out, shared_pid),
        (&mut rooted, &mut rooted_out, rooted_pid),
    ] {
        wait_sampled(&mut stderr, pid);
        say_go(workload);
        stdout.wait_for("done");
    }
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    let report = load_json(&report_path);
    assert_eq!(report["target"]["scope"], "all");
    assert_eq!(report["target"]["pid"], 0);
    assert_burned(&report, before_pid, "3.11");
    assert_burned(&report, shared_pid, "3.11");
    assert_burned(&report, rooted_pid, "3.14");
    assert_ne!(
        python_row(&report, shared_pid)["linkage"],
        python_row(&report, before_pid)["linkage"],
        "two builds: {report:#}"
    );
}

/// A cgroup v2 directory of the test's own, removed at the end.
struct TestCgroup {
    path: String,
    dir: String,
}

impl TestCgroup {
    fn new(name: &str) -> Self {
        let mount = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| {
                l.split(" - ")
                    .nth(1)
                    .is_some_and(|r| r.starts_with("cgroup2 "))
            })
            .and_then(|l| l.split(' ').nth(4).map(str::to_owned))
            .expect("a cgroup v2 mount");
        let path = format!("/{name}-{}", std::process::id());
        let dir = format!("{mount}{path}");
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {dir}: {e}"));
        Self { path, dir }
    }

    /// `command`, run by a shell that first moves itself into this cgroup.
    fn exec_in(&self, command: &[String]) -> Vec<String> {
        let mut line = format!("echo $$ > {}/cgroup.procs && exec", self.dir);
        for word in command {
            line.push(' ');
            line.push_str(word);
        }
        vec!["sh".into(), "-c".into(), line]
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn cgroup_takes_in_what_execs_there_and_nothing_beside_it() {
    require_root();
    let scratch = Scratch::new("node_cgroup");
    let report_path = scratch.path("report.json");
    let cgroup = TestCgroup::new("tracer-node-cgroup");
    let burn = python_command(python(STATIC_PYTHON), "node_burn.py", &["0.3"]);
    // Beside the cgroup, burning all along.
    let (mut beside, mut beside_out, beside_pid) = spawn_until_ready_with_stdout(&burn);
    let (mut tracer, mut stderr) = node_tracer(&[
        "--cgroup",
        &cgroup.path,
        "--format",
        "json",
        "-o",
        &report_path,
    ]);
    assert!(stderr.has_seen("(0 processes now)"), "{}", stderr.seen);
    say_go(&mut beside);
    // Not a child of anything traced: the kernel takes it in as it
    // execs in the cgroup.
    let (mut inside, mut inside_out, inside_pid) =
        spawn_until_ready_with_stdout(&cgroup.exec_in(&burn));
    wait_sampled(&mut stderr, inside_pid);
    say_go(&mut inside);
    inside_out.wait_for("done");
    beside_out.wait_for("done");
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    drop((inside, beside));
    let report = load_json(&report_path);
    assert_eq!(report["target"]["scope"], format!("cgroup {}", cgroup.path));
    assert_burned(&report, inside_pid, "3.11");
    let pids: Vec<u64> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u64_of(&p["pid"]))
        .collect();
    assert_eq!(pids, [u64::from(inside_pid)], "{report:#}");
    assert!(
        report["python"]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["pid"] != beside_pid),
        "{report:#}"
    );
}

#[test]
fn a_cgroup_that_does_not_exist_is_refused() {
    let output = tracer(&["--cgroup", "/no/such/cgroup/here", "--duration", "1"]);
    assert_exit(&output, 4);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no such cgroup"), "{stderr}");
}

/// A program named python3.12 that exports `_PyRuntime` (full of
/// garbage) and `_PyEval_EvalFrameDefault`: its row says why it is not
/// sampled, and nothing of it is read as thread states.
#[test]
fn a_program_that_only_looks_like_python_is_refused_with_its_reason() {
    require_root();
    let scratch = Scratch::new("node_fake_python");
    let source = scratch.path("fake.c");
    std::fs::write(
        &source,
        r#"#include <stdio.h>
#include <unistd.h>
unsigned char _PyRuntime[8192];
void _PyEval_EvalFrameDefault(void) {}
int main(void) {
    for (unsigned i = 0; i < sizeof _PyRuntime; i++) _PyRuntime[i] = (unsigned char)(i * 131 + 7);
    printf("ready %d\n", getpid());
    fflush(stdout);
    getchar();
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 300000000UL; i++) x += i;
    printf("done\n");
    fflush(stdout);
    getchar();
    return 0;
}
"#,
    )
    .unwrap();
    let fake = scratch.path("python3.12");
    let built = run(
        "gcc",
        &[
            "-O1".into(),
            "-rdynamic".into(),
            "-o".into(),
            fake.clone(),
            source,
        ],
    );
    assert!(built.status.success(), "{}", text(&built.stderr));
    let report_path = scratch.path("report.json");
    let (mut tracer, mut stderr) = node_tracer(&["--all", "--format", "json", "-o", &report_path]);
    let (mut workload, mut stdout, pid) = spawn_until_ready_with_stdout(&[fake]);
    let needle = format!("pid {pid}: not Python: not a CPython runtime");
    if !stderr.has_seen(&needle) {
        stderr.wait_for(&needle);
    }
    say_go(&mut workload);
    stdout.wait_for("done");
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    let report = load_json(&report_path);
    let row = python_row(&report, pid);
    assert_eq!(row["status"], "unavailable", "{row:#}");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a CPython runtime: _PyRuntime's interpreter list points to 0x"),
        "{row:#}"
    );
    assert_eq!(row["samples"], 0, "{row:#}");
}
