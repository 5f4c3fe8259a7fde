//! Memory growth by Python line. Every sampled minor page fault (one in
//! the fault period, per thread or CPU) comes with its thread's Python
//! stack and its process's resident memory then: the growth of the
//! resident memory since the process's previous sample is charged to that
//! stack. A fault can map more than a page (a transparent huge page maps
//! 2 MiB at once), so the faults are what decides when to look, the
//! resident memory what is charged. What was freed in between is not
//! taken off the lines that grew before (only a drop below the last
//! figure is left uncharged).

use std::collections::{BTreeMap, HashMap};

use crate::{
    events::FaultSample,
    frame::Frame,
    report::{Growth, GrowthLine, MemoryProcess, RssPoint},
};

/// Stacks and lines kept per process, and resident-memory points.
const TOP_STACKS: usize = 50;
const TOP_LINES: usize = 20;
const RSS_POINTS: usize = 2_000;

#[derive(Default)]
pub struct MemoryGrowth {
    processes: BTreeMap<u32, ProcessGrowth>,
    /// Threads and processes created while tracing: each inherits a copy
    /// of the fault event, which leaves less than a period unsampled.
    tasks_created: u64,
}

/// A stack's samples and the pages charged to it.
#[derive(Default, Clone, Copy)]
struct Charged {
    samples: u64,
    pages: u64,
}

#[derive(Default)]
struct ProcessGrowth {
    /// Per stack (innermost first) and whether it was cut.
    stacks: HashMap<(Vec<Frame>, bool), Charged>,
    samples: u64,
    torn: Charged,
    /// Its resident memory at its last sample (`None`: none yet, or not
    /// known: then each sample is charged the fault period).
    last_rss_pages: Option<u64>,
    /// Resident memory at every `stride`-th sample (`seen` so far).
    rss: Vec<(u64, u64)>,
    stride: u64,
    seen: u64,
    /// Its peak resident memory (pages) as it exited.
    peak_at_exit_pages: Option<u64>,
}

impl MemoryGrowth {
    /// A sampled fault; `frames`: its Python stack, named (`None`: none
    /// could be named, or the thread had no Python frame).
    pub fn on_fault(&mut self, fault: &FaultSample, frames: Option<Vec<Frame>>) {
        let process = self.processes.entry(fault.tgid).or_default();
        process.samples += 1;
        // The first sample of a process is where its growth is measured
        // from (a forked worker starts with its parent's memory).
        let pages = match (fault.rss_pages, process.last_rss_pages) {
            (0, _) | (_, None) => 0,
            (now, Some(before)) => now.saturating_sub(before),
        };
        if fault.rss_pages != 0 {
            process.last_rss_pages = Some(fault.rss_pages);
            process.add_rss_point(fault.ts_ns, fault.rss_pages);
        }
        let charged = if fault.torn {
            &mut process.torn
        } else {
            process
                .stacks
                .entry((frames.unwrap_or_default(), fault.truncated))
                .or_default()
        };
        charged.samples += 1;
        charged.pages += pages;
    }

    /// A thread or process was created.
    pub fn on_task_created(&mut self) {
        self.tasks_created += 1;
    }

    /// Threads and processes created while tracing.
    pub fn tasks_created(&self) -> u64 {
        self.tasks_created
    }

    /// A process exited, with its peak resident memory (pages) when known.
    pub fn on_exit(&mut self, tgid: u32, peak_rss_pages: Option<u64>) {
        if let (Some(process), Some(peak)) = (self.processes.get_mut(&tgid), peak_rss_pages) {
            process.peak_at_exit_pages = Some(peak);
        }
    }

