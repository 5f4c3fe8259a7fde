//! Folded stacks (Brendan Gregg's format: `outer;inner COUNT`, outermost
//! first, one line per distinct stack) and an SVG flame graph drawn from
//! them with `inferno`. Frames are function qualified names; the same
//! function on different lines is one frame, as in py-spy's default view.

use std::collections::BTreeMap;

use super::Report;

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

pub fn folded(report: &Report) -> String {
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for stack in &report.python.stacks {
        if stack.frames.is_empty() {
            continue;
        }
        let path = stack
            .frames
            .iter()
            .rev()
            .map(|f| clean(&f.qualname))
            .collect::<Vec<_>>()
            .join(";");
        *lines.entry(path).or_default() += stack.samples;
    }
    lines
        .into_iter()
        .map(|(path, n)| format!("{path} {n}\n"))
        .collect()
}

pub fn flamegraph(report: &Report) -> Result<Vec<u8>, FlameError> {
    let folded = folded(report);
    if folded.is_empty() {
        let why = report
            .python
            .reason
            .clone()
            .unwrap_or_else(|| format!("{} samples", report.python.samples));
        return Err(FlameError::Empty(why));
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!(
        "Python CPU samples: {} ({} Hz)",
        report.target.argv.join(" "),
        report.python.rate_hz
    );
    options.count_name = "samples".into();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|err| FlameError::Draw(err.to_string()))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Frame, PythonStack};

    fn frame(f: &str) -> Frame {
        Frame {
            qualname: f.into(),
            function: f.into(),
            file: "/w.py".into(),
            line: 1,
            first_line: 1,
        }
    }

    #[test]
    fn folded_is_outermost_first_and_merges_lines() {
        let mut report = Report::default();
        report.python.stacks = vec![
            PythonStack {
                tid: 1,
                samples: 3,
                frames: vec![frame("inner"), frame("outer"), frame("main")],
            },
            PythonStack {
                tid: 2,
                samples: 2,
                frames: vec![frame("inner"), frame("outer"), frame("main")],
            },
            PythonStack {
                tid: 1,
                samples: 1,
                frames: vec![frame("a;b"), frame("main")],
            },
        ];
        assert_eq!(folded(&report), "main;a:b 1\nmain;outer;inner 5\n");
        let svg = String::from_utf8(flamegraph(&report).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("inner"));
        report.python.stacks.clear();
        assert!(flamegraph(&report).is_err());
    }
}

/// The sampled stacks as a speedscope profile (https://www.speedscope.app,
/// "sampled" profiles, one per thread; frames are function, file and line).
pub fn speedscope(report: &Report) -> String {
    use std::collections::HashMap;

    let mut frames: Vec<serde_json::Value> = Vec::new();
    let mut index: HashMap<(String, String, u32), usize> = HashMap::new();
    let mut by_thread: std::collections::BTreeMap<u32, (Vec<Vec<usize>>, Vec<u64>)> =
        Default::default();
    for stack in &report.python.stacks {
        let ids: Vec<usize> = stack
            .frames
            .iter()
            .rev()
            .map(|f| {
                let key = (f.qualname.clone(), f.file.clone(), f.line);
                *index.entry(key).or_insert_with(|| {
                    frames.push(serde_json::json!({
                        "name": f.qualname, "file": f.file, "line": f.line
                    }));
                    frames.len() - 1
                })
            })
            .collect();
        let entry = by_thread.entry(stack.tid).or_default();
        entry.0.push(ids);
        entry.1.push(stack.samples);
    }
    let profiles: Vec<serde_json::Value> = by_thread
        .into_iter()
        .map(|(tid, (samples, weights))| {
            let total: u64 = weights.iter().sum();
            serde_json::json!({
                "type": "sampled", "name": format!("thread {tid}"), "unit": "none",
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
    use crate::report::{Frame, PythonStack};

    #[test]
    fn speedscope_profile_per_thread() {
        let frame = |f: &str, line| Frame {
            qualname: f.into(),
            function: f.into(),
            file: "/w.py".into(),
            line,
            first_line: 1,
        };
        let mut report = Report::default();
        report.python.stacks = vec![
            PythonStack {
                tid: 7,
                samples: 3,
                frames: vec![frame("inner", 5), frame("main", 9)],
            },
            PythonStack {
                tid: 8,
                samples: 1,
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
        assert_eq!(p["weights"][0], 3);
        assert_eq!(v["profiles"][1]["endValue"], 1);
    }
}
