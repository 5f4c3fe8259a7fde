//! What one VM of `cargo xtask kernels` said: /init's marked lines read
//! back from its serial console (the release, each check's output and
//! status, whether /init got to its end), and the summaries printed of
//! them: a line per VM, and with `--repeat` each scenario's pass count.

use std::{fmt::Write as _, io::Write as _, path::PathBuf, time::Duration};

/// Lines kept of the end of a failed check's output.
const CHECK_TAIL_LINES: usize = 25;

/// The last run's table and failed checks, for `cargo xtask test`'s summary.
pub(crate) fn summary_path() -> PathBuf {
    crate::util::target_dir().join("kernels/summary.txt")
}

/// Marks the lines of /init on the console (kernel messages interleave).
pub(crate) const MARK: &str = "@@tracer-kernels";

/// What one VM said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct VmRun {
    /// `uname -r` inside.
    pub(crate) release: Option<String>,
    pub(crate) checks: Vec<CheckRun>,
    /// /init reached its end (not killed by the timeout, no panic).
    pub(crate) finished: bool,
    pub(crate) log: PathBuf,
    /// The checks /init was given: each must be on the console.
    pub(crate) expected: Vec<String>,
    /// The guest's uptime when /init began its first check: the kernel's
    /// boot and the initramfs's unpacking.
    pub(crate) first_check_at: Option<Duration>,
    /// From qemu's start to its exit, as the host's clock saw it.
    pub(crate) wall: Option<Duration>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CheckRun {
    pub(crate) name: String,
    /// None when the check never ended (the VM died in it).
    pub(crate) status: Option<i32>,
    pub(crate) output: String,
    /// The guest's uptime at its begin and end markers.
    pub(crate) began: Option<Duration>,
    pub(crate) ended: Option<Duration>,
}

impl CheckRun {
    /// How long the check ran, by the guest's clock.
    pub(crate) fn took(&self) -> Option<Duration> {
        self.ended?.checked_sub(self.began?)
    }
}

/// `/proc/uptime`'s first field, as /init's markers give it.
fn uptime(word: Option<&str>) -> Option<Duration> {
    Duration::try_from_secs_f64(word?.parse().ok()?).ok()
}

impl VmRun {
    pub(crate) fn passed(&self) -> bool {
        self.finished
            && self.checks.iter().all(|c| c.status == Some(0))
            && self.expected.iter().all(|name| self.check_passed(name))
    }

    /// The check `name` is on the console and ended with status 0.
    fn check_passed(&self, name: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.name == name && c.status == Some(0))
    }
}

/// Reads /init's marked lines out of the console: the release, each
/// check's output and status, and whether it got to the end.
pub(crate) fn parse_console(console: &str) -> VmRun {
    let mut run = VmRun::default();
    let mut current: Option<CheckRun> = None;
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix(MARK).map(str::trim) else {
            if let Some(check) = current.as_mut() {
                check.output.push_str(line);
                check.output.push('\n');
            }
            continue;
        };
        let mut words = rest.splitn(2, ' ');
        let (what, arg) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        match what {
            "uname" => run.release = Some(arg.to_owned()),
            // `begin NAME UPTIME`
            "begin" => {
                run.checks.extend(current.take());
                let mut words = arg.split(' ');
                let name = words.next().unwrap_or("").to_owned();
                let began = uptime(words.next());
                run.first_check_at = run.first_check_at.or(began);
                current = Some(CheckRun {
                    name,
                    status: None,
                    output: String::new(),
                    began,
                    ended: None,
                });
            }
            // `end NAME STATUS UPTIME`
            "end" => {
                if let Some(mut check) = current.take() {
                    let mut words = arg.split(' ').skip(1);
                    check.status = words.next().and_then(|s| s.parse().ok());
                    check.ended = uptime(words.next());
                    run.checks.push(check);
                }
            }
            "done" => run.finished = true,
            _ => {}
        }
    }
    run.checks.extend(current);
    run
}

