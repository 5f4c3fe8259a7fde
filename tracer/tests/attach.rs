//! Attach mode (`--pid`) and the ways tracing stops: the target exits, the
//! duration elapses, SIGINT. Root only.
//!
//! The workload (tests/workloads/interactive.py) is driven through its stdin
//! and answers on its stdout; the tracer says on stderr when it is tracing.
//! Run: cargo test -p tracer --test attach -- --test-threads=1

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use common::*;

/// The interactive workload, started by the test (not by the tracer).
fn start_workload(out: &str, extra: &[&str]) -> (Proc, Lines<std::process::ChildStdout>, u32) {
    let command = python_command(python(STATIC_PYTHON), "interactive.py", &[out]);
    let mut proc = Proc::spawn(
        Command::new(&command[0])
            .args(&command[1..])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "workload",
    );
    let mut stdout = proc.stdout_lines();
    let ready = stdout.wait_for("ready");
    let pid: u32 = ready.strip_prefix("ready ").unwrap().parse().unwrap();
    assert_eq!(pid, proc.pid());
    (proc, stdout, pid)
}

/// `tracer --pid PID --format json -o REPORT ARGS`, returned once it says
/// it is tracing.
fn attach_json(pid: u32, report: &str, extra: &[&str]) -> (Proc, Lines<std::process::ChildStderr>) {
    let mut args = vec!["--format", "json", "-o", report];
    args.extend_from_slice(extra);
    attach_tracer(pid, &args)
}

fn send(proc: &mut Proc, line: &str) {
    let stdin = proc.child.stdin.as_mut().expect("stdin piped");
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
}

/// Attach to a running process, let it read, let it exit: the tracer stops by
/// itself and the counts are exact, including a file opened before attach.
#[test]
fn attach_counts_exactly_and_stops_when_target_exits() {
    require_root();
    let scratch = Scratch::new("attach_counts_exactly");
    let data = ext4_dir(&scratch);
    let pre = format!("{data}/opened-before-attach.txt");
    std::fs::write(&pre, "x".repeat(3000)).unwrap();
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");

    let (mut workload, mut stdout, pid) = start_workload(&out, &["--pre", &pre]);
    let (mut tracer, mut stderr) = attach_json(pid, &report_path, &[]);
    send(&mut workload, "stat 37");
    send(&mut workload, "pre 7");
    drop(workload.child.stdin.take()); // end of input: the workload exits
    stdout.rest();
    assert_eq!(stdout.seen.matches("done").count(), 2, "{}", stdout.seen);
    assert!(workload.wait().success());
    let status = tracer.wait();
    let tracer_stderr = stderr.rest();
    assert_eq!(
        status.code(),
        Some(0),
        "tracer: {status:?}\n{tracer_stderr}"
    );

    let report = load_json(&report_path);
    let expected = load_json(&out);
    assert_eq!(report["stopped"], "target exited");
    assert_eq!(report["target"]["pid"], pid);
    // Not our child, but the kernel side saw it exit.
    assert_eq!(report["target"]["exit_code"], 0);
    assert_eq!(report["target"]["exit_signal"], serde_json::Value::Null);
    assert_complete(&report);
    assert_matches_workload(&report, &expected);

    let stat = entry(&report, pid.into(), "/proc/self/stat");
    assert_eq!(stat["syscalls"], 37);
    assert_eq!(stat["request_sizes"], serde_json::json!({"4096": 37}));
    assert_eq!(stat["opens"], 1);
    // Opened before the tracer attached: named by its real path, through
    // /proc/PID/fd; 3,000 bytes in 512-byte reads: 5 full, 1 partial, 1 EOF.
    let real = expected["preopened"].as_str().unwrap();
    assert_eq!(real, pre);
    let pre_entry = entry(&report, pid.into(), real);
    assert_eq!(pre_entry["syscalls"], 7);
    assert_eq!(pre_entry["request_sizes"], serde_json::json!({"512": 7}));
    assert_eq!(pre_entry["bytes"], 3000);
    assert_eq!(pre_entry["opens"], 0, "opened before the trace");
    assert_eq!(pre_entry["fs"], "ext4");
    assert_eq!(pre_entry["blksize"], 4096);
}

