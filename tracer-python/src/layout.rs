//! Where CPython keeps what the sampler needs, per version.
//!
//! 3.8-3.12 have no run-time description of their structures, so their
//! offsets are tables written from CPython's headers (`Include/cpython/pystate.h`,
//! `frameobject.h` / `internal/pycore_frame.h`, `code.h`, `unicodeobject.h`,
//! checked against the DWARF of the pyenv builds on this machine with
//! `gdb -batch -ex 'print &((PyThreadState*)0)->cframe'`). 3.13+ publish
//! `_Py_DebugOffsets` at the start of `_PyRuntime`; those are read at run time,
//! free-threaded builds included (their object header is 32 bytes: the
//! offsets say so). Where each field sits *inside* `_Py_DebugOffsets` is
//! known for 3.13-3.15; a newer version is accepted when its struct is found
//! by the invariants every version has kept (see [`scan_debug_layout`]) and a
//! live frame chain decodes with it. Both sit behind [`LayoutSource`].

use tracer_common::{CODE_CHECK_WORDS, PY_NO_OFFSET, PyConfig};

use super::process_memory::{Memory, MemoryError};

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("CPython {0}.{1} is not supported (3.8 and later are)")]
    Unsupported(u32, u32),
    #[error("reading _Py_DebugOffsets: {0}")]
    Memory(#[from] MemoryError),
    #[error("_PyRuntime does not start with the _Py_DebugOffsets cookie \"xdebugpy\"")]
    NoCookie,
    #[error(
        "_Py_DebugOffsets of version {version:#x} do not describe a PyThreadState this tracer understands"
    )]
    UnknownDebugLayout { version: u64 },
    #[error(
        "_Py_DebugOffsets say version {found:#x}, but the interpreter is CPython 3.{minor}: \
         not the structure it describes"
    )]
    VersionMismatch { found: u64, minor: u32 },
    #[error(
        "CPython 3.{minor} is newer than this tracer: its _Py_DebugOffsets were read, but {why}; \
         kernel sections are still reported"
    )]
    NotValidated { minor: u32, why: String },
    #[error(
        "not a CPython runtime: _PyRuntime's interpreter list points to {head:#x}, which this \
         process has not mapped (a program that only looks like Python)"
    )]
    NotARuntime { head: u64 },
}

/// How the frame's instruction position is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstrKind {
    /// `int f_lasti`, a byte offset into `co_code` (3.8, 3.9).
    LastiBytes,
    /// `int f_lasti`, in 2-byte code units (3.10).
    LastiUnits,
    /// `_Py_CODEUNIT *prev_instr` (3.11, 3.12) / `instr_ptr` (3.13+), into
    /// the code object's `co_code_adaptive`.
    Pointer,
}

/// The line-number table format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTableKind {
    /// `co_lnotab` (3.8, 3.9): (byte increment, line increment) pairs.
    Lnotab,
    /// `co_linetable` of 3.10: (byte delta, line delta) pairs, -128 = no line.
    Linetable310,
    /// The 3.11+ location table (`Objects/locations.md`).
    Locations,
}

/// Everything the sampler and the symbolizer read, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub runtime_interpreters_head: u64,
    pub interp_next: u64,
    pub interp_threads_head: u64,
    pub tstate_next: u64,
    /// `pthread_t` of the thread.
    pub tstate_thread_id: u64,
    /// Kernel thread id (3.11+); older versions only have `pthread_t`.
    pub tstate_native_thread_id: Option<u64>,
    /// `frame` (<= 3.10), `cframe` (3.11, 3.12), `current_frame` (3.13+).
    pub tstate_frame: u64,
    /// `_PyCFrame.current_frame` (3.11, 3.12).
    pub cframe_current_frame: Option<u64>,
    pub frame_back: u64,
    pub frame_code: u64,
    pub frame_instr: u64,
    pub frame_owner: Option<u64>,
    /// Frames whose `owner` is at least this are C-stack entry / interpreter
    /// frames, not Python code, and are skipped (3.12+: `FRAME_OWNED_BY_CSTACK`
    /// is 3 in 3.12/3.13; 3.14 puts `FRAME_OWNED_BY_INTERPRETER` at 3 and CSTACK at 4).
    pub owner_skip_from: Option<u8>,
    /// 3.11's `_PyInterpreterFrame.is_entry`: the outermost frame a call of
    /// `_PyEval_EvalFrameDefault` runs (3.12+ marks that with an entry
    /// frame's `owner`; up to 3.10 each call runs one frame).
    pub frame_is_entry: Option<u64>,
    pub instr_kind: InstrKind,
    /// `f_executable` is a tagged `_PyStackRef` (3.14+): mask the low bits.
    pub code_is_stackref: bool,
    /// `PyObject.ob_type`: 8, or 24 in a free-threaded build (`ob_tid`,
    /// `ob_flags`, `ob_mutex`, `ob_gc_bits`, `ob_ref_local`, `ob_ref_shared` first).
    pub ob_type: u64,
    /// `PyVarObject.ob_size` (a code object's length in code units).
    pub var_size: u64,
    /// `PyCodeObject.co_tlbc` (free-threaded 3.14+: the per-thread copies of
    /// the bytecode an instruction pointer may point into).
    pub code_tlbc: Option<u64>,
    pub code_filename: u64,
    pub code_name: u64,
    pub code_qualname: Option<u64>,
    pub code_firstlineno: u64,
    pub code_linetable: u64,
    pub code_adaptive: Option<u64>,
    pub line_table: LineTableKind,
    /// Argument index of the frame in `_PyEval_EvalFrameDefault` (0 on 3.8).
    pub eval_frame_arg: u8,
    pub bytes_size: u64,
    pub bytes_data: u64,
    pub unicode_state: u64,
    pub unicode_length: u64,
    /// `sizeof(PyASCIIObject)`: where a compact ASCII string's characters start.
    pub ascii_size: u64,
    /// `sizeof(PyCompactUnicodeObject)`: where other compact strings' start.
    pub compact_size: u64,
    /// The frame's `f_globals` (the module dict of its code), where thread
    /// names are looked for; `None` for a version newer than this tracer.
    pub frame_globals: Option<u64>,
    /// How dicts and instance attributes are laid out (thread names).
    pub objects: ObjectModel,
    /// Where its GIL is; `None`: a free-threaded build, or a version newer
    /// than this tracer.
    pub gil: Option<super::gil::GilLayout>,
}

