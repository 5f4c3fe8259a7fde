//! What `cargo xtask test` found, said again in a few lines at its very
//! end and left in `target/test-summary.txt`: the host tests' totals, each
//! failed test with its panic message, and each VM's line with the tail of
//! every check that failed in it. CI prints that file after everything else,
//! so a failure is on the last screen of its log, not thousands of lines up.

use std::{fmt::Write as _, path::PathBuf};

/// Lines of a failed test's output kept from its panic on.
const PANIC_LINES: usize = 14;

/// Where the summary is left for CI to print.
pub(crate) fn path() -> PathBuf {
    crate::util::target_dir().join("test-summary.txt")
}

/// Takes away a summary an earlier run left.
pub(crate) fn remove() {
    let _ = std::fs::remove_file(path());
}

/// Writes the summary of a whole `cargo xtask test`, and prints it.
pub(crate) fn write(totals: &TestTotals, tests: &anyhow::Result<()>, kernels: &anyhow::Result<()>) {
    let mut out = String::from("== cargo xtask test, summed up ==\nhost tests:\n");
    out.push_str(&totals.summary());
    if let Err(err) = tests
        && totals.failed == 0
    {
        // cargo failed with no test failing: a build error, a crashed binary.
        writeln!(out, "cargo test: {err:#}").unwrap();
    }
    out.push_str("kernels:\n");
    if let Ok(table) = std::fs::read_to_string(crate::vm_run::summary_path()) {
        out.push_str(&table);
    }
    if let Err(err) = kernels {
        writeln!(out, "error: {err:#}").unwrap();
    }
    save(&out);
}

/// `cargo xtask test` stopped before its summary (set-up, the build): why.
pub(crate) fn write_stopped(err: &anyhow::Error) {
    save(&format!(
        "== cargo xtask test, summed up ==\nstopped before the tests: {err:#}\n"
    ));
}

fn save(summary: &str) {
    print!("{summary}");
    if let Err(err) = std::fs::write(path(), summary) {
        eprintln!("could not write {}: {err}", path().display());
    }
}

/// libtest's output of every test binary, added up line by line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TestTotals {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) ignored: u64,
    /// The tests libtest reported as "test NAME ... FAILED", in order.
    pub(crate) failed_names: Vec<String>,
    /// Per failed test, its output from the panic on (at most
    /// `PANIC_LINES`), read from libtest's "---- NAME stdout ----" section.
    pub(crate) panics: Vec<(String, Vec<String>)>,
    /// The test whose "---- NAME stdout ----" section is being read, and
    /// whether its panic was met yet.
    section: Option<(String, bool)>,
}

impl TestTotals {
    /// Adds a libtest line: a summary ("test result: ok. 7 passed; 0 failed;
    /// 1 ignored; ...") is counted, a failed test ("test NAME ... FAILED")
    /// named, a failure's panic kept.
    pub(crate) fn add_line(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            self.section = Some((name.to_owned(), false));
            return;
        }
        if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" ... FAILED"))
        {
            self.failed_names.push(name.to_owned());
            return;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            self.section = None;
            self.add_result(rest);
            return;
        }
        if line == "failures:" {
            // The list of names after the sections ends the last one.
            self.section = None;
            return;
        }
        if let Some((name, in_panic)) = self.section.as_mut() {
            if !*in_panic && line.contains("panicked at") {
                *in_panic = true;
                self.panics.push((name.clone(), Vec::new()));
            }
            if *in_panic
                && let Some((_, lines)) = self.panics.last_mut()
                && lines.len() < PANIC_LINES
            {
                lines.push(line.to_owned());
            }
        }
    }

    fn add_result(&mut self, rest: &str) {
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }

    /// The failed tests' names (each with its panic, when it had one), then
    /// the totals line.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        if !self.failed_names.is_empty() {
            out.push_str("failed tests:\n");
            for name in &self.failed_names {
                writeln!(out, "    {name}").unwrap();
                let panic = self.panics.iter().find(|(n, _)| n == name);
                let lines = panic.map_or(&[][..], |(_, lines)| lines.as_slice());
                let shown = lines.len() - lines.iter().rev().take_while(|l| l.is_empty()).count();
                for line in &lines[..shown] {
                    writeln!(out, "        {line}").unwrap();
                }
            }
        }
        writeln!(
            out,
            "tests: {} passed, {} failed, {} ignored",
            self.passed, self.failed, self.ignored
        )
        .unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_libtest_summaries() {
        let mut t = TestTotals::default();
        t.add_line("test result: ok. 35 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.02s");
        t.add_line(
            "test result: FAILED. 5 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 5 tests");
        t.add_line("test foo ... ok");
        t.add_line("test traces_without_tracefs ... FAILED");
        t.add_line("test bar ... ignored");
        assert_eq!((t.passed, t.failed, t.ignored), (40, 1, 2));
        assert_eq!(t.failed_names, ["traces_without_tracefs"]);
    }

    #[test]
    fn a_failed_test_is_summed_up_with_its_panic() {
        let mut t = TestTotals::default();
        for line in [
            "running 2 tests",
            "test ok_one ... ok",
            "test memory_grows ... FAILED",
            "",
            "failures:",
            "",
            "---- memory_grows stdout ----",
            "$ tracer --format json -- python3 grow.py",
            "a line of the tracer's log",
            "",
            "thread 'memory_grows' panicked at tracer/tests/memory.rs:275:5:",
            "peak 10 MiB < 64 MiB",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            "",
            "",
            "failures:",
            "    memory_grows",
            "",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        ] {
            t.add_line(line);
        }
        assert_eq!(
            t.summary(),
            "failed tests:\n    memory_grows\n        \
             thread 'memory_grows' panicked at tracer/tests/memory.rs:275:5:\n        \
             peak 10 MiB < 64 MiB\n        \
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\
             tests: 1 passed, 1 failed, 0 ignored\n"
        );
    }

    #[test]
    fn a_long_panic_is_cut() {
        let mut t = TestTotals::default();
        t.add_line("---- long stdout ----");
        t.add_line("thread 'long' panicked at x.rs:1:1:");
        for i in 0..100 {
            t.add_line(&format!("line {i}"));
        }
        assert_eq!(t.panics[0].1.len(), PANIC_LINES);
    }
}
