//! Hotspots and /proc reads: calibrated CPU shares, exact read counts in
//! the request sizes each version uses, and the same run seen by strace.

use super::*;

// ---------------------------------------------------------------------------
// Workloads: one function each, taking the interpreter.

/// 70/30 CPU shares within 5 points and the folded chain `main;outer;inner`.
pub(crate) fn calibrated_hotspots(interpreter: &Interpreter) {
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
pub(crate) fn check_proc_reads(report: &Value, facts: &Value, interpreter: &Interpreter) {
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
pub(crate) fn proc_reads(interpreter: &Interpreter) {
    let Traced { report, facts, .. } = traced_from_start(interpreter, "proc", "matrix_proc.py");
    // No pid namespace: the pid it sees is the host pid, and it is the target.
    assert_eq!(report["target"]["pid"], facts["pid"]);
    assert_eq!(report["target"]["ns_pid"], facts["pid"]);
    check_proc_reads(&report, &facts, interpreter);
}

/// The same run seen by strace and by the tracer (which traces strace and
/// follows it to the Python process): every read of the workload's /proc
/// files, with the same sizes and bytes. This is where `proc_buffer` comes
/// from: what the version really asks for, not what the docs say.
pub(crate) fn proc_reads_agree_with_strace(interpreter: &Interpreter) {
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
