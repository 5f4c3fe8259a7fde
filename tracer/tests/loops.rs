//! Event loops: an asyncio loop's stalls (an iteration, from one selector
//! wait's return to the next wait, that took the threshold or more) are
//! each counted, as long as the workload measured them, with the Python
//! code that ran in them; a loop that only awaits has none.

mod common;

use common::*;
use serde_json::Value;

/// The report's event loop rows of process `pid`.
fn loops_of(report: &Value, pid: u64) -> Vec<&Value> {
    report["event_loops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["pid"] == pid)
        .collect()
}

#[test]
fn asyncio_stalls_are_counted_with_the_code_that_ran_in_them() {
    require_root();
    let scratch = Scratch::new("loop_stalls");
    let facts_path = scratch.path("facts.json");
    let trace = scratch.path("loop.pftrace");
    let report = trace_command(
        &scratch,
        // 200 ms: far above any iteration of an idle loop, even on a
        // loaded machine, far below the 300-400 ms blocks.
        &["--loop-stall", "200", "--perfetto", &trace],
        &python_command(python(STATIC_PYTHON), "loop_stalls.py", &[&facts_path]),
    );
    let facts = load_json(&facts_path);
    let blocks: Vec<u64> = facts["blocks_ns"]
        .as_array()
        .unwrap()
        .iter()
        .map(u64_of)
        .collect();
    let pid = u64_of(&report["target"]["pid"]);
    let loops = loops_of(&report, pid);
    assert_eq!(loops.len(), 1, "{:#}", report["event_loops"]);
    let l = loops[0];
    assert_eq!(l["tid"], pid, "the main thread runs the loop: {l:#}");
    assert_eq!(l["kind"], "asyncio", "{l:#}");
    assert_eq!(
        u64_of(&l["stalls"]),
        blocks.len() as u64,
        "{l:#}\n{blocks:?}"
    );
    assert_eq!(u64_of(&l["threshold_ns"]), 200_000_000);
    // Each stall holds its block, and little else (the task's own step
    // around it): measured from the outside, as long as from the inside.
    let stalls: Vec<u64> = l["stall_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u64_of(&s["duration_ns"]))
        .collect();
    for (stall, block) in stalls.iter().zip(&blocks) {
        assert!(
            *stall >= *block && *stall < block + 50_000_000,
            "stall {stall} ns for a block of {block} ns: {l:#}"
        );
    }
    assert_eq!(u64_of(&l["stall_max_ns"]), *stalls.iter().max().unwrap());
    assert_eq!(u64_of(&l["stall_total_ns"]), stalls.iter().sum::<u64>());
    // The CPU inside the stalls was blocking_cpu's; the sleeps had none.
    let top = &l["hotspots"][0];
    assert_eq!(top["function"], "blocking_cpu", "{l:#}");
    assert!(u64_of(&l["samples_in_stalls"]) > 0, "{l:#}");
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "event_loop_blocked")
        .unwrap_or_else(|| panic!("no event_loop_blocked: {:#}", report["findings"]));
    assert_eq!(u64_of(&finding["figures"]["count"]), blocks.len() as u64);
    assert_eq!(u64_of(&finding["figures"]["threshold_ms"]), 200);
    assert_eq!(
        u64_of(&finding["figures"]["max_ms"]),
        stalls.iter().max().unwrap() / 1_000_000
    );
    // Iterations: the stalls and the waits around them, all counted.
    assert!(u64_of(&l["iterations"]) >= blocks.len() as u64, "{l:#}");
    // Perfetto's own bindings read a slice per stall, as long as the stall,
    // on the thread's "event loop stalls" track.
    let summary = perfetto_summary(&trace);
    let slices: Vec<u64> = summary["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["owner"]["track"] == "event loop stalls" && s["owner"]["tid"] == pid)
        .map(|s| {
            assert_eq!(s["name"], "loop blocked", "{s:#}");
            u64_of(&s["dur"])
        })
        .collect();
    assert_eq!(slices, stalls, "{:#}", summary["slices"]);
}

/// tests/perfetto_summary.py's reading of the trace at `path`.
fn perfetto_summary(path: &str) -> Value {
    let bindings = std::env::var("TRACER_PERFETTO_PY").expect(
        "TRACER_PERFETTO_PY: the perfetto bindings' directory (`cargo xtask test` sets it)",
    );
    let summarizer = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/perfetto_summary.py")
        .canonicalize()
        .unwrap();
    let output = std::process::Command::new("/usr/bin/python3")
        .arg(&summarizer)
        .arg(path)
        .env("PYTHONPATH", &bindings)
        .output()
        .unwrap();
    assert!(output.status.success(), "perfetto_summary.py: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_loop_that_only_awaits_has_no_stall() {
    require_root();
    let scratch = Scratch::new("loop_awaits");
    let facts_path = scratch.path("facts.json");
    let report = trace_command(
        &scratch,
        &["--loop-stall", "200"],
        &python_command(
            python(STATIC_PYTHON),
            "loop_stalls.py",
            &[&facts_path, "await-only"],
        ),
    );
    let pid = u64_of(&report["target"]["pid"]);
    assert!(
        loops_of(&report, pid).is_empty(),
        "{:#}",
        report["event_loops"]
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "event_loop_blocked"),
        "{:#}",
        report["findings"]
    );
}
