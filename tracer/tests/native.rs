//! `--native`: the native frames under and between the Python frames of
//! each sample, unwound in the kernel from each binary's `.eh_frame`.
//! A Python function that calls zlib has zlib's `deflate` under it (on
//! Debian's static 3.11, pyenv's shared 3.12 whose zlib module is loaded
//! after the trace starts, and sid's 3.14, whose eval loop GCC split in
//! two); a C extension built here with gcc is named by its symbols, a
//! static function of it, stripped, by its file and address, or by its
//! name with a MiniDebugInfo section; the vDSO's `clock_gettime` is
//! unwound through. They are on by default, the interpreter's own frames
//! left out unless `--native=all`; `--native=off` turns them off. A fork
//! made by that extension and a signal delivered while it spins carry its
//! native frames too.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Samples whose stack holds `python_fn`, and of those, how many have
/// the native function `native_fn` (by name) inside it, i.e. innermore.
fn under(report: &Value, python_fn: &str, native_fn: impl Fn(&Value) -> bool) -> (u64, u64) {
    let mut with_python = 0;
    let mut with_native = 0;
    for stack in report["python"]["stacks"].as_array().expect("stacks") {
        let samples = stack["samples"].as_u64().unwrap();
        let frames = stack["frames"].as_array().unwrap();
        let Some(at) = frames
            .iter()
            .position(|f| f["function"] == python_fn && f.get("native").is_none())
        else {
            continue;
        };
        with_python += samples;
        if frames[..at]
            .iter()
            .any(|f| f["native"] == true && native_fn(f))
        {
            with_native += samples;
        }
    }
    (with_python, with_native)
}

/// The unwinder's figures: every sample came with a native stack, and
/// the eval frames met their Python frames in most of them.
fn check_native_figures(report: &Value) {
    let python = &report["python"];
    let native = &python["native"];
    let samples = python["samples"].as_u64().unwrap();
    assert!(samples >= 50, "too few samples: {python:#}");
    // Samples before the process's tables were read have Python frames
    // only (the report says how many: `samples` against
    // `native.samples`): none behind the handshake, ~5% without (sid's).
    let unwound = native["samples"].as_u64().unwrap();
    assert!(
        unwound * 10 >= samples * 8,
        "{unwound} of {samples}: {native:#}"
    );
    let complete = native["complete"].as_u64().unwrap();
    assert!(complete * 10 >= unwound * 9, "complete unwinds: {native:#}");
    assert!(native["binaries"].as_u64().unwrap() >= 2, "{native:#}");
    assert_eq!(native["binaries_without_table"], 0, "{native:#}");
    // Python frames are still every one named.
    assert_eq!(python["unresolved_frames"], 0, "{python:#}");
}

/// The line view stays Python's: the line that called into C is charged
/// with the time below it.
fn check_hottest_line(report: &Value, function: &str) {
    let top = &report["python"]["lines"][0];
    assert_eq!(top["function"], function, "{top}");
    assert!(top["line"].as_u64().unwrap() > 0, "{top}");
}

/// Launches `command` behind a handshake (`after_go.py`, which execs it
/// as the same process once the tracer has published the interpreter's
/// native mappings: its binaries are read by then, on the tracer's
/// thread for them, however loaded the machine) and returns the report.
/// The command's own binaries are then known from its first sample;
/// those it loads later (an import) still come in as they are met.
fn trace_native(scratch: &Scratch, extra: &[&str], command: &[String]) -> Value {
    let mut wrapped = vec![command[0].clone(), workload("native/after_go.py")];
    wrapped.extend_from_slice(command);
    launch_with(
        scratch,
        &wrapped,
        Until::Exit,
        &["pid {pid}: native mappings published"],
        extra,
    )
}

