//! Memory growth by Python line. Every sampled minor page fault (one in
//! the fault period of its own thread: the event's counter is per thread)
//! comes with its thread's Python stack and its process's resident memory
//! then. The rises of the resident memory since the process's previous
//! sample go to a credit, from which each sample takes what its thread's
//! period of faults can have brought in: a period of pages (one fault maps
//! one page). So a thread that starts right after another's unsampled
//! tail, or samples between another's faults, is charged its own pages,
//! not the other's. A rise beyond what the faults of the process's
//! threads can explain (a transparent huge page maps 512 pages at once)
//! is charged at once, past a slack of a period per thread. What is still
//! in the credit at the end (less than a period a thread, and the
//! counters' batches not folded yet) is charged to no line, and so are the
//! pages khugepaged's collapses into huge pages mapped (told by the kernel
//! as they end: no thread of the process faulted them). A sample taken
//! while a collapse was under way may hold pages told only after it (on a
//! preemptible kernel khugepaged can be kept off its CPU between its
//! collapse and its word): such samples are held until the collapse is
//! told, or a sample taken with none under way comes, and charged then,
//! its pages kept from the rises of the first that shows them (the mark
//! is the node's: it also covers other processes' collapses, and this
//! one's time before its pages were counted).
//! What was freed
//! in between is not taken off the lines that grew before (only a drop
//! below the last figure is left uncharged).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{
    events::FaultSample,
    frame::Frame,
    report::{Growth, GrowthLine, MemoryProcess, RssPoint},
};

/// Stacks and lines kept per process, and resident-memory points.
const TOP_STACKS: usize = 50;
const TOP_LINES: usize = 20;
const RSS_POINTS: usize = 2_000;
/// Samples held per process while collapses are under way (past it, they
/// are charged as they come).
const MAX_HELD: usize = 4_096;

/// Samples said at debug level after each collapse: the rises that show
/// (or not) how its pages were kept.
const SAID_AFTER_COLLAPSE: u8 = 4;

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

/// A stack, innermost first, and whether it was cut.
type StackKey = (Vec<Frame>, bool);

/// A sample [`MemoryGrowth::on_fault`] holds, as it came.
struct Held {
    fault: FaultSample,
    frames: Option<Vec<Frame>>,
    period: u64,
}

#[derive(Default)]
struct ProcessGrowth {
    /// Per stack (innermost first) and whether it was cut.
    stacks: HashMap<StackKey, Charged>,
    samples: u64,
    torn: Charged,
    /// Its resident memory at its last sample (`None`: none yet, or not
    /// known: then each sample is charged the fault period).
    last_rss_pages: Option<u64>,
    /// Rises of the resident memory not charged yet (pages).
    credit: u64,
    /// Pages khugepaged's collapses mapped and no sample's rise has held
    /// yet (kept from the next rises), until a sample sees the resident
    /// memory the last collapse left (`pending_until_pages`); and all so
    /// far (no line's).
    collapsed_pending: u64,
    pending_until_pages: u64,
    /// Samples still to say at debug level after a collapse (how its
    /// pages were kept is only seen in the rises that follow).
    said_after_collapse: u8,
    collapsed: u64,
    /// Samples taken while a collapse was under way, in order, not charged
    /// yet.
    held: Vec<Held>,
    /// What its last sample was charged past its own period, and where
    /// (`None`: torn): a collapse told after that sample saw its pages
    /// is taken back from there.
    last_beyond: Option<(Option<StackKey>, u64)>,
    /// Its threads that have had a sample (the slack: a period each).
    threads: HashSet<u32>,
    /// Resident memory at every `stride`-th sample (`seen` so far).
    rss: Vec<(u64, u64)>,
    stride: u64,
    seen: u64,
    /// Its peak resident memory (pages) as it exited.
    peak_at_exit_pages: Option<u64>,
    /// The most resident memory a sample saw (pages): the kernel's peak
    /// is read from counters that lag, and no drawn point may pass it.
    highest_rss_pages: u64,
}

impl MemoryGrowth {
    /// A sampled fault, the last of `period` faults of its thread;
    /// `frames`: its Python stack, named (`None`: none could be named, or
    /// the thread had no Python frame).
    pub fn on_fault(&mut self, fault: &FaultSample, frames: Option<Vec<Frame>>, period: u64) {
        let process = self.processes.entry(fault.tgid).or_default();
        if fault.collapse_in_flight && process.held.len() < MAX_HELD {
            process.held.push(Held {
                fault: fault.clone(),
                frames,
                period,
            });
            return;
        }
        // None under way: a collapse these samples saw was told before.
        process.release_held();
        process.charge(fault, frames, period);
    }

