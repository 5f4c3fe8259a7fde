//! Every Python process of a tree is sampled and symbolized on its own:
//! `multiprocessing` workers (fork and spawn), a pre-fork server's workers
//! (launched, and adopted by `--pid` while they already run), and a child
//! running another interpreter build. The workload measures each burn's own
//! CPU time (`time.thread_time_ns`) in the process that ran it; each
//! function's samples must be within 40% of rate x that time, in that pid,
//! and in no other.

mod common;

use common::*;
use serde_json::Value;

const RATE: u64 = 499;
const SECONDS: &str = "0.5";

/// The per-process row of `pid` in `python.processes`.
fn process_row(python: &Value, pid: u64) -> &Value {
    python["processes"]
        .as_array()
        .expect("python.processes")
        .iter()
        .find(|p| p["pid"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("no python.processes row for pid {pid}: {python:#}"))
}

/// Samples with `function` anywhere in the stack, in process `pid`.
fn samples_in(python: &Value, pid: u64, function: &str) -> u64 {
    samples_with(python, function, |s| s["pid"].as_u64() == Some(pid))
}

/// Every burn the workload measured shows in its own process with about
/// rate x CPU time samples, and in no other process.
fn check_runs(report: &Value, known: &Value) {
    let python = &report["python"];
    assert_eq!(python["status"], "sampled", "{python:#}");
    assert_eq!(python["samples_lost"], 0);
    let runs = known["runs"].as_array().unwrap();
    for run in runs {
        let pid = run["pid"].as_u64().unwrap();
        let function = run["function"].as_str().unwrap();
        let cpu_ns = run["cpu_ns"].as_u64().unwrap();
        let got = samples_in(python, pid, function);
        assert_sampled_at_rate(
            got,
            cpu_ns,
            RATE,
            &format!("{function} in pid {pid}"),
            &python["processes"],
        );
        let row = process_row(python, pid);
        assert_eq!(row["status"], "sampled", "{row:#}");
        assert!(row["samples"].as_u64().unwrap() >= got, "{row:#}");
        // Nowhere else: each process's samples are its own.
        for other in runs.iter().filter(|r| r["pid"] != run["pid"]) {
            let other_pid = other["pid"].as_u64().unwrap();
            if other["function"] != function {
                assert_eq!(
                    samples_in(python, other_pid, function),
                    0,
                    "{function} sampled in pid {other_pid}, which did not run it"
                );
            }
        }
    }
    // One entry per distinct stack of a thread.
    let stacks = python["stacks"].as_array().unwrap();
    let mut seen = std::collections::HashSet::new();
    for stack in stacks {
        let key = (
            stack["pid"].to_string(),
            stack["tid"].to_string(),
            stack["frames"].to_string(),
        );
        assert!(seen.insert(key), "stack listed twice: {stack:#}");
    }
    // The totals add up over the processes.
    let rows = python["processes"].as_array().unwrap();
    let total: u64 = rows.iter().map(|p| p["samples"].as_u64().unwrap()).sum();
    assert_eq!(python["samples"].as_u64().unwrap(), total, "{python:#}");
}

fn pool(method: &str) {
    require_root();
    let scratch = Scratch::new(&format!("tree_pool_{method}"));
    let out = scratch.path("workload.json");
    let rate = RATE.to_string();
    let report = trace_command(
        &scratch,
        &["--rate", &rate],
        &python_command(
            python(STATIC_PYTHON),
            "python_tree.py",
            &["pool", &out, SECONDS, method],
        ),
    );
    let known = load_json(&out);
    check_runs(&report, &known);
    // The workers are the pool's children, not the parent.
    let parent = known["parent"].as_u64().unwrap();
    for run in known["runs"].as_array().unwrap() {
        assert_ne!(run["pid"].as_u64().unwrap(), parent);
    }
    assert_eq!(samples_in(&report["python"], parent, "worker_burn"), 0);
}

#[test]
fn tree_multiprocessing_pool_fork() {
    pool("fork");
}

#[test]
fn tree_multiprocessing_pool_spawn() {
    pool("spawn");
}

#[test]
fn tree_prefork_workers_launched() {
    require_root();
    let scratch = Scratch::new("tree_prefork_launched");
    let out = scratch.path("workload.json");
    let folded = scratch.path("stacks.folded");
    let rate = RATE.to_string();
    let report = trace_command(
        &scratch,
        &["--rate", &rate, "--folded", &folded, "--read-stacks", "1"],
        &python_command(
            python(STATIC_PYTHON),
            "python_tree.py",
            &["prefork", &out, SECONDS],
        ),
    );
    let known = load_json(&out);
    check_runs(&report, &known);
    // The Python stack behind each worker's own read (of the pipe its
    // parent says go on) is the worker's: stacks on kernel events work in
    // every process.
    for run in known["runs"].as_array().unwrap() {
        let pid = run["pid"].as_u64().unwrap();
        let stacks: Vec<&Value> = report["reads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["pid"].as_u64() == Some(pid))
            .flat_map(|r| r["python_stacks"].as_array().unwrap())
            .collect();
        assert!(
            stacks.iter().any(|s| s["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().starts_with("prefork ("))),
            "no read stack under prefork in worker {pid}: {stacks:#?}"
        );
    }
    // Folded: one root frame per process, the worker's chain under it.
    let folded = std::fs::read_to_string(&folded).unwrap();
    let file = workload("python_tree.py");
    for run in known["runs"].as_array().unwrap() {
        let root = format!("python3.11 (pid {});", run["pid"]);
        let chain = format!(
            ";{} ({file});spin ({file}) ",
            run["function"].as_str().unwrap()
        );
        assert!(
            folded
                .lines()
                .any(|l| l.starts_with(&root) && l.contains(&chain)),
            "no folded line {root}...{chain}:\n{folded}"
        );
    }
}

#[test]
fn tree_prefork_workers_adopted_by_pid() {
    require_root();
    let scratch = Scratch::new("tree_prefork_adopted");
    let out = scratch.path("workload.json");
    let report_path = scratch.path("report.json");
    let command = python_command(
        python(STATIC_PYTHON),
        "python_tree.py",
        &["prefork", &out, SECONDS, "--wait"],
    );
    let (mut workload, pid) = spawn_until_ready(&command);
    let rate = RATE.to_string();
    let (mut tracer, _stderr) = attach_tracer(
        pid,
        &["--rate", &rate, "--format", "json", "-o", &report_path],
    );
    say_go(&mut workload);
    assert!(workload.wait().success());
    assert!(tracer.wait().success());
    let report = load_json(&report_path);
    check_runs(&report, &load_json(&out));
}

#[test]
fn tree_child_of_another_build() {
    require_root();
    let scratch = Scratch::new("tree_other_build");
    let out = scratch.path("workload.json");
    let rate = RATE.to_string();
    let child_out = scratch.path("child.json");
    let child = python_command(
        python(SHARED_PYTHON),
        "python_tree.py",
        &["burn", &child_out, SECONDS],
    );
    let mut args = vec!["other", &out, SECONDS, &child_out];
    args.extend(child.iter().map(String::as_str));
    let report = trace_command(
        &scratch,
        &["--rate", &rate],
        &python_command(python(STATIC_PYTHON), "python_tree.py", &args),
    );
    let known = load_json(&out);
    check_runs(&report, &known);
    let python = &report["python"];
    let runs = known["runs"].as_array().unwrap();
    let parent = process_row(python, runs[0]["pid"].as_u64().unwrap());
    let child = process_row(python, runs[1]["pid"].as_u64().unwrap());
    assert_eq!(parent["linkage"], "static", "{parent:#}");
    assert_eq!(child["linkage"], "shared", "{child:#}");
    assert!(
        child["binary"].as_str().unwrap().contains("libpython3.11"),
        "{child:#}"
    );
    // The top-level interpreter keys describe the target.
    assert_eq!(python["pid"], runs[0]["pid"]);
    assert_eq!(python["linkage"], "static");
}

/// A shell that burns CPU, then execs Python: its ticks before the exec
/// are counted as not sampled (no interpreter), and the Python it becomes
/// is found at the exec and sampled.
#[test]
fn tree_shell_that_execs_python() {
    require_root();
    let scratch = Scratch::new("tree_shell_exec");
    let out = scratch.path("workload.json");
    let rate = RATE.to_string();
    let python_args = python_command(
        python(STATIC_PYTHON),
        "python_tree.py",
        &["burn", &out, SECONDS],
    )
    .join(" ");
    let script = format!("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec {python_args}");
    let (report, log) = trace_command_logged(
        &scratch,
        &["--rate", &rate],
        &["/bin/sh".to_string(), "-c".into(), script],
    );
    let known = load_json(&out);
    // The exec'd interpreter was found (CI once saw it never looked for
    // again after the shell's look: its log says which exec record came
    // when).
    assert_eq!(
        report["python"]["status"], "sampled",
        "{:#}\ntracer's log:\n{log}",
        report["python"]["processes"]
    );
    check_runs(&report, &known);
    let pid = known["runs"][0]["pid"].as_u64().unwrap();
    assert_eq!(report["target"]["pid"], pid, "the shell exec'd python");
    let row = process_row(&report["python"], pid);
    assert!(
        row["ticks_without_interpreter"].as_u64().unwrap() > 0,
        "the shell's own ticks are counted: {row:#}"
    );
    assert_eq!(
        report["python"]["ticks_without_interpreter"],
        row["ticks_without_interpreter"]
    );
}

/// A 3.13 child inside a chroot, started by a static 3.11 parent: each is
/// sampled with its own build's layout, and the child's files are named as
/// it sees them, inside its root.
#[test]
fn tree_child_in_a_chroot() {
    require_root();
    let root = std::env::var("TRACER_PY313_ROOT")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/trixie-python3.13".into());
    assert!(
        std::path::Path::new(&root)
            .join("usr/bin/python3.13")
            .exists(),
        "no python3.13 in {root}: `cargo xtask test` makes it"
    );
    let scratch = Scratch::new("tree_chroot_child");
    let out = scratch.path("workload.json");
    // The child's files, as it sees them and as the host does.
    let inside = "/tmp/tracer-tests/tree_chroot_child";
    let host = format!("{root}{inside}");
    let _ = std::fs::remove_dir_all(&host);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::copy(workload("python_tree.py"), format!("{host}/python_tree.py")).unwrap();
    let child_out = format!("{host}/child.json");
    let script = format!("{inside}/python_tree.py");
    let child_out_inside = format!("{inside}/child.json");
    let rate = RATE.to_string();
    let args = [
        "other",
        &out,
        SECONDS,
        &child_out,
        "chroot",
        &root,
        "/usr/bin/python3.13",
        "-B",
        &script,
        "burn",
        &child_out_inside,
        SECONDS,
    ];
    let report = trace_command(
        &scratch,
        &["--rate", &rate],
        &python_command(python(STATIC_PYTHON), "python_tree.py", &args),
    );
    let known = load_json(&out);
    check_runs(&report, &known);
    let runs = known["runs"].as_array().unwrap();
    let child = process_row(&report["python"], runs[1]["pid"].as_u64().unwrap());
    assert!(
        child["version"].as_str().unwrap().starts_with("3.13."),
        "{child:#}"
    );
    assert_eq!(child["root"], root.as_str(), "{child:#}");
    assert_eq!(child["binary"], "/usr/bin/python3.13");
    let stack = report["python"]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["pid"] == runs[1]["pid"])
        .expect("a stack of the chrooted child");
    assert!(
        stack["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["file"] == script.as_str()),
        "files as the child sees them: {stack:#}"
    );
}

/// A pid reused within one trace names two processes: each is its own
/// `python.processes[]` row with its own samples (pid_reuse.py's first
/// process burns in `first_life`, the second, given the same pid, in
/// `second_life`), and `processes[]` has a row for each.
#[test]
fn a_reused_pid_is_two_processes_each_with_its_own_row() {
    require_root();
    let scratch = Scratch::new("pid_reuse");
    let report_path = scratch.path("report.json");
    let command = python_command(python(STATIC_PYTHON), "pid_reuse.py", &[]);
    let mut args: Vec<&str> = vec!["--quiet", "--format", "json", "-o", &report_path];
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    let output = tracer(&args);
    assert_exit(&output, 0);
    let facts: Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    let pid = facts["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("the host never gave the pid back: {facts}"));
    let report = load_json(&report_path);
    let python = &report["python"];
    let rows: Vec<&Value> = python["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pid"] == pid)
        .collect();
    assert_eq!(rows.len(), 2, "pid {pid}: {:#}", python["processes"]);
    let burned_in = |row: &Value| -> Vec<String> {
        row["hotspots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| u64_of(&h["total_samples"]) > 0)
            .map(|h| h["function"].as_str().unwrap().to_owned())
            .filter(|f| f.ends_with("_life"))
            .collect()
    };
    assert_eq!(burned_in(rows[0]), ["first_life"], "{:#}", rows[0]);
    assert_eq!(burned_in(rows[1]), ["second_life"], "{:#}", rows[1]);
    for row in &rows {
        assert_eq!(row["status"], "sampled", "{row:#}");
    }
    let processes: Vec<&Value> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pid"] == pid)
        .collect();
    assert_eq!(processes.len(), 2, "{:#}", report["processes"]);
}

/// A Python program whose child execs a program that is not Python (a
/// shell that burns CPU): the child's ticks are counted as in processes
/// that are not Python, and its row says so, instead of "not sampled".
#[test]
fn tree_child_that_is_not_python() {
    require_root();
    let scratch = Scratch::new("tree_not_python_child");
    let burn = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";
    let code =
        format!("import subprocess; subprocess.run(['/bin/sh', '-c', '{burn}'], check=True)");
    let report = trace_command(
        &scratch,
        &["--rate", &RATE.to_string()],
        &[STATIC_PYTHON.to_string(), "-c".into(), code],
    );
    let shell = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["comm"] == "sh")
        .unwrap_or_else(|| panic!("no sh: {:#}", report["processes"]));
    let pid = shell["pid"].as_u64().unwrap();
    let python = &report["python"];
    let row = process_row(python, pid);
    assert_eq!(row["not_python"], true, "{row:#}");
    assert_eq!(row["status"], "unavailable", "{row:#}");
    let ticks = row["ticks_without_interpreter"].as_u64().unwrap();
    assert!(ticks > 0, "the shell burnt CPU: {row:#}");
    assert_eq!(
        python["ticks_not_python"].as_u64(),
        Some(ticks),
        "{python:#}"
    );
    // The Python parent is not one of them.
    let parent = process_row(python, report["target"]["pid"].as_u64().unwrap());
    assert_eq!(parent["status"], "sampled", "{parent:#}");
    assert_eq!(parent["not_python"], false, "{parent:#}");
}
