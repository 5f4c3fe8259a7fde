//! Python: sampled stacks counted per process and thread, the stacks
//! behind kernel events (reads, context switches, forks) and eval-loop
//! entries, and from them the report's Python section: totals over every
//! Python process of the trace, and each process on its own. Frames arrive
//! symbolized by `python::PythonTree`.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracer_common::{PyEntryKey, PyEventKey, PyEventValue, PySleep, PyTicks, py_event};

use super::{
    hotspots::{Row, Sampled, TaskKey, hotspots, line_hotspots, native_functions},
    sample_counts::{Counted, NamedStack, SampleCounts},
};
use crate::{
    frame::Frame,
    python::{
        Discovery, PythonProcess, PythonTree, discovery::Place, interpreter::Interpreter,
        symbols::FrameId,
    },
    report::{
        Entries, EventStack, Python, PythonProcess as ProcessSection, PythonStack, PythonThread,
        Sched, ThreadNow, TimedSample,
    },
};

/// Hotspots and lines kept in the report; per thread and per process.
const MAX_ROWS: usize = 100;
const MAX_THREAD_ROWS: usize = 20;

/// Samples kept in time order for the exports: 16 MB at most, about 28 h
/// of one thread at 99 Hz. Later samples are still counted in the stacks;
/// the time order is then dropped and the report says so.
const MAX_TIMELINE: usize = 1_000_000;

/// Everything counted for the sampled Python processes.
#[derive(Default)]
pub struct Profile {
    /// Samples by distinct stack, in the order first seen.
    stacks: SampleCounts,
    /// (time since the start, index in `stacks`) of every sample, in the
    /// order taken (the ring buffer is drained in order per CPU; sorted at
    /// the end), while there are at most `MAX_TIMELINE`.
    timeline: Vec<(u64, usize)>,
    timeline_overflowed: bool,
    /// Samples and truncated samples per pid.
    samples: BTreeMap<u32, (u64, u64)>,
    /// Kernel-event stacks: symbolized when first seen, their counts.
    event_stacks: HashMap<PyEventKey, EventStackRow>,
    /// fork / clone calls per stack (every one: one record per fork).
    forks: HashMap<Vec<Frame>, u64>,
    /// `--count-entries`: entry-counter key -> (function, latest count).
    entries: HashMap<PyEntryKey, (Frame, u64)>,
}

/// A kernel-event stack: its frames, and its counts in `PY_EVENT_STACKS`
/// (cumulative, the latest read) plus those that came in records (the
/// table was full; sleeps in progress at the end).
struct EventStackRow {
    frames: Vec<Frame>,
    in_map: PyEventValue,
    spilled: PyEventValue,
}

impl EventStackRow {
    fn counts(&self) -> PyEventValue {
        PyEventValue {
            count: self.in_map.count + self.spilled.count,
            off_cpu_ns: self.in_map.off_cpu_ns + self.spilled.off_cpu_ns,
        }
    }
}

impl Profile {
    /// One sampled stack (frames interned by the tree's frame table) of
    /// the process that is `generation` of its pid; `task`: the asyncio
    /// task it ran in (address, name if read).
    pub fn on_sample(
        &mut self,
        t_ns: u64,
        (pid, generation): (u32, u32),
        tid: u32,
        frames: Vec<FrameId>,
        truncated: bool,
        task: Option<(u64, Option<String>)>,
    ) {
        let per_pid = self.samples.entry(pid).or_default();
        per_pid.0 += 1;
        per_pid.1 += u64::from(truncated);
        let Some(Counted { index, .. }) = self.stacks.count(
            (pid, generation),
            tid,
            (frames, truncated),
            task,
            usize::MAX,
        ) else {
            return;
        };
        if self.timeline.len() < MAX_TIMELINE {
            self.timeline.push((t_ns, index));
        } else {
            self.timeline_overflowed = true;
        }
    }

    /// Samples counted so far, over every process.
    pub fn samples(&self) -> u64 {
        self.samples.values().map(|&(samples, _)| samples).sum()
    }

