//! The report: plain serde data built once by the aggregators. Renderers take
//! `&Report` and nothing else, so every view shows the same figures.
//! The JSON keys are a stable interface, documented in docs/report-schema.md.

pub mod json;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub target: Target,
    pub duration_s: f64,
    pub events: EventCounts,
    /// Why tracing stopped: "target exited", "duration elapsed", "interrupted".
    pub stopped: String,
    /// False when anything was lost or dropped: the figures are then lower bounds.
    pub complete: bool,
    pub reads: Vec<FileReads>,
    pub sched: Sched,
    /// Things the user should know about the trace itself (probes missing...).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    pub argv: Vec<String>,
    /// Launch mode: how the command ended (`null` while still running).
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventCounts {
    /// Ring buffer records received.
    pub received: u64,
    /// Ring buffer records the kernel could not write (buffer full).
    pub lost: u64,
    /// Figures the kernel side could not record because a map was full.
    pub dropped: Dropped,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dropped {
    pub reads: u64,
    pub threads: u64,
    pub tables: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContextSwitches {
    pub voluntary: u64,
    pub involuntary: u64,
}

/// One file one process read from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReads {
    pub pid: u32,
    /// The path it was opened by; `pipe:[INODE]` / `socket:[INODE]` as
    /// `/proc/PID/fd` shows them for descriptors not opened by path.
    pub path: String,
    pub fs: String,
    pub blksize: Option<u64>,
    /// Times the process opened this path while traced (0: it was already open).
    pub opens: u64,
    /// Read-family syscalls (`read`, `pread64`, `readv`, `preadv`).
    pub syscalls: u64,
    pub bytes: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Time between syscall entry and exit, summed.
    pub kernel_ns: u64,
    /// Requested size in bytes -> number of syscalls.
    pub request_sizes: BTreeMap<String, u64>,
    /// Syscall name -> number of calls.
    pub by_syscall: BTreeMap<String, u64>,
    /// Scheduler context switches that happened inside these reads.
    pub context_switches: ContextSwitches,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sched {
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    pub threads: Vec<ThreadSched>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadSched {
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
}

impl FileReads {
    /// The request size used by most syscalls (ties: the larger size).
    pub fn dominant_request(&self) -> Option<(u64, u64)> {
        self.request_sizes
            .iter()
            .filter_map(|(size, count)| Some((size.parse::<u64>().ok()?, *count)))
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
    }
}
