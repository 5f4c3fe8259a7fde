//! What the user sees when something is wrong: no such process, a command
//! that cannot run, no privileges, bad usage; and tracefs not mounted, which
//! the tracer fixes by itself. Root only (the unprivileged cases drop
//! privileges with setpriv).
//!
//! Run: cargo test -p tracer --test errors -- --test-threads=1

mod common;

use std::process::Command;

use common::*;

fn stderr_of(output: &std::process::Output) -> String {
    text(&output.stderr)
}

#[test]
fn no_such_pid_exits_4() {
    require_root();
    // pids are below pid_max: this one cannot exist.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let pid_max = pid_max.trim();
    let output = tracer(&["--pid", pid_max]);
    assert_exit(&output, 4);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("no process with pid {pid_max}")),
        "{stderr}"
    );

    // A process that existed a moment ago and has been reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let reaped = child.id();
    assert!(child.wait().unwrap().success());
    let output = tracer(&["--pid", &reaped.to_string()]);
    assert_exit(&output, 4);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("no process with pid {reaped}")),
        "{stderr}"
    );
}

#[test]
fn command_that_cannot_run_exits_4() {
    require_root();
    for command in ["/nonexistent/program", "no-such-command-on-path"] {
        let output = tracer(&["--quiet", "--", command, "arg"]);
        assert_exit(&output, 4);
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains(&format!("cannot run `{command} arg`")),
            "{stderr}"
        );
        assert!(stderr.contains("No such file or directory"), "{stderr}");
    }
    // Exists but cannot be executed (a directory).
    let output = tracer(&["--quiet", "--", "/usr"]);
    assert_exit(&output, 4);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("cannot run `/usr`: Permission denied"),
        "{stderr}"
    );
}

fn setpriv() -> &'static str {
    let path = "/usr/bin/setpriv";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} (util-linux) is missing"
    );
    path
}

#[test]
fn unprivileged_exits_3() {
    require_root();
    let me = std::process::id().to_string();
    let cases: [&[&str]; 2] = [
        // An ordinary user.
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ],
        // Root without capabilities (as in a locked-down container).
        &["--inh-caps=-all", "--bounding-set=-all"],
    ];
    for drop_privileges in cases {
        let mut args: Vec<String> = drop_privileges.iter().map(|s| s.to_string()).collect();
        args.extend([TRACER.to_owned(), "--pid".into(), me.clone()]);
        let output = run(setpriv(), &args);
        assert_exit(&output, 3);
        let stderr = stderr_of(&output);
        assert!(stderr.contains("CAP_BPF"), "{stderr}");
        assert!(stderr.contains("must run as root"), "{stderr}");
    }
}

#[test]
fn bad_usage_exits_2() {
    require_root();
    let cases: [&[&str]; 6] = [
        &[],
        &["--quiet"],
        &["--pid", "abc"],
        &["--pid", "1", "--duration", "-3"],
        &["--pid", "1", "--", "true"],
        &["--format", "xml", "--pid", "1"],
    ];
    for args in cases {
        let output = tracer(args);
        assert_exit(&output, 2);
        assert!(!stderr_of(&output).is_empty(), "no message for {args:?}");
    }
    let output = tracer(&["--quiet"]);
    assert!(
        stderr_of(&output).contains("give what to trace: --pid PID"),
        "{}",
        stderr_of(&output)
    );
}

/// In a private mount namespace without tracefs or debugfs the tracer needs
/// neither (its programs are raw tracepoints and uprobes: no tracefs format
/// is read), mounts neither, and the figures are as exact as ever. This holds
/// whether or not the host has them mounted, and the host's mounts are
/// untouched.
#[test]
fn traces_without_tracefs() {
    require_root();
    let host_mounts = tracing_mounts();
    let scratch = Scratch::new("without_tracefs");
    let data = ext4_dir(&scratch);
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");
    let mut command: Vec<String> = [
        TRACER,
        "--verbose",
        "--quiet",
        "--format",
        "json",
        "-o",
        &report_path,
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    command.extend(python_command(
        python(STATIC_PYTHON),
        "reads.py",
        &[&out, &data],
    ));
    let output = run("/usr/bin/unshare", &without_tracing_mounts(&command));
    assert_exit(&output, 0);
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "target exited");
    assert_complete(&report);
    let expected = load_json(&out);
    assert_eq!(assert_matches_workload(&report, &expected), 9);
    assert_eq!(tracing_mounts(), host_mounts, "the host's mounts changed");
}