    /// One fork / clone by a Python thread, with its stack.
    pub fn on_fork(&mut self, frames: Vec<Frame>) {
        *self.forks.entry(frames).or_default() += 1;
    }

    /// A stack the kernel side has just put in a map: symbolize it now,
    /// while its code objects exist (counts come with the next read of the
    /// map); or, `counts` not zero, counts the map had no room for.
    pub fn on_new_event_stack(
        &mut self,
        tree: &mut PythonTree,
        key: &PyEventKey,
        counts: PyEventValue,
    ) {
        if key.kind == py_event::ENTRY {
            let entry = PyEntryKey {
                tgid: key.tgid,
                _pad: 0,
                code: key.frames[0].code,
            };
            if !self.entries.contains_key(&entry) {
                self.on_entries(tree, &[(entry, 0)]);
            }
        } else {
            if !self.event_stacks.contains_key(key) {
                self.on_event_stacks(tree, &[(*key, PyEventValue::default())]);
            }
            if let Some(row) = self.event_stacks.get_mut(key) {
                row.spilled.count += counts.count;
                row.spilled.off_cpu_ns += counts.off_cpu_ns;
            }
        }
    }

    /// Rows of `PY_EVENT_STACKS` (cumulative counts).
    pub fn on_event_stacks(&mut self, tree: &mut PythonTree, rows: &[(PyEventKey, PyEventValue)]) {
        for (key, value) in rows {
            if let Some(row) = self.event_stacks.get_mut(key) {
                row.in_map = *value;
            } else if let Some(frames) = tree.frames(key.tgid, &key.frames) {
                let row = EventStackRow {
                    frames,
                    in_map: *value,
                    spilled: PyEventValue::default(),
                };
                self.event_stacks.insert(*key, row);
            }
        }
    }

    /// Threads still asleep when tracing stopped (`end_ns`): their sleep
    /// counts up to then, on the stack they went to sleep in. Not those
    /// that `exited` (their last switch-out was their end).
    pub fn on_sleeps_in_progress(
        &mut self,
        tree: &mut PythonTree,
        sleeping: &[(u32, PySleep)],
        end_ns: u64,
        exited: &HashSet<u32>,
    ) {
        for (tid, sleep) in sleeping {
            if sleep.start_ns == 0 || exited.contains(tid) {
                continue;
            }
            if !self.event_stacks.contains_key(&sleep.key) {
                self.on_event_stacks(tree, &[(sleep.key, PyEventValue::default())]);
            }
            if let Some(row) = self.event_stacks.get_mut(&sleep.key) {
                row.spilled.count += 1;
                row.spilled.off_cpu_ns += end_ns.saturating_sub(sleep.start_ns);
            }
        }
    }

    /// Rows of `PY_ENTRIES` (cumulative counts).
    pub fn on_entries(&mut self, tree: &mut PythonTree, rows: &[(PyEntryKey, u64)]) {
        for (key, count) in rows {
            if let Some(entry) = self.entries.get_mut(key) {
                entry.1 = *count;
            } else if let Some(function) = tree.function(key.tgid, key.code) {
                self.entries.insert(*key, (function, *count));
            }
        }
    }

    /// Stacks behind the captured reads (`kind` `py_event::READ`) or
    /// writes (`WRITE`) of process `pid`, per file id of the kernel side.
    pub fn io_stacks(&self, pid: u32, kind: u32) -> HashMap<u64, Vec<EventStack>> {
        let mut reads: HashMap<u64, Vec<EventStack>> = HashMap::new();
        for (key, row) in &self.event_stacks {
            if key.kind == kind && key.tgid == pid {
                reads
                    .entry(key.file_id)
                    .or_default()
                    .push(EventStack::new(row.frames.clone(), row.counts().count));
            }
        }
        reads
            .into_iter()
            .map(|(file_id, stacks)| (file_id, merge_stacks(stacks)))
            .collect()
    }

