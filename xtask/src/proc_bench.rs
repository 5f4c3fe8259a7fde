//! `cargo xtask bench --suite proc`'s variants and measurements: the
//! commands timed side by side on `xtask/bench/proc_poll.py` (untraced,
//! the tracer, strace, bpftrace, the kernel's floor...), a preflight run of
//! each, hyperfine's timings next to the workload's own loop times, and the
//! tracer's peak RSS on a busy poller. `bench` renders the table.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{
    PYTHON,
    bench_util::{median, path},
    util::{display, repo_root, run, shell_quote, tool_command},
};

pub const WARMUP: u32 = 1;

pub struct Variant {
    pub name: &'static str,
    /// What it is, for the table.
    pub what: &'static str,
    /// The command line, as given to hyperfine (no shell).
    pub command: String,
    elapsed_file: PathBuf,
}

pub struct Timing {
    pub wall_median: f64,
    pub loop_median: f64,
}

fn workload(script: &Path, iterations: u64, elapsed_file: &Path) -> String {
    format!(
        "{PYTHON} {} --iterations {iterations} --elapsed-file {}",
        path(script),
        path(elapsed_file)
    )
}

pub fn variants(
    tracer: &Path,
    baseline: Option<&Path>,
    script: &Path,
    bt: &Path,
    out_dir: &Path,
    iterations: u64,
) -> Vec<Variant> {
    let elapsed = |name: &str| out_dir.join(format!("elapsed-{name}.txt"));
    let untraced = elapsed("untraced");
    let traced = elapsed("tracer");
    let timelined = elapsed("tracer-perfetto");
    let straced = elapsed("strace");
    let bpftraced = elapsed("bpftrace");
    let emptied = elapsed("bpftrace-empty");
    let empty_bt = bt.with_file_name("empty_probes.bt");
    let floored = elapsed("floor");
    let besided = elapsed("beside-tracer");
    let besided_baseline = elapsed("beside-baseline");
    let baseline_binary = baseline;
    let xtask = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("xtask"));
    let baselined = elapsed("tracer-baseline");
    let baseline = baseline.map(|baseline| Variant {
        name: "tracer-baseline",
        what: "the same, with the `--baseline` binary",
        command: format!(
            "{} --format json -o /dev/null -- {}",
            path(baseline),
            workload(script, iterations, &baselined)
        ),
        elapsed_file: baselined,
    });
    let mut variants = vec![
        Variant {
            name: "untraced",
            what: "python3.11 alone",
            command: workload(script, iterations, &untraced),
            elapsed_file: untraced,
        },
        Variant {
            name: "tracer",
            what: "`tracer --format json -o /dev/null --`",
            command: format!(
                "{} --format json -o /dev/null -- {}",
                path(tracer),
                workload(script, iterations, &traced)
            ),
            elapsed_file: traced,
        },
        Variant {
            name: "tracer-perfetto",
            what: "the same with `--perfetto /dev/null`: every read and context switch sent to userspace for the timeline",
            command: format!(
                "{} --format json -o /dev/null --perfetto /dev/null -- {}",
                path(tracer),
                workload(script, iterations, &timelined)
            ),
            elapsed_file: timelined,
        },
        Variant {
            name: "strace",
            what: "`strace -f -o /dev/null`",
            command: format!(
                "strace -f -o /dev/null {}",
                workload(script, iterations, &straced)
            ),
            elapsed_file: straced,
        },
        Variant {
            name: "bpftrace",
            what: "`bpftrace -c ... xtask/bench/proc_poll.bt`",
            command: format!(
                "bpftrace -o /dev/null -c {} {}",
                shell_quote(&workload(script, iterations, &bpftraced)),
                path(bt)
            ),
            elapsed_file: bpftraced,
        },
        Variant {
            name: "bpftrace-empty",
            what: "`bpftrace -c ... xtask/bench/empty_probes.bt`: empty programs on perf-event tracepoints of the same syscalls (the floor of bpftrace's mechanism)",
            command: format!(
                "bpftrace -o /dev/null -c {} {}",
                shell_quote(&workload(script, iterations, &emptied)),
                path(&empty_bt)
            ),
            elapsed_file: emptied,
        },
        Variant {
            name: "floor",
            what: "`xtask bench-floor`: empty programs on the tracer's own raw tracepoints (the kernel's floor under the tracer)",
            command: format!(
                "{} bench-floor -- {}",
                path(&xtask),
                workload(script, iterations, &floored)
            ),
            elapsed_file: floored,
        },
        Variant {
            name: "beside-tracer",
            what: "`xtask bench-beside`: untraced, while `tracer --pid` traces an idle process (the host-wide tax; compare with floor)",
            command: format!(
                "{} bench-beside -- {} --format json -o /dev/null -- {}",
                path(&xtask),
                path(tracer),
                workload(script, iterations, &besided)
            ),
            elapsed_file: besided,
        },
    ];
    if let Some(baseline) = baseline {
        variants.insert(2, baseline);
    }
    if let Some(baseline_binary) = baseline_binary {
        variants.push(Variant {
            name: "beside-baseline",
            what: "the same, beside the `--baseline` binary",
            command: format!(
                "{} bench-beside -- {} --format json -o /dev/null -- {}",
                path(&xtask),
                path(baseline_binary),
                workload(script, iterations, &besided_baseline)
            ),
            elapsed_file: besided_baseline,
        });
    }
    variants
}

