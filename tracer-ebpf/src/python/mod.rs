//! CPU sampling of Python stacks: a CPU-clock `perf_event` program (one per
//! online CPU) that, when it interrupts a thread of a traced process, looks up
//! the process's interpreter layout (`PY_CONFIG`, per process: a tree may run
//! several builds) and the thread's `PyThreadState` (published by userspace
//! in `PY_THREADS`, inherited in the kernel by a child forked without
//! `exec`, so a worker is sampled from its first instruction, and found in
//! the kernel for a thread userspace has not published yet: a C thread
//! attached a moment ago, a thread state made and freed around each call),
//! reads its current frame and walks `f_back` / `previous` for at most
//! `PY_MAX_DEPTH` frames, writing code-object pointers and instruction
//! offsets straight into a ring buffer slot (nothing large on the BPF stack).
//! Userspace symbolizes the code objects.
//!
//! The top `PY_EVENT_DEPTH` frames also ride on kernel events: counted per
//! stack for reads (sampled) and voluntary switches, sent in a record of
//! their own for every fork (with the child), and written into the record
//! of every signal delivery (`event_stacks`).

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_user, generated,
    },
    macros::{map, perf_event, uprobe},
    maps::{HashMap, PerCpuHashMap},
    programs::{PerfEventContext, ProbeContext},
};
use tracer_common::{
    CODE_CHECK_WORDS, EventHeader, EventKind, PY_ENTRY_BIT, PY_EVENT_DEPTH, PY_MAX_DEPTH,
    PY_NO_OFFSET, PY_SAMPLE_TORN, PyConfig, PyEntryKey, PyEventValue, PyFrameRecord, PySample,
    PyTicks, code_check, drops, py_event,
};

mod code_names;
mod event_stacks;
pub mod gil;
mod thread_state;
// The walk, one for each object (see `steps.rs`): with `bpf_loop`
// straight into a ring buffer record, with native stacks; without it in
// pieces chained by tail calls, the record built in a per-CPU map (no
// native stacks there).
#[cfg(not(feature = "without-bpf-loop"))]
#[path = "walk_loop.rs"]
mod walk;
#[cfg(feature = "without-bpf-loop")]
#[path = "walk_pieces.rs"]
mod walk;

pub use event_stacks::{
    HOOKS, Hook, RB_WAKE_FOR_STACK, copy_sleep_stack, fatal_stack, fork_stack, io_stack,
    signal_stack, thread_ended, went_to_sleep, woke_up,
};
use event_stacks::{PY_SCRATCH, announce, bump, capture_top};
use thread_state::{current_frame, current_thread_state};

use crate::maps::{TRACED, config, count_drop, read_kernel};

/// Frame-walk offsets of each Python process's interpreter (key: tgid), set
/// by userspace when it finds one, copied to children forked without `exec`.
#[map]
pub static PY_CONFIG: HashMap<u32, PyConfig> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// Native thread id -> address of its `PyThreadState`, refreshed by userspace
/// from the interpreter's thread list.
#[map]
pub static PY_THREADS: HashMap<u32, u64> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// Sampler ticks per traced process (key: tgid), and why those that gave
/// no stack did not.
#[map]
pub static PY_TICKS: PerCpuHashMap<u32, PyTicks> =
    PerCpuHashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// The process's tick counters (created on its first tick).
#[inline(always)]
fn ticks_of(tgid: u32) -> Option<&'static mut PyTicks> {
    if let Some(ticks) = PY_TICKS.get_ptr_mut(&tgid) {
        // Per-CPU value: only this CPU writes it.
        return Some(unsafe { &mut *ticks });
    }
    let mut zero = core::mem::MaybeUninit::<PyTicks>::uninit();
    // SAFETY: the stack value's own words; every field is a u64.
    let zero = unsafe {
        crate::maps::zero_words(zero.as_mut_ptr());
        zero.assume_init_ref()
    };
    if PY_TICKS.insert(&tgid, zero, 0).is_err() {
        count_drop(drops::TABLES);
        return None;
    }
    PY_TICKS
        .get_ptr_mut(&tgid)
        .map(|ticks| unsafe { &mut *ticks })
}

