//! The story of each signal that matters to a service, put together from
//! the report's own rows (a derived view, so every renderer tells the same
//! story): who sent it, the disposition and who set it, the block that held
//! it, its delivery, when its Python handler ran, and what the process did
//! next.

use super::{ProcessInfo, Report, SignalAction, SignalGroup, SignalMaskChange};

/// The signals a service is stopped, interrupted or reloaded with.
const SERVICE_SIGNALS: [i32; 6] = [1, 2, 3, 10, 12, 15];

/// One signal group's story.
#[derive(Debug)]
pub struct SignalStory<'a> {
    pub group: &'a SignalGroup,
    /// The disposition change of this signal in the target in force when
    /// the first one was sent; `None`: set before tracing started.
    pub set_by: Option<&'a SignalAction>,
    /// A deliberate block of this signal in the target that held it: in
    /// force when the first one was sent, or the signal never delivered.
    pub blocked_by: Option<&'a SignalMaskChange>,
    /// The target process, for what it did next (its exit, if it exited).
    pub target: Option<&'a ProcessInfo>,
}

impl SignalStory<'_> {
    /// The target exited after the signal was first sent: (seconds since
    /// tracing started, how: "exit code 0", "killed by SIGTERM").
    pub fn exited_after(&self) -> Option<(f64, String)> {
        let p = self.target?;
        let at = p.exit_s?;
        if at + 1e-9 < self.group.first_s {
            return None;
        }
        let how = match (&p.exit_signal, p.exit_code) {
            (Some(signal), _) => format!("killed by {signal}"),
            (None, Some(code)) => format!("exit code {code}"),
            (None, None) => "exit status unknown".to_owned(),
        };
        Some((at, how))
    }
}

impl Report {
    /// The stories of the signals that matter to a service (SIGTERM, SIGINT,
    /// SIGHUP, SIGQUIT, SIGUSR1/2) and of any signal that killed a traced
    /// process or was ignored by one, busiest first as in `signals`.
    pub fn signal_stories(&self) -> Vec<SignalStory<'_>> {
        self.signals
            .iter()
            .filter(|g| {
                g.target_traced
                    && (SERVICE_SIGNALS.contains(&g.signo) || g.killed > 0 || g.ignored > 0)
            })
            .map(|g| {
                let pid = g.target.pid;
                let set_by = self
                    .signal_actions
                    .iter()
                    .rev()
                    .find(|a| a.pid == pid && a.signo == g.signo && a.t_s <= g.first_s);
                let blocked_by = self
                    .signal_masks
                    .iter()
                    .rev()
                    .find(|m| {
                        m.pid == pid
                            && m.signo == g.signo
                            && m.deliberate()
                            && (m.t_s <= g.first_s || g.pending_at_end > 0)
                    })
                    .filter(|m| m.change == "block" && m.held > 0);
                let target = self.processes.iter().rev().find(|p| p.pid == pid);
                SignalStory {
                    group: g,
                    set_by,
                    blocked_by,
                    target,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

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
        let stories = r.signal_stories();
        assert_eq!(stories.len(), 1);
        let s = &stories[0];
        assert_eq!(s.set_by.map(|a| a.action.as_str()), Some("ignore"));
        assert_eq!(s.blocked_by.map(|m| m.t_s), Some(1.5));
        assert_eq!(s.exited_after(), Some((2.5, "exit code 0".to_owned())));
    }
}
