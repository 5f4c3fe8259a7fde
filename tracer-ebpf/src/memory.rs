//! Memory: the OOM killer's kills. A kprobe on `oom_kill_process(oc,
//! message)` sees its choice (`oc->chosen`), the cgroup whose limit was hit
//! (`oc->memcg`; none: the whole node) and the victim's resident memory, on
//! every kernel with kprobes (the `oom:mark_victim` tracepoint carries the
//! figures only since 6.8 and its backports). A kernel built without
//! kprobes is told of kills by `mark_victim`, where it passes the task.
//! Userspace attaches one of the two, only where its offsets were found.
//! Kills are rare and always told: userspace keeps those of traced
//! processes.
//!
//! Memory growth: every Nth minor page fault of a traced thread (a perf
//! software event with that period, opened by userspace) runs
//! [`memory_fault`], which sends the thread's Python stack with the
//! process's resident memory then. A process's peak resident memory is
//! read as its last thread exits ([`peak_rss_pages`]).
//!
//! Huge pages collapsed: khugepaged (or `MADV_COLLAPSE`) replaces a
//! traced process's small pages with a huge page, mapping the pages that
//! were not there too, with no fault of the process's own threads: its
//! resident memory rises by up to 511 pages at once, and would be charged
//! to whichever thread's sample came next (a collapse a thread of the
//! process asked for, `MADV_COLLAPSE`, is its own). [`huge_page_isolated`]
//! marks a collapse under way before it maps anything, and
//! [`huge_page_collapse`], at its end, tells userspace how many pages it
//! added ([`HugePageCollapsedEvent`]), to be charged to no line. Fault
//! samples taken in between are marked, for userspace to hold until it
//! knows whether their rise holds a collapse.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{kprobe, map, perf_event, raw_tracepoint},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::{PerfEventContext, ProbeContext, RawTracePointContext},
};
use tracer_common::{
    COMM_LEN, EventKind, HugePageCollapsedEvent, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES,
    OOM_CGROUP_DEPTH, OOM_CGROUP_NAME, OomKillEvent, RSS_COLLAPSE_IN_FLIGHT, drops,
};

use crate::maps::{EVENTS, config, count_drop, header, read_kernel};

#[kprobe]
pub fn oom_kill(ctx: ProbeContext) -> u32 {
    if let Some(oc) = ctx.arg::<u64>(0) {
        oom_kill_process(oc);
    }
    0
}

/// `mark_victim(task, uid)` (6.8+), where the kernel has no kprobes and
/// no BPF trampolines to see `oom_kill_process` with: the victim, but not
/// the OOM killer's measure. The cgroup whose limit was hit is found from
/// the victim's memory cgroup up: the first with a limit its usage is at
/// (nothing is freed yet: the kill was just sent).
#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn mark_victim(ctx: RawTracePointContext) -> i32 {
    let o = config!(memory);
    let victim: u64 = ctx.arg(0);
    let css_set = read_kernel::<u64>(victim, o.task_cgroups).unwrap_or(0);
    let mut css = read_kernel::<u64>(css_set, o.css_set_memory).unwrap_or(0);
    let mut at_limit = 0;
    for _ in 0..OOM_CGROUP_DEPTH {
        if css == 0 {
            break;
        }
        let memcg = css - o.memcg_css as u64;
        let max = read_kernel::<u64>(memcg, o.memcg_max).unwrap_or(UNLIMITED);
        let usage = read_kernel::<u64>(memcg, o.memcg_usage).unwrap_or(0);
        if max < UNLIMITED && usage.saturating_add(AT_LIMIT_PAGES) >= max {
            at_limit = memcg;
            break;
        }
        css = read_kernel::<u64>(css, o.css_parent).unwrap_or(0);
    }
    send(victim, at_limit, 0, 0);
    0
}

/// A memory cgroup's limit at or above this many pages is none (the
/// kernel's `PAGE_COUNTER_MAX` is `LONG_MAX / PAGE_SIZE`).
const UNLIMITED: u64 = 1 << 50;
/// A charge that fails leaves the usage within a batch (up to a huge
/// page's 512 pages) of the limit.
const AT_LIMIT_PAGES: u64 = 1024;

