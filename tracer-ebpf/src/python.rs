//! CPU sampling of Python stacks: a CPU-clock `perf_event` program (one per
//! online CPU) that, when it interrupts a thread of a traced process, looks up
//! the thread's `PyThreadState` (published by userspace in `PY_THREADS`),
//! reads its current frame and walks `f_back` / `previous` for at most
//! `PY_MAX_DEPTH` frames, writing code-object pointers and instruction
//! offsets straight into a ring buffer slot (nothing large on the BPF stack).
//! Userspace symbolizes the code objects.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{map, perf_event},
    maps::{Array, HashMap, PerCpuArray},
    programs::PerfEventContext,
};
use tracer_common::{
    EventHeader, EventKind, PY_MAX_DEPTH, PY_NO_OFFSET, PyConfig, PyFrameRecord, PySample, drops,
    py_stats,
};

use crate::maps::{EVENTS, TRACED, count_drop};

/// Frame-walk offsets for the traced interpreter (index 0), set by userspace.
#[map]
pub static PY_CONFIG: Array<PyConfig> = Array::with_max_entries(1, 0);

/// Native thread id -> address of its `PyThreadState`, refreshed by userspace
/// from the interpreter's thread list.
#[map]
pub static PY_THREADS: HashMap<u32, u64> = HashMap::with_max_entries(16384, 0);

/// Sampling counters, by `tracer_common::py_stats` index.
#[map]
pub static PY_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(py_stats::COUNT, 0);

/// `BPF_RB_NO_WAKEUP`: samples are drained on userspace's own tick, so a
/// 999 Hz sampler does not wake the tracer 999 times a second.
const RB_NO_WAKEUP: u64 = 1;

#[inline(always)]
fn count(index: u32) {
    if let Some(counter) = PY_STATS.get_ptr_mut(index) {
        unsafe { *counter += 1 };
    }
}

#[inline(always)]
fn read_u64(addr: u64) -> u64 {
    if addr == 0 {
        return 0;
    }
    unsafe { bpf_probe_read_user(addr as *const u64) }.unwrap_or(0)
}

#[perf_event]
pub fn python_sample(_ctx: PerfEventContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    if unsafe { TRACED.get(tgid) }.is_none() {
        return 0;
    }
    let Some(cfg) = PY_CONFIG.get(0) else {
        return 0;
    };
    if cfg.enabled == 0 {
        return 0;
    }
    count(py_stats::SAMPLES);
    let Some(&tstate) = (unsafe { PY_THREADS.get(tid) }) else {
        count(py_stats::NO_THREAD_STATE);
        return 0;
    };
    let mut frame = read_u64(tstate + cfg.tstate_frame as u64);
    if cfg.cframe_current_frame != PY_NO_OFFSET {
        frame = read_u64(frame + cfg.cframe_current_frame as u64);
    }
    if frame == 0 {
        count(py_stats::NO_FRAME);
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<PySample>(0) else {
        count_drop(drops::PY_SAMPLES);
        return 0;
    };
    let sample = entry.as_mut_ptr();
    let back = cfg.frame_back as u64;
    let code_off = cfg.frame_code as u64;
    let instr_off = cfg.frame_instr as u64;
    let owner_off = cfg.frame_owner;
    let mut depth: u32 = 0;
    for i in 0..PY_MAX_DEPTH {
        if frame == 0 {
            break;
        }
        let code = read_u64(frame + code_off);
        let mut instr = read_u64(frame + instr_off) & 0x00ff_ffff_ffff_ffff;
        if owner_off != PY_NO_OFFSET {
            let owner: u8 = unsafe { bpf_probe_read_user((frame + owner_off as u64) as *const u8) }
                .unwrap_or(0);
            instr |= (owner as u64) << 56;
        }
        // SAFETY: i < PY_MAX_DEPTH, inside the reserved record.
        unsafe {
            core::ptr::addr_of_mut!((*sample).frames)
                .cast::<PyFrameRecord>()
                .add(i)
                .write(PyFrameRecord { code, instr });
        }
        depth = i as u32 + 1;
        frame = read_u64(frame + back);
    }
    unsafe {
        core::ptr::addr_of_mut!((*sample).header).write(EventHeader {
            kind: EventKind::PySample as u32,
            tgid,
            tid,
            _pad: 0,
            ts_ns: bpf_ktime_get_ns(),
        });
        core::ptr::addr_of_mut!((*sample).depth).write(depth);
        core::ptr::addr_of_mut!((*sample).truncated).write(u32::from(frame != 0));
    }
    entry.submit(RB_NO_WAKEUP);
    0
}
