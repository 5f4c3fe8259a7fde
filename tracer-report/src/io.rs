//! The reads and writes sections: one row per file (or socket), process
//! and direction, and the Python code behind its reads or writes.

use std::{borrow::Cow, collections::BTreeMap};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::{ContextSwitches, EventStack};

/// More connections than this of one process, with the same local address
/// and peer host (an accepted connection's peer port, or a client's own
/// port, being the ephemeral one), fold into one row (`<- HOST:*`); a local
/// address with more rows than this left (clients from many hosts) folds
/// into one (`<- *`).
pub const FOLD_ABOVE: usize = 16;

/// Name -> count, in name order; a JSON object. A row has one or a few:
/// kept in one vector sized to them, names held inline (two `BTreeMap`s
/// cost a million-file report ~740 bytes a row; this, 32 bytes a name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(Vec<(CompactString, u64)>);

impl Counts {
    /// Sets `name`'s count; returns the one it had.
    pub fn insert(&mut self, name: String, count: u64) -> Option<u64> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, count)),
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (name.into(), count));
                None
            }
        }
    }

    /// Adds `count` to `name`'s.
    pub fn add(&mut self, name: &str, count: u64) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) => self.0[i].1 += count,
            Err(i) => {
                // Exact: most rows have one name (a vector's first growth
                // would make room for four).
                self.0.reserve_exact(1);
                self.0.insert(i, (name.into(), count));
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&u64> {
        let i = self
            .0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()?;
        Some(&self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl std::ops::Index<&str> for Counts {
    type Output = u64;
    fn index(&self, name: &str) -> &u64 {
        self.get(name).expect("no such name")
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, u64>::deserialize(deserializer)?;
        Ok(Self(map.into_iter().map(|(k, v)| (k.into(), v)).collect()))
    }
}

/// One file (or socket) one process read from (a `reads[]` row) or wrote
/// to (a `writes[]` row, whose syncs it counts too).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileIo {
    pub pid: u32,
    /// "file" or "socket".
    #[serde(default = "file_kind")]
    pub kind: Cow<'static, str>,
    /// The path it was opened by; `pipe:[INODE]` as `/proc/PID/fd` shows
    /// it for descriptors not opened by path; a socket's protocol and
    /// addresses (`TCP 127.0.0.1:8000 <- 127.0.0.1:51234`, `unix
    /// /run/x.sock`), or `socket:[INODE]` when they could not be looked up.
    pub path: String,
    /// What only a socket (or the row of unnamed sockets) has.
    #[serde(flatten)]
    pub socket: SocketFields,
    /// `path` is only the first 255 bytes of a longer path (the kernel side
    /// captures that much); the text report shows it with "...".
    #[serde(default)]
    pub path_truncated: bool,
    pub fs: Cow<'static, str>,
    pub blksize: Option<u64>,
    /// Times the process opened this path while traced (0: it was already open).
    pub opens: u64,
    /// Read-family syscalls (`read`, `pread64`, `readv`, `preadv`, the
    /// socket reads), or write-family ones (`write`, `pwrite64`, `writev`,
    /// `pwritev`, the socket sends); not the syncs.
    pub syscalls: u64,
    /// Bytes read or written (what the syscalls returned).
    pub bytes: u64,
    /// Bytes asked for (each request size times its syscalls): a write
    /// that wrote less than asked, or a read that got less, shows here.
    #[serde(default)]
    pub requested_bytes: u64,
    /// A write row's `fsync`, `fdatasync` and `sync_file_range` calls (in
    /// `by_syscall` by name) and their time in the kernel (part of
    /// `kernel_ns`).
    #[serde(default)]
    pub syncs: u64,
    #[serde(default)]
    pub sync_ns: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Time between syscall entry and exit, summed (the syncs' too).
    pub kernel_ns: u64,
    /// Requested size in bytes -> number of syscalls.
    pub request_sizes: Counts,
    /// Syscall name -> number of calls.
    pub by_syscall: Counts,
    /// Scheduler context switches that happened inside these syscalls.
    pub context_switches: ContextSwitches,
    /// Python code behind these syscalls (top frames), from those whose
    /// stack was captured: 1 in `python_stacks_every` (0: not captured).
    #[serde(default)]
    pub python_stacks: Vec<EventStack>,
    #[serde(default)]
    pub python_stacks_every: u64,
}

/// A row's socket fields, boxed: a million files' rows would carry ~100
/// empty bytes each. Reads see the empty fields of a file through `Deref`;
/// a write makes the box. In JSON every row has the fields (null, 0 or
/// false for a file), as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketFields(Option<Box<SocketRow>>);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SocketRow {
    /// A named socket's "TCP", "UDP" or "unix".
    #[serde(default)]
    pub protocol: Option<String>,
    /// A named socket's address (a unix path; `None`: unnamed), and its
    /// connected peer's; a port of `*` when connections were folded.
    #[serde(default)]
    pub local: Option<String>,
    #[serde(default)]
    pub peer: Option<String>,
    /// Sockets (connections) this row sums; 0 for a file.
    #[serde(default)]
    pub connections: u64,
    /// Connections folded into one row by their ephemeral port (more than
    /// `FOLD_ABOVE` from one peer host to one local address), or by their
    /// peer (connections from more than `FOLD_ABOVE` hosts).
    #[serde(default)]
    pub folded: bool,
    /// A socket left as `socket:[INODE]`: why.
    #[serde(default)]
    pub unnamed: Option<String>,
}

static NO_SOCKET: SocketRow = SocketRow {
    protocol: None,
    local: None,
    peer: None,
    connections: 0,
    folded: false,
    unnamed: None,
};

impl std::ops::Deref for SocketFields {
    type Target = SocketRow;
    fn deref(&self) -> &SocketRow {
        self.0.as_deref().unwrap_or(&NO_SOCKET)
    }
}

impl std::ops::DerefMut for SocketFields {
    fn deref_mut(&mut self) -> &mut SocketRow {
        self.0.get_or_insert_with(Default::default)
    }
}

impl Serialize for SocketFields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SocketFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let row = SocketRow::deserialize(deserializer)?;
        Ok(Self((row != NO_SOCKET).then(|| Box::new(row))))
    }
}