/// The dict and instance-attribute layouts, which changed in 3.11
/// (`dk_log2_size`, unicode-only entries, managed instance dicts), 3.12
/// (tagged dict-or-values pointer) and 3.13 (values inline in the object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectModel {
    Py38,
    Py311,
    Py312,
    Py313,
}

impl Offsets {
    /// The part the BPF sampler needs.
    pub fn bpf_config(&self) -> PyConfig {
        let off = |v: Option<u64>| v.map_or(PY_NO_OFFSET, |v| v as u32);
        let check = self.code_check_window();
        PyConfig {
            enabled: 1,
            tstate_frame: self.tstate_frame as u32,
            cframe_current_frame: off(self.cframe_current_frame),
            frame_back: self.frame_back as u32,
            frame_code: self.frame_code as u32,
            frame_instr: self.frame_instr as u32,
            frame_owner: off(self.frame_owner),
            frame_is_entry: off(self.frame_is_entry),
            owner_not_code: self.owner_skip_from.map_or(PY_NO_OFFSET, u32::from),
            read_stack_every: 0,
            entry_frame_arg: u32::from(self.eval_frame_arg),
            // Needs the version: set by the process's state.
            function_code: 0,
            // Per process, found in its memory: set by the process's state.
            signal_handlers: 0,
            // Needs `_PyRuntime`'s address: set by the process's state.
            interpreters_head: 0,
            interp_next: self.interp_next as u32,
            interp_threads_head: self.interp_threads_head as u32,
            tstate_next: self.tstate_next as u32,
            tstate_thread_id: self.tstate_thread_id as u32,
            code_check: check.map_or(PY_NO_OFFSET, |(at, _)| at as u32),
            code_check_mask: check.map_or(0, |(_, mask)| mask),
            code_is_stackref: u32::from(self.code_is_stackref),
            // From `.AsyncioDebug` once found: set by the process's state.
            tstate_running_task: PY_NO_OFFSET,
            task_name: PY_NO_OFFSET,
            code_name: self.code_name as u32,
            code_qualname: off(self.code_qualname),
            code_filename: self.code_filename as u32,
            code_firstlineno: self.code_firstlineno as u32,
            str_length: self.unicode_length as u32,
            str_state: self.unicode_state as u32,
            str_ascii_data: self.ascii_size as u32,
            str_compact_data: self.compact_size as u32,
            // Per program: set by the process's state.
            code_names_epoch: 0,
            ob_type: self.ob_type as u32,
            // Per process (where its interpreter is mapped): set by its state.
            code_type: 0,
            code_linetable: self.code_linetable as u32,
            bytes_size: self.bytes_size as u32,
            bytes_data: self.bytes_data as u32,
            // Needs the process's memory: set by the process's state.
            ..PyConfig::default()
        }
    }

