//! The sched section: context switches and CPU time, per thread.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sched {
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    /// The context switches that happened inside read syscalls (the sum of
    /// `reads[].context_switches`).
    #[serde(default)]
    pub inside_reads: ContextSwitches,
    /// The same inside write syscalls and syncs (`writes[]`'s sum).
    #[serde(default)]
    pub inside_writes: ContextSwitches,
    pub threads: Vec<ThreadSched>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadSched {
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    /// Its Python name (`threading.Thread.name`), when it is a Python
    /// thread whose name could be read.
    #[serde(default)]
    pub name: Option<String>,
    pub voluntary: u64,
    pub involuntary: u64,
    pub on_cpu_ns: u64,
    /// Off-CPU time, a sleep still in progress at the end included.
    pub off_cpu_ns: u64,
    /// The thread was off CPU when tracing stopped, for this long (0: it
    /// was running, or had exited): a thread stuck in a sleep shows here.
    #[serde(default)]
    pub asleep_at_end_ns: u64,
}

impl ThreadSched {
    /// What to call the thread: its Python name, else its task name.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.comm)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContextSwitches {
    pub voluntary: u64,
    pub involuntary: u64,
}
