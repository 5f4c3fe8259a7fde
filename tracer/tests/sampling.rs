//! The CPU sampler runs one perf event per target thread, inherited by the
//! threads it starts: in attach mode every thread that existed before the
//! tracer (idle or not) and every thread started after it must be sampled at
//! the asked rate of its own CPU time, and nothing else.

mod common;

use common::*;
use serde_json::Value;

const RATE: u64 = 499;
const SECONDS: &str = "0.6";

fn thread_samples(python: &Value, tid: u64) -> u64 {
    python["threads"]
        .as_array()
        .expect("python.threads")
        .iter()
        .find(|t| t["tid"].as_u64() == Some(tid))
        .and_then(|t| t["samples"].as_u64())
        .unwrap_or(0)
}

fn threads_before_and_after_attach(interpreter: &str) {
    require_root();
    let scratch = Scratch::new(&format!(
        "sampling_threads_{}",
        interpreter.replace('/', "_")
    ));
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");
    let command = python_command(
        python(interpreter),
        "python_threads_sampling.py",
        &[&out, SECONDS],
    );
    let (mut workload, pid) = spawn_until_ready(&command);

    let rate = RATE.to_string();
    let (mut tracer, _stderr) = attach_tracer(
        pid,
        &["--rate", &rate, "--format", "json", "-o", &report_path],
    );
    say_go(&mut workload);
    assert!(workload.wait().success());
    assert!(
        tracer.wait().success(),
        "the tracer stops when the target exits"
    );

    let known = load_json(&out);
    let report = load_json(&report_path);
    let python = &report["python"];
    assert_eq!(python["status"], "sampled", "{python:#}");
    assert_eq!(python["rate_hz"], RATE);
    for name in ["main", "before", "after"] {
        let tid = known[name]["tid"].as_u64().unwrap();
        let cpu_ns = known[name]["cpu_ns"].as_u64().unwrap();
        // The CPU clock ticks every 1e9 / RATE ns of the thread's own CPU
        // time. Below: a new thread's first ticks may come before the tracer
        // has read its PyThreadState (counted apart). Above: the thread
        // also spends CPU outside its measured burn (start, join, exit);
        // a thread sampled twice (two events) would show twice as many.
        let expected = cpu_ns * RATE / 1_000_000_000;
        let got = thread_samples(python, tid);
        assert!(
            got * 10 >= expected * 7 && got * 10 <= expected * 13,
            "thread {name} (tid {tid}): {got} samples for {cpu_ns} ns of CPU at {RATE} Hz \
             (expected about {expected})\n{:#}",
            python["threads"]
        );
        let burner = format!("burn_{name}");
        assert!(
            python["stacks"].as_array().unwrap().iter().any(|s| {
                s["tid"].as_u64() == Some(tid)
                    && s["frames"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["function"] == burner.as_str())
            }),
            "no stack of thread {name} under {burner}"
        );
    }
}

#[test]
fn sampling_threads_before_and_after_attach_static_3_11() {
    threads_before_and_after_attach(STATIC_PYTHON);
}

#[test]
fn sampling_threads_before_and_after_attach_shared_3_11() {
    threads_before_and_after_attach(SHARED_PYTHON);
}

/// Free-threaded 3.13 (`--disable-gil`, built by `cargo xtask test`): three
/// threads burn their own function at the same time, really in parallel;
/// each function's samples are in its own thread only, about rate x that
/// thread's CPU time.
#[test]
fn sampling_parallel_threads_free_threaded_3_13() {
    require_root();
    let interpreter = std::env::var("TRACER_PY313T")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/python3.13t/bin/python3.13t".into());
    let scratch = Scratch::new("sampling_parallel_threads_3_13t");
    let out = scratch.path("workload.json");
    let rate = RATE.to_string();
    let report = trace_command(
        &scratch,
        &["--rate", &rate],
        &python_command(
            python(&interpreter),
            "python_parallel_threads.py",
            &[&out, SECONDS],
        ),
    );
    let known = load_json(&out);
    assert_eq!(known["gil"], false, "the build runs without the GIL");
    let python = &report["python"];
    assert_eq!(python["status"], "sampled", "{python:#}");
    assert_eq!(python["free_threaded"], true);
    let threads = known["threads"].as_object().unwrap();
    assert_eq!(threads.len(), 3);
    for (function, thread) in threads {
        let tid = thread["tid"].as_u64().unwrap();
        let cpu_ns = thread["cpu_ns"].as_u64().unwrap();
        let in_thread =
            |tid: u64| samples_with(python, function, |s| s["tid"].as_u64() == Some(tid));
        assert_sampled_at_rate(
            in_thread(tid),
            cpu_ns,
            RATE,
            &format!("{function} (tid {tid})"),
            &python["threads"],
        );
        for (other, other_thread) in threads.iter().filter(|(name, _)| *name != function) {
            let other_tid = other_thread["tid"].as_u64().unwrap();
            assert_eq!(
                in_thread(other_tid),
                0,
                "{function} sampled in {other}'s thread {other_tid}"
            );
        }
    }
}

