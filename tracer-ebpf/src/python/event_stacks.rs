//! The top of the Python stack on kernel events: counted per stack in
//! `PY_EVENT_STACKS` for reads and writes (1 in `read_stack_every`) and voluntary
//! switches (with the time asleep), sent in a record of its own for every
//! fork (with the child), written into the records of signal deliveries,
//! signal checks and disposition and mask changes. Each capture reads at
//! most `PY_EVENT_DEPTH` (`PY_FORK_DEPTH`) frames with the sampler's
//! `read_frame`; a stack new to the table is announced, so userspace names
//! its code objects while they live.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{HashMap, PerCpuArray, PerCpuHashMap},
};
use tracer_common::{
    EventHeader, EventKind, IoSyscall, PY_EVENT_DEPTH, PY_FATAL_DEPTH, PY_FORK_DEPTH, PY_NO_OFFSET,
    PyConfig, PyEventKey, PyEventValue, PyForkEvent, PyFrameRecord, PyNativeForkEvent, PySleep,
    PyStackEvent, SignalFatalStackEvent, drops, process_flags, py_event,
};

use super::{FrameBuf, PY_THREADS, UNFINISHED_CODE, below, config_of, gil, read_frame};
use crate::{
    maps::{EVENTS, RB_FORCE_WAKEUP, config, count_drop},
    steps::{BPF_LOOP, Step, repeat},
};

/// Kernel events counted by the top of the Python stack they happened under
/// (reads: sampled; voluntary context switches: all, with the time asleep).
#[map]
pub static PY_EVENT_STACKS: PerCpuHashMap<PyEventKey, PyEventValue> =
    PerCpuHashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// Threads asleep after a voluntary switch, with their stack (key: tid):
/// a new entry at every voluntary switch of a Python thread. Allocated on
/// insert as the other tables are: preallocating 65,536 rows cost 5-7 ms of
/// every start-up, an entry from the kernel's per-CPU cache costs no more
/// per switch than the table's free list did (docs/benchmarks.md).
#[map]
static PY_SLEEPING: HashMap<u32, PySleep> = HashMap::with_max_entries(
    tracer_common::MAX_THREAD_ROWS,
    crate::maps::ALLOCATE_ON_INSERT,
);

/// Where a key is built (too big to build twice on the 512-byte BPF
/// stack): a slot per [`Hook`].
#[map]
pub(super) static PY_SCRATCH: PerCpuArray<PySleep> = PerCpuArray::with_max_entries(HOOKS, 0);

/// Reads and writes seen per CPU, to capture the stack of 1 in
/// `read_stack_every`.
#[map]
static PY_READ_COUNTER: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// A one-off trace's thread made its last switch: the sleep it "began"
/// there is its end, not a sleep.
#[inline(always)]
pub fn thread_ended(tid: u32) {
    let _ = PY_SLEEPING.remove(&tid);
}

/// Fills `frames` with the innermost `N` frames of thread `tid`'s Python
/// stack (zeroes past its end). False if the thread has no known thread
/// state or no current frame.
#[inline(always)]
pub(super) fn capture_top<const N: usize>(
    cfg: &PyConfig,
    tid: u32,
    frames: *mut PyFrameRecord,
    hook: Hook,
) -> bool {
    let Some(&tstate) = (unsafe { PY_THREADS.get(&tid) }) else {
        return false;
    };
    capture_top_of::<N>(cfg, tstate, frames, hook)
}

/// [`capture_top`] of the thread whose state is `tstate`.
#[inline(always)]
fn capture_top_of<const N: usize>(
    cfg: &PyConfig,
    tstate: u64,
    frames: *mut PyFrameRecord,
    hook: Hook,
) -> bool {
    let frame = super::current_frame(cfg, tstate);
    if frame == 0 {
        return false;
    }
    let Some(state) = CAPTURE_STATE.get_ptr_mut(hook as u32) else {
        return false;
    };
    // SAFETY: this CPU's slot for this hook (see `Hook`).
    unsafe {
        core::ptr::addr_of_mut!((*state).frame).write(frame);
        core::ptr::addr_of_mut!((*state).last).write(PyFrameRecord::default());
    };
    let mut capture = Capture::<N> { cfg, frames, state };
    // With `bpf_loop` the verifier checks one step, not N unrolled frames
    // (a fork's 16 took it ~170 k instructions, a third of the start-up).
    repeat::<N, _>(&mut capture);
    true
}

