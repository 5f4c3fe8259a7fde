//! The interpreter as pid 1 of its own pid namespace and root, traced by
//! its host pid and by launching `unshare`.

use super::*;

/// The container workload's figures in a report: 37 reads of
/// /proc/self/stat by the Python process (host pid `pid`), its hotspot
/// `burn` with the file and line the process sees, and its child, reaped by
/// a wait4 that returned the child's pid in the namespace.
pub(crate) fn check_container(
    report: &Value,
    facts: &Value,
    pid: u64,
    files: &Files,
    script: &str,
) {
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
pub(crate) fn container_attach(interpreter: &Interpreter) {
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
pub(crate) fn container_launch(interpreter: &Interpreter) {
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
