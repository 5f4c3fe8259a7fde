//! Programs that embed CPython rather than run `python`: a fork after Python
//! started without CPython's after-fork hooks (as uWSGI forks its workers),
//! a C program running Python from threads it made itself
//! (`PyGILState_Ensure`), uWSGI (preforked, lazy apps, threaded) and Apache
//! mod_wsgi in daemon mode, from Debian (`cargo xtask test` installs them).
//! Every worker and thread is sampled, in proportion to the CPU it measured.

mod common;

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    os::unix::net::UnixStream,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
};

use common::*;
use serde_json::Value;

const RATE: u64 = 499;
const RATE_ARG: &str = "499";

/// The line the tracer's `-v` log gives when a thread is sampled from then on.
fn published(pid: u64, tid: u64) -> String {
    format!("pid {pid}: Python thread {tid} is sampled from now on")
}

/// `tracer --pid PID -v --rate RATE --format json -o REPORT`, once it says
/// it traces, with its log.
fn attach(pid: u32, report_path: &str) -> (Proc, Log) {
    let (tracer, stderr) = attach_tracer(
        pid,
        &[
            "--verbose",
            "--rate",
            RATE_ARG,
            "--format",
            "json",
            "-o",
            report_path,
        ],
    );
    (tracer, Log::new(stderr))
}