    /// The Python section: totals over every process of `tree`, the
    /// interpreter of its main process, and each process on its own.
    /// `ticks`: the sampler's counters per pid.
    pub fn section(&self, tree: &PythonTree, ticks: &[(u32, PyTicks)], rate_hz: u64) -> Python {
        let mut ticks: HashMap<u32, PyTicks> = ticks.iter().copied().collect();
        for (pid, t) in ticks.iter_mut() {
            if tree.process(*pid).is_some_and(PythonProcess::not_python) {
                *t = not_python_ticks(*t);
            }
        }
        let mut section = Python {
            rate_hz,
            ..Python::default()
        };
        match tree.main().map(|main| (main, main.discovery())) {
            None => {
                section.status = "unavailable".into();
                section.reason = Some(format!(
                    "no Python process found among the {} processes traced",
                    tree.processes().count()
                ));
            }
            Some((_, Discovery::Searching(reason))) => {
                section.status = "unavailable".into();
                let others = tree.processes().count() - 1;
                section.reason = Some(if others == 0 {
                    reason.clone()
                } else {
                    format!(
                        "{reason}; nor in its {others} followed child process{}",
                        if others == 1 { "" } else { "es" }
                    )
                });
            }
            Some((main, Discovery::Failed(reason, found))) => {
                section.status = "unavailable".into();
                section.reason = Some(reason.clone());
                if let Some(found) = found {
                    describe(&mut section, main.pid(), &found.0, &found.1);
                }
            }
            Some((main, Discovery::Ready(ready))) => {
                section.status = "sampled".into();
                describe(
                    &mut section,
                    main.pid(),
                    &ready.binary.interpreter,
                    &ready.place,
                );
                section.layout = Some(ready.binary.origin.into());
            }
        }
        let resolved = self.stacks.named(tree);
        let stacks: Vec<Row> = resolved
            .iter()
            .map(|(at, frames, count, truncated)| (*at, frames.as_slice(), *count, *truncated))
            .collect();
        section.unresolved_frames = stacks
            .iter()
            .map(|(_, frames, count, _)| {
                frames
                    .iter()
                    .filter(|f| !f.native && !f.is_resolved())
                    .count() as u64
                    * count
            })
            .sum();
        section.frames_without_line = stacks
            .iter()
            .map(|(_, frames, count, _)| {
                let no_line = frames
                    .iter()
                    .filter(|f| !f.native && f.is_resolved() && f.line == 0);
                no_line.count() as u64 * count
            })
            .sum();
        for &(samples, truncated) in self.samples.values() {
            section.samples += samples;
            section.truncated += truncated;
        }
        for t in ticks.values() {
            section.ticks += t.ticks;
            section.ticks_without_interpreter += t.no_interpreter;
            section.ticks_without_thread_state += t.no_thread_state;
            section.ticks_outside_python += t.no_frame;
        }
        let position = fill_sampled(&mut section, &stacks, self.stacks.tasks());
        if self.timeline_overflowed {
            section.timeline_complete = false;
        } else {
            let mut timeline: Vec<TimedSample> = self
                .timeline
                .iter()
                .map(|&(t_ns, index)| TimedSample {
                    t_ns,
                    stack: position[index],
                })
                .collect();
            timeline.sort_by_key(|s| s.t_ns);
            section.timeline = timeline;
            section.timeline_complete = true;
        }
        section.processes = tree
            .processes()
            .filter_map(|process| {
                let own: Vec<Row> = stacks
                    .iter()
                    .filter(|(at, _, _, _)| {
                        at.pid == process.pid() && at.generation == process.generation()
                    })
                    .copied()
                    .collect();
                // The kernel counts ticks per pid: a reused pid's earlier
                // processes count theirs with the process it names now.
                let ticks = match tree.generation(process.pid()) == process.generation() {
                    true => ticks.get(&process.pid()).copied().unwrap_or_default(),
                    false => PyTicks::default(),
                };
                process_section(process, &own, ticks)
            })
            .collect();
        section.ticks_not_python = section
            .processes
            .iter()
            .filter(|row| row.not_python)
            .map(|row| row.ticks_without_interpreter)
            .sum();
        section.off_cpu = self.off_cpu();
        section.forks = merge_stacks(
            self.forks
                .iter()
                .map(|(frames, &count)| EventStack::new(frames.clone(), count)),
        );
        section
    }

