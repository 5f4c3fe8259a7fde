//! The event loops section: each thread that waits in a selector, its
//! iterations, and its stalls with the Python code that ran in them.

use serde::{Deserialize, Serialize};

use super::{Hotspot, LineHotspot, PythonStack};
use crate::frame::Frame;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EventLoop {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// Its Python name (`threading.Thread.name`), when read.
    #[serde(default)]
    pub name: Option<String>,
    /// "asyncio" when the stack that entered its waits ran asyncio's loop
    /// (`BaseEventLoop._run_once`), "python" for other Python code, else
    /// "native".
    pub kind: String,
    /// Iterations completed (from a wait's return to the next wait).
    pub iterations: u64,
    /// Their summed time.
    pub busy_ns: u64,
    /// Iterations per time bucket, `le_ns` its upper bound (`null`: the rest).
    pub histogram: Vec<LoopBucket>,
    pub threshold_ns: u64,
    pub stalls: u64,
    pub stall_max_ns: u64,
    pub stall_total_ns: u64,
    /// The first stalls in time order (at most [`MAX_STALLS_LISTED`]).
    pub stall_list: Vec<Stall>,
    /// The stack that entered the wait after a stall, innermost first (the
    /// loop's own frames).
    #[serde(with = "crate::frame::as_stack_frames")]
    pub wait_stack: Vec<Frame>,
    /// CPU samples of this thread inside its stalls, and what they ran.
    pub samples_in_stalls: u64,
    pub hotspots: Vec<Hotspot>,
    pub lines: Vec<LineHotspot>,
    /// The most sampled stack inside its stalls.
    pub stack: Option<PythonStack>,
}

/// Stalls listed one by one per loop.
pub const MAX_STALLS_LISTED: usize = 100;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoopBucket {
    pub le_ns: Option<u64>,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stall {
    /// From the trace's start.
    pub start_ns: u64,
    pub duration_ns: u64,
}
