//! Python: sampled stacks counted per thread, the stacks behind kernel
//! events (reads, context switches, forks) and eval-loop entries, and from
//! them the report's Python section (hotspots, lines, threads, stacks).
//! Frames arrive symbolized by `python::PythonProcess`.

use std::collections::{BTreeMap, HashMap};

use tracer_common::{PyEntryKey, PyEventKey, PyEventValue, py_event};

use super::merge_stacks;
use crate::{
    frame::Frame,
    python::{Discovery, PythonProcess, discover::Interpreter, process::Place, symbols::FrameId},
    report::{Entries, EventStack, Hotspot, LineHotspot, Python, PythonStack, PythonThread},
};

/// Hotspots and lines kept in the report; per thread, hotspots.
const MAX_ROWS: usize = 100;
const MAX_THREAD_ROWS: usize = 20;

/// Everything counted for the sampled Python process.
#[derive(Default)]
pub struct Profile {
    /// (tid, frames innermost first) -> samples.
    stacks: HashMap<(u32, Vec<FrameId>), u64>,
    samples: u64,
    truncated: u64,
    /// Kernel-event stacks (cumulative counts in a BPF map): symbolized
    /// when first seen, latest counts.
    event_stacks: HashMap<PyEventKey, (Vec<Frame>, PyEventValue)>,
    /// fork / clone calls per stack (every one: one record per fork).
    forks: HashMap<Vec<Frame>, u64>,
    /// `--count-entries`: entry-counter key -> (function, latest count).
    entries: HashMap<PyEntryKey, (Frame, u64)>,
}

impl Profile {
    /// One sampled stack (frames interned by the process's symbols).
    pub fn on_sample(&mut self, tid: u32, frames: Vec<FrameId>, truncated: bool) {
        self.samples += 1;
        self.truncated += u64::from(truncated);
        *self.stacks.entry((tid, frames)).or_insert(0) += 1;
    }

    /// One fork / clone by a Python thread, with its stack.
    pub fn on_fork(&mut self, frames: Vec<Frame>) {
        *self.forks.entry(frames).or_default() += 1;
    }

    /// A stack the kernel side has just put in a map: symbolize it now,
    /// while its code objects exist (counts come with the next read of the map).
    pub fn on_new_event_stack(&mut self, process: &mut PythonProcess, key: &PyEventKey) {
        if key.kind == py_event::ENTRY {
            let entry = PyEntryKey {
                tgid: key.tgid,
                _pad: 0,
                code: key.frames[0].code,
            };
            if !self.entries.contains_key(&entry) {
                self.on_entries(process, &[(entry, 0)]);
            }
        } else if !self.event_stacks.contains_key(key) {
            self.on_event_stacks(process, &[(*key, PyEventValue::default())]);
        }
    }

    /// Rows of `PY_EVENT_STACKS` (cumulative counts).
    pub fn on_event_stacks(
        &mut self,
        process: &mut PythonProcess,
        rows: &[(PyEventKey, PyEventValue)],
    ) {
        for (key, value) in rows {
            if let Some(entry) = self.event_stacks.get_mut(key) {
                entry.1 = *value;
            } else if let Some(frames) = process.frames(key.tgid, &key.frames) {
                self.event_stacks.insert(*key, (frames, *value));
            }
        }
    }

    /// Rows of `PY_ENTRIES` (cumulative counts).
    pub fn on_entries(&mut self, process: &mut PythonProcess, rows: &[(PyEntryKey, u64)]) {
        for (key, count) in rows {
            if let Some(entry) = self.entries.get_mut(key) {
                entry.1 = *count;
            } else if let Some(function) = process.function(key.tgid, key.code) {
                self.entries.insert(*key, (function, *count));
            }
        }
    }

    /// Stacks behind the captured reads, per file id of the kernel side.
    pub fn read_stacks(&self) -> HashMap<u64, Vec<EventStack>> {
        let mut reads: HashMap<u64, Vec<EventStack>> = HashMap::new();
        for (key, (frames, value)) in &self.event_stacks {
            if key.kind == py_event::READ {
                reads
                    .entry(key.file_id)
                    .or_default()
                    .push(EventStack::new(frames.clone(), value.count));
            }
        }
        reads
            .into_iter()
            .map(|(file_id, stacks)| (file_id, merge_stacks(stacks)))
            .collect()
    }

