//! Folded stacks (Brendan Gregg's format: `outer;inner COUNT`, outermost
//! first, one line per distinct stack) and an SVG flame graph drawn from
//! them with `inferno`. A frame is a function: its qualified name and its
//! file (`work (/srv/a.py)`), so functions of the same name in two files
//! stay apart, and the same function on different lines is one frame, as in
//! py-spy's default view. When several processes were sampled, or one in a
//! container, each gets a root frame of its own (`python3.11 (pid 42)`,
//! `python3.14 (pid 43) in container web (podman 88f77ad08040)`) unless
//! they are merged; a stack cut at the walk's bound gets a `[truncated]`
//! frame where its missing outermost frames would be.

use std::collections::BTreeMap;

use super::{Report, identity::Identities, profile_tables::FrameInterner};
use crate::frame::Frame;

#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    #[error("no Python stacks were sampled ({0}): nothing to draw")]
    Empty(String),
    #[error("drawing the flame graph: {0}")]
    Draw(String),
}

/// A frame name safe for the folded format (no `;`, no newline).
fn clean(name: &str) -> String {
    name.replace([';', '\n'], ":")
}

/// A function as a folded frame: `qualname (file)`.
fn function_name(frame: &Frame) -> String {
    clean(&format!("{} ({})", frame.qualname, frame.file))
}

/// Where a truncated stack's missing outermost frames would be.
pub const TRUNCATED: &str = "[truncated]";

/// The frame that puts a stack under the asyncio task it ran in, outside
/// its Python frames.
pub fn task_frame(stack: &super::PythonStack) -> Option<String> {
    stack
        .task
        .as_ref()
        .map(|task| clean(&format!("task: {task}")))
}

/// How the stacks of several processes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roots {
    /// One root frame per process, when more than one was sampled.
    #[default]
    PerProcess,
    /// One tree: the same function in two processes is one frame.
    Merged,
}

/// The root frame of each sampled process, when they are drawn apart.
fn process_roots(report: &Report, roots: Roots) -> BTreeMap<u32, String> {
    let who = Identities::of(report);
    let sampled: Vec<_> = report
        .python
        .processes
        .iter()
        .filter(|p| p.samples > 0)
        .collect();
    // One process has a root frame of its own only to say its container.
    let in_container = sampled.iter().any(|p| who.container(p.pid).is_some());
    if roots == Roots::Merged || (sampled.len() < 2 && !in_container) {
        return BTreeMap::new();
    }
    sampled
        .iter()
        .map(|p| {
            (
                p.pid,
                clean(&format!("{}{}", p.label(), who.in_container(p.pid))),
            )
        })
        .collect()
}

pub fn folded(report: &Report, roots: Roots) -> String {
    let roots = process_roots(report, roots);
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for stack in &report.python.stacks {
        if stack.frames.is_empty() {
            continue;
        }
        let path = roots
            .get(&stack.pid)
            .cloned()
            .into_iter()
            .chain(task_frame(stack))
            .chain(stack.truncated.then(|| TRUNCATED.to_owned()))
            .chain(stack.frames.iter().rev().map(function_name))
            .collect::<Vec<_>>()
            .join(";");
        *lines.entry(path).or_default() += stack.samples;
    }
    lines
        .into_iter()
        .map(|(path, n)| format!("{path} {n}\n"))
        .collect()
}

/// Why there is nothing to draw (no sampled stack), if there is not.
pub fn nothing_to_draw(report: &Report) -> Option<String> {
    if report.python.stacks.iter().any(|s| !s.frames.is_empty()) {
        return None;
    }
    let why = report
        .python
        .reason
        .clone()
        .unwrap_or_else(|| format!("{} samples", report.python.samples));
    Some(FlameError::Empty(why).to_string())
}

