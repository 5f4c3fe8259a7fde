//! One-off traces: the descriptors' read rows the kernel sent as each was
//! closed, summed here, and those still open at the end (from the map
//! snapshot), merged into the snapshot's rows. The kernel holds only the
//! descriptors open now; this holds a row per file and (syscall, request).

use std::collections::HashSet;

use tracer_common::{FdRow, IoKey, IoStats, MAX_FD_ROWS};

use crate::events::MapSnapshot;

#[derive(Default)]
pub struct ClosedRows {
    rows: Appended<IoKey, IoStats>,
    /// Opens per (tgid, file id).
    opens: Appended<(u32, u64), u64>,
    /// After the snapshot: the openings (tgid, fd, opened_ns) closed since,
    /// whose rows the snapshot also holds (the record is the whole).
    late: Option<HashSet<(u32, i32, u64)>>,
    /// Descriptors sent.
    pub closed: u64,
}

impl ClosedRows {
    /// A descriptor's record.
    pub fn on_closed(&mut self, tgid: u32, fd: i32, row: &FdRow) {
        self.closed += 1;
        if let Some(late) = self.late.as_mut() {
            late.insert((tgid, fd, row.opened_ns));
        }
        add_row(&mut self.rows, &mut self.opens, tgid, fd, row);
    }

    /// `--live`: the rows of the descriptors closed so far (a key may be
    /// in more than one row).
    pub fn rows(&self) -> impl Iterator<Item = &(IoKey, IoStats)> {
        self.rows.rows.iter()
    }

    /// The maps were read: records from now on were in the snapshot too.
    pub fn after_snapshot(&mut self) {
        self.late.get_or_insert_with(HashSet::new);
    }

    /// Rows sent and rows still open, in `maps.reads` and `maps.opens`;
    /// a warning if the kernel's table of descriptors was full at the end.
    pub fn merge_into(self, maps: &mut MapSnapshot) -> Option<String> {
        let full = (maps.fd_rows.len() >= MAX_FD_ROWS as usize).then(|| {
            format!(
                "the kernel's table of open descriptors ({MAX_FD_ROWS}) was full at the end: \
                 reads of descriptors opened while it was are counted under \
                 \"fd N (name lost)\" rows (see dropped.tables)"
            )
        });
        let Self {
            mut rows,
            mut opens,
            late,
            ..
        } = self;
        let late = late.unwrap_or_default();
        for (key, row) in std::mem::take(&mut maps.fd_rows) {
            if !late.contains(&(key.tgid, key.fd, row.opened_ns)) {
                add_row(&mut rows, &mut opens, key.tgid, key.fd, &row);
            }
        }
        for (key, stats) in std::mem::take(&mut maps.reads) {
            rows.push(key, stats);
        }
        maps.reads = rows.into_merged();
        for (file, n) in std::mem::take(&mut maps.opens) {
            opens.push(file, n);
        }
        maps.opens = opens.into_merged().into_iter().collect();
        full
    }
}

fn add_row(
    rows: &mut Appended<IoKey, IoStats>,
    opens: &mut Appended<(u32, u64), u64>,
    tgid: u32,
    fd: i32,
    row: &FdRow,
) {
    if row.opens > 0 {
        opens.push((tgid, row.file_id), row.opens);
    }
    for (key, stats) in row_reads(tgid, fd, row) {
        rows.push(key, stats);
    }
}

/// A descriptor's row as read rows, one per (syscall, request).
pub fn row_reads(tgid: u32, fd: i32, row: &FdRow) -> impl Iterator<Item = (IoKey, IoStats)> {
    row.slots.iter().filter_map(move |slot| {
        let (syscall, request) = slot.unpack()?;
        let key = IoKey {
            tgid,
            fd,
            file_id: row.file_id,
            request,
            syscall,
            _pad: 0,
        };
        Some((key, slot.stats))
    })
}

/// Rows added up by key, appended as they come and merged now and then:
/// a million files' records are a million pushes at the end of a vector
/// (a hash table's insert each took a quarter of the tracer's time, and
/// twice the memory), while a file closed a million times (a /proc
/// poller) stays a row or two.
struct Appended<K, V> {
    rows: Vec<(K, V)>,
    /// Merge when the vector reaches this length.
    merge_at: usize,
}

/// The first merge; then at twice the rows left by the last one.
const FIRST_MERGE: usize = 1 << 16;

impl<K, V> Default for Appended<K, V> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            merge_at: FIRST_MERGE,
        }
    }
}

impl<K: Sortable, V: Summable> Appended<K, V> {
    fn push(&mut self, key: K, value: V) {
        if self.rows.len() >= self.merge_at {
            self.merge();
            self.merge_at = (self.rows.len() * 2).max(FIRST_MERGE);
        }
        self.rows.push((key, value));
    }

