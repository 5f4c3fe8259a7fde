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
    offsets: tracer_common::TracepointOffsets {
        switch_prev_pid: 0,
        switch_prev_state: 0,
        switch_next_pid: 0,
        fork_parent_pid: 0,
        fork_child_pid: 0,
        exit_pid: 0,
        exit_group_dead: 0,
        read_fd: 0,
        read_count: 0,
        pread_fd: 0,
        pread_count: 0,
        readv_fd: 0,
        readv_vec: 0,
        readv_vlen: 0,
        preadv_fd: 0,
        preadv_vec: 0,
        preadv_vlen: 0,
        openat_filename: 0,
        close_fd: 0,
        exit_ret: 0,
    },
    task_state_mask: 0xff,
    follow_children: 1,
    _pad: 0,
});

/// The traced processes (key: tgid). Userspace seeds it; `sched_process_fork`
/// adds children in the kernel so none is missed while userspace catches up.
#[map]
pub static TRACED: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

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

#[inline(always)]
pub fn count_drop(index: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(index) {
        // Per-CPU slot: no other CPU writes it, a plain add is enough.
        unsafe { *counter += 1 };
    }
}