/// A capture of the top of a stack under way, on the caller's stack (for
/// `bpf_loop`, whose step gets a pointer to it).
#[repr(C)]
struct Capture<const N: usize> {
    cfg: *const PyConfig,
    /// The caller's `N` records.
    frames: *mut PyFrameRecord,
    /// This CPU's `CAPTURE_STATE` slot for the hook.
    state: *mut CaptureState,
}

/// Where a capture is, in a map value rather than on the BPF stack: the
/// verifier follows a stack value exactly from one `bpf_loop` step to the
/// next and checks the step once per value it sees (~7-14 k instructions
/// a capture, ~60 k at every start), a map value's it does not know.
#[repr(C)]
struct CaptureState {
    /// The next frame to read (0: past the stack's end).
    frame: u64,
    last: PyFrameRecord,
    buf: FrameBuf,
}

/// The hook a program runs in, each with its own slot of a CPU's scratch
/// (`CAPTURE_STATE`, `PY_SCRATCH`, `io`'s path, `gil`'s wait). The syscall
/// hooks and the uprobes may be preempted where the kernel's syscall
/// tracepoints are faultable (a program does not run again on a CPU
/// before it finished there, but another one may: a syscall program's
/// second copy, the scheduler's); the others run with preemption off and
/// never inside one another.
#[derive(Clone, Copy)]
pub enum Hook {
    SysEnter = 0,
    SysExit = 1,
    /// `sched_switch`, `sched_process_fork`, `signal_deliver`.
    Other = 2,
    /// The second copies of `SysEnter` and `SysExit` (`syscalls.rs`),
    /// which run where the first was skipped, maybe preempted inside it.
    SysEnterCopy = 3,
    SysExitCopy = 4,
    /// The entry counter and the signal-check uprobe.
    Uprobe = 5,
}

/// Slots of each per-hook scratch map: one per [`Hook`].
pub const HOOKS: u32 = 6;

#[map]
static CAPTURE_STATE: PerCpuArray<CaptureState> = PerCpuArray::with_max_entries(HOOKS, 0);

impl<const N: usize> Step for Capture<N> {
    /// Record `index` of `N`: the next frame's, or zeroes past the end.
    #[inline(always)]
    fn step(&mut self, index: u64) -> bool {
        // SAFETY: a map value that outlives the program run.
        let cfg = unsafe { &*self.cfg };
        // SAFETY: this CPU's slot for the running hook, which no other
        // program on this CPU uses before this one ends.
        let state = unsafe { &mut *self.state };
        let mut record = PyFrameRecord::default();
        if state.frame != 0 {
            (record, state.frame) = read_frame(cfg, state.frame, &mut state.last, &mut state.buf);
            // At a kernel event the thread is in a system call: its frames
            // are linked in; an entry frame's None is no code object.
            if record.check == UNFINISHED_CODE {
                record.check = 0;
            }
        }
        // SAFETY: the index masked below N (a power of two), inside the
        // caller's N records.
        unsafe { self.frames.add(below::<N>(index)).write(record) };
        true
    }
}

#[inline(always)]
pub(super) fn bump(key: &PyEventKey, off_cpu_ns: u64) {
    if let Some(value) = PY_EVENT_STACKS.get_ptr_mut(key) {
        // This CPU's value, which a preempted syscall program and a
        // scheduler one may both be adding to (`add_relaxed`).
        unsafe {
            crate::maps::add_relaxed(core::ptr::addr_of_mut!((*value).count), 1);
            crate::maps::add_relaxed(core::ptr::addr_of_mut!((*value).off_cpu_ns), off_cpu_ns);
        }
        return;
    }
    let value = PyEventValue {
        count: 1,
        off_cpu_ns,
    };
    if PY_EVENT_STACKS.insert(key, value, 0).is_ok() {
        announce(key, PyEventValue::default());
    } else if config!(stack_records) != 0 {
        // The table is full (a walk of more files than it holds): the
        // counts go to userspace in the record instead.
        announce(key, value);
    } else {
        count_drop(drops::TABLES);
    }
}