    /// Where a code object's fingerprint is taken: the offset of its check
    /// window and which of the window's words are identifying pointers
    /// (name, filename, qualname, line table), `None` when none fit in one
    /// window.
    pub fn code_check_window(&self) -> Option<(u64, u32)> {
        let pointers: Vec<u64> = [
            Some(self.code_name),
            Some(self.code_filename),
            self.code_qualname,
            Some(self.code_linetable),
        ]
        .into_iter()
        .flatten()
        .collect();
        let start = *pointers.iter().min()?;
        let mask = pointers
            .iter()
            .map(|&off| off - start)
            .filter(|&rel| rel % 8 == 0 && rel < 8 * CODE_CHECK_WORDS as u64)
            .fold(0u32, |mask, rel| mask | 1 << (rel / 8));
        // The name alone is shared by every `<module>`: ask for two fields.
        (mask.count_ones() >= 2).then_some((start, mask))
    }
}

/// One way of getting a version's [`Offsets`].
pub trait LayoutSource {
    /// Where the offsets come from, for the report.
    fn origin(&self) -> &'static str;
    fn offsets(&self, memory: &dyn Memory, runtime: u64) -> Result<Offsets, LayoutError>;
}

/// Tables for 3.8-3.12 (x86-64 / aarch64 LP64 builds).
pub struct StaticTable {
    pub minor: u32,
}

// Fields common to the PyObject / PyBytesObject / PyASCIIObject headers of 3.8-3.12.
const BYTES_SIZE: u64 = 16; // PyVarObject.ob_size
const BYTES_DATA: u64 = 32; // PyBytesObject.ob_sval
const UNICODE_LENGTH: u64 = 16; // PyASCIIObject.length
const UNICODE_STATE: u64 = 32; // PyASCIIObject.state

impl LayoutSource for StaticTable {
    fn origin(&self) -> &'static str {
        "built-in table (CPython headers)"
    }

    fn offsets(&self, _memory: &dyn Memory, _runtime: u64) -> Result<Offsets, LayoutError> {
        static_offsets(self.minor).ok_or(LayoutError::Unsupported(3, self.minor))
    }
}

pub fn static_offsets(minor: u32) -> Option<Offsets> {
    // 3.8-3.10: PyFrameObject chain; PyThreadState.frame at 24.
    let old = Offsets {
        runtime_interpreters_head: 32, // _PyRuntimeState.interpreters.head
        interp_next: 0,
        interp_threads_head: 8, // PyInterpreterState.tstate_head
        tstate_next: 8,
        tstate_thread_id: 176,
        tstate_native_thread_id: None,
        tstate_frame: 24,
        cframe_current_frame: None,
        frame_back: 24,   // PyFrameObject.f_back
        frame_code: 32,   // PyFrameObject.f_code
        frame_instr: 104, // PyFrameObject.f_lasti
        frame_owner: None,
        owner_skip_from: None,
        frame_is_entry: None,
        instr_kind: InstrKind::LastiBytes,
        code_is_stackref: false,
        ob_type: 8,
        var_size: 16,
        code_tlbc: None,
        code_filename: 104,
        code_name: 112,
        code_qualname: None,
        code_firstlineno: 40,
        code_linetable: 120, // co_lnotab (3.8, 3.9) / co_linetable (3.10)
        code_adaptive: None,
        line_table: LineTableKind::Lnotab,
        eval_frame_arg: 1,
        bytes_size: BYTES_SIZE,
        bytes_data: BYTES_DATA,
        unicode_state: UNICODE_STATE,
        unicode_length: UNICODE_LENGTH,
        ascii_size: 48, // PyASCIIObject still has `wchar_t *wstr` up to 3.11
        compact_size: 72,
        frame_globals: Some(48), // PyFrameObject.f_globals
        objects: ObjectModel::Py38,
        gil: super::gil::static_gil(minor),
    };
    Some(match minor {
        8 => Offsets {
            eval_frame_arg: 0,
            ..old
        },
        9 => old,
        10 => Offsets {
            frame_instr: 96, // f_lasti moved: f_stackdepth replaced f_stacktop
            instr_kind: InstrKind::LastiUnits,
            line_table: LineTableKind::Linetable310,
            ..old
        },
        11 => Offsets {
            runtime_interpreters_head: 40,
            interp_threads_head: 16, // PyInterpreterState.threads.head
            tstate_thread_id: 152,
            tstate_native_thread_id: Some(160),
            tstate_frame: 56, // PyThreadState.cframe
            cframe_current_frame: Some(8),
            frame_back: 48,  // _PyInterpreterFrame.previous
            frame_code: 32,  // _PyInterpreterFrame.f_code
            frame_instr: 56, // _PyInterpreterFrame.prev_instr
            frame_owner: Some(69),
            owner_skip_from: None, // 3.11 has no C-stack entry frames
            frame_is_entry: Some(68),
            instr_kind: InstrKind::Pointer,
            code_filename: 112,
            code_name: 120,
            code_qualname: Some(128),
            code_firstlineno: 72,
            code_linetable: 136,
            code_adaptive: Some(184),
            line_table: LineTableKind::Locations,
            frame_globals: Some(8), // _PyInterpreterFrame.f_globals
            objects: ObjectModel::Py311,
            ..old
        },
        12 => Offsets {
            runtime_interpreters_head: 40,
            interp_threads_head: 72,
            tstate_thread_id: 136,
            tstate_native_thread_id: Some(144),
            tstate_frame: 56, // PyThreadState.cframe
            cframe_current_frame: Some(0),
            frame_back: 8,   // previous
            frame_code: 0,   // f_code
            frame_instr: 56, // prev_instr
            frame_owner: Some(70),
            owner_skip_from: Some(3), // FRAME_OWNED_BY_CSTACK
            frame_is_entry: None,
            instr_kind: InstrKind::Pointer,
            code_filename: 112,
            code_name: 120,
            code_qualname: Some(128),
            code_firstlineno: 68,
            code_linetable: 136,
            code_adaptive: Some(192),
            line_table: LineTableKind::Locations,
            ascii_size: 40, // `wstr` removed in 3.12
            compact_size: 56,
            frame_globals: Some(24),
            objects: ObjectModel::Py312,
            ..old
        },
        _ => return None,
    })
}

