//! `--otlp`: each window's Python samples pushed as OTLP/HTTP profiles to
//! a receiver that decodes them with OpenTelemetry's official Python
//! bindings (tests/otlp_receiver.py; `cargo xtask test` installs PyPI's
//! opentelemetry-proto, `$TRACER_OTLP_PY`): host and container samples
//! in resources of their own, with their container's id; a collector
//! that refuses or is down is retried, and what never reached it is
//! counted in the window reports and in /metrics; https verified.

mod common;

use std::{
    collections::BTreeMap,
    process::{ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use common::{http::*, podman::Container, *};
use serde_json::Value;

/// The rate the tests sample at, and so each sample's CPU nanoseconds.
const RATE: u64 = 99;
const PERIOD: i64 = 1_000_000_000 / RATE as i64;

/// tests/otlp_receiver.py, listening; the JSON line of each request.
struct Receiver {
    proc: Proc,
    lines: Lines<ChildStdout>,
    port: u16,
    seen: Vec<Value>,
}

impl Receiver {
    /// Refuses the first `fail` requests with 503; over TLS with `tls`
    /// (certificate and key files).
    fn start(fail: u32, tls: Option<(&str, &str)>) -> Self {
        let bindings = std::env::var("TRACER_OTLP_PY")
            .expect("TRACER_OTLP_PY: opentelemetry-proto's directory (`cargo xtask test` sets it)");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/otlp_receiver.py")
            .canonicalize()
            .unwrap();
        let mut command = Command::new("/usr/bin/python3");
        command.arg(&script).arg(fail.to_string());
        if let Some((cert, key)) = tls {
            command.args([cert, key]);
        }
        let mut proc = Proc::spawn(
            command
                .env("PYTHONPATH", bindings)
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
            "otlp_receiver.py",
        );
        let mut lines = proc.stdout_lines();
        let listening = lines.wait_for("listening ");
        let port = listening["listening ".len()..].parse().unwrap();
        Self {
            proc,
            lines,
            port,
            seen: Vec::new(),
        }
    }

    /// Reads requests until `done` says what came is enough.
    fn until(&mut self, done: impl Fn(&[Value]) -> bool) {
        while !done(&self.seen) {
            let line = self.lines.next_line().expect("the receiver exited");
            self.seen.push(serde_json::from_str(&line).unwrap());
        }
    }

    /// Every request it got, once the tracer has exited.
    fn all(mut self) -> Vec<Value> {
        self.proc.signal("TERM");
        self.proc.wait();
        let rest = self.lines.rest();
        self.seen
            .extend(rest.lines().map(|l| serde_json::from_str(l).unwrap()));
        for request in &self.seen {
            assert!(request.get("error").is_none(), "{}", request["error"]);
        }
        self.seen
    }
}

/// Each decoded sample: (its resource's attributes, the sample).
fn samples(requests: &[Value]) -> Vec<(&Value, &Value)> {
    requests
        .iter()
        .filter_map(|r| r["resources"].as_array())
        .flatten()
        .flat_map(|resource| {
            resource["profiles"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["samples"].as_array().unwrap())
                .map(move |s| (&resource["attributes"], s))
        })
        .collect()
}

fn innermost(sample: &Value) -> &str {
    sample["frames"][0].as_str().unwrap_or_default()
}

/// The samples a sample's CPU time stands for.
fn count(sample: &Value) -> i64 {
    let ns = sample["values"][0].as_i64().unwrap();
    assert_eq!(ns % PERIOD, 0, "{sample}");
    ns / PERIOD
}

/// The window reports `--every` wrote in `dir`, oldest first.
fn window_reports(dir: &str) -> Vec<Value> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| load_json(&format!("{dir}/{n}")))
        .collect()
}

/// `figures.otlp.KEY` summed over the windows (each says its own).
fn otlp_total(windows: &[Value], key: &str) -> u64 {
    windows
        .iter()
        .map(|w| u64_of(&w["figures"]["otlp"][key]))
        .sum()
}

/// The value of an unlabelled counter in an exposition.
fn counter(exposition: &str, name: &str) -> Option<u64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}_total ")))
        .and_then(|v| v.trim().parse().ok())
}

