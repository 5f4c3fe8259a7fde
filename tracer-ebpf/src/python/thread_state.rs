//! A thread's `PyThreadState`: the entry userspace published, checked
//! against the thread's TLS base, else found by the kernel side in the
//! interpreters' thread lists (a thread started a moment ago, a C thread
//! attached for a call) and entered for the next events.

use aya_ebpf::helpers::bpf_get_current_task;
use tracer_common::{PY_NO_OFFSET, PyConfig, drops};

use super::{PY_THREADS, has_own_memory, read_u64};
use crate::{
    maps::{config, count_drop, read_kernel},
    steps::{BPF_LOOP, Step, repeat},
};

/// Thread states looked at, at most, for a thread the sampler has no entry
/// for (all interpreters' lists, one after the other). Without `bpf_loop`,
/// a plain loop the verifier walks state by state: 32, enough for a
/// process's usual threads; a thread further down its list is sampled
/// once userspace publishes it (its next look).
const MAX_STATES_SEARCHED: usize = if BPF_LOOP { 256 } else { 32 };

/// A search of the interpreters' thread lists for the state whose
/// `thread_id` is the current thread's TLS base. Several may have it:
/// CPython 3.8-3.11 give a state made for a thread to come (`Thread.start`
/// before the new thread runs, a C extension's `PyThreadState_New`) its
/// maker's id until that thread binds it, and the list is newest first.
/// The one running a frame is the thread's; none running one, the first.
///
/// Five words: with a sixth LLVM zeroes the struct with a call to `memset`,
/// which a program that tail-calls must not make on arm64's 5.10
/// (`stack_depth.rs` checks it). So the search ends on the state running a
/// frame with `tstate` at it and `interp` at 0, which no other end has
/// (the lists done: `tstate` 0; the steps done: `interp` not 0).
#[repr(C)]
struct Search {
    cfg: *const PyConfig,
    tls: u64,
    interp: u64,
    tstate: u64,
    /// The first state with the thread's id.
    first: u64,
}

impl Search {
    /// The state running a frame the search ended on.
    fn found(&self) -> u64 {
        if self.interp == 0 { self.tstate } else { 0 }
    }
}

impl Step for Search {
    /// One state (or interpreter) of [`current_thread_state`]'s search;
    /// false when the search is over.
    #[inline(always)]
    fn step(&mut self, _index: u64) -> bool {
        search_once(self)
    }
}

#[inline(always)]
fn search_once(search: &mut Search) -> bool {
    // SAFETY: a map value that outlives the program run.
    let cfg = unsafe { &*search.cfg };
    if search.tstate == 0 {
        // This interpreter's list is done: the state it held, else the
        // next interpreter's list.
        if search.first != 0 {
            return false;
        }
        search.interp = read_u64(search.interp + cfg.interp_next as u64);
        if search.interp == 0 {
            return false;
        }
        search.tstate = read_u64(search.interp + cfg.interp_threads_head as u64);
        return true;
    }
    if read_u64(search.tstate + cfg.tstate_thread_id as u64) == search.tls {
        if search.first == 0 {
            search.first = search.tstate;
        }
        if current_frame(cfg, search.tstate) != 0 {
            search.interp = 0;
            return false;
        }
    }
    search.tstate = read_u64(search.tstate + cfg.tstate_next as u64);
    true
}

/// The frame thread state `tstate` runs now (0: none).
#[inline(always)]
pub(super) fn current_frame(cfg: &PyConfig, tstate: u64) -> u64 {
    let frame = read_u64(tstate + cfg.tstate_frame as u64);
    if cfg.cframe_current_frame == PY_NO_OFFSET || frame == 0 {
        return frame;
    }
    // 3.11's `cframe` first, then its `current_frame`.
    read_u64(frame + cfg.cframe_current_frame as u64)
}

/// The current thread's TLS base (x86-64 `fsbase`: its `pthread_t`; arm64
/// `tpidr_el0`, past it by `PyConfig::tls_to_thread`), 0 when the
/// kernel's layout does not say where it is.
/// Returned as the thread's state records it: `pthread_self()`, the base
/// less `past_thread`.
#[inline(always)]
fn current_tls(past_thread: u32) -> u64 {
    let offset = config!(structs.task_fsbase);
    if offset == 0 {
        return 0;
    }
    let task = unsafe { bpf_get_current_task() };
    match read_kernel::<u64>(task, offset) {
        Some(base) if base != 0 => base.wrapping_sub(u64::from(past_thread)),
        _ => 0,
    }
}

/// The `PyThreadState` of the current thread `tid`: the entry userspace
/// published (or a fork inherited), checked against the thread's TLS base
/// where that is known (a state freed and its address reused by another
/// thread is not this thread's), else found in the interpreters' thread
/// lists and entered for the next ticks. An entry whose owner cannot be
/// read (0: a faulted read, which a perf event cannot page in) is trusted
/// as before; none is deleted here (every use checks it first; a thread's
/// exit and userspace's refreshes clear the map).
/// None for a thread past `exit_mm()` (see [`has_own_memory`]).
#[inline(always)]
pub(super) fn current_thread_state(cfg: &PyConfig, tid: u32) -> Option<u64> {
    if !has_own_memory() {
        return None;
    }
    // A plain word (0: none), not an `Option`: the verifier refuses a read
    // of a stack slot written on one path only, which an `Option`'s
    // value slot spilled across the search became.
    let entry = unsafe { PY_THREADS.get(&tid) }.copied().unwrap_or(0);
    let tls = if cfg.interpreters_head != 0 && cfg.tls_to_thread != PY_NO_OFFSET {
        current_tls(cfg.tls_to_thread)
    } else {
        0
    };
    if tls == 0 {
        return (entry != 0).then_some(entry);
    }
    if entry != 0 {
        let owner = read_u64(entry + cfg.tstate_thread_id as u64);
        if owner == tls || owner == 0 {
            return Some(entry);
        }
    }
    let interp = read_u64(cfg.interpreters_head);
    let mut search = Search {
        cfg,
        tls,
        interp,
        tstate: read_u64(interp + cfg.interp_threads_head as u64),
        first: 0,
    };
    if interp != 0 {
        repeat::<MAX_STATES_SEARCHED, _>(&mut search);
    }
    let found = search.found();
    if found == 0 {
        // Not entered: the thread's own state may be another, running no
        // frame yet; the next event searches again, until userspace
        // publishes the thread.
        return (search.first != 0).then_some(search.first);
    }
    if PY_THREADS.insert(&tid, &found, 0).is_err() {
        count_drop(drops::TABLES);
    }
    Some(found)
}
