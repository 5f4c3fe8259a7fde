//! `cargo xtask bench --suite dist`: the static binary of `cargo xtask
//! dist` beside the dynamic `target/release/tracer`: size on disk, and
//! start-up (`--version`: process start alone; a trace of /bin/true: start,
//! attach, report, detach), timed by hyperfine.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::{Context as _, Result, ensure};

use crate::{
    bench_util::{machine_line, path},
    util::{run, tool_command},
};

pub fn dist_suite(dynamic: &Path, fixed: &Path, runs: u32, out_dir: &Path) -> Result<String> {
    let runs = runs.max(20);
    let builds = [("dynamic", dynamic), ("static", fixed)];
    let mut commands = Vec::new();
    for (what, args) in [
        ("--version", "--version".to_string()),
        (
            "trace /bin/true",
            "--quiet --format json -o /dev/null -- /bin/true".to_string(),
        ),
    ] {
        for (build, binary) in builds {
            commands.push((what, build, format!("{} {args}", path(binary))));
        }
    }
    let json = out_dir.join("dist.json");
    let mut cmd = tool_command("hyperfine");
    cmd.args(["--shell=none", "--style", "basic", "--output", "null"])
        .args(["--warmup", "3", "--runs", &runs.to_string()])
        .arg("--export-json")
        .arg(&json);
    for (what, build, command) in &commands {
        cmd.args(["--command-name", &format!("{build} {what}"), command]);
    }
    run(&mut cmd)?;
    let exported: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?,
    )?;
    let results = exported["results"]
        .as_array()
        .context("hyperfine JSON has no `results`")?;
    ensure!(
        results.len() == commands.len(),
        "hyperfine JSON: missing results"
    );

    let mut md = String::new();
    let _ = writeln!(md, "## Static and dynamic builds\n");
    let _ = writeln!(md, "{}\n", machine_line());
    let _ = writeln!(md, "| build | binary | size |");
    let _ = writeln!(md, "|---|---|---:|");
    for (build, binary) in builds {
        let size = fs::metadata(binary)
            .with_context(|| format!("{}", binary.display()))?
            .len();
        let _ = writeln!(
            md,
            "| {build} | `{}` | {:.2} MiB ({size} bytes) |",
            path(binary),
            size as f64 / 1048576.0
        );
    }
    let _ = writeln!(
        md,
        "\nMedians (and min) of {runs} runs of each after 3 warm-up runs, timed by hyperfine:\n"
    );
    let _ = writeln!(md, "| command | median | min | static vs dynamic |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (i, ((_, _, command), result)) in commands.iter().zip(results).enumerate() {
        let median = result["median"].as_f64().unwrap_or(f64::NAN);
        let min = result["min"].as_f64().unwrap_or(f64::NAN);
        // Rows go dynamic, static per command: the ratio is on the static row.
        let ratio = if i % 2 == 1 {
            let dynamic = results[i - 1]["median"].as_f64().unwrap_or(f64::NAN);
            format!("{:.2}x", median / dynamic)
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| `{command}` | {:.2} ms | {:.2} ms | {ratio} |",
            median * 1000.0,
            min * 1000.0
        );
    }
    Ok(md)
}
