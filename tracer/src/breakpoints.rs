//! Hardware write-breakpoints that run a BPF program: the watch on
//! CPython's `is_tripped` (`py_signal_watch`). Opened here rather than with
//! aya, for `remove_on_exec`: the event is inherited by the threads and
//! processes a watched thread creates, and a child that execs another
//! program must not keep a watch on what is, in its new image, any address.

use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

// From <linux/perf_event.h> and <linux/hw_breakpoint.h>.
const PERF_TYPE_BREAKPOINT: u32 = 5;
const HW_BREAKPOINT_W: u32 = 2;
const HW_BREAKPOINT_LEN_4: u64 = 4;
const INHERIT: u64 = 1 << 1;
const EXCLUDE_KERNEL: u64 = 1 << 5;
const EXCLUDE_HV: u64 = 1 << 6;
const REMOVE_ON_EXEC: u64 = 1 << 36;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
/// `struct perf_event_attr` up to `bp_len` (PERF_ATTR_SIZE_VER1).
const ATTR_SIZE: usize = 72;

/// Runs `program` after every write by thread `tid` (and what it creates
/// from now on, until they exec) to the 4 bytes at `addr`. Before Linux
/// 5.13 (no `remove_on_exec`) the event is not inherited at all.
pub fn watch_writes(tid: u32, addr: u64, program: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let event = match open(tid, addr, INHERIT | REMOVE_ON_EXEC) {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => open(tid, addr, 0)?,
        other => other?,
    };
    // SAFETY: plain ioctls on our own descriptors.
    if unsafe {
        libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            program.as_raw_fd(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE as _, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(event)
}

fn open(tid: u32, addr: u64, flags: u64) -> std::io::Result<OwnedFd> {
    let mut attr = [0u8; ATTR_SIZE];
    attr[0..4].copy_from_slice(&PERF_TYPE_BREAKPOINT.to_ne_bytes()); // type
    attr[4..8].copy_from_slice(&(ATTR_SIZE as u32).to_ne_bytes()); // size
    attr[16..24].copy_from_slice(&1u64.to_ne_bytes()); // sample_period: every write
    let flags = flags | EXCLUDE_KERNEL | EXCLUDE_HV;
    attr[40..48].copy_from_slice(&flags.to_ne_bytes());
    attr[52..56].copy_from_slice(&HW_BREAKPOINT_W.to_ne_bytes()); // bp_type
    attr[56..64].copy_from_slice(&addr.to_ne_bytes()); // bp_addr
    attr[64..72].copy_from_slice(&HW_BREAKPOINT_LEN_4.to_ne_bytes()); // bp_len
    // SAFETY: `attr` is a valid perf_event_attr prefix of the size it says.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            tid as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
