//! Python sampling end to end, as root, on the pyenv interpreters of this
//! machine (3.8, 3.9, 3.10, 3.12, 3.13; the Debian 3.9, 3.11, 3.13, 3.14 and
//! pyenv 3.11 interpreters run the same checks in tests/matrix.rs): a
//! calibrated workload (tests/workloads/python_calibrated.py) burns ~70% of its CPU in `heavy` and ~30% in `inner` (under `outer`),
//! measures what it really spent with `time.thread_time_ns`, and writes that
//! to a JSON file; the tracer's report must agree within 5 points and show
//! the exact chain `main;outer;inner` in folded output.
//!
//! Run: sudo cargo test -p tracer --test python

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

mod common;

use common::{
    Proc, Scratch, TRACER, assert_complete, attach_tracer,
    calibrated::{RATE, Run, SECONDS, check_calibrated},
    load_json, python_command, require_root,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    common::Scratch::new(&format!("python_{name}")).dir
}

/// `tracer --format json -o FILE ... -- PYTHON... tests/workloads/python_calibrated.py OUT`.
fn run(name: &str, python: &[&str], script: &str, extra: &[&str]) -> Run {
    require_root();
    let dir = scratch(name);
    let report_path = dir.join("report.json");
    let folded_path = dir.join("stacks.folded");
    let out_arg = dir.join("workload.json").display().to_string();
    let status = Command::new(TRACER)
        .args(["--quiet", "--format", "json", "-o"])
        .arg(&report_path)
        .args(["--rate", RATE, "--folded"])
        .arg(&folded_path)
        .args(extra)
        .arg("--")
        .args(python)
        .args([script, &out_arg, SECONDS])
        .status()
        .expect("run tracer");
    assert!(status.success(), "tracer failed: {status}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let folded = std::fs::read_to_string(&folded_path).unwrap();
    let workload: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_arg).unwrap()).unwrap();
    Run {
        report,
        folded,
        workload,
        dir,
    }
}

fn calibrated(name: &str, python: &str, version_prefix: &str) {
    let script = workspace().join("tests/workloads/python_calibrated.py");
    let script = std::fs::canonicalize(script).unwrap();
    let script = script.to_str().unwrap();
    let run = run(name, &[python], script, &[]);
    check_calibrated(&run, version_prefix, script);
}

fn pyenv(version: &str) -> String {
    let minor = &version[..version.rfind('.').unwrap()];
    let path = format!("/root/.pyenv/versions/{version}/bin/python{minor}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install it with pyenv"
    );
    path
}

/// Thread names on the pyenv builds the matrix does not run (3.8's and
/// 3.10's dicts, 3.12's tagged dict-or-values pointer).
#[test]
fn thread_names_on_pyenv_3_8_3_10_3_12() {
    require_root();
    for version in ["3.8.18", "3.10.13", "3.12.1"] {
        let scratch = Scratch::new(&format!("thread_names_{version}"));
        let out = scratch.path("workload.json");
        let command = python_command(&pyenv(version), "python_thread_names.py", &[&out]);
        let report = common::trace_until_done(&scratch, &command);
        assert_eq!(report["python"]["version"], version);
        common::check_thread_names(&report, &load_json(&out), version);
    }
}

