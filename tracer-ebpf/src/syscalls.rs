//! The two syscall hooks: one raw `sys_enter` and one raw `sys_exit`
//! program see every syscall of every process and hand the few this tracer
//! wants, picked by number, to the concern that wants them (`io`: file
//! and socket reads and writes, syncs,
//! `processes`, `signals`, `python::gil`: futex waits on a GIL).
//!
//! Why raw tracepoints and not one perf-event tracepoint per syscall: the
//! per-event cost is the same (the kernel's syscall-tracepoint floor), but a
//! raw tracepoint is a BPF link that detaches in about a millisecond, where
//! each perf-event tracepoint waits for an RCU grace period (~40 ms here,
//! one after another) when the tracer exits.
//!
//! Where the kernel may preempt a raw tracepoint's run (7.x: lazy
//! preemption, and syscall tracepoints that may fault), a preempted run
//! makes every other task's syscall on that CPU skip the program for the
//! rest of its time slice: there the same hooks run as perf-event
//! tracepoints on `raw_syscalls` (`sys_enter_perf`, `sys_exit_perf`),
//! whose path keeps preemption off around the run (chosen in userspace,
//! `kernel/probes/syscall_hooks.rs`).
//!
//! Arguments come from the task's saved user registers (`struct pt_regs`,
//! the tracepoint's first argument; offsets from BTF). Syscall numbers are
//! the architecture's, from userspace; a 32-bit (compat) task's numbers
//! differ and are not looked at.

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use tracer_common::IO_SYSCALL_NUMBERS;

use crate::{
    io, loops,
    maps::{config, current_if_traced, current_regs, read_syscall_nr},
    processes,
    python::Hook,
    signals, skips,
};

/// `sys_enter(struct pt_regs *regs, long id)`.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let (regs, nr) = (ctx.arg::<u64>(0) as *const u8, ctx.arg(1));
    skips::syscall_first_ran(skips::SYS_ENTER, || enter_relevant(regs, nr));
    enter::<true>(regs, nr, Hook::SysEnter)
}

/// The syscalls `enter` acts on: a traced thread's, and waits (see
/// `exit_relevant`); and the tracer's check of the hooks' order (`skips`).
#[inline(always)]
fn enter_relevant(regs: *const u8, nr: u64) -> bool {
    is_wait(nr)
        || current_if_traced().is_some()
        || skips::is_order_check(skips::SYS_ENTER, regs, nr)
}

/// `wait4` and `waitid`: whose returns are looked at in any process, and
/// so their entries too (a thread's relevant events are pairs).
#[inline(always)]
fn is_wait(nr: u64) -> bool {
    nr == config!(syscalls.wait4) as u64 || nr == config!(syscalls.waitid) as u64
}

/// Without the per-descriptor read rows (kernels without the fetching
/// atomics they are claimed with, before 5.12): reads are counted per file.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_no_fd_rows(ctx: RawTracePointContext) -> i32 {
    let (regs, nr) = (ctx.arg::<u64>(0) as *const u8, ctx.arg(1));
    skips::syscall_first_ran(skips::SYS_ENTER, || enter_relevant(regs, nr));
    enter::<false>(regs, nr, Hook::SysEnter)
}

/// Where the perf-event record of `raw_syscalls:sys_enter` and `sys_exit`
/// has its `id` and then `args[6]` or `ret` (after the 8-byte common
/// header; userspace checks the event's format before choosing these).
const PERF_ID_AT: usize = 8;
const PERF_VALUE_AT: usize = 16;

/// `raw_syscalls:sys_enter` as a perf-event tracepoint (see the module's
/// comment): the registers from the current task.
#[tracepoint]
pub fn sys_enter_perf(ctx: TracePointContext) -> i32 {
    let (Ok(nr), Some(regs)) = (unsafe { ctx.read_at::<u64>(PERF_ID_AT) }, current_regs()) else {
        return 0;
    };
    if config!(second_copies) != 0
        && !skips::syscall_first_skipped(skips::SYS_ENTER, || enter_relevant(regs, nr))
    {
        return 0;
    }
    enter::<true>(regs, nr, Hook::SysEnterCopy)
}