/// Children the process forked before the tracer attached are traced too
/// (unless --no-children): their reads after attach are counted, under their
/// own pid.
fn existing_child(test: &str, extra: &[&str]) -> (serde_json::Value, serde_json::Value) {
    require_root();
    let scratch = Scratch::new(test);
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");
    let (mut workload, mut stdout, pid) = start_workload(&out, &["--child"]);
    let (mut tracer, mut stderr) = attach_json(pid, &report_path, extra);
    send(&mut workload, "stat 5");
    send(&mut workload, "kid 19");
    drop(workload.child.stdin.take());
    stdout.rest();
    assert!(workload.wait().success());
    let status = tracer.wait();
    let tracer_stderr = stderr.rest();
    assert_eq!(
        status.code(),
        Some(0),
        "tracer: {status:?}\n{tracer_stderr}"
    );
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "target exited");
    assert_complete(&report);
    let expected = load_json(&out);
    let child = u64_of(&expected["child_pid"]);
    assert_ne!(child, u64::from(pid));
    assert_eq!(assert_matching(&report, &expected, |f| f["pid"] == pid), 1);
    (report, expected)
}

#[test]
fn attach_follows_children_forked_before_attach() {
    let (report, expected) = existing_child("attach_existing_child", &[]);
    let child = u64_of(&expected["child_pid"]);
    assert_matching(&report, &expected, |f| f["pid"] == child);
    let stat = entry(&report, child, "/proc/self/stat");
    assert_eq!(stat["syscalls"], 19);
    assert_eq!(stat["opens"], 1);
}

#[test]
fn attach_no_children_leaves_existing_child_out() {
    let (report, expected) = existing_child("attach_existing_child_excluded", &["--no-children"]);
    let child = u64_of(&expected["child_pid"]);
    let traced: Vec<&serde_json::Value> = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pid"] == child)
        .collect();
    assert!(traced.is_empty(), "child {child} traced: {traced:#?}");
    assert!(
        !report["sched"]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["pid"] == child),
        "{report:#}"
    );
}

/// SIGINT stops the tracer, which writes its report and exits 0, and leaves
/// the target running.
#[test]
fn sigint_writes_report_and_leaves_target_running() {
    require_root();
    let scratch = Scratch::new("sigint");
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");

    let (mut workload, mut stdout, pid) = start_workload(&out, &[]);
    let (mut tracer, mut stderr) = attach_json(pid, &report_path, &[]);
    send(&mut workload, "stat 25");
    stdout.wait_for("done");
    send(&mut workload, "write");
    stdout.wait_for("done");
    tracer.signal("INT");
    let status = tracer.wait();
    let tracer_stderr = stderr.rest();
    assert_eq!(
        status.code(),
        Some(0),
        "tracer: {status:?}\n{tracer_stderr}"
    );
    assert!(workload.is_running(), "the target died with the tracer");

    let report = load_json(&report_path);
    let stopped = report["stopped"].as_str().unwrap();
    assert!(stopped.contains("SIGINT"), "stopped: {stopped}");
    assert_eq!(report["target"]["pid"], pid);
    assert_complete(&report);
    let expected = load_json(&out);
    assert_matching(&report, &expected, |f| f["path"] == "/proc/self/stat");
    let stat = entry(&report, pid.into(), "/proc/self/stat");
    assert_eq!(stat["syscalls"], 25);
    assert_eq!(stat["opens"], 1);

    // Still answering after the tracer left.
    send(&mut workload, "stat 1");
    stdout.wait_for("done");
    drop(workload.child.stdin.take());
    assert!(workload.wait().success());
}