/// Stale code objects (3.8, 3.9): a code object freed after start-up
/// (`site.py`'s module) leaves its address to one of the script's, and a
/// cache that trusted the address named the script's `<module>` after
/// `site.py` for the whole run. Every stack that holds the script's own
/// code must end (outermost) in the script's `<module>` or in `threading`,
/// and the main thread's wait in `Thread.join` sits on the script's join
/// line; several runs each, as the reuse of an address is a matter of luck
/// (`symbols::tests::stacks_seen_once_are_named_by_the_object_there_now`
/// checks the identity check itself).
#[test]
fn stale_code_objects_are_not_trusted_on_3_8_and_3_9() {
    require_root();
    let script = common::workload("python_join.py");
    let join_line = std::fs::read_to_string(&script)
        .unwrap()
        .lines()
        .position(|l| l.contains("t.join()"))
        .unwrap() as u64
        + 1;
    for version in ["3.8.18", "3.9.18"] {
        for run in 0..3 {
            let scratch = Scratch::new(&format!("stale_code_{version}_{run}"));
            let report = common::trace_command(
                &scratch,
                &["--rate", "499", "--read-stacks", "1"],
                &python_command(&pyenv(version), "python_join.py", &[]),
            );
            let python = &report["python"];
            let mut stacks: Vec<Vec<(String, String, u64)>> = Vec::new();
            for s in python["stacks"].as_array().unwrap() {
                stacks.push(
                    s["frames"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| {
                            (
                                f["function"].as_str().unwrap().to_owned(),
                                f["file"].as_str().unwrap().to_owned(),
                                f["line"].as_u64().unwrap(),
                            )
                        })
                        .collect(),
                );
            }
            for s in python["off_cpu"].as_array().unwrap() {
                stacks.push(
                    s["frames"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| {
                            let text = f.as_str().unwrap();
                            let (function, rest) = text.split_once(" (").unwrap();
                            let (file, line) = rest.trim_end_matches(')').rsplit_once(':').unwrap();
                            (function.to_owned(), file.to_owned(), line.parse().unwrap())
                        })
                        .collect(),
                );
            }
            let context = format!("{version} run {run}: {python:#}");
            for frames in &stacks {
                if !frames.iter().any(|f| f.1 == script) {
                    continue;
                }
                let (function, file, _) = frames.last().unwrap();
                assert!(
                    (function == "<module>" && *file == script) || file.ends_with("threading.py"),
                    "a stack of the script's code ends in {function} ({file}): {frames:?}\n{context}"
                );
            }
            // The main thread's wait in Thread.join (seen when the
            // interpreter was found before it began) is on the join line.
            for frames in &stacks {
                // (Thread.join, not posixpath.join under site.py at start-up.)
                if let Some(at) = frames
                    .iter()
                    .position(|f| f.0 == "join" && f.1.ends_with("threading.py"))
                {
                    assert_eq!(
                        frames.get(at + 1),
                        Some(&("<module>".to_owned(), script.clone(), join_line)),
                        "{frames:?}\n{context}"
                    );
                }
            }
        }
    }
}

/// Code objects freed a moment after they ran, each leaving its address
/// to the next (`code_reuse.py`: one `exec`'d function after another, the
/// same size): every sample's frame is named by the function that was
/// running when it was taken, never by one that took its address later
/// (checked on the samples' timestamps in the Perfetto trace, against
/// each function's window as the workload measured it); a frame whose code
/// object was freed before the tracer could read it is unresolved.
#[test]
fn frames_are_named_by_the_code_that_ran_not_by_the_code_there_later() {
    require_root();
    for version in ["3.9.18", "3.12.1"] {
        let scratch = Scratch::new(&format!("code_reuse_{version}"));
        let windows_path = scratch.path("windows.json");
        let trace = scratch.path("trace.pftrace");
        let report = common::trace_command(
            &scratch,
            &["--rate", "499", "--perfetto", &trace],
            &python_command(&pyenv(version), "code_reuse.py", &[&windows_path]),
        );
        let windows = load_json(&windows_path);
        let window = |name: &str| {
            let w = windows
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w[0] == name)
                .unwrap_or_else(|| panic!("{name} is not a function of the workload"));
            (w[1].as_u64().unwrap(), w[2].as_u64().unwrap())
        };
        let summary = common::perfetto_summary(&trace);
        // The trace's clock is the tracer's monotonic clock moved to
        // CLOCK_BOOTTIME by one offset read at start; a misnamed frame is
        // off by a whole generation (30 ms of CPU, plus its compile).
        let slack = 2_000_000;
        let mut named = 0;
        for sample in summary["samples"].as_array().unwrap() {
            let ts = sample["ts"].as_u64().unwrap();
            for frame in sample["frames"].as_array().unwrap() {
                let function = frame["function"].as_str().unwrap();
                if !function.starts_with("gen_") {
                    continue;
                }
                let (start, end) = window(function);
                assert!(
                    start - slack <= ts && ts <= end + slack,
                    "{version}: a sample at {ts} named {function}, which ran from {start} to {end}: {sample}\n{windows}"
                );
                named += 1;
            }
        }
        // The tracer keeps up with most of them while they run.
        assert!(
            named > 0,
            "{version}: no frame named a generation\n{report:#}"
        );
    }
}

