//! The sampler's walk on kernels without `bpf_loop` (before 5.17): the
//! 128-frame walk as one bounded loop is more than their verifier takes
//! (over a million instructions), so it is cut into pieces of
//! [`FRAMES_PER_PIECE`] frames, each a program of its own chained to the
//! next by a tail call (`python_walk`, put in [`PY_WALK_PIECES`] by
//! userspace), as the OpenTelemetry eBPF profiler walks Python stacks.
//! A ring buffer reservation does not survive a tail call: the record is
//! built in a per-CPU map and copied to `EVENTS` by the last piece. The
//! frames are read by the same [`walk_frame`] as with `bpf_loop`, and the
//! record is the same `PySample`.

use aya_ebpf::{
    macros::{map, perf_event},
    maps::{PerCpuArray, ProgramArray},
    programs::PerfEventContext,
};
use tracer_common::{EventKind, PY_MAX_DEPTH, PyConfig, PyFaultSample, PySample, drops};

use super::{Cursor, FrameBuf, Walked, config_of, walk_frame, write_sample_fields, write_walk_end};
use crate::maps::{EVENTS, RB_NO_WAKEUP, count_drop};

/// Frames read per piece: 16 pieces for `PY_MAX_DEPTH`, well inside the
/// 32 tail calls a program may chain, each piece small for the verifier.
const FRAMES_PER_PIECE: usize = 8;

const _: () = assert!(PY_MAX_DEPTH / FRAMES_PER_PIECE < 32);

/// A walk between its pieces: the record being built and where it is.
/// A page fault's record has the sample first (`PyFaultSample`): the
/// last piece sends the one its kind says.
#[repr(C)]
struct PieceWalk {
    record: PyFaultSample,
    cursor: Cursor,
}

/// This CPU's walk (a sampler tick runs to its end on one CPU).
#[map]
static PY_WALK: PerCpuArray<PieceWalk> = PerCpuArray::with_max_entries(1, 0);

/// Slot 0: `python_walk`, the program of every piece after the first.
#[map]
static PY_WALK_PIECES: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// A sample's walk: see [`start`].
#[inline(always)]
pub(super) fn sample(ctx: &PerfEventContext, walked: &Walked) {
    start(ctx, walked, None);
}

/// A page fault's sample: the stack with the process's resident pages.
#[inline(always)]
pub(super) fn fault(ctx: &PerfEventContext, walked: &Walked, rss_pages: impl FnOnce() -> u64) {
    start(ctx, walked, Some(rss_pages()));
}

/// Starts the walk of the thread's stack at its current frame: the
/// record's fields, then the first piece. `fault_rss`: a page fault's
/// sample, with the process's resident pages.
#[inline(always)]
fn start(ctx: &PerfEventContext, walked: &Walked, fault_rss: Option<u64>) {
    let Some(walk) = PY_WALK.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's value; no other program on this CPU uses it
    // before the walk's last piece.
    let walk = unsafe { &mut *walk };
    let kind = match fault_rss {
        Some(rss_pages) => {
            walk.record.rss_pages = rss_pages;
            EventKind::PyFaultSample
        }
        None => EventKind::PySample,
    };
    // SAFETY: the map value's record.
    unsafe { write_sample_fields(&mut walk.record.sample, walked, kind) };
    // SAFETY: the map value's cursor.
    unsafe { Cursor::start(&mut walk.cursor, walked) };
    piece(ctx, walk, walked.cfg);
}

/// Every piece after the first: the walk taken up where the one before
/// stopped.
#[perf_event]
pub fn python_walk(ctx: PerfEventContext) -> u32 {
    let Some(walk) = PY_WALK.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's value, left by the piece that tail-called this one.
    let walk = unsafe { &mut *walk };
    // The process's layout, looked up again (no pointer survives a tail
    // call); gone since: the process exec'd, its sample with it.
    if let Some(cfg) = config_of(walk.cursor.tgid) {
        piece(&ctx, walk, cfg);
    }
    0
}

/// Reads up to [`FRAMES_PER_PIECE`] frames, then hands over to the next
/// piece, or sends the record when the walk is over. A tail call that
/// fails (no program in the slot, the chain's limit) sends the record as
/// it is, cut.
#[inline(always)]
fn piece(ctx: &PerfEventContext, walk: &mut PieceWalk, cfg: &PyConfig) {
    let frames = walk.record.sample.frames.as_mut_ptr();
    // On this piece's stack: a tail call keeps no step's frame.
    let mut buf = core::mem::MaybeUninit::<FrameBuf>::uninit();
    let mut more = true;
    for _ in 0..FRAMES_PER_PIECE {
        let index = walk.cursor.depth;
        more = walk_frame(cfg, frames, &mut walk.cursor, index, buf.as_mut_ptr());
        if !more {
            break;
        }
    }
    if more {
        // SAFETY: `ctx` is this program's context; on success this does
        // not return.
        unsafe { PY_WALK_PIECES.tail_call(ctx, 0) };
    }
    // SAFETY: the map value's record.
    unsafe { write_walk_end(&mut walk.record.sample, &walk.cursor) };
    let sent = if walk.record.sample.header.kind == EventKind::PyFaultSample as u32 {
        EVENTS.output::<PyFaultSample>(&walk.record, RB_NO_WAKEUP)
    } else {
        EVENTS.output::<PySample>(&walk.record.sample, RB_NO_WAKEUP)
    };
    if sent.is_err() {
        count_drop(drops::PY_SAMPLES);
    }
}
