//! Scheduler context switches of traced threads: voluntary (the task slept)
//! versus involuntary (it was preempted), on-CPU and off-CPU time, and the
//! switches that happened inside a read syscall.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{map, raw_tracepoint},
    maps::HashMap,
    programs::RawTracePointContext,
};
use tracer_common::{
    EventHeader, EventKind, MAX_THREAD_ROWS, PY_EVENT_DEPTH, PyFrameRecord, SwitchEvent,
    ThreadExitedEvent, ThreadStats, drops, switch_flags,
};

use crate::{
    io::INFLIGHT,
    maps::{EVENTS, TRACED, config, count_drop, lazy_wakeup, read_kernel, task_pid},
};

/// Per traced thread (key: tid). A one-off trace sends a thread's row at
/// its last switch-out and removes it (`thread_rows`), so this holds the
/// live threads; `--serve` keeps it until the fold after the thread exits.
#[map]
pub static THREADS: HashMap<u32, ThreadStats> =
    HashMap::with_max_entries(MAX_THREAD_ROWS, crate::maps::ALLOCATE_ON_INSERT);

/// `TASK_DEAD` in `prev_state`: the task's last switch (do_task_dead()).
/// A kernel constant (include/linux/sched.h, 0x80 since 4.14), not a
/// struct offset.
const TASK_DEAD: u32 = 0x80;

/// `sched_switch(bool preempt, struct task_struct *prev, struct
/// task_struct *next, unsigned int prev_state)`. Voluntary: `prev` was not
/// preempted and is no longer runnable (asleep, stopped, exiting), as the
/// tracefs record's `prev_state` tells it.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    let prev_state: u64 = ctx.arg(3);
    switched(&ctx, prev_state as u32)
}

/// `sched_switch(bool preempt, struct task_struct *prev, struct
/// task_struct *next)`: kernels before 5.18 pass no `prev_state`; it is
/// `prev`'s state word (`__state`, `state` before 5.14), which `__schedule()`
/// has not changed yet when the tracepoint fires.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch_no_prev_state(ctx: RawTracePointContext) -> i32 {
    let prev: u64 = ctx.arg(1);
    // The low word: `state` is a `long` before 5.14, its flags in the low bits.
    let prev_state = read_kernel::<u32>(prev, config!(structs.task_state)).unwrap_or(0);
    switched(&ctx, prev_state)
}

#[inline(always)]
fn switched(ctx: &RawTracePointContext, prev_state: u32) -> i32 {
    let now = unsafe { bpf_ktime_get_ns() };

    // The tracepoint runs in the context of `prev`, the task leaving the CPU.
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if tid != 0 {
        // A thread with a record keeps being counted to its last switch, even
        // after its process left TRACED on exit.
        let thread = match THREADS.get_ptr_mut(tid) {
            Some(thread) => Some(thread),
            // Alive when its process became traced, its switch-in not
            // seen: counted from now (the stretch ending now is not).
            None if unsafe { TRACED.get(tgid) }.is_some() => {
                new_thread(tid, tgid, 0, task_runtime(ctx.arg(1)))
            }
            None => None,
        };
        if let Some(thread) = thread {
            // Read for traced threads only: most switches on a machine are
            // of threads that are not.
            let runtime = task_runtime(ctx.arg(1));
            let thread = unsafe { &mut *thread };
            if thread.last_off_ns != 0 && thread.last_on_ns <= thread.last_off_ns && runtime != 0 {
                // It was switched out and runs now, but the switch that put
                // it back on a CPU never reached this program: on 6.18 (this
                // VM kind) a switch away from some tasks does not (the
                // sandbox's agent threads: a bpftrace probe misses the same
                // ones). Its switch-in is made here, when the scheduler's
                // own count says it began: a sleep it woke from is charged,
                // not left open until its thread ends.
                let ran = runtime.saturating_sub(thread.runtime_ns);
                let on_since = now.saturating_sub(ran).max(thread.last_off_ns);
                switched_in(thread, tid, on_since);
            }
            let preempt: u64 = ctx.arg(0);
            let voluntary = preempt & 0xff == 0 && prev_state != 0;
            switched_out(thread, tgid, tid, voluntary, now, runtime);
            if prev_state & TASK_DEAD != 0 && config!(thread_rows) != 0 {
                thread_ended(thread, tgid, tid, now);
            }
        }
    }

    let next_task: u64 = ctx.arg(2);
    let Some(next) = task_pid(next_task) else {
        return 0;
    };
    if next == 0 || next > i32::MAX as u32 {
        return 0;
    }
    match THREADS.get_ptr_mut(next) {
        Some(thread) => switched_in(unsafe { &mut *thread }, next, now),
        // First time on a CPU since its process became traced (threads
        // forked while traced have their row from the fork): the main
        // thread, or one of its threads, fixed up at its first switch-out.
        None if unsafe { TRACED.get(next) }.is_some() => {
            new_thread(next, next, now, task_runtime(next_task));
            if config!(timeline) != 0 {
                emit_switch(next, next, 0, now);
            }
        }
        None => {}
    }
    0
}

/// Thread `tid` went on a CPU at `now`: the time since its switch-out was
/// off CPU, and a sleep it was in has ended. A call, not inlined: the
/// switch-in is made in two places (see `switched`).
#[inline(never)]
fn switched_in(thread: &mut ThreadStats, tid: u32, now: u64) {
    if thread.last_off_ns != 0 {
        thread.off_cpu_ns += now.saturating_sub(thread.last_off_ns);
    }
    thread.last_on_ns = now;
    crate::python::woke_up(tid, now);
    if config!(timeline) != 0 {
        emit_switch(thread.tgid, tid, 0, now);
    }
}

