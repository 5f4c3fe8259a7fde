//! `cargo xtask bench`: what tracing costs the traced program, side by side
//! with strace and bpftrace, and what the tracer itself costs (peak RSS,
//! time to first event); then (`--suite python`) what Python stack sampling
//! costs a CPU-bound program, side by side with py-spy and the kernel's
//! timer-interrupt floor (`bench/python_sampling.py`).
//!
//! Workload: `xtask/bench/proc_poll.py`, N iterations of open + read + close
//! of /proc/self/status. Each variant runs under hyperfine; the workload also
//! records its own loop time (perf_counter around the loop), which leaves out
//! interpreter and tracer start-up: the fair overhead figure.
//!
//! This file holds the arguments, which suites run, and the start-up and
//! /proc tables; the /proc suite's variants and measurements are in
//! `proc_bench`, the serve suite in `serve_bench`, the node suite in
//! `node_bench`, the I/O suite (reads and writes of each kind side by side) in
//! `io_bench`, the static build beside the dynamic one in `dist_bench`,
//! and what the suites
//! share in `bench_util`.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Args, ValueEnum};

use crate::{
    PYTHON,
    bench_util::{machine_line, median, path, rel},
    build_tracer,
    proc_bench::{Rss, Timing, Variant, WARMUP, measure_rss, preflight, time_variants, variants},
    setup,
    util::{repo_root, require_root, run, target_dir, tool_command, tracer_binary},
};

#[derive(Args)]
pub struct BenchArgs {
    /// open + read + close iterations of /proc/self/status per run.
    #[arg(long, default_value_t = 100_000)]
    iterations: u64,
    /// How long to trace a polling process when measuring the tracer's peak RSS.
    #[arg(long, default_value_t = 60)]
    rss_seconds: u64,
    /// Timed runs per variant (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Benchmark the existing target/release/tracer: no setup, no build.
    #[arg(long)]
    no_build: bool,
    /// Which benchmarks to run.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// Leave strace out of the /proc polling comparison (about 12-15x
    /// slower than untraced: minutes per run).
    #[arg(long)]
    no_strace: bool,
    /// Sampling rates for the Python suite (the 9,999 Hz row makes the
    /// per-tick cost stand out of the noise).
    #[arg(long, default_value = "999,9999")]
    rates: String,
    /// Another tracer binary (e.g. an earlier commit's build) timed in the
    /// same run, interleaved: its rows are `tracer-baseline`, so a change's
    /// cost reads side by side, in one run, on one machine state.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// How long the serve suite traces.
    #[arg(long, default_value_t = 600)]
    serve_seconds: u64,
    /// How long the node suite's agent runs under churn.
    #[arg(long, default_value_t = 600)]
    node_seconds: u64,
    /// 1-byte reads of each kind (file, socket) per run of the reads suite.
    #[arg(long, default_value_t = 50_000)]
    reads: u64,
    /// Distinct files the scale suite reads (the issue's figure: 1000000).
    #[arg(long, default_value_t = 100_000)]
    files: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// The /proc polling loop: tracer vs strace vs bpftrace, RSS, start-up.
    Proc,
    /// Python sampling on a CPU-bound program: tracer vs py-spy vs the floor.
    Python,
    /// Native frames on C-heavy work (zlib): tracer (native frames on, the
    /// default), tracer --native=off, py-spy --native (which stops the
    /// process) and the kernel's floor, at 99 Hz (the budget: 1.05x) and
    /// 999 Hz.
    Native,
    /// Memory growth sampling (page faults with Python stacks) on an
    /// allocation-heavy loop: untraced, tracer without it, the default,
    /// every fault, and the kernel's floor (bpftrace on the same event).
    Memory,
    /// Start-up on a tree of 16 Python processes x 4 threads; the sampler's
    /// cost per tick on a free-threaded build next to the GIL build.
    Tree,
    /// The fixed cost: `tracer -- /bin/true` next to bpftrace with one
    /// tracepoint; time to first event; teardown after the report.
    Startup,
    /// The continuous mode's memory over `--serve-seconds` at high event
    /// rates (not part of `all`: 10 minutes by default).
    Serve,
    /// The node agent (`--all --serve`): a CPU-bound job's slowdown and the
    /// agent's CPU, then its memory over `--node-seconds` of 50 new Python
    /// processes a second (not part of `all`: over 15 minutes by default).
    Node,
    /// Reads and writes of files, pipes and sockets side by side: what the
    /// tracer (and the kernel's floor, and strace) adds to each, per call
    /// (`reads`, its former name, still works).
    #[value(alias = "reads")]
    Io,
    /// A row for everything: `--files` files read, 2,000 forks; time and
    /// peak RSS beside untraced, each report checked (not part of `all`).
    Scale,
    /// The static binary of `cargo xtask dist` beside the dynamic build:
    /// size and start-up (not part of `all`: a second build of the tracer).
    Dist,
    All,
}

