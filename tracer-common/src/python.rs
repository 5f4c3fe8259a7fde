//! Python: the sampler's configuration, sampled stacks, and the stacks
//! attached to kernel events (reads, context switches, forks, entries).

use crate::events::EventHeader;

/// Deepest Python stack a sample records (deeper stacks are truncated at the
/// outermost end and flagged).
pub const PY_MAX_DEPTH: usize = 128;

/// No such field in this CPython version.
pub const PY_NO_OFFSET: u32 = u32::MAX;

/// How the sampler finds and walks the Python frames of one process's
/// threads (`PY_CONFIG`, key: tgid), set by userspace once it has found the
/// process's interpreter, and copied in the kernel to a child forked without
/// `exec` (same interpreter, same memory layout). Processes may run different
/// builds, so this cannot be a load-time global. All offsets in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyConfig {
    /// 0: sampling off for this process.
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
    /// 3.11: offset of the one-byte `is_entry` field, or [`PY_NO_OFFSET`]
    /// (stored in bit [`PY_ENTRY_BIT`] of the record's `instr`).
    pub frame_is_entry: u32,
    /// The first `owner` value of a frame that runs no code object (3.12+:
    /// C-stack entry frames, whose executable is `None` from 3.13), or
    /// [`PY_NO_OFFSET`]: every frame runs one.
    pub owner_not_code: u32,
    /// Capture the Python stack behind 1 in this many reads (per CPU); 0: never.
    pub read_stack_every: u32,
    /// Which argument of `_PyEval_EvalFrameDefault` is the frame (0 on 3.8:
    /// `(frame, throwflag)`; 1 from 3.9: `(tstate, frame, throwflag)`).
    pub entry_frame_arg: u32,
    /// Offset of `func_code` in a function object (0: unknown).
    pub function_code: u32,
    /// Run-time address of CPython's signal handler table (`{int tripped;
    /// PyObject *func}` per signal), 0 while unknown: a delivery to a
    /// handler reads the Python function it goes to from there.
    pub signal_handlers: u64,
    /// Where a thread the sampler has no entry for (made and attached in C
    /// between two of userspace's refreshes, a thread state made and freed
    /// around every call) is looked for: the run-time address of
    /// `_PyRuntime.interpreters.head` (0: not looked for), and the offsets
    /// of `PyInterpreterState.next` / `threads.head` and `PyThreadState.next`
    /// / `thread_id` (the thread's `pthread_t`, which is its TLS base).
    pub interpreters_head: u64,
    pub interp_next: u32,
    pub interp_threads_head: u32,
    pub tstate_next: u32,
    pub tstate_thread_id: u32,
    /// Offset in a code object of its check window ([`CODE_CHECK_WORDS`]
    /// words: the name, filename, qualname and line-table pointers), or
    /// [`PY_NO_OFFSET`]: no fingerprint.
    pub code_check: u32,
    /// Which words of the window to fold (bit i: word i).
    pub code_check_mask: u32,
    /// 1 when the frame's code field is a tagged `_PyStackRef` (3.14+).
    pub code_is_stackref: u32,
    /// Offsets of `asyncio_running_task` in `PyThreadState` and of the
    /// name in a task object (`.AsyncioDebug`, CPython 3.14+), or
    /// [`PY_NO_OFFSET`]: a sample then names no task.
    pub tstate_running_task: u32,
    pub task_name: u32,
    /// Offsets in a code object of `co_name`, `co_qualname` ([`PY_NO_OFFSET`]
    /// before 3.11), `co_filename` and `co_firstlineno`, and in a `str` of
    /// its length, its state word and where a compact ASCII / other compact
    /// string's characters start: the sampler copies the names of a code
    /// object it has not named before ([`PyCodeNames`]), so a code object
    /// freed right after it ran (a module's `<module>`, code made by `exec`)
    /// is still named. `code_name == PY_NO_OFFSET`: no copies.
    pub code_name: u32,
    pub code_qualname: u32,
    pub code_filename: u32,
    pub code_firstlineno: u32,
    pub str_length: u32,
    pub str_state: u32,
    pub str_ascii_data: u32,
    pub str_compact_data: u32,
    /// Which program of the process this config is for (userspace counts
    /// them): the sampler's memory of code objects whose names it sent is
    /// keyed by it too, so a program exec'd in the process (whose code
    /// objects may sit at the same addresses) gets its names sent afresh.
    pub code_names_epoch: u32,
    /// Run-time address of the process's GIL (`struct _gil_runtime_state`:
    /// `_PyRuntime.ceval.gil` to 3.11, what the main interpreter's
    /// `ceval.gil` points to from 3.12), 0: none (a free-threaded build) or
    /// not known yet. The sampler reads `locked` and `last_holder` at these
    /// offsets in it; a futex wait on an address in
    /// `[gil + gil_take, gil + gil_switch)` (its `cond` and `mutex`) is a
    /// wait to take it, in `[gil + gil_switch, gil + gil_end)` (`switch_cond`
    /// and `switch_mutex`) its holder's wait for a forced hand-off.
    pub gil: u64,
    pub gil_holder: u32,
    pub gil_locked: u32,
    pub gil_take: u32,
    pub gil_switch: u32,
    pub gil_end: u32,
    /// Offset of `ob_type` in an object (8, or 24 free-threaded) and the
    /// run-time address of `PyCode_Type` (0: unknown): the sampler copies
    /// the names of a code object only while its type says it is one. A
    /// stack read while the interpreter was linking a frame in (its stores
    /// reordered) can reach a stale frame whose code object was freed and
    /// its memory partly reused: its name pointers intact, its
    /// `co_firstlineno` overwritten. Such a walk is torn, not named.
    pub ob_type: u32,
    pub code_type: u64,
    /// Offsets of `co_linetable` (`co_lnotab` before 3.10) in a code object
    /// and of the size and the data in a `bytes` object: a thread dying of
    /// a signal has its code objects' line tables copied
    /// ([`PyCodeLines`]), for the process is gone before userspace reads
    /// them. `code_linetable == PY_NO_OFFSET`: no copies.
    pub code_linetable: u32,
    pub bytes_size: u32,
    pub bytes_data: u32,
    /// How far a thread's TLS base (`task_fsbase`) is past the
    /// `pthread_self()` its thread state records: 0 on x86-64, glibc's
    /// `sizeof(struct pthread)` on arm64; [`PY_NO_OFFSET`]: not known, the
    /// TLS base is not used.
    pub tls_to_thread: u32,
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
/// voluntary context switches, forks, signal deliveries): the innermost ones.
pub const PY_EVENT_DEPTH: usize = 4;

