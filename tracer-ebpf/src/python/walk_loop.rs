//! The sampler's walk on kernels with `bpf_loop` (5.17+): one step per
//! frame ([`walk_frame`]), checked once by the verifier, straight into a
//! ring buffer record (with the native stack where the process is
//! unwound). Kernels without it walk in tail-called pieces
//! (`walk_pieces`).

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::PerfEventContext};
use tracer_common::{EventKind, PY_MAX_DEPTH, PyConfig, PyFrameRecord, PySample, drops};

use super::{Cursor, FrameBuf, Walked, walk_frame, write_sample_fields, write_walk_end};
use crate::maps::count_drop;

/// The sampler's frame walk, on its stack, for `bpf_loop`.
#[repr(C)]
struct Walk {
    cfg: *const PyConfig,
    /// The record's frames.
    frames: *mut PyFrameRecord,
    /// This CPU's `PY_CURSOR`.
    state: *mut SamplerWalk,
}

/// The `bpf_loop` walk's state, in `PY_CURSOR`.
#[repr(C)]
struct SamplerWalk {
    cursor: Cursor,
    buf: FrameBuf,
}

/// Where the `bpf_loop` walk is, in a map value rather than on the
/// sampler's stack: the verifier follows a value on the stack exactly,
/// step after step (the count of names sent, 0 to 16, made it check the
/// step sixteen times over, ~40 k instructions at every start), and knows
/// nothing of a map value's, so it checks the step once.
#[map]
static PY_CURSOR: PerCpuArray<SamplerWalk> = PerCpuArray::with_max_entries(1, 0);

/// One step of the sampler's walk: a `bpf_loop` callback, which the
/// verifier checks once rather than once per frame (the unrolled 128-frame
/// walk took it ~90 ms at every start, the longest part of loading).
#[inline(never)]
extern "C" fn walk_step(index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `ctx` is the `Walk` python_sample passed to bpf_loop.
    let walk = unsafe { &mut *ctx.cast::<Walk>() };
    // SAFETY: a map value that outlives the program run.
    let cfg = unsafe { &*walk.cfg };
    // SAFETY: this CPU's value, used by this sampler run only (a program
    // does not interrupt itself on a CPU).
    let state = unsafe { &mut *walk.state };
    if walk_frame(cfg, walk.frames, &mut state.cursor, index, &mut state.buf) {
        0
    } else {
        1
    }
}

/// Walks the stack straight into a ring buffer record: with `bpf_loop`.
#[inline(always)]
pub(super) fn sample(ctx: &PerfEventContext, walked: &Walked) {
    use crate::maps::{EVENTS, RB_FORCE_WAKEUP, RB_NO_WAKEUP};
    use tracer_common::PyNativeSample;
    // A process unwound natively too: the bigger record, both stacks.
    if let Some(mappings) = crate::native::mappings_of(walked.tgid) {
        let Some(mut entry) = EVENTS.reserve::<PyNativeSample>(0) else {
            count_drop(drops::PY_SAMPLES);
            return;
        };
        let record = entry.as_mut_ptr();
        // SAFETY: fields of the reserved record, written in place.
        unsafe {
            fill_sample(
                core::ptr::addr_of_mut!((*record).sample),
                walked,
                EventKind::PyNativeSample,
            );
            let native = core::ptr::addr_of_mut!((*record).native).cast::<u64>();
            let (depth, end) = crate::native::unwind_user(ctx, mappings, native);
            core::ptr::addr_of_mut!((*record).native_depth).write(depth);
            core::ptr::addr_of_mut!((*record).native_end).write(end);
            // Code in no mapping the unwinder knows: a library loaded a
            // moment ago (an import). Userspace reads the mappings again now
            // rather than at its next look (~50 ms of cut stacks).
            let wake = if end == tracer_common::native_end::NO_MAPPING {
                RB_FORCE_WAKEUP
            } else {
                RB_NO_WAKEUP
            };
            entry.submit(wake);
        }
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<PySample>(0) else {
        count_drop(drops::PY_SAMPLES);
        return;
    };
    // SAFETY: the reserved record.
    unsafe { fill_sample(entry.as_mut_ptr(), walked, EventKind::PySample) };
    entry.submit(RB_NO_WAKEUP);
}

/// A page fault's sample: the stack with the process's resident pages,
/// read after the walk (no native stack: where memory grew is told by the
/// Python line).
#[inline(always)]
pub(super) fn fault(_ctx: &PerfEventContext, walked: &Walked, rss_pages: impl FnOnce() -> u64) {
    use crate::maps::{EVENTS, RB_NO_WAKEUP};
    use tracer_common::PyFaultSample;
    let Some(mut entry) = EVENTS.reserve::<PyFaultSample>(0) else {
        count_drop(drops::PY_SAMPLES);
        return;
    };
    let record = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        fill_sample(
            core::ptr::addr_of_mut!((*record).sample),
            walked,
            EventKind::PyFaultSample,
        );
        core::ptr::addr_of_mut!((*record).rss_pages).write(rss_pages());
    }
    entry.submit(RB_NO_WAKEUP);
}

/// Walks the Python stack into a reserved sample record and fills its
/// header (`kind`: the record it is part of).
#[inline(always)]
unsafe fn fill_sample(sample: *mut PySample, walked: &Walked, kind: EventKind) {
    // SAFETY: the caller's record.
    unsafe { write_sample_fields(sample, walked, kind) };
    let Some(state) = PY_CURSOR.get_ptr_mut(0) else {
        // Not met (index 0 of a per-CPU array): an empty, torn record.
        let mut torn = core::mem::MaybeUninit::<Cursor>::uninit();
        // SAFETY: the stack value, every field then written.
        let mut torn = unsafe {
            Cursor::start(torn.as_mut_ptr(), walked);
            torn.assume_init()
        };
        torn.frame = 0;
        torn.torn = 1;
        // SAFETY: the caller's record.
        unsafe { write_walk_end(sample, &torn) };
        return;
    };
    // SAFETY: this CPU's value (see `walk_step`).
    unsafe { Cursor::start(core::ptr::addr_of_mut!((*state).cursor), walked) };
    let mut walk = Walk {
        cfg: walked.cfg,
        // SAFETY: a field of the reserved record.
        frames: unsafe { core::ptr::addr_of_mut!((*sample).frames) }.cast::<PyFrameRecord>(),
        state,
    };
    // ``walk`` outlives the loop.
    crate::steps::repeat_with_bpf_loop!(
        PY_MAX_DEPTH as u32,
        walk_step,
        core::ptr::addr_of_mut!(walk)
    );
    // SAFETY: the caller's record; this CPU's value.
    unsafe { write_walk_end(sample, &(*state).cursor) };
}
