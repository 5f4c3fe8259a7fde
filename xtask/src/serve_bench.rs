//! `cargo xtask bench --suite serve`: the continuous mode's memory over a
//! long run at high event rates. `tracer --pid W --serve` traces
//! `xtask/bench/serve_churn.py` (a /proc poller that also spawns and reaps
//! 50 processes a second and signals itself 10 times a second) for
//! `--serve-seconds`; every 10 s the tracer's resident memory is read from
//! /proc and its /metrics scraped. Flat memory means what the tracer keeps
//! is bounded whatever the run's length.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{bench_util::machine_line, util::repo_root};

const PYTHON: &str = "/usr/bin/python3.11";
const EVERY: Duration = Duration::from_secs(10);

struct Sample {
    at_s: u64,
    rss_kib: u64,
    series: usize,
    read_syscalls: f64,
}

pub fn serve_suite(tracer: &Path, seconds: u64, version: &str) -> Result<String> {
    let script = repo_root().join("xtask/bench/serve_churn.py");
    let mut workload = Command::new(PYTHON)
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the churning workload")?;
    let mut ready = String::new();
    BufReader::new(workload.stdout.take().context("piped")?).read_line(&mut ready)?;
    if ready.trim() != "ready" {
        let _ = workload.kill();
        bail!("the churning workload did not start (printed {ready:?})");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut tracer = Command::new(tracer)
        .arg("--pid")
        .arg(workload.id().to_string())
        .args([
            "--serve",
            &format!("127.0.0.1:{port}"),
            "--quiet",
            "-o",
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the tracer")?;
    eprintln!("tracing the churning workload with --serve for {seconds} s");
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next = start + EVERY;
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += EVERY;
        let metrics = scrape(port).unwrap_or_default();
        let sample = Sample {
            at_s: start.elapsed().as_secs(),
            rss_kib: rss_kib(tracer.id()).context("reading the tracer's VmRSS")?,
            series: metrics.lines().filter(|l| !l.starts_with('#')).count(),
            read_syscalls: metrics
                .lines()
                .filter(|l| l.starts_with("tracer_read_syscalls_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        };
        eprintln!(
            "  {:>4} s: RSS {} KiB, {} series, {} read syscalls",
            sample.at_s, sample.rss_kib, sample.series, sample.read_syscalls
        );
        samples.push(sample);
    }
    // SAFETY: kill has no memory-safety preconditions; both are our children.
    unsafe { libc::kill(tracer.id() as libc::pid_t, libc::SIGINT) };
    let status = tracer.wait()?;
    unsafe { libc::kill(workload.id() as libc::pid_t, libc::SIGTERM) };
    let mut workload_err = String::new();
    let _ = workload.wait();
    if let Some(mut err) = workload.stderr.take() {
        let _ = err.read_to_string(&mut workload_err);
    }
    if !status.success() {
        let mut err = String::new();
        if let Some(mut pipe) = tracer.stderr.take() {
            let _ = pipe.read_to_string(&mut err);
        }
        bail!("the tracer failed ({status}):\n{err}");
    }
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        bail!("--serve-seconds must be at least {} s", EVERY.as_secs());
    };
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let mut md = String::new();
    let _ = writeln!(md, "## Continuous mode: memory over {seconds} s\n");
    let _ = writeln!(md, "{}\n", machine_line());
    let _ = writeln!(md, "Tracer: {version}.\n");
    let _ = writeln!(
        md,
        "`tracer --pid W --serve` on `xtask/bench/serve_churn.py` (a /proc poller that spawns \
         and reaps 50 processes a second and signals itself 10 times a second); the \
         tracer's VmRSS and its /metrics every {} s. Workload: {}.\n",
        EVERY.as_secs(),
        workload_err.trim()
    );
    let _ = writeln!(md, "| figure | value |\n|---|---:|");
    let _ = writeln!(
        md,
        "| RSS at {} s | {:.1} MiB |",
        first.at_s,
        first.rss_kib as f64 / 1024.0
    );
    let _ = writeln!(
        md,
        "| RSS at {} s | {:.1} MiB |",
        last.at_s,
        last.rss_kib as f64 / 1024.0
    );
    let _ = writeln!(md, "| peak RSS | {:.1} MiB |", peak as f64 / 1024.0);
    let _ = writeln!(md, "| series served at the end | {} |", last.series);
    let _ = writeln!(
        md,
        "| read syscalls counted | {:.0} ({:.0} /s) |",
        last.read_syscalls,
        last.read_syscalls / last.at_s.max(1) as f64
    );
    let _ = writeln!(md, "\n| time | RSS | series |\n|---:|---:|---:|");
    for s in &samples {
        let _ = writeln!(
            md,
            "| {} s | {:.1} MiB | {} |",
            s.at_s,
            s.rss_kib as f64 / 1024.0,
            s.series
        );
    }
    Ok(md)
}

pub fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