fn zlib_under_compress_loop(name: &str, command: Vec<String>, handshake: bool) {
    require_root();
    let scratch = Scratch::new(name);
    let report = if handshake {
        trace_native(&scratch, &["--rate", "999"], &command)
    } else {
        trace_command(&scratch, &["--rate", "999"], &command)
    };
    check_native_figures(&report);
    check_hottest_line(&report, "compress_loop");
    let (loop_samples, with_deflate) = under(&report, "compress_loop", |f| {
        f["function"] == "deflate" && f["file"].as_str().unwrap().contains("libz")
    });
    assert!(
        loop_samples >= 50,
        "compress_loop sampled {loop_samples} times"
    );
    assert!(
        with_deflate * 2 >= loop_samples,
        "deflate under compress_loop in {with_deflate} of {loop_samples} samples: {:#}",
        report["python"]["stacks"]
    );
    // Rooted in Python: `main`, `_start`, `Py_RunMain` are left out.
    for stack in report["python"]["stacks"].as_array().unwrap() {
        let outermost = stack["frames"].as_array().unwrap().last().unwrap();
        assert!(outermost.get("native").is_none(), "{stack}");
    }
}

#[test]
fn deflate_is_under_compress_loop_on_debian_3_11() {
    zlib_under_compress_loop(
        "native_zlib_311",
        python_command(
            python("/usr/bin/python3.11"),
            "native/zlib_loop.py",
            &["1000"],
        ),
        true,
    );
}

/// A worker forked without `exec` (a pre-fork server's) is unwound and
/// named from its first samples: the kernel gave it its parent's mappings.
#[test]
fn deflate_is_under_compress_loop_in_a_forked_child() {
    zlib_under_compress_loop(
        "native_zlib_fork",
        python_command(
            python("/usr/bin/python3.11"),
            "native/zlib_loop.py",
            &["2000", "fork"],
        ),
        true,
    );
}

/// pyenv's 3.12 links libpython and loads zlib's module after start: its
/// library comes into the unwinder once its samples meet it.
#[test]
fn deflate_is_under_compress_loop_on_pyenv_3_12() {
    zlib_under_compress_loop(
        "native_zlib_312",
        python_command(
            python("/root/.pyenv/versions/3.12.1/bin/python3.12"),
            "native/zlib_loop.py",
            &["1000"],
        ),
        true,
    );
}

