//! `tracer --live` in a real terminal: tmux at 80x24, keys sent with
//! send-keys, the screen read with capture-pane, a real CPython workload
//! traced with real eBPF. Waits are for what the screen shows (polled,
//! with a generous deadline), never a fixed sleep.

mod common;

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use common::*;

/// How long the screen may take to show what a test waits for.
const SCREEN_DEADLINE: Duration = Duration::from_secs(60);
/// Between two looks at the screen.
const POLL: Duration = Duration::from_millis(100);

/// A tmux server of its own (other tests and engineers use theirs), one
/// window of 80x24 running a plain shell; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(test: &str) -> Self {
        let tmux = Self {
            socket: format!("tracer-live-{test}-{}", std::process::id()),
        };
        let _ = tmux.run(&["kill-server"]);
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm-256color",
            "PS1=$ ",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        assert!(out.status.success(), "tmux: {}", text(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux (cargo xtask test installs it)")
    }

    /// Types `line` and Enter.
    fn type_line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let out = self.run(&[&["send-keys", "-t", "0"], keys].concat());
        assert!(out.status.success(), "send-keys: {}", text(&out.stderr));
    }

    /// The screen now (with the scrollback when `history`).
    fn screen(&self, history: bool) -> String {
        let args: &[&str] = if history {
            &["capture-pane", "-p", "-t", "0", "-S", "-100"]
        } else {
            &["capture-pane", "-p", "-t", "0"]
        };
        text(&self.run(args).stdout)
    }

    /// Whether the alternate screen (a full-screen program's) is shown.
    fn alternate(&self) -> bool {
        text(
            &self
                .run(&["display", "-p", "-t", "0", "#{alternate_on}"])
                .stdout,
        )
        .trim()
            == "1"
    }

    /// The first screen `found` returns something for.
    fn wait_for<T>(&self, what: &str, found: impl Fn(&str) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let screen = self.screen(false);
            if let Some(value) = found(&screen) {
                return value;
            }
            assert!(
                start.elapsed() < SCREEN_DEADLINE,
                "{what}: not on the screen after {SCREEN_DEADLINE:?}; it shows:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the shell's line after the tracer: its exit status.
    fn wait_exit(&self) -> i32 {
        let start = Instant::now();
        loop {
            let screen = self.screen(true);
            if let Some(code) = screen
                .lines()
                .find_map(|l| l.strip_prefix("tracer exited "))
            {
                return code.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < SCREEN_DEADLINE,
                "the tracer did not exit; the screen shows:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The hot function's row on the Python view: (%Own, cumulative own samples).
fn hot_row(screen: &str) -> Option<(f64, u64)> {
    let row = screen.lines().nth(3)?;
    if !row.contains("hot_function (live_view.py:") {
        return None;
    }
    let cells: Vec<&str> = row.split_whitespace().collect();
    Some((cells[0].parse().ok()?, cells[2].parse().ok()?))
}

/// The header's elapsed time (`h:mm:ss`).
fn elapsed(screen: &str) -> Option<String> {
    let header = screen.lines().next()?;
    header
        .split_whitespace()
        .find(|w| w.len() >= 7 && w.matches(':').count() == 2)
        .map(str::to_owned)
}

fn tracer_line(args: &[&str]) -> String {
    let mut line = TRACER.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line.push_str("; echo tracer exited $?");
    line
}

#[test]
fn the_hot_function_is_shown_with_its_share_refreshed_and_q_gives_the_terminal_back() {
    require_root();
    let scratch = Scratch::new("live_q");
    let data = scratch.path("data");
    std::fs::write(&data, vec![7u8; 4096]).unwrap();
    let report = scratch.path("report.json");
    let command = python_command(python(STATIC_PYTHON), "live_view.py", &["serve", &data]);
    let (_workload, pid) = spawn_until_ready(&command);
    let tmux = Tmux::new("q");
    tmux.type_line(&tracer_line(&[
        "--pid",
        &pid.to_string(),
        "--live",
        "--format",
        "json",
        "-o",
        &report,
    ]));
    // Nearly all its CPU time is in hot_function (a read and a select
    // between bursts of 200,000 iterations): its own share, at the top.
    let (share, own) = tmux.wait_for("hot_function at the top", hot_row);
    assert!(share >= 90.0, "hot_function's own share is {share}%");
    assert!(tmux.alternate(), "the view is on the alternate screen");
    let first = tmux.wait_for("the header", elapsed);
    // Refreshed: the clock and the hot function's samples go on.
    tmux.wait_for("a later elapsed time", |s| {
        elapsed(s).filter(|e| *e != first)
    });
    tmux.wait_for("more samples of hot_function", |s| {
        hot_row(s).filter(|&(_, n)| n > own)
    });
    // The other views: reads of the data file, 4 KiB at a time.
    tmux.keys(&["Tab"]);
    tmux.wait_for("the reads view", |s| {
        s.lines()
            .find(|l| l.contains("live_q/data"))
            .filter(|l| l.contains(" 4K "))
            .map(str::to_owned)
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen(true));
    assert!(!tmux.alternate(), "the alternate screen is left");
    let screen = tmux.screen(true);
    assert!(
        screen.contains(&format!("tracer: tracing pid {pid} (")),
        "the shell's screen is back:\n{screen}"
    );
    let report = load_json(&report);
    assert_eq!(report["stopped"], "quit from the live view");
    assert!(samples_with(&report["python"], "hot_function", |_| true) > 0);
    assert!(u64_of(&entry(&report, pid as u64, &data)["syscalls"]) > 0);
}

#[test]
fn ctrl_c_ends_the_view_and_gives_the_terminal_back() {
    require_root();
    let scratch = Scratch::new("live_ctrl_c");
    let data = scratch.path("data");
    std::fs::write(&data, vec![7u8; 4096]).unwrap();
    let command = python_command(python(STATIC_PYTHON), "live_view.py", &["serve", &data]);
    let (_workload, pid) = spawn_until_ready(&command);
    let tmux = Tmux::new("ctrl_c");
    let report = scratch.path("report.json");
    tmux.type_line(&tracer_line(&[
        "--pid",
        &pid.to_string(),
        "--live",
        "--refresh",
        "0.5",
        "-o",
        &report,
    ]));
    tmux.wait_for("hot_function", hot_row);
    tmux.keys(&["C-c"]);
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen(true));
    assert!(!tmux.alternate(), "the alternate screen is left");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.contains("quit from the live view"), "{report}");
}

/// A fixed run traced with --live (to its exit: the terminal is given
/// back) and without, in the same shell: the same report but for what
/// time and pids make differ.
#[test]
fn the_report_written_at_exit_equals_a_normal_traces() {
    require_root();
    let scratch = Scratch::new("live_report");
    let data = scratch.path("data");
    std::fs::write(&data, vec![7u8; 4096]).unwrap();
    let python = python(STATIC_PYTHON);
    let tmux = Tmux::new("report");
    let mut reports = Vec::new();
    for (name, live) in [("live", true), ("normal", false)] {
        let report = scratch.path(&format!("{name}.json"));
        let facts = scratch.path(&format!("{name}-facts.json"));
        let command = python_command(python, "live_view.py", &["fixed", &data, &facts]);
        let mut args = vec!["--quiet", "--format", "json", "-o", &report];
        if live {
            // Several refreshes while it runs.
            args.extend(["--live", "--refresh", "0.1"]);
        }
        args.push("--");
        args.extend(command.iter().map(String::as_str));
        tmux.keys(&["C-l"]);
        tmux.type_line(&tracer_line(&args));
        assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen(true));
        assert!(
            !tmux.alternate(),
            "the target's exit gives the terminal back"
        );
        tmux.type_line("clear; history -c");
        tmux.wait_for("a cleared screen", |s| {
            (!s.contains("tracer exited")).then_some(())
        });
        reports.push((load_json(&report), load_json(&facts)));
    }
    for (report, facts) in &reports {
        // What the workload knows.
        let pid = u64_of(&facts["pid"]);
        let read = entry(report, pid, &data);
        assert_eq!(read["syscalls"], facts["reads"], "{read:#}");
        assert_eq!(read["bytes"], facts["bytes"], "{read:#}");
        assert_eq!(request_sizes(read), [(4096, 200)].into());
        assert_eq!(read["opens"], facts["reads"]);
        let children = facts["children"].as_array().unwrap();
        for (child, code) in children.iter().zip(facts["codes"].as_array().unwrap()) {
            assert_eq!(process(report, u64_of(child))["exit_code"], *code);
        }
        assert_eq!(report["target"]["exit_code"], 0);
        assert_eq!(report["stopped"], "target exited");
        assert_eq!(report["complete"], true, "{:#}", report["warnings"]);
        assert!(samples_with(&report["python"], "hot_function", |_| true) > 0);
    }
    let (live, normal) = (&reports[0], &reports[1]);
    assert_eq!(same_figures(live), same_figures(normal));
    let keys = |r: &serde_json::Value| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&live.0), keys(&normal.0), "the same sections");
}

/// A report's figures that two runs of the fixed workload share: every
/// file read (by the target or a child) with its syscalls, bytes, request
/// sizes and opens; every process's name and exit; the signals and
/// zombies; the warnings.
fn same_figures((report, facts): &(serde_json::Value, serde_json::Value)) -> serde_json::Value {
    let target = &facts["pid"];
    let role = |pid: &serde_json::Value| if pid == target { "target" } else { "child" };
    let mut reads: Vec<String> = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {} {}",
                role(&e["pid"]),
                e["path"],
                e["syscalls"],
                e["bytes"],
                e["request_sizes"],
                e["opens"]
            )
        })
        .collect();
    reads.sort();
    let mut processes: Vec<String> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {} {}", role(&p["pid"]), p["comm"], p["exit_code"]))
        .collect();
    processes.sort();
    let signals: Vec<String> = report["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["signal"], s["generated"]))
        .collect();
    serde_json::json!({
        "reads": reads,
        "processes": processes,
        "signals": signals,
        "zombies": report["zombies"].as_array().unwrap().len(),
        "warnings": report["warnings"],
    })
}

#[test]
fn standard_output_not_a_terminal_is_refused_with_status_9() {
    require_root();
    let out = tracer(&["--live", "--pid", &std::process::id().to_string()]);
    assert_exit(&out, 9);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("standard output is not one"), "{stderr}");
}