/// The interpreter layout of process `tgid`, if it is known and sampled.
#[inline(always)]
pub(crate) fn config_of(tgid: u32) -> Option<&'static PyConfig> {
    let cfg = unsafe { PY_CONFIG.get(&tgid) }?;
    (cfg.enabled != 0).then_some(cfg)
}

/// A traced process forked `child` (not a thread): without `exec` it runs
/// the same interpreter at the same addresses, and its only thread is a copy
/// of the forking one, with the same `PyThreadState` (CPython keeps it for
/// the child's main thread). Copied here so the child is sampled from its
/// first tick; userspace re-reads its thread list soon after.
#[inline(always)]
pub fn inherit(tgid: u32, tid: u32, child: u32) {
    let Some(cfg) = (unsafe { PY_CONFIG.get(&tgid) }) else {
        return;
    };
    if PY_CONFIG.insert(&child, cfg, 0).is_err() {
        count_drop(drops::TABLES);
        return;
    }
    if let Some(&tstate) = unsafe { PY_THREADS.get(&tid) }
        && PY_THREADS.insert(&child, &tstate, 0).is_err()
    {
        count_drop(drops::TABLES);
    }
    crate::native::inherit(tgid, child);
}

/// Process `tgid` runs a new program (thread `tid`, formerly `old_tid`):
/// what was known of its interpreter no longer holds.
#[inline(always)]
pub fn forget_process(tgid: u32, tid: u32, old_tid: u32) {
    let _ = PY_CONFIG.remove(&tgid);
    let _ = PY_SIGNAL_PENDING.remove(&tgid);
    crate::native::forget_process(tgid);
    let _ = PY_THREADS.remove(&tid);
    let _ = PY_THREADS.remove(&old_tid);
}

/// Python processes with a delivery to a handler whose Python-level
/// handler has not run yet (the main thread has not checked since).
#[map]
pub static PY_SIGNAL_PENDING: HashMap<u32, u32> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// The process runs an interpreter this tracer understands.
#[inline(always)]
pub fn is_python(tgid: u32) -> bool {
    unsafe { PY_CONFIG.get(&tgid) }.is_some()
}

/// The Python object CPython's handler table holds for signal `sig` in
/// process `tgid` now, and what would be its `func_code` if it is a
/// function ((0, 0): not a Python process, table not known yet).
#[inline(always)]
pub fn signal_handler_object(tgid: u32, sig: i32) -> (u64, u64) {
    let Some(cfg) = (unsafe { PY_CONFIG.get(&tgid) }) else {
        return (0, 0);
    };
    if cfg.signal_handlers == 0 || !(1..65).contains(&sig) {
        return (0, 0);
    }
    // `func` of slot `sig`: 16-byte slots, `func` after the int.
    let at = cfg.signal_handlers + sig as u64 * 16 + 8;
    let func = unsafe { bpf_probe_read_user(at as *const u64) }.unwrap_or(0);
    if func == 0 || cfg.function_code == 0 {
        return (func, 0);
    }
    let code_at = func + u64::from(cfg.function_code);
    (
        func,
        unsafe { bpf_probe_read_user(code_at as *const u64) }.unwrap_or(0),
    )
}

/// Thread `tid` exited: its id may soon name a thread of another process.
#[inline(always)]
pub fn forget_thread(tid: u32) {
    let _ = PY_THREADS.remove(&tid);
    gil::forget_thread(tid);
}

#[inline(always)]
pub(super) fn read_u64(addr: u64) -> u64 {
    if addr == 0 {
        return 0;
    }
    unsafe { bpf_probe_read_user(addr as *const u64) }.unwrap_or(0)
}

/// Bytes of a frame read in one go: every version's `f_back` / `previous`,
/// code, instruction and `owner` fields lie in its first 120 bytes.
const FRAME_BYTES: usize = 128;

/// Where [`read_frame`] reads a frame: in a map value where the walk is a
/// `bpf_loop` step (a step's stack adds to its caller's, and 128 bytes
/// more went past the 512 a program has on 6.1 in `sys_exit`).
type FrameBuf = [u8; FRAME_BYTES];