/// A signal sent the moment the tracer says it is tracing (a quick Ctrl-C)
/// stops it cleanly too: the handlers are in place before that line.
#[test]
fn signal_right_after_attach_line_writes_report() {
    require_root();
    let scratch = Scratch::new("signal_right_after_attach");
    let out = scratch.path("workload.json");
    let (mut workload, mut stdout, pid) = start_workload(&out, &[]);
    for (signal, why) in [
        ("INT", "interrupted (SIGINT)"),
        ("TERM", "terminated (SIGTERM)"),
    ] {
        let report_path = scratch.path(&format!("report-{signal}.json"));
        let (mut tracer, mut stderr) = attach_json(pid, &report_path, &[]);
        tracer.signal(signal);
        let status = tracer.wait();
        let tracer_stderr = stderr.rest();
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal}: tracer {status:?}\n{tracer_stderr}"
        );
        let report = load_json(&report_path);
        assert_eq!(report["stopped"], why);
        assert_eq!(report["target"]["pid"], pid);
        assert!(workload.is_running());
    }
    drop(workload.child.stdin.take());
    stdout.rest();
    assert!(workload.wait().success());
}

/// `--duration 1` on a process blocked on its stdin (it would run forever):
/// the tracer stops after a second with an exact, empty report (the process
/// did nothing while traced) and leaves it running.
#[test]
fn duration_stops_attach_mode() {
    require_root();
    let scratch = Scratch::new("duration_attach");
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");

    let (mut workload, mut stdout, pid) = start_workload(&out, &[]);
    // Asleep in read(0, ...) before the tracer attaches: that read started
    // before tracing and is not counted; nothing else happens.
    wait_blocked_in_read(pid, 0);
    let (mut tracer, mut stderr) = attach_json(pid, &report_path, &["--duration", "1"]);
    let status = tracer.wait();
    let tracer_stderr = stderr.rest();
    assert_eq!(
        status.code(),
        Some(0),
        "tracer: {status:?}\n{tracer_stderr}"
    );
    assert!(workload.is_running());

    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "duration elapsed");
    assert_eq!(report["target"]["pid"], pid);
    assert_eq!(report["target"]["exit_code"], serde_json::Value::Null);
    assert!(report["duration_s"].as_f64().unwrap() >= 1.0, "{report:#}");
    assert_complete(&report);
    assert_eq!(report["reads"], serde_json::json!([]), "{report:#}");
    assert_eq!(
        report["sched"]["threads"],
        serde_json::json!([]),
        "{report:#}"
    );

    drop(workload.child.stdin.take());
    stdout.rest();
    assert!(workload.wait().success());
}

/// `--duration 1` in launch mode: the launched command keeps running after
/// the report (which says so), and still ends normally afterwards.
#[test]
fn duration_stops_launch_mode() {
    require_root();
    let scratch = Scratch::new("duration_launch");
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");
    let command = python_command(python(STATIC_PYTHON), "interactive.py", &[&out]);
    let mut args = vec![
        "--quiet",
        "--duration",
        "1",
        "--format",
        "json",
        "-o",
        &report_path,
        "--",
    ];
    args.extend(command.iter().map(String::as_str));
    // The launched workload inherits the tracer's stdin and stdout.
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut stdout = tracer.stdout_lines();
    let mut stderr = tracer.stderr_lines();
    let ready = stdout.wait_for("ready");
    let pid: u32 = ready.strip_prefix("ready ").unwrap().parse().unwrap();
    let status = tracer.wait();
    // (Its stderr stays open in the workload: read it once that has exited.)
    assert!(
        std::path::Path::new(&report_path).exists(),
        "no report; tracer {status:?}"
    );
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "duration elapsed");
    assert_eq!(report["target"]["pid"], pid);
    assert_eq!(report["target"]["exit_code"], serde_json::Value::Null);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(&format!("(pid {pid}) is still running")),
        "{warnings}"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the launched command did not outlive the tracer"
    );

    // End its input: it writes its figures and exits; its stdout (our pipe)
    // reaches end of file when it has.
    drop(tracer.child.stdin.take());
    stdout.rest();
    let tracer_stderr = stderr.rest();
    assert_eq!(
        status.code(),
        Some(0),
        "tracer: {status:?}\n{tracer_stderr}"
    );
    let expected = load_json(&out);
    assert_eq!(expected["pid"], pid);
}

