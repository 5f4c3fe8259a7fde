//! The memory section's types: the OOM killer's kills.

use serde::{Deserialize, Serialize};

use super::Container;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Memory {
    /// Every kill of the OOM killer whose victim or trigger was traced,
    /// in time order.
    #[serde(default)]
    pub oom_kills: Vec<OomKill>,
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
