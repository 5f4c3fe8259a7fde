//! `cargo xtask bench --suite dist`: the static binary of `cargo xtask
//! dist` beside the dynamic `target/release/tracer`: size on disk, and
//! start-up (`--version`: process start alone; a trace of /bin/true: start,
//! attach, report, detach), the two builds run in turn.

use std::{
    fmt::Write as _,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, ensure};

use crate::bench_util::{machine_line, median, path};

pub fn dist_suite(dynamic: &Path, fixed: &Path, runs: u32) -> Result<String> {
    let runs = runs.max(20);
    let builds = [("dynamic", dynamic), ("static", fixed)];
    let forms: [&[&str]; 2] = [
        &["--version"],
        &[
            "--quiet",
            "--format",
            "json",
            "-o",
            "/dev/null",
            "--",
            "/bin/true",
        ],
    ];
    // (command line, wall times in seconds), dynamic then static per form.
    let mut commands: Vec<(Vec<String>, Vec<f64>)> = forms
        .iter()
        .flat_map(|args| {
            builds.iter().map(move |(_, binary)| {
                let line = std::iter::once(path(binary))
                    .chain(args.iter().map(|a| a.to_string()))
                    .collect();
                (line, Vec::new())
            })
        })
        .collect();
    // Interleaved, run by run, so that the machine's drift (other work on
    // it) weighs on both builds alike; 3 warm-up rounds first.
    for round in 0..runs + 3 {
        for (i, (_, times)) in commands.iter_mut().enumerate() {
            let binary = builds[i % 2].1;
            let start = Instant::now();
            let status = Command::new(binary)
                .args(forms[i / 2])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .with_context(|| format!("running {}", binary.display()))?;
            let elapsed = start.elapsed().as_secs_f64();
            ensure!(
                status.success(),
                "{} {:?}: {status}",
                binary.display(),
                forms[i / 2]
            );
            if round >= 3 {
                times.push(elapsed);
            }
        }
    }

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
        "\nWall time from spawn to exit, medians (and min) of {runs} runs of each, \
         interleaved run by run after 3 warm-up rounds:\n"
    );
    let _ = writeln!(md, "| command | median | min | static vs dynamic |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let mut dynamic_median = f64::NAN;
    for (i, (line, times)) in commands.iter_mut().enumerate() {
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let median = median(times);
        // Rows go dynamic, static per form: the ratio is on the static row.
        let ratio = if i % 2 == 1 {
            format!("{:.2}x", median / dynamic_median)
        } else {
            dynamic_median = median;
            String::new()
        };
        let _ = writeln!(
            md,
            "| `{}` | {:.2} ms | {:.2} ms | {ratio} |",
            line.join(" "),
            median * 1000.0,
            min * 1000.0
        );
    }
    Ok(md)
}