/// Where is it stuck? A program whose threads only sleep gives no CPU
/// samples, yet the report says where each thread is when tracing starts
/// and stops (state, syscall, Python stack), and a sleep still in progress
/// at the stop counts as off-CPU time, on the stack it sleeps in.
#[test]
fn stuck_threads_are_shown_where_they_sleep() {
    require_root();
    let scratch = Scratch::new("stuck_threads");
    let report_path = scratch.path("report.json");
    let command = python_command(python(STATIC_PYTHON), "python_stuck.py", &[]);
    let (mut workload, pid) = spawn_until_ready(&command);
    wait_blocked_in_read(pid, 0);
    let (mut tracer, _stderr) = attach_tracer(
        pid,
        &["--duration", "1", "--format", "json", "-o", &report_path],
    );
    say_go(&mut workload);
    assert!(tracer.wait().success());
    workload.signal("KILL");
    let report = load_json(&report_path);
    let python = &report["python"];
    let file = common::workload("python_stuck.py");
    let thread = |list: &str, function: &str| -> serde_json::Value {
        python[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["frames"][0]["function"] == function)
            .cloned()
            .unwrap_or_else(|| panic!("no thread in {function} in {list}: {python:#}"))
    };
    // At the start the main thread waits for its go (a read of stdin).
    let main = thread("threads_at_start", "<module>");
    assert_eq!(main["tid"], pid);
    assert_eq!(main["state"], "sleeping");
    assert_eq!(main["syscall"], "read");
    assert_eq!(main["frames"][0]["file"], file.as_str());
    // At the end it sleeps in stuck(), the waiter in Event.wait.
    let main = thread("threads_at_end", "stuck");
    assert_eq!(main["syscall"], "clock_nanosleep");
    assert!(u64_of(&main["asleep_ns"]) > 0, "{main:#}");
    let waiter = thread("threads_at_end", "Condition.wait");
    assert_eq!(waiter["syscall"], "futex");
    assert!(
        waiter["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["function"] == "worker"),
        "{waiter:#}"
    );
    // The waiter slept through the whole trace: at least its duration.
    let duration_ns = (report["duration_s"].as_f64().unwrap() * 1e9) as u64;
    assert!(
        u64_of(&waiter["asleep_ns"]) * 10 >= duration_ns * 9,
        "{waiter:#}"
    );
    // The sleep in stuck() is in progress at the stop: counted, on its stack.
    let sched = report["sched"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == pid)
        .expect("the main thread switched during the trace");
    assert!(u64_of(&sched["asleep_at_end_ns"]) > 0, "{sched:#}");
    let off_cpu = python["off_cpu"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["frames"][0].as_str().unwrap().starts_with("stuck ("))
        .unwrap_or_else(|| panic!("no off-CPU entry in stuck(): {:#}", python["off_cpu"]));
    assert!(u64_of(&off_cpu["off_cpu_ns"]) > 0, "{off_cpu:#}");
}

/// `--dump`: where every Python thread is now, without tracing: the state,
/// the system call and the whole stack of each, one frame a line; the JSON
/// form has them in `python.threads_at_start`.
#[test]
fn dump_prints_every_thread_and_exits() {
    require_root();
    let command = python_command(python(STATIC_PYTHON), "python_stuck.py", &[]);
    let (_workload, pid) = spawn_until_ready(&command);
    wait_blocked_in_read(pid, 0);
    let pid_arg = pid.to_string();
    let text = tracer(&["--pid", &pid_arg, "--dump"]);
    assert_exit(&text, 0);
    let text = common::text(&text.stdout);
    let file = common::workload("python_stuck.py");
    assert!(
        text.contains(&format!(
            "pid {pid} tid {pid} \"MainThread\" (sleeping in read):\n    <module> ({file}:"
        )),
        "{text}"
    );
    assert!(
        text.contains("\"waiter\" (sleeping in futex):\n    Condition.wait ("),
        "{text}"
    );
    assert!(
        text.contains(&format!("    worker ({file}:12)\n")),
        "{text}"
    );
    let json = tracer(&["--pid", &pid_arg, "--dump", "--format", "json"]);
    assert_exit(&json, 0);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["stopped"], "dump");
    let threads = report["python"]["threads_at_start"].as_array().unwrap();
    assert_eq!(threads.len(), 2, "{threads:#?}");
    // Nothing was traced: no kernel sections.
    assert_eq!(report["events"]["received"], 0);
    // --dump needs a running process.
    assert_exit(&tracer(&["--dump", "--", "true"]), 2);
}