/// Where bpftrace (a peer in the benchmark; the tracer itself needs no
/// tracefs) looks for tracepoints: Debian's bpftrace 0.17 does not mount
/// tracefs, and a fresh machine has it unmounted, so it is mounted here
/// once (as bpftrace's users do by hand). Left mounted, as it would be.
fn ensure_tracefs() -> Result<()> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("tracefs"))
    {
        eprintln!("ok tracefs");
        return Ok(());
    }
    eprintln!("mounting tracefs on {TRACEFS} (for bpftrace)");
    let status = Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .status()
        .context("running mount")?;
    ensure!(
        status.success(),
        "mount -t tracefs nodev {TRACEFS} failed ({status})"
    );
    Ok(())
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    require_root("bench", "sudo -E cargo xtask bench")?;
    ensure!(
        args.iterations > 0 && args.runs > 0,
        "--iterations and --runs must be > 0"
    );
    if !args.no_build {
        setup::setup()?;
    }
    setup::ensure_apt(crate::packages::BENCH)?;
    ensure_tracefs()?;
    if !args.no_build {
        build_tracer()?;
    }

    let out_dir = target_dir().join("bench");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // Benchmark a copy, so that a rebuild during the (long) run cannot mix binaries.
    let tracer = out_dir.join("tracer");
    fs::copy(tracer_binary()?, &tracer)
        .with_context(|| format!("copying the tracer to {}", tracer.display()))?;
    let version = tracer_version(&tracer);
    let baseline = match &args.baseline {
        Some(path) => {
            let copy = out_dir.join("tracer-baseline");
            fs::copy(path, &copy)
                .with_context(|| format!("copying the baseline {}", path.display()))?;
            Some(copy)
        }
        None => None,
    };
    let baseline = baseline.as_deref();
    let mut report = String::new();
    if matches!(args.suite, Suite::Startup | Suite::All) {
        report.push_str(&startup_suite(args, &tracer, baseline, &out_dir, &version)?);
    }
    if matches!(args.suite, Suite::Proc | Suite::All) {
        report.push_str(&proc_suite(args, &tracer, baseline, &out_dir, &version)?);
    }
    if matches!(args.suite, Suite::Python | Suite::All) {
        report.push_str(&python_suite(args, &tracer, baseline, &version)?);
    }
    if matches!(args.suite, Suite::Native | Suite::All) {
        report.push_str(&native_suite(args, &tracer, &version)?);
    }
    if matches!(args.suite, Suite::Io | Suite::All) {
        report.push_str(&crate::io_bench::io_suite(
            &tracer,
            baseline,
            !args.no_strace,
            args.reads,
            args.runs,
            &out_dir,
            &version,
        )?);
    }
    if matches!(args.suite, Suite::Memory | Suite::All) {
        report.push_str(&bench_script(
            "bench/memory_growth.py",
            &["--python", PYTHON_FOR_SAMPLING],
            args,
            &tracer,
            &version,
        )?);
    }
    if matches!(args.suite, Suite::Tree | Suite::All) {
        report.push_str(&tree_suite(args, &tracer, &version)?);
    }
    if args.suite == Suite::Scale {
        report.push_str(&crate::scale_bench::scale_suite(
            &tracer, args.files, args.runs, &out_dir, &version,
        )?);
    }
    if args.suite == Suite::Serve {
        report.push_str(&crate::serve_bench::serve_suite(
            &tracer,
            args.serve_seconds,
            &version,
        )?);
    }
    if args.suite == Suite::Node {
        report.push_str(&crate::node_bench::node_suite(
            &tracer,
            args.runs,
            args.node_seconds,
            &out_dir,
            &version,
        )?);
    }
    if args.suite == Suite::Dist {
        // Built unless --no-build, as the dynamic one; copied like it.
        let built = if args.no_build {
            target_dir()
                .join(crate::arch::Arch::HOST.rust_target())
                .join("release/tracer")
        } else {
            crate::dist::build_static(crate::arch::Arch::HOST)?
        };
        let fixed = out_dir.join("tracer-static");
        fs::copy(&built, &fixed)
            .with_context(|| format!("copying the static build {}", built.display()))?;
        crate::dist::ensure_static(&fixed, crate::arch::Arch::HOST)?;
        report.push_str(&crate::dist_bench::dist_suite(&tracer, &fixed, args.runs)?);
    }
    let results = out_dir.join("results.md");
    fs::write(&results, &report).with_context(|| format!("writing {}", results.display()))?;
    println!("\n{report}");
    eprintln!("written to {}", results.display());
    Ok(())
}

