//! `--live`: a snapshot of the trace so far, every refresh, for the
//! terminal view. It reads what the report is built from (the collector's
//! tables, the kernel maps) without changing it: the report at the end is
//! a normal trace's. Python samples are counted through a capture window
//! (as `--otlp`'s), closed and opened again at each refresh; the kernel's
//! cumulative figures are turned into the interval's by the last ones kept
//! here.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use tracer_common::{IoKey, IoStats, IoSyscall, drops};

use super::live_model::{FileRow, FunctionRow, SignalRow, Snapshot, ThreadRow};
use super::{
    Collector, World, fd_rows,
    interval::{Cumulative, LastSeen},
    modes::ModeFigures,
};
use crate::{
    events::LiveMaps,
    report::{Report, SignalLogEntry},
};

/// The signal events a snapshot holds.
pub const SIGNALS_SHOWN: usize = 20;
/// Request sizes kept per file (the most used).
const REQUESTS_SHOWN: usize = 4;
/// (thread, function) rows kept for the view's sums: past it, those not
/// sampled in the last interval and least sampled in all are dropped from
/// the view (a node-wide view of processes that come and go; the report
/// keeps every one).
pub const MAX_FUNCTIONS: usize = 20_000;

/// What one refresh needs of the last.
#[derive(Default)]
pub struct LiveFigures {
    /// The capture window counting this interval's Python samples.
    window: Option<u64>,
    /// CLOCK_MONOTONIC ns of the last snapshot.
    last_ns: u64,
    /// (pid, tid, function) -> samples since tracing began: (own, total).
    functions: HashMap<(u32, u32, String), (u64, u64)>,
    thread_names: HashMap<(u32, u32), String>,
    /// (pid, file id, writes) -> reads (writes) since tracing began, as
    /// last seen.
    files: LastSeen<(u32, u64, bool), FileTotals>,
    /// tid -> (voluntary, involuntary, on-CPU ns), as last seen.
    threads: LastSeen<u32, (u64, u64, u64)>,
}

#[derive(Default, Clone, PartialEq)]
struct FileTotals {
    syscalls: u64,
    bytes: u64,
    syncs: u64,
    requests: BTreeMap<u64, u64>,
}

impl Cumulative for FileTotals {
    fn grown_since(&self, before: &Self) -> Self {
        FileTotals {
            syscalls: self.syscalls.grown_since(&before.syscalls),
            bytes: self.bytes.grown_since(&before.bytes),
            syncs: self.syncs.grown_since(&before.syncs),
            requests: self.requests.grown_since(&before.requests),
        }
    }
}

impl LiveFigures {
    /// From the start of tracing: the first window opens now (`lost`: the
    /// kernel's count of Python samples lost so far).
    pub fn start(modes: &mut ModeFigures, lost: u64) -> Self {
        let now = crate::host::clock::monotonic_ns();
        Self {
            window: modes.open_export_window(now, lost),
            last_ns: now,
            ..Self::default()
        }
    }
}

impl Collector {
    /// The snapshot of now (every event drained first): rates since the
    /// last one.
    pub fn live_snapshot(
        &mut self,
        world: &World,
        modes: &mut ModeFigures,
        live: &mut LiveFigures,
        maps: &LiveMaps,
    ) -> Snapshot {
        let now = crate::host::clock::monotonic_ns();
        let interval = Duration::from_nanos(now.saturating_sub(live.last_ns));
        live.last_ns = now;
        let drops = maps.drops;
        let mut snapshot = Snapshot {
            target: self.live_target(),
            elapsed: Duration::from_nanos(now.saturating_sub(self.settings.base_ns)),
            interval,
            lost: drops.iter().sum::<u64>() + self.decode_errors,
            ..Snapshot::default()
        };
        // The next window before this one closes: no sample falls between.
        if let Some(window) = live.window.take() {
            let lost = drops[drops::PY_SAMPLES as usize];
            let report = modes.close_window(window, lost, None, (self, world));
            live.window = modes.open_export_window(now, lost);
            if let Some(report) = report {
                snapshot.samples = report.python.samples;
                snapshot.functions = functions(&report, live);
            }
        }
        snapshot.python_note = match (&maps.sampler_error, &world.python) {
            (Some(err), _) => Some(format!("Python sampling failed: {err}")),
            (None, None) => Some("Python stacks are not sampled (--no-python)".into()),
            _ => None,
        };
        snapshot.files = self.live_files(world, live, maps);
        snapshot.processes = self.processes.live_rows(now);
        // A main thread's row has the name it had before its last exec.
        let names: HashMap<u32, &str> = snapshot
            .processes
            .iter()
            .map(|p| (p.pid, p.comm.as_str()))
            .collect();
        snapshot.threads = live_threads(live, &maps.threads, &names);
        let (signals, total) = self.signals.recent(SIGNALS_SHOWN);
        snapshot.signals = signals.into_iter().map(signal_row).collect();
        snapshot.signals_total = total;
        snapshot.loops = self.loops.live_rows();
        snapshot
    }

