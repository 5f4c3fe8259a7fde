//! Signals: every `signal_generate` for or by a traced process and every
//! `signal_deliver` in a traced thread, one ring buffer record each (signals
//! are rare next to reads). A delivery record carries the top of the
//! receiving thread's Python stack, and in a process unwound natively
//! (`--native`) its native stack too. A delivery that ends the process is
//! followed by the thread's deeper stack (`fatal_stack`): the post-mortem.
//!
//! `signal_generate` runs in whatever task caused the signal. A signal is
//! "sent" by that task only while it is inside a signal-sending syscall
//! (kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo,
//! pidfd_send_signal: its saved syscall number says so); otherwise the kernel
//! generated it (a fault, SIGPIPE from a write, SIGCHLD from an exit, a timer).
//! The si_code alone cannot tell: the kernel sends SIGPIPE with SI_USER.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_probe_read_kernel, bpf_probe_read_user,
    },
    macros::{raw_tracepoint, uprobe},
    programs::{ProbeContext, RawTracePointContext},
};
use tracer_common::{
    COMM_LEN, EventKind, PyFrameRecord, SIGKILL, SendSyscall, SignalActionEvent, SignalCheckEvent,
    SignalDeliverEvent, SignalGenerateEvent, SignalMaskEvent, SignalNativeDeliverEvent,
    UNBLOCKABLE, drops, fatal_by_default, mask_after,
};

use crate::maps::{
    EVENTS, TRACED, config, count_drop, current_if_traced, current_syscall, header, read_kernel,
    read_reg, task_pid, traced_tgid_of,
};

/// The signal-sending syscall the current task is in ([`SendSyscall`]), or
/// `None` (0) when the kernel is generating the signal on its own.
#[inline(always)]
fn sending_syscall() -> u32 {
    let nr = current_syscall();
    let s = config!(syscalls);
    let syscall = if nr == s.kill as u64 {
        SendSyscall::Kill
    } else if nr == s.tkill as u64 {
        SendSyscall::Tkill
    } else if nr == s.tgkill as u64 {
        SendSyscall::Tgkill
    } else if nr == s.rt_sigqueueinfo as u64 {
        SendSyscall::RtSigqueueinfo
    } else if nr == s.rt_tgsigqueueinfo as u64 {
        SendSyscall::RtTgsigqueueinfo
    } else if nr == s.pidfd_send_signal as u64 {
        SendSyscall::PidfdSendSignal
    } else {
        SendSyscall::None
    };
    syscall as u32
}

/// `(errno, code)` of a signal's `kernel_siginfo`, as the tracefs record
/// stores them: `SEND_SIG_NOINFO` (0) is a user's signal (`SI_USER`),
/// `SEND_SIG_PRIV` (1) the kernel's (`SI_KERNEL`).
#[inline(always)]
fn siginfo_errno_code(info: u64) -> (i32, i32) {
    const SI_USER: i32 = 0;
    const SI_KERNEL: i32 = 0x80;
    match info {
        0 => (0, SI_USER),
        1 => (0, SI_KERNEL),
        _ => (
            read_kernel::<i32>(info, config!(structs.siginfo_errno)).unwrap_or(0),
            read_kernel::<i32>(info, config!(structs.siginfo_code)).unwrap_or(0),
        ),
    }
}

/// `signal_generate(int sig, struct kernel_siginfo *info, struct task_struct
/// *task, int group, int result)`.
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn signal_generate(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let task: u64 = ctx.arg(2);
    let Some(target) = task_pid(task) else {
        return 0;
    };
    let target_tgid = traced_tgid_of(target).unwrap_or(0);
    if target_tgid == 0 && unsafe { TRACED.get(tgid) }.is_none() {
        return 0;
    }
    let syscall = sending_syscall();
    let Some(mut entry) = EVENTS.reserve::<SignalGenerateEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
    };
    let event = unsafe { &mut *entry.as_mut_ptr() };
    event.header = header(EventKind::SignalGenerated, tgid, tid);
    let sig: u64 = ctx.arg(0);
    let group: u64 = ctx.arg(3);
    let result: u64 = ctx.arg(4);
    (event.errno, event.code) = siginfo_errno_code(ctx.arg(1));
    event.sig = sig as i32;
    event.target_pid = target;
    event.target_tgid = target_tgid;
    event.group = group as u32;
    event.result = result as u32;
    event.syscall = syscall;
    event.target_comm =
        read_kernel::<[u8; COMM_LEN]>(task, config!(structs.task_comm)).unwrap_or_default();
    event.sender_comm = bpf_get_current_comm().unwrap_or_default();
    entry.submit(0);
    0
}

