//! Disposition and mask changes: every `rt_sigaction` that set a new
//! action and every `rt_sigprocmask` that changed a thread's mask, with the
//! Python line that made it; which signals the mask changes are kept for.
//! Pure logic, no I/O.

use std::collections::HashMap;

use super::signal_name;
use crate::{
    events::{SignalAction as ActionEvent, SignalMask as MaskEvent},
    frame::Frame,
    report::{
        Finding, PythonHandler, Report, SignalAction, SignalMaskChange,
        format::{sender_text, target_text, thousands},
    },
};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGTERM: i32 = 15;
pub const SIGXFSZ: i32 = 25;

/// The signals a service is stopped, interrupted or reloaded with: their
/// changes are always reported; another signal's mask changes only when
/// that signal was sent to the process during the trace.
pub const SERVICE_SIGNALS: [i32; 6] = [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM];

/// Bounds on what is kept (a program may set handlers in a loop).
const MAX_ACTIONS: usize = 10_000;
const MAX_MASK_EVENTS: usize = 10_000;
const MAX_MASK_ROWS: usize = 10_000;

/// The handler value of `SIG_DFL` and `SIG_IGN`; unreadable `act` memory
/// reads as `u64::MAX`.
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const UNREADABLE: u64 = u64::MAX;

/// The action installs a handler function (not SIG_DFL / SIG_IGN).
pub fn is_handler(handler: u64) -> bool {
    !matches!(handler, SIG_DFL | SIG_IGN | UNREADABLE)
}

fn bit(sig: i32) -> u64 {
    if (1..=64).contains(&sig) {
        1 << (sig - 1)
    } else {
        0
    }
}

#[derive(Default)]
pub struct Changes {
    actions: Vec<(ActionEvent, Vec<Frame>)>,
    /// The Python function a `handler` action installed, by action index.
    action_handlers: HashMap<usize, Frame>,
    actions_left_out: u64,
    masks: Vec<(MaskEvent, Vec<Frame>)>,
    /// Signal rows of the mask events not kept.
    mask_rows_left_out: u64,
    /// Per target process, the signals generated for it (bit `n - 1`).
    sent_to: HashMap<u32, u64>,
    /// When each (process, signal) was generated (the first ones).
    sent_at: HashMap<(u32, i32), Vec<u64>>,
}

/// Generation times kept per (process, signal).
const MAX_SENT_TIMES: usize = 1000;

/// What became of the changes: the report's rows.
pub struct Finished {
    pub actions: Vec<SignalAction>,
    pub masks: Vec<SignalMaskChange>,
    pub masks_left_out: u64,
}

impl Changes {
    /// A new action; its index, when kept.
    pub fn on_action(&mut self, event: ActionEvent, python_stack: Vec<Frame>) -> Option<usize> {
        if self.actions.len() < MAX_ACTIONS {
            self.actions.push((event, python_stack));
            Some(self.actions.len() - 1)
        } else {
            self.actions_left_out += 1;
            None
        }
    }

    /// Action `index` installed the Python function `handler`.
    pub fn on_python_handler(&mut self, index: usize, handler: Frame) {
        self.action_handlers.insert(index, handler);
    }

    pub fn on_mask(&mut self, event: MaskEvent, python_stack: Vec<Frame>) {
        if self.masks.len() < MAX_MASK_EVENTS {
            self.masks.push((event, python_stack));
        } else {
            self.mask_rows_left_out += u64::from((event.before ^ event.after).count_ones());
        }
    }

    /// Signal `sig` was generated for process `pid` at `ts_ns`.
    pub fn on_sent(&mut self, pid: u32, sig: i32, ts_ns: u64) {
        *self.sent_to.entry(pid).or_default() |= bit(sig);
        let times = self.sent_at.entry((pid, sig)).or_default();
        if times.len() < MAX_SENT_TIMES {
            times.push(ts_ns);
        }
    }

