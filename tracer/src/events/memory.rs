//! The OOM killer's kill records and the sampled page faults, decoded.

use tracer_common::EventHeader;

use super::c_string;

/// The OOM killer's choice, as the kernel side read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomKill {
    pub ts_ns: u64,
    /// The task whose allocation ran out of memory.
    pub trigger_tgid: u32,
    pub trigger_tid: u32,
    pub trigger_comm: String,
    pub victim_tgid: u32,
    pub victim_tid: u32,
    pub victim_comm: String,
    pub totalpages: u64,
    pub points: i64,
    /// The cgroup whose limit was hit: `None` when the whole node ran out.
    pub cgroup: Option<OomCgroup>,
    /// The victim's `rss_stat` counters (pages), by `tracer_common::MM_*`.
    pub rss_pages: [u64; 4],
    pub total_vm_pages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomCgroup {
    /// Its path in its hierarchy (`/kubepods.slice/...`); `...` first when
    /// deeper than what was read.
    pub path: String,
    pub id: u64,
    pub max_pages: u64,
    pub usage_pages: u64,
}

pub(super) fn oom_kill(header: &EventHeader, event: &tracer_common::OomKillEvent) -> OomKill {
    let cgroup = (event.memcg_max_pages != u64::MAX).then(|| {
        let depth = (event.cgroup_depth as usize).min(tracer_common::OOM_CGROUP_DEPTH);
        let mut path: String = event.cgroup_names[..depth]
            .iter()
            .rev()
            .map(|name| format!("/{}", c_string(name)))
            .collect();
        if event.cgroup_truncated != 0 {
            path.insert_str(0, "/...");
        }
        if path.is_empty() {
            path.push('/');
        }
        OomCgroup {
            path,
            id: event.memcg_id,
            max_pages: event.memcg_max_pages,
            usage_pages: event.memcg_usage_pages,
        }
    });
    OomKill {
        ts_ns: header.ts_ns,
        trigger_tgid: header.tgid,
        trigger_tid: header.tid,
        trigger_comm: c_string(&event.trigger_comm),
        victim_tgid: event.victim_tgid,
        victim_tid: event.victim_tid,
        victim_comm: c_string(&event.victim_comm),
        totalpages: event.totalpages,
        points: event.points,
        cgroup,
        rss_pages: event.rss_pages,
        total_vm_pages: event.total_vm_pages,
    }
}

/// A sampled minor page fault: the thread's Python stack (innermost
/// first; empty: no Python frame) and the process's resident memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSample {
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub frames: Vec<tracer_common::PyFrameRecord>,
    pub truncated: bool,
    /// The walk met a pointer no frame has: the stack is not to be trusted.
    pub torn: bool,
    /// Resident pages after the fault (0: not known).
    pub rss_pages: u64,
    /// A huge page collapse was under way on the node: `rss_pages` may
    /// hold pages whose collapse is told after this sample.
    pub collapse_in_flight: bool,
}

pub(super) fn fault_sample(record: &tracer_common::PyFaultSample) -> FaultSample {
    let sample = &record.sample;
    let depth = (sample.depth as usize).min(tracer_common::PY_MAX_DEPTH);
    FaultSample {
        ts_ns: sample.header.ts_ns,
        tgid: sample.header.tgid,
        tid: sample.header.tid,
        frames: sample.frames[..depth].to_vec(),
        truncated: sample.truncated == 1,
        torn: sample.truncated == tracer_common::PY_SAMPLE_TORN,
        rss_pages: record.rss_pages & !tracer_common::RSS_COLLAPSE_IN_FLIGHT,
        collapse_in_flight: record.rss_pages & tracer_common::RSS_COLLAPSE_IN_FLIGHT != 0,
    }
}