/// Tells userspace about a stack it has not seen, so it reads the code
/// objects while they certainly exist; with `counts`, events that were
/// not counted in `PY_EVENT_STACKS`.
#[inline(always)]
pub(super) fn announce(key: &PyEventKey, counts: PyEventValue) {
    let Some(mut entry) = EVENTS.reserve::<PyStackEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(EventHeader {
            kind: EventKind::PyStack as u32,
            tgid: key.tgid,
            tid: 0,
            _pad: 0,
            ts_ns: bpf_ktime_get_ns(),
        });
        core::ptr::addr_of_mut!((*event).key).write(*key);
        core::ptr::addr_of_mut!((*event).counts).write(counts);
    }
    // A new stack is forced: with un-woken samples pending, a plain submit
    // would not wake the tracer (the consumer is behind), and the thread
    // may be gone by the next tick; new stacks are rare. Counts the table
    // had no room for come many a second (a walk of a million files):
    // drained like the rows (the fingerprints keep a late read honest).
    let wake = if counts.count == 0 {
        RB_FORCE_WAKEUP
    } else {
        crate::maps::lazy_wakeup()
    };
    entry.submit(wake);
}

/// A traced thread finished a read, write or sync (`syscall`, an
/// `IoSyscall`) of `file_id`: count its Python stack, for 1 in
/// `read_stack_every` of them on this CPU.
#[inline(always)]
pub fn io_stack(tgid: u32, tid: u32, file_id: u64, syscall: u32, hook: Hook) {
    let Some(cfg) = config_of(tgid) else {
        return;
    };
    if cfg.read_stack_every == 0 {
        return;
    }
    let Some(counter) = PY_READ_COUNTER.get_ptr_mut(0) else {
        return;
    };
    let seen = unsafe {
        *counter += 1;
        *counter
    };
    if seen % cfg.read_stack_every as u64 != 0 {
        return;
    }
    let Some(scratch) = PY_SCRATCH.get_ptr_mut(hook as u32) else {
        return;
    };
    let key = unsafe { &mut (*scratch).key };
    key.tgid = tgid;
    key.kind = if syscall >= IoSyscall::Write as u32 {
        py_event::WRITE
    } else {
        py_event::READ
    };
    key.file_id = file_id;
    if capture_top::<PY_EVENT_DEPTH>(cfg, tid, key.frames.as_mut_ptr(), hook) {
        bump(key, 0);
    }
}

/// A traced thread went to sleep (voluntary switch): remember its stack.
#[inline(always)]
/// True when it captured the thread's stack ([`copy_sleep_stack`] has it).
pub fn went_to_sleep(tgid: u32, tid: u32, now: u64) -> bool {
    let Some(cfg) = config_of(tgid) else {
        return false;
    };
    // Waiting for the GIL: counted by `gil`, apart from the other sleeps.
    if gil::went_off_cpu(tid, now) {
        return false;
    }
    let Some(scratch) = PY_SCRATCH.get_ptr_mut(Hook::Other as u32) else {
        return false;
    };
    let sleep = unsafe { &mut *scratch };
    sleep.key.tgid = tgid;
    sleep.key.kind = py_event::OFF_CPU;
    sleep.key.file_id = 0;
    if !capture_top::<PY_EVENT_DEPTH>(cfg, tid, sleep.key.frames.as_mut_ptr(), Hook::Other) {
        return false;
    }
    sleep.start_ns = now;
    // A new stack: symbolize it now, while the thread sleeps in it.
    if PY_EVENT_STACKS.get_ptr(&sleep.key).is_none() {
        announce(&sleep.key, PyEventValue::default());
    }
    if PY_SLEEPING.insert(&tid, &*sleep, 0).is_err() {
        count_drop(drops::TABLES);
    }
    true
}

/// The stack the last [`went_to_sleep`] on this CPU captured, into `frames`
/// (`PY_EVENT_DEPTH` records). Call it only after one that returned true.
#[inline(always)]
pub fn copy_sleep_stack(frames: *mut PyFrameRecord) {
    let Some(scratch) = PY_SCRATCH.get_ptr(Hook::Other as u32) else {
        return;
    };
    for i in 0..PY_EVENT_DEPTH {
        // SAFETY: `frames` points at PY_EVENT_DEPTH records of a ring buffer slot.
        unsafe { frames.add(i).write((*scratch).key.frames[i]) };
    }
}

/// A traced thread runs again: charge the time asleep to its stack.
#[inline(always)]
pub fn woke_up(tid: u32, now: u64) {
    gil::back_on_cpu(tid, now);
    let Some(slot) = PY_SLEEPING.get_ptr_mut(&tid) else {
        return;
    };
    let slot = unsafe { &mut *slot };
    if slot.start_ns == 0 {
        return;
    }
    let asleep = now.saturating_sub(slot.start_ns);
    slot.start_ns = 0;
    bump(&slot.key, asleep);
}

