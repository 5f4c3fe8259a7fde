//! The house rules the code keeps, checked as rustc's `tidy` checks its own
//! (these are `#[test]`s: `cargo test --workspace`, which `cargo xtask test`
//! and CI run, fails when one is broken):
//!
//! * no Rust file has more than [`MAX_LINES`] lines before its tests (a
//!   longer one is a room to split);
//! * `tracer/src/run.rs` is the loop only: at most [`MAX_RUN_LINES`] lines;
//! * `docs/architecture.md` is the code map: it names every module of
//!   `tracer/src` (each file and folder, as `path` relative to it), and
//!   every path it names exists where the text puts it;
//! * analysis knows only the stages before it: `tracer/src/analysis/` uses
//!   none of the outputs that run with the trace nor the probes, and reads
//!   no `/proc` (a plain type of `procfs` is data, and may be used);
//! * `/proc` is read in one place: no source of `tracer/src`,
//!   `tracer-host/src` or `tracer-python/src` outside
//!   `tracer-host/src/procfs/` names a `/proc`
//!   path, but for the few that compare a traced program's paths with
//!   `/proc` ([`PROC_PREFIXES`]);
//! * `README.md` is a front door: at most [`MAX_README_LINES`] lines, no
//!   pasted `--help`, no code map (that is `docs/architecture.md`'s);
//! * every relative link of `README.md` and `docs/` finds its file and
//!   heading.
//!
//! Compiled for the tests only (`main.rs`: `#[cfg(test)] mod tidy`).

use std::path::{Path, PathBuf};

/// Lines a Rust file may have before its tests.
const MAX_LINES: usize = 800;
/// Lines of `tracer/src/run.rs`.
const MAX_RUN_LINES: usize = 400;

/// Lines of one function (its signature to its closing brace), at most:
/// past that it does several things, each of which can have a name.
const MAX_FUNCTION_LINES: usize = 150;
/// Lines of `README.md`.
const MAX_README_LINES: usize = 260;

/// What `tracer/src/analysis/` may not use: the outputs that run with the
/// trace and the kernel side's loader; they come after analysis, or beside
/// it, never before.
const NOT_FOR_ANALYSIS: [&str; 4] = ["live", "serve", "session::status_line", "kernel::probes"];

/// The layers of tracer/src, from the bottom up: each top-level module and
/// the others it may import (`crate::` paths in its program code). Data
/// flows one way (kernel -> events -> analysis -> report -> outputs); the
/// edge (`run`, `session`, `cli`) may import anything below it. A new
/// module gets its row here, placed where it belongs. `frame`, `report`,
/// `host` and `python` are the crates below, `tracer-report`,
/// `tracer-host` and `tracer-python`, by the names tracer gives them: the
/// compiler keeps those crates from importing any of the rows above them
/// (`host` names `report` only, `python` `host` and `report`).
const LAYERS: [(&str, &[&str]); 15] = [
    ("frame", &[]),
    ("report", &["frame"]),
    ("native", &["frame", "host"]),
    ("events", &["host"]),
    ("kernel", &["events", "host"]),
    (
        "analysis",
        &["events", "frame", "host", "native", "python", "report"],
    ),
    ("otlp_exporter", &["report"]),
    ("serve", &["report"]),
    ("live", &["analysis", "report"]),
    ("manpage", &["cli"]),
    ("cli", &["host", "manpage", "native", "serve"]),
    (
        "session",
        &[
            "analysis",
            "cli",
            "events",
            "frame",
            "host",
            "kernel",
            "live",
            "native",
            "otlp_exporter",
            "python",
            "report",
            "serve",
        ],
    ),
    (
        "run",
        &[
            "analysis", "cli", "events", "frame", "host", "kernel", "live", "native", "python",
            "report", "serve", "session",
        ],
    ),
    ("lib", &[]),
    ("main", &[]),
];

/// The command line is the edge of the house: only these read the parsed
/// arguments (`crate::cli`); a layer below takes its own settings as values.
const CLI_READERS: [&str; 5] = ["cli.rs", "main.rs", "run.rs", "manpage.rs", "session/"];

/// The string literals naming `/proc` that a source outside `procfs` may
/// hold, each (file relative to `tracer/src`, `tracer-host/src`'s as
/// `host/...` and `tracer-python/src`'s as `python/...`, literal): prefixes a path is compared with, never opened.
const PROC_PREFIXES: [(&str, &str); 6] = [
    // What a traced program opened, looked at from outside (procfs::own_dir
    // and friends build the outside paths).
    ("host/files/mod.rs", "/proc/"),
    ("host/files/mod.rs", "/proc/self/"),
    ("host/files/mod.rs", "/proc/thread-self/"),
    ("host/files/mod.rs", "/proc/self/{file}"),
    // Pseudo files whose reads name no file worth a row.
    ("host/files/table.rs", "/proc/"),
    // An output path the user gave: a descriptor the shell opened.
    ("session/output.rs", "/proc/self/fd/"),
];