    /// Sorted by key, equal keys added up into one row.
    fn merge(&mut self) {
        self.rows.sort_unstable_by_key(|(key, _)| key.order());
        self.rows.dedup_by(|(key, value), (kept_key, kept)| {
            let same = key.order() == kept_key.order();
            if same {
                kept.add(value);
            }
            same
        });
    }

    fn into_merged(mut self) -> Vec<(K, V)> {
        self.merge();
        self.rows.shrink_to_fit();
        self.rows
    }
}

trait Sortable {
    type Order: Ord;
    fn order(&self) -> Self::Order;
}

impl Sortable for IoKey {
    type Order = (u32, i32, u64, u64, u32);
    fn order(&self) -> Self::Order {
        (self.tgid, self.fd, self.file_id, self.request, self.syscall)
    }
}

impl Sortable for (u32, u64) {
    type Order = (u32, u64);
    fn order(&self) -> Self::Order {
        *self
    }
}

trait Summable {
    fn add(&mut self, other: &Self);
}

impl Summable for IoStats {
    fn add(&mut self, other: &Self) {
        IoStats::add(self, other);
    }
}

impl Summable for u64 {
    fn add(&mut self, other: &Self) {
        *self += other;
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::{FdKey, FdSlot, IoSyscall};

    use super::*;

    fn row(file_id: u64, opened_ns: u64, slots: &[(IoSyscall, u64, u64, u64)]) -> FdRow {
        let mut row = FdRow {
            file_id,
            opened_ns,
            opens: 1,
            ..FdRow::default()
        };
        for (slot, &(syscall, request, syscalls, bytes)) in row.slots.iter_mut().zip(slots) {
            *slot = FdSlot {
                key: FdSlot::key(syscall as u32, request).unwrap(),
                stats: IoStats {
                    syscalls,
                    bytes,
                    ..IoStats::default()
                },
            };
        }
        row
    }

    #[test]
    fn slot_keys_round_trip() {
        let key = FdSlot::key(IoSyscall::Recvmmsg as u32, 65536).unwrap();
        let slot = FdSlot {
            key,
            ..FdSlot::default()
        };
        assert_eq!(slot.unpack(), Some((IoSyscall::Recvmmsg as u32, 65536)));
        assert_eq!(FdSlot::default().unpack(), None);
        assert_eq!(FdSlot::key(0, u64::MAX), None);
    }

    #[test]
    fn closed_and_open_rows_add_up_and_a_late_close_is_not_counted_twice() {
        let read = IoSyscall::Read;
        let mut closed = ClosedRows::default();
        // The same path opened twice on fd 3, then a 3rd time, still open.
        closed.on_closed(
            10,
            3,
            &row(7, 100, &[(read, 4096, 2, 5000), (read, 1, 1, 0)]),
        );
        closed.on_closed(10, 3, &row(7, 200, &[(read, 4096, 3, 6000)]));
        let mut maps = MapSnapshot {
            fd_rows: vec![
                (
                    FdKey { tgid: 10, fd: 3 },
                    row(7, 300, &[(read, 4096, 1, 10)]),
                ),
                (FdKey { tgid: 10, fd: 4 }, row(8, 400, &[(read, 64, 9, 90)])),
            ],
            ..MapSnapshot::default()
        };
        // fd 4 was closed after the snapshot read it: its record counts.
        closed.after_snapshot();
        closed.on_closed(10, 4, &row(8, 400, &[(read, 64, 10, 100)]));
        assert_eq!(closed.merge_into(&mut maps), None);
        let mut reads = maps.reads.clone();
        reads.sort_by_key(|(k, _)| (k.fd, k.request));
        let figures: Vec<_> = reads
            .iter()
            .map(|(k, s)| (k.fd, k.file_id, k.request, s.syscalls, s.bytes))
            .collect();
        assert_eq!(
            figures,
            [
                (3, 7, 1, 1, 0),
                (3, 7, 4096, 6, 11_010),
                (4, 8, 64, 10, 100)
            ]
        );
        assert_eq!(maps.opens[&(10, 7)], 3);
        assert_eq!(maps.opens[&(10, 8)], 1);
    }

    #[test]
    fn appended_rows_add_up_by_key_across_merges() {
        let mut opens: Appended<(u32, u64), u64> = Appended::default();
        // Three times the first merge's length: merged twice on the way.
        for i in 0..3 * FIRST_MERGE as u64 {
            opens.push((7, i % 1000), 1);
        }
        opens.push((6, 5), 10);
        let merged = opens.into_merged();
        assert_eq!(merged.len(), 1001);
        assert_eq!(merged[0], ((6, 5), 10));
        let per_file = 3 * FIRST_MERGE as u64 / 1000;
        assert!(merged[1..].iter().all(|&((_, file), n)| {
            n == per_file + u64::from(file < 3 * FIRST_MERGE as u64 % 1000)
        }));
        assert_eq!(
            merged.iter().map(|r| r.1).sum::<u64>(),
            3 * FIRST_MERGE as u64 + 10
        );
    }
}