pub fn flamegraph(report: &Report, roots: Roots) -> Result<Vec<u8>, FlameError> {
    let folded = folded(report, roots);
    if folded.is_empty() {
        let why = report
            .python
            .reason
            .clone()
            .unwrap_or_else(|| format!("{} samples", report.python.samples));
        return Err(FlameError::Empty(why));
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("Python CPU samples: {}", report.target.argv.join(" "));
    options.subtitle = Some(format!(
        "{} samples at {} Hz of each thread's CPU time, {:.1} s traced, {} process{}",
        report.python.samples,
        report.python.rate_hz,
        report.duration_s,
        report
            .python
            .processes
            .iter()
            .filter(|p| p.samples > 0)
            .count(),
        if report
            .python
            .processes
            .iter()
            .filter(|p| p.samples > 0)
            .count()
            == 1
        {
            ""
        } else {
            "es"
        }
    ));
    // The same function gets the same colour in every graph.
    options.deterministic = true;
    options.count_name = "samples".into();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|err| FlameError::Draw(err.to_string()))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frame, PythonStack};

    fn frame(f: &str) -> Frame {
        Frame {
            qualname: f.into(),
            function: f.into(),
            file: "/w.py".into(),
            line: 1,
            first_line: 1,
            native: false,
        }
    }

    #[test]
    fn folded_is_outermost_first_and_merges_lines() {
        let mut report = Report::default();
        report.python.stacks = vec![
            PythonStack {
                pid: 1,
                tid: 1,
                samples: 3,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![frame("inner"), frame("outer"), frame("main")],
            },
            PythonStack {
                pid: 1,
                tid: 2,
                samples: 2,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![frame("inner"), frame("outer"), frame("main")],
            },
            PythonStack {
                pid: 1,
                tid: 1,
                samples: 1,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![frame("a;b"), frame("main")],
            },
        ];
        assert_eq!(
            folded(&report, Roots::PerProcess),
            "main (/w.py);a:b (/w.py) 1\nmain (/w.py);outer (/w.py);inner (/w.py) 5\n"
        );
        // Cut at the walk's bound: said where the missing frames would be.
        report.python.stacks[2].truncated = true;
        assert!(
            folded(&report, Roots::PerProcess)
                .starts_with("[truncated];main (/w.py);a:b (/w.py) 1\n")
        );
        // Two functions of one name in two files are two frames.
        let mut other = frame("inner");
        other.file = "/v.py".into();
        report.python.stacks[1].frames[0] = other;
        assert!(folded(&report, Roots::PerProcess).contains(";inner (/v.py) 2\n"));
        let svg = String::from_utf8(flamegraph(&report, Roots::PerProcess).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("inner"));
        // The same function, the same colour, in every run.
        assert_eq!(
            flamegraph(&report, Roots::PerProcess).unwrap(),
            flamegraph(&report, Roots::PerProcess).unwrap()
        );
        report.python.stacks.clear();
        assert!(flamegraph(&report, Roots::PerProcess).is_err());
    }

    #[test]
    fn a_task_frame_sits_above_the_python_frames() {
        let mut report = Report::default();
        report.python.stacks = vec![
            PythonStack {
                tid: 1,
                samples: 3,
                frames: vec![frame("spin"), frame("work")],
                task: Some("heavy".into()),
                task_id: Some("0x10".into()),
                ..PythonStack::default()
            },
            PythonStack {
                tid: 1,
                samples: 2,
                frames: vec![frame("_run_once")],
                ..PythonStack::default()
            },
        ];
        let folded = folded(&report, Roots::PerProcess);
        assert!(
            folded.contains("task: heavy;work (/w.py);spin (/w.py) 3\n"),
            "{folded}"
        );
        assert!(
            folded.contains("\n_run_once (/w.py) 2\n")
                || folded.starts_with("_run_once (/w.py) 2\n"),
            "{folded}"
        );
    }

    #[test]
    fn a_root_frame_per_process_unless_merged() {
        let mut report = Report::default();
        let stack = |pid, samples| PythonStack {
            pid,
            tid: pid,
            samples,
            truncated: false,
            task: None,
            task_id: None,
            frames: vec![frame("work"), frame("main")],
        };
        report.python.stacks = vec![stack(10, 3), stack(11, 2)];
        let process = |pid, version: &str, free_threaded| crate::PythonProcess {
            pid,
            version: Some(version.into()),
            free_threaded,
            samples: 1,
            ..Default::default()
        };
        report.python.processes = vec![process(10, "3.11.7", false), process(11, "3.13.5", true)];
        assert_eq!(
            folded(&report, Roots::PerProcess),
            "python3.11 (pid 10);main (/w.py);work (/w.py) 3\n\
             python3.13t (pid 11);main (/w.py);work (/w.py) 2\n"
        );
        assert_eq!(
            folded(&report, Roots::Merged),
            "main (/w.py);work (/w.py) 5\n"
        );
        // One process sampled: no root frame to tell processes apart.
        report.python.processes[1].samples = 0;
        assert_eq!(
            folded(&report, Roots::PerProcess),
            "main (/w.py);work (/w.py) 5\n"
        );
        // Unless it is in a container: the root frame says which.
        report.python.processes[0].container = Some(crate::fixtures::container());
        assert_eq!(
            folded(&report, Roots::PerProcess),
            "main (/w.py);work (/w.py) 2\n\
             python3.11 (pid 10) in container tr-probe (podman 88f77ad08040);main (/w.py);work (/w.py) 3\n"
        );
        let speedscope: serde_json::Value = serde_json::from_str(&speedscope(&report)).unwrap();
        assert_eq!(
            speedscope["profiles"][0]["name"],
            "python3.11 (pid 10) in container tr-probe (podman 88f77ad08040) thread 10"
        );
    }
}

