//! The findings about writes: a writer blocked on a full pipe or socket
//! (naming who reads the other end when it is traced), one write per line
//! where a buffer would do, an fsync per record.

use crate::report::{
    FileIo, Finding, Report,
    format::{bytes, duration, thousands},
};

/// Writes that blocked this often get a finding (one full pipe does not).
const MANY_BLOCKED: u64 = 3;
/// Writes this many, of this few bytes on average, are a write per line.
const MANY_WRITES: u64 = 100;
const LINE_BYTES: u64 = 256;
/// The buffer a buffered stream writes in (`io.DEFAULT_BUFFER_SIZE` is 8
/// KiB; a pipe takes 64 KiB at once).
const SUGGESTED_BUFFER: u64 = 65_536;
/// Syncs this many, one per this few writes or fewer, are a sync per record.
const MANY_SYNCS: u64 = 10;
const WRITES_PER_RECORD: u64 = 20;

/// The findings about writes: up to one of each kind per row.
pub fn findings(report: &Report) -> Vec<Finding> {
    let mut found = Vec::new();
    for row in &report.writes {
        found.extend(blocked(row, report));
        found.extend(write_per_line(row));
        found.extend(sync_per_record(row));
    }
    found
}

/// A pipe or socket whose writes kept blocking: the other end was full.
fn blocked(w: &FileIo, report: &Report) -> Option<Finding> {
    let pipe = w.fs == "pipe";
    let blocked = w.context_switches.voluntary;
    if !(pipe || w.kind == "socket") || blocked < MANY_BLOCKED {
        return None;
    }
    let reader = other_end(w, report);
    let who = match reader {
        Some((pid, comm)) => format!("its reader, pid {pid} ({comm}), fell behind"),
        None if pipe => "its reader (not traced) fell behind".into(),
        None => "the peer read slowly, or the network was slower".into(),
    };
    let full = if pipe { "pipe" } else { "socket buffer" };
    let at = python_line(w).map_or(String::new(), |line| format!("; written at {line}"));
    let message = format!(
        "{}: {} of {} writes blocked on a full {full} ({} waiting in the kernel): {who}{at}",
        w.shown_path(),
        thousands(blocked),
        thousands(w.syscalls),
        duration(w.kernel_ns.saturating_sub(w.sync_ns)),
    );
    let mut finding = Finding::new("blocked_writes", "writes", w.path.clone(), message)
        .with("pid", u64::from(w.pid))
        .with("syscalls", w.syscalls)
        .with("blocked", blocked)
        .with("kernel_ns", w.kernel_ns.saturating_sub(w.sync_ns));
    if let Some((pid, _)) = reader {
        finding = finding.with("reader_pid", u64::from(pid));
    }
    Some(finding)
}

/// Many writes of a line each: a line-buffered or unbuffered stream.
fn write_per_line(w: &FileIo) -> Option<Finding> {
    if w.kind == "socket" || w.syscalls < MANY_WRITES || w.bytes >= w.syscalls * LINE_BYTES {
        return None;
    }
    let average = w.bytes / w.syscalls.max(1);
    let needed = w.bytes.div_ceil(SUGGESTED_BUFFER).max(1);
    let message = format!(
        "{}: {} writes of {} on average ({} in all): a write per line, as a line-buffered or \
         unbuffered stream makes (print(..., flush=True), a logging handler's flush, \
         open(path, \"w\", buffering=1)); a {} buffer would need about {}",
        w.shown_path(),
        thousands(w.syscalls),
        bytes(average),
        bytes(w.bytes),
        bytes(SUGGESTED_BUFFER),
        match needed {
            1 => "one write".to_owned(),
            n => format!("{} writes", thousands(n)),
        },
    );
    Some(
        Finding::new("write_per_line", "writes", w.path.clone(), message)
            .with("pid", u64::from(w.pid))
            .with("syscalls", w.syscalls)
            .with("bytes", w.bytes)
            .with("suggested_buffer", SUGGESTED_BUFFER)
            .with("writes_with_suggested_buffer", needed),
    )
}