/// A traced thread forked or cloned `child` (a pid, or a tid for a thread):
/// sends its stack with the child in `file_id`, one record per fork (no map
/// entry: a map keyed by child would fill up in a long-lived process that
/// keeps spawning, and crowd out the read and off-CPU stacks). Userspace
/// joins the child to the line that spawned it and counts forks per stack.
/// A process fork of a process unwound natively carries the native stack
/// too (the C code that called `fork()`): forks are rare, an unwind costs
/// a few microseconds. Thread starts (a pool may churn thousands a second)
/// carry only the Python stack.
///
/// Returns the fork record's `process_flags` on the stack: sent, or why
/// not (0: the process runs no interpreter the sampler was given).
#[inline(always)]
pub fn fork_stack(tgid: u32, tid: u32, child: u32, thread: bool) -> u32 {
    let Some(cfg) = config_of(tgid) else {
        return 0;
    };
    // A thread userspace has not published yet (the process's first
    // milliseconds, a thread started a moment ago) is found as the
    // sampler finds it, by its TLS base: it is the current thread here.
    let Some(tstate) = super::current_thread_state(cfg, tid) else {
        return process_flags::NO_PY_THREAD;
    };
    // A new process wakes the tracer at once: a short script may spawn and
    // exit before the next tick, its code objects gone. New threads wait
    // for the tick or the next wake-up.
    if !thread && let Some(mappings) = crate::native::mappings_of(tgid) {
        let Some(mut entry) = EVENTS.reserve::<PyNativeForkEvent>(0) else {
            count_drop(drops::RINGBUF);
            return 0;
        };
        let record = entry.as_mut_ptr();
        // SAFETY: fields of the reserved record, written in place.
        unsafe {
            let fork = core::ptr::addr_of_mut!((*record).fork);
            let kind = EventKind::PyNativeForkStack;
            if !fill_fork(fork, cfg, tstate, (tgid, tid), child, kind) {
                entry.discard(0);
                return process_flags::NO_PY_FRAME;
            }
            let native = core::ptr::addr_of_mut!((*record).native).cast::<u64>();
            let (depth, end) = crate::native::unwind_current(mappings, native);
            core::ptr::addr_of_mut!((*record).native_depth).write(depth);
            core::ptr::addr_of_mut!((*record).native_end).write(end);
        }
        entry.submit(RB_FORCE_WAKEUP);
        return process_flags::PY_STACK_SENT;
    }
    let Some(mut entry) = EVENTS.reserve::<PyForkEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
    };
    // SAFETY: the reserved record.
    if !unsafe {
        fill_fork(
            entry.as_mut_ptr(),
            cfg,
            tstate,
            (tgid, tid),
            child,
            EventKind::PyForkStack,
        )
    } {
        entry.discard(0);
        return process_flags::NO_PY_FRAME;
    }
    entry.submit(if thread { 0 } else { RB_FORCE_WAKEUP });
    process_flags::PY_STACK_SENT
}

/// Fills a reserved fork record (`kind`: the record it is part of) with
/// the stack of the thread whose state is `tstate`; false when it has no
/// Python frame running.
#[inline(always)]
unsafe fn fill_fork(
    event: *mut PyForkEvent,
    cfg: &PyConfig,
    tstate: u64,
    (tgid, tid): (u32, u32),
    child: u32,
    kind: EventKind,
) -> bool {
    // SAFETY: fields of the caller's reserved record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).child).write(child);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
        let frames = core::ptr::addr_of_mut!((*event).frames).cast::<PyFrameRecord>();
        if !capture_top_of::<PY_FORK_DEPTH>(cfg, tstate, frames, Hook::Other) {
            return false;
        }
        core::ptr::addr_of_mut!((*event).header).write(EventHeader {
            kind: kind as u32,
            tgid,
            tid,
            _pad: 0,
            ts_ns: bpf_ktime_get_ns(),
        });
    }
    true
}

