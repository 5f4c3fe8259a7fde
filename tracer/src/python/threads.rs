//! The interpreter's threads: `_PyRuntime.interpreters.head -> threads.head
//! -> next`, each `PyThreadState` with its kernel thread id. BPF gets the
//! resulting tid -> tstate map and reads each thread's current frame itself.

use super::{layout::Offsets, memory::Memory};

/// Bounds on the walks: a corrupt or racing list cannot loop forever.
const MAX_INTERPRETERS: usize = 64;
const MAX_THREADS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState {
    pub tstate: u64,
    /// `pthread_t` (the address of glibc's `struct pthread`).
    pub pthread: u64,
    /// Kernel tid, when known.
    pub tid: Option<u32>,
}

/// Every thread state of every interpreter. Stops quietly at unreadable
/// memory: the list may be changing under us; the next refresh fixes it.
pub fn thread_states(mem: &dyn Memory, o: &Offsets, runtime: u64) -> Vec<ThreadState> {
    let mut out = Vec::new();
    let Ok(mut interp) = mem.u64(runtime.wrapping_add(o.runtime_interpreters_head)) else {
        return out;
    };
    for _ in 0..MAX_INTERPRETERS {
        if interp == 0 {
            break;
        }
        let mut tstate = mem
            .u64(interp.wrapping_add(o.interp_threads_head))
            .unwrap_or(0);
        for _ in 0..MAX_THREADS {
            if tstate == 0 || out.len() >= MAX_THREADS {
                break;
            }
            let pthread = mem
                .u64(tstate.wrapping_add(o.tstate_thread_id))
                .unwrap_or(0);
            let tid = o
                .tstate_native_thread_id
                .and_then(|off| mem.u32(tstate.wrapping_add(off)).ok())
                .filter(|&t| t != 0);
            out.push(ThreadState {
                tstate,
                pthread,
                tid,
            });
            tstate = mem.u64(tstate.wrapping_add(o.tstate_next)).unwrap_or(0);
        }
        interp = mem.u64(interp.wrapping_add(o.interp_next)).unwrap_or(0);
    }
    out
}

/// The addresses of thread `tstate`'s frames, innermost first, at most `max`.
pub fn frame_addresses(mem: &dyn Memory, o: &Offsets, tstate: u64, max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut frame = mem.u64(tstate.wrapping_add(o.tstate_frame)).unwrap_or(0);
    if let Some(off) = o.cframe_current_frame {
        frame = if frame == 0 {
            0
        } else {
            mem.u64(frame.wrapping_add(off)).unwrap_or(0)
        };
    }
    while frame != 0 && out.len() < max {
        out.push(frame);
        frame = mem.u64(frame.wrapping_add(o.frame_back)).unwrap_or(0);
    }
    out
}

/// The walk the BPF sampler does, in userspace: thread `tstate`'s frames,
/// innermost first, at most `max` (for checking a layout on live memory,
/// and for the snapshot tests).
pub fn walk_frames(
    mem: &dyn Memory,
    o: &Offsets,
    tstate: u64,
    max: usize,
) -> Vec<tracer_common::PyFrameRecord> {
    frame_addresses(mem, o, tstate, max)
        .into_iter()
        .map(|frame| {
            let code = mem.u64(frame.wrapping_add(o.frame_code)).unwrap_or(0);
            let mut instr =
                mem.u64(frame.wrapping_add(o.frame_instr)).unwrap_or(0) & 0x00ff_ffff_ffff_ffff;
            if let Some(off) = o.frame_owner {
                let mut owner = [0u8];
                if mem.read(frame.wrapping_add(off), &mut owner).is_ok() {
                    instr |= (owner[0] as u64) << 56;
                }
            }
            tracer_common::PyFrameRecord { code, instr }
        })
        .collect()
}

/// glibc's `struct pthread` holds the kernel tid at a fixed offset (0x2d0 on
/// x86-64 glibc 2.x). Rather than trust one libc, find it: the main thread's
/// `struct pthread` holds the process id. Returns the offset.
pub fn find_pthread_tid_offset(mem: &dyn Memory, main_pthread: u64, pid: u32) -> Option<u64> {
    let raw = mem.read_vec(main_pthread, 0x800).ok()?;
    let candidates: Vec<u64> = (0..raw.len() / 4)
        .filter(|i| raw[i * 4..i * 4 + 4] == pid.to_le_bytes())
        .map(|i| i as u64 * 4)
        .collect();
    // tid and pid sat next to each other in older glibc; the tid comes first.
    if candidates.contains(&0x2d0) {
        return Some(0x2d0);
    }
    candidates.into_iter().find(|&off| off >= 0x100)
}

/// Fills `tid` for versions without `native_thread_id` (<= 3.10).
pub fn resolve_tids(
    mem: &dyn Memory,
    pid: u32,
    states: &mut [ThreadState],
    tid_offset: &mut Option<u64>,
) {
    if states.iter().all(|s| s.tid.is_some()) {
        return;
    }
    if tid_offset.is_none() {
        // The main thread's state is the oldest one: last in the list.
        if let Some(main) = states.last() {
            *tid_offset = find_pthread_tid_offset(mem, main.pthread, pid);
        }
    }
    let Some(off) = *tid_offset else {
        return;
    };
    for state in states
        .iter_mut()
        .filter(|s| s.tid.is_none() && s.pthread != 0)
    {
        state.tid = mem
            .u32(state.pthread.wrapping_add(off))
            .ok()
            .filter(|&t| t != 0);
    }
}
