//! `cargo xtask bench --suite io` (or `reads`): what the tracer adds to a
//! file read, a socket read, a file write, a pipe write and a socket send,
//! side by side in one run (issue 26: "a socket read costs what a file read
//! costs"; issue 47: "writes cost what reads cost per syscall"; all go
//! through `tracer-ebpf/src/io.rs`).
//!
//! Workload: `xtask/bench/io.py`, N 1-byte reads of each kind (a regular
//! file by `read` and `pread64`; a socketpair by `recv`, `recv_into`, `read`
//! and `recvmsg`; loopback TCP by `recv`), N 1-byte writes of each kind (a
//! regular file by `write` and `pwrite64`, a pipe by `write`, loopback TCP
//! by `send`) and N `getppid` calls (a syscall that is neither), in rounds
//! that interleave the kinds, each timed by
//! the workload itself. Variants (untraced, the tracer, the kernel's floor
//! of empty programs on the tracer's hooks, `strace -c -f`) run in turn, the
//! order rotated every run. A figure is the median ns per read over every
//! round of every run (a round preempted by the machine's other work is an
//! outlier, not a shift of the whole run); *added* is a variant's median
//! minus untraced's. Every tracer run's JSON
//! report is checked against the reads the workload made, so a kind that is
//! not traced fails the bench instead of looking free.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;

use crate::{
    PYTHON,
    bench_util::{machine_line, median, path, read_json, rel},
    util::{display, repo_root},
};

/// The kinds the workload times, in its order, with the syscall each makes
/// and whether it reads a socket.
const KINDS: &[(&str, &str)] = &[
    ("file read", "`os.read(fd, 1)`: read"),
    ("file pread", "`os.pread(fd, 1, 0)`: pread64"),
    ("unix read", "`os.read(sock.fileno(), 1)`: read"),
    ("unix recv", "`sock.recv(1)`: recvfrom"),
    ("unix recv_into", "`sock.recv_into(buf, 1)`: recvfrom"),
    ("unix recvmsg", "`sock.recvmsg(1)`: recvmsg"),
    ("tcp recv", "`sock.recv(1)`, loopback TCP: recvfrom"),
    ("file write", "`os.write(fd, b\"x\")`: write"),
    ("file pwrite", "`os.pwrite(fd, b\"x\", 0)`: pwrite64"),
    ("pipe write", "`os.write(pipe, b\"x\")`: write"),
    ("tcp send", "`sock.send(b\"x\")`, loopback TCP: sendto"),
    ("getppid", "`os.getppid()`: neither a read nor a write"),
];

/// strace stops the process on every syscall (~30 µs each here): it does a
/// tenth of the reads, so the suite stays short; its figures are per read
/// all the same.
const STRACE_SHARE: u64 = 10;
const ROUNDS: u64 = 20;
const WARMUP: u32 = 1;

struct Variant {
    name: String,
    what: &'static str,
    argv: Vec<String>,
    /// The workload's timings (`--out`).
    out: PathBuf,
    /// The tracer's JSON report and the workload's own counts to check it by.
    report: Option<(PathBuf, PathBuf)>,
    reads: u64,
}

impl Variant {
    fn command(&self) -> String {
        display(Command::new(&self.argv[0]).args(&self.argv[1..]))
    }
}