#[test]
fn calibrated_pyenv_3_8() {
    calibrated("pyenv38", &pyenv("3.8.18"), "3.8.18");
}

#[test]
fn calibrated_pyenv_3_9() {
    calibrated("pyenv39", &pyenv("3.9.18"), "3.9.18");
}

#[test]
fn calibrated_pyenv_3_10() {
    calibrated("pyenv310", &pyenv("3.10.13"), "3.10.13");
}

#[test]
fn calibrated_pyenv_3_12() {
    calibrated("pyenv312", &pyenv("3.12.1"), "3.12.1");
}

#[test]
fn calibrated_pyenv_3_13() {
    calibrated("pyenv313", &pyenv("3.13.0"), "3.13.0");
}

/// A flame graph is drawn from the same stacks.
#[test]
fn flamegraph_svg() {
    let dir = scratch("flame");
    let svg = dir.join("flame.svg");
    let script =
        std::fs::canonicalize(workspace().join("tests/workloads/python_calibrated.py")).unwrap();
    let script = script.to_str().unwrap();
    let run = run(
        "flame-run",
        &["/usr/bin/python3.11"],
        script,
        &["--flamegraph", svg.to_str().unwrap()],
    );
    assert_eq!(run.report["python"]["status"], "sampled");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"), "not an SVG");
    assert!(text.contains("inner") && text.contains("heavy"));
}