    /// The rows, times relative to `base_ns`. `is_python(pid)`: the process
    /// runs CPython (its start-up defaults are named as such).
    pub fn finish(self, base_ns: u64, is_python: impl Fn(u32) -> bool) -> Finished {
        let t_s = |ts: u64| ts.saturating_sub(base_ns) as f64 / 1e9;
        let mut action_handlers = self.action_handlers;
        let actions = self
            .actions
            .into_iter()
            .enumerate()
            .map(|(i, (e, python_stack))| {
                let action = match e.handler {
                    SIG_DFL => "default",
                    SIG_IGN => "ignore",
                    UNREADABLE => "unknown",
                    _ => "handler",
                };
                let startup_default = matches!(
                    (e.sig, action),
                    (SIGPIPE | SIGXFSZ, "ignore") | (SIGINT, "handler")
                );
                // CPython installs its defaults at start-up, or when the
                // `signal` module is first imported (importlib frames only).
                let by_importlib = python_stack
                    .iter()
                    .all(|f| f.stdlib_module() == Some("importlib"));
                let set_by = if startup_default && by_importlib && is_python(e.tgid) {
                    "interpreter start-up"
                } else if !python_stack.is_empty() {
                    "python"
                } else {
                    "native code"
                };
                SignalAction {
                    pid: e.tgid,
                    tid: e.tid,
                    signal: signal_name(e.sig),
                    signo: e.sig,
                    action: action.into(),
                    handler_address: (action == "handler").then_some(e.handler),
                    python_handler: action_handlers.remove(&i).map(PythonHandler::from),
                    set_by: set_by.into(),
                    t_s: t_s(e.ts_ns),
                    python_stack,
                    before_exec: false,
                    // Marked by `mark_notable`, the report whole.
                    notable: false,
                }
            })
            .collect();
        let mut masks = Vec::new();
        let mut left_out = self.mask_rows_left_out + self.actions_left_out;
        let service: u64 = SERVICE_SIGNALS.iter().map(|&s| bit(s)).sum();
        // Until when each block of a thread held: its next unblock.
        let held_until = |i: usize, sig: i32| -> u64 {
            let (e, _) = &self.masks[i];
            self.masks[i + 1..]
                .iter()
                .find(|(n, _)| n.tid == e.tid && n.after & bit(sig) == 0)
                .map_or(u64::MAX, |(n, _)| n.ts_ns)
        };
        let mut rows = Vec::new();
        for (i, (e, _)) in self.masks.iter().enumerate() {
            let changed = e.before ^ e.after;
            for sig in (1..=64).filter(|&s| changed & e.after & bit(s) != 0) {
                let until = held_until(i, sig);
                let held = self.sent_at.get(&(e.tgid, sig)).map_or(0, |times| {
                    times
                        .iter()
                        .filter(|&&t| t >= e.ts_ns && t <= until)
                        .count() as u64
                });
                rows.push(((i, sig), held));
            }
        }
        let held: HashMap<(usize, i32), u64> = rows.into_iter().collect();
        for (i, (e, python_stack)) in self.masks.into_iter().enumerate() {
            let kept = service | self.sent_to.get(&e.tgid).copied().unwrap_or(0);
            let changed = e.before ^ e.after;
            left_out += u64::from((changed & !kept).count_ones());
            for sig in (1..=64).filter(|&s| changed & kept & bit(s) != 0) {
                if masks.len() >= MAX_MASK_ROWS {
                    left_out += 1;
                    continue;
                }
                masks.push(SignalMaskChange {
                    pid: e.tgid,
                    tid: e.tid,
                    signal: signal_name(sig),
                    signo: sig,
                    change: if e.after & bit(sig) != 0 {
                        "block"
                    } else {
                        "unblock"
                    }
                    .into(),
                    signals_changed: changed.count_ones(),
                    held: held.get(&(i, sig)).copied().unwrap_or(0),
                    t_s: t_s(e.ts_ns),
                    python_stack: python_stack.clone(),
                    notable: false,
                });
            }
        }
        Finished {
            actions,
            masks,
            masks_left_out: left_out,
        }
    }
}

