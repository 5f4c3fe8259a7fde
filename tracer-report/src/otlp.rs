//! `--otlp`: a window's sampled Python stacks as an OTLP/HTTP
//! `ExportProfilesServiceRequest` (protobuf), what an OpenTelemetry
//! Collector or Pyroscope takes at `/v1development/profiles`. A
//! `ResourceProfiles` per process (its pid, name, container, pod and host
//! as resource attributes), one CPU profile each; the frames, locations,
//! stacks, strings and attributes in the request's shared dictionary,
//! index 0 of each table the zero entry the format asks for. A sample per
//! distinct (thread, stack), its value the CPU time it stands for.

use std::collections::{BTreeMap, HashMap};

use prost::Message as _;

use super::{
    Report,
    flame::TRUNCATED,
    identity::{ContainerField, Identities, container_fields},
    profile_tables::ProfileTables,
};
use crate::frame::Frame;

pub use super::proto::otlp as proto;

use proto::any_value::Value;

/// The dictionary's tables, each with its zero entry at index 0: strings,
/// functions and locations kept as pprof keeps them, stacks and attributes
/// here.
struct Dictionary {
    tables: proto::ProfilesDictionary,
    profile: ProfileTables,
    stacks: HashMap<Vec<i32>, i32>,
    attributes: HashMap<(i32, Value), i32>,
}

impl Dictionary {
    fn new() -> Self {
        Self {
            tables: proto::ProfilesDictionary {
                mapping_table: vec![proto::Mapping::default()],
                location_table: vec![proto::Location::default()],
                function_table: vec![proto::Function::default()],
                link_table: vec![proto::Link::default()],
                string_table: Vec::new(),
                attribute_table: vec![proto::KeyValueAndUnit::default()],
                stack_table: vec![proto::Stack::default()],
            },
            profile: ProfileTables::default(),
            stacks: HashMap::new(),
            attributes: HashMap::new(),
        }
    }

    fn string(&mut self, s: &str) -> i32 {
        self.profile.string(s) as i32
    }

    /// A location per (function, line), as pprof's.
    fn location(&mut self, frame: &Frame) -> i32 {
        self.profile.location(frame) as i32
    }

    /// The tables, the shared ones copied past their zero entries.
    fn finish(mut self) -> proto::ProfilesDictionary {
        let ProfileTables {
            strings,
            functions,
            locations,
            ..
        } = self.profile;
        self.tables.string_table = strings;
        self.tables
            .function_table
            .extend(functions.iter().map(|function| proto::Function {
                name_strindex: function.name as i32,
                system_name_strindex: function.system_name as i32,
                filename_strindex: function.filename as i32,
                start_line: i64::from(function.start_line),
            }));
        self.tables
            .location_table
            .extend(locations.iter().map(|location| proto::Location {
                mapping_index: 0,
                lines: vec![proto::Line {
                    function_index: location.function as i32,
                    line: i64::from(location.line),
                }],
            }));
        self.tables
    }

    fn stack(&mut self, location_indices: Vec<i32>) -> i32 {
        let table = &mut self.tables.stack_table;
        *self
            .stacks
            .entry(location_indices.clone())
            .or_insert_with(|| {
                table.push(proto::Stack { location_indices });
                table.len() as i32 - 1
            })
    }

    fn attribute(&mut self, key: &str, value: Value) -> i32 {
        let key_strindex = self.string(key);
        let table = &mut self.tables.attribute_table;
        *self
            .attributes
            .entry((key_strindex, value.clone()))
            .or_insert_with(|| {
                table.push(proto::KeyValueAndUnit {
                    key_strindex,
                    value: Some(proto::AnyValue { value: Some(value) }),
                    unit_strindex: 0,
                });
                table.len() as i32 - 1
            })
    }
}

// `Value` is a dictionary key: its strings and integers are.
impl Eq for Value {}
impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Value::StringValue(s) => (0u8, s).hash(state),
            Value::IntValue(i) => (1u8, i).hash(state),
        }
    }
}

fn attribute(key: &str, value: Value) -> proto::KeyValue {
    proto::KeyValue {
        key: key.to_owned(),
        value: Some(proto::AnyValue { value: Some(value) }),
    }
}