    /// The samples of thread `tid` taken inside `windows` ((start, end)
    /// from the trace's start, in time order) as a section of their own:
    /// `samples`, `hotspots`, `lines`, `stacks`.
    pub fn section_in(&self, tree: &PythonTree, tid: u32, windows: &[(u64, u64)]) -> Python {
        let keys = self.stacks.keys();
        let inside = |t: u64| {
            // The last window starting at or before t.
            let at = windows.partition_point(|&(start, _)| start <= t);
            at > 0 && t <= windows[at - 1].1
        };
        let mut counts: HashMap<usize, u64> = HashMap::new();
        for &(t_ns, index) in &self.timeline {
            if keys[index].0.tid == tid && inside(t_ns) {
                *counts.entry(index).or_default() += 1;
            }
        }
        let resolved: Vec<NamedStack> = counts
            .into_iter()
            .map(|(index, count)| {
                let (at, truncated, ids) = keys[index];
                let frames = ids.iter().map(|&id| tree.frame(id).clone()).collect();
                (*at, frames, count, *truncated)
            })
            .collect();
        let rows: Vec<Row> = resolved
            .iter()
            .map(|(at, frames, count, truncated)| (*at, frames.as_slice(), *count, *truncated))
            .collect();
        let mut section = Python::default();
        fill(&mut section, &rows);
        section.samples = rows.iter().map(|r| r.2).sum();
        section
    }

    /// Voluntary switches by stack, most off-CPU time first.
    fn off_cpu(&self) -> Vec<EventStack> {
        self.timed_stacks(py_event::OFF_CPU)
    }

    /// Events of `kind` (`OFF_CPU`, `GIL_WAIT`) by stack, most time first.
    pub fn timed_stacks(&self, kind: u32) -> Vec<EventStack> {
        let mut off_cpu = merge_stacks(
            self.event_stacks
                .iter()
                .filter(|(key, _)| key.kind == kind)
                .map(|(_, row)| {
                    let counts = row.counts();
                    EventStack {
                        frames: row.frames.clone(),
                        samples: counts.count,
                        off_cpu_ns: counts.off_cpu_ns,
                    }
                }),
        );
        off_cpu.sort_by(|a, b| {
            b.off_cpu_ns
                .cmp(&a.off_cpu_ns)
                .then(a.frames.cmp(&b.frames))
        });
        off_cpu
    }

    /// Entries per function, most first.
    pub fn entries(&self) -> Vec<Entries> {
        let mut by_fn: BTreeMap<(String, String, String, u32), u64> = BTreeMap::new();
        for (function, count) in self.entries.values() {
            let key = (
                function.qualname.clone(),
                function.function.clone(),
                function.file.clone(),
                function.first_line,
            );
            *by_fn.entry(key).or_default() += count;
        }
        let mut out: Vec<Entries> = by_fn
            .into_iter()
            .map(|((qualname, function, file, line), entries)| Entries {
                function,
                qualname,
                file,
                line,
                entries,
            })
            .collect();
        out.sort_by(|a, b| b.entries.cmp(&a.entries).then(a.qualname.cmp(&b.qualname)));
        out.truncate(MAX_ROWS);
        out
    }
}

/// The ticks of a process found not to be Python: those that gave no
/// stack were outside any interpreter, whatever the kernel side made of
/// them. (A config published for a forked child just before its exec
/// reached userspace stays in the kernel: the new program's ticks were
/// counted as without a thread state.)
fn not_python_ticks(t: PyTicks) -> PyTicks {
    PyTicks {
        no_interpreter: t.no_interpreter + t.no_thread_state + t.no_frame,
        no_thread_state: 0,
        no_frame: 0,
        ..t
    }
}

