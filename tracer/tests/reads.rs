//! Read syscalls, counted exactly: unbuffered and buffered reads of procfs
//! and regular files, blocking pipe reads and their context switches, a
//! cross-check with strace, and the text report. Root only.
//!
//! Run: cargo test -p tracer --test reads -- --test-threads=1

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// The reads workload under `python`: every file it read matches exactly,
/// plus the figures the issue names, stated literally.
fn reads_exact(python_path: &str, test: &str) -> (Value, Value) {
    reads_exact_with_env(python_path, test, &[])
}

fn reads_exact_with_env(python_path: &str, test: &str, env: &[(&str, &str)]) -> (Value, Value) {
    require_root();
    let python = python(python_path);
    let scratch = Scratch::new(test);
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let report = trace_command_with_env(
        &scratch,
        &[],
        &python_command(python, "reads.py", &[&out, &data]),
        env,
    );
    let expected = load_json(&out);
    let pid = u64_of(&expected["pid"]);
    assert_eq!(report["target"]["pid"], pid);
    assert_complete(&report);
    assert_eq!(assert_matches_workload(&report, &expected), 9);

    // 37 x os.read(fd, 4096) on /proc/self/stat, opened once.
    let stat = entry(&report, pid, "/proc/self/stat");
    assert_eq!(stat["syscalls"], 37);
    assert_eq!(stat["request_sizes"], serde_json::json!({"4096": 37}));
    assert_eq!(stat["by_syscall"], serde_json::json!({"read": 37}));
    assert_eq!(stat["opens"], 1);
    assert_eq!(
        (&stat["fs"], &stat["blksize"]),
        (&"proc".into(), &1024.into())
    );

    // pread64 / readv / preadv (CPython's os.preadv is preadv2 underneath).
    let comm = entry(&report, pid, "/proc/self/comm");
    assert_eq!(comm["by_syscall"], serde_json::json!({"pread64": 13}));
    let cmdline = entry(&report, pid, "/proc/self/cmdline");
    assert_eq!(
        cmdline["by_syscall"],
        serde_json::json!({"readv": 5, "preadv": 3})
    );
    assert_eq!(
        cmdline["request_sizes"],
        serde_json::json!({"300": 5, "128": 3})
    );

    // open('/proc/self/status', 'rb') + iterate lines, 40 times: the
    // buffer is st_blksize = 1 KiB, every request is 1024 bytes.
    let status = entry(&report, pid, "/proc/self/status");
    assert_eq!(status["opens"], 40);
    assert_eq!(status["fs"], "proc");
    assert_eq!(status["blksize"], 1024);
    let sizes = request_sizes(status);
    assert_eq!(sizes.keys().collect::<Vec<_>>(), [&1024], "{status:#}");
    // Each opening: a 1.4 KB file takes two 1 KiB reads plus the EOF read.
    assert!(sizes[&1024] >= 3 * 40, "{status:#}");
    // The finding about it, as data: the same figures as its row.
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "small_read_requests" && f["subject"] == "/proc/self/status")
        .unwrap_or_else(|| panic!("{:#}", report["findings"]));
    assert_eq!(finding["concern"], "reads");
    assert_eq!(finding["figures"]["pid"], pid);
    assert_eq!(finding["figures"]["syscalls"], status["syscalls"]);
    assert_eq!(finding["figures"]["request_size"], 1024);
    assert_eq!(finding["figures"]["bytes"], status["bytes"]);
    assert_eq!(finding["figures"]["suggested_request_size"], 4096);
    assert!(
        finding["figures"]["syscalls_with_suggested_size"]
            .as_u64()
            .unwrap()
            < status["syscalls"].as_u64().unwrap(),
        "{finding}"
    );
    // Context switches inside reads are a report field, the sum of the rows'.
    let inside: u64 = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["context_switches"]["voluntary"].as_u64().unwrap())
        .sum();
    assert_eq!(report["sched"]["inside_reads"]["voluntary"], inside);

    // The same buffered reads of a regular file: 4 KiB requests.
    let binary = entry(&report, pid, &format!("{data}/binary.txt"));
    assert_eq!(binary["fs"], "ext4");
    assert_eq!(binary["blksize"], 4096);
    assert_eq!(expected["regular_blksize"], 4096);
    // 20,032 bytes: 4 full blocks, one partial, one EOF read, 3 times.
    assert_eq!(binary["request_sizes"], serde_json::json!({"4096": 18}));
    assert_eq!(binary["opens"], 4, "3 opens to read + 1 to write it");

    // Text mode, iterating lines: TextIOWrapper's 8 KiB chunks.
    let text = entry(&report, pid, &format!("{data}/text.txt"));
    assert_eq!(text["request_sizes"], serde_json::json!({"8192": 12}));
    let statm = entry(&report, pid, "/proc/self/statm");
    assert_eq!(statm["request_sizes"], serde_json::json!({"8192": 12}));
    // Text mode, .read(): FileIO.readall asks for st_size + 1, then 1.
    let whole = entry(&report, pid, &format!("{data}/whole.txt"));
    assert_eq!(
        whole["request_sizes"],
        serde_json::json!({"20033": 3, "1": 3})
    );
    // ... and on procfs (st_size 0) for 8 KiB, then for what is left of it.
    let limits = entry(&report, pid, "/proc/self/limits");
    let sizes = request_sizes(limits);
    assert_eq!(sizes.get(&8192), Some(&4), "{limits:#}");
    assert_eq!(sizes.values().sum::<u64>(), 8, "{limits:#}");
    (report, expected)
}