    fn live_target(&self) -> String {
        let target = &self.target;
        match &target.scope {
            Some(scope) => scope.clone(),
            None => format!("pid {} ({})", target.pid, target.comm),
        }
    }

    /// Every file's reads and writes since tracing began (descriptors
    /// closed, open, and the kernel's own rows), against the last
    /// snapshot's.
    fn live_files(&self, world: &World, live: &mut LiveFigures, maps: &LiveMaps) -> Vec<FileRow> {
        let mut totals: HashMap<(u32, u64, bool), FileTotals> = HashMap::new();
        let mut add = |key: &IoKey, stats: &IoStats| {
            let syscall = IoSyscall::from_u32(key.syscall);
            let write = syscall.is_some_and(IoSyscall::is_write);
            let file = totals.entry((key.tgid, key.file_id, write)).or_default();
            if syscall.is_some_and(IoSyscall::is_sync) {
                file.syncs += stats.syscalls;
                return;
            }
            file.syscalls += stats.syscalls;
            file.bytes += stats.bytes;
            *file.requests.entry(key.request).or_default() += stats.syscalls;
        };
        self.closed.rows().for_each(|(key, stats)| add(key, stats));
        for (key, row) in &maps.fd_rows {
            fd_rows::row_reads(key.tgid, key.fd, row).for_each(|(key, stats)| add(&key, &stats));
        }
        maps.read_stats
            .iter()
            .for_each(|(key, stats)| add(key, stats));
        live.files
            .grown_all(totals)
            .into_iter()
            .map(|((pid, file_id, write), (grown, now))| {
                let mut requests: Vec<(u64, u64)> =
                    now.requests.iter().map(|(&size, &n)| (size, n)).collect();
                requests.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                requests.truncate(REQUESTS_SHOWN);
                FileRow {
                    pid,
                    path: world.files.path_of(pid, file_id).into_owned(),
                    write,
                    syncs_all: now.syncs,
                    syscalls: grown.syscalls,
                    bytes: grown.bytes,
                    syscalls_all: now.syscalls,
                    bytes_all: now.bytes,
                    requests,
                }
            })
            .collect()
    }
}