/// One frame's record and its next-outer frame: a single 128-byte read of
/// the frame instead of four (falls back to field reads if the block
/// crosses into unreadable memory), and one of its code object's check
/// window, unless it is `last`'s code object (recursion: one read for a
/// run of frames of the same function). The block is not zeroed first:
/// sixteen stores less per frame, and less work for the verifier on the
/// walks. `buf`: [`FrameBuf`] bytes to read into, contents unknown.
#[inline(always)]
fn read_frame(
    cfg: &PyConfig,
    frame: u64,
    last: &mut PyFrameRecord,
    buf: *mut FrameBuf,
) -> (PyFrameRecord, u64) {
    // SAFETY: the helper writes at most FRAME_BYTES bytes into `buf`.
    let filled = unsafe {
        generated::bpf_probe_read_user(buf.cast(), FRAME_BYTES as u32, (frame as *const u8).cast())
    } == 0;
    let (code, mut instr, back) = if filled {
        // SAFETY: the helper wrote all FRAME_BYTES bytes.
        let buf = unsafe { &*buf };
        // Masks keep every access inside `buf` for the verifier; the offsets
        // are 8-byte aligned fields (owner: one byte) below 120.
        let at = |off: u32| -> u64 {
            let off = (off & 0x78) as usize;
            unsafe { core::ptr::read_unaligned(buf.as_ptr().add(off).cast::<u64>()) }
        };
        let mut instr = at(cfg.frame_instr) & 0x00ff_ffff_ffff_ffff;
        if cfg.frame_owner != PY_NO_OFFSET {
            let owner = buf[(cfg.frame_owner & 0x7f) as usize];
            instr |= (owner as u64) << 56;
        }
        if cfg.frame_is_entry != PY_NO_OFFSET && buf[(cfg.frame_is_entry & 0x7f) as usize] != 0 {
            instr |= 1 << PY_ENTRY_BIT;
        }
        (at(cfg.frame_code), instr, at(cfg.frame_back))
    } else {
        let instr = read_u64(frame + cfg.frame_instr as u64) & 0x00ff_ffff_ffff_ffff;
        (
            read_u64(frame + cfg.frame_code as u64),
            instr,
            read_u64(frame + cfg.frame_back as u64),
        )
    };
    if !filled && cfg.frame_owner != PY_NO_OFFSET {
        let owner: u8 =
            unsafe { bpf_probe_read_user((frame + cfg.frame_owner as u64) as *const u8) }
                .unwrap_or(0);
        instr |= (owner as u64) << 56;
    }
    let check = if code == last.code {
        last.check
    } else {
        check_code(cfg, code)
    };
    *last = PyFrameRecord { code, instr, check };
    (*last, back)
}

/// The fingerprint [`check_code`] gives a code object that is not finished:
/// an identifying pointer of its window is still null (CPython's
/// `init_code` fills them in one by one). No frame runs such an object: a
/// walk that meets one read a frame the interpreter was still linking in
/// (its stores reordered around the sample), the stale code address of a
/// C-stack frame not yet marked as one, and is torn. Named from such an
/// object, a frame would carry the name but a `co_firstlineno` of 0.
pub(super) const UNFINISHED_CODE: u64 = u64::MAX;

/// The fingerprint of the code object at `code` now ([`code_check`]), 0 when
/// unreadable or not configured, [`UNFINISHED_CODE`] while it is being
/// made: userspace names the frame only by a code object with the same
/// fingerprint, never by one that took its address.
#[inline(always)]
fn check_code(cfg: &PyConfig, code: u64) -> u64 {
    if cfg.code_check == PY_NO_OFFSET || code == 0 {
        return 0;
    }
    let code = if cfg.code_is_stackref != 0 {
        code & !7
    } else {
        code
    };
    let Ok(words) = (unsafe {
        bpf_probe_read_user((code + cfg.code_check as u64) as *const [u64; CODE_CHECK_WORDS])
    }) else {
        return 0;
    };
    let mut i = 0;
    while i < CODE_CHECK_WORDS {
        if cfg.code_check_mask & (1 << i) != 0 && words[i] == 0 {
            return UNFINISHED_CODE;
        }
        i += 1;
    }
    code_check(&words, cfg.code_check_mask)
}

