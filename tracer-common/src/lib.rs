//! Plain `#[repr(C)]` data shared by the eBPF programs and userspace.
//!
//! Nothing here has logic: event records carried by the ring buffer, keys and
//! values of the aggregation maps, and the load-time configuration. Every
//! record has a size assertion so both sides agree on the layout.
#![no_std]

/// Bytes of a path captured from `openat` (longer paths are truncated and flagged).
pub const PATH_CAPTURE_LEN: usize = 256;
/// Length of a kernel `comm` (task name) including the NUL.
pub const COMM_LEN: usize = 16;

/// Byte offsets of the tracepoint fields the programs read. Filled by userspace
/// from `/sys/kernel/tracing/events/<category>/<event>/format` at start-up, so
/// nothing depends on one kernel's layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointOffsets {
    /// `sched:sched_switch`
    pub switch_prev_pid: u32,
    pub switch_prev_state: u32,
    pub switch_next_pid: u32,
    /// `sched:sched_process_fork`
    pub fork_parent_pid: u32,
    pub fork_child_pid: u32,
    /// `sched:sched_process_exit`
    pub exit_pid: u32,
    pub exit_group_dead: u32,
    /// `syscalls:sys_enter_read` / `sys_enter_pread64` (same shape)
    pub read_fd: u32,
    pub read_count: u32,
    pub pread_fd: u32,
    pub pread_count: u32,
    /// `syscalls:sys_enter_readv` / `sys_enter_preadv`
    pub readv_fd: u32,
    pub readv_vec: u32,
    pub readv_vlen: u32,
    pub preadv_fd: u32,
    pub preadv_vec: u32,
    pub preadv_vlen: u32,
    /// `syscalls:sys_enter_openat`
    pub openat_filename: u32,
    /// `syscalls:sys_enter_close`
    pub close_fd: u32,
    /// `syscalls:sys_exit_*` (all syscall exits share this field)
    pub exit_ret: u32,
}

/// Load-time configuration, written into the programs' read-only data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub offsets: TracepointOffsets,
    /// `prev_state & task_state_mask != 0` means the task went to sleep
    /// (a voluntary switch); otherwise it was preempted. Preemption is reported
    /// as `TASK_REPORT_MAX` (0x100 on 6.x), so testing `prev_state != 0` is wrong.
    pub task_state_mask: u64,
    /// 1: processes forked by a traced process are traced too.
    pub follow_children: u32,
    pub _pad: u32,
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}

/// Which read-family syscall a figure came from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadSyscall {
    Read = 0,
    Pread64 = 1,
    Readv = 2,
    Preadv = 3,
}

impl ReadSyscall {
    pub const ALL: [ReadSyscall; 4] = [Self::Read, Self::Pread64, Self::Readv, Self::Preadv];

    pub fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == value)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Pread64 => "pread64",
            Self::Readv => "readv",
            Self::Preadv => "preadv",
        }
    }
}

/// Key of the per-CPU `READ_STATS` map: one row per open file, syscall and request size.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReadKey {
    pub tgid: u32,
    pub fd: i32,
    /// Which file: a hash of the path it was opened by, or, for a descriptor
    /// the tracer did not see opened, a unique id with [`DISCOVERED_FILE_BIT`]
    /// set. A reused fd number is never confused with the file it used to name.
    pub file_id: u64,
    /// Bytes asked for (`count`, or the sum of the iovec lengths).
    pub request: u64,
    pub syscall: u32,
    pub _pad: u32,
}

/// Value of `READ_STATS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub syscalls: u64,
    pub bytes: u64,
    pub errors: u64,
    pub kernel_ns: u64,
    /// Scheduler context switches that happened while the read was in the kernel.
    pub voluntary: u64,
    pub involuntary: u64,
}

/// A read that has entered the kernel and not returned yet (per thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InflightRead {
    pub start_ns: u64,
    pub request: u64,
    pub fd: i32,
    pub syscall: u32,
    pub voluntary: u64,
    pub involuntary: u64,
}

/// Value of the `THREADS` map (key: tid): scheduling figures of one traced thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadStats {
    pub tgid: u32,
    pub _pad: u32,
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    /// When it last went on / off a CPU (0: not seen yet).
    pub last_on_ns: u64,
    pub last_off_ns: u64,
    pub comm: [u8; COMM_LEN],
}

/// Key of `FD_FILES`: which opening of a descriptor is current.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdKey {
    pub tgid: u32,
    pub fd: i32,
}

/// Set in `file_id` for descriptors discovered on first read (not opened while traced).
pub const DISCOVERED_FILE_BIT: u64 = 1 << 63;

/// Key of `KNOWN_FILES`: a path a process has already been reported to open.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub tgid: u32,
    pub _pad: u32,
    pub file_id: u64,
}