/// Byte offsets of the fields of `_Py_DebugOffsets` this tracer reads: the
/// struct grows from version to version (`threads_main`, `stackpointer`,
/// whole sections), so a field's place in it is per version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebugLayout {
    pub interpreters_head: u64,
    pub interp_next: u64,
    pub interp_threads_head: u64,
    pub tstate_prev: u64,
    pub tstate_next: u64,
    pub tstate_interp: u64,
    pub tstate_current_frame: u64,
    pub tstate_thread_id: u64,
    pub tstate_native_thread_id: u64,
    pub frame_previous: u64,
    pub frame_executable: u64,
    pub frame_instr_ptr: u64,
    pub frame_owner: u64,
    pub code_filename: u64,
    pub code_name: u64,
    pub code_qualname: u64,
    pub code_linetable: u64,
    pub code_firstlineno: u64,
    pub code_adaptive: u64,
    /// `code_object.co_tlbc` (3.14+; 0 in builds with the GIL).
    pub code_tlbc: Option<u64>,
    pub ob_type: u64,
    pub bytes_size: u64,
    pub bytes_data: u64,
    pub unicode_state: u64,
    pub unicode_length: u64,
    pub unicode_ascii_size: u64,
    /// `interpreter_state.ceval_gil`, followed by the GIL's other fields
    /// ([`super::gil::debug_gil`]); `None`: not known for this layout.
    pub interp_ceval_gil: Option<u64>,
    /// Bytes to read from the start of `_PyRuntime`.
    pub total: u64,
}

/// `Include/internal/pycore_runtime.h` of 3.13.
pub const DEBUG_LAYOUT_3_13: DebugLayout = DebugLayout {
    interpreters_head: 40,
    interp_next: 64,
    interp_threads_head: 72,
    tstate_prev: 160,
    tstate_next: 168,
    tstate_interp: 176,
    tstate_current_frame: 184,
    tstate_thread_id: 192,
    tstate_native_thread_id: 200,
    frame_previous: 232,
    frame_executable: 240,
    frame_instr_ptr: 248,
    frame_owner: 264,
    code_filename: 280,
    code_name: 288,
    code_qualname: 296,
    code_linetable: 304,
    code_firstlineno: 312,
    code_adaptive: 344,
    code_tlbc: None,
    ob_type: 360,
    bytes_size: 520,
    bytes_data: 528,
    unicode_state: 544,
    unicode_length: 552,
    unicode_ascii_size: 560,
    interp_ceval_gil: Some(112),
    total: 584,
};

/// `Include/internal/pycore_debug_offsets.h` of 3.14: `threads_main`,
/// `code_object_generation` and `tlbc_generation` in the interpreter state,
/// `stackpointer` / `tlbc_index` in the frame, `co_tlbc` in the code object,
/// and a `set_object` block before `dict_object`.
pub const DEBUG_LAYOUT_3_14: DebugLayout = DebugLayout {
    interpreters_head: 40,
    interp_next: 64,
    interp_threads_head: 72,
    tstate_prev: 184,
    tstate_next: 192,
    tstate_interp: 200,
    tstate_current_frame: 208,
    tstate_thread_id: 216,
    tstate_native_thread_id: 224,
    frame_previous: 256,
    frame_executable: 264,
    frame_instr_ptr: 272,
    frame_owner: 288,
    code_filename: 320,
    code_name: 328,
    code_qualname: 336,
    code_linetable: 344,
    code_firstlineno: 352,
    code_adaptive: 384,
    code_tlbc: Some(392),
    ob_type: 408,
    bytes_size: 600,
    bytes_data: 608,
    unicode_state: 624,
    unicode_length: 632,
    unicode_ascii_size: 640,
    interp_ceval_gil: Some(120),
    total: 648,
};

