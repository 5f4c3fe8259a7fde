//! `--serve`'s `/debug/pprof/profile?seconds=N` and `--otlp`'s windows:
//! the Python samples of a window of time, kept while it is open and then turned into a
//! [`Report`] whose Python section `report::pprof` renders. A sample
//! belongs to a window by its kernel timestamp, so what was sampled before
//! the request (but drained after it) never counts. Bounded: at most
//! [`MAX_WINDOWS`] of the endpoint's (and `--otlp`'s one) open at once, [`MAX_STACKS`] distinct stacks each;
//! samples of a new stack past that bound are counted as left out, and the
//! report says how many.

use std::collections::{BTreeMap, HashMap};

use super::{
    Collector, World,
    hotspots::Row,
    native::SampleFrames,
    python::fill_sampled,
    sample_counts::{Counted, SampleCounts},
    system::System,
};
use crate::report::format::thousands;
use crate::{
    events::Event,
    python::{PythonTree, symbols::FrameId},
    report::{ProcessInfo, Python, Report, SCHEMA_VERSION},
};

/// The endpoint's windows open at once (it turns more requests away);
/// `--otlp`'s window is apart.
pub const MAX_WINDOWS: usize = 4;
/// Distinct (thread, stack) pairs a window keeps: 4 bytes a frame, at
/// most 128 frames a stack, so about 5 MiB at most per window.
pub const MAX_STACKS: usize = 10_000;

/// An asyncio task a sample ran in: its address and name (if read).
type Task = (u64, Option<String>);

/// One open window.
struct Window {
    id: u64,
    /// `--otlp`'s window, not one of the endpoint's.
    exporter: bool,
    /// CLOCK_MONOTONIC ns when it opened: earlier samples are not its.
    start_ns: u64,
    /// Its samples by distinct stack, as the whole trace's profile counts
    /// them (`analysis::python`).
    stacks: SampleCounts,
    /// Python thread names, as read when the thread was first sampled
    /// here (its process may be gone and forgotten by the end).
    names: HashMap<(u32, u32), Option<String>>,
    /// Each sampled process, as [`identify`] found it when first sampled
    /// here (it may be gone by the end).
    processes: BTreeMap<u32, ProcessInfo>,
    samples: u64,
    truncated: u64,
    /// Samples of a new stack past [`MAX_STACKS`].
    left_out: u64,
    /// Samples whose process's interpreter was not known.
    unnamed: u64,
    /// The kernel's count of lost Python samples when it opened.
    lost_at_start: u64,
}

/// The open windows.
#[derive(Default)]
pub struct Captures {
    windows: Vec<Window>,
    next_id: u64,
    /// The processes of the open windows (and of the last closed), as
    /// [`identify`] found them alive: a process that exits before its
    /// next window's samples are drained keeps its name and container.
    known: HashMap<u32, ProcessInfo>,
}

impl Captures {
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// A window from `start_ns` on: the endpoint's (`None` when
    /// [`MAX_WINDOWS`] of its own are open) or, `exporter`, `--otlp`'s
    /// (one at a time, whatever the endpoint has open).
    /// `lost`: the kernel's count of lost Python samples now.
    pub fn open(&mut self, start_ns: u64, lost: u64, exporter: bool) -> Option<u64> {
        let open = self
            .windows
            .iter()
            .filter(|w| w.exporter == exporter)
            .count();
        if open >= if exporter { 1 } else { MAX_WINDOWS } {
            return None;
        }
        self.next_id += 1;
        self.windows.push(Window {
            id: self.next_id,
            start_ns,
            stacks: SampleCounts::default(),
            names: HashMap::new(),
            processes: BTreeMap::new(),
            samples: 0,
            truncated: 0,
            left_out: 0,
            unnamed: 0,
            lost_at_start: lost,
            exporter,
        });
        Some(self.next_id)
    }

