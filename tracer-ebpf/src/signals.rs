//! Signals: every `signal_generate` for or by a traced process and every
//! `signal_deliver` in a traced thread, one ring buffer record each (signals
//! are rare next to reads). A delivery record carries the top of the
//! receiving thread's Python stack.
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
    macros::{tracepoint, uprobe},
    programs::{ProbeContext, TracePointContext},
};
use tracer_common::{
    COMM_LEN, EventKind, PyFrameRecord, SendSyscall, SignalActionEvent, SignalCheckEvent,
    SignalDeliverEvent, SignalGenerateEvent, SignalMaskEvent, UNBLOCKABLE, drops, mask_after,
};

use crate::{
    maps::{
        EVENTS, TRACED, config, count_drop, current_if_traced, current_syscall, traced_tgid_of,
    },
    processes::header,
};

/// The signal-sending syscall the current task is in ([`SendSyscall`]), or
/// `None` (0) when the kernel is generating the signal on its own.
#[inline(always)]
fn sending_syscall() -> u32 {
    let nr = current_syscall();
    let r = config!(regs);
    let syscall = if nr == r.nr_kill as u64 {
        SendSyscall::Kill
    } else if nr == r.nr_tkill as u64 {
        SendSyscall::Tkill
    } else if nr == r.nr_tgkill as u64 {
        SendSyscall::Tgkill
    } else if nr == r.nr_rt_sigqueueinfo as u64 {
        SendSyscall::RtSigqueueinfo
    } else if nr == r.nr_rt_tgsigqueueinfo as u64 {
        SendSyscall::RtTgsigqueueinfo
    } else if nr == r.nr_pidfd_send_signal as u64 {
        SendSyscall::PidfdSendSignal
    } else {
        SendSyscall::None
    };
    syscall as u32
}

#[tracepoint]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    let off = config!(lifecycle);
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let Ok(target) = (unsafe { ctx.read_at::<i32>(off.gen_pid as usize) }) else {
        return 0;
    };
    let target = target as u32;
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
    event.sig = unsafe { ctx.read_at::<i32>(off.gen_sig as usize) }.unwrap_or(0);
    event.errno = unsafe { ctx.read_at::<i32>(off.gen_errno as usize) }.unwrap_or(0);
    event.code = unsafe { ctx.read_at::<i32>(off.gen_code as usize) }.unwrap_or(0);
    event.target_pid = target;
    event.target_tgid = target_tgid;
    event.group = unsafe { ctx.read_at::<i32>(off.gen_group as usize) }.unwrap_or(0) as u32;
    event.result = unsafe { ctx.read_at::<i32>(off.gen_result as usize) }.unwrap_or(0) as u32;
    event.syscall = syscall;
    event.target_comm =
        unsafe { ctx.read_at::<[u8; COMM_LEN]>(off.gen_comm as usize) }.unwrap_or_default();
    event.sender_comm = bpf_get_current_comm().unwrap_or_default();
    entry.submit(0);
    0
}

#[tracepoint]
pub fn signal_deliver(ctx: TracePointContext) -> u32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let off = config!(lifecycle);
    let Some(mut entry) = EVENTS.reserve::<SignalDeliverEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
    };
    // Written in place: the record carries the Python frames too, too big
    // to build on the BPF stack first.
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record.
    let with_stack = unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(
            EventKind::SignalDelivered,
            tgid,
            tid,
        ));
        core::ptr::addr_of_mut!((*event).sig)
            .write(ctx.read_at::<i32>(off.deliver_sig as usize).unwrap_or(0));
        core::ptr::addr_of_mut!((*event).errno)
            .write(ctx.read_at::<i32>(off.deliver_errno as usize).unwrap_or(0));
        core::ptr::addr_of_mut!((*event).code)
            .write(ctx.read_at::<i32>(off.deliver_code as usize).unwrap_or(0));
        core::ptr::addr_of_mut!((*event)._pad).write(0);
        core::ptr::addr_of_mut!((*event).sa_handler).write(
            ctx.read_at::<u64>(off.deliver_sa_handler as usize)
                .unwrap_or(0),
        );
        core::ptr::addr_of_mut!((*event).sa_flags).write(
            ctx.read_at::<u64>(off.deliver_sa_flags as usize)
                .unwrap_or(0),
        );
        // To a handler in a Python process: its Python-level handler (if
        // that is what the C handler is) runs at the main thread's next
        // signal check.
        let mut py_handler = (0, 0);
        if (*event).sa_handler > 1 && crate::python::is_python(tgid) {
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
        )
    };
    entry.submit(if with_stack {
        crate::python::RB_WAKE_FOR_STACK
    } else {
        0
    });
    0
}

