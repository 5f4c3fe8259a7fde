//! The calibrated CPU workload (tests/workloads/python_calibrated.py) and
//! the checks every interpreter must pass on it: `heavy` ~70% and `inner`
//! ~30% of the CPU, measured by the workload itself with
//! `time.thread_time_ns`; the sampled self shares must agree within 5
//! points, and folded output must show the exact chain `main;outer;inner`
//! (each frame qualified by its file).

use std::path::PathBuf;

use serde_json::Value;

/// Sampling statistics: ~1,000 samples give a standard error of ~1.5 points.
pub const RATE: &str = "499";
pub const SECONDS: &str = "2";

/// One traced run of the calibrated workload.
pub struct Run {
    pub report: Value,
    pub folded: String,
    /// What the workload measured (its JSON output).
    pub workload: Value,
    /// Where the run's files are, for messages.
    pub dir: PathBuf,
}

pub fn hotspot<'a>(python: &'a Value, qualname: &str) -> &'a Value {
    python["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["qualname"] == qualname)
        .unwrap_or_else(|| panic!("no hotspot {qualname} in {:#}", python["hotspots"]))
}

/// The checks every interpreter must pass.
pub fn check_calibrated(run: &Run, version_prefix: &str, script_in_target: &str) {
    let py = &run.report["python"];
    assert_eq!(py["status"], "sampled", "{py:#}");
    let version = py["version"].as_str().unwrap();
    assert!(
        version.starts_with(version_prefix),
        "version {version}, expected {version_prefix}*"
    );
    assert_eq!(
        version.matches('.').count(),
        2,
        "exact version with patch level: {version}"
    );
    assert!(py["samples"].as_u64().unwrap() >= 200, "{py:#}");
    assert_eq!(py["samples_lost"], 0);
    for (function, def_line) in [("heavy", 16), ("inner", 23)] {
        let h = hotspot(py, function);
        let measured = run.workload["share"][function].as_f64().unwrap();
        let sampled = h["self_share"].as_f64().unwrap();
        assert!(
            (sampled - measured).abs() <= 5.0,
            "{function}: sampled {sampled:.1}% self vs measured {measured:.1}% CPU ({})",
            run.dir.display()
        );
        assert_eq!(h["file"], script_in_target);
        assert_eq!(h["line"], def_line);
    }
    // `outer` only calls: its total share is inner's (a stack sampled while
    // a frame is being pushed can miss a link, hence the same tolerance).
    let outer = hotspot(py, "outer");
    let inner = hotspot(py, "inner");
    let (outer_total, inner_total) = (
        outer["total_share"].as_f64().unwrap(),
        inner["total_share"].as_f64().unwrap(),
    );
    assert!(
        (outer_total - inner_total).abs() <= 5.0,
        "outer {outer_total} vs inner {inner_total}"
    );
    assert!(outer["self_share"].as_f64().unwrap() <= 5.0);
    // The hottest lines are the loop lines of the two functions.
    let lines: Vec<u64> = py["lines"].as_array().unwrap()[..2]
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert!(
        lines.iter().all(|l| [18, 19, 25, 26].contains(l)),
        "hot lines {lines:?}"
    );
    let chain = |suffix: &str| {
        run.folded.lines().any(|line| {
            line.rsplit_once(' ')
                .is_some_and(|(stack, n)| stack.ends_with(suffix) && n.parse::<u64>().is_ok())
        })
    };
    // Folded frames are functions with their file: `main (/abs/script.py)`.
    let qualified = |names: &[&str]| {
        names
            .iter()
            .map(|name| format!("{name} ({script_in_target})"))
            .collect::<Vec<_>>()
            .join(";")
    };
    let outer_inner = qualified(&["<module>", "main", "outer", "inner"]);
    assert!(
        chain(&outer_inner),
        "no {outer_inner} in folded:\n{}",
        run.folded
    );
    let heavy = qualified(&["<module>", "main", "heavy"]);
    assert!(chain(&heavy), "no {heavy} in folded:\n{}", run.folded);
    // Kernel sections are still there.
    assert!(
        run.report["sched"]["threads"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
}