/// Not Python: every kernel section is still there, and the Python section
/// says exactly why it is missing.
#[test]
fn not_python_keeps_kernel_sections() {
    require_root();
    let dir = scratch("notpython");
    let report_path = dir.join("report.json");
    // cat reads /proc/self/status, then its input until the test closes
    // it, once the tracer has looked at it (`-v` says so): a command that
    // exits within a millisecond may never be looked at.
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(["-v", "--quiet", "--format", "json", "-o"])
            .arg(&report_path)
            .args(["--", "/bin/cat", "/proc/self/status", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    stderr.wait_for("no Python yet");
    drop(tracer.child.stdin.take());
    assert!(tracer.wait().success(), "{}", stderr.rest());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let py = &report["python"];
    assert_eq!(py["status"], "unavailable");
    let reason = py["reason"].as_str().unwrap();
    assert!(
        reason.contains("no libpython or python executable with _PyRuntime in /proc/"),
        "{reason}"
    );
    let reads = report["reads"].as_array().unwrap();
    assert!(
        reads.iter().any(|r| r["path"] == "/proc/self/status"),
        "kernel read section missing: {reads:#?}"
    );
    // A process this short may never be switched out: the section is there, maybe empty.
    assert!(report["sched"]["threads"].is_array());
}

/// Which Python lines read /proc/self/status, and which one slept: the top
/// frames ride on the kernel's read and context-switch records.
fn read_and_sleep_stacks(python: &str) {
    require_root();
    let dir = scratch(&format!("events-{}", python.replace('/', "_")));
    let report_path = dir.join("report.json");
    let script =
        std::fs::canonicalize(workspace().join("tests/workloads/python_read_stacks.py")).unwrap();
    let script = script.to_str().unwrap();
    let status = Command::new(TRACER)
        .args(["--quiet", "--format", "json", "-o"])
        .arg(&report_path)
        .args(["--", python, script, "20000"])
        .status()
        .unwrap();
    assert!(status.success());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(
        report["python"]["status"], "sampled",
        "{:#}",
        report["python"]
    );
    let status_file = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/proc/self/status")
        .expect("reads of /proc/self/status");
    let every = status_file["python_stacks_every"].as_u64().unwrap();
    assert_eq!(every, 16, "default: 1 in 16 reads");
    let syscalls = status_file["syscalls"].as_u64().unwrap();
    let stacks = status_file["python_stacks"].as_array().unwrap();
    let captured: u64 = stacks.iter().map(|s| s["samples"].as_u64().unwrap()).sum();
    // One counter per CPU: each CPU captures floor(its reads / 16); reads
    // before the interpreter was found (the first tens of ms) are not counted.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(
        captured > 0 && captured <= syscalls / every + cpus,
        "{captured} stacks captured for {syscalls} reads"
    );
    let top = &stacks[0];
    assert_eq!(
        top["frames"][0],
        format!("read_status ({script}:10)"),
        "{stacks:#?}"
    );
    assert_eq!(
        top["frames"][1],
        format!("main ({script}:18)"),
        "{stacks:#?}"
    );
    assert_eq!(
        top["frames"][2],
        format!("<module> ({script}:22)"),
        "{stacks:#?}"
    );
    // The reads of the script's own stacks all come from that one line.
    assert_eq!(top["samples"].as_u64().unwrap(), captured, "{stacks:#?}");
    let off_cpu = report["python"]["off_cpu"].as_array().unwrap();
    let sleep = off_cpu
        .iter()
        .find(|s| s["frames"][0] == format!("sleepy ({script}:14)"))
        .unwrap_or_else(|| panic!("no off-CPU stack for sleepy: {off_cpu:#?}"));
    assert!(sleep["samples"].as_u64().unwrap() >= 1);
    assert!(sleep["off_cpu_ns"].as_u64().unwrap() > 0);
    assert_eq!(sleep["frames"][1], format!("main ({script}:19)"));
}

#[test]
fn event_stacks_debian_static_3_11() {
    read_and_sleep_stacks("/usr/bin/python3.11");
}

#[test]
fn event_stacks_pyenv_3_8() {
    read_and_sleep_stacks(&pyenv("3.8.18"));
}

#[test]
fn event_stacks_pyenv_3_13() {
    read_and_sleep_stacks(&pyenv("3.13.0"));
}

/// The `Popen(...)` line behind each fork: two children from one line.
fn popen_line(python: &str) {
    require_root();
    let dir = scratch(&format!("fork-{}", python.replace('/', "_")));
    let report_path = dir.join("report.json");
    let script =
        std::fs::canonicalize(workspace().join("tests/workloads/python_popen.py")).unwrap();
    let script = script.to_str().unwrap();
    let status = Command::new(TRACER)
        .args(["--quiet", "--format", "json", "-o"])
        .arg(&report_path)
        .args(["--", python, script])
        .status()
        .unwrap();
    assert!(status.success());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let forks = report["python"]["forks"].as_array().unwrap();
    let line = format!("spawn ({script}:7)");
    let from_line: u64 = forks
        .iter()
        .filter(|s| s["frames"].as_array().unwrap().iter().any(|f| *f == line))
        .map(|s| s["samples"].as_u64().unwrap())
        .sum();
    assert_eq!(from_line, 2, "two Popen calls from {line}: {forks:#?}");
}

#[test]
fn popen_line_debian_static_3_11() {
    popen_line("/usr/bin/python3.11");
}

#[test]
fn popen_line_pyenv_3_12() {
    popen_line(&pyenv("3.12.1"));
}

/// Attach mode with `--count-entries`: exact entries from C, counted by the
/// uprobe on `_PyEval_EvalFrameDefault` (here `sorted(key=...)` calling `key`).
fn entries_from_c(python: &str) {
    let (report, _, script) = attached_with(
        "entries",
        python,
        "python_entries.py",
        "json",
        &["--count-entries"],
    );
    let report: Value = serde_json::from_str(&report).unwrap();
    let py = &report["python"];
    assert_eq!(py["entries_error"], Value::Null, "{py:#}");
    let entries = py["entries_from_c"].as_array().unwrap();
    let key = entries
        .iter()
        .find(|e| e["qualname"] == "key")
        .unwrap_or_else(|| panic!("no entries for key: {entries:#?}"));
    assert_eq!(key["entries"], 20_000, "{entries:#?}");
    assert_eq!(key["file"], script);
    assert_eq!(key["line"], 9);
}

#[test]
fn entries_from_c_debian_static_3_11() {
    entries_from_c("/usr/bin/python3.11");
}

#[test]
fn entries_from_c_pyenv_3_8() {
    entries_from_c(&pyenv("3.8.18"));
}

#[test]
fn entries_from_c_pyenv_3_13() {
    entries_from_c(&pyenv("3.13.0"));
}

/// Attach mode, with no race: the workload prints "ready" and waits for a
/// line on stdin; the tracer attaches (`--pid`) and says "tracing pid" only
/// once the interpreter is found and its threads are known to the kernel
/// side; then the workload gets its line and does what is measured.
/// Returns the rendered report, the workload's facts and its path.
fn attached(name: &str, python: &str, workload: &str, format: &str) -> (String, Value, String) {
    attached_with(name, python, workload, format, &[])
}

/// [`attached`], with extra tracer arguments. The facts are `null` for a
/// workload that writes none.
fn attached_with(
    name: &str,
    python: &str,
    workload: &str,
    format: &str,
    extra: &[&str],
) -> (String, Value, String) {
    use std::io::{BufRead, BufReader};
    require_root();
    let dir = scratch(&format!("{name}-{format}-{}", python.replace('/', "_")));
    let report_path = dir.join(format!("report.{format}"));
    let report_path = report_path.to_str().unwrap();
    let facts_path = dir.join("facts.json");
    let script = common::workload(workload);
    let mut target = Proc::spawn(
        Command::new(python)
            .args(["-B", &script])
            .arg(&facts_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "workload",
    );
    let mut out = BufReader::new(target.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut args = vec!["--format", format];
    args.extend_from_slice(extra);
    args.extend(["-o", report_path]);
    let (mut tracer, _stderr) = attach_tracer(target.pid(), &args);
    target
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    // A workload that says "done" waits for a second line before it exits:
    // the tracer is stopped (SIGINT) while the process is still alive, so
    // every stack it reported can still be read from its memory.
    line.clear();
    out.read_line(&mut line).unwrap();
    if line.trim() == "done" {
        tracer.signal("INT");
        assert!(tracer.wait().success());
        target
            .child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"exit\n")
            .unwrap();
        assert!(target.wait().success());
    } else {
        assert!(target.wait().success());
        assert!(tracer.wait().success());
    }
    let report = std::fs::read_to_string(report_path).unwrap();
    let facts = match std::fs::read_to_string(&facts_path) {
        Ok(text) => serde_json::from_str(&text).unwrap(),
        Err(_) => Value::Null,
    };
    (report, facts, script)
}

fn json(report: &str) -> Value {
    serde_json::from_str(report).unwrap()
}

/// The `Popen(...)` line behind each zombie: K children from one line,
/// left unwaited; each child's process record and zombie record carry the
/// stack of its own fork, and `python.forks` counts them on one stack.
fn zombie_spawn_lines(python: &str) {
    let (text, facts, script) = attached("zombies", python, "python_zombie_stacks.py", "json");
    let report = json(&text);
    assert_complete(&report);
    assert_eq!(
        report["python"]["status"], "sampled",
        "{:#}",
        report["python"]
    );
    let parent = facts["parent"].as_u64().unwrap();
    let children: Vec<u64> = facts["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(children.len(), 4);
    let line = format!("spawn ({script}:{})", facts["line"]);
    let deep_child = facts["deep_child"].as_u64().unwrap();
    let zombies: Vec<&Value> = report["zombies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|z| z["pid"] != deep_child)
        .collect();
    assert_eq!(zombies.len(), children.len(), "{zombies:#?}");
    for z in zombies {
        let pid = z["pid"].as_u64().unwrap();
        assert!(
            children.contains(&pid),
            "zombie {pid} is not a child: {z:#}"
        );
        assert_eq!(z["ppid"], parent);
        let frames = z["spawned_from"]
            .as_array()
            .unwrap_or_else(|| panic!("zombie {pid} has no spawned_from: {z:#}"));
        assert!(frames.iter().any(|f| *f == line), "{line} not in {z:#}");
        // Innermost first: Popen's own frames, then the line, then the module.
        assert!(
            frames[0].as_str().unwrap().contains("subprocess.py:"),
            "{frames:#?}"
        );
        let process = report["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == pid)
            .unwrap();
        let stacks = process["python_stacks"].as_array().unwrap();
        assert_eq!(stacks.len(), 1, "{process:#}");
        assert_eq!(stacks[0]["frames"], z["spawned_from"]);
        assert_eq!(stacks[0]["samples"], 1);
    }
    // A caller five frames below the fork (check_output -> run -> Popen
    // -> _execute_child) is still on the child's stack.
    let deep_line = format!("run_deep ({script}:{})", facts["deep_line"]);
    let deep = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == deep_child)
        .unwrap_or_else(|| panic!("no process {deep_child}"));
    let frames = deep["python_stacks"][0]["frames"].as_array().unwrap();
    assert!(
        frames.iter().any(|f| *f == deep_line),
        "{deep_line} not in {frames:#?}"
    );
    // The parent's record has no spawning stack (it was not forked while traced).
    let root = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == parent)
        .unwrap();
    assert_eq!(root["python_stacks"], serde_json::json!([]));
    // python.forks: the K forks merged on one stack.
    let forks = report["python"]["forks"].as_array().unwrap();
    let from_line: Vec<&Value> = forks
        .iter()
        .filter(|s| s["frames"].as_array().unwrap().iter().any(|f| *f == line))
        .collect();
    assert_eq!(from_line.len(), 1, "{forks:#?}");
    assert_eq!(from_line[0]["samples"], children.len(), "{forks:#?}");
}

#[test]
fn zombie_spawn_lines_debian_static_3_11() {
    zombie_spawn_lines("/usr/bin/python3.11");
}

#[test]
fn zombie_spawn_lines_pyenv_shared_3_11() {
    zombie_spawn_lines(&pyenv("3.11.7"));
}

/// The text report names the user's line (past subprocess's frames) under
/// each zombie and child.
#[test]
fn zombie_spawn_lines_text() {
    let (text, facts, script) = attached(
        "zombies",
        "/usr/bin/python3.11",
        "python_zombie_stacks.py",
        "text",
    );
    let wanted = format!(
        "                   spawned from spawn ({script}:{})",
        facts["line"]
    );
    let zombies = text
        .split("ZOMBIES:")
        .nth(1)
        .and_then(|rest| rest.split("SIGNALS:").next())
        .unwrap_or_else(|| panic!("no ZOMBIES section:\n{text}"));
    // One under each of the 4 zombie rows.
    assert_eq!(
        zombies.lines().filter(|l| *l == wanted).count(),
        4,
        "{zombies}"
    );
}

/// The line a signal was delivered on: N SIGUSR1 the process sends itself
/// from one line of `send_signals`; each delivery (on the way back from
/// kill) carries the receiving thread's Python stack.
fn signal_delivery_lines(python: &str) {
    let (text, facts, script) = attached("signals", python, "python_signal_stacks.py", "json");
    let report = json(&text);
    assert_complete(&report);
    let pid = facts["pid"].as_u64().unwrap();
    let n = facts["sent"].as_u64().unwrap();
    assert_eq!(facts["handled"], n);
    let groups: Vec<&Value> = report["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["signal"] == "SIGUSR1" && g["target"]["pid"] == pid)
        .collect();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let g = groups[0];
    assert_eq!(g["delivered"], n);
    let stacks = g["python_stacks"].as_array().unwrap();
    let total: u64 = stacks.iter().map(|s| s["samples"].as_u64().unwrap()).sum();
    assert_eq!(total, n, "{stacks:#?}");
    // All on the kill line, called from main.
    assert_eq!(stacks.len(), 1, "{stacks:#?}");
    assert_eq!(
        stacks[0]["frames"][0],
        format!("send_signals ({script}:{})", facts["kill_line"]),
        "{stacks:#?}"
    );
    assert_eq!(
        stacks[0]["frames"][1],
        format!("main ({script}:{})", facts["call_line"]),
        "{stacks:#?}"
    );
}

#[test]
fn signal_delivery_lines_debian_static_3_11() {
    signal_delivery_lines("/usr/bin/python3.11");
}

#[test]
fn signal_delivery_lines_pyenv_shared_3_11() {
    signal_delivery_lines(&pyenv("3.11.7"));
}

#[test]
fn signal_delivery_lines_text() {
    let (text, facts, script) = attached(
        "signals",
        "/usr/bin/python3.11",
        "python_signal_stacks.py",
        "text",
    );
    let lines: Vec<&str> = text.lines().collect();
    let row = lines
        .iter()
        .position(|l| l.starts_with("  SIGUSR1"))
        .unwrap_or_else(|| panic!("no SIGUSR1 row:\n{text}"));
    assert_eq!(
        lines[row + 1].trim(),
        format!(
            "delivered in Python: {}x send_signals ({script}:{}) <- main ({script}:{})",
            facts["sent"], facts["kill_line"], facts["call_line"]
        ),
        "{text}"
    );
}

/// `tracer --pid` on an interpreter this tracer does not sample: the text
/// report names what it found and which versions are supported.
fn unsupported(python: &str) -> String {
    use std::io::{BufRead, BufReader};
    require_root();
    let dir = scratch(&format!("unsupported-{}", python.replace('/', "_")));
    let report_path = dir.join("report.txt");
    let report_path = report_path.to_str().unwrap();
    let mut workload = Proc::spawn(
        Command::new(python)
            .args([
                "-c",
                "import sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.readline()",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "workload",
    );
    let mut line = String::new();
    BufReader::new(workload.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let (mut tracer, _stderr) = attach_tracer(workload.pid(), &["-o", report_path]);
    workload
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    assert!(workload.wait().success());
    assert!(tracer.wait().success());
    std::fs::read_to_string(report_path).unwrap()
}

#[test]
fn unsupported_versions_are_named_with_the_supported_ones() {
    let text = unsupported(&pyenv("3.7.16"));
    let expected = "PYTHON: CPython 3.7.16, /root/.pyenv/versions/3.7.16/lib/libpython3.7m.so.1.0 \
                    (shared libpython, release build)\n  \
                    not sampled: CPython 3.7 is not supported (3.8 and later are)\n";
    assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    // Before 3.7 there is no _PyRuntime: the file name says the version.
    let text = unsupported(&pyenv("3.6.15"));
    let expected = "PYTHON: not sampled: /root/.pyenv/versions/3.6.15/lib/libpython3.6m.so.1.0 \
                    is CPython 3.6, which is not supported (3.8 and later are)\n";
    assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    let text = unsupported("/root/.pyenv/versions/2.7.18/bin/python2.7");
    let expected = "PYTHON: not sampled: /root/.pyenv/versions/2.7.18/lib/libpython2.7.so.1.0 \
                    is CPython 2.7, which is not supported (3.8 and later are)\n";
    assert!(text.contains(expected), "no `{expected}` in:\n{text}");
}