/// Where the sampler's frame walk is: on its stack for `bpf_loop`, in a
/// per-CPU map between the pieces of the tail-call walk (`walk_pieces`).
/// No pointer: a map value keeps none across a tail call.
#[repr(C)]
#[derive(Clone, Copy)]
struct Cursor {
    /// The next frame to read (0: the walk is done).
    frame: u64,
    /// Frames written.
    depth: u64,
    /// The last frame read.
    last: PyFrameRecord,
    tgid: u32,
    /// Code objects whose names this walk sent.
    named: u32,
    /// The walk met a pointer no frame or code object can have (not
    /// 8-byte aligned): the chain was read while the interpreter was
    /// changing it. The sample is flagged, not trusted.
    torn: u32,
    _pad: u32,
}

impl Cursor {
    /// At the thread's current frame, nothing walked yet; written in place
    /// (a map value's), without the `memset` call a program that
    /// tail-calls may not make ([`crate::maps::zero_words`]).
    ///
    /// # Safety
    /// `cursor` is valid for writes.
    #[inline(always)]
    unsafe fn start(cursor: *mut Cursor, walked: &Walked) {
        // SAFETY: the caller's cursor.
        unsafe {
            crate::maps::zero_words(cursor);
            core::ptr::addr_of_mut!((*cursor).frame).write(walked.frame);
            core::ptr::addr_of_mut!((*cursor).tgid).write(walked.tgid);
        }
    }
}

/// Code objects whose names one sample sends, at most: the first samples
/// of a process meet every frame for the first time; the rest are named
/// over the next samples (innermost first: code made a moment ago).
const MAX_NAMED_PER_SAMPLE: u32 = 16;

/// One frame of the sampler's walk: the frame at `cursor.frame` read into
/// `frames[index]` (`index`: `cursor.depth`, or `bpf_loop`'s own index,
/// which the verifier does not follow as a constant from one step to the
/// next, as it would the depth kept on the sampler's stack), its code
/// object named if new. False when the walk is over (the stack's end,
/// `PY_MAX_DEPTH` frames, or torn).
#[inline(always)]
fn walk_frame(
    cfg: &PyConfig,
    frames: *mut PyFrameRecord,
    cursor: &mut Cursor,
    index: u64,
    buf: *mut FrameBuf,
) -> bool {
    if cursor.frame == 0 || index >= PY_MAX_DEPTH as u64 {
        return false;
    }
    let previous = cursor.last.code;
    let (record, back) = read_frame(cfg, cursor.frame, &mut cursor.last, buf);
    let code = if cfg.code_is_stackref != 0 {
        record.code & !7
    } else {
        record.code
    };
    if code & 7 != 0 || back & 7 != 0 {
        cursor.torn = 1;
        cursor.frame = 0;
        return false;
    }
    let runs_code =
        cfg.frame_owner == PY_NO_OFFSET || ((record.instr >> 56) as u32) < cfg.owner_not_code;
    if runs_code && record.check == UNFINISHED_CODE {
        cursor.torn = 1;
        cursor.frame = 0;
        return false;
    }
    if record.code != previous && runs_code && cursor.named < MAX_NAMED_PER_SAMPLE {
        match code_names::name_if_new(cfg, cursor.tgid, &record) {
            code_names::Naming::Sent => {
                cursor.named += 1;
                code_names::send_lines(cfg, cursor.tgid, &record);
            }
            code_names::Naming::NotCode => {
                cursor.torn = 1;
                cursor.frame = 0;
                return false;
            }
            code_names::Naming::Skipped => {}
        }
    }
    // SAFETY: index < PY_MAX_DEPTH, inside the record's frames.
    unsafe { frames.add(below::<PY_MAX_DEPTH>(index)).write(record) };
    cursor.depth = index + 1;
    cursor.frame = back;
    true
}

