//! Signals: deliveries to a Python handler, who changed a disposition or
//! blocked a signal (by Python line), and when the handler really ran.

use super::*;

/// 25 SIGUSR1 by kill() and 3 by pthread_kill() to a Python handler.
pub(crate) fn signals(interpreter: &Interpreter) {
    let Traced { report, facts, .. } = traced_from_start(interpreter, "signals", "signals_self.py");
    let pid = pid_of(&facts["pid"]);
    let (n, t) = (u64_of(&facts["sent"]), u64_of(&facts["sent_to_thread"]));
    assert_eq!((n, t), (25, 3));
    assert_eq!(u64_of(&facts["handled"]), n + t);
    let groups = signal_groups(&report, "SIGUSR1", pid);
    assert_eq!(groups.len(), 2, "{groups:#?}");
    for (code, syscall, count) in [("SI_USER", "kill", n), ("SI_TKILL", "tgkill", t)] {
        let g = groups
            .iter()
            .find(|g| g["code"] == code)
            .unwrap_or_else(|| panic!("no {code} group: {groups:#?}"));
        assert_eq!(g["syscall"], syscall);
        assert_eq!(g["sender"]["pid"], pid);
        assert_eq!(u64_of(&g["generated"]), count, "{code}: {g:#}");
        assert_eq!(u64_of(&g["delivered"]), count, "{code}: {g:#}");
        assert_eq!(u64_of(&g["ignored"]), 0);
        assert_eq!(u64_of(&g["pending_at_end"]), 0);
        assert_eq!(g["disposition"], "handler");
        assert_eq!(u64_of(&g["dispositions"]["handler"]), count);
    }
    assert_eq!(u64_of(&report["signal_log"]["total"]), 2 * (n + t));
}

