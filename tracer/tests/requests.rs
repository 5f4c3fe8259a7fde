//! Requests seen from the kernel: real servers from PyPI (cached by `cargo
//! xtask test`): gunicorn's sync and gthread workers, uvicorn on asyncio,
//! serving routes whose time goes to CPU, a slow "database" on a local TCP
//! socket, a file read in 1 KiB chunks, a sleep, nothing, and errors,
//! launched under the tracer with no change to the app. The client knows
//! every request it made and how long each took: each route's count,
//! errors and median must be the tracer's.
//!
//! Run: sudo cargo test -p tracer --test requests

mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::net::UnixStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{http::free_port, *};
use serde_json::Value;

/// The paths each client asks for, in turn, and the route each is counted
/// under.
const ROUTES: [(&str, &str, u16); 7] = [
    ("/cpu/{n}", "/cpu/{id}", 200),
    ("/db/{n}", "/db/{id}", 200),
    ("/file", "/file", 200),
    ("/sleep", "/sleep", 200),
    ("/fast", "/fast", 200),
    ("/missing", "/missing", 404),
    ("/boom", "/boom", 500),
];
const ROUNDS: usize = 16;
/// The "database" answers each query after this long.
const DB_DELAY: Duration = Duration::from_millis(15);

/// What the client saw: per route, each request's status and latency.
type Seen = BTreeMap<&'static str, Vec<(u16, Duration)>>;

/// Where the server listens.
enum Endpoint {
    Unix(String),
    Tcp(u16),
}

trait Stream: Read + Write {}
impl Stream for UnixStream {}
impl Stream for TcpStream {}

#[test]
fn gunicorn_sync_requests_are_counted_per_route() {
    gunicorn("sync", false);
}

#[test]
fn gunicorn_gthread_keep_alive_requests_are_counted_per_route() {
    gunicorn("gthread", true);
}

/// The server real-time too (chrt execs it): CI builds on both CPUs beside
/// the tests, and a worker woken by a new connection waited its turn
/// behind them before it could read, a wait the client's clock counts and
/// the server's sockets cannot.
const REAL_TIME: [&str; 4] = ["chrt", "--fifo", "1", STATIC_PYTHON];

