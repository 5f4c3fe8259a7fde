//! Event loops: the stalls as the kernel sends them, joined at the end with
//! each thread's iteration counts (the `LOOPS` map) and the CPU samples
//! taken inside its stalls.

use std::collections::BTreeMap;

use tracer_common::{LOOP_BUCKETS_NS, LoopThread};

use super::python::Profile;
use crate::{
    frame::Frame,
    python::PythonTree,
    report::{
        EventLoop, Finding, LoopBucket, MAX_STALLS_LISTED, Sched, Stall,
        format::{duration, thousands},
    },
};

/// Stall windows kept per thread to find the samples inside them; later
/// stalls are still counted.
const MAX_WINDOWS: usize = 100_000;
/// Hotspots and lines kept per loop.
const MAX_ROWS: usize = 10;

#[derive(Default)]
pub struct Loops {
    /// By tid.
    threads: BTreeMap<u32, Stalls>,
}

#[derive(Default)]
struct Stalls {
    pid: u32,
    count: u64,
    max_ns: u64,
    total_ns: u64,
    /// (start, end) from the trace's start, in time order.
    windows: Vec<(u64, u64)>,
    /// The stack that entered the wait ending the first stall that had one.
    wait_stack: Option<Vec<Frame>>,
}

impl Loops {
    /// `--live`: each thread's stalls so far.
    pub fn live_rows(&self) -> Vec<super::live_model::LoopRow> {
        self.threads
            .iter()
            .map(|(&tid, s)| super::live_model::LoopRow {
                pid: s.pid,
                tid,
                stalls: s.count,
                longest: std::time::Duration::from_nanos(s.max_ns),
                total: std::time::Duration::from_nanos(s.total_ns),
                last_s: s.windows.last().map_or(0.0, |&(_, end)| end as f64 / 1e9),
            })
            .collect()
    }

    /// An iteration of `tid`'s loop from `start_ns` to `end_ns` (kernel
    /// clock; `base_ns`: the trace's start) was a stall; `wait_stack`: the
    /// Python stack that entered the next wait.
    pub fn on_stall(
        &mut self,
        (pid, tid): (u32, u32),
        (start_ns, end_ns): (u64, u64),
        base_ns: u64,
        wait_stack: Option<Vec<Frame>>,
    ) {
        let stalls = self.threads.entry(tid).or_default();
        let took = end_ns.saturating_sub(start_ns);
        stalls.pid = pid;
        stalls.count += 1;
        stalls.max_ns = stalls.max_ns.max(took);
        stalls.total_ns += took;
        if stalls.windows.len() < MAX_WINDOWS {
            stalls.windows.push((
                start_ns.saturating_sub(base_ns),
                end_ns.saturating_sub(base_ns),
            ));
        }
        if stalls.wait_stack.is_none() {
            stalls.wait_stack = wait_stack;
        }
    }

    /// One row per thread that stalled: `rows`, the `LOOPS` map's;
    /// `sched`, for the threads' names.
    pub fn finish(
        self,
        rows: &[(u32, LoopThread)],
        threshold_ns: u64,
        profile: &Profile,
        tree: Option<&PythonTree>,
        sched: &Sched,
    ) -> Vec<EventLoop> {
        let iterations: BTreeMap<u32, &LoopThread> = rows.iter().map(|(t, r)| (*t, r)).collect();
        self.threads
            .into_iter()
            .map(|(tid, stalls)| {
                let row = iterations.get(&tid).copied().copied().unwrap_or_default();
                let thread = sched.threads.iter().find(|t| t.tid == tid);
                let wait_stack = stalls.wait_stack.unwrap_or_default();
                let kind = if wait_stack.iter().any(|f| f.file.contains("asyncio")) {
                    "asyncio"
                } else if wait_stack.is_empty() {
                    "native"
                } else {
                    "python"
                };
                let mut inside = tree
                    .map(|tree| profile.section_in(tree, tid, &stalls.windows))
                    .unwrap_or_default();
                inside.hotspots.truncate(MAX_ROWS);
                inside.lines.truncate(MAX_ROWS);
                let mut histogram: Vec<LoopBucket> = LOOP_BUCKETS_NS
                    .iter()
                    .map(|&le| LoopBucket {
                        le_ns: Some(le),
                        count: 0,
                    })
                    .chain([LoopBucket::default()])
                    .collect();
                for (bucket, &count) in histogram.iter_mut().zip(&row.buckets) {
                    bucket.count = count;
                }
                EventLoop {
                    pid: stalls.pid,
                    tid,
                    comm: thread.map(|t| t.comm.clone()).unwrap_or_default(),
                    name: thread.and_then(|t| t.name.clone()),
                    kind: kind.into(),
                    iterations: row.iterations,
                    busy_ns: row.busy_ns,
                    histogram,
                    threshold_ns,
                    stalls: stalls.count,
                    stall_max_ns: stalls.max_ns,
                    stall_total_ns: stalls.total_ns,
                    stall_list: stalls
                        .windows
                        .iter()
                        .take(MAX_STALLS_LISTED)
                        .map(|&(start, end)| Stall {
                            start_ns: start,
                            duration_ns: end - start,
                        })
                        .collect(),
                    wait_stack,
                    samples_in_stalls: inside.samples,
                    hotspots: inside.hotspots,
                    lines: inside.lines,
                    stack: inside.stacks.into_iter().next(),
                }
            })
            .collect()
    }
}

/// `event_loop_blocked`: a Python event loop that stalled.
pub fn findings(loops: &[EventLoop]) -> Vec<Finding> {
    loops
        .iter()
        .filter(|l| l.kind != "native" && l.stalls > 0)
        .map(|l| {
            let who = match &l.name {
                Some(name) => format!("thread {} ({name}) of pid {}", l.tid, l.pid),
                None => format!("thread {} of pid {}", l.tid, l.pid),
            };
            let what = match l.hotspots.first() {
                Some(top) => format!(
                    "; its CPU there was mostly in {} ({}:{})",
                    top.qualname, top.file, top.line
                ),
                None => String::from("; no CPU sample inside (blocked off CPU: a sleep or a blocking call)"),
            };
            let loop_name = if l.kind == "asyncio" { "asyncio event loop" } else { "event loop" };
            Finding::new(
                "event_loop_blocked",
                "event_loops",
                who.clone(),
                format!(
                    "the {loop_name} of {who} was blocked {} time{} for {} or more (longest {}, {} in all){what}",
                    thousands(l.stalls),
                    if l.stalls == 1 { "" } else { "s" },
                    duration(l.threshold_ns),
                    duration(l.stall_max_ns),
                    duration(l.stall_total_ns),
                ),
            )
            .with("count", l.stalls)
            .with("max_ms", l.stall_max_ns / 1_000_000)
            .with("total_ms", l.stall_total_ns / 1_000_000)
            .with("threshold_ms", l.threshold_ns / 1_000_000)
            .with("pid", u64::from(l.pid))
            .with("tid", u64::from(l.tid))
        })
        .collect()
}
