//! The Python lines behind the kernel's events, end to end on real
//! interpreters: which lines read a file and which slept (the top frames
//! riding on the kernel's read and context-switch records), the `Popen(...)`
//! line behind each fork, child and zombie, the line each signal was
//! delivered on, and exact entries from C (`--count-entries`).
//!
//! Run: sudo cargo test -p tracer --test python_events

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

mod common;

use common::{Proc, TRACER, assert_complete, attach_tracer, pyenv, require_root};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    common::Scratch::new(&format!("python_{name}")).dir
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

/// Every sleep is charged to the line that slept, exactly: 5,000 sleeps
/// from one line are as many off-CPU samples there as the voluntary
/// switches the thread's own counter saw inside them (one a sleep, but
/// none for a sleep whose deadline passed first). Where the switch that put
/// the thread back on a CPU never reached the tracer (on this machine kind
/// a switch away from some tasks does not), the sleep it woke from was
/// lost: 4 to 9 of 5,000 were, in a report that said it was complete.
fn every_sleep_counted(python: &str) {
    require_root();
    const SLEEPS: u64 = 5_000;
    let dir = scratch(&format!("sleeps-{}", python.replace('/', "_")));
    let report_path = dir.join("report.json");
    let facts_path = dir.join("facts.json");
    let script = common::workload("python_sleeps.py");
    let status = Command::new(TRACER)
        .args(["--quiet", "--format", "json", "-o"])
        .arg(&report_path)
        .args(["--", python, &script, &SLEEPS.to_string()])
        .arg(&facts_path)
        .status()
        .unwrap();
    assert!(status.success());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(&facts_path).unwrap()).unwrap();
    let switches = facts["switches"].as_u64().unwrap();
    // Nearly every sleep slept: the check is of thousands.
    assert!(switches >= SLEEPS * 9 / 10, "{facts}");
    assert_complete(&report);
    let off_cpu = report["python"]["off_cpu"].as_array().unwrap();
    let naps: Vec<&Value> = off_cpu
        .iter()
        .filter(|s| s["frames"][0] == format!("nap ({script}:14)"))
        .collect();
    assert_eq!(naps.len(), 1, "one stack sleeps in nap: {off_cpu:#?}");
    assert_eq!(
        naps[0]["frames"][1],
        format!("main ({script}:21)"),
        "{naps:#?}"
    );
    assert_eq!(naps[0]["samples"], switches, "{naps:#?}\n{facts}");
    // Each sleep asked for 0.5 ms.
    let slept = naps[0]["off_cpu_ns"].as_u64().unwrap();
    assert!(slept >= switches * 500_000, "{slept} ns asleep");
}

#[test]
fn every_sleep_counted_debian_static_3_11() {
    every_sleep_counted("/usr/bin/python3.11");
}

