//! Python sampling end to end, as root, on the pyenv interpreters of this
//! machine (3.8, 3.9, 3.10, 3.12, 3.13; the Debian 3.9, 3.11, 3.13, 3.14 and
//! pyenv 3.11 interpreters run the same checks in tests/matrix/): a
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
    Proc, Scratch, TRACER, attach_tracer,
    calibrated::{RATE, Run, SECONDS, check_calibrated},
    load_json, pyenv, python_command, require_root,
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
