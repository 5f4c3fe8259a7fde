//! Event loops: each traced thread's selector waits (`epoll_wait`,
//! `select`, `poll` and their variants). The time from one wait's return
//! to the next wait's entry is one iteration of the thread's loop, counted
//! in `LOOPS`; an iteration at least `loop_stall_ns` long is a stall, sent
//! with the Python stack that entered the next wait (which loop it is).

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::map, maps::HashMap};
use tracer_common::{EventKind, LOOP_BUCKETS_NS, LoopStallEvent, LoopThread, PyFrameRecord, drops};

use crate::maps::{EVENTS, config, count_drop, current_if_traced, header};

/// Per traced thread that waits in a selector (key: tid).
#[map]
pub static LOOPS: HashMap<u32, LoopThread> =
    HashMap::with_max_entries(16384, crate::maps::ALLOCATE_ON_INSERT);

/// A traced thread enters a selector wait: the iteration since its last
/// wait returned ends here.
#[inline(always)]
pub fn enter_wait(nr: u64, hook: crate::python::Hook) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let Some(thread) = LOOPS.get_ptr_mut(&tid) else {
        return;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: a value of LOOPS, updated by its own thread only.
    let thread = unsafe { &mut *thread };
    if thread.returned_ns == 0 || now < thread.returned_ns {
        return;
    }
    if u64::from(thread.wait_syscall) != nr {
        thread.returned_ns = 0;
        return;
    }
    let took = now - thread.returned_ns;
    let start = thread.returned_ns;
    thread.returned_ns = 0;
    thread.iterations += 1;
    thread.busy_ns += took;
    let mut bucket = LOOP_BUCKETS_NS.len();
    for (i, &bound) in LOOP_BUCKETS_NS.iter().enumerate() {
        if took <= bound {
            bucket = i;
            break;
        }
    }
    if let Some(count) = thread.buckets.get_mut(bucket) {
        *count += 1;
    }
    let threshold = config!(loop_stall_ns);
    if threshold != 0 && took >= threshold {
        stalled(tgid, tid, start, hook);
    }
}

/// A traced thread's selector wait returned: its next iteration begins.
#[inline(always)]
pub fn exit_wait(nr: u64) {
    let Some((tgid, tid)) = current_if_traced() else {
        return;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(thread) = LOOPS.get_ptr_mut(&tid) {
        // SAFETY: as in enter_wait.
        unsafe {
            (*thread).returned_ns = now;
            (*thread).wait_syscall = nr as u32;
        }
        return;
    }
    let thread = LoopThread {
        tgid,
        wait_syscall: nr as u32,
        returned_ns: now,
        ..LoopThread::default()
    };
    if LOOPS.insert(&tid, &thread, 0).is_err() {
        count_drop(drops::TABLES);
    }
}

fn stalled(tgid: u32, tid: u32, start_ns: u64, hook: crate::python::Hook) {
    let Some(mut entry) = EVENTS.reserve::<LoopStallEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(EventKind::LoopStall, tgid, tid));
        core::ptr::addr_of_mut!((*event).start_ns).write(start_ns);
        crate::python::signal_stack(
            tgid,
            tid,
            core::ptr::addr_of_mut!((*event).py_frames).cast::<PyFrameRecord>(),
            hook,
        );
    }
    entry.submit(crate::python::RB_WAKE_FOR_STACK);
}
