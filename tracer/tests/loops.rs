//! Event loops: an asyncio loop's stalls (an iteration, from one selector
//! wait's return to the next wait, that took the threshold or more) are
//! each counted, as long as the workload measured them, with the Python
//! code that ran in them; a loop that only awaits has none.

mod common;

use common::{http::*, *};
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

/// The blocks the workload measured, in ns, in order.
fn blocks_of(facts: &Value) -> Vec<u64> {
    facts["blocks_ns"]
        .as_array()
        .unwrap()
        .iter()
        .map(u64_of)
        .collect()
}

/// Each stall of loop row `l` holds its block (as the workload measured
/// it), and little else (the task's own step around it): measured from the
/// outside, as long as from the inside. Returns the stalls' durations.
fn stalls_hold_blocks(l: &Value, blocks: &[u64]) -> Vec<u64> {
    let stalls: Vec<u64> = l["stall_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u64_of(&s["duration_ns"]))
        .collect();
    assert_eq!(stalls.len(), blocks.len(), "{l:#}\n{blocks:?}");
    for (stall, block) in stalls.iter().zip(blocks) {
        assert!(
            *stall >= *block && *stall < block + 50_000_000,
            "stall {stall} ns for a block of {block} ns: {l:#}"
        );
    }
    assert_eq!(u64_of(&l["stall_max_ns"]), *stalls.iter().max().unwrap());
    stalls
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
    let blocks = blocks_of(&facts);
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
    let stalls = stalls_hold_blocks(l, &blocks);
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

/// uvicorn_app.py launched under `tracer --loop-stall 150`; `requests`
/// runs once it serves. Returns the report (after SIGINT stopped the
/// service) and what the app measured.
fn serve_uvicorn(scratch: &Scratch, requests: impl FnOnce(u16)) -> (Value, Value) {
    let port = free_port();
    let report_path = scratch.path("report.json");
    let mut tracer = Proc::spawn(
        std::process::Command::new(TRACER)
            // 150 ms: above what its start-up runs in one go, below the
            // 300 ms blocks.
            .args(["--quiet", "--loop-stall", "150", "--format", "json", "-o"])
            .arg(&report_path)
            .args(["--", STATIC_PYTHON, "-B", &workload("uvicorn_app.py")])
            .arg(port.to_string())
            .env("PYTHONPATH", uvicorn_site())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    stderr.wait_for("Uvicorn running on");
    requests(port);
    let (status, body) = http_get(port, "/facts").expect("uvicorn answers /facts");
    assert_eq!(status, 200, "{body}");
    let facts: Value = serde_json::from_str(&body).unwrap();
    let pid = u64_of(&facts["pid"]).to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    (load_json(&report_path), facts)
}

fn get(port: u16, path: &str) {
    let (status, body) = http_get(port, path).unwrap_or_else(|| panic!("no answer to {path}"));
    assert_eq!(status, 200, "{path}: {body}");
}

/// A real uvicorn + starlette service: each request to the blocking
/// endpoint is one stall of the loop, as long as the app measured it, with
/// its `render_rows` named; the awaiting requests between them none.
#[test]
fn a_uvicorn_service_blocked_by_an_endpoint() {
    require_root();
    let scratch = Scratch::new("loop_uvicorn");
    let (report, facts) = serve_uvicorn(&scratch, |port| {
        for _ in 0..3 {
            get(port, "/await?ms=50");
            get(port, "/block?ms=300");
        }
        get(port, "/await?ms=50");
    });
    let blocks = blocks_of(&facts);
    assert_eq!(blocks.len(), 3, "{facts}");
    let pid = u64_of(&facts["pid"]);
    let loops = loops_of(&report, pid);
    assert_eq!(loops.len(), 1, "{:#}", report["event_loops"]);
    let l = loops[0];
    assert_eq!(l["kind"], "asyncio", "{l:#}");
    assert_eq!(u64_of(&l["stalls"]), 3, "{l:#}\n{blocks:?}");
    stalls_hold_blocks(l, &blocks);
    assert_eq!(l["hotspots"][0]["function"], "render_rows", "{l:#}");
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "event_loop_blocked" && f["figures"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no event_loop_blocked: {:#}", report["findings"]));
    assert_eq!(u64_of(&finding["figures"]["count"]), 3);
}

/// The same service asked only to await: no stall.
#[test]
fn a_uvicorn_service_that_only_awaits_has_no_stall() {
    require_root();
    let scratch = Scratch::new("loop_uvicorn_await");
    let (report, facts) = serve_uvicorn(&scratch, |port| {
        std::thread::scope(|scope| {
            for _ in 0..5 {
                scope.spawn(|| get(port, "/await?ms=200"));
            }
        });
    });
    let pid = u64_of(&facts["pid"]);
    assert!(
        loops_of(&report, pid).is_empty(),
        "{:#}",
        report["event_loops"]
    );
}

/// The agent (`--serve`) serves each Python process's loop iteration times
/// as a Prometheus histogram: the final figures count the workload's four
/// blocks (each 300 ms or more) above 250 ms, and every other iteration
/// below it.
#[test]
fn the_agent_serves_each_python_loops_iteration_times() {
    require_root();
    let scratch = Scratch::new("loop_serve");
    let facts_path = scratch.path("facts.json");
    let final_metrics = scratch.path("final.prom");
    let address = format!("127.0.0.1:{}", free_port());
    let mut args: Vec<String> = ["--quiet", "--serve", &address, "-o", &final_metrics, "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(python_command(
        python(STATIC_PYTHON),
        "loop_stalls.py",
        &[&facts_path],
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = tracer(&args);
    assert_exit(&output, 0);
    let blocks = blocks_of(&load_json(&facts_path)).len();
    let text = std::fs::read_to_string(&final_metrics).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(series))
            .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let count = value("tracer_event_loop_iteration_seconds_count{");
    let short = value("tracer_event_loop_iteration_seconds_bucket{le=\"0.25\"");
    assert_eq!(count - short, blocks as f64, "{text}");
    assert!(
        value("tracer_event_loop_iteration_seconds_sum{") >= 4.0 * 0.3,
        "{text}"
    );
}