fn proc_suite(
    args: &BenchArgs,
    tracer: &Path,
    baseline: Option<&Path>,
    out_dir: &Path,
    version: &str,
) -> Result<String> {
    let root = repo_root();
    let script = root.join("xtask/bench/proc_poll.py");
    let bt = root.join("xtask/bench/proc_poll.bt");
    let mut variants = variants(tracer, baseline, &script, &bt, out_dir, args.iterations);
    if args.no_strace {
        variants.retain(|v| v.name != "strace");
    }
    preflight(&variants, tracer, baseline, &script, &bt, out_dir)?;
    let timings = time_variants(&variants, out_dir, args.runs)?;
    let rss = measure_rss(tracer, &script, out_dir, args.rss_seconds)?;
    Ok(render(args, &variants, &timings, &rss, version))
}

/// The fixed cost of a trace, on a command that does nothing: the whole
/// `tracer -- /bin/true` next to untraced and to bpftrace with one
/// tracepoint (hyperfine, medians), then the tracer's own phases from its
/// `--verbose` lines: start to first event, start to report written, and the
/// teardown after the report (exit minus report written).
fn startup_suite(
    args: &BenchArgs,
    tracer: &Path,
    baseline: Option<&Path>,
    out_dir: &Path,
    version: &str,
) -> Result<String> {
    let runs = args.runs.max(10);
    let traced = |tracer: &Path| {
        format!(
            "{} --quiet --format json -o /dev/null -- /bin/true",
            path(tracer)
        )
    };
    let mut commands = vec![
        ("untraced", "/bin/true".to_string()),
        ("tracer", traced(tracer)),
        (
            "bpftrace",
            "bpftrace -e 'tracepoint:syscalls:sys_enter_read {}' -c /bin/true".to_string(),
        ),
    ];
    if let Some(baseline) = baseline {
        commands.insert(2, ("tracer-baseline", traced(baseline)));
    }
    let medians = hyperfine_medians(&commands, runs, None, &out_dir.join("startup.json"))?;
    // A user's one run finds the kernel's per-thread perf hooks off (they
    // stay on ~1 s after the last per-thread perf event closes, so
    // back-to-back runs do not): the tracers again, 1.5 s apart.
    let tracers: Vec<(&str, String)> = commands
        .iter()
        .filter(|(name, _)| name.starts_with("tracer"))
        .cloned()
        .collect();
    let cold = hyperfine_medians(
        &tracers,
        runs,
        Some("sleep 1.5"),
        &out_dir.join("startup-cold.json"),
    )?;

    let (mut first, mut written, mut teardown, mut walls) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new(tracer)
            .args([
                "--verbose",
                "--quiet",
                "--format",
                "json",
                "-o",
                "/dev/null",
            ])
            .args(["--", "/bin/true"])
            .stdin(Stdio::null())
            .output()
            .context("running the tracer on /bin/true")?;
        let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success(),
            "tracer -- /bin/true failed:\n{stderr}"
        );
        let (Some(f), Some(w)) = (
            parse_after(&stderr, "first event after "),
            parse_after(&stderr, "report written after "),
        ) else {
            bail!("tracer --verbose printed no `first event` / `report written` line:\n{stderr}");
        };
        first.push(f);
        written.push(w);
        teardown.push(wall_ms - w);
        walls.push(wall_ms);
    }

    let mut md = String::new();
    let _ = writeln!(md, "## Fixed cost: a trace of /bin/true\n");
    let _ = writeln!(md, "{}\n", machine_line());
    let _ = writeln!(md, "Tracer: {version}.\n");
    let _ = writeln!(
        md,
        "Medians of {runs} runs (after 1 warm-up run) timed by hyperfine, from start to exit.\n"
    );
    let _ = writeln!(md, "| command | median | vs tracer |");
    let _ = writeln!(md, "|---|---:|---:|");
    let tracer_median = medians[1];
    for ((name, command), median) in commands.iter().zip(&medians) {
        let _ = writeln!(
            md,
            "| {name}: `{command}` | {:.1} ms | {:.2}x |",
            median * 1000.0,
            median / tracer_median
        );
    }
    for ((name, _), median) in tracers.iter().zip(&cold) {
        let _ = writeln!(
            md,
            "| {name}, each run 1.5 s after the last (a user's single run) | {:.1} ms | {:.2}x |",
            median * 1000.0,
            median / cold[0]
        );
    }
    let _ = writeln!(
        md,
        "\nThe tracer's phases (`--verbose`), medians of {runs} runs of `tracer --verbose -- /bin/true`:\n"
    );
    let _ = writeln!(md, "| phase | median |");
    let _ = writeln!(md, "|---|---:|");
    for (phase, values) in [
        ("start to first event", &mut first),
        ("start to report written", &mut written),
        ("teardown: report written to exit", &mut teardown),
        ("start to exit", &mut walls),
    ] {
        let _ = writeln!(md, "| {phase} | {:.1} ms |", median(values));
    }
    Ok(md)
}

