//! One trace's lifecycle around the loop in `run.rs`: the target, what the
//! trace starts with, the ring buffer drained, the Python step, the
//! continuous mode, `--dump`, the status line, the outputs and what can end
//! a trace before its report.

pub mod continuous;
pub mod drain;
pub mod dump;
pub mod host_system;
pub mod loop_watch;
pub mod output;
pub mod python_refresh;
pub mod run_error;
pub mod start;
pub mod status_line;
pub mod target;
