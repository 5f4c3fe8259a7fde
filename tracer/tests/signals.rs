//! End-to-end: signals generated and delivered in real Python processes,
//! compared with exact counts the workloads know. Root only.

mod common;

use common::{
    SHARED_PYTHON, STATIC_PYTHON, Scratch, TRACER, assert_complete_no_warnings as assert_complete,
    assert_exit, load_json, pid_of, python_command, require_root, run, signal_groups, trace,
    trace_command, u64_of, workload,
};
use serde_json::Value;

/// The demo's `spawn_workers` starts 3 children with `subprocess.Popen`;
/// each resets SIGPIPE, SIGXFSZ and SIGINT to the default before its exec.
/// The text says so in one line for the spawn site; the JSON keeps the 9
/// changes, each marked, and the folded row.
#[test]
fn a_spawn_sites_resets_before_exec_are_one_line() {
    require_root();
    let scratch = Scratch::new("resets_before_exec");
    let demo = format!("{}/../demo/service.py", env!("CARGO_MANIFEST_DIR"));
    let text_path = scratch.path("report.txt");
    let json_path = scratch.path("report.json");
    for (path, format) in [(&text_path, "text"), (&json_path, "json")] {
        let args = [
            "--quiet",
            "--format",
            format,
            "-o",
            path,
            "--",
            STATIC_PYTHON,
            &demo,
        ];
        let output = run(TRACER, &args.map(String::from));
        assert_exit(&output, 0);
    }
    let text = std::fs::read_to_string(&text_path).unwrap();
    let folded: Vec<&str> = text.lines().filter(|l| l.contains("before exec")).collect();
    assert_eq!(folded.len(), 1, "{text}");
    assert!(
        folded[0].contains(
            "3 children reset SIGPIPE, SIGXFSZ, SIGINT to default before exec: \
             Popen._execute_child (/usr/lib/python3.11/subprocess.py:"
        ),
        "{text}"
    );
    assert!(folded[0].contains("<- spawn_workers ("), "{text}");
    // No line of its own for any of the children's changes.
    assert!(!text.contains("SIGXFSZ -> default"), "{text}");

    let report = load_json(&json_path);
    let children: Vec<u64> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["comm"] == "true")
        .map(|p| u64_of(&p["pid"]))
        .collect();
    assert_eq!(children.len(), 3, "{:#}", report["processes"]);
    let actions = report["signal_actions"].as_array().unwrap();
    let before_exec: Vec<&serde_json::Value> = actions
        .iter()
        .filter(|a| a["before_exec"] == true)
        .collect();
    assert_eq!(before_exec.len(), 9, "{actions:#?}");
    for a in &before_exec {
        assert!(children.contains(&u64_of(&a["pid"])), "{a:#}");
        assert_eq!(a["action"], "default", "{a:#}");
    }
    // The program's own changes (its SIGUSR1 handler) are not folded.
    assert!(
        actions
            .iter()
            .any(|a| a["signal"] == "SIGUSR1" && a["before_exec"].is_null()),
        "{actions:#?}"
    );
    let rows = report["signal_resets_before_exec"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let pids: Vec<u64> = rows[0]["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(u64_of)
        .collect();
    assert_eq!(pids, children);
    assert_eq!(
        rows[0]["signals"],
        serde_json::json!(["SIGPIPE", "SIGXFSZ", "SIGINT"])
    );
    assert_eq!(u64_of(&rows[0]["changes"]), 9);
}

#[test]
fn self_sent_sigusr1_with_a_handler() {
    let run = trace("signals_self.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let pid = pid_of(&facts["pid"]);
    let n = u64_of(&facts["sent"]);
    let t = u64_of(&facts["sent_to_thread"]);
    assert_eq!(u64_of(&facts["handled"]), n + t);

    let groups = signal_groups(report, "SIGUSR1", pid);
    assert_eq!(groups.len(), 2, "{groups:?}");
    let g = *groups.iter().find(|g| g["code"] == "SI_USER").unwrap();
    assert_eq!(g["signo"], 10);
    assert_eq!(g["sender"]["pid"], pid);
    assert_eq!(g["sender"]["tid"], pid);
    assert_eq!(g["sender"]["kernel"], false);
    assert_eq!(g["target"]["tid"], serde_json::Value::Null);
    assert_eq!(g["code"], "SI_USER");
    assert_eq!(g["syscall"], "kill");
    assert_eq!(u64_of(&g["generated"]), n);
    assert_eq!(u64_of(&g["delivered"]), n);
    assert_eq!(u64_of(&g["ignored"]), 0);
    assert_eq!(u64_of(&g["pending_at_end"]), 0);
    assert_eq!(u64_of(&g["results"]["delivered"]), n);
    assert_eq!(g["disposition"], "handler");
    assert_eq!(u64_of(&g["dispositions"]["handler"]), n);
    assert!(g["handler"].as_str().unwrap().starts_with("0x"), "{g}");
    assert!(
        g["sa_flags"]
            .as_array()
            .unwrap()
            .contains(&"SA_RESTORER".into()),
        "{g}"
    );
    assert_eq!(u64_of(&g["delivered_to"][pid.to_string()]), n);
    assert_eq!(u64_of(&g["killed"]), 0);
    let latency = &g["latency_ns"];
    assert!(u64_of(&latency["p50"]) <= u64_of(&latency["p99"]));
    assert!(u64_of(&latency["p99"]) <= u64_of(&latency["max"]));
    // signal.pthread_kill(main thread): tgkill, to one thread.
    let g = *groups.iter().find(|g| g["code"] == "SI_TKILL").unwrap();
    assert_eq!(g["syscall"], "tgkill");
    assert_eq!(g["target"]["tid"], pid);
    assert_eq!(u64_of(&g["generated"]), t);
    assert_eq!(u64_of(&g["delivered"]), t);
    assert_eq!(g["disposition"], "handler");
    // The log holds every event (2(n+t) of them), first and last 20.
    assert_eq!(u64_of(&report["signal_log"]["total"]), 2 * (n + t));
    assert_eq!(
        report["signal_log"]["entries"].as_array().unwrap().len(),
        40
    );
}

#[test]
fn signals_a_parent_ignores() {
    let run = trace("signals_ignored.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let parent = pid_of(&facts["parent"]);
    let child = pid_of(&facts["child"]);
    let m = u64_of(&facts["sent"]);

    let groups = signal_groups(report, "SIGUSR2", parent);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = groups[0];
    assert_eq!(g["sender"]["pid"], child);
    assert_eq!(g["sender"]["kernel"], false);
    assert_eq!(g["code"], "SI_USER");
    assert_eq!(u64_of(&g["generated"]), m);
    assert_eq!(u64_of(&g["results"]["ignored"]), m);
    assert_eq!(g["results"].as_object().unwrap().len(), 1, "{g}");
    assert_eq!(u64_of(&g["ignored"]), m);
    assert_eq!(u64_of(&g["delivered"]), 0);
    assert_eq!(g["disposition"], "ignored");
    assert_eq!(g["latency_ns"], serde_json::Value::Null);
}

#[test]
fn blocked_signal_is_delivered_once_after_the_delay() {
    let run = trace("signals_blocked.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let pid = pid_of(&facts["pid"]);
    let blocked_ns = u64_of(&facts["blocked_ns"]);
    assert_eq!(u64_of(&facts["handled"]), 1);

    let groups = signal_groups(report, "SIGUSR1", pid);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = groups[0];
    assert_eq!(u64_of(&g["generated"]), 1);
    assert_eq!(u64_of(&g["results"]["delivered"]), 1);
    assert_eq!(u64_of(&g["delivered"]), 1);
    assert_eq!(u64_of(&g["pending_at_end"]), 0);
    assert_eq!(g["disposition"], "handler");
    // Generated before the measured interval began, delivered after it ended.
    let latency = &g["latency_ns"];
    assert!(
        u64_of(&latency["p50"]) >= blocked_ns,
        "latency {latency} < blocked {blocked_ns}"
    );
    assert_eq!(latency["p50"], latency["max"]);
}

#[test]
fn sigpipe_from_a_write_to_a_closed_pipe_comes_from_the_kernel() {
    let run = trace("signals_sigpipe.py", "json", &[]);
    let (report, facts) = (&run.report, &run.facts);
    assert_complete(report);
    let pid = pid_of(&facts["pid"]);
    assert_eq!(u64_of(&facts["epipe"]), 2);
    assert_eq!(u64_of(&facts["handled"]), 1);

    let groups = signal_groups(report, "SIGPIPE", pid);
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = groups[0];
    assert_eq!(g["sender"]["kernel"], true);
    assert_eq!(g["sender"]["comm"], "kernel");
    assert_eq!(g["sender"]["pid"], 0);
    assert_eq!(g["syscall"], serde_json::Value::Null);
    // The kernel sends it to the writing thread.
    assert_eq!(g["target"]["tid"], pid);
    // Python ignores SIGPIPE: the first is ignored, the second goes to the handler.
    assert_eq!(u64_of(&g["generated"]), 2);
    assert_eq!(u64_of(&g["results"]["ignored"]), 1);
    assert_eq!(u64_of(&g["results"]["delivered"]), 1);
    assert_eq!(u64_of(&g["ignored"]), 1);
    assert_eq!(u64_of(&g["delivered"]), 1);
    assert_eq!(g["disposition"], "handler");
    let log = report["signal_log"]["entries"].as_array().unwrap();
    let pipe_events: Vec<_> = log.iter().filter(|e| e["signal"] == "SIGPIPE").collect();
    assert_eq!(pipe_events.len(), 3, "{pipe_events:?}");
    assert_eq!(pipe_events[0]["event"], "generate");
    assert_eq!(pipe_events[0]["context_pid"], pid);
    assert_eq!(pipe_events[0]["sender"]["kernel"], true);
}

/// A pre-fork parent kills its worker (SIGKILL), or the worker aborts
/// itself (SIGABRT, default action: the kernel kills the other threads):
/// the killing signal's group holds each of the worker's three threads'
/// Python stacks as it died, at the lines the workload knows it was on.
#[test]
fn a_killed_workers_threads_as_they_died() {
    require_root();
    for how in ["KILL", "ABRT"] {
        let scratch = Scratch::new(&format!("killed-worker-{how}"));
        let facts_path = scratch.path("facts.json");
        let command = python_command(SHARED_PYTHON, "killed_worker.py", &[&facts_path, how]);
        let report = trace_command(&scratch, &[], &command);
        let facts = load_json(&facts_path);
        let worker = pid_of(&facts["worker"]);
        let file = workload("killed_worker.py");
        let signal = format!("SIG{how}");
        assert_eq!(u64_of(&facts["signal"]), if how == "KILL" { 9 } else { 6 });

        let groups = signal_groups(&report, &signal, worker);
        assert_eq!(groups.len(), 1, "{how}: {groups:?}");
        let g = groups[0];
        assert_eq!(u64_of(&g["killed"]), 1, "{g:#}");
        let threads = g["threads_at_death"].as_array().expect("threads_at_death");
        assert_eq!(threads.len(), 3, "{g:#}");
        let mut tids: Vec<u64> = threads.iter().map(|t| u64_of(&t["tid"])).collect();
        tids.sort();
        tids.dedup();
        assert_eq!(tids.len(), 3, "{threads:?}");
        assert!(threads.iter().all(|t| u64_of(&t["pid"]) == worker));
        let stack_of = |t: &Value| -> Vec<String> {
            t["python_stack"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect()
        };
        // The main thread: in `serve`, in `select` or in `os.abort()`.
        let main = threads
            .iter()
            .find(|t| u64_of(&t["tid"]) == worker)
            .expect("the main thread died");
        let line = if how == "KILL" {
            &facts["serve_line"]
        } else {
            &facts["abort_line"]
        };
        assert_eq!(
            stack_of(main)[0],
            format!("serve ({file}:{line})"),
            "{main}"
        );
        // `waiter`: blocked in `Event.wait` on its line.
        let wait = format!("wait_forever ({file}:{})", facts["wait_line"]);
        assert!(
            threads.iter().any(|t| stack_of(t).contains(&wait)),
            "{wait}: {threads:?}"
        );
        // `spinner`: computing in `spin`.
        assert!(
            threads
                .iter()
                .any(|t| stack_of(t)[0].starts_with(&format!("spin ({file}:"))),
            "{threads:?}"
        );
    }
}