/// Who held a signal back, named by its line of Python: SIGTERM set to
/// SIG_IGN by a library function, then one ignored; SIGINT blocked by
/// `pthread_sigmask` while one arrives, delivered at the unblock. CPython's
/// own start-up settings are named as such.
pub(crate) fn signal_changes(interpreter: &Interpreter) {
    require_root();
    let test = format!("signal-changes-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_signal_changes.py");
    let out = files.path("workload.json");
    let report = common::launch_until_done(
        &scratch,
        &interpreter.command(Launch::Chroot, &[&script, &out]),
    );
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    assert_eq!(facts["keyboard_interrupts"], 1, "{facts:#}");
    let pid = u64_of(&facts["pid"]);
    let host_script = files.host(&script);
    let line = |needle: &str| line_of(&host_script, needle);
    let name = interpreter.name;
    // SIGTERM: set to be ignored by quiet_library, then one ignored.
    let actions = report["signal_actions"].as_array().unwrap();
    let term = actions
        .iter()
        .find(|a| a["pid"] == pid && a["signal"] == "SIGTERM")
        .unwrap_or_else(|| panic!("{name}: no SIGTERM action: {actions:#?}"));
    assert_eq!(term["action"], "ignore");
    assert_eq!(
        term["set_by"],
        "python",
        "{name}: {term:#}\nthe tracer's log after go:\n{}",
        std::fs::read_to_string(scratch.path("tracer.log")).unwrap_or_default()
    );
    // signal.signal's own frame (signal.py), then the line that called it.
    assert!(
        term["python_stack"][0]
            .as_str()
            .unwrap()
            .starts_with("signal ("),
        "{name}: {term:#}"
    );
    assert_eq!(
        term["python_stack"][1],
        format!("quiet_library ({script}:{})", line("ignores SIGTERM")),
        "{name}: {term:#}"
    );
    // CPython's own: SIGPIPE ignored at start-up, no Python frame.
    assert!(
        actions.iter().any(|a| a["pid"] == pid
            && a["signal"] == "SIGPIPE"
            && a["action"] == "ignore"
            && a["set_by"] == "interpreter start-up"),
        "{name}: {actions:#?}"
    );
    let group = |signal: &str| {
        report["signals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["signal"] == signal && g["target"]["pid"] == pid)
            .unwrap_or_else(|| panic!("{name}: no {signal} row: {:#}", report["signals"]))
            .clone()
    };
    assert_eq!(group("SIGTERM")["ignored"], 1);
    // SIGINT: blocked and unblocked by critical_section, delivered once.
    let masks = report["signal_masks"].as_array().unwrap();
    let change = |change: &str, needle: &str| {
        let frame = format!("critical_section ({script}:{})", line(needle));
        masks
            .iter()
            .find(|m| {
                m["pid"] == pid
                    && m["signal"] == "SIGINT"
                    && m["change"] == change
                    && m["python_stack"]
                        .as_array()
                        .unwrap()
                        .contains(&frame.clone().into())
            })
            .unwrap_or_else(|| panic!("{name}: no SIGINT {change} by {frame}: {masks:#?}"))
    };
    let (block, unblock) = (
        change("block", "blocks SIGINT"),
        change("unblock", "unblocks SIGINT"),
    );
    assert!(unblock["t_s"].as_f64() >= block["t_s"].as_f64());
    assert_eq!(group("SIGINT")["delivered"], 1);
    // The findings name the lines.
    let findings = report["findings"].to_string();
    assert!(
        findings.contains("signal_ignored_by_python")
            && findings.contains(&format!(
                "quiet_library ({script}:{})",
                line("ignores SIGTERM")
            )),
        "{name}: {findings}"
    );
    assert!(
        findings.contains("signal_blocked_by_python")
            && findings.contains(&format!(
                "critical_section ({script}:{})",
                line("blocks SIGINT")
            )),
        "{name}: {findings}"
    );
}

/// When the Python handler really ran: after a long C call (latency as the
/// workload measured it), in the main thread for a signal delivered to a
/// worker, and never for a signal that arrived during a C call that outlasts
/// the trace.
pub(crate) fn signal_handler_runs(interpreter: &Interpreter) {
    require_root();
    let test = format!("signal-handler-{}", slug(interpreter));
    let scratch = Scratch::new(&format!("matrix/{test}"));
    let files = Files::new(interpreter, &test, &scratch);
    let script = files.script("python_signal_handler.py");
    let out = files.path("workload.json");
    // Once the tracer knows where CPython keeps its handlers (a handler set
    // and fired before that is named from the table as it is later) and its
    // signal-check uprobe is attached (on a thread of its own, tens of ms
    // later under load: a handler run before it is not seen run).
    let report = common::launch_until(
        &scratch,
        &interpreter.command(Launch::Chroot, &[&script, &out]),
        common::Until::Exit,
        &[
            "pid {pid}: Python signal handlers known",
            "signal checks of",
        ],
    );
    check_interpreter(&report, interpreter, &files);
    let facts = files.load(&out);
    let name = interpreter.name;
    let pid = u64_of(&facts["pid"]);
    let host_script = files.host(&script);
    let def_line = |f: &str| line_of(&host_script, &format!("def {f}("));
    let groups: Vec<&Value> = report["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["target"]["pid"] == pid)
        .collect();
    let group = |signal: &str, code: &str| {
        *groups
            .iter()
            .find(|g| g["signal"] == signal && g["code"] == code)
            .unwrap_or_else(|| panic!("{name}: no {signal} {code}: {groups:#?}"))
    };
    let handler = |f: &str| json!({"function": f, "file": script, "line": def_line(f)});
    let secs = |v: &Value| v.as_f64().unwrap();
    // 0. A handler freed at once is still named (from what the kernel read
    // at delivery).
    assert_eq!(facts["ran"]["passing"].as_array().unwrap().len(), 1);
    let passing = group("SIGHUP", "SI_USER");
    // Qualified names are in code objects from 3.11 on.
    let qualname = if ["3.9.", "3.10."]
        .iter()
        .any(|v| interpreter.version.starts_with(v))
    {
        "passing"
    } else {
        "with_a_passing_handler.<locals>.passing"
    };
    assert_eq!(
        passing["python_handler"],
        json!({
            "function": qualname,
            "file": script,
            "line": def_line("passing"),
        }),
        "{name}: {passing:#}"
    );
    assert_eq!(passing["python_handler_runs"], 1, "{name}: {passing:#}");
    // 1. After the C call: ran once, as late as the workload saw.
    let late = group("SIGUSR1", "SI_USER");
    assert_eq!(
        late["python_handler"],
        handler("on_usr1"),
        "{name}: {late:#}"
    );
    assert_eq!(late["python_handler_runs"], 1, "{name}: {late:#}");
    // The report splits generation -> start in two: to the delivery (late
    // when the main thread waited for a CPU), then to the handler. Their sum
    // is bounded by what the workload saw (see the workload's docstring):
    // at most from before the kill to the handler's first line; at least
    // from after the kill to the C call's CPU time past its start, less the
    // CPU the interpreter spends from its check to that first line.
    assert_eq!(
        (late["generated"].as_u64(), late["delivered"].as_u64()),
        (Some(1), Some(1)),
        "{name}: {late:#}"
    );
    let reported = late["latency_ns"]["max"].as_f64().unwrap()
        + late["python_handler_latency_ns"]["max"].as_f64().unwrap();
    let ran = secs(&facts["ran"]["usr1"][0]);
    let at_most_ns = (ran - secs(&facts["sending"]["usr1"])) * 1e9;
    const CHECK_TO_FIRST_LINE_CPU_NS: f64 = 1e6;
    let c_call_cpu = secs(&facts["ran_cpu"]["usr1"][0]) - secs(&facts["c_call_started_cpu"]);
    let at_least_ns = (secs(&facts["c_call_started"]) + c_call_cpu - secs(&facts["sent"]["usr1"]))
        * 1e9
        - CHECK_TO_FIRST_LINE_CPU_NS;
    assert!(
        // (1 µs: the seconds as floats round.)
        reported <= at_most_ns + 1e3 && reported >= at_least_ns,
        "{name}: reported {reported} ns from generation to the handler, the workload saw \
         {at_least_ns}..={at_most_ns} ns: {late:#}"
    );
    // 2. Delivered to the worker, run by the main thread.
    let to_worker = group("SIGUSR1", "SI_TKILL");
    assert_eq!(to_worker["python_handler_runs"], 1, "{name}: {to_worker:#}");
    assert_eq!(
        to_worker["delivered_to"][facts["worker_tid"].to_string()],
        1,
        "{name}: {to_worker:#}"
    );
    // The disposition changes name the functions they installed.
    for (signal, function) in [("SIGUSR1", "on_usr1"), ("SIGUSR2", "on_usr2")] {
        let action = report["signal_actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["pid"] == pid && a["signal"] == signal && a["action"] == "handler")
            .unwrap_or_else(|| {
                panic!("{name}: no {signal} action: {:#}", report["signal_actions"])
            });
        assert_eq!(
            action["python_handler"],
            handler(function),
            "{name}: {action:#}"
        );
    }
    // 3. Never ran: the process exited while the main thread was in C.
    assert_eq!(
        report["target"]["exit_code"], 0,
        "{name}: {:#}",
        report["target"]
    );
    let never = group("SIGUSR2", "SI_USER");
    let c_call = format!(
        "in_c_for ({script}:{})",
        line_of(&host_script, "# the C call")
    );
    let waiting = &never["python_handler_main_thread"];
    // Its innermost Python frame: native frames (`name [binary]`, the C
    // library's under the call) come first.
    let innermost_python = waiting["python_stack"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| !f.as_str().unwrap().ends_with(']'));
    assert_eq!(
        innermost_python,
        Some(&json!(c_call)),
        "{name}: the handler waited on the C call: {never:#}"
    );
    assert_eq!(
        never["python_handler"],
        handler("on_usr2"),
        "{name}: {never:#}"
    );
    assert_eq!(never["python_handler_runs"], 0);
    assert_eq!(
        never["python_handler_pending_at_end"], 1,
        "{name}: {never:#}"
    );
    assert_eq!(never["python_handler_latency_ns"], Value::Null);
}
