//! `tracer-report`: the report, plain serde data built once by the tracer's
//! aggregators, and its renderers. Renderers take `&Report` and nothing
//! else, so every view shows the same figures; this crate knows no kernel,
//! host or analysis, so none can compute one. The JSON keys are a stable
//! interface, documented in docs/report-schema.md.

/// Small reports and rows that the renderers' tests, and the tracer's
/// tests of what `analysis::derive` adds, build on.
#[doc(hidden)]
pub mod fixtures;
pub mod flame;
pub mod format;
pub mod frame;
pub mod identity;
pub mod json;
pub mod metrics;
pub mod otlp;
pub mod perfetto;
pub mod pprof;
pub mod profile_tables;
pub mod proto;
pub mod text;

mod asyncio;
mod io;
mod loops;
mod memory;
pub mod memory_profile;
mod processes;
mod python;
mod requests;
mod sched;
mod signals;
mod timeline;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::frame::Frame;
pub use asyncio::{Asyncio, Awaiter, Task as AsyncioTask, TaskSamples};
pub use io::{FOLD_ABOVE, FileIo, SocketRow};
pub use loops::{EventLoop, LoopBucket, MAX_STALLS_LISTED, Stall};
pub use memory::{Growth, GrowthLine, Memory, MemoryProcess, OomKill, RssPoint};
pub use processes::{Container, ProcessInfo, Zombie};
pub use python::{
    Entries, Hotspot, LineHotspot, NativeFigures, Python, PythonProcess, PythonStack, PythonThread,
    ThreadGil, ThreadNow, TimedSample,
};
pub use requests::{MAX_ROUTES, MAX_SLOWEST, Request, RequestLatency, Requests, RouteRequests};
pub use sched::{ContextSwitches, Sched, ThreadSched};
pub use signals::{
    Latency, MAX_THREADS_AT_DEATH, MainThreadSeen, PythonHandler, ResetsBeforeExec, SignalAction,
    SignalGroup, SignalLog, SignalLogEntry, SignalMaskChange, SignalPeer, SignalStory,
    SignalTarget, ThreadAtDeath, signal_name,
};
pub use timeline::{CpuSlice, ReadSlice, SignalMark, SignalStep, Timeline};

/// The version of the JSON report's layout: 1 was the unversioned layout
/// before `findings`; 2 added `schema_version`, `findings`,
/// `sched.inside_reads` and the `qualname` / `first_line` of stack frames.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// [`SCHEMA_VERSION`] of the tracer that wrote it.
    pub schema_version: u32,
    pub target: Target,
    pub duration_s: f64,
    pub events: EventCounts,
    /// Why tracing stopped: "target exited", "duration elapsed", "interrupted".
    pub stopped: String,
    /// False when anything was lost or dropped: the figures are then lower bounds.
    pub complete: bool,
    pub reads: Vec<FileIo>,
    /// The same rows for writes: write-family syscalls and syncs.
    #[serde(default)]
    pub writes: Vec<FileIo>,
    pub sched: Sched,
    /// Every traced process (the target and its followed children), in start order.
    pub processes: Vec<ProcessInfo>,
    /// Traced children that exited, and how long each stayed a zombie.
    pub zombies: Vec<Zombie>,
    /// Signals for or by traced processes, grouped by (signal, sender, target, si_code).
    pub signals: Vec<SignalGroup>,
    /// The first and last signal events in time order.
    pub signal_log: SignalLog,
    /// Every new action a traced thread set for a signal (`rt_sigaction`),
    /// in time order: who made SIGTERM ignored, and on which line.
    #[serde(default)]
    pub signal_actions: Vec<SignalAction>,
    /// `signal_actions` that children made between fork and exec, one row
    /// per spawn site and action.
    #[serde(default)]
    pub signal_resets_before_exec: Vec<ResetsBeforeExec>,
    /// Every block / unblock by a traced thread (`rt_sigprocmask`,
    /// `pthread_sigmask`) of a signal that matters here (see the schema doc),
    /// one row per signal and change, in time order.
    #[serde(default)]
    pub signal_masks: Vec<SignalMaskChange>,
    /// Mask changes not in `signal_masks`: of other signals (a thread that
    /// blocks every signal while it starts a thread), or past its bound.
    #[serde(default)]
    pub signal_masks_left_out: u64,
    /// Python frames (sampling); see docs/report-schema-python.md.
    pub python: Python,
    /// Threads that wait in a selector and stalled at least once: their
    /// loop's iterations and stalls.
    #[serde(default)]
    pub event_loops: Vec<EventLoop>,
    /// HTTP/1.x requests the traced servers answered, seen from their
    /// sockets: per route, and the slowest.
    #[serde(default)]
    pub requests: Requests,
    /// The OOM killer's kills.
    #[serde(default)]
    pub memory: Memory,
    /// What deserves attention, with the figures behind each sentence.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Things the user should know about the trace itself (probes missing...).
    pub warnings: Vec<String>,
    /// `--perfetto` only: every event on one time axis (not in the JSON).
    #[serde(skip)]
    pub timeline: Option<Timeline>,
    /// `--serve` only: the continuous mode's figures (in place of the
    /// sections, which it does not keep).
    #[serde(skip)]
    pub metrics: Option<metrics::Metrics>,
    /// A window's report for `--otlp`: when it began (Unix ns), and this
    /// host's name (not in the JSON).
    #[serde(skip)]
    pub start_unix_ns: u64,
    #[serde(skip)]
    pub host_name: Option<String>,
}

