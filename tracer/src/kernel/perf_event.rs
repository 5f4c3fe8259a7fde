//! A perf event that runs a loaded BPF program: opened with
//! `perf_event_open` on CPU 0 for every process (a uprobe's or a
//! tracepoint's program runs wherever it fires), given the program
//! (`PERF_EVENT_IOC_SET_BPF`) and enabled. Closing the descriptor detaches
//! it (after an RCU grace period).

use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

// From <linux/perf_event.h>.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// `struct perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1 is 72;
/// the kernel accepts any known size and zero-fills the rest).
pub const ATTR_SIZE: usize = 72;

/// The head of a `perf_event_attr`: `type` and `size`, the rest zero.
pub fn attr(event_type: u32) -> [u8; ATTR_SIZE] {
    let mut attr = [0u8; ATTR_SIZE];
    attr[0..4].copy_from_slice(&event_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&(ATTR_SIZE as u32).to_ne_bytes());
    attr
}

/// Opens the event `attr` describes and runs `program` at it. The caller
/// keeps whatever `attr` points to (a uprobe's path) alive for the call.
pub fn open_with_program(
    attr: &[u8; ATTR_SIZE],
    program: BorrowedFd<'_>,
) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid perf_event_attr prefix of the size it says.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel gave us.
    let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: plain ioctls on our own descriptors.
    unsafe {
        if libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            program.as_raw_fd(),
        ) != 0
            || libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(event)
}