/// The lines of `source` before its tests: its first `#[cfg(test)]` at the
/// start of a line that an inline module (`mod tests {`) follows, other
/// attributes between them aside. A test-only `use`, item or `mod x;` is one
/// line among the others: it does not make the rest of the file a test.
fn lines_before_tests(source: &str) -> usize {
    let lines: Vec<&str> = source.lines().collect();
    (0..lines.len())
        .find(|&i| {
            lines[i].starts_with("#[cfg(test)]")
                && lines[i + 1..]
                    .iter()
                    .find(|line| !line.starts_with("#["))
                    .is_some_and(|line| is_inline_module(line))
        })
        .unwrap_or(lines.len())
}

/// `mod NAME {`, of any visibility.
fn is_inline_module(line: &str) -> bool {
    let line = line
        .strip_prefix("pub(crate) ")
        .or_else(|| line.strip_prefix("pub(super) "))
        .or_else(|| line.strip_prefix("pub "))
        .unwrap_or(line);
    line.strip_prefix("mod ")
        .is_some_and(|rest| rest.contains('{'))
}

/// Rust source split into its code (comments dropped, each string literal
/// left as `""`) and its string literals' text (escapes as written).
#[derive(Debug, Default, PartialEq)]
struct Code {
    text: String,
    literals: Vec<String>,
}

/// The functions of rustfmt'd `source` longer than `max` lines: each one's
/// name, first line (1-based) and length, from its `fn` line to the `}` at
/// the same indent.
fn long_functions(source: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut long = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = &line[..line.len() - code.len()];
        let words: Vec<&str> = code.split_whitespace().collect();
        let Some(fn_at) = words.iter().position(|w| *w == "fn") else {
            continue;
        };
        let qualifiers = [
            "pub",
            "pub(crate)",
            "pub(super)",
            "const",
            "unsafe",
            "async",
            "extern",
            "\"C\"",
        ];
        // A declaration, or a body on the `fn` line itself.
        let one_line = code.ends_with(';') || code.ends_with('}');
        if !words[..fn_at].iter().all(|w| qualifiers.contains(w)) || one_line {
            continue;
        }
        let name = words
            .get(fn_at + 1)
            .map(|w| w.split(['(', '<']).next().unwrap_or(w))
            .unwrap_or_default();
        let end = lines[at + 1..]
            .iter()
            .position(|l| l.strip_prefix(indent) == Some("}"));
        if let Some(end) = end
            && end + 2 > max
        {
            long.push((name.to_owned(), at + 1, end + 2));
        }
    }
    long
}

/// The source file a `crate::a::b::item` path names, among a crate's
/// `files` (relative to its `src/`): its deepest prefix that is a module.
fn module_file(path: &str, files: &[String]) -> Option<String> {
    let parts: Vec<&str> = path.split("::").skip(1).collect();
    (1..=parts.len()).rev().find_map(|n| {
        let module = parts[..n].join("/");
        [format!("{module}.rs"), format!("{module}/mod.rs")]
            .into_iter()
            .find(|candidate| files.contains(candidate))
    })
}