/// One kernel's section of the output: its release, then each check.
pub(crate) fn print_kernel(name: &str, result: &Result<VmRun, String>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "=== {name}");
    match result {
        Err(why) => {
            let _ = writeln!(out, "error: {why}");
        }
        Ok(run) => {
            let release = run.release.as_deref().unwrap_or("(did not boot to /init)");
            let _ = writeln!(out, "kernel {release} (console: {})", run.log.display());
            for check in &run.checks {
                let status = check
                    .status
                    .map_or("did not end".to_owned(), |s| format!("exit {s}"));
                let _ = writeln!(out, "--- {}: {status}", check.name);
                let _ = write!(out, "{}", check.output);
            }
            if !run.finished {
                let _ = writeln!(out, "the VM stopped before /init's end (see the console)");
            }
        }
    }
}

/// One line per kernel: its release and each check's status.
pub(crate) fn summary_table(results: &[(&str, Result<VmRun, String>)]) -> String {
    let names = check_names(results);
    let mut rows = vec![{
        let mut header = vec!["kernel".to_owned(), "release".to_owned()];
        header.extend(names.iter().map(|n| n.to_string()));
        header.push("result".to_owned());
        header
    }];
    for (kernel, result) in results {
        let mut row = vec![kernel.to_string()];
        match result {
            Err(_) => {
                row.push("-".into());
                row.extend(names.iter().map(|_| "-".to_owned()));
                row.push("not fetched".into());
            }
            Ok(run) => {
                row.push(run.release.clone().unwrap_or_else(|| "-".into()));
                for name in &names {
                    let status = run.checks.iter().find(|c| c.name == *name);
                    row.push(match status.map(|c| c.status) {
                        Some(Some(0)) => "ok".into(),
                        Some(Some(code)) => format!("exit {code}"),
                        Some(None) => "no end".into(),
                        None => "-".into(),
                    });
                }
                row.push(
                    match (run.passed(), run.finished) {
                        (true, _) => "pass",
                        (false, true) => "FAIL",
                        (false, false) => "FAIL (VM died)",
                    }
                    .into(),
                );
            }
        }
        rows.push(row);
    }
    table(rows)
}

/// Every check on some VM's console, in their order, each once.
fn check_names<'a>(results: &'a [(&str, Result<VmRun, String>)]) -> Vec<&'a str> {
    results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flat_map(|run| run.checks.iter().map(|c| c.name.as_str()))
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        })
}

/// Where each VM's time went, in whole seconds: qemu from start to exit
/// (host clock), the boot up to /init's first check, and each check (the
/// guest's clock). CI's time is mostly these VMs', so this is where it
/// is read.
pub(crate) fn seconds_table(results: &[(&str, Result<VmRun, String>)]) -> String {
    let names = check_names(results);
    let mut header = vec!["kernel".to_owned(), "qemu".to_owned(), "boot".to_owned()];
    header.extend(names.iter().map(|n| n.to_string()));
    let mut rows = vec![header];
    let secs =
        |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.0}", d.as_secs_f64()));
    for (kernel, result) in results {
        let Ok(run) = result else { continue };
        let mut row = vec![kernel.to_string(), secs(run.wall), secs(run.first_check_at)];
        for name in &names {
            let check = run.checks.iter().find(|c| c.name == *name);
            row.push(secs(check.and_then(CheckRun::took)));
        }
        rows.push(row);
    }
    format!("seconds:\n{}", table(rows))
}

/// Rows as columns padded to their widest cell.
fn table(rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut table = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        writeln!(table, "{}", cells.join("  ").trim_end()).unwrap();
    }
    table
}

