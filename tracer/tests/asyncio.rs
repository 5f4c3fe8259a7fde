//! asyncio tasks (CPython 3.14+), checked against CPython's own reader:
//! `asyncio_tasks.py` (named tasks, a TaskGroup, nested awaits, a task
//! awaiting another, tasks stuck on an `asyncio.Event`, a second event
//! loop in a thread) runs in the Debian sid root; once every task is
//! suspended, `tracer --pid P --dump --format json` must agree with
//! `python3.X -m asyncio ps P` and `pstree P`, run in the same root and
//! mount namespace against the same process, on every task name,
//! coroutine chain (function, file, line) and awaiter. A trace of the same
//! process lists the same tasks when it starts and when it stops.
//!
//! 3.14's reader walks the thread list from the main thread only (its
//! `get_all_awaited_by` starts at `threads.main`, the oldest thread, whose
//! `next` is null), so it does not list the second loop's tasks; 3.15's
//! walks every thread. The test says so rather than hide the difference.
//!
//! Samples go to the task that ran them: `asyncio_task_samples.py` runs
//! two named CPU-bound tasks, "heavy" doing 3 times the rounds of "light",
//! interleaved on one loop; `python.asyncio.samples_by_task` must give
//! each its share (against the CPU time the workload measured for each)
//! with its own spin function on top, and the folded stacks and the pprof
//! profile (read by `go tool pprof`) must carry the task.
//!
//! Run: sudo -E cargo test --release -p tracer --test asyncio -- --test-threads=1

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::{
    Proc, Scratch, attach_tracer,
    http::{PprofPull, free_port, parse_traces},
    load_json, require_root, say_go, spawn_until_ready_with_stdout, text, tracer,
};
use serde_json::Value;

/// The sid root (`cargo xtask chroots` makes it), or the trixie one.
fn root(env: &str, default: &str) -> PathBuf {
    if let Ok(why) = std::env::var(format!("{env}_ERROR")) {
        panic!("`cargo xtask test` could not make its Debian root: {why}");
    }
    let dir = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        dir.join("usr/bin").exists(),
        "no Debian root in {}: `cargo xtask chroots` makes it, or set {env}",
        dir.display()
    );
    dir
}

fn sid() -> PathBuf {
    root(
        "TRACER_PY314_ROOT",
        "/var/cache/tracer-tests/sid-python3.14",
    )
}

/// The workload, started in `root` (its own mount namespace and /proc,
/// the host's pid namespace) and held until every task is suspended.
fn start(
    root: &Path,
    python: &str,
    test: &str,
) -> (Proc, common::Lines<std::process::ChildStdout>, u32) {
    start_workload(root, python, test, "asyncio_tasks.py", &[]).0
}

/// `workload` started in `root` with `args` (paths inside the root; `{dir}`
/// is its scratch directory there), and that directory as the host sees it.
fn start_workload(
    root: &Path,
    python: &str,
    test: &str,
    workload: &str,
    args: &[&str],
) -> (
    (Proc, common::Lines<std::process::ChildStdout>, u32),
    PathBuf,
) {
    let inside = format!("/tmp/tracer-tests/{test}");
    let host = root.join(inside.trim_start_matches('/'));
    let _ = std::fs::remove_dir_all(&host);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::copy(common::workload(workload), host.join(workload)).unwrap();
    let mut command = vec![
        "unshare".to_owned(),
        "--mount".into(),
        "--mount-proc".into(),
        format!("--root={}", root.display()),
        python.into(),
        "-B".into(),
        format!("{inside}/{workload}"),
    ];
    command.extend(args.iter().map(|a| a.replace("{dir}", &inside)));
    (spawn_until_ready_with_stdout(&command), host)
}

/// `python -m asyncio ARGS PID` in the target's own root and mount
/// namespace (its /proc): where CPython's reader must run.
fn asyncio_tool(python: &str, what: &str, pid: u32) -> String {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-m",
            "-r",
            python,
            "-m",
            "asyncio",
            what,
        ])
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("running nsenter");
    assert!(
        out.status.success(),
        "asyncio {what}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `asyncio ps`: one row per (task, awaiter); names here have no spaces.
/// tid, id, name, coroutine stack ("a -> b"), then either the awaiter
/// id "0x0" alone or awaiter chain, awaiter name, awaiter id.
fn parse_ps(table: &str) -> BTreeMap<String, (String, Vec<String>, Vec<String>)> {
    let mut tasks: BTreeMap<String, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    for line in table.lines().skip(2).filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (id, name) = (words[1].to_owned(), words[2].to_owned());
        let mut i = 3;
        let mut stack = Vec::new();
        if words.len() - i > 1 {
            stack.push(words[i].to_owned());
            i += 1;
            while words[i] == "->" {
                stack.push(words[i + 1].to_owned());
                i += 2;
            }
        }
        let rest = &words[i..];
        let awaiter = match rest {
            [_only_id] => None,
            [.., name, id] => Some(format!("{name} {id}")),
            [] => panic!("no awaiter id: {line}"),
        };
        let entry = tasks.entry(name).or_insert((id, stack, Vec::new()));
        entry.2.extend(awaiter);
    }
    tasks
}