#[test]
fn every_sleep_counted_pyenv_3_8() {
    every_sleep_counted(&pyenv("3.8.18"));
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

/// Every child has its Python line or is said to have none: new threads
/// that spawn as their first act may fork before the sampler knows them;
/// each such child is named in a warning, none is left without a word.
/// The main thread's later child has its line.
#[test]
fn every_fork_has_its_line_or_is_said_to_have_none() {
    early_forks("early-forks", "/usr/bin/python3.11", &[]);
}

/// The same when each thread first made a thread state for a thread to
/// come (`PyThreadState_New`), which CPython 3.8-3.11 give their maker's
/// thread id: the kernel's search for a thread not published yet found
/// that newer, empty state first and the fork had no frame, no line and
/// no word (5 of 5 runs, 2 to 8 of the 8 children). The search takes the
/// state with the thread's id that runs a frame, its own.
#[test]
fn a_thread_that_made_a_state_for_another_has_its_forks_lines() {
    early_forks("made-states", "/usr/bin/python3.11", &["8", "made-states"]);
}

/// The same on 3.8, whose thread state holds its frame itself (3.11
/// holds it through `cframe`).
#[test]
fn a_thread_that_made_a_state_for_another_has_its_forks_lines_3_8() {
    early_forks("made-states-3.8", &pyenv("3.8.18"), &["8", "made-states"]);
}

/// Thread states a C extension leaked as its threads ended carry the
/// `pthread` glibc gives the next threads: each new thread, published to
/// the sampler before it forks, has its fork's line. Before, the last
/// state naming a thread was published, a leaked one (older, later in the
/// list), which runs no frame: its forks had no line and no word.
#[test]
fn a_thread_whose_pthread_a_leaked_state_carries_has_its_forks_lines() {
    leaked_states("leaked-states", "/usr/bin/python3.11");
}

/// The same on 3.8, which has no native thread id: the state running a
/// frame is the thread's.
#[test]
fn a_thread_whose_pthread_a_leaked_state_carries_has_its_forks_lines_3_8() {
    leaked_states("leaked-states-3.8", &pyenv("3.8.18"));
}

fn leaked_states(name: &str, python: &str) {
    require_root();
    let scratch = common::Scratch::new(&format!("python_{name}"));
    let facts_path = scratch.path("facts.json");
    let script = workspace().join("tests/workloads/python_leaked_states.py");
    let script = std::fs::canonicalize(script).unwrap();
    let command = [
        python.into(),
        script.to_string_lossy().into(),
        facts_path.clone(),
    ];
    let mut servers = 0;
    let report = common::launch_handshake(
        &scratch,
        &command,
        common::Until::Exit,
        &[],
        &mut |stdout, stderr| {
            // Each new thread, then the process once they all wait.
            let mut threads = Vec::new();
            let pid = loop {
                let line = stdout.next_line().expect("the workload's `ready PID`");
                if let Some(tid) = line.strip_prefix("thread ") {
                    assert!(tid.parse::<u32>().is_ok(), "not `thread TID`: {line}");
                    threads.push(tid.to_owned());
                } else if let Some(pid) = line.strip_prefix("ready ") {
                    break pid.to_owned();
                }
            };
            servers = threads.len();
            // Every new thread is published to the sampler before it forks.
            for tid in &threads {
                let line = format!("pid {pid}: Python thread {tid} is sampled from now on");
                if !stderr.has_seen(&line) {
                    stderr.wait_for(&line);
                }
            }
            pid
        },
    );
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(&facts_path).unwrap()).unwrap();
    assert_complete(&report);
    // The workload made the case: some new thread has a leaked state's
    // `pthread` (glibc reuses the ended threads' stacks).
    assert!(facts["reused"].as_u64().unwrap() >= 1, "{facts}");
    let processes = report["processes"].as_array().unwrap();
    let children = facts["children"].as_array().unwrap();
    assert_eq!(children.len(), servers, "{facts}");
    for pid in children {
        let row = processes
            .iter()
            .find(|p| p["pid"] == *pid)
            .unwrap_or_else(|| panic!("no process {pid}: {report:#}"));
        assert!(
            row["python_stacks"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
            "child {pid} has no Python line: {row:#}\nwarnings: {:#}",
            report["warnings"]
        );
    }
    assert_eq!(report["warnings"], serde_json::json!([]), "{report:#}");
}

fn early_forks(name: &str, python: &str, options: &[&str]) {
    require_root();
    let dir = scratch(name);
    let (report_path, facts_path) = (dir.join("report.json"), dir.join("facts.json"));
    let script =
        std::fs::canonicalize(workspace().join("tests/workloads/python_early_forks.py")).unwrap();
    // What the tracer said of each fork without a line (its ForkStack),
    // kept for the failure message.
    let output = Command::new(TRACER)
        .args(["--quiet", "--format", "json", "-o"])
        .arg(&report_path)
        .args(["--", python])
        .arg(&script)
        .arg(&facts_path)
        .args(options)
        .env("RUST_LOG", "tracer=info,tracer::analysis::dispatch=debug")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(&facts_path).unwrap()).unwrap();
    // A fork record lost would leave a child without a line or a word.
    assert_complete(&report);
    let has_line = |pid: &Value| {
        report["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == *pid)
            .unwrap_or_else(|| panic!("no process {pid}: {report:#}"))["python_stacks"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    };
    let warned: Vec<u64> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| {
            w.as_str()?
                .split_once("no Python line: ")?
                .1
                .rsplit_once(": pid")
        })
        .flat_map(|(_, pids)| {
            pids.trim_start_matches('s')
                .trim()
                .split(", ")
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    let early = facts["early"].as_array().unwrap();
    assert_eq!(early.len(), 8, "{facts}");
    for pid in early {
        let said = warned.contains(&pid.as_u64().unwrap());
        let row = report["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == *pid);
        let forks: Vec<&str> = log.lines().filter(|l| l.contains("fork")).collect();
        assert!(
            has_line(pid) != said,
            "child {pid}: line {}, said {said}: {:#}\nits row: {row:#?}\nthe tracer's forks:\n{}",
            has_line(pid),
            report["warnings"],
            forks.join("\n")
        );
    }
    assert!(has_line(&facts["late"]), "{report:#}");
    assert!(!warned.contains(&facts["late"].as_u64().unwrap()));
    println!(
        "{} of {} children forked before their thread was known",
        warned.len(),
        early.len()
    );
}

/// A launcher that forks helpers and then execs Python (a pyenv shim, a
/// shell script): its forks were the shell's, not Python's, and are not
/// said to have a Python line missing. The kernel side said it had no
/// interpreter then; the exec settles them as the old program's.
#[test]
fn a_launchers_forks_before_it_execs_python_are_not_pythons() {
    require_root();
    let scratch = common::Scratch::new("python_launcher");
    // Two execs, as pyenv's shim makes (the shim execs `pyenv`, which
    // forks and execs Python): a new program is looked at afresh, and the
    // forks before that look may be Python's as far as the tracer knows.
    // Python forks once the tracer knows its thread (its go): a fork
    // before that has no line, and says so (CI saw it once).
    let script = "exec /bin/sh -c '/bin/true; /bin/true; exec /usr/bin/python3.11 -c \
                  \"import os, subprocess, sys; print(sys.argv[1], os.getpid(), flush=True); \
                  sys.stdin.readline(); subprocess.run(sys.argv[2:])\" ready /bin/true'";
    let command = ["/bin/sh", "-c", script].map(String::from);
    let report = common::launch_until(&scratch, &command, common::Until::Exit, &[]);
    assert_complete(&report);
    assert_eq!(report["warnings"], serde_json::json!([]), "{report:#}");
    // The shell's two children, and Python's one with its line.
    let trues: Vec<&Value> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["comm"] == "true")
        .collect();
    assert_eq!(trues.len(), 3, "{report:#}");
    let with_line = trues
        .iter()
        .filter(|p| p["python_stacks"].as_array().is_some_and(|s| !s.is_empty()))
        .count();
    assert_eq!(with_line, 1, "{report:#}");
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