    /// The rows, by bytes grown. `sample_bytes`: what a sample stands for
    /// where the resident memory is not known; `page`: the page size;
    /// `comm`, `live_peak`: a process's name, and a live process's peak
    /// resident memory (bytes).
    pub fn finish(
        self,
        sample_bytes: u64,
        page: u64,
        base_ns: u64,
        comm: impl Fn(u32) -> String,
        live_peak: impl Fn(u32) -> Option<u64>,
    ) -> Vec<MemoryProcess> {
        let mut rows: Vec<MemoryProcess> = self
            .processes
            .into_iter()
            .map(|(pid, p)| {
                let rss_known = p.last_rss_pages.is_some();
                let bytes = |c: Charged| match rss_known {
                    true => c.pages * page,
                    false => c.samples * sample_bytes,
                };
                let mut stacks: Vec<Growth> = p
                    .stacks
                    .into_iter()
                    .map(|((frames, truncated), charged)| Growth {
                        bytes: bytes(charged),
                        samples: charged.samples,
                        truncated,
                        frames,
                    })
                    .collect();
                stacks.sort_by(|a, b| {
                    (b.bytes, b.samples)
                        .cmp(&(a.bytes, a.samples))
                        .then_with(|| a.frames.cmp(&b.frames))
                });
                let lines = lines_of(&stacks);
                let torn_bytes = bytes(p.torn);
                let grown_bytes = stacks.iter().map(|g| g.bytes).sum::<u64>() + torn_bytes;
                let left_out = stacks.iter().skip(TOP_STACKS).map(|g| g.bytes).sum();
                stacks.truncate(TOP_STACKS);
                MemoryProcess {
                    pid,
                    comm: comm(pid),
                    peak_rss_bytes: p
                        .peak_at_exit_pages
                        .map(|pages| pages * page)
                        .or_else(|| live_peak(pid)),
                    last_rss_bytes: p.last_rss_pages.unwrap_or(0) * page,
                    samples: p.samples,
                    grown_bytes,
                    torn_samples: p.torn.samples,
                    torn_bytes,
                    lines,
                    growth: stacks,
                    growth_left_out_bytes: left_out,
                    rss: p
                        .rss
                        .into_iter()
                        .map(|(ts_ns, pages)| RssPoint {
                            t_s: ts_ns.saturating_sub(base_ns) as f64 / 1e9,
                            bytes: pages * page,
                        })
                        .collect(),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.grown_bytes.cmp(&a.grown_bytes).then(a.pid.cmp(&b.pid)));
        rows
    }
}

impl ProcessGrowth {
    /// Keeps every `stride`-th point; past twice the points kept, every
    /// other one goes and the stride doubles (evenly thinned, bounded).
    fn add_rss_point(&mut self, ts_ns: u64, pages: u64) {
        self.stride = self.stride.max(1);
        if self.seen.is_multiple_of(self.stride) {
            self.rss.push((ts_ns, pages));
            if self.rss.len() >= 2 * RSS_POINTS {
                let mut i = 0;
                self.rss.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }
}

/// Bytes by the innermost Python frame's line (a stack with none: no line).
fn lines_of(stacks: &[Growth]) -> Vec<GrowthLine> {
    let mut by_line: HashMap<(&str, &str, u32), (u64, u64)> = HashMap::new();
    for growth in stacks {
        if let Some(frame) = growth.frames.iter().find(|f| !f.native) {
            let line = by_line
                .entry((&frame.function, &frame.file, frame.line))
                .or_default();
            line.0 += growth.bytes;
            line.1 += growth.samples;
        }
    }
    let mut lines: Vec<GrowthLine> = by_line
        .into_iter()
        .map(|((function, file, line), (bytes, samples))| GrowthLine {
            function: function.into(),
            file: file.into(),
            line,
            bytes,
            samples,
        })
        .collect();
    lines.sort_by(|a, b| {
        (b.bytes, b.samples)
            .cmp(&(a.bytes, a.samples))
            .then_with(|| (&a.file, a.line).cmp(&(&b.file, b.line)))
    });
    lines.truncate(TOP_LINES);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32) -> Frame {
        crate::report::fixtures::python_frame(function, "app.py", line)
    }

    fn fault(tgid: u32, ts_ns: u64, rss_pages: u64) -> FaultSample {
        FaultSample {
            ts_ns,
            tgid,
            tid: tgid,
            frames: Vec::new(),
            truncated: false,
            torn: false,
            rss_pages,
        }
    }

    #[test]
    fn faults_are_charged_to_their_stacks_and_lines() {
        let mut growth = MemoryGrowth::default();
        let grow_a = vec![frame("grow_a", 10), frame("main", 30)];
        let grow_a_other_caller = vec![frame("grow_a", 10), frame("other", 40)];
        let grow_b = vec![frame("grow_b", 20), frame("main", 31)];
        // The first sample sets where growth counts from: 100 pages.
        for i in 0..6 {
            growth.on_fault(&fault(7, 1_000 + i, 100 + 64 * i), Some(grow_a.clone()));
        }
        // 420: freed some since (no charge), then 200 more.
        growth.on_fault(&fault(7, 2_000, 220), Some(grow_a_other_caller.clone()));
        growth.on_fault(&fault(7, 3_000, 420), Some(grow_a_other_caller.clone()));
        // A huge page: one fault, 512 pages.
        growth.on_fault(&fault(7, 3_500, 932), Some(grow_b.clone()));
        growth.on_fault(&fault(7, 3_600, 940), None);
        let torn = FaultSample {
            torn: true,
            ..fault(7, 4_000, 950)
        };
        growth.on_fault(&torn, Some(grow_b));
        growth.on_exit(7, Some(1_000));
        growth.on_fault(&fault(8, 5_000, 50), Some(grow_a.clone()));
        growth.on_fault(&fault(8, 5_000, 70), Some(grow_a));
        let rows = growth.finish(64 * 4096, 4096, 1_000, |pid| format!("p{pid}"), |_| Some(1));
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        let page = 4096;
        assert_eq!((row.pid, row.comm.as_str()), (7, "p7"));
        assert_eq!((row.samples, row.torn_samples), (11, 1));
        assert_eq!(row.torn_bytes, 10 * page);
        // Every rise of the resident memory, and nothing for the drop.
        assert_eq!(row.grown_bytes, (5 * 64 + 200 + 512 + 8 + 10) * page);
        // At exit: the kernel's figure, not the live one.
        assert_eq!(row.peak_rss_bytes, Some(1_000 * page));
        assert_eq!(row.last_rss_bytes, 950 * page);
        assert_eq!(row.growth[0].bytes, 512 * page);
        assert_eq!(row.growth[0].frames[0].function, "grow_b");
        assert_eq!(row.growth[1].bytes, 5 * 64 * page);
        // The line sums its callers; a stack with no frame has no line.
        assert_eq!(row.lines[0].function, "grow_a");
        assert_eq!(row.lines[0].bytes, (5 * 64 + 200) * page);
        assert_eq!(row.lines[0].samples, 8);
        assert_eq!(row.lines[1].function, "grow_b");
        assert_eq!(row.lines.len(), 2);
        assert!(
            row.growth
                .iter()
                .any(|g| g.frames.is_empty() && g.bytes == 8 * page)
        );
        assert_eq!(row.rss.len(), 11);
        assert_eq!(row.rss[0].t_s, 0.0);
        // Still running at the end: its VmHWM.
        assert_eq!(rows[1].peak_rss_bytes, Some(1));
        assert_eq!(rows[1].grown_bytes, 20 * page);
    }

    #[test]
    fn without_the_resident_memory_each_sample_counts_the_period() {
        let mut growth = MemoryGrowth::default();
        for _ in 0..3 {
            growth.on_fault(&fault(7, 1, 0), Some(vec![frame("grow", 3)]));
        }
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        assert_eq!(rows[0].grown_bytes, 3 * 64 * 4096);
        assert_eq!(rows[0].lines[0].bytes, 3 * 64 * 4096);
        assert!(rows[0].rss.is_empty());
    }

    #[test]
    fn resident_memory_points_are_thinned_evenly() {
        let mut growth = MemoryGrowth::default();
        for i in 0..10 * RSS_POINTS as u64 {
            growth.on_fault(&fault(7, i, i + 1), None);
        }
        let rows = growth.finish(1, 1, 0, |_| String::new(), |_| None);
        let rss = &rows[0].rss;
        assert!(
            rss.len() >= RSS_POINTS && rss.len() < 2 * RSS_POINTS,
            "{}",
            rss.len()
        );
        let steps: std::collections::BTreeSet<u64> =
            rss.windows(2).map(|w| w[1].bytes - w[0].bytes).collect();
        assert_eq!(steps.len(), 1, "{steps:?}");
    }
}