/// Each (process, thread, function) sampled so far: the interval's own and
/// total samples from the window's stacks, and the running sums.
fn functions(report: &Report, live: &mut LiveFigures) -> Vec<FunctionRow> {
    let mut interval: HashMap<(u32, u32, String), (u64, u64)> = HashMap::new();
    for stack in &report.python.stacks {
        let mut seen = std::collections::HashSet::new();
        for (depth, frame) in stack.frames.iter().enumerate() {
            let name = function_name(frame);
            let counts = interval
                .entry((stack.pid, stack.tid, name.clone()))
                .or_default();
            if depth == 0 {
                counts.0 += stack.samples;
            }
            // A recursive function counts once per sample in `total`.
            if seen.insert(name) {
                counts.1 += stack.samples;
            }
        }
    }
    for thread in &report.python.threads {
        if let Some(name) = &thread.name {
            live.thread_names
                .insert((thread.pid, thread.tid), name.clone());
        }
    }
    for (key, (own, total)) in &interval {
        let sums = live.functions.entry(key.clone()).or_default();
        sums.0 += own;
        sums.1 += total;
    }
    if live.functions.len() > MAX_FUNCTIONS {
        let mut idle: Vec<(u64, (u32, u32, String))> = live
            .functions
            .iter()
            .filter(|(key, _)| !interval.contains_key(*key))
            .map(|(key, &(_, total))| (total, key.clone()))
            .collect();
        idle.sort_unstable();
        let over = live.functions.len() - MAX_FUNCTIONS;
        for (_, key) in idle.into_iter().take(over) {
            live.functions.remove(&key);
        }
        let threads: std::collections::HashSet<(u32, u32)> = live
            .functions
            .keys()
            .map(|(pid, tid, _)| (*pid, *tid))
            .collect();
        live.thread_names.retain(|key, _| threads.contains(key));
    }
    live.functions
        .iter()
        .map(|(key, &(own_all, total_all))| {
            let (own, total) = interval.get(key).copied().unwrap_or_default();
            let (pid, tid, function) = key.clone();
            FunctionRow {
                pid,
                tid,
                thread: live
                    .thread_names
                    .get(&(pid, tid))
                    .cloned()
                    .unwrap_or_default(),
                function,
                own,
                total,
                own_all,
                total_all,
            }
        })
        .collect()
}

/// `qualname (file:def line)`, the file without its directories.
fn function_name(frame: &crate::frame::Frame) -> String {
    let file = frame.file.rsplit('/').next().unwrap_or(&frame.file);
    format!("{} ({file}:{})", frame.qualname, frame.first_line)
}

fn live_threads(
    live: &mut LiveFigures,
    rows: &[(u32, tracer_common::ThreadStats)],
    main_names: &HashMap<u32, &str>,
) -> Vec<ThreadRow> {
    let now = rows
        .iter()
        .map(|(tid, t)| (*tid, (t.voluntary, t.involuntary, t.on_cpu_ns)))
        .collect();
    let mut grown = live.threads.grown_all(now);
    rows.iter()
        .map(|(tid, t)| {
            let (interval, figures) = grown.remove(tid).unwrap_or_default();
            let comm_len = t.comm.iter().position(|&b| b == 0).unwrap_or(t.comm.len());
            let comm = match main_names.get(tid) {
                Some(name) if *tid == t.tgid => (*name).to_owned(),
                _ => String::from_utf8_lossy(&t.comm[..comm_len]).into_owned(),
            };
            ThreadRow {
                pid: t.tgid,
                tid: *tid,
                comm,
                voluntary: interval.0,
                involuntary: interval.1,
                on_cpu: Duration::from_nanos(interval.2),
                voluntary_all: figures.0,
                involuntary_all: figures.1,
            }
        })
        .collect()
}

