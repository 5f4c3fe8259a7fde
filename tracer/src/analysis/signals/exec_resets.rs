//! The disposition changes a child makes between its fork and its exec
//! (`subprocess.Popen`'s child sets SIGPIPE, SIGXFSZ and SIGINT back to
//! the default, three rows per child): one row per spawn site, so that the
//! changes the program itself made are not lost among them.

use crate::report::{ProcessInfo, ResetsBeforeExec, SignalAction};

/// Marks the `actions` made by a followed child before its (last) exec,
/// and folds them: one row per (spawn site, action), in the order of
/// their first change.
pub fn fold(actions: &mut [SignalAction], processes: &[ProcessInfo]) -> Vec<ResetsBeforeExec> {
    let mut rows: Vec<ResetsBeforeExec> = Vec::new();
    for a in actions.iter_mut() {
        let before_exec = processes.iter().rev().any(|p| {
            p.pid == a.pid
                && !p.traced_from_start
                && p.start_s.is_none_or(|start| start <= a.t_s)
                && p.exec_s.is_some_and(|exec| a.t_s <= exec)
        });
        if !before_exec {
            continue;
        }
        a.before_exec = true;
        let at = rows
            .iter()
            .position(|r| r.action == a.action && r.python_stack == a.python_stack);
        let row = match at {
            Some(at) => &mut rows[at],
            None => {
                rows.push(ResetsBeforeExec {
                    action: a.action.clone(),
                    t_s: a.t_s,
                    python_stack: a.python_stack.clone(),
                    ..ResetsBeforeExec::default()
                });
                rows.last_mut().expect("just pushed")
            }
        };
        row.changes += 1;
        if !row.pids.contains(&a.pid) {
            row.pids.push(a.pid);
        }
        if !row.signals.contains(&a.signal) {
            row.signals.push(a.signal.clone());
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(pid: u32, signal: &str, t_s: f64, stack: &[&str]) -> SignalAction {
        SignalAction {
            pid,
            tid: pid,
            signal: signal.into(),
            action: "default".into(),
            set_by: "python".into(),
            t_s,
            python_stack: stack
                .iter()
                .map(|&f| crate::report::fixtures::frame(f))
                .collect(),
            ..SignalAction::default()
        }
    }

    fn process(pid: u32, start_s: f64, exec_s: Option<f64>) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: 10,
            start_s: Some(start_s),
            exec_s,
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn a_spawn_sites_children_make_one_row() {
        let popen = [
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1834)",
            "spawn (/srv/app.py:7)",
        ];
        let other = [
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1834)",
            "run (/srv/app.py:20)",
        ];
        let mut actions = vec![
            // The program's own change: not folded.
            action(10, "SIGTERM", 0.1, &["main (/srv/app.py:3)"]),
            action(11, "SIGPIPE", 0.2, &popen),
            action(11, "SIGXFSZ", 0.2, &popen),
            action(11, "SIGINT", 0.2, &popen),
            action(12, "SIGPIPE", 0.3, &popen),
            action(12, "SIGXFSZ", 0.3, &popen),
            action(12, "SIGINT", 0.3, &popen),
            action(13, "SIGPIPE", 0.4, &other),
            // After its exec: the new program's own change.
            action(13, "SIGHUP", 0.6, &[]),
        ];
        let mut launched = process(10, 0.0, Some(0.0));
        launched.traced_from_start = true;
        let processes = [
            launched,
            process(11, 0.2, Some(0.25)),
            process(12, 0.3, Some(0.35)),
            process(13, 0.4, Some(0.5)),
        ];
        let rows = fold(&mut actions, &processes);
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[0].pids, [11, 12]);
        assert_eq!(rows[0].signals, ["SIGPIPE", "SIGXFSZ", "SIGINT"]);
        assert_eq!(rows[0].changes, 6);
        assert_eq!(rows[0].action, "default");
        assert_eq!(rows[0].t_s, 0.2);
        assert_eq!(rows[0].python_stack, actions[1].python_stack);
        assert_eq!(rows[1].pids, [13]);
        assert_eq!(rows[1].signals, ["SIGPIPE"]);
        let folded: Vec<bool> = actions.iter().map(|a| a.before_exec).collect();
        assert_eq!(
            folded,
            [false, true, true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn a_child_that_never_execs_is_not_folded() {
        let mut actions = vec![action(11, "SIGINT", 0.2, &["worker (/srv/app.py:9)"])];
        let rows = fold(&mut actions, &[process(11, 0.1, None)]);
        assert!(rows.is_empty());
        assert!(!actions[0].before_exec);
    }
}
