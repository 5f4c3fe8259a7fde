//! Process lifecycle: children of traced processes are traced from their
//! first instruction (added to `TRACED` here, in the kernel); threads are
//! told from processes by the flags of the clone/clone3 call in progress
//! (read from the parent's saved syscall arguments); exec
//! (with its argv), exit (with the exit status), wait4/waitid returns and the
//! final release of a traced zombie are reported to userspace.
//!
//! All of these are rare next to reads: one ring buffer record each.

use aya_ebpf::{
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str_bytes, bpf_probe_read_user,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::HashMap,
    programs::{RawTracePointContext, TracePointContext},
};
use tracer_common::{
    ARGS_LEN, EXIT_STATUS_UNKNOWN, EventKind, ExecEvent, FILENAME_LEN, ProcessEvent, WaitEvent,
    ZombieEntry, drops, process_flags, wait_flags, wait_kind,
};

use crate::maps::{
    EVENTS, TASKS, TRACED, config, count_drop, current_if_traced, current_regs, header,
    read_kernel, read_reg, task_pid, traced_changed,
};
use crate::skips;

const CLONE_THREAD: u64 = 0x0001_0000;
const WNOWAIT: u32 = 0x0100_0000;
/// waitid's `si_code` values for a child that has terminated.
const CLD_EXITED: i32 = 1;
const CLD_DUMPED: i32 = 3;
/// `siginfo_t` (uapi, 64-bit): si_signo, si_errno, si_code, then the union
/// at 16: `_sigchld { pid_t si_pid; uid_t si_uid; int si_status; ... }`.
const SI_CODE_OFF: usize = 8;
const SI_PID_OFF: usize = 16;
const SI_STATUS_OFF: usize = 24;

/// Traced processes that have exited and not been released (key: tgid).
/// A wait4 return in *any* process (init, a subreaper) is checked against it,
/// so whoever reaps a traced zombie is reported.
#[map]
pub static ZOMBIES: HashMap<u32, ZombieEntry> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    skips::first_ran(skips::FORK, relevant);
    forked(|| task_pid(ctx.arg(1)))
}

/// The forks and exits the hooks act on: a traced thread's; and the
/// tracer's check of the hooks' order (`skips`).
#[inline(always)]
fn relevant() -> bool {
    current_if_traced().is_some() || skips::is_order_check_thread()
}

/// `sched:sched_process_fork` as a perf-event tracepoint, where the kernel
/// may preempt a raw tracepoint's run (see `syscalls.rs`): the child's pid
/// from the record, where userspace found it in the event's format.
#[tracepoint]
pub fn sched_process_fork_perf(ctx: TracePointContext) -> i32 {
    if config!(second_copies) != 0 && !skips::first_skipped(skips::FORK, relevant) {
        return 0;
    }
    forked(|| {
        let at = config!(fork_child_pid_at) as usize;
        let pid = unsafe { ctx.read_at::<i32>(at) }.ok()?;
        (pid > 0).then_some(pid as u32)
    })
}

#[inline(always)]
fn forked(child: impl FnOnce() -> Option<u32>) -> i32 {
    // Runs in the parent's context.
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let Some(child) = child() else {
        return 0;
    };
    let thread = creates_thread();
    // The Python line behind every fork/clone of a traced thread (the
    // `subprocess.Popen(...)` / `Thread.start()` line), followed or not,
    // with the child it made. Sent before the fork record, so userspace has
    // the stack when it learns of the child.
    let stack = crate::python::fork_stack(tgid, tid, child, thread);
    if thread {
        if TASKS.insert(child, tgid, 0).is_err() {
            count_drop(drops::LIFECYCLE);
        }
        crate::sched::thread_forked(child, tgid);
        emit(
            EventKind::ProcessForked,
            tgid,
            tid,
            child,
            tgid,
            0,
            process_flags::THREAD | stack,
        );
        return 0;
    }
    if config!(follow_children) == 0 {
        return 0;
    }
    if TRACED.insert(child, 1u8, 0).is_err() {
        count_drop(drops::TABLES);
    }
    traced_changed();
    crate::sched::thread_forked(child, child);
    crate::python::inherit(tgid, tid, child);
    emit(EventKind::ProcessForked, tgid, tid, child, tgid, 0, stack);
    0
}

/// Whether the fork in progress (in the parent's context) makes a thread:
/// `CLONE_THREAD` in clone's first argument, or in `clone_args.flags` for
/// clone3. fork/vfork, and anything unknown, make a process.
#[inline(always)]
fn creates_thread() -> bool {
    let Some(regs) = current_regs() else {
        return false;
    };
    let r = config!(regs);
    let (Some(nr), Some(arg1)) = (read_reg(regs, r.nr), read_reg(regs, r.arg1)) else {
        return false;
    };
    let flags = if nr == config!(syscalls.clone) as u64 {
        arg1
    } else if nr == config!(syscalls.clone3) as u64 {
        // `struct clone_args` (uapi) starts with `__aligned_u64 flags`.
        unsafe { bpf_probe_read_user(arg1 as *const u64) }.unwrap_or(0)
    } else {
        0
    };
    flags & CLONE_THREAD != 0
}

