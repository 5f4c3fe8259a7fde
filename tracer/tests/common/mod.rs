//! Shared by the end-to-end tests: they run the real `tracer` binary as root,
//! load its BPF programs into the running kernel and trace real CPython
//! processes running the workloads in `tests/workloads/`. Each workload writes
//! the figures it knows (what it read, how often, in what sizes) to a JSON
//! file; the tests compare them with the tracer's JSON report, exactly.
//!
//! Synchronisation is by pipes, lines and process exit, never by sleeping.
//! A watchdog kills a process that is still running after `HANG_LIMIT`, so
//! a hang becomes a failure instead of a stuck test run; it is not a timing
//! assertion (a normal run takes a second or two).
#![allow(dead_code)]

pub mod calibrated;
pub mod http;
pub mod podman;
mod report;
mod strace;
pub mod tls;

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

// Each test binary uses some of these: the rest are unused there.
#[allow(unused_imports)]
pub use report::*;
use serde_json::Value;
#[allow(unused_imports)]
pub use strace::*;

pub const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
/// Debian's interpreter: a static executable.
pub const STATIC_PYTHON: &str = "/usr/bin/python3.11";
/// pyenv's interpreter: links libpython3.11.so.
pub const SHARED_PYTHON: &str = "/root/.pyenv/versions/3.11.7/bin/python3.11";

const HANG_LIMIT: Duration = Duration::from_secs(120);

/// Every test starts here: the tracer needs root, and a test that quietly
/// skipped without it would prove nothing.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert_eq!(
        euid, "0",
        "the end-to-end tests load BPF programs and must run as root (effective uid is {euid}); \
         run them with sudo"
    );
}

pub fn python(path: &str) -> &str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the end-to-end tests need it"
    );
    path
}

/// pyenv's interpreter of `version` (3.12.1: `.../bin/python3.12`); a
/// missing one fails the test with what to do.
pub fn pyenv(version: &str) -> String {
    let minor = &version[..version.rfind('.').unwrap()];
    let path = format!("/root/.pyenv/versions/{version}/bin/python{minor}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install it with pyenv"
    );
    path
}

pub fn workload(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/workloads")
        .join(name);
    let path = path
        .canonicalize()
        .unwrap_or_else(|e| panic!("workload {}: {e}", path.display()));
    path.to_string_lossy().into_owned()
}

/// `python -B workload args...` (-B: no __pycache__ in the source tree).
pub fn python_command(python: &str, name: &str, args: &[&str]) -> Vec<String> {
    let mut command = vec![python.to_owned(), "-B".to_owned(), workload(name)];
    command.extend(args.iter().map(|a| a.to_string()));
    command
}

/// A fresh directory for one test's files, on the target directory's
/// filesystem (a regular disk filesystem). Kept after the test for a look.
pub struct Scratch {
    pub dir: PathBuf,
    test: String,
}

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("e2e")
            .join(test);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clearing the scratch directory");
        }
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        let dir = dir.canonicalize().unwrap();
        Self {
            dir,
            test: test.to_owned(),
        }
    }

    /// A fresh directory for the test's unix sockets, under /tmp: a
    /// socket's path holds 107 bytes, fewer than a checkout's target
    /// directory may take (`target/x86_64-unknown-linux-gnu/tmp/e2e/...`).
    pub fn socket_dir(&self) -> String {
        let dir = Path::new("/tmp/tracer-e2e-sockets").join(&self.test);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clearing the socket directory");
        }
        std::fs::create_dir_all(&dir).expect("creating the socket directory");
        dir.to_string_lossy().into_owned()
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    pub fn subdir(&self, name: &str) -> String {
        let path = self.dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path.to_string_lossy().into_owned()
    }
}

/// Kills `pid` if it is still running when `HANG_LIMIT` has passed; dropping
/// the guard (after the process was waited for) disarms it.
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

impl Watchdog {
    pub fn new(pid: u32, what: &str) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_owned();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HANG_LIMIT) {
                eprintln!("watchdog: {what} (pid {pid}) still running; killing it");
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        });
        Self { _disarm: tx }
    }
}

/// A child process killed (and reaped) if the test panics while it runs.
pub struct Proc {
    pub child: Child,
    pub name: String,
    _watchdog: Watchdog,
}

