//! `--perfetto`: the trace is read back with Perfetto's official Python
//! bindings (`perfetto_trace_pb2` from the PyPI wheel; `cargo xtask test`
//! installs it, `$TRACER_PERFETTO_PY`), and its tracks, slices, flows and
//! callstacks are checked against what the workload knows and against the
//! tracer's own JSON report of the same run.

mod common;

use common::*;
use serde_json::Value;

/// The trace of `perfetto_timeline.py`, summarized by
/// `tests/perfetto_summary.py`; with the report and the workload's facts.
fn traced_timeline(scratch: &Scratch) -> (Value, Value, Value) {
    let facts_path = scratch.path("facts.json");
    let trace = scratch.path("trace.pftrace");
    // Go once the tracer knows the interpreter, where CPython keeps its
    // signal handlers, and has its signal-check probe in place.
    let report = launch_with(
        scratch,
        &python_command(
            python(STATIC_PYTHON),
            "perfetto_timeline.py",
            &[&facts_path],
        ),
        Until::Exit,
        &[
            "pid {pid}: Python signal handlers known",
            "signal checks of",
        ],
        &["--perfetto", &trace],
    );
    assert_eq!(report["stopped"], "target exited", "{report:#}");
    (perfetto_summary(&trace), report, load_json(&facts_path))
}

fn on_thread(items: &Value, tid: u64) -> impl Iterator<Item = &Value> {
    items
        .as_array()
        .unwrap()
        .iter()
        .filter(move |s| s["owner"]["tid"] == tid && s["owner"]["track"].is_null())
}

fn reads_of(summary: &Value, tid: u64) -> impl Iterator<Item = &Value> {
    summary["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |s| s["owner"]["track"] == "read syscalls" && s["owner"]["tid"] == tid)
}

fn named<'a>(items: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    let name = name.to_owned();
    items
        .as_array()
        .unwrap()
        .iter()
        .filter(move |s| s["name"] == name.as_str())
}