/// The resource attributes of process `pid` (OpenTelemetry's semantic
/// conventions): `process.pid`, `process.executable.name` (its kernel
/// name), `host.name`, and in a container `container.id`,
/// `container.name`, `k8s.pod.uid`, `k8s.pod.name`, `k8s.namespace.name`
/// (those known).
fn resource(report: &Report, who: &Identities, pid: u32) -> proto::Resource {
    let mut attributes = vec![attribute("process.pid", Value::IntValue(i64::from(pid)))];
    if let Some(comm) = who.comm(pid) {
        attributes.push(attribute(
            "process.executable.name",
            Value::StringValue(comm.to_owned()),
        ));
    }
    if let Some(host) = &report.host_name {
        attributes.push(attribute("host.name", Value::StringValue(host.clone())));
    }
    if let Some(container) = who.container(pid) {
        for (field, value) in container_fields(container) {
            let key = match field {
                ContainerField::Id => "container.id",
                ContainerField::Name => "container.name",
                ContainerField::PodUid => "k8s.pod.uid",
                ContainerField::Pod => "k8s.pod.name",
                ContainerField::Namespace => "k8s.namespace.name",
            };
            attributes.push(attribute(key, Value::StringValue(value.to_owned())));
        }
    }
    proto::Resource { attributes }
}

/// The samples a window's request carries: those of its stacks with
/// frames.
pub fn samples(report: &Report) -> u64 {
    exported(report).map(|s| s.samples).sum()
}

fn exported(report: &Report) -> impl Iterator<Item = &super::PythonStack> {
    report.python.stacks.iter().filter(|s| !s.frames.is_empty())
}