#[test]
fn exact_reads_static_python() {
    let (report, expected) = reads_exact(STATIC_PYTHON, "exact_reads_static_python");
    // Static interpreter: no libpython to load.
    let pid = u64_of(&expected["pid"]);
    let libpython = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["pid"] == pid && e["path"].as_str().unwrap().contains("libpython3.11.so"));
    assert!(!libpython, "{report:#}");
}

#[test]
fn exact_reads_shared_libpython() {
    let (report, expected) = reads_exact(SHARED_PYTHON, "exact_reads_shared_libpython");
    // The interpreter really is the one linking libpython: the dynamic
    // loader read its ELF header.
    let pid = u64_of(&expected["pid"]);
    let libpython = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pid"] == pid && e["path"].as_str().unwrap().contains("libpython3.11.so"))
        .unwrap_or_else(|| panic!("no read of libpython3.11.so: {report:#}"));
    assert!(u64_of(&libpython["syscalls"]) >= 1);
}

/// The same exact figures with the syscall programs hooked as perf-event
/// tracepoints (`TRACER_SYSCALL_HOOKS=perf`, for kernels that preempt a
/// raw tracepoint's run): the same programs, the same counts, and the
/// report says how they were hooked.
#[test]
fn exact_reads_through_perf_event_hooks() {
    let (report, _) = reads_exact_with_env(
        SHARED_PYTHON,
        "exact_reads_through_perf_event_hooks",
        &[("TRACER_SYSCALL_HOOKS", "perf")],
    );
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let said = warnings[0].as_str().unwrap();
    assert!(
        said.starts_with(
            "TRACER_SYSCALL_HOOKS=perf: the syscall, fork and exit programs run as perf-event \
             tracepoints (no run skipped)"
        ),
        "{said}"
    );
}

/// The second copies, the default where the kernel may preempt the
/// programs' runs, forced here: every event counted once (the first copies
/// run, the second ones take their marks), the order check passed, nothing
/// said.
#[test]
fn exact_reads_through_second_copies() {
    let (report, _) = reads_exact_with_env(
        SHARED_PYTHON,
        "exact_reads_through_second_copies",
        &[("TRACER_SYSCALL_HOOKS", "both")],
    );
    assert_eq!(report["warnings"], serde_json::json!([]));
}

/// Another tool's perf event on `raw_syscalls:sys_enter`, open before the
/// trace: the kernel runs the perf-event programs there at its place,
/// before the tracer's raw tracepoint, so the second copies would run
/// before the first. The order check finds it: the copies are detached,
/// the report says why, and the reads are still exact (this kernel does
/// not preempt the first copies' runs).
#[test]
fn second_copies_out_of_order_are_detached_and_said() {
    require_root();
    let id = std::process::Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            "mountpoint -q /sys/kernel/tracing || mount -t tracefs none /sys/kernel/tracing; \
             cat /sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
        ])
        .output()
        .unwrap();
    assert!(id.status.success(), "{id:?}");
    let id: u64 = String::from_utf8(id.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A counting event on CPU 0 for every task: what `perf stat -e
    // raw_syscalls:sys_enter -a` opens.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&2u32.to_ne_bytes()); // PERF_TYPE_TRACEPOINT
    attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
    attr[8..16].copy_from_slice(&id.to_ne_bytes()); // config
    // SAFETY: a perf_event_attr of its stated size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1,
            0,
            -1,
            8u64, // PERF_FLAG_FD_CLOEXEC
        )
    };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    let (report, _) = reads_exact_with_env(
        SHARED_PYTHON,
        "second_copies_out_of_order_are_detached_and_said",
        &[("TRACER_SYSCALL_HOOKS", "both")],
    );
    // SAFETY: the descriptor opened above.
    unsafe { libc::close(fd as i32) };
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let said = warnings[0].as_str().unwrap();
    assert!(
        said.contains("(another tool's perf event on sys_enter runs before the tracer's programs)")
            && said.ends_with("the skipped runs are counted"),
        "{said}"
    );
}

