//! The report: plain serde data built once by the aggregators. Renderers take
//! `&Report` and nothing else, so every view shows the same figures.
//! The JSON keys are a stable interface, documented in docs/report-schema.md.

#[cfg(test)]
pub mod fixtures;
pub mod flame;
pub mod format;
pub mod json;
pub mod metrics;
pub mod perfetto;
pub mod pprof;
pub mod stories;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::frame::Frame;

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
    pub reads: Vec<FileReads>,
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
}

impl Report {
    /// The name of traced process `pid` (the last one with that pid), "?"
    /// when it was not traced.
    pub fn comm_of(&self, pid: u32) -> String {
        self.processes
            .iter()
            .rev()
            .find(|p| p.pid == pid)
            .map(|p| p.comm.clone())
            .unwrap_or_else(|| "?".into())
    }
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
    /// `path` is only the first 255 bytes of a longer path (the kernel side
    /// captures that much); the text report shows it with "...".
    #[serde(default)]
    pub path_truncated: bool,
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
    /// Python code behind these reads (top frames), from the reads whose
    /// stack was captured: 1 in `python_stacks_every` (0: not captured).
    #[serde(default)]
    pub python_stacks: Vec<EventStack>,
    #[serde(default)]
    pub python_stacks_every: u64,
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

/// Standard-library modules whose frames stand between user code and a
/// fork (`subprocess.Popen`, `Thread.start`, `os.popen`, `pty.spawn`,
/// `multiprocessing`, `asyncio.create_subprocess_exec`, executors).
const SPAWNING_MODULES: [&str; 7] = [
    "subprocess",
    "threading",
    "os",
    "pty",
    "multiprocessing",
    "asyncio",
    "concurrent",
];

/// The line that spawned a child, out of the frames of its fork (innermost
/// first): the innermost frame not inside the standard library's spawning
/// modules (`subprocess`, `threading`, `os`...) and resolved, else the
/// innermost one.
pub fn spawned_line(frames: &[Frame]) -> Option<&Frame> {
    frames
        .iter()
        .find(|f| {
            f.is_resolved()
                && !f
                    .stdlib_module()
                    .is_some_and(|m| SPAWNING_MODULES.contains(&m))
        })
        .or(frames.first())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sched {
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    /// The context switches that happened inside read syscalls (the sum of
    /// `reads[].context_switches`).
    #[serde(default)]
    pub inside_reads: ContextSwitches,
    pub threads: Vec<ThreadSched>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadSched {
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    /// Its Python name (`threading.Thread.name`), when it is a Python
    /// thread whose name could be read.
    #[serde(default)]
    pub name: Option<String>,
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    /// Off-CPU time, a sleep still in progress at the end included.
    pub off_cpu_ns: u64,
    /// The thread was off CPU when tracing stopped, for this long (0: it
    /// was running, or had exited): a thread stuck in a sleep shows here.
    #[serde(default)]
    pub asleep_at_end_ns: u64,
}

impl ThreadSched {
    /// What to call the thread: its Python name, else its task name.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.comm)
    }
}

/// One traced process (see docs/report-schema-signals.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessInfo {
    /// Host pid.
    pub pid: u32,
    /// Its pid in its own pid namespace (equal to `pid` outside
    /// containers); `null` when unknown (it exited and was released before
    /// it could be read, on a kernel without the needed BTF).
    #[serde(default)]
    pub ns_pid: Option<u32>,
    pub ppid: u32,
    /// The name at exit (or now), after any `exec`.
    pub comm: String,
    /// The arguments of its last `exec` (a forked child without exec: its parent's).
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    /// The signal that killed it ("SIGKILL"), if one did.
    pub exit_signal: Option<String>,
    pub exit_signo: Option<i32>,
    pub core_dumped: bool,
    /// Seconds since tracing started (`null`: before it started / not yet).
    pub start_s: Option<f64>,
    pub exec_s: Option<f64>,
    pub exit_s: Option<f64>,
    /// Threads it had during the trace, the main one included.
    pub threads: u32,
    /// The launched command or the `--pid` target (not a followed child).
    pub traced_from_start: bool,
    /// The Python stack of the parent's thread when it forked this process
    /// (the `subprocess.Popen(...)` line and its callers), one entry with
    /// `samples` 1; empty when the parent was not the sampled Python process
    /// or its thread was not known yet.
    #[serde(default)]
    pub python_stacks: Vec<EventStack>,
}

/// A traced child that exited: how long it was a zombie, who reaped it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Zombie {
    pub pid: u32,
    /// Its pid in its own pid namespace (as `processes[].ns_pid`).
    #[serde(default)]
    pub ns_pid: Option<u32>,
    pub ppid: u32,
    pub comm: String,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    pub core_dumped: bool,
    /// When it exited, seconds since tracing started (`null`: before).
    pub exit_s: Option<f64>,
    /// Exit to reap (or to the end of the trace when still a zombie).
    pub zombie_ns: u64,
    pub reaped_by: Option<u32>,
    pub reaped_by_comm: Option<String>,
    /// "wait4" | "waitid" (by its parent) | "autoreap" | "init" | "still_zombie".
    pub reaped_how: String,
    /// The kernel's result for the SIGCHLD its exit sent the parent
    /// ("ignored", "delivered"...); `null`: no SIGCHLD seen.
    pub sigchld: Option<String>,
    /// The parent got SIGCHLD and made no wait call after it while this
    /// child stayed a zombie.
    pub sigchld_unanswered: bool,
    /// wait4/waitid calls the parent made during the whole trace.
    pub parent_wait_calls: u64,
    /// Already a zombie when tracing started (found in /proc).
    pub pre_existing: bool,
    /// Pre-existing zombies: time since the process started (an upper bound).
    pub age_ns: Option<u64>,
    /// The Python stack that forked it, innermost first, as `"func
    /// (file:line)"` (the same frames as its `processes[].python_stacks`);
    /// `null` when not known. [`spawned_line`] picks the caller's line out
    /// of it (past the frames inside `subprocess`, `threading`...).
    #[serde(with = "crate::frame::as_text::option")]
    pub spawned_from: Option<Vec<Frame>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignalPeer {
    /// 0 for the kernel.
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// Generated by the kernel (fault, SIGPIPE, SIGCHLD, timer), not a syscall.
    pub kernel: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignalTarget {
    pub pid: u32,
    /// The thread, for signals sent to one thread (tkill/tgkill); else `null`.
    pub tid: Option<u32>,
    pub comm: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Signals of one (signal, sender, target, si_code).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SignalGroup {
    pub signal: String,
    pub signo: i32,
    pub sender: SignalPeer,
    pub target: SignalTarget,
    /// False when the target is not traced: its deliveries are not seen.
    pub target_traced: bool,
    /// si_code by name (SI_USER, SI_TKILL, SI_KERNEL, CLD_EXITED...).
    pub code: String,
    /// The signal-sending syscall ("kill", "tgkill"...); `null` for the kernel.
    pub syscall: Option<String>,
    pub generated: u64,
    pub delivered: u64,
    /// Discarded: generated while ignored, or delivered with SIG_IGN.
    pub ignored: u64,
    /// Queued and never delivered (blocked, or the trace/process ended first).
    pub pending_at_end: u64,
    /// The kernel's result at generation -> count ("delivered" means queued).
    pub results: BTreeMap<String, u64>,
    /// "handler" | "default" | "ignored" (the last delivery's), `null` if none.
    pub disposition: Option<String>,
    pub dispositions: BTreeMap<String, u64>,
    /// The handler's address ("0x55d0c0ffee00").
    pub handler: Option<String>,
    pub sa_flags: Vec<String>,
    /// Thread id -> deliveries it took.
    pub delivered_to: BTreeMap<String, u64>,
    /// Deliveries whose default action killed the target.
    pub killed: u64,
    /// Generation to delivery.
    pub latency_ns: Option<Latency>,
    /// The receiving thread's Python stack at each delivery (the line that
    /// was running when the signal arrived), innermost first, most first;
    /// `samples` counts deliveries, in every sampled Python process.
    #[serde(default)]
    pub python_stacks: Vec<EventStack>,
    /// Monotonic (CLOCK_MONOTONIC) times of the first and last event.
    pub first_ns: u64,
    pub last_ns: u64,
    /// The first event, in seconds since tracing started.
    #[serde(default)]
    pub first_s: f64,
    /// The Python function the deliveries went to (CPython's C handler only
    /// sets a flag; this runs later, in the main thread), when one did.
    #[serde(default)]
    pub python_handler: Option<PythonHandler>,
    /// Times it started (the main thread's signal check after a delivery).
    #[serde(default)]
    pub python_handler_runs: u64,
    /// From kernel delivery to the Python handler starting.
    #[serde(default)]
    pub python_handler_latency_ns: Option<Latency>,
    /// Deliveries to a Python handler that never ran (the process exited
    /// or tracing stopped first).
    #[serde(default)]
    pub python_handler_pending_at_end: u64,
    /// For deliveries whose Python handler never ran: where the main thread
    /// was last seen after the delivery, i.e. what held the handler up.
    #[serde(default)]
    pub python_handler_main_thread: Option<MainThreadSeen>,
}

/// Where a process's main thread was seen, and how: `"stop"` (its stack
/// when tracing stopped), `"sample"` (its last CPU sample), `"delivery"`
/// (the line it was on when the signal was delivered to it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MainThreadSeen {
    pub seen: String,
    /// Seconds since tracing started.
    pub t_s: f64,
    /// Innermost first.
    #[serde(with = "crate::frame::as_text")]
    pub python_stack: Vec<Frame>,
}

/// A Python-level signal handler: a function (its `def` line), a bound
/// method, or a built-in (`default_int_handler`, file `<built-in>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PythonHandler {
    pub function: String,
    pub file: String,
    pub line: u32,
}

impl From<Frame> for PythonHandler {
    fn from(f: Frame) -> Self {
        Self {
            function: f.qualname,
            file: f.file,
            line: f.line,
        }
    }
}

impl SignalMaskChange {
    /// A mask a program set on purpose, not a blanket one around a thread
    /// start or a fork.
    pub fn deliberate(&self) -> bool {
        self.signals_changed < 8
    }
}

impl SignalGroup {
    /// Generated while one was already pending, and merged with it (a
    /// standard signal is queued once): neither delivered nor ignored.
    pub fn merged(&self) -> u64 {
        self.results.get("already_pending").copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SignalLogEntry {
    /// Seconds since tracing started.
    pub t_s: f64,
    /// "generate" | "deliver".
    pub event: String,
    pub signal: String,
    pub signo: i32,
    /// Generation only.
    pub sender: Option<SignalPeer>,
    /// The task the event ran in (for a kernel signal: the faulting task, the
    /// exiting child of a SIGCHLD...).
    pub context_pid: u32,
    pub target: SignalTarget,
    pub code: String,
    /// Generation: the kernel's result.
    pub result: Option<String>,
    /// Delivery: "handler" | "default" | "ignored".
    pub disposition: Option<String>,
    pub latency_ns: Option<u64>,
}

/// One `rt_sigaction` that set a new action for a signal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SignalAction {
    pub pid: u32,
    pub tid: u32,
    pub signal: String,
    pub signo: i32,
    /// "handler", "ignore" or "default".
    pub action: String,
    /// The C-level handler's address, for "handler".
    pub handler_address: Option<u64>,
    /// For "handler": the Python function it runs (CPython's C handler
    /// calls it later, in the main thread), read from CPython's handler
    /// table after the change; `null` for a C handler or when unknown.
    #[serde(default)]
    pub python_handler: Option<PythonHandler>,
    /// Who set it: "python" (the line is `python_stack`'s first frame),
    /// "interpreter start-up" (CPython's own defaults: SIGINT ->
    /// KeyboardInterrupt, SIGPIPE and SIGXFSZ ignored so that writes raise
    /// errors), or "native code" (no Python frame: C code, a process that is
    /// not Python, a child about to exec).
    pub set_by: String,
    /// Seconds since tracing started.
    pub t_s: f64,
    /// The Python stack that made the call, innermost first (top 4 frames).
    #[serde(with = "crate::frame::as_text")]
    pub python_stack: Vec<Frame>,
}

/// One signal blocked or unblocked by one `rt_sigprocmask`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SignalMaskChange {
    pub pid: u32,
    pub tid: u32,
    pub signal: String,
    pub signo: i32,
    /// "block" or "unblock".
    pub change: String,
    /// Signals the same call changed: 1 or a few for a deliberate mask
    /// (`pthread_sigmask({SIGINT})`), about 60 for the C library masking
    /// every signal around a thread start or a fork.
    #[serde(default)]
    pub signals_changed: u32,
    /// For a block: how many of this signal were sent to the process while
    /// it held (until the thread unblocked it, or the end).
    #[serde(default)]
    pub held: u64,
    pub t_s: f64,
    #[serde(with = "crate::frame::as_text")]
    pub python_stack: Vec<Frame>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SignalLog {
    /// Signal events seen in all.
    pub total: u64,
    /// The first and last ones (all of them when few).
    pub entries: Vec<SignalLogEntry>,
}

impl FileReads {
    /// The path as people read it: a cut path ends in "...".
    pub fn shown_path(&self) -> String {
        if self.path_truncated {
            format!("{}...", self.path)
        } else {
            self.path.clone()
        }
    }

