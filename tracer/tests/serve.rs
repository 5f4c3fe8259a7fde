//! `--serve`: a real Prometheus (Debian's `prometheus`; `cargo xtask test`
//! installs it) scrapes the tracer on 127.0.0.1 while it traces a service
//! whose figures are known, and its HTTP API must return them; idle and
//! never-reading clients must not stall the trace; a port in use fails
//! before tracing; `go tool pprof` pulls a profile of the next seconds'
//! samples from `/debug/pprof/profile`, and it holds what ran then only.

mod common;

use std::{
    io::Write as _,
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

use common::{http::*, *};
use serde_json::Value;

/// The value of `series` (a line's text before the value) in an exposition.
fn exposed(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn prometheus_scrapes_the_figures_a_service_knows() {
    require_root();
    let scratch = Scratch::new("serve_prometheus");
    let (tracer_port, prometheus_port) = (free_port(), free_port());
    let (mut service, mut stdout, pid) = spawn_until_ready_with_stdout(&python_command(
        python(STATIC_PYTHON),
        "serve_service.py",
        &[],
    ));
    let final_metrics = scratch.path("final.prom");
    let address = format!("127.0.0.1:{tracer_port}");
    let (mut tracer, mut stderr) = attach_tracer(pid, &["--serve", &address, "-o", &final_metrics]);
    // Clients that connect and never send, and one that asks and never
    // reads: the tracer must go on tracing and serving.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", tracer_port)).unwrap())
        .collect();
    let mut deaf = TcpStream::connect(("127.0.0.1", tracer_port)).unwrap();
    deaf.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, body) = http_get(tracer_port, "/metrics").expect("the endpoint answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(http_get(tracer_port, "/nothing").map(|r| r.0), Some(404));

    say_go(&mut service);
    let done = stdout.wait_for("done ");
    let facts: Value = serde_json::from_str(done.strip_prefix("done ").unwrap()).unwrap();

    let _prometheus = prometheus(&scratch, &address, prometheus_port);
    let p = format!("pid=\"{pid}\"");
    let expected: Vec<(String, f64)> = vec![
        (
            format!("tracer_read_syscalls_total{{{p},path=\"/proc/self/stat\",fs=\"proc\"}}"),
            u64_of(&facts["preads"]) as f64,
        ),
        (
            format!("tracer_read_request_bytes_count{{{p},fs=\"proc\"}}"),
            u64_of(&facts["preads"]) as f64,
        ),
        (
            format!("tracer_read_request_bytes_sum{{{p},fs=\"proc\"}}"),
            (u64_of(&facts["preads"]) * 333) as f64,
        ),
        (
            "tracer_signals_total{signal=\"SIGUSR1\",event=\"generated\"}".into(),
            u64_of(&facts["usr1"]) as f64,
        ),
        (
            "tracer_signals_total{signal=\"SIGUSR1\",event=\"delivered\"}".into(),
            u64_of(&facts["usr1"]) as f64,
        ),
        (format!("tracer_zombies{{{p}}}"), 1.0),
        ("tracer_zombie_seconds_count".into(), 1.0),
        ("tracer_events_lost_total".into(), 0.0),
        // The log's writes and syncs (its fs label is /tmp's).
        (
            format!(
                "sum(tracer_write_syscalls_total{{{p},path={}}})",
                facts["log"]
            ),
            u64_of(&facts["log_writes"]) as f64,
        ),
        (
            format!("sum(tracer_write_bytes_total{{{p},path={}}})", facts["log"]),
            (u64_of(&facts["log_writes"]) * 8) as f64,
        ),
        (
            format!(
                "sum(tracer_sync_syscalls_total{{{p},path={}}})",
                facts["log"]
            ),
            u64_of(&facts["log_syncs"]) as f64,
        ),
    ];
    // Prometheus scrapes every second: wait until it has what the service
    // knows (or say what it had at the deadline).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = expected
            .iter()
            .map(|(expr, want)| (expr.clone(), query(prometheus_port, expr), *want))
            .collect();
        if last.iter().all(|(_, got, want)| *got == Some(*want)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = http_get(tracer_port, "/metrics")
        .map(|r| r.1)
        .unwrap_or_default();
    for (expr, got, want) in &last {
        assert_eq!(
            *got,
            Some(*want),
            "{expr} in Prometheus; the tracer serves:\n{metrics}"
        );
    }
    let zombie_seconds = query(prometheus_port, "tracer_zombie_seconds_sum").unwrap();
    assert!(
        zombie_seconds >= 0.2,
        "the child was a zombie 0.2 s: {zombie_seconds}"
    );
    let burn = query(
        prometheus_port,
        &format!("tracer_python_samples_total{{{p},function=\"burn\"}}"),
    )
    .unwrap_or(0.0);
    // 0.3 s of CPU at 99 Hz: ~30 samples.
    assert!(burn >= 15.0, "{burn} samples in burn:\n{metrics}");
    let voluntary = query(
        prometheus_port,
        &format!("tracer_context_switches_total{{{p},kind=\"voluntary\"}}"),
    )
    .unwrap_or(0.0);
    assert!(voluntary >= 1.0, "{metrics}");
    drop(idle);
    drop(deaf);

    // The service exits: the trace ends, and the report is the final figures.
    say_go(&mut service);
    assert!(service.wait().success());
    let status = tracer.wait();
    assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    let text = std::fs::read_to_string(&final_metrics).unwrap();
    for (series, want) in &expected[..5] {
        assert_eq!(exposed(&text, series), Some(*want), "{series} in\n{text}");
    }
}

/// `/debug/pprof/profile?seconds=2` read by `go tool pprof` from the URL,
/// as Parca or Alloy pull a Go service's: the workload burns CPU in
/// `before_window` before the request and in `during_window` (a thread
/// named "burner") during it; the profile has the second only, each sample
/// labelled with its process and thread. Nonsense seconds are refused
/// (400), and so is a profile when Python is not sampled (503).
#[test]
fn go_tool_pprof_pulls_the_next_seconds_of_samples() {
    require_root();
    let scratch = Scratch::new("serve_pprof");
    let port = free_port();
    let (mut workload, mut stdout, pid) = spawn_until_ready_with_stdout(&python_command(
        python(STATIC_PYTHON),
        "serve_profile.py",
        &[],
    ));
    let final_metrics = scratch.path("final.prom");
    let address = format!("127.0.0.1:{port}");
    let (mut tracer, mut stderr) = attach_tracer(pid, &["--serve", &address, "-o", &final_metrics]);
    let index = http_get(port, "/debug/pprof/").expect("the endpoint answers");
    assert_eq!(index.0, 200);
    assert!(
        index.1.contains("/debug/pprof/profile?seconds="),
        "{}",
        index.1
    );
    for nonsense in ["0", "abc", "100000"] {
        let (status, why) =
            http_get(port, &format!("/debug/pprof/profile?seconds={nonsense}")).unwrap();
        assert_eq!(status, 400, "{why}");
        assert!(why.starts_with(&format!("seconds={nonsense}: ")), "{why}");
    }

    say_go(&mut workload);
    stdout.wait_for("before done");
    // before_window has ended: the window opens after it.
    let url = format!("http://{address}/debug/pprof/profile?seconds=2");
    let go = PprofPull::start(&url, &scratch.subdir("pprof"));
    say_go(&mut workload);
    let burner: u32 = stdout
        .wait_for("burner ")
        .strip_prefix("burner ")
        .unwrap()
        .parse()
        .unwrap();
    let traces = go.traces();
    // The burner runs until the profile has been read: through the window.
    say_go(&mut workload);
    stdout.wait_for("done");

    assert!(
        traces.contains("tracer: Python stacks sampled at"),
        "{traces}"
    );
    let samples = parse_traces(&traces);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    for trace in &samples {
        assert!(
            !trace.frames.iter().any(|f| f == "before_window"),
            "sampled before the window:\n{traces}"
        );
        assert_eq!(
            trace.label("pid"),
            Some(pid.to_string().as_str()),
            "{traces}"
        );
        assert_eq!(trace.label("comm"), Some(comm.trim()), "{traces}");
        assert!(trace.label("tid").is_some(), "{traces}");
    }
    let burning = samples
        .iter()
        .find(|t| t.frames.first().map(String::as_str) == Some("during_window"))
        .unwrap_or_else(|| panic!("no sample in during_window:\n{traces}"));
    assert_eq!(burning.label("tid"), Some(burner.to_string().as_str()));
    assert_eq!(burning.label("thread_name"), Some("burner"));

    // Python not sampled: no profile, and why.
    let other_port = free_port();
    let other_address = format!("127.0.0.1:{other_port}");
    let (mut unsampled, mut unsampled_stderr) = attach_tracer(
        pid,
        &[
            "--no-python",
            "--serve",
            &other_address,
            "-o",
            &scratch.path("unsampled.prom"),
        ],
    );
    let (status, why) = http_get(other_port, "/debug/pprof/profile?seconds=1").unwrap();
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("--no-python"), "{why}");

    say_go(&mut workload);
    assert!(workload.wait().success());
    for (tracer, stderr) in [
        (&mut tracer, &mut stderr),
        (&mut unsampled, &mut unsampled_stderr),
    ] {
        let status = tracer.wait();
        assert_eq!(status.code(), Some(0), "{}", stderr.rest());
    }
    // The tracer did sample before_window: the window left it out.
    let text = std::fs::read_to_string(&final_metrics).unwrap();
    let before = exposed(
        &text,
        &format!("tracer_python_samples_total{{pid=\"{pid}\",function=\"before_window\"}}"),
    );
    assert!(before.is_some_and(|n| n > 0.0), "{text}");
}

#[test]
fn serve_on_an_address_in_use_fails_before_tracing() {
    require_root();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = tracer(&["--serve", &format!("127.0.0.1:{port}"), "--", "/bin/true"]);
    assert_exit(&output, 8);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")) && stderr.contains("in use"),
        "{stderr}"
    );
    let output = tracer(&["--serve", "nowhere", "--", "/bin/true"]);
    assert_exit(&output, 2);
    assert!(
        text(&output.stderr).contains("not an address"),
        "{output:?}"
    );
}

/// `tracer --every 1 -o DIR ARGS -- python3 -c SCRIPT`: 50 preads of
/// /proc/self/stat 50 ms apart (2.5 s: three windows or more); returns
/// the window reports written, oldest first.
fn windows(scratch: &Scratch, extra: &[&str]) -> Vec<Value> {
    let dir = scratch.path("windows");
    std::fs::create_dir_all(&dir).unwrap();
    let script = "import os, time\n\
                  fd = os.open('/proc/self/stat', os.O_RDONLY)\n\
                  for _ in range(50):\n    os.pread(fd, 333, 0)\n    time.sleep(0.05)\n";
    let mut args = vec!["--quiet", "--every", "1", "-o", &dir];
    args.extend_from_slice(extra);
    args.extend(["--", STATIC_PYTHON, "-c", script]);
    let output = tracer(&args);
    assert_exit(&output, 0);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("report-") && n.ends_with(".json")),
        "{names:?}"
    );
    names
        .iter()
        .map(|n| load_json(&format!("{dir}/{n}")))
        .collect()
}

