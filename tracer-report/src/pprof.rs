//! `--pprof`: the sampled Python stacks as a gzipped pprof `profile.proto`
//! (what `go tool pprof`, Pyroscope, Parca and Grafana load), for the file
//! and for `--serve`'s `/debug/pprof/profile` (a window's report). One
//! sample per distinct (process, thread, stack), labelled with its process
//! and thread (and container); a location per (function, line), innermost
//! first. Values: samples (count) and CPU time (samples x the sampling
//! period).

use std::io::Write as _;

use prost::Message as _;

use super::{
    Report,
    flame::TRUNCATED,
    identity::{ContainerField, Identities, container_fields},
    profile_tables::ProfileTables,
    proto::pprof as proto,
};
use crate::frame::Frame;

/// A label's value: a number (`pid`, `tid`) or a string.
#[derive(Debug, PartialEq)]
pub(super) enum Value<'a> {
    Num(i64),
    Str(&'a str),
}

/// The labels of a thread's samples: `pid`, `comm` (the process's name),
/// `tid`, `thread_name` (Python's), and `container_id` / `pod_uid` in a
/// container; a label whose value is not known is left out.
pub(super) fn labels<'a>(
    who: &Identities<'a>,
    pid: u32,
    tid: u32,
) -> Vec<(&'static str, Value<'a>)> {
    let mut labels = vec![("pid", Value::Num(i64::from(pid)))];
    if let Some(comm) = who.comm(pid) {
        labels.push(("comm", Value::Str(comm)));
    }
    labels.push(("tid", Value::Num(i64::from(tid))));
    if let Some(name) = who.thread_name(pid, tid) {
        labels.push(("thread_name", Value::Str(name)));
    }
    if let Some(container) = who.container(pid) {
        for (field, value) in container_fields(container) {
            let label = match field {
                ContainerField::Id => "container_id",
                ContainerField::PodUid => "pod_uid",
                ContainerField::Name | ContainerField::Pod | ContainerField::Namespace => continue,
            };
            labels.push((label, Value::Str(value)));
        }
    }
    labels
}