/// hyperfine's median of each of `commands` (name, command line), in
/// seconds, `prepare` run before each run.
fn hyperfine_medians(
    commands: &[(&str, String)],
    runs: u32,
    prepare: Option<&str>,
    json: &Path,
) -> Result<Vec<f64>> {
    let mut cmd = tool_command("hyperfine");
    cmd.args(["--shell=none", "--style", "basic", "--output", "null"])
        .args(["--warmup", "1", "--runs", &runs.to_string()])
        .arg("--export-json")
        .arg(json);
    if let Some(prepare) = prepare {
        cmd.args(["--prepare", prepare]);
    }
    for (name, command) in commands {
        cmd.args(["--command-name", name, command]);
    }
    run(&mut cmd)?;
    let exported: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?,
    )?;
    let medians: Vec<f64> = exported["results"]
        .as_array()
        .context("hyperfine JSON has no `results`")?
        .iter()
        .map(|r| r["median"].as_f64().unwrap_or(f64::NAN))
        .collect();
    ensure!(
        medians.len() == commands.len(),
        "hyperfine JSON: missing results"
    );
    Ok(medians)
}

/// The number of milliseconds after `label` in a `--verbose` line
/// (`first event after 12 ms`, `report written after 130.5ms`).
fn parse_after(stderr: &str, label: &str) -> Option<f64> {
    stderr.lines().find_map(|line| {
        let rest = &line[line.find(label)? + label.len()..];
        let word = rest.split_whitespace().next()?;
        let unit = rest.split_whitespace().nth(1).unwrap_or("");
        let digits: String = word
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let value: f64 = digits.parse().ok()?;
        let unit = if word.len() > digits.len() {
            &word[digits.len()..]
        } else {
            unit
        };
        Some(match unit {
            "s" => value * 1000.0,
            "us" | "µs" => value / 1000.0,
            "ns" => value / 1e6,
            _ => value,
        })
    })
}

