//! A real pre-fork server: gunicorn (from PyPI, cached by `cargo xtask
//! test`) with 2 sync workers serving a CPU-heavy endpoint, launched under
//! the tracer. Every worker is sampled: each one's samples in `cpu_heavy`
//! are within 40% of rate x the CPU time it measured serving requests.

mod common;

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    process::{Command, Stdio},
};

use common::*;

const RATE: u64 = 499;
const REQUESTS_PER_CLIENT: usize = 20;

fn get(socket: &str) {
    let mut stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("{socket}: {e}"));
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
}

#[test]
fn gunicorn_workers_are_sampled() {
    require_root();
    let site = gunicorn_site();
    let scratch = Scratch::new("gunicorn_workers");
    let out_dir = scratch.subdir("out");
    let socket = format!("{}/gunicorn.sock", scratch.socket_dir());
    let pidfile = scratch.path("gunicorn.pid");
    let report_path = scratch.path("report.json");
    let app = workload("gunicorn_app.py");
    let app_dir = std::path::Path::new(&app).parent().unwrap();
    let rate = RATE.to_string();
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(["--quiet", "--rate", &rate, "--format", "json", "-o"])
            .arg(&report_path)
            .args(["--", STATIC_PYTHON, "-B", "-m", "gunicorn", "-c", &app])
            .args(["-b", &format!("unix:{socket}"), "-p", &pidfile])
            .args(["--log-level", "warning"])
            .arg("--chdir")
            .arg(app_dir)
            .arg("gunicorn_app:app")
            .env("PYTHONPATH", &site)
            .env("TRACER_TEST_OUT", &out_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
        "tracer",
    );
    tracer.stdout_lines().wait_for("ready");
    // Two clients at once, so both sync workers serve.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..REQUESTS_PER_CLIENT {
                    get(&socket);
                }
            });
        }
    });
    let master = stop_gunicorn(&pidfile, &mut tracer);

    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "target exited");
    assert_eq!(report["target"]["pid"], master);
    let python = &report["python"];
    assert_eq!(python["status"], "sampled", "{python:#}");
    assert_eq!(python["samples_lost"], 0);
    let mut workers = 0;
    let mut requests = 0;
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let served = load_json(&entry.unwrap().path().display().to_string());
        let pid = served["pid"].as_u64().unwrap();
        let cpu_ns = served["cpu_ns"].as_u64().unwrap();
        requests += served["requests"].as_u64().unwrap();
        workers += 1;
        assert_ne!(pid, master as u64, "requests are served by workers");
        let got = samples_with(python, "cpu_heavy", |s| s["pid"].as_u64() == Some(pid));
        assert_sampled_at_rate(
            got,
            cpu_ns,
            RATE,
            &format!("cpu_heavy in worker {pid}"),
            &python["processes"],
        );
        let row = python["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"].as_u64() == Some(pid))
            .unwrap_or_else(|| panic!("worker {pid} not in python.processes"));
        assert_eq!(row["status"], "sampled");
    }
    assert_eq!(requests, 2 * REQUESTS_PER_CLIENT as u64);
    assert!(workers >= 1);
    // Nothing of cpu_heavy in the master: it only supervises.
    assert_eq!(
        samples_with(python, "cpu_heavy", |s| s["pid"] == master),
        0,
        "cpu_heavy sampled in the master"
    );
}