    /// The Python section, for the process found (or not) by `process`.
    pub fn section(&self, process: &PythonProcess, rate_hz: u64) -> Python {
        let mut section = Python {
            rate_hz,
            ..Python::default()
        };
        let ready = match process.discovery() {
            Discovery::Searching(reason) => {
                section.status = "unavailable".into();
                section.reason = Some(reason.clone());
                return section;
            }
            Discovery::Failed(reason, found) => {
                section.status = "unavailable".into();
                section.reason = Some(reason.clone());
                if let Some(found) = found {
                    describe(&mut section, process.pid(), &found.0, &found.1);
                }
                return section;
            }
            Discovery::Ready(ready) => ready,
        };
        section.status = "sampled".into();
        describe(
            &mut section,
            process.pid(),
            &ready.binary.interpreter,
            &ready.place,
        );
        section.layout = Some(ready.binary.origin.into());
        let resolved: Vec<(u32, Vec<Frame>, u64)> = self
            .stacks
            .iter()
            .map(|((tid, ids), &count)| {
                let frames = ids.iter().map(|&id| process.frame(id).clone()).collect();
                (*tid, frames, count)
            })
            .collect();
        let stacks: Vec<(u32, &[Frame], u64)> = resolved
            .iter()
            .map(|(tid, frames, count)| (*tid, frames.as_slice(), *count))
            .collect();
        section.unresolved_frames = stacks
            .iter()
            .map(|(_, frames, count)| {
                frames.iter().filter(|f| !f.is_resolved()).count() as u64 * count
            })
            .sum();
        section.samples = self.samples;
        section.truncated = self.truncated;
        fill(&mut section, &stacks);
        section.off_cpu = self.off_cpu();
        section.forks = merge_stacks(
            self.forks
                .iter()
                .map(|(frames, &count)| EventStack::new(frames.clone(), count)),
        );
        section
    }

    /// Voluntary switches by stack, most off-CPU time first.
    fn off_cpu(&self) -> Vec<EventStack> {
        let mut off_cpu = merge_stacks(
            self.event_stacks
                .iter()
                .filter(|(key, _)| key.kind == py_event::OFF_CPU)
                .map(|(_, (frames, value))| EventStack {
                    frames: frames.clone(),
                    samples: value.count,
                    off_cpu_ns: value.off_cpu_ns,
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

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

/// A function as hotspots count it: (qualname, name, file, `def` line).
type FunctionKey = (String, String, String, u32);

fn function_key(f: &Frame) -> FunctionKey {
    (
        f.qualname.clone(),
        f.function.clone(),
        f.file.clone(),
        f.first_line,
    )
}

fn hotspots(
    stacks: &[(u32, &[Frame], u64)],
    tid: Option<u32>,
    limit: usize,
) -> (u64, Vec<Hotspot>) {
    let mut by_fn: BTreeMap<FunctionKey, (u64, u64)> = BTreeMap::new();
    let mut total = 0;
    for (t, frames, count) in stacks {
        if tid.is_some_and(|want| want != *t) {
            continue;
        }
        total += count;
        let mut seen: Vec<FunctionKey> = Vec::new();
        for (depth, f) in frames.iter().enumerate() {
            let key = function_key(f);
            let entry = by_fn.entry(key.clone()).or_default();
            if depth == 0 {
                entry.0 += count;
            }
            // Recursion counts once per sample in the total.
            if !seen.contains(&key) {
                entry.1 += count;
                seen.push(key);
            }
        }
    }
    let mut out: Vec<Hotspot> = by_fn
        .into_iter()
        .map(
            |((qualname, name, file, line), (self_samples, total_samples))| Hotspot {
                function: name,
                qualname,
                file,
                line,
                self_samples,
                total_samples,
                self_share: share(self_samples, total),
                total_share: share(total_samples, total),
            },
        )
        .collect();
    out.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(b.total_samples.cmp(&a.total_samples))
            .then(a.qualname.cmp(&b.qualname))
    });
    out.truncate(limit);
    (total, out)
}

fn fill(section: &mut Python, stacks: &[(u32, &[Frame], u64)]) {
    let (total, hot) = hotspots(stacks, None, MAX_ROWS);
    section.hotspots = hot;
    let mut lines: BTreeMap<(String, String, u32), u64> = BTreeMap::new();
    for (_, frames, count) in stacks {
        if let Some(top) = frames.first() {
            *lines
                .entry((top.qualname.clone(), top.file.clone(), top.line))
                .or_default() += count;
        }
    }
    let mut lines: Vec<LineHotspot> = lines
        .into_iter()
        .map(|((function, file, line), n)| LineHotspot {
            function,
            file,
            line,
            self_samples: n,
            self_share: share(n, total),
        })
        .collect();
    lines.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(a.line.cmp(&b.line))
    });
    lines.truncate(MAX_ROWS);
    section.lines = lines;
    let mut tids: Vec<u32> = stacks.iter().map(|s| s.0).collect();
    tids.sort_unstable();
    tids.dedup();
    section.threads = tids
        .into_iter()
        .map(|tid| {
            let (samples, hotspots) = hotspots(stacks, Some(tid), MAX_THREAD_ROWS);
            PythonThread {
                tid,
                samples,
                hotspots,
            }
        })
        .collect();
    let mut out: Vec<PythonStack> = stacks
        .iter()
        .map(|(tid, frames, count)| PythonStack {
            tid: *tid,
            samples: *count,
            frames: frames.to_vec(),
        })
        .collect();
    out.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.frames.cmp(&b.frames)));
    section.stacks = out;
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
        }
    }

    #[test]
    fn self_and_total_shares() {
        let a = [sym("inner", 5), sym("outer", 9), sym("main", 12)];
        let b = [sym("outer", 8), sym("main", 12)];
        let c = [sym("fib", 3), sym("fib", 3), sym("main", 12)];
        let stacks: Vec<(u32, &[Frame], u64)> = vec![(1, &a, 70), (1, &b, 20), (2, &c, 10)];
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
}