/// `--repeat`: per kernel, how many runs each scenario passed.
pub(crate) fn pass_counts(results: &[(&str, Result<VmRun, String>)]) -> String {
    let mut kernels: Vec<&str> = Vec::new();
    let mut scenarios: Vec<&str> = Vec::new();
    for (kernel, result) in results {
        if !kernels.contains(kernel) {
            kernels.push(kernel);
        }
        for name in result.iter().flat_map(|run| &run.expected) {
            if !scenarios.contains(&name.as_str()) {
                scenarios.push(name);
            }
        }
    }
    let mut rows = vec![{
        let mut header = vec!["kernel".to_owned()];
        header.extend(scenarios.iter().map(|s| s.to_string()));
        header.push("runs passed".to_owned());
        header
    }];
    for kernel in kernels {
        let runs: Vec<&Result<VmRun, String>> = results
            .iter()
            .filter(|(k, _)| *k == kernel)
            .map(|(_, r)| r)
            .collect();
        let mut row = vec![kernel.to_owned()];
        for scenario in &scenarios {
            let its_own = runs.iter().any(|r| {
                r.as_ref()
                    .is_ok_and(|run| run.expected.iter().any(|e| e == scenario))
            });
            if !its_own {
                row.push("-".to_owned());
                continue;
            }
            let passed = runs
                .iter()
                .filter(|r| r.as_ref().is_ok_and(|run| run.check_passed(scenario)))
                .count();
            row.push(format!("{passed}/{}", runs.len()));
        }
        let passed = runs
            .iter()
            .filter(|r| r.as_ref().is_ok_and(VmRun::passed))
            .count();
        row.push(format!("{passed}/{}", runs.len()));
        rows.push(row);
    }
    format!("pass counts:\n{}", table(rows))
}

