//! The house rules the code keeps, checked as rustc's `tidy` checks its own
//! (these are `#[test]`s: `cargo test --workspace`, which `cargo xtask test`
//! and CI run, fails when one is broken):
//!
//! * no Rust file has more than [`MAX_LINES`] lines before its tests (a
//!   longer one is a room to split);
//! * `tracer/src/run.rs` is the loop only: at most [`MAX_RUN_LINES`] lines;
//! * `docs/architecture.md` is the code map: it names every module of
//!   `tracer/src` (each file and folder, as `path` relative to it), and
//!   every path it names exists.
//!
//! Compiled for the tests only (`main.rs`: `#[cfg(test)] mod tidy`).

use std::path::{Path, PathBuf};

/// Lines a Rust file may have before its first `#[cfg(test)]`.
const MAX_LINES: usize = 800;
/// Lines of `tracer/src/run.rs`.
const MAX_RUN_LINES: usize = 400;

/// The lines of `source` before its first line that starts with
/// `#[cfg(test)]` (all of them if it has none).
fn lines_before_tests(source: &str) -> usize {
    source
        .lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

/// The names in backquotes in `text` that look like paths of sources: a
/// file ending in `.rs` or a folder ending in `/`.
fn named_paths(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| {
            (name.ends_with(".rs") || name.ends_with('/'))
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every file and folder below `dir` (paths relative to `base`,
    /// folders ending in `/`), `target` and hidden ones left out.
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &path, out);
            } else {
                out.push(rel);
            }
        }
    }

    fn rust_files() -> Vec<PathBuf> {
        let repo = repo();
        let mut all = Vec::new();
        for dir in ["tracer", "tracer-common", "tracer-ebpf", "xtask", "fuzz"] {
            walk(&repo, &repo.join(dir), &mut all);
        }
        all.into_iter()
            .filter(|path| path.ends_with(".rs"))
            .map(|path| repo.join(path))
            .collect()
    }

    #[test]
    fn no_file_is_longer_than_800_lines_before_its_tests() {
        let long: Vec<String> = rust_files()
            .iter()
            .filter_map(|path| {
                let lines = lines_before_tests(&std::fs::read_to_string(path).unwrap());
                (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
            })
            .collect();
        assert!(
            long.is_empty(),
            "over {MAX_LINES} lines before their tests, split each into rooms of one \
             concern: {long:#?}"
        );
    }

    #[test]
    fn run_rs_is_the_loop_only() {
        let path = repo().join("tracer/src/run.rs");
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= MAX_RUN_LINES,
            "{} has {lines} lines, more than {MAX_RUN_LINES}: it is the loop only; what \
             happens before the loop belongs to start.rs, a mode's work to its module",
            path.display()
        );
    }

    #[test]
    fn the_architecture_map_names_every_module_and_nothing_else() {
        let repo = repo();
        let src = repo.join("tracer/src");
        let map = std::fs::read_to_string(repo.join("docs/architecture.md")).unwrap();
        let named = named_paths(&map);
        let mut modules = Vec::new();
        walk(&src, &src, &mut modules);
        let unnamed: Vec<&String> = modules
            .iter()
            .filter(|m| m.ends_with(".rs") || m.ends_with('/'))
            .filter(|m| !named.contains(&m.as_str()))
            .collect();
        assert!(
            unnamed.is_empty(),
            "modules of tracer/src that docs/architecture.md does not name (one line \
             each: `path`: what it holds): {unnamed:#?}"
        );
        // A path is relative to tracer/src or to the repository; a bare
        // file name is one that some source file has.
        let mut everything = Vec::new();
        walk(&repo, &repo, &mut everything);
        let gone: Vec<&str> = named
            .iter()
            .copied()
            .filter(|name| {
                let trimmed = name.trim_end_matches('/');
                if trimmed.contains('/') {
                    !src.join(trimmed).exists() && !repo.join(trimmed).exists()
                } else {
                    !everything
                        .iter()
                        .any(|p| p.trim_end_matches('/').rsplit('/').next() == Some(trimmed))
                }
            })
            .collect();
        assert!(
            gone.is_empty(),
            "docs/architecture.md names paths that do not exist: {gone:#?}"
        );
    }

    #[test]
    fn lines_before_tests_stop_at_the_test_module() {
        assert_eq!(lines_before_tests("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
        assert_eq!(lines_before_tests("a\n    #[cfg(test)]\nb\n"), 3);
        assert_eq!(lines_before_tests(""), 0);
    }

    #[test]
    fn named_paths_are_sources_in_backquotes() {
        assert_eq!(
            named_paths("- `analysis/`: x; `run.rs` and `Collector::finish`, `a b.rs`"),
            ["analysis/", "run.rs"]
        );
    }
}