    /// About how many of this file's reads came from `stack`, one of its
    /// `python_stacks`: its captured count times `python_stacks_every`,
    /// scaled down when the estimates would add up to more than the exact
    /// syscall count they sample (never above it).
    pub fn estimated_reads(&self, stack: &EventStack) -> u64 {
        let every = self.python_stacks_every.max(1);
        let captured: u64 = self.python_stacks.iter().map(|s| s.samples).sum();
        if captured.saturating_mul(every) > self.syscalls && captured > 0 {
            stack.samples * self.syscalls / captured
        } else {
            stack.samples * every
        }
    }

    /// The request size used by most syscalls (ties: the larger size).
    pub fn dominant_request(&self) -> Option<(u64, u64)> {
        self.request_sizes
            .iter()
            .filter_map(|(size, count)| Some((size.parse::<u64>().ok()?, *count)))
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
    }
}

/// The Python section. Always present: when the target is not Python (or
/// its interpreter cannot be read) `status` is "unavailable" and `reason`
/// says exactly why; the kernel sections are unaffected.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Python {
    /// "sampled", "unavailable" or "disabled".
    pub status: String,
    pub reason: Option<String>,
    /// The process whose interpreter the keys from `pid` to `layout`
    /// describe: the target, or the first followed process running Python
    /// when the target is not (a wrapper such as `unshare`, `chroot` or
    /// `sh -c`). `null` when none was found. Every Python process is in
    /// `processes`; the figures from `samples` on are totals over them.
    #[serde(default)]
    pub pid: Option<u32>,
    /// "3.11.7"
    pub version: Option<String>,
    /// The ELF holding the interpreter (`python3.X` or `libpython3.X.so`),
    /// as the process sees it (inside its `root`).
    pub binary: Option<String>,
    /// The directory the process sees as `/` (chroot, container), when it
    /// is not the tracer's `/`; `null` otherwise.
    #[serde(default)]
    pub root: Option<String>,
    /// "static" (the interpreter is in the executable) or "shared" (in
    /// `libpython3.X.so`).
    #[serde(default)]
    pub linkage: Option<String>,
    /// A debug build (`--with-pydebug`, e.g. Debian's `python3.13d`).
    #[serde(default)]
    pub debug_build: bool,
    pub free_threaded: bool,
    /// Where the structure offsets came from.
    pub layout: Option<String>,
    /// Sampling frequency asked for (ticks per second of a thread's CPU time).
    pub rate_hz: u64,
    /// Python stacks received and counted below.
    pub samples: u64,
    /// CPU-clock ticks that found a traced thread running.
    pub ticks: u64,
    /// ...in a process whose interpreter was not known (not Python, not
    /// found yet, not supported): see `processes` for which and why.
    #[serde(default)]
    pub ticks_without_interpreter: u64,
    /// ...that hit a thread whose Python thread state was not known (yet).
    pub ticks_without_thread_state: u64,
    /// ...that hit a thread with no Python frame (C code outside the eval loop, startup).
    pub ticks_outside_python: u64,
    /// Stack records lost because the ring buffer was full.
    pub samples_lost: u64,
    /// Stacks deeper than the walk's bound (outermost frames cut off).
    pub truncated: u64,
    /// Frames whose code object could not be read (process gone, freed).
    pub unresolved_frames: u64,
    /// Functions by self samples (innermost frame), highest first.
    pub hotspots: Vec<Hotspot>,
    /// Lines by self samples, highest first.
    pub lines: Vec<LineHotspot>,
    pub threads: Vec<PythonThread>,
    /// Every distinct stack, innermost frame first.
    pub stacks: Vec<PythonStack>,
    /// Every sample in time order (for the exports that draw time:
    /// speedscope's time order); not in the JSON report, which would grow
    /// with the run. Empty with `timeline_complete` false when the run
    /// took more samples than are kept in order.
    #[serde(skip)]
    pub timeline: Vec<TimedSample>,
    #[serde(skip)]
    pub timeline_complete: bool,
    /// Voluntary context switches (the thread went to sleep) by the top of
    /// the Python stack, most off-CPU time first.
    #[serde(default)]
    pub off_cpu: Vec<EventStack>,
    /// fork / clone calls (new processes, e.g. `subprocess.Popen`, and new
    /// threads) by the top of the Python stack, every one counted.
    #[serde(default)]
    pub forks: Vec<EventStack>,
    /// Where every known Python thread was when tracing started (`--pid`:
    /// what an already running program was doing) and when it stopped
    /// (what it is stuck in), whether it was running or not: the stacks a
    /// CPU sampler never sees of a thread that sleeps.
    #[serde(default)]
    pub threads_at_start: Vec<ThreadNow>,
    #[serde(default)]
    pub threads_at_end: Vec<ThreadNow>,
    /// Every process of the trace that runs Python, or that ran ticks
    /// without being sampled, in the order they were found.
    #[serde(default)]
    pub processes: Vec<PythonProcess>,
    /// `--count-entries`: exact entries into `_PyEval_EvalFrameDefault` per
    /// function ("entries from C" from 3.11 on), most first; empty otherwise.
    #[serde(default)]
    pub entries_from_c: Vec<Entries>,
    /// Why the entry counter is not running, when it was asked for.
    #[serde(default)]
    pub entries_error: Option<String>,
}

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
    pub request: u64,
    /// Bytes read, or `-errno`.
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

/// One sample: when (ns since tracing started) and which of `stacks`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimedSample {
    pub t_ns: u64,
    pub stack: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entries {
    pub function: String,
    pub qualname: String,
    pub file: String,
    pub line: u32,
    pub entries: u64,
}

/// A Python thread at one moment: what it was doing and in which code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadNow {
    pub pid: u32,
    pub tid: u32,
    /// Its Python name (`threading.Thread.name`), when read.
    #[serde(default)]
    pub name: Option<String>,
    /// "running", "sleeping", "disk sleep", "stopped"... (`/proc` state).
    pub state: String,
    /// The system call it is blocked in, when it is.
    pub syscall: Option<String>,
    /// At the end: how long it had been off CPU (0 when running or unknown).
    #[serde(default)]
    pub asleep_ns: u64,
    /// Innermost first; in JSON as in `stacks[].frames`.
    #[serde(with = "crate::frame::as_stack_frames")]
    pub frames: Vec<Frame>,
}