/// Run each variant once on a small workload with its output visible on
/// failure: hyperfine hides the output of the commands it times.
pub fn preflight(
    timed: &[Variant],
    tracer: &Path,
    baseline: Option<&Path>,
    script: &Path,
    bt: &Path,
    out_dir: &Path,
) -> Result<()> {
    let check_dir = out_dir.join("preflight");
    fs::create_dir_all(&check_dir)?;
    for variant in variants(tracer, baseline, script, bt, &check_dir, 1000)
        .into_iter()
        .filter(|v| timed.iter().any(|t| t.name == v.name))
    {
        let _ = fs::remove_file(&variant.elapsed_file);
        eprintln!("preflight: {}", variant.command);
        let out = Command::new("sh")
            .arg("-c")
            .arg(&variant.command)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", variant.command))?;
        if !out.status.success() {
            bail!(
                "preflight of {} failed ({}):\n{}{}",
                variant.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let lines = read_elapsed(&variant.elapsed_file)?;
        ensure!(
            lines.len() == 1,
            "preflight of {}: the workload did not record its loop time in {}",
            variant.name,
            variant.elapsed_file.display()
        );
    }
    Ok(())
}

fn read_elapsed(file: &Path) -> Result<Vec<f64>> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.trim()
                .parse::<f64>()
                .with_context(|| format!("bad line {line:?} in {}", file.display()))
        })
        .collect()
}

pub fn time_variants(variants: &[Variant], out_dir: &Path, runs: u32) -> Result<Vec<Timing>> {
    for variant in variants {
        let _ = fs::remove_file(&variant.elapsed_file);
    }
    let json = out_dir.join("hyperfine.json");
    let mut cmd = tool_command("hyperfine");
    cmd.args(["--shell=none", "--style", "basic"])
        .args(["--warmup", &WARMUP.to_string(), "--runs", &runs.to_string()])
        .arg("--export-json")
        .arg(&json)
        .arg("--export-markdown")
        .arg(out_dir.join("hyperfine.md"));
    for variant in variants {
        cmd.args(["--command-name", variant.name, &variant.command]);
    }
    run(&mut cmd)?;

    let exported: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?,
    )
    .with_context(|| format!("parsing {}", json.display()))?;
    let results = exported["results"]
        .as_array()
        .context("hyperfine JSON has no `results`")?;
    ensure!(
        results.len() == variants.len(),
        "hyperfine JSON: expected {} results",
        variants.len()
    );

    let mut timings = Vec::new();
    for (variant, result) in variants.iter().zip(results) {
        let wall_median = result["median"]
            .as_f64()
            .context("hyperfine JSON result has no `median`")?;
        // The workload appends one line per run: warm-up run(s) first.
        let mut loops = read_elapsed(&variant.elapsed_file)?;
        ensure!(
            loops.len() == (WARMUP + runs) as usize,
            "{}: expected {} loop times in {}, found {}",
            variant.name,
            WARMUP + runs,
            variant.elapsed_file.display(),
            loops.len()
        );
        let loop_median = median(&mut loops[WARMUP as usize..]);
        timings.push(Timing {
            wall_median,
            loop_median,
        });
    }
    Ok(timings)
}