/// `asyncio pstree`: each task's coroutine frames (outermost first in the
/// tree, turned innermost first here) and the task above it.
fn parse_pstree(tree: &str) -> BTreeMap<String, (Vec<String>, Option<String>)> {
    let mut tasks: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
    // (indent, task owning the line)
    let mut open: Vec<(usize, String)> = Vec::new();
    for line in tree.lines().filter(|l| !l.trim().is_empty()) {
        let content = line.trim_start_matches(|c: char| " │├└─".contains(c));
        let indent = line.chars().count() - content.chars().count();
        while open.last().is_some_and(|(d, _)| *d >= indent) {
            open.pop();
        }
        let above = open.last().map(|(_, owner)| owner.clone());
        if let Some(name) = content.strip_prefix("(T) ") {
            tasks.insert(name.to_owned(), (Vec::new(), above));
            open.push((indent, name.to_owned()));
        } else {
            let owner = above.unwrap_or_else(|| panic!("a frame outside a task: {line}"));
            tasks
                .get_mut(&owner)
                .unwrap()
                .0
                .insert(0, content.trim().to_owned());
            open.push((indent, owner));
        }
    }
    tasks
}

fn frame_text(frame: &Value) -> String {
    format!(
        "{} {}:{}",
        frame["qualname"].as_str().unwrap(),
        frame["file"].as_str().unwrap(),
        frame["line"]
    )
}

/// The tracer's tasks by name: (id, tid, chain, awaiters "name id").
fn ours(tasks: &Value) -> BTreeMap<String, (String, u64, Vec<String>, Vec<String>)> {
    tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let chain = t["coroutine_stack"]
                .as_array()
                .unwrap()
                .iter()
                .map(frame_text)
                .collect();
            let awaiters = t["awaited_by"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{} {}",
                        a["name"].as_str().unwrap(),
                        a["id"].as_str().unwrap()
                    )
                })
                .collect();
            let name = t["name"].as_str().unwrap().to_owned();
            let id = t["id"].as_str().unwrap().to_owned();
            (name, (id, t["tid"].as_u64().unwrap(), chain, awaiters))
        })
        .collect()
}

fn dump(pid: u32) -> Value {
    let out = tracer(&["--pid", &pid.to_string(), "--dump", "--format", "json"]);
    assert!(out.status.success(), "tracer --dump: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the dump's JSON")
}