/// A 300-deep recursion: the walk keeps the innermost 128 frames; every
/// such stack is marked truncated (JSON `stacks[].truncated`, counted in
/// `python.truncated`) and folded output puts a `[truncated]` frame where
/// its outermost frames would be, instead of a root that looks complete.
#[test]
fn sampling_deep_stacks_are_marked_truncated() {
    require_root();
    let scratch = Scratch::new("sampling_deep_stacks");
    let folded_path = scratch.path("stacks.folded");
    let rate = RATE.to_string();
    let report = trace_command(
        &scratch,
        &["--rate", &rate, "--folded", &folded_path],
        &python_command(python(STATIC_PYTHON), "python_deep.py", &["300", "0.4"]),
    );
    let python = &report["python"];
    let stacks = python["stacks"].as_array().unwrap();
    let deep: Vec<&Value> = stacks
        .iter()
        .filter(|s| s["frames"][0]["function"] == "bottom")
        .collect();
    assert!(!deep.is_empty(), "{python:#}");
    for stack in &deep {
        assert_eq!(stack["truncated"], true, "{stack:#}");
        assert_eq!(stack["frames"].as_array().unwrap().len(), 128);
    }
    let bottom: u64 = deep.iter().map(|s| s["samples"].as_u64().unwrap()).sum();
    assert!(python["truncated"].as_u64().unwrap() >= bottom);
    let folded = std::fs::read_to_string(&folded_path).unwrap();
    let file = workload("python_deep.py");
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("[truncated];descend (")
                && l.contains(&format!(";bottom ({file}) "))),
        "{folded}"
    );
    // No folded line starts at `descend` as if it were a root.
    assert!(
        !folded.lines().any(|l| l.starts_with("descend (")),
        "{folded}"
    );
}

/// `--speedscope` keeps the samples in the order they were taken, so the
/// "Time Order" view of a program that runs `first` then `second` shows
/// all of one, then all of the other; each sample weighs 1/rate s.
#[test]
fn sampling_speedscope_is_in_time_order() {
    require_root();
    let scratch = Scratch::new("sampling_speedscope_time_order");
    let path = scratch.path("profile.speedscope.json");
    let rate = RATE.to_string();
    let report = trace_command(
        &scratch,
        &["--rate", &rate, "--speedscope", &path],
        &python_command(python(STATIC_PYTHON), "python_phases.py", &["0.3"]),
    );
    let profile = load_json(&path);
    let frames = profile["shared"]["frames"].as_array().unwrap();
    let main = &profile["profiles"][0];
    assert_eq!(main["unit"], "nanoseconds");
    // No `threading` imported: no Python thread name to give.
    assert!(
        main["name"].as_str().unwrap().starts_with("thread "),
        "{}",
        main["name"]
    );
    // The phase each sample is in, in order: first...first second...second.
    let phases: Vec<&str> = main["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|stack| {
            stack.as_array().unwrap().iter().find_map(|id| {
                let name = frames[id.as_u64().unwrap() as usize]["name"].as_str()?;
                ["first", "second"].contains(&name).then_some(name)
            })
        })
        .collect();
    let switch = phases.iter().position(|&p| p == "second").unwrap();
    assert!(switch > 0, "{phases:?}");
    assert!(
        phases[..switch].iter().all(|&p| p == "first")
            && phases[switch..].iter().all(|&p| p == "second"),
        "not in time order: {phases:?}"
    );
    // Each sample weighs 1 / rate of a second.
    let weights = main["weights"].as_array().unwrap();
    assert_eq!(weights.len(), main["samples"].as_array().unwrap().len());
    assert!(weights.iter().all(|w| w == 1_000_000_000 / RATE));
    let samples: u64 = report["python"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["samples"].as_u64().unwrap())
        .sum();
    assert_eq!(weights.len() as u64, samples);
}

/// `--pprof`: the calibrated 70/30 workload's profile, read by the official
/// consumer (`go tool pprof`): each leaf's flat share within 5 points of the
/// CPU share the workload measured, each stack labelled with its pid and tid.
#[test]
fn pprof_profile_reads_in_go_tool_pprof() {
    require_root();
    let scratch = Scratch::new("pprof_calibrated");
    let out = scratch.path("workload.json");
    let pprof = scratch.path("profile.pb.gz");
    let report = trace_command(
        &scratch,
        &["--rate", calibrated::RATE, "--pprof", &pprof],
        &python_command(
            python(STATIC_PYTHON),
            "python_calibrated.py",
            &[&out, calibrated::SECONDS],
        ),
    );
    let known = load_json(&out);
    let go = |args: &[&str]| {
        let output = std::process::Command::new("go")
            .args(["tool", "pprof"])
            .args(args)
            .arg(&pprof)
            .output()
            .expect("go (Debian's golang-go; `cargo xtask test` installs it)");
        assert!(
            output.status.success(),
            "go tool pprof {args:?}: {output:?}"
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // "      flat  flat%   sum%        cum   cum%" then one row per function.
    let top = go(&["-top", "-sample_index=samples"]);
    for function in ["heavy", "inner"] {
        let flat: f64 = top
            .lines()
            .find(|line| line.split_whitespace().last() == Some(function))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|share| share.trim_end_matches('%').parse().ok())
            .unwrap_or_else(|| panic!("no {function} in go tool pprof -top:\n{top}"));
        let measured = known["share"][function].as_f64().unwrap();
        assert!(
            (flat - measured).abs() <= 5.0,
            "{function}: {flat}% flat in pprof vs {measured:.1}% measured\n{top}"
        );
    }
    // The CPU value is the samples times the sampling period.
    let cpu = go(&["-top", "-sample_index=cpu"]);
    assert!(cpu.contains("Type: cpu"), "{cpu}");
    // Each stack carries its process and thread, and the chain main -> heavy.
    let traces = go(&["-traces"]);
    let pid = report["target"]["pid"].as_u64().unwrap();
    assert!(traces.contains(&format!("pid:  {pid}")), "{traces}");
    assert!(traces.contains(&format!("tid:  {pid}")), "{traces}");
    let heavy_then_main =
        traces.lines().collect::<Vec<_>>().windows(2).any(|pair| {
            pair[0].split_whitespace().last() == Some("heavy") && pair[1].trim() == "main"
        });
    assert!(heavy_then_main, "{traces}");
}