fn signal_row(entry: &SignalLogEntry) -> SignalRow {
    let from = match &entry.sender {
        Some(peer) if peer.kernel || peer.pid == 0 => "kernel".to_owned(),
        Some(peer) => format!("{} {}", peer.comm, peer.pid),
        None => "-".to_owned(),
    };
    let fate = match (entry.event.as_str(), &entry.result, &entry.disposition) {
        ("generate", Some(result), _) => format!("sent: {result}"),
        (_, _, Some(disposition)) => format!("delivered: {disposition}"),
        (event, _, _) => event.to_owned(),
    };
    SignalRow {
        t_s: entry.t_s,
        signal: entry.signal.clone(),
        from,
        to: format!("{} {}", entry.target.comm, entry.target.pid),
        fate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        frame::Frame,
        report::{PythonStack, PythonThread, SignalPeer, SignalTarget},
    };

    fn frame(name: &str, first_line: u32) -> Frame {
        Frame {
            qualname: name.into(),
            function: name.into(),
            file: "/srv/app.py".into(),
            line: first_line + 1,
            first_line,
            native: false,
        }
    }

    /// (tid, frames innermost first as (name, def line), samples).
    type Stack<'a> = (u32, &'a [(&'a str, u32)], u64);

    fn window(stacks: &[Stack]) -> Report {
        let mut report = Report::default();
        for &(tid, frames, samples) in stacks {
            report.python.stacks.push(PythonStack {
                pid: 10,
                tid,
                samples,
                frames: frames.iter().map(|&(n, l)| frame(n, l)).collect(),
                ..PythonStack::default()
            });
        }
        report.python.threads.push(PythonThread {
            pid: 10,
            tid: 11,
            name: Some("worker".into()),
            ..PythonThread::default()
        });
        report
    }

    fn row<'a>(rows: &'a [FunctionRow], tid: u32, function: &str) -> &'a FunctionRow {
        rows.iter()
            .find(|r| r.tid == tid && r.function == function)
            .unwrap_or_else(|| panic!("{tid} {function} in {rows:?}"))
    }

    #[test]
    fn own_is_the_innermost_frame_total_any_frame_once_per_sample() {
        let mut live = LiveFigures::default();
        let rows = functions(
            &window(&[
                // fib recursing: innermost fib, fib again, main.
                (10, &[("fib", 5), ("fib", 5), ("main", 1)], 30),
                (10, &[("main", 1)], 10),
                (11, &[("parse", 20), ("main", 1)], 5),
            ]),
            &mut live,
        );
        let fib = row(&rows, 10, "fib (app.py:5)");
        assert_eq!((fib.own, fib.total), (30, 30));
        let main = row(&rows, 10, "main (app.py:1)");
        assert_eq!((main.own, main.total), (10, 40));
        let parse = row(&rows, 11, "parse (app.py:20)");
        assert_eq!(
            (parse.own, parse.total, parse.thread.as_str()),
            (5, 5, "worker")
        );
        // The next interval: main alone; fib's row stays, with its sums.
        let rows = functions(&window(&[(10, &[("main", 1)], 7)]), &mut live);
        let fib = row(&rows, 10, "fib (app.py:5)");
        assert_eq!(
            (fib.own, fib.total, fib.own_all, fib.total_all),
            (0, 0, 30, 30)
        );
        let main = row(&rows, 10, "main (app.py:1)");
        assert_eq!((main.own, main.own_all, main.total_all), (7, 17, 47));
    }

    #[test]
    fn past_the_bound_the_least_sampled_idle_rows_go() {
        let mut live = LiveFigures::default();
        for i in 0..MAX_FUNCTIONS as u64 {
            live.functions
                .insert((10, 10, format!("f{i}")), (i + 1, i + 1));
        }
        let rows = functions(&window(&[(12, &[("new", 1)], 1)]), &mut live);
        assert_eq!(rows.len(), MAX_FUNCTIONS);
        assert!(!live.functions.contains_key(&(10, 10, "f0".into())));
        assert!(live.functions.contains_key(&(10, 10, "f1".into())));
        assert_eq!(row(&rows, 12, "new (app.py:1)").own, 1);
    }

    #[test]
    fn a_signal_row_says_its_fate() {
        let sent = SignalLogEntry {
            t_s: 1.5,
            event: "generate".into(),
            signal: "SIGTERM".into(),
            sender: Some(SignalPeer {
                pid: 7,
                comm: "kill".into(),
                ..SignalPeer::default()
            }),
            target: SignalTarget {
                pid: 10,
                comm: "python3".into(),
                ..SignalTarget::default()
            },
            result: Some("ignored".into()),
            ..SignalLogEntry::default()
        };
        let row = signal_row(&sent);
        assert_eq!(
            (row.from.as_str(), row.to.as_str(), row.fate.as_str()),
            ("kill 7", "python3 10", "sent: ignored")
        );
        let delivered = SignalLogEntry {
            event: "deliver".into(),
            sender: None,
            result: None,
            disposition: Some("handler".into()),
            ..sent
        };
        assert_eq!(signal_row(&delivered).fate, "delivered: handler");
    }
}