/// One process's part of the section; `None` for a process that is not
/// Python and never ran while sampled (nothing to say about it).
fn process_section(
    process: &PythonProcess,
    stacks: &[Row],
    ticks: PyTicks,
) -> Option<ProcessSection> {
    let mut row = ProcessSection {
        pid: process.pid(),
        ticks: ticks.ticks,
        ticks_without_interpreter: ticks.no_interpreter,
        ticks_without_thread_state: ticks.no_thread_state,
        ticks_outside_python: ticks.no_frame,
        ..ProcessSection::default()
    };
    let mut python = Python::default();
    match process.discovery() {
        Discovery::Ready(ready) => {
            row.status = "sampled".into();
            describe(
                &mut python,
                process.pid(),
                &ready.binary.interpreter,
                &ready.place,
            );
            row.ns_pid = ready.place.ns_pid;
            row.layout = Some(ready.binary.origin.into());
        }
        Discovery::Failed(reason, found) => {
            row.status = "unavailable".into();
            row.reason = Some(reason.clone());
            if let Some(found) = found {
                describe(&mut python, process.pid(), &found.0, &found.1);
                row.ns_pid = found.1.ns_pid;
            }
        }
        Discovery::Searching(reason) => {
            if ticks.ticks == 0 && stacks.is_empty() {
                return None;
            }
            row.status = "unavailable".into();
            row.reason = Some(reason.clone());
            row.not_python = process.not_python();
        }
    }
    row.version = python.version;
    row.binary = python.binary;
    row.root = python.root;
    row.linkage = python.linkage;
    row.debug_build = python.debug_build;
    row.free_threaded = python.free_threaded;
    let mut own = Python::default();
    fill(&mut own, stacks);
    row.samples = stacks.iter().map(|s| s.2).sum();
    if row.status == "sampled" && row.samples == 0 {
        row.no_thread_reason = process.why_no_thread();
    }
    own.hotspots.truncate(MAX_THREAD_ROWS);
    own.lines.truncate(MAX_THREAD_ROWS);
    row.hotspots = own.hotspots;
    row.lines = own.lines;
    row.threads = own.threads;
    Some(row)
}

/// The Python section when sampling was not asked for or could not start.
pub fn disabled(reason: &str) -> Python {
    Python {
        status: "disabled".into(),
        reason: Some(reason.into()),
        ..Python::default()
    }
}

/// The interpreter's description in the report: what it is and where.
fn describe(section: &mut Python, pid: u32, interpreter: &Interpreter, place: &Place) {
    section.pid = Some(pid);
    section.version = Some(interpreter.version.clone());
    section.binary = Some(place.inside(&interpreter.path));
    section.root = place.root.clone();
    section.linkage = Some(
        if interpreter.shared {
            "shared"
        } else {
            "static"
        }
        .into(),
    );
    section.debug_build = interpreter.debug_build;
    section.free_threaded = interpreter.free_threaded;
}

/// Fills the section's tables from the sampled `stacks` (their asyncio
/// tasks in `tasks`), as the whole trace's section and a window's
/// (`analysis::capture`) are built alike; returns where each row went in
/// `section.stacks`.
pub(super) fn fill_sampled(section: &mut Python, stacks: &[Row], tasks: &[TaskKey]) -> Vec<usize> {
    let position = fill(section, stacks);
    for (row, (at, ..)) in stacks.iter().enumerate() {
        if let Some(task) = at.task.checked_sub(1).map(|i| &tasks[i as usize]) {
            let stack = &mut section.stacks[position[row]];
            stack.task = Some(super::asyncio::task_label(task.name.as_deref()).into());
            stack.task_id = Some(super::asyncio::id(task.address));
        }
    }
    section.asyncio.samples_by_task = super::asyncio::samples_by_task(stacks, tasks);
    position
}