/// A child's standard error, read on a thread of its own (a full pipe would
/// stall the tracer), line by line.
struct Log {
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Log {
    /// Goes on from `lines`, with what it has read already.
    fn new(mut lines: Lines<std::process::ChildStderr>) -> Self {
        let seen = std::mem::take(&mut lines.seen);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some(line) = lines.next_line() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { lines: rx, seen }
    }

    /// Reads lines until `done(everything seen)`; panics at end of output.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&str) -> bool) {
        while !done(&self.seen) {
            let line = self.lines.recv().unwrap_or_else(|_| {
                panic!("end of output before {what}; output was:\n{}", self.seen)
            });
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
    }
}

fn python_row(python: &Value, pid: u64) -> &Value {
    python["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("pid {pid} not in python.processes: {python:#}"))
}

fn thread_row(python: &Value, tid: u64) -> &Value {
    python["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"].as_u64() == Some(tid))
        .unwrap_or_else(|| {
            panic!(
                "thread {tid} not in python.threads: {:#}",
                python["threads"]
            )
        })
}

/// libc's fork() after Python started, without PyOS_AfterFork_Child: the
/// child's thread states still record the parent's thread ids. Traced by
/// `--pid PARENT` once the child exists, as one traces a uWSGI master.
#[test]
fn a_fork_without_cpythons_after_fork_hooks_is_sampled() {
    require_root();
    let scratch = Scratch::new("embedded_fork");
    let facts_path = scratch.path("facts.json");
    let fifo = scratch.path("go");
    let report_path = scratch.path("report.json");
    let mut command = python_command(
        STATIC_PYTHON,
        "embedded_fork.py",
        &[&facts_path, &fifo, "0.5"],
    );
    let program = command.remove(0);
    let mut workload = Proc::spawn(
        Command::new(&program)
            .args(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
        "embedded_fork.py",
    );
    let ready = workload.stdout_lines().wait_for("ready");
    let ids: Vec<u64> = ready
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().unwrap())
        .collect();
    let (parent, child) = (ids[0], ids[1]);
    assert_eq!(parent, workload.pid() as u64);
    let (mut tracer, mut log) = attach(parent as u32, &report_path);
    let line = published(child, child);
    log.wait_until(&line, |seen| seen.contains(&line));
    std::fs::write(&fifo, "go").unwrap();
    assert!(tracer.wait().success());
    assert!(workload.wait().success());

    let report = load_json(&report_path);
    let facts = load_json(&facts_path);
    assert_eq!(report["stopped"], "target exited");
    assert_eq!(u64_of(&facts["child"]), child);
    let python = &report["python"];
    assert_eq!(python_row(python, child)["status"], "sampled");
    let got = samples_with(python, "tally_rows", |s| s["tid"].as_u64() == Some(child));
    assert_sampled_at_rate(
        got,
        u64_of(&facts["cpu_ns"]),
        RATE,
        "tally_rows in the forked child",
        python,
    );
    // `threading` still knows the thread by its pthread_t.
    assert_eq!(thread_row(python, child)["name"], "MainThread");
}

/// `gcc embed_threads.c` against Debian's libpython3.11 (python3.11-config).
fn build_embed_threads(scratch: &Scratch) -> String {
    let config = |what: &str| -> Vec<String> {
        let out = Command::new("/usr/bin/python3.11-config")
            .args([what, "--embed"])
            .output()
            .expect(
                "python3.11-config (Debian's libpython3.11-dev; `cargo xtask test` installs it)",
            );
        assert!(out.status.success(), "python3.11-config {what} failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let binary = scratch.path("embed_threads");
    let output = Command::new("gcc")
        .arg("-O1")
        .arg("-o")
        .arg(&binary)
        .args(config("--cflags"))
        .arg(workload("embed_threads.c"))
        .args(config("--ldflags"))
        .output()
        .expect("running gcc");
    assert!(
        output.status.success(),
        "gcc embed_threads.c: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// Python run from two threads a C program made (not in `threading`):
/// each is sampled at the rate of the CPU it measured, under its kernel
/// name, whether it holds one thread state throughout (`hold`) or takes and
/// drops one around every call (`churn`).
#[test]
fn c_threads_of_a_program_embedding_libpython_are_sampled_and_named() {
    require_root();
    let scratch = Scratch::new("embed_threads");
    let binary = build_embed_threads(&scratch);
    for mode in ["hold", "churn"] {
        let facts_path = scratch.path(&format!("{mode}.facts"));
        let report_path = scratch.path(&format!("{mode}.json"));
        let status = Command::new(TRACER)
            .args(["--quiet", "--rate", RATE_ARG, "--format", "json", "-o"])
            .arg(&report_path)
            .arg("--")
            .arg(&binary)
            .args([mode, "0.6", &facts_path])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{mode}");
        let report = load_json(&report_path);
        assert_eq!(report["stopped"], "target exited");
        assert_eq!(report["target"]["exit_code"], 0);
        let python = &report["python"];
        assert_eq!(python["status"], "sampled", "{mode}: {python:#}");
        let facts = std::fs::read_to_string(&facts_path).unwrap();
        let threads: Vec<Value> = facts
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(threads.len(), 2, "{facts}");
        for thread in &threads {
            let tid = u64_of(&thread["tid"]);
            let got = samples_with(python, "tally_rows", |s| s["tid"].as_u64() == Some(tid));
            assert_sampled_at_rate(
                got,
                u64_of(&thread["cpu_ns"]),
                RATE,
                &format!("{mode}: tally_rows in C thread {tid}"),
                python,
            );
            assert_eq!(
                thread_row(python, tid)["name"],
                thread["name"],
                "{mode}: the kernel's name of a thread `threading` never saw"
            );
        }
    }
}

/// One HTTP/1.0 GET to `address` (a unix socket's path, or HOST:PORT);
/// the body must be "ok".
fn get(address: &str) {
    let request = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    let mut response = String::new();
    if address.starts_with('/') {
        let mut stream = UnixStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
        stream.write_all(request).unwrap();
        stream.read_to_string(&mut response).unwrap();
    } else {
        let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
        stream.write_all(request).unwrap();
        stream.read_to_string(&mut response).unwrap();
    }
    assert!(response.contains(" 200 "), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
}

/// A server's app directory: `embedded_wsgi.py` copied in as `name`, with
/// out/, arrived/ and no `go` yet; readable and writable by `owner`.
fn app_dir(dir: &Path, name: &str, owner: Option<(u32, u32)>) -> String {
    for sub in ["out", "arrived"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let app = dir.join(name);
    std::fs::copy(workload("embedded_wsgi.py"), &app).unwrap();
    if let Some((uid, gid)) = owner {
        for path in [dir.to_path_buf(), dir.join("out"), dir.join("arrived")] {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
    }
    app.display().to_string()
}

/// Creates the app's `go` file when dropped.
struct Go(std::path::PathBuf);

impl Drop for Go {
    fn drop(&mut self) {
        std::fs::write(&self.0, "").unwrap();
    }
}

/// With the tracer attached to a server's parent process and `threads`
/// request threads in all: keeps that many requests in flight until each
/// thread has taken one (the app holds it at arrived/PID-TID), waits until
/// the tracer samples each of those threads, says go, and sends
/// `per_thread` requests on each connection. Returns the worker pids.
fn serve_once_sampled(
    dir: &Path,
    socket: &str,
    threads: usize,
    per_thread: usize,
    log: &mut Log,
) -> BTreeSet<u64> {
    std::thread::scope(|scope| {
        // Said on every way out, a failure too: the request threads the app
        // holds then end, and so do the clients this scope joins.
        let go = Go(dir.join("go"));
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    get(socket);
                }
            });
        }
        let arrived = dir.join("arrived");
        let pairs: Vec<(u64, u64)> = loop {
            let names: Vec<String> = std::fs::read_dir(&arrived)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            if names.len() >= threads {
                break names
                    .iter()
                    .map(|n| {
                        let (pid, tid) = n.split_once('-').unwrap();
                        (pid.parse().unwrap(), tid.parse().unwrap())
                    })
                    .collect();
            }
            std::thread::yield_now();
        };
        let lines: Vec<String> = pairs.iter().map(|&(p, t)| published(p, t)).collect();
        log.wait_until("every request thread sampled", |seen| {
            lines.iter().all(|l| seen.contains(l))
        });
        drop(go);
        pairs.iter().map(|&(pid, _)| pid).collect()
    })
}

/// Each worker's samples in `tally_rows` are at the rate of the CPU it
/// measured serving; none in the parent.
fn assert_workers_sampled(
    report: &Value,
    dir: &Path,
    workers: &BTreeSet<u64>,
    parent: u64,
    what: &str,
) {
    let python = &report["python"];
    assert_eq!(python["samples_lost"], 0, "{what}");
    let mut served = BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("out")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tmp") {
            continue;
        }
        let facts = load_json(&path.display().to_string());
        let pid = u64_of(&facts["pid"]);
        served.insert(pid);
        assert_eq!(python_row(python, pid)["status"], "sampled", "{what}");
        let got = samples_with(python, "tally_rows", |s| s["pid"].as_u64() == Some(pid));
        assert_sampled_at_rate(
            got,
            u64_of(&facts["cpu_ns"]),
            RATE,
            &format!("{what}: tally_rows in worker {pid}"),
            &python["processes"],
        );
    }
    assert_eq!(&served, workers, "{what}: every worker served");
    assert_eq!(
        samples_with(python, "tally_rows", |s| s["pid"].as_u64() == Some(parent)),
        0,
        "{what}: tally_rows sampled in the parent"
    );
}

/// uWSGI from Debian (its python3 plugin loads libpython3.11 and starts
/// Python in the master, then forks the workers without CPython's
/// after-fork hooks), traced with `--pid MASTER` once the workers exist:
/// preforked, with lazy apps (the app loaded in each worker), and with
/// threads (2 per worker).
#[test]
fn uwsgi_workers_are_sampled() {
    require_root();
    let cases: [(&str, &[&str], usize); 3] = [
        ("preforked", &[], 1),
        ("lazy-apps", &["--lazy-apps"], 1),
        ("threads", &["--enable-threads", "--threads", "2"], 2),
    ];
    for (name, options, threads_per_worker) in cases {
        let scratch = Scratch::new(&format!("uwsgi_{name}"));
        let app = app_dir(&scratch.dir, "app.py", None);
        let socket = format!("{}/uwsgi.sock", scratch.socket_dir());
        let report_path = scratch.path("report.json");
        let mut server = Proc::spawn(
            Command::new("/usr/bin/uwsgi")
                .args(["--plugin", "python3", "--master", "--processes", "2"])
                .args(["--http-socket", &socket, "--wsgi-file", &app])
                .args(["--die-on-term", "--disable-logging"])
                .args(options)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            "uwsgi",
        );
        let master = server.pid() as u64;
        let mut server_log = server.stderr_lines();
        // Both workers exist before the tracer attaches (the case).
        server_log.wait_for("spawned uWSGI worker 1");
        server_log.wait_for("spawned uWSGI worker 2");
        std::thread::spawn(move || server_log.rest());
        let (mut tracer, mut log) = attach(master as u32, &report_path);
        let threads = 2 * threads_per_worker;
        let workers = serve_once_sampled(&scratch.dir, &socket, threads, 6, &mut log);
        assert_eq!(workers.len(), 2, "{name}: {workers:?}");
        tracer.signal("INT");
        assert!(tracer.wait().success(), "{name}");
        server.signal("TERM");
        server.wait();
        let report = load_json(&report_path);
        assert_eq!(report["stopped"], "interrupted (SIGINT)", "{name}");
        assert_workers_sampled(&report, &scratch.dir, &workers, master, name);
    }
}

/// Apache's mod_wsgi from Debian in daemon mode (2 processes of 1 request
/// thread; Python started in each daemon process, its request threads made
/// in C), traced with `--pid` of Apache's parent process.
#[test]
fn mod_wsgi_daemon_processes_are_sampled() {
    require_root();
    // Apache's daemon processes run as www-data: a directory they can reach.
    let dir = std::path::PathBuf::from(format!("/tmp/tracer-e2e-mod-wsgi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let www = Command::new("id")
        .args(["-u", "www-data"])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&www.stdout)
        .trim()
        .parse()
        .expect("a www-data user");
    let www = Command::new("id")
        .args(["-g", "www-data"])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&www.stdout).trim().parse().unwrap();
    let app = app_dir(&dir, "app.wsgi", Some((uid, gid)));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let d = dir.display();
    let config = format!(
        "ServerRoot /etc/apache2\n\
         ServerName 127.0.0.1\n\
         Listen {address}\n\
         PidFile {d}/httpd.pid\n\
         ErrorLog {d}/error.log\n\
         LogLevel notice\n\
         User www-data\n\
         Group www-data\n\
         LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
         LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
         LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n\
         StartServers 1\n\
         WSGISocketPrefix {d}/wsgi\n\
         WSGIDaemonProcess embedded processes=2 threads=1\n\
         WSGIProcessGroup embedded\n\
         WSGIApplicationGroup %{{GLOBAL}}\n\
         WSGIScriptAlias / {app}\n\
         <Directory {d}>\n  Require all granted\n</Directory>\n"
    );
    let config_path = dir.join("httpd.conf");
    std::fs::write(&config_path, config).unwrap();
    let report_path = dir.join("report.json").display().to_string();
    let mut server = Proc::spawn(
        Command::new("/usr/sbin/apache2")
            .arg("-f")
            .arg(&config_path)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null()),
        "apache2",
    );
    let parent = server.pid() as u64;
    // Listening once it says so.
    let error_log = dir.join("error.log");
    while !std::fs::read_to_string(&error_log)
        .unwrap_or_default()
        .contains("resuming normal operations")
    {
        assert!(
            server.is_running(),
            "apache2 exited: {}",
            std::fs::read_to_string(&error_log).unwrap_or_default()
        );
        std::thread::yield_now();
    }
    let (mut tracer, mut log) = attach(parent as u32, &report_path);
    let workers = serve_once_sampled(&dir, &address, 2, 6, &mut log);
    assert_eq!(workers.len(), 2, "{workers:?}");
    tracer.signal("INT");
    assert!(tracer.wait().success());
    server.signal("TERM");
    server.wait();
    let report = load_json(&report_path);
    assert_eq!(report["stopped"], "interrupted (SIGINT)");
    assert_workers_sampled(&report, &dir, &workers, parent, "mod_wsgi");
    // Apache's parent loads libpython but never starts Python: said so.
    let row = python_row(&report["python"], parent);
    assert_eq!(row["samples"], 0);
    assert!(
        row["no_thread_reason"]
            .as_str()
            .is_some_and(|why| why.contains("no interpreter is started")),
        "{row:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