/// Labels as the profile's, their strings in its table.
pub(super) fn proto_labels(
    tables: &mut ProfileTables,
    labels: Vec<(&'static str, Value<'_>)>,
) -> Vec<proto::Label> {
    labels
        .into_iter()
        .map(|(key, value)| {
            let key = tables.string(key) as i64;
            match value {
                Value::Num(num) => proto::Label {
                    key,
                    num,
                    ..Default::default()
                },
                Value::Str(s) => proto::Label {
                    key,
                    str: tables.string(s) as i64,
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// The profile, gzipped; `Err`: nothing to write (no stack was sampled).
pub fn render(report: &Report) -> Result<Vec<u8>, String> {
    if let Some(why) = super::flame::nothing_to_draw(report) {
        return Err(why);
    }
    encode(report)
}

/// The profile, gzipped, with or without samples (an idle window of
/// `--serve`'s endpoint is an empty profile, as Go's is).
pub fn encode(report: &Report) -> Result<Vec<u8>, String> {
    let python = &report.python;
    let period = 1_000_000_000 / python.rate_hz.max(1) as i64;
    let mut tables = ProfileTables::default();
    let who = Identities::of(report);
    let truncated = Frame::named(TRUNCATED);
    let mut samples = Vec::new();
    for stack in python.stacks.iter().filter(|s| !s.frames.is_empty()) {
        let mut location_id: Vec<u64> = stack
            .frames
            .iter()
            .map(|f| tables.location(f) as u64)
            .collect();
        if stack.truncated {
            location_id.push(tables.location(&truncated) as u64);
        }
        let mut of_stack = labels(&who, stack.pid, stack.tid);
        if let Some(task) = &stack.task {
            of_stack.push(("task", Value::Str(task)));
        }
        let label = proto_labels(&mut tables, of_stack);
        let count = stack.samples as i64;
        samples.push(proto::Sample {
            location_id,
            value: vec![count, count.saturating_mul(period)],
            label,
        });
    }
    let value_type = |tables: &mut ProfileTables, kind: &str, unit: &str| proto::ValueType {
        r#type: tables.string(kind) as i64,
        unit: tables.string(unit) as i64,
    };
    // `samples` is the default view (an index into the string table).
    let default_sample_type = tables.string("samples") as i64;
    let sample_type = vec![
        value_type(&mut tables, "samples", "count"),
        value_type(&mut tables, "cpu", "nanoseconds"),
    ];
    let period_type = Some(value_type(&mut tables, "cpu", "nanoseconds"));
    // What the trace says of itself (samples left out or lost...) goes
    // with the profile, so no loss is silent.
    let comment = std::iter::once(format!(
        "tracer: Python stacks sampled at {} Hz of each thread's CPU time",
        python.rate_hz
    ))
    .chain(report.warnings.iter().map(|w| format!("tracer: {w}")))
    .map(|c| tables.string(&c) as i64)
    .collect();
    let profile = proto::Profile {
        sample_type,
        sample: samples,
        duration_nanos: (report.duration_s * 1e9) as i64,
        period_type,
        period,
        comment,
        default_sample_type,
        ..Default::default()
    };
    gzipped(profile, tables)
}

/// `profile` with the locations, functions and strings of `tables`,
/// encoded and gzipped.
pub(super) fn gzipped(
    mut profile: proto::Profile,
    tables: ProfileTables,
) -> Result<Vec<u8>, String> {
    profile.location = (1..)
        .zip(&tables.locations)
        .map(|(id, location)| proto::Location {
            id,
            line: vec![proto::Line {
                function_id: location.function as u64,
                line: i64::from(location.line),
            }],
        })
        .collect();
    profile.function = (1..)
        .zip(&tables.functions)
        .map(|(id, function)| proto::Function {
            id,
            name: function.name as i64,
            system_name: function.system_name as i64,
            filename: function.filename as i64,
            start_line: i64::from(function.start_line),
        })
        .collect();
    profile.string_table = tables.strings;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())
        .and_then(|()| gz.finish())
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::PythonStack;

    fn frame(name: &str, line: u32) -> Frame {
        crate::fixtures::python_frame(name, "/app.py", line)
    }

    #[test]
    fn stacks_become_samples_with_labels_and_shared_locations() {
        let mut report = Report::default();
        report.python.rate_hz = 100;
        report.python.samples = 5;
        report.python.stacks = vec![
            PythonStack {
                pid: 7,
                tid: 8,
                samples: 3,
                truncated: false,
                task: None,
                task_id: None,
                frames: vec![frame("leaf", 3), frame("main", 9)],
            },
            PythonStack {
                pid: 7,
                tid: 9,
                samples: 2,
                truncated: true,
                task: None,
                task_id: None,
                frames: vec![frame("other", 4), frame("main", 9)],
            },
        ];
        report.python.threads = vec![crate::PythonThread {
            pid: 7,
            tid: 8,
            name: Some("MainThread".into()),
            ..Default::default()
        }];
        let gz = render(&report).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut bytes)
            .unwrap();
        let profile = proto::Profile::decode(&bytes[..]).unwrap();
        let s = |i: i64| profile.string_table[i as usize].as_str();
        assert_eq!(profile.string_table[0], "");
        assert_eq!(profile.period, 10_000_000);
        assert_eq!(profile.sample.len(), 2);
        assert_eq!(profile.sample[0].value, vec![3, 30_000_000]);
        // main:9 is one location shared by both stacks; the second ends
        // with the truncation marker.
        assert_eq!(
            profile.sample[0].location_id[1],
            profile.sample[1].location_id[1]
        );
        assert_eq!(profile.sample[1].location_id.len(), 3);
        assert_eq!(profile.location.len(), 4);
        let labels: Vec<(&str, i64)> = profile.sample[1]
            .label
            .iter()
            .map(|l| (s(l.key), l.num))
            .collect();
        assert_eq!(labels, vec![("pid", 7), ("tid", 9)]);
        let name = &profile.sample[0].label[2];
        assert_eq!((s(name.key), s(name.str)), ("thread_name", "MainThread"));
        let leaf = &profile.function[0];
        assert_eq!((s(leaf.name), s(leaf.filename)), ("leaf", "/app.py"));
    }

    #[test]
    fn nothing_sampled_is_no_file_but_an_empty_profile_to_serve() {
        assert!(render(&Report::default()).is_err());
        let mut report = Report::default();
        report.python.rate_hz = 99;
        report.warnings = vec!["3 samples left out".into()];
        let profile = decode(&encode(&report).unwrap());
        assert!(profile.sample.is_empty());
        let comments: Vec<&str> = profile
            .comment
            .iter()
            .map(|&i| profile.string_table[i as usize].as_str())
            .collect();
        assert_eq!(
            comments,
            [
                "tracer: Python stacks sampled at 99 Hz of each thread's CPU time",
                "tracer: 3 samples left out"
            ]
        );
    }

    fn decode(gz: &[u8]) -> proto::Profile {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut bytes)
            .unwrap();
        proto::Profile::decode(&bytes[..]).unwrap()
    }

    #[test]
    fn labels_name_the_process_the_thread_and_the_container() {
        let container = |id: &str, pod_uid: Option<&str>| crate::Container {
            id: id.into(),
            runtime: "podman".into(),
            pod_uid: pod_uid.map(Into::into),
            ..Default::default()
        };
        let mut report = Report {
            processes: vec![
                crate::ProcessInfo {
                    pid: 7,
                    comm: "old".into(),
                    ..Default::default()
                },
                crate::ProcessInfo {
                    pid: 7,
                    comm: "python3.14".into(),
                    container: Some(container("c0ffee", None)),
                    ..Default::default()
                },
                crate::ProcessInfo {
                    pid: 9,
                    comm: "gunicorn".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        // A Python row's container is as good as a process row's.
        report.python.processes = vec![crate::PythonProcess {
            pid: 9,
            container: Some(container("beef", Some("pod-1"))),
            ..Default::default()
        }];
        report.python.threads = vec![crate::PythonThread {
            pid: 7,
            tid: 8,
            name: Some("worker".into()),
            ..Default::default()
        }];
        let who = Identities::of(&report);
        assert_eq!(
            labels(&who, 7, 8),
            [
                ("pid", Value::Num(7)),
                ("comm", Value::Str("python3.14")),
                ("tid", Value::Num(8)),
                ("thread_name", Value::Str("worker")),
                ("container_id", Value::Str("c0ffee")),
            ]
        );
        assert_eq!(
            labels(&who, 9, 10),
            [
                ("pid", Value::Num(9)),
                ("comm", Value::Str("gunicorn")),
                ("tid", Value::Num(10)),
                ("container_id", Value::Str("beef")),
                ("pod_uid", Value::Str("pod-1")),
            ]
        );
        // On the host, not traced: what is known only.
        assert_eq!(
            labels(&who, 11, 11),
            [("pid", Value::Num(11)), ("tid", Value::Num(11))]
        );
        // And in the encoded profile, as strings.
        report.python.rate_hz = 100;
        report.python.stacks = vec![PythonStack {
            pid: 9,
            tid: 10,
            samples: 1,
            truncated: false,
            task: None,
            task_id: None,
            frames: vec![frame("leaf", 3)],
        }];
        let profile = decode(&encode(&report).unwrap());
        let s = |i: i64| profile.string_table[i as usize].as_str();
        let pod = profile.sample[0]
            .label
            .iter()
            .find(|l| s(l.key) == "pod_uid")
            .unwrap();
        assert_eq!(s(pod.str), "pod-1");
    }
}
