//! Running as root on input the traced program controls: the launch hold
//! cannot outlive the tracer, outputs are never written through a planted
//! link and are checked before tracing. Root only.
//!
//! Run: cargo test -p tracer --test safety -- --test-threads=1

mod common;

use std::{
    io::Write as _,
    os::fd::{FromRawFd, OwnedFd},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

/// Descriptors of loaded BPF programs held by any process on the host.
fn bpf_program_fds() -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        count += fds
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.to_string_lossy() == "anon_inode:bpf-prog")
            })
            .count();
    }
    count
}

fn pidfd(pid: u32) -> OwnedFd {
    // SAFETY: plain syscall; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Whether the process behind `fd` exits within `limit` (a pidfd becomes
/// readable when it does).
fn exits_within(fd: &OwnedFd, limit: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, limit.as_millis() as i32) == 1 }
}

/// Starts the tracer on `command` under ptrace and returns (tracer,
/// held child) the moment it has forked the child it holds before exec: the
/// tracer is stopped at that fork (PTRACE_EVENT_FORK), the child released
/// from ptrace and left to run into its hold.
fn tracer_stopped_at_its_fork(command: &[&str]) -> (std::process::Child, i32) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(TRACER);
    cmd.arg("--").args(command);
    // SAFETY: ptrace(TRACEME) is async-signal-safe; the child then stops
    // at its exec (SIGTRAP), after `spawn` has seen the exec succeed.
    unsafe {
        cmd.pre_exec(|| {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            Ok(())
        });
    }
    let tracer = cmd.spawn().unwrap();
    let pid = tracer.id() as i32;
    let mut status = 0;
    // SAFETY: plain syscalls on our own child.
    unsafe {
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP);
        let options = libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_EXITKILL;
        assert_eq!(libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options), 0);
        libc::ptrace(libc::PTRACE_CONT, pid, 0, 0);
        let held = loop {
            assert_eq!(libc::waitpid(pid, &mut status, libc::__WALL), pid);
            assert!(libc::WIFSTOPPED(status), "the tracer ended before forking");
            if status >> 16 == libc::PTRACE_EVENT_FORK {
                let mut child: libc::c_ulong = 0;
                libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut child);
                break child as i32;
            }
            // A signal on its way to the tracer: deliver it.
            libc::ptrace(libc::PTRACE_CONT, pid, 0, libc::WSTOPSIG(status));
        };
        // The child starts traced too: let it go.
        assert_eq!(libc::waitpid(held, &mut status, libc::__WALL), held);
        assert_eq!(libc::ptrace(libc::PTRACE_DETACH, held, 0, 0), 0);
        (tracer, held)
    }
}

#[test]
fn a_tracer_killed_during_the_launch_hold_takes_its_held_child_with_it() {
    require_root();
    let scratch = Scratch::new("launch_hold");
    let ran = scratch.path("ran");
    let before = bpf_program_fds();
    let command = format!("echo ran > {ran}");
    let (mut tracer, held) = tracer_stopped_at_its_fork(&["/bin/sh", "-c", &command]);
    assert!(bpf_program_fds() > before, "the programs are loaded");
    let held_fd = pidfd(held as u32);
    tracer.kill().unwrap();
    tracer.wait().unwrap();
    assert!(
        exits_within(&held_fd, Duration::from_secs(10)),
        "the held child {held} outlived the tracer"
    );
    // It died held: the command never ran, traced or not.
    assert!(!std::path::Path::new(&ran).exists(), "the command ran");
    assert_eq!(bpf_program_fds(), before, "BPF programs left loaded");
}

/// A directory anyone may write to, like /tmp (sticky).
fn shared_dir(scratch: &Scratch) -> String {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.subdir("shared");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // The scratch directories above it must be reachable by another user.
    let mut up = std::path::Path::new(&dir).parent();
    while let Some(p) = up {
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o001)).unwrap();
        }
        up = p.parent();
    }
    dir
}

