//! The memory section's types: the OOM killer's kills, and memory growth
//! by Python line (sampled page faults).

use serde::{Deserialize, Serialize};

use super::Container;
use crate::frame::Frame;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Memory {
    /// Every kill of the OOM killer whose victim or trigger was traced,
    /// in time order.
    #[serde(default)]
    pub oom_kills: Vec<OomKill>,
    /// Memory growth: the memory a thread faults in between two samples
    /// (the fault period times the page size; 0: faults were not sampled).
    #[serde(default)]
    pub growth_sample_bytes: u64,
    /// Why faults were not sampled, when asked for but not possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_error: Option<String>,
    /// The minor faults of the traced threads since their events were
    /// opened, as the kernel counted them (absent node-wide: those events
    /// count every process of their CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults_counted: Option<u64>,
    /// Samples the kernel did not take (it throttles a sampling event whose
    /// program runs more often than its budget allows,
    /// `perf_event_max_sample_rate`): growth is then charged in coarser
    /// steps, none of it lost.
    #[serde(default)]
    pub fault_samples_missed: u64,
    /// Runs of the kernel's page-fault sampler (a traced thread's Python
    /// stack sent, or not: a process with no interpreter known).
    #[serde(default)]
    pub fault_samples_taken: u64,
    /// ...of which in processes with no interpreter known then (not
    /// Python, or before the tracer found it): their growth is no line's.
    #[serde(default)]
    pub fault_samples_without_interpreter: u64,
    /// Python processes whose faults were sampled, by bytes grown (highest
    /// first).
    #[serde(default)]
    pub processes: Vec<MemoryProcess>,
}

/// One Python process's memory: its peak, and where its resident memory
/// grew: each rise of it between two sampled faults is charged to the
/// stack of the second. Memory freed is not taken off the lines that grew
/// it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryProcess {
    pub pid: u32,
    pub comm: String,
    /// Its peak resident memory: as the kernel kept it when the process
    /// exited (getrusage's `ru_maxrss`), else `VmHWM` at the trace's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Its resident memory at its last sampled fault.
    pub last_rss_bytes: u64,
    /// Sampled faults, and the growth charged to them: every rise of its
    /// resident memory from its first sample on (where the resident memory
    /// is not known: `samples * growth_sample_bytes`).
    pub samples: u64,
    pub grown_bytes: u64,
    /// Samples whose stack was torn (read while it changed), and their
    /// growth: in `grown_bytes`, charged to no line.
    #[serde(default)]
    pub torn_samples: u64,
    #[serde(default)]
    pub torn_bytes: u64,
    /// What khugepaged's collapses of its pages into huge pages mapped
    /// where no page was: a rise of its resident memory no fault of its
    /// own made, charged to no line (not in `grown_bytes`).
    #[serde(default)]
    pub collapsed_bytes: u64,
    /// Its Python lines (the innermost Python frame of each sample) by
    /// bytes grown, highest first (top 20).
    pub lines: Vec<GrowthLine>,
    /// Its stacks by bytes grown, highest first (top 50; the rest in
    /// `growth_left_out_bytes`). A sample of a thread with no Python
    /// frame (interpreter start-up, a C thread) has no frames.
    pub growth: Vec<Growth>,
    #[serde(default)]
    pub growth_left_out_bytes: u64,
    /// Its resident memory at each sampled fault (at most 2,000 points,
    /// thinned evenly over the trace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rss: Vec<RssPoint>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GrowthLine {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub bytes: u64,
    pub samples: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Growth {
    pub bytes: u64,
    pub samples: u64,
    /// Deeper than the walk's bound: the outermost frames are missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Innermost first, as `python.stacks[].frames`.
    #[serde(with = "crate::frame::as_stack_frames")]
    pub frames: Vec<Frame>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct RssPoint {
    /// Seconds since tracing started.
    pub t_s: f64,
    pub bytes: u64,
}

/// One kill of the OOM killer: whom it chose, the limit that was hit, the
/// victim's memory at the kill.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OomKill {
    /// The victim process (its thread the killer chose: `tid`).
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// Seconds since tracing started.
    pub t_s: f64,
    /// The task whose allocation ran out of memory (often another process).
    pub trigger_pid: u32,
    pub trigger_tid: u32,
    pub trigger_comm: String,
    /// `"cgroup"`: a memory cgroup's limit was hit (`cgroup`, its
    /// `memory.max`, v1 `memory.limit_in_bytes`); `"node"`: the whole
    /// node's memory (RAM and swap).
    pub scope: String,
    pub limit_bytes: u64,
    /// The cgroup whose limit was hit, its path in its hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Its usage when the killer ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_usage_bytes: Option<u64>,
    /// The victim's container (its `processes` row's), when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The victim's resident memory at the kill (anonymous, file-backed
    /// and shared memory, as /proc/PID/status counts them), and its
    /// memory in swap.
    pub rss_bytes: u64,
    pub anon_rss_bytes: u64,
    pub file_rss_bytes: u64,
    pub shmem_rss_bytes: u64,
    pub swap_bytes: u64,
    pub total_vm_bytes: u64,
    /// The killer's badness score of the victim (`oom_badness`).
    pub points: i64,
}