/// Fills the section's tables from `stacks`; returns where each row went
/// in `section.stacks`.
fn fill(section: &mut Python, stacks: &[Row]) -> Vec<usize> {
    let (total, hot) = hotspots(stacks, None, MAX_ROWS);
    section.hotspots = hot;
    section.native_functions = native_functions(stacks, MAX_ROWS);
    // The innermost Python line: with `--native`, the line that called
    // into the native code below it is charged with its time.
    let tops = stacks
        .iter()
        .filter_map(|(_, frames, count, _)| Some((frames.iter().find(|f| !f.native)?, *count)));
    let lines = line_hotspots(tops, total, MAX_ROWS);
    section.lines = lines;
    let mut threads: Vec<Sampled> = stacks.iter().map(|s| s.0.thread()).collect();
    threads.sort_unstable();
    threads.dedup();
    section.threads = threads
        .into_iter()
        .map(|at| {
            let (samples, hotspots) = hotspots(stacks, Some(at), MAX_THREAD_ROWS);
            PythonThread {
                pid: at.pid,
                tid: at.tid,
                name: None,
                samples,
                hotspots,
                gil: None,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..stacks.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&stacks[a], &stacks[b]);
        b.2.cmp(&a.2).then(a.1.cmp(b.1)).then(a.0.cmp(&b.0))
    });
    let mut position = vec![0; stacks.len()];
    for (at, &row) in order.iter().enumerate() {
        position[row] = at;
    }
    section.stacks = order
        .into_iter()
        .map(|row| {
            let (at, frames, count, truncated) = stacks[row];
            PythonStack {
                pid: at.pid,
                tid: at.tid,
                samples: count,
                truncated,
                frames: frames.to_vec(),
                ..PythonStack::default()
            }
        })
        .collect();
    position
}

/// Stacks that read the same (one per child forked from a line, raw stacks
/// whose code objects differ but name the same lines, deliveries of a
/// signal on one line) merged into one with the counts added, most first.
pub fn merge_stacks(stacks: impl IntoIterator<Item = EventStack>) -> Vec<EventStack> {
    let mut merged: BTreeMap<Vec<Frame>, EventStack> = BTreeMap::new();
    for stack in stacks {
        let entry = merged
            .entry(stack.frames.clone())
            .or_insert_with(|| EventStack::new(stack.frames, 0));
        entry.samples += stack.samples;
        entry.off_cpu_ns += stack.off_cpu_ns;
    }
    let mut out: Vec<EventStack> = merged.into_values().collect();
    out.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.frames.cmp(&b.frames)));
    out
}

/// Every known Python thread's stack now, with its state.
pub fn threads_now(tree: &mut PythonTree, system: &dyn super::system::System) -> Vec<ThreadNow> {
    tree.stacks_now()
        .into_iter()
        .map(|(pid, tid, frames)| {
            let state = system.thread_state(pid, tid);
            ThreadNow {
                pid,
                tid,
                name: tree.thread_name(pid, tid).map(Into::into),
                state: state.as_ref().map_or("gone", |s| s.state).into(),
                syscall: state.and_then(|s| s.syscall),
                asleep_ns: 0,
                frames,
            }
        })
        .collect()
}

/// How long each Python thread at the end had been asleep: from its
/// scheduling row, or the whole trace (`trace_ns`) for one asleep at both
/// ends that never switched.
pub fn asleep_at_end(python: &mut Python, sched: &Sched, trace_ns: u64) {
    for thread in &mut python.threads_at_end {
        if let Some(t) = sched.threads.iter().find(|t| t.tid == thread.tid) {
            thread.asleep_ns = t.asleep_at_end_ns;
        } else if thread.state != "running"
            && python
                .threads_at_start
                .iter()
                .any(|s| s.tid == thread.tid && s.state != "running")
        {
            // Never switched in or out while traced, asleep at both
            // ends: it slept the whole trace (at least).
            thread.asleep_ns = trace_ns;
        }
    }
}

