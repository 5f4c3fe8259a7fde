//! What reads the running system: its clocks, `/proc`, the files and sockets a
//! descriptor names, containers, a process's pidfd and the scope of a
//! node-wide trace.

pub mod clock;
pub mod containers;
pub mod files;
pub mod pidfd;
pub mod procfs;
pub mod scope;
pub mod sockets;

/// The kernel's page size (its memory counters count pages).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// The tracer's own memory kept out of khugepaged's reach: to collapse a
/// range into a huge page it holds the process's memory map locked while
/// it copies 2 MiB, and a page fault of the loop's thread waits meanwhile
/// (2.1 s on an emulated CPU, the records waiting behind it). Inherited by
/// a fork and kept across exec: the launched command clears it
/// ([`allow_huge_pages`]), its memory is the program's own.
pub fn keep_small_pages() {
    // SAFETY: a flag on this process; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        log::info!(
            "huge pages still allowed in the tracer's memory: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// In a child about to exec a command: huge pages as the command would
/// have them untraced. Async-signal-safe (one system call).
///
/// # Safety
/// None beyond the call's: it touches no memory.
pub unsafe fn allow_huge_pages() {
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
}
