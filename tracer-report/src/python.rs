//! The Python section: samples, hotspots, threads and stacks, per process
//! and in total (see docs/report-schema-python.md).

use serde::{Deserialize, Serialize};

use super::EventStack;
use crate::frame::Frame;

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
    /// ...of which in processes that are not Python (`processes[].not_python`).
    #[serde(default)]
    pub ticks_not_python: u64,
    /// ...that hit a thread whose Python thread state was not known (yet).
    pub ticks_without_thread_state: u64,
    /// ...that hit a thread with no Python frame (C code outside the eval loop, startup).
    pub ticks_outside_python: u64,
    /// Stack records lost because the ring buffer was full.
    pub samples_lost: u64,
    /// Stacks deeper than the walk's bound (outermost frames cut off).
    pub truncated: u64,
    /// Stacks the sampler read while the interpreter was changing them (a
    /// pointer no frame or code object has): left out of the figures.
    #[serde(default)]
    pub samples_torn: u64,
    /// Frames whose code object could not be read (process gone, freed).
    pub unresolved_frames: u64,
    /// Frames named, but with no line (0): mostly code objects freed
    /// before they could be read (a module's `<module>` once imported,
    /// code made by `exec`), named from the copy of their names the sampler
    /// made when it met them; their `first_line` is known.
    #[serde(default)]
    pub frames_without_line: u64,
    /// How the native stacks under the samples were unwound (`--native`);
    /// `null` without it.
    #[serde(default)]
    pub native: Option<NativeFigures>,
    /// Python functions by self samples (innermost Python frame: with
    /// native frames below it, their time is its own), highest first.
    pub hotspots: Vec<Hotspot>,
    /// Native functions by self samples (the innermost frame, when native)
    /// and total, highest first; empty with `--native=off`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub native_functions: Vec<Hotspot>,
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
    /// The GIL: `"measured"` (threads carry `gil`), `"none"` (every
    /// process is a free-threaded build: no GIL, no figures), `null` (no
    /// process whose GIL was found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil: Option<String>,
    /// Waits to take the GIL by the top of the Python stack they waited
    /// in (`off_cpu_ns`: the time waited), most time first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gil_waits: Vec<EventStack>,
    /// Lines by samples that held the GIL, highest first: what the
    /// waiters waited for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gil_holder_lines: Vec<LineHotspot>,
    /// Where every known Python thread was when tracing started (`--pid`:
    /// what an already running program was doing) and when it stopped
    /// (what it is stuck in), whether it was running or not: the stacks a
    /// CPU sampler never sees of a thread that sleeps.
    #[serde(default)]
    pub threads_at_start: Vec<ThreadNow>,
    #[serde(default)]
    pub threads_at_end: Vec<ThreadNow>,
    /// asyncio tasks (CPython 3.14+) when tracing started and stopped, or
    /// at `--dump`.
    #[serde(default)]
    pub asyncio: super::Asyncio,
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

impl Python {
    /// Ticks in processes that may run Python but were not sampled: not
    /// found yet, not supported (`ticks_without_interpreter` less
    /// `ticks_not_python`).
    pub fn ticks_not_sampled(&self) -> u64 {
        self.ticks_without_interpreter
            .saturating_sub(self.ticks_not_python)
    }
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
    /// What it ran holds no interpreter: not a Python process (a shell, a
    /// short-lived `uname` a Python parent ran); its ticks are in the
    /// section's `ticks_not_python`.
    #[serde(default)]
    pub not_python: bool,
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
    /// Its container, as in `processes[]` (`null` on the host).
    #[serde(default)]
    pub container: Option<super::Container>,
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
    /// A native function (`--native`): `file` is its binary, no line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
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
    /// Its GIL figures; absent when its process has no GIL (free-threaded)
    /// or it was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil: Option<ThreadGil>,
}

/// One thread's GIL: samples that held it, and futex waits on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThreadGil {
    /// Its samples (CPU-clock, so on CPU) taken while it held the GIL.
    pub held_samples: u64,
    /// Off-CPU time inside futex waits to take the GIL, and how many of
    /// those waits slept (each at most the switch interval, 5 ms, before
    /// the waiter asks again).
    pub wait_ns: u64,
    pub waits: u64,
    /// Off-CPU time it held the GIL but waited, asked to drop it, until
    /// another thread took it (the forced hand-off).
    pub handoff_ns: u64,
    /// `wait_ns` in percent of its time in the trace (on and off CPU).
    pub wait_share: f64,
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
    /// The asyncio task it ran in (3.14+): its name and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Innermost first; in JSON `{function (the qualified name), file, line}`.
    #[serde(with = "crate::frame::as_stack_frames")]
    pub frames: Vec<Frame>,
}

/// `--native`: the native stacks under the samples (in the kernel, from
/// unwind tables compiled out of each binary's `.eh_frame`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeFigures {
    /// Whether stacks hold the interpreter's own frames (`--native=all`),
    /// or only those of the native code Python calls (`libraries`, the
    /// default: the interpreter's frames, and the C library's where the
    /// interpreter calls it, are left out).
    #[serde(default)]
    pub interpreter_frames: bool,
    /// Samples that came with a native stack.
    pub samples: u64,
    /// ...unwound to the outermost frame.
    pub complete: u64,
    /// ...stopped at code in no mapping the unwinder knew (a library
    /// loaded since its mappings were read).
    pub stopped_outside_mappings: u64,
    /// ...stopped in a binary with no unwind table, or outside its table.
    pub stopped_without_table: u64,
    /// ...stopped at a rule the unwinder does not follow (a DWARF
    /// expression other than a PLT's, a register other than rsp / rbp).
    pub stopped_at_unknown_rule: u64,
    /// ...stopped at stack memory that could not be read (paged out).
    pub stopped_unreadable: u64,
    /// ...deeper than 128 native frames (outermost cut off).
    pub truncated: u64,
    /// Samples whose eval-loop frames and Python frames did not pair up
    /// (an unwind that stopped early: the Python frames left are put
    /// outside the native ones).
    pub unmatched: u64,
    /// Binaries mapped by the sampled processes, and the rows of their
    /// unwind tables in the kernel.
    pub binaries: u64,
    pub table_rows: u64,
    /// Binaries with no table (none in the file, or the kernel's table
    /// was full): stacks stop in them.
    pub binaries_without_table: u64,
    /// Executable mappings past the 64 a process can have unwound.
    pub mappings_left_out: u64,
    /// Binaries whose MiniDebugInfo (`.gnu_debugdata`) could not be read
    /// (corrupt, or too large): named from their own symbols only.
    #[serde(default)]
    pub unreadable_debugdata: u64,
}
