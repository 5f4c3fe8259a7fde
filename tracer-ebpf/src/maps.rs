//! Maps and globals shared by every program, plus the helpers that use them.

use aya_ebpf::{
    Global,
    helpers::bpf_get_current_pid_tgid,
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use tracer_common::{Config, drops};

/// Load-time configuration (tracepoint offsets, flags), set by userspace.
#[unsafe(no_mangle)]
pub static CONFIG: Global<Config> = Global::new(Config {
    task_state_mask: 0xff,
    follow_children: 1,
    // SAFETY: Config is plain integers; all-zero offsets are valid placeholders
    // that userspace always overwrites at load time.
    ..unsafe { core::mem::zeroed() }
});

/// The traced processes (key: tgid). Userspace seeds it; `sched_process_fork`
/// adds children in the kernel so none is missed while userspace catches up.
#[map]
pub static TRACED: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

/// Threads of traced processes other than the leader (key: tid, value: tgid).
/// Filled from `sched_process_fork` (and by userspace for threads that existed
/// at attach) so a signal sent to one thread can be attributed to its process.
#[map]
pub static TASKS: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

/// Event records for userspace (files opened, processes forked / exited).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);

/// What the kernel side could not record, by `tracer_common::drops` index.
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(drops::COUNT, 0);

#[inline(always)]
pub fn config() -> Config {
    CONFIG.load()
}

/// `(tgid, tid)` of the current task if its process is traced.
#[inline(always)]
pub fn current_if_traced() -> Option<(u32, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if unsafe { TRACED.get(tgid) }.is_some() {
        Some((tgid, pid_tgid as u32))
    } else {
        None
    }
}

/// The tgid of task `pid` if it belongs to a traced process (the leader is
/// keyed in `TRACED`, other threads in `TASKS`).
#[inline(always)]
pub fn traced_tgid_of(pid: u32) -> Option<u32> {
    if pid == 0 {
        return None;
    }
    if unsafe { TRACED.get(pid) }.is_some() {
        return Some(pid);
    }
    unsafe { TASKS.get(pid) }.copied()
}

#[inline(always)]
pub fn count_drop(index: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(index) {
        // Per-CPU slot: no other CPU writes it, a plain add is enough.
        unsafe { *counter += 1 };
    }
}
