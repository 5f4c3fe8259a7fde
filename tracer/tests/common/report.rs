//! Questions the tests ask of a JSON report: a file's row, a process's,
//! its zombies and signal groups, samples in a function, thread names, and
//! the figures a workload wrote, matched exactly.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

/// Every file read has a name: none is "fd N (closed before it could be
/// named)", "(name lost)" or "(bad descriptor)". (Launch mode once counted
/// the tracer's own wait for the release of the command as such a read.)
pub fn assert_all_named(report: &Value) {
    for e in report["reads"].as_array().unwrap() {
        let path = e["path"].as_str().unwrap();
        assert!(!path.starts_with("fd "), "unnamed file: {e:#}");
        assert_ne!(e["fs"], "unknown", "{e:#}");
    }
}

/// Nothing was lost or dropped: the figures are exact, not lower bounds.
pub fn assert_complete(report: &Value) {
    assert_eq!(report["complete"], true, "report not complete: {report:#}");
    assert_eq!(report["events"]["lost"], 0);
    for (name, count) in report["events"]["dropped"].as_object().expect("dropped") {
        assert_eq!(count, 0, "dropped {name}: {}", report["events"]);
    }
}

/// Complete, and every program attached (optional ones add a warning when
/// they do not).
pub fn assert_complete_no_warnings(report: &Value) {
    assert_complete(report);
    assert_eq!(report["warnings"], serde_json::json!([]));
}

/// The report's reads entry for (pid, path), if any.
pub fn find_entry<'a>(report: &'a Value, pid: u64, path: &str) -> Option<&'a Value> {
    report["reads"]
        .as_array()
        .expect("reads array")
        .iter()
        .find(|e| e["pid"] == pid && e["path"] == path)
}

pub fn entry<'a>(report: &'a Value, pid: u64, path: &str) -> &'a Value {
    find_entry(report, pid, path).unwrap_or_else(|| {
        let have: Vec<String> = report["reads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e["pid"], e["path"]))
            .collect();
        panic!(
            "no reads entry for pid {pid} path {path}; the report has:\n  {}",
            have.join("\n  ")
        )
    })
}

/// Every figure the workload wrote for every file it read must be in the
/// report, identical. Returns how many files were checked.
pub fn assert_matches_workload(report: &Value, expected: &Value) -> usize {
    assert_matching(report, expected, |_| true)
}

pub fn assert_matching(report: &Value, expected: &Value, keep: impl Fn(&Value) -> bool) -> usize {
    let files = expected["files"].as_array().expect("workload files");
    let mut checked = 0;
    for want in files.iter().filter(|w| keep(w)) {
        let pid = want["pid"].as_u64().unwrap();
        let path = want["path"].as_str().unwrap();
        let got = entry(report, pid, path);
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(
                &got[key], value,
                "pid {pid} {path}: `{key}` is {} in the report, the workload says {value}\n\
                 report entry: {got:#}\nworkload: {want:#}",
                got[key]
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "the workload recorded no files");
    checked
}

/// `request_sizes` of an entry as a map of numbers.
pub fn request_sizes(entry: &Value) -> BTreeMap<u64, u64> {
    entry["request_sizes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
        .collect()
}

pub fn u64_of(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

/// Read-family syscalls of `pid` in a report, over all its files.
pub fn read_syscalls_of(report: &Value, pid: u64) -> u64 {
    report["reads"]
        .as_array()
        .expect("reads")
        .iter()
        .filter(|e| e["pid"] == pid)
        .map(|e| u64_of(&e["syscalls"]))
        .sum()
}

pub fn pid_of(v: &Value) -> u64 {
    u64_of(v)
}

/// The report's signal groups matching `signal` whose target is `target_pid`.
pub fn signal_groups<'a>(report: &'a Value, signal: &str, target_pid: u64) -> Vec<&'a Value> {
    report["signals"]
        .as_array()
        .expect("signals is an array")
        .iter()
        .filter(|g| g["signal"] == signal && g["target"]["pid"] == target_pid)
        .collect()
}

pub fn process(report: &Value, pid: u64) -> &Value {
    let found: Vec<&Value> = report["processes"]
        .as_array()
        .expect("processes is an array")
        .iter()
        .filter(|p| p["pid"] == pid)
        .collect();
    assert_eq!(found.len(), 1, "process {pid} in {}", report["processes"]);
    found[0]
}

pub fn zombie(report: &Value, pid: u64) -> &Value {
    let found: Vec<&Value> = report["zombies"]
        .as_array()
        .expect("zombies is an array")
        .iter()
        .filter(|z| z["pid"] == pid)
        .collect();
    assert_eq!(found.len(), 1, "zombie {pid} in {}", report["zombies"]);
    found[0]
}

/// Samples in `python.stacks` with `function` anywhere in the stack, over
/// the stacks `keep` selects (by `pid`, by `tid`).
pub fn samples_with(python: &Value, function: &str, keep: impl Fn(&Value) -> bool) -> u64 {
    python["stacks"]
        .as_array()
        .expect("python.stacks")
        .iter()
        .filter(|s| keep(s))
        .filter(|s| {
            s["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["function"] == function)
        })
        .map(|s| u64_of(&s["samples"]))
        .sum()
}

/// `got` samples for `cpu_ns` of CPU time at `rate` Hz: within 40% of
/// rate x CPU time (a CPU-clock tick every 1e9 / rate ns of the thread's
/// own CPU time; below: the first ticks before the tracer knows a thread).
pub fn assert_sampled_at_rate(got: u64, cpu_ns: u64, rate: u64, what: &str, context: &Value) {
    let expected = cpu_ns * rate / 1_000_000_000;
    assert!(
        got * 10 >= expected * 6 && got * 10 <= expected * 14,
        "{what}: {got} samples for {cpu_ns} ns of CPU at {rate} Hz (expected about \
         {expected})\n{context:#}"
    );
}

/// python_thread_names.py's names (`threading.Thread(name=...)`, a
/// subclass, a CJK name, the default "Thread-N", "MainThread") are in
/// every per-thread view: sampled threads, scheduling rows and the stacks
/// at the stop (taken while every thread is parked).
pub fn check_thread_names(report: &Value, facts: &Value, context: &str) {
    let pid = u64_of(&facts["pid"]);
    let names = facts["names"].as_object().unwrap();
    assert_eq!(names.len(), 6, "{facts:#}");
    assert_eq!(names[&pid.to_string()], "MainThread");
    assert!(names.values().any(|n| n == "名前-cjk"), "{facts:#}");
    assert!(
        names
            .values()
            .any(|n| n.as_str().unwrap().starts_with("Thread-")),
        "{facts:#}"
    );
    let named = |rows: &Value, what: &str| -> usize {
        let rows = rows.as_array().unwrap();
        for row in rows {
            if let Some(name) = names.get(&row["tid"].to_string()) {
                assert_eq!(&row["name"], name, "{context}: {what} {row:#}");
            }
        }
        rows.iter()
            .filter(|r| names.contains_key(&r["tid"].to_string()))
            .count()
    };
    let py = &report["python"];
    // Every thread burned 150 ms of CPU: each is sampled, under its name.
    assert_eq!(
        named(&py["threads"], "python.threads"),
        6,
        "{:#}",
        py["threads"]
    );
    assert_eq!(named(&py["threads_at_end"], "threads_at_end"), 6);
    assert_eq!(named(&report["sched"]["threads"], "sched.threads"), 6);
}
