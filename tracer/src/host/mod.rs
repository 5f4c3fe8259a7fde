//! What reads the running system: `/proc`, the files and sockets a
//! descriptor names, containers, a process's pidfd and the scope of a
//! node-wide trace.

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