/// `n & (N - 1)` computed where the verifier sees it (`N` a power of two):
/// the compiler, which may know `n` is below, would leave the mask out,
/// and in the pieces' unrolled loop it computes the frame's address
/// before the bound is checked (a map value plus an unbounded offset,
/// refused); `bpf_loop`'s index is not bounded for the verifier at all.
#[inline(always)]
pub(super) fn below<const N: usize>(n: u64) -> usize {
    const { assert!(N.is_power_of_two()) };
    let mut n = n;
    // SAFETY: arithmetic on a register.
    unsafe { core::arch::asm!("{n} &= {mask}", n = inout(reg) n, mask = const N - 1) };
    n as usize
}

/// The thread's running asyncio task and its name object now ((0, 0):
/// none, or the process has no asyncio offsets): two reads, only for a
/// process whose `.AsyncioDebug` was found.
#[inline(always)]
fn running_task(cfg: &PyConfig, tstate: u64) -> (u64, u64) {
    if cfg.tstate_running_task == PY_NO_OFFSET {
        return (0, 0);
    }
    let task = read_u64(tstate + cfg.tstate_running_task as u64);
    if task == 0 || cfg.task_name == PY_NO_OFFSET {
        return (task, 0);
    }
    (task, read_u64(task + cfg.task_name as u64))
}

#[perf_event]
pub fn python_sample(ctx: PerfEventContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    if unsafe { TRACED.get(&tgid) }.is_none() {
        return 0;
    }
    let cfg = config_of(tgid);
    // On every CPU (a node-wide trace), most ticks land in processes that
    // run no Python: neither counted nor kept in the tick table.
    if cfg.is_none() && config!(scope.per_cpu_sampling) != 0 {
        return 0;
    }
    let Some(ticks) = ticks_of(tgid) else {
        return 0;
    };
    ticks.ticks += 1;
    let Some(cfg) = cfg else {
        ticks.no_interpreter += 1;
        return 0;
    };
    let Some(tstate) = current_thread_state(cfg, tid) else {
        ticks.no_thread_state += 1;
        return 0;
    };
    let walked = walked_from(cfg, tstate, tgid, tid);
    if walked.frame == 0 {
        ticks.no_frame += 1;
        return 0;
    }
    walk::sample(&ctx, &walked);
    0
}

/// What the walk starts from: the thread's current frame (0: none), its
/// running task and whether it holds the GIL.
#[inline(always)]
fn walked_from(cfg: &PyConfig, tstate: u64, tgid: u32, tid: u32) -> Walked<'_> {
    let frame = current_frame(cfg, tstate);
    let (task, task_name) = running_task(cfg, tstate);
    Walked {
        cfg,
        frame,
        tgid,
        tid,
        task,
        task_name,
        gil: gil::held(cfg, tstate),
    }
}

/// A sampled page fault of thread `tid` of a Python process
/// (`crate::memory::memory_fault`): its Python stack (empty where it has
/// none: a thread of no Python frame still grew the process), with the
/// process's resident pages, read by `rss_pages` after the walk with
/// `bpf_loop`: the figure's branches before the loop's call made 6.1's
/// verifier check the walk once per path (510,129 instructions, 12 s at
/// every start under emulation, against 58,929).
#[inline(always)]
pub fn fault_sample(
    ctx: &PerfEventContext,
    cfg: &PyConfig,
    tgid: u32,
    tid: u32,
    rss_pages: impl FnOnce() -> u64,
) {
    let walked = match current_thread_state(cfg, tid) {
        Some(tstate) => walked_from(cfg, tstate, tgid, tid),
        None => Walked {
            cfg,
            frame: 0,
            tgid,
            tid,
            task: 0,
            task_name: 0,
            gil: 0,
        },
    };
    walk::fault(ctx, &walked, rss_pages);
}

/// Whether the current thread still has its memory. One past
/// `exit_mm()` (exiting) runs on the page tables its CPU had loaded (lazy
/// TLB): maybe a forked sibling's, with the same layout, whose stack a walk
/// would take for this thread's (bullseye's 5.10 reads user memory there:
/// its `tree` check saw a prefork worker, past its own function, sampled
/// in a sibling's). Offset unknown: taken as yes.
#[inline(always)]
pub(super) fn has_own_memory() -> bool {
    let offset = config!(structs.task_mm);
    if offset == 0 {
        return true;
    }
    let task = unsafe { bpf_get_current_task() };
    read_kernel::<u64>(task, offset).unwrap_or(0) != 0
}