/// Which kernel event a [`PyEventKey`] counts.
pub mod py_event {
    /// A read-family syscall on `file_id` (sampled: 1 in `read_stack_every`).
    pub const READ: u32 = 0;
    /// A voluntary context switch (the thread went to sleep); the value
    /// carries the time until it ran again.
    pub const OFF_CPU: u32 = 1;
    // 2 was FORK: forks now send a deeper [`super::PyForkEvent`] each.
    /// Not a map key: announces a code object first entered through
    /// `_PyEval_EvalFrameDefault` (`frames[0].code`), to be symbolized.
    pub const ENTRY: u32 = 3;
    /// A futex wait to take the GIL; the value carries the time waited.
    pub const GIL_WAIT: u32 = 4;
    /// A write-family syscall or a sync on `file_id` (sampled with the
    /// reads: 1 in `read_stack_every`).
    pub const WRITE: u32 = 5;
}

/// Key of `PY_EVENT_STACKS`: a kernel event of one process with the top of
/// the Python stack it happened under.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyEventKey {
    pub tgid: u32,
    /// `py_event::*`
    pub kind: u32,
    /// `READ`: the file (as `IoKey::file_id`); else 0.
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
    /// Zero: a stack just put in `PY_EVENT_STACKS` (its counts are there).
    /// Else counts that table had no room for (a one-off trace).
    pub counts: PyEventValue,
}

/// Frames kept for a fork / clone: deep enough to get past the spawning
/// machinery to the caller's line (`subprocess.check_output` -> `run` ->
/// `Popen.__init__` -> `_execute_child` -> `_posix_spawn`, plus the C-stack
/// shim frames of 3.12+ between them).
pub const PY_FORK_DEPTH: usize = 16;

/// The Python stack of one fork / clone by a traced thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PyForkEvent {
    pub header: EventHeader,
    /// The child's pid (or tid, for a thread).
    pub child: u32,
    pub _pad: u32,
    /// Innermost first; `code == 0` past the end.
    pub frames: [PyFrameRecord; PY_FORK_DEPTH],
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
    /// The code object's fingerprint when the frame was read ([`code_check`]
    /// of its identifying pointers; 0: not taken): a code object freed before
    /// userspace reads it leaves its address to another one, and this tells
    /// them apart.
    pub check: u64,
}

