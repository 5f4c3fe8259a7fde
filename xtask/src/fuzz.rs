//! `cargo xtask fuzz`: runs the fuzz targets in `fuzz/` (libFuzzer through
//! cargo-fuzz, on the nightly toolchain `setup` installs) for a while each,
//! and sums up executions, coverage and findings. A crash fails the run;
//! libFuzzer leaves the input under `fuzz/artifacts/TARGET/`, to be kept as
//! a regression unit test of the parser it broke.

use std::process::Stdio;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::{
    setup,
    util::{display, output, repo_root, run, tool_command},
};

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Targets to run (default: all of them).
    targets: Vec<String>,
}

/// What one target's run gave.
struct Outcome {
    target: String,
    executions: u64,
    coverage: u64,
    crashed: bool,
}

pub fn fuzz(args: &FuzzArgs) -> Result<()> {
    setup::setup()?;
    ensure_cargo_fuzz()?;
    let dir = repo_root().join("fuzz");
    let targets = if args.targets.is_empty() {
        list_targets()?
    } else {
        args.targets.clone()
    };
    let mut outcomes = Vec::new();
    for target in &targets {
        let mut cmd = tool_command("cargo");
        cmd.current_dir(&dir).args([
            "+nightly",
            "fuzz",
            "run",
            "-O",
            target,
            "--",
            &format!("-max_total_time={}", args.seconds),
            "-print_final_stats=1",
        ]);
        eprintln!("$ {}", display(&cmd));
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running fuzz target {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let outcome = outcome(target, &log, out.status.success());
        if outcome.crashed {
            eprintln!("{log}");
        }
        outcomes.push(outcome);
    }
    println!(
        "{:<16} {:>14} {:>10}  result",
        "target", "executions", "coverage"
    );
    for o in &outcomes {
        println!(
            "{:<16} {:>14} {:>10}  {}",
            o.target,
            o.executions,
            o.coverage,
            if o.crashed {
                "CRASH (input in fuzz/artifacts)"
            } else {
                "no finding"
            }
        );
    }
    if outcomes.iter().any(|o| o.crashed) {
        bail!("a fuzz target found a crash");
    }
    Ok(())
}

/// Executions and edge coverage from libFuzzer's last status line
/// (`#123456 DONE cov: 244 ft: 268 ...`).
fn outcome(target: &str, log: &str, succeeded: bool) -> Outcome {
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(" cov: "))
        .unwrap_or("");
    let executions = last
        .trim_start_matches('#')
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let coverage = last
        .split_once(" cov: ")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Outcome {
        target: target.to_owned(),
        executions,
        coverage,
        crashed: !succeeded,
    }
}

fn list_targets() -> Result<Vec<String>> {
    let mut cmd = tool_command("cargo");
    cmd.current_dir(repo_root().join("fuzz"))
        .args(["+nightly", "fuzz", "list"]);
    let out = output(&mut cmd).context("cargo fuzz list")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// cargo-fuzz from crates.io, once.
fn ensure_cargo_fuzz() -> Result<()> {
    let mut probe = tool_command("cargo");
    probe.args(["fuzz", "--version"]);
    if output(&mut probe).is_some_and(|o| o.status.success()) {
        eprintln!("ok cargo-fuzz");
        return Ok(());
    }
    eprintln!("installing cargo-fuzz (cargo install, about 2 minutes once)");
    run(tool_command("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_line() {
        let log = "INFO: Seed: 1\n#2\tINITED cov: 5 ft: 5 corp: 1/1b\n\
                   #3696376\tDONE   cov: 244 ft: 268 corp: 60/8889b lim: 4096 exec/s: 176017\n\
                   Done 3696376 runs in 21 second(s)\n";
        let o = outcome("ring_records", log, true);
        assert_eq!(
            (o.executions, o.coverage, o.crashed),
            (3_696_376, 244, false)
        );
        let o = outcome("elf", "==1== ERROR: libFuzzer: deadly signal\n", false);
        assert_eq!((o.executions, o.crashed), (0, true));
    }
}
