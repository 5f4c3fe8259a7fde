//! Process lifecycle: children of traced processes are traced from their
//! first instruction (added to `TRACED` here, in the kernel), and exits are
//! reported so userspace knows when a process is gone.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{EventKind, ProcessEvent, drops};

use crate::maps::{EVENTS, TRACED, config, count_drop, current_if_traced};

#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let cfg = config();
    if cfg.follow_children == 0 {
        return 0;
    }
    // Runs in the parent's context.
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let Ok(child) = (unsafe { ctx.read_at::<i32>(cfg.offsets.fork_child_pid as usize) }) else {
        return 0;
    };
    // New threads fire this too; their tid never matches a tgid lookup, so the
    // extra entry is harmless. Userspace tells threads from processes.
    if TRACED.insert(child as u32, 1u8, 0).is_err() {
        count_drop(drops::TABLES);
    }
    emit(EventKind::ProcessForked, tgid, tid, child as u32, tgid);
    crate::python::fork_stack(tgid, tid);
    0
}

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let group_dead =
        unsafe { ctx.read_at::<u8>(config().offsets.exit_group_dead as usize) }.unwrap_or(0);
    emit(EventKind::ProcessExited, tgid, tid, tid, group_dead as u32);
    if group_dead != 0 {
        let _ = TRACED.remove(tgid);
    }
    0
}

#[inline(always)]
fn emit(kind: EventKind, tgid: u32, tid: u32, pid: u32, arg: u32) {
    let Some(mut entry) = EVENTS.reserve::<ProcessEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    entry.write(ProcessEvent {
        header: tracer_common::EventHeader {
            kind: kind as u32,
            tgid,
            tid,
            _pad: 0,
            ts_ns: unsafe { bpf_ktime_get_ns() },
        },
        pid,
        arg,
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(0);
}