/// 3.15 (read off Debian's 3.15.2): three thread-state fields inserted
/// after `current_frame` (`thread_id` moves), more at its end and an
/// `err_stackitem` block after it, and a block after `type_object`, move
/// every later section.
pub const DEBUG_LAYOUT_3_15: DebugLayout = DebugLayout {
    interpreters_head: 40,
    interp_next: 64,
    interp_threads_head: 72,
    tstate_prev: 184,
    tstate_next: 192,
    tstate_interp: 200,
    tstate_current_frame: 208,
    tstate_thread_id: 240,
    tstate_native_thread_id: 248,
    frame_previous: 320,
    frame_executable: 328,
    frame_instr_ptr: 336,
    frame_owner: 352,
    code_filename: 384,
    code_name: 392,
    code_qualname: 400,
    code_linetable: 408,
    code_firstlineno: 416,
    code_adaptive: 448,
    code_tlbc: Some(456),
    ob_type: 472,
    bytes_size: 696,
    bytes_data: 704,
    unicode_state: 720,
    unicode_length: 728,
    unicode_ascii_size: 736,
    interp_ceval_gil: Some(120),
    total: 744,
};

/// How much of a newer version's `_Py_DebugOffsets` is read to look for
/// its sections.
const SCAN_BYTES: u64 = 2048;

/// The layout of a version this tracer has a table for.
pub fn known_debug_layout(minor: u32) -> Option<DebugLayout> {
    match minor {
        13 => Some(DEBUG_LAYOUT_3_13),
        14 => Some(DEBUG_LAYOUT_3_14),
        15 => Some(DEBUG_LAYOUT_3_15),
        _ => None,
    }
}

/// Finds the sections of a `_Py_DebugOffsets` of unknown layout by what
/// every version so far has kept true: sections in the same order, each a
/// `size` then its fields, and these values:
/// - thread state: `prev, next, interp` = 0, 8, 16 (its first fields);
/// - interpreter frame: `localsplus` (the 4th field) is the frame's last
///   member, 8 bytes before its end (`size`); the fields before it are
///   inside the frame;
/// - code object: `co_code_adaptive` (9th) is its last member, 8 bytes
///   before its end;
/// - `PyObject`: `ob_type` is its last member (size 16 or 32);
/// - bytes: `ob_size` right after the object header, `ob_sval` after the
///   hash, the struct 8 bytes past it;
/// - unicode right after bytes: `length` where bytes' `ob_size` is,
///   `state` 16 past it, `asciiobject_size` 8 past that.
///
/// The thread ids are taken to follow `current_frame` as in 3.13 and 3.14
/// (3.15 inserted fields there: such a layout fails the live check of the
/// caller, which then refuses the version with the reason). `None` when any
/// section is not found.
pub fn scan_debug_layout(raw: &[u8]) -> Option<DebugLayout> {
    let f = |at: usize| field(raw, at as u64);
    let words = raw.len() / 8;
    let tstate = (6..words).map(|w| w * 8).find(|&p| {
        (f(p + 8), f(p + 16), f(p + 24)) == (0, 8, 16) && (64..1 << 16).contains(&f(p))
    })?;
    let frame = ((tstate + 8 * 9) / 8..words).map(|w| w * 8).find(|&p| {
        let size = f(p);
        (16..512).contains(&size)
            && f(p + 32) == size - 8
            && [8, 16, 24, 40].iter().all(|&i| f(p + i) < size)
    })?;
    let code = ((frame + 8 * 6) / 8..words).map(|w| w * 8).find(|&p| {
        let size = f(p);
        (64..1024).contains(&size)
            && f(p + 72) == size - 8
            && (8..=64).all(|i| i % 8 != 0 || f(p + i) < size)
    })?;
    let object = ((code + 8 * 10) / 8..words)
        .map(|w| w * 8)
        .find(|&p| matches!((f(p), f(p + 8)), (16, 8) | (32, 24)))?;
    let ob_type = f(object + 8);
    let bytes = ((object + 16) / 8..words).map(|w| w * 8).find(|&p| {
        let (size, ob_size, sval) = (f(p), f(p + 8), f(p + 16));
        ob_size == ob_type + 8 && sval == ob_size + 16 && size == sval + 8
    })?;
    let unicode = bytes + 24;
    let length = f(unicode + 16);
    if length != f(bytes + 8) || f(unicode + 8) != length + 16 || f(unicode + 24) != length + 24 {
        return None;
    }
    let at = |p: usize| p as u64;
    Some(DebugLayout {
        interpreters_head: 40,
        interp_next: 64,
        interp_threads_head: 72,
        tstate_prev: at(tstate + 8),
        tstate_next: at(tstate + 16),
        tstate_interp: at(tstate + 24),
        tstate_current_frame: at(tstate + 32),
        tstate_thread_id: at(tstate + 40),
        tstate_native_thread_id: at(tstate + 48),
        frame_previous: at(frame + 8),
        frame_executable: at(frame + 16),
        frame_instr_ptr: at(frame + 24),
        frame_owner: at(frame + 40),
        code_filename: at(code + 8),
        code_name: at(code + 16),
        code_qualname: at(code + 24),
        code_linetable: at(code + 32),
        code_firstlineno: at(code + 40),
        code_adaptive: at(code + 72),
        code_tlbc: (object > code + 80).then(|| at(code + 80)),
        ob_type: at(object + 8),
        bytes_size: at(bytes + 8),
        bytes_data: at(bytes + 16),
        unicode_state: at(unicode + 8),
        unicode_length: at(unicode + 16),
        unicode_ascii_size: at(unicode + 24),
        // Not guessed: a newer version reports no GIL figures.
        interp_ceval_gil: None,
        total: at(unicode + 32),
    })
}

