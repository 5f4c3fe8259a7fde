//! What [`derive`] adds to a report (findings, the signals' stories, the
//! line that spawned each process), as the text report shows it: reports
//! built by hand, derived, then rendered. The renderers' own tests, of
//! reports with nothing to derive, are in `tracer-report`.

use crate::report::{
    self, ContextSwitches, EventStack, Report, Sched, SignalLog, SignalLogEntry, SignalPeer,
    SignalTarget, Target, ThreadSched, fixtures,
    text::{self, render},
};

use super::derive;

#[test]
fn signals_table_findings_and_log() {
    let mut r = fixtures::signals_report();
    r.signal_log = SignalLog {
        total: 1,
        entries: vec![SignalLogEntry {
            t_s: 0.5,
            event: "generate".into(),
            signal: "SIGPIPE".into(),
            signo: 13,
            sender: Some(SignalPeer {
                comm: "kernel".into(),
                kernel: true,
                ..Default::default()
            }),
            context_pid: 812,
            target: SignalTarget {
                pid: 812,
                tid: None,
                comm: "python3".into(),
            },
            code: "SI_USER".into(),
            result: Some("ignored".into()),
            ..Default::default()
        }],
    };
    derive(&mut r);
    let text = render(&r, None);
    assert!(
        text.contains("SIGNALS: 7 generated: 5 delivered, 1 ignored, 1 never delivered"),
        "{text}"
    );
    assert!(text.contains("1.0 us/2.0 us/3.0 us"), "{text}");
    assert!(
            text.contains("\n  Findings:\n  - SIGTERM from systemd (pid 1) to python3 (pid 812): 1 of 1 never delivered"),
            "{text}"
        );
    assert!(
        text.contains("kernel (in pid 812) -> python3 (pid 812) SI_USER ignored"),
        "{text}"
    );
    assert!(!text.contains("delivered in Python"), "{text}");
}

/// A handler that never ran: the story says who set it, where it was
/// delivered, where the main thread was, and that the process exited.
#[test]
fn the_story_of_a_handler_that_never_ran() {
    use report::{MainThreadSeen, ProcessInfo, PythonHandler, SignalAction};
    let mut r = Report::default();
    let mut g = report::fixtures::signal_group();
    g.signal = "SIGTERM".into();
    g.signo = 15;
    g.generated = 1;
    g.delivered = 1;
    g.first_s = 1.5;
    g.delivered_to.insert("812".into(), 1);
    let on_term = PythonHandler {
        function: "on_term".into(),
        file: "/srv/app.py".into(),
        line: 7,
    };
    g.python_handler = Some(on_term.clone());
    g.python_handler_pending_at_end = 1;
    g.python_handler_main_thread = Some(MainThreadSeen {
        seen: "sample".into(),
        t_s: 1.9,
        python_stack: vec![
            fixtures::frame("crunch (/srv/app.py:20)"),
            fixtures::frame("<module> (/srv/app.py:30)"),
        ],
    });
    r.signals.push(g);
    r.signal_actions.push(SignalAction {
        pid: 812,
        tid: 812,
        signal: "SIGTERM".into(),
        signo: 15,
        action: "handler".into(),
        python_handler: Some(on_term),
        set_by: "python".into(),
        t_s: 0.25,
        python_stack: vec![fixtures::frame("<module> (/srv/app.py:9)")],
        ..Default::default()
    });
    r.processes.push(ProcessInfo {
        pid: 812,
        exit_code: Some(0),
        exit_s: Some(2.0),
        ..Default::default()
    });
    derive(&mut r);
    let text = render(&r, None);
    let story: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("What became of each signal"))
        .skip(1)
        .take(7)
        .map(str::trim)
        .collect();
    assert_eq!(
        story,
        [
            "SIGTERM from python3 (pid 812) to python3 (pid 812): 1 sent at 1.500 s",
            "disposition: Python handler on_term (/srv/app.py:7), set at 0.250 s",
            "by <module> (/srv/app.py:9)",
            "delivered 1 time to tid 812 (main thread), 3.0 us after it was sent",
            "Python handler never ran for 1 delivery: the main thread, as seen at its last \
                 sample (1.900 s), was",
            "in crunch (/srv/app.py:20) <- <module> (/srv/app.py:30)",
            "then the process exited at 2.000 s (exit code 0)",
        ],
        "{text}"
    );
}

