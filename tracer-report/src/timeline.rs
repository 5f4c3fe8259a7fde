//! `--perfetto`'s timeline: every read, switch and signal step on one time
//! axis. Not in the JSON report.

use crate::frame::Frame;

/// `--perfetto`: what happened when, per thread, beyond the sections'
/// totals. Times are ns since tracing started. Bounded: past its limits a
/// part is thinned or cut, and says so in its counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// CLOCK_BOOTTIME ns when tracing started (Perfetto's default clock).
    pub boottime_at_start_ns: u64,
    /// Trace length, ns.
    pub end_ns: u64,
    /// On-CPU and off-CPU stretches of every traced thread, in time order per thread.
    pub cpu: Vec<CpuSlice>,
    /// Context switches seen, and those left out past the limit (the
    /// slices then stop at `cpu_cut_ns`).
    pub switches_seen: u64,
    pub switches_left_out: u64,
    /// Switches followed by another of the same kind (a record missing in
    /// between): each leaves a gap in its thread's CPU slices.
    pub switches_unpaired: u64,
    pub cpu_cut_ns: Option<u64>,
    /// Read syscalls, 1 in `reads_every` of the `reads_seen` (evenly, in
    /// arrival order) when there were more than are kept.
    pub reads: Vec<ReadSlice>,
    pub reads_seen: u64,
    pub reads_every: u64,
    /// (path, filesystem) of `ReadSlice::file`.
    pub files: Vec<(String, String)>,
    /// Signal generations, deliveries and Python handler runs.
    pub signals: Vec<SignalMark>,
    pub signals_left_out: u64,
    /// Python stacks of `CpuSlice::stack` (innermost first, top frames).
    pub stacks: Vec<Vec<Frame>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuSlice {
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub on_cpu: bool,
    /// Off-CPU: it went to sleep (else it was preempted). On-CPU: how the
    /// stretch ended.
    pub voluntary: bool,
    /// Off-CPU asleep: its Python stack as it left (index in `Timeline::stacks`).
    pub stack: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadSlice {
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Index in `Timeline::files`.
    pub file: usize,
    pub fd: i32,
    pub syscall: &'static str,
    /// A write-family syscall or a sync (drawn on the thread's write
    /// track).
    pub write: bool,
    pub request: u64,
    /// Bytes read or written, or `-errno`.
    pub ret: i64,
    pub voluntary: u32,
    pub involuntary: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalStep {
    Generated,
    Delivered,
    /// CPython ran the Python-level handler (in the main thread).
    HandlerRan,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignalMark {
    pub t_ns: u64,
    pub step: SignalStep,
    pub signo: i32,
    /// Where it happened: the sender (0 for the kernel) at generation, the
    /// receiving thread after.
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// The generation it belongs to (0: not seen): one flow per signal.
    pub flow: u64,
    /// Generation: the target and the kernel's result; delivery: the disposition.
    pub detail: String,
}