/// Blocking reads have voluntary context switches inside them; procfs reads,
/// many more syscalls, have (almost) none. Syscalls and context switches are
/// different things and the report keeps them apart.
fn pipe_blocks(python_path: &str, test: &str) {
    require_root();
    let python = python(python_path);
    let scratch = Scratch::new(test);
    let out = scratch.path("workload.json");
    let report = trace_command(&scratch, &[], &python_command(python, "pipe.py", &[&out]));
    let expected = load_json(&out);
    let pid = u64_of(&expected["pid"]);
    assert_complete(&report);
    assert_matches_workload(&report, &expected);

    let messages = u64_of(&expected["blocked_reads"]);
    assert_eq!(messages, 10);
    let pipe_path = expected["pipe_path"].as_str().unwrap();
    assert!(pipe_path.starts_with("pipe:["), "{pipe_path}");
    let pipe = entry(&report, pid, pipe_path);
    assert_eq!(pipe["fs"], "pipe");
    assert_eq!(pipe["syscalls"], messages);
    assert_eq!(pipe["request_sizes"], serde_json::json!({"100": messages}));
    assert_eq!(pipe["bytes"], 100 * messages);
    assert_eq!(pipe["opens"], 0, "a pipe is not opened by path");
    // The writer only wrote once the reader was asleep in read(): every
    // read slept at least once.
    let voluntary = u64_of(&pipe["context_switches"]["voluntary"]);
    assert!(voluntary >= messages, "{pipe:#}");
    assert!(u64_of(&report["sched"]["voluntary"]) >= messages);
    let main_tid = u64_of(&expected["main_tid"]);
    let main = report["sched"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == main_tid)
        .unwrap_or_else(|| panic!("main thread {main_tid} not in sched: {report:#}"));
    assert_eq!(main["pid"], pid);
    assert!(u64_of(&main["voluntary"]) >= voluntary, "{main:#}");
    // The writer thread shows up under the same process.
    let writer_tid = u64_of(&expected["writer_tid"]);
    assert!(
        report["sched"]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tid"] == writer_tid && t["pid"] == pid),
        "{report:#}"
    );

    // 2,000 reads of /proc/self/stat, which never wait for anything.
    let stat = entry(&report, pid, "/proc/self/stat");
    assert_eq!(stat["syscalls"], 2000);
    let switches = u64_of(&stat["context_switches"]["voluntary"])
        + u64_of(&stat["context_switches"]["involuntary"]);
    assert!(
        switches * 10 <= 2000,
        "{switches} context switches inside 2,000 procfs reads: {stat:#}"
    );
}

#[test]
fn blocking_pipe_reads_static_python() {
    pipe_blocks(STATIC_PYTHON, "blocking_pipe_reads_static_python");
}

#[test]
fn blocking_pipe_reads_shared_libpython() {
    pipe_blocks(SHARED_PYTHON, "blocking_pipe_reads_shared_libpython");
}