/// Uprobe on CPython's signal checks (`PyErr_CheckSignals`, the eval loop's
/// `_PyErr_CheckSignalsTstate` / `_Py_HandlePending`): they run only now and
/// then (the eval loop calls its own when a signal or another request is
/// pending). In the main thread with a delivery pending, the Python-level
/// handlers run now: one record, with the line they interrupt.
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
        );
    }
    entry.submit(crate::python::RB_WAKE_FOR_STACK);
    0
}

/// `rt_sigaction(sig, act, oact)` with a new action (`act` set) in a traced
/// thread: the new handler and the caller's Python stack (who set SIGTERM
/// to be ignored). A query (`act` NULL) changes nothing and is not sent.
#[tracepoint]
pub fn sys_enter_rt_sigaction(ctx: TracePointContext) -> u32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let off = config!(lifecycle);
    if off.sigaction_act == 0 {
        return 0;
    }
    let Ok(act) = (unsafe { ctx.read_at::<u64>(off.sigaction_act as usize) }) else {
        return 0;
    };
    if act == 0 {
        return 0;
    }
    let sig = unsafe { ctx.read_at::<u64>(off.sigaction_sig as usize) }.unwrap_or(0) as i32;
    // The kernel's `struct sigaction` starts with the handler and the flags
    // on every architecture.
    let handler = unsafe { bpf_probe_read_user(act as *const u64) }.unwrap_or(u64::MAX);
    let flags = unsafe { bpf_probe_read_user((act + 8) as *const u64) }.unwrap_or(0);
    let Some(mut entry) = EVENTS.reserve::<SignalActionEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
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
        )
    };
    entry.submit(if with_stack {
        crate::python::RB_WAKE_FOR_STACK
    } else {
        0
    });
    0
}

/// `rt_sigprocmask(how, set, oset)` in a traced thread that changes its
/// mask: before (`task_struct.blocked`) and after, and the caller's Python
/// stack (the line that blocked SIGINT). Calls that change nothing (a
/// query, blocking what is already blocked) are not sent.
#[tracepoint]
pub fn sys_enter_rt_sigprocmask(ctx: TracePointContext) -> u32 {
    let Some((tgid, tid)) = current_if_traced() else {
        return 0;
    };
    let off = config!(lifecycle);
    if off.sigprocmask_nset == 0 || off.task_blocked == 0 {
        return 0;
    }
    let Ok(set_ptr) = (unsafe { ctx.read_at::<u64>(off.sigprocmask_nset as usize) }) else {
        return 0;
    };
    if set_ptr == 0 {
        return 0;
    }
    let how =
        unsafe { ctx.read_at::<u64>(off.sigprocmask_how as usize) }.unwrap_or(u64::MAX) as i32;
    let Ok(set) = (unsafe { bpf_probe_read_user(set_ptr as *const u64) }) else {
        return 0;
    };
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let Ok(before) = (unsafe {
        bpf_probe_read_kernel(task.wrapping_add(off.task_blocked as usize) as *const u64)
    }) else {
        return 0;
    };
    let Some(after) = mask_after(how, set, before) else {
        return 0;
    };
    if after == before & !UNBLOCKABLE {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<SignalMaskEvent>(0) else {
        count_drop(drops::RINGBUF);
        return 0;
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
        )
    };
    entry.submit(if with_stack {
        crate::python::RB_WAKE_FOR_STACK
    } else {
        0
    });
    0
}