impl Proc {
    pub fn spawn(command: &mut Command, name: &str) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let watchdog = Watchdog::new(child.id(), name);
        Self {
            child,
            name: name.to_owned(),
            _watchdog: watchdog,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for exit. Unlike `Child::wait`, leaves its stdin open: closing
    /// it is a test step of its own (end of input for the workload).
    pub fn wait(&mut self) -> ExitStatus {
        let stdin = self.child.stdin.take();
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name));
        self.child.stdin = stdin;
        status
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn stdout_lines(&mut self) -> Lines<ChildStdout> {
        Lines::new(self.child.stdout.take().expect("stdout was not piped"))
    }

    pub fn stderr_lines(&mut self) -> Lines<ChildStderr> {
        Lines::new(self.child.stderr.take().expect("stderr was not piped"))
    }

    /// Sends a signal with kill(1) (std only knows SIGKILL).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Line reader over a child's pipe that keeps what it read, for messages.
pub struct Lines<R> {
    reader: BufReader<R>,
    pub seen: String,
}

impl<R: Read> Lines<R> {
    fn new(pipe: R) -> Self {
        Self {
            reader: BufReader::new(pipe),
            seen: String::new(),
        }
    }

    /// Reads lines until one contains `needle` and returns it; panics at end of file.
    /// Whether a line read so far contains `needle`.
    pub fn has_seen(&self, needle: &str) -> bool {
        self.seen.contains(needle)
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("reading a pipe");
            assert!(
                n > 0,
                "end of output before a line containing {needle:?}; output was:\n{}",
                self.seen
            );
            self.seen.push_str(&line);
            if line.contains(needle) {
                return line.trim_end().to_owned();
            }
        }
    }

    /// The next line without its end, or `None` at end of file.
    pub fn next_line(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("reading a pipe");
        self.seen.push_str(&line);
        (n > 0).then(|| line.trim_end().to_owned())
    }

    /// Everything up to end of file (the writers have all exited or closed it).
    pub fn rest(&mut self) -> String {
        let mut rest = String::new();
        self.reader
            .read_to_string(&mut rest)
            .expect("reading a pipe");
        self.seen.push_str(&rest);
        rest
    }
}

/// `tracer --pid PID ARGS...`, returned once it says it is tracing: from
/// then on nothing the target does is missed (the interpreter is found and
/// its threads are known to the kernel side).
pub fn attach_tracer(pid: u32, args: &[&str]) -> (Proc, Lines<ChildStderr>) {
    let pid_text = pid.to_string();
    let (tracer, stderr, line) = start_tracer(&[&["--pid", &pid_text], args].concat());
    assert!(
        line.starts_with(&format!("tracer: tracing pid {pid} (")),
        "{line}"
    );
    (tracer, stderr)
}

/// `tracer ARGS...`, returned once it says it is tracing, with that line.
/// (Its standard error must be read as it comes: a full pipe would stop it.)
pub fn start_tracer(args: &[&str]) -> (Proc, Lines<ChildStderr>, String) {
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    let line = stderr.wait_for("tracer: tracing ");
    (tracer, stderr, line)
}

/// Runs a command to completion (stdin closed), output captured.
pub fn run(program: &str, args: &[String]) -> Output {
    run_with_env(program, args, &[])
}

/// [`run`], with these environment variables set.
pub fn run_with_env(program: &str, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut proc = Proc::spawn(
        Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        program,
    );
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut err_pipe = proc.child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        err_pipe.read_to_end(&mut stderr).unwrap();
        stderr
    });
    proc.child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let stderr = err_reader.join().unwrap();
    let status = proc.wait();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `tracer ARGS...` to completion.
pub fn tracer(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run(TRACER, &args)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the tracer exited with `code`, showing its output if not.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "tracer exit status {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

pub fn load_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON ({e}):\n{text}"))
}

/// Launch mode: `tracer --quiet --format json -o REPORT [extra] -- COMMAND`,
/// asserting it exits 0 after the command exited 0. Returns the report.
pub fn trace_command(scratch: &Scratch, extra: &[&str], command: &[String]) -> Value {
    trace_command_with_env(scratch, extra, command, &[])
}

/// [`trace_command`], the tracer run with these environment variables.
pub fn trace_command_with_env(
    scratch: &Scratch,
    extra: &[&str],
    command: &[String],
    env: &[(&str, &str)],
) -> Value {
    trace_command_output(scratch, extra, command, env).0
}