/// The dump agrees with `asyncio ps` and `pstree` on every task CPython's
/// reader lists; `other_thread_unseen`: 3.14's reader lists the main
/// thread's tasks only, the tracer the second loop's too.
fn agrees_with_cpython(python: &str, test: &str, other_thread_unseen: bool) {
    require_root();
    let root = sid();
    let (mut workload, mut stdout, pid) = start(&root, python, test);
    let report = dump(pid);
    let ps = parse_ps(&asyncio_tool(python, "ps", pid));
    let pstree = parse_pstree(&asyncio_tool(python, "pstree", pid));
    let asyncio = &report["python"]["asyncio"];
    assert_eq!(asyncio["notes"], serde_json::json!([]), "{asyncio:#}");
    let mine = ours(&asyncio["tasks"]);
    let context = format!("tracer: {asyncio:#}\nps: {ps:#?}\npstree: {pstree:#?}");

    // Every task CPython lists, with the same id, chain and awaiters.
    for (name, (id, chain, awaiters)) in &ps {
        let (my_id, _, my_chain, my_awaiters) = mine
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing\n{context}"));
        assert_eq!(my_id, id, "{name}'s id\n{context}");
        let functions: Vec<&str> = my_chain
            .iter()
            .map(|f| f.split(' ').next().unwrap())
            .collect();
        assert_eq!(functions, *chain, "{name}'s coroutine stack\n{context}");
        let mut awaiters = awaiters.clone();
        let mut my_awaiters = my_awaiters.clone();
        awaiters.sort();
        my_awaiters.sort();
        assert_eq!(my_awaiters, awaiters, "{name}'s awaiters\n{context}");
        let (tree_chain, above) = &pstree[name];
        assert_eq!(my_chain, tree_chain, "{name}'s frames and lines\n{context}");
        let first_awaiter = my_awaiters
            .first()
            .map(|a| a.split(' ').next().unwrap().to_owned());
        assert_eq!(above, &first_awaiter, "{name} is drawn under\n{context}");
    }
    // The named tasks the workload made, all of them suspended.
    for name in [
        "stuck-on-event",
        "parent",
        "child",
        "last-one",
        "other-loop-task",
    ] {
        assert!(mine.contains_key(name), "{name} missing\n{context}");
    }
    assert!(
        asyncio["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "suspended" && t["pid"] == pid),
        "{context}"
    );
    let unseen: Vec<&String> = mine.keys().filter(|n| !ps.contains_key(*n)).collect();
    if other_thread_unseen {
        // Exactly the second loop's: its main task and other-loop-task.
        assert_eq!(unseen.len(), 2, "{context}");
        assert!(
            unseen.iter().all(|n| mine[*n].1 != u64::from(pid)),
            "{context}"
        );
    } else {
        assert!(unseen.is_empty(), "{context}");
    }
    assert_eq!(mine.len(), 7, "{context}");

    // The text view draws the same tree.
    let out = tracer(&["--pid", &pid.to_string(), "--dump"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!(
            "(T) stuck-on-event {} suspended",
            mine["stuck-on-event"].0
        )),
        "{shown}"
    );

    // A trace lists them when it starts and when it stops.
    let scratch = Scratch::new(test);
    let path = scratch.path("report.json");
    let (mut traced, mut stderr) = attach_tracer(pid, &["--format", "json", "-o", &path]);
    traced.signal("INT");
    assert_eq!(traced.wait().code(), Some(0), "tracer: {}", stderr.rest());
    let trace = load_json(&path);
    let asyncio = &trace["python"]["asyncio"];
    assert_eq!(ours(&asyncio["tasks_at_start"]), mine, "{asyncio:#}");
    assert_eq!(ours(&asyncio["tasks"]), mine, "{asyncio:#}");

    say_go(&mut workload);
    stdout.wait_for("done");
    workload.wait();
}

#[test]
fn python_3_14_agrees_with_asyncio_ps() {
    agrees_with_cpython("/usr/bin/python3.14", "asyncio-3.14", true);
}

#[test]
fn python_3_15_agrees_with_asyncio_ps() {
    agrees_with_cpython("/usr/bin/python3.15", "asyncio-3.15", false);
}

/// Before 3.14 there is no `.AsyncioDebug`: said once, because asyncio is
/// imported (its `_asyncio` module is mapped).
#[test]
fn python_3_13_says_why_no_tasks() {
    require_root();
    let root = root(
        "TRACER_PY313_ROOT",
        "/var/cache/tracer-tests/trixie-python3.13",
    );
    let (mut workload, mut stdout, pid) = start(&root, "/usr/bin/python3.13", "asyncio-3.13");
    let report = dump(pid);
    let asyncio = &report["python"]["asyncio"];
    assert_eq!(asyncio["tasks"], serde_json::json!([]), "{asyncio:#}");
    let notes = asyncio["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{asyncio:#}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .contains("asyncio tasks need CPython 3.14+ (this is CPython 3.13."),
        "{asyncio:#}"
    );
    say_go(&mut workload);
    stdout.wait_for("done");
    workload.wait();
}

/// Samples go to the task that was running (see the module's notes).
fn samples_by_task(python: &str, test: &str) {
    require_root();
    let root = sid();
    let ((mut workload, mut stdout, pid), host) = start_workload(
        &root,
        python,
        test,
        "asyncio_task_samples.py",
        &["{dir}/known.json"],
    );
    let scratch = Scratch::new(test);
    let (json, folded, pprof) = (
        scratch.path("report.json"),
        scratch.path("stacks.folded"),
        scratch.path("profile.pb.gz"),
    );
    let (mut traced, mut stderr) = attach_tracer(
        pid,
        &[
            "--rate", "999", "--format", "json", "-o", &json, "--folded", &folded, "--pprof",
            &pprof,
        ],
    );
    say_go(&mut workload);
    stdout.wait_for("done");
    workload.wait();
    assert_eq!(traced.wait().code(), Some(0), "tracer: {}", stderr.rest());
    let known = load_json(host.join("known.json").to_str().unwrap());
    let report = load_json(&json);
    let asyncio = &report["python"]["asyncio"];
    let context = format!("{asyncio:#}\nworkload: {known}");
    let row = |name: &str| {
        asyncio["samples_by_task"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["task"] == name && r["pid"] == pid)
            .unwrap_or_else(|| panic!("no task {name}\n{context}"))
            .clone()
    };
    let (heavy, light) = (row("heavy"), row("light"));
    let samples = |r: &Value| r["samples"].as_u64().unwrap();
    // Each task's share against the CPU time the workload measured in it.
    let cpu = |name: &str| known["cpu_ns"][name].as_f64().unwrap();
    let measured = cpu("heavy") / cpu("light");
    let got = samples(&heavy) as f64 / samples(&light).max(1) as f64;
    assert!(
        samples(&light) >= 50 && (got / measured - 1.0).abs() <= 0.35,
        "heavy/light: {got:.2} sampled vs {measured:.2} measured\n{context}"
    );
    // Their hotspots are their own functions.
    for (row, own, other) in [
        (&heavy, "heavy_spin", "light_spin"),
        (&light, "light_spin", "heavy_spin"),
    ] {
        let hotspots = row["hotspots"].as_array().unwrap();
        assert_eq!(hotspots[0]["qualname"], own, "{context}");
        assert!(hotspots.iter().all(|h| h["qualname"] != other), "{context}");
        assert!(row["id"].as_str().unwrap().starts_with("0x"), "{context}");
    }
    // The stacks name their task; the folded ones put it above the frames.
    let folded = std::fs::read_to_string(&folded).unwrap();
    for (task, spin) in [("heavy", "heavy_spin"), ("light", "light_spin")] {
        assert!(
            folded
                .lines()
                .any(|l| l.starts_with(&format!("task: {task};")) && l.contains(spin)),
            "{folded}"
        );
    }
    assert!(
        !folded
            .lines()
            .any(|l| l.starts_with("task: light;") && l.contains("heavy_spin")),
        "{folded}"
    );
    // pprof: a `task` label on each sample that ran in one.
    let out = Command::new("go")
        .args(["tool", "pprof", "-traces", &pprof])
        .output()
        .expect("go (Debian's golang-go; `cargo xtask test` installs it)");
    assert!(out.status.success(), "go tool pprof: {out:?}");
    assert_task_labels(&text(&out.stdout));
}

/// `--serve`'s `/debug/pprof/profile`, pulled by `go tool pprof` while the
/// two tasks run: its samples carry the `task` label too, as the agent's
/// pulls are how a fleet sees a service.
#[test]
fn the_pprof_endpoint_labels_samples_with_their_task() {
    require_root();
    let test = "task-samples-serve";
    let ((mut workload, mut stdout, pid), _) = start_workload(
        &sid(),
        "/usr/bin/python3.14",
        test,
        "asyncio_task_samples.py",
        &["{dir}/known.json"],
    );
    let scratch = Scratch::new(test);
    let address = format!("127.0.0.1:{}", free_port());
    let final_metrics = scratch.path("final.prom");
    // -v: the tracer says when the profile's window opens.
    let (mut traced, mut stderr) =
        attach_tracer(pid, &["-v", "--serve", &address, "-o", &final_metrics]);
    let url = format!("http://{address}/debug/pprof/profile?seconds=2");
    let go = PprofPull::start(&url, &scratch.subdir("pprof"));
    // The tasks start once the profile's window is open.
    stderr.wait_for("pprof: profile");
    say_go(&mut workload);
    let traces = go.traces();
    stdout.wait_for("done");
    workload.wait();
    // The target is gone: the tracer stops with it.
    assert_eq!(traced.wait().code(), Some(0), "tracer: {}", stderr.rest());
    assert_task_labels(&traces);
}

/// `go tool pprof -traces` of the two tasks' profile: samples labelled
/// with each task, its own spin function on top, never the other's.
fn assert_task_labels(traces: &str) {
    let samples = parse_traces(traces);
    for (task, spin) in [("heavy", "heavy_spin"), ("light", "light_spin")] {
        assert!(
            samples
                .iter()
                .any(|t| t.label("task") == Some(task)
                    && t.frames.first().is_some_and(|f| f == spin)),
            "no {task} sample in {spin}:\n{traces}"
        );
    }
    for (task, other) in [("heavy", "light_spin"), ("light", "heavy_spin")] {
        assert!(
            !samples
                .iter()
                .any(|t| t.label("task") == Some(task) && t.frames.iter().any(|f| f == other)),
            "{traces}"
        );
    }
}

#[test]
fn python_3_14_samples_by_task() {
    samples_by_task("/usr/bin/python3.14", "task-samples-3.14");
}

#[test]
fn python_3_15_samples_by_task() {
    samples_by_task("/usr/bin/python3.15", "task-samples-3.15");
}