/// Fills `frames` (`PY_EVENT_DEPTH` records, e.g. in a reserved ring buffer
/// record) with the top of thread `tid`'s Python stack, or zeroes them when
/// it has none (not a known Python thread, sampling off). For
/// `signal_deliver`: the line that was running when the signal arrived.
/// Returns whether a stack was captured.
#[inline(always)]
pub fn signal_stack(tgid: u32, tid: u32, frames: *mut PyFrameRecord, hook: Hook) -> bool {
    if let Some(cfg) = config_of(tgid)
        && capture_top::<PY_EVENT_DEPTH>(cfg, tid, frames, hook)
    {
        return true;
    }
    for i in 0..PY_EVENT_DEPTH {
        // SAFETY: i < PY_EVENT_DEPTH, inside the caller's record.
        unsafe { frames.add(i).write(PyFrameRecord::default()) };
    }
    false
}

/// Frames the post-mortem capture reads: with `bpf_loop` the whole record,
/// without it (each frame unrolled for the verifier) as many as a fork's.
const FATAL_CAPTURE: usize = if BPF_LOOP {
    PY_FATAL_DEPTH
} else {
    PY_FORK_DEPTH
};

/// Frames of a fatal stack whose code objects are named and their line
/// tables copied: all captured with `bpf_loop`; without it (each frame
/// unrolled for the verifier, at every start) the innermost eight.
const FATAL_NAMED: usize = if BPF_LOOP { FATAL_CAPTURE } else { 8 };

/// The naming of a fatal stack's code objects under way (for `bpf_loop`,
/// whose step gets a pointer to it).
#[repr(C)]
struct FatalNaming {
    cfg: *const PyConfig,
    tgid: u32,
    /// The fatal record's frames.
    frames: *mut PyFrameRecord,
}

impl Step for FatalNaming {
    #[inline(always)]
    fn step(&mut self, index: u64) -> bool {
        // SAFETY: a map value that outlives the program run.
        let cfg = unsafe { &*self.cfg };
        // SAFETY: the index masked below FATAL_CAPTURE, inside the record.
        let record = unsafe { self.frames.add(below::<FATAL_CAPTURE>(index)).read() };
        // An entry frame (3.12+: owned by the C stack) runs no code object.
        let runs_code =
            cfg.frame_owner == PY_NO_OFFSET || ((record.instr >> 56) as u32) < cfg.owner_not_code;
        if runs_code {
            super::code_names::name_with_lines(cfg, self.tgid, &record);
        }
        true
    }
}

/// A signal that ends the process was delivered to thread `tid` of a
/// Python process (`signal_deliver`): its stack as it dies, deeper than a
/// delivery's top, in a record of its own. Runs on the thread's way out:
/// its frames are still in memory (the OOM reaper, which may unmap them,
/// waits two seconds from 5.18 on).
#[inline(always)]
pub fn fatal_stack(tgid: u32, tid: u32, sig: i32) {
    let Some(cfg) = config_of(tgid) else {
        return;
    };
    // A thread userspace has not published yet (started a moment ago) is
    // found as the sampler finds it, by its TLS base: it is the current
    // thread here.
    let Some(tstate) = super::current_thread_state(cfg, tid) else {
        return;
    };
    let Some(mut entry) = EVENTS.reserve::<SignalFatalStackEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: the reserved record's frames.
    let frames = unsafe { core::ptr::addr_of_mut!((*event).frames) }.cast::<PyFrameRecord>();
    if !capture_top_of::<FATAL_CAPTURE>(cfg, tstate, frames, Hook::Other) {
        entry.discard(0);
        return;
    }
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        for i in FATAL_CAPTURE..PY_FATAL_DEPTH {
            frames.add(i).write(PyFrameRecord::default());
        }
        core::ptr::addr_of_mut!((*event).header).write(EventHeader {
            kind: EventKind::SignalFatalStack as u32,
            tgid,
            tid,
            _pad: 0,
            ts_ns: bpf_ktime_get_ns(),
        });
        core::ptr::addr_of_mut!((*event).sig).write(sig);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
    }
    // The code objects' names and line tables: reserved after the stack,
    // so userspace has them with it (the drain takes them first), for the
    // process is gone by the time it reads the stack.
    let mut naming = FatalNaming { cfg, tgid, frames };
    repeat::<FATAL_NAMED, _>(&mut naming);
    entry.submit(RB_WAKE_FOR_STACK);
}

/// Submit flags for a record carrying a Python stack: wake the tracer even
/// behind un-woken samples, so it symbolizes the stack while the code
/// objects live (a signal may end the process right after).
pub const RB_WAKE_FOR_STACK: u64 = RB_FORCE_WAKEUP;