/// sid's 3.14 in its own root and pid namespace (as a container): GCC
/// moved most of its eval loop out of `_PyEval_EvalFrameDefault`'s symbol
/// into an unnamed `.cold` part.
#[test]
fn deflate_is_under_compress_loop_on_sid_3_14() {
    let root = std::env::var("TRACER_PY314_ROOT")
        .unwrap_or_else(|_| "/var/cache/tracer-tests/sid-python3.14".into());
    assert!(
        std::path::Path::new(&root)
            .join("usr/bin/python3.14")
            .exists(),
        "no Python 3.14 root at {root}: `cargo xtask test` makes it"
    );
    // The workload, inside the root.
    let inside = "/tmp/tracer-native-zlib_loop.py";
    std::fs::copy(workload("native/zlib_loop.py"), format!("{root}{inside}"))
        .expect("copy the workload into the root");
    let command = ["unshare", "--pid", "--fork", "--mount", "--mount-proc"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--root={root}")])
        .chain(["/usr/bin/python3.14", "-B", inside, "3000"].map(String::from))
        .collect();
    // No handshake (its "ready" would say its pid in the namespace): a
    // longer run, so that the samples before its tables are read (~0.1 s,
    // more on a loaded machine) are few.
    zlib_under_compress_loop("native_zlib_314", command, false);
}

/// How the test's C extension is stripped.
enum Strip {
    /// `strip --strip-all`: its static function is in no symbol table.
    All,
    /// As Fedora and RHEL ship binaries: stripped, with the function
    /// symbols `.dynsym` lacks in a MiniDebugInfo section.
    MiniDebugInfo,
}

/// Builds `spin.c` into the scratch directory as the module `spin`,
/// stripped so.
fn build_spin_extension(scratch: &Scratch, strip: Strip) {
    let module = scratch.path("spin.cpython-311-x86_64-linux-gnu.so");
    let unstripped = scratch.path("spin-unstripped.so");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-I/usr/include/python3.11", "-o"])
        .arg(&unstripped)
        .arg(workload("native/spin.c"))
        .output()
        .expect("run gcc");
    assert!(built.status.success(), "gcc: {}", text(&built.stderr));
    let stripped = match strip {
        Strip::All => Command::new("strip")
            .args(["--strip-all", "-o", &module, &unstripped])
            .output(),
        Strip::MiniDebugInfo => Command::new("sh")
            .args([&workload("native/mini_debuginfo.sh"), &unstripped, &module])
            .output(),
    }
    .expect("run strip");
    assert!(
        stripped.status.success(),
        "strip: {}",
        text(&stripped.stderr)
    );
}

/// Builds `spin.c` into the scratch directory, stripped so, and traces
/// `spin_loop` calling it; checks the exported function is under the
/// loop and returns the report.
fn trace_spin_extension(scratch: &Scratch, strip: Strip) -> Value {
    build_spin_extension(scratch, strip);
    let command = python_command(
        python("/usr/bin/python3.11"),
        "native/spin_loop.py",
        &[scratch.dir.to_str().unwrap(), "300"],
    );
    let report = trace_native(scratch, &["--native", "--rate", "999"], &command);
    check_native_figures(&report);
    check_hottest_line(&report, "spin_loop");
    let (loop_samples, outer) = under(&report, "spin_loop", |f| {
        f["function"] == "tracer_test_spin_outer" && f["file"].as_str().unwrap().ends_with(".so")
    });
    assert!(loop_samples >= 50, "spin_loop sampled {loop_samples} times");
    assert!(
        outer * 10 >= loop_samples * 9,
        "tracer_test_spin_outer under spin_loop in {outer} of {loop_samples} samples: {:#}",
        report["python"]["stacks"]
    );
    report
}

#[test]
fn a_c_extension_is_named_by_its_symbols() {
    require_root();
    let scratch = Scratch::new("native_c_extension");
    let report = trace_spin_extension(&scratch, Strip::All);
    let (loop_samples, _) = under(&report, "spin_loop", |_| true);
    // The static function, innermost: by its file and start address.
    let hidden = |f: &Value| {
        f["function"]
            .as_str()
            .unwrap()
            .starts_with("spin.cpython-311-x86_64-linux-gnu.so+0x")
    };
    let (_, with_hidden) = under(&report, "spin_loop", hidden);
    assert!(
        with_hidden * 2 >= loop_samples,
        "the static function in {with_hidden} of {loop_samples}: {:#}",
        report["python"]["stacks"]
    );
    // The native function view has them, marked native, the static
    // function first; the Python view charges their time to spin_loop.
    let top = &report["python"]["native_functions"][0];
    assert_eq!(top["native"], true, "{top}");
    assert!(hidden(top), "{top}");
    assert_eq!(report["python"]["hotspots"][0]["function"], "spin_loop");
}

/// A C++ library's function template, called with ctypes, is named as
/// C++ names it (`tracer_test::spin<double>`, its template argument kept,
/// no parameters), never by its mangled symbol: in the JSON as in the
/// text.
#[test]
fn a_cpp_function_template_is_named_demangled() {
    require_root();
    let scratch = Scratch::new("native_cpp_template");
    let built = Command::new("g++")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(scratch.path("libtemplates.so"))
        .arg(workload("native/templates.cpp"))
        .output()
        .expect("run g++");
    assert!(built.status.success(), "g++: {}", text(&built.stderr));
    let command = python_command(
        python("/usr/bin/python3.11"),
        "native/template_loop.py",
        &[scratch.dir.to_str().unwrap(), "100"],
    );
    let report = trace_native(&scratch, &["--rate", "999"], &command);
    check_hottest_line(&report, "template_loop");
    let (loop_samples, in_template) = under(&report, "template_loop", |f| {
        f["function"] == "tracer_test::spin<double>"
            && f["file"].as_str().unwrap().ends_with("libtemplates.so")
    });
    assert!(
        in_template * 2 >= loop_samples && loop_samples > 0,
        "the template in {in_template} of {loop_samples}: {:#}",
        report["python"]["stacks"]
    );
    let mangled: Vec<&Value> = report["python"]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["frames"].as_array().unwrap())
        .filter(|f| f["function"].as_str().unwrap().starts_with("_Z"))
        .collect();
    assert!(mangled.is_empty(), "mangled names: {mangled:?}");
}