/// 3.13+: offsets read from `_Py_DebugOffsets` at the start of `_PyRuntime`.
pub struct DebugOffsets {
    pub minor: u32,
}

pub const DEBUG_COOKIE: &[u8; 8] = b"xdebugpy";

fn field(raw: &[u8], at: u64) -> u64 {
    let at = at as usize;
    raw.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(u64::MAX, u64::from_le_bytes)
}

/// Decodes `_Py_DebugOffsets` (the first bytes of `_PyRuntime`) of CPython
/// 3.`minor`: with its known layout, or the one found by
/// [`scan_debug_layout`] for a newer version (which the caller must still
/// validate on a live frame chain).
pub fn decode_debug_offsets(raw: &[u8], minor: u32) -> Result<Offsets, LayoutError> {
    if raw.get(..8) != Some(&DEBUG_COOKIE[..]) {
        return Err(LayoutError::NoCookie);
    }
    let version = field(raw, 8);
    // PY_VERSION_HEX: 0x030F02F0 is 3.15.2 final.
    if version >> 24 != 3 || (version >> 16) & 0xff != u64::from(minor) {
        return Err(LayoutError::VersionMismatch {
            found: version,
            minor,
        });
    }
    let free_threaded = field(raw, 16) != 0;
    let layout = match known_debug_layout(minor) {
        Some(layout) => layout,
        None => scan_debug_layout(raw).ok_or_else(|| LayoutError::NotValidated {
            minor,
            why: "its sections could not be told apart".into(),
        })?,
    };
    let f = |at| field(raw, at);
    // PyThreadState starts with prev, next, interp on every version: a
    // cheap proof that we are reading the right struct layout.
    if (
        f(layout.tstate_prev),
        f(layout.tstate_next),
        f(layout.tstate_interp),
    ) != (0, 8, 16)
    {
        return Err(LayoutError::UnknownDebugLayout { version });
    }
    let ob_type = f(layout.ob_type);
    if ob_type != if free_threaded { 24 } else { 8 } {
        return Err(LayoutError::UnknownDebugLayout { version });
    }
    Ok(Offsets {
        runtime_interpreters_head: f(layout.interpreters_head),
        interp_next: f(layout.interp_next),
        interp_threads_head: f(layout.interp_threads_head),
        tstate_next: f(layout.tstate_next),
        tstate_thread_id: f(layout.tstate_thread_id),
        tstate_native_thread_id: Some(f(layout.tstate_native_thread_id)),
        tstate_frame: f(layout.tstate_current_frame),
        cframe_current_frame: None,
        frame_back: f(layout.frame_previous),
        frame_code: f(layout.frame_executable),
        frame_instr: f(layout.frame_instr_ptr),
        frame_owner: Some(f(layout.frame_owner)),
        // FRAME_OWNED_BY_CSTACK (3 in 3.13) and, from 3.14,
        // FRAME_OWNED_BY_INTERPRETER (3) / CSTACK (4): not Python code.
        owner_skip_from: Some(3),
        frame_is_entry: None,
        instr_kind: InstrKind::Pointer,
        code_is_stackref: minor >= 14,
        ob_type,
        // PyVarObject.ob_size follows the object header, as in bytes.
        var_size: f(layout.bytes_size),
        code_tlbc: layout
            .code_tlbc
            .map(f)
            .filter(|&off| free_threaded && off != 0),
        code_filename: f(layout.code_filename),
        code_name: f(layout.code_name),
        code_qualname: Some(f(layout.code_qualname)),
        code_firstlineno: f(layout.code_firstlineno),
        code_linetable: f(layout.code_linetable),
        code_adaptive: Some(f(layout.code_adaptive)),
        line_table: LineTableKind::Locations,
        eval_frame_arg: 1,
        bytes_size: f(layout.bytes_size),
        bytes_data: f(layout.bytes_data),
        unicode_state: f(layout.unicode_state),
        unicode_length: f(layout.unicode_length),
        ascii_size: f(layout.unicode_ascii_size),
        // PyCompactUnicodeObject adds utf8_length and utf8 (3.12+).
        compact_size: f(layout.unicode_ascii_size) + 16,
        // `_PyInterpreterFrame` starts f_executable, previous, f_funcobj,
        // f_globals in 3.13-3.15; a newer one is not assumed to.
        frame_globals: known_debug_layout(minor).map(|_| 24),
        objects: ObjectModel::Py313,
        gil: layout
            .interp_ceval_gil
            .and_then(|at| super::gil::debug_gil(f, at, free_threaded)),
    })
}

