//! `--perfetto`: the report's timeline as a Perfetto protobuf trace (what
//! ui.perfetto.dev and trace_processor load). A process track per process
//! and a thread track per thread; on each thread track its on-CPU and
//! off-CPU slices, with the signal steps as instants joined by one flow per
//! signal (generation -> delivery -> Python handler); its read and write syscalls on
//! a child track; fork / exec / exit instants and the zombie slice on the
//! process track; the Python samples as `PerfSample`s with interned
//! callstacks. Times are CLOCK_BOOTTIME, Perfetto's default clock.
//!
//! Packets are encoded one by one into one buffer and written in time
//! order (at equal times: slice ends, then begins, then instants), so the
//! trace's size, not a message tree, is what the export holds in memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message as _;

use super::{
    Report, SignalStep, Timeline, flame::TRUNCATED, identity::Identities,
    profile_tables::FrameInterner,
};
use crate::frame::Frame;

use super::proto::perfetto as proto;

/// The one writer sequence of the trace.
const SEQUENCE: u32 = 1;
/// `TracePacket.sequence_flags`.
const INCREMENTAL_STATE_CLEARED: u32 = 1;
const NEEDS_INCREMENTAL_STATE: u32 = 2;

/// Track uuids: kind in the top bits, pid or tid below.
const PROCESS_TRACK: u64 = 1 << 40;
const THREAD_TRACK: u64 = 2 << 40;
const READS_TRACK: u64 = 3 << 40;
const KERNEL_TRACK: u64 = 4 << 40;
const TRACER_TRACK: u64 = 5 << 40;
const LOOP_TRACK: u64 = 6 << 40;
/// A process's resident memory, a counter track under the process.
const RSS_TRACK: u64 = 7 << 40;
const WRITES_TRACK: u64 = 8 << 40;

/// The trace; `Err`: no timeline was recorded (not run with `--perfetto`).
pub fn render(report: &Report) -> Result<Vec<u8>, String> {
    let timeline = report
        .timeline
        .as_ref()
        .ok_or("the run kept no timeline (only a run with --perfetto does)")?;
    let mut trace = Trace::new(timeline.boottime_at_start_ns);
    let stacks = Callstacks::intern(report, timeline);
    trace.header(stacks.interned);
    tracks(&mut trace, report, timeline);
    cpu_and_reads(&mut trace, timeline, &stacks.timeline);
    signals(&mut trace, timeline);
    lifecycle(&mut trace, report);
    samples(&mut trace, report, &stacks.python);
    loop_stalls(&mut trace, report);
    resident_memory(&mut trace, report);
    info(&mut trace, report, timeline);
    Ok(trace.finish())
}

/// Packets, encoded as they come, written in time order at the end.
struct Trace {
    base_ns: u64,
    /// Packets without a time (descriptors, interned data), in order.
    head: Vec<u8>,
    body: Vec<u8>,
    /// (time, rank at equal times, offset and length in `body`).
    index: Vec<(u64, u8, usize, usize)>,
}

impl Trace {
    fn new(base_ns: u64) -> Self {
        Self {
            base_ns,
            head: Vec::new(),
            body: Vec::new(),
            index: Vec::new(),
        }
    }

    fn header(&mut self, interned: proto::InternedData) {
        let packet = proto::TracePacket {
            trusted_packet_sequence_id: Some(SEQUENCE),
            sequence_flags: Some(INCREMENTAL_STATE_CLEARED),
            first_packet_on_sequence: Some(true),
            interned_data: Some(interned),
            ..Default::default()
        };
        append_packet(&mut self.head, &packet);
    }

    fn track(&mut self, descriptor: proto::TrackDescriptor) {
        let packet = proto::TracePacket {
            trusted_packet_sequence_id: Some(SEQUENCE),
            track_descriptor: Some(descriptor),
            ..Default::default()
        };
        append_packet(&mut self.head, &packet);
    }