/// `hook`: which copy runs (the scratch slots it uses).
#[inline(always)]
fn enter<const FD_ROWS: bool>(regs: *const u8, nr: u64, hook: Hook) -> i32 {
    // Every syscall on the machine comes here: a few comparisons decide
    // before any map lookup. Reads and writes first, the most frequent.
    if let Some(syscall) = io_syscall(nr) {
        io::enter(regs, syscall);
    } else if nr == config!(syscalls.openat) as u64 {
        io::enter_open(regs, config!(regs.arg2));
    } else if nr == config!(syscalls.open) as u64 {
        io::enter_open(regs, config!(regs.arg1));
    } else if nr == config!(syscalls.close) as u64 {
        io::enter_close::<FD_ROWS>(regs);
    } else if nr == config!(syscalls.rt_sigaction) as u64 {
        signals::enter_rt_sigaction(regs, hook);
    } else if nr == config!(syscalls.rt_sigprocmask) as u64 {
        signals::enter_rt_sigprocmask(regs, hook);
    } else if is_selector_wait(nr) {
        loops::enter_wait(nr, hook);
    } else if nr == config!(syscalls.futex) as u64 {
        crate::python::gil::enter_futex(regs, hook);
    }
    0
}

/// The read, write or sync syscall number `nr` is, if any (its
/// `Config::io_syscalls` entry): one load for every syscall of the
/// machine.
#[inline(always)]
fn io_syscall(nr: u64) -> Option<u8> {
    if nr >= IO_SYSCALL_NUMBERS as u64 {
        return None;
    }
    // The index masked where the verifier sees it (below the table's size).
    let mut index = nr;
    // SAFETY: arithmetic on a register.
    unsafe {
        core::arch::asm!("{i} &= {mask}", i = inout(reg) index, mask = const IO_SYSCALL_NUMBERS - 1)
    };
    // SAFETY: `index` is below the table's size; the table is in the
    // configuration the loader initialized (see `config!`).
    let entry = unsafe {
        core::ptr::read_volatile(
            core::ptr::addr_of!(
                (*core::ptr::addr_of!(crate::maps::CONFIG).cast::<tracer_common::Config>())
                    .io_syscalls
            )
            .cast::<u8>()
            .add(index as usize),
        )
    };
    (entry != 0).then_some(entry)
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
/// saved `orig_ax` (x86-64), `syscallno` (arm64).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs = ctx.arg::<u64>(0) as *const u8;
    skips::syscall_first_ran(skips::SYS_EXIT, || exit_relevant(regs));
    exit::<true>(regs, ctx.arg(1), Hook::SysExit)
}

/// The syscall returns `exit` acts on: a traced thread's, and a wait's of
/// any process (whoever reaps a traced zombie); and the order check.
#[inline(always)]
fn exit_relevant(regs: *const u8) -> bool {
    let nr = read_syscall_nr(regs).unwrap_or(u64::MAX);
    is_wait(nr) || current_if_traced().is_some() || skips::is_order_check(skips::SYS_EXIT, regs, nr)
}

/// Without the per-descriptor read rows (see `sys_enter_no_fd_rows`).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit_no_fd_rows(ctx: RawTracePointContext) -> i32 {
    let regs = ctx.arg::<u64>(0) as *const u8;
    skips::syscall_first_ran(skips::SYS_EXIT, || exit_relevant(regs));
    exit::<false>(regs, ctx.arg(1), Hook::SysExit)
}

/// `raw_syscalls:sys_exit` as a perf-event tracepoint (see `sys_enter_perf`).
#[tracepoint]
pub fn sys_exit_perf(ctx: TracePointContext) -> i32 {
    let (Ok(ret), Some(regs)) = (unsafe { ctx.read_at::<i64>(PERF_VALUE_AT) }, current_regs())
    else {
        return 0;
    };
    if config!(second_copies) != 0
        && !skips::syscall_first_skipped(skips::SYS_EXIT, || exit_relevant(regs))
    {
        return 0;
    }
    exit::<true>(regs, ret, Hook::SysExitCopy)
}

/// `hook`: which copy runs (the scratch slots it uses).
#[inline(always)]
fn exit<const FD_ROWS: bool>(regs: *const u8, ret: i64, hook: Hook) -> i32 {
    let Some(nr) = read_syscall_nr(regs) else {
        return 0;
    };
    let is_io = io_syscall(nr).is_some();
    let is_open = nr == config!(syscalls.openat) as u64 || nr == config!(syscalls.open) as u64;
    // Reads, writes and opens in flight are only ever those of traced
    // threads: the per-CPU answer spares untraced ones the in-flight lookup.
    if (is_io || is_open) && current_if_traced().is_none() {
        return 0;
    }
    if is_io {
        io::exit_io::<FD_ROWS>(regs, ret, hook);
    } else if is_open {
        io::exit_open::<FD_ROWS>(ret, hook);
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