/// Marks the disposition and mask changes worth a line of the report: those
/// Python code made (not the C library's SIG32/SIG33, set up at the first
/// thread start whatever the line) and those of a signal sent to the process
/// while tracing; a mask only when set on purpose; the children's resets
/// before exec by spawn site, when known or of a signal sent to a child.
pub fn mark_notable(report: &mut Report) {
    let sent: std::collections::HashSet<(u32, i32)> = report
        .signals
        .iter()
        .map(|g| (g.target.pid, g.signo))
        .collect();
    let sent = |pid: u32, signo: i32| sent.contains(&(pid, signo));
    for a in &mut report.signal_actions {
        a.notable = !a.before_exec
            && ((a.set_by == "python" && !(32..=33).contains(&a.signo)) || sent(a.pid, a.signo));
    }
    let actions = &report.signal_actions;
    for r in &mut report.signal_resets_before_exec {
        r.notable = !r.python_stack.is_empty()
            || r.pids.iter().any(|&pid| {
                actions
                    .iter()
                    .any(|a| a.pid == pid && a.before_exec && sent(pid, a.signo))
            });
    }
    for m in &mut report.signal_masks {
        m.notable = m.deliberate() && (!m.python_stack.is_empty() || sent(m.pid, m.signo));
    }
}

/// A signal that was ignored or held back because a line of Python set it
/// so: `signal.signal(SIGTERM, SIG_IGN)` in some library, a
/// `pthread_sigmask` that blocked SIGINT.
pub fn findings(report: &Report) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in &report.signals {
        let who = format!(
            "{} from {} to {}",
            g.signal,
            sender_text(g),
            target_text(g.target.pid, g.target.tid, &g.target.comm)
        );
        // The program's line: past `signal.signal`'s own frame.
        let line = |stack: &[Frame]| {
            let at = stack
                .iter()
                .position(|f| f.stdlib_module() != Some("signal"))
                .unwrap_or(0);
            stack
                .get(at)
                .map(|f| {
                    let caller = stack
                        .get(at + 1)
                        .map(|c| format!(", called from {c}"))
                        .unwrap_or_default();
                    format!("{f}{caller}")
                })
                .unwrap_or_default()
        };
        if g.ignored > 0
            && let Some(a) = report.signal_actions.iter().rev().find(|a| {
                a.pid == g.target.pid
                    && a.signo == g.signo
                    && a.action == "ignore"
                    && a.set_by == "python"
            })
        {
            out.push(
                Finding::new(
                    "signal_ignored_by_python",
                    "signals",
                    who.clone(),
                    format!(
                        "{who}: {} of {} ignored; Python code set it to be ignored (SIG_IGN) at {:.3} s: {}",
                        thousands(g.ignored),
                        thousands(g.generated),
                        a.t_s,
                        line(&a.python_stack)
                    ),
                )
                .with("signo", g.signo as u64)
                .with("ignored", g.ignored),
            );
        }
        // A deliberate block from Python that a generation of it came into.
        if let Some(m) = report.signal_masks.iter().rev().find(|m| {
            m.pid == g.target.pid
                && m.signo == g.signo
                && m.change == "block"
                && m.held > 0
                && m.deliberate()
                && !m.python_stack.is_empty()
        }) {
            let what = if g.pending_at_end > 0 {
                format!(
                    "{} of {} never delivered",
                    thousands(g.pending_at_end),
                    thousands(g.generated)
                )
            } else {
                format!(
                    "{} of {} delivered, after up to {}",
                    thousands(g.delivered),
                    thousands(g.generated),
                    crate::report::format::duration(g.latency_ns.as_ref().map_or(0, |l| l.max))
                )
            };
            out.push(
                Finding::new(
                    "signal_blocked_by_python",
                    "signals",
                    who.clone(),
                    format!(
                        "{who}: {what}; a thread of the process blocked it (pthread_sigmask) at {:.3} s: {}",
                        m.t_s,
                        line(&m.python_stack)
                    ),
                )
                .with("signo", g.signo as u64)
                .with("pending_at_end", g.pending_at_end),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::frame;

    fn action(sig: i32, handler: u64, stack: &[&str]) -> (ActionEvent, Vec<Frame>) {
        (
            ActionEvent {
                ts_ns: 2_000_000_000,
                tgid: 7,
                tid: 8,
                sig,
                handler,
                flags: 0,
                py_frames: Vec::new(),
            },
            stack.iter().map(|&f| frame(f)).collect(),
        )
    }

    #[test]
    fn actions_name_what_was_set_and_by_whom() {
        let mut changes = Changes::default();
        for (e, s) in [
            action(
                SIGTERM,
                SIG_IGN,
                &["quiet (/app/lib.py:12)", "<module> (/app/main.py:3)"],
            ),
            action(SIGPIPE, SIG_IGN, &[]),
            action(SIGUSR1, 0x5555_0000, &[]),
            action(SIGCHLD_FOR_TEST, SIG_DFL, &[]),
        ] {
            changes.on_action(e, s);
        }
        let done = changes.finish(1_000_000_000, |pid| pid == 7);
        let a = &done.actions;
        assert_eq!(
            (
                a[0].signal.as_str(),
                a[0].action.as_str(),
                a[0].set_by.as_str()
            ),
            ("SIGTERM", "ignore", "python")
        );
        assert_eq!(a[0].python_stack[0].line, 12);
        assert_eq!(a[0].t_s, 1.0);
        assert_eq!(a[1].set_by, "interpreter start-up");
        assert_eq!(
            (
                a[2].action.as_str(),
                a[2].handler_address,
                a[2].set_by.as_str()
            ),
            ("handler", Some(0x5555_0000), "native code")
        );
        assert_eq!(a[3].action, "default");
    }

    const SIGCHLD_FOR_TEST: i32 = 17;

    #[test]
    fn mask_rows_for_the_signals_that_matter() {
        let mut changes = Changes::default();
        let all = u64::MAX >> 1;
        let mask = |before: u64, after: u64| MaskEvent {
            ts_ns: 3_000_000_000,
            tgid: 7,
            tid: 9,
            before,
            after,
            py_frames: Vec::new(),
        };
        // A thread start blocks everything, then restores.
        changes.on_mask(mask(0, all), Vec::new());
        changes.on_mask(mask(all, 0), Vec::new());
        // A line blocks SIGINT; SIGALRM (14) was sent to the process.
        changes.on_mask(
            mask(0, bit(SIGINT) | bit(14)),
            vec![frame("critical (/app/main.py:40)")],
        );
        changes.on_sent(7, 14, 1_000_000_000);
        // A SIGINT comes while the line's block holds.
        changes.on_sent(7, SIGINT, 3_500_000_000);
        let done = changes.finish(0, |_| true);
        let rows: Vec<(&str, &str)> = done
            .masks
            .iter()
            .map(|m| (m.signal.as_str(), m.change.as_str()))
            .collect();
        // Service signals (6) blocked then unblocked, SIGALRM both times,
        // then SIGINT and SIGALRM by the line.
        assert_eq!(rows.len(), 2 * 7 + 2, "{rows:?}");
        assert_eq!(rows[rows.len() - 2], ("SIGINT", "block"));
        assert_eq!(done.masks.last().unwrap().python_stack[0].line, 40);
        let sigint = &done.masks[done.masks.len() - 2];
        assert_eq!((sigint.held, sigint.signals_changed), (1, 2));
        // The thread start's blanket block held nothing (its unblock came first).
        assert_eq!(done.masks[0].held, 0);
        assert_eq!(done.masks[0].signals_changed, 63);
        // The rest of the 63 signals of each thread-start change are counted.
        assert_eq!(done.masks_left_out, 2 * (63 - 7));
    }
}