/// The thread's last switch: its row goes to userspace in one record and
/// leaves the table, with its other per-thread rows. When the ring buffer
/// is full the row stays (the snapshot at the end reads it): nothing lost.
#[inline(never)]
fn thread_ended(thread: &ThreadStats, tgid: u32, tid: u32, now: u64) {
    let _ = INFLIGHT.remove(tid);
    crate::python::thread_ended(tid);
    let Some(mut entry) = EVENTS.reserve::<ThreadExitedEvent>(0) else {
        return;
    };
    entry.write(ThreadExitedEvent {
        header: EventHeader {
            kind: EventKind::ThreadExited as u32,
            tgid,
            tid,
            _pad: 0,
            ts_ns: now,
        },
        stats: *thread,
    });
    entry.submit(lazy_wakeup());
    let _ = THREADS.remove(tid);
}

/// A thread or process forked by a traced thread (`tgid`: its process):
/// its row is made now, so it is counted from its first instant even when
/// the switch onto a CPU that starts it is not seen. That happens: on
/// 6.18, a switch away from some tasks (this VM's init threads) does not
/// reach the tracepoint's programs, and a short-lived child started that
/// way had no row at all.
#[inline(always)]
pub fn thread_forked(tid: u32, tgid: u32) {
    // A new task's `sum_exec_runtime` starts at 0 (sched_fork()).
    let _ = new_thread(tid, tgid, 0, 0);
}

/// A traced thread is exiting (`sched_process_exit`, its context): a row
/// for it if it has none yet, so its last switch-out sends one even though
/// its process may have left `TRACED` by then.
#[inline(always)]
pub fn thread_exiting(tid: u32, tgid: u32) {
    if unsafe { THREADS.get(tid) }.is_none() {
        let task = unsafe { aya_ebpf::helpers::bpf_get_current_task() };
        let _ = new_thread(tid, tgid, 0, task_runtime(task));
    }
}

/// `task->se.sum_exec_runtime` (0 when the kernel's BTF did not say where).
#[inline(always)]
fn task_runtime(task: u64) -> u64 {
    let offset = config!(structs.task_runtime);
    if offset == 0 {
        return 0;
    }
    read_kernel::<u64>(task, offset).unwrap_or(0)
}

#[inline(always)]
fn new_thread(tid: u32, tgid: u32, on_cpu_since: u64, runtime: u64) -> Option<*mut ThreadStats> {
    let fresh = ThreadStats {
        tgid,
        last_on_ns: on_cpu_since,
        runtime_ns: runtime,
        ..ThreadStats::default()
    };
    if THREADS.insert(tid, fresh, 0).is_err() {
        count_drop(drops::THREADS);
        return None;
    }
    THREADS.get_ptr_mut(tid)
}

#[inline(always)]
fn switched_out(
    thread: &mut ThreadStats,
    tgid: u32,
    tid: u32,
    voluntary: bool,
    now: u64,
    runtime: u64,
) {
    // A thread's switches are serialised (it cannot run on two CPUs), so
    // plain updates are safe here.
    thread.tgid = tgid;
    if thread.comm[0] == 0 {
        thread.comm = bpf_get_current_comm().unwrap_or_default();
    }
    let mut flags = switch_flags::OUT;
    if voluntary {
        thread.voluntary += 1;
        flags |= switch_flags::VOLUNTARY;
        if crate::python::went_to_sleep(tgid, tid, now) {
            flags |= switch_flags::STACK;
        }
    } else {
        thread.involuntary += 1;
    }
    if config!(timeline) != 0 {
        emit_switch(tgid, tid, flags, now);
    }
    if thread.last_on_ns > thread.last_off_ns {
        thread.on_cpu_ns += now.saturating_sub(thread.last_on_ns);
    } else if runtime != 0 {
        // The switch onto the CPU was not seen (see `thread_forked`): the
        // scheduler's own count says how long this stretch ran.
        thread.on_cpu_ns += runtime.saturating_sub(thread.runtime_ns);
    }
    thread.runtime_ns = runtime;
    thread.last_off_ns = now;

    if let Some(read) = INFLIGHT.get_ptr_mut(tid) {
        let read = unsafe { &mut *read };
        if read.start_ns == 0 {
            return; // idle slot: not inside a read
        }
        if voluntary {
            read.voluntary += 1;
        } else {
            read.involuntary += 1;
        }
    }
}

/// `--perfetto`: the switch as a record (drained on userspace's tick, no
/// wake-up: one per switch).
#[inline(always)]
fn emit_switch(tgid: u32, tid: u32, flags: u32, now: u64) {
    let Some(mut entry) = EVENTS.reserve::<SwitchEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(EventHeader {
            kind: EventKind::Switched as u32,
            tgid,
            tid,
            _pad: 0,
            ts_ns: now,
        });
        core::ptr::addr_of_mut!((*event).flags).write(flags);
        core::ptr::addr_of_mut!((*event)._pad).write(0);
        let frames = core::ptr::addr_of_mut!((*event).frames).cast::<PyFrameRecord>();
        if flags & switch_flags::STACK != 0 {
            crate::python::copy_sleep_stack(frames);
        } else {
            for i in 0..PY_EVENT_DEPTH {
                frames.add(i).write(PyFrameRecord::default());
            }
        }
    }
    entry.submit(crate::maps::RB_NO_WAKEUP);
}
