//! Names in the text report: the interpreter's line and pids, and Python
//! thread names in every per-thread view.

use super::*;

/// The text report names the interpreter (version, binary as the process
/// sees it, static or shared, release build, its root, the child it runs
/// in) and shows the pid namespace's pids.
pub(crate) fn text_names_the_interpreter(interpreter: &Interpreter) {
    require_root();
    let test = format!("text-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("matrix_proc.py");
    let out = files.path("facts.json");
    let report_path = scratch.path("report.txt");
    let mut args = vec![
        "--quiet".to_owned(),
        "-o".into(),
        report_path.clone(),
        "--".into(),
    ];
    args.extend(interpreter.command(Launch::PidNs, &[&script, &out]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = tracer(&args);
    assert_exit(&output, 0);
    let report = std::fs::read_to_string(&report_path).unwrap();
    let facts = files.load(&out);
    let version = facts["version"].as_str().unwrap();
    let build = match interpreter.linkage {
        "shared" => "shared libpython",
        other => other,
    };
    let debug = if interpreter.debug {
        "debug build"
    } else {
        "release build"
    };
    let threading = if interpreter.free_threaded {
        ", free-threaded"
    } else {
        ""
    };
    let mut expected = format!(
        "PYTHON: CPython {version}, {} ({build}, {debug}{threading})",
        interpreter.binary
    );
    if !files.root.is_empty() {
        expected.push_str(&format!(" in root {}", files.root));
    }
    expected.push_str(", in child pid ");
    assert!(report.contains(&expected), "no `{expected}` in:\n{report}");
    // The PROCESSES table has an `ns pid` column: python is 1 there.
    let header = report
        .lines()
        .find(|l| l.trim_start().starts_with("pid") && l.contains("ns pid"))
        .unwrap_or_else(|| panic!("no `ns pid` column:\n{report}"));
    assert!(header.contains("ppid"), "{header}");
    let python_row = report
        .lines()
        .find(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 3 && words[1] == "1" && words[3].starts_with("python3")
        })
        .unwrap_or_else(|| panic!("no PROCESSES row with ns pid 1:\n{report}"));
    let host_pid = python_row.split_whitespace().next().unwrap();
    assert!(
        report.contains(&format!(", in child pid {host_pid}\n")),
        "{report}"
    );
}

/// Python thread names in every per-thread view (see
/// [`common::check_thread_names`]).
pub(crate) fn thread_names(interpreter: &Interpreter) {
    require_root();
    let test = format!("thread-names-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_thread_names.py");
    let out = files.path("workload.json");
    let command = interpreter.command(Launch::Chroot, &[&script, &out]);
    let report = common::trace_until_done(&scratch, &command);
    check_interpreter(&report, interpreter, &files);
    common::check_thread_names(&report, &files.load(&out), interpreter.name);
}