/// The circles among a crate's files, each file importing the next through
/// `crate::` paths (`sources`: each file's code; the crate's root, which
/// declares every module, is no file's import).
fn import_circles(sources: &[(String, String)]) -> Vec<Vec<String>> {
    let files: Vec<String> = sources.iter().map(|(f, _)| f.clone()).collect();
    let imports: Vec<Vec<usize>> = sources
        .iter()
        .map(|(file, code)| {
            let mut to: Vec<usize> = paths_from(code, "crate")
                .iter()
                .filter_map(|path| module_file(path, &files))
                .filter_map(|target| files.iter().position(|f| *f == target))
                .filter(|&t| {
                    files[t] != *file && !["main.rs", "lib.rs"].contains(&files[t].as_str())
                })
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        })
        .collect();
    let reach = |from: usize| {
        let mut seen = vec![false; files.len()];
        let mut stack = vec![from];
        while let Some(at) = stack.pop() {
            for &next in &imports[at] {
                if !std::mem::replace(&mut seen[next], true) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let reaches: Vec<Vec<bool>> = (0..files.len()).map(reach).collect();
    let mut circles: Vec<Vec<String>> = Vec::new();
    for (a, from_a) in reaches.iter().enumerate() {
        let circle: Vec<String> = (0..files.len())
            .filter(|&b| from_a[b] && reaches[b][a])
            .map(|b| files[b].clone())
            .collect();
        if circle.len() > 1 && !circles.contains(&circle) {
            circles.push(circle);
        }
    }
    circles
}

fn split_code(source: &str) -> Code {
    let chars: Vec<char> = source.chars().collect();
    let mut code = Code::default();
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['/', '/']) {
            i += rest.iter().position(|&c| c == '\n').unwrap_or(rest.len());
        } else if rest.starts_with(&['/', '*']) {
            i += rest
                .windows(2)
                .position(|w| w == ['*', '/'])
                .map_or(rest.len(), |p| p + 2);
        } else if let Some(hashes) = raw_string_start(rest) {
            let open = hashes + 2;
            let close: Vec<char> = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let end = rest[open..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .unwrap_or(rest.len() - open);
            code.literals.push(rest[open..open + end].iter().collect());
            code.text.push_str("\"\"");
            i += open + end + close.len();
        } else if rest[0] == '"' {
            let mut end = 1;
            while end < rest.len() && rest[end] != '"' {
                end += if rest[end] == '\\' { 2 } else { 1 };
            }
            code.literals
                .push(rest[1..end.min(rest.len())].iter().collect());
            code.text.push_str("\"\"");
            i += end + 1;
        } else if rest[0] == '\'' && rest.get(2) == Some(&'\'') {
            // A character literal ('"'), not a lifetime.
            code.text.extend(&rest[..3]);
            i += 3;
        } else if rest.starts_with(&['\'', '\\']) {
            let end = rest[2..]
                .iter()
                .position(|&c| c == '\'')
                .map_or(rest.len(), |p| p + 3);
            code.text.extend(&rest[..end]);
            i += end;
        } else {
            code.text.push(rest[0]);
            i += 1;
        }
    }
    code
}

/// The number of `#` of a raw string (`r"`, `r#"`, `br"`...) starting here.
fn raw_string_start(rest: &[char]) -> Option<usize> {
    let rest = rest.strip_prefix(&['b']).unwrap_or(rest);
    let hashes = rest
        .strip_prefix(&['r'])?
        .iter()
        .take_while(|&&c| c == '#')
        .count();
    (rest.get(1 + hashes) == Some(&'"')).then_some(hashes)
}

/// Every path in `code` that starts with the segment `root` (`crate`,
/// `procfs`), as `root::a::b`, a `use` tree's branches one by one
/// (`use crate::{a, b::{c, D}}` is `crate::a`, `crate::b::c`, `crate::b::D`).
fn paths_from(code: &str, root: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let start: Vec<char> = format!("{root}::").chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        let is_word = |c: &char| c.is_alphanumeric() || *c == '_';
        let after_path = i >= 1 && (is_word(&chars[i - 1]) || chars[i - 1] == ':');
        if !after_path && chars[i..].starts_with(&start) {
            let mut at = i + start.len();
            use_tree(&chars, &mut at, root.to_string(), &mut out);
        }
    }
    out
}

/// One branch of a path or `use` tree from `chars[*at..]`, after `prefix::`.
fn use_tree(chars: &[char], at: &mut usize, prefix: String, out: &mut Vec<String>) {
    let skip_space = |at: &mut usize| {
        while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
    };
    skip_space(at);
    if chars.get(*at) == Some(&'{') {
        *at += 1;
        loop {
            skip_space(at);
            match chars.get(*at) {
                Some('}') | None => break,
                Some(',') => *at += 1,
                _ => use_tree(chars, at, prefix.clone(), out),
            }
        }
        *at += 1;
        return;
    }
    let segment: String = chars[*at..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '*')
        .collect();
    *at += segment.chars().count();
    if segment.is_empty() {
        return;
    }
    let path = format!("{prefix}::{segment}");
    if chars[*at..].starts_with(&[':', ':']) {
        *at += 2;
        use_tree(chars, at, path, out);
    } else {
        out.push(path);
        // `as name` is not the path's.
        let mut alias = *at;
        skip_space(&mut alias);
        if chars[alias..].starts_with(&['a', 's', ' ']) {
            *at = alias + 3;
            skip_space(at);
            while chars
                .get(*at)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                *at += 1;
            }
        }
    }
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

/// The relative links of `markdown` (`[text](target)`), code blocks left
/// out: each target as written, `path#anchor`, `#anchor` or `path`.
fn relative_links(markdown: &str) -> Vec<&str> {
    let mut links = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        for (at, _) in line.match_indices("](") {
            let target = &line[at + 2..];
            let target = &target[..target.find(')').unwrap_or(target.len())];
            if !target.contains("://") && !target.starts_with("mailto:") {
                links.push(target);
            }
        }
    }
    links
}

/// The anchors GitHub gives the headings of `markdown`: lower case, spaces
/// as `-`, punctuation other than `-` and `_` dropped; a repeated one
/// numbered (`-1`, `-2`...).
fn anchors(markdown: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let slug: String = heading
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || " -_".contains(*c))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let seen = anchors.iter().filter(|a| **a == slug).count();
        anchors.push(if seen == 0 {
            slug.clone()
        } else {
            format!("{slug}-{seen}")
        });
    }
    anchors
}