/// Bit of [`PyFrameRecord::instr`] set for a 3.11 frame whose `is_entry`
/// is set (instruction pointers stay below 2^47).
pub const PY_ENTRY_BIT: u32 = 55;

/// Words of the code object folded into [`PyFrameRecord::check`]: a window
/// of this many 8-byte words at [`PyConfig::code_check`].
pub const CODE_CHECK_WORDS: usize = 4;

/// The fingerprint of a code object from the words of its check window that
/// `mask` selects (bit i: word i), the same on both sides of the ring buffer.
/// Never 0 for a live code object (0 means "not taken").
#[inline(always)]
pub fn code_check(words: &[u64; CODE_CHECK_WORDS], mask: u32) -> u64 {
    let mut check = 0x9e37_79b9_7f4a_7c15u64;
    let mut i = 0;
    while i < CODE_CHECK_WORDS {
        if mask & (1 << i) != 0 {
            // Pointers: low bits zero, high bits zero; rotate each word
            // differently so that swapped fields do not cancel out.
            check ^= words[i].rotate_left(13 * i as u32 + 7);
        }
        i += 1;
    }
    check | 1
}

/// A CPU-clock sample of one thread's Python stack, innermost frame first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PySample {
    pub header: EventHeader,
    /// Valid entries of `frames`.
    pub depth: u32,
    /// 1 if the stack was deeper than [`PY_MAX_DEPTH`]; [`PY_SAMPLE_TORN`]
    /// if the walk met a pointer no frame or code object has.
    pub truncated: u32,
    /// The thread's running asyncio task (0: none, or not configured) and
    /// its name object then: userspace names the task from that object,
    /// so a task freed and its address reused is not named as another.
    pub task: u64,
    pub task_name: u64,
    /// [`py_gil`]: whether the thread held the GIL when sampled.
    pub gil: u32,
    pub _gil_pad: u32,
    pub frames: [PyFrameRecord; PY_MAX_DEPTH],
}

/// [`PySample::gil`]: what the sampler read of the process's GIL.
pub mod py_gil {
    /// No GIL known (a free-threaded build, not found yet, unreadable).
    pub const UNKNOWN: u32 = 0;
    /// `locked` and `last_holder` is this thread's state.
    pub const HELD: u32 = 1;
    /// Another thread holds it, or nobody does.
    pub const NOT_HELD: u32 = 2;
}

/// Key of `PY_GIL_WAITS`: one thread of one process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PyGilThread {
    pub tgid: u32,
    pub tid: u32,
}

/// A thread's futex waits on its process's GIL (`PY_GIL_WAITS`), summed in
/// the kernel: one map row per thread, not a record per wait.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyGilWait {
    /// Time in futex waits on `cond` / `mutex`: waiting to take the GIL.
    pub wait_ns: u64,
    pub waits: u64,
    /// Time in futex waits on `switch_cond` / `switch_mutex`: the holder,
    /// asked to drop it, waiting until another thread took it.
    pub switch_ns: u64,
    pub switch_waits: u64,
}

/// Characters of a `str` a [`PyCodeNames`] record carries: the last ones
/// of a longer string (the end of a path, of a qualified name).
pub const PY_NAME_BYTES: usize = 128;

/// One `str` object as the sampler copied it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PyStringCopy {
    /// Its length in characters (`ob_size`).
    pub length: u64,
    /// Its state word (kind, compact and ascii bits), 0: not read.
    pub state: u32,
    /// Bytes in `bytes`: the last ones of its character data (0: none).
    pub copied: u32,
    pub bytes: [u8; PY_NAME_BYTES],
}

/// The names of a code object the sampler met for the first time
/// (`EventKind::PyCodeNames`), sent just after the sample that met it:
/// what userspace shows for its frames if the object is freed before it
/// can be read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PyCodeNames {
    pub header: EventHeader,
    /// The code object (as a frame record has it) and its fingerprint.
    pub code: u64,
    pub check: u64,
    pub first_line: u32,
    pub _pad: u32,
    pub name: PyStringCopy,
    /// `length == 0` and `state == 0` before 3.11 (no `co_qualname`).
    pub qualname: PyStringCopy,
    pub filename: PyStringCopy,
}

/// Bytes of a line table a [`PyCodeLines`] record carries: its start (a
/// function of a few hundred lines on 3.11+; a frame past the copy has no
/// line).
pub const PY_LINE_TABLE_BYTES: usize = 1024;

