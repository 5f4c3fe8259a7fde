//! The one-line live status on standard error (only when it is a terminal).

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

pub struct StatusLine {
    enabled: bool,
    shown: bool,
}

impl StatusLine {
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    pub fn update(&mut self, elapsed: Duration, events: u64, lost: u64) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Ktracing: {:.1} s, {events} events, {lost} lost (Ctrl-C to stop and report)",
            elapsed.as_secs_f64()
        );
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