/// `sched_process_exit(struct task_struct *p, bool group_dead)`.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> i32 {
    skips::first_ran(skips::EXIT, relevant);
    skips::thread_exited();
    exited(ctx)
}

#[inline(always)]
fn exited(ctx: RawTracePointContext) -> i32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let group_dead_arg: u64 = ctx.arg(1);
    exiting(tgid, tid, (group_dead_arg & 0xff) as u8)
}

/// `sched_process_exit(struct task_struct *p)`: kernels before 6.16 pass
/// no `group_dead`. `do_exit()` has counted this thread out of
/// `p->signal->live` before the tracepoint: the group is dead when that
/// reads 0, for the first of its threads to see it (two threads exiting
/// at once may both read 0 after the last decrement; the process's
/// zombie row tells the second it is not the last).
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit_no_group_dead(_ctx: RawTracePointContext) -> i32 {
    skips::first_ran(skips::EXIT, relevant);
    skips::thread_exited();
    exiting_group_dead_read()
}

/// `sched:sched_process_exit` as a perf-event tracepoint (see
/// `sched_process_fork_perf`): `group_dead` read as without the argument.
#[tracepoint]
pub fn sched_process_exit_perf(_ctx: TracePointContext) -> i32 {
    skips::thread_exited();
    if config!(second_copies) != 0 && !skips::first_skipped(skips::EXIT, relevant) {
        return 0;
    }
    exiting_group_dead_read()
}

#[inline(always)]
fn exiting_group_dead_read() -> i32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let task = unsafe { bpf_get_current_task() };
    let live = read_kernel::<u64>(task, config!(structs.task_signal))
        .and_then(|signal| read_kernel::<i32>(signal, config!(structs.signal_live)));
    let group_dead = live == Some(0) && unsafe { ZOMBIES.get(&tgid) }.is_none();
    exiting(tgid, tid, u8::from(group_dead))
}

#[inline(always)]
fn exiting(tgid: u32, tid: u32, group_dead: u8) -> i32 {
    let task_exit_code = config!(structs.task_exit_code);
    let mut status = EXIT_STATUS_UNKNOWN;
    if group_dead != 0 && task_exit_code != 0 {
        // do_exit() has stored the status (group exit code, the killing
        // signal, the core-dump bit) in task_struct.exit_code by now.
        let task = unsafe { bpf_get_current_task() } as *const u8;
        let field = task.wrapping_add(task_exit_code as usize) as *const i32;
        if let Ok(code) = unsafe { bpf_probe_read_kernel(field) } {
            status = code as u32;
        }
    }
    if tid != tgid {
        let _ = TASKS.remove(tid);
    }
    crate::sched::thread_exiting(tid, tgid);
    crate::python::forget_thread(tid);
    crate::python::gil::thread_exited(tgid, tid);
    if group_dead != 0 {
        let _ = TRACED.remove(tgid);
        traced_changed();
        crate::python::forget_process(tgid, tid, tid);
        let entry = ZombieEntry {
            exit_ns: unsafe { bpf_ktime_get_ns() },
        };
        if ZOMBIES.insert(tgid, entry, 0).is_err() {
            count_drop(drops::LIFECYCLE);
        }
    }
    let (ns_pid, peak_rss) = if group_dead != 0 {
        (own_ns_pid(), crate::memory::peak_rss_pages())
    } else {
        (0, 0)
    };
    emit_ns(
        EventKind::ProcessExited,
        tgid,
        tid,
        tid,
        group_dead as u32,
        status,
        0,
        ns_pid,
        peak_rss,
    );
    0
}

/// The current process's pid in its own pid namespace, 0 if unknown:
/// `current->group_leader->thread_pid->numbers[level].nr`.
#[inline(always)]
fn own_ns_pid() -> u32 {
    let o = config!(pid_ns);
    if o.valid == 0 {
        return 0;
    }
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let Ok(leader) = (unsafe {
        bpf_probe_read_kernel(task.wrapping_add(o.task_group_leader as usize) as *const u64)
    }) else {
        return 0;
    };
    let leader = leader as *const u8;
    let Ok(pid) = (unsafe {
        bpf_probe_read_kernel(leader.wrapping_add(o.task_thread_pid as usize) as *const u64)
    }) else {
        return 0;
    };
    let pid = pid as *const u8;
    let Ok(level) =
        (unsafe { bpf_probe_read_kernel(pid.wrapping_add(o.pid_level as usize) as *const u32) })
    else {
        return 0;
    };
    // MAX_PID_NS_LEVEL is 32.
    if pid.is_null() || level > 32 {
        return 0;
    }
    let at = o.pid_numbers as usize + level as usize * o.upid_size as usize + o.upid_nr as usize;
    unsafe { bpf_probe_read_kernel(pid.wrapping_add(at) as *const i32) }.map_or(0, |nr| nr as u32)
}