/// The line table of a code object on the stack of a thread a signal is
/// killing (`EventKind::PyCodeLines`), sent with its fatal stack: the
/// process, whose memory holds the table, is gone before userspace can
/// read it, and its frames' lines come from this copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PyCodeLines {
    pub header: EventHeader,
    /// The code object (as a frame record has it) and its fingerprint.
    pub code: u64,
    pub check: u64,
    /// The table's length in bytes, and how many of them `bytes` holds
    /// (its first ones; 0: not read).
    pub length: u32,
    pub copied: u32,
    pub bytes: [u8; PY_LINE_TABLE_BYTES],
}

/// Slots of `PY_NAMED_CODE`, the sampler's memory of the code objects
/// whose names it has sent (a power of two).
pub const PY_NAMED_SLOTS: u32 = 1 << 16;

/// A slot of `PY_NAMED_CODE`: a code object of process `tgid` whose names
/// were sent. Direct-mapped: a slot taken by another object only makes the
/// sampler send the names again.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyNamedCode {
    pub code: u64,
    pub check: u64,
    pub tgid: u32,
    /// [`PyConfig::code_names_epoch`]
    pub epoch: u32,
}

/// The `PY_NAMED_CODE` slot of a code object of process `tgid`.
#[inline(always)]
pub fn named_code_slot(tgid: u32, code: u64, check: u64) -> u32 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let mixed =
        (check ^ code.rotate_left(17) ^ (tgid as u64).wrapping_mul(GOLDEN)).wrapping_mul(GOLDEN);
    (mixed >> 48) as u32 & (PY_NAMED_SLOTS - 1)
}

/// [`PySample::truncated`] of a walk that met a misaligned frame or code
/// pointer: the frame chain was read while the interpreter changed it (a
/// frame being pushed, a thread state being torn down).
pub const PY_SAMPLE_TORN: u32 = 2;

/// Sampler ticks of one traced process (`PY_TICKS`, key: tgid, per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyTicks {
    /// Ticks that interrupted a thread of the process.
    pub ticks: u64,
    /// ...of which the process's interpreter was not known (not Python, not
    /// found yet, or not supported).
    pub no_interpreter: u64,
    /// ...of which the thread had no Python thread state (a thread in C
    /// that never attached to the interpreter, or one that just left it).
    pub no_thread_state: u64,
    /// ...of which the thread was not running Python code (no current frame).
    pub no_frame: u64,
}

const _: () = assert!(core::mem::size_of::<PyConfig>() == 192);
const _: () = assert!(core::mem::size_of::<PyCodeLines>() == 24 + 24 + PY_LINE_TABLE_BYTES);
const _: () = assert!(core::mem::size_of::<PyStringCopy>() == 16 + PY_NAME_BYTES);
const _: () = assert!(core::mem::size_of::<PyCodeNames>() == 24 + 24 + 3 * (16 + PY_NAME_BYTES));
const _: () = assert!(core::mem::size_of::<PyNamedCode>() == 24);
const _: () = assert!(core::mem::size_of::<PyTicks>() == 32);
const _: () = assert!(core::mem::size_of::<PyGilWait>() == 32);
const _: () = assert!(core::mem::size_of::<PyEntryKey>() == 16);
const _: () = assert!(core::mem::size_of::<PyFrameRecord>() == 24);
const _: () = assert!(core::mem::size_of::<PyEventKey>() == 16 + 24 * PY_EVENT_DEPTH);
const _: () = assert!(core::mem::size_of::<PyEventValue>() == 16);
const _: () = assert!(core::mem::size_of::<PyStackEvent>() == 24 + 16 + 24 * PY_EVENT_DEPTH + 16);
const _: () = assert!(core::mem::size_of::<PyForkEvent>() == 24 + 8 + 24 * PY_FORK_DEPTH);
const _: () = assert!(core::mem::size_of::<PySleep>() == 16 + 24 * PY_EVENT_DEPTH + 8);
const _: () = assert!(core::mem::size_of::<PySample>() == 24 + 8 + 16 + 8 + 24 * PY_MAX_DEPTH);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for PyConfig {}
    unsafe impl aya::Pod for PyTicks {}
    unsafe impl aya::Pod for PySleep {}
    unsafe impl aya::Pod for PyEventKey {}
    unsafe impl aya::Pod for PyEventValue {}
    unsafe impl aya::Pod for PyEntryKey {}
    unsafe impl aya::Pod for PyNamedCode {}
    unsafe impl aya::Pod for PyGilThread {}
    unsafe impl aya::Pod for PyGilWait {}
}