impl LayoutSource for DebugOffsets {
    fn origin(&self) -> &'static str {
        if known_debug_layout(self.minor).is_some() {
            "_Py_DebugOffsets in _PyRuntime"
        } else {
            "_Py_DebugOffsets in _PyRuntime (a version newer than this tracer: layout found by its invariants)"
        }
    }

    fn offsets(&self, memory: &dyn Memory, runtime: u64) -> Result<Offsets, LayoutError> {
        let total = known_debug_layout(self.minor).map_or(SCAN_BYTES, |l| l.total);
        let raw = match memory.read_vec(runtime, total as usize) {
            Ok(raw) => raw,
            // The scan reads generously: fall back to what the newest
            // known layout needs if that crosses into unmapped memory.
            Err(_) if total == SCAN_BYTES => {
                memory.read_vec(runtime, DEBUG_LAYOUT_3_15.total as usize)?
            }
            Err(err) => return Err(err.into()),
        };
        decode_debug_offsets(&raw, self.minor)
    }
}

/// The layout source for a CPython version.
pub fn source_for(major: u32, minor: u32) -> Result<Box<dyn LayoutSource>, LayoutError> {
    match (major, minor) {
        (3, 8..=12) => Ok(Box::new(StaticTable { minor })),
        (3, 13..) => Ok(Box::new(DebugOffsets { minor })),
        _ => Err(LayoutError::Unsupported(major, minor)),
    }
}