fn variants(
    tracer: &Path,
    baseline: Option<&Path>,
    strace: bool,
    dir: &Path,
    reads: u64,
) -> Vec<Variant> {
    let script = repo_root().join("xtask/bench/io.py");
    let workload = |name: &str, reads: u64, counts: Option<&Path>| {
        let mut argv = vec![
            PYTHON.to_string(),
            path(&script),
            "--reads".into(),
            reads.to_string(),
            "--rounds".into(),
            ROUNDS.to_string(),
            "--out".into(),
            path(&dir.join(format!("out-{name}.json"))),
        ];
        if let Some(counts) = counts {
            argv.extend(["--counts".into(), path(counts)]);
        }
        argv
    };
    let traced = |name: &str, binary: &Path, extra: &[&str], what: &'static str| {
        let report = dir.join(format!("report-{name}.json"));
        let counts = dir.join(format!("counts-{name}.json"));
        let mut argv = vec![path(binary), "--quiet".into()];
        argv.extend(extra.iter().map(|arg| arg.to_string()));
        argv.extend([
            "--format".into(),
            "json".into(),
            "-o".into(),
            path(&report),
            "--".into(),
        ]);
        argv.extend(workload(name, reads, Some(&counts)));
        Variant {
            name: name.into(),
            what,
            argv,
            out: dir.join(format!("out-{name}.json")),
            report: Some((report, counts)),
            reads,
        }
    };
    let plain = |name: &str, what: &'static str, prefix: Vec<String>, reads: u64| {
        let mut argv = prefix;
        argv.extend(workload(name, reads, None));
        Variant {
            name: name.into(),
            what,
            argv,
            out: dir.join(format!("out-{name}.json")),
            report: None,
            reads,
        }
    };
    let xtask = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("xtask"));
    let mut variants = vec![
        plain("untraced", "python3.11 alone", vec![], reads),
        traced(
            "tracer",
            tracer,
            &[],
            "`tracer --quiet --format json -o REPORT --`",
        ),
        // The read path without its Python stack (one read in 16 by default).
        traced(
            "no-read-stacks",
            tracer,
            &["--read-stacks", "0"],
            "the same with `--read-stacks 0`: no Python stack on any read or write",
        ),
    ];
    if let Some(baseline) = baseline {
        variants.push(traced(
            "tracer-baseline",
            baseline,
            &[],
            "the same as tracer, with the `--baseline` binary",
        ));
    }
    variants.push(plain(
        "floor",
        "`xtask bench-floor --`: empty programs on the tracer's raw tracepoints",
        vec![path(&xtask), "bench-floor".into(), "--".into()],
        reads,
    ));
    if strace {
        let strace_reads = (reads / STRACE_SHARE / ROUNDS).max(1) * ROUNDS;
        variants.push(plain(
            "strace",
            "`strace -c -f` (a tenth of the reads)",
            vec![
                "strace".into(),
                "-c".into(),
                "-f".into(),
                "-o".into(),
                path(&dir.join("strace-c.txt")),
                "--".into(),
            ],
            strace_reads,
        ));
    }
    variants
}

/// ns per read of each kind (in `KINDS` order), one per round, from one
/// run of the workload.
type Run = Vec<Vec<f64>>;

