//! The GIL, read from the interpreter's own state: per sample, whether the
//! sampled thread held it (`locked` and `last_holder` of the process's
//! `_gil_runtime_state`); per thread, the time it spent in futex waits on
//! the GIL's condition variables and mutexes (`take_gil` waits in
//! `pthread_cond_timedwait(&gil->cond, &gil->mutex)`, 5 ms at a time),
//! summed here in `PY_GIL_WAITS` (a row per thread, not a record per wait),
//! and the time each take-wait lasted by the top of the Python stack it
//! waited in (`PY_EVENT_STACKS`, kind `GIL_WAIT`).

use aya_ebpf::{
    helpers::bpf_probe_read_user,
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use tracer_common::{
    MAX_THREAD_ROWS, PY_EVENT_DEPTH, PyConfig, PyEventKey, PyGilThread, PyGilWait, drops, py_event,
    py_gil,
};

use super::{HOOKS, Hook, bump, capture_top, config_of, read_u64};
use crate::maps::{config, count_drop, current_if_traced, read_reg};

/// A thread inside a futex wait on its process's GIL.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GilWaiting {
    /// The stack it waits in; `key.file_id` 1: a hand-off (switch) wait.
    key: PyEventKey,
    /// When it went off CPU inside this wait (0: on CPU).
    off_since: u64,
    /// Its time off CPU inside this wait so far: the wait's figure (the
    /// syscall's own entry and exit, on CPU, are not waiting).
    off_ns: u64,
}

/// Threads in a futex wait on their process's GIL (key: tid): a new entry
/// at every wait, allocated on insert as `PY_SLEEPING`'s are.
#[map]
static PY_GIL_WAITING: HashMap<u32, GilWaiting> =
    HashMap::with_max_entries(MAX_THREAD_ROWS, crate::maps::ALLOCATE_ON_INSERT);

/// Where an entry of `PY_GIL_WAITING` is built: a slot per [`Hook`].
#[map]
static PY_GIL_SCRATCH: PerCpuArray<GilWaiting> = PerCpuArray::with_max_entries(HOOKS, 0);

/// Each thread's GIL waits, summed.
#[map]
pub static PY_GIL_WAITS: HashMap<PyGilThread, PyGilWait> =
    HashMap::with_max_entries(MAX_THREAD_ROWS, crate::maps::ALLOCATE_ON_INSERT);

/// `FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME`: not part of the command.
const FUTEX_FLAGS: u64 = 128 | 256;
/// `FUTEX_WAIT`, `FUTEX_WAIT_BITSET` (glibc's condition variable waits
/// and mutex locks); wakes and requeues return at once and are not waits.
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;

/// [`py_gil`]: whether the thread whose state is `tstate` holds the GIL now.
#[inline(always)]
pub fn held(cfg: &PyConfig, tstate: u64) -> u32 {
    if cfg.gil == 0 {
        return py_gil::UNKNOWN;
    }
    let at = cfg.gil + cfg.gil_locked as u64;
    let Ok(locked) = (unsafe { bpf_probe_read_user(at as *const u32) }) else {
        return py_gil::UNKNOWN;
    };
    if locked != 0 && read_u64(cfg.gil + cfg.gil_holder as u64) == tstate {
        py_gil::HELD
    } else {
        py_gil::NOT_HELD
    }
}

/// Thread `tid` went to sleep at `now`: true when inside a futex wait on
/// its GIL, a sleep counted as a GIL wait and not among the other sleeps.
#[inline(always)]
pub fn went_off_cpu(tid: u32, now: u64) -> bool {
    let Some(slot) = PY_GIL_WAITING.get_ptr_mut(&tid) else {
        return false;
    };
    // SAFETY: a map value only this thread's switches and syscalls write.
    unsafe { (*slot).off_since = now };
    true
}

/// Thread `tid` runs again at `now`: the time since it went off CPU inside
/// a GIL wait is waiting time.
#[inline(always)]
pub fn back_on_cpu(tid: u32, now: u64) {
    let Some(slot) = PY_GIL_WAITING.get_ptr_mut(&tid) else {
        return;
    };
    // SAFETY: as in went_off_cpu.
    let slot = unsafe { &mut *slot };
    if slot.off_since != 0 {
        slot.off_ns += now.saturating_sub(slot.off_since);
        slot.off_since = 0;
    }
}