#[test]
fn outputs_are_never_written_through_a_planted_symlink() {
    require_root();
    let scratch = Scratch::new("planted_symlink");
    let shared = shared_dir(&scratch);
    let victim = scratch.path("victim");
    std::fs::write(&victim, "precious").unwrap();
    let ran = scratch.path("ran");
    let command = format!("echo ran > {ran}");
    for option in ["-o", "--flamegraph", "--folded", "--speedscope"] {
        let link = format!("{shared}/report{}", option.trim_start_matches('-'));
        // Planted by an unprivileged user (nobody) in the shared directory.
        let planted = run(
            "/usr/bin/setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "ln",
                "-s",
                &victim,
                &link,
            ]
            .map(String::from),
        );
        assert!(planted.status.success(), "{}", text(&planted.stderr));
        let output = tracer(&[option, &link, "--", "/bin/sh", "-c", &command]);
        assert_exit(&output, 7);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("refusing to write {link}: it is a symbolic link")),
            "{option}: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // Refused before tracing: the command never ran.
        assert!(!std::path::Path::new(&ran).exists(), "{option}");
    }
}

#[test]
fn bad_output_paths_fail_before_tracing() {
    require_root();
    let scratch = Scratch::new("bad_output_paths");
    let ran = scratch.path("ran");
    let command = format!("echo ran > {ran}");
    let good = scratch.path("r.json");
    for (option, path) in [
        ("-o", "/nonexistent-dir/r.json".to_owned()),
        ("--flamegraph", "/nonexistent-dir/f.svg".to_owned()),
        ("--folded", scratch.dir.to_string_lossy().into_owned()),
    ] {
        // Another output opened before the bad one, unless it is the report.
        let mut args = if option == "-o" {
            vec![]
        } else {
            vec!["-o", good.as_str()]
        };
        args.extend([
            option,
            path.as_str(),
            "--",
            "/bin/sh",
            "-c",
            command.as_str(),
        ]);
        let output = tracer(&args);
        assert_exit(&output, 7);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot open {path} for writing")),
            "{option}: {stderr}"
        );
        assert!(
            !std::path::Path::new(&ran).exists(),
            "{option}: the command ran"
        );
        // The report file made for the run is not left behind empty.
        assert!(!std::path::Path::new(&good).exists(), "{option}");
    }
    // A good path is written, with mode 0644 (umask permitting).
    let output = tracer(&["-o", &good, "--", "/bin/sh", "-c", &command]);
    assert_exit(&output, 0);
    assert!(
        std::fs::read_to_string(&good)
            .unwrap()
            .starts_with("tracer report for")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&good).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o644, 0, "{mode:o}");
}

#[test]
fn strings_the_target_controls_are_escaped_in_text_and_exact_in_json() {
    require_root();
    let scratch = Scratch::new("hostile_strings");
    // A file name, an argument and a task name (the executable's name)
    // with a terminal escape, a bell, a newline and a tab.
    let file = scratch.path("a\x1b[2Jb\nc\td");
    let python = scratch.path("py\x1b]0;owned\x07");
    std::os::unix::fs::symlink(STATIC_PYTHON, &python).unwrap();
    let script = "import sys\nfor _ in range(3):\n    open(sys.argv[1], 'w').write('x')\n    open(sys.argv[1]).read()\n";
    let command = [python.as_str(), "-c", script, file.as_str()];
    let mut args = vec!["--no-python", "--"];
    args.extend(command);
    let output = tracer(&args);
    assert_exit(&output, 0);
    let shown = text(&output.stdout);
    for raw in ['\x1b', '\x07', '\t'] {
        assert!(
            !shown.contains(raw),
            "{raw:?} reached the terminal:\n{shown}"
        );
    }
    assert!(shown.contains("a\\x1b[2Jb\\nc\\td"), "{shown}");
    assert!(shown.contains("py\\x1b]0;owned\\x07"), "{shown}");
    // The newline in the name did not start a row of its own.
    assert!(!shown.lines().any(|l| l.starts_with("c\\td")), "{shown}");

    let json = scratch.path("r.json");
    let mut args = vec!["--no-python", "--format", "json", "-o", json.as_str(), "--"];
    args.extend(command);
    assert_exit(&tracer(&args), 0);
    let report = load_json(&json);
    let row = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == file.as_str())
        .unwrap_or_else(|| panic!("{:#}", report["reads"]));
    assert!(row["syscalls"].as_u64().unwrap() >= 3, "{row}");
    assert_eq!(report["target"]["argv"][3], file.as_str());
    assert_eq!(report["target"]["comm"], "py\x1b]0;owned\x07");
}

