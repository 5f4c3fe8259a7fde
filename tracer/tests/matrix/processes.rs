//! Zombies: Popen children never waited for, and the Popen line.

use super::*;

/// Popen children never waited for: K zombies until the parent leaves, each
/// spawned from the Popen line in spawn(), then reaped by the traced
/// subreaper they were handed to.
pub(crate) fn zombies(interpreter: &Interpreter) {
    let Traced {
        report,
        facts,
        files,
        script,
    } = traced_from_start(interpreter, "zombies", "matrix_zombies.py");
    let (reaper, parent) = (pid_of(&facts["reaper"]), pid_of(&facts["parent"]));
    let sleep_ns = u64_of(&facts["sleep_ns"]);
    let children: Vec<u64> = facts["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(pid_of)
        .collect();
    assert_eq!(children.len(), 3);
    assert_eq!(
        report["processes"].as_array().unwrap().len(),
        2 + children.len(),
        "{:#}",
        report["processes"]
    );
    // The children, and the parent for the moment before the subreaper
    // waited for it.
    assert_eq!(
        report["zombies"].as_array().unwrap().len(),
        1 + children.len(),
        "{:#}",
        report["zombies"]
    );
    let z = zombie(&report, parent);
    assert_eq!(
        (&z["reaped_how"], &z["reaped_by"]),
        (&json!("wait4"), &json!(reaper)),
        "{z:#}"
    );
    // The Popen line, as the process sees its file.
    let line = line_of(&files.host(&script), "subprocess.Popen(");
    let popen = format!("spawn ({script}:{line})");
    for &child in &children {
        let p = process(&report, child);
        assert_eq!((&p["ppid"], &p["comm"]), (&json!(parent), &json!("true")));
        assert_eq!(p["exit_code"], 0);
        assert_eq!(p["ns_pid"], child, "no pid namespace here");
        let z = zombie(&report, child);
        assert_eq!(z["ppid"], parent);
        assert_eq!(z["exit_code"], 0);
        assert!(u64_of(&z["zombie_ns"]) >= sleep_ns, "{z:#}");
        assert_eq!(u64_of(&z["parent_wait_calls"]), 0, "{z:#}");
        assert!(z["sigchld"].is_string(), "{z:#}");
        assert_eq!(z["sigchld_unanswered"], true, "{z:#}");
        // Not by their parent: by the subreaper, which waited for each.
        assert_eq!(
            (&z["reaped_how"], &z["reaped_by"]),
            (&json!("init"), &json!(reaper)),
            "{z:#}"
        );
        // Each zombie carries the stack of its own fork: Popen's frames
        // (innermost first), then the line in spawn().
        let frames = z["spawned_from"]
            .as_array()
            .unwrap_or_else(|| panic!("zombie {child} has no spawned_from: {z:#}"));
        assert!(frames.contains(&json!(popen)), "{popen} not in {z:#}");
        // The innermost Python frame (native ones may come first: the C
        // library's vfork, or code whose mapping was not read yet).
        let python_frames = frames
            .iter()
            .filter_map(|f| f.as_str())
            .filter(|f| f.ends_with(')'));
        assert!(
            python_frames
                .clone()
                .next()
                .is_some_and(|f| f.contains("subprocess.py:")),
            "{frames:#?}"
        );
        assert_eq!(p["python_stacks"][0]["frames"], z["spawned_from"]);
    }
    // ... and python.forks counts all K on that line.
    let forks = report["python"]["forks"].as_array().unwrap();
    let from_line: u64 = forks
        .iter()
        .filter(|s| s["frames"].as_array().unwrap().contains(&json!(popen)))
        .map(|s| u64_of(&s["samples"]))
        .sum();
    assert_eq!(
        from_line,
        3,
        "{} forks from {popen}: {forks:#?}",
        children.len()
    );
}
