//! Read and write figures per file and socket: kernel rows (per file id,
//! syscall and request size) joined with what userspace learned about
//! each file id (`files::FileTable`), a row per direction (the syncs in
//! the write row); many connections of one process from one peer host
//! fold into one row.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use tracer_common::{IoKey, IoStats, IoSyscall};

use super::python::merge_stacks;
use crate::host::files::table::FileTable;
use crate::{
    host::files::FileInfo,
    host::sockets::{Socket, UNNAMED_SOCKETS},
    report::{ContextSwitches, EventStack, FOLD_ABOVE, FileIo, SocketRow},
};

/// Names the sockets not named yet (`FileTable::name_remaining`) and then
/// folds: the connections of each process to or from one peer host into
/// one row when there are more than [`FOLD_ABOVE`] of them, and a local
/// address's connections from more than that many hosts into one row too.
pub fn fold_sockets(files: &mut FileTable, rows: &[(IoKey, IoStats)]) {
    files.name_remaining();
    let read: HashSet<(u32, u64)> = rows.iter().map(|(k, _)| (k.tgid, k.file_id)).collect();
    let connections = files.sockets_read(read);
    // First by peer host; then, if a local address still has more rows
    // than that (clients from many hosts), all of its peers in one.
    let mut per_host: HashMap<(u32, Socket), usize> = HashMap::new();
    for ((tgid, _), socket) in &connections {
        if let Some(host) = socket.folded() {
            *per_host.entry((*tgid, host)).or_default() += 1;
        }
    }
    let by_host = |tgid: u32, socket: &Socket| match socket.folded() {
        Some(host) if per_host[&(tgid, host.clone())] > FOLD_ABOVE => host,
        _ => socket.clone(),
    };
    let mut per_local: HashMap<(u32, Socket), HashSet<Socket>> = HashMap::new();
    for ((tgid, _), socket) in &connections {
        if let Some(any) = socket.folded_any_peer() {
            let rows = per_local.entry((*tgid, any)).or_default();
            rows.insert(by_host(*tgid, socket));
        }
    }
    fold_unnamed(files, rows);
    for (key, socket) in &connections {
        let shown = match socket.folded_any_peer() {
            Some(any) if per_local[&(key.0, any.clone())].len() > FOLD_ABOVE => any,
            _ => by_host(key.0, socket),
        };
        if shown != *socket {
            files.show_as(*key, shown.name(), Some(shown));
        }
    }
}

/// More than [`FOLD_ABOVE`] sockets of one process that could not be
/// named (short-lived connections closed before they were looked up)
/// are one row, `socket:[*]`.
fn fold_unnamed(files: &mut FileTable, rows: &[(IoKey, IoStats)]) {
    let mut per_process: HashMap<u32, HashSet<u64>> = HashMap::new();
    for (key, _) in rows {
        if files.is_unnamed(key.tgid, key.file_id) {
            per_process.entry(key.tgid).or_default().insert(key.file_id);
        }
    }
    for (tgid, ids) in per_process {
        if ids.len() <= FOLD_ABOVE {
            continue;
        }
        for file_id in ids {
            files.show_as((tgid, file_id), UNNAMED_SOCKETS.into(), None);
        }
    }
}

/// Which of a file's rows: its reads, or its writes and syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

impl Direction {
    fn of(key: &IoKey) -> Self {
        match IoSyscall::from_u32(key.syscall) {
            Some(syscall) if syscall.is_write() => Self::Write,
            _ => Self::Read,
        }
    }
}

/// The report's `reads[]` and `writes[]`.
#[derive(Debug, Default)]
pub struct Rows {
    pub reads: Vec<FileIo>,
    pub writes: Vec<FileIo>,
}