    /// `t_ns`: since tracing started.
    fn event(&mut self, t_ns: u64, event: proto::TrackEvent) {
        let rank = match event.r#type {
            Some(proto::SLICE_END) => 0,
            Some(proto::SLICE_BEGIN) => 1,
            _ => 2,
        };
        let interned = event.callstack_iid.is_some();
        self.timed(
            t_ns,
            rank,
            proto::TracePacket {
                track_event: Some(event),
                sequence_flags: interned.then_some(NEEDS_INCREMENTAL_STATE),
                ..Default::default()
            },
        );
    }

    fn timed(&mut self, t_ns: u64, rank: u8, mut packet: proto::TracePacket) {
        packet.timestamp = Some(self.base_ns + t_ns);
        packet.trusted_packet_sequence_id = Some(SEQUENCE);
        let offset = self.body.len();
        packet
            .encode(&mut self.body)
            .expect("a Vec grows as needed");
        self.index
            .push((t_ns, rank, offset, self.body.len() - offset));
    }

    fn slice(
        &mut self,
        track: u64,
        start_ns: u64,
        end_ns: u64,
        name: &str,
        annotations: Vec<proto::DebugAnnotation>,
        callstack: Option<u64>,
    ) {
        self.event(
            start_ns,
            proto::TrackEvent {
                r#type: Some(proto::SLICE_BEGIN),
                track_uuid: Some(track),
                name: Some(name.to_owned()),
                debug_annotations: annotations,
                callstack_iid: callstack,
                ..Default::default()
            },
        );
        self.event(
            end_ns.max(start_ns),
            proto::TrackEvent {
                r#type: Some(proto::SLICE_END),
                track_uuid: Some(track),
                ..Default::default()
            },
        );
    }

    fn instant(
        &mut self,
        track: u64,
        t_ns: u64,
        name: &str,
        annotations: Vec<proto::DebugAnnotation>,
    ) {
        self.event(
            t_ns,
            proto::TrackEvent {
                r#type: Some(proto::INSTANT),
                track_uuid: Some(track),
                name: Some(name.to_owned()),
                debug_annotations: annotations,
                ..Default::default()
            },
        );
    }

    fn finish(mut self) -> Vec<u8> {
        // Stable: packets of equal time and rank keep their order.
        self.index.sort_by_key(|&(t, rank, _, _)| (t, rank));
        let mut out = self.head;
        out.reserve(self.body.len() + 4 * self.index.len());
        for &(_, _, offset, len) in &self.index {
            append_field(&mut out, &self.body[offset..offset + len]);
        }
        out
    }
}

/// One `Trace.packet` (field 1, length-delimited).
fn append_packet(out: &mut Vec<u8>, packet: &proto::TracePacket) {
    append_field(out, &packet.encode_to_vec());
}

