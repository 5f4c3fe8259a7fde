//! The findings about reads: small buffered requests, reads that kept
//! blocking.

use crate::report::{
    FileIo, Finding,
    format::{bytes, duration, thousands},
};

/// A file read in requests smaller than this, this often, gets a finding.
const SMALL_REQUEST: u64 = 4096;
const MANY_SYSCALLS: u64 = 100;
/// Reads that blocked this often get a finding (one page-cache miss does not).
const MANY_BLOCKED: u64 = 3;

/// The findings about reads: one per file at most.
pub fn findings(files: &[FileIo]) -> Vec<Finding> {
    files.iter().filter_map(finding).collect()
}

/// The sentence a file deserves, if any: small buffered requests, or reads
/// that kept blocking.
fn finding(f: &FileIo) -> Option<Finding> {
    let (size, count) = f.dominant_request()?;
    // A socket's reads follow its peer's writes, not a buffer size.
    if size < SMALL_REQUEST && count >= MANY_SYSCALLS && f.kind != "socket" {
        let why = match (f.fs.as_ref(), f.blksize) {
            (fs @ ("proc" | "sysfs"), Some(blk)) if blk == size => format!(
                "{fs} reports st_blksize {blk}, so Python's buffered reader asks for {} at a time",
                bytes(blk)
            ),
            (_, Some(blk)) if blk == size => format!(
                "st_blksize is {blk}, so a buffered reader sized from it asks for {} at a time",
                bytes(blk)
            ),
            _ => format!("the program asks for {} at a time", bytes(size)),
        };
        let larger = SMALL_REQUEST.max(size);
        let needed = syscalls_with_buffer(f, size, larger);
        let message = format!(
            "{}: {} read syscalls of {} for {}; {why}. A {} buffer (e.g. open(path, \"rb\", \
             buffering={larger}) or os.read(fd, {larger})) would need about {} syscalls",
            f.path,
            thousands(count),
            bytes(size),
            bytes(f.bytes),
            bytes(larger),
            thousands(needed)
        );
        return Some(
            Finding::new("small_read_requests", "reads", f.path.clone(), message)
                .with("pid", u64::from(f.pid))
                .with("syscalls", count)
                .with("request_size", size)
                .with("bytes", f.bytes)
                .with("suggested_request_size", larger)
                .with("syscalls_with_suggested_size", needed),
        );
    }
    let cs = &f.context_switches;
    if cs.voluntary >= MANY_BLOCKED && cs.voluntary * 2 >= f.syscalls {
        let message = format!(
            "{}: {} of {} reads blocked (voluntary context switches inside the read), {} waiting in \
             the kernel in all: the process was waiting for data, not working",
            f.path,
            thousands(cs.voluntary),
            thousands(f.syscalls),
            duration(f.kernel_ns)
        );
        return Some(
            Finding::new("blocked_reads", "reads", f.path.clone(), message)
                .with("pid", u64::from(f.pid))
                .with("syscalls", f.syscalls)
                .with("blocked", cs.voluntary)
                .with("kernel_ns", f.kernel_ns),
        );
    }
    None
}

/// Read syscalls the same reads would take with `larger` requests instead of
/// `size`: per opening, the data reads shrink and the end-of-file read stays.
fn syscalls_with_buffer(f: &FileIo, size: u64, larger: u64) -> u64 {
    if f.opens == 0 {
        return f.bytes.div_ceil(larger).max(1).min(f.syscalls);
    }
    let per_open_bytes = f.bytes.div_ceil(f.opens);
    let data_reads_now = per_open_bytes.div_ceil(size);
    let reads_per_open = f.syscalls.div_ceil(f.opens);
    let eof_reads = reads_per_open.saturating_sub(data_reads_now);
    let needed = f.opens * (per_open_bytes.div_ceil(larger) + eof_reads);
    needed.min(f.syscalls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ContextSwitches, fixtures};

    #[test]
    fn procfs_finding_explains_blksize() {
        // 200 opens x (2 data reads + 1 EOF read) of a 1.4 KB file.
        let found = findings(&[fixtures::proc_status(600)]);
        let finding = &found[0].message;
        assert!(
            finding.starts_with("/proc/self/status: 600 read syscalls of 1 KiB"),
            "{finding}"
        );
        assert!(
            finding.contains("proc reports st_blksize 1024"),
            "{finding}"
        );
        // Per open: 1,400 bytes in one 4 KiB read plus the EOF read.
        assert!(
            finding.contains("would need about 400 syscalls"),
            "{finding}"
        );
        assert_eq!(found[0].kind, "small_read_requests");
        assert_eq!(found[0].subject, "/proc/self/status");
        assert_eq!(found[0].figures["syscalls"], 600);
        assert_eq!(found[0].figures["request_size"], 1024);
        assert_eq!(found[0].figures["syscalls_with_suggested_size"], 400);
    }

    #[test]
    fn blocking_reads_get_their_own_finding_and_quiet_files_none() {
        let mut pipe = FileIo {
            path: "pipe:[7]".into(),
            fs: "pipe".into(),
            syscalls: 10,
            bytes: 10,
            kernel_ns: 500_000_000,
            context_switches: ContextSwitches {
                voluntary: 10,
                involuntary: 0,
            },
            ..Default::default()
        };
        pipe.request_sizes.insert("100".into(), 10);
        let found = findings(&[pipe]);
        assert!(
            found[0].message.contains("10 of 10 reads blocked"),
            "{found:?}"
        );
        assert_eq!(found[0].kind, "blocked_reads");
        assert_eq!(found[0].figures["blocked"], 10);
        assert!(findings(&[fixtures::proc_status(10)]).is_empty());
    }
}