/// `signal_deliver(int sig, struct kernel_siginfo *info, struct
/// k_sigaction *ka)`.
#[raw_tracepoint(tracepoint = "signal_deliver")]
pub fn signal_deliver(ctx: RawTracePointContext) -> i32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let action: u64 = ctx.arg(2);
    let handler = read_kernel::<u64>(action, config!(structs.ksigaction_handler)).unwrap_or(0);
    deliver(&ctx, tgid, tid, handler);
    // A signal that ends the process: the thread's stack as it dies (the
    // post-mortem), after its delivery record.
    let sig: u64 = ctx.arg(0);
    let sig = sig as i32;
    if sig == SIGKILL || fatal_by_default(sig) && handler == 0 {
        crate::python::fatal_stack(tgid, tid, sig);
    }
    0
}

/// The delivery's record (`handler`: the action's `sa_handler`), with the
/// native stack in a process unwound natively.
#[inline(always)]
fn deliver(ctx: &RawTracePointContext, tgid: u32, tid: u32, handler: u64) {
    // A process unwound natively: the record with the native stack too
    // (signals are rare; an unwind costs a few microseconds).
    if let Some(mappings) = crate::native::mappings_of(tgid) {
        let Some(mut entry) = EVENTS.reserve::<SignalNativeDeliverEvent>(0) else {
            count_drop(drops::RINGBUF);
            return;
        };
        let record = entry.as_mut_ptr();
        // SAFETY: fields of the reserved record, written in place.
        let with_stack = unsafe {
            let deliver = core::ptr::addr_of_mut!((*record).deliver);
            let with_stack = fill_delivery(
                ctx,
                deliver,
                (tgid, tid),
                handler,
                EventKind::SignalNativeDelivered,
            );
            // Runs on the thread's way back to user mode: its saved user
            // registers are where the signal interrupted it.
            let native = core::ptr::addr_of_mut!((*record).native).cast::<u64>();
            let (depth, end) = if with_stack {
                crate::native::unwind_current(mappings, native)
            } else {
                (0, tracer_common::native_end::COMPLETE)
            };
            core::ptr::addr_of_mut!((*record).native_depth).write(depth);
            core::ptr::addr_of_mut!((*record).native_end).write(end);
            with_stack
        };
        entry.submit(if with_stack {
            crate::python::RB_WAKE_FOR_STACK
        } else {
            0
        });
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalDeliverEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    // SAFETY: the reserved record.
    let with_stack = unsafe {
        fill_delivery(
            ctx,
            entry.as_mut_ptr(),
            (tgid, tid),
            handler,
            EventKind::SignalDelivered,
        )
    };
    entry.submit(if with_stack {
        crate::python::RB_WAKE_FOR_STACK
    } else {
        0
    });
}

/// Fills a reserved delivery record (`kind`: the record it is part of)
/// in place: it carries the Python frames too, too big to build on the
/// BPF stack first. Returns whether it has a Python stack.
#[inline(always)]
unsafe fn fill_delivery(
    ctx: &RawTracePointContext,
    event: *mut SignalDeliverEvent,
    (tgid, tid): (u32, u32),
    handler: u64,
    kind: EventKind,
) -> bool {
    let sig: u64 = ctx.arg(0);
    let (errno, code) = siginfo_errno_code(ctx.arg(1));
    let action: u64 = ctx.arg(2);
    // SAFETY: fields of the caller's reserved record.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(kind, tgid, tid));
        core::ptr::addr_of_mut!((*event).sig).write(sig as i32);
        core::ptr::addr_of_mut!((*event).errno).write(errno);
        core::ptr::addr_of_mut!((*event).code).write(code);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
        core::ptr::addr_of_mut!((*event).sa_handler).write(handler);
        core::ptr::addr_of_mut!((*event).sa_flags)
            .write(read_kernel::<u64>(action, config!(structs.ksigaction_flags)).unwrap_or(0));
        // To a handler in a Python process: its Python-level handler (if
        // that is what the C handler is) runs at the main thread's next
        // signal check.
        let mut py_handler = (0, 0);
        if handler > 1 && crate::python::is_python(tgid) {
            let _ = crate::python::PY_SIGNAL_PENDING.insert(&tgid, &1, 0);
            // Which Python function that will be: read now, the handler may
            // be changed again (and freed) before userspace looks.
            py_handler = crate::python::signal_handler_object(tgid, (*event).sig);
        }
        core::ptr::addr_of_mut!((*event).py_handler).write(py_handler.0);
        core::ptr::addr_of_mut!((*event).py_handler_code).write(py_handler.1);
        // Runs in the receiving thread, on its way back to user mode: its
        // current Python frame is the line that was running.
        crate::python::signal_stack(
            tgid,
            tid,
            core::ptr::addr_of_mut!((*event).py_frames).cast::<PyFrameRecord>(),
            crate::python::Hook::Other,
        )
    }
}