/// What the sampler found before walking: the thread's current frame.
struct Walked<'a> {
    cfg: &'a PyConfig,
    frame: u64,
    tgid: u32,
    tid: u32,
    task: u64,
    task_name: u64,
    /// Whether the thread held the GIL (`PySample::gil`).
    gil: u32,
}

/// The sample's header and what the sampler read before the walk.
#[inline(always)]
unsafe fn write_sample_fields(sample: *mut PySample, walked: &Walked, kind: EventKind) {
    // SAFETY: fields of the caller's record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*sample).header).write(EventHeader {
            kind: kind as u32,
            tgid: walked.tgid,
            tid: walked.tid,
            _pad: 0,
            ts_ns: bpf_ktime_get_ns(),
        });
        core::ptr::addr_of_mut!((*sample).task).write(walked.task);
        core::ptr::addr_of_mut!((*sample).task_name).write(walked.task_name);
        core::ptr::addr_of_mut!((*sample).gil).write(walked.gil);
        core::ptr::addr_of_mut!((*sample)._gil_pad).write(0);
    }
}

/// The sample's depth and whether the walk was cut or torn.
#[inline(always)]
unsafe fn write_walk_end(sample: *mut PySample, cursor: &Cursor) {
    let truncated = if cursor.torn != 0 {
        PY_SAMPLE_TORN
    } else {
        u32::from(cursor.frame != 0)
    };
    // SAFETY: fields of the caller's record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*sample).depth).write(cursor.depth as u32);
        core::ptr::addr_of_mut!((*sample).truncated).write(truncated);
    }
}

/// Entries into `_PyEval_EvalFrameDefault` per code object (`--count-entries`).
#[map]
pub static PY_ENTRIES: PerCpuHashMap<PyEntryKey, u64> =
    PerCpuHashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// Uprobe on `_PyEval_EvalFrameDefault`: counts entries per code object.
/// From 3.11 on, Python-to-Python calls stay inside the running eval loop,
/// so these are the entries from C (the C API, callbacks, generators...).
#[uprobe]
pub fn py_eval_entry(ctx: ProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if unsafe { TRACED.get(&tgid) }.is_none() {
        return 0;
    }
    let Some(cfg) = config_of(tgid) else {
        return 0;
    };
    // The first / second argument register (x86-64: rdi / rsi), read with a
    // helper: a context load at a computed offset is refused by the verifier.
    let regs = ctx.regs;
    #[cfg(bpf_target_arch = "x86_64")]
    let reg = if cfg.entry_frame_arg == 0 {
        unsafe { core::ptr::addr_of!((*regs).rdi) }
    } else {
        unsafe { core::ptr::addr_of!((*regs).rsi) }
    };
    // arm64: x0 / x1.
    #[cfg(bpf_target_arch = "aarch64")]
    let reg = unsafe { core::ptr::addr_of!((*regs).regs[(cfg.entry_frame_arg & 1) as usize]) };
    let Ok(frame) = (unsafe { bpf_probe_read_kernel(reg) }) else {
        return 0;
    };
    let code = read_u64(frame + cfg.frame_code as u64);
    if code == 0 {
        return 0;
    }
    let key = PyEntryKey {
        tgid,
        _pad: 0,
        code,
    };
    if let Some(count) = PY_ENTRIES.get_ptr_mut(&key) {
        unsafe { *count += 1 };
        return 0;
    }
    if PY_ENTRIES.insert(&key, 1u64, 0).is_err() {
        count_drop(drops::TABLES);
        return 0;
    }
    // First entry of this code object: have userspace name it now.
    let Some(scratch) = PY_SCRATCH.get_ptr_mut(Hook::Uprobe as u32) else {
        return 0;
    };
    let announce_key = unsafe { &mut (*scratch).key };
    announce_key.tgid = tgid;
    announce_key.kind = py_event::ENTRY;
    announce_key.file_id = 0;
    announce_key.frames = [PyFrameRecord::default(); PY_EVENT_DEPTH];
    announce_key.frames[0].code = code;
    announce(announce_key, PyEventValue::default());
    0
}