#[test]
fn a_renamed_interpreter_is_sampled() {
    require_root();
    let scratch = Scratch::new("renamed_interpreter");
    // A copy (not a link: /proc/PID/maps would show the link's target).
    let runtime = scratch.path("svc-runtime");
    std::fs::copy(STATIC_PYTHON, &runtime).unwrap();
    let json = scratch.path("r.json");
    let script = "def spin():\n    n = 0\n    for i in range(3_000_000):\n        n += i\n    return n\nspin()\n";
    let output = tracer(&[
        "--format", "json", "-o", &json, "--rate", "999", "--", &runtime, "-c", script,
    ]);
    assert_exit(&output, 0);
    let report = load_json(&json);
    let python = &report["python"];
    assert_eq!(python["status"], "sampled", "{python:#}");
    assert_eq!(python["binary"], runtime.as_str());
    assert_eq!(python["linkage"], "static");
    assert!(
        python["version"].as_str().unwrap().starts_with("3.11."),
        "{python:#}"
    );
    assert!(
        python["hotspots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["function"] == "spin"),
        "{python:#}"
    );
}

#[test]
fn smaller_cases_fail_clearly_or_work() {
    require_root();
    let scratch = Scratch::new("smaller_cases");
    let ran = scratch.path("ran");
    let command = format!("echo ran > {ran}");
    // An absurd duration is a usage error, before anything is launched.
    let output = tracer(&["--duration", "1e30", "--", "/bin/sh", "-c", &command]);
    assert_exit(&output, 2);
    assert!(
        text(&output.stderr).contains("more than a year"),
        "{}",
        text(&output.stderr)
    );
    assert!(!std::path::Path::new(&ran).exists());

    // --pid of a kernel thread (kthreadd) says what it is.
    let output = tracer(&["--pid", "2"]);
    assert_exit(&output, 4);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("pid 2 (kthreadd) is a kernel thread"),
        "{stderr}"
    );

    // Arguments that are not UTF-8 are passed on as they are.
    use std::os::unix::ffi::OsStrExt;
    let json = scratch.path("argv.json");
    let status = Command::new(TRACER)
        .args([
            "--no-python",
            "--format",
            "json",
            "-o",
            &json,
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg(std::ffi::OsStr::from_bytes(
            b"test \"$0\" = \"$(printf '\\377')\"",
        ))
        .arg(std::ffi::OsStr::from_bytes(b"\xff"))
        .status()
        .unwrap();
    assert!(status.success());
    let report = load_json(&json);
    assert_eq!(
        report["target"]["exit_code"], 0,
        "the shell saw another argument"
    );
    assert_eq!(report["target"]["argv"][3], "\u{fffd}");
}

/// CAP_BPF and CAP_PERFMON are all the tracer needs: no tracefs (there is
/// none in its mount namespace, whatever the host has), no root.
#[test]
fn an_unprivileged_user_with_bpf_capabilities_can_trace() {
    require_root();
    let command = [
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+bpf,+perfmon",
        "--ambient-caps=+bpf,+perfmon",
        TRACER,
        "--quiet",
        "--format",
        "json",
        "--",
        "/bin/sh",
        "-c",
        "exit 3",
    ]
    .map(String::from);
    let output = run("/usr/bin/unshare", &without_tracing_mounts(&command));
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["target"]["exit_code"], 3, "{report}");
    assert_eq!(report["stopped"], "target exited");
    // The dynamic loader's reads of libc, as strace shows them.
    let libc = report["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap_or("").contains("libc.so"))
        .unwrap_or_else(|| panic!("no libc read: {report}"));
    assert!(libc["syscalls"].as_u64().unwrap() > 0, "{libc}");
}

#[test]
fn long_paths_and_named_pipes_are_reported_as_what_they_are() {
    require_root();
    let scratch = Scratch::new("long_paths_fifos");
    let deep = scratch.subdir(&"d".repeat(200));
    let long = format!("{deep}/{}", "f".repeat(100));
    std::fs::write(&long, "x").unwrap();
    let fifo = scratch.path("queue");
    let json = scratch.path("r.json");
    let script = "import os, sys, threading\n\
                  os.mkfifo(sys.argv[2])\n\
                  threading.Thread(target=lambda: open(sys.argv[2], 'w').write('hello')).start()\n\
                  with open(sys.argv[2]) as f: f.read()\n\
                  for _ in range(3): open(sys.argv[1]).read()\n";
    let output = tracer(&[
        "--no-python",
        "--format",
        "json",
        "-o",
        &json,
        "--",
        STATIC_PYTHON,
        "-c",
        script,
        &long,
        &fifo,
    ]);
    assert_exit(&output, 0);
    let report = load_json(&json);
    let reads = report["reads"].as_array().unwrap();
    let cut = reads
        .iter()
        .find(|f| f["path_truncated"] == true)
        .unwrap_or_else(|| panic!("{reads:#?}"));
    let path = cut["path"].as_str().unwrap();
    assert_eq!(path.len(), 255, "{path}");
    assert!(long.starts_with(path), "{path}");
    let queue = reads
        .iter()
        .find(|f| f["path"] == fifo.as_str())
        .unwrap_or_else(|| panic!("{reads:#?}"));
    assert_eq!(queue["fs"], "fifo", "{queue}");
    assert!(
        reads
            .iter()
            .all(|f| f["path"] == fifo.as_str() || f["fs"] != "fifo")
    );
}

#[test]
fn an_adopted_target_that_exits_has_its_exit_code() {
    require_root();
    let scratch = Scratch::new("adopted_exit");
    let json = scratch.path("r.json");
    let mut target = Proc::spawn(
        Command::new(STATIC_PYTHON)
            .args(["-c", "import sys; sys.stdin.read(); sys.exit(3)"])
            .stdin(std::process::Stdio::piped()),
        "python",
    );
    let (mut tracer, _stderr) = attach_tracer(
        target.pid(),
        &["--no-python", "--format", "json", "-o", &json],
    );
    // End of input: the target exits with 3 while traced.
    drop(target.child.stdin.take());
    assert_eq!(target.wait().code(), Some(3));
    assert!(tracer.wait().success());
    let report = load_json(&json);
    assert_eq!(report["stopped"], "target exited");
    assert_eq!(report["target"]["exit_code"], 3, "{:#}", report["target"]);
}

/// On a terminal (a pseudo-terminal made by `script`), a launched command's
/// output is never garbled by the live status line: the command writes to
/// the same terminal, so there is none. With `--pid` the line is there, in
/// words a user knows (Python samples, signals, processes, lost).
#[test]
fn the_status_line_never_garbles_a_launched_command() {
    require_root();
    let scratch = Scratch::new("status_line_terminal");
    let report = scratch.path("report.json");
    let program = "import time\nfor i in range(4):\n    print('working step', i, flush=True)\n    time.sleep(0.1)";
    let command = format!("{TRACER} -o {report} --format json -- {STATIC_PYTHON} -c \"{program}\"");
    let output = run("script", &["-qec".into(), command, "/dev/null".into()]);
    assert_exit(&output, 0);
    let seen = text(&output.stdout);
    let lines: Vec<&str> = seen.lines().map(|l| l.trim_end_matches('\r')).collect();
    let written = format!("tracer: report written to {report}");
    assert_eq!(
        lines,
        [
            "working step 0",
            "working step 1",
            "working step 2",
            "working step 3",
            // Then, once it has exited, where the report went.
            &written,
        ],
        "{seen:?}"
    );

    let command = python_command(python(STATIC_PYTHON), "python_stuck.py", &[]);
    let (_workload, pid) = spawn_until_ready(&command);
    let attach = format!("{TRACER} --pid {pid} --duration 0.6 -o {report} --format json");
    let output = run("script", &["-qec".into(), attach, "/dev/null".into()]);
    assert_exit(&output, 0);
    let seen = text(&output.stdout);
    assert!(
        seen.contains("Python samples, 0 signals, 1 process, 0 lost (Ctrl-C to stop and report)"),
        "{seen:?}"
    );
}

/// A report that goes to a terminal fits its width (80 and 160 columns
/// here; wide CJK counts two): no line wraps, and what a table leaves out
/// is said. The same report into a file keeps every column at full width.
#[test]
fn the_report_fits_the_terminal_it_goes_to() {
    require_root();
    let scratch = Scratch::new("report_fits_terminal");
    let demo = format!("{}/../demo/service.py", env!("CARGO_MANIFEST_DIR"));
    for cols in [80, 160] {
        // The demo's own lines come first; the report is what follows.
        let command = format!("stty cols {cols}; {TRACER} --quiet -- {STATIC_PYTHON} {demo}");
        let output = run("script", &["-qec".into(), command, "/dev/null".into()]);
        assert_exit(&output, 0);
        let seen = text(&output.stdout);
        let report: Vec<&str> = seen
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .skip_while(|l| !l.starts_with("tracer report for"))
            .collect();
        assert!(report.len() > 50, "{seen}");
        for line in &report {
            assert!(
                unicode_columns(line) <= cols,
                "{} columns at {cols}: {line}\n{seen}",
                unicode_columns(line)
            );
        }
        for section in ["READS:", "SCHEDULING:", "PROCESSES:", "SIGNALS:", "PYTHON:"] {
            assert!(report.iter().any(|l| l.starts_with(section)), "{seen}");
        }
    }
    // Into a file: no width, every column.
    let path = scratch.path("report.txt");
    let output = run(
        TRACER,
        &strings(&["--quiet", "-o", &path, "--", STATIC_PYTHON, &demo]),
    );
    assert_exit(&output, 0);
    let full = std::fs::read_to_string(&path).unwrap();
    assert!(
        full.lines()
            .any(|l| l.contains("blksize") && l.contains("in kernel"))
    );
    assert!(!full.contains("not shown at this width"));
}

/// Terminal columns of a line of plain text (East Asian wide characters
/// count two; the tests' reports hold no other wide ones).
fn unicode_columns(line: &str) -> usize {
    line.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The signal-check uprobes (closing each waits for a kernel grace period)
/// are closed by a child of the tracer once the tracer has exited, so the
/// tracer's exit does not wait for them: that child ends by itself, and
/// then no descriptor of any BPF program is left behind.
#[test]
fn uprobes_are_closed_by_a_child_once_the_tracer_has_exited() {
    require_root();
    let before = bpf_program_fds();
    // The interpreter waits (after_go.py) until the tracer has attached its
    // uprobes, on a thread of its own: `python -c pass` alone may be gone
    // before, on a loaded machine, and then there is nothing to hand over.
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(["-v", "--quiet", "--format", "json", "-o", "/dev/null", "--"])
            .args([STATIC_PYTHON, &workload("native/after_go.py")])
            .args([STATIC_PYTHON, "-c", "pass"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut lines = tracer.stderr_lines();
    tracer.stdout_lines().wait_for("ready");
    lines.wait_for("signal checks of ");
    let log = std::thread::spawn(move || lines.rest());
    let mut stdin = tracer.child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
    let status = tracer.wait();
    drop(stdin);
    let stderr = log.join().unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    let child: u32 = stderr
        .lines()
        .find_map(|line| {
            let rest = &line[line.find("are closed by pid ")? + "are closed by pid ".len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no uprobes handed to a child:\n{stderr}"));
    // SAFETY: plain syscall.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child as libc::pid_t, 0) };
    if fd >= 0 {
        // SAFETY: a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        assert!(
            exits_within(&fd, Duration::from_secs(10)),
            "pid {child} is still there 10 s after the tracer exited"
        );
    }
    assert_eq!(bpf_program_fds(), before, "BPF programs left behind");
}