    /// A sample (`named`: its Python frames), when a window is open: its
    /// native frames named, into the windows. `native`, `reread`:
    /// `--native`'s stacks (see [`super::native::sample_frame_ids`]).
    pub fn on_event(
        &mut self,
        event: &Event,
        named: Option<&SampleFrames>,
        tree: Option<&mut PythonTree>,
        native: Option<&mut super::native::Native>,
        reread: &mut bool,
        system: &mut dyn System,
    ) {
        if let Event::PySample {
            ts_ns,
            tgid,
            tid,
            truncated,
            task,
            task_name,
            native: native_stack,
            ..
        } = event
            && !self.windows.is_empty()
            && let Some(tree) = tree
        {
            let ids = super::native::sample_frame_ids(
                tree,
                native,
                *tgid,
                named,
                native_stack.as_ref(),
                reread,
            );
            let task = (*task != 0).then(|| (*task, tree.task_name(*tgid, *task, *task_name)));
            self.on_sample(
                (tree, system),
                *ts_ns,
                (*tgid, *tid),
                ids.as_deref(),
                *truncated,
                task,
            );
        }
    }

    /// One sample (`ids`: its frames, `None` when they could not be
    /// named; `task`: the asyncio task it ran in), into every window open
    /// at `ts_ns`.
    fn on_sample(
        &mut self,
        (tree, system): (&PythonTree, &mut dyn System),
        ts_ns: u64,
        (pid, tid): (u32, u32),
        ids: Option<&[FrameId]>,
        truncated: bool,
        task: Option<Task>,
    ) {
        for window in self.windows.iter_mut().filter(|w| ts_ns >= w.start_ns) {
            window.samples += 1;
            window.truncated += u64::from(truncated);
            let Some(ids) = ids else {
                window.unnamed += 1;
                continue;
            };
            let generation = tree.generation(pid);
            let counted = window.stacks.count(
                (pid, generation),
                tid,
                (ids.to_vec(), truncated),
                task.clone(),
                MAX_STACKS,
            );
            match counted {
                Some(Counted { new: true, .. }) => {}
                Some(Counted { new: false, .. }) => continue,
                None => {
                    window.left_out += 1;
                    continue;
                }
            }
            window
                .names
                .entry((pid, tid))
                .or_insert_with(|| tree.thread_name(pid, tid).map(Into::into));
            let known = &mut self.known;
            window
                .processes
                .entry(pid)
                .or_insert_with(|| identify(pid, system, known));
        }
    }

    /// Takes window `id` out of the open ones; the processes known are
    /// those of the windows still open and of this one.
    fn take(&mut self, id: u64) -> Option<Window> {
        let at = self.windows.iter().position(|w| w.id == id)?;
        let window = self.windows.swap_remove(at);
        let open = &self.windows;
        self.known.retain(|pid, _| {
            window.processes.contains_key(pid) || open.iter().any(|w| w.processes.contains_key(pid))
        });
        Some(window)
    }
}

impl Captures {
    /// Closes window `id` (every sample taken until now drained) and
    /// returns its report. `lost`: the kernel's count of lost Python
    /// samples now; `sampler_error`: why sampling stopped, if it did.
    pub fn close(
        &mut self,
        id: u64,
        (collector, world): (&Collector, &World),
        lost: u64,
        sampler_error: Option<&str>,
    ) -> Option<Report> {
        let window = self.take(id)?;
        let duration_ns = crate::host::clock::monotonic_ns().saturating_sub(window.start_ns);
        let tree = world.python.as_ref()?;
        let mut report = window_report(window, tree, lost, sampler_error);
        report.target = collector.target.clone();
        report.duration_s = duration_ns as f64 / 1e9;
        report.python.rate_hz = collector.settings.python_rate_hz.unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        report.start_unix_ns = now.saturating_sub(duration_ns);
        report.host_name = world.system.host_name();
        Some(report)
    }

    /// Forgets window `id` (its client is gone).
    pub fn discard(&mut self, id: u64) {
        self.take(id);
    }
}

/// What a sampled process's labels come from: its name and container,
/// read now, or as they were last read if it is gone (its last samples
/// are drained after its exit).
fn identify(
    pid: u32,
    system: &mut dyn System,
    known: &mut HashMap<u32, ProcessInfo>,
) -> ProcessInfo {
    let Some(comm) = system.comm(pid) else {
        return known.get(&pid).cloned().unwrap_or(ProcessInfo {
            pid,
            ..ProcessInfo::default()
        });
    };
    let info = ProcessInfo {
        pid,
        comm,
        container: system.container(pid).flatten(),
        ..ProcessInfo::default()
    };
    known.insert(pid, info.clone());
    info
}