/// The same run seen by strace and by the tracer: the tracer traces strace
/// and, through the fork, the Python process strace runs. Every read strace
/// saw the workload make, the tracer counted, with the same request sizes.
#[test]
fn agrees_with_strace() {
    require_root();
    let python = python(STATIC_PYTHON);
    assert!(
        std::path::Path::new("/usr/bin/strace").exists(),
        "strace is missing (apt-get install strace)"
    );
    let scratch = Scratch::new("agrees_with_strace");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let log = scratch.path("strace.log");
    let mut command: Vec<String> = [
        "/usr/bin/strace",
        "-f",
        "-y",
        "-s",
        "8",
        "-e",
        "trace=read,pread64,readv,preadv,preadv2",
        "-o",
        &log,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    command.extend(python_command(python, "reads.py", &[&out, &data]));
    let report = trace_command(&scratch, &[], &command);
    assert_complete(&report);
    let expected = load_json(&out);
    let pid = u64_of(&expected["pid"]);
    assert_ne!(report["target"]["pid"], pid, "the target is strace");
    assert_matches_workload(&report, &expected);

    let log = std::fs::read_to_string(&log).unwrap();
    let reads: Vec<StraceRead> = parse_strace(&log)
        .into_iter()
        .filter(|r| r.pid == pid)
        .collect();
    assert!(
        !reads.is_empty(),
        "strace saw no reads of pid {pid}:\n{log}"
    );

    // All read-family syscalls of the Python process, however they are named.
    let tracer_total = read_syscalls_of(&report, pid);
    assert_eq!(
        tracer_total,
        reads.len() as u64,
        "strace saw {} read syscalls in pid {pid}, the tracer {tracer_total}",
        reads.len()
    );

    // File by file, for the workload's own files (strace -y shows
    // /proc/PID/... where the program opened /proc/self/...).
    for want in expected["files"].as_array().unwrap() {
        let path = want["path"].as_str().unwrap();
        let seen_as = path.replace("/proc/self/", &format!("/proc/{pid}/"));
        let mine: Vec<&StraceRead> = reads.iter().filter(|r| r.path == seen_as).collect();
        let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_syscall: BTreeMap<String, u64> = BTreeMap::new();
        for r in &mine {
            *sizes.entry(r.request.to_string()).or_default() += 1;
            // The tracer counts preadv2 with preadv.
            let name = if r.syscall == "preadv2" {
                "preadv"
            } else {
                &r.syscall
            };
            *by_syscall.entry(name.to_owned()).or_default() += 1;
        }
        let bytes: i64 = mine.iter().map(|r| r.ret.max(0)).sum();
        let got = entry(&report, pid, path);
        assert_eq!(got["syscalls"], mine.len(), "{path}: strace vs tracer");
        assert_eq!(
            got["request_sizes"],
            serde_json::to_value(&sizes).unwrap(),
            "{path}: strace vs tracer"
        );
        assert_eq!(
            got["by_syscall"],
            serde_json::to_value(&by_syscall).unwrap(),
            "{path}: strace vs tracer"
        );
        assert_eq!(got["bytes"], bytes, "{path}: strace vs tracer");
    }
}

/// The human-readable report keeps syscalls and context switches apart, and
/// explains why procfs reads come in 1 KiB requests.
#[test]
fn text_report() {
    require_root();
    let python = python(STATIC_PYTHON);
    let scratch = Scratch::new("text_report");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.txt");
    let mut args = vec!["--quiet", "-o", &report_path, "--"];
    let command = python_command(python, "reads.py", &[&out, &data]);
    args.extend(command.iter().map(String::as_str));
    let output = tracer(&args);
    assert_exit(&output, 0);
    let text = std::fs::read_to_string(&report_path).unwrap();
    let expected = load_json(&out);
    let pid = expected["pid"].as_u64().unwrap();

    assert!(
        text.contains(&format!("(pid {pid})")),
        "no target pid in:\n{text}"
    );
    assert!(
        text.contains("stopped: target exited, exited with code 0"),
        "{text}"
    );
    assert!(
        text.contains("st_blksize 1024"),
        "no blksize finding:\n{text}"
    );
    let status = expected["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/proc/self/status")
        .unwrap();
    let finding = format!(
        "/proc/self/status: {} read syscalls of 1 KiB",
        status["syscalls"]
    );
    assert!(text.contains(&finding), "no `{finding}` in:\n{text}");

    let lines: Vec<&str> = text.lines().collect();
    let syscalls = lines
        .iter()
        .any(|l| l.contains("read syscalls") && !l.contains("context switches"));
    let switches = lines
        .iter()
        .any(|l| l.contains("context switches") && !l.contains("read syscalls"));
    assert!(
        syscalls && switches,
        "`read syscalls` and `context switches` not on separate lines:\n{text}"
    );
    for line in &lines {
        assert!(
            !(line.contains("read syscalls") && line.contains("context switches")),
            "syscalls and context switches mixed in one line: {line}"
        );
    }
    // The /proc/self/stat row: its exact count, 37 requests of 4 KiB.
    let row = lines
        .iter()
        .find(|l| l.contains("/proc/self/stat ") && l.contains(&pid.to_string()))
        .unwrap_or_else(|| panic!("no /proc/self/stat row:\n{text}"));
    assert!(row.contains("4 KiB x 37"), "{row}");
}

/// A walk of 100,000 distinct small files: a row for each, with its exact
/// figures, and nothing dropped (the kernel holds only the descriptors
/// open now; each row is sent when its file is closed).
#[test]
fn a_row_for_each_of_100000_files() {
    const FILES: usize = 100_000;
    let (report, expected, data) = trace_many_files("a_row_for_each_of_100000_files", FILES, &[]);
    let pid = u64_of(&expected["pid"]);
    // Not assert_complete: on failure it would print 100,000 rows.
    assert_eq!(report["complete"], true, "{}", report["events"]);
    assert_eq!(report["events"]["lost"], 0);
    for (name, count) in report["events"]["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped {name}: {}", report["events"]);
    }
    let prefix = format!("{data}/");
    let rows: BTreeMap<&str, &Value> = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pid"] == pid && r["path"].as_str().unwrap().starts_with(&prefix))
        .map(|r| (r["path"].as_str().unwrap(), r))
        .collect();
    let bytes = expected["bytes"].as_object().unwrap();
    assert_eq!(bytes.len(), FILES);
    assert_eq!(rows.len(), FILES, "one row per file");
    let reads = u64_of(&expected["reads_per_file"]);
    let request = expected["request"].to_string();
    for (path, want) in bytes {
        let row = rows
            .get(path.as_str())
            .unwrap_or_else(|| panic!("no row for {path}"));
        assert_eq!(row["syscalls"], reads, "{path}: {row}");
        assert_eq!(row["bytes"], *want, "{path}: {row}");
        assert_eq!(row["opens"], 1, "{path}: {row}");
        assert_eq!(row["errors"], 0, "{path}: {row}");
        assert_eq!(row["request_sizes"], serde_json::json!({ &request: reads }));
        assert_eq!(row["by_syscall"], serde_json::json!({ "read": reads }));
    }
}