/// Indices of the `DROPS` per-CPU counters: everything the kernel side could
/// not record. Userspace reports each non-zero one.
pub mod drops {
    /// Ring buffer full: an event record was lost.
    pub const RINGBUF: u32 = 0;
    /// `READ_STATS` full: a read was not counted.
    pub const READ_STATS: u32 = 1;
    /// `THREADS` full: a thread's scheduling was not counted.
    pub const THREADS: u32 = 2;
    /// `FD_FILES` / in-flight tables full.
    pub const TABLES: u32 = 3;
    /// Ring buffer full: a Python stack sample was lost.
    pub const PY_SAMPLES: u32 = 4;
    pub const COUNT: u32 = 5;
}

/// Discriminant of every ring buffer record (first field of [`EventHeader`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `openat` returned a descriptor: [`FileEvent`] with the path.
    FileOpened = 1,
    /// A read on a descriptor the tracer has not seen opened: [`FileEvent`]
    /// without a path; userspace resolves it through `/proc/PID/fd`.
    FdDiscovered = 2,
    /// A traced process forked: [`ProcessEvent`].
    ProcessForked = 3,
    /// A traced thread or process exited: [`ProcessEvent`].
    ProcessExited = 4,
    /// A CPU-clock sample of a thread's Python stack: [`PySample`].
    PySample = 5,
    /// A kernel-event stack not seen before: [`PyStackEvent`], so userspace
    /// symbolizes it while the thread (asleep, or just back from a read) lives.
    PyStack = 6,
}

impl EventKind {
    pub fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::FileOpened),
            2 => Some(Self::FdDiscovered),
            3 => Some(Self::ProcessForked),
            4 => Some(Self::ProcessExited),
            5 => Some(Self::PySample),
            6 => Some(Self::PyStack),
            _ => None,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    pub kind: u32,
    pub tgid: u32,
    pub tid: u32,
    pub _pad: u32,
    pub ts_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEvent {
    pub header: EventHeader,
    pub fd: i32,
    /// Bytes of `path` that are valid (0 for `FdDiscovered`).
    pub path_len: u32,
    pub file_id: u64,
    pub path: [u8; PATH_CAPTURE_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessEvent {
    pub header: EventHeader,
    /// Fork: the new task's id. Exit: the exiting task's id.
    pub pid: u32,
    /// Fork: the parent's tgid. Exit: 1 if the whole thread group is gone.
    pub arg: u32,
    pub comm: [u8; COMM_LEN],
}

/// Deepest Python stack a sample records (deeper stacks are truncated at the
/// outermost end and flagged).
pub const PY_MAX_DEPTH: usize = 128;

/// No such field in this CPython version.
pub const PY_NO_OFFSET: u32 = u32::MAX;

/// How the sampler finds and walks a thread's Python frames, set by userspace
/// once it has found the interpreter (`PY_CONFIG` array map, index 0; the
/// interpreter is only known after the target has exec'd, so this cannot be a
/// load-time global). All offsets in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyConfig {
    /// 0: sampling off.
    pub enabled: u32,
    /// Offset in `PyThreadState` of the frame pointer (`frame` <= 3.10,
    /// `cframe` 3.11-3.12, `current_frame` 3.13+).
    pub tstate_frame: u32,
    /// 3.11-3.12: offset of `current_frame` in `_PyCFrame`; else [`PY_NO_OFFSET`].
    pub cframe_current_frame: u32,
    /// Offset of the next-outer frame (`f_back` / `previous`).
    pub frame_back: u32,
    /// Offset of the code object (`f_code` / `f_executable`).
    pub frame_code: u32,
    /// Offset of `f_lasti` (<= 3.10, an int) or `prev_instr` / `instr_ptr`.
    pub frame_instr: u32,
    /// Offset of the one-byte `owner` field, or [`PY_NO_OFFSET`].
    pub frame_owner: u32,
    /// Capture the Python stack behind 1 in this many reads (per CPU); 0: never.
    pub read_stack_every: u32,
    /// Which argument of `_PyEval_EvalFrameDefault` is the frame (0 on 3.8:
    /// `(frame, throwflag)`; 1 from 3.9: `(tstate, frame, throwflag)`).
    pub entry_frame_arg: u32,
    pub _pad: u32,
}

/// Key of `PY_ENTRIES`: entries into `_PyEval_EvalFrameDefault` per code object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyEntryKey {
    pub tgid: u32,
    pub _pad: u32,
    pub code: u64,
}

/// Frames kept when a Python stack is attached to a kernel event (reads,
/// voluntary context switches): the innermost ones.
pub const PY_EVENT_DEPTH: usize = 4;

