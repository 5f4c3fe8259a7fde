//! Which signals matter to a service, and the story of each, put together
//! from the report's own rows: who sent it, the disposition and who set it,
//! the block that held it, and what the process did next. Decided here once,
//! so every renderer tells the same story.

use crate::report::{Report, SignalStory};

/// The signals a service is stopped, interrupted or reloaded with.
const SERVICE_SIGNALS: [i32; 6] = [1, 2, 3, 10, 12, 15];

/// Gives a story to each group of a signal that matters to a service
/// (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2) and of any signal that
/// killed a traced process or was ignored by one.
pub fn tell(report: &mut Report) {
    let stories: Vec<Option<SignalStory>> = report
        .signals
        .iter()
        .map(|g| {
            let matters = g.target_traced
                && (SERVICE_SIGNALS.contains(&g.signo) || g.killed > 0 || g.ignored > 0);
            if !matters {
                return None;
            }
            let pid = g.target.pid;
            let set_by = report
                .signal_actions
                .iter()
                .rposition(|a| a.pid == pid && a.signo == g.signo && a.t_s <= g.first_s);
            let blocked_by = report
                .signal_masks
                .iter()
                .rposition(|m| {
                    m.pid == pid
                        && m.signo == g.signo
                        && m.deliberate()
                        && (m.t_s <= g.first_s || g.pending_at_end > 0)
                })
                .filter(|&i| {
                    let m = &report.signal_masks[i];
                    m.change == "block" && m.held > 0
                });
            let target = report.processes.iter().rposition(|p| p.pid == pid);
            let exited_after = target
                .and_then(|i| report.processes[i].exit_s)
                .is_some_and(|at| at + 1e-9 >= g.first_s);
            Some(SignalStory {
                set_by,
                blocked_by,
                target,
                exited_after,
            })
        })
        .collect();
    for (g, story) in report.signals.iter_mut().zip(stories) {
        g.story = story;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ProcessInfo, SignalAction, SignalMaskChange, fixtures};

    #[test]
    fn a_story_names_the_change_and_the_block_in_force() {
        let mut r = Report::default();
        let mut term = fixtures::signal_group();
        term.signal = "SIGTERM".into();
        term.signo = 15;
        term.first_s = 2.0;
        term.target_traced = true;
        let pid = term.target.pid;
        r.signals.push(term.clone());
        let action = |t_s: f64, action: &str| SignalAction {
            pid,
            tid: pid,
            signal: "SIGTERM".into(),
            signo: 15,
            action: action.into(),
            t_s,
            ..Default::default()
        };
        // The change after the signal does not explain it.
        r.signal_actions = vec![
            action(0.5, "default"),
            action(1.0, "ignore"),
            action(3.0, "default"),
        ];
        r.signal_masks = vec![SignalMaskChange {
            pid,
            tid: pid,
            signal: "SIGTERM".into(),
            signo: 15,
            change: "block".into(),
            signals_changed: 1,
            held: 1,
            t_s: 1.5,
            ..Default::default()
        }];
        r.processes.push(ProcessInfo {
            pid,
            exit_code: Some(0),
            exit_s: Some(2.5),
            ..Default::default()
        });
        // SIGCHLD that nobody ignored: no story.
        let mut chld = fixtures::signal_group();
        chld.signo = 17;
        chld.target_traced = true;
        r.signals.push(chld);
        tell(&mut r);
        assert_eq!(
            r.signals[0].story,
            Some(SignalStory {
                set_by: Some(1),
                blocked_by: Some(0),
                target: Some(0),
                exited_after: true,
            })
        );
        assert_eq!(r.signals[1].story, None);
    }

    #[test]
    fn an_exit_before_the_signal_is_not_what_came_of_it() {
        let mut r = Report::default();
        let mut kill = fixtures::signal_group();
        kill.signo = 9;
        kill.killed = 1;
        kill.first_s = 2.0;
        kill.target_traced = true;
        let pid = kill.target.pid;
        r.signals.push(kill);
        r.processes.push(ProcessInfo {
            pid,
            exit_s: Some(1.0),
            ..Default::default()
        });
        tell(&mut r);
        let story = r.signals[0].story.as_ref().unwrap();
        assert_eq!((story.target, story.exited_after), (Some(0), false));
    }
}
