//! The one-line progress status on standard error (only when it is a terminal
//! that no traced program writes to).

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use crate::{
    analysis::Progress,
    report::format::{count, thousands},
};

pub struct StatusLine {
    enabled: bool,
    shown: bool,
}

impl StatusLine {
    /// `shares_terminal`: a launched command writes to the tracer's own
    /// standard output or error, where the line would garble its output.
    pub fn new(quiet: bool, shares_terminal: bool) -> Self {
        Self {
            enabled: !quiet && !shares_terminal && std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    pub fn update(&mut self, elapsed: Duration, progress: Progress) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", line(elapsed, progress));
        let _ = err.flush();
        self.shown = true;
    }

    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }
}

fn line(elapsed: Duration, p: Progress) -> String {
    format!(
        "tracing {:.1} s: {}, {}, {}, {} lost (Ctrl-C to stop and report)",
        elapsed.as_secs_f64(),
        count(p.samples, "Python sample", "Python samples"),
        count(p.signals, "signal", "signals"),
        count(p.processes, "process", "processes"),
        thousands(p.lost)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_a_user_recognises() {
        let progress = Progress {
            samples: 1234,
            signals: 1,
            processes: 3,
            lost: 0,
        };
        assert_eq!(
            line(Duration::from_millis(2300), progress),
            "tracing 2.3 s: 1,234 Python samples, 1 signal, 3 processes, 0 lost \
             (Ctrl-C to stop and report)"
        );
    }
}
