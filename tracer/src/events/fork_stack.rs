//! A fork's Python stack: its record, and what the kernel side said of it
//! in the fork record's `process_flags`.

use tracer_common::{EventHeader, PyForkEvent, process_flags};

use super::{Event, NativeStack, frames_until_empty};

/// The Python stack of a fork, as the kernel side took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkStack {
    /// Sent in the record before the fork's.
    Sent,
    /// The sampler was not given the process's interpreter (yet): it may
    /// or may not run Python.
    NoInterpreter,
    /// The interpreter was known, the forking thread's state was not.
    NoThread,
    /// The thread's state was known, and no Python frame was running.
    NoFrame,
}

impl ForkStack {
    pub(super) fn of(flags: u32) -> Self {
        if flags & process_flags::PY_STACK_SENT != 0 {
            Self::Sent
        } else if flags & process_flags::NO_PY_THREAD != 0 {
            Self::NoThread
        } else if flags & process_flags::NO_PY_FRAME != 0 {
            Self::NoFrame
        } else {
            Self::NoInterpreter
        }
    }
}

pub(super) fn py_fork_stack(
    header: &EventHeader,
    event: &PyForkEvent,
    native: Option<NativeStack>,
) -> Event {
    Event::PyForkStack {
        tgid: header.tgid,
        child: event.child,
        frames: frames_until_empty(&event.frames),
        native,
    }
}