fn stat_reads(window: &Value) -> u64 {
    window["figures"]["read_syscalls_and_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/proc/self/stat")
        .map(|r| u64_of(&r["syscalls"]))
        .sum()
}

#[test]
fn every_window_has_its_own_figures_and_they_add_up() {
    require_root();
    let all = windows(&Scratch::new("every_windows"), &["--keep", "100"]);
    assert!(all.len() >= 3, "{} windows", all.len());
    // Each window starts where the one before ended; their reads add up
    // to the 50 the script made, each counted once.
    for pair in all.windows(2) {
        assert_eq!(
            pair[0]["window_end_unix_ms"], pair[1]["window_start_unix_ms"],
            "{pair:#?}"
        );
    }
    assert_eq!(all.iter().map(stat_reads).sum::<u64>(), 50, "{all:#?}");
    assert!(all.iter().filter(|w| stat_reads(w) > 0).count() >= 2);
    // --keep 2: the last two windows only.
    let kept = windows(&Scratch::new("every_keep"), &["--keep", "2"]);
    assert_eq!(kept.len(), 2);
}

#[test]
fn every_needs_a_writable_directory_before_tracing() {
    require_root();
    let scratch = Scratch::new("every_bad_dir");
    let file = scratch.path("a-file");
    std::fs::write(&file, "").unwrap();
    let link = scratch.path("a-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(scratch.path(""), &link).unwrap();
    for (dir, why) in [
        (file.as_str(), "a-file"),
        (link.as_str(), "symbolic link"),
        ("/nonexistent-dir", "/nonexistent-dir"),
    ] {
        let output = tracer(&["--every", "1", "-o", dir, "--", "/bin/true"]);
        assert_exit(&output, 7);
        assert!(text(&output.stderr).contains(why), "{dir}: {output:?}");
    }
    // A read-only filesystem: /proc.
    let output = tracer(&["--every", "1", "-o", "/proc", "--", "/bin/true"]);
    assert_exit(&output, 7);
}