/// `oom_kill_process(oc, message)` was called: its choice, sent.
#[inline(always)]
fn oom_kill_process(oc: u64) {
    let o = config!(memory);
    let Some(victim) = read_kernel::<u64>(oc, o.oc_chosen).filter(|&t| t != 0) else {
        return;
    };
    let memcg = read_kernel::<u64>(oc, o.oc_memcg).unwrap_or(0);
    send(
        victim,
        memcg,
        read_kernel::<u64>(oc, o.oc_totalpages).unwrap_or(0),
        read_kernel::<i64>(oc, o.oc_chosen_points).unwrap_or(0),
    );
}

/// The record of a kill: the victim, the cgroup whose limit was hit (0:
/// the node), the killer's measure and score (0: not known).
#[inline(always)]
fn send(victim: u64, memcg: u64, totalpages: u64, points: i64) {
    let o = config!(memory);
    let Some(mut entry) = EVENTS.reserve::<OomKillEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let event = entry.as_mut_ptr();
    // SAFETY: fields of the reserved record, written in place.
    unsafe {
        core::ptr::addr_of_mut!((*event).header).write(header(
            EventKind::OomKill,
            (pid_tgid >> 32) as u32,
            pid_tgid as u32,
        ));
        core::ptr::addr_of_mut!((*event).victim_tgid)
            .write(read_kernel::<u32>(victim, o.task_tgid).unwrap_or(0));
        core::ptr::addr_of_mut!((*event).victim_tid)
            .write(read_kernel::<u32>(victim, config!(structs.task_pid)).unwrap_or(0));
        core::ptr::addr_of_mut!((*event).victim_comm).write(
            read_kernel::<[u8; COMM_LEN]>(victim, config!(structs.task_comm)).unwrap_or_default(),
        );
        core::ptr::addr_of_mut!((*event).trigger_comm)
            .write(bpf_get_current_comm().unwrap_or_default());
        core::ptr::addr_of_mut!((*event).totalpages).write(totalpages);
        core::ptr::addr_of_mut!((*event).points).write(points);
        // The victim's resident memory, as /proc/PID/status says it now.
        let mm = read_kernel::<u64>(victim, config!(structs.task_mm)).unwrap_or(0);
        let rss = core::ptr::addr_of_mut!((*event).rss_pages).cast::<u64>();
        for i in 0..4u32 {
            rss.add(i as usize).write(rss_counter(mm, i));
        }
        core::ptr::addr_of_mut!((*event).total_vm_pages)
            .write(read_kernel::<u64>(mm, o.mm_total_vm).unwrap_or(0));
        let (max, usage) = if memcg == 0 {
            (u64::MAX, 0)
        } else {
            (
                read_kernel::<u64>(memcg, o.memcg_max).unwrap_or(0),
                read_kernel::<u64>(memcg, o.memcg_usage).unwrap_or(0),
            )
        };
        core::ptr::addr_of_mut!((*event).memcg_max_pages).write(max);
        core::ptr::addr_of_mut!((*event).memcg_usage_pages).write(usage);
        // The cgroup's path, from its kernfs node up to the hierarchy's
        // root (which has no parent and no name of its own in the path).
        let cgroup = read_kernel::<u64>(memcg, o.memcg_cgroup).unwrap_or(0);
        let mut kn = read_kernel::<u64>(cgroup, o.cgroup_kn).unwrap_or(0);
        core::ptr::addr_of_mut!((*event).memcg_id)
            .write(read_kernel::<u64>(kn, o.kn_id).unwrap_or(0));
        let names = core::ptr::addr_of_mut!((*event).cgroup_names).cast::<[u8; OOM_CGROUP_NAME]>();
        let mut depth = 0u32;
        for i in 0..OOM_CGROUP_DEPTH {
            let parent = read_kernel::<u64>(kn, o.kn_parent).unwrap_or(0);
            let name = read_kernel::<u64>(kn, o.kn_name).unwrap_or(0);
            let slot = &mut *names.add(i);
            if parent == 0 || name == 0 {
                slot[0] = 0;
                kn = 0;
                continue;
            }
            if bpf_probe_read_kernel_str_bytes(name as *const u8, slot).is_err() {
                slot[0] = 0;
            }
            depth += 1;
            kn = parent;
        }
        core::ptr::addr_of_mut!((*event).cgroup_depth).write(depth);
        let more = kn != 0 && read_kernel::<u64>(kn, o.kn_parent).unwrap_or(0) != 0;
        core::ptr::addr_of_mut!((*event).cgroup_truncated).write(u32::from(more));
    }
    entry.submit(crate::maps::RB_FORCE_WAKEUP);
}