/// Fires for every task the kernel frees (from an RCU callback, so the
/// current task is unrelated): one lookup in the small `ZOMBIES` map.
/// `sched_process_free(struct task_struct *p)`.
#[raw_tracepoint(tracepoint = "sched_process_free")]
pub fn sched_process_free(ctx: RawTracePointContext) -> i32 {
    let Some(pid) = task_pid(ctx.arg(0)) else {
        return 0;
    };
    if unsafe { ZOMBIES.get(pid) }.is_none() {
        return 0;
    }
    let _ = ZOMBIES.remove(pid);
    emit(EventKind::ProcessFreed, 0, 0, pid, 0, 0, 0);
    0
}

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct
/// linux_binprm *bprm)`.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    let Some((tgid, tid)) = current_if_traced().or_else(adopt_on_exec) else {
        return 0;
    };
    let old_pid_arg: u64 = ctx.arg(1);
    let old_pid = old_pid_arg as i32;
    let bprm: u64 = ctx.arg(2);
    crate::python::forget_process(tgid, tid, old_pid as u32);
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
    };
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(EventKind::ProcessExec, tgid, tid);
    event.old_pid = old_pid as u32;
    event.comm = bpf_get_current_comm().unwrap_or_default();
    event.filename_len = 0;
    event.filename[0] = 0;
    event.args_len = 0;
    event.args_truncated = 0;
    capture_args(
        &mut event.args,
        &mut event.args_len,
        &mut event.args_truncated,
    );
    let filename_off = config!(structs.binprm_filename);
    if filename_off != 0
        && let Some(src) = read_kernel::<u64>(bprm, filename_off)
        && src != 0
        && let Ok(name) =
            unsafe { bpf_probe_read_kernel_str_bytes(src as *const u8, &mut event.filename) }
    {
        event.filename_len = (name.len() as u32 + 1).min(FILENAME_LEN as u32);
    }
    entry.submit(0);
    0
}

/// `--all`, `--cgroup`, `--container`: an untraced process that execs in
/// the scope is traced from its new program's first instruction (its exec
/// record tells userspace). Execs are rare: one cgroup lookup each.
#[inline(always)]
fn adopt_on_exec() -> Option<(u32, u32)> {
    let scope = config!(scope);
    let in_scope = scope.all != 0
        || (scope.cgroup_id != 0
            && unsafe { bpf_get_current_ancestor_cgroup_id(scope.cgroup_level as i32) }
                == scope.cgroup_id);
    if !in_scope {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if TRACED.insert(tgid, 1u8, 0).is_err() {
        count_drop(drops::TABLES);
        return None;
    }
    traced_changed();
    Some((tgid, pid_tgid as u32))
}

/// Copies the new image's argv strings (NUL-separated, between
/// `mm->arg_start` and `mm->arg_end`: exec has just written them onto the
/// new stack, so they are resident) into `args`.
#[inline(always)]
fn capture_args(args: &mut [u8; ARGS_LEN], len: &mut u32, truncated: &mut u32) {
    let off = config!(structs);
    if off.task_mm == 0 || off.mm_arg_end == 0 {
        return;
    }
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let Ok(mm) =
        (unsafe { bpf_probe_read_kernel(task.wrapping_add(off.task_mm as usize) as *const u64) })
    else {
        return;
    };
    let mm = mm as *const u8;
    let start =
        unsafe { bpf_probe_read_kernel(mm.wrapping_add(off.mm_arg_start as usize) as *const u64) };
    let end =
        unsafe { bpf_probe_read_kernel(mm.wrapping_add(off.mm_arg_end as usize) as *const u64) };
    let (Ok(start), Ok(end)) = (start, end) else {
        return;
    };
    let total = end.saturating_sub(start);
    // Bounded for the verifier: at most ARGS_LEN - 1 bytes.
    let mut n = total.min(ARGS_LEN as u64 - 1) as u32;
    n &= ARGS_LEN as u32 - 1;
    if n == 0 {
        return;
    }
    let rc = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            args.as_mut_ptr() as *mut core::ffi::c_void,
            n,
            start as *const core::ffi::c_void,
        )
    };
    if rc == 0 {
        *len = n;
        *truncated = u32::from(total > n as u64);
    }
}

