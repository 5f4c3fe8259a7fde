//! Memory: the OOM killer's kills (whom it chose, the limit that was hit,
//! the victim's resident memory at the kill) and the page faults sampled
//! with the Python stack that took them (memory growth by Python line).

use crate::events::{COMM_LEN, EventHeader};

/// Where the OOM killer's choice and what it weighed are, from the
/// kernel's BTF (`oom_kill_process(struct oom_control *oc, ...)`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryOffsets {
    /// 1 if the offsets below are known.
    pub valid: u32,
    /// `oom_control.chosen` (the victim task), `.memcg` (NULL: the whole
    /// node), `.totalpages` (the memory it may use), `.chosen_points`.
    pub oc_chosen: u32,
    pub oc_memcg: u32,
    pub oc_totalpages: u32,
    pub oc_chosen_points: u32,
    /// `task_struct.tgid`.
    pub task_tgid: u32,
    /// `mm_struct.rss_stat`: its counters (file, anon, swap entries, shmem
    /// pages), `atomic_long_t` before 6.2 (size 8, value at 0), a
    /// `percpu_counter` since (its `count`: the folded total, without
    /// what each CPU holds back, less than a batch).
    pub mm_rss_stat: u32,
    pub rss_counter_size: u32,
    pub rss_counter_value: u32,
    /// `mm_struct.total_vm` (pages).
    pub mm_total_vm: u32,
    /// `mem_cgroup.memory` (a `page_counter`): its `max` and `usage` (pages).
    pub memcg_max: u32,
    pub memcg_usage: u32,
    /// `mem_cgroup.css.cgroup`, `cgroup.kn`, `kernfs_node.name`, `.parent`
    /// (`__parent` since 6.15), `.id` (the cgroup id).
    pub memcg_cgroup: u32,
    pub cgroup_kn: u32,
    pub kn_name: u32,
    pub kn_parent: u32,
    pub kn_id: u32,
    /// A task's memory cgroup: `task_struct.cgroups`, the memory
    /// controller's slot of `css_set.subsys[]`, `mem_cgroup.css`, and
    /// `cgroup_subsys_state.parent`.
    pub task_cgroups: u32,
    pub css_set_memory: u32,
    pub memcg_css: u32,
    pub css_parent: u32,
    /// 1: the `mark_victim` tracepoint passes the victim task (6.8 and
    /// backports), where kernels without kprobes are told of kills (read
    /// by userspace, which attaches it only then).
    pub mark_victim_task: u32,
    /// How many arguments `mm_collapse_huge_page_isolate` passes (4 to 6:
    /// `writable` went and an order may come; 0: no such tracepoint, or
    /// another layout: collapses not told), of which the tracer reads the
    /// 2nd, `none_or_zero`; `SCAN_SUCCEED`'s value (a collapse's status).
    pub isolate_args: u32,
    pub scan_succeed: u32,
    /// `task_struct.signal` and `signal_struct.maxrss`: the peak resident
    /// memory (pages) of the process's threads gone and, once its last
    /// thread is exiting, of the whole process (what getrusage says).
    pub task_signal: u32,
    pub signal_maxrss: u32,
    /// `task_struct.rss_stat.count` (before 6.2; 0: none): the pages a
    /// thread's faults added that its process's counters do not hold yet
    /// (`int`s, by `MM_*`; folded in every 64 faults or so, and as it
    /// exits).
    pub task_rss_cached: u32,
}

/// A cgroup path's components kept (innermost first) and the bytes of each.
pub const OOM_CGROUP_DEPTH: usize = 8;
pub const OOM_CGROUP_NAME: usize = 96;

/// `rss_stat` counters, by index (`NR_MM_COUNTERS`'s order since 4.5).
pub const MM_FILEPAGES: usize = 0;
pub const MM_ANONPAGES: usize = 1;
pub const MM_SWAPENTS: usize = 2;
pub const MM_SHMEMPAGES: usize = 3;

/// `oom_kill_process` (a kprobe): the OOM killer chose a victim. The
/// header's task is the one whose allocation ran out of memory (often
/// another process).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomKillEvent {
    pub header: EventHeader,
    pub victim_tgid: u32,
    pub victim_tid: u32,
    pub victim_comm: [u8; COMM_LEN],
    pub trigger_comm: [u8; COMM_LEN],
    /// `oc->totalpages`: the memory the OOM killer measured against.
    pub totalpages: u64,
    /// `oc->chosen_points`: the victim's badness.
    pub points: i64,
    /// The cgroup whose limit was hit: `memory.max` (v1:
    /// `memory.limit_in_bytes`) and usage, in pages; `u64::MAX`: no
    /// cgroup, the whole node ran out.
    pub memcg_max_pages: u64,
    pub memcg_usage_pages: u64,
    /// Its cgroup id (kernfs id), 0 without one.
    pub memcg_id: u64,
    /// The victim's `rss_stat` counters (pages), indexed by `MM_*`.
    pub rss_pages: [u64; 4],
    pub total_vm_pages: u64,
    /// Components of the cgroup's path read (innermost first, each
    /// NUL-terminated), and 1 if it has more.
    pub cgroup_depth: u32,
    pub cgroup_truncated: u32,
    pub cgroup_names: [[u8; OOM_CGROUP_NAME]; OOM_CGROUP_DEPTH],
}

impl Default for OomKillEvent {
    fn default() -> Self {
        // SAFETY: plain integers and byte arrays, for which zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

const _: () = assert!(core::mem::size_of::<MemoryOffsets>() == 4 * 27);
const _: () = assert!(
    core::mem::size_of::<OomKillEvent>()
        == 24 + 8 + 2 * COMM_LEN + 8 * 5 + 8 * 4 + 8 + 8 + OOM_CGROUP_NAME * OOM_CGROUP_DEPTH
);

/// `mm_collapse_huge_page` of a collapse that succeeded: the small
/// pages of a traced process (the header's tgid, found from its `mm`; the
/// tid is the collapsing thread, khugepaged's) were collapsed into a huge
/// page, which maps the pages that were not there too: its resident
/// memory rose by `pages` with no fault of its own threads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HugePageCollapsedEvent {
    pub header: EventHeader,
    /// Pages the huge page mapped where none (or the zero page) was.
    pub pages: u64,
    /// The process's resident pages after it (0: not known).
    pub rss_pages: u64,
}

const _: () = assert!(core::mem::size_of::<HugePageCollapsedEvent>() == 24 + 16);

/// A sampled minor page fault of a Python thread (`EventKind::PyFaultSample`):
/// every Nth fault of the thread (or CPU: the perf event's period) comes
/// with the thread's Python stack and the process's resident memory then.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyFaultSample {
    pub sample: crate::python::PySample,
    /// The process's resident pages (file + anon + shmem) after the fault,
    /// as `rss_stat` folds them (0: not known), with
    /// [`RSS_COLLAPSE_IN_FLIGHT`] set when a huge page collapse was under
    /// way on the node.
    pub rss_pages: u64,
}

/// [`PyFaultSample::rss_pages`]'s top bit: a collapse was under way when
/// the sample was taken, so its resident memory may hold pages whose
/// collapse is told after it.
pub const RSS_COLLAPSE_IN_FLIGHT: u64 = 1 << 63;

const _: () = assert!(
    core::mem::size_of::<PyFaultSample>() == core::mem::size_of::<crate::python::PySample>() + 8
);
