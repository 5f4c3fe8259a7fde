//! Frames of code objects freed right after they ran are named: a real
//! pytest run (from PyPI, cached by `cargo xtask test`) imports dozens of
//! modules and three test modules that work at import time: a loop, and
//! dataclasses and named tuples made (methods made with `exec` / `eval`). Their `<module>` code objects
//! are freed once imported, often before the tracer reads the samples that
//! ran them; the sampler copies the names of each code object the first
//! time it meets it, and those frames are named from that copy.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn pytest_site() -> String {
    if let Ok(why) = std::env::var("TRACER_PYTEST_ERROR") {
        panic!("`cargo xtask test` could not install pytest: {why}");
    }
    let site = std::env::var("TRACER_PYTEST")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/pytest-9.2.0".into());
    assert!(
        std::path::Path::new(&site).join("pytest").exists(),
        "no pytest in {site}: `cargo xtask test` installs it"
    );
    site
}

/// Every Python frame of every sampled stack (native frames, under them
/// by default, are not code objects).
fn frames(report: &Value) -> impl Iterator<Item = (&Value, u64)> {
    report["python"]["stacks"]
        .as_array()
        .expect("python.stacks")
        .iter()
        .flat_map(|stack| {
            let samples = stack["samples"].as_u64().unwrap();
            stack["frames"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|frame| frame.get("native").is_none())
                .map(move |frame| (frame, samples))
        })
}

fn pytest_run_is_all_named(name: &str, interpreter: &str) {
    require_root();
    let site = pytest_site();
    let scratch = Scratch::new(name);
    let report_path = scratch.path("report.json");
    let suite = workload("pytest_suite");
    let output = Command::new(TRACER)
        .args(["--quiet", "--rate", "999", "--format", "json", "-o"])
        .arg(&report_path)
        .args(["--", python(interpreter), "-B", "-m", "pytest", "-q"])
        .args(["-p", "no:cacheprovider", &suite])
        .env("PYTHONPATH", &site)
        // What the symbolizer did with each code object, said on a
        // failure below (the copies, and the objects found freed).
        .env("RUST_LOG", "tracer::python::symbols=debug")
        .current_dir(&scratch.dir)
        .output()
        .expect("run the tracer");
    assert_exit(&output, 0);
    assert!(
        text(&output.stdout).contains("3 passed"),
        "pytest: {}",
        text(&output.stdout)
    );
    let report = load_json(&report_path);
    let python = &report["python"];
    assert_eq!(python["status"], "sampled", "{python:#}");
    assert!(python["samples"].as_u64().unwrap() > 0, "{python:#}");
    // The build before the sampler copied names left 38-54 of them
    // `<code 0x...>` on this run.
    let unresolved: Vec<String> = frames(&report)
        .filter(|(f, _)| f["file"] == "?")
        .map(|(f, n)| format!("{} x{n}", f["qualname"]))
        .collect();
    assert_eq!(python["unresolved_frames"], 0, "unresolved: {unresolved:?}");
    assert!(unresolved.is_empty(), "{unresolved:?}");
    // Named from the copies: a name, a file and the `def` line, no line.
    let copied: Vec<&Value> = frames(&report)
        .filter(|(f, _)| f["line"] == 0)
        .map(|(f, _)| f)
        .collect();
    let without_line: u64 = frames(&report)
        .filter(|(f, _)| f["line"] == 0)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(python["frames_without_line"], without_line);
    assert!(
        !copied.is_empty(),
        "no frame was named from the sampler's copy: none was freed before it was read?"
    );
    let log = text(&output.stderr);
    for frame in &copied {
        let (qualname, file) = (
            frame["qualname"].as_str().unwrap(),
            frame["file"].as_str().unwrap(),
        );
        assert!(!qualname.is_empty() && !file.is_empty(), "{frame}");
        // On a failure: what the tracer saw of that file's code objects.
        let seen: Vec<&str> = log.lines().filter(|l| l.contains(file)).collect();
        assert!(
            frame["first_line"].as_u64().unwrap() > 0,
            "{frame}\ntorn samples: {}\n{seen:#?}",
            python["samples_torn"]
        );
    }
    // The test modules' own import work is in the samples, by file.
    for module in [
        "test_module_level_work",
        "test_dataclasses_at_import",
        "test_namedtuples_at_import",
    ] {
        let file = format!("{suite}/{module}.py");
        assert!(
            frames(&report).any(|(f, _)| f["qualname"] == "<module>" && f["file"] == file.as_str()),
            "no sample in {file}'s <module>"
        );
    }
}

#[test]
fn a_pytest_run_has_no_unresolved_frame_static_3_11() {
    pytest_run_is_all_named("code_names_static_3_11", STATIC_PYTHON);
}

#[test]
fn a_pytest_run_has_no_unresolved_frame_pyenv_3_12() {
    pytest_run_is_all_named(
        "code_names_pyenv_3_12",
        "/root/.pyenv/versions/3.12.1/bin/python3.12",
    );
}