fn gunicorn(worker_class: &str, keep_alive: bool) {
    require_root();
    let site = gunicorn_site();
    let scratch = Scratch::new(&format!("requests_{worker_class}"));
    let socket = format!("{}/gunicorn.sock", scratch.socket_dir());
    let pidfile = scratch.path("gunicorn.pid");
    let report_path = scratch.path("report.json");
    let app = workload("gunicorn_routes.py");
    let app_dir = std::path::Path::new(&app).parent().unwrap();
    let mut tracer = Proc::spawn(
        traced_server(&scratch, &report_path)
            .args(["-B", "-m", "gunicorn", "-c", &app])
            .args(["-b", &format!("unix:{socket}"), "-p", &pidfile])
            .args(["--log-level", "warning", "--chdir"])
            .arg(app_dir)
            .arg("gunicorn_routes:app")
            // The config file imports http_routes beside it.
            .env("PYTHONPATH", format!("{site}:{}", app_dir.display()))
            .env("TRACER_TEST_WORKER_CLASS", worker_class)
            // Two threads of one process, or two processes.
            .env("TRACER_TEST_WORKERS", if keep_alive { "1" } else { "2" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
        "tracer",
    );
    tracer.stdout_lines().wait_for("ready");
    let seen = run_client(Endpoint::Unix(socket), keep_alive);
    let master = stop_gunicorn(&pidfile, &mut tracer);
    check(&load_json(&report_path), &seen, Some(master));
}

/// uvicorn on one asyncio loop, one kept-alive connection.
#[test]
fn uvicorn_requests_are_counted_per_route() {
    require_root();
    let scratch = Scratch::new("requests_uvicorn");
    let report_path = scratch.path("report.json");
    let port = free_port();
    let mut tracer = Proc::spawn(
        traced_server(&scratch, &report_path)
            .args(["-B", &workload("uvicorn_routes.py"), &port.to_string()])
            .env("PYTHONPATH", uvicorn_site())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "tracer",
    );
    let mut stderr = tracer.stderr_lines();
    // "INFO:     Started server process [PID]"
    let started = stderr.wait_for("Started server process [");
    let pid: i32 = started
        .rsplit('[')
        .next()
        .and_then(|pid| pid.trim_end_matches(']').parse().ok())
        .unwrap_or_else(|| panic!("{started}"));
    stderr.wait_for("Uvicorn running on");
    let seen = run_client(Endpoint::Tcp(port), true);
    // SIGINT stops the server, and the trace.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    assert_eq!(tracer.wait().code(), Some(0), "{}", stderr.rest());
    check(&load_json(&report_path), &seen, None);
}

/// `tracer -o REPORT -- chrt --fifo 1 python3.11` with the routes' "database"
/// and data file in the environment: the server's arguments follow.
fn traced_server(scratch: &Scratch, report_path: &str) -> Command {
    let data = scratch.path("data.bin");
    std::fs::write(&data, vec![7u8; 64 * 1024]).unwrap();
    let mut command = Command::new(TRACER);
    command
        .args(["--quiet", "--format", "json", "-o", report_path, "--"])
        .args(REAL_TIME)
        .env("TRACER_TEST_DB", slow_database())
        .env("TRACER_TEST_FILE", &data);
    command
}

/// Every route's row against what the client saw; no request of
/// `not_by` (a pre-fork server's master).
fn check(report: &Value, seen: &Seen, not_by: Option<i32>) {
    assert_complete(report);
    let requests = &report["requests"];
    assert_eq!(requests["unanswered"], 0, "{requests:#}");
    assert_eq!(requests["past_route_bound"], 0);
    let routes = requests["routes"].as_array().unwrap();
    assert_eq!(routes.len(), ROUTES.len(), "{routes:#?}");
    for (path, route, status) in ROUTES {
        let row = routes
            .iter()
            .find(|r| r["method"] == "GET" && r["route"] == route)
            .unwrap_or_else(|| panic!("no row for {route}: {routes:#?}"));
        let mut latencies: Vec<Duration> = Vec::new();
        for &(got, latency) in &seen[path] {
            assert_eq!(got, status, "{path}");
            latencies.push(latency);
        }
        let count = ROUNDS as u64;
        assert_eq!(row["count"], count, "{row:#}");
        let errors = if status >= 500 { count } else { 0 };
        let client_errors = if (400..500).contains(&status) {
            count
        } else {
            0
        };
        assert_eq!(row["errors"], errors, "{row:#}");
        assert_eq!(row["client_errors"], client_errors, "{row:#}");
        // The client's time includes the connection (and, for a new one,
        // its accept): the server's is from its request line read to its
        // last write. Within 10%, or 2 ms.
        latencies.sort();
        let client_p50 = latencies[(latencies.len() - 1) / 2].as_nanos() as i64;
        let p50 = row["latency_ns"]["p50"].as_i64().unwrap();
        let tolerance = (client_p50 / 10).max(2_000_000);
        assert!(
            (p50 - client_p50).abs() <= tolerance,
            "{route}: the tracer's p50 {p50} ns, the client's {client_p50} ns: {row:#}"
        );
        assert!(row["bytes_in"].as_u64().unwrap() >= count * 30, "{row:#}");
        assert!(row["bytes_out"].as_u64().unwrap() >= count * 30, "{row:#}");
    }
    // The slowest, one by one: the longest of all first, each with its
    // path, route, status and the worker that served it.
    let slowest = requests["slowest"].as_array().unwrap();
    assert_eq!(slowest.len(), 10);
    let longest = routes
        .iter()
        .map(|r| r["latency_ns"]["max"].as_u64().unwrap())
        .max();
    assert_eq!(slowest[0]["latency_ns"].as_u64(), longest, "{slowest:#?}");
    for r in slowest {
        let (path, route, status) = ROUTES
            .into_iter()
            .find(|(_, route, _)| r["route"] == *route)
            .unwrap_or_else(|| panic!("{r:#}"));
        let prefix = path.trim_end_matches("{n}");
        assert!(
            r["path"].as_str().unwrap().starts_with(prefix),
            "{r:#} ({route})"
        );
        assert_eq!(r["status"], status, "{r:#}");
        assert_eq!(r["method"], "GET");
        if let Some(master) = not_by {
            assert_ne!(r["pid"], master, "served by a worker: {r:#}");
        }
    }
    let latencies: Vec<u64> = slowest
        .iter()
        .map(|r| r["latency_ns"].as_u64().unwrap())
        .collect();
    assert!(latencies.is_sorted_by(|a, b| a >= b), "{latencies:?}");
}

/// The client's requests, one at a time: `ROUNDS` times every route, on
/// one kept-alive connection or a new connection each. One at a time, its
/// latencies are the server's plus the connection's, not a queue's: with
/// two clients, two CPU-bound workers and the tracer on two CPUs, a new
/// connection waited for a free worker (5-10 ms at times, which the
/// server's sockets never see), and a median moved 2.7 ms.
fn run_client(endpoint: Endpoint, keep_alive: bool) -> Seen {
    // Its own thread, real-time: its clock stops as the response ends
    // (behind the workers' CPU-bound requests, a client woken by its
    // response waited up to a time slice, 2.3 ms once, to read it).
    std::thread::spawn(move || {
        let param = libc::sched_param { sched_priority: 1 };
        assert_eq!(
            unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) },
            0,
            "SCHED_FIFO: {}",
            std::io::Error::last_os_error()
        );
        let mut seen = Seen::new();
        let mut kept: Option<BufReader<Box<dyn Stream>>> = None;
        for round in 0..ROUNDS {
            for (path, _, _) in ROUTES {
                let target = path.replace("{n}", &round.to_string());
                let began = Instant::now();
                let status = if keep_alive {
                    let conn = kept.get_or_insert_with(|| BufReader::new(connect(&endpoint)));
                    exchange(conn, &target, false)
                } else {
                    exchange(&mut BufReader::new(connect(&endpoint)), &target, true)
                };
                seen.entry(path)
                    .or_default()
                    .push((status, began.elapsed()));
            }
        }
        seen
    })
    .join()
    .unwrap()
}

