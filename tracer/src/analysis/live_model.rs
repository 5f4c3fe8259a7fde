//! What `--live` draws each refresh: one snapshot of the trace so far,
//! built by `analysis::live` from the collector and the kernel maps. Rates
//! are over the last refresh interval; totals since tracing began.

use std::time::Duration;

use super::hotspots::percent;

/// One refresh.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// What is traced: `pid 1234 (python3)`, `all`, `container web`.
    pub target: String,
    /// Since tracing began.
    pub elapsed: Duration,
    /// The interval the rates are over.
    pub interval: Duration,
    /// Python samples taken in the interval.
    pub samples: u64,
    /// Events the kernel could not record or send, since tracing began.
    pub lost: u64,
    /// Why there are no Python rows, when sampling is off or failed.
    pub python_note: Option<String>,
    pub functions: Vec<FunctionRow>,
    pub files: Vec<FileRow>,
    pub threads: Vec<ThreadRow>,
    /// The last signal events, oldest first.
    pub signals: Vec<SignalRow>,
    pub signals_total: u64,
    pub processes: Vec<ProcessRow>,
    pub loops: Vec<LoopRow>,
}

impl Snapshot {
    /// `n` events of the interval, a second; `None` over no time.
    pub fn per_second(&self, n: u64) -> Option<f64> {
        let secs = self.interval.as_secs_f64();
        (secs > 0.0).then(|| n as f64 / secs)
    }

    /// Python samples a second over the interval (0 over no time).
    pub fn samples_per_second(&self) -> f64 {
        self.per_second(self.samples).unwrap_or(0.0)
    }

    /// The interval's Python samples that `samples` are, in percent.
    pub fn share(&self, samples: u64) -> f64 {
        percent(samples as f64, self.samples as f64)
    }

    /// A thread's time on a CPU in the interval, in percent of it; `None`
    /// over no time.
    pub fn cpu_share(&self, on_cpu: Duration) -> Option<f64> {
        let secs = self.interval.as_secs_f64();
        (secs > 0.0).then(|| percent(on_cpu.as_secs_f64(), secs))
    }
}

/// One Python function in one thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionRow {
    pub pid: u32,
    pub tid: u32,
    pub thread: String,
    /// `qualname (file:def line)`.
    pub function: String,
    /// Samples in the interval with it innermost (own) or anywhere (total).
    pub own: u64,
    pub total: u64,
    /// The same since tracing began.
    pub own_all: u64,
    pub total_all: u64,
}

/// One file (or socket) of one process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileRow {
    pub pid: u32,
    pub path: String,
    /// The file's writes (and syncs) rather than its reads.
    pub write: bool,
    /// In the interval.
    pub syscalls: u64,
    pub bytes: u64,
    /// Since tracing began.
    pub syscalls_all: u64,
    pub bytes_all: u64,
    /// A write row's syncs since tracing began.
    pub syncs_all: u64,
    /// Request sizes since tracing began, (bytes asked for, syscalls),
    /// most used first.
    pub requests: Vec<(u64, u64)>,
}

/// One thread's scheduling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadRow {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// Context switches in the interval.
    pub voluntary: u64,
    pub involuntary: u64,
    /// Time on a CPU in the interval.
    pub on_cpu: Duration,
    pub voluntary_all: u64,
    pub involuntary_all: u64,
}

/// One signal event: its generation (the kernel's result) or its delivery
/// (the disposition it met).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalRow {
    /// Seconds since tracing began.
    pub t_s: f64,
    pub signal: String,
    pub from: String,
    pub to: String,
    /// `sent: delivered`, `sent: ignored`, `delivered: handler` ...
    pub fate: String,
}

/// One process of the trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessRow {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub state: ProcessState,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ProcessState {
    #[default]
    Running,
    /// Exited, not reaped yet: for how long.
    Zombie(Duration),
    /// Exited with this code, or killed by this signal, and reaped.
    Exited(i32),
    Killed(String),
}

/// One thread's event loop that stalled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopRow {
    pub pid: u32,
    pub tid: u32,
    pub stalls: u64,
    pub longest: Duration,
    pub total: Duration,
    /// When the last one ended, since tracing began.
    pub last_s: f64,
}