/// An fsync (or fdatasync, sync_file_range) for every few writes.
fn sync_per_record(w: &FileIo) -> Option<Finding> {
    if w.syncs < MANY_SYNCS || w.syscalls > w.syncs * WRITES_PER_RECORD {
        return None;
    }
    let per_sync = w.syscalls / w.syncs;
    let message = format!(
        "{}: {} syncs, one every {} writes, {} waiting for the device in all: each record \
         waits until it is on disk; syncing every N records or on a timer costs the last ones \
         at a crash, a sync per record costs this",
        w.shown_path(),
        thousands(w.syncs),
        thousands(per_sync),
        duration(w.sync_ns),
    );
    Some(
        Finding::new("sync_per_record", "writes", w.path.clone(), message)
            .with("pid", u64::from(w.pid))
            .with("syscalls", w.syscalls)
            .with("syncs", w.syncs)
            .with("sync_ns", w.sync_ns),
    )
}

/// The traced process reading the other end of a pipe (a read row of the
/// same pipe in another process, or the writer's own) or of a local
/// connection (the read row whose addresses are the writer's swapped).
fn other_end<'a>(w: &FileIo, report: &'a Report) -> Option<(u32, &'a str)> {
    let reader = report.reads.iter().find(|r| {
        if w.fs == "pipe" {
            r.path == w.path
        } else {
            w.socket.local.is_some()
                && r.socket.local == w.socket.peer
                && r.socket.peer == w.socket.local
        }
    })?;
    let comm = report
        .processes
        .iter()
        .find(|p| p.pid == reader.pid)
        .map_or("?", |p| p.comm.as_str());
    Some((reader.pid, comm))
}

/// The Python line behind most of the row's captured calls: the innermost
/// frame outside the standard library (`print` and `logging` write from
/// it), else the innermost.
fn python_line(w: &FileIo) -> Option<String> {
    let stack = w.python_stacks.iter().max_by_key(|s| s.samples)?;
    let stdlib = |file: &str| file.contains("/lib/python3") && !file.contains("-packages/");
    let frame = stack
        .frames
        .iter()
        .find(|f| !stdlib(&f.file))
        .or(stack.frames.first())?;
    Some(frame.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        frame::Frame,
        report::{ContextSwitches, EventStack, ProcessInfo},
    };

    fn row(path: &str, fs: &'static str, pid: u32, syscalls: u64, bytes: u64) -> FileIo {
        FileIo {
            pid,
            path: path.into(),
            fs: fs.into(),
            syscalls,
            bytes,
            ..Default::default()
        }
    }

    /// The workload of the issue: 400 writes of 4 KiB to a pipe whose
    /// reader is slow, 300 lines to a log with an fsync every 10.
    #[test]
    fn a_full_pipe_a_line_per_write_and_a_sync_per_record() {
        let mut pipe = row("pipe:[77]", "pipe", 10, 400, 400 * 4096);
        pipe.kernel_ns = 2_000_000_000;
        pipe.context_switches = ContextSwitches {
            voluntary: 350,
            involuntary: 0,
        };
        pipe.python_stacks = vec![EventStack::new(
            vec![
                Frame::parse("write (/usr/lib/python3.11/logging/__init__.py:1)").unwrap(),
                Frame::parse("produce (/srv/app.py:12)").unwrap(),
            ],
            400,
        )];
        let mut log = row("/var/log/app.log", "ext4", 10, 300, 300 * 40);
        log.syncs = 30;
        log.sync_ns = 30_000_000;
        let mut report = Report {
            writes: vec![pipe, log],
            reads: vec![row("pipe:[77]", "pipe", 11, 800, 400 * 4096)],
            ..Default::default()
        };
        report.processes.push(ProcessInfo {
            pid: 11,
            comm: "consumer".into(),
            ..Default::default()
        });
        let found = findings(&report);
        let kinds: Vec<&str> = found.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["blocked_writes", "write_per_line", "sync_per_record"]
        );
        assert!(
            found[0].message.starts_with(
                "pipe:[77]: 350 of 400 writes blocked on a full pipe (2.00 s waiting in the \
                 kernel): its reader, pid 11 (consumer), fell behind; written at produce \
                 (/srv/app.py:12)"
            ),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].figures["reader_pid"], 11);
        assert!(found[1].message.contains("300 writes of 40 B"), "{found:?}");
        assert_eq!(found[1].figures["writes_with_suggested_buffer"], 1);
        assert!(found[2].message.contains("30 syncs, one every 10 writes"));
        // A few blocked writes, big writes and rare syncs say nothing.
        let mut quiet = row("pipe:[78]", "pipe", 10, 400, 400 * 4096);
        quiet.context_switches.voluntary = 2;
        quiet.syncs = 9;
        let report = Report {
            writes: vec![quiet],
            ..Default::default()
        };
        assert!(findings(&report).is_empty());
    }
}
