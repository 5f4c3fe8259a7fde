//! Python frames, as far as the process is concerned: find the interpreter
//! in a traced process (`interpreter`, `layout`: which build, which structure
//! offsets), publish its threads' `PyThreadState` addresses to the BPF
//! sampler (`threads`), and turn sampled raw stacks (code-object pointers +
//! instruction positions) into [`Frame`](crate::frame::Frame)s by reading
//! its memory (`symbols`, `code`, `memory`); `asyncio` reads its asyncio
//! tasks (`asyncio_offsets`: the offsets CPython 3.14+ publishes for them;
//! `running_task`: the task each sample ran in). `discovery` is where the search
//! for a process's interpreter stands, `process` holds one process's
//! state, `tree` every Python process of the trace. Counting and the report
//! section are the tracer's `analysis::python`'s: nothing here knows the
//! report, the kernel programs, the events or the native unwinder.
//!
//! A crate below the tracer's (which names it `python`): it reads `/proc`
//! through `tracer-host` (named `host` here) and makes `tracer-report`'s
//! `Frame` (named `frame`).

pub mod asyncio;
pub mod asyncio_offsets;
pub mod code;
pub mod discovery;
pub mod gil;
pub mod handlers;
pub mod interpreter;
pub mod layout;
pub mod process;
pub mod process_memory;
pub mod running_task;
pub mod signal_checks;
pub mod symbols;
pub mod thread_names;
pub mod threads;
pub mod tls;
pub mod tree;

#[cfg(test)]
mod snapshot_tests;

pub use code::{CopiedNames, copied_str};
pub use discovery::Discovery;
pub use process::PythonProcess;
use tracer_host as host;
use tracer_report::frame;
pub use tree::PythonTree;

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error(transparent)]
    Discover(#[from] interpreter::DiscoverError),
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
}

/// The CPython versions this tracer samples, for messages.
pub const SUPPORTED: &str = "CPython 3.8 and later (with or without the GIL from 3.13; a version newer than 3.15 once its _Py_DebugOffsets check out)";
