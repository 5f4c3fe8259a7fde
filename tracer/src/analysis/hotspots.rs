//! What sampled stacks add up to: the functions (Python's, and native
//! ones with `--native`) by self and total samples, and the lines by self
//! samples; shared by the whole profile, each thread, each asyncio task and
//! the GIL's holders, with one rounding of their shares.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    frame::Frame,
    report::{Hotspot, LineHotspot},
};

/// A sampled stack's place: the thread, and which process its pid named
/// then (a pid reused on a busy host names another process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sampled {
    pub pid: u32,
    pub generation: u32,
    pub tid: u32,
    /// The asyncio task it ran in: 0 none, else 1 + its index in
    /// `Profile::tasks`.
    pub task: u32,
}

impl Sampled {
    /// The thread alone (tables per thread add up its tasks).
    pub fn thread(self) -> Self {
        Self { task: 0, ..self }
    }
}

/// An asyncio task samples ran in: its process, address and name (`None`:
/// it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    pub pid: u32,
    pub generation: u32,
    pub address: u64,
    pub name: Option<String>,
}

/// The asyncio tasks samples ran in, numbered in the order first seen
/// (the profile's and each capture window's): a sample's
/// [`Sampled::task`] is 1 + its index in [`Tasks::keys`].
#[derive(Default)]
pub struct Tasks {
    keys: Vec<TaskKey>,
    index: std::collections::HashMap<TaskKey, u32>,
}

impl Tasks {
    /// The number of task `(address, name)` of process `(pid, generation)`
    /// (0: no task).
    pub fn number(
        &mut self,
        (pid, generation): (u32, u32),
        task: Option<(u64, Option<String>)>,
    ) -> u32 {
        let Some((address, name)) = task else {
            return 0;
        };
        let key = TaskKey {
            pid,
            generation,
            address,
            name,
        };
        let next = self.keys.len() as u32 + 1;
        let number = *self.index.entry(key.clone()).or_insert(next);
        if number == next {
            self.keys.push(key);
        }
        number
    }

    /// Every task, in the order first seen.
    pub fn keys(&self) -> &[TaskKey] {
        &self.keys
    }
}

/// A distinct stack as the section is built from it: where, its frames,
/// its samples, whether it was cut at the walk's bound.
pub type Row<'a> = (Sampled, &'a [Frame], u64, bool);

/// `part` of `whole` in percent, 0 of nothing: the one computation of a
/// share, the report's (rounded by [`share`]) and the live view's.
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        0.0
    } else {
        100.0 * part / whole
    }
}

/// `part` of `whole` in percent, to two decimals: every share the report
/// gives (hotspots, lines, the GIL's waits and holders). Counted in
/// hundredths of a percent, so the one division is rounded once.
pub fn share(part: u64, whole: u64) -> f64 {
    percent(part as f64 * 100.0, whole as f64).round() / 100.0
}

/// A function as hotspots count it: (qualname, name, file, `def` line).
type FunctionKey = (String, String, String, u32, bool);

fn function_key(f: &Frame) -> FunctionKey {
    (
        f.qualname.clone(),
        f.function.clone(),
        f.file.clone(),
        f.first_line,
        f.native,
    )
}

/// Self and total samples of one function, and the processes they came from.
#[derive(Default)]
struct Counted {
    self_samples: u64,
    total_samples: u64,
    pids: BTreeSet<u32>,
}

/// Python functions by self samples (innermost Python frame: the time of
/// native frames below it is its own, as without them) and total.
pub fn hotspots(stacks: &[Row], thread: Option<Sampled>, limit: usize) -> (u64, Vec<Hotspot>) {
    functions(stacks, thread, limit, false)
}

/// `--native`: native functions by self samples (the innermost frame,
/// when it is native) and total.
pub fn native_functions(stacks: &[Row], limit: usize) -> Vec<Hotspot> {
    functions(stacks, None, limit, true).1
}

fn functions(
    stacks: &[Row],
    thread: Option<Sampled>,
    limit: usize,
    native: bool,
) -> (u64, Vec<Hotspot>) {
    let mut by_fn: BTreeMap<FunctionKey, Counted> = BTreeMap::new();
    let mut total = 0;
    for (at, frames, count, _) in stacks {
        if thread.is_some_and(|want| want != at.thread()) {
            continue;
        }
        total += count;
        let mut seen: Vec<FunctionKey> = Vec::new();
        let innermost = frames.first().is_some_and(|f| f.native == native);
        let frames = frames.iter().filter(|f| f.native == native);
        for (depth, f) in frames.enumerate() {
            let key = function_key(f);
            let entry = by_fn.entry(key.clone()).or_default();
            entry.pids.insert(at.pid);
            if depth == 0 && (innermost || !native) {
                entry.self_samples += count;
            }
            // Recursion counts once per sample in the total.
            if !seen.contains(&key) {
                entry.total_samples += count;
                seen.push(key);
            }
        }
    }
    let several = stacks
        .iter()
        .map(|(at, _, _, _)| (at.pid, at.generation))
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let mut out: Vec<Hotspot> = by_fn
        .into_iter()
        .map(|((qualname, name, file, line, native), counted)| Hotspot {
            function: name,
            qualname,
            file,
            line,
            native,
            self_samples: counted.self_samples,
            total_samples: counted.total_samples,
            self_share: share(counted.self_samples, total),
            total_share: share(counted.total_samples, total),
            pids: if several && thread.is_none() {
                counted.pids.into_iter().collect()
            } else {
                Vec::new()
            },
        })
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

/// Lines by self samples, most first: `tops` are (the innermost Python
/// frame of a stack, its samples), `total` the samples shares are of.
pub fn line_hotspots<'a>(
    tops: impl Iterator<Item = (&'a Frame, u64)>,
    total: u64,
    limit: usize,
) -> Vec<LineHotspot> {
    let mut lines: BTreeMap<(String, String, u32), u64> = BTreeMap::new();
    for (top, count) in tops {
        *lines
            .entry((top.qualname.clone(), top.file.clone(), top.line))
            .or_default() += count;
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
    lines.truncate(limit);
    lines
}