/// `tracer ARGS...` with `env`, returned once it says it is tracing.
fn tracer_with_env(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Proc, Lines<std::process::ChildStderr>) {
    let mut command = Command::new(TRACER);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut tracer = Proc::spawn(&mut command, "tracer");
    let mut stderr = tracer.stderr_lines();
    stderr.wait_for("tracer: tracing ");
    (tracer, stderr)
}

#[test]
fn windows_reach_the_collector_with_host_and_container_samples_apart() {
    require_root();
    let scratch = Scratch::new("otlp_collector");
    let dir = scratch.subdir("windows");
    // An overloaded collector first: two 503s, retried.
    let mut receiver = Receiver::start(2, None);
    let serve = format!("127.0.0.1:{}", free_port());
    let (mut tracer, mut stderr) = tracer_with_env(
        &[
            "--all",
            "--otlp",
            &format!("http://127.0.0.1:{}", receiver.port),
            "--every",
            "1",
            "--keep",
            "1000",
            "-o",
            &dir,
            "--rate",
            &RATE.to_string(),
            "--serve",
            &serve,
        ],
        &[("OTEL_EXPORTER_OTLP_HEADERS", "X-Scope-OrgID=tenant%201")],
    );
    // A service on the host, and one in a podman container.
    let host_script = "import os, sys\nprint(f'ready {os.getpid()}', flush=True)\n\
                       sys.stdin.readline()\n\
                       def host_burn():\n    while True:\n        sum(range(1000))\nhost_burn()";
    let (mut host, host_pid) = spawn_until_ready(&[
        python(STATIC_PYTHON).to_owned(),
        "-c".into(),
        host_script.into(),
    ]);
    say_go(&mut host);
    let container = Container::run(
        &common::podman::unique_name("otlp_collector"),
        &common::podman::sid_root(),
        &[],
        &[
            "python3.14",
            "-c",
            "def container_burn():\n    while True:\n        sum(range(1000))\ncontainer_burn()",
        ],
    );
    let sampled = |requests: &[Value], function: &str| {
        samples(requests)
            .iter()
            .any(|(_, s)| innermost(s) == function)
    };
    receiver.until(|r| sampled(r, "host_burn") && sampled(r, "container_burn"));
    // Both refusals came before the first request taken (in order); the
    // exposition says so once it is published again (every second).
    let metrics = metrics_until(&serve, |m| {
        counter(m, "tracer_otlp_exports").unwrap_or(0) >= 1
    });
    assert_eq!(
        counter(&metrics, "tracer_otlp_export_failures"),
        Some(2),
        "{metrics}"
    );
    assert!(
        counter(&metrics, "tracer_otlp_exports").unwrap() >= 1,
        "{metrics}"
    );
    assert_eq!(counter(&metrics, "tracer_otlp_samples_dropped"), Some(0));
    let (container_id, container_name, container_pid) =
        (container.id.clone(), container.name.clone(), container.pid);
    drop(container);
    host.signal("KILL");
    tracer.signal("INT");
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    let requests = receiver.all();

    let refused = requests
        .iter()
        .filter(|r| r.get("refused").is_some())
        .count();
    assert_eq!(refused, 2);
    let taken: Vec<&Value> = requests
        .iter()
        .filter(|r| r.get("resources").is_some())
        .collect();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for request in &taken {
        assert_eq!(request["path"], "/v1development/profiles");
        // OTEL_EXPORTER_OTLP_HEADERS, percent-decoded as the SDKs do.
        assert_eq!(request["headers"]["x-scope-orgid"], "tenant 1");
        assert_eq!(request["headers"]["content-type"], "application/x-protobuf");
        for resource in request["resources"].as_array().unwrap() {
            let attributes = &resource["attributes"];
            assert!(attributes["process.pid"].as_u64().is_some(), "{resource}");
            assert_eq!(attributes["host.name"], host_name.trim());
            for profile in resource["profiles"].as_array().unwrap() {
                assert_eq!(profile["scope"], "tracer");
                assert_eq!(
                    profile["sample_type"],
                    serde_json::json!(["cpu", "nanoseconds"])
                );
                assert_eq!(
                    profile["period_type"],
                    serde_json::json!(["cpu", "nanoseconds"])
                );
                assert_eq!(profile["period"], PERIOD);
                assert_eq!(profile["profile_id"].as_str().unwrap().len(), 32);
            }
        }
    }
    // Each service's samples are in its own process's resource: the
    // container's with its id, the host's with none.
    let mut by_function: BTreeMap<&str, i64> = BTreeMap::new();
    for (attributes, sample) in samples(&requests) {
        let function = innermost(sample);
        *by_function.entry(function).or_default() += count(sample);
        match function {
            "host_burn" => {
                assert_eq!(attributes["process.pid"], host_pid, "{attributes}");
                assert!(attributes.get("container.id").is_none(), "{attributes}");
                assert_eq!(attributes["process.executable.name"], "python3.11");
            }
            "container_burn" => {
                assert_eq!(attributes["process.pid"], container_pid, "{attributes}");
                assert_eq!(attributes["container.id"], container_id, "{attributes}");
                assert_eq!(attributes["container.name"], container_name, "{attributes}");
                assert_eq!(attributes["process.executable.name"], "python3.14");
                assert_eq!(sample["frames"][1], "<module>", "{sample}");
            }
            _ => {}
        }
        assert!(
            sample["attributes"]["thread.id"].as_u64().is_some(),
            "{sample}"
        );
    }
    assert!(by_function["host_burn"] > 0 && by_function["container_burn"] > 0);
    // What the windows say they exported is what the receiver decoded,
    // each window once.
    let windows = window_reports(&dir);
    let received: i64 = samples(&requests).iter().map(|(_, s)| count(s)).sum();
    assert_eq!(otlp_total(&windows, "samples_exported"), received as u64);
    assert_eq!(otlp_total(&windows, "exports"), taken.len() as u64);
    assert_eq!(otlp_total(&windows, "exports"), windows.len() as u64);
    assert_eq!(otlp_total(&windows, "export_failures"), 2);
    assert_eq!(otlp_total(&windows, "samples_dropped"), 0);
    assert_eq!(otlp_total(&windows, "windows_dropped"), 0);
}