/// The sampled stacks as a speedscope profile (https://www.speedscope.app,
/// "sampled" profiles, one per thread, named after the thread and, when
/// several were sampled or one in a container, its process and container;
/// frames are function, file and line).
/// Samples are in the order they were taken, each weighing the CPU time it
/// stands for (1 / rate), so speedscope's "Time Order" view is the thread's
/// CPU time from left to right; when the run took more samples than are
/// kept in order, each distinct stack is one sample weighing all of its.
pub fn speedscope(report: &Report) -> String {
    let roots = process_roots(report, Roots::PerProcess);
    let mut frames: Vec<serde_json::Value> = Vec::new();
    let mut interner = FrameInterner::default();
    let mut intern = |frame: &Frame, row: &dyn Fn() -> serde_json::Value| {
        let (index, new) = interner.intern(frame);
        if new {
            frames.push(row());
        }
        index
    };
    // Each distinct stack as frame indices, outermost first.
    let stacks: Vec<Vec<usize>> = report
        .python
        .stacks
        .iter()
        .map(|stack| {
            let task = task_frame(stack).map(|name| {
                let frame = Frame::named(&name);
                intern(&frame, &|| serde_json::json!({ "name": name }))
            });
            task.into_iter()
                .chain(stack.frames.iter().rev().map(|f| {
                    intern(f, &|| {
                        serde_json::json!({ "name": f.qualname, "file": f.file, "line": f.line })
                    })
                }))
                .collect()
        })
        .collect();
    let sample_ns = 1_000_000_000 / report.python.rate_hz.max(1);
    let in_order: Vec<(usize, u64)> = if report.python.timeline_complete {
        report
            .python
            .timeline
            .iter()
            .map(|s| (s.stack, sample_ns))
            .collect()
    } else {
        (0..stacks.len())
            .map(|i| (i, report.python.stacks[i].samples * sample_ns))
            .collect()
    };
    // (pid, tid) -> (samples as frame indices, their weights)
    type Samples = (Vec<Vec<usize>>, Vec<u64>);
    let mut by_thread: BTreeMap<(u32, u32), Samples> = Default::default();
    for (stack, weight) in in_order {
        let at = &report.python.stacks[stack];
        let entry = by_thread.entry((at.pid, at.tid)).or_default();
        entry.0.push(stacks[stack].clone());
        entry.1.push(weight);
    }
    // The busiest thread first: speedscope opens the first profile.
    let mut by_thread: Vec<_> = by_thread.into_iter().collect();
    by_thread
        .sort_by_key(|(at, (_, weights))| (std::cmp::Reverse(weights.iter().sum::<u64>()), *at));
    let who = Identities::of(report);
    let profiles: Vec<serde_json::Value> = by_thread
        .into_iter()
        .map(|((pid, tid), (samples, weights))| {
            let total: u64 = weights.iter().sum();
            let thread = match who.thread_name(pid, tid) {
                Some(name) => format!("thread {tid} \"{name}\""),
                None => format!("thread {tid}"),
            };
            let name = match roots.get(&pid) {
                Some(process) => format!("{process} {thread}"),
                None => thread,
            };
            serde_json::json!({
                "type": "sampled", "name": name, "unit": "nanoseconds",
                "startValue": 0, "endValue": total, "samples": samples, "weights": weights
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": format!("tracer: {}", report.target.argv.join(" ")),
        "exporter": "tracer",
        "shared": { "frames": frames },
        "profiles": profiles,
    })
    .to_string()
}

#[cfg(test)]
mod speedscope_tests {
    use super::*;
    use crate::{Frame, PythonStack};

    #[test]
    fn speedscope_profile_per_thread() {
        let frame = |f: &str, line| Frame {
            qualname: f.into(),
            function: f.into(),
            file: "/w.py".into(),
            line,
            first_line: 1,
            native: false,
        };
        let mut report = Report::default();
        report.python.rate_hz = 100;
        report.python.stacks = vec![
            PythonStack {
                pid: 7,
                tid: 7,
                samples: 3,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![frame("inner", 5), frame("main", 9)],
            },
            PythonStack {
                pid: 7,
                tid: 8,
                samples: 1,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![frame("main", 9)],
            },
        ];
        let v: serde_json::Value = serde_json::from_str(&speedscope(&report)).unwrap();
        assert_eq!(v["shared"]["frames"].as_array().unwrap().len(), 2);
        let p = &v["profiles"][0];
        assert_eq!(p["name"], "thread 7");
        // Outermost first: main, then inner.
        let frames = v["shared"]["frames"].as_array().unwrap();
        let id = |name: &str| frames.iter().position(|f| f["name"] == name).unwrap();
        assert_eq!(
            p["samples"][0],
            serde_json::json!([id("main"), id("inner")])
        );
        // No time order kept: a stack weighs its samples' CPU time (10 ms each).
        assert_eq!(p["unit"], "nanoseconds");
        assert_eq!(p["weights"][0], 30_000_000);
        assert_eq!(v["profiles"][1]["endValue"], 10_000_000);
        // The busiest thread's profile comes first (speedscope opens it),
        // named after the thread's Python name when known.
        report.python.stacks[1].samples = 9;
        report.python.threads = vec![crate::PythonThread {
            pid: 7,
            tid: 8,
            name: Some("worker".into()),
            ..Default::default()
        }];
        let v: serde_json::Value = serde_json::from_str(&speedscope(&report)).unwrap();
        assert_eq!(v["profiles"][0]["name"], "thread 8 \"worker\"");
    }

    /// With the time order kept, every sample is one entry, in order.
    #[test]
    fn speedscope_samples_in_time_order() {
        let frame = |f: &str| Frame {
            qualname: f.into(),
            function: f.into(),
            file: "/w.py".into(),
            line: 1,
            first_line: 1,
            native: false,
        };
        let stack = |f: &str, samples| PythonStack {
            pid: 7,
            tid: 7,
            samples,
            truncated: false,
            task: None,
            task_id: None,
            frames: vec![frame(f)],
        };
        let mut report = Report::default();
        report.python.rate_hz = 1000;
        report.python.stacks = vec![stack("b", 2), stack("a", 1)];
        report.python.timeline = [(10, 0), (20, 1), (30, 0)]
            .into_iter()
            .map(|(t_ns, stack)| crate::TimedSample { t_ns, stack })
            .collect();
        report.python.timeline_complete = true;
        let v: serde_json::Value = serde_json::from_str(&speedscope(&report)).unwrap();
        let frames = v["shared"]["frames"].as_array().unwrap();
        let id = |name: &str| frames.iter().position(|f| f["name"] == name).unwrap();
        let p = &v["profiles"][0];
        assert_eq!(
            p["samples"],
            serde_json::json!([[id("b")], [id("a")], [id("b")]])
        );
        assert_eq!(
            p["weights"],
            serde_json::json!([1_000_000, 1_000_000, 1_000_000])
        );
        assert_eq!(p["endValue"], 3_000_000);
    }
}