/// `many_files.py` creates `files` small files, then reads each (twice:
/// its data, then the end) under the tracer: (report, workload's own
/// figures, the files' directory).
fn trace_many_files(test: &str, files: usize, extra: &[&str]) -> (Value, Value, String) {
    require_root();
    let python = python(STATIC_PYTHON);
    let scratch = Scratch::new(test);
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let mut create = python_command(python, "many_files.py", &[&out, &data]);
    create.extend([files.to_string(), "--create".into()]);
    let made = std::process::Command::new(&create[0])
        .args(&create[1..])
        .status()
        .unwrap();
    assert!(made.success(), "creating the files: {made}");
    let mut command = python_command(python, "many_files.py", &[&out, &data]);
    command.push(files.to_string());
    let report = trace_command(&scratch, extra, &command);
    (report, load_json(&out), data)
}

/// With every read's Python stack captured (`--read-stacks 1`), 20,000
/// files need more stacks than the kernel's table holds (16,384): those
/// past it come to userspace in records, none dropped, each file's stacks
/// add up to its reads.
#[test]
fn read_stacks_past_the_kernel_table_are_all_kept() {
    const FILES: usize = 20_000;
    let (report, expected, data) = trace_many_files(
        "read_stacks_past_the_kernel_table_are_all_kept",
        FILES,
        &["--read-stacks", "1"],
    );
    let pid = u64_of(&expected["pid"]);
    assert_eq!(report["complete"], true, "{}", report["events"]);
    for (name, count) in report["events"]["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped {name}: {}", report["events"]);
    }
    let prefix = format!("{data}/");
    let reads = u64_of(&expected["reads_per_file"]);
    let mut files = 0;
    for row in report["reads"].as_array().unwrap() {
        if row["pid"] != pid || !row["path"].as_str().unwrap().starts_with(&prefix) {
            continue;
        }
        files += 1;
        assert_eq!(row["python_stacks_every"], 1, "{row}");
        let stacks = row["python_stacks"].as_array().unwrap();
        let captured: u64 = stacks.iter().map(|s| u64_of(&s["samples"])).sum();
        assert_eq!(captured, reads, "{row}");
        let top = stacks[0]["frames"][0].as_str().unwrap();
        assert!(top.contains("many_files.py"), "{row}");
    }
    assert_eq!(files, FILES);
}
