//! The GIL: per thread, the samples taken while it held the GIL (the
//! sampler reads `locked` and `last_holder`) and the top lines of those
//! samples; at the end, each thread's futex waits on it (`PY_GIL_WAITS`,
//! summed in the kernel) and the lines they waited at (`PY_EVENT_STACKS`,
//! `GIL_WAIT`) join the report's `python.threads[].gil`; and the finding
//! when threads wait for it more than [`WAIT_SHARE_FINDING`] percent of
//! their time.

use std::collections::{BTreeMap, HashMap};

use tracer_common::{PyGilThread, PyGilWait};

use super::hotspots::{line_hotspots, share};
use crate::{
    python::{PythonTree, symbols::FrameId},
    report::{
        EventStack, Finding, Python, PythonThread, Report, Sched, ThreadGil, format::duration,
    },
};

/// A thread waiting for the GIL more than this share of its time (percent)
/// makes the finding.
pub const WAIT_SHARE_FINDING: f64 = 20.0;

/// Holder lines kept in the report.
const MAX_HOLDER_LINES: usize = 20;
/// Lines named in the finding, of each kind.
const LINES_NAMED: usize = 3;

/// What the samples said of the GIL.
#[derive(Default)]
pub struct GilSamples {
    /// (pid, tid) -> samples taken while it held the GIL.
    held: HashMap<(u32, u32), u64>,
    /// The innermost frame of the samples that held it.
    holder_tops: HashMap<FrameId, u64>,
}

impl GilSamples {
    /// One sample of thread `tid` of `pid`; `held`: what the sampler read
    /// (`None`: no GIL known), `top`: its innermost frame.
    pub fn on_sample(&mut self, pid: u32, tid: u32, held: Option<bool>, top: Option<FrameId>) {
        if held != Some(true) {
            return;
        }
        *self.held.entry((pid, tid)).or_default() += 1;
        if let Some(top) = top {
            *self.holder_tops.entry(top).or_default() += 1;
        }
    }
}

/// Whether process `pid` has a GIL this tracer found (`Some(false)`: a
/// free-threaded build; `None`: its interpreter is not known).
fn has_gil(tree: &PythonTree, pid: u32) -> Option<bool> {
    let ready = tree.process(pid)?.ready()?;
    Some(ready.binary.offsets.gil.is_some())
}

/// Fills the section's GIL figures: `threads[].gil` (threads that only
/// waited get a row of their own), `gil`, `gil_waits`, `gil_holder_lines`.
/// `trace_ns`: the trace's length, the time of a thread the scheduler
/// figures do not have.
pub fn fill(
    python: &mut Python,
    samples: &GilSamples,
    tree: &PythonTree,
    waits: &[(PyGilThread, PyGilWait)],
    wait_stacks: Vec<EventStack>,
    sched: &Sched,
    trace_ns: u64,
) {
    let pids: Vec<u32> = tree.processes().map(|p| p.pid()).collect();
    let gils: Vec<Option<bool>> = pids.iter().map(|&pid| has_gil(tree, pid)).collect();
    python.gil = if gils.contains(&Some(true)) {
        Some("measured".into())
    } else if gils.contains(&Some(false)) {
        Some("none".into())
    } else {
        None
    };
    let waits: BTreeMap<(u32, u32), PyGilWait> =
        waits.iter().map(|(k, w)| ((k.tgid, k.tid), *w)).collect();
    for &(pid, tid) in waits.keys() {
        if !python.threads.iter().any(|t| (t.pid, t.tid) == (pid, tid)) {
            python.threads.push(PythonThread {
                pid,
                tid,
                ..PythonThread::default()
            });
        }
    }
    let times: HashMap<(u32, u32), u64> = sched
        .threads
        .iter()
        .map(|t| ((t.pid, t.tid), t.on_cpu_ns + t.off_cpu_ns))
        .collect();
    let figures = |thread: &mut PythonThread| {
        if has_gil(tree, thread.pid) != Some(true) {
            return;
        }
        let key = (thread.pid, thread.tid);
        let wait = waits.get(&key).copied().unwrap_or_default();
        let time = times.get(&key).copied().unwrap_or(trace_ns);
        thread.gil = Some(ThreadGil {
            held_samples: samples.held.get(&key).copied().unwrap_or(0),
            wait_ns: wait.wait_ns,
            waits: wait.waits,
            handoff_ns: wait.switch_ns,
            wait_share: share(wait.wait_ns, time),
        });
    };
    python.threads.iter_mut().for_each(figures);
    // Each process's own rows too (a pid reused names two processes:
    // the figures are per (pid, tid), as the kernel keeps them).
    for process in &mut python.processes {
        process.threads.iter_mut().for_each(figures);
    }
    python.gil_waits = wait_stacks;
    let held: u64 = samples.holder_tops.values().sum();
    let tops = samples
        .holder_tops
        .iter()
        .map(|(&id, &n)| (tree.frame(id), n));
    let lines = line_hotspots(tops, held, MAX_HOLDER_LINES);
    python.gil_holder_lines = lines;
}