/// Gives every per-thread row its Python thread name (tid -> name).
pub fn name_threads(names: &HashMap<u32, String>, sched: &mut Sched, python: &mut Python) {
    let name = |tid: u32| names.get(&tid).cloned();
    for t in &mut sched.threads {
        t.name = name(t.tid);
    }
    for t in python.threads.iter_mut().chain(
        python
            .processes
            .iter_mut()
            .flat_map(|p| p.threads.iter_mut()),
    ) {
        t.name = name(t.tid);
    }
    for t in python
        .threads_at_start
        .iter_mut()
        .chain(python.threads_at_end.iter_mut())
    {
        t.name = t.name.take().or_else(|| name(t.tid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(f: &str, line: u32) -> Frame {
        Frame {
            qualname: f.into(),
            function: f.into(),
            file: "/w.py".into(),
            line,
            first_line: 1,
            native: false,
        }
    }

    fn at(pid: u32, tid: u32) -> Sampled {
        Sampled {
            pid,
            generation: 0,
            tid,
            task: 0,
        }
    }

    #[test]
    fn self_and_total_shares() {
        let a = [sym("inner", 5), sym("outer", 9), sym("main", 12)];
        let b = [sym("outer", 8), sym("main", 12)];
        let c = [sym("fib", 3), sym("fib", 3), sym("main", 12)];
        let stacks: Vec<Row> = vec![
            (at(9, 1), &a, 70, false),
            (at(9, 1), &b, 20, false),
            (at(9, 2), &c, 10, false),
        ];
        let mut section = Python::default();
        fill(&mut section, &stacks);
        let get = |f: &str| {
            section
                .hotspots
                .iter()
                .find(|h| h.qualname == f)
                .unwrap()
                .clone()
        };
        assert_eq!(get("inner").self_samples, 70);
        assert_eq!(get("inner").self_share, 70.0);
        assert_eq!(get("outer").self_samples, 20);
        assert_eq!(get("outer").total_samples, 90);
        assert_eq!(get("main").total_samples, 100);
        assert_eq!(get("main").self_samples, 0);
        // Recursion counted once per sample.
        assert_eq!(get("fib").total_samples, 10);
        assert_eq!(section.hotspots[0].qualname, "inner");
        assert_eq!(section.lines[0].line, 5);
        assert_eq!(section.threads.len(), 2);
        assert_eq!(section.threads[1].samples, 10);
        assert_eq!(section.stacks[0].frames[0].qualname, "inner");
    }

    fn frames(list: &[&str]) -> Vec<Frame> {
        list.iter().map(|f| Frame::parse(f).unwrap()).collect()
    }

    #[test]
    fn stacks_differing_only_by_child_merge() {
        let a = frames(&["spawn (/abs/wl.py:7)", "<module> (/abs/wl.py:12)"]);
        let b = frames(&["spawn (/abs/wl.py:8)", "<module> (/abs/wl.py:12)"]);
        // One entry per child (or per raw stack) in, one per line out.
        let merged = merge_stacks(
            [(&a, 1), (&b, 1), (&a, 1), (&a, 2)]
                .map(|(frames, n)| EventStack::new(frames.clone(), n)),
        );
        assert_eq!(merged, [EventStack::new(a, 4), EventStack::new(b, 1)]);
        assert!(merge_stacks([]).is_empty());
    }

    #[test]
    fn off_cpu_time_adds_up_with_the_counts() {
        let a = frames(&["wait (/abs/wl.py:3)"]);
        let slept = |ns| EventStack {
            off_cpu_ns: ns,
            ..EventStack::new(a.clone(), 1)
        };
        let merged = merge_stacks([slept(5), slept(7)]);
        assert_eq!(merged.len(), 1);
        assert_eq!((merged[0].samples, merged[0].off_cpu_ns), (2, 12));
    }

    #[test]
    fn a_process_that_is_not_python_has_its_ticks_outside_any_interpreter() {
        let seen = PyTicks {
            ticks: 100,
            no_interpreter: 3,
            no_thread_state: 90,
            no_frame: 2,
        };
        let t = not_python_ticks(seen);
        assert_eq!((t.ticks, t.no_interpreter), (100, 95));
        assert_eq!((t.no_thread_state, t.no_frame), (0, 0));
    }
}
