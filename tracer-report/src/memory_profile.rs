//! `--memory-flamegraph` and `--memory-pprof`: memory growth by Python
//! stack (`memory.processes[].growth`), weighed in bytes of resident memory
//! grown, as memray's flame graphs and pprof's space profiles weigh
//! allocations. One root frame per
//! process when there are several; a stack of a thread with no Python
//! frame is `(no Python frame)`.

use super::{
    Report,
    flame::TRUNCATED,
    identity::Identities,
    pprof::{gzipped, labels, proto_labels},
    profile_tables::ProfileTables,
    proto::pprof as proto,
};
use crate::frame::Frame;

/// A stack with no Python frame.
const NO_FRAME: &str = "(no Python frame)";

/// Why there is nothing to draw, if there is not.
fn nothing_to_draw(report: &Report) -> Option<String> {
    let memory = &report.memory;
    if memory.processes.iter().any(|p| !p.growth.is_empty()) {
        return None;
    }
    Some(match &memory.growth_error {
        Some(err) => format!("page faults were not sampled ({err})"),
        None if memory.growth_sample_bytes == 0 => {
            "page faults were not sampled (--memory-sample 0 or --no-python)".into()
        }
        None => "no page fault of a Python process was sampled".into(),
    })
}

/// `outer;inner BYTES` lines, outermost first.
pub fn folded(report: &Report) -> String {
    let who = Identities::of(report);
    let apart = report.memory.processes.len() > 1;
    let mut lines = std::collections::BTreeMap::<String, u64>::new();
    for p in &report.memory.processes {
        let root = apart.then(|| {
            clean(&format!(
                "{} (pid {}){}",
                p.comm,
                p.pid,
                who.in_container(p.pid)
            ))
        });
        for g in &p.growth {
            let frames: Vec<String> = if g.frames.is_empty() {
                vec![NO_FRAME.to_owned()]
            } else {
                g.frames
                    .iter()
                    .rev()
                    .map(|f| clean(&format!("{} ({})", f.qualname, f.file)))
                    .collect()
            };
            let path = root
                .clone()
                .into_iter()
                .chain(g.truncated.then(|| TRUNCATED.to_owned()))
                .chain(frames)
                .collect::<Vec<_>>()
                .join(";");
            *lines.entry(path).or_default() += g.bytes;
        }
    }
    lines
        .into_iter()
        .map(|(path, bytes)| format!("{path} {bytes}\n"))
        .collect()
}

/// A frame name safe for the folded format (no `;`, no newline).
fn clean(name: &str) -> String {
    name.replace([';', '\n'], ":")
}

/// The flame graph (SVG) of bytes faulted in.
pub fn flamegraph(report: &Report) -> Result<Vec<u8>, String> {
    if let Some(why) = nothing_to_draw(report) {
        return Err(why);
    }
    let folded = folded(report);
    let memory = &report.memory;
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("Resident memory grown: {}", report.target.argv.join(" "));
    options.subtitle = Some(format!(
        "each rise charged to the Python stack sampled at its end (a sample per {} KiB a \
         thread faults in), {:.1} s traced; what is freed is not taken off",
        memory.growth_sample_bytes / 1024,
        report.duration_s
    ));
    options.deterministic = true;
    options.count_name = "bytes".into();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|err| format!("drawing the flame graph: {err}"))?;
    Ok(svg)
}