/// One thing in the trace that deserves attention: a sentence for people
/// and the figures behind it for programs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier of the kind of finding ("small_read_requests"...;
    /// see docs/report-schema.md).
    pub kind: String,
    /// The report section it belongs to: "reads", "processes", "signals".
    pub concern: String,
    /// What it is about: a file path, a parent process, a signal.
    pub subject: String,
    pub message: String,
    /// The numbers behind the sentence, by name.
    pub figures: BTreeMap<String, u64>,
}

impl Finding {
    pub fn new(kind: &str, concern: &str, subject: String, message: String) -> Self {
        Self {
            kind: kind.into(),
            concern: concern.into(),
            subject,
            message,
            figures: BTreeMap::new(),
        }
    }

    /// Adds a figure.
    pub fn with(mut self, name: &str, value: u64) -> Self {
        self.figures.insert(name.into(), value);
        self
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Target {
    /// A node-wide trace's scope: `all`, `cgroup PATH`, `container NAME`
    /// (`null`: `--pid` or a launched command). With `all` and `cgroup`
    /// there is no one target process: `pid` is 0.
    #[serde(default)]
    pub scope: Option<String>,
    /// Host pid (the tracer's pid namespace).
    pub pid: u32,
    /// The pid it has in its own pid namespace (the last `NSpid` entry of
    /// /proc/PID/status): 1 for a container's init, equal to `pid` outside
    /// containers; `null` when unknown.
    #[serde(default)]
    pub ns_pid: Option<u32>,
    pub comm: String,
    pub argv: Vec<String>,
    /// How it ended (`null` while still running), as in `processes[]`:
    /// the exit code, or the signal that killed it by name and number.
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    #[serde(default)]
    pub exit_signo: Option<i32>,
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
    /// Process / signal bookkeeping entries (clone flags, wait calls, zombies...).
    pub lifecycle: u64,
    /// Runs of the tracer's programs the kernel skipped, the same program
    /// already running on that CPU (`recursion_misses`): events not seen.
    #[serde(default)]
    pub skipped_runs: u64,
}

/// The top of a Python stack and how many kernel events happened under it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventStack {
    /// Innermost first (at most 4; 16 for forks); `"func (file:line)"` in JSON.
    #[serde(with = "crate::frame::as_text")]
    pub frames: Vec<Frame>,
    /// Events captured with this stack (for reads: sampled ones).
    pub samples: u64,
    /// Voluntary context switches only: time until the thread ran again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub off_cpu_ns: u64,
}

impl EventStack {
    pub fn new(frames: Vec<Frame>, samples: u64) -> Self {
        Self {
            frames,
            samples,
            off_cpu_ns: 0,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