fn file_kind() -> Cow<'static, str> {
    "file".into()
}

impl FileIo {
    /// The path as people read it: a cut path ends in "...", a row of
    /// several connections says how many.
    pub fn shown_path(&self) -> String {
        if self.path_truncated {
            format!("{}...", self.path)
        } else if self.socket.connections > 1 {
            format!("{} ({} connections)", self.path, self.socket.connections)
        } else {
            self.path.clone()
        }
    }

    /// About how many of this row's syscalls (syncs included) came from
    /// `stack`, one of its `python_stacks`: its captured count times
    /// `python_stacks_every`, scaled down when the estimates would add up
    /// to more than the exact count they sample (never above it).
    pub fn estimated_calls(&self, stack: &EventStack) -> u64 {
        let every = self.python_stacks_every.max(1);
        let calls = self.syscalls + self.syncs;
        let captured: u64 = self.python_stacks.iter().map(|s| s.samples).sum();
        if captured.saturating_mul(every) > calls && captured > 0 {
            stack.samples * calls / captured
        } else {
            stack.samples * every
        }
    }

    /// Bytes asked for and not written (or read): partial calls and
    /// errors.
    pub fn short_bytes(&self) -> u64 {
        self.requested_bytes.saturating_sub(self.bytes)
    }

    /// The request size used by most syscalls (ties: the larger size).
    pub fn dominant_request(&self) -> Option<(u64, u64)> {
        self.request_sizes
            .iter()
            .filter_map(|(size, count)| Some((size.parse::<u64>().ok()?, *count)))
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;

    fn frames(list: &[&str]) -> Vec<Frame> {
        list.iter().map(|f| Frame::parse(f).unwrap()).collect()
    }

    #[test]
    fn estimated_calls_never_exceed_the_exact_count() {
        let a = EventStack::new(frames(&["poll (/abs/p.py:3)"]), 38);
        let b = EventStack::new(frames(&["main (/abs/p.py:9)"]), 1);
        let mut file = FileIo {
            syscalls: 600,
            python_stacks_every: 16,
            python_stacks: vec![a.clone(), b.clone()],
            ..FileIo::default()
        };
        // 39 captures x 16 = 624 > 600 exact reads: scaled to 600.
        assert_eq!(file.estimated_calls(&a), 584);
        assert_eq!(file.estimated_calls(&b), 15);
        // A .pyc read twice, its one read captured: 2, not 16.
        file.syscalls = 2;
        file.python_stacks = vec![b.clone()];
        assert_eq!(file.estimated_calls(&b), 2);
        // Within the exact count: captures x every.
        file.syscalls = 100_000;
        assert_eq!(file.estimated_calls(&b), 16);
    }
}