/// Which kernel event a [`PyEventKey`] counts.
pub mod py_event {
    /// A read-family syscall on `file_id` (sampled: 1 in `read_stack_every`).
    pub const READ: u32 = 0;
    /// A voluntary context switch (the thread went to sleep); the value
    /// carries the time until it ran again.
    pub const OFF_CPU: u32 = 1;
    /// A fork / clone (new process or thread) made by the thread.
    pub const FORK: u32 = 2;
    /// Not a map key: announces a code object first entered through
    /// `_PyEval_EvalFrameDefault` (`frames[0].code`), to be symbolized.
    pub const ENTRY: u32 = 3;
}

/// Key of `PY_EVENT_STACKS`: a kernel event of one process with the top of
/// the Python stack it happened under.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyEventKey {
    pub tgid: u32,
    /// `py_event::*`
    pub kind: u32,
    /// `READ`: the file (as `ReadKey::file_id`); else 0.
    pub file_id: u64,
    /// Innermost first; `code == 0` past the end.
    pub frames: [PyFrameRecord; PY_EVENT_DEPTH],
}

/// Value of `PY_EVENT_STACKS` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyEventValue {
    pub count: u64,
    /// `OFF_CPU`: nanoseconds until the thread was switched back in.
    pub off_cpu_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PyStackEvent {
    pub header: EventHeader,
    pub key: PyEventKey,
}

/// A thread asleep after a voluntary switch (`PY_SLEEPING`, key: tid).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PySleep {
    pub key: PyEventKey,
    /// 0: slot idle.
    pub start_ns: u64,
}

/// One frame of a [`PySample`]: raw values, symbolized by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyFrameRecord {
    /// Address of the code object (3.14: a tagged stack reference).
    pub code: u64,
    /// `f_lasti` (<= 3.10, low 32 bits) or the instruction pointer; the frame's
    /// `owner` byte is stored in bits 56..64.
    pub instr: u64,
}

/// A CPU-clock sample of one thread's Python stack, innermost frame first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PySample {
    pub header: EventHeader,
    /// Valid entries of `frames`.
    pub depth: u32,
    /// 1 if the stack was deeper than [`PY_MAX_DEPTH`].
    pub truncated: u32,
    pub frames: [PyFrameRecord; PY_MAX_DEPTH],
}

/// Indices of the per-CPU `PY_STATS` counters.
pub mod py_stats {
    /// Samples that hit a traced process.
    pub const SAMPLES: u32 = 0;
    /// ...of which the thread had no known Python thread state (yet).
    pub const NO_THREAD_STATE: u32 = 1;
    /// ...of which the thread was not running Python code (no current frame).
    pub const NO_FRAME: u32 = 2;
    pub const COUNT: u32 = 3;
}

const _: () = assert!(core::mem::size_of::<EventHeader>() == 24);
const _: () = assert!(core::mem::size_of::<PyConfig>() == 40);
const _: () = assert!(core::mem::size_of::<PyEntryKey>() == 16);
const _: () = assert!(core::mem::size_of::<PyFrameRecord>() == 16);
const _: () = assert!(core::mem::size_of::<PyEventKey>() == 16 + 16 * PY_EVENT_DEPTH);
const _: () = assert!(core::mem::size_of::<PyEventValue>() == 16);
const _: () = assert!(core::mem::size_of::<PyStackEvent>() == 24 + 16 + 16 * PY_EVENT_DEPTH);
const _: () = assert!(core::mem::size_of::<PySleep>() == 16 + 16 * PY_EVENT_DEPTH + 8);
const _: () = assert!(core::mem::size_of::<PySample>() == 24 + 8 + 16 * PY_MAX_DEPTH);
const _: () = assert!(core::mem::size_of::<FileEvent>() == 24 + 16 + PATH_CAPTURE_LEN);
const _: () = assert!(core::mem::size_of::<ProcessEvent>() == 24 + 8 + COMM_LEN);
const _: () = assert!(core::mem::size_of::<ReadKey>() == 32);
const _: () = assert!(core::mem::size_of::<ReadStats>() == 48);
const _: () = assert!(core::mem::size_of::<ThreadStats>() == 8 + 48 + COMM_LEN);
const _: () = assert!(core::mem::size_of::<TracepointOffsets>() == 4 * 20);
const _: () = assert!(core::mem::size_of::<Config>() == 4 * 20 + 16);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for ReadKey {}
    unsafe impl aya::Pod for ReadStats {}
    unsafe impl aya::Pod for ThreadStats {}
    unsafe impl aya::Pod for FdKey {}
    unsafe impl aya::Pod for FileKey {}
    unsafe impl aya::Pod for PyConfig {}
    unsafe impl aya::Pod for PyEventKey {}
    unsafe impl aya::Pod for PyEventValue {}
    unsafe impl aya::Pod for PyEntryKey {}
}