fn connect(endpoint: &Endpoint) -> Box<dyn Stream> {
    match endpoint {
        Endpoint::Unix(socket) => {
            Box::new(UnixStream::connect(socket).unwrap_or_else(|e| panic!("{socket}: {e}")))
        }
        Endpoint::Tcp(port) => Box::new(
            TcpStream::connect(("127.0.0.1", *port)).unwrap_or_else(|e| panic!("port {port}: {e}")),
        ),
    }
}

/// One request and its whole response (by its Content-Length): its status.
fn exchange(conn: &mut BufReader<Box<dyn Stream>>, target: &str, close: bool) -> u16 {
    let connection = if close { "close" } else { "keep-alive" };
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).unwrap();
    let mut status_line = String::new();
    conn.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{target}: status line {status_line:?}"));
    let mut length = 0;
    loop {
        let mut header = String::new();
        conn.read_line(&mut header).unwrap();
        if header == "\r\n" || header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).unwrap();
    if close {
        // The server's close is the end of its response.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
    }
    status
}

/// A "database" on a local TCP port: each connection's query line is
/// answered with one row after `DB_DELAY`.
fn slow_database() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut query = String::new();
                if BufReader::new(&conn).read_line(&mut query).is_ok() {
                    std::thread::sleep(DB_DELAY);
                    let _ = conn.write_all(b"row\n");
                }
            });
        }
    });
    address
}