/// The window's samples as a report: the Python section's tables built
/// as the whole trace's are, threads named, a `processes[]` row per
/// sampled process (its name), what was left out or lost as warnings.
fn window_report(
    window: Window,
    tree: &PythonTree,
    lost: u64,
    sampler_error: Option<&str>,
) -> Report {
    let resolved = window.stacks.named(tree);
    let rows: Vec<Row> = resolved
        .iter()
        .map(|(at, frames, samples, truncated)| (*at, frames.as_slice(), *samples, *truncated))
        .collect();
    let samples_lost = lost.saturating_sub(window.lost_at_start);
    let mut python = Python {
        status: "sampled".into(),
        samples: window.samples,
        samples_lost,
        truncated: window.truncated,
        ..Python::default()
    };
    fill_sampled(&mut python, &rows, window.stacks.tasks());
    let names = window.names;
    for thread in &mut python.threads {
        let at = (thread.pid, thread.tid);
        thread.name = tree
            .thread_name(at.0, at.1)
            .map(Into::into)
            .or_else(|| names.get(&at).cloned().flatten());
    }
    let processes = window.processes.into_values().collect();
    let mut warnings = Vec::new();
    if window.left_out > 0 {
        warnings.push(format!(
            "{} samples left out: the window keeps its first {} distinct stacks",
            thousands(window.left_out),
            thousands(MAX_STACKS as u64)
        ));
    }
    if window.unnamed > 0 {
        warnings.push(format!(
            "{} samples not named: their process's interpreter was not known",
            thousands(window.unnamed)
        ));
    }
    if samples_lost > 0 {
        warnings.push(format!(
            "{} samples lost in the kernel (ring buffer full)",
            thousands(samples_lost)
        ));
    }
    if let Some(err) = sampler_error {
        warnings.push(format!("Python sampling stopped: {err}"));
    }
    Report {
        schema_version: SCHEMA_VERSION,
        stopped: "window ended".into(),
        complete: warnings.is_empty(),
        python,
        processes,
        warnings,
        ..Report::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::system::{MadeUp, made_up};

    #[test]
    fn a_window_counts_only_what_was_sampled_while_it_was_open() {
        let tree = PythonTree::new(1, 0);
        let mut captures = Captures::default();
        let first = captures.open(100, 0, false).unwrap();
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            99,
            (7, 7),
            Some(&[]),
            false,
            None,
        );
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            100,
            (7, 7),
            Some(&[]),
            false,
            None,
        );
        let second = captures.open(200, 3, false).unwrap();
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            150,
            (7, 8),
            Some(&[]),
            true,
            None,
        );
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            250,
            (7, 8),
            Some(&[]),
            false,
            None,
        );
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            260,
            (7, 8),
            None,
            false,
            None,
        );
        let report = window_report(captures.take(first).unwrap(), &tree, 5, None);
        assert_eq!((report.python.samples, report.python.truncated), (4, 1));
        let counts: Vec<(u32, u64)> = report
            .python
            .stacks
            .iter()
            .map(|s| (s.tid, s.samples))
            .collect();
        assert_eq!(counts, [(7, 1), (8, 1), (8, 1)]);
        let threads: Vec<(u32, u64)> = report
            .python
            .threads
            .iter()
            .map(|t| (t.tid, t.samples))
            .collect();
        assert_eq!(threads, [(7, 1), (8, 2)]);
        assert_eq!(report.python.samples_lost, 5);
        assert!(!report.complete);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.starts_with("1 samples not named")),
            "{:?}",
            report.warnings
        );
        let report = window_report(captures.take(second).unwrap(), &tree, 5, None);
        assert_eq!(report.python.samples, 2);
        assert_eq!(report.python.samples_lost, 2);
        assert!(captures.is_empty());
    }

    /// The same stack run by two asyncio tasks is two stacks of the window,
    /// each with its task (the pprof `task` label), beside a thread's own.
    #[test]
    fn a_window_keeps_the_task_each_sample_ran_in() {
        let tree = PythonTree::new(1, 0);
        let mut captures = Captures::default();
        let id = captures.open(0, 0, false).unwrap();
        let heavy = Some((0x7000, Some("heavy".to_owned())));
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            1,
            (7, 7),
            Some(&[]),
            false,
            heavy.clone(),
        );
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            2,
            (7, 7),
            Some(&[]),
            false,
            heavy,
        );
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            3,
            (7, 7),
            Some(&[]),
            false,
            Some((0x8000, None)),
        );
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            4,
            (7, 7),
            Some(&[]),
            false,
            None,
        );
        let report = window_report(captures.take(id).unwrap(), &tree, 0, None);
        let stacks: Vec<(u64, Option<&str>, Option<&str>)> = report
            .python
            .stacks
            .iter()
            .map(|s| (s.samples, s.task.as_deref(), s.task_id.as_deref()))
            .collect();
        assert_eq!(stacks[0], (2, Some("heavy"), Some("0x7000")));
        assert!(stacks.contains(&(
            1,
            Some(super::super::asyncio::task_label(None)),
            Some("0x8000")
        )));
        assert!(stacks.contains(&(1, None, None)));
        assert_eq!(report.python.threads[0].samples, 4);
    }

    #[test]
    fn windows_and_their_stacks_are_bounded_and_what_is_left_out_is_said() {
        let tree = PythonTree::new(1, 0);
        let mut captures = Captures::default();
        let ids: Vec<u64> = (0..MAX_WINDOWS)
            .map(|_| captures.open(0, 0, false).unwrap())
            .collect();
        assert_eq!(captures.open(0, 0, false), None);
        // `--otlp`'s window opens whatever the endpoint has open, one at a time.
        assert!(captures.open(0, 0, true).is_some());
        assert_eq!(captures.open(0, 0, true), None);
        for tid in 0..MAX_STACKS as u32 + 5 {
            captures.on_sample(
                (&tree, &mut MadeUp::default()),
                1,
                (u32::MAX, tid),
                Some(&[]),
                false,
                None,
            );
        }
        // A stack already kept still counts.
        captures.on_sample(
            (&tree, &mut MadeUp::default()),
            1,
            (u32::MAX, 0),
            Some(&[]),
            false,
            None,
        );
        let report = window_report(captures.take(ids[0]).unwrap(), &tree, 0, None);
        assert_eq!(report.python.stacks.len(), MAX_STACKS);
        assert_eq!(report.python.stacks[0].samples, 2);
        assert_eq!(report.python.samples, MAX_STACKS as u64 + 6);
        assert_eq!(
            report.warnings,
            ["5 samples left out: the window keeps its first 10,000 distinct stacks"]
        );
        // A window closed makes room for another.
        assert!(captures.open(0, 0, false).is_some());
    }

    #[test]
    fn a_sampled_process_has_its_name() {
        let tree = PythonTree::new(1, 0);
        let mut captures = Captures::default();
        let id = captures.open(0, 0, false).unwrap();
        let me = 7;
        let mut system = MadeUp {
            processes: [(
                me,
                made_up::Process {
                    comm: "python3".into(),
                    ..made_up::Process::default()
                },
            )]
            .into(),
        };
        captures.on_sample((&tree, &mut system), 1, (me, me), Some(&[]), false, None);
        let report = window_report(captures.take(id).unwrap(), &tree, 0, None);
        assert!(report.complete);
        assert_eq!(report.processes.len(), 1);
        assert_eq!(report.processes[0].comm, "python3");
    }

    /// A process that exits before its next window's samples are drained
    /// keeps the name it had (the container too: read at the same time).
    #[test]
    fn a_process_gone_by_its_next_window_keeps_its_name() {
        let tree = PythonTree::new(1, 0);
        let mut captures = Captures::default();
        let pid = 9;
        let mut system = MadeUp {
            processes: [(
                pid,
                made_up::Process {
                    comm: "sleep".into(),
                    ..made_up::Process::default()
                },
            )]
            .into(),
        };
        let first = captures.open(0, 0, false).unwrap();
        captures.on_sample((&tree, &mut system), 1, (pid, pid), Some(&[]), false, None);
        // It exits.
        system.processes.clear();
        let report = window_report(captures.take(first).unwrap(), &tree, 0, None);
        assert_eq!(report.processes[0].comm, "sleep");
        let second = captures.open(2, 0, false).unwrap();
        captures.on_sample((&tree, &mut system), 3, (pid, pid), Some(&[]), false, None);
        let report = window_report(captures.take(second).unwrap(), &tree, 0, None);
        assert_eq!(report.processes[0].comm, "sleep");
        // Not in the last window closed nor in an open one: forgotten.
        let third = captures.open(4, 0, false).unwrap();
        captures.take(third).unwrap();
        let fourth = captures.open(5, 0, false).unwrap();
        captures.on_sample((&tree, &mut system), 6, (pid, pid), Some(&[]), false, None);
        let report = window_report(captures.take(fourth).unwrap(), &tree, 0, None);
        assert_eq!(report.processes[0].comm, "");
    }
}
