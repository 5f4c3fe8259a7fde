//! Node-wide traces (`--all`, `--cgroup`): every Python process of the
//! host (or of a cgroup) in its own row, found by content whether it ran
//! before the trace or started after, whatever build and root; what execs
//! into a cgroup taken in by the kernel, what runs beside it left out; a
//! program that only looks like Python refused with its reason.

mod common;

use std::process::{ChildStderr, Command, Stdio};

use common::{http::*, podman::Container, *};
use serde_json::Value;

/// `tracer ARGS...` (a node-wide scope), returned once it says it is
/// tracing, with `-v`: the tests wait for its "is sampled from now on".
/// (Its log must be read as it comes: a full pipe would stop the tracer.)
fn node_tracer(args: &[&str]) -> (Proc, Lines<ChildStderr>) {
    quiet_node_tracer(&[args, &["-v"]].concat())
}

/// [`node_tracer`] without `-v`.
fn quiet_node_tracer(args: &[&str]) -> (Proc, Lines<ChildStderr>) {
    let (tracer, stderr, _) = start_tracer(args);
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
    let root = common::podman::sid_root().display().to_string();
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
    // And a podman container (conmon and the container's init are
    // re-parented to init: found as they fork and exec).
    let container = Container::start_probe(&scratch, "node_all");
    wait_sampled(&mut stderr, container.pid);
    Container::say_go(&scratch);
    assert_eq!(container.wait(), 0, "{}", container.logs());
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    let report = load_json(&report_path);
    assert_eq!(report["target"]["scope"], "all");
    assert_eq!(report["target"]["pid"], 0);
    assert_burned(&report, before_pid, "3.11");
    assert_burned(&report, shared_pid, "3.11");
    assert_burned(&report, rooted_pid, "3.14");
    assert_burned(&report, container.pid, "3.14");
    let row = python_row(&report, container.pid);
    assert_eq!(row["container"]["id"], container.id, "{row:#}");
    assert_eq!(row["container"]["name"], container.name, "{row:#}");
    assert_eq!(
        process(&report, u64::from(container.pid))["container"]["id"],
        container.id
    );
    assert!(python_row(&report, before_pid)["container"].is_null());
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
    // Running, its garbage written, when the trace starts (a look before
    // it writes it would see an interpreter not started yet).
    let (mut workload, mut stdout, pid) = spawn_until_ready_with_stdout(&[fake]);
    let (mut tracer, mut stderr) = node_tracer(&["--all", "--format", "json", "-o", &report_path]);
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

/// `--container NAME`: its processes, and one that joins it during the
/// trace (`podman exec`: not a child of anything traced, taken in by the
/// kernel as it execs in the container's cgroup); another container's
/// never; the trace ends with the container's init.
#[test]
fn container_scope_takes_in_that_container_and_what_joins_it() {
    require_root();
    let (scratch, other_scratch) = (
        Scratch::new("node_container"),
        Scratch::new("node_container_other"),
    );
    let container = Container::start_probe(&scratch, "node_container");
    let other = Container::start_probe(&other_scratch, "node_container_other");
    std::fs::copy(workload("node_burn.py"), scratch.path("node_burn.py")).unwrap();
    let report_path = scratch.path("report.json");
    let (mut tracer, mut stderr) = node_tracer(&[
        "--container",
        &container.name,
        "--format",
        "json",
        "-o",
        &report_path,
    ]);
    wait_sampled(&mut stderr, container.pid);
    let (mut joined, mut joined_out, _) = spawn_until_ready_with_stdout(&[
        "podman".into(),
        "exec".into(),
        "-i".into(),
        container.name.clone(),
        "python3.14".into(),
        "-B".into(),
        "/t/node_burn.py".into(),
        "0.3".into(),
    ]);
    // Its host pid is what the tracer says it samples (the workload knows
    // only its pid in the container).
    let joined_pid = loop {
        let line = stderr.next_line().expect("the tracer's log ended");
        let Some(rest) = line.split("pid ").nth(1) else {
            continue;
        };
        if let Some((pid, _)) = rest.split_once(": Python thread ")
            && line.ends_with("is sampled from now on")
            && pid != container.pid.to_string()
        {
            break pid.parse::<u32>().unwrap();
        }
    };
    say_go(&mut joined);
    joined_out.wait_for("done");
    drop(joined);
    Container::say_go(&other_scratch);
    Container::say_go(&scratch);
    assert_eq!(container.wait(), 0, "{}", container.logs());
    assert_eq!(other.wait(), 0, "{}", other.logs());
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "target exited");
    assert_eq!(
        report["target"]["scope"],
        format!("container {}", container.name)
    );
    assert_eq!(report["target"]["pid"], container.pid);
    assert_burned(&report, container.pid, "3.14");
    assert_burned(&report, joined_pid, "3.14");
    for row in report["processes"].as_array().unwrap() {
        assert_eq!(row["container"]["id"], container.id, "{row:#}");
    }
    for row in report["python"]["processes"].as_array().unwrap() {
        assert_eq!(row["container"]["id"], container.id, "{row:#}");
    }
}

