//! The findings about signals: signals never delivered, ignored by their
//! target, processes a signal killed, Python handlers that never ran.

use crate::report::{
    Finding, SignalGroup,
    format::{sender_text, target_text, thousands},
};

/// Signals never delivered, ignored by their target, and processes a signal killed.
pub fn findings(groups: &[SignalGroup]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for g in groups {
        let who = format!(
            "{} from {} to {}",
            g.signal,
            sender_text(g),
            target_text(g.target.pid, g.target.tid, &g.target.comm)
        );
        let finding = |kind: &str, message: String| {
            Finding::new(kind, "signals", who.clone(), message)
                .with("signo", g.signo as u64)
                .with("sender_pid", u64::from(g.sender.pid))
                .with("target_pid", u64::from(g.target.pid))
                .with("generated", g.generated)
        };
        // The OOM killer's: the memory finding `oom_kill` says more.
        if g.killed > 0 && !g.sender.oom_killer {
            findings.push(
                finding(
                    "killed_by_signal",
                    format!("{who} killed it (default action)"),
                )
                .with("killed", g.killed),
            );
        }
        if g.pending_at_end > 0 {
            let message = format!(
                "{who}: {} of {} never delivered (blocked, or still pending when the \
                 process or the trace ended)",
                thousands(g.pending_at_end),
                thousands(g.generated)
            );
            findings
                .push(finding("signal_never_delivered", message).with("pending", g.pending_at_end));
        }
        if g.generated >= 2 && g.ignored == g.generated && !g.sender.kernel {
            let message = format!(
                "{who}: all {} were ignored by the target (SIG_IGN)",
                thousands(g.generated)
            );
            findings.push(finding("signal_ignored", message).with("ignored", g.ignored));
        }
        if let Some(h) = &g.python_handler {
            let handler = format!("the Python handler {} ({}:{})", h.function, h.file, h.line);
            if g.python_handler_pending_at_end > 0 {
                let message = format!(
                    "{who}: {handler} never ran for {} of {} delivered: CPython runs it in \
                     the main thread at its next check for signals, which did not come \
                     before the process exited or tracing stopped (a long C call or a wait \
                     that does not return to Python)",
                    thousands(g.python_handler_pending_at_end),
                    thousands(g.delivered)
                );
                findings.push(
                    finding("python_handler_never_ran", message)
                        .with("pending", g.python_handler_pending_at_end),
                );
            }
            if let Some(l) = &g.python_handler_latency_ns
                && l.max >= PYTHON_HANDLER_LATE_NS
            {
                let message = format!(
                    "{who}: {handler} started up to {} after delivery (p50 {}): the main \
                     thread was in C code that does not check for signals, or waiting",
                    crate::report::format::duration(l.max),
                    crate::report::format::duration(l.p50)
                );
                findings.push(finding("python_handler_late", message).with("max_ns", l.max));
            }
        }
    }
    findings
}

/// A Python handler that starts this long after the delivery is late.
const PYTHON_HANDLER_LATE_NS: u64 = 100_000_000;