/// Whether 3.`minor`'s layout comes from a table this tracer was written
/// with (else it was found at run time and must be checked on live frames).
pub fn is_known_version(minor: u32) -> bool {
    minor <= 12 || known_debug_layout(minor).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_has_a_source() {
        // 3.13 and later: whatever their _Py_DebugOffsets say, checked.
        for minor in 8..=20 {
            assert!(source_for(3, minor).is_ok(), "3.{minor}");
        }
        assert!(source_for(3, 7).is_err());
        assert!(source_for(2, 7).is_err());
        assert!(is_known_version(15) && !is_known_version(16));
    }

    #[test]
    fn static_tables_match_the_headers() {
        // Spot checks against offsetof() in the pyenv builds' DWARF.
        let t = static_offsets(8).unwrap();
        assert_eq!(
            (t.tstate_frame, t.frame_back, t.frame_code, t.frame_instr),
            (24, 24, 32, 104)
        );
        assert_eq!(t.code_linetable, 120);
        let t = static_offsets(10).unwrap();
        assert_eq!(t.frame_instr, 96);
        assert_eq!(t.line_table, LineTableKind::Linetable310);
        let t = static_offsets(11).unwrap();
        assert_eq!((t.tstate_frame, t.cframe_current_frame), (56, Some(8)));
        assert_eq!((t.frame_code, t.frame_back, t.frame_instr), (32, 48, 56));
        assert_eq!(t.code_adaptive, Some(184));
        let t = static_offsets(12).unwrap();
        assert_eq!(
            (t.interp_threads_head, t.tstate_native_thread_id),
            (72, Some(144))
        );
        assert_eq!(
            (t.frame_code, t.frame_back, t.frame_owner),
            (0, 8, Some(70))
        );
        assert_eq!(t.ascii_size, 40);
        let c = t.bpf_config();
        assert_eq!(c.cframe_current_frame, 0);
        // 3.12's C-stack entry frames run no code object: the sampler
        // neither names them nor takes them for stale frames.
        assert_eq!((c.owner_not_code, c.ob_type), (3, 8));
        let old = static_offsets(8).unwrap().bpf_config();
        assert_eq!(
            (old.frame_owner, old.owner_not_code),
            (PY_NO_OFFSET, PY_NO_OFFSET)
        );
    }

    /// A synthetic `_Py_DebugOffsets` with the values a build would write.
    pub fn synthetic_debug_offsets(minor: u32) -> Vec<u8> {
        let layout = known_debug_layout(minor).unwrap();
        let mut raw = vec![0u8; layout.total as usize];
        raw[..8].copy_from_slice(DEBUG_COOKIE);
        let mut put =
            |at: u64, v: u64| raw[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
        put(8, 0x0300_00f0 | ((minor as u64) << 16));
        put(layout.ob_type, 8);
        put(layout.interpreters_head, 632);
        put(layout.interp_next, 0);
        put(layout.interp_threads_head, 7344);
        put(layout.tstate_prev, 0);
        put(layout.tstate_next, 8);
        put(layout.tstate_interp, 16);
        put(layout.tstate_current_frame, 72);
        put(layout.tstate_thread_id, 152);
        put(layout.tstate_native_thread_id, 160);
        put(layout.frame_previous, 8);
        put(layout.frame_executable, 0);
        put(layout.frame_instr_ptr, 56);
        put(layout.frame_owner, 70);
        put(layout.code_filename, 112);
        put(layout.code_name, 120);
        put(layout.code_qualname, 128);
        put(layout.code_linetable, 136);
        put(layout.code_firstlineno, 68);
        put(layout.code_adaptive, 200);
        put(layout.bytes_size, 16);
        put(layout.bytes_data, 32);
        put(layout.unicode_state, 32);
        put(layout.unicode_length, 16);
        put(layout.unicode_ascii_size, 40);
        // ceval_gil, gil_runtime_state, _enabled, _locked, _holder (3.13.0).
        let gil = layout.interp_ceval_gil.unwrap();
        for (i, v) in [16, 7752, 0, 7768, 7760].into_iter().enumerate() {
            put(gil + 8 * i as u64, v);
        }
        raw
    }

    #[test]
    fn debug_offsets_decode_for_3_13_to_3_15() {
        for minor in [13, 14, 15] {
            let o = decode_debug_offsets(&synthetic_debug_offsets(minor), minor).unwrap();
            assert_eq!(o.runtime_interpreters_head, 632);
            assert_eq!(o.interp_threads_head, 7344);
            assert_eq!(o.tstate_frame, 72);
            assert_eq!(o.tstate_native_thread_id, Some(160));
            assert_eq!((o.frame_back, o.frame_code, o.frame_instr), (8, 0, 56));
            assert_eq!(o.code_adaptive, Some(200));
            assert_eq!(o.ascii_size, 40);
            assert_eq!(o.code_is_stackref, minor >= 14);
            assert_eq!((o.ob_type, o.var_size, o.code_tlbc), (8, 16, None));
            let gil = o.gil.unwrap();
            assert_eq!(gil.place, super::super::gil::GilPlace::Interpreter(16));
            assert_eq!((gil.holder, gil.locked), (8, 16));
        }
        // A 3.14 struct read with the 3.13 layout is rejected, not misread.
        let mut raw = synthetic_debug_offsets(14);
        raw[8..16].copy_from_slice(&0x030d_00f0u64.to_le_bytes());
        assert!(matches!(
            decode_debug_offsets(&raw, 13),
            Err(LayoutError::UnknownDebugLayout { .. })
        ));
        // The version inside must be the interpreter's.
        assert!(matches!(
            decode_debug_offsets(&synthetic_debug_offsets(14), 13),
            Err(LayoutError::VersionMismatch { .. })
        ));
        let mut raw = synthetic_debug_offsets(13);
        raw[0] = b'y';
        assert!(matches!(
            decode_debug_offsets(&raw, 13),
            Err(LayoutError::NoCookie)
        ));
        // Free-threaded 3.14 (3.14t): 32-byte object header, per-thread
        // bytecode (`co_tlbc`), as pycore_debug_offsets.h of 3.14 lays out.
        let mut raw = synthetic_debug_offsets(14);
        let put = |raw: &mut Vec<u8>, at: u64, v: u64| {
            raw[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut raw, 16, 1);
        put(&mut raw, DEBUG_LAYOUT_3_14.ob_type, 24);
        put(&mut raw, DEBUG_LAYOUT_3_14.code_tlbc.unwrap(), 232);
        put(&mut raw, DEBUG_LAYOUT_3_14.bytes_size, 32);
        let o = decode_debug_offsets(&raw, 14).unwrap();
        assert_eq!((o.ob_type, o.var_size, o.code_tlbc), (24, 32, Some(232)));
        // Free-threaded with a GIL-sized object header: not consistent.
        let mut raw = synthetic_debug_offsets(14);
        raw[16] = 1;
        assert!(matches!(
            decode_debug_offsets(&raw, 14),
            Err(LayoutError::UnknownDebugLayout { .. })
        ));
    }
}
