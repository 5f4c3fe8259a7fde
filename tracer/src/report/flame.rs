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
            .map(|f| clean(&f.function))
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
    use crate::report::{PythonFrame, PythonStack};

    fn frame(f: &str) -> PythonFrame {
        PythonFrame {
            function: f.into(),
            file: "/w.py".into(),
            line: 1,
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
