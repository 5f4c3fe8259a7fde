//! A process's pidfd: a descriptor that names the process itself, not its
//! pid, so it stays right after the pid is reused and polls readable once
//! the process has exited.

use std::os::fd::{FromRawFd, OwnedFd};

/// `pidfd_open(2)` of `pid` (Linux 5.3).
pub fn open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor no one else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