/// A stripped extension with MiniDebugInfo (`.gnu_debugdata`, as Fedora's
/// and RHEL's binaries): its static function is named by its name, not
/// by its file and address.
#[test]
fn a_static_function_is_named_by_mini_debuginfo() {
    require_root();
    let scratch = Scratch::new("native_mini_debuginfo");
    let report = trace_spin_extension(&scratch, Strip::MiniDebugInfo);
    let (loop_samples, _) = under(&report, "spin_loop", |_| true);
    let (_, with_hidden) = under(&report, "spin_loop", |f| {
        f["function"] == "spin_hidden" && f["file"].as_str().unwrap().ends_with(".so")
    });
    assert!(
        with_hidden * 2 >= loop_samples,
        "spin_hidden in {with_hidden} of {loop_samples}: {:#}",
        report["python"]["stacks"]
    );
    let top = &report["python"]["native_functions"][0];
    assert_eq!(top["function"], "spin_hidden", "{top}");
    assert_eq!(top["native"], true, "{top}");
    assert_eq!(report["python"]["native"]["unreadable_debugdata"], 0);
}

/// A loop reading the clock: most of its time is in the vDSO's
/// `clock_gettime`, which is unwound through (the tracer's own vDSO's
/// table) to libc and the interpreter, so nearly every stack is complete
/// (without it, half stopped in the vDSO).
#[test]
fn the_vdso_is_unwound_under_a_clock_loop() {
    require_root();
    let scratch = Scratch::new("native_vdso");
    let command = python_command(
        python("/usr/bin/python3.11"),
        "native/clock_loop.py",
        &["5000000"],
    );
    // The interpreter calls libc's clock_gettime, which calls the vDSO's:
    // frames shown with the interpreter's own only.
    let report = trace_native(&scratch, &["--native=all", "--rate", "999"], &command);
    check_native_figures(&report);
    assert_eq!(report["python"]["native"]["stopped_without_table"], 0);
    let in_vdso = |f: &Value| f["native"] == true && f["file"] == "[vdso]";
    let (loop_samples, with_vdso) = under(&report, "clock_loop", in_vdso);
    assert!(
        with_vdso * 10 >= loop_samples,
        "the vDSO under clock_loop in {with_vdso} of {loop_samples} samples: {:#}",
        report["python"]["stacks"]
    );
    // Named from its .dynsym, and its caller is libc's clock_gettime:
    // the unwind went on past it.
    for stack in report["python"]["stacks"].as_array().unwrap() {
        let frames = stack["frames"].as_array().unwrap();
        let Some(at) = frames.iter().position(in_vdso) else {
            continue;
        };
        assert_eq!(frames[at]["function"], "__vdso_clock_gettime", "{stack}");
        let caller = &frames[at + 1];
        assert!(
            caller["function"]
                .as_str()
                .unwrap()
                .ends_with("clock_gettime")
                && caller["file"].as_str().unwrap().contains("libc.so"),
            "{stack}"
        );
    }
}

/// Samples of `report` with a native frame of `binary` in their stack.
fn samples_with_frames_of(report: &Value, binary: &str) -> u64 {
    report["python"]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["native"] == true && f["file"] == binary)
        })
        .map(|s| s["samples"].as_u64().unwrap())
        .sum()
}