#[test]
fn a_killed_process_story_shows_its_threads_as_they_died() {
    let mut r = Report::default();
    let mut g = fixtures::signal_group();
    g.signal = "SIGKILL".into();
    g.signo = 9;
    g.generated = 1;
    g.delivered = 1;
    g.killed = 1;
    g.delivered_to.insert("812".into(), 1);
    g.threads_at_death = vec![
        report::ThreadAtDeath {
            pid: 812,
            tid: 812,
            t_s: 1.0,
            python_stack: vec![
                fixtures::frame("serve (/srv/app.py:44)"),
                fixtures::frame("<module> (/srv/app.py:9)"),
            ],
        },
        report::ThreadAtDeath {
            pid: 812,
            tid: 813,
            t_s: 1.0,
            python_stack: vec![fixtures::frame("spin (/srv/app.py:36)")],
        },
    ];
    g.threads_at_death_left_out = 2;
    r.signals.push(g);
    r.processes.push(report::ProcessInfo {
        pid: 812,
        exit_signal: Some("SIGKILL".into()),
        exit_s: Some(1.0),
        ..Default::default()
    });
    derive(&mut r);
    let text = render(&r, None);
    let story: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("it killed the process"))
        .skip(1)
        .take(4)
        .map(str::trim)
        .collect();
    assert_eq!(
        story,
        [
            "its threads when it died:",
            "tid 812 in serve (/srv/app.py:44) <- <module> (/srv/app.py:9)",
            "tid 813 in spin (/srv/app.py:36)",
            "and 2 more threads",
        ],
        "{text}"
    );
}

fn rendered(mut report: report::Report) -> String {
    derive(&mut report);
    render(&report, None)
}

#[test]
fn the_parent_that_never_waits_is_called_out() {
    let text = rendered(fixtures::worker_report());
    assert!(
        text.contains("PROCESSES: 2 traced (1 exited, 1 killed by a signal)"),
        "{text}"
    );
    assert!(text.contains("SIGKILL"), "{text}");
    assert!(
        text.contains(
            "ZOMBIES: 38 children exited, 37 still zombies at the end, longest zombie 12.40 s"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  Findings:\n  - python3 (pid 812) left 37 children unreaped for up to 12.40 s"
        ),
        "{text}"
    );
}

#[test]
fn zombies_and_children_show_the_line_that_spawned_them() {
    let mut r = fixtures::worker_report();
    r.processes[1].python_stacks = vec![EventStack::new(fixtures::popen_frames(7), 1)];
    for (i, z) in r.zombies.iter_mut().enumerate() {
        z.spawned_from = Some(fixtures::popen_frames(if i < 30 { 7 } else { 8 }));
    }
    let text = rendered(r);
    let lines: Vec<&str> = text.lines().collect();
    let spawned = "                   spawned from spawn (/abs/wl.py:7)";
    // Under the child's process row...
    let child = lines
        .iter()
        .position(|l| l.trim_start().starts_with("900 "))
        .unwrap();
    assert_eq!(lines[child + 1], spawned, "{text}");
    // ...and under each zombie row shown (the 25 longest: all from line 7).
    assert_eq!(
        lines.iter().filter(|l| **l == spawned).count(),
        1 + text::MAX_ZOMBIES,
        "{text}"
    );
    assert!(
        text.contains("spawned from spawn (/abs/wl.py:7) (30), spawn (/abs/wl.py:8) (7)"),
        "{text}"
    );
}

