//! The two syscall hooks: one raw `sys_enter` and one raw `sys_exit`
//! program see every syscall of every process and hand the few this tracer
//! wants, picked by number, to the concern that wants them (`reads`: file
//! and socket reads,
//! `processes`, `signals`, `python::gil`: futex waits on a GIL).
//!
//! Why raw tracepoints and not one perf-event tracepoint per syscall: the
//! per-event cost is the same (the kernel's syscall-tracepoint floor), but a
//! raw tracepoint is a BPF link that detaches in about a millisecond, where
//! each perf-event tracepoint waits for an RCU grace period (~40 ms here,
//! one after another) when the tracer exits.
//!
//! Arguments come from the task's saved user registers (`struct pt_regs`,
//! the tracepoint's first argument; offsets from BTF). Syscall numbers are
//! the architecture's, from userspace; a 32-bit (compat) task's numbers
//! differ and are not looked at.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use tracer_common::ReadSyscall;

use crate::{
    loops,
    maps::{config, current_if_traced, read_reg},
    processes, reads, signals,
};

/// `sys_enter(struct pt_regs *regs, long id)`.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    enter::<true>(&ctx)
}

/// Without the per-descriptor read rows (kernels without the fetching
/// atomics they are claimed with, before 5.12): reads are counted per file.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_no_fd_rows(ctx: RawTracePointContext) -> i32 {
    enter::<false>(&ctx)
}

#[inline(always)]
fn enter<const FD_ROWS: bool>(ctx: &RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let nr: u64 = ctx.arg(1);
    let regs = regs as *const u8;
    // Every syscall on the machine comes here: a few comparisons decide
    // before any map lookup. Reads first, the most frequent.
    if nr == config!(syscalls.read) as u64 {
        reads::enter_read(regs, ReadSyscall::Read);
    } else if nr == config!(syscalls.pread64) as u64 {
        reads::enter_read(regs, ReadSyscall::Pread64);
    } else if nr == config!(syscalls.readv) as u64 {
        reads::enter_readv(regs, ReadSyscall::Readv);
    } else if nr == config!(syscalls.preadv) as u64 || nr == config!(syscalls.preadv2) as u64 {
        // preadv2 has preadv's arguments plus flags, and is what CPython's
        // os.preadv calls: counted as "preadv".
        reads::enter_readv(regs, ReadSyscall::Preadv);
    } else if nr == config!(syscalls.recvfrom) as u64 {
        // recvfrom(fd, buf, len, ...): read's fd and size arguments.
        reads::enter_read(regs, ReadSyscall::Recvfrom);
    } else if nr == config!(syscalls.recvmsg) as u64 {
        reads::enter_recvmsg(regs);
    } else if nr == config!(syscalls.recvmmsg) as u64 {
        reads::enter_recvmmsg(regs);
    } else if nr == config!(syscalls.openat) as u64 {
        reads::enter_open(regs, config!(regs.arg2));
    } else if nr == config!(syscalls.open) as u64 {
        reads::enter_open(regs, config!(regs.arg1));
    } else if nr == config!(syscalls.close) as u64 {
        reads::enter_close::<FD_ROWS>(regs);
    } else if nr == config!(syscalls.rt_sigaction) as u64 {
        signals::enter_rt_sigaction(regs);
    } else if nr == config!(syscalls.rt_sigprocmask) as u64 {
        signals::enter_rt_sigprocmask(regs);
    } else if is_selector_wait(nr) {
        loops::enter_wait(nr);
    } else if nr == config!(syscalls.futex) as u64 {
        crate::python::gil::enter_futex(regs);
    }
    0
}

/// `epoll_wait`, `select`, `poll` or a variant: an event loop's wait.
#[inline(always)]
fn is_selector_wait(nr: u64) -> bool {
    // One field at a time: every syscall of the machine passes here.
    nr == config!(syscalls.epoll_wait) as u64
        || nr == config!(syscalls.epoll_pwait) as u64
        || nr == config!(syscalls.epoll_pwait2) as u64
        || nr == config!(syscalls.select) as u64
        || nr == config!(syscalls.pselect6) as u64
        || nr == config!(syscalls.poll) as u64
        || nr == config!(syscalls.ppoll) as u64
}

/// `sys_exit(struct pt_regs *regs, long ret)`: the syscall number is the
/// saved `orig_ax` (x86-64).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    exit::<true>(&ctx)
}

/// Without the per-descriptor read rows (see `sys_enter_no_fd_rows`).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit_no_fd_rows(ctx: RawTracePointContext) -> i32 {
    exit::<false>(&ctx)
}

#[inline(always)]
fn exit<const FD_ROWS: bool>(ctx: &RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let regs = regs as *const u8;
    let Some(nr) = read_reg(regs, config!(regs.nr)) else {
        return 0;
    };
    let is_read = nr == config!(syscalls.read) as u64
        || nr == config!(syscalls.pread64) as u64
        || nr == config!(syscalls.readv) as u64
        || nr == config!(syscalls.preadv) as u64
        || nr == config!(syscalls.preadv2) as u64
        || nr == config!(syscalls.recvfrom) as u64
        || nr == config!(syscalls.recvmsg) as u64
        || nr == config!(syscalls.recvmmsg) as u64;
    let is_open = nr == config!(syscalls.openat) as u64 || nr == config!(syscalls.open) as u64;
    // Reads and opens in flight are only ever those of traced threads: the
    // per-CPU answer spares untraced ones the in-flight lookup.
    if (is_read || is_open) && current_if_traced().is_none() {
        return 0;
    }
    if is_read {
        reads::exit_read::<FD_ROWS>(ret);
    } else if is_open {
        reads::exit_open::<FD_ROWS>(ret);
    } else if nr == config!(syscalls.wait4) as u64 {
        processes::exit_wait4(regs, ret);
    } else if nr == config!(syscalls.waitid) as u64 {
        processes::exit_waitid(regs, ret);
    } else if is_selector_wait(nr) {
        loops::exit_wait(nr);
    } else if nr == config!(syscalls.futex) as u64 {
        crate::python::gil::exit_futex();
    }
    0
}
