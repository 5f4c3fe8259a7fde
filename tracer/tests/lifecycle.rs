//! End-to-end: the process tree and zombies of real Python processes,
//! compared with the pids, exit codes and delays the workloads know. Root only.

mod common;

use common::{
    Scratch, assert_complete_no_warnings as assert_complete, assert_exit, load_json, pid_of,
    process, require_root, trace, tracer, u64_of, zombie,
};
use serde_json::Value;

#[test]
fn popen_children_left_unwaited_are_zombies_until_the_parent_waits() {
    let run = trace("zombies_popen.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let parent = pid_of(&facts["parent"]);
    let sleep_ns = u64_of(&facts["sleep_ns"]);
    let children: Vec<u64> = facts["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(pid_of)
        .collect();
    assert_eq!(children.len(), 5);

    let root = process(report, parent);
    assert_eq!(root["traced_from_start"], true);
    assert_eq!(root["exit_code"], 0);
    assert_eq!(
        root["argv"][1].as_str().unwrap(),
        common::workload("zombies_popen.py")
    );
    // Only the parent and its K children: the tracer tells threads from processes.
    assert_eq!(
        report["processes"].as_array().unwrap().len(),
        1 + children.len()
    );
    assert_eq!(report["zombies"].as_array().unwrap().len(), children.len());
    for &child in &children {
        let p = process(report, child);
        assert_eq!(p["ppid"], parent);
        assert_eq!(p["comm"], "true");
        assert_eq!(p["argv"], serde_json::json!(["true"]));
        assert_eq!(p["exit_code"], 0);
        assert_eq!(p["exit_signal"], Value::Null);
        assert!(p["start_s"].as_f64().unwrap() <= p["exit_s"].as_f64().unwrap());

        let z = zombie(report, child);
        assert_eq!(z["ppid"], parent);
        assert_eq!(z["exit_code"], 0);
        assert_eq!(z["reaped_how"], "wait4");
        assert_eq!(z["reaped_by"], parent);
        assert!(
            u64_of(&z["zombie_ns"]) >= sleep_ns,
            "zombie {} ns < sleep {sleep_ns} ns",
            z["zombie_ns"]
        );
        assert!(z["sigchld"].is_string(), "{z}");
        assert_eq!(z["sigchld_unanswered"], false);
        // Launched: the Popen line is known when the interpreter's thread
        // was found before the first fork (usually; exactly checked in
        // attach mode by tests/python.rs `zombie_spawn_lines_*`).
        if let Some(frames) = z["spawned_from"].as_array() {
            let line = format!("<listcomp> ({}:16)", common::workload("zombies_popen.py"));
            assert!(frames.iter().any(|f| *f == line), "{line} not in {z}");
        }
    }
}

#[test]
fn fork_exit_code_and_sigkill() {
    let run = trace("zombies_lifecycle.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let parent = pid_of(&facts["parent"]);
    let exited = pid_of(&facts["exited"]);
    let killed = pid_of(&facts["killed"]);

    // The thread it started is counted, not listed as a process.
    let processes = report["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 3, "{processes:?}");
    assert_eq!(process(report, parent)["threads"], facts["threads"]);

    let p = process(report, exited);
    assert_eq!(p["ppid"], parent);
    assert_eq!(p["exit_code"], 3);
    assert_eq!(p["exit_signal"], Value::Null);
    let z = zombie(report, exited);
    assert_eq!(z["exit_code"], 3);
    assert_eq!(z["reaped_how"], "wait4");
    assert_eq!(z["reaped_by"], parent);

    let p = process(report, killed);
    assert_eq!(p["exit_code"], Value::Null);
    assert_eq!(p["exit_signal"], "SIGKILL");
    assert_eq!(p["exit_signo"], 9);
    assert_eq!(p["core_dumped"], false);
    let z = zombie(report, killed);
    assert_eq!(z["exit_signal"], "SIGKILL");
    assert_eq!(z["reaped_how"], "wait4");

    // No lingering zombie, and the SIGKILL is in the signal report.
    assert!(
        report["zombies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|z| z["reaped_how"] != "still_zombie"),
        "{}",
        report["zombies"]
    );
    let kills = common::signal_groups(report, "SIGKILL", killed);
    assert_eq!(kills.len(), 1);
    assert_eq!(kills[0]["sender"]["pid"], parent);
    assert_eq!(u64_of(&kills[0]["generated"]), 1);
    assert_eq!(u64_of(&kills[0]["killed"]), 1);
    assert_eq!(kills[0]["disposition"], "default");
}

#[test]
fn a_parent_that_never_waits() {
    let run = trace("zombies_nowait.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let parent = pid_of(&facts["parent"]);
    let sleep_ns = u64_of(&facts["sleep_ns"]);
    let children: Vec<u64> = facts["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(pid_of)
        .collect();
    for &child in &children {
        let z = zombie(report, child);
        assert_eq!(z["ppid"], parent);
        // Not in a container: its pid in its namespace is its host pid.
        assert_eq!(z["ns_pid"], child, "{z}");
        assert!(u64_of(&z["zombie_ns"]) >= sleep_ns, "{z}");
        assert_eq!(u64_of(&z["parent_wait_calls"]), 0);
        assert!(z["sigchld"].is_string(), "{z}");
        assert_eq!(z["sigchld_unanswered"], true);
        // The parent left without waiting: init reaps them, or not before the trace ends.
        let how = z["reaped_how"].as_str().unwrap();
        assert!(how == "still_zombie" || how == "init", "{how}");
    }
    // The same as data: one finding naming the parent, with its figures.
    assert_eq!(report["schema_version"], 3);
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "unreaped_children")
        .collect();
    assert_eq!(found.len(), 1, "{:#}", report["findings"]);
    let finding = found[0];
    assert_eq!(finding["concern"], "processes");
    assert_eq!(finding["figures"]["ppid"], parent);
    assert_eq!(finding["figures"]["children"], children.len());
    assert_eq!(finding["figures"]["parent_wait_calls"], 0);
    assert!(u64_of(&finding["figures"]["longest_zombie_ns"]) >= sleep_ns);
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("it receives SIGCHLD but never calls wait4/waitid"),
        "{finding}"
    );

    let text = trace("zombies_nowait.py", "text", &[]);
    let parent = pid_of(&text.facts["parent"]);
    let expected = format!(
        "python3.11 (pid {parent}) left {} children unreaped for up to",
        children.len()
    );
    assert!(text.text.contains(&expected), "{}", text.text);
    assert!(
        text.text
            .contains("it receives SIGCHLD but never calls wait4/waitid"),
        "{}",
        text.text
    );
    assert!(
        text.text.contains("ZOMBIES: 4 children exited"),
        "{}",
        text.text
    );
}

#[test]
fn no_children_traces_only_the_target() {
    let run = trace("zombies_lifecycle.py", "json", &["--no-children"]);
    let (report, facts) = (&run.report, &run.facts);
    let parent = pid_of(&facts["parent"]);
    let processes = report["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(processes[0]["pid"], parent);
    assert_eq!(report["zombies"], serde_json::json!([]));
    // The parent's own SIGKILL to the child is still seen (the sender is traced).
    let killed = pid_of(&facts["killed"]);
    let kills = common::signal_groups(report, "SIGKILL", killed);
    assert_eq!(kills.len(), 1);
    assert_eq!(kills[0]["target_traced"], false);
}

#[test]
fn an_orphan_is_reaped_by_the_subreaper_it_was_reparented_to() {
    let run = trace("zombies_orphan.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let subreaper = pid_of(&facts["subreaper"]);
    let child = pid_of(&facts["child"]);
    let grandchild = pid_of(&facts["grandchild"]);

    let z = zombie(report, child);
    assert_eq!(
        (z["reaped_how"].as_str(), &z["reaped_by"]),
        (Some("wait4"), &subreaper.into())
    );
    let p = process(report, grandchild);
    assert_eq!(p["ppid"], child);
    assert_eq!(p["exit_code"], 5);
    let z = zombie(report, grandchild);
    assert_eq!(z["ppid"], child);
    assert_eq!(z["exit_code"], 5);
    // Its parent had exited: another process (the subreaper) reaped it.
    assert_eq!(z["reaped_how"], "init");
    assert_eq!(z["reaped_by"], subreaper);
    assert_eq!(z["reaped_by_comm"], "python3.11");
    // The SIGCHLD of its exit went to the subreaper, which waited for it.
    assert!(z["sigchld"].is_string(), "{z}");
    assert_eq!(z["sigchld_unanswered"], false);
}

#[test]
fn children_of_a_parent_ignoring_sigchld_are_autoreaped() {
    let run = trace("zombies_autoreap.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let parent = pid_of(&facts["parent"]);
    let children: Vec<u64> = facts["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(pid_of)
        .collect();
    assert_eq!(children.len(), 3);
    for &child in &children {
        let z = zombie(report, child);
        assert_eq!(z["ppid"], parent);
        assert_eq!(z["exit_code"], 0);
        assert_eq!(z["reaped_how"], "autoreap");
        assert_eq!(z["reaped_by"], Value::Null);
        assert_eq!(z["zombie_ns"], 0);
        // SIG_IGN: the kernel sends no SIGCHLD at all.
        assert_eq!(z["sigchld"], Value::Null);
        assert_eq!(u64_of(&z["parent_wait_calls"]), 0);
    }
}

/// A launched command killed by a signal: the report names the signal the
/// same way everywhere (`target.exit_signal` "SIGTERM" and `exit_signo`
/// 15, as in `processes[]`; the text header says "killed by SIGTERM").
#[test]
fn a_target_killed_by_a_signal_is_named_alike_everywhere() {
    require_root();
    let scratch = Scratch::new("target_killed_by_signal");
    let json = scratch.path("report.json");
    let text = scratch.path("report.txt");
    for (format, path) in [("json", &json), ("text", &text)] {
        let output = tracer(&[
            "--quiet",
            "--format",
            format,
            "-o",
            path,
            "--",
            "/bin/sh",
            "-c",
            "kill -TERM $$",
        ]);
        assert_exit(&output, 0);
    }
    let report = load_json(&json);
    let target = &report["target"];
    assert_eq!(target["exit_signal"], "SIGTERM", "{target:#}");
    assert_eq!(target["exit_signo"], 15);
    assert_eq!(target["exit_code"], Value::Null);
    let row = process(&report, u64_of(&target["pid"]));
    assert_eq!(row["exit_signal"], target["exit_signal"]);
    let text = std::fs::read_to_string(&text).unwrap();
    assert!(text.contains(", killed by SIGTERM;"), "{text}");
}

/// Ctrl-C on a terminal sends SIGINT to the whole foreground process group:
/// the tracer and the command it launched. The report says how the command
/// really ended (killed by SIGINT after its KeyboardInterrupt), not "still
/// running".
#[test]
fn ctrl_c_reports_how_the_launched_command_ended() {
    use std::os::unix::process::CommandExt;
    require_root();
    let scratch = Scratch::new("ctrl_c_launch");
    let report_path = scratch.path("report.json");
    let script = common::workload("python_until_interrupted.py");
    let mut tracer = common::Proc::spawn(
        std::process::Command::new(common::TRACER)
            .args(["--quiet", "--format", "json", "-o", &report_path, "--"])
            .args([common::STATIC_PYTHON, "-B", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            // The tracer's words and KeyboardInterrupt's traceback.
            .stderr(std::process::Stdio::piped())
            // A process group of their own, as a terminal's foreground job.
            .process_group(0),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    tracer.stdout_lines().wait_for("ready");
    let group = tracer.pid() as i32;
    assert_eq!(unsafe { libc::kill(-group, libc::SIGINT) }, 0);
    let status = tracer.wait();
    assert!(status.success(), "tracer: {status:?}\n{}", stderr.rest());
    let report = load_json(&report_path);
    // Both got the SIGINT at once: the tracer may see its own first, or the
    // command's end; either way the report says how the command ended.
    let stopped = report["stopped"].as_str().unwrap();
    assert!(
        ["interrupted (SIGINT)", "target exited"].contains(&stopped),
        "{stopped}"
    );
    assert_eq!(
        report["target"]["exit_signal"], "SIGINT",
        "{:#}",
        report["target"]
    );
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("still running"), "{warnings}");
}

/// 2,000 short-lived children, one in four reaped late (a zombie across
/// every fork after its own): each child's row, exit code and zombie row
/// with its reaper, exactly; nothing dropped.
#[test]
fn a_row_for_each_of_2000_forks() {
    let run = trace("many_forks.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_eq!(report["complete"], true, "{}", report["events"]);
    for (name, count) in report["events"]["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped {name}: {}", report["events"]);
    }
    assert_eq!(report["events"]["lost"], 0);
    let parent = pid_of(&facts["parent"]);
    let children = facts["children"].as_array().unwrap();
    assert_eq!(children.len(), 2000);
    let processes = report["processes"].as_array().unwrap();
    // The parent and its children: nobody else, nobody twice.
    assert_eq!(processes.len(), 1 + children.len());
    let last_fork = process(report, pid_of(&children[children.len() - 1][0]));
    let last_fork_s = last_fork["start_s"].as_f64().unwrap();
    for child in children {
        let (pid, code, late) = (pid_of(&child[0]), &child[1], child[2] == true);
        let p = process(report, pid);
        assert_eq!(p["ppid"], parent, "{p}");
        assert_eq!(&p["exit_code"], code, "{p}");
        let z = zombie(report, pid);
        assert_eq!(&z["exit_code"], code, "{z}");
        assert_eq!(z["reaped_by"], parent, "{z}");
        assert_eq!(z["reaped_how"], "wait4", "{z}");
        if late {
            // Reaped after the last fork: a zombie until then at least.
            let exit_s = z["exit_s"].as_f64().unwrap();
            let end_s = exit_s + u64_of(&z["zombie_ns"]) as f64 / 1e9;
            assert!(end_s > last_fork_s, "{z} ended before the last fork");
        }
    }
    // Each child's one thread has its scheduling row, with the time it
    // ran: it ran (Python's after-fork work) and switched out once to die.
    // On this kernel a switch onto a CPU is sometimes not seen (after some
    // tasks); such a child had no row before its row was made at the fork.
    let threads = report["sched"]["threads"].as_array().unwrap();
    for child in children {
        let pid = pid_of(&child[0]);
        let rows: Vec<_> = threads.iter().filter(|t| t["pid"] == pid).collect();
        assert_eq!(rows.len(), 1, "child {pid}: {} thread rows", rows.len());
        let row = rows[0];
        assert!(
            row["voluntary"].as_u64().unwrap() >= 1,
            "child {pid}: {row}"
        );
        assert!(row["on_cpu_ns"].as_u64().unwrap() > 0, "child {pid}: {row}");
    }
}