/// One process of the trace, as far as Python is concerned.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PythonProcess {
    pub pid: u32,
    /// Its pid in its own pid namespace, when that is not the tracer's.
    pub ns_pid: Option<u32>,
    /// "sampled", "unavailable" (see `reason`).
    pub status: String,
    pub reason: Option<String>,
    pub version: Option<String>,
    pub binary: Option<String>,
    pub root: Option<String>,
    pub linkage: Option<String>,
    pub debug_build: bool,
    pub free_threaded: bool,
    pub layout: Option<String>,
    pub samples: u64,
    pub ticks: u64,
    pub ticks_without_interpreter: u64,
    pub ticks_without_thread_state: u64,
    pub ticks_outside_python: u64,
    /// Why none of its threads was sampled, for a process whose interpreter
    /// is known ("sampled") and that gave no sample: no interpreter started
    /// yet, no thread attached, thread states of another process's threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_thread_reason: Option<String>,
    /// This process's functions by self samples (top 20).
    pub hotspots: Vec<Hotspot>,
    /// This process's lines by self samples (top 20).
    pub lines: Vec<LineHotspot>,
    pub threads: Vec<PythonThread>,
}

impl PythonProcess {
    /// How the process is named in a flame graph's root frame:
    /// `python3.11 (pid 42)`, `python3.13t (pid 43)`.
    pub fn label(&self) -> String {
        let name = match &self.version {
            Some(version) => {
                let minor: Vec<&str> = version.split('.').take(2).collect();
                let t = if self.free_threaded { "t" } else { "" };
                format!("python{}{t}", minor.join("."))
            }
            None => "process".to_owned(),
        };
        format!("{name} (pid {})", self.pid)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hotspot {
    pub function: String,
    pub qualname: String,
    pub file: String,
    /// First line of the function.
    pub line: u32,
    pub self_samples: u64,
    pub total_samples: u64,
    /// Percent of `samples`.
    pub self_share: f64,
    pub total_share: f64,
    /// The processes it was sampled in (totals over several processes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LineHotspot {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub self_samples: u64,
    pub self_share: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PythonThread {
    /// Its process.
    #[serde(default)]
    pub pid: u32,
    pub tid: u32,
    /// Its Python name (`threading.Thread.name`, "MainThread"), when read.
    #[serde(default)]
    pub name: Option<String>,
    pub samples: u64,
    /// This thread's functions by self samples (top 20).
    pub hotspots: Vec<Hotspot>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PythonStack {
    /// Its process.
    #[serde(default)]
    pub pid: u32,
    pub tid: u32,
    pub samples: u64,
    /// Deeper than the walk's bound: the outermost frames are missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Innermost first; in JSON `{function (the qualified name), file, line}`.
    #[serde(with = "crate::frame::as_stack_frames")]
    pub frames: Vec<Frame>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(list: &[&str]) -> Vec<Frame> {
        list.iter().map(|f| Frame::parse(f).unwrap()).collect()
    }

    fn line(frames: &[Frame]) -> Option<String> {
        spawned_line(frames).map(Frame::to_string)
    }

    #[test]
    fn estimated_reads_never_exceed_the_exact_count() {
        let a = EventStack::new(frames(&["poll (/abs/p.py:3)"]), 38);
        let b = EventStack::new(frames(&["main (/abs/p.py:9)"]), 1);
        let mut file = FileReads {
            syscalls: 600,
            python_stacks_every: 16,
            python_stacks: vec![a.clone(), b.clone()],
            ..FileReads::default()
        };
        // 39 captures x 16 = 624 > 600 exact reads: scaled to 600.
        assert_eq!(file.estimated_reads(&a), 584);
        assert_eq!(file.estimated_reads(&b), 15);
        // A .pyc read twice, its one read captured: 2, not 16.
        file.syscalls = 2;
        file.python_stacks = vec![b.clone()];
        assert_eq!(file.estimated_reads(&b), 2);
        // Within the exact count: captures x every.
        file.syscalls = 100_000;
        assert_eq!(file.estimated_reads(&b), 16);
    }

    #[test]
    fn spawned_line_skips_the_spawning_machinery() {
        let popen = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "spawn (/abs/wl.py:7)",
            "<module> (/abs/wl.py:12)",
        ]);
        assert_eq!(line(&popen), Some("spawn (/abs/wl.py:7)".into()));
        // os.popen -> subprocess.Popen: the caller of os.popen.
        let os_popen = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "popen (<frozen os>:1016)",
            "list_files (/abs/app.py:30)",
        ]);
        assert_eq!(line(&os_popen), Some("list_files (/abs/app.py:30)".into()));
        let thread = frames(&[
            "Thread.start (/usr/lib/python3.11/threading.py:957)",
            "start_workers (/abs/app.py:40)",
        ]);
        assert_eq!(line(&thread), Some("start_workers (/abs/app.py:40)".into()));
        // An unreadable frame is not a line.
        let unresolved = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "<code 0x55aa> (?:0)",
            "main (/abs/app.py:3)",
        ]);
        assert_eq!(line(&unresolved), Some("main (/abs/app.py:3)".into()));
        // Only machinery (the user frames were deeper than the 4 kept):
        // the innermost frame.
        let deep = frames(&[
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)",
            "Popen.__init__ (/usr/lib/python3.11/subprocess.py:1026)",
            "run (/usr/lib/python3.11/subprocess.py:548)",
            "check_output (/usr/lib/python3.11/subprocess.py:466)",
        ]);
        assert_eq!(
            line(&deep),
            Some("Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)".into())
        );
        // Direct os.fork() from user code.
        assert_eq!(
            line(&frames(&["main (/abs/app.py:9)"])),
            Some("main (/abs/app.py:9)".into())
        );
        assert_eq!(spawned_line(&[]), None);
    }
}