pub struct Rss {
    pub seconds: u64,
    pub peak_rss_kib: i64,
    pub tracer_wall: f64,
    /// Polls per second of the traced workload, over its whole run.
    pub poll_rate: Option<f64>,
    pub first_event_ms: Option<f64>,
    pub command: String,
}

/// Trace a busy polling process for `seconds` and take the tracer's peak RSS
/// from wait4's rusage (ru_maxrss: the VmHWM the tracer had when it exited).
pub fn measure_rss(tracer: &Path, script: &Path, out_dir: &Path, seconds: u64) -> Result<Rss> {
    // The workload outlives the trace; it is stopped (SIGTERM) once the tracer is done.
    let workload_seconds = seconds + 30;
    let mut workload = Command::new(PYTHON)
        .arg(script)
        .args(["--seconds", &workload_seconds.to_string(), "--ready"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the polling workload")?;
    let mut ready = String::new();
    BufReader::new(workload.stdout.take().expect("piped"))
        .read_line(&mut ready)
        .context("waiting for the workload to start polling")?;
    if ready.trim() != "ready" {
        let _ = workload.kill();
        bail!("the polling workload did not start (printed {ready:?})");
    }

    let stderr_file = out_dir.join("rss-tracer.stderr");
    let report_file = out_dir.join("rss-report.json");
    let mut cmd = Command::new(tracer);
    cmd.arg("--pid")
        .arg(workload.id().to_string())
        .args([
            "--duration",
            &seconds.to_string(),
            "--format",
            "json",
            "--verbose",
            "-o",
        ])
        .arg(&report_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_file)?);
    let command = display(&cmd);
    eprintln!("$ {command}  (peak RSS over {seconds} s)");
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {command}"));
    let child = match child {
        Ok(child) => child,
        Err(err) => {
            let _ = workload.kill();
            return Err(err);
        }
    };
    let waited = wait4(child.id() as libc::pid_t);
    let tracer_wall = start.elapsed().as_secs_f64();

    // SIGTERM: the workload stops polling and prints "polls N seconds T".
    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    unsafe { libc::kill(workload.id() as libc::pid_t, libc::SIGTERM) };
    let workload_out = workload.wait_with_output()?;
    let poll_rate = String::from_utf8_lossy(&workload_out.stderr)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next()?, words.next()?, words.next()?, words.next()?) {
                ("polls", polls, "seconds", secs) => {
                    Some(polls.parse::<f64>().ok()? / secs.parse::<f64>().ok()?)
                }
                _ => None,
            }
        });

    let stderr = fs::read_to_string(&stderr_file).unwrap_or_default();
    let (status, rusage) = waited?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{command} failed (wait status {status:#x}); its stderr:\n{stderr}");
    }
    Ok(Rss {
        seconds,
        peak_rss_kib: rusage.ru_maxrss,
        tracer_wall,
        poll_rate,
        first_event_ms: parse_first_event(&stderr),
        command,
    })
}

/// Wait for our child `pid`; its wait status and resource usage.
fn wait4(pid: libc::pid_t) -> Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; zeroes are a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if rc == pid {
            return Ok((status, rusage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 on the tracer");
        }
    }
}

/// The `first event after X ms` line the tracer prints with `--verbose`.
fn parse_first_event(stderr: &str) -> Option<f64> {
    stderr.lines().find_map(|line| {
        let rest = &line[line.find("first event after ")? + "first event after ".len()..];
        let number = rest.split_whitespace().next()?;
        let unit = rest.split_whitespace().nth(1).unwrap_or("ms");
        let value: f64 = number.trim_end_matches("ms").parse().ok()?;
        Some(match unit {
            "s" => value * 1000.0,
            "us" | "µs" => value / 1000.0,
            _ => value,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_line() {
        assert_eq!(
            parse_first_event("tracer: first event after 12.5 ms\n"),
            Some(12.5)
        );
        assert_eq!(parse_first_event("x\nfirst event after 3ms\n"), Some(3.0));
        assert_eq!(parse_first_event("first event after 0.2 s"), Some(200.0));
        assert_eq!(parse_first_event("attached 12 programs\n"), None);
    }
}
