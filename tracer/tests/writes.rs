//! Write syscalls, counted exactly: a writer blocked on a full pipe (with
//! the Python line and the process reading the other end), a line-buffered
//! log with an fsync every 10 lines, sends on a TCP connection; the same
//! counts as strace's; large and partial writes; the text report and the
//! Perfetto trace. Root only.
//!
//! Run: cargo test -p tracer --test writes -- --test-threads=1

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

/// The process's write row of `path` (a prefix for a socket's name).
fn write_row<'a>(report: &'a Value, pid: u64, path: &str) -> &'a Value {
    let rows = report["writes"].as_array().expect("writes");
    rows.iter()
        .find(|r| r["pid"] == pid && r["path"].as_str().unwrap().starts_with(path))
        .unwrap_or_else(|| {
            let have: Vec<String> = rows
                .iter()
                .map(|r| format!("{} {}", r["pid"], r["path"]))
                .collect();
            panic!("no write row of {path} in pid {pid}: {have:?}")
        })
}

fn finding<'a>(report: &'a Value, kind: &str, subject: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == kind && f["subject"] == subject)
        .unwrap_or_else(|| panic!("no {kind} finding on {subject}: {:#}", report["findings"]))
}

/// The workload of issue 47, reported exactly.
#[test]
fn a_blocked_pipe_a_synced_log_and_a_socket_are_counted_exactly() {
    require_root();
    let python = python(SHARED_PYTHON);
    let scratch = Scratch::new("writes_exact");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let report = trace_command(
        &scratch,
        &[],
        &python_command(python, "writes.py", &[&out, &data]),
    );
    assert_complete(&report);
    let facts = load_json(&out);
    let (pid, reader) = (u64_of(&facts["pid"]), u64_of(&facts["reader"]));
    let file = workload("writes.py");

    // 400 x 4 KiB into the pipe, blocked most of the time: the reader
    // takes 4 KiB every 2 ms, the writer would go much faster.
    let reads = report["reads"].as_array().unwrap();
    let pipe_read = reads
        .iter()
        .find(|r| r["pid"] == reader && r["fs"] == "pipe")
        .expect("the reader's pipe row");
    let pipe_name = pipe_read["path"].as_str().unwrap();
    let pipe = write_row(&report, pid, pipe_name);
    assert_eq!(pipe["syscalls"], 400);
    assert_eq!(pipe["bytes"], 400 * 4096);
    assert_eq!(pipe["requested_bytes"], 400 * 4096);
    assert_eq!(pipe["request_sizes"], json!({"4096": 400}));
    assert_eq!(pipe["by_syscall"], json!({"write": 400}));
    assert_eq!(pipe["errors"], 0);
    assert_eq!(pipe_read["bytes"], 400 * 4096);
    let blocked = u64_of(&pipe["context_switches"]["voluntary"]);
    assert!(blocked >= 3, "the writer never blocked: {pipe:#}");
    let line = format!("fill_pipe ({file}:{})", facts["pipe_line"]);
    let stacks = pipe["python_stacks"].as_array().unwrap();
    assert!(
        stacks.iter().any(|s| s["frames"][0] == line.as_str()),
        "{line}: {stacks:#?}"
    );
    let full = finding(&report, "blocked_writes", pipe_name);
    assert_eq!(full["figures"]["reader_pid"], reader);
    assert_eq!(full["figures"]["blocked"], blocked);
    let message = full["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("its reader, pid {reader} (")) && message.ends_with(&line),
        "{message}"
    );

    // 300 lines, a write each, and 30 fsyncs, in the log's row.
    let log_path = facts["log"].as_str().unwrap();
    let log = write_row(&report, pid, log_path);
    assert_eq!(log["syscalls"], 300);
    assert_eq!(log["bytes"], facts["log_bytes"]);
    assert_eq!(log["syncs"], 30);
    assert_eq!(log["by_syscall"], json!({"write": 300, "fsync": 30}));
    assert_eq!(log["fs"], "ext4");
    assert!(u64_of(&log["sync_ns"]) > 0 && log["sync_ns"].as_u64() <= log["kernel_ns"].as_u64());
    finding(&report, "write_per_line", log_path);
    let synced = finding(&report, "sync_per_record", log_path);
    assert_eq!(synced["figures"]["syncs"], 30);

    // 100 sends of 1,000 bytes on the connection to the server's port.
    let port = facts["port"].as_u64().unwrap();
    let socket = report["writes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pid"] == pid && r["peer"] == format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("no row to port {port}: {:#}", report["writes"]));
    assert_eq!(socket["kind"], "socket");
    assert_eq!(socket["protocol"], "TCP");
    assert_eq!(socket["by_syscall"], json!({"sendto": 100}));
    assert_eq!(socket["request_sizes"], json!({"1000": 100}));
    assert_eq!(socket["bytes"], 100_000);
    let send = format!("send_over_tcp ({file}:{})", facts["send_line"]);
    assert!(
        socket["python_stacks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["frames"][0] == send.as_str()),
        "{send}: {socket:#}"
    );
    // The server thread read every byte of it.
    assert!(
        reads.iter().any(|r| r["pid"] == pid
            && r["local"] == format!("127.0.0.1:{port}")
            && r["bytes"] == 100_000),
        "{:#}",
        report["reads"]
    );
    assert_eq!(
        u64_of(&report["sched"]["inside_writes"]["voluntary"]),
        report["writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| u64_of(&r["context_switches"]["voluntary"]))
            .sum::<u64>()
    );
}

/// `strace -f -c` of the same workload: every write, send and fsync it
/// counted, the tracer counted (the tracer traces strace and, through the
/// fork, the workload strace runs).
#[test]
fn writes_agree_with_strace() {
    require_root();
    let python = python(SHARED_PYTHON);
    assert!(
        std::path::Path::new("/usr/bin/strace").exists(),
        "strace is missing (cargo xtask setup installs it)"
    );
    let scratch = Scratch::new("writes_strace");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let summary = scratch.path("strace.txt");
    let syscalls = "write,pwrite64,writev,pwritev,pwritev2,sendto,sendmsg,sendmmsg,\
                    fsync,fdatasync,sync_file_range";
    let mut command: Vec<String> = ["/usr/bin/strace", "-f", "-c", "-e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    command.extend([format!("trace={syscalls}"), "-o".into(), summary.clone()]);
    command.extend(python_command(python, "writes.py", &[&out, &data]));
    let report = trace_command(&scratch, &[], &command);
    assert_complete(&report);
    let facts = load_json(&out);
    let workload = [u64_of(&facts["pid"]), u64_of(&facts["reader"])];

    // `% time seconds usecs/call calls [errors] syscall` rows.
    let summary = std::fs::read_to_string(&summary).unwrap();
    let strace: BTreeMap<String, u64> = summary
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let calls = cells.get(3)?.parse().ok()?;
            let name = *cells.last()?;
            (name != "total").then(|| (name.to_owned(), calls))
        })
        .collect();
    let mut tracer: BTreeMap<String, u64> = BTreeMap::new();
    for row in report["writes"].as_array().unwrap() {
        if !workload.contains(&u64_of(&row["pid"])) {
            continue;
        }
        for (name, calls) in row["by_syscall"].as_object().unwrap() {
            *tracer.entry(name.clone()).or_default() += u64_of(calls);
        }
    }
    assert_eq!(tracer, strace, "tracer vs strace -c:\n{summary}");
    // What the issue counted: 701 writes (400 + 300 + the facts file), 30
    // fsyncs, 100 sends.
    assert_eq!(
        (tracer["write"], tracer["fsync"], tracer["sendto"]),
        (701, 30, 100)
    );
}

/// The WRITES section: the rows, the syncs and the findings.
#[test]
fn the_text_report_has_a_writes_section() {
    require_root();
    let python = python(SHARED_PYTHON);
    let scratch = Scratch::new("writes_text");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.txt");
    let mut args = vec!["--quiet", "-o", &report_path, "--"];
    let command = python_command(python, "writes.py", &[&out, &data]);
    args.extend(command.iter().map(String::as_str));
    assert_exit(&tracer(&args), 0);
    let text = std::fs::read_to_string(&report_path).unwrap();
    let section = &text[text.find("WRITES: ").expect("a WRITES section")..];
    assert!(
        section.starts_with("WRITES: 801 write syscalls and 30 syncs on "),
        "{section}"
    );
    assert!(section.contains("30 in "), "the syncs column: {section}");
    assert!(
        section.contains("writes blocked on a full pipe"),
        "{section}"
    );
    assert!(
        section.contains("30 syncs, one every 10 writes"),
        "{section}"
    );
    assert!(
        section.contains("Python code behind the writes"),
        "{section}"
    );
}

/// `--perfetto`: every write, send and fsync a slice on its thread's
/// "write syscalls" track, read back with Perfetto's official bindings;
/// the reads stay on the "read syscalls" track.
#[test]
fn perfetto_draws_the_writes_on_their_own_track() {
    require_root();
    let python = python(SHARED_PYTHON);
    let scratch = Scratch::new("writes_perfetto");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let trace = scratch.path("trace.pftrace");
    let report = trace_command(
        &scratch,
        &["--perfetto", &trace],
        &python_command(python, "writes.py", &[&out, &data]),
    );
    assert_complete(&report);
    let facts = load_json(&out);
    let summary = perfetto_summary(&trace);
    let pid = u64_of(&facts["pid"]);
    let slices = summary["slices"].as_array().unwrap();
    let on_track = |track: &str, name: &str, file: &str| {
        slices
            .iter()
            .filter(|s| {
                s["owner"]["track"] == track
                    && s["owner"]["tid"] == pid
                    && s["name"] == name
                    && s["args"]["file"].as_str().unwrap_or("").starts_with(file)
            })
            .count()
    };
    let log = facts["log"].as_str().unwrap();
    assert_eq!(on_track("write syscalls", "write", "pipe:["), 400);
    assert_eq!(on_track("write syscalls", "write", log), 300);
    assert_eq!(on_track("write syscalls", "fsync", log), 30);
    assert_eq!(on_track("write syscalls", "sendto", "TCP "), 100);
    assert_eq!(on_track("read syscalls", "write", ""), 0);
    // A blocked write's slice says it slept.
    assert!(
        slices
            .iter()
            .any(|s| s["owner"]["track"] == "write syscalls"
                && s["args"]["voluntary_switches"].as_i64() > Some(0)),
        "no blocked write"
    );
}

/// A 1 MiB write counted whole; a write to a full non-blocking pipe that
/// wrote 65,536 of the 100,000 bytes it asked for, and the next one that
/// wrote none (EAGAIN): bytes against requested bytes say so exactly.
#[test]
fn large_and_partial_writes_are_exact() {
    require_root();
    let python = python(SHARED_PYTHON);
    let scratch = Scratch::new("writes_partial");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let report = trace_command(
        &scratch,
        &[],
        &python_command(python, "partial_writes.py", &[&out, &data]),
    );
    assert_complete(&report);
    let facts = load_json(&out);
    let pid = u64_of(&facts["pid"]);
    let large = write_row(&report, pid, facts["file"].as_str().unwrap());
    assert_eq!(facts["large"], 1 << 20);
    assert_eq!(
        (
            &large["syscalls"],
            &large["bytes"],
            &large["requested_bytes"]
        ),
        (&json!(1), &json!(1 << 20), &json!(1 << 20))
    );
    assert_eq!(large["request_sizes"], json!({"1048576": 1}));
    let written = u64_of(&facts["written"]);
    assert!(written < u64_of(&facts["asked"]), "{facts}");
    let pipe = write_row(&report, pid, facts["pipe"].as_str().unwrap());
    assert_eq!(pipe["syscalls"], 2);
    assert_eq!(pipe["errors"], 1);
    assert_eq!(pipe["bytes"], written);
    assert_eq!(pipe["requested_bytes"], u64_of(&facts["asked"]) + 1);
    assert_eq!(pipe["request_sizes"], json!({"100000": 1, "1": 1}));
}