/// `--serve ADDRESS`'s exposition once `ready` says it is what the test
/// waits for (it is published every second; a minute is a failure).
fn metrics_until(address: &str, ready: impl Fn(&str) -> bool) -> String {
    let port = address.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, metrics) = http_get(port, "/metrics").unwrap();
        assert_eq!(status, 200, "{metrics}");
        if ready(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "never so:\n{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn with_the_collector_down_the_trace_goes_on_and_the_loss_is_counted() {
    require_root();
    let scratch = Scratch::new("otlp_down");
    let dir = scratch.subdir("windows");
    // Nothing listens there.
    let collector = format!("http://127.0.0.1:{}", free_port());
    let serve = format!("127.0.0.1:{}", free_port());
    let script = "import os, sys, time\nprint(f'ready {os.getpid()}', flush=True)\n\
                  sys.stdin.readline()\n\
                  def burn(seconds):\n    end = time.process_time() + seconds\n    \
                  while time.process_time() < end:\n        pass\n\
                  burn(1.0)\nprint('done', flush=True)\nsys.stdin.readline()\n";
    let (mut workload, mut stdout, pid) = spawn_until_ready_with_stdout(&[
        python(STATIC_PYTHON).to_owned(),
        "-c".into(),
        script.into(),
    ]);
    let (mut tracer, mut stderr) = attach_tracer(
        pid,
        &[
            "--otlp", &collector, "--every", "1", "--keep", "1000", "-o", &dir, "--rate", "99",
            "--serve", &serve,
        ],
    );
    say_go(&mut workload);
    stdout.wait_for("done");
    // The tracer says the failures while it traces.
    let metrics = metrics_until(&serve, |m| {
        counter(m, "tracer_otlp_export_failures").unwrap_or(0) >= 1
    });
    assert_eq!(
        counter(&metrics, "tracer_otlp_exports"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(counter(&metrics, "tracer_otlp_samples_exported"), Some(0));
    // It goes on to the target's exit, and ends well.
    say_go(&mut workload);
    assert_eq!(workload.wait().code(), Some(0));
    let status = tracer.wait();
    let log = stderr.rest();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("cannot export to"), "{log}");
    let windows = window_reports(&dir);
    assert!(windows.len() >= 2, "{windows:#?}");
    // Every window was dropped, and said: none reached the collector.
    assert_eq!(
        otlp_total(&windows, "windows_dropped"),
        windows.len() as u64
    );
    assert_eq!(otlp_total(&windows, "exports"), 0);
    assert_eq!(otlp_total(&windows, "samples_exported"), 0);
    assert!(otlp_total(&windows, "export_failures") >= 1);
    // The samples dropped are at least those of burn() the windows counted.
    let burned: u64 = windows
        .iter()
        .flat_map(|w| w["figures"]["python_samples"].as_array().unwrap())
        .filter(|s| s["pid"].as_str() == Some(&*pid.to_string()) && s["function"] == "burn")
        .map(|s| u64_of(&s["samples"]))
        .sum();
    assert!(burned > 0, "{windows:#?}");
    assert!(
        otlp_total(&windows, "samples_dropped") >= burned,
        "{} dropped, {burned} burned",
        otlp_total(&windows, "samples_dropped")
    );
}

/// A self-signed CA and a certificate for 127.0.0.1 it signed (openssl).
fn certificates(scratch: &Scratch) -> (String, String, String) {
    let (ca, ca_key) = (scratch.path("ca.pem"), scratch.path("ca.key"));
    let (cert, key, csr) = (
        scratch.path("server.pem"),
        scratch.path("server.key"),
        scratch.path("server.csr"),
    );
    let ext = scratch.path("ext.cnf");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=tracer test CA",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    (ca, cert, key)
}

/// A launched `python3 -c` burning 0.5 s, traced with `--otlp` to `url`
/// and `extra`; the window reports.
fn trace_to(scratch: &Scratch, name: &str, url: &str, extra: &[&str]) -> Vec<Value> {
    let dir = scratch.subdir(name);
    let script = "import time\ndef burn():\n    end = time.process_time() + 0.5\n    \
                  while time.process_time() < end:\n        pass\nburn()\n";
    let mut args = vec![
        "--quiet", "--otlp", url, "--every", "1", "--keep", "1000", "-o", &dir, "--rate", "99",
    ];
    args.extend(extra);
    args.extend(["--", python(STATIC_PYTHON), "-c", script]);
    let output = tracer(&args);
    assert_exit(&output, 0);
    window_reports(&dir)
}

#[test]
fn https_verifies_the_collector_with_the_ca_given() {
    require_root();
    let scratch = Scratch::new("otlp_https");
    let (ca, cert, key) = certificates(&scratch);
    let receiver = Receiver::start(0, Some((&cert, &key)));
    let url = format!("https://127.0.0.1:{}", receiver.port);
    // Its CA is not among the system's roots: refused, nothing exported.
    let untrusted = trace_to(&scratch, "untrusted", &url, &[]);
    assert_eq!(otlp_total(&untrusted, "exports"), 0, "{untrusted:#?}");
    assert_eq!(
        otlp_total(&untrusted, "windows_dropped"),
        untrusted.len() as u64
    );
    // With --otlp-ca: every window taken.
    let trusted = trace_to(&scratch, "trusted", &url, &["--otlp-ca", &ca]);
    assert_eq!(otlp_total(&trusted, "exports"), trusted.len() as u64);
    assert_eq!(otlp_total(&trusted, "windows_dropped"), 0);
    let requests = receiver.all();
    let received: i64 = samples(&requests).iter().map(|(_, s)| count(s)).sum();
    assert_eq!(otlp_total(&trusted, "samples_exported"), received as u64);
    assert!(received > 0);
    assert_eq!(
        requests.len() as u64,
        otlp_total(&trusted, "exports"),
        "only the trusted run's requests arrived"
    );
}