/// Uprobe on CPython's signal checks (`PyErr_CheckSignals`, the eval loop's
/// `_PyErr_CheckSignalsTstate` / `_Py_HandlePending`), placed past their
/// test of `is_tripped` (userspace's `python::signal_checks`): it runs when
/// a signal is pending. In the main thread with a delivery pending, the
/// Python-level handlers run now: one record, with the line they interrupt.
#[uprobe]
pub fn py_signal_check(_ctx: ProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    // Handlers run in the main thread only.
    if tgid != tid || unsafe { crate::python::PY_SIGNAL_PENDING.get(&tgid) }.is_none() {
        return 0;
    }
    let _ = crate::python::PY_SIGNAL_PENDING.remove(&tgid);
    let Some(mut entry) = EVENTS.reserve::<SignalCheckEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::SignalCheck, tgid, tid));
        crate::python::signal_stack(
            tgid,
            tid,
            core::ptr::addr_of_mut!((*event).py_frames).cast::<PyFrameRecord>(),
            crate::python::Hook::Uprobe,
        );
    }
    entry.submit(crate::python::RB_WAKE_FOR_STACK);
    0
}

/// `rt_sigaction(sig, act, oact)` with a new action (`act` set) in a traced
/// thread: the new handler and the caller's Python stack (who set SIGTERM
/// to be ignored). A query (`act` NULL) changes nothing and is not sent.
#[inline(always)]
pub fn enter_rt_sigaction(regs: *const u8, hook: crate::python::Hook) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let Some(act) = read_reg(regs, config!(regs.arg2)) else {
        return;
    };
    if act == 0 {
        return;
    }
    let sig = read_reg(regs, config!(regs.arg1)).unwrap_or(0) as i32;
    // The kernel's `struct sigaction` starts with the handler and the flags
    // on every architecture.
    let handler = unsafe { bpf_probe_read_user(act as *const u64) }.unwrap_or(u64::MAX);
    let flags = unsafe { bpf_probe_read_user((act + 8) as *const u64) }.unwrap_or(0);
    let Some(mut entry) = EVENTS.reserve::<SignalActionEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place (the frames
    // are too big to build on the BPF stack first).
    let with_stack = unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::SignalAction, tgid, tid));
        core::ptr::addr_of_mut!((*event).sig).write(sig);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
        core::ptr::addr_of_mut!((*event).handler).write(handler);
        core::ptr::addr_of_mut!((*event).flags).write(flags);
        crate::python::signal_stack(
            tgid,
            tid,
            core::ptr::addr_of_mut!((*event).py_frames).cast::<PyFrameRecord>(),
            hook,
        )
    };
    entry.submit(if with_stack {
        crate::python::RB_WAKE_FOR_STACK
    } else {
        0
    });
}

/// `rt_sigprocmask(how, set, oset)` in a traced thread that changes its
/// mask: before (`task_struct.blocked`) and after, and the caller's Python
/// stack (the line that blocked SIGINT). Calls that change nothing (a
/// query, blocking what is already blocked) are not sent.
#[inline(always)]
pub fn enter_rt_sigprocmask(regs: *const u8, hook: crate::python::Hook) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let task_blocked = config!(structs.task_blocked);
    if task_blocked == 0 {
        return;
    }
    let Some(set_ptr) = read_reg(regs, config!(regs.arg2)) else {
        return;
    };
    if set_ptr == 0 {
        return;
    }
    let how = read_reg(regs, config!(regs.arg1)).unwrap_or(u64::MAX) as i32;
    let Ok(set) = (unsafe { bpf_probe_read_user(set_ptr as *const u64) }) else {
        return;
    };
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let Ok(before) =
        (unsafe { bpf_probe_read_kernel(task.wrapping_add(task_blocked as usize) as *const u64) })
    else {
        return;
    };
    let Some(after) = mask_after(how, set, before) else {
        return;
    };
    if after == before & !UNBLOCKABLE {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalMaskEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: as above.
    let with_stack = unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::SignalMask, tgid, tid));
        core::ptr::addr_of_mut!((*event).before).write(before);
        core::ptr::addr_of_mut!((*event).after).write(after);
        crate::python::signal_stack(
            tgid,
            tid,
            core::ptr::addr_of_mut!((*event).py_frames).cast::<PyFrameRecord>(),
            hook,
        )
    };
    entry.submit(if with_stack {
        crate::python::RB_WAKE_FOR_STACK
    } else {
        0
    });
}