    /// khugepaged collapsed pages of `tgid` into a huge page, mapping
    /// `pages` that were not there, leaving it `rss_pages` resident
    /// (before its first sample: part of where its growth is measured
    /// from). They are kept from the rises of the first sample that shows
    /// them: a rise of at least half of them. The collapse's own figure
    /// does not say which sample that is: from 6.2 the counters it reads
    /// fold per CPU, and on sid's 7.2 it read a third of its own pages.
    pub fn on_huge_page_collapsed(&mut self, tgid: u32, pages: u64, rss_pages: u64) {
        let Some(process) = self.processes.get_mut(&tgid) else {
            log::trace!("collapse of {pages} pages of pid {tgid}, no sample of it yet");
            return;
        };
        if !process.held.is_empty() {
            // Its samples taken while it was under way (the mark is the
            // node's: also other processes' collapses, and this one's
            // time before its pages were counted), charged now, its pages
            // kept from the first that showed them, or from the next.
            process.collapsed += pages;
            let held = std::mem::take(&mut process.held);
            let mut before = process.last_rss_pages.unwrap_or(0);
            let showed = held
                .iter()
                .position(|h| {
                    let rise = match (h.fault.rss_pages, before) {
                        (0, _) | (_, 0) => 0,
                        (now, before) => now.saturating_sub(before),
                    };
                    if h.fault.rss_pages != 0 {
                        before = h.fault.rss_pages;
                    }
                    rise >= pages / 2
                })
                .unwrap_or(held.len());
            log::debug!(
                "pid {tgid}: collapse of {pages} pages (rss {rss_pages}, last sample's {:?}): \
                 {} samples held, the first to show it: {showed}",
                process.last_rss_pages,
                held.len()
            );
            process.said_after_collapse = SAID_AFTER_COLLAPSE;
            let mut held = held.into_iter();
            for h in held.by_ref().take(showed) {
                process.charge(&h.fault, h.frames, h.period);
            }
            process.keep_from_rises(pages, rss_pages);
            for h in held {
                process.charge(&h.fault, h.frames, h.period);
            }
            return;
        }
        if process.last_rss_pages.is_none() {
            return;
        }
        process.collapsed += pages;
        // Told after a sample that showed them (one not marked, where the
        // mark could not be relied on): taken back from what that sample
        // left in the credit, then from what it was charged past its
        // period.
        let beyond = process.last_beyond.as_ref().map_or(0, |(_, b)| *b);
        let not_shown_yet = process.credit + beyond < pages / 2;
        log::debug!(
            "pid {tgid}: collapse of {pages} pages (rss {rss_pages}, last sample's {:?}), none \
             held: credit {}, last charged {beyond} past its period: {}",
            process.last_rss_pages,
            process.credit,
            if not_shown_yet {
                "kept from the rises to come"
            } else {
                "taken back"
            }
        );
        process.said_after_collapse = SAID_AFTER_COLLAPSE;
        if not_shown_yet {
            process.keep_from_rises(pages, rss_pages);
            return;
        }
        let from_credit = process.credit.min(pages);
        process.credit -= from_credit;
        if let Some((key, beyond)) = process.last_beyond.take() {
            let charged = match key {
                None => Some(&mut process.torn),
                Some(key) => process.stacks.get_mut(&key),
            };
            if let Some(charged) = charged {
                charged.pages -= beyond.min(pages - from_credit).min(charged.pages);
            }
        }
    }

    /// A thread or process was created.
    pub fn on_task_created(&mut self) {
        self.tasks_created += 1;
    }

    /// Threads and processes created while tracing.
    pub fn tasks_created(&self) -> u64 {
        self.tasks_created
    }

    /// A thread exited: it no longer widens its process's slack (and a
    /// service's short-lived threads do not pile up).
    pub fn on_thread_exit(&mut self, tgid: u32, tid: u32) {
        if let Some(process) = self.processes.get_mut(&tgid) {
            process.threads.remove(&tid);
        }
    }

    /// A process exited, with its peak resident memory (pages) when known.
    pub fn on_exit(&mut self, tgid: u32, peak_rss_pages: Option<u64>) {
        if let (Some(process), Some(peak)) = (self.processes.get_mut(&tgid), peak_rss_pages) {
            process.peak_at_exit_pages = Some(peak);
        }
    }