/// py-spy comes from PyPI: installed with the benchmark's Python when
/// missing, beside it (pyenv's bin, not on PATH). Returns the py-spy to run.
fn ensure_py_spy() -> Result<String> {
    let works = |py_spy: &str| {
        Command::new(py_spy)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let beside = Path::new(PYTHON_FOR_SAMPLING).with_file_name("py-spy");
    let beside = beside.display().to_string();
    for py_spy in ["py-spy", beside.as_str()] {
        if works(py_spy) {
            return Ok(py_spy.to_owned());
        }
    }
    eprintln!("installing py-spy from PyPI (for the side-by-side sampling figures)");
    run(Command::new(PYTHON_FOR_SAMPLING).args(["-m", "pip", "install", "--quiet", "py-spy"]))
        .context("pip install py-spy")?;
    ensure!(
        works(&beside),
        "py-spy is not at {beside} after pip installed it"
    );
    Ok(beside)
}

/// The interpreter the sampling benchmark profiles (pyenv's shared build;
/// its pip also provides py-spy).
const PYTHON_FOR_SAMPLING: &str = "/root/.pyenv/versions/3.11.7/bin/python3.11";

fn python_suite(
    args: &BenchArgs,
    tracer: &Path,
    baseline: Option<&Path>,
    version: &str,
) -> Result<String> {
    let py_spy = ensure_py_spy()?;
    let mut extra = vec![
        "--python",
        PYTHON_FOR_SAMPLING,
        "--rates",
        &args.rates,
        "--py-spy",
        &py_spy,
    ];
    let baseline = baseline.map(|b| b.display().to_string());
    if let Some(baseline) = &baseline {
        extra.extend(["--baseline", baseline]);
    }
    bench_script("bench/python_sampling.py", &extra, args, tracer, version)
}

/// The native-frames figures: bench/python_sampling.py's C-heavy work.
fn native_suite(args: &BenchArgs, tracer: &Path, version: &str) -> Result<String> {
    let py_spy = ensure_py_spy()?;
    let extra = [
        "--py-spy",
        &py_spy,
        "--native",
        "--python",
        PYTHON_FOR_SAMPLING,
        "--rates",
        "99,999",
        "--rounds",
        "2000",
    ];
    bench_script("bench/python_sampling.py", &extra, args, tracer, version)
}

/// The tree and free-threaded figures (bench/python_tree.py), with the
/// interpreters `cargo xtask chroots` makes.
fn tree_suite(args: &BenchArgs, tracer: &Path, version: &str) -> Result<String> {
    for root in crate::chroots::ensure_chroots() {
        if let Err(why) = root.result {
            anyhow::bail!("{}: {why}", root.env);
        }
    }
    bench_script("bench/python_tree.py", &[], args, tracer, version)
}

/// Runs one of the Python benchmark scripts (`--runs`, `--tracer` and
/// `extra` arguments); returns its Markdown output.
fn bench_script(
    script: &str,
    extra: &[&str],
    args: &BenchArgs,
    tracer: &Path,
    version: &str,
) -> Result<String> {
    let script = repo_root().join(script);
    let output = Command::new(PYTHON)
        .arg(&script)
        .args(extra)
        .args(["--runs", &args.runs.max(3).to_string()])
        .arg("--tracer")
        .arg(tracer)
        .current_dir(repo_root())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(format!(
        "\n{}\nTracer: {version}.\n",
        String::from_utf8_lossy(&output.stdout)
    ))
}

fn render(
    args: &BenchArgs,
    variants: &[Variant],
    timings: &[Timing],
    rss: &Rss,
    version: &str,
) -> String {
    let base = &timings[0];
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Tracing overhead: {} x open+read+close of /proc/self/status\n",
        args.iterations
    );
    let _ = writeln!(md, "{}\n", machine_line());
    let _ = writeln!(md, "Tracer: {version}.\n");
    let _ = writeln!(
        md,
        "Medians of {} runs (after {WARMUP} warm-up run) timed by hyperfine. \
         *Wall* is the whole command, tracer or bpftrace start-up and teardown included; \
         *loop* is the workload's own time around its polling loop (time.perf_counter), \
         the fair per-syscall overhead figure.\n",
        args.runs
    );
    let _ = writeln!(
        md,
        "| variant | how | median wall | wall vs untraced | median loop | loop vs untraced | loop per iteration |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for (variant, timing) in variants.iter().zip(timings) {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} s | {:.2}x | {:.3} s | {:.2}x | {:.2} µs |",
            variant.name,
            variant.what,
            timing.wall_median,
            timing.wall_median / base.wall_median,
            timing.loop_median,
            timing.loop_median / base.loop_median,
            timing.loop_median / args.iterations as f64 * 1e6,
        );
    }
    let _ = writeln!(md, "\n## The tracer itself\n");
    let _ = writeln!(md, "| figure | value |");
    let _ = writeln!(md, "|---|---:|");
    let _ = writeln!(
        md,
        "| peak RSS (ru_maxrss) tracing a busy /proc poller for {} s | {:.1} MiB |",
        rss.seconds,
        rss.peak_rss_kib as f64 / 1024.0
    );
    let _ = writeln!(
        md,
        "| tracer wall time for `--duration {}` | {:.2} s |",
        rss.seconds, rss.tracer_wall
    );
    if let Some(rate) = rss.poll_rate {
        let _ = writeln!(
            md,
            "| the traced poller's rate (open+read+close of /proc/self/status) | {rate:.0} /s |"
        );
    }
    match rss.first_event_ms {
        Some(ms) => {
            let _ = writeln!(
                md,
                "| tracer start to first event (`--verbose`, attach mode) | {ms:.1} ms |"
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| tracer start to first event | not measured: the tracer printed no `first event after X ms` line with `--verbose` |"
            );
        }
    }
    let _ = writeln!(md, "\n## Commands\n");
    let _ = writeln!(md, "```");
    for variant in variants {
        let _ = writeln!(md, "{}: {}", variant.name, variant.command);
    }
    let _ = writeln!(md, "rss: {}", rss.command);
    let _ = writeln!(md, "```");
    let out_dir = rel(&target_dir().join("bench"));
    let _ = writeln!(
        md,
        "\nRun from the workspace root. Raw data in {0}/: hyperfine.json, elapsed-*.txt \
         (loop times, warm-up first), rss-tracer.stderr, rss-report.json.",
        out_dir.display()
    );
    md
}

/// `tracer --version` and the workspace's git commit (`-dirty` with local changes).
fn tracer_version(tracer: &Path) -> String {
    let version = Command::new(tracer)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match commit {
        Some(commit) => format!("{version}, built from commit {commit}"),
        None => format!("{version} (no git commit)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_lines() {
        let stderr = "[INFO ] programs attached after 120.5ms\n[INFO ] first event after 123 ms\n[INFO ] report written after 131.25ms\n";
        assert_eq!(parse_after(stderr, "first event after "), Some(123.0));
        assert_eq!(parse_after(stderr, "report written after "), Some(131.25));
        assert_eq!(
            parse_after("report written after 1.5s", "report written after "),
            Some(1500.0)
        );
        assert_eq!(parse_after(stderr, "detached after "), None);
    }
}