#[test]
fn renders_every_section() {
    let mut report = Report {
        target: Target {
            pid: 5,
            ns_pid: Some(5),
            comm: "python3".into(),
            argv: vec!["python3".into(), "app.py".into()],
            exit_code: Some(0),
            exit_signal: None,
            exit_signo: None,
            scope: None,
        },
        duration_s: 1.25,
        stopped: "target exited".into(),
        complete: true,
        reads: vec![fixtures::proc_status(600)],
        sched: Sched {
            voluntary: 3,
            involuntary: 1,
            on_cpu_ns: 1_000_000,
            off_cpu_ns: 2_000_000,
            inside_reads: ContextSwitches {
                voluntary: 2,
                involuntary: 1,
            },
            inside_writes: ContextSwitches::default(),
            threads: vec![ThreadSched {
                tid: 5,
                pid: 5,
                comm: "python3".into(),
                name: None,
                voluntary: 3,
                involuntary: 1,
                on_cpu_ns: 1_000_000,
                off_cpu_ns: 2_000_000,
                asleep_at_end_ns: 0,
            }],
        },
        ..Default::default()
    };
    derive(&mut report);
    let text = render(&report, None);
    assert!(
        text.contains("tracer report for python3 (pid 5): python3 app.py"),
        "{text}"
    );
    assert!(text.contains("exited with code 0"), "{text}");
    assert!(
        text.contains("READS: 600 read syscalls on 1 files"),
        "{text}"
    );
    assert!(text.contains("1 KiB x 600"), "{text}");
    assert!(
        text.contains("SCHEDULING: 4 context switches (3 voluntary"),
        "{text}"
    );
    assert!(
        text.contains("  inside read syscalls: 2 voluntary, 1 involuntary"),
        "{text}"
    );
    assert!(
        text.contains("\n  Findings:\n  - /proc/self/status: 600 read syscalls of 1 KiB"),
        "{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
}

/// A report with every section, long paths, long stacks, a wide
/// request summary and a CJK function name.
fn wide_report() -> Report {
    let mut r = fixtures::worker_report();
    r.processes[1].python_stacks = vec![report::EventStack::new(fixtures::popen_frames(7), 1)];
    r.signals = fixtures::signals_report().signals;
    r.signals[0].python_stacks = vec![report::EventStack::new(fixtures::popen_frames(9), 5)];
    let mut wide = fixtures::proc_status(150_003);
    wide.path = "/srv/application/releases/2026-11-22/var/cache/some-long-file-name.bin".into();
    wide.request_sizes.clear();
    wide.request_sizes.insert("1".into(), 150_001);
    wide.request_sizes.insert("2".into(), 1);
    wide.request_sizes.insert("3".into(), 1);
    r.reads = vec![fixtures::proc_status(600), wide];
    r.reads[0].python_stacks = vec![report::EventStack::new(fixtures::popen_frames(11), 37)];
    r.reads[0].python_stacks_every = 16;
    let hot = |name: &str, file: &str, share: f64| report::Hotspot {
        function: name.into(),
        qualname: name.into(),
        file: file.into(),
        line: 12,
        self_samples: 10,
        total_samples: 10,
        self_share: share,
        total_share: share,
        pids: Vec::new(),
        native: false,
    };
    r.python.status = "sampled".into();
    r.python.version = Some("3.11.7".into());
    r.python.rate_hz = 99;
    r.python.hotspots = vec![
        hot(
            "計算する",
            "/srv/application/releases/2026-11-22/src/計算.py",
            60.0,
        ),
        hot(
            "Handler.process_request",
            "/usr/lib/python3.11/socketserver.py",
            40.0,
        ),
    ];
    r.python.off_cpu = vec![report::EventStack::new(fixtures::popen_frames(13), 4)];
    r.event_loops = vec![report::EventLoop {
        pid: 7,
        tid: 7,
        comm: "uvicorn".into(),
        name: Some("MainThread".into()),
        kind: "asyncio".into(),
        iterations: 12_345,
        busy_ns: 9_000_000_000,
        threshold_ns: 100_000_000,
        stalls: 42,
        stall_max_ns: 812_000_000,
        stall_total_ns: 7_400_000_000,
        samples_in_stalls: 700,
        hotspots: vec![hot(
            "render_rows",
            "/srv/application/releases/2026-11-22/src/service/views/reports.py",
            89.7,
        )],
        ..Default::default()
    }];
    derive(&mut r);
    r
}

#[test]
fn every_section_fits_80_and_160_columns() {
    let report = wide_report();
    for width in [80, 160] {
        let text = render(&report, Some(width));
        for line in text.lines() {
            assert!(
                text::columns(line) <= width,
                "{} columns at width {width}: {line}\n{text}",
                text::columns(line)
            );
        }
        // The figures a user came for are still there.
        for needed in [
            "1 KiB x 600",
            "1 B x 150,001 +2",
            "SIGUSR1",
            "計算する",
            "EVENT LOOPS",
            "render_rows",
            "812.0 ms",
        ] {
            assert!(text.contains(needed), "no {needed} at {width}:\n{text}");
        }
        // Wide characters take two columns: the hot-function table's
        // location column starts at the same column on every row.
        let location = |function: &str| {
            let line = text
                .lines()
                .find(|l| l.contains(function) && l.contains(":12"))
                .unwrap();
            let cut = line.rfind("  ").unwrap() + 2;
            text::columns(&line[..cut])
        };
        assert_eq!(
            location("計算する"),
            location("Handler.process_request"),
            "{text}"
        );
    }
    // At 160 nothing a table has is left out; at 80 what is left out is said.
    assert!(!render(&report, Some(160)).contains("not shown at this width"));
    assert!(render(&report, Some(80)).contains("not shown at this width"));
    // Without a width (a file, a pipe): full paths, whole stacks.
    let full = render(&report, None);
    assert!(full.contains("/usr/lib/python3.11/subprocess.py:1883) <- Popen.__init__"));
}

#[test]
fn counts_have_thousands_separators() {
    let mut report = wide_report();
    report.reads = (0..8196)
        .map(|i| {
            let mut f = fixtures::proc_status(2);
            f.path = format!("/tmp/f{i}");
            f
        })
        .collect();
    report.python.ticks_without_interpreter = 12_345;
    report.python.ticks_not_python = 2_000;
    report.python.ticks_outside_python = 1_001;
    report.python.unresolved_frames = 1;
    report.python.frames_without_line = 2_345;
    let text = render(&report, None);
    assert!(
        text.contains("READS: 16,392 read syscalls on 8,196 files,"),
        "{text}"
    );
    assert!(
        text.contains("  ... 8,181 more files with 16,362 read syscalls"),
        "{text}"
    );
    assert!(
        text.contains(
            "  not in the figures: 2,000 ticks in processes that are not Python, 10,345 ticks \
                 in processes not sampled, 1,001 ticks outside Python code, 1 frame unresolved \
                 (code objects freed before they could be read) and 2,345 frames without a \
                 line (code objects freed before they could be read, named from the sampler's \
                 copy)\n"
        ),
        "{text}"
    );
}

#[test]
fn strings_the_target_controls_cannot_act_on_the_terminal() {
    let mut report = Report::default();
    report.target.comm = "evil\x1b]0;owned\x07".into();
    report.target.argv = vec!["python3".into(), "-c\nprint()".into()];
    let mut file = fixtures::proc_status(600);
    file.path = "/tmp/a\x1b[2Jb\nc\td".into();
    report.reads = vec![file];
    derive(&mut report);
    let text = render(&report, None);
    assert!(!text.contains('\x1b') && !text.contains('\x07') && !text.contains('\t'));
    assert!(
        text.contains("tracer report for evil\\x1b]0;owned\\x07 (pid 0): python3 -c\\nprint()\n"),
        "{text}"
    );
    assert!(
        text.contains("- /tmp/a\\x1b[2Jb\\nc\\td: 600 read syscalls"),
        "{text}"
    );
    // One row per file: the newline in the name did not start a line.
    assert_eq!(
        text.lines().filter(|l| l.contains("/tmp/a")).count(),
        2,
        "{text}"
    );
    // JSON keeps the exact bytes.
    let json = report::json::render(&report);
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.reads[0].path, "/tmp/a\x1b[2Jb\nc\td");
}