/// [`trace_command`], with the tracer's log of what it found of each
/// Python process and when (its looks, each exec's record): to print when
/// a check of the report fails.
pub fn trace_command_logged(
    scratch: &Scratch,
    extra: &[&str],
    command: &[String],
) -> (Value, String) {
    let env = [("RUST_LOG", "warn,tracer::python=debug,tracer::session=info")];
    let (report, output) = trace_command_output(scratch, extra, command, &env);
    (report, text(&output.stderr))
}

fn trace_command_output(
    scratch: &Scratch,
    extra: &[&str],
    command: &[String],
    env: &[(&str, &str)],
) -> (Value, Output) {
    let report_path = scratch.path("report.json");
    let mut args: Vec<String> = ["--quiet", "--format", "json", "-o", &report_path]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect();
    args.push("--".into());
    args.extend(command.iter().cloned());
    let output = run_with_env(TRACER, &args, env);
    assert_exit(&output, 0);
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "target exited", "{report:#}");
    assert_eq!(report["target"]["exit_code"], 0, "{report:#}");
    assert_all_named(&report);
    (report, output)
}

/// The filesystem type of `path` as `stat -f` shows it, in hex (ef53: ext2/3/4).
pub fn fs_magic(path: &str) -> String {
    let output = Command::new("stat")
        .args(["-f", "-c", "%t", path])
        .output()
        .expect("running stat -f");
    assert!(output.status.success(), "stat -f {path} failed");
    text(&output.stdout).trim().to_owned()
}

/// A scratch directory for regular files; these tests need it on ext4 (the
/// tracer reports blksize and fs, and the workload's figures assume a disk
/// filesystem).
pub fn ext4_dir(scratch: &Scratch) -> String {
    let dir = scratch.subdir("data");
    assert_eq!(
        fs_magic(&dir),
        "ef53",
        "{dir} is not on ext2/3/4; the regular-file cases need a disk filesystem"
    );
    dir
}

/// Waits until `pid` sleeps inside read(2) on `fd`, as /proc/PID/syscall
/// shows it (the kernel names the syscall only when the task is blocked).
/// Busy-waits on the condition: no guessed delay.
pub fn wait_blocked_in_read(pid: u32, fd: u32) {
    let want = format!("0 {fd:#x} ");
    loop {
        let now = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .unwrap_or_else(|e| panic!("reading /proc/{pid}/syscall: {e}"));
        if now.starts_with(&want) {
            return;
        }
        std::thread::yield_now();
    }
}

/// The mounts of tracefs and debugfs in this (the test's) mount namespace,
/// as /proc/self/mounts lists them: a fresh machine has none, one where
/// bpftrace ran has tracefs (and perhaps debugfs).
pub fn tracing_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| matches!(l.split_whitespace().nth(2), Some("tracefs" | "debugfs")))
        .map(str::to_owned)
        .collect()
}

/// `unshare` arguments that run `command` in a private mount namespace
/// where neither tracefs nor debugfs is mounted, whatever the host has (a
/// fresh machine mounts neither; bpftrace mounts tracefs): exit 99 if one
/// could not be unmounted, 98 if one is mounted once `command` has ended
/// (the tracer must never mount it), else `command`'s exit status. The
/// host's mounts are not touched.
pub fn without_tracing_mounts(command: &[String]) -> Vec<String> {
    let script = "for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do \
            umount \"$m\" 2>/dev/null; done; \
        if grep -qE ' (tracefs|debugfs) ' /proc/self/mounts; then \
            echo 'tracefs or debugfs still mounted' >&2; exit 99; fi; \
        \"$0\" \"$@\"; rc=$?; \
        if grep -qE ' (tracefs|debugfs) ' /proc/self/mounts; then \
            echo 'the tracer mounted tracefs or debugfs' >&2; exit 98; fi; \
        exit $rc";
    ["--mount", "--propagation", "private", "sh", "-c", script]
        .into_iter()
        .map(String::from)
        .chain(command.iter().cloned())
        .collect()
}

// Lifecycle and signal tests: launch a workload that writes its facts to the
// file named by its first argument.

pub struct Run {
    pub report: Value,
    /// What the workload knows (pids, counts, delays).
    pub facts: Value,
    /// The rendered report when `format` was "text".
    pub text: String,
}