/// The doc's blocks a bare name is read in: a paragraph, a list item, a
/// table row or a heading (code blocks left out).
fn blocks(markdown: &str) -> Vec<String> {
    let mut blocks = vec![String::new()];
    let mut fenced = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            blocks.push(String::new());
            continue;
        }
        if fenced {
            continue;
        }
        let starts_a_block = line.trim().is_empty()
            || line.starts_with("- ")
            || line.starts_with('|')
            || line.starts_with('#');
        if starts_a_block {
            blocks.push(String::new());
        }
        let block = blocks.last_mut().unwrap();
        block.push_str(line);
        block.push('\n');
    }
    blocks.retain(|b| !b.trim().is_empty());
    blocks
}

/// The names of `block` that are not where the doc says: a path with a `/`
/// is relative to `src` (`tracer/src`) or to `repo`; a bare file name is in
/// the folder (a path ending in `/`) named last before it in its block, or
/// in `src` when none is: `kernel/probes/` (`mod.rs`, `maps.rs`).
fn misplaced_names(block: &str, repo: &Path, src: &Path) -> Vec<String> {
    let mut folder: Option<PathBuf> = None;
    let mut misplaced = Vec::new();
    for name in named_paths(block) {
        let trimmed = name.trim_end_matches('/');
        if trimmed.contains('/') || name.ends_with('/') {
            let Some(found) = [src.join(trimmed), repo.join(trimmed)]
                .into_iter()
                .find(|p| p.exists())
            else {
                misplaced.push(name.to_string());
                continue;
            };
            if name.ends_with('/') {
                folder = Some(found);
            }
        } else if !folder.as_deref().unwrap_or(src).join(name).exists() {
            let place = folder.as_deref().map_or("tracer/src/".into(), |f| {
                format!("{}/", f.strip_prefix(repo).unwrap_or(f).display())
            });
            misplaced.push(format!("{name} (not in {place})"));
        }
    }
    misplaced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn src() -> PathBuf {
        repo().join("tracer/src")
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
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
        for dir in [
            "tracer",
            "tracer-common",
            "tracer-ebpf",
            "tracer-host",
            "tracer-python",
            "tracer-report",
            "xtask",
            "fuzz",
        ] {
            walk(&repo, &repo.join(dir), &mut all);
        }
        all.into_iter()
            .filter(|path| path.ends_with(".rs"))
            .map(|path| repo.join(path))
            .collect()
    }

    /// The sources of `tracer/src` below `under` (relative to it) that the
    /// program is built from: files declared `#[cfg(test)] mod x;` (and
    /// what is below them) left out, and each one's code before its tests.
    fn program_sources(under: &str) -> Vec<(String, Code)> {
        program_sources_of(&src(), under)
    }

    /// [`program_sources`] of `tracer/src` and of the crates below it that
    /// read the system, `tracer-host/src` and `tracer-python/src`, named
    /// `host/...` and `python/...` (as tracer names them).
    fn program_and_lower_sources() -> Vec<(String, Code)> {
        let mut all = program_sources("");
        for (crate_src, name) in [("tracer-host/src", "host"), ("tracer-python/src", "python")] {
            let sources = program_sources_of(&repo().join(crate_src), "");
            all.extend(
                sources
                    .into_iter()
                    .map(|(file, code)| (format!("{name}/{file}"), code)),
            );
        }
        all
    }

    fn program_sources_of(src: &Path, under: &str) -> Vec<(String, Code)> {
        let mut files = Vec::new();
        walk(src, src, &mut files);
        let mut test_only: Vec<String> = Vec::new();
        for file in files.iter().filter(|f| f.ends_with(".rs")) {
            let text = read(&src.join(file));
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines.windows(2) {
                let declared = pair[1]
                    .trim_start_matches("pub ")
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'));
                if let (true, Some(module)) = (pair[0].starts_with("#[cfg(test)]"), declared) {
                    let dir = match file.rsplit_once('/') {
                        _ if ["mod.rs", "lib.rs", "main.rs"]
                            .iter()
                            .any(|root| file.ends_with(root)) =>
                        {
                            file.rsplit_once('/').map_or("", |(dir, _)| dir).to_string()
                        }
                        _ => file.trim_end_matches(".rs").to_string(),
                    };
                    let dir = if dir.is_empty() {
                        String::new()
                    } else {
                        format!("{dir}/")
                    };
                    test_only.push(format!("{dir}{module}.rs"));
                    test_only.push(format!("{dir}{module}/"));
                }
            }
        }
        files
            .into_iter()
            .filter(|f| f.starts_with(under) && f.ends_with(".rs"))
            .filter(|f| {
                !test_only
                    .iter()
                    .any(|t| f == t || (t.ends_with('/') && f.starts_with(t)))
            })
            .map(|f| {
                let text = read(&src.join(&f));
                let before: Vec<&str> = text.lines().take(lines_before_tests(&text)).collect();
                (f, split_code(&before.join("\n")))
            })
            .collect()
    }

    #[test]
    fn no_file_is_longer_than_800_lines_before_its_tests() {
        let long: Vec<String> = rust_files()
            .iter()
            .filter_map(|path| {
                let lines = lines_before_tests(&read(path));
                (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
            })
            .collect();
        assert!(
            long.is_empty(),
            "over {MAX_LINES} lines before their tests (the first `#[cfg(test)]` on a \
             `mod tests {{`), split each into rooms of one concern: {long:#?}"
        );
    }

    #[test]
    fn no_function_is_longer_than_150_lines() {
        let mut long = Vec::new();
        // The program's code (an end-to-end test's steps read as one story).
        let program = rust_files()
            .into_iter()
            .filter(|path| !path.components().any(|c| c.as_os_str() == "tests"));
        for path in program {
            let text = read(&path);
            let before: Vec<&str> = text.lines().take(lines_before_tests(&text)).collect();
            for (name, line, length) in long_functions(&before.join("\n"), MAX_FUNCTION_LINES) {
                long.push(format!("{}:{line} {name} ({length} lines)", path.display()));
            }
        }
        assert!(
            long.is_empty(),
            "functions over {MAX_FUNCTION_LINES} lines: give each of the things one does a \
             function of its own, named for it: {long:#?}"
        );
    }

    #[test]
    fn long_functions_are_measured_from_fn_to_its_brace() {
        let source = "impl X {\n    pub(crate) fn f(\n        a: u32,\n    ) -> u32 {\n        a\n    }\n}\nfn g() {}\nfn h() {\n    1;\n    2;\n}\n";
        assert_eq!(
            long_functions(source, 3),
            [("f".to_owned(), 2, 5), ("h".to_owned(), 9, 4)]
        );
        assert!(long_functions(source, 5).is_empty());
        assert!(long_functions("    fn declared(&self);\n", 0).is_empty());
    }

    #[test]
    fn no_crate_has_an_import_circle() {
        let repo = repo();
        let mut found = Vec::new();
        for crate_src in [
            "tracer/src",
            "tracer-ebpf/src",
            "tracer-common/src",
            "tracer-host/src",
            "tracer-python/src",
            "tracer-report/src",
            "xtask/src",
        ] {
            let src = repo.join(crate_src);
            let mut files = Vec::new();
            walk(&src, &src, &mut files);
            let sources: Vec<(String, String)> = files
                .into_iter()
                .filter(|f| f.ends_with(".rs"))
                .map(|f| {
                    let text = read(&src.join(&f));
                    let before: Vec<&str> = text.lines().take(lines_before_tests(&text)).collect();
                    let code = split_code(&before.join("\n")).text;
                    (f, code)
                })
                .collect();
            for circle in import_circles(&sources) {
                found.push(format!("{crate_src}: {}", circle.join(" <-> ")));
            }
        }
        assert!(
            found.is_empty(),
            "files that import each other, in a circle: move what they share to a file \
             both import, or take the lower one's need as a parameter: {found:#?}"
        );
    }

    #[test]
    fn a_circle_of_imports_is_found() {
        let sources = [
            ("a.rs", "use crate::b::B;"),
            ("b/mod.rs", "fn f() { crate::c::g(); }"),
            ("c.rs", "use crate::a::{A, x::Y};"),
            ("d.rs", "use crate::a::A;"),
        ]
        .map(|(f, c)| (f.to_owned(), c.to_owned()));
        assert_eq!(import_circles(&sources), [["a.rs", "b/mod.rs", "c.rs"]]);
        assert!(import_circles(&sources[1..]).is_empty());
    }

    #[test]
    fn run_rs_is_the_loop_only() {
        let path = src().join("run.rs");
        let lines = read(&path).lines().count();
        assert!(
            lines <= MAX_RUN_LINES,
            "{} has {lines} lines, more than {MAX_RUN_LINES}: it is the loop only; what \
             happens before the loop belongs to session/start.rs, a mode's work to its module",
            path.display()
        );
    }

    #[test]
    fn the_architecture_map_names_every_module_and_nothing_else() {
        let (repo, src) = (repo(), src());
        let map = read(&repo.join("docs/architecture.md"));
        let named = named_paths(&map);
        let mut modules = Vec::new();
        walk(&src, &src, &mut modules);
        // The crates below tracer's, by their paths from the repository.
        for crate_src in ["tracer-report/src", "tracer-host/src", "tracer-python/src"] {
            modules.push(format!("{crate_src}/"));
            walk(&repo, &repo.join(crate_src), &mut modules);
        }
        let unnamed: Vec<&String> = modules
            .iter()
            .filter(|m| m.ends_with(".rs") || m.ends_with('/'))
            .filter(|m| !named.contains(&m.as_str()))
            .collect();
        assert!(
            unnamed.is_empty(),
            "modules of tracer/src, tracer-host/src, tracer-python/src and tracer-report/src that \
             docs/architecture.md does not name (one line each: `path`: what it holds): {unnamed:#?}"
        );
        let misplaced: Vec<String> = blocks(&map)
            .iter()
            .flat_map(|block| misplaced_names(block, &repo, &src))
            .collect();
        assert!(
            misplaced.is_empty(),
            "docs/architecture.md names paths that are not where it says: a path with a \
             `/` is relative to tracer/src/ or to the repository, a bare file name is in \
             the folder (`path/`) named last before it in its paragraph, list item or \
             table row (or in tracer/src/ when none is); fix the name or name its folder first: \
             {misplaced:#?}"
        );
    }

    #[test]
    fn the_architecture_map_maps_every_xtask_source() {
        let repo = repo();
        let map = read(&repo.join("docs/architecture.md"));
        let named = named_paths(&map);
        let mut sources = Vec::new();
        walk(&repo, &repo.join("xtask/src"), &mut sources);
        let unnamed: Vec<&String> = sources
            .iter()
            .filter(|s| s.ends_with(".rs") && !named.contains(&s.as_str()))
            .collect();
        assert!(
            unnamed.is_empty(),
            "xtask sources that docs/architecture.md's map of xtask/src does not name \
             (one line each: `xtask/src/NAME.rs`: what it holds): {unnamed:#?}"
        );
    }

    #[test]
    fn analysis_uses_no_output_no_probe_and_no_proc_read() {
        let mut wrong = Vec::new();
        for (file, code) in program_sources("analysis/") {
            for path in paths_from(&code.text, "crate") {
                let module = path.strip_prefix("crate::").unwrap_or_default();
                let banned = |m: &&str| {
                    module == *m || module.strip_prefix(m).is_some_and(|r| r.starts_with("::"))
                };
                if NOT_FOR_ANALYSIS.iter().any(banned) {
                    wrong.push(format!("{file}: {path}"));
                }
            }
            let procfs = paths_from(&code.text, "crate")
                .into_iter()
                .filter_map(|p| p.strip_prefix("crate::host::").map(str::to_string))
                .chain(paths_from(&code.text, "procfs"))
                .filter(|p| p.starts_with("procfs"));
            for path in procfs {
                let last = path.rsplit("::").next().unwrap_or_default();
                if !last.starts_with(|c: char| c.is_ascii_uppercase()) {
                    wrong.push(format!("{file}: {path}"));
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(
            wrong.is_empty(),
            "tracer/src/analysis/ turns events and the maps' snapshot into the report: it \
             uses none of {NOT_FOR_ANALYSIS:?} and reads no /proc (a procfs type is data \
             and may be used, a procfs function may not). Ask the running system through \
             analysis::system::System (session/host_system.rs answers it) or have the caller pass the \
             figures in: {wrong:#?}"
        );
    }

    #[test]
    fn only_the_edge_reads_the_command_line() {
        let mut wrong = Vec::new();
        for (file, code) in program_sources("") {
            let edge = CLI_READERS
                .iter()
                .any(|r| file == *r || (r.ends_with('/') && file.starts_with(r)));
            if edge {
                continue;
            }
            for path in paths_from(&code.text, "crate") {
                if path == "crate::cli" || path.starts_with("crate::cli::") {
                    wrong.push(format!("{file}: {path}"));
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(
            wrong.is_empty(),
            "only {CLI_READERS:?} read the command line: a layer below owns its settings \
             (a type of its own, plain values) and the edge passes them in: {wrong:#?}"
        );
    }

    #[test]
    fn every_module_imports_only_the_layers_below_it() {
        let mut wrong = Vec::new();
        for (file, code) in program_sources("") {
            let module = file.split(['/', '.']).next().unwrap_or_default();
            let Some((_, allowed)) = LAYERS.iter().find(|(m, _)| *m == module) else {
                wrong.push(format!("{file}: its module {module} has no row in LAYERS"));
                continue;
            };
            for path in paths_from(&code.text, "crate") {
                let used = path.split("::").nth(1).unwrap_or_default();
                if used != module && !allowed.contains(&used) && !used.is_empty() {
                    wrong.push(format!("{file}: {path}"));
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(
            wrong.is_empty(),
            "imports against the layers of tidy.rs's LAYERS (data flows one way: a layer \
             takes what is below it as parameters or types, never reaches up): {wrong:#?}"
        );
    }

    #[test]
    fn only_procfs_names_proc_paths() {
        let mut wrong = Vec::new();
        for (file, code) in program_and_lower_sources() {
            if file.starts_with("host/procfs/") {
                continue;
            }
            for literal in &code.literals {
                let names_proc = literal.starts_with("/proc/") || literal == "/proc";
                if names_proc && !PROC_PREFIXES.contains(&(file.as_str(), literal.as_str())) {
                    wrong.push(format!("{file}: \"{literal}\""));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "sources outside procfs that name a /proc path: /proc is read in one place, so \
             add a function to tracer-host/src/procfs/ and call it; a prefix \
             only compared with a traced program's paths goes in tidy.rs's PROC_PREFIXES, \
             with why: {wrong:#?}"
        );
    }

    #[test]
    fn the_readme_is_a_front_door() {
        let readme = read(&repo().join("README.md"));
        let lines = readme.lines().count();
        assert!(
            lines <= MAX_README_LINES,
            "README.md has {lines} lines, more than {MAX_README_LINES}: it is the front \
             door (what it is, features in a line each, install, quick start, a report \
             excerpt, links); move the rest to a page of docs/ and link it"
        );
        let help: Vec<&str> = readme
            .lines()
            .filter(|line| line.starts_with("Usage: ") || line.trim() == "Options:")
            .collect();
        assert!(
            help.is_empty(),
            "README.md holds a pasted --help ({help:?}): link docs/usage.md instead, which \
             `tracer --help` and `man tracer` already match"
        );
        let map: Vec<&str> = named_paths(&readme)
            .into_iter()
            .filter(|name| name.ends_with(".rs") || name.contains("src/"))
            .collect();
        assert!(
            map.is_empty() && !readme.contains("tracer/src/"),
            "README.md maps the code ({map:?}): the code map is docs/architecture.md's \
             alone; link it"
        );
    }

    /// The platforms the README promises are the ones docs/limitations.md
    /// states and `cargo xtask kernels` checks: the same architectures in
    /// the requirements and in both lists of limitations, and the Debian
    /// kernels arm64 is checked on (every scenario on which of them).
    #[test]
    fn the_readme_and_the_limitations_name_the_same_platforms() {
        use crate::{arch::Arch, kernel_images::KERNELS};
        let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let readme = flat(read(&repo().join("README.md")));
        let limitations = flat(read(&repo().join("docs/limitations.md")));
        let mut arches: Vec<&str> = KERNELS
            .iter()
            .map(|k| match k.arch {
                Arch::X86_64 => "x86_64",
                Arch::Aarch64 => "arm64",
            })
            .collect();
        arches.dedup();
        assert_eq!(arches, ["x86_64", "arm64"], "the kernels' architectures");
        for (doc, text, sentence) in [
            (
                "README.md",
                &readme,
                "**Linux on x86_64 or arm64, 5.10 or newer**",
            ),
            ("README.md", &readme, "- x86_64 and arm64 only."),
            ("docs/limitations.md", &limitations, "x86-64 and arm64 only"),
        ] {
            assert!(text.contains(sentence), "{doc} no longer says {sentence:?}");
        }
        let arm64: Vec<&crate::kernel_images::Kernel> =
            KERNELS.iter().filter(|k| k.arch == Arch::Aarch64).collect();
        let every: Vec<&str> = arm64
            .iter()
            .filter(|k| k.scenarios.is_none())
            .map(|k| k.debian)
            .collect();
        let mut releases: Vec<&str> = arm64.iter().map(|k| k.debian).collect();
        releases.sort();
        let [every] = every[..] else {
            panic!("arm64 kernels with every scenario: {every:?}")
        };
        let (last, first) = releases.split_last().expect("arm64 kernels");
        let said = format!(
            "arm64 is checked on Debian {}'s and {last}'s kernels, with every scenario on \
             {every}'s only",
            first.join("'s, ")
        );
        assert!(readme.contains(&said), "README.md does not say {said:?}");
        let bullet = limitations
            .split(" - ")
            .find(|item| item.starts_with("arm64 ("))
            .expect("docs/limitations.md's arm64 item");
        // Each release once: "Debian 12's 3.11" names the CPython's too.
        let mut named: Vec<&str> = bullet
            .split(' ')
            .filter_map(|word| word.strip_suffix("'s"))
            .filter(|word| word.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        named.sort();
        named.dedup();
        assert_eq!(
            named, releases,
            "docs/limitations.md's arm64 kernels: {bullet}"
        );
        assert!(
            bullet.contains(&format!("every scenario on Debian {every}'s arm64")),
            "docs/limitations.md's arm64 item: {bullet}"
        );
    }

    #[test]
    fn every_relative_link_of_the_docs_resolves() {
        let repo = repo();
        let mut docs = vec![repo.join("README.md")];
        let mut pages = Vec::new();
        walk(&repo, &repo.join("docs"), &mut pages);
        docs.extend(
            pages
                .iter()
                .filter(|p| p.ends_with(".md"))
                .map(|p| repo.join(p)),
        );
        let mut broken = Vec::new();
        for doc in &docs {
            let text = read(doc);
            for link in relative_links(&text) {
                let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
                let target = if path.is_empty() {
                    doc.clone()
                } else {
                    doc.parent().unwrap().join(path)
                };
                let resolves = target.exists()
                    && (anchor.is_empty() || anchors(&read(&target)).iter().any(|a| a == anchor));
                if !resolves {
                    let name = doc.strip_prefix(&repo).unwrap_or(doc).display().to_string();
                    broken.push(format!("{name}: {link}"));
                }
            }
        }
        assert!(
            broken.is_empty(),
            "links of README.md and docs/ to a file or heading that is not there (a moved \
             section keeps no anchor: link its new heading): {broken:#?}"
        );
    }

    #[test]
    fn links_and_anchors_are_read_as_github_does() {
        assert_eq!(
            relative_links("[a](x.md#b) [c](https://d)\n```\n[g](h)\n```\n"),
            ["x.md#b"]
        );
        assert_eq!(
            anchors("# A b\n## Code map of `xtask/src`\n## A b\n```\n# no\n```"),
            ["a-b", "code-map-of-xtasksrc", "a-b-1"]
        );
    }

    #[test]
    fn lines_before_tests_stop_at_the_test_module() {
        assert_eq!(lines_before_tests("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
        assert_eq!(
            lines_before_tests("a\n#[cfg(test)]\n#[allow(x)]\npub mod t {\n}"),
            1
        );
        assert_eq!(lines_before_tests("a\n    #[cfg(test)]\nb\n"), 3);
        // A test-only import, item or out-of-line module is not the tests.
        assert_eq!(lines_before_tests("#[cfg(test)]\nuse a::B;\nc\nd\n"), 4);
        assert_eq!(
            lines_before_tests("#[cfg(test)]\npub mod fixtures;\nc\n"),
            3
        );
        assert_eq!(lines_before_tests("#[cfg(test)]\nimpl A {\n}\nc\n"), 4);
        assert_eq!(lines_before_tests(""), 0);
    }

    #[test]
    fn code_is_split_from_comments_and_strings() {
        let code = split_code(
            "// a \"x\"\nlet a = \"/proc/{pid}\"; /* \"y\" */ let c = '\"';\n\
             let b = r#\"q\"#; let d = \"e\\\"f\"; fn g<'a>() {}",
        );
        assert_eq!(code.literals, ["/proc/{pid}", "q", "e\\\"f"]);
        assert_eq!(
            code.text,
            "\nlet a = \"\";  let c = '\"';\nlet b = \"\"; let d = \"\"; fn g<'a>() {}"
        );
    }

    #[test]
    fn paths_are_read_through_use_trees() {
        let code = "use crate::{\n    a::{b, C as D},\n    e,\n};\nuse crate::f::*;\n\
                    fn x() { crate::g::h(1); procfs::stat(2); my_crate::i(); }";
        assert_eq!(
            paths_from(code, "crate"),
            [
                "crate::a::b",
                "crate::a::C",
                "crate::e",
                "crate::f::*",
                "crate::g::h"
            ]
        );
        assert_eq!(paths_from(code, "procfs"), ["procfs::stat"]);
    }

    #[test]
    fn named_paths_are_sources_in_backquotes() {
        assert_eq!(
            named_paths("- `analysis/`: x; `run.rs` and `Collector::finish`, `a b.rs`"),
            ["analysis/", "run.rs"]
        );
    }

    #[test]
    fn a_bare_name_is_in_the_folder_named_before_it() {
        let (repo, src) = (repo(), src());
        let names = |block| misplaced_names(block, &repo, &src);
        assert!(names("`kernel/probes/` (`mod.rs`, `maps.rs`)").is_empty());
        assert!(names("`analysis/signals/` (+ `changes.rs`)").is_empty());
        assert!(names("`run.rs` and `session/` and `drain.rs`").is_empty());
        assert_eq!(
            names("`kernel/probes/` then `run.rs`"),
            ["run.rs (not in tracer/src/kernel/probes/)"]
        );
        assert_eq!(names("`changes.rs`"), ["changes.rs (not in tracer/src/)"]);
        // A file names no folder: what follows it is read from tracer/src.
        assert_eq!(
            names("`analysis/signals/mod.rs` (+ `changes.rs`)"),
            ["changes.rs (not in tracer/src/)"]
        );
        assert_eq!(names("`gone/x.rs`"), ["gone/x.rs"]);
    }
}