    /// The rows, by bytes grown. `sample_bytes`: what a sample stands for
    /// where the resident memory is not known; `page`: the page size;
    /// `comm`, `running_peak`: a process's name, and a running process's peak
    /// resident memory (bytes).
    pub fn finish(
        self,
        sample_bytes: u64,
        page: u64,
        base_ns: u64,
        comm: impl Fn(u32) -> String,
        running_peak: impl Fn(u32) -> Option<u64>,
    ) -> Vec<MemoryProcess> {
        let mut rows: Vec<MemoryProcess> = self
            .processes
            .into_iter()
            .map(|(pid, mut p)| {
                // Samples still held: no collapse was told for them.
                p.release_held();
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
                        .or_else(|| running_peak(pid))
                        .map(|peak| peak.max(p.highest_rss_pages * page)),
                    last_rss_bytes: p.last_rss_pages.unwrap_or(0) * page,
                    samples: p.samples,
                    grown_bytes,
                    torn_samples: p.torn.samples,
                    torn_bytes,
                    collapsed_bytes: if rss_known { p.collapsed * page } else { 0 },
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
    /// Charges one sample: what its thread's period of faults can have
    /// brought in of the rises not charged yet, and what is past the
    /// process's slack.
    fn charge(&mut self, fault: &FaultSample, frames: Option<Vec<Frame>>, period: u64) {
        self.samples += 1;
        self.threads.insert(fault.tid);
        // The first sample of a process is where its growth is measured
        // from (a forked worker starts with its parent's memory).
        let rise = match (fault.rss_pages, self.last_rss_pages) {
            (0, _) | (_, None) => 0,
            (now, Some(before)) => now.saturating_sub(before),
        };
        // What a collapse mapped is no thread's: kept from the rises
        // until a sample sees the memory it left (the counters fold in
        // batches, so the rise that holds it may hold a little less).
        let kept = rise.min(self.collapsed_pending);
        self.collapsed_pending -= kept;
        if fault.rss_pages >= self.pending_until_pages {
            self.collapsed_pending = 0;
        }
        self.credit += rise - kept;
        let slack = period.saturating_mul(self.threads.len() as u64);
        let own = self.credit.min(period);
        let beyond = (self.credit - own).saturating_sub(slack);
        let pages = own + beyond;
        self.credit -= pages;
        // Every sample's account, for a check that failed (`trace`).
        log::trace!(
            "tid {} at {}: rss {} rise {rise}, kept {kept}, charged {pages} ({beyond} past its \
             period), credit {}",
            fault.tid,
            fault.ts_ns,
            fault.rss_pages,
            self.credit
        );
        if self.said_after_collapse > 0 {
            self.said_after_collapse -= 1;
            log::debug!(
                "tid {}: rss {} rise {rise}, {kept} kept for a collapse ({} more pending until \
                 {}), charged {pages} ({beyond} past its period of {period}), credit {}",
                fault.tid,
                fault.rss_pages,
                self.collapsed_pending,
                self.pending_until_pages,
                self.credit
            );
        }
        if fault.rss_pages != 0 {
            self.last_rss_pages = Some(fault.rss_pages);
            self.highest_rss_pages = self.highest_rss_pages.max(fault.rss_pages);
            self.add_rss_point(fault.ts_ns, fault.rss_pages);
        }
        let key = (!fault.torn).then(|| (frames.unwrap_or_default(), fault.truncated));
        self.last_beyond = (beyond > 0).then(|| (key.clone(), beyond));
        let charged = match key {
            None => &mut self.torn,
            Some(key) => self.stacks.entry(key).or_default(),
        };
        charged.samples += 1;
        charged.pages += pages;
    }

    /// A collapse's `pages`, told before a sample charged saw them, are
    /// kept from the rises to come, until one sees `rss_pages` (the
    /// memory it left; 0: unknown, the next sample).
    fn keep_from_rises(&mut self, pages: u64, rss_pages: u64) {
        self.collapsed_pending += pages;
        self.pending_until_pages = rss_pages;
    }

    /// Charges the samples held while collapses were under way, in order.
    fn release_held(&mut self) {
        for held in std::mem::take(&mut self.held) {
            self.charge(&held.fault, held.frames, held.period);
        }
    }

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
        thread_fault(tgid, tgid, ts_ns, rss_pages)
    }

    fn thread_fault(tgid: u32, tid: u32, ts_ns: u64, rss_pages: u64) -> FaultSample {
        FaultSample {
            ts_ns,
            tgid,
            tid,
            frames: Vec::new(),
            truncated: false,
            torn: false,
            rss_pages,
            collapse_in_flight: false,
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
            growth.on_fault(&fault(7, 1_000 + i, 100 + 64 * i), Some(grow_a.clone()), 64);
        }
        // 420: freed some since (no charge), then 200 more.
        growth.on_fault(&fault(7, 2_000, 220), Some(grow_a_other_caller.clone()), 64);
        growth.on_fault(&fault(7, 3_000, 420), Some(grow_a_other_caller.clone()), 64);
        growth.on_fault(&fault(7, 3_100, 484), Some(grow_a_other_caller.clone()), 64);
        growth.on_fault(&fault(7, 3_200, 548), Some(grow_a_other_caller.clone()), 64);
        // A huge page: one fault, 512 pages.
        growth.on_fault(&fault(7, 3_500, 1060), Some(grow_b.clone()), 64);
        growth.on_fault(&fault(7, 3_600, 1068), None, 64);
        let torn = FaultSample {
            torn: true,
            ..fault(7, 4_000, 1_078)
        };
        growth.on_fault(&torn, Some(grow_b), 64);
        growth.on_exit(7, Some(1_100));
        growth.on_fault(&fault(8, 5_000, 50), Some(grow_a.clone()), 64);
        growth.on_fault(&fault(8, 5_000, 70), Some(grow_a), 64);
        let rows = growth.finish(64 * 4096, 4096, 1_000, |pid| format!("p{pid}"), |_| Some(1));
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        let page = 4096;
        assert_eq!((row.pid, row.comm.as_str()), (7, "p7"));
        assert_eq!((row.samples, row.torn_samples), (13, 1));
        assert_eq!(row.torn_bytes, 18 * page);
        // Every rise of the resident memory, and nothing for the drop.
        assert_eq!(row.grown_bytes, (5 * 64 + 200 + 128 + 512 + 8 + 10) * page);
        // At exit: the kernel's figure, not the live one.
        assert_eq!(row.peak_rss_bytes, Some(1_100 * page));
        assert_eq!(row.last_rss_bytes, 1_078 * page);
        // 200 pages at one sample: a period, and what is past the slack
        // (a period: one thread) at once; the rest with the next samples.
        // The huge page likewise: 512 at once (its credit's past period
        // and its own 448 past the slack), a period to the next sample.
        assert_eq!(row.growth[0].bytes, 512 * page);
        assert_eq!(row.growth[0].frames[0].function, "grow_b");
        assert_eq!(row.growth[1].bytes, 5 * 64 * page);
        // The line sums its callers; a stack with no frame has no line.
        assert_eq!(row.lines[0].function, "grow_a");
        assert_eq!(row.lines[0].bytes, (5 * 64 + 136 + 64 + 64) * page);
        assert_eq!(row.lines[0].samples, 10);
        assert_eq!(row.lines[1].function, "grow_b");
        assert_eq!(row.lines.len(), 2);
        assert!(
            row.growth
                .iter()
                .any(|g| g.frames.is_empty() && g.bytes == 64 * page)
        );
        assert_eq!(row.rss.len(), 13);
        assert_eq!(row.rss[0].t_s, 0.0);
        // Still running at the end: its VmHWM, or the most a sample saw
        // where that figure lags behind (here 70 pages to a VmHWM of 1 B).
        assert_eq!(rows[1].peak_rss_bytes, Some(70 * page));
        assert_eq!(rows[1].grown_bytes, 20 * page);
    }

    /// Samples of `tid` in process 7 at `rss` pages, charged to `line`.
    fn samples(growth: &mut MemoryGrowth, tid: u32, line: u32, rss: &[u64]) {
        for &pages in rss {
            let frames = vec![frame(&format!("line{line}"), line)];
            growth.on_fault(&thread_fault(7, tid, 0, pages), Some(frames), 64);
        }
    }

    fn line_pages(growth: MemoryGrowth) -> Vec<(u32, u64)> {
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        let mut lines = line_pages_of(&rows[0]);
        lines.sort();
        lines
    }

    #[test]
    fn a_thread_starting_after_anothers_unsampled_tail_is_charged_its_own_pages() {
        let mut growth = MemoryGrowth::default();
        // Thread 7 grows 640 pages, then 40 more before it stops (fewer
        // than a period: never sampled).
        samples(&mut growth, 7, 1, &[1_000, 1_064, 1_128, 1_192, 1_256]);
        samples(
            &mut growth,
            7,
            1,
            &[1_320, 1_384, 1_448, 1_512, 1_576, 1_640],
        );
        // Thread 8 then grows 256 pages: its first sample sees the tail too.
        samples(&mut growth, 8, 2, &[1_744, 1_808, 1_872, 1_936]);
        assert_eq!(line_pages(growth), vec![(1, 640), (2, 256)]);
    }

    #[test]
    fn pages_khugepaged_collapsed_in_are_no_threads() {
        let mut growth = MemoryGrowth::default();
        // Before the first sample: part of where growth counts from.
        growth.on_huge_page_collapsed(7, 300, 900);
        samples(&mut growth, 7, 1, &[1_000, 1_064, 1_128]);
        // Thread 8 starts; thread 7 waits for it. While 8 faults its first
        // period, khugepaged fills 391 pages of a huge page.
        growth.on_huge_page_collapsed(7, 391, 1_128 + 20 + 391);
        samples(&mut growth, 8, 2, &[1_128 + 64 + 391, 1_647, 1_711]);
        // Told after the sample that saw its pages (thread 8's 64 and
        // 400 collapsed): taken back from that sample, not from the next.
        samples(&mut growth, 8, 2, &[1_775 + 400]);
        growth.on_huge_page_collapsed(7, 400, 1_775 + 400);
        samples(&mut growth, 8, 2, &[2_239]);
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        assert_eq!(rows[0].collapsed_bytes, 791 * 4096);
        let lines: Vec<(u32, u64)> = rows[0]
            .lines
            .iter()
            .map(|l| (l.line, l.bytes / 4096))
            .collect();
        assert_eq!(lines, vec![(2, 5 * 64), (1, 128)]);
    }

    /// What sid's 7.2 did under load: khugepaged, kept off its CPU between
    /// a collapse and its word, told it after every sample that saw its
    /// pages, even after the process's exit.
    #[test]
    fn samples_taken_while_a_collapse_was_under_way_wait_for_its_word() {
        let marked = |rss: u64| FaultSample {
            collapse_in_flight: true,
            ..fault(7, 0, rss)
        };
        let mut growth = MemoryGrowth::default();
        samples(&mut growth, 7, 1, &[1_000, 1_064, 1_128]);
        // 511 pages collapsed in, then line 2's own four periods.
        for rss in [1_703, 1_767, 1_831, 1_895] {
            growth.on_fault(&marked(rss), Some(vec![frame("after", 2)]), 64);
        }
        growth.on_exit(7, Some(1_895));
        growth.on_huge_page_collapsed(7, 511, 1_128 + 511 + 20);
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        assert_eq!(rows[0].collapsed_bytes, 511 * 4096);
        assert_eq!(line_pages_of(&rows[0]), vec![(2, 4 * 64), (1, 128)]);

        // A collapse of another process's: the held samples are charged
        // as they were when a sample taken with none under way comes.
        let mut growth = MemoryGrowth::default();
        samples(&mut growth, 7, 1, &[1_000, 1_064]);
        for rss in [1_128, 1_192] {
            growth.on_fault(&marked(rss), Some(vec![frame("after", 2)]), 64);
        }
        samples(&mut growth, 7, 3, &[1_256]);
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        assert_eq!(rows[0].collapsed_bytes, 0);
        let mut lines = line_pages_of(&rows[0]);
        lines.sort_unstable();
        assert_eq!(lines, vec![(1, 64), (2, 128), (3, 64)]);
    }

    #[test]
    fn samples_held_from_before_a_collapse_counted_its_pages_keep_their_own() {
        // sid's 7.2 under load: samples marked (collapses under way on the
        // node) for seconds before this collapse's pages were counted,
        // then the sample that saw them (+617: 511 and its own period).
        let marked = |rss: u64| FaultSample {
            collapse_in_flight: true,
            ..fault(7, 0, rss)
        };
        let mut growth = MemoryGrowth::default();
        samples(&mut growth, 7, 1, &[1_000, 1_064, 1_128]);
        for rss in [1_192, 1_256, 1_320] {
            growth.on_fault(&marked(rss), Some(vec![frame("waiting", 2)]), 64);
        }
        growth.on_huge_page_collapsed(7, 511, 1_320 + 511 + 42);
        for rss in [1_320 + 511 + 42 + 64, 1_320 + 511 + 42 + 128] {
            growth.on_fault(&marked(rss), Some(vec![frame("after", 3)]), 64);
        }
        samples(&mut growth, 7, 3, &[1_320 + 511 + 42 + 192]);
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        assert_eq!(rows[0].collapsed_bytes, 511 * 4096);
        let mut by_line = BTreeMap::new();
        for (line, pages) in line_pages_of(&rows[0]) {
            *by_line.entry(line).or_insert(0) += pages;
        }
        // Line 3 its own three periods (the 42 pages grown between the
        // collapse and its word stay within the slack, no line's).
        assert_eq!(
            by_line.into_iter().collect::<Vec<_>>(),
            vec![(1, 128), (2, 3 * 64), (3, 3 * 64)]
        );
    }

    #[test]
    fn a_collapse_whose_own_figure_lags_is_kept_from_the_rise_that_shows_it() {
        // sid's 7.2: the collapse read 118 pages more than the last
        // sample, of its 511; the next sample showed them.
        let mut growth = MemoryGrowth::default();
        samples(&mut growth, 7, 1, &[2_135, 2_199, 2_263]);
        growth.on_huge_page_collapsed(7, 511, 2_263 + 118);
        samples(&mut growth, 7, 2, &[2_263 + 511 + 64, 2_263 + 511 + 128]);
        let rows = growth.finish(64 * 4096, 4096, 0, |_| String::new(), |_| None);
        assert_eq!(rows[0].collapsed_bytes, 511 * 4096);
        assert_eq!(line_pages_of(&rows[0]), vec![(1, 128), (2, 128)]);
    }

    fn line_pages_of(row: &MemoryProcess) -> Vec<(u32, u64)> {
        row.lines.iter().map(|l| (l.line, l.bytes / 4096)).collect()
    }

    #[test]
    fn a_thread_starting_after_another_exited_is_charged_its_own_pages() {
        let mut growth = MemoryGrowth::default();
        samples(&mut growth, 7, 1, &[1_000, 1_064, 1_128, 1_192, 1_256]);
        // Its 40-page tail, then its exit: the slack is thread 8's alone.
        growth.on_thread_exit(7, 7);
        growth.on_thread_exit(7, 9);
        assert!(growth.processes[&7].threads.is_empty());
        samples(&mut growth, 8, 2, &[1_360, 1_424, 1_488, 1_552]);
        assert_eq!(line_pages(growth), vec![(1, 256), (2, 256)]);
    }

    #[test]
    fn two_threads_faulting_at_once_are_each_charged_their_own_pages() {
        let mut growth = MemoryGrowth::default();
        let mut rss = 1_000;
        samples(&mut growth, 7, 1, &[rss]);
        // Thread 7 faults 3 pages for each of thread 8's; each is sampled
        // at the end of its own periods of 64 faults.
        let (mut faults_7, mut faults_8) = (0, 0);
        for _ in 0..256 {
            for _ in 0..3 {
                rss += 1;
                faults_7 += 1;
                if faults_7 % 64 == 0 {
                    samples(&mut growth, 7, 1, &[rss]);
                }
            }
            rss += 1;
            faults_8 += 1;
            if faults_8 % 64 == 0 {
                samples(&mut growth, 8, 2, &[rss]);
            }
        }
        assert_eq!(line_pages(growth), vec![(1, 768), (2, 256)]);
    }

    #[test]
    fn resident_memory_that_lags_in_batches_is_charged_as_it_arrives() {
        let mut growth = MemoryGrowth::default();
        // A thread's pages reach the process's figure 64 at a time: a
        // sample may see none of its period, the next two. The last
        // period not folded in yet is charged to no line.
        samples(
            &mut growth,
            7,
            1,
            &[1_000, 1_000, 1_128, 1_128, 1_256, 1_320],
        );
        assert_eq!(line_pages(growth), vec![(1, 256)]);
    }

    #[test]
    fn without_the_resident_memory_each_sample_counts_the_period() {
        let mut growth = MemoryGrowth::default();
        for _ in 0..3 {
            growth.on_fault(&fault(7, 1, 0), Some(vec![frame("grow", 3)]), 64);
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
            growth.on_fault(&fault(7, i, i + 1), None, 1);
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