/// The pprof profile (gzipped): one sample per (process, stack), values
/// samples (count) and space (bytes grown, the default view).
pub fn pprof(report: &Report) -> Result<Vec<u8>, String> {
    if let Some(why) = nothing_to_draw(report) {
        return Err(why);
    }
    let memory = &report.memory;
    let mut tables = ProfileTables::default();
    let who = Identities::of(report);
    let no_frame = Frame::named(NO_FRAME);
    let truncated = Frame::named(TRUNCATED);
    let mut samples = Vec::new();
    for p in &memory.processes {
        for g in &p.growth {
            let mut location_id: Vec<u64> = if g.frames.is_empty() {
                vec![tables.location(&no_frame) as u64]
            } else {
                g.frames.iter().map(|f| tables.location(f) as u64).collect()
            };
            if g.truncated {
                location_id.push(tables.location(&truncated) as u64);
            }
            // The process's labels; the thread is not kept per stack.
            let mut of_process = labels(&who, p.pid, p.pid);
            of_process.retain(|(key, _)| *key != "tid" && *key != "thread_name");
            let label = proto_labels(&mut tables, of_process);
            samples.push(proto::Sample {
                location_id,
                value: vec![g.samples as i64, g.bytes as i64],
                label,
            });
        }
    }
    let value_type = |tables: &mut ProfileTables, kind: &str, unit: &str| proto::ValueType {
        r#type: tables.string(kind) as i64,
        unit: tables.string(unit) as i64,
    };
    let default_sample_type = tables.string("space") as i64;
    let sample_type = vec![
        value_type(&mut tables, "samples", "count"),
        value_type(&mut tables, "space", "bytes"),
    ];
    let period_type = Some(value_type(&mut tables, "space", "bytes"));
    let comment = std::iter::once(format!(
        "tracer: resident memory grown, charged to the Python stack sampled at the end of \
         each rise (a sample per {} bytes a thread faults in); what is freed is not taken off",
        memory.growth_sample_bytes
    ))
    .chain(report.warnings.iter().map(|w| format!("tracer: {w}")))
    .map(|c| tables.string(&c) as i64)
    .collect();
    let profile = proto::Profile {
        sample_type,
        sample: samples,
        duration_nanos: (report.duration_s * 1e9) as i64,
        period_type,
        period: memory.growth_sample_bytes as i64,
        comment,
        default_sample_type,
        ..Default::default()
    };
    gzipped(profile, tables)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use prost::Message as _;

    use super::*;
    use crate::{Growth, MemoryProcess};

    fn frame(name: &str, line: u32) -> Frame {
        crate::fixtures::python_frame(name, "/app.py", line)
    }

    fn report() -> Report {
        let mut report = Report::default();
        report.memory.growth_sample_bytes = 256 << 10;
        report.memory.processes = vec![MemoryProcess {
            pid: 7,
            comm: "python3".into(),
            growth: vec![
                Growth {
                    bytes: 3 << 20,
                    samples: 12,
                    truncated: false,
                    frames: vec![frame("grow", 3), frame("main", 9)],
                },
                Growth {
                    bytes: 256 << 10,
                    samples: 1,
                    truncated: false,
                    frames: Vec::new(),
                },
            ],
            ..Default::default()
        }];
        report
    }

    #[test]
    fn folded_weighs_stacks_in_bytes() {
        assert_eq!(
            folded(&report()),
            "(no Python frame) 262144\nmain (/app.py);grow (/app.py) 3145728\n"
        );
        let mut two = report();
        let mut other = two.memory.processes[0].clone();
        other.pid = 8;
        two.memory.processes.push(other);
        assert!(folded(&two).contains("python3 (pid 8);main (/app.py);grow (/app.py) 3145728\n"));
    }

    #[test]
    fn pprof_values_are_samples_and_bytes() {
        let gz = pprof(&report()).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut bytes)
            .unwrap();
        let profile = proto::Profile::decode(&bytes[..]).unwrap();
        let s = |i: i64| profile.string_table[i as usize].as_str();
        assert_eq!(s(profile.default_sample_type), "space");
        let values: Vec<Vec<i64>> = profile.sample.iter().map(|x| x.value.clone()).collect();
        assert_eq!(values, [vec![12, 3 << 20], vec![1, 256 << 10]]);
        assert_eq!(profile.sample[0].location_id.len(), 2);
    }

    #[test]
    fn nothing_sampled_is_said() {
        let mut empty = Report::default();
        assert!(pprof(&empty).unwrap_err().contains("--memory-sample 0"));
        empty.memory.growth_error = Some("EACCES".into());
        assert!(flamegraph(&empty).unwrap_err().contains("EACCES"));
    }
}
