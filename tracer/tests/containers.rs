//! A CPython 3.14 in a real podman container (runc, `--rootfs` the Debian
//! sid root) traced by its host pid: every row of the process and of the
//! processes it forks says the container (id, runtime, name), in the JSON,
//! the text report, the folded stacks and the speedscope profile; and the
//! library's `lookup` (`--container`) finds it by name and id prefix.
//!
//! The workload and the test meet on two FIFOs in a directory mounted into
//! the container: it says ready on one, the tracer attaches, the test says
//! go on the other; the trace ends when the workload exits.

mod common;

use std::{path::Path, process::Output};

use common::{podman::Container, *};
use serde_json::{Value, json};

/// Traces the container's process by its host pid, with `args`, until the
/// workload exits; the tracer's output.
fn trace(scratch: &Scratch, container: &Container, args: &[&str]) -> Output {
    let (mut tracer, mut stderr) = attach_tracer(container.pid, args);
    Container::say_go(scratch);
    let status = tracer.wait();
    assert_eq!(
        container.wait(),
        0,
        "the workload failed:\n{}",
        container.logs()
    );
    let stderr = stderr.rest();
    assert_eq!(status.code(), Some(0), "tracer: {status:?}\n{stderr}");
    Output {
        status,
        stdout: Vec::new(),
        stderr: stderr.into_bytes(),
    }
}

/// The container as every report row must show it.
fn expected(container: &Container) -> Value {
    json!({
        "id": container.id,
        "runtime": "podman",
        "name": container.name,
        "pod_uid": null,
        "pod": null,
        "namespace": null,
    })
}

/// `NAME (podman 88f77ad08040)`, as the text and the root frames say it.
fn described(container: &Container) -> String {
    format!("{} (podman {})", container.name, container.short_id())
}

#[test]
fn a_containers_processes_carry_its_identity_in_every_output() {
    require_root();
    let scratch = Scratch::new("containers_identity");
    let container = Container::start_probe(&scratch, "identity");
    // What `--container` will use: by name, by id prefix, with the pid.
    for query in [
        container.name.as_str(),
        container.short_id(),
        &container.id[..4],
    ] {
        let running = tracer::host::containers::lookup(query)
            .unwrap_or_else(|e| panic!("lookup {query}: {e}"));
        assert_eq!(running.container.id, container.id, "{query}");
        assert_eq!(running.container.name.as_deref(), Some(&*container.name));
        assert!(running.pids.contains(&container.pid), "{running:?}");
        let v2 = running.cgroup_v2.unwrap_or_default();
        assert!(v2.ends_with(&container.id), "cgroup {v2}");
    }
    let err = tracer::host::containers::lookup("no-such-container").unwrap_err();
    assert!(err.to_string().contains(&described(&container)), "{err}");

    let report_path = scratch.path("report.json");
    let (folded, speedscope) = (scratch.path("folded.txt"), scratch.path("speedscope.json"));
    let args = [
        "--format",
        "json",
        "-o",
        &report_path,
        "--folded",
        &folded,
        "--speedscope",
        &speedscope,
    ];
    trace(&scratch, &container, &args);
    let report = load_json(&report_path);
    let facts = load_json(&scratch.path("facts.json"));
    let expected = expected(&container);

    let pid = u64::from(container.pid);
    let root = process(&report, pid);
    assert_eq!(root["container"], expected, "{root:#}");
    assert_eq!(root["ns_pid"], 1);
    // The child it forked: its row says the same container.
    let children: Vec<&Value> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ppid"].as_u64() == Some(pid))
        .collect();
    assert_eq!(children.len(), 1, "{:#}", report["processes"]);
    assert_eq!(children[0]["ns_pid"], facts["child"]);
    assert_eq!(children[0]["container"], expected);
    // Both Python processes were sampled, each row with the container.
    let rows = report["python"]["processes"].as_array().unwrap();
    for row in rows {
        assert_eq!(row["container"], expected, "{row:#}");
    }
    let sampled: Vec<u64> = rows
        .iter()
        .filter(|r| u64_of(&r["samples"]) > 0)
        .map(|r| u64_of(&r["pid"]))
        .collect();
    assert!(sampled.contains(&pid), "{:#}", report["python"]);

    // The root frame of each process names the container.
    let root_frame = format!(
        "python3.14 (pid {pid}) in container {}",
        described(&container)
    );
    let folded = std::fs::read_to_string(&folded).unwrap();
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with(&format!("{root_frame};"))),
        "{folded}"
    );
    assert!(
        folded
            .lines()
            .all(|l| l.contains(&format!(" in container {};", described(&container)))),
        "{folded}"
    );
    let speedscope = load_json(&speedscope);
    let names: Vec<&str> = speedscope["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{root_frame} thread "))),
        "{names:?}"
    );
}

#[test]
fn the_text_report_says_the_container_beside_the_process() {
    require_root();
    let scratch = Scratch::new("containers_text");
    let container = Container::start_probe(&scratch, "text");
    let report_path = scratch.path("report.txt");
    trace(
        &scratch,
        &container,
        &["--format", "text", "--width", "160", "-o", &report_path],
    );
    let text = std::fs::read_to_string(Path::new(&report_path)).unwrap();
    let described = described(&container);
    let header = format!(
        "tracer report for python3.14 (pid {}, pid 1 in its pid namespace) in container {described}",
        container.pid
    );
    assert!(text.starts_with(&header), "{text}");
    // Under the process in the table, once (its child shares it).
    let beside = format!("\n                   container {described}\n");
    assert_eq!(text.matches(&beside).count(), 1, "{text}");
    assert!(
        text.contains(&format!(", in container {described}")),
        "the interpreter line: {text}"
    );
}

#[test]
fn prometheus_series_carry_the_containers_labels() {
    require_root();
    let scratch = Scratch::new("containers_prometheus");
    let container = Container::start_probe(&scratch, "prometheus");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The report of --serve is the final exposition.
    let final_metrics = scratch.path("final.prom");
    let address = format!("127.0.0.1:{port}");
    trace(
        &scratch,
        &container,
        &["--serve", &address, "-o", &final_metrics],
    );
    let text = std::fs::read_to_string(&final_metrics).unwrap();
    let labels = format!(
        "pid=\"{}\",container_id=\"{}\",container_name=\"{}\"",
        container.pid, container.id, container.name
    );
    for series in [
        format!("tracer_python_samples_total{{{labels},function=\"burn\"}} "),
        format!("tracer_context_switches_total{{{labels},kind=\"voluntary\"}} "),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&series)),
            "no {series} in\n{text}"
        );
    }
}
