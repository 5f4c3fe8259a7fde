//! `cargo xtask bench --suite scale`: a row for everything at scale (issue
//! 27), time and memory side by side with the workload untraced.
//!
//! Workloads (`tests/workloads/`): `many_files.py` reads `--files` distinct
//! files (default 100,000; the figure is 1,000,000), two reads each;
//! `many_forks.py` forks 2,000 children that exit at once. Each runs
//! untraced and under `tracer --quiet --format json`, in turn, `--runs`
//! times. A figure is the median wall time; memory is the peak resident
//! size of the tracer's process tree as `wait4` reports it (the tracer, or
//! the workload it waited for when larger: its own untraced peak is shown
//! beside it). Every traced run's report is checked: complete, nothing
//! lost, a row for each file (each child) with the workload's own figures,
//! so a drop fails the bench instead of looking cheap.

use std::{
    fmt::Write as _,
    fs,
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use crate::{
    PYTHON,
    bench_util::{machine_line, median, path, read_json},
    util::{display, repo_root},
};

/// Children of the forks workload (the figure).
const FORKS: u64 = 2_000;

/// One run: wall seconds and the peak RSS (KiB) `wait4` reported.
struct Run {
    seconds: f64,
    max_rss_kib: u64,
}

/// Runs `argv` to its end; its wall time and peak RSS.
fn run(argv: &[String]) -> Result<Run> {
    let start = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", argv.join(" ")))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own child, out-pointers valid; std's `wait` would not
    // give the rusage.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    ensure!(waited == pid, "wait4: {}", std::io::Error::last_os_error());
    // Reaped by wait4 (dropping `child` neither waits nor kills).
    drop(child);
    let status = std::process::ExitStatus::from_raw(status);
    ensure!(status.success(), "{} failed ({status})", argv.join(" "));
    Ok(Run {
        seconds,
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

/// The workload's command line and how to check a traced run's report
/// against the figures it wrote.
struct Workload {
    name: String,
    argv: Vec<String>,
    facts: std::path::PathBuf,
    check: fn(&Value, &Value, &str) -> Result<()>,
    data: String,
    /// Whether `ru_maxrss` says something of the tracer: not when the
    /// workload forks (its children's peaks come into it too).
    rss: bool,
}

pub fn scale_suite(
    tracer: &Path,
    files: u64,
    runs: u32,
    out_dir: &Path,
    version: &str,
) -> Result<String> {
    let dir = out_dir.join("scale");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = ensure_files(&dir, files)?;
    let script = |name: &str| path(&repo_root().join("tests/workloads").join(name));
    let workloads = [
        Workload {
            name: format!("{} files, read twice each", thousands(files)),
            argv: vec![
                PYTHON.into(),
                script("many_files.py"),
                path(&dir.join("files.json")),
                data.clone(),
                files.to_string(),
            ],
            facts: dir.join("files.json"),
            check: check_files,
            data: data.clone(),
            rss: true,
        },
        Workload {
            name: format!("{} forks, each exiting at once", thousands(FORKS)),
            argv: vec![
                PYTHON.into(),
                script("many_forks.py"),
                path(&dir.join("forks.json")),
                FORKS.to_string(),
            ],
            facts: dir.join("forks.json"),
            check: check_forks,
            data: String::new(),
            rss: false,
        },
    ];
    let report = dir.join("report.json");
    let mut out = String::new();
    writeln!(out, "\n## Scale: a row for everything (`--suite scale`)\n")?;
    writeln!(
        out,
        "{}; {version}; {runs} runs each, medians.\n",
        machine_line()
    )?;
    writeln!(
        out,
        "| workload | untraced | traced | ratio | peak RSS untraced | peak RSS traced | rows |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---|")?;
    for workload in &workloads {
        let mut traced_argv = vec![
            path(tracer),
            "--quiet".into(),
            "--format".into(),
            "json".into(),
            "-o".into(),
            path(&report),
            "--".into(),
        ];
        traced_argv.extend(workload.argv.iter().cloned());
        eprintln!(
            "scale: {}",
            display(Command::new(&traced_argv[0]).args(&traced_argv[1..]))
        );
        let (mut plain, mut traced) = (Vec::new(), Vec::new());
        let (mut plain_rss, mut traced_rss) = (0, 0);
        let mut rows = String::new();
        for _ in 0..runs {
            let run_plain = run(&workload.argv)?;
            plain.push(run_plain.seconds);
            plain_rss = plain_rss.max(run_plain.max_rss_kib);
            let run_traced = run(&traced_argv)?;
            traced.push(run_traced.seconds);
            traced_rss = traced_rss.max(run_traced.max_rss_kib);
            let report = read_json(&report)?;
            let facts = read_json(&workload.facts)?;
            (workload.check)(&report, &facts, &workload.data)
                .with_context(|| format!("checking the report of {}", workload.name))?;
            rows = "each exact, complete, 0 lost".into();
        }
        let (plain, traced) = (median(&mut plain), median(&mut traced));
        let mib = |kib: u64| {
            if workload.rss {
                format!("{} MiB", thousands(kib / 1024))
            } else {
                "(its children's)".to_owned()
            }
        };
        writeln!(
            out,
            "| {} | {plain:.2} s | {traced:.2} s | {:.2}x | {} | {} | {rows} |",
            workload.name,
            traced / plain,
            mib(plain_rss),
            mib(traced_rss),
        )?;
    }
    writeln!(
        out,
        "\nPeak RSS: `wait4`'s `ru_maxrss`, the largest of the process and the children it \
         waited for: traced, the tracer's own is at most that (the larger of the tracer \
         and the workload, whose own untraced figure is beside it)."
    )?;
    Ok(out)
}

/// The files, made once per count (file i holds i % 200 + 1 bytes).
fn ensure_files(dir: &Path, files: u64) -> Result<String> {
    let data = dir.join(format!("files-{files}"));
    let done = dir.join(format!("files-{files}.made"));
    if !done.exists() {
        let _ = fs::remove_dir_all(&data);
        fs::create_dir_all(&data)?;
        eprintln!("scale: creating {files} files in {}", data.display());
        let status = Command::new(PYTHON)
            .arg(repo_root().join("tests/workloads/many_files.py"))
            .args([
                path(&dir.join("create.json")),
                path(&data),
                files.to_string(),
            ])
            .arg("--create")
            .status()
            .context("running many_files.py --create")?;
        ensure!(status.success(), "many_files.py --create failed ({status})");
        fs::write(&done, "")?;
    }
    Ok(path(&data))
}

/// 1000000 as "1,000,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn complete(report: &Value) -> Result<()> {
    ensure!(
        report["complete"] == true && report["events"]["lost"] == 0,
        "the report is not complete: {}",
        report["events"]
    );
    Ok(())
}

fn check_files(report: &Value, facts: &Value, data: &str) -> Result<()> {
    complete(report)?;
    let pid = &facts["pid"];
    let prefix = format!("{data}/");
    let rows: std::collections::HashMap<&str, &Value> = report["reads"]
        .as_array()
        .context("no reads")?
        .iter()
        .filter(|r| &r["pid"] == pid && r["path"].as_str().is_some_and(|p| p.starts_with(&prefix)))
        .map(|r| (r["path"].as_str().unwrap_or_default(), r))
        .collect();
    let bytes = facts["bytes"].as_object().context("no bytes")?;
    ensure!(
        rows.len() == bytes.len(),
        "{} rows for {} files",
        rows.len(),
        bytes.len()
    );
    for (file, want) in bytes {
        let Some(row) = rows.get(file.as_str()) else {
            bail!("no row for {file}");
        };
        ensure!(
            row["bytes"] == *want && row["syscalls"] == facts["reads_per_file"],
            "{file}: {row}"
        );
    }
    Ok(())
}

fn check_forks(report: &Value, facts: &Value, _: &str) -> Result<()> {
    complete(report)?;
    let threads = report["sched"]["threads"]
        .as_array()
        .context("no threads")?;
    let rows: std::collections::HashSet<&Value> = threads.iter().map(|t| &t["pid"]).collect();
    let children = facts["children"].as_array().context("no children")?;
    for child in children {
        ensure!(
            rows.contains(&child[0]),
            "child {} has no scheduling row",
            child[0]
        );
    }
    let processes = report["processes"].as_array().context("no processes")?;
    let exits: std::collections::HashMap<&Value, &Value> = processes
        .iter()
        .map(|p| (&p["pid"], &p["exit_code"]))
        .collect();
    for child in children {
        ensure!(
            exits.get(&child[0]) == Some(&&child[1]),
            "child {}: exit code {:?}, not {}",
            child[0],
            exits.get(&child[0]),
            child[1]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(1_000_000), "1,000,000");
        assert_eq!(super::thousands(2_000), "2,000");
        assert_eq!(super::thousands(999), "999");
    }
}
