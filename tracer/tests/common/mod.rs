//! Shared by the end-to-end tests: run the built `tracer` on a workload from
//! `tests/workloads/`, read the report and the numbers the workload wrote.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

pub const PYTHON: &str = "/usr/bin/python3.11";

/// These tests load BPF programs: they need root, and say so instead of skipping.
pub fn require_root() {
    // SAFETY: plain getter.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the end-to-end tests load BPF programs and must run as root \
         (e.g. `sudo -E cargo test -p tracer --test signals --test processes`)"
    );
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is needed by the workloads (apt-get install python3.11)"
    );
}

pub fn workload(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/workloads")
        .join(name)
}

pub struct Run {
    pub report: Value,
    /// What the workload knows (pids, counts, delays).
    pub facts: Value,
    /// The rendered report when `format` was "text".
    pub text: String,
}

/// Runs `tracer --format FORMAT -o FILE [extra...] -- python3.11 WORKLOAD OUTFILE`.
pub fn trace(name: &str, format: &str, extra: &[&str]) -> Run {
    require_root();
    let dir = tempdir(name);
    let report_path = dir.join(format!("report.{format}"));
    let facts_path = dir.join("facts.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .arg("--quiet")
        .args(["--format", format, "-o"])
        .arg(&report_path)
        .args(extra)
        .arg("--")
        .arg(PYTHON)
        .arg(workload(name))
        .arg(&facts_path)
        .output()
        .expect("running the tracer");
    assert!(
        output.status.success(),
        "tracer failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(&facts_path).expect("the workload wrote its facts"),
    )
    .expect("facts are JSON");
    let rendered = std::fs::read_to_string(&report_path).expect("the report was written");
    let report = if format == "json" {
        serde_json::from_str(&rendered).expect("the report is JSON")
    } else {
        Value::Null
    };
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        report,
        facts,
        text: rendered,
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tracer-e2e-{}-{}-{}",
        name.trim_end_matches(".py"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}

pub fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
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

pub fn process<'a>(report: &'a Value, pid: u64) -> &'a Value {
    let found: Vec<&Value> = report["processes"]
        .as_array()
        .expect("processes is an array")
        .iter()
        .filter(|p| p["pid"] == pid)
        .collect();
    assert_eq!(found.len(), 1, "process {pid} in {}", report["processes"]);
    found[0]
}

pub fn zombie<'a>(report: &'a Value, pid: u64) -> &'a Value {
    let found: Vec<&Value> = report["zombies"]
        .as_array()
        .expect("zombies is an array")
        .iter()
        .filter(|z| z["pid"] == pid)
        .collect();
    assert_eq!(found.len(), 1, "zombie {pid} in {}", report["zombies"]);
    found[0]
}

/// The report was not cut short by lost events.
pub fn assert_complete(report: &Value) {
    assert_eq!(report["complete"], true, "events: {}", report["events"]);
    assert_eq!(report["events"]["lost"], 0);
    // Every program attached (optional ones add a warning when they do not).
    assert_eq!(report["warnings"], serde_json::json!([]));
}
