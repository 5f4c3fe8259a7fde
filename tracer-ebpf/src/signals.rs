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
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    COMM_LEN, EventKind, PyFrameRecord, SendSyscall, SignalDeliverEvent, SignalGenerateEvent, drops,
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