/// What failed, VM by VM: each failed check's last lines (kernel messages
/// interleave, so an oops in a check is in its tail), each check expected but
/// missing, a VM that died or was never booted.
pub(crate) fn failures(results: &[(&str, Result<VmRun, String>)]) -> String {
    let mut out = String::new();
    for (kernel, result) in results {
        let run = match result {
            Err(why) => {
                writeln!(out, "--- {kernel}: {why}").unwrap();
                continue;
            }
            Ok(run) if run.passed() => continue,
            Ok(run) => run,
        };
        for check in run.checks.iter().filter(|c| c.status != Some(0)) {
            let status = check
                .status
                .map_or("did not end".to_owned(), |s| format!("exit {s}"));
            writeln!(out, "--- {kernel} {}: {status}", check.name).unwrap();
            let tail = tail(&check.output, CHECK_TAIL_LINES);
            for line in tail {
                writeln!(out, "    {line}").unwrap();
            }
        }
        for name in run
            .expected
            .iter()
            .filter(|name| !run.checks.iter().any(|c| &c.name == *name))
        {
            writeln!(out, "--- {kernel} {name}: not on the console").unwrap();
        }
        if !run.finished {
            writeln!(
                out,
                "--- {kernel}: the VM stopped before /init's end (console: {})",
                run.log.display()
            )
            .unwrap();
        }
    }
    out
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
[    0.000000] Linux version 5.10.0-32-cloud-amd64
@@tracer-kernels uname 5.10.0-32-cloud-amd64\r
@@tracer-kernels begin version 4.25 0.01\r
tracer 0.1.0\r
@@tracer-kernels end version 0 5.50\r
@@tracer-kernels begin trace 5.51\r
error: this kernel's tracepoint 'sched_switch' passes 3 argument(s), the tracer reads 4\r
@@tracer-kernels end trace 5 67.01\r
@@tracer-kernels done\r
[    9.1] reboot: Power down
";

    #[test]
    fn console_is_read_back_into_checks() {
        let run = parse_console(CONSOLE);
        assert_eq!(run.release.as_deref(), Some("5.10.0-32-cloud-amd64"));
        assert!(run.finished);
        assert_eq!(run.checks.len(), 2);
        assert_eq!(run.checks[0].name, "version");
        assert_eq!(run.checks[0].status, Some(0));
        assert_eq!(run.checks[0].output, "tracer 0.1.0\n");
        assert_eq!(run.checks[1].status, Some(5));
        assert!(run.checks[1].output.contains("'sched_switch' passes 3"));
        assert!(!run.passed());
    }

    #[test]
    fn each_check_is_timed_by_the_guests_clock() {
        let mut run = parse_console(CONSOLE);
        assert_eq!(run.first_check_at, Some(Duration::from_millis(4250)));
        assert_eq!(run.checks[0].took(), Some(Duration::from_millis(1250)));
        assert_eq!(run.checks[1].took(), Some(Duration::from_millis(61500)));
        run.wall = Some(Duration::from_secs(70));
        let died = parse_console("@@tracer-kernels begin version 3.0\nKernel panic\n");
        assert_eq!(died.checks[0].took(), None, "a check that never ended");
        let results = vec![("bullseye", Ok(run)), ("sid", Ok(died))];
        assert_eq!(
            seconds_table(&results),
            "seconds:\n\
             kernel    qemu  boot  version  trace\n\
             bullseye  70    4     1        62\n\
             sid       -     3     -        -\n"
        );
    }

    #[test]
    fn a_check_cut_short_has_no_status() {
        let run = parse_console("@@tracer-kernels begin trace\nKernel panic\n");
        assert!(!run.finished);
        assert_eq!(run.checks.len(), 1);
        assert_eq!(run.checks[0].status, None);
        assert_eq!(run.checks[0].output, "Kernel panic\n");
    }

    #[test]
    fn a_check_missing_from_the_console_fails_the_run() {
        let mut run = parse_console(
            "@@tracer-kernels begin version\n@@tracer-kernels end version 0\n@@tracer-kernels done\n",
        );
        run.expected = vec!["version".into()];
        assert!(run.passed());
        run.expected.push("reads".into());
        assert!(!run.passed(), "reads never ran, yet the run passed");
    }

    #[test]
    fn repeated_runs_count_each_scenarios_passes() {
        let run = |reads: i32| {
            let mut run = parse_console(&format!(
                "@@tracer-kernels begin reads\n@@tracer-kernels end reads {reads}\n\
                 @@tracer-kernels done\n"
            ));
            run.expected = vec!["reads".into(), "writes".into()];
            Ok(run)
        };
        let only_reads = || {
            let mut run = run(0)?;
            run.expected = vec!["reads".into()];
            Ok::<_, String>(run)
        };
        let results = vec![
            ("sid", run(0)),
            ("sid", run(1)),
            ("sid", run(0)),
            ("trixie-arm64", only_reads()),
        ];
        assert_eq!(
            pass_counts(&results),
            "pass counts:\n\
             kernel        reads  writes  runs passed\n\
             sid           2/3    0/3     0/3\n\
             trixie-arm64  1/1    -       1/1\n"
        );
    }

    #[test]
    fn summary_has_a_line_per_kernel() {
        let results = vec![
            ("bullseye", Ok(parse_console(CONSOLE))),
            ("sid", Err("no package matches".to_owned())),
        ];
        let table = summary_table(&results);
        assert_eq!(
            table,
            "\
kernel    release                version  trace   result
bullseye  5.10.0-32-cloud-amd64  ok       exit 5  FAIL
sid       -                      -        -       not fetched
"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(tail("a\n", 5), ["a"]);
    }

    #[test]
    fn failures_name_each_failed_check_with_its_tail() {
        let mut died = parse_console("@@tracer-kernels begin reads\nOops: int3\n");
        died.expected = vec!["reads".into(), "writes".into()];
        let results = vec![
            ("bullseye", Ok(parse_console(CONSOLE))),
            ("sid", Ok(died)),
            ("trixie", Err("no package matches".to_owned())),
        ];
        assert_eq!(
            failures(&results),
            "\
--- bullseye trace: exit 5
    error: this kernel's tracepoint 'sched_switch' passes 3 argument(s), the tracer reads 4
--- sid reads: did not end
    Oops: int3
--- sid writes: not on the console
--- sid: the VM stopped before /init's end (console: )
--- trixie: no package matches
"
        );
    }
}
