//! Runs the kernel skips, taken by second copies. Why a kernel skips
//! runs, and where the second copies are attached, is said once, in
//! `tracer/src/kernel/probes/syscall_hooks.rs`. Here is how the two copies
//! share the work: the raw tracepoint's copy, the first, marks each event
//! it runs for (of the threads whose events matter), the second takes the
//! mark away, and does the work itself where there was none. A mark is a
//! thread's, so it says exactly whether the first ran for that event,
//! wherever either ran.
//!
//! An event is lost when the kernel skips both copies (the second is
//! skipped while another BPF program, or a map operation of a process,
//! holds the CPU's BPF lock: one preempted meanwhile holds it for its time
//! slice). The kernel's counts of skipped runs do not say whose events
//! they were, so a thread's own syscalls say it: its entries and exits
//! alternate, and one lost shows as two entries or two exits in a row,
//! counted in `EVENTS_SKIPPED` (a fork or exit lost is counted by the
//! kernel's count of the second copy's skipped runs, in userspace).
//!
//! The kernel runs a tracepoint's programs in the order they were
//! attached, and the perf-event ones all at the place of the first perf
//! event on it: another tool's, if it had one before us. Userspace checks
//! the order once (`close`s of [`ORDER_CHECK_ENTER_FD`] and
//! [`ORDER_CHECK_EXIT_FD`], and a thread named
//! [`ORDER_CHECK_COMM`] that starts another and ends: events the first
//! copies mark, and the second copies take, when in order).

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::map,
    maps::{LruHashMap, PerCpuArray},
};
pub use tracer_common::skips::{EXIT, FORK, SYS_ENTER, SYS_EXIT};
use tracer_common::skips::{ORDER_CHECK_COMM, ORDER_CHECK_ENTER_FD, ORDER_CHECK_EXIT_FD, mark};

use crate::maps::{config, read_reg};

/// One mark per thread and hook between the two copies' runs: for the
/// fork and exit hooks, that the first ran; for the syscalls, a
/// [`SyscallMarks`] (LRU: the marks of threads gone are forgotten).
#[map]
static FIRST_RAN: LruHashMap<u64, SyscallMarks> = LruHashMap::with_max_entries(16384, 0);

/// Relevant syscall events lost (both copies skipped), found by the
/// threads' own next events.
#[map]
static EVENTS_SKIPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// A thread's syscall marks (key: `mark(SYS_ENTER, tid)`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallMarks {
    /// The hook (`SYS_ENTER`, `SYS_EXIT`) whose first copy ran for the
    /// current event; 0 once the second copy took it.
    first_ran: u32,
    /// The hook of the thread's last event seen (0: none yet).
    last: u32,
}

#[inline(always)]
fn tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// In the fork or exit hook's first copy, before its work: marks this
/// thread's event as run, when second copies are attached and the event
/// matters (`relevant`: only then, so that others pay one comparison).
#[inline(always)]
pub fn first_ran(hook: u64, relevant: impl FnOnce() -> bool) {
    if config!(second_copies) != 0 && relevant() {
        let marks = SyscallMarks {
            first_ran: hook as u32,
            last: 0,
        };
        let _ = FIRST_RAN.insert(mark(hook, tid()), marks, 0);
    }
}

/// In the fork or exit hook's second copy: whether the first skipped this
/// (`relevant`) event, taking its mark away if not.
#[inline(always)]
pub fn first_skipped(hook: u64, relevant: impl FnOnce() -> bool) -> bool {
    relevant() && FIRST_RAN.remove(mark(hook, tid())).is_err()
}

/// In a syscall hook's first copy (`hook`: `SYS_ENTER` or `SYS_EXIT`).
#[inline(always)]
pub fn syscall_first_ran(hook: u64, relevant: impl FnOnce() -> bool) {
    if config!(second_copies) != 0 && relevant() {
        syscall_seen(hook as u32, true);
    }
}

/// In a syscall hook's second copy: whether the first skipped this
/// (`relevant`) event, which is then this copy's to do.
#[inline(always)]
pub fn syscall_first_skipped(hook: u64, relevant: impl FnOnce() -> bool) -> bool {
    if !relevant() {
        return false;
    }
    let key = mark(SYS_ENTER, tid());
    if let Some(marks) = FIRST_RAN.get_ptr_mut(&key) {
        // SAFETY: this thread's value; its events come one at a time.
        let marks = unsafe { &mut *marks };
        if marks.first_ran == hook as u32 {
            marks.first_ran = 0;
            return false;
        }
    }
    syscall_seen(hook as u32, false);
    true
}

/// The copy doing the work records the event: the hook it was, and
/// whether the first copy (`first`) is the one; an entry after an entry,
/// or an exit after an exit, says one between was lost.
#[inline(always)]
fn syscall_seen(hook: u32, first: bool) {
    let key = mark(SYS_ENTER, tid());
    let first_ran = if first { hook } else { 0 };
    let Some(marks) = FIRST_RAN.get_ptr_mut(&key) else {
        // The thread's first event seen (a new thread's first is the
        // return of its clone): nothing before it to check.
        let _ = FIRST_RAN.insert(
            key,
            SyscallMarks {
                first_ran,
                last: hook,
            },
            0,
        );
        return;
    };
    // SAFETY: this thread's value; its events come one at a time.
    let marks = unsafe { &mut *marks };
    if marks.last == hook {
        if let Some(lost) = EVENTS_SKIPPED.get_ptr_mut(0) {
            // SAFETY: this CPU's slot.
            unsafe { crate::maps::add_relaxed(lost, 1) };
        }
    }
    marks.last = hook;
    marks.first_ran = first_ran;
}

/// A thread's end: its syscall marks go (a thread that reuses its id
/// starts afresh).
#[inline(always)]
pub fn thread_exited() {
    if config!(second_copies) != 0 {
        let _ = FIRST_RAN.remove(mark(SYS_ENTER, tid()));
    }
}

/// Whether this syscall is the order check's `close` for `hook`'s hooks.
#[inline(always)]
pub fn is_order_check(hook: u64, regs: *const u8, nr: u64) -> bool {
    let fd = if hook == SYS_ENTER {
        ORDER_CHECK_ENTER_FD
    } else {
        ORDER_CHECK_EXIT_FD
    };
    nr == config!(syscalls.close) as u64
        && read_reg(regs, config!(regs.arg1)).is_some_and(|arg| arg as u32 == fd)
}

/// Whether the current thread is one of the order check's.
#[inline(always)]
pub fn is_order_check_thread() -> bool {
    bpf_get_current_comm().is_ok_and(|comm| comm == ORDER_CHECK_COMM)
}