/// The node agent, `--all --serve`: a real Prometheus scrapes it and sees
/// a container's Python samples under its container labels, and `go tool
/// pprof` pulls `/debug/pprof/profile?seconds=2` with the container label
/// on the container's samples.
#[test]
fn the_node_agent_labels_prometheus_series_and_pprof_samples_with_containers() {
    require_root();
    let scratch = Scratch::new("node_agent");
    let (port, prometheus_port) = (free_port(), free_port());
    let address = format!("127.0.0.1:{port}");
    let (mut tracer, mut stderr) = node_tracer(&[
        "--all",
        "--serve",
        &address,
        "--rate",
        "99",
        "-o",
        &scratch.path("final.prom"),
    ]);
    // A service that burns until it is stopped.
    let container = Container::run(
        &common::podman::unique_name("node_agent"),
        &common::podman::sid_root(),
        &[],
        &[
            "python3.14",
            "-c",
            "def serve():\n    while True:\n        sum(range(1000))\nserve()",
        ],
    );
    wait_sampled(&mut stderr, container.pid);
    let url = format!("http://{address}/debug/pprof/profile?seconds=2");
    let pprof_dir = scratch.subdir("pprof");
    let traces = Command::new("go")
        .args(["tool", "pprof", "-traces", &url])
        .env("PPROF_TMPDIR", &pprof_dir)
        .stdin(Stdio::null())
        .output()
        .expect("go tool pprof (Debian's golang-go; `cargo xtask test` installs it)");
    let text = String::from_utf8_lossy(&traces.stdout);
    assert!(
        traces.status.success(),
        "{}",
        String::from_utf8_lossy(&traces.stderr)
    );
    let ours: Vec<Trace> = parse_traces(&text)
        .into_iter()
        .filter(|t| t.label("pid") == Some(&*container.pid.to_string()))
        .collect();
    assert!(
        !ours.is_empty(),
        "no sample of pid {} in\n{text}",
        container.pid
    );
    for trace in &ours {
        assert_eq!(trace.label("container_id"), Some(&*container.id), "{text}");
        assert_eq!(
            trace.frames.first().map(String::as_str),
            Some("serve"),
            "{text}"
        );
    }
    let _prometheus = prometheus(&scratch, &address, prometheus_port);
    let series = format!(
        "tracer_python_samples_total{{container_id=\"{}\",container_name=\"{}\",function=\"serve\"}}",
        container.id, container.name
    );
    // Prometheus scrapes every second: wait until it has the series.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut got = None;
    while got.is_none() && std::time::Instant::now() < deadline {
        got = query(prometheus_port, &series);
        if got.is_none() {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    assert!(
        got.is_some_and(|samples| samples > 0.0),
        "{series}: {got:?}"
    );
    drop(container);
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
}

/// 200 process starts a second, every tenth a Python: each has its row
/// with its exit, nothing is lost, and a process that is not Python is
/// sampled in nothing but its parent's code (before its exec).
#[test]
fn two_hundred_process_starts_a_second_each_get_their_row() {
    require_root();
    let scratch = Scratch::new("node_churn");
    let report_path = scratch.path("report.json");
    // Not verbose: a line per process start would fill the log's pipe.
    let (mut tracer, mut stderr) =
        quiet_node_tracer(&["--all", "--format", "json", "-o", &report_path]);
    let (mut churn, mut stdout, _) = spawn_until_ready_with_stdout(&python_command(
        python(STATIC_PYTHON),
        "node_churn.py",
        &["200", "2"],
    ));
    say_go(&mut churn);
    let done = stdout.wait_for("done ");
    let facts: Value = serde_json::from_str(done.strip_prefix("done ").unwrap()).unwrap();
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    drop(churn);
    let report = load_json(&report_path);
    // Every process record came (the host's other reads may fill the
    // read tables: counted in events.dropped.reads, not asserted here).
    let events = &report["events"];
    assert_eq!(events["lost"], 0, "{events:#}");
    assert_eq!(events["dropped"]["lifecycle"], 0, "{events:#}");
    let rate = facts["rate"].as_f64().unwrap();
    let ids =
        |key: &str| -> Vec<u64> { facts[key].as_array().unwrap().iter().map(u64_of).collect() };
    for pid in ids("pids").into_iter().chain(ids("python_pids")) {
        let row = process(&report, pid);
        assert_eq!(
            row["exit_code"], 0,
            "pid {pid} ({rate:.0} starts a second): {row:#}"
        );
    }
    // A /bin/true may have been sampled between its fork and its exec, in
    // its parent's code (posix_spawn; a code object the tracer could not
    // read before the exec is `<code 0x...>` in "?"): never as anything else.
    for row in report["python"]["processes"].as_array().unwrap() {
        let pid = u64_of(&row["pid"]);
        if ids("pids").contains(&pid) {
            assert!(
                row["hotspots"].as_array().unwrap().iter().all(|h| {
                    let file = h["file"].as_str().unwrap();
                    file.ends_with("node_churn.py") || file == "?"
                }),
                "/bin/true (pid {pid}): {row:#}"
            );
        }
    }
}