/// The wait call the current task is returning from: (address of the
/// status / siginfo, options), read from its saved syscall arguments.
#[inline(always)]
fn wait_args(regs: *const u8, addr_arg: u32, options_arg: u32) -> (u64, u32) {
    let addr = read_reg(regs, addr_arg).unwrap_or(0);
    let options = read_reg(regs, options_arg).unwrap_or(0) as u32;
    (addr, options)
}

/// wait4 returns (from `syscalls.rs`) in every process: a traced caller always gets a record (its
/// wait calls matter even when they reap nothing); any other caller only when
/// it reaped a traced zombie (init, a subreaper).
#[inline(always)]
pub fn exit_wait4(regs: *const u8, ret: i64) {
    let pid = if ret > 0 { ret as u32 } else { 0 };
    if let Some((tgid, tid)) = current_if_traced() {
        // wait4(pid, stat_addr, options, rusage)
        let (stat_addr, options) = wait_args(regs, config!(regs.arg2), config!(regs.arg3));
        let mut event = WaitEvent {
            header: header(EventKind::WaitDone, tgid, tid),
            kind: wait_kind::WAIT4,
            pid,
            ret,
            options,
            comm: bpf_get_current_comm().unwrap_or_default(),
            ..WaitEvent::default()
        };
        if pid != 0 && stat_addr != 0 {
            if let Ok(status) = unsafe { bpf_probe_read_user(stat_addr as *const i32) } {
                event.status = status;
                event.flags |= wait_flags::STATUS_VALID;
            }
        }
        // wait4 only returns a pid in ZOMBIES when it reaped it.
        if pid != 0 {
            let _ = ZOMBIES.remove(pid);
        }
        submit_wait(&event);
        return;
    }
    if pid == 0 || unsafe { ZOMBIES.get(pid) }.is_none() {
        return;
    }
    let _ = ZOMBIES.remove(pid);
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let event = WaitEvent {
        header: header(EventKind::WaitDone, tgid, tid),
        kind: wait_kind::WAIT4,
        pid,
        ret,
        flags: wait_flags::UNTRACED_REAPER,
        comm: bpf_get_current_comm().unwrap_or_default(),
        ..WaitEvent::default()
    };
    submit_wait(&event);
}

/// waitid returns (from `syscalls.rs`) 0 and names the child in the caller's `siginfo`; only
/// traced callers are followed here.
#[inline(always)]
pub fn exit_waitid(regs: *const u8, ret: i64) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    // waitid(which, pid, infop, options, rusage)
    let (infop, options) = wait_args(regs, config!(regs.arg3), config!(regs.arg4));
    let mut event = WaitEvent {
        header: header(EventKind::WaitDone, tgid, tid),
        kind: wait_kind::WAITID,
        ret,
        options,
        comm: bpf_get_current_comm().unwrap_or_default(),
        ..WaitEvent::default()
    };
    if ret == 0 && infop != 0 {
        let info = infop as *const u8;
        let pid = unsafe { bpf_probe_read_user(info.wrapping_add(SI_PID_OFF) as *const i32) };
        let code = unsafe { bpf_probe_read_user(info.wrapping_add(SI_CODE_OFF) as *const i32) };
        let status = unsafe { bpf_probe_read_user(info.wrapping_add(SI_STATUS_OFF) as *const i32) };
        if let (Ok(pid), Ok(code), Ok(status)) = (pid, code, status) {
            event.pid = pid as u32;
            event.code = code;
            event.status = status;
            event.flags |= wait_flags::STATUS_VALID;
            let terminated = (CLD_EXITED..=CLD_DUMPED).contains(&code);
            if pid > 0 && terminated && options & WNOWAIT == 0 {
                let _ = ZOMBIES.remove(pid as u32);
            }
        }
    }
    submit_wait(&event);
}

#[inline(always)]
fn submit_wait(event: &WaitEvent) {
    let Some(mut entry) = EVENTS.reserve::<WaitEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    entry.write(*event);
    entry.submit(0);
}

#[inline(always)]
fn emit(kind: EventKind, tgid: u32, tid: u32, pid: u32, arg: u32, status: u32, flags: u32) {
    emit_ns(kind, tgid, tid, pid, arg, status, flags, 0, 0);
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn emit_ns(
    kind: EventKind,
    tgid: u32,
    tid: u32,
    pid: u32,
    arg: u32,
    status: u32,
    flags: u32,
    ns_pid: u32,
    peak_rss_pages: u32,
) {
    let Some(mut entry) = EVENTS.reserve::<ProcessEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    entry.write(ProcessEvent {
        header: header(kind, tgid, tid),
        pid,
        arg,
        status,
        flags,
        comm: bpf_get_current_comm().unwrap_or_default(),
        ns_pid,
        peak_rss_pages,
    });
    entry.submit(0);
}