/// By default (no flag) native frames are on, the interpreter's own left
/// out: pure-Python work reads as without native frames, its function's
/// time its own; `--native=all` shows the interpreter's frames under it.
#[test]
fn the_interpreters_own_frames_are_left_out_unless_all() {
    require_root();
    let interpreter = "/usr/bin/python3.11";
    let command = python_command(python(interpreter), "native/pure_loop.py", &["5000"]);

    let scratch = Scratch::new("native_default");
    let report = trace_native(&scratch, &["--rate", "999"], &command);
    check_native_figures(&report);
    let python = &report["python"];
    assert_eq!(python["native"]["interpreter_frames"], false, "{python:#}");
    assert_eq!(
        samples_with_frames_of(&report, interpreter),
        0,
        "{:#}",
        python["stacks"]
    );
    // Nor libc as the interpreter calls it (malloc, memcpy): no native
    // frame in this program, but code in no mapping known yet (a library
    // an import loaded a moment before: its stack stopped there, counted
    // in `stopped_outside_mappings`), by its address.
    let mut unknown = 0;
    for stack in python["stacks"].as_array().unwrap() {
        for frame in stack["frames"].as_array().unwrap() {
            if frame["file"] == "[unknown]" {
                unknown += stack["samples"].as_u64().unwrap();
            } else {
                assert!(frame.get("native").is_none(), "{stack}");
            }
        }
    }
    assert!(
        unknown
            <= python["native"]["stopped_outside_mappings"]
                .as_u64()
                .unwrap(),
        "{unknown} samples in unknown code: {:#}",
        python["native"]
    );
    let top = &python["hotspots"][0];
    assert_eq!(top["function"], "crunch", "{top}");

    let scratch = Scratch::new("native_all");
    let all = trace_native(&scratch, &["--native=all", "--rate", "999"], &command);
    check_native_figures(&all);
    assert_eq!(all["python"]["native"]["interpreter_frames"], true);
    let (crunch, with_interpreter) = under(&all, "crunch", |f| f["file"] == interpreter);
    assert!(crunch >= 50, "crunch sampled {crunch} times");
    // Integer arithmetic and list growth run in the interpreter's C
    // functions most of the time (~half the samples here), the rest in
    // the eval loop itself.
    assert!(
        with_interpreter * 5 >= crunch,
        "interpreter frames under crunch in {with_interpreter} of {crunch}: {:#}",
        all["python"]["stacks"]
    );
    // The Python view is the same: the innermost Python frame's.
    assert_eq!(all["python"]["hotspots"][0]["function"], "crunch");
}

/// `--native=off`: Python frames only.
#[test]
fn without_native_python_frames_only() {
    require_root();
    let scratch = Scratch::new("native_off");
    let command = python_command(
        python("/usr/bin/python3.11"),
        "native/zlib_loop.py",
        &["300"],
    );
    let report = trace_command(&scratch, &["--native=off", "--rate", "999"], &command);
    let python = &report["python"];
    assert!(python["native"].is_null(), "{python:#}");
    let stacks = python["stacks"].as_array().unwrap();
    assert!(!stacks.is_empty());
    for stack in stacks {
        for frame in stack["frames"].as_array().unwrap() {
            assert!(frame.get("native").is_none(), "{frame}");
        }
    }
    // The time in zlib goes to the line that called it.
    assert_eq!(
        python["hotspots"][0]["function"], "compress_loop",
        "{python:#}"
    );
}

/// `native_events.py` traced (`extra`: tracer options): its report and
/// what it knows. The tracer attaches once the extension is loaded, so
/// the mappings it gives the kernel have it (a library loaded later is
/// learnt from the first stack that meets it), the workload goes on once
/// it says it is tracing, and the tracer is stopped while the workload
/// still lives (its code objects readable however late the tracer is).
fn native_events(scratch: &Scratch, extra: &[&str]) -> (Value, Value) {
    use std::io::Write;
    build_spin_extension(scratch, Strip::All);
    let facts = scratch.path("facts.json");
    let report_path = scratch.path("report.json");
    let command = python_command(
        python("/usr/bin/python3.11"),
        "native/native_events.py",
        &[scratch.dir.to_str().unwrap(), &facts],
    );
    let (mut target, mut out, pid) = spawn_until_ready_with_stdout(&command);
    let args = [&["-v", "--format", "json", "-o", &report_path], extra].concat();
    let (mut tracer, mut stderr) = attach_tracer(pid, &args);
    // The binaries are read on a thread of their own: go once the kernel
    // has the process's mappings.
    if !extra.contains(&"--native=off") {
        let published = format!("pid {pid}: native mappings published");
        if !stderr.has_seen(&published) {
            stderr.wait_for(&published);
        }
    }
    // The -v log from here on is read beside the run (a full pipe would
    // stop the tracer).
    let log = std::thread::spawn(move || stderr.rest());
    say_go(&mut target);
    out.wait_for("done");
    tracer.signal("INT");
    assert!(tracer.wait().success());
    let _ = std::fs::write(scratch.path("tracer.log"), log.join().unwrap_or_default());
    let stdin = target.child.stdin.as_mut().unwrap();
    stdin.write_all(b"exit\n").unwrap();
    stdin.flush().unwrap();
    assert!(target.wait().success());
    (load_json(&report_path), load_json(&facts))
}

