//! Threads and child processes: a second thread's reads belong to its
//! process; a forked child is traced from its first instruction, as a
//! separate process, unless --no-children. Root only.
//!
//! Run: cargo test -p tracer --test processes -- --test-threads=1

mod common;

use common::*;
use serde_json::Value;

fn run_family(python_path: &str, test: &str, extra: &[&str]) -> (Value, Value) {
    require_root();
    let scratch = Scratch::new(test);
    let out = scratch.path("workload.json");
    let report = trace_command(
        &scratch,
        extra,
        &python_command(python(python_path), "family.py", &[&out]),
    );
    assert_complete(&report);
    (report, load_json(&out))
}

fn threads_of(report: &Value, pid: u64) -> Vec<&Value> {
    report["sched"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"] == pid)
        .collect()
}

fn threads_and_children(python_path: &str, test: &str) {
    let (report, expected) = run_family(python_path, test, &[]);
    let pid = u64_of(&expected["pid"]);
    let child = u64_of(&expected["child_pid"]);
    assert_ne!(pid, child);
    assert_eq!(assert_matches_workload(&report, &expected), 3);

    // The second thread's reads: same process, its own file.
    let statm = entry(&report, pid, "/proc/self/statm");
    assert_eq!(statm["syscalls"], 23);
    let stat = entry(&report, pid, "/proc/self/stat");
    assert_eq!(stat["syscalls"], 11);
    let threads = threads_of(&report, pid);
    assert!(threads.len() >= 2, "{report:#}");
    let thread_tid = u64_of(&expected["thread_tid"]);
    assert!(
        threads.iter().any(|t| t["tid"] == thread_tid),
        "thread {thread_tid} not under pid {pid}: {report:#}"
    );
    assert!(threads.iter().any(|t| t["tid"] == pid), "{report:#}");

    // The child: its own entry, under its own pid, all its reads.
    let child_stat = entry(&report, child, "/proc/self/stat");
    assert_eq!(child_stat["syscalls"], 17);
    assert_eq!(child_stat["request_sizes"], serde_json::json!({"4096": 17}));
    assert_eq!(child_stat["opens"], 1);
}

#[test]
fn threads_and_children_static_python() {
    threads_and_children(STATIC_PYTHON, "threads_and_children_static_python");
}

#[test]
fn threads_and_children_shared_libpython() {
    threads_and_children(SHARED_PYTHON, "threads_and_children_shared_libpython");
}

#[test]
fn no_children_leaves_the_child_out() {
    let (report, expected) = run_family(STATIC_PYTHON, "no_children", &["--no-children"]);
    let pid = u64_of(&expected["pid"]);
    let child = u64_of(&expected["child_pid"]);
    // The parent's figures are unchanged...
    assert_eq!(assert_matching(&report, &expected, |f| f["pid"] == pid), 2);
    assert_eq!(entry(&report, pid, "/proc/self/stat")["syscalls"], 11);
    assert!(threads_of(&report, pid).len() >= 2, "{report:#}");
    // ... and the child is nowhere.
    let child_reads: Vec<&Value> = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pid"] == child)
        .collect();
    assert!(
        child_reads.is_empty(),
        "child {child} traced: {child_reads:#?}"
    );
    assert!(threads_of(&report, child).is_empty(), "{report:#}");
    let pids: Vec<&Value> = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["pid"])
        .collect();
    assert!(pids.iter().all(|p| **p == pid), "{pids:?}");
}

/// 10,000 threads in one process (half end, half stay to the end): a
/// scheduling row for each, under its process, with its Python name for
/// those alive at the end; nothing dropped. The kernel holds only the
/// live threads: an ended thread's row is sent at its last switch-out.
#[test]
fn a_row_for_each_of_10000_threads() {
    const THREADS: usize = 10_000;
    require_root();
    let scratch = Scratch::new("a_row_for_each_of_10000_threads");
    let out = scratch.path("workload.json");
    let mut command = python_command(python(STATIC_PYTHON), "many_threads.py", &[&out]);
    command.push(THREADS.to_string());
    let report = launch_until_done(&scratch, &command);
    let facts = load_json(&out);
    assert_eq!(report["complete"], true, "{}", report["events"]);
    assert_eq!(report["events"]["lost"], 0);
    for (name, count) in report["events"]["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped {name}: {}", report["events"]);
    }
    let pid = u64_of(&facts["pid"]);
    let names = facts["threads"].as_object().unwrap();
    assert_eq!(names.len(), THREADS);
    let exited: std::collections::HashSet<String> = facts["exited"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(exited.len(), THREADS / 2);
    let rows: std::collections::HashMap<String, &Value> = threads_of(&report, pid)
        .into_iter()
        .map(|t| (t["tid"].to_string(), t))
        .collect();
    for (tid, name) in names {
        let row = rows
            .get(tid)
            .unwrap_or_else(|| panic!("no row for thread {tid} ({name})"));
        // Each left a CPU asleep at least once: parked, or its exit.
        assert!(u64_of(&row["voluntary"]) >= 1, "{row}");
        if exited.contains(tid) {
            assert_eq!(row["asleep_at_end_ns"], 0, "{row}");
        } else {
            // Parked to the end: named, and asleep when tracing stopped.
            assert_eq!(&row["name"], name, "{row}");
            assert!(u64_of(&row["asleep_at_end_ns"]) > 0, "{row}");
        }
    }
    // The workload's threads and its main thread, nothing else.
    assert_eq!(rows.len(), THREADS + 1);
    // 5,001 threads at the end: more than the thread lists are read to,
    // and the report says so.
    let warned = report["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .unwrap()
            .contains("more than 4,096 thread states")
    });
    assert!(warned, "{}", report["warnings"]);
}