fn append_field(out: &mut Vec<u8>, bytes: &[u8]) {
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn text(name: &str, value: impl Into<String>) -> proto::DebugAnnotation {
    proto::DebugAnnotation {
        name: Some(name.to_owned()),
        string_value: Some(value.into()),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> proto::DebugAnnotation {
    proto::DebugAnnotation {
        name: Some(name.to_owned()),
        int_value: Some(value),
        ..Default::default()
    }
}

fn seconds_to_ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9).round() as u64
}

/// Interned Python frames and callstacks: one per distinct stack.
struct Callstacks {
    interned: proto::InternedData,
    /// Callstack iid of each `Report::python.stacks` entry.
    python: Vec<u64>,
    /// Callstack iid of each `Timeline::stacks` entry.
    timeline: Vec<u64>,
}

impl Callstacks {
    fn intern(report: &Report, timeline: &Timeline) -> Self {
        let mut tables = Tables::default();
        let truncated = Frame::named(TRUNCATED);
        let python = report
            .python
            .stacks
            .iter()
            .map(|stack| {
                let mut frames: Vec<&Frame> = stack.frames.iter().collect();
                if stack.truncated {
                    frames.push(&truncated);
                }
                // The asyncio task it ran in: the outermost frame, as in
                // the flame graphs.
                let task = crate::flame::task_frame(stack).map(|name| Frame::named(&name));
                frames.extend(task.as_ref());
                tables.callstack(&frames)
            })
            .collect();
        let timeline = timeline
            .stacks
            .iter()
            .map(|stack| tables.callstack(&stack.iter().collect::<Vec<_>>()))
            .collect();
        tables.interned.mapping_paths.push(proto::InternedString {
            iid: Some(1),
            str: Some(b"python".to_vec()),
        });
        tables.interned.mappings.push(proto::Mapping {
            iid: Some(1),
            path_string_ids: vec![1],
        });
        Self {
            interned: tables.interned,
            python,
            timeline,
        }
    }
}

#[derive(Default)]
struct Tables {
    interned: proto::InternedData,
    names: HashMap<String, u64>,
    paths: HashMap<String, u64>,
    frames: FrameInterner,
    callstacks: HashMap<Vec<u64>, u64>,
}

impl Tables {
    fn string(
        ids: &mut HashMap<String, u64>,
        table: &mut Vec<proto::InternedString>,
        s: &str,
    ) -> u64 {
        if let Some(&iid) = ids.get(s) {
            return iid;
        }
        let iid = table.len() as u64 + 1;
        table.push(proto::InternedString {
            iid: Some(iid),
            str: Some(s.as_bytes().to_vec()),
        });
        ids.insert(s.to_owned(), iid);
        iid
    }

    fn frame(&mut self, frame: &Frame) -> u64 {
        let (index, new) = self.frames.intern(frame);
        let iid = index as u64 + 1;
        if !new {
            return iid;
        }
        let name = Self::string(
            &mut self.names,
            &mut self.interned.function_names,
            &frame.qualname,
        );
        let path = (!frame.file.is_empty()).then(|| {
            Self::string(
                &mut self.paths,
                &mut self.interned.source_paths,
                &frame.file,
            )
        });
        self.interned.frames.push(proto::Frame {
            iid: Some(iid),
            function_name_id: Some(name),
            mapping_id: Some(1),
            // Distinct per frame: trace_processor tells frames of a
            // mapping apart by it.
            rel_pc: Some(iid),
            source_path_iid: path,
            line_number: (frame.line != 0).then_some(frame.line),
        });
        iid
    }

    /// `frames` innermost first.
    fn callstack(&mut self, frames: &[&Frame]) -> u64 {
        let ids: Vec<u64> = frames.iter().rev().map(|f| self.frame(f)).collect();
        let next = self.interned.callstacks.len() as u64 + 1;
        let iid = *self.callstacks.entry(ids.clone()).or_insert(next);
        if iid == next {
            self.interned.callstacks.push(proto::Callstack {
                iid: Some(iid),
                frame_ids: ids,
            });
        }
        iid
    }
}

/// A process track for every process and a thread track for every thread
/// that appears anywhere in the report, with a child track for each
/// thread's reads.
fn tracks(trace: &mut Trace, report: &Report, timeline: &Timeline) {
    let who = Identities::of(report);
    // pid -> (its name where the report says none, command line)
    let mut processes: BTreeMap<u32, (&str, &[String])> = BTreeMap::new();
    for p in &report.processes {
        processes.insert(p.pid, ("", &p.argv));
    }
    processes
        .entry(report.target.pid)
        .or_insert((&report.target.comm, &report.target.argv));
    // tid -> (pid, its name where the report says none)
    let mut threads: BTreeMap<u32, (u32, &str)> = BTreeMap::new();
    for t in &report.sched.threads {
        threads.insert(t.tid, (t.pid, ""));
    }
    for t in &report.python.threads {
        if t.name.is_some() {
            threads.insert(t.tid, (t.pid, ""));
        }
    }
    let seen = timeline
        .cpu
        .iter()
        .map(|s| (s.pid, s.tid, ""))
        .chain(timeline.reads.iter().map(|r| (r.pid, r.tid, "")))
        .chain(
            timeline
                .signals
                .iter()
                .filter(|m| m.pid != 0)
                .map(|m| (m.pid, m.tid, m.comm.as_str())),
        )
        .chain(report.python.stacks.iter().map(|s| (s.pid, s.tid, "")));
    for (pid, tid, comm) in seen {
        processes.entry(pid).or_insert((comm, &[]));
        threads.entry(tid).or_insert((pid, comm));
    }
    for (pid, (otherwise, cmdline)) in processes {
        // A process known only by its container is named by it alone.
        let comm = who.comm(pid).unwrap_or(otherwise);
        let name = format!("{comm}{}", who.in_container(pid))
            .trim_start()
            .to_owned();
        trace.track(proto::TrackDescriptor {
            uuid: Some(PROCESS_TRACK | u64::from(pid)),
            process: Some(proto::ProcessDescriptor {
                pid: Some(pid as i32),
                cmdline: cmdline.to_vec(),
                process_name: (!name.is_empty()).then_some(name),
            }),
            ..Default::default()
        });
    }
    let reading: HashSet<u32> = timeline
        .reads
        .iter()
        .filter(|r| !r.write)
        .map(|r| r.tid)
        .collect();
    let writing: HashSet<u32> = timeline
        .reads
        .iter()
        .filter(|r| r.write)
        .map(|r| r.tid)
        .collect();
    for (tid, (pid, otherwise)) in threads {
        let name = who.thread_label(pid, tid).unwrap_or(otherwise).to_owned();
        trace.track(proto::TrackDescriptor {
            uuid: Some(THREAD_TRACK | u64::from(tid)),
            thread: Some(proto::ThreadDescriptor {
                pid: Some(pid as i32),
                tid: Some(tid as i32),
                thread_name: (!name.is_empty()).then_some(name),
            }),
            ..Default::default()
        });
        if reading.contains(&tid) {
            trace.track(proto::TrackDescriptor {
                uuid: Some(READS_TRACK | u64::from(tid)),
                parent_uuid: Some(THREAD_TRACK | u64::from(tid)),
                name: Some("read syscalls".into()),
                ..Default::default()
            });
        }
        if writing.contains(&tid) {
            trace.track(proto::TrackDescriptor {
                uuid: Some(WRITES_TRACK | u64::from(tid)),
                parent_uuid: Some(THREAD_TRACK | u64::from(tid)),
                name: Some("write syscalls".into()),
                ..Default::default()
            });
        }
        if report.event_loops.iter().any(|l| l.tid == tid) {
            trace.track(proto::TrackDescriptor {
                uuid: Some(LOOP_TRACK | u64::from(tid)),
                parent_uuid: Some(THREAD_TRACK | u64::from(tid)),
                name: Some("event loop stalls".into()),
                ..Default::default()
            });
        }
    }
    trace.track(proto::TrackDescriptor {
        uuid: Some(KERNEL_TRACK),
        name: Some("signals generated by the kernel".into()),
        ..Default::default()
    });
    trace.track(proto::TrackDescriptor {
        uuid: Some(TRACER_TRACK),
        name: Some("tracer".into()),
        ..Default::default()
    });
}

fn cpu_and_reads(trace: &mut Trace, timeline: &Timeline, callstacks: &[u64]) {
    for s in &timeline.cpu {
        let track = THREAD_TRACK | u64::from(s.tid);
        let (name, switch) = match (s.on_cpu, s.voluntary) {
            (true, _) => ("running", None),
            (false, true) => ("sleeping", Some("voluntary")),
            (false, false) => ("preempted", Some("involuntary")),
        };
        let mut annotations = Vec::new();
        if let Some(switch) = switch {
            annotations.push(text("switch", switch));
        }
        let stack = s.stack.and_then(|i| timeline.stacks.get(i).map(|f| (i, f)));
        if let Some((_, frames)) = stack {
            annotations.push(text("python_stack", describe_stack(frames)));
        }
        let callstack = stack.and_then(|(i, _)| callstacks.get(i).copied());
        trace.slice(track, s.start_ns, s.end_ns, name, annotations, callstack);
    }
    for r in &timeline.reads {
        let (path, fs) = timeline
            .files
            .get(r.file)
            .map_or(("?", "?"), |(p, f)| (p.as_str(), f.as_str()));
        let mut annotations = vec![
            text("file", path),
            text("fs", fs),
            int("fd", i64::from(r.fd)),
            int("request", r.request as i64),
        ];
        if r.ret >= 0 {
            annotations.push(int("bytes", r.ret));
        } else {
            annotations.push(text(
                "error",
                std::io::Error::from_raw_os_error(-r.ret as i32).to_string(),
            ));
        }
        if r.voluntary + r.involuntary > 0 {
            annotations.push(int("voluntary_switches", i64::from(r.voluntary)));
            annotations.push(int("involuntary_switches", i64::from(r.involuntary)));
        }
        let track = if r.write { WRITES_TRACK } else { READS_TRACK } | u64::from(r.tid);
        trace.slice(track, r.start_ns, r.end_ns, r.syscall, annotations, None);
    }
}

/// A slice per event loop stall (the first ones each loop lists).
fn loop_stalls(trace: &mut Trace, report: &Report) {
    for l in &report.event_loops {
        for stall in &l.stall_list {
            let annotations = vec![
                int("duration_ms", (stall.duration_ns / 1_000_000) as i64),
                int("threshold_ms", (l.threshold_ns / 1_000_000) as i64),
            ];
            let end = stall.start_ns + stall.duration_ns;
            let track = LOOP_TRACK | u64::from(l.tid);
            trace.slice(
                track,
                stall.start_ns,
                end,
                "loop blocked",
                annotations,
                None,
            );
        }
    }
}

/// `f (file:line) <- caller (file:line) ...`, innermost first.
/// Each Python process's resident memory at its sampled page faults
/// (`memory.processes[].rss`), a counter track in bytes under its process.
fn resident_memory(trace: &mut Trace, report: &Report) {
    for p in report.memory.processes.iter().filter(|p| !p.rss.is_empty()) {
        let uuid = RSS_TRACK | u64::from(p.pid);
        trace.track(proto::TrackDescriptor {
            uuid: Some(uuid),
            parent_uuid: Some(PROCESS_TRACK | u64::from(p.pid)),
            name: Some("resident memory (at sampled page faults)".into()),
            counter: Some(proto::CounterDescriptor {
                unit: Some(proto::UNIT_SIZE_BYTES),
            }),
            ..Default::default()
        });
        for point in &p.rss {
            trace.event(
                seconds_to_ns(point.t_s),
                proto::TrackEvent {
                    r#type: Some(proto::COUNTER),
                    track_uuid: Some(uuid),
                    counter_value: Some(point.bytes as i64),
                    ..Default::default()
                },
            );
        }
    }
}

fn describe_stack(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("{} ({}:{})", f.qualname, f.file, f.line))
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// Each step an instant on the thread it happened in; a signal's steps
/// share one flow, which ends at its last step.
fn signals(trace: &mut Trace, timeline: &Timeline) {
    let mut last_step: HashMap<u64, usize> = HashMap::new();
    for (i, mark) in timeline.signals.iter().enumerate() {
        if mark.flow != 0 {
            last_step.insert(mark.flow, i);
        }
    }
    for (i, mark) in timeline.signals.iter().enumerate() {
        let signal = super::signal_name(mark.signo);
        let (name, detail_key) = match mark.step {
            SignalStep::Generated => (format!("{signal} generated"), "target"),
            SignalStep::Delivered => (format!("{signal} delivered"), "disposition"),
            SignalStep::HandlerRan => (format!("{signal} Python handler runs"), ""),
        };
        let track = if mark.pid == 0 {
            KERNEL_TRACK
        } else {
            THREAD_TRACK | u64::from(mark.tid)
        };
        let mut annotations = Vec::new();
        if !detail_key.is_empty() && !mark.detail.is_empty() {
            annotations.push(text(detail_key, mark.detail.clone()));
        }
        let (mut flow_ids, mut terminating_flow_ids) = (Vec::new(), Vec::new());
        if mark.flow != 0 {
            if last_step.get(&mark.flow) == Some(&i) && mark.step != SignalStep::Generated {
                terminating_flow_ids.push(mark.flow);
            } else {
                flow_ids.push(mark.flow);
            }
        }
        trace.event(
            mark.t_ns,
            proto::TrackEvent {
                r#type: Some(proto::INSTANT),
                track_uuid: Some(track),
                name: Some(name),
                categories: vec!["signal".into()],
                debug_annotations: annotations,
                flow_ids,
                terminating_flow_ids,
                ..Default::default()
            },
        );
    }
}

/// Fork, exec and exit instants and the zombie slice, on each process's track.
fn lifecycle(trace: &mut Trace, report: &Report) {
    for p in &report.processes {
        let track = PROCESS_TRACK | u64::from(p.pid);
        if let Some(start) = p.start_s {
            trace.instant(
                track,
                seconds_to_ns(start),
                "fork",
                vec![int("parent", i64::from(p.ppid))],
            );
        }
        if let Some(exec) = p.exec_s {
            trace.instant(
                track,
                seconds_to_ns(exec),
                "exec",
                vec![text("argv", p.argv.join(" "))],
            );
        }
        if let Some(exit) = p.exit_s {
            let how = match (&p.exit_signal, p.exit_code) {
                (Some(signal), _) => format!("killed by {signal}"),
                (None, Some(code)) => format!("exit code {code}"),
                (None, None) => "unknown".to_owned(),
            };
            trace.instant(track, seconds_to_ns(exit), "exit", vec![text("how", how)]);
        }
    }
    for z in &report.zombies {
        let track = PROCESS_TRACK | u64::from(z.pid);
        let start = z.exit_s.map_or(0, seconds_to_ns);
        let mut annotations = vec![text("reaped_how", z.reaped_how.clone())];
        if let Some(by) = z.reaped_by {
            annotations.push(int("reaped_by", i64::from(by)));
        }
        trace.slice(
            track,
            start,
            start + z.zombie_ns,
            "zombie",
            annotations,
            None,
        );
    }
}

/// The Python samples, in time order when the report kept it.
fn samples(trace: &mut Trace, report: &Report, callstacks: &[u64]) {
    let python = &report.python;
    for sample in &python.timeline {
        let (Some(stack), Some(&iid)) = (
            python.stacks.get(sample.stack),
            callstacks.get(sample.stack),
        ) else {
            continue;
        };
        trace.timed(
            sample.t_ns,
            3,
            proto::TracePacket {
                perf_sample: Some(proto::PerfSample {
                    pid: Some(stack.pid),
                    tid: Some(stack.tid),
                    callstack_iid: Some(iid),
                }),
                sequence_flags: Some(NEEDS_INCREMENTAL_STATE),
                ..Default::default()
            },
        );
    }
}

/// What the trace holds and leaves out, as an instant at its start.
fn info(trace: &mut Trace, report: &Report, timeline: &Timeline) {
    let mut annotations = vec![
        int("reads_seen", timeline.reads_seen as i64),
        int("reads_every", timeline.reads_every as i64),
        int("switches_seen", timeline.switches_seen as i64),
        int("switches_left_out", timeline.switches_left_out as i64),
        int("switches_unpaired", timeline.switches_unpaired as i64),
        int("signals_left_out", timeline.signals_left_out as i64),
        int("events_lost", report.events.lost as i64),
        int("python_rate_hz", report.python.rate_hz as i64),
    ];
    if report.python.samples > 0 && !report.python.timeline_complete {
        annotations.push(text(
            "python_samples",
            "more than are kept in time order: none drawn",
        ));
    }
    if timeline.reads_every > 1 {
        annotations.push(text(
            "reads",
            format!(
                "1 in {} of the read syscalls is drawn (evenly), to bound the trace's size",
                timeline.reads_every
            ),
        ));
    }
    trace.instant(TRACER_TRACK, 0, "tracer", annotations);
    trace.instant(TRACER_TRACK, timeline.end_ns, "tracing stopped", Vec::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuSlice, ReadSlice, SignalMark};

    /// Splits a trace into its packets.
    fn packets(bytes: &[u8]) -> Vec<proto::TracePacket> {
        #[derive(Clone, PartialEq, prost::Message)]
        struct TraceMessage {
            #[prost(message, repeated, tag = "1")]
            packet: Vec<proto::TracePacket>,
        }
        TraceMessage::decode(bytes).unwrap().packet
    }

    fn timeline() -> Timeline {
        Timeline {
            boottime_at_start_ns: 1_000,
            end_ns: 100,
            cpu: vec![
                CpuSlice {
                    pid: 7,
                    tid: 7,
                    start_ns: 0,
                    end_ns: 10,
                    on_cpu: true,
                    voluntary: true,
                    stack: None,
                },
                CpuSlice {
                    pid: 7,
                    tid: 7,
                    start_ns: 10,
                    end_ns: 30,
                    on_cpu: false,
                    voluntary: true,
                    stack: Some(0),
                },
            ],
            reads: vec![ReadSlice {
                pid: 7,
                tid: 7,
                start_ns: 5,
                end_ns: 8,
                file: 0,
                fd: 3,
                syscall: "read",
                write: false,
                request: 1024,
                ret: 100,
                voluntary: 0,
                involuntary: 0,
            }],
            reads_seen: 1,
            reads_every: 1,
            files: vec![("/proc/self/status".into(), "proc".into())],
            signals: vec![
                SignalMark {
                    t_ns: 40,
                    step: SignalStep::Generated,
                    signo: 10,
                    pid: 7,
                    tid: 7,
                    comm: "python3".into(),
                    flow: 1,
                    detail: "to 7".into(),
                },
                SignalMark {
                    t_ns: 41,
                    step: SignalStep::Delivered,
                    signo: 10,
                    pid: 7,
                    tid: 7,
                    comm: String::new(),
                    flow: 1,
                    detail: "handler".into(),
                },
            ],
            stacks: vec![vec![Frame {
                qualname: "wait".into(),
                function: "wait".into(),
                file: "/app.py".into(),
                line: 3,
                first_line: 1,
                native: false,
            }]],
            ..Timeline::default()
        }
    }

    #[test]
    fn slices_come_in_time_order_with_ends_first_and_flows_joined() {
        let report = Report {
            timeline: Some(timeline()),
            ..Report::default()
        };
        let packets = packets(&render(&report).unwrap());
        let events: Vec<(u64, i32, Option<String>)> = packets
            .iter()
            .filter_map(|p| {
                let e = p.track_event.as_ref()?;
                Some((p.timestamp?, e.r#type?, e.name.clone()))
            })
            .collect();
        // The on-CPU slice ends (rank 0) before the off-CPU one begins at 1010.
        let at_10: Vec<i32> = events
            .iter()
            .filter(|e| e.0 == 1_010)
            .map(|e| e.1)
            .collect();
        assert_eq!(at_10, vec![proto::SLICE_END, proto::SLICE_BEGIN]);
        assert!(events.windows(2).all(|w| w[0].0 <= w[1].0));
        let generated = packets
            .iter()
            .filter_map(|p| p.track_event.as_ref())
            .find(|e| e.name.as_deref() == Some("SIGUSR1 generated"))
            .unwrap();
        let delivered = packets
            .iter()
            .filter_map(|p| p.track_event.as_ref())
            .find(|e| e.name.as_deref() == Some("SIGUSR1 delivered"))
            .unwrap();
        assert_eq!(generated.flow_ids, vec![1]);
        assert_eq!(delivered.terminating_flow_ids, vec![1]);
        let sleeping = packets
            .iter()
            .filter_map(|p| p.track_event.as_ref())
            .find(|e| e.name.as_deref() == Some("sleeping"))
            .unwrap();
        assert_eq!(sleeping.callstack_iid, Some(1));
        // The first packet clears the sequence's state and holds the frames.
        let interned = packets[0].interned_data.as_ref().unwrap();
        assert_eq!(interned.frames.len(), 1);
        assert_eq!(interned.frames[0].line_number, Some(3));
    }

    /// Named as every export names it (`report/identity.rs`).
    #[test]
    fn a_process_track_names_its_container() {
        let mut report = Report {
            timeline: Some(timeline()),
            ..Report::default()
        };
        let names = |report: &Report| -> Vec<String> {
            packets(&render(report).unwrap())
                .iter()
                .filter_map(|p| {
                    p.track_descriptor
                        .as_ref()?
                        .process
                        .as_ref()?
                        .process_name
                        .clone()
                })
                .collect()
        };
        // Known to the sampler alone (a node-wide trace): its container.
        report.python.processes = vec![crate::PythonProcess {
            pid: 7,
            container: Some(crate::fixtures::container()),
            ..Default::default()
        }];
        assert_eq!(
            names(&report),
            ["in container tr-probe (podman 88f77ad08040)"]
        );
        report.processes = vec![crate::ProcessInfo {
            pid: 7,
            comm: "python3".into(),
            ..Default::default()
        }];
        assert!(
            names(&report).contains(&"python3 in container tr-probe (podman 88f77ad08040)".into())
        );
    }

    #[test]
    fn no_timeline_is_no_trace() {
        assert!(render(&Report::default()).is_err());
    }
}