/// The fork stack of child `pid` (its `processes[].python_stacks`), and
/// that `zombies[].spawned_from` has the same frames.
fn spawn_stack(report: &Value, pid: &Value) -> Vec<String> {
    let process = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == *pid)
        .unwrap_or_else(|| panic!("no process {pid}: {:#}", report["processes"]));
    let frames = &process["python_stacks"][0]["frames"];
    let zombie = report["zombies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["pid"] == *pid)
        .unwrap_or_else(|| panic!("no zombie {pid}: {:#}", report["zombies"]));
    assert_eq!(zombie["spawned_from"], *frames, "{zombie:#}");
    strings(frames)
}

/// The stacks SIGUSR1 was delivered in (`signals[].python_stacks`).
fn delivery_stacks(report: &Value) -> Vec<Vec<String>> {
    let usr1 = report["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == "SIGUSR1")
        .unwrap_or_else(|| panic!("no SIGUSR1: {:#}", report["signals"]));
    assert_eq!(usr1["delivered"], 1, "{usr1:#}");
    usr1["python_stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| strings(&s["frames"]))
        .collect()
}

fn strings(frames: &Value) -> Vec<String> {
    frames
        .as_array()
        .unwrap_or_else(|| panic!("not frames: {frames}"))
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// Where `frame` (by its start) is in `stack`.
fn at(stack: &[String], frame: &str) -> Option<usize> {
    stack.iter().position(|f| f.starts_with(frame))
}

/// A fork made in C and a signal that interrupted C name the C function
/// under the Python line that called it: the native stack of the forking
/// thread at `fork()`, and of the receiving thread where the signal
/// interrupted it (`signal_deliver`, on its way back to user mode).
#[test]
fn a_fork_and_a_signal_in_c_name_the_c_function() {
    require_root();
    let scratch = Scratch::new("native_events");
    let (report, facts) = native_events(&scratch, &["--native"]);
    let module = "spin.cpython-311-x86_64-linux-gnu.so]";

    let forked = spawn_stack(&report, &facts["c_child"]);
    let c = at(&forked, "tracer_test_fork_child [").unwrap_or_else(|| panic!("{forked:#?}"));
    assert!(forked[c].ends_with(module), "{forked:#?}");
    let line = at(&forked, "fork_in_c (").unwrap_or_else(|| panic!("{forked:#?}"));
    assert!(c < line, "the C function is under its caller: {forked:#?}");
    // Rooted in Python, as a sample is.
    assert!(
        forked.last().unwrap().starts_with("<module> ("),
        "{forked:#?}"
    );
    // The Python line that forked the signal's sender: no C of the test's.
    let sender = spawn_stack(&report, &facts["sender"]);
    assert!(at(&sender, "spin_in_c (").is_some(), "{sender:#?}");
    assert!(!sender.iter().any(|f| f.contains(module)), "{sender:#?}");

    let delivered = delivery_stacks(&report);
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    let stack = &delivered[0];
    let c = at(stack, "tracer_test_spin_until_signal [").unwrap_or_else(|| panic!("{stack:#?}"));
    assert!(stack[c].ends_with(module), "{stack:#?}");
    let line = at(stack, "spin_in_c (").unwrap_or_else(|| panic!("{stack:#?}"));
    assert!(c < line, "the C function is under its caller: {stack:#?}");
}

/// Without native frames the same events carry the Python lines alone.
#[test]
fn without_native_kernel_events_have_python_frames_only() {
    require_root();
    let scratch = Scratch::new("native_events_off");
    let (report, facts) = native_events(&scratch, &["--native=off"]);
    let forked = spawn_stack(&report, &facts["c_child"]);
    assert!(forked[0].starts_with("fork_in_c ("), "{forked:#?}");
    assert!(!forked.iter().any(|f| f.contains(" [")), "{forked:#?}");
    let delivered = delivery_stacks(&report);
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert!(delivered[0][0].starts_with("spin_in_c ("), "{delivered:#?}");
    assert!(
        !delivered[0].iter().any(|f| f.contains(" [")),
        "{delivered:#?}"
    );
}