/// `sys_enter` of `futex(uaddr, op, ...)`: a traced thread starts waiting
/// on an address inside its process's GIL.
#[inline(always)]
pub fn enter_futex(regs: *const u8, hook: Hook) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let Some(cfg) = config_of(tgid) else {
        return;
    };
    if cfg.gil == 0 {
        return;
    }
    let Some(uaddr) = read_reg(regs, config!(regs.arg1)) else {
        return;
    };
    if uaddr < cfg.gil + cfg.gil_take as u64 || uaddr >= cfg.gil + cfg.gil_end as u64 {
        return;
    }
    let cmd = read_reg(regs, config!(regs.arg2)).unwrap_or(u64::MAX) & !FUTEX_FLAGS;
    if cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
        return;
    }
    let switch = uaddr >= cfg.gil + cfg.gil_switch as u64;
    let Some(scratch) = PY_GIL_SCRATCH.get_ptr_mut(hook as u32) else {
        return;
    };
    let wait = unsafe { &mut *scratch };
    wait.key.tgid = tgid;
    wait.key.kind = py_event::GIL_WAIT;
    wait.key.file_id = u64::from(switch);
    // The line it waits at, for take waits (a hand-off wait is the
    // holder's, at the line it was asked to drop the GIL at).
    if switch || !capture_top::<PY_EVENT_DEPTH>(cfg, tid, wait.key.frames.as_mut_ptr(), hook) {
        wait.key.frames = Default::default();
    }
    wait.off_since = 0;
    wait.off_ns = 0;
    if PY_GIL_WAITING.insert(&tid, &*wait, 0).is_err() {
        count_drop(drops::TABLES);
    }
}

/// `sys_exit` of `futex`: a GIL wait of a traced thread ended.
#[inline(always)]
pub fn exit_futex() {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let Some(slot) = PY_GIL_WAITING.get_ptr(&tid) else {
        return;
    };
    // SAFETY: a map value; only this thread writes its slot.
    let slot = unsafe { &*slot };
    let waited = slot.off_ns;
    if waited == 0 {
        // It took the lock without sleeping: no wait.
        let _ = PY_GIL_WAITING.remove(&tid);
        return;
    }
    let switch = slot.key.file_id != 0;
    let key = PyGilThread { tgid, tid };
    if let Some(row) = PY_GIL_WAITS.get_ptr_mut(&key) {
        // SAFETY: a map value only this thread writes.
        let row = unsafe { &mut *row };
        if switch {
            row.switch_ns += waited;
            row.switch_waits += 1;
        } else {
            row.wait_ns += waited;
            row.waits += 1;
        }
    } else {
        let row = if switch {
            PyGilWait {
                switch_ns: waited,
                switch_waits: 1,
                ..PyGilWait::default()
            }
        } else {
            PyGilWait {
                wait_ns: waited,
                waits: 1,
                ..PyGilWait::default()
            }
        };
        if PY_GIL_WAITS.insert(&key, &row, 0).is_err() {
            count_drop(drops::TABLES);
        }
    }
    if !switch && slot.key.frames[0].code != 0 {
        bump(&slot.key, waited);
    }
    let _ = PY_GIL_WAITING.remove(&tid);
}

/// Thread `tid` exited (perhaps inside a wait): its id may be reused.
#[inline(always)]
pub fn forget_thread(tid: u32) {
    let _ = PY_GIL_WAITING.remove(&tid);
}

/// Thread `tid` of `tgid` exited: in the continuous modes, which report
/// no GIL figures, its row goes (the table holds live threads only); a
/// one-off trace keeps it for the report.
#[inline(always)]
pub fn thread_exited(tgid: u32, tid: u32) {
    if config!(thread_rows) == 0 {
        let _ = PY_GIL_WAITS.remove(&PyGilThread { tgid, tid });
    }
}