/// One `FileIo` per (process, path) of the kernel rows of `direction`,
/// busiest first. `opens` is the kernel's count per (tgid, file_id).
pub fn aggregate(
    files: &FileTable,
    rows: &[(IoKey, IoStats)],
    opens: &HashMap<(u32, u64), u64>,
    direction: Direction,
) -> Vec<FileIo> {
    let rows: Vec<&(IoKey, IoStats)> = rows
        .iter()
        .filter(|(key, _)| Direction::of(key) == direction)
        .collect();
    // Rows in one vector of the exact size, found by (pid, path)
    // borrowed from the table: a million files' rows, and no path
    // copied but into its row. First which row each kernel row adds to.
    let mut by_file: HashMap<(u32, &str), u32> = HashMap::new();
    let mut by_lost_name: HashMap<(u32, String), u32> = HashMap::new();
    let mut firsts: Vec<usize> = Vec::new();
    let mut row_of: Vec<u32> = Vec::with_capacity(rows.len());
    for (i, (key, _)) in rows.iter().enumerate() {
        let next = firsts.len() as u32;
        let index = match files.lookup(key) {
            Cow::Borrowed(info) => *by_file.entry((key.tgid, &info.path)).or_insert(next),
            Cow::Owned(info) => *by_lost_name.entry((key.tgid, info.path)).or_insert(next),
        };
        if index == next {
            firsts.push(i);
        }
        row_of.push(index);
    }
    drop((by_file, by_lost_name));
    let mut rows_out: Vec<FileIo> = Vec::with_capacity(firsts.len());
    rows_out.extend(
        firsts
            .iter()
            .map(|&i| new_row(rows[i].0.tgid, &files.lookup(&rows[i].0))),
    );
    drop(firsts);
    let mut counted_opens = std::collections::HashSet::new();
    for ((key, stats), &index) in rows.iter().zip(&row_of) {
        let entry = &mut rows_out[index as usize];
        entry.path_truncated |= files.is_truncated(key.tgid, key.file_id);
        if counted_opens.insert((key.tgid, key.file_id)) {
            entry.opens += opens.get(&(key.tgid, key.file_id)).copied().unwrap_or(0);
            if entry.kind == "socket" {
                entry.socket.connections += 1;
            }
        }
        let syscall = IoSyscall::from_u32(key.syscall);
        entry.errors += stats.errors;
        entry.kernel_ns += stats.kernel_ns;
        entry.context_switches.voluntary += stats.voluntary;
        entry.context_switches.involuntary += stats.involuntary;
        if syscall.is_some_and(IoSyscall::is_sync) {
            entry.syncs += stats.syscalls;
            entry.sync_ns += stats.kernel_ns;
        } else {
            entry.syscalls += stats.syscalls;
            entry.bytes += stats.bytes;
            entry.requested_bytes += key.request.saturating_mul(stats.syscalls);
            entry
                .request_sizes
                .add(&key.request.to_string(), stats.syscalls);
        }
        entry
            .by_syscall
            .add(syscall.map_or("unknown", IoSyscall::name), stats.syscalls);
    }
    drop((row_of, counted_opens));
    // Unstable: no two rows are equal by this order (one per process
    // and path), and a stable sort's buffer is half the rows again
    // (108 MB for a million files).
    rows_out.sort_unstable_by(|a, b| {
        (b.syscalls.cmp(&a.syscalls))
            .then(a.path.cmp(&b.path))
            .then(a.pid.cmp(&b.pid))
    });
    rows_out
}

/// The row of a file or socket, before its figures are added.
fn new_row(pid: u32, info: &FileInfo) -> FileIo {
    let socket = info.socket.as_deref();
    let mut row = FileIo {
        pid,
        kind: if info.fs == "socket" {
            "socket"
        } else {
            "file"
        }
        .into(),
        path: info.path.clone(),
        fs: info.fs.clone(),
        blksize: info.blksize,
        ..Default::default()
    };
    let folded = socket.is_some_and(|s| s.folded) || info.path == UNNAMED_SOCKETS;
    if socket.is_some() || folded || info.unnamed.is_some() {
        *row.socket = SocketRow {
            protocol: socket.map(|s| s.protocol.to_owned()),
            local: socket.and_then(|s| s.local.clone()),
            peer: socket.and_then(|s| s.peer.clone()),
            folded,
            unnamed: info.unnamed.map(str::to_owned),
            connections: 0,
        };
    }
    row
}

/// Puts the Python stacks behind process `pid`'s reads (per kernel file id)
/// on its `FileIo` rows; several file ids may name one path.
pub fn add_python_stacks(
    rows: &mut [FileIo],
    files: &FileTable,
    pid: u32,
    every: u32,
    stacks: HashMap<u64, Vec<EventStack>>,
) {
    if stacks.is_empty() {
        return;
    }
    // By path: a trace may read a million files.
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.pid == pid)
        .map(|(i, r)| (r.path.as_str(), i))
        .collect();
    let mut found: Vec<(usize, Vec<EventStack>)> = Vec::new();
    for (file_id, list) in stacks {
        if let Some(&i) = index.get(files.path_of(pid, file_id).as_ref()) {
            found.push((i, list));
        }
    }
    drop(index);
    for (i, list) in found {
        let row = &mut rows[i];
        row.python_stacks_every = u64::from(every);
        let merged = std::mem::take(&mut row.python_stacks)
            .into_iter()
            .chain(list);
        row.python_stacks = merge_stacks(merged);
    }
}