/// Runs of [`memory_fault`] (slot 0), and those in a traced process with no
/// interpreter known (slot 1: not Python, or not found yet; nothing sent).
/// Userspace sets the runs against the faults the events counted: the
/// kernel does not run a sampling event's program when it throttles it
/// (`perf_event_max_sample_rate`), and says so nowhere else.
#[map]
static FAULT_RUNS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// `rss_stat` counter `index` (`MM_*`) of `mm`, in pages (0: unknown).
#[inline(always)]
fn rss_counter(mm: u64, index: u32) -> u64 {
    let o = config!(memory);
    let at = o.mm_rss_stat + index * o.rss_counter_size + o.rss_counter_value;
    read_kernel::<i64>(mm, at).unwrap_or(0).max(0) as u64
}

/// The resident pages of `mm` (file, anonymous and shared memory), as
/// /proc/PID/statm says; 0 without the offsets or the mm.
#[inline(always)]
fn rss_pages(mm: u64) -> u64 {
    if mm == 0 || config!(memory.valid) == 0 {
        return 0;
    }
    rss_counter(mm, MM_FILEPAGES as u32)
        + rss_counter(mm, MM_ANONPAGES as u32)
        + rss_counter(mm, MM_SHMEMPAGES as u32)
}

/// The resident pages of the current thread's `mm` with what its own
/// faults added and it has not folded into them yet (before 6.2 each
/// thread holds up to 64 faults' worth back: read alone, the counters
/// would show a thread's pages up to a sample late, in another line's
/// rise). Other threads' held pages still come late.
#[inline(always)]
fn own_rss_pages(task: u64, mm: u64) -> u64 {
    let rss = rss_pages(mm);
    let at = config!(memory.task_rss_cached);
    if rss == 0 || at == 0 {
        return rss;
    }
    // The four counters in one read (`int count[NR_MM_COUNTERS]`).
    let held = read_kernel::<[i32; 4]>(task, at).unwrap_or_default();
    let held = held[MM_FILEPAGES] as i64 + held[MM_ANONPAGES] as i64 + held[MM_SHMEMPAGES] as i64;
    (rss as i64 + held).max(0) as u64
}

/// The exiting process's peak resident memory (pages): what `do_exit()`
/// kept in `signal->maxrss` for its last thread, or the resident memory
/// now where the tracepoint comes before that (0: unknown).
#[inline(always)]
pub fn peak_rss_pages() -> u32 {
    let o = config!(memory);
    if o.valid == 0 {
        return 0;
    }
    let task = unsafe { bpf_get_current_task() };
    let signal = read_kernel::<u64>(task, o.task_signal).unwrap_or(0);
    let maxrss = read_kernel::<u64>(signal, o.signal_maxrss).unwrap_or(0);
    let mm = read_kernel::<u64>(task, config!(structs.task_mm)).unwrap_or(0);
    maxrss.max(rss_pages(mm)).min(u32::MAX as u64) as u32
}