fn run_once(variant: &Variant) -> Result<Run> {
    let _ = fs::remove_file(&variant.out);
    let out = Command::new(&variant.argv[0])
        .args(&variant.argv[1..])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", variant.command()))?;
    ensure!(
        out.status.success(),
        "{} failed ({}):\n{}{}",
        variant.command(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let timings = read_json(&variant.out)?;
    let per_round = variant.reads / ROUNDS;
    ensure!(
        timings["reads_per_round"].as_u64() == Some(per_round),
        "{}: the workload did {} reads of each kind per round, not {per_round}",
        variant.name,
        timings["reads_per_round"],
    );
    let ns = KINDS
        .iter()
        .map(|(kind, _)| {
            let rounds = timings["seconds"][kind]
                .as_array()
                .with_context(|| format!("{}: no times for {kind:?}", variant.out.display()))?;
            ensure!(
                rounds.len() as u64 == ROUNDS,
                "{kind}: {} rounds",
                rounds.len()
            );
            rounds
                .iter()
                .map(|s| {
                    let s = s.as_f64().context("a round's time is not a number")?;
                    Ok(s / per_round as f64 * 1e9)
                })
                .collect()
        })
        .collect::<Result<Run>>()?;
    if let Some((report, counts)) = &variant.report {
        check_report(&read_json(report)?, &read_json(counts)?)
            .with_context(|| format!("{}: the reads are not all traced", variant.command()))?;
    }
    Ok(ns)
}

/// Every read and write the workload made (`counts`: per file or socket
/// and direction, the syscalls by name and the bytes) is in the tracer's
/// `reads[]` or `writes[]`, exactly.
fn check_report(report: &Value, counts: &Value) -> Result<()> {
    let lost = &report["events"]["dropped"];
    for expected in counts.as_array().context("counts: not a list")? {
        let list = expected["rows"].as_str().unwrap_or("reads");
        let rows = report[list]
            .as_array()
            .with_context(|| format!("the report has no `{list}`"))?;
        let wanted = expected["match"]
            .as_object()
            .context("counts: no `match`")?;
        let row = rows
            .iter()
            .find(|row| wanted.iter().all(|(key, value)| &row[key] == value))
            .with_context(|| {
                format!(
                    "no row of the report's {list}[] is {}; dropped: {lost}",
                    Value::Object(wanted.clone())
                )
            })?;
        ensure!(
            row["by_syscall"] == expected["by_syscall"] && row["bytes"] == expected["bytes"],
            "{}: the workload made {} ({} bytes), the report says {} ({} bytes); dropped: {lost}",
            row["path"],
            expected["by_syscall"],
            expected["bytes"],
            row["by_syscall"],
            row["bytes"]
        );
    }
    Ok(())
}

pub fn io_suite(
    tracer: &Path,
    baseline: Option<&Path>,
    strace: bool,
    reads: u64,
    runs: u32,
    out_dir: &Path,
    version: &str,
) -> Result<String> {
    ensure!(
        reads >= ROUNDS * STRACE_SHARE,
        "--reads must be at least {}",
        ROUNDS * STRACE_SHARE
    );
    let reads = reads / ROUNDS * ROUNDS;
    let dir = out_dir.join("io");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let load_before = loadavg();

    // Preflight: each variant once on a small run, with its output shown if
    // it fails, and the tracer's report checked against the workload.
    let check_dir = dir.join("preflight");
    fs::create_dir_all(&check_dir)?;
    for variant in variants(tracer, baseline, strace, &check_dir, 1000) {
        eprintln!("preflight: {}", variant.command());
        run_once(&variant)?;
    }
    eprintln!("preflight: the tracer's report counts every read of every kind");

    let variants = variants(tracer, baseline, strace, &dir, reads);
    let mut results: Vec<Vec<Run>> = vec![vec![]; variants.len()];
    for run in 0..WARMUP + runs {
        // Rotated each run, so no variant always follows the same one.
        let n = variants.len();
        for i in (0..n).map(|i| (i + run as usize) % n) {
            let ns = run_once(&variants[i])?;
            if run >= WARMUP {
                results[i].push(ns);
            }
        }
        eprintln!("io: run {}/{} done", run + 1, WARMUP + runs);
    }
    let load_after = loadavg();
    Ok(render(
        &variants,
        &results,
        reads,
        runs,
        (&load_before, &load_after),
        version,
    ))
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|_| "?".into())
}

/// The median ns per read of `kind` under variant `v`, over every round
/// of every run.
fn ns_per_read(results: &[Vec<Run>], v: usize, kind: usize) -> f64 {
    let mut all: Vec<f64> = results[v]
        .iter()
        .flat_map(|run| run[kind].iter().copied())
        .collect();
    median(&mut all)
}

fn render(
    variants: &[Variant],
    results: &[Vec<Run>],
    reads: u64,
    runs: u32,
    load: (&str, &str),
    version: &str,
) -> String {
    let find = |name: &str| variants.iter().position(|v| v.name == name);
    let tracer = find("tracer").expect("the tracer is a variant");
    let floor = find("floor").expect("the floor is a variant");
    let others: Vec<usize> = (1..variants.len()).filter(|&v| v != tracer).collect();
    let added =
        |v: usize, kind: usize| ns_per_read(results, v, kind) - ns_per_read(results, 0, kind);
    let file_read = 0;

    let mut md = String::new();
    let _ = writeln!(
        md,
        "## I/O: reads and writes of files, pipes and sockets, side by side ({reads} 1-byte calls of each kind)\n"
    );
    let _ = writeln!(md, "{}\n", machine_line());
    let _ = writeln!(md, "Tracer: {version}.\n");
    let _ = writeln!(
        md,
        "Load average {} before, {} after. {runs} runs (after {WARMUP} warm-up run), the variants \
         in turn; inside each run the kinds interleaved in {ROUNDS} rounds of {} calls, each \
         round timed by the workload. ns per call: the median over the {} rounds of all runs; \
         *added*: a variant's median minus untraced's. Every tracer run's JSON report counted \
         every read and write of every kind, exactly.\n",
        load.0,
        load.1,
        reads / ROUNDS,
        u64::from(runs) * ROUNDS
    );
    let mut header = String::from(
        "| kind | call: syscall | untraced | tracer | added by the tracer | vs a file read |",
    );
    let mut rule = String::from("|---|---|---:|---:|---:|---:|");
    for &v in &others {
        let _ = write!(header, " {}: added |", variants[v].name);
        rule.push_str("---:|");
    }
    header.push_str(" tracer above the floor |");
    rule.push_str("---:|");
    let _ = writeln!(md, "{header}\n{rule}");
    for (k, (kind, call)) in KINDS.iter().enumerate() {
        let _ = write!(
            md,
            "| {kind} | {call} | {:.0} ns | {:.0} ns | {:+.0} ns | {:.2}x |",
            ns_per_read(results, 0, k),
            ns_per_read(results, tracer, k),
            added(tracer, k),
            added(tracer, k) / added(tracer, file_read)
        );
        for &v in &others {
            let _ = write!(md, " {:+.0} ns |", added(v, k));
        }
        let _ = writeln!(md, " {:+.0} ns |", added(tracer, k) - added(floor, k));
    }
    let _ = writeln!(md, "\n## Commands\n");
    let _ = writeln!(md, "```");
    for variant in variants {
        let _ = writeln!(md, "{}: {}", variant.name, variant.command());
    }
    let _ = writeln!(md, "```");
    for variant in variants {
        let _ = writeln!(md, "- {}: {}", variant.name, variant.what);
    }
    let _ = writeln!(
        md,
        "\nRun from the workspace root. Raw data in {}/: out-*.json (the last run's \
         seconds per round and kind), report-*.json (the last tracer report), strace-c.txt.",
        variants[0]
            .out
            .parent()
            .map(rel)
            .unwrap_or_default()
            .display()
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_are_checked_in_the_write_rows() {
        let counts = json!([
            {"match": {"path": "pipe:[7]"}, "rows": "writes",
             "by_syscall": {"write": 4}, "bytes": 4}
        ]);
        let report = |list: &str| {
            json!({"events": {"dropped": {}}, "reads": [], "writes": [],
                   list: [{"path": "pipe:[7]", "by_syscall": {"write": 4}, "bytes": 4}]})
        };
        assert!(check_report(&report("writes"), &counts).is_ok());
        assert!(check_report(&report("reads"), &counts).is_err());
    }

    #[test]
    fn report_is_checked_against_the_workload() {
        let counts = json!([
            {"match": {"kind": "socket", "protocol": "unix"},
             "by_syscall": {"recvfrom": 2, "read": 1}, "bytes": 3}
        ]);
        let row = |by_syscall: Value| {
            json!({"events": {"dropped": {}}, "reads": [
                {"kind": "file", "path": "/x", "by_syscall": {"read": 9}, "bytes": 9},
                {"kind": "socket", "protocol": "unix", "path": "unix (unnamed)",
                 "by_syscall": by_syscall, "bytes": 3}
            ]})
        };
        assert!(check_report(&row(json!({"read": 1, "recvfrom": 2})), &counts).is_ok());
        assert!(check_report(&row(json!({"read": 3})), &counts).is_err());
        let no_socket = json!({"reads": [{"kind": "file", "path": "/x"}]});
        assert!(check_report(&no_socket, &counts).is_err());
    }
}