#[test]
fn perfetto_trace_reads_in_the_official_bindings() {
    require_root();
    let scratch = Scratch::new("perfetto_timeline");
    let (summary, report, facts) = traced_timeline(&scratch);
    let pid = facts["pid"].as_u64().unwrap();
    let feeder = facts["feeder_tid"].as_u64().unwrap();
    let context = format!("report: {report:#}");
    assert_eq!(summary["ordered"], true, "packets out of time order");
    assert_eq!(summary["unclosed"], 0, "slices never ended");

    // Tracks: the process, its main thread and the named feeder thread.
    let process = summary["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("a process track for the target");
    assert!(
        process["cmdline"]
            .to_string()
            .contains("perfetto_timeline.py"),
        "{process}"
    );
    // (The feeder lives 50 ms: its Python name may not be read in time.)
    let threads = summary["threads"].as_array().unwrap();
    let thread = |tid: u64| {
        threads
            .iter()
            .find(|t| t["tid"] == tid)
            .unwrap_or_else(|| panic!("no thread track for {tid}: {threads:?}"))
    };
    assert_eq!(thread(pid)["name"], "MainThread");
    assert_eq!(thread(feeder)["pid"], pid);

    // Reads: every pread64 of /proc/self/stat, as the report counts them.
    let preads: Vec<&Value> = reads_of(&summary, pid)
        .filter(|s| s["args"]["file"] == "/proc/self/stat")
        .collect();
    assert_eq!(preads.len() as u64, facts["preads"].as_u64().unwrap());
    for read in &preads {
        assert_eq!(read["name"], "pread64", "{read}");
        assert_eq!(read["args"]["request"], facts["pread_size"], "{read}");
        assert_eq!(read["args"]["fs"], "proc", "{read}");
        assert!(read["args"]["bytes"].as_u64().unwrap() > 0, "{read}");
    }
    let stat = entry(&report, pid, "/proc/self/stat");
    assert_eq!(u64_of(&stat["syscalls"]), preads.len() as u64, "{context}");
    let bytes: u64 = preads.iter().map(|r| u64_of(&r["args"]["bytes"])).sum();
    assert_eq!(u64_of(&stat["bytes"]), bytes, "{context}");
    // The pipe reads each waited for the feeder: a voluntary switch inside.
    let pipe = facts["pipe"].as_str().unwrap();
    let pipe_reads: Vec<&Value> = reads_of(&summary, pid)
        .filter(|s| s["args"]["file"] == pipe)
        .collect();
    assert_eq!(
        pipe_reads.len() as u64,
        facts["pipe_reads"].as_u64().unwrap()
    );
    for read in &pipe_reads {
        assert_eq!(
            (
                read["args"]["request"].as_u64(),
                read["args"]["bytes"].as_u64()
            ),
            (Some(1), Some(1))
        );
        assert!(
            read["args"]["voluntary_switches"].as_u64() >= Some(1),
            "{read}"
        );
    }

    // On/off-CPU: the main thread's slices tile its time, one off-CPU slice
    // per switch the report counts (but the last, after its exit), and
    // its sleeps in the pipe reads carry the line they slept on.
    // (A switch record missing between two of a kind leaves a gap, which
    // the trace counts as unpaired.)
    let info = named(&summary["instants"], "tracer").next().unwrap();
    let unpaired = u64_of(&info["args"]["switches_unpaired"]);
    let cpu: Vec<&Value> = on_thread(&summary["slices"], pid).collect();
    let mut gaps = 0;
    for pair in cpu.windows(2) {
        let end = u64_of(&pair[0]["ts"]) + u64_of(&pair[0]["dur"]);
        assert!(end <= u64_of(&pair[1]["ts"]), "an overlap: {pair:?}");
        if end < u64_of(&pair[1]["ts"]) {
            gaps += 1;
            continue;
        }
        assert_ne!(
            pair[0]["name"] == "running",
            pair[1]["name"] == "running",
            "{pair:?}"
        );
    }
    assert!(
        gaps <= unpaired,
        "{gaps} gaps, {unpaired} unpaired switches"
    );
    let thread = report["sched"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == pid)
        .unwrap();
    // Every slice is a switch the report counts; the report may count a
    // few more: those of the thread's last moments, after its exit was
    // seen and the ring buffer drained for the last time.
    let count = |name: &str| cpu.iter().filter(|s| s["name"] == name).count() as u64;
    let (voluntary, involuntary) = (u64_of(&thread["voluntary"]), u64_of(&thread["involuntary"]));
    assert!(
        count("sleeping") <= voluntary && count("preempted") <= involuntary,
        "{} sleeping / {} preempted slices, {voluntary} / {involuntary} switches\n{context}",
        count("sleeping"),
        count("preempted")
    );
    let slept_in_pipe = cpu
        .iter()
        .filter(|s| s["name"] == "sleeping")
        .filter(|s| {
            s["stack"]
                .as_array()
                .is_some_and(|frames| frames.iter().any(|f| f["function"] == "wait_for_feeder"))
        })
        .count() as u64;
    // A gap (a switch record missing, counted as unpaired) may have taken
    // one of those sleeps with it.
    assert!(
        slept_in_pipe + unpaired >= facts["pipe_reads"].as_u64().unwrap(),
        "{slept_in_pipe} sleeps in wait_for_feeder, {unpaired} unpaired switches, \
         events {}: {cpu:?}",
        report["events"]
    );

    // SIGUSR1: generated, delivered, its Python handler run, one flow.
    let step = |name: &str| {
        let found: Vec<&Value> = on_thread(&summary["instants"], pid)
            .filter(|i| i["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0]
    };
    let generated = step("SIGUSR1 generated");
    let delivered = step("SIGUSR1 delivered");
    let ran = step("SIGUSR1 Python handler runs");
    let flow = &generated["flows"][0];
    assert!(flow.as_u64().is_some(), "{generated}");
    assert_eq!(&delivered["flows"][0], flow, "{delivered}");
    assert_eq!(&ran["ends_flows"][0], flow, "{ran}");
    assert_eq!(delivered["args"]["disposition"], "handler");
    assert!(u64_of(&generated["ts"]) <= u64_of(&delivered["ts"]));
    assert!(u64_of(&delivered["ts"]) <= u64_of(&ran["ts"]));

    // The child: fork, exec, exit on its process track, then a zombie
    // slice as long as the report's.
    let child = facts["child"].as_u64().unwrap();
    let child_track = |name: &str| -> Vec<&Value> {
        named(&summary["instants"], name)
            .filter(|i| i["owner"]["pid"] == child && i["owner"]["tid"].is_null())
            .collect()
    };
    assert_eq!(child_track("fork")[0]["args"]["parent"], pid);
    assert!(
        child_track("exec")[0]["args"]["argv"]
            .as_str()
            .unwrap()
            .starts_with("/bin/true")
    );
    assert_eq!(child_track("exit")[0]["args"]["how"], "exit code 0");
    let zombie_slice = named(&summary["slices"], "zombie")
        .find(|z| z["owner"]["pid"] == child)
        .expect("a zombie slice for the child");
    let reported = zombie(&report, child);
    assert_eq!(zombie_slice["dur"], reported["zombie_ns"], "{context}");
    assert_eq!(zombie_slice["args"]["reaped_by"], pid);

    // Python samples: every one the report counts, as interned callstacks
    // outermost first; the CPU burn is in `burn` under `main`.
    let samples = summary["samples"].as_array().unwrap();
    assert_eq!(
        samples.len() as u64,
        u64_of(&report["python"]["samples"]),
        "{context}"
    );
    let in_burn = samples
        .iter()
        .filter(|s| s["pid"] == pid)
        .filter(|s| {
            let names: Vec<&str> = s["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["function"].as_str().unwrap())
                .collect();
            names.ends_with(&["main", "burn"])
        })
        .count();
    // 0.3 s of CPU at 99 Hz: ~30 samples.
    assert!(in_burn >= 15, "{in_burn} samples in burn");

    // Its resident memory: a counter track in bytes under its process,
    // a value at each point the report has.
    let track = summary["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["pid"] == pid && t.get("unit").is_some())
        .expect("a counter track under the workload's process");
    assert_eq!(track["unit"], "UNIT_SIZE_BYTES", "{track}");
    let points: Vec<u64> = summary["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pid"] == pid)
        .map(|c| u64_of(&c["value"]))
        .collect();
    let row = report["memory"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("the workload's memory row");
    let reported: Vec<u64> = row["rss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u64_of(&p["bytes"]))
        .collect();
    assert!(!points.is_empty(), "{row}");
    assert_eq!(points, reported);
}

#[test]
fn perfetto_needs_a_writable_file_before_tracing() {
    require_root();
    let output = tracer(&[
        "--perfetto",
        "/nonexistent-dir/trace.pftrace",
        "--",
        "/bin/true",
    ]);
    assert_exit(&output, 7);
    assert!(
        text(&output.stderr).contains("/nonexistent-dir/trace.pftrace"),
        "{output:?}"
    );
}