/// Threads that waited for the GIL more than [`WAIT_SHARE_FINDING`] percent
/// of their time: one finding naming them, where they waited and where
/// the GIL was held meanwhile.
pub fn findings(report: &Report) -> Vec<Finding> {
    let python = &report.python;
    let waiting: Vec<(&PythonThread, &ThreadGil)> = python
        .threads
        .iter()
        .filter_map(|t| t.gil.as_ref().map(|g| (t, g)))
        .filter(|(_, g)| g.wait_share > WAIT_SHARE_FINDING)
        .collect();
    if waiting.is_empty() {
        return Vec::new();
    }
    let who: Vec<String> = waiting
        .iter()
        .map(|(t, g)| {
            let name = t
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("{}{name} of pid {}: {:.0}%", t.tid, t.pid, g.wait_share)
        })
        .collect();
    let at: Vec<String> = python
        .gil_waits
        .iter()
        .take(LINES_NAMED)
        .filter_map(|s| {
            let f = s.frames.first()?;
            Some(format!(
                "{} ({}:{}) {}",
                f.qualname,
                f.file,
                f.line,
                duration(s.off_cpu_ns)
            ))
        })
        .collect();
    let held: Vec<String> = python
        .gil_holder_lines
        .iter()
        .take(LINES_NAMED)
        .map(|l| {
            format!(
                "{} ({}:{}) {:.0}%",
                l.function, l.file, l.line, l.self_share
            )
        })
        .collect();
    let mut message = format!(
        "{} thread{} waited for the GIL more than {WAIT_SHARE_FINDING:.0}% of their time (thread {})",
        waiting.len(),
        if waiting.len() == 1 { "" } else { "s" },
        who.join(", thread "),
    );
    if !at.is_empty() {
        message.push_str(&format!("; they waited at {}", at.join(", ")));
    }
    if !held.is_empty() {
        message.push_str(&format!(
            "; the GIL was held at {} of the samples that held it",
            held.join(", ")
        ));
    }
    let total_wait: u64 = waiting.iter().map(|(_, g)| g.wait_ns).sum();
    let most = waiting
        .iter()
        .map(|(_, g)| g.wait_share)
        .fold(0.0, f64::max);
    vec![
        Finding::new(
            "gil_contention",
            "python",
            format!("{} threads", waiting.len()),
            message,
        )
        .with("threads", waiting.len() as u64)
        .with("wait_ns", total_wait)
        .with("most_wait_percent", most.round() as u64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LineHotspot;

    fn thread(tid: u32, share: f64) -> PythonThread {
        PythonThread {
            pid: 7,
            tid,
            gil: Some(ThreadGil {
                wait_ns: (share * 1e7) as u64,
                wait_share: share,
                ..ThreadGil::default()
            }),
            ..PythonThread::default()
        }
    }

    #[test]
    fn only_threads_past_a_fifth_of_their_time_make_the_finding() {
        let mut report = Report::default();
        report.python.threads = vec![thread(1, 20.0), thread(2, 5.0)];
        assert!(findings(&report).is_empty(), "20% is not more than 20%");
        report.python.threads.push(thread(3, 48.0));
        report.python.gil_holder_lines = vec![LineHotspot {
            function: "spin".into(),
            file: "w.py".into(),
            line: 4,
            self_samples: 90,
            self_share: 90.0,
        }];
        let found = findings(&report);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].figures["threads"], 1);
        assert_eq!(found[0].figures["most_wait_percent"], 48);
        assert!(
            found[0].message.contains("thread 3 of pid 7: 48%"),
            "{}",
            found[0].message
        );
        assert!(
            found[0].message.contains("spin (w.py:4) 90%"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_free_threaded_thread_has_no_figures_and_no_finding() {
        let mut report = Report::default();
        report.python.threads = vec![PythonThread {
            tid: 1,
            ..PythonThread::default()
        }];
        assert!(findings(&report).is_empty());
    }
}