/// The request for a window's report, and the samples it carries. `id`:
/// the profiles' id (16 random bytes, the same for every process's
/// profile of the window).
pub fn encode(report: &Report, id: [u8; 16]) -> (Vec<u8>, u64) {
    let python = &report.python;
    let period = 1_000_000_000 / python.rate_hz.max(1) as i64;
    let mut dictionary = Dictionary::new();
    let truncated = Frame::named(TRUNCATED);
    let who = Identities::of(report);
    let mut by_process: BTreeMap<u32, Vec<proto::Sample>> = BTreeMap::new();
    let mut samples = 0;
    for stack in exported(report) {
        let mut locations: Vec<i32> = stack
            .frames
            .iter()
            .map(|f| dictionary.location(f))
            .collect();
        if stack.truncated {
            locations.push(dictionary.location(&truncated));
        }
        let mut attribute_indices =
            vec![dictionary.attribute("thread.id", Value::IntValue(i64::from(stack.tid)))];
        if let Some(name) = who.thread_name(stack.pid, stack.tid) {
            let name = Value::StringValue(name.to_owned());
            attribute_indices.push(dictionary.attribute("thread.name", name));
        }
        samples += stack.samples;
        by_process
            .entry(stack.pid)
            .or_default()
            .push(proto::Sample {
                stack_index: dictionary.stack(locations),
                attribute_indices,
                values: vec![(stack.samples as i64).saturating_mul(period)],
            });
    }
    let cpu = dictionary.string("cpu");
    let nanoseconds = dictionary.string("nanoseconds");
    let value_type = proto::ValueType {
        type_strindex: cpu,
        unit_strindex: nanoseconds,
    };
    let duration_nano = (report.duration_s * 1e9) as u64;
    let scope = proto::InstrumentationScope {
        name: "tracer".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let resource_profiles = by_process
        .into_iter()
        .map(|(pid, samples)| proto::ResourceProfiles {
            resource: Some(resource(report, &who, pid)),
            scope_profiles: vec![proto::ScopeProfiles {
                scope: Some(scope.clone()),
                profiles: vec![proto::Profile {
                    sample_type: Some(value_type.clone()),
                    samples,
                    time_unix_nano: report.start_unix_ns,
                    duration_nano,
                    period_type: Some(value_type.clone()),
                    period,
                    profile_id: id.to_vec(),
                }],
            }],
        })
        .collect();
    let request = proto::ExportProfilesServiceRequest {
        resource_profiles,
        dictionary: Some(dictionary.finish()),
    };
    (request.encode_to_vec(), samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Container, ProcessInfo, PythonStack, PythonThread};

    fn frame(name: &str, line: u32) -> Frame {
        crate::fixtures::python_frame(name, "/app.py", line)
    }

    fn stack(pid: u32, tid: u32, samples: u64, frames: Vec<Frame>) -> PythonStack {
        PythonStack {
            pid,
            tid,
            samples,
            truncated: false,
            task: None,
            task_id: None,
            frames,
        }
    }

    fn string(request: &proto::ExportProfilesServiceRequest, index: i32) -> &str {
        &request.dictionary.as_ref().unwrap().string_table[index as usize]
    }

    #[test]
    fn a_resource_per_process_with_its_container_and_shared_tables() {
        let mut report = Report::default();
        report.python.rate_hz = 100;
        report.host_name = Some("node-1".into());
        report.start_unix_ns = 1_700_000_000_000_000_000;
        report.duration_s = 10.0;
        report.processes = vec![
            ProcessInfo {
                pid: 7,
                comm: "python3".into(),
                ..Default::default()
            },
            ProcessInfo {
                pid: 9,
                comm: "python3.14".into(),
                container: Some(Container {
                    id: "c0ffee".into(),
                    runtime: "podman".into(),
                    pod_uid: Some("pod-1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        report.python.stacks = vec![
            stack(9, 10, 5, vec![frame("leaf", 3), frame("main", 9)]),
            stack(7, 7, 3, vec![frame("other", 4), frame("main", 9)]),
            stack(7, 8, 2, vec![frame("other", 4), frame("main", 9)]),
            stack(7, 8, 4, vec![]),
        ];
        report.python.threads = vec![PythonThread {
            pid: 7,
            tid: 7,
            name: Some("MainThread".into()),
            ..Default::default()
        }];
        let (bytes, samples) = encode(&report, [1; 16]);
        // The stack without frames is not exported (nor counted).
        assert_eq!(samples, 10);
        let request = proto::ExportProfilesServiceRequest::decode(&bytes[..]).unwrap();
        let dictionary = request.dictionary.as_ref().unwrap();
        assert_eq!(dictionary.string_table[0], "");
        for zero in [
            dictionary.location_table[0] == proto::Location::default(),
            dictionary.function_table[0] == proto::Function::default(),
            dictionary.stack_table[0] == proto::Stack::default(),
            dictionary.attribute_table[0] == proto::KeyValueAndUnit::default(),
            dictionary.mapping_table[0] == proto::Mapping::default(),
        ] {
            assert!(zero);
        }
        // main:9 is one location; the two threads' same stack one stack.
        assert_eq!(dictionary.location_table.len(), 4);
        assert_eq!(dictionary.stack_table.len(), 3);
        let pids: Vec<Vec<(String, Option<Value>)>> = request
            .resource_profiles
            .iter()
            .map(|r| {
                r.resource
                    .as_ref()
                    .unwrap()
                    .attributes
                    .iter()
                    .map(|a| (a.key.clone(), a.value.clone().unwrap().value))
                    .collect()
            })
            .collect();
        let s = |v: &str| Some(Value::StringValue(v.into()));
        assert_eq!(
            pids,
            [
                vec![
                    ("process.pid".into(), Some(Value::IntValue(7))),
                    ("process.executable.name".into(), s("python3")),
                    ("host.name".into(), s("node-1")),
                ],
                vec![
                    ("process.pid".into(), Some(Value::IntValue(9))),
                    ("process.executable.name".into(), s("python3.14")),
                    ("host.name".into(), s("node-1")),
                    ("container.id".into(), s("c0ffee")),
                    ("k8s.pod.uid".into(), s("pod-1")),
                ],
            ]
        );
        let host = &request.resource_profiles[0].scope_profiles[0].profiles[0];
        assert_eq!(
            string(&request, host.sample_type.as_ref().unwrap().type_strindex),
            "cpu"
        );
        assert_eq!(host.period, 10_000_000);
        assert_eq!(host.time_unix_nano, report.start_unix_ns);
        assert_eq!(host.duration_nano, 10_000_000_000);
        assert_eq!(host.profile_id, [1; 16]);
        let values: Vec<i64> = host.samples.iter().map(|s| s.values[0]).collect();
        assert_eq!(values, [30_000_000, 20_000_000]);
        assert_eq!(host.samples[0].stack_index, host.samples[1].stack_index);
        let attributes = |sample: &proto::Sample| -> Vec<(String, Option<Value>)> {
            sample
                .attribute_indices
                .iter()
                .map(|&i| {
                    let a = &dictionary.attribute_table[i as usize];
                    (
                        string(&request, a.key_strindex).to_owned(),
                        a.value.clone().unwrap().value,
                    )
                })
                .collect()
        };
        assert_eq!(
            attributes(&host.samples[0]),
            [
                ("thread.id".into(), Some(Value::IntValue(7))),
                ("thread.name".into(), s("MainThread"))
            ]
        );
        assert_eq!(
            attributes(&host.samples[1]),
            [("thread.id".into(), Some(Value::IntValue(8)))]
        );
        // Innermost first, as the stack's frames.
        let stack = &dictionary.stack_table[host.samples[0].stack_index as usize];
        let first = &dictionary.location_table[stack.location_indices[0] as usize];
        let function = &dictionary.function_table[first.lines[0].function_index as usize];
        assert_eq!(string(&request, function.name_strindex), "other");
        assert_eq!(first.lines[0].line, 4);
    }

    #[test]
    fn an_idle_window_is_a_request_without_profiles() {
        let (bytes, samples) = encode(&Report::default(), [0; 16]);
        assert_eq!(samples, 0);
        let request = proto::ExportProfilesServiceRequest::decode(&bytes[..]).unwrap();
        assert!(request.resource_profiles.is_empty());
    }
}