/// Every Nth minor page fault of a traced thread: its Python stack and the
/// process's resident memory, for memory growth by line. Threads of
/// processes with no interpreter known are not sampled.
#[perf_event]
pub fn memory_fault(ctx: PerfEventContext) -> u32 {
    if let Some(runs) = FAULT_RUNS.get_ptr_mut(0) {
        // SAFETY: this CPU's slot.
        unsafe { crate::maps::add_relaxed(runs, 1) };
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if unsafe { crate::maps::TRACED.get(&tgid) }.is_none() {
        return 0;
    }
    let Some(cfg) = crate::python::config_of(tgid) else {
        if let Some(runs) = FAULT_RUNS.get_ptr_mut(1) {
            // SAFETY: this CPU's slot.
            unsafe { crate::maps::add_relaxed(runs, 1) };
        }
        return 0;
    };
    let task = unsafe { bpf_get_current_task() };
    let mm = read_kernel::<u64>(task, config!(structs.task_mm)).unwrap_or(0);
    if mm != 0 && unsafe { MM_OWNERS.get(&mm) } != Some(&tgid) {
        let _ = MM_OWNERS.insert(&mm, &tgid, 0);
    }
    // The mark is read after the resident memory: a collapse whose pages
    // that read holds had begun its flight before it, so it is either
    // still under way now (marked) or told already (its record comes
    // before this one).
    let rss_and_mark = || {
        let rss = own_rss_pages(task, mm);
        let in_flight = COLLAPSES_IN_FLIGHT.get(0).is_some_and(|n| *n != 0);
        rss | if in_flight { RSS_COLLAPSE_IN_FLIGHT } else { 0 }
    };
    crate::python::fault_sample(&ctx, cfg, tgid, pid_tgid as u32, rss_and_mark);
    0
}

/// The process of each `mm` whose faults were sampled: a collapse names
/// the `mm` alone (khugepaged runs as itself).
#[map]
static MM_OWNERS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(8192, 0);

/// Collapses under way: each thread's (khugepaged's, or a caller of
/// `MADV_COLLAPSE`) from the isolation of its range's pages, before the
/// collapse changes any counter, to the collapse's end, where it is told:
/// the pages the huge page will map where none was (`none_or_zero`).
#[map]
static COLLAPSING: LruHashMap<u32, u64> = LruHashMap::with_max_entries(256, 0);

/// How many collapses are under way on the node. A fault sample taken
/// meanwhile is marked ([`RSS_COLLAPSE_IN_FLIGHT`]): the resident memory
/// it read may hold pages whose collapse is told after it (on a
/// preemptible kernel khugepaged, nice 19, can be kept off its CPU for
/// seconds in between), and userspace holds such samples until it knows.
#[map]
static COLLAPSES_IN_FLIGHT: Array<u64> = Array::with_max_entries(1, 0);

/// `mm_collapse_huge_page_isolate(page or folio, none_or_zero, ...)`: a
/// collapse has isolated its range, under the `mm`'s write lock, and has
/// not yet mapped anything. Its status is not read (the last argument,
/// whose place differs by kernel): whatever it is, the collapse ends in
/// [`huge_page_collapse`], which ends the flight.
#[raw_tracepoint(tracepoint = "mm_collapse_huge_page_isolate")]
pub fn huge_page_isolated(ctx: RawTracePointContext) -> i32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let none_or_zero = (ctx.arg::<u64>(1) as i32).max(0) as u64;
    if unsafe { COLLAPSING.get(&tid) }.is_none() {
        if let Some(count) = COLLAPSES_IN_FLIGHT.get_ptr_mut(0) {
            // SAFETY: a map value, added to atomically.
            unsafe { crate::maps::add_relaxed(count, 1) };
        }
    }
    let _ = COLLAPSING.insert(&tid, &none_or_zero, 0);
    0
}

/// `mm_collapse_huge_page(mm, isolated, status)`: the end of a collapse
/// (every path after the isolation passes here). One that succeeded is
/// told now, then the flight ends: a sample not marked comes after this
/// record in the ring buffer.
#[raw_tracepoint(tracepoint = "mm_collapse_huge_page")]
pub fn huge_page_collapse(ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    let Some(&pages) = (unsafe { COLLAPSING.get(&tid) }) else {
        return 0;
    };
    let status = ctx.arg::<u64>(2) as u32;
    let mm: u64 = ctx.arg(0);
    if status == config!(memory.scan_succeed) && pages != 0 {
        tell_collapse(pid_tgid, mm, pages);
    }
    let _ = COLLAPSING.remove(&tid);
    if let Some(count) = COLLAPSES_IN_FLIGHT.get_ptr_mut(0) {
        // SAFETY: a map value, added to atomically (-1).
        unsafe { crate::maps::add_relaxed(count, u64::MAX) };
    }
    0
}

/// A collapse by `pid_tgid` mapped `pages` more into `mm`: told when the
/// `mm` is a traced process's and the collapse is not its own thread's
/// (`MADV_COLLAPSE`: that thread's growth, charged to it at its next
/// sample).
#[inline(always)]
fn tell_collapse(pid_tgid: u64, mm: u64, pages: u64) {
    let Some(&tgid) = (unsafe { MM_OWNERS.get(&mm) }) else {
        return;
    };
    if (pid_tgid >> 32) as u32 == tgid {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<HugePageCollapsedEvent>(0) else {
        count_drop(drops::RINGBUF);
        return;
    };
    entry.write(HugePageCollapsedEvent {
        header: header(EventKind::HugePageCollapsed, tgid, pid_tgid as u32),
        pages,
        rss_pages: rss_pages(mm),
    });
    entry.submit(0);
}
