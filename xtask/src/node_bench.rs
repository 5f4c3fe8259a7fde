//! `cargo xtask bench --suite node`: what the node agent, `tracer --all
//! --serve`, costs (issue 25's targets: a CPU-bound Python job within 1.02x
//! of its untraced time, the agent within 1% of one core, and flat memory,
//! at most 64 MiB, under 50 new Python processes a second).
//!
//! 1. `xtask/bench/node_job.py` (fib(24) x [`JOB_ROUNDS`]) untraced, under
//!    the agent at its default rate and at 99 Hz, under the kernel's floor
//!    for it and under py-spy at the same rate, one run of each per round.
//!    The job waits until the sampler is attached, then times its own work;
//!    the sampler's CPU is its utime + stime over that work.
//! 2. The agent for `--node-seconds` while `xtask/bench/node_churn.py`
//!    starts 50 CPython processes a second: its VmRSS, series and CPU every
//!    10 s.

use std::{
    fmt::Write as _,
    fs::{self, File},
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{
    PYTHON,
    bench_util::{machine_line, median},
    floor,
    serve_bench::{rss_kib, scrape},
    util::repo_root,
};

/// About 10 s of work on this machine kind when it is quiet: long enough
/// for the agent's periodic look at every process (10 s) to fall inside.
const JOB_ROUNDS: u32 = 2000;
const PREFLIGHT_ROUNDS: u32 = 20;
/// The agent's default rate (`--all` with `--serve`), for the floor and py-spy.
const AGENT_RATE: u64 = 19;
/// A second CPython build for the churn: shared libpython, mapped after exec.
const OTHER_PYTHON: &str = "/root/.pyenv/versions/3.11.7/bin/python3.11";
const EVERY: Duration = Duration::from_secs(10);
/// The agent's first 2 s after start are not its steady state (it drains
/// and looks for new interpreters every 1-5 ms then): the job starts after this.
const SETTLE: Duration = Duration::from_secs(3);
/// How long an `--all` agent may take to answer its first scrape (it looks
/// at every process of the host first).
const READY_WITHIN: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Sampler {
    None,
    Agent(Option<u64>),
    Floor,
    PySpy,
}

struct Variant {
    name: &'static str,
    how: String,
    sampler: Sampler,
}

/// One timed run of the job.
struct JobRun {
    wall_s: f64,
    cpu_s: f64,
    /// The sampler's own CPU over the work, % of one core.
    sampler_pct: Option<f64>,
    /// Samples of the job the sampler took.
    samples: Option<f64>,
    /// Processes the whole host started a second meanwhile (the agent
    /// traces them all: other work on the machine shows here).
    host_forks: f64,
}

pub fn node_suite(
    tracer: &Path,
    runs: u32,
    seconds: u64,
    out_dir: &Path,
    version: &str,
) -> Result<String> {
    let py_spy = Command::new("py-spy")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut variants = vec![
        Variant {
            name: "untraced",
            how: "python3.11 alone".into(),
            sampler: Sampler::None,
        },
        Variant {
            name: "agent",
            how: "`tracer --all --serve 127.0.0.1:PORT -o /dev/null --quiet` (default rate, 19 Hz)"
                .into(),
            sampler: Sampler::Agent(None),
        },
        Variant {
            name: "agent 99 Hz",
            how: "the same with `--rate 99`".into(),
            sampler: Sampler::Agent(Some(99)),
        },
        Variant {
            name: "floor",
            how: format!(
                "empty programs on the tracer's raw tracepoints and on a {AGENT_RATE} Hz \
                 CPU-clock perf event per CPU (the kernel's floor under the agent)"
            ),
            sampler: Sampler::Floor,
        },
    ];
    if py_spy {
        variants.push(Variant {
            name: "py-spy",
            how: format!(
                "`py-spy record --pid JOB --rate {AGENT_RATE} --nonblocking --format raw` \
                 (one process only)"
            ),
            sampler: Sampler::PySpy,
        });
    }
    let load_before = loadavg();
    for variant in &variants {
        eprintln!("node preflight: {}", variant.name);
        run_job(variant.sampler, tracer, out_dir, PREFLIGHT_ROUNDS)
            .with_context(|| format!("preflight of `{}`", variant.name))?;
    }
    let mut results: Vec<Vec<JobRun>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        for (variant, runs) in variants.iter().zip(&mut results) {
            runs.push(run_job(variant.sampler, tracer, out_dir, JOB_ROUNDS)?);
        }
        let last = |i: usize| results[i].last().map_or(f64::NAN, |r| r.wall_s);
        eprintln!(
            "node round {}/{runs}: untraced {:.2} s, agent {:.2} s",
            round + 1,
            last(0),
            last(1)
        );
    }
    let load_after = loadavg();
    let mut md = heading(
        "a CPU-bound Python job",
        version,
        (&load_before, &load_after),
    );
    let _ = writeln!(
        md,
        "`xtask/bench/node_job.py {JOB_ROUNDS}` (fib(24) x {JOB_ROUNDS} on {PYTHON}), \
         {runs} rounds of one run of each variant in turn. Ratios are medians of each \
         round's ratio to that round's untraced run; *wall* and *CPU* are the job's own \
         (perf_counter, process_time around the work: start-up and attach left out). \
         The sampler's CPU is its utime + stime (/proc/PID/stat) over the work, in % of \
         one core (the BPF programs run in the job's and other tasks' time, not in it), \
         measured from {} s after the agent answered its first scrape. The agent traces \
         every process of the host: *host forks /s* (/proc/stat) says how busy the rest \
         of the machine was meanwhile.\n",
        SETTLE.as_secs()
    );
    let _ = writeln!(
        md,
        "| variant | how | job wall (median) | wall vs untraced | CPU vs untraced | sampler's CPU, % of a core | samples of the job | host forks /s |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    let base = &results[0];
    for (variant, runs) in variants.iter().zip(&results) {
        let ratio = |f: fn(&JobRun) -> f64| {
            let mut r: Vec<f64> = runs.iter().zip(base).map(|(a, b)| f(a) / f(b)).collect();
            median(&mut r)
        };
        let optional = |values: Vec<f64>, digits: usize| {
            if values.is_empty() {
                "-".to_string()
            } else {
                format!("{:.*}", digits, median(&mut values.clone()))
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} s | {:.3}x | {:.3}x | {} | {} | {:.1} |",
            variant.name,
            variant.how,
            median(&mut runs.iter().map(|r| r.wall_s).collect::<Vec<_>>()),
            ratio(|r| r.wall_s),
            ratio(|r| r.cpu_s),
            optional(runs.iter().filter_map(|r| r.sampler_pct).collect(), 2),
            optional(runs.iter().filter_map(|r| r.samples).collect(), 0),
            median(&mut runs.iter().map(|r| r.host_forks).collect::<Vec<_>>()),
        );
    }
    if !py_spy {
        let _ = writeln!(
            md,
            "\npy-spy is not installed (`pip install py-spy`): its row is left out."
        );
    }
    md.push('\n');
    md.push_str(&churn(tracer, seconds, out_dir, version)?);
    let _ = writeln!(
        md,
        "\nCommand: `sudo -E cargo xtask bench --suite node --runs {runs} --node-seconds {seconds}` \
         (the agent's stderr: {}).",
        out_dir.join("node-agent.stderr").display()
    );
    Ok(md)
}

/// The job once under `sampler`.
fn run_job(sampler: Sampler, tracer: &Path, out_dir: &Path, rounds: u32) -> Result<JobRun> {
    let script = repo_root().join("xtask/bench/node_job.py");
    let mut job = Command::new(PYTHON)
        .arg(&script)
        .arg(rounds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the job")?;
    let mut out = BufReader::new(job.stdout.take().context("piped")?);
    expect_ready(&mut out, "the job")?;
    let mut agent = None;
    let mut py_spy = None;
    let mut floor_fds: Vec<OwnedFd> = Vec::new();
    let watched = match sampler {
        Sampler::None => None,
        Sampler::Floor => {
            floor_fds = floor::attach_empty(floor::TRACER_HOOKS)?;
            floor_fds.extend(floor::attach_empty_sampler(AGENT_RATE)?);
            None
        }
        Sampler::Agent(rate) => {
            let started = Agent::start(tracer, rate, out_dir)?;
            let pid = started.child.id();
            agent = Some(started);
            std::thread::sleep(SETTLE);
            Some(pid)
        }
        Sampler::PySpy => {
            let (child, stdout) = start_py_spy(job.id(), out_dir)?;
            let pid = child.id();
            py_spy = Some((child, stdout));
            Some(pid)
        }
    };
    let before = watched.and_then(cpu_ticks);
    let forks_before = host_forks()?;
    let start = Instant::now();
    writeln!(job.stdin.as_mut().context("piped")?, "go")?;
    let mut line = String::new();
    out.read_line(&mut line)?;
    let elapsed = start.elapsed().as_secs_f64();
    let after = watched.and_then(cpu_ticks);
    let host_forks = (host_forks()? - forks_before) as f64 / elapsed;
    drop(floor_fds);
    let result: serde_json::Value =
        serde_json::from_str(line.trim()).with_context(|| format!("the job printed {line:?}"))?;
    let sampler_pct = before
        .zip(after)
        .map(|(b, a)| (a - b) as f64 / clock_ticks() / elapsed * 100.0);
    let mut samples = None;
    if let Some(agent) = agent {
        samples = Some(job_samples(
            &scrape(agent.port).unwrap_or_default(),
            job.id(),
        ));
        agent.stop()?;
    }
    drop(job.stdin.take());
    let status = job.wait()?;
    ensure!(status.success(), "the job failed ({status})");
    if let Some((mut child, mut stdout)) = py_spy {
        let mut text = String::new();
        stdout.read_to_string(&mut text)?;
        let status = child.wait()?;
        ensure!(status.success(), "py-spy failed ({status}):\n{text}");
        samples = text
            .split("Samples: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
    }
    Ok(JobRun {
        wall_s: result["wall_s"].as_f64().context("no wall_s")?,
        cpu_s: result["cpu_s"].as_f64().context("no cpu_s")?,
        sampler_pct,
        samples,
        host_forks,
    })
}

/// `py-spy record --pid`, once it says it samples.
fn start_py_spy(pid: u32, out_dir: &Path) -> Result<(Child, BufReader<ChildStdout>)> {
    let mut child = Command::new("py-spy")
        .args(["record", "--nonblocking", "--format", "raw"])
        .args(["--rate", &AGENT_RATE.to_string()])
        .arg("-o")
        .arg(out_dir.join("node-py-spy.txt"))
        .args(["--pid", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting py-spy")?;
    let mut stdout = BufReader::new(child.stdout.take().context("piped")?);
    let mut line = String::new();
    while !line.contains("Sampling process") {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            let _ = child.wait();
            bail!("py-spy ended before sampling");
        }
    }
    Ok((child, stdout))
}

/// `tracer --all --serve` on a free port, stderr to `node-agent.stderr`.
struct Agent {
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl Agent {
    fn start(tracer: &Path, rate: Option<u64>, out_dir: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let stderr = out_dir.join("node-agent.stderr");
        let mut cmd = Command::new(tracer);
        cmd.args(["--all", "--serve", &format!("127.0.0.1:{port}")])
            .args(["-o", "/dev/null", "--quiet"]);
        if let Some(rate) = rate {
            cmd.args(["--rate", &rate.to_string()]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr)?)
            .spawn()
            .context("starting the agent")?;
        let mut agent = Agent {
            child,
            port,
            stderr,
        };
        // Its first answer: it has looked at every process and is tracing.
        let start = Instant::now();
        while scrape(port).is_none() {
            if let Some(status) = agent.child.try_wait()? {
                bail!("the agent ended ({status}):\n{}", agent.stderr_text());
            }
            if start.elapsed() > READY_WITHIN {
                let _ = agent.stop();
                bail!("the agent did not answer /metrics within {READY_WITHIN:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(agent)
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stop(mut self) -> Result<()> {
        // SAFETY: kill has no memory-safety preconditions; it is our child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let status = self.child.wait()?;
        ensure!(
            status.success(),
            "the agent failed ({status}):\n{}",
            self.stderr_text()
        );
        Ok(())
    }
}

fn expect_ready(out: &mut impl std::io::BufRead, what: &str) -> Result<()> {
    let mut line = String::new();
    out.read_line(&mut line)?;
    ensure!(
        line.trim() == "ready",
        "{what} did not start (printed {line:?})"
    );
    Ok(())
}

/// `tracer_python_samples_total` of one pid, summed over its functions.
fn job_samples(metrics: &str, pid: u32) -> f64 {
    let label = format!("pid=\"{pid}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("tracer_python_samples_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is 3rd.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Processes started on the host since boot (`processes` in /proc/stat).
fn host_forks() -> Result<u64> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    stat.lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|n| n.trim().parse().ok())
        .context("no `processes` line in /proc/stat")
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// A section's title, the machine, the tracer and the load around the run.
fn heading(title: &str, version: &str, (before, after): (&str, &str)) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Node agent: {title}\n");
    let _ = writeln!(md, "{}\n", machine_line());
    let _ = writeln!(md, "Tracer: {version}.\n");
    let _ = writeln!(
        md,
        "Load average (1, 5, 15 min) before: {before}; after: {after}.\n"
    );
    md
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "?".into())
}

struct ChurnSample {
    at_s: u64,
    rss_kib: u64,
    /// Lines of /metrics; `None`: no answer within the scrape's 5 s.
    series: Option<usize>,
    started: u64,
    /// The agent's CPU since the previous sample, % of one core.
    cpu_pct: f64,
}

/// Part 2: the agent's memory while new Python processes never stop starting.
fn churn(tracer: &Path, seconds: u64, out_dir: &Path, version: &str) -> Result<String> {
    let load_before = loadavg();
    let agent = Agent::start(tracer, None, out_dir)?;
    let pid = agent.child.id();
    let mut driver = Command::new(PYTHON)
        .arg(repo_root().join("xtask/bench/node_churn.py"))
        .args(["--python", PYTHON, "--other", OTHER_PYTHON])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the churn")?;
    let mut out = BufReader::new(driver.stdout.take().context("piped")?);
    expect_ready(&mut out, "the churn")?;
    // Its "started N missed N" lines, read as they come.
    let started = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&started);
    let reader = std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Some(n) = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()) {
                counter.store(n, Ordering::Relaxed);
            }
        }
    });
    eprintln!("node churn: the agent for {seconds} s, 50 new Python processes a second");
    let start = Instant::now();
    let first_ticks = cpu_ticks(pid).context("reading the agent's CPU time")?;
    let (mut ticks, mut at) = (first_ticks, start);
    let mut samples = Vec::new();
    let mut next = start + EVERY;
    let mut metrics = String::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += EVERY;
        let scraped = scrape(agent.port);
        let series = scraped
            .as_deref()
            .map(|m| m.lines().filter(|l| !l.starts_with('#')).count());
        if let Some(text) = scraped {
            metrics = text;
        }
        let now_ticks = cpu_ticks(pid).context("reading the agent's CPU time")?;
        let sample = ChurnSample {
            at_s: start.elapsed().as_secs_f64().round() as u64,
            rss_kib: rss_kib(pid).context("reading the agent's VmRSS")?,
            series,
            started: started.load(Ordering::Relaxed),
            cpu_pct: (now_ticks - ticks) as f64 / clock_ticks() / at.elapsed().as_secs_f64()
                * 100.0,
        };
        (ticks, at) = (now_ticks, Instant::now());
        eprintln!(
            "  {:>4} s: RSS {} KiB, {} series, {} started, agent CPU {:.1}%",
            sample.at_s,
            sample.rss_kib,
            series_text(sample.series),
            sample.started,
            sample.cpu_pct
        );
        samples.push(sample);
    }
    let total_cpu = (ticks - first_ticks) as f64 / clock_ticks() / start.elapsed().as_secs_f64();
    // SAFETY: kill has no memory-safety preconditions; it is our child.
    unsafe { libc::kill(driver.id() as libc::pid_t, libc::SIGTERM) };
    let mut totals = String::new();
    driver
        .stderr
        .take()
        .context("piped")?
        .read_to_string(&mut totals)?;
    let status = driver.wait()?;
    let _ = reader.join();
    agent.stop()?;
    ensure!(status.success(), "the churn failed ({status}):\n{totals}");
    let load_after = loadavg();
    let lost = metrics
        .lines()
        .filter(|l| l.starts_with("tracer_events_lost_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b);
    render_churn(
        &samples,
        seconds,
        totals.trim(),
        total_cpu * 100.0,
        lost,
        (&load_before, &load_after),
        version,
    )
}

fn render_churn(
    samples: &[ChurnSample],
    seconds: u64,
    totals: &str,
    cpu_pct: f64,
    lost: f64,
    (load_before, load_after): (&str, &str),
    version: &str,
) -> Result<String> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        bail!("--node-seconds must be at least {} s", EVERY.as_secs());
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let minute = (60 / EVERY.as_secs()) as usize;
    let mean =
        |s: &[ChurnSample]| s.iter().map(|s| mib(s.rss_kib)).sum::<f64>() / s.len().max(1) as f64;
    let first_minute = mean(&samples[..minute.min(samples.len())]);
    let last_minute = mean(&samples[samples.len().saturating_sub(minute)..]);
    let span_min = (last.at_s.saturating_sub(first.at_s)).max(1) as f64 / 60.0;
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let mut md = heading(
        &format!("memory under churn, {seconds} s"),
        version,
        (load_before, load_after),
    );
    let _ = writeln!(
        md,
        "`tracer --all --serve 127.0.0.1:PORT -o /dev/null --quiet` (19 Hz) while \
         `xtask/bench/node_churn.py` starts 50 CPython processes a second ({PYTHON} -c, \
         one in 10 {OTHER_PYTHON} -S -c: a little work, imports, exit 3, SIGTERM, a \
         forked child reaped 200 ms late; one in 5 reaped 1 s late); every {} s the \
         agent's VmRSS, the lines of its /metrics and its CPU. Churn: {totals}.\n",
        EVERY.as_secs()
    );
    let _ = writeln!(md, "| figure | value |\n|---|---:|");
    let _ = writeln!(md, "| peak RSS | {:.1} MiB |", mib(peak));
    let _ = writeln!(
        md,
        "| mean RSS, first minute / last minute | {first_minute:.1} / {last_minute:.1} MiB |"
    );
    let _ = writeln!(
        md,
        "| slope, first to last minute | {:+.2} MiB per minute |",
        (last_minute - first_minute) / span_min
    );
    let _ = writeln!(
        md,
        "| processes started | {} ({:.1} /s) |",
        last.started,
        last.started as f64 / last.at_s.max(1) as f64
    );
    let _ = writeln!(md, "| the agent's CPU, % of one core | {cpu_pct:.1}% |");
    let _ = writeln!(
        md,
        "| the agent's CPU per process started | {:.1} ms |",
        cpu_pct / 100.0 * last.at_s as f64 * 1000.0 / last.started.max(1) as f64
    );
    let _ = writeln!(
        md,
        "| series served at the end | {} |",
        series_text(last.series)
    );
    let _ = writeln!(md, "| events lost (tracer_events_lost_total) | {lost:.0} |");
    let _ = writeln!(
        md,
        "\n| time | RSS | series | processes started | agent CPU |\n|---:|---:|---:|---:|---:|"
    );
    for s in samples {
        let _ = writeln!(
            md,
            "| {} s | {:.1} MiB | {} | {} | {:.1}% |",
            s.at_s,
            mib(s.rss_kib),
            series_text(s.series),
            s.started,
            s.cpu_pct
        );
    }
    Ok(md)
}

fn series_text(series: Option<usize>) -> String {
    series.map_or_else(|| "no answer in 5 s".into(), |n| n.to_string())
}
