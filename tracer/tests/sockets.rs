//! Socket reads are reads: recv, recv_into, recvfrom, recvmsg, recvmmsg and
//! read on TCP, UDP and unix sockets, counted exactly and named by protocol
//! and addresses; the Python line behind each; a cross-check with strace;
//! many connections from one host folded into one row. Root only.
//!
//! Run: cargo test -p tracer --test sockets -- --test-threads=1

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

/// The workload's rows, exactly, and the figures stated literally.
#[test]
fn socket_reads_exact() {
    require_root();
    let python = python(STATIC_PYTHON);
    let scratch = Scratch::new("socket_reads_exact");
    let out = scratch.path("workload.json");
    let dir = scratch.socket_dir();
    let command = python_command(python, "sockets.py", &[&out, &dir, "--wait"]);
    // Every read's Python stack (1 in 1), so each line's count is exact.
    let report = launch_with(
        &scratch,
        &command,
        Until::Done,
        &[],
        &["--read-stacks", "1"],
    );
    let expected = load_json(&out);
    let pid = u64_of(&expected["pid"]);
    assert_complete(&report);
    assert_eq!(assert_matches_workload(&report, &expected), 6);

    // recv x7 (64), recv_into x5 (100), recvmsg x4 (200), recvmsg_into
    // x3 (30 + 50), os.read x6 (32) on the accepted TCP connection.
    let tcp = entry(&report, pid, expected["tcp"].as_str().unwrap());
    assert_eq!(tcp["syscalls"], 25);
    assert_eq!(tcp["bytes"], 2180);
    assert_eq!(
        tcp["by_syscall"],
        json!({"recvfrom": 12, "recvmsg": 7, "read": 6})
    );
    assert_eq!(
        tcp["request_sizes"],
        json!({"64": 7, "100": 5, "200": 4, "80": 3, "32": 6})
    );
    assert_eq!(
        (&tcp["kind"], &tcp["fs"]),
        (&json!("socket"), &json!("socket"))
    );
    let name = tcp["path"].as_str().unwrap();
    assert!(
        name.starts_with("TCP 127.0.0.1:") && name.contains(" <- 127.0.0.1:"),
        "{name}"
    );
    let udp = entry(&report, pid, expected["udp"].as_str().unwrap());
    assert_eq!((&udp["syscalls"], &udp["bytes"]), (&json!(4), &json!(160)));
    assert_eq!(udp["peer"], Value::Null, "an unconnected UDP socket");
    let connected = entry(&report, pid, expected["udp_connected"].as_str().unwrap());
    assert!(
        connected["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let unix = entry(&report, pid, &format!("unix {dir}/x.sock"));
    assert_eq!(
        (&unix["syscalls"], &unix["bytes"]),
        (&json!(3), &json!(384))
    );
    let pair = entry(&report, pid, "unix (unnamed)");
    assert_eq!(pair["by_syscall"], json!({"recvfrom": 2}));
    // recvmmsg: one syscall per call, the bytes of the 3 messages it got.
    let mmsg = entry(&report, pid, expected["recvmmsg"].as_str().unwrap());
    assert_eq!(mmsg["by_syscall"], json!({"recvmmsg": 2}));
    assert_eq!(
        (&mmsg["request_sizes"], &mmsg["bytes"]),
        (&json!({"256": 2}), &json!(150))
    );

    // The Python line behind every read, with its exact count.
    let script = expected["script"].as_str().unwrap();
    let line = |tag: &str| u64_of(&expected["lines"][tag]);
    let by_line = |row: &Value| -> BTreeMap<u64, u64> {
        let mut lines = BTreeMap::new();
        for stack in row["python_stacks"].as_array().unwrap() {
            let top = stack["frames"][0].as_str().unwrap();
            let at = top
                .rsplit_once(&format!("({script}:"))
                .and_then(|(_, l)| l.strip_suffix(')')?.parse().ok())
                .unwrap_or_else(|| panic!("not a frame of {script}: {top}"));
            *lines.entry(at).or_default() += u64_of(&stack["samples"]);
        }
        lines
    };
    let tcp_lines = BTreeMap::from([
        (line("tcp recv"), 7),
        (line("tcp recv_into"), 5),
        (line("tcp recvmsg"), 4),
        (line("tcp recvmsg_into"), 3),
        (line("tcp read"), 6),
    ]);
    assert_eq!(by_line(tcp), tcp_lines, "{:#}", tcp["python_stacks"]);
    for (row, tag, count) in [
        (udp, "udp recvfrom", 4),
        (connected, "udp recv", 2),
        (unix, "unix recv", 3),
        (pair, "socketpair recv", 2),
        (mmsg, "recvmmsg", 2),
    ] {
        assert_eq!(by_line(row), BTreeMap::from([(line(tag), count)]), "{tag}");
    }
}

/// The same socket reads seen by `strace -f -c` and by the tracer (which
/// traces strace and, through the fork, the Python process): the same
/// number of calls of each syscall.
#[test]
fn socket_reads_agree_with_strace() {
    require_root();
    let python = python(STATIC_PYTHON);
    assert!(
        std::path::Path::new("/usr/bin/strace").exists(),
        "strace is missing (apt-get install strace)"
    );
    let scratch = Scratch::new("socket_reads_agree_with_strace");
    let out = scratch.path("workload.json");
    let dir = scratch.socket_dir();
    let log = scratch.path("strace.log");
    let mut command: Vec<String> = [
        "/usr/bin/strace",
        "-f",
        "-c",
        "-e",
        "trace=recvfrom,recvmsg,recvmmsg,read",
        "-o",
        &log,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    command.extend(python_command(python, "sockets.py", &[&out, &dir]));
    let report = trace_command(&scratch, &[], &command);
    assert_complete(&report);
    let expected = load_json(&out);
    let pid = u64_of(&expected["pid"]);

    // `% time  seconds  usecs/call  calls  [errors]  syscall`: calls is the
    // fourth column, the name the last.
    let log = std::fs::read_to_string(&log).unwrap();
    let strace: BTreeMap<String, u64> = log
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let name = *cols.last()?;
            let calls = cols.get(3)?.parse().ok()?;
            ["read", "recvfrom", "recvmsg", "recvmmsg"]
                .contains(&name)
                .then(|| (name.to_owned(), calls))
        })
        .collect();
    let mut tracer: BTreeMap<String, u64> = BTreeMap::new();
    for row in report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pid"] == pid)
    {
        for (name, calls) in row["by_syscall"].as_object().unwrap() {
            *tracer.entry(name.clone()).or_default() += u64_of(calls);
        }
    }
    tracer.retain(|name, _| ["read", "recvfrom", "recvmsg", "recvmmsg"].contains(&name.as_str()));
    assert_eq!(strace, tracer, "strace -c:\n{log}");
    assert_eq!(strace["recvfrom"], 7 + 5 + 4 + 2 + 3 + 2);
    assert_eq!((strace["recvmsg"], strace["recvmmsg"]), (7, 2));
}

/// 50 clients of one server socket: their 50 accepted connections are one
/// row, with the count, and the report says it folded them.
#[test]
fn many_connections_fold_into_one_row() {
    require_root();
    let python = python(STATIC_PYTHON);
    let scratch = Scratch::new("many_connections_fold_into_one_row");
    let out = scratch.path("workload.json");
    let command = python_command(python, "sockets_fold.py", &[&out, "50"]);
    let report = launch_with(&scratch, &command, Until::Done, &[], &[]);
    let expected = load_json(&out);
    let pid = u64_of(&expected["pid"]);
    assert_complete(&report);
    let server = expected["server"].as_str().unwrap();
    let rows: Vec<&Value> = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pid"] == pid && r["kind"] == "socket")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = rows[0];
    assert_eq!(row["path"], format!("TCP {server} <- 127.0.0.1:*"));
    assert_eq!(
        (&row["local"], &row["peer"]),
        (&json!(server), &json!("127.0.0.1:*"))
    );
    assert_eq!(
        (&row["connections"], &row["folded"]),
        (&json!(50), &json!(true))
    );
    assert_eq!((&row["syscalls"], &row["bytes"]), (&json!(50), &json!(500)));
    assert_eq!(row["by_syscall"], json!({"recvfrom": 50}));
}