/// Summed context switches inside all reads.
pub fn total_switches(files: &[FileIo]) -> ContextSwitches {
    files.iter().fold(ContextSwitches::default(), |mut acc, f| {
        acc.voluntary += f.context_switches.voluntary;
        acc.involuntary += f.context_switches.involuntary;
        acc
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::sockets::Unnamed;

    fn key(tgid: u32, fd: i32, file_id: u64, request: u64, syscall: IoSyscall) -> IoKey {
        IoKey {
            tgid,
            fd,
            file_id,
            request,
            syscall: syscall as u32,
            _pad: 0,
        }
    }

    fn stats(syscalls: u64, bytes: u64, voluntary: u64) -> IoStats {
        IoStats {
            syscalls,
            bytes,
            errors: 0,
            kernel_ns: syscalls * 1000,
            voluntary,
            involuntary: 0,
        }
    }

    fn table() -> FileTable {
        let mut t = FileTable::default();
        let proc_status = FileInfo {
            path: "/proc/self/status".into(),
            fs: "proc".into(),
            blksize: Some(1024),
            ..Default::default()
        };
        t.insert(10, 111, proc_status);
        t.insert(
            10,
            222,
            FileInfo {
                path: "pipe:[99]".into(),
                fs: "pipe".into(),
                blksize: Some(4096),
                ..Default::default()
            },
        );
        t
    }

    #[test]
    fn merges_rows_of_one_file_across_fds_sizes_and_syscalls() {
        let rows = vec![
            (
                key(10, 3, 111, 1024, IoSyscall::Read),
                stats(200, 200 * 1024, 0),
            ),
            (
                key(10, 4, 111, 1024, IoSyscall::Read),
                stats(100, 40_000, 0),
            ),
            (key(10, 3, 111, 4096, IoSyscall::Pread64), stats(5, 5000, 1)),
            (key(10, 5, 222, 65536, IoSyscall::Read), stats(10, 10, 10)),
        ];
        let opens = HashMap::from([((10, 111), 300), ((10, 222), 1)]);
        let files = aggregate(&table(), &rows, &opens, Direction::Read);
        assert_eq!(files.len(), 2);
        let status = &files[0];
        assert_eq!(status.opens, 300);
        assert_eq!(status.path, "/proc/self/status");
        assert_eq!(status.syscalls, 305);
        assert_eq!(status.bytes, 200 * 1024 + 40_000 + 5000);
        assert_eq!(status.request_sizes["1024"], 300);
        assert_eq!(status.request_sizes["4096"], 5);
        assert_eq!(status.by_syscall["read"], 300);
        assert_eq!(status.by_syscall["pread64"], 5);
        assert_eq!(status.dominant_request(), Some((1024, 300)));
        let pipe = &files[1];
        assert_eq!(pipe.context_switches.voluntary, 10);
        assert_eq!(total_switches(&files).voluntary, 11);
    }

    #[test]
    fn many_connections_from_one_host_fold_into_one_row() {
        let mut t = FileTable::default();
        let mut rows = Vec::new();
        let mut connect = |file_id: u64, peer: String| {
            let socket = Socket::accepted("127.0.0.1:8000", &peer);
            let info = FileInfo {
                path: socket.name(),
                fs: "socket".into(),
                socket: Some(Box::new(socket)),
                ..Default::default()
            };
            t.insert(10, file_id, info);
            rows.push((
                key(10, 5, file_id, 64, IoSyscall::Recvfrom),
                stats(2, 20, 0),
            ));
        };
        for i in 0..FOLD_ABOVE as u64 + 4 {
            connect(1000 + i, format!("127.0.0.1:{}", 40000 + i));
        }
        for i in 0..3 {
            connect(2000 + i, format!("10.0.0.2:{}", 50000 + i));
        }
        fold_sockets(&mut t, &rows);
        let reads = aggregate(&t, &rows, &HashMap::new(), Direction::Read);
        assert_eq!(reads.len(), 4, "{reads:#?}");
        let folded = &reads[0];
        assert_eq!(folded.path, "TCP 127.0.0.1:8000 <- 127.0.0.1:*");
        assert_eq!(
            folded.shown_path(),
            format!("{} (20 connections)", folded.path)
        );
        assert_eq!(
            (folded.kind.as_ref(), folded.socket.protocol.as_deref()),
            ("socket", Some("TCP"))
        );
        assert_eq!(folded.socket.peer.as_deref(), Some("127.0.0.1:*"));
        assert!(folded.socket.folded);
        assert_eq!(
            (folded.socket.connections, folded.syscalls, folded.bytes),
            (20, 40, 400)
        );
        assert_eq!(folded.by_syscall["recvfrom"], 40);
        for row in &reads[1..] {
            assert_eq!(
                (row.socket.connections, row.socket.folded),
                (1, false),
                "{row:#?}"
            );
            assert!(row.path.starts_with("TCP 127.0.0.1:8000 <- 10.0.0.2:5000"));
        }
        // --serve's series never have a connection's ephemeral port.
        assert_eq!(
            t.describe(10, 5, 2000).series_name(),
            "TCP 127.0.0.1:8000 <- 10.0.0.2:*"
        );
    }

    #[test]
    fn a_local_address_with_clients_from_many_hosts_folds_into_one_row() {
        let mut t = FileTable::default();
        let mut rows = Vec::new();
        for host in 0..FOLD_ABOVE as u64 + 1 {
            let socket = Socket::accepted("10.0.0.1:443", &format!("10.1.0.{host}:40000"));
            let info = FileInfo {
                path: socket.name(),
                fs: "socket".into(),
                socket: Some(Box::new(socket)),
                ..Default::default()
            };
            t.insert(10, 100 + host, info);
            rows.push((
                key(10, 5, 100 + host, 8, IoSyscall::Recvmsg),
                stats(1, 8, 0),
            ));
        }
        fold_sockets(&mut t, &rows);
        let reads = aggregate(&t, &rows, &HashMap::new(), Direction::Read);
        assert_eq!(reads.len(), 1, "{reads:#?}");
        assert_eq!(reads[0].path, "TCP 10.0.0.1:443 <- *");
        assert_eq!(
            (reads[0].socket.connections, reads[0].socket.folded),
            (17, true)
        );
    }

    #[test]
    fn many_sockets_closed_before_they_were_named_are_one_row() {
        let mut t = FileTable::default();
        let mut rows = Vec::new();
        for i in 0..FOLD_ABOVE as u64 + 1 {
            let info = FileInfo {
                path: format!("socket:[{}]", 900 + i),
                fs: "socket".into(),
                unnamed: Some(Unnamed::NotListed.reason()),
                ..Default::default()
            };
            assert_eq!(info.series_name(), UNNAMED_SOCKETS);
            t.insert(10, 300 + i, info);
            rows.push((
                key(10, 5, 300 + i, 100, IoSyscall::Recvfrom),
                stats(1, 100, 0),
            ));
        }
        fold_sockets(&mut t, &rows);
        let reads = aggregate(&t, &rows, &HashMap::new(), Direction::Read);
        assert_eq!(reads.len(), 1, "{reads:#?}");
        assert_eq!(reads[0].path, "socket:[*]");
        assert_eq!(
            (reads[0].socket.connections, reads[0].socket.folded),
            (17, true)
        );
        // The process is gone: still "not listed", the first reason seen.
        assert_eq!(
            reads[0].socket.unnamed.as_deref(),
            Some(Unnamed::NotListed.reason())
        );
    }

    #[test]
    fn unknown_and_bad_descriptors_are_named_not_guessed() {
        let rows = vec![
            (key(10, 9, 0, 16, IoSyscall::Read), stats(1, 0, 0)),
            (key(10, 8, 777, 16, IoSyscall::Read), stats(2, 0, 0)),
        ];
        let files = aggregate(&table(), &rows, &HashMap::new(), Direction::Read);
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["fd 8 (name lost)", "fd 9 (bad descriptor)"]);
    }

    #[test]
    fn same_path_in_two_processes_stays_apart() {
        let mut t = table();
        t.insert(
            11,
            111,
            FileInfo {
                path: "/proc/self/status".into(),
                fs: "proc".into(),
                blksize: Some(1024),
                ..Default::default()
            },
        );
        let rows = vec![
            (key(10, 3, 111, 1024, IoSyscall::Read), stats(1, 1, 0)),
            (key(11, 3, 111, 1024, IoSyscall::Read), stats(1, 1, 0)),
        ];
        let files = aggregate(&t, &rows, &HashMap::new(), Direction::Read);
        assert_eq!(files.len(), 2);
        assert_ne!(files[0].pid, files[1].pid);
    }
}