/// Runs `tracer --format FORMAT -o FILE [extra...] -- python3.11 WORKLOAD OUTFILE`.
pub fn trace(name: &str, format: &str, extra: &[&str]) -> Run {
    require_root();
    let dir = tempdir(name);
    let report_path = dir.join(format!("report.{format}"));
    let facts_path = dir.join("facts.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .arg("--quiet")
        .args(["--format", format, "-o"])
        .arg(&report_path)
        .args(extra)
        .arg("--")
        .arg(python(STATIC_PYTHON))
        .arg(workload(name))
        .arg(&facts_path)
        .output()
        .expect("running the tracer");
    assert!(
        output.status.success(),
        "tracer failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(&facts_path).expect("the workload wrote its facts"),
    )
    .expect("facts are JSON");
    let rendered = std::fs::read_to_string(&report_path).expect("the report was written");
    let report = if format == "json" {
        serde_json::from_str(&rendered).expect("the report is JSON")
    } else {
        Value::Null
    };
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        report,
        facts,
        text: rendered,
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tracer-e2e-{}-{}-{}",
        name.trim_end_matches(".py"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}

/// Starts a workload that prints "ready PID" when set up and then waits
/// for a line on its standard input; returns it and PID.
pub fn spawn_until_ready(command: &[String]) -> (Proc, u32) {
    let (workload, _stdout, pid) = spawn_until_ready_with_stdout(command);
    (workload, pid)
}

/// [`spawn_until_ready`], with the rest of the workload's standard output.
pub fn spawn_until_ready_with_stdout(command: &[String]) -> (Proc, Lines<ChildStdout>, u32) {
    let mut workload = Proc::spawn(
        Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "workload",
    );
    let mut stdout = workload.stdout_lines();
    let ready = stdout.wait_for("ready");
    let pid = ready
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("not `ready PID`: {ready}"));
    (workload, stdout, pid)
}

/// Says go to a workload started by [`spawn_until_ready`].
pub fn say_go(workload: &mut Proc) {
    let stdin = workload.child.stdin.as_mut().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
}

/// Traces (`--pid`, JSON) a workload started by [`spawn_until_ready`] from
/// its go until it prints "done", then stops the tracer with SIGINT while
/// the workload is still alive, kills it and returns the report.
pub fn trace_until_done(scratch: &Scratch, command: &[String]) -> Value {
    let report_path = scratch.path("report.json");
    let (mut workload, mut stdout, pid) = spawn_until_ready_with_stdout(command);
    let (mut tracer, mut stderr) = attach_tracer(pid, &["--format", "json", "-o", &report_path]);
    say_go(&mut workload);
    stdout.wait_for("done");
    tracer.signal("INT");
    let status = tracer.wait();
    assert_eq!(status.code(), Some(0), "tracer: {}", stderr.rest());
    workload.signal("KILL");
    load_json(&report_path)
}

/// How a launched workload ends ([`launch_until`]).
pub enum Until {
    /// It prints "done" and waits for its input to close: the tracer is
    /// stopped with SIGINT while it lives (every stack can still be read).
    Done,
    /// It exits by itself: the tracer stops with it.
    Exit,
}

/// [`launch_until`] a workload that says "done".
pub fn launch_until_done(scratch: &Scratch, command: &[String]) -> Value {
    launch_until(scratch, command, Until::Done, &[])
}

/// Launches a workload that prints "ready PID", waits for a line on
/// standard input and does its work. Says go once the tracer has found its
/// interpreter and knows its main thread (`-v` says so), and has said
/// each of `also` (`{pid}` replaced), then lets it end as `until` says.
/// Returns the JSON report.
pub fn launch_until(scratch: &Scratch, command: &[String], until: Until, also: &[&str]) -> Value {
    launch_with(scratch, command, until, also, &[])
}

/// [`launch_until`] with more tracer options.
pub fn launch_with(
    scratch: &Scratch,
    command: &[String],
    until: Until,
    also: &[&str],
    extra: &[&str],
) -> Value {
    launch_handshake(scratch, command, until, extra, &mut |stdout, stderr| {
        let ready = stdout.wait_for("ready");
        let pid = ready
            .strip_prefix("ready ")
            .map(str::trim)
            .unwrap_or_else(|| panic!("not `ready PID`: {ready}"))
            .to_owned();
        stderr.wait_for(&format!(
            "pid {pid}: Python thread {pid} is sampled from now on"
        ));
        for line in also {
            let line = line.replace("{pid}", &pid);
            if !stderr.has_seen(&line) {
                stderr.wait_for(&line);
            }
        }
        pid
    })
}

/// What a test waits for before it says go, from the workload's output and
/// the tracer's `-v` log: returns the workload's pid.
pub type Handshake<'a> =
    &'a mut dyn FnMut(&mut Lines<ChildStdout>, &mut Lines<ChildStderr>) -> String;

/// [`launch_with`], with the test's own `handshake` before go.
pub fn launch_handshake(
    scratch: &Scratch,
    command: &[String],
    until: Until,
    extra: &[&str],
    handshake: Handshake,
) -> Value {
    let report_path = scratch.path("report.json");
    let mut tracer = Proc::spawn(
        Command::new(TRACER)
            .args(["-v", "--quiet", "--format", "json", "-o", &report_path])
            .args(extra)
            .arg("--")
            .args(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    let mut stdout = tracer.stdout_lines();
    let pid = handshake(&mut stdout, &mut stderr);
    // The -v log from here on is read beside the run: a log larger than a
    // pipe (a line per thread of 10,000) must not block the tracer.
    let log = std::thread::spawn(move || stderr.rest());
    let mut stdin = tracer.child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
    if let Until::Done = until {
        stdout.wait_for("done");
        tracer.signal("INT");
    }
    let status = tracer.wait();
    drop(stdin);
    // A workload busy in C code does not read its input: end it (it holds
    // the log's pipe too).
    if let Until::Done = until {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    let log = log.join().unwrap_or_default();
    assert_eq!(status.code(), Some(0), "tracer: {status:?}\n{log}");
    // The tracer's -v log beside the report, for a failure's post-mortem.
    let _ = std::fs::write(scratch.path("tracer.log"), log);
    load_json(&report_path)
}

/// What Perfetto's official Python bindings read in the trace at `path`
/// (tests/perfetto_summary.py: tracks, slices, instants, samples).
pub fn perfetto_summary(path: &str) -> Value {
    let bindings = std::env::var("TRACER_PERFETTO_PY").expect(
        "TRACER_PERFETTO_PY: the perfetto bindings' directory (`cargo xtask test` sets it)",
    );
    let summarizer = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/perfetto_summary.py")
        .canonicalize()
        .unwrap();
    let output = Command::new("/usr/bin/python3")
        .arg(&summarizer)
        .arg(path)
        .env("PYTHONPATH", &bindings)
        .output()
        .unwrap();
    assert!(output.status.success(), "perfetto_summary.py: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The site directory `cargo xtask test` installed gunicorn (from PyPI)
/// into, for `PYTHONPATH`.
pub fn gunicorn_site() -> String {
    let site = std::env::var("TRACER_GUNICORN")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/gunicorn-23.0.0".into());
    if let Ok(why) = std::env::var("TRACER_GUNICORN_ERROR") {
        panic!("`cargo xtask test` could not install gunicorn: {why}");
    }
    assert!(
        Path::new(&site).join("gunicorn").exists(),
        "no gunicorn in {site}: `cargo xtask test` installs it"
    );
    site
}

/// uvicorn and starlette's site (`cargo xtask test` installs it).
pub fn uvicorn_site() -> String {
    if let Ok(why) = std::env::var("TRACER_UVICORN_ERROR") {
        panic!("`cargo xtask test` could not install uvicorn: {why}");
    }
    let site = std::env::var("TRACER_UVICORN")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/uvicorn-0.54.0-starlette-1.10.0".into());
    assert!(
        Path::new(&site).join("uvicorn").exists(),
        "no uvicorn in {site}: `cargo xtask test` installs it"
    );
    site
}

/// A graceful stop of a gunicorn launched under `tracer`: SIGTERM to its
/// master (`pidfile`'s), which stops its workers and exits; so does the
/// trace. The master's pid.
pub fn stop_gunicorn(pidfile: &str, tracer: &mut Proc) -> i32 {
    let master: i32 = std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(unsafe { libc::kill(master, libc::SIGTERM) }, 0);
    assert!(tracer.wait().success());
    master
}
